"""The native format: objects -> node tree + blobs -> container, and back.

The encoder walks the object graph once. Plain values and tuples of plain values pass
through untouched; lists, dicts and other tuples become structural nodes, and everything
else goes to its handler. Every tagged node (but ``ref`` and ``seg``) is numbered in the
order the walk meets it, and a second meeting of the same object becomes ``[ref, n]``, so
shared objects are stored once and cycles through mutable containers survive (a cycle
through a tuple is refused: a tuple exists only once its items do). Subtrees deeper than
``SEGMENT`` levels are packed into their own msgpack segment, which keeps the nesting any
one msgpack call sees small while letting amber save structures thousands of levels deep.
"""

from __future__ import annotations

import datetime as _dt
import time as _time
import platform
import re
import sys
import warnings
from collections.abc import Callable, Iterable
from typing import Any, BinaryIO

import msgpack

from amber._node import ext_hook, parse_tag, tag
from amber._version import __version__
from amber.container._codecs import Codec
from amber.container._reader import ContainerReader
from amber.container._writer import ContainerWriter
from amber.errors import (
    AmberError,
    CorruptFileError,
    DecodeError,
    EncodeError,
    FormatError,
    NestingError,
    PickleIslandError,
    UnsupportedTypeError,
    UntrustedTypeError,
    VersionMismatchWarning,
)
from amber.handlers import REGISTRY, Handler
from amber.trust import is_denied
from amber.trust import caller_trusts as _caller_trusts
from amber.trust import resolve as _resolve
from amber.trust import untrusted as _untrusted

__all__ = ["Decoder", "Encoder", "cycle_error", "MAX_DEPTH", "encode_to", "decode_from", "check_versions"]

#: Deepest nesting amber saves and loads (Python 3.11+ recurses without using the C stack).
MAX_DEPTH = 10_000 if sys.version_info >= (3, 11) else 2_000
#: Nesting levels per msgpack segment.
SEGMENT = 100

_INT_MIN, _INT_MAX = -(1 << 63), (1 << 64) - 1
TAG_REF = tag("ref")
TAG_SEG = tag("seg")
TAG_TUPLE = tag("tuple")
TAG_LIST = tag("list")
TAG_PLAIN_LIST = tag("list.plain")
TAG_MAP = tag("map")
TAG_PLAIN_MAP = tag("map.plain")
_PENDING = object()


class _deep_recursion:  # noqa: N801 - used as a function: ``with _deep_recursion():``
    """Raise the recursion limit for the walk of a deep tree, and restore it after (a plain
    class: a generator-based context manager costs a StopIteration per use, which shows on
    loads of many small files)."""

    __slots__ = ("old",)
    need = 6 * MAX_DEPTH + 1000

    def __enter__(self) -> None:
        self.old = sys.getrecursionlimit()
        if self.old < self.need:
            sys.setrecursionlimit(self.need)

    def __exit__(self, *exc: Any) -> None:
        if self.old < self.need:
            sys.setrecursionlimit(self.old)


def _part(at: Any) -> str:
    if isinstance(at, str) and at.startswith("."):
        return at
    return f"[{at!r}]"


def _add_part(exc: AmberError, at: Any) -> None:
    parts = exc.__dict__.setdefault("_parts", [])
    parts.append(_part(at))


def _finish_path(exc: AmberError) -> None:
    parts = exc.__dict__.pop("_parts", [])
    if len(parts) > 40:  # keep messages readable for very deep structures
        parts = parts[:20] + [f"...({len(parts) - 40} levels)..."] + parts[-20:]
    if isinstance(exc, EncodeError):
        exc.path = "root" + "".join(reversed(parts))
    elif parts:
        exc.args = (f"{exc.args[0] if exc.args else exc} (at root{''.join(reversed(parts))})",)


def _json_safe(value: Any, where: str, depth: int = 0) -> None:
    if depth > 100:
        raise EncodeError("metadata is nested more than 100 levels deep", where)
    t = type(value)
    if value is None or t in (str, bool, float):
        return
    if t is int:
        if not _INT_MIN <= value <= _INT_MAX:
            raise EncodeError("metadata integers must fit in 64 bits", where)
        return
    if t is list:
        for i, v in enumerate(value):
            _json_safe(v, f"{where}[{i}]", depth + 1)
        return
    if t is dict:
        for k, v in value.items():
            if type(k) is not str:
                raise EncodeError(f"metadata keys must be strings, not {type(k).__name__}", where)
            _json_safe(v, f"{where}[{k!r}]", depth + 1)
        return
    raise EncodeError(
        f"metadata must be JSON-like (dict, list, str, int, float, bool, None), not {t.__name__}", where
    )


_pkg_versions: dict[str, str | None] = {}
#: (package, version written) pairs known to match the running versions.
_versions_match: dict[tuple[str, str], bool] = {}
#: A file's environment lists the packages whose types it holds; check at most this many.
_MAX_PACKAGES = 64
_PKG_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def package_version(name: str) -> str | None:
    """The installed version of a distribution (None if missing); cached for real names."""
    if not _PKG_NAME.fullmatch(name):
        return None
    if name not in _pkg_versions:
        if len(_pkg_versions) > 4096:
            _pkg_versions.clear()
        mod = sys.modules.get(name)
        ver = getattr(mod, "__version__", None)
        if not isinstance(ver, str):
            try:
                from importlib.metadata import PackageNotFoundError, version

                ver = version(name)
            except (PackageNotFoundError, ValueError):
                ver = None
        _pkg_versions[name] = ver
    return _pkg_versions[name]


def cycle_error(t: type, path: str = "root") -> EncodeError:
    """The error for an object met again while the immutable object around it is built."""
    return EncodeError(
        f"it refers back to an enclosing {t.__name__}, and a cycle through an immutable "
        "object cannot be restored: make the outer container a list",
        path,
    )


class Encoder:
    """One walk of an object graph into a node tree, writing blobs as it goes."""

    def __init__(self, writer: ContainerWriter | None, deterministic: bool = False) -> None:
        self.writer = writer
        self.deterministic = deterministic
        self.memo: dict[int, int] = {}
        self.keep: list[Any] = []
        self.building: set[int] = set()
        self.count = 0
        self.refs = 0
        self.depth = 0
        self.needs: set[str] = set()
        self.types: set[str] = set()
        self.packages: set[str] = set()
        self.registry = REGISTRY
        #: per-walk state for handlers (e.g. one canonical object per shared storage)
        self.scratch: dict[Any, Any] = {}

    # -- the EncodeContext protocol ---------------------------------------------------
    def add_blob(self, data: memoryview, filt: Any = None) -> int:
        if self.writer is None:
            raise EncodeError("binary buffers cannot be saved here")
        return self.writer.add_blob(data, filt)

    def need(self, name: str) -> None:
        self.needs.add(name)

    def note_package(self, name: str) -> None:
        self.packages.add(name)

    def encode_attrs(self, state: dict[str, Any]) -> dict[str, Any]:
        """Encode an object's attribute dict (str keys) into a map of nodes; a failure
        names the attribute (``.coef_``). Plain values pass through as they are."""
        out = {}
        node, tup = self._node, self._tuple
        for k, v in state.items():
            t = type(v)
            if t is str or t is float or t is bool or v is None or t is bytes or (t is int and _INT_MIN <= v <= _INT_MAX):
                out[k] = v
                continue
            try:
                out[k] = tup(v) if t is tuple else node(v, t)
            except AmberError as exc:
                _add_part(exc, "." + k)
                raise
        return out

    def encode_before(self, owner: Any, obj: Any, at: Any = None) -> Any:
        """Encode ``obj``, which must be rebuilt before ``owner`` exists (its constructor
        arguments): a reference back to ``owner`` from inside it is refused as a cycle."""
        i = id(owner)
        if i in self.building:
            return self.encode(obj, at)
        self.building.add(i)
        try:
            return self.encode(obj, at)
        finally:
            self.building.discard(i)

    def encode(self, obj: Any, at: Any = None) -> Any:
        t = type(obj)
        if t is str or t is float or t is bool or obj is None or t is bytes:
            return obj
        if t is int and _INT_MIN <= obj <= _INT_MAX:
            return obj
        try:
            if t is tuple:
                return self._tuple(obj)
            return self._node(obj, t)
        except AmberError as exc:
            if at is not None:
                _add_part(exc, at)
            raise

    def _enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.depth -= 1
            raise NestingError(f"the structure is nested more than {MAX_DEPTH} levels deep")

    def _leave(self, node: Any) -> Any:
        if self.depth % SEGMENT == 0:
            try:
                node = [TAG_SEG, msgpack.packb(node, use_bin_type=True)]
            except (ValueError, TypeError, OverflowError) as exc:
                self.depth -= 1
                raise EncodeError(f"the node tree cannot be packed: {exc}") from None
        self.depth -= 1
        return node

    def _tuple(self, obj: tuple[Any, ...]) -> Any:
        """A tuple of plain scalars is its own node: a plain array, stored by value and not
        numbered (it cannot hold anything shared). Any other tuple is a numbered
        ``[tuple, items...]`` node, so a tuple shared by many parents is stored once."""
        for v in obj:
            t = type(v)
            if t is str or t is float or t is bool or v is None or t is bytes:
                continue
            if t is int and _INT_MIN <= v <= _INT_MAX:
                continue
            break
        else:
            if not (obj and type(obj[0]) is bytes):
                return obj
        return self._node(obj, tuple)

    def _tuple_items(self, obj: tuple[Any, ...]) -> list[Any]:
        self.types.add("tuple")
        return [TAG_TUPLE, *(self._items(obj) or obj)]

    def _items(self, items: Any, at: Callable[[int], Any] | None = None) -> list[Any] | None:
        """Encode the items that are not plain; None when every item is plain (nothing
        changes), else a new list of nodes. ``at(j)`` names item ``j`` in error paths."""
        out = None
        tup, node = self._tuple, self._node
        for j, v in enumerate(items):
            t = type(v)
            if t is str or t is float or t is bool or v is None or t is bytes:
                continue
            if t is int and _INT_MIN <= v <= _INT_MAX:
                continue
            try:
                ev = tup(v) if t is tuple else node(v, t)
            except AmberError as exc:
                _add_part(exc, j if at is None else at(j))
                raise
            if ev is not v:
                if out is None:
                    out = list(items)
                out[j] = ev
        return out

    def _node(self, obj: Any, t: type) -> list[Any]:
        """A numbered object: list, dict or handled type (or a reference to one)."""
        i = id(obj)
        m = self.memo.get(i)
        if m is not None:
            if i in self.building:
                raise cycle_error(t)
            self.refs += 1
            return [TAG_REF, m]
        self.memo[i] = self.count
        self.count += 1
        self.keep.append(obj)
        self._enter()
        try:
            if t is list:
                node = self._list(obj)
            elif t is dict:
                node = self._dict(obj)
            elif t is tuple:
                self.building.add(i)  # a tuple exists only once its items do
                try:
                    node = self._tuple_items(obj)
                finally:
                    self.building.discard(i)
            else:
                node = self._handled(obj, t, i)
        except BaseException:
            self.depth -= 1
            raise
        return self._leave(node)

    def _list(self, obj: list[Any]) -> list[Any]:
        out = self._items(obj)
        return [TAG_PLAIN_LIST, *obj] if out is None else [TAG_LIST, *out]

    def _dict(self, obj: dict[Any, Any]) -> list[Any]:
        """``[map.plain, keys, values]`` when every key and value is plain, else
        ``[map, keys, values]`` with the keys (first) and values encoded as nodes.
        Keys and values go in two arrays rather than a msgpack map: msgpack interns map
        keys, which made loading a large dict twice as slow."""
        keys = list(obj)
        values = list(obj.values())
        ek = self._items(keys, lambda j: f"<key {keys[j]!r:.40}>")
        ev = self._items(values, lambda j: keys[j])
        if ek is None and ev is None:
            return [TAG_PLAIN_MAP, keys, values]
        return [TAG_MAP, keys if ek is None else ek, values if ev is None else ev]

    def _handled(self, obj: Any, t: type, i: int, h: Handler | None = None) -> Any:
        if h is None:
            h = self.registry.for_type(t)
            if h is None:
                h = self.registry.by_tag[("int", 1)] if t is int else self.registry.fallback(t)
        self.types.add(h.handler_id)
        if h.binds:
            node = h.encode(obj, self)
            if node[0] is not h.tag:  # a generic reduction may write another node type
                self.types.add(parse_tag(node[0]).name)
            return node
        self.building.add(i)
        try:
            return h.encode(obj, self)
        finally:
            self.building.discard(i)


class PathEncoder(Encoder):
    """The encoder with a stack of where it is (``root.steps[0][1].func``), for the walks
    that must name places as they go: ``explain`` and pickle islands. Slower than the
    plain encoder, which names places only when an error unwinds."""

    def __init__(self, writer: ContainerWriter | None, deterministic: bool = False) -> None:
        super().__init__(writer, deterministic)
        self.path: list[str] = ["root"]

    def encode(self, obj: Any, at: Any = None) -> Any:
        if at is None:
            return super().encode(obj)
        self.path.append(_part(at))
        try:
            return super().encode(obj, at)
        finally:
            self.path.pop()

    def encode_attrs(self, state: dict[str, Any]) -> dict[str, Any]:
        return {k: self.encode(v, "." + k) for k, v in state.items()}

    def _items(self, items: Any, at: Callable[[int], Any] | None = None) -> list[Any] | None:
        return [self.encode(v, j if at is None else at(j)) for j, v in enumerate(items)]


class IslandEncoder(PathEncoder):
    """``dump(..., allow_pickle=True)``: a part that cannot be saved natively (and only
    that part) becomes a pickle island; everything around it stays native."""

    def __init__(self, writer: ContainerWriter | None, deterministic: bool = False) -> None:
        super().__init__(writer, deterministic)
        self.islands: list[dict[str, str]] = []

    def _handled(self, obj: Any, t: type, i: int, h: Handler | None = None) -> Any:
        if h is not None:
            return super()._handled(obj, t, i, h)
        count, needs, path = self.count, set(self.needs), list(self.path)
        try:
            return super()._handled(obj, t, i)
        except UnsupportedTypeError as exc:
            # forget what the failed attempt numbered inside, so references stay in step
            if self.count != count:
                for key in [k for k, slot in self.memo.items() if slot >= count]:
                    del self.memo[key]
                self.count = count
            self.needs = needs
            self.path = path
            from amber.handlers._island import ISLAND

            self.islands.append(
                {"path": "".join(path), "type": f"{t.__module__}.{t.__qualname__}", "reason": exc.reason}
            )
            return super()._handled(obj, t, i, ISLAND)


_STRUCTURAL = frozenset({"map", "map.plain", "list", "list.plain", "tuple", "ref", "seg"})


def unpack_tree(data: Any) -> Any:
    """Decode a packed node tree (arrays become tuples; no extension types allowed)."""
    try:
        return msgpack.unpackb(data, raw=False, use_list=False, ext_hook=ext_hook, strict_map_key=True)
    except CorruptFileError:
        raise
    except Exception as exc:
        raise CorruptFileError(f"the node tree cannot be decoded: {exc}") from None


class Decoder:
    """Rebuild objects from a node tree; blobs come from a ContainerReader.

    Only tagged nodes need work: a plain tuple or scalar is already the final value, and a
    ``list.plain``/``map.plain`` node holds nothing but such values, so it is not scanned.
    """

    def __init__(
        self,
        reader: ContainerReader | None,
        trusted: Iterable[str] = (),
        needs: Iterable[str] = (),
        mmap: bool = False,
        lazy: bool = False,
        inplace: bool = True,
        refs: bool = True,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.reader = reader
        #: load options handlers act on, e.g. ``map_location`` for tensors
        self.options: dict[str, Any] = options or {}
        self.refs = refs
        self.used_blobs: set[int] = set()
        self._handlers = 0
        self._segs = 0
        self.trusted = tuple(trusted)
        self.needs = frozenset(needs)
        self.mmap = mmap
        self.lazy = False
        self._lazy_wanted = lazy
        self.inplace = inplace
        self.memo: list[Any] = []
        self._slot = -1
        self.depth = 0
        self.registry = REGISTRY
        #: per-load state for handlers
        self.scratch: dict[Any, Any] = {}
        self._resolved: dict[str, Any] = {}
        #: raw tag -> (handler, its name), for the tags of handlers met so far
        self._handler_of: dict[bytes, tuple[Handler, str]] = {}

    # -- the DecodeContext protocol ---------------------------------------------------
    def bind(self, obj: Any) -> None:
        if self._slot >= 0:
            self.memo[self._slot] = obj

    def resolve(self, name: str) -> Any:
        obj = self._resolved.get(name, _PENDING)
        if obj is _PENDING:
            if name not in self.needs:
                raise CorruptFileError(
                    f"the node tree imports {name!r}, which the manifest does not declare; refusing"
                )
            obj = self._resolved[name] = _resolve(name, self.trusted)
        return obj

    def decode_attrs(self, attrs: dict[Any, Any]) -> dict[Any, Any]:
        """Decode a map of attribute name -> node (see ``Encoder.encode_attrs``)."""
        out = {}
        dec = self.decode
        for k, v in attrs.items():
            if type(v) is tuple:
                out[k] = dec(v, "." + k if type(k) is str else k) if v and type(v[0]) is bytes else v
            elif type(v) is dict:
                raise CorruptFileError("a bare map stands where a node belongs")
            else:
                out[k] = v
        return out

    def caller_trusts(self, name: str) -> bool:
        """Did the caller itself trust ``name`` (``trusted=`` or ``amber.trust``), beyond
        the defaults?"""
        return _caller_trusts(name, self.trusted)

    def _blobs(self) -> ContainerReader:
        if self.reader is None:
            raise CorruptFileError("a node refers to a blob, but there is no blob section")
        return self.reader

    def blob_nbytes(self, ref: Any) -> int:
        return self._blobs().blob(ref).nbytes

    def _claim(self, ref: Any) -> int:
        """The blob's index, once: a blob may back only one node."""
        index = self._blobs().blob(ref).index
        if index in self.used_blobs:
            raise CorruptFileError(f"blob {ref} is used by two nodes; a shared array is stored once and referenced")
        self.used_blobs.add(index)
        return index

    def blob(self, ref: Any, writable: bool = False, alloc: Any = None, data_only: bool = False) -> Any:
        index = self._claim(ref)
        if self.mmap:
            view = self._blobs().mapped(index, private=writable)
            if view is not None:
                return view
        return self._blobs().read(index, alloc, late_check=data_only)

    def lazy_array(self, ref: Any, dtype: Any, shape: tuple[int, ...], order: str) -> Any:
        from amber._lazy import LazyArray

        return LazyArray(self._blobs(), self._claim(ref), dtype, shape, order)

    def decode(self, node: Any, at: Any = None) -> Any:
        t = type(node)
        if t is tuple:
            if node and type(node[0]) is bytes:
                self.depth += 1
                try:
                    if self.depth > MAX_DEPTH + 2 * SEGMENT:
                        raise CorruptFileError(f"the node tree is nested more than {MAX_DEPTH} levels deep")
                    return self._tagged(node)
                except AmberError as exc:
                    if at is not None:
                        _add_part(exc, at)
                    raise
                finally:
                    self.depth -= 1
            return node
        if t is dict:
            raise CorruptFileError("a bare map stands where a node belongs")
        return node

    def _items(self, items: list[Any], names: Any = None) -> list[Any]:
        """Decode the tagged nodes among ``items`` in place; ``names[j]`` (default ``j``)
        names item ``j`` in error paths."""
        dec = self.decode
        lazy = self._lazy_wanted and not self._handlers
        for j, v in enumerate(items):
            if type(v) is tuple and v and type(v[0]) is bytes:
                self.lazy = lazy
                items[j] = dec(v, j if names is None else names[j])
            elif type(v) is dict:
                raise CorruptFileError("a bare map stands where a node belongs")
        return items

    def _number(self, obj: Any) -> Any:
        self.memo.append(obj)
        return obj

    def _tagged(self, node: tuple[Any, ...]) -> Any:
        known = self._handler_of.get(node[0])
        if known is not None:  # a handler's tag met before in this load
            return self._by_handler(node, *known)
        tg = parse_tag(node[0])
        name = tg.name
        if tg.version != 1 and name in _STRUCTURAL:
            raise FormatError(f"unknown node type {name}@{tg.version}: the file was written by a newer amber")
        if name == "map.plain" or name == "map":
            if len(node) != 3 or type(node[1]) is not tuple or type(node[2]) is not tuple or len(node[1]) != len(node[2]):
                raise CorruptFileError("malformed map node: keys and values must be two arrays of equal length")
            keys, values = node[1], node[2]
            if name == "map.plain":
                try:
                    return self._number(dict(zip(keys, values)))
                except TypeError:
                    raise CorruptFileError("a map node has an unhashable key") from None
            d: dict[Any, Any] = self._number({})
            keys = self._items(list(keys))
            values = self._items(list(values), keys)
            try:
                d.update(zip(keys, values))
            except TypeError:
                raise CorruptFileError("a map node has an unhashable key") from None
            return d
        if name == "list.plain":
            return self._number(list(node[1:]))
        if name == "list":
            return self._items(self._number(list(node[1:])))
        if name == "tuple":
            slot = len(self.memo)
            self.memo.append(_PENDING)
            obj = tuple(self._items(list(node[1:])))
            self.memo[slot] = obj
            return obj
        if name == "ref":
            if not self.refs:
                raise CorruptFileError("the manifest declares no shared references, but the tree has one")
            if len(node) != 2 or type(node[1]) is not int or not 0 <= node[1] < len(self.memo):
                raise CorruptFileError(f"reference {node[1:]!r:.40} points at no earlier object")
            obj = self.memo[node[1]]
            if obj is _PENDING:
                raise CorruptFileError("a reference points into an object that is still being built")
            return obj
        if name == "seg":
            if len(node) != 2 or type(node[1]) is not bytes:
                raise CorruptFileError("malformed segment node")
            self._segs += 1  # every segment holds the bytes of all inside it: bound the chain
            try:
                if self._segs > MAX_DEPTH // SEGMENT + 2:
                    raise CorruptFileError(f"segments are nested more than {MAX_DEPTH // SEGMENT + 2} deep")
                return self.decode(unpack_tree(node[1]))
            finally:
                self._segs -= 1
        h = self.registry.for_tag(name, tg.version)
        if h is None:
            raise FormatError(
                f"unknown node type {name!r} (version {tg.version}): the file was written by a newer "
                "amber or needs a handler plugin that is not installed"
            )
        if len(self._handler_of) < 1024:  # (bounded: a hostile file may spell tags many ways)
            self._handler_of[node[0]] = (h, name)
        return self._by_handler(node, h, name)

    def _by_handler(self, node: tuple[Any, ...], h: Handler, name: str) -> Any:
        """The object handler ``h`` (of tag ``name``) rebuilds from ``node``."""
        lazy, self.lazy = self.lazy, False
        if name == "numpy.ndarray":
            self.lazy = lazy
        slot = len(self.memo)
        self.memo.append(_PENDING)
        prev, self._slot = self._slot, slot
        self._handlers += 1  # below a handler, arrays are always complete, real arrays
        try:
            obj = h.decode(node, self)
        except AmberError:
            raise
        except (IndexError, KeyError, TypeError, ValueError, AttributeError, OverflowError, RuntimeWarning) as exc:
            # (a RuntimeWarning raised: NumPy's "invalid value in cast" where warnings are errors)
            raise CorruptFileError(f"malformed {name} node: {exc}") from None
        finally:
            self._handlers -= 1
            self._slot = prev
            self.lazy = False
        self.memo[slot] = obj
        return obj


_ENV = {
    "python": platform.python_version(),
    "implementation": sys.implementation.name,
    "platform": f"{sys.platform}-{platform.machine()}",
    "byteorder": sys.byteorder,
}


_stamp: list[Any] = [None, ""]


def _created_now() -> str:
    """The current UTC time to the second in ISO 8601, formatted once a second."""
    now = int(_time.time())
    if _stamp[0] != now:
        _stamp[1] = _dt.datetime.fromtimestamp(now, _dt.timezone.utc).isoformat(timespec="seconds")
        _stamp[0] = now
    return _stamp[1]


def _environment(packages: Iterable[str]) -> dict[str, Any]:
    return {**_ENV, "packages": {p: package_version(p) for p in sorted(packages)}}


def encode_to(
    fh: BinaryIO,
    obj: Any,
    *,
    codec: Codec | None = None,
    metadata: Any = None,
    deterministic: bool = False,
    filters: bool = True,
    allow_pickle: bool = False,
    converted_from: dict[str, Any] | None = None,
) -> int:
    """Write ``obj`` as a native amber file to ``fh``; return the number of bytes written.
    ``allow_pickle``: store the parts only pickle can hold as pickle islands."""
    if metadata is not None:
        _json_safe(metadata, "metadata")
    writer = ContainerWriter(fh, codec, filters=filters)
    enc = IslandEncoder(writer, deterministic) if allow_pickle else Encoder(writer, deterministic)
    try:
        with _deep_recursion():
            root = enc.encode(obj)
        manifest: dict[str, Any] = {
            "format": "amber",
            "amber": __version__,
        }
        if not deterministic:
            manifest["created"] = _created_now()
        manifest["env"] = _environment(enc.packages)
        manifest["metadata"] = metadata
        manifest["types"] = sorted(enc.types)
        manifest["needs"] = sorted(enc.needs)
        manifest["refs"] = enc.refs
        if isinstance(enc, IslandEncoder) and enc.islands:
            manifest["islands"] = enc.islands
        if converted_from is not None:
            manifest["converted_from"] = converted_from
        try:  # msgpack limits (sizes, depth) surface here
            manifest["tree"] = msgpack.packb(root, use_bin_type=True)
            return writer.finish(manifest)
        except (ValueError, TypeError, OverflowError) as exc:
            raise EncodeError(f"the node tree cannot be packed: {exc}") from None
    except AmberError as exc:
        writer.abort()
        _finish_path(exc)
        raise
    except BaseException:
        writer.abort()
        raise


def tree_of(reader: ContainerReader, cached: bool = False) -> Any:
    """The decoded node tree of a file; ``cached`` keeps one shared copy on the reader
    (for readers that never modify it: lazy access and inspect)."""
    tree = getattr(reader, "_tree", None) if cached else None
    if tree is None:
        raw = reader.manifest.get("tree")
        if type(raw) is not bytes:
            raise FormatError(f"{reader.name}: the manifest has no node tree")
        tree = unpack_tree(raw)
        if cached:
            reader._tree = tree  # type: ignore[attr-defined]
    return tree


def check_trust(manifest: dict[str, Any], trusted: Iterable[str], name: str) -> list[str]:
    needs = manifest.get("needs") or []
    if needs == []:  # (most files: nothing to import)
        return needs
    if not isinstance(needs, list) or not all(type(n) is str for n in needs):
        raise FormatError(f"{name}: the manifest's list of needed names is malformed")
    bad = _untrusted(needs, trusted)
    if bad:
        raise UntrustedTypeError(bad, where=f"{name}: ", denied=[n for n in bad if is_denied(n)])
    return needs


def check_islands(manifest: dict[str, Any], allow: bool, name: str) -> None:
    """Refuse a file with pickle islands unless the caller allows them (listing each)."""
    islands = manifest.get("islands")
    if not islands:
        return
    if not isinstance(islands, list) or not all(
        isinstance(i, dict) and type(i.get("path")) is str and type(i.get("type")) is str for i in islands
    ):
        raise FormatError(f"{name}: the manifest's list of pickle islands is malformed")
    if not allow:
        raise PickleIslandError([(i["path"], i["type"]) for i in islands], where=f"{name}: ")


def check_versions(manifest: dict[str, Any], name: str) -> None:
    """Warn when a package's major.minor differs from the one that wrote the file."""
    env = manifest.get("env")
    pkgs = env.get("packages") if isinstance(env, dict) else None
    if not isinstance(pkgs, dict):
        return
    for pkg, written in list(pkgs.items())[:_MAX_PACKAGES]:
        if not isinstance(pkg, str) or not isinstance(written, str):
            continue
        if _versions_match.get((pkg, written)):
            continue
        here = package_version(pkg)
        if here is None:
            continue
        if written.split(".")[:2] == here.split(".")[:2]:
            if len(_versions_match) < 4096:
                _versions_match[(pkg, written)] = True
        else:
            warnings.warn(
                f"{name} was written with {pkg} {written}; this environment has {pkg} {here}. "
                "Check that the loaded objects behave as expected.",
                VersionMismatchWarning,
                stacklevel=4,
            )


def decode_from(
    reader: ContainerReader,
    *,
    trusted: Iterable[str] = (),
    mmap: bool = False,
    options: dict[str, Any] | None = None,
) -> Any:
    """Audit the manifest against the trust list, then rebuild the root object."""
    manifest = reader.manifest
    trusted = tuple(trusted)
    needs = check_trust(manifest, trusted, reader.name)
    check_islands(manifest, bool(options and options.get("allow_pickle")), reader.name)
    check_versions(manifest, reader.name)
    if options and options.get("allow_pickle") and not manifest.get("islands"):
        options = {**options, "allow_pickle": False}  # a pickle node the manifest does not list is refused
    dec = Decoder(reader, trusted, needs, mmap=mmap, refs=bool(manifest.get("refs")), options=options)
    reader.readahead = True
    try:
        try:
            with _deep_recursion():
                obj = dec.decode(tree_of(reader))
        except AmberError:
            reader.settle()  # damaged bytes read unchecked may be what failed: say so
            raise
        reader.settle()  # checksums of data-only blobs handed out before they were known
        return obj
    except AmberError as exc:
        _finish_path(exc)
        if isinstance(exc, DecodeError) and reader.name not in str(exc):
            exc.args = (f"{reader.name}: {exc.args[0] if exc.args else exc}",)
        raise
