"""The trust list: which named callables and classes a load may import.

Trust only ever comes from the caller (``trusted=`` per call, :func:`trust` per process);
nothing stored in a file can widen it. Names on the deny list are refused even when their
package is trusted. An entry trusts a name exactly, or every name below a module when it is
that module's dotted prefix (``"mypkg"`` trusts ``"mypkg.models.Model"``).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any

from amber.errors import DecodeError, UntrustedTypeError

__all__ = ["DEFAULT_TRUSTED", "DENIED", "is_trusted", "resolve", "trust", "trusted_names", "untrusted"]

#: Names any load may import: harmless constructors of plain data.
DEFAULT_TRUSTED: frozenset[str] = frozenset(
    f"builtins.{n}"
    for n in (
        "bool bytearray bytes complex dict float frozenset int list object range set slice str tuple"
    ).split()
) | frozenset(
    {
        "collections.OrderedDict",
        "collections.Counter",
        "collections.defaultdict",
        "collections.deque",
        "numpy.random.PCG64",
        "numpy.random.PCG64DXSM",
        "numpy.random.MT19937",
        "numpy.random.Philox",
        "numpy.random.SFC64",
    }
)

#: Callables that load or execute code; never imported, whatever the caller trusts.
DENIED_PREFIXES: tuple[str, ...] = (
    "os.",
    "posix.",
    "nt.",
    "subprocess.",
    "importlib.",
    "runpy.",
    "shutil.",
    "socket.",
    "code.",
    "codeop.",
    "pty.",
    "webbrowser.",
    "pip.",
    "ctypes.",
    "sys.",
    "marshal.",
    "pickle.",
    "_pickle.",
    "dill.",
    "cloudpickle.",
    "joblib.",
)
DENIED: frozenset[str] = frozenset(
    {
        "builtins.eval",
        "builtins.exec",
        "builtins.compile",
        "builtins.open",
        "builtins.getattr",
        "builtins.setattr",
        "builtins.delattr",
        "builtins.__import__",
        "builtins.globals",
        "builtins.locals",
        "builtins.vars",
        "builtins.breakpoint",
        "builtins.input",
        "numpy.load",
        "numpy.loadtxt",
        "numpy.fromfile",
        "numpy.lib.npyio.load",
        "torch.load",
        "functools.partial",
        "operator.attrgetter",
        "operator.methodcaller",
    }
)

_process_trusted: set[str] = set()


def trust(*names: str) -> None:
    """Trust ``names`` (exact names or module prefixes) for every later load in this process."""
    for n in names:
        if not isinstance(n, str) or not n:
            raise TypeError(f"trust() takes dotted names as strings, not {n!r}")
        _process_trusted.add(n)


def trusted_names() -> frozenset[str]:
    """What :func:`trust` added in this process."""
    return frozenset(_process_trusted)


def is_denied(name: str) -> bool:
    return name in DENIED or name.startswith(DENIED_PREFIXES)


def _matches(name: str, entries: Iterable[str]) -> bool:
    for e in entries:
        if name == e or name.startswith(e + "."):
            return True
    return False


def is_trusted(name: str, extra: Iterable[str] = ()) -> bool:
    """May a load import ``name``, given the caller's extra ``trusted=`` entries?"""
    if is_denied(name):
        return False
    return name in DEFAULT_TRUSTED or _matches(name, _process_trusted) or _matches(name, extra)


def untrusted(names: Iterable[str], extra: Iterable[str] = ()) -> list[str]:
    """The names among ``names`` that a load with ``trusted=extra`` may not import."""
    extra = tuple(extra)
    return sorted({n for n in names if not is_trusted(n, extra)})


def resolve(name: str, extra: Iterable[str] = ()) -> Any:
    """Import and return the object named ``module.qualname``, only if it is trusted."""
    if not is_trusted(name, extra):
        raise UntrustedTypeError([name])
    module, _, qual = name.rpartition(".")
    # Find the longest importable module prefix (for nested qualnames such as a.B.C).
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            break
        return obj
    raise DecodeError(f"cannot import {name!r}: no module {module or qual!r} provides it in this environment")
