"""``@amber.handler``: save your own types with a few lines, no subclassing needed.

>>> @amber.handler(Point)                       # doctest: +SKIP
... class PointHandler:
...     def encode(self, p):                    # -> any value amber can save
...         return {"x": p.x, "y": p.y}
...     def decode(self, state):                # state is that value, loaded
...         return Point(state["x"], state["y"])

The handler's name (default: the type's ``module.qualname``) and version are written into
the file; a process that loads it must have registered the same name and version. A
registered handler is trusted: registering it is the caller's decision, so loading its
nodes needs no ``trusted=`` entry.
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable
from typing import Any, TypeVar

from amber.errors import AmberError, CorruptFileError
from amber.handlers._base import REGISTRY, DecodeContext, EncodeContext, Handler, Registry

__all__ = ["handler", "register"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")
_RESERVED = ("map", "list", "tuple", "ref", "seg", "global", "object", "reduce", "state")

T = TypeVar("T")


class UserHandler(Handler):
    """Adapts an object with ``encode(obj) -> state`` and ``decode(state) -> obj``."""

    impl: Any = None

    def encode(self, obj: Any, ctx: EncodeContext) -> list[Any]:
        return [self.tag, ctx.encode(self.impl.encode(obj), f".<{self.handler_id} handler>")]

    def decode(self, node: Any, ctx: DecodeContext) -> Any:
        if len(node) != 2:
            raise CorruptFileError(f"malformed {self.handler_id} node")
        return self.impl.decode(ctx.decode(node[1]))


def handler(
    cls: type, *, name: str | None = None, version: int = 1, registry: Registry = REGISTRY
) -> Callable[[T], T]:
    """Class decorator registering ``encode``/``decode`` methods as the handler for ``cls``.

    Args:
        cls: the exact type to save (subclasses need their own handler).
        name: the stable name written into files; default ``"module.QualName"`` of ``cls``.
        version: bump it when the state layout changes; register the old decoder too
            (same name, old version) to keep reading old files.

    Registering the same name and version again replaces the earlier handler (so a
    notebook cell can be re-run).
    """
    hid = name or f"{cls.__module__}.{cls.__qualname__}"
    if not _NAME.fullmatch(hid) or hid.partition(".")[0] in _RESERVED:
        raise AmberError(
            f"handler name {hid!r} must be a dotted name such as 'mypkg.Point' (not starting with a "
            "name amber reserves); pass name='mypkg.Point'"
        )
    top = hid.partition(".")[0]
    if top in registry.lazy:
        raise AmberError(
            f"handler name {hid!r} is in the {top!r} namespace, which amber's own {top} handlers use; "
            f"pass a name of your own, e.g. name='mypkg.{cls.__qualname__}'"
        )
    if not isinstance(version, int) or not 1 <= version <= 0xFFFF:
        raise AmberError(f"handler version must be an int from 1 to 65535, not {version!r}")

    def register(impl: T) -> T:
        inst = impl() if isinstance(impl, type) else impl
        for method in ("encode", "decode"):
            if not callable(getattr(inst, method, None)):
                raise AmberError(f"{impl!r} has no {method}() method; a handler needs encode(obj) and decode(state)")
        sub = type(
            f"UserHandler[{hid}@{version}]",
            (UserHandler,),
            {"handler_id": hid, "version": version, "types": (cls,), "impl": inst},
        )
        old = registry.by_tag.get((hid, version))
        registry.register(sub, clobber=old is None or isinstance(old, UserHandler))
        return impl

    return register


def register(
    target: type | Handler | type[Handler],
    encode: Callable[[Any], Any] | None = None,
    decode: Callable[[Any], Any] | None = None,
    *,
    name: str | None = None,
    version: int = 1,
) -> None:
    """Register a handler without a decorator.

    ``amber.register(Point, encode=lambda p: [p.x, p.y], decode=lambda s: Point(*s))``, or
    ``amber.register(MyHandler)`` for a :class:`amber.handlers.Handler` subclass (or instance)
    that writes nodes itself.
    """
    if isinstance(target, Handler) or isinstance(target, type) and issubclass(target, Handler):
        if encode is not None or decode is not None:
            raise AmberError("pass encode/decode with a type, not with a Handler")
        REGISTRY.register(target, clobber=True)
        return
    if not isinstance(target, type) or not callable(encode) or not callable(decode):
        raise AmberError(
            "register(Type, encode=..., decode=...) needs a type and two functions: "
            "encode(obj) -> state and decode(state) -> obj"
        )
    handler(target, name=name, version=version)(types.SimpleNamespace(encode=encode, decode=decode))
