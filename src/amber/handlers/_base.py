"""The handler contract and the registry that maps types and tags to handlers.

A handler turns objects of some types into a *node* (see :mod:`amber._node`) and back:

* ``encode(obj, ctx)`` returns ``[self.tag, *payload]``. Children are encoded with
  ``ctx.encode(child)``; array bytes go to ``ctx.add_blob(buffer, filter)`` (filter: ``None``,
  ``("shuffle", itemsize)`` or ``("delta", stride)``, applied only when compressing), which returns
  a blob reference to keep in the payload.
* ``decode(node, ctx)`` rebuilds the object from that list. Children must be decoded with
  ``ctx.decode(child)`` **in the order they were encoded** (shared references are numbered
  in that order). A mutable object that may sit in a cycle calls ``ctx.bind(obj)`` as soon
  as it exists, before decoding its children.
* ``handler_id`` is the stable wire name; ``version`` is bumped only when the payload layout
  changes, and the old decoder stays registered under its version.

Built-in handlers that need a third-party package are registered lazily by module name and
imported the first time such an object or tag is met, so ``import amber`` stays light.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar, Protocol

from amber._node import tag as make_tag
from amber.errors import AmberError, AmberWarning

__all__ = ["DecodeContext", "EncodeContext", "Handler", "REGISTRY", "Registry"]


class EncodeContext(Protocol):
    deterministic: bool
    #: per-walk state for handlers, e.g. ``ctx.scratch.setdefault(key, obj)`` to give
    #: objects that are equal but not identical (two views of one storage) one identity,
    #: so that ``ctx.encode`` stores them once and the rest become references.
    scratch: dict[Any, Any]

    def encode(self, obj: Any, at: Any = None) -> Any: ...
    def add_blob(self, data: memoryview, filt: Any = None) -> int: ...
    def need(self, name: str) -> None: ...
    def note_package(self, name: str) -> None: ...
    def encode_before(self, owner: Any, obj: Any, at: Any = None) -> Any: ...
    def encode_attrs(self, state: dict[str, Any]) -> dict[str, Any]: ...


class DecodeContext(Protocol):
    lazy: bool
    #: ``load(..., mmap=True)``: ``blob`` returns read-only memory-mapped views when it can
    mmap: bool
    #: per-load state for handlers
    scratch: dict[Any, Any]
    #: load options for handlers: ``map_location`` (where tensors go, as in ``torch.load``)
    options: dict[str, Any]

    def decode(self, node: Any) -> Any: ...
    def decode_attrs(self, attrs: dict[Any, Any]) -> dict[Any, Any]: ...
    def bind(self, obj: Any) -> None: ...
    def resolve(self, name: str) -> Any: ...
    def caller_trusts(self, name: str) -> bool: ...
    def blob(self, ref: Any, writable: bool = False, alloc: Any = None, data_only: bool = False) -> Any:
        """The blob's bytes: a writable uint8 array, or under ``mmap`` a view of the file
        mapping, read-only unless ``writable`` (then copy-on-write: writes stay private).
        ``alloc(n)``: where a blob read on its own goes (a writable uint8 array).
        ``data_only=True`` promises the bytes are only kept as data (array contents), never
        parsed or acted on during the load: their checksum may then be verified later, at
        the end of the load, while the next parts are read."""
        ...
    def blob_nbytes(self, ref: Any) -> int: ...
    def lazy_array(self, ref: Any, dtype: Any, shape: tuple[int, ...], order: str) -> Any: ...


class Handler(ABC):
    """Base class of type handlers. Subclasses set ``handler_id``, ``types`` and ``version``."""

    handler_id: ClassVar[str] = ""
    version: ClassVar[int] = 1
    #: The exact types this handler saves.
    types: ClassVar[tuple[type, ...]] = ()
    #: More exact types it saves, by ``module.qualname``: for types whose module is costly
    #: to import, found when an object of the type is first met.
    type_names: ClassVar[tuple[str, ...]] = ()
    #: ``decode`` calls ``ctx.bind`` before decoding children, so a cycle may pass
    #: through this object; otherwise the writer refuses cycles through it.
    binds: ClassVar[bool] = False
    tag: ClassVar[bytes]

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if cls.handler_id:
            cls.tag = make_tag(cls.handler_id, cls.version)

    @abstractmethod
    def encode(self, obj: Any, ctx: EncodeContext) -> list[Any]:
        """``[self.tag, *payload]`` for ``obj``."""

    @abstractmethod
    def decode(self, node: Any, ctx: DecodeContext) -> Any:
        """The object rebuilt from ``node`` (``node[0]`` is the tag)."""


class Registry:
    """Types -> handler for saving, (tag name, version) -> handler for loading."""

    def __init__(self) -> None:
        self.by_type: dict[type, Handler] = {}
        self.by_tag: dict[tuple[str, int], Handler] = {}
        #: top-level module or tag prefix -> module that registers its handlers on import
        self.lazy: dict[str, str] = {}
        self._loaded: set[str] = set()
        self._plugins_loaded = False
        #: type -> handler for types no registered handler saves (set by amber.handlers)
        self._fallback: Callable[[type], Handler] | None = None
        self._fallbacks: dict[type, Handler] = {}
        #: "module.qualname" -> handler, for the handlers' ``type_names``
        self.by_name: dict[str, Handler] = {}

    def register(self, handler: Handler | type[Handler], clobber: bool = False) -> Handler:
        h = handler() if isinstance(handler, type) else handler
        if not h.handler_id:
            raise AmberError(f"{type(h).__name__} has no handler_id")
        key = (h.handler_id, h.version)
        if key in self.by_tag and not clobber and type(self.by_tag[key]) is not type(h):
            raise AmberError(
                f"a handler for {h.handler_id!r} version {h.version} is already registered "
                f"({type(self.by_tag[key]).__name__}); pass clobber=True to replace it"
            )
        self.by_tag[key] = h
        for t in h.types:
            cur = self.by_type.get(t)
            # saving uses the newest version; an older one registered later only loads old files
            if cur is None or cur.handler_id != h.handler_id or cur.version <= h.version:
                self.by_type[t] = h
            self._fallbacks.pop(t, None)
        for name in h.type_names:
            self.by_name[name] = h
        return h

    def register_lazy(self, prefix: str, module: str) -> None:
        self.lazy[prefix] = module

    def _load(self, prefix: str) -> bool:
        module = self.lazy.get(prefix)
        if module is None or module in self._loaded:
            return False
        self._loaded.add(module)
        importlib.import_module(module)
        return True

    def load_plugins(self) -> None:
        """Register the handlers that installed packages declare in the entry-point group
        ``amber.handlers`` (once per process). An entry point names a Handler class or
        instance, a module that registers handlers when imported, or a function to call."""
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        from importlib.metadata import entry_points

        for ep in entry_points(group="amber.handlers"):
            try:
                obj = ep.load()
                if isinstance(obj, Handler) or isinstance(obj, type) and issubclass(obj, Handler):
                    self.register(obj, clobber=True)
                elif callable(obj) and not isinstance(obj, type):
                    obj()
            except Exception as exc:
                warnings.warn(
                    f"amber handler plugin {ep.name!r} ({ep.value}) failed to load: {type(exc).__name__}: "
                    f"{exc}; its types are saved and loaded without it",
                    AmberWarning,
                    stacklevel=3,
                )

    def for_type(self, t: type) -> Handler | None:
        h = self.by_type.get(t)
        if h is None and self._load(t.__module__.partition(".")[0]):
            h = self.by_type.get(t)
        if h is None and not self._plugins_loaded:
            self.load_plugins()
            h = self.by_type.get(t)
        if h is None and self.by_name:
            h = self.by_name.get(f"{t.__module__}.{t.__qualname__}")
            if h is not None and getattr(sys.modules.get(t.__module__), t.__qualname__, None) is not t:
                h = None  # a class that only carries the name
            if h is not None:
                self.by_type[t] = h
        return h

    def fallback(self, t: type) -> Handler:
        """The generic handler for a type without its own (by name, reduction or opt-in)."""
        h = self._fallbacks.get(t)
        if h is None:
            if self._fallback is None:
                from amber.errors import UnsupportedTypeError

                raise UnsupportedTypeError(t)
            h = self._fallback(t)
            if len(self._fallbacks) < 65536:
                self._fallbacks[t] = h
        return h

    def for_tag(self, name: str, version: int) -> Handler | None:
        h = self.by_tag.get((name, version))
        if h is None and self._load(name.partition(".")[0]):
            h = self.by_tag.get((name, version))
        if h is None and not self._plugins_loaded:
            self.load_plugins()
            h = self.by_tag.get((name, version))
        return h


REGISTRY = Registry()
