"""HDF5 files (``.h5``/``.hdf5``) through h5py, laid out so plain h5py reads them naturally.

The layout (docs/hdf5.md is the full spec): the file's root group holds the object. A dict
with str keys that are valid HDF5 names becomes a group (creation order tracked, so key
order survives); a list or tuple becomes a group with ``amber.kind`` = ``"list"``/``"tuple"``
and members ``"0"``, ``"1"``, ...; a NumPy array becomes a dataset of its own dtype and
shape; Python scalars, short strings and bytes become attributes of the parent group (with
``amber.scalars`` recording the Python type where h5py would give a NumPy one); a non-empty
list of only ints, floats, bools or strs becomes one 1-d dataset; anything else (and any
dict whose keys HDF5 cannot name) becomes an *amber node*: a uint8 dataset holding a native
amber file of that value, which is decoded under the caller's trust list.

Files other tools wrote (no ``amber.format`` attribute on the root) load read-only as
nested dicts of arrays. Nothing is ever unpickled (hickle's pickled ``type`` attributes are
left alone), external links, external raw storage and virtual datasets are refused (they
would make HDF5 open other files), and h5py's own exceptions never escape: a malformed
file raises a :class:`~amber.errors.FormatError` naming the file and the HDF5 path.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from amber.container._codecs import split_compress
from amber._version import __version__
from amber.errors import AmberError, EncodeError, FormatError, StorageError

if TYPE_CHECKING:
    from amber._inspect import Info
    from amber.formats._hdf5_open import H5File

__all__ = [
    "FORMAT_NAME",
    "HDF5_MAGIC",
    "LAYOUT_VERSION",
    "describe_hdf5",
    "dump_hdf5",
    "load_hdf5",
    "looks_like_hdf5",
    "open_hdf5",
]

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
#: The value of the root's ``amber.format`` attribute.
FORMAT_NAME = "amber-hdf5"
#: Version of the layout this module writes (``amber.version``); it reads 1.x.
LAYOUT_VERSION = (1, 0)

# attribute names (all of amber's own attributes start with "amber.")
A_FORMAT = "amber.format"
A_VERSION = "amber.version"
A_AMBER = "amber.amber_version"
A_ENV = "amber.env"
A_META = "amber.metadata"
A_KIND = "amber.kind"
A_LEN = "amber.len"
A_SCALARS = "amber.scalars"
A_KEYS = "amber.keys"
A_DTYPE = "amber.dtype"
A_ORDER = "amber.order"
A_ITEM = "amber.item"
A_TYPE = "amber.type"
A_NODES = "amber.nodes"
PREFIX = "amber."

#: Strings and bytes up to this many bytes are attributes; longer ones are datasets.
ATTR_MAX = 8 << 10
#: Arrays up to this many bytes are stored in the dataset's header (HDF5 "compact" layout).
COMPACT_MAX = 8 << 10
#: Arrays smaller than this are not compressed even when ``compress=`` asks.
COMPRESS_MIN = 1 << 10
#: Compressed datasets are cut into chunks of at most about this many bytes...
CHUNK_TARGET = 1 << 20
#: ... and rows (along axis 0) of at least this many bytes are a chunk each.
CHUNK_ROW = 64 << 10
#: Dicts, lists and tuples with more small items than this (scalars, containers of scalars)
#: are stored as one amber node: HDF5 takes about 0.1 ms per attribute, 0.5 ms per group.
MAX_ATTRS = 256
_SCALAR_TYPES = frozenset({bool, int, float, complex, str, bytes})
#: Dicts and lists nested deeper than this many groups are stored as one amber node.
GROUP_DEPTH = 64
#: Groups nested deeper than this in a file are refused (a hostile file cannot recurse forever).
READ_DEPTH = 200
#: Python types of scalar attributes (``amber.scalars`` values).
SCALAR_KINDS = frozenset({"int", "float", "bool", "complex", "none", "bytes"})
ITEM_KINDS = frozenset({"int", "float", "bool", "str"})
#: Group kinds and dataset kinds of the layout.
GROUP_KINDS = frozenset({"dict", "list", "tuple", "value"})
DATASET_KINDS = frozenset({"array", "node", "list", "tuple", "str", "bytes", "bytearray"})
_INT64 = (-(1 << 63), (1 << 63) - 1)
_UINT64_MAX = (1 << 64) - 1
#: HDF5 format versions: objects use the 1.10 format, readable by HDF5 1.10 and later.
LIBVER = ("v110", "v110")


def looks_like_hdf5(head: bytes) -> bool:
    """True when ``head`` (the first bytes of a file) holds the HDF5 signature: at byte 0, or
    after a user block at byte 512, 1024, 2048, ... (as far as ``head`` reaches)."""
    head = bytes(head)
    if head.startswith(HDF5_MAGIC):
        return True
    off = 512
    while off + len(HDF5_MAGIC) <= len(head):
        if head[off : off + len(HDF5_MAGIC)] == HDF5_MAGIC:
            return True
        off *= 2
    return False


def h5py_module() -> Any:
    """h5py, or an ImportError that says how to install it."""
    try:
        import h5py
    except ImportError:
        raise ImportError("HDF5 files need h5py: pip install 'amber[hdf5]'") from None
    return h5py


# ---------------------------------------------------------------------------------------
# compression
# ---------------------------------------------------------------------------------------


def resolve_hdf5_compress(compress: Any) -> tuple[str, int | None] | None:
    """``compress=`` for HDF5 files: None/False (none), True (gzip level 1), ``"gzip"`` or
    ``"zlib"`` (the same deflate filter) with an optional level 0-9 (``"gzip:6"``,
    ``("gzip", 6)``, ``{"name": "gzip", "level": 6}``), or ``"lzf"`` (h5py's fast filter)."""
    if compress is None or compress is False:
        return None
    if compress is True:
        return ("gzip", 1)
    try:
        name, level = split_compress(compress, "'gzip', 'gzip:6' or 'lzf' (HDF5's filters)")
    except ValueError as exc:
        raise FormatError(str(exc)) from None
    if name in ("gzip", "zlib"):
        if level is None:
            level = 4
        if type(level) is not int or not 0 <= level <= 9:
            raise FormatError(f"compress={compress!r}: the gzip level must be an integer 0..9")
        return ("gzip", level)
    if name == "lzf":
        if level is not None:
            raise FormatError("compress='lzf' takes no level")
        return ("lzf", None)
    raise FormatError(
        f"compress={compress!r} is not available for HDF5 files: HDF5 compresses with its built-in "
        "filters, 'gzip' (levels 0-9, True is gzip level 1) or 'lzf'. For zstd, lz4, bz2 or lzma "
        "save to a .amber file instead"
    )


def chunk_shape(shape: tuple[int, ...], itemsize: int, target: int = CHUNK_TARGET) -> tuple[int, ...]:
    """Chunks cut along the first axes, so a slice along axis 0 touches only the chunks of
    the rows it selects: one row per chunk when a row is at least ``CHUNK_ROW`` bytes (an
    image of a stack of images is one chunk), else as many rows as fit in about ``target``
    bytes; a row bigger than ``target`` is cut along the next axes the same way."""
    chunks = [max(1, d) for d in shape]
    for axis in range(len(chunks)):
        rest = max(1, itemsize) * math.prod(chunks[axis + 1 :])
        if rest * chunks[axis] <= target and rest < CHUNK_ROW:
            break
        if rest <= target:
            chunks[axis] = 1 if rest >= CHUNK_ROW else max(1, target // rest)
            break
        chunks[axis] = 1
    return tuple(chunks)


# ---------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------


def _valid_name(key: Any) -> bool:
    """Can ``key`` be an HDF5 link or attribute name that h5py gives back unchanged?"""
    if type(key) is not str or not key or key == "." or "/" in key or "\x00" in key:
        return False
    if key.startswith(PREFIX):
        return False
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text_ok(s: str) -> bool:
    """Can ``s`` be an HDF5 variable-length UTF-8 string (no NUL, no lone surrogate)?"""
    if "\x00" in s:
        return False
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def plain_dtype(dt: np.dtype) -> np.dtype:
    """``dt`` without the metadata h5py attaches (``h5py_encoding`` on byte strings)."""
    if dt.metadata is None and dt.fields is None and dt.subdtype is None:
        return dt
    if dt.fields is not None:
        names = list(dt.names or ())
        return np.dtype(
            {
                "names": names,
                "formats": [plain_dtype(dt.fields[n][0]) for n in names],
                "offsets": [dt.fields[n][1] for n in names],
                "itemsize": dt.itemsize,
            }
        )
    if dt.subdtype is not None:
        base, shape = dt.subdtype
        return np.dtype((plain_dtype(base), shape))
    return np.dtype(dt.str)


def _is_scalar(v: Any) -> bool:
    return type(v) in _SCALAR_TYPES or v is None or isinstance(v, np.generic)


def _attr_heavy(items: Iterable[Any]) -> bool:
    """Does the container hold more than ``MAX_ATTRS`` small things: scalars (each would
    be an attribute) and dicts, lists or tuples of nothing but scalars (each would be a
    group of attributes)? HDF5 takes about 0.1 ms per attribute and 0.5 ms per group, so
    such a container (a big config, a list of records) is one amber node instead. A list
    of arrays, or of records that hold arrays, stays a group of datasets."""
    n = 0
    for v in items:
        t = type(v)
        if _is_scalar(v) or (
            (t is list or t is tuple) and all(_is_scalar(x) for x in v)
        ) or (t is dict and all(_is_scalar(x) for x in v.values())):
            n += 1
            if n > MAX_ATTRS:
                return True
    return False


def _item_kind(items: Any) -> str | None:
    """``"int"``/``"float"``/``"bool"``/``"str"`` when every item of a non-empty list is
    exactly that type (ints within int64, strs storable as HDF5 text), else None."""
    if not items:
        return None
    t = type(items[0])
    if t not in (int, float, bool, str):
        return None
    for v in items:
        if type(v) is not t:
            return None
    if t is int:
        lo, hi = _INT64
        if not all(lo <= v <= hi for v in items):
            return None
    elif t is str and not all(_text_ok(v) for v in items):
        return None
    return t.__name__


def _fixed(text: str) -> np.bytes_:
    """amber's own text attributes are fixed-length UTF-8 strings, stored in the attribute
    itself: reading them never touches HDF5's global heap (where variable-length strings
    live, and where a damaged file can make libhdf5 loop forever)."""
    return np.bytes_(text.encode("utf-8"))


def _child(gpath: str, name: str) -> bytes:
    return f"{gpath.rstrip('/')}/{name}".encode("utf-8")


class _Writer:
    """One walk of the object, writing groups, datasets and attributes as it goes."""

    def __init__(self, h5: Any, compress: tuple[str, int | None] | None) -> None:
        self.h5py = h5py_module()
        self.file = h5
        self.compress = compress
        #: id(obj) -> the HDF5 path it was written to (a second meeting is a hard link to it)
        self.memo: dict[int, Any] = {}
        #: HDF5 paths of the amber nodes (the root's ``amber.nodes``)
        self.nodes: list[str] = []
        self.keep: list[Any] = []
        #: ids of the tuples being written (a cycle through one cannot be restored)
        self.building: set[int] = set()
        self.packages: set[str] = {"numpy"}
        self._tids: dict[np.dtype, Any] = {}
        h5py = self.h5py
        self._lcpl = h5py.h5p.create(h5py.h5p.LINK_CREATE)
        self._lcpl.set_char_encoding(h5py.h5t.CSET_UTF8)
        self._dcpl: dict[str, Any] = {}
        for layout in ("contiguous", "compact"):
            dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
            dcpl.set_obj_track_times(False)
            dcpl.set_layout(h5py.h5d.CONTIGUOUS if layout == "contiguous" else h5py.h5d.COMPACT)
            dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
            self._dcpl[layout] = dcpl

    # -- the walk ------------------------------------------------------------------------
    def root(self, obj: Any) -> None:
        root = self.file
        t = type(obj)
        if t is dict and all(_valid_name(k) for k in obj) and not _attr_heavy(obj.values()):
            self.memo[id(obj)] = b"/"
            self.keep.append(obj)
            self._fill_dict(root, "/", obj, "root", 0)
        elif (t is list or t is tuple) and _item_kind(obj) is None and not _attr_heavy(obj):
            self.memo[id(obj)] = b"/"
            self.keep.append(obj)
            self._fill_list(root, "/", obj, "root", 0)
        else:
            root.attrs[A_KIND] = _fixed("value")
            marks: dict[str, str] = {}
            self.place(root, "/", "value", obj, "root", 1, marks)
            if marks:
                root.attrs[A_SCALARS] = _fixed(json.dumps(marks))

    def place(self, group: Any, gpath: str, name: str, obj: Any, path: str, depth: int, marks: dict[str, str]) -> str:
        """Store ``obj`` as member or attribute ``name`` of ``group`` (at HDF5 path ``gpath``;
        ``path`` names ``obj`` in Python terms for errors); return ``"m"`` for a member,
        ``"a"`` for an attribute."""
        t = type(obj)
        if obj is None:
            group.attrs[name] = self.h5py.Empty("u1")
            marks[name] = "none"
            return "a"
        if t is bool:
            group.attrs[name] = np.bool_(obj)
            marks[name] = "bool"
            return "a"
        if t is int:
            if _INT64[0] <= obj <= _INT64[1]:
                group.attrs[name] = np.int64(obj)
                marks[name] = "int"
                return "a"
            if 0 <= obj <= _UINT64_MAX:
                group.attrs[name] = np.uint64(obj)
                marks[name] = "int"
                return "a"
            return self._node(group, gpath, name, obj, path)
        if t is float:
            group.attrs[name] = np.float64(obj)
            marks[name] = "float"
            return "a"
        if t is complex:
            group.attrs[name] = np.complex128(obj)
            marks[name] = "complex"
            return "a"
        if t is str:
            if not _text_ok(obj):
                return self._node(group, gpath, name, obj, path)
            if len(obj) <= ATTR_MAX // 4 or len(obj.encode("utf-8")) <= ATTR_MAX:
                group.attrs[name] = obj
                return "a"
            ds = group.create_dataset(name, data=obj, dtype=self.h5py.string_dtype("utf-8"), track_times=False)
            ds.attrs[A_KIND] = _fixed("str")
            return "m"
        if t is bytes:
            if len(obj) <= ATTR_MAX:
                group.attrs[name] = np.frombuffer(obj, dtype=np.uint8)
                marks[name] = "bytes"
                return "a"
            self._raw(group, name, np.frombuffer(obj, dtype=np.uint8), {A_KIND: _fixed("bytes")})
            return "m"
        if isinstance(obj, np.generic) and t.__module__ == "numpy" and obj.dtype.kind in "biufc":
            group.attrs[name] = obj
            return "a"

        i = id(obj)
        linked = self.memo.get(i)
        if linked is not None:
            if i in self.building:
                from amber.formats._native import cycle_error

                raise cycle_error(t, path)
            # a hard link: one object in the file, restored as one object
            group.id.links.create_hard(name.encode("utf-8"), self.file.id, linked, lcpl=self._lcpl)
            return "m"
        self.keep.append(obj)
        if t is bytearray:
            self._raw(group, name, np.frombuffer(obj, dtype=np.uint8), {A_KIND: _fixed("bytearray")})
            self.memo[i] = _child(gpath, name)
            return "m"
        if t is np.ndarray:
            if not self._array(group, name, obj, path):
                return self._node(group, gpath, name, obj, path)
            self.memo[i] = _child(gpath, name)
            return "m"
        if (t is dict or t is list or t is tuple) and depth < GROUP_DEPTH:
            if t is dict:
                if not all(_valid_name(k) for k in obj) or _attr_heavy(obj.values()):
                    return self._node(group, gpath, name, obj, path)
                sub = group.create_group(name, track_order=True)
                self.memo[i] = _child(gpath, name)
                self._fill_dict(sub, self.memo[i].decode("utf-8"), obj, path, depth + 1)
                return "m"
            kind = _item_kind(obj)
            if kind is not None:
                self._items(group, name, obj, t.__name__, kind)
                self.memo[i] = _child(gpath, name)
                return "m"
            if _attr_heavy(obj):
                return self._node(group, gpath, name, obj, path)
            sub = group.create_group(name)
            self.memo[i] = _child(gpath, name)
            if t is tuple:
                self.building.add(i)
            try:
                self._fill_list(sub, self.memo[i].decode("utf-8"), obj, path, depth + 1)
            finally:
                self.building.discard(i)
            return "m"
        return self._node(group, gpath, name, obj, path)

    def _fill_dict(self, group: Any, gpath: str, obj: dict[str, Any], path: str, depth: int) -> None:
        marks: dict[str, str] = {}
        pattern = []
        for k, v in obj.items():
            pattern.append(self.place(group, gpath, k, v, f"{path}[{k!r}]", depth, marks))
        keys = "".join(pattern)
        if marks:
            group.attrs[A_SCALARS] = _fixed(json.dumps(marks))
        if "am" in keys:  # attributes and members interleave: record the order of the keys
            group.attrs[A_KEYS] = _fixed(keys)

    def _fill_list(self, group: Any, gpath: str, obj: Any, path: str, depth: int) -> None:
        group.attrs[A_KIND] = _fixed(type(obj).__name__)
        group.attrs[A_LEN] = np.int64(len(obj))
        marks: dict[str, str] = {}
        for j, v in enumerate(obj):
            self.place(group, gpath, str(j), v, f"{path}[{j}]", depth, marks)
        if marks:
            group.attrs[A_SCALARS] = _fixed(json.dumps(marks))

    def _items(self, group: Any, name: str, obj: Any, kind: str, item: str) -> Any:
        """A list of only ints, floats, bools or strs as one 1-d dataset."""
        attrs = {A_KIND: _fixed(kind), A_ITEM: _fixed(item)}
        if item == "str":
            ds = group.create_dataset(name, data=obj, dtype=self.h5py.string_dtype("utf-8"), track_times=False)
            for k, v in attrs.items():
                ds.attrs[k] = v
            return ds.id
        dtype = {"int": np.int64, "float": np.float64, "bool": np.bool_}[item]
        return self._raw(group, name, np.array(obj, dtype=dtype), attrs)

    # -- datasets ------------------------------------------------------------------------
    def _array(self, group: Any, name: str, arr: np.ndarray, path: str) -> bool:
        """Write an array as a dataset of its own dtype; False when HDF5 cannot hold its dtype."""
        dt = arr.dtype
        attrs: dict[str, Any] = {}
        if arr.ndim > 1 and arr.flags.f_contiguous and not arr.flags.c_contiguous:
            attrs[A_ORDER] = _fixed("F")
        kind = dt.kind
        if kind in "mM":
            if dt.fields is not None:
                return False
            attrs[A_DTYPE] = _fixed(dt.str)
            self._raw(group, name, arr.view(dt.str[0] + "i8"), attrs)
            return True
        if kind == "U":
            flat = arr.reshape(-1).tolist()
            if dt.itemsize == 0 or not all(_text_ok(s) for s in flat):
                return False
            attrs[A_DTYPE] = _fixed(dt.str)
            data = np.array(flat, dtype=object).reshape(arr.shape)
            ds = group.create_dataset(name, data=data, dtype=self.h5py.string_dtype("utf-8"), track_times=False)
            for k, v in attrs.items():
                ds.attrs[k] = v
            return True
        if kind not in "biufcSV" or dt.hasobject or dt.itemsize == 0 or not self._storable(dt):
            return False
        self._raw(group, name, arr, attrs)
        return True

    def _storable(self, dt: np.dtype) -> bool:
        """Does HDF5 give back exactly this dtype (byte order, struct layout and all)?"""
        if dt in self._tids:
            return self._tids[dt] is not None
        tid = None
        try:
            if dt.fields is None or not (dt.isalignedstruct or any(len(f) > 2 for f in dt.fields.values())):
                cand = self.h5py.h5t.py_create(dt, logical=True)
                back = plain_dtype(cand.dtype)
                if back == dt and back.str == dt.str and back.descr == dt.descr:
                    tid = cand
        except (TypeError, ValueError):
            tid = None
        if len(self._tids) < 1024:
            self._tids[dt] = tid
        return tid is not None

    def _raw(self, group: Any, name: str, arr: np.ndarray, attrs: dict[str, Any]) -> Any:
        """Write ``arr`` (an array HDF5 holds as it is) as dataset ``name`` of ``group``;
        returns its DatasetID."""
        h5py = self.h5py
        self._storable(arr.dtype)
        tid = self._tids.get(arr.dtype)
        if tid is None:
            tid = h5py.h5t.py_create(arr.dtype, logical=True)
        nbytes = arr.nbytes
        comp = self.compress if nbytes >= COMPRESS_MIN and arr.ndim else None
        if comp is not None:
            dsid = group.create_dataset(
                name,
                data=arr if arr.flags.c_contiguous else arr.copy(order="C"),
                chunks=chunk_shape(arr.shape, arr.dtype.itemsize),
                compression=comp[0],
                compression_opts=comp[1],
                shuffle=arr.dtype.itemsize > 1 and arr.dtype.kind in "iufcmM",
                track_times=False,
            ).id
        else:
            space = h5py.h5s.create_simple(arr.shape) if arr.ndim else h5py.h5s.create(h5py.h5s.SCALAR)
            dcpl = self._dcpl["compact" if 0 < nbytes <= COMPACT_MAX else "contiguous"]
            dsid = h5py.h5d.create(group.id, name.encode("utf-8"), tid, space, dcpl=dcpl, lcpl=self._lcpl)
            if nbytes:
                data = arr if arr.flags.c_contiguous else arr.copy(order="C")
                dsid.write(h5py.h5s.ALL, h5py.h5s.ALL, data, mtype=tid)
        if attrs:
            ds = h5py.Dataset(dsid)
            for k, v in attrs.items():
                ds.attrs[k] = v
        return dsid

    def _node(self, group: Any, gpath: str, name: str, obj: Any, path: str) -> str:
        """``obj`` as an amber node: a uint8 dataset holding a native amber file of it."""
        from amber.container._io import BytesSource
        from amber.container._reader import ContainerReader
        from amber.formats._native import encode_to

        buf = io.BytesIO()
        try:
            encode_to(buf, obj, deterministic=True)
        except EncodeError as exc:
            exc.path = path + exc.path[4:] if exc.path.startswith("root") else path
            raise
        view = buf.getbuffer()
        try:
            manifest = ContainerReader(BytesSource(view)).manifest
            env = manifest.get("env") or {}
            self.packages.update(env.get("packages") or {})
            t = type(obj)
            dsid = self._raw(
                group, name, np.frombuffer(view, dtype=np.uint8), {A_KIND: _fixed("node"), A_TYPE: _fixed(f"{t.__module__}.{t.__qualname__}")}
            )
        finally:
            view.release()
        self.nodes.append(_child(gpath, name).decode("utf-8"))
        if type(obj) not in (str, int):  # the same object again becomes a link to this node
            self.memo[id(obj)] = _child(gpath, name)
            self.keep.append(obj)
        return "m"


def _env(packages: Iterable[str]) -> dict[str, Any]:
    from amber.formats._native import _environment

    return _environment(set(packages) | {"h5py"})


def _create(folder: str, base: str, obj: Any, target: str) -> tuple[str, Any]:
    """A new HDF5 file under a fresh temporary name in ``folder``: (its path, the open file).

    h5py creates it exclusively ("w-"); it is never created empty first and truncated, since
    on ext4 a file truncated to zero is written back on close (about 0.1 s for 230 MB)."""
    h5py = h5py_module()
    for _ in range(100):
        tmp = os.path.join(folder, f".{base}.{os.urandom(6).hex()}.amber-tmp")
        try:
            # the root keeps creation order only when it is a dict (its keys' order)
            return tmp, h5py.File(tmp, "w-", libver=LIBVER, track_order=type(obj) is dict)
        except FileExistsError:
            continue
        except OSError as exc:
            raise StorageError(f"cannot write {target}: {exc.strerror or exc}") from None
    raise StorageError(f"cannot create a temporary file beside {target}")  # pragma: no cover


def _write_file(
    folder: str, base: str, target: str, obj: Any, compress: tuple[str, int | None] | None, metadata: Any
) -> str:
    """Write the HDF5 file under a temporary name in ``folder``; return its path. On any
    failure the temporary file is removed."""
    if metadata is not None:
        from amber.formats._native import _json_safe

        _json_safe(metadata, "metadata")
    tmp, h5 = _create(folder, base, obj, target)
    try:
        try:
            w = _Writer(h5, compress)
            root = h5
            root.attrs[A_FORMAT] = _fixed(FORMAT_NAME)
            root.attrs[A_VERSION] = _fixed(f"{LAYOUT_VERSION[0]}.{LAYOUT_VERSION[1]}")
            root.attrs[A_AMBER] = _fixed(__version__)
            w.root(obj)
            root.attrs[A_ENV] = _fixed(json.dumps(_env(w.packages), sort_keys=True))
            root.attrs[A_NODES] = _fixed(json.dumps(w.nodes))
            if metadata is not None:
                root.attrs[A_META] = _fixed(json.dumps(metadata))
        except (OSError, ValueError, TypeError, RuntimeError, KeyError) as exc:
            if isinstance(exc, AmberError):
                raise
            raise StorageError(f"writing HDF5 file {target} failed: {type(exc).__name__}: {exc}") from exc
        finally:
            try:
                h5.close()
            except (OSError, RuntimeError) as exc:
                raise StorageError(f"writing HDF5 file {target} failed: {exc}") from exc
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return tmp


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def dump_hdf5(obj: Any, target: Any, *, compress: Any = None, metadata: Any = None, durable: bool = False) -> None:
    """Save ``obj`` as an HDF5 file at ``target``: a path (written atomically: a temporary
    file beside it, renamed over it when complete), an fsspec URL or a binary file object
    (both written through a local temporary file, then copied).

    Args:
        compress: None (default), True (gzip level 1), ``"gzip"``/``"zlib"`` with an optional
            level 0-9 (``"gzip:6"``, ``("gzip", 6)``) or ``"lzf"``; applied to datasets of at
            least 1 KiB, which are then chunked (about 1 MiB per chunk, cut along axis 0).
        metadata: any JSON-like value, stored as JSON text in the root's ``amber.metadata``.
        durable: fsync the file (and its folder) before returning.
    """
    from amber.container._io import is_url, open_sink

    comp = resolve_hdf5_compress(compress)
    if isinstance(target, str) and target.startswith("file://"):
        target = target[len("file://") :]
    if isinstance(target, (str, os.PathLike)) and not is_url(target):
        path = os.fspath(target)
        folder = os.path.dirname(os.path.abspath(path))
        tmp = _write_file(folder, os.path.basename(path), path, obj, comp, metadata)
        try:
            if durable:
                _fsync(tmp)
            os.replace(tmp, path)
        except BaseException as exc:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            if isinstance(exc, OSError) and not isinstance(exc, AmberError):
                raise StorageError(f"cannot finish writing {path}: {exc.strerror or exc}") from exc
            raise
        if durable:
            _fsync(folder)
        return
    if not is_url(target) and not hasattr(target, "write"):
        raise TypeError(
            f"cannot write to {type(target).__name__}: pass a path, an fsspec URL, or a binary file object"
        )
    # h5py writes through Python file objects slowly: write a local file, then copy it
    name = str(target) if is_url(target) else str(getattr(target, "name", "<file object>"))
    tmp = _write_file(tempfile.gettempdir(), "amber.h5", name, obj, comp, metadata)
    try:
        sink = open_sink(target, durable=durable)
        try:
            with open(tmp, "rb") as fh:
                shutil.copyfileobj(fh, sink.fh, 4 << 20)
            sink.commit()
        except BaseException:
            sink.discard()
            raise
    finally:
        os.unlink(tmp)


# ---------------------------------------------------------------------------------------
# reading (amber.formats._hdf5_read) and lazy access (amber.formats._hdf5_open)
# ---------------------------------------------------------------------------------------


def load_hdf5(
    source: Any,
    *,
    name: str,
    trusted: tuple[str, ...] = (),
    mmap: bool = False,
    options: dict[str, Any] | None = None,
) -> tuple[Any, Any]:
    """Load an HDF5 file; returns ``(object, metadata)`` (metadata None for other tools' files).

    ``source``: a local path, a Source, or a binary file object. amber's own files rebuild
    the saved object (the types of every amber node are checked against the trust list
    before any is decoded); other files load as nested dicts of NumPy arrays. ``mmap``:
    arrays in contiguous, uncompressed datasets of a local file are read-only views of the
    mapped file.
    """
    from amber.formats._hdf5_read import load

    return load(source, name=name, trusted=tuple(trusted), mmap=mmap, options=options)


def open_hdf5(source: Any, *, name: str, trusted: tuple[str, ...] = ()) -> H5File:
    """Open an HDF5 file lazily: ``f.info``, ``f.metadata``, ``f.keys()``, ``f["a"]["b"][:8]``,
    ``f["a/b"]``, ``.attrs``, ``.read()``, ``close()`` (see :class:`~amber.formats._hdf5_open.H5File`).
    The types of every amber node are checked against the trust list when it opens."""
    from amber.formats._hdf5_open import H5File

    return H5File.open(source, name=name, trusted=trusted)


def describe_hdf5(source: Any, *, name: str, size: int) -> Info:
    """What ``amber inspect`` shows for an HDF5 file: amber's attributes when present and a
    tree of groups and datasets (dtype, shape, chunks, compression). Nothing is imported."""
    from amber.formats._hdf5_open import describe

    return describe(source, name=name, size=size)
