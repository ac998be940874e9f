"""Diagnostics: ``explain`` (what cannot be saved safely, and where), ``check``, ``copy``.

``explain`` runs the real encoder without writing anything, carrying on past every part
it cannot save, so one call lists all of them, each with its path inside the object.
It also lists the classes and functions a load would import that are not on the trust
list, with the ``trusted=[...]`` entry that loading will need.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from amber.errors import AmberError, EncodeError
from amber._node import ext_hook
from amber.container._io import BytesSource
from amber.container._reader import ContainerReader
from amber.formats._native import PathEncoder, _deep_recursion, _part, decode_from, encode_to
from amber.trust import is_denied, untrusted

__all__ = ["Problem", "Problems", "check", "copy", "explain"]


@dataclass(frozen=True)
class Problem:
    """One part of an object that cannot be saved, or will not load without trust."""

    path: str
    #: "unsupported": dump refuses it; "untrusted": it saves, but loading needs ``trusted=``
    kind: str
    type: str
    reason: str
    remedy: str

    def __str__(self) -> str:
        return f"{self.path}: {self.type}: {self.reason}" + (f". {self.remedy}" if self.remedy else "")


class Problems(list):  # type: ignore[type-arg]
    """The list ``explain`` returns; prints one line per problem."""

    def __str__(self) -> str:
        if not self:
            return "nothing to report: the object saves and loads with the default trust list"
        return "\n".join(str(p) for p in self)


#: Phrases of reasons that already say what to do.
_SELF_EXPLAINED = ("lambda", "inside another", "never loads", "cannot be found again")


def _remedy(reason: str) -> str:
    if any(phrase in reason for phrase in _SELF_EXPLAINED):
        return ""
    return "Convert it to a supported type, or register a handler with @amber.handler(its type)"


class _ExplainEncoder(PathEncoder):
    """The encoder with its path stack; records failures instead of raising them."""

    def __init__(self) -> None:
        super().__init__(None)
        self.problems: list[Problem] = []
        self.need_at: dict[str, str] = {}

    def add_blob(self, data: memoryview, filt: Any = None) -> int:
        return 0

    def need(self, name: str) -> None:
        self.need_at.setdefault(name, "".join(self.path))
        super().need(name)

    def encode(self, obj: Any, at: Any = None) -> Any:
        try:
            return super().encode(obj, at)
        except AmberError as exc:
            reason = getattr(exc, "reason", None) or (exc.detail if isinstance(exc, EncodeError) else str(exc))
            t = type(obj)
            path = "".join(self.path) + ("" if at is None else _part(at))
            self.problems.append(
                Problem(path, "unsupported", f"{t.__module__}.{t.__qualname__}", reason, _remedy(reason))
            )
            return None


def explain(obj: Any, *, trusted: Iterable[str] | None = None) -> Problems:
    """Every part of ``obj`` that cannot be saved, or will not load without ``trusted=``,
    with its path (``root.steps[0][1].func``) and a remedy. Empty when all is well."""
    enc = _ExplainEncoder()
    with _deep_recursion():
        enc.encode(obj)
    problems = Problems(enc.problems)
    extra = tuple(trusted or ())
    for name in untrusted(enc.needs, extra):
        if is_denied(name):
            continue  # the encoder refuses denied names itself
        problems.append(
            Problem(
                enc.need_at.get(name, "root"),
                "untrusted",
                name,
                "saves, but is not on the default trust list",
                f"Load with trusted=[{name!r}] (or amber.trust({name.partition('.')[0]!r}) once per process)",
            )
        )
    return problems


def check(obj: Any, *, trusted: Iterable[str] | None = None) -> bool:
    """True when ``obj`` saves and loads back with the given trust list (default: none)."""
    return not explain(obj, trusted=trusted)


def copy(obj: Any) -> Any:
    """A deep copy made by a round trip through the native format (in memory).

    The classes and functions inside ``obj`` come from this process, so the copy trusts
    them; deny-listed callables are still refused.
    """
    buf = io.BytesIO()
    encode_to(buf, obj, deterministic=True)
    reader = ContainerReader(BytesSource(buf.getbuffer(), "<copy>", owned=True), verify=False, ext_hook=ext_hook)
    try:
        needs = reader.manifest.get("needs") or []
        return decode_from(reader, trusted=needs)
    finally:
        reader.close()
