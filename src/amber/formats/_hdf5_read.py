"""Reading HDF5 files: amber's layout back into objects, other tools' files into dicts of arrays.

The walk works on h5py's low-level ids (one link iteration per group, ``h5o.open`` by name,
``DatasetID.read`` into a preallocated array), which is what makes loading a thousand
datasets as fast as the hand-written h5py loop. Links are followed only inside the file:
an external link, or a soft link whose path runs through one, is refused before HDF5
would open another file; so are datasets whose data lives in other files (external raw
storage, virtual datasets). Every h5py error becomes a CorruptFileError naming the file
and the HDF5 path.
"""

from __future__ import annotations

import errno
import json
import math
import os
from collections.abc import Iterable
from typing import Any

import numpy as np

from amber.errors import AmberError, CorruptFileError, FormatError, StorageError, UntrustedTypeError, VersionError
from amber.formats._hdf5 import (
    A_AMBER,
    A_DTYPE,
    A_ENV,
    A_FORMAT,
    A_ITEM,
    A_KEYS,
    A_KIND,
    A_LEN,
    A_META,
    A_NODES,
    A_ORDER,
    A_SCALARS,
    A_VERSION,
    DATASET_KINDS,
    FORMAT_NAME,
    GROUP_KINDS,
    LAYOUT_VERSION,
    PREFIX,
    READ_DEPTH,
    SCALAR_KINDS,
    ITEM_KINDS,
    h5py_module,
    plain_dtype,
)

__all__ = ["DatasetSource", "Loader", "NodeSet", "file_header", "load", "node_reader", "open_h5"]

#: What h5py raises for a malformed file (turned into CorruptFileError).
H5_ERRORS = (OSError, KeyError, ValueError, TypeError, RuntimeError, IndexError)
#: Soft links followed in a row before the chain is refused.
_MAX_HOPS = 16
_MISSING = object()
_PENDING = object()


def open_h5(source: Any, name: str) -> tuple[Any, Any]:
    """Open ``source`` (a path, a Source or a binary file object) read-only with h5py;
    returns (h5py.File, what to close besides it or None)."""
    h5py = h5py_module()
    import io

    from amber.container._io import FileSource, Source, SourceFile

    extra = None
    target: Any = source
    if isinstance(source, Source):
        if isinstance(source, FileSource):
            target = source.name
        else:
            target = extra = io.BufferedReader(SourceFile(source), 1 << 20)
    elif isinstance(source, os.PathLike):
        target = os.fspath(source)
    if isinstance(target, str) and not os.path.exists(target):
        raise FileNotFoundError(f"no such file: {target}")
    try:
        h5 = h5py.File(target, "r")
    except H5_ERRORS as exc:
        if extra is not None:
            extra.close()
        if isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM, errno.EAGAIN, errno.EWOULDBLOCK):
            # not the bytes' fault: no permission, or another process holds HDF5's file lock
            raise StorageError(f"cannot open {name}: {exc}") from None
        raise CorruptFileError(f"{name}: not a readable HDF5 file ({exc})") from None
    return h5, extra


def close_h5(h5: Any, extra: Any) -> None:
    try:
        h5.close()
    except H5_ERRORS:  # pragma: no cover - closing a read-only file
        pass
    if extra is not None:
        extra.close()


def _text(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def attr_json(attrs: Any, key: str, name: str, where: str) -> Any:
    raw = _text(attrs.get(key))
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise CorruptFileError(f"{name}: attribute {key} of {where} is not JSON text")
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise CorruptFileError(f"{name}: attribute {key} of {where} is not valid JSON ({exc})") from None


def file_header(h5: Any, name: str) -> dict[str, Any] | None:
    """amber's root attributes (layout version, amber version, env, metadata, node paths),
    or None for a file another tool wrote (no ``amber.format`` attribute)."""
    try:  # only amber's own attributes (fixed-length strings: no global heap is read)
        attrs = None
        if A_FORMAT in h5.attrs:
            attrs = {k: h5.attrs[k] for k in (A_FORMAT, A_VERSION, A_AMBER, A_ENV, A_META, A_NODES) if k in h5.attrs}
    except H5_ERRORS as exc:
        raise CorruptFileError(f"{name}: the root's attributes cannot be read ({exc})") from None
    if attrs is None:
        return None
    fmt = _text(attrs.get(A_FORMAT))
    if fmt != FORMAT_NAME:
        raise FormatError(f"{name}: the root's {A_FORMAT} attribute is {fmt!r}, not {FORMAT_NAME!r}")
    version = _text(attrs.get(A_VERSION))
    try:
        major, minor = (int(p) for p in str(version).split("."))
    except ValueError:
        raise CorruptFileError(f"{name}: the root's {A_VERSION} attribute is {version!r}, not a version") from None
    if major > LAYOUT_VERSION[0]:
        raise VersionError((major, minor), LAYOUT_VERSION, f"{name}: amber HDF5 layout ")
    nodes = attr_json(attrs, A_NODES, name, "the root")
    if nodes is not None and not (isinstance(nodes, list) and all(isinstance(p, str) for p in nodes)):
        raise CorruptFileError(f"{name}: the root's {A_NODES} attribute is not a list of HDF5 paths")
    return {
        "version": f"{major}.{minor}",
        "amber": _text(attrs.get(A_AMBER)),
        "env": attr_json(attrs, A_ENV, name, "the root"),
        "metadata": attr_json(attrs, A_META, name, "the root"),
        "nodes": nodes,
    }


def memory_limit() -> int:
    from amber.container._reader import _memory_limit

    return _memory_limit()


# ---------------------------------------------------------------------------------------
# amber nodes
# ---------------------------------------------------------------------------------------


class DatasetSource:
    """A 1-d uint8 dataset as a Source: range reads go to HDF5 (only the chunks they touch)."""

    thread_safe = False
    owned = False

    def __init__(self, dsid: Any, name: str) -> None:
        self.dsid = dsid
        self.name = name
        self.size = int(dsid.shape[0])

    def pread(self, offset: int, n: int) -> bytes:
        buf = bytearray(n)
        self.readinto(offset, memoryview(buf))
        return bytes(buf)

    def readinto(self, offset: int, buf: memoryview) -> None:
        h5py = h5py_module()
        n = len(buf)
        if offset < 0 or offset + n > self.size:
            raise CorruptFileError(f"{self.name}: unexpected end of data at byte {self.size}")
        if not n:
            return
        out = np.frombuffer(buf, dtype=np.uint8)
        try:
            fspace = self.dsid.get_space()
            fspace.select_hyperslab((offset,), (n,))
            self.dsid.read(h5py.h5s.create_simple((n,)), fspace, out)
        except H5_ERRORS as exc:
            raise CorruptFileError(f"{self.name}: bytes {offset}..{offset + n} cannot be read ({exc})") from None

    def mmap(self, private: bool = False) -> Any:
        return None

    def close(self) -> None:
        pass


def node_reader(dsid: Any, name: str, path: str, whole: bool) -> Any:
    """A ContainerReader over the native amber file a node dataset holds. ``whole`` reads
    the dataset in one go (for a load); else bytes are read as the reader asks for them."""
    from amber.container._io import BytesSource
    from amber.container._reader import ContainerReader

    where = f"{name}:{path}"
    try:
        dtype, shape = dsid.dtype, dsid.shape
    except H5_ERRORS as exc:
        raise CorruptFileError(f"{name}: the amber node at {path} cannot be read ({exc})") from None
    if dtype != np.uint8 or shape is None or len(shape) != 1:
        raise CorruptFileError(
            f"{name}: the amber node at {path} is a {dtype} dataset of shape {shape}, not 1-d uint8 bytes"
        )
    if shape[0] > memory_limit():
        raise CorruptFileError(f"{name}: the amber node at {path} declares {shape[0]} bytes, more than this machine's memory")
    if whole:
        buf = np.empty(shape, dtype=np.uint8)
        try:
            if buf.size:
                dsid.read(h5py_module().h5s.ALL, h5py_module().h5s.ALL, buf)
        except H5_ERRORS as exc:
            raise CorruptFileError(f"{name}: the amber node at {path} cannot be read ({exc})") from None
        source: Any = BytesSource(buf, where, owned=True)
    else:
        source = DatasetSource(dsid, where)
    try:
        return ContainerReader(source)
    except CorruptFileError:
        raise
    except FormatError as exc:
        raise CorruptFileError(f"{name}: the amber node at {path} does not hold an amber file ({exc})") from None


class NodeSet:
    """The amber nodes of a file, opened before anything is decoded, so that one
    UntrustedTypeError lists every untrusted name in the file.

    The root's ``amber.nodes`` attribute lists where they are (so a file without nodes
    costs nothing); a file without it is searched. A node the list leaves out is still
    checked on its own before it is decoded (:meth:`Loader.node`), so a list that lies
    cannot widen what a load imports.
    """

    def __init__(self, loader: Loader, paths: list[str] | None, whole: bool) -> None:
        self.name = loader.name
        #: object address -> (HDF5 path, ContainerReader)
        self.readers: dict[int, tuple[str, Any]] = {}
        h5py = loader.h5py
        searched = paths is None
        if paths is None:
            found: list[str] = []

            def visit(objname: bytes, info: Any) -> None:
                if info.type == h5py.h5o.TYPE_DATASET and info.num_attrs:
                    found.append("/" + objname.decode("utf-8", "surrogateescape"))

            try:
                h5py.h5o.visit(loader.rootid, visit, info=True)
            except H5_ERRORS as exc:
                raise CorruptFileError(f"{self.name}: the HDF5 tree cannot be walked ({exc})") from None
            paths = found
        for path in paths:
            dsid = loader.open_path(path)
            if not isinstance(dsid, h5py.h5d.DatasetID):
                raise loader.bad(path, f"{A_NODES} names a group, not an amber node")
            attrs = loader.attrs(dsid, path)
            if _text(attrs.get(A_KIND)) != "node":
                if searched:
                    continue
                raise loader.bad(path, f"{A_NODES} names a dataset that is not an amber node")
            addr = loader.address(dsid, path)
            if addr not in self.readers:
                self.readers[addr] = (path, node_reader(dsid, self.name, path, whole))

    def needs(self) -> list[str]:
        out: set[str] = set()
        for path, reader in self.readers.values():
            needs = reader.manifest.get("needs") or []
            if not isinstance(needs, list) or not all(type(n) is str for n in needs):
                raise FormatError(f"{self.name}: the amber node at {path} has a malformed list of needed names")
            out.update(needs)
        return sorted(out)

    def check(self, trusted: Iterable[str]) -> None:
        from amber.trust import is_denied, untrusted

        bad = untrusted(self.needs(), tuple(trusted))
        if bad:
            raise UntrustedTypeError(bad, where=f"{self.name}: ", denied=[n for n in bad if is_denied(n)])


# ---------------------------------------------------------------------------------------
# the walk
# ---------------------------------------------------------------------------------------


class Loader:
    """Rebuild the object of an amber HDF5 file, or the dicts of arrays of a file another
    tool wrote. An object linked in several places is rebuilt once."""

    def __init__(
        self,
        h5: Any,
        name: str,
        amber: bool,
        *,
        trusted: tuple[str, ...] = (),
        options: dict[str, Any] | None = None,
        mapped: Any = None,
    ) -> None:
        self.h5py = h5py_module()
        self.h5 = h5
        self.name = name
        self.amber = amber
        self.trusted = trusted
        self.nodes: NodeSet | None = None
        self.options = options
        self.mapped = mapped
        self.memo: dict[int, Any] = {}
        self.limit = memory_limit()
        self.rootid = self.h5py.h5g.open(h5.id, b"/")
        self._types: list[tuple[Any, np.dtype]] = []

    def bad(self, path: str, what: str) -> CorruptFileError:
        return CorruptFileError(f"{self.name}: {what} (at HDF5 path {path})")

    # -- links ---------------------------------------------------------------------------
    def links(self, gid: Any, path: str) -> list[tuple[bytes, int]]:
        """The group's links (name, link type), in creation order when the group keeps it,
        else in name order (as h5py lists them)."""
        h5py = self.h5py
        out: list[tuple[bytes, int]] = []

        def add(name: bytes, info: Any) -> None:
            out.append((name, info.type))

        try:
            try:
                gid.links.iterate(add, idx_type=h5py.h5.INDEX_CRT_ORDER, info=True)
            except H5_ERRORS:  # creation order not indexed
                out.clear()
                gid.links.iterate(add, idx_type=h5py.h5.INDEX_NAME, info=True)
        except H5_ERRORS as exc:
            raise self.bad(path, f"the group's members cannot be listed ({exc})") from None
        return out

    def open(self, gid: Any, name: bytes, ltype: int, path: str, hops: int = 0) -> Any:
        """Open member ``name`` of ``gid`` (an ObjectID) without leaving the file."""
        h5py = self.h5py
        if ltype == h5py.h5l.TYPE_HARD:
            try:
                return h5py.h5o.open(gid, name)
            except H5_ERRORS as exc:
                raise self.bad(path, f"the object cannot be opened ({exc})") from None
        try:
            value = gid.links.get_val(name)
        except H5_ERRORS as exc:
            raise self.bad(path, f"the link cannot be read ({exc})") from None
        if ltype == h5py.h5l.TYPE_EXTERNAL:
            target = ":".join(_text(v) for v in value) if isinstance(value, tuple) else _text(value)
            raise FormatError(
                f"{self.name}: {path} is an external link to {target}; amber does not follow links into "
                "other files (open the file with h5py if you trust it)"
            )
        if ltype != h5py.h5l.TYPE_SOFT:
            raise FormatError(f"{self.name}: {path} is a user-defined link (type {ltype}), which amber does not follow")
        if hops >= _MAX_HOPS:
            raise self.bad(path, f"more than {_MAX_HOPS} soft links in a row")
        return self.follow(gid, value, path, hops + 1)

    def follow(self, gid: Any, target: bytes, path: str, hops: int = 0) -> Any:
        """The object at HDF5 path ``target`` (absolute, or relative to ``gid``), checking
        every link on the way."""
        h5py = self.h5py
        cur = self.rootid if target.startswith(b"/") else gid
        for part in target.split(b"/"):
            if not part or part == b".":
                continue
            if not isinstance(cur, h5py.h5g.GroupID):
                raise self.bad(path, f"the link target {_text(target)!r} runs through a dataset")
            try:
                if not cur.links.exists(part):
                    raise self.bad(path, f"the link target {_text(target)!r} points at nothing")
                info = cur.links.get_info(part)
            except H5_ERRORS as exc:
                raise self.bad(path, f"the link target {_text(target)!r} cannot be followed ({exc})") from None
            cur = self.open(cur, part, info.type, path, hops)
        return cur

    def open_path(self, path: str) -> Any:
        return self.follow(self.rootid, path.encode("utf-8", "surrogateescape"), path)

    def address(self, oid: Any, path: str) -> int:
        try:
            return int(self.h5py.h5o.get_info(oid).addr)
        except H5_ERRORS as exc:
            raise self.bad(path, f"the object cannot be read ({exc})") from None

    def attrs(self, oid: Any, path: str) -> dict[str, Any]:
        """Every attribute of an object, as h5py reads it (nothing is unpickled)."""
        h5py = self.h5py
        try:
            wrapped = h5py.Group(oid) if isinstance(oid, h5py.h5g.GroupID) else h5py.Dataset(oid)
            return dict(wrapped.attrs.items())
        except H5_ERRORS as exc:
            raise self.bad(path, f"the attributes cannot be read ({exc})") from None

    # -- amber's annotations -------------------------------------------------------------
    def kind_of(self, attrs: dict[str, Any], group: bool, path: str) -> str:
        kind = _text(attrs.get(A_KIND))
        if kind is None:
            return "dict" if group else "array"
        if kind not in (GROUP_KINDS if group else DATASET_KINDS) or (kind == "value" and path != "/"):
            what = "group" if group else "dataset"
            raise self.bad(path, f"unknown {A_KIND} {kind!r} on a {what} (written by a newer amber, or damaged)")
        return str(kind)

    def scalars(self, attrs: dict[str, Any], path: str) -> dict[str, str]:
        marks = attr_json(attrs, A_SCALARS, self.name, path) or {}
        if not isinstance(marks, dict) or not all(isinstance(v, str) and v in SCALAR_KINDS for v in marks.values()):
            raise self.bad(path, f"malformed {A_SCALARS} attribute")
        return marks

    def scalar(self, value: Any, mark: str | None, path: str) -> Any:
        """An attribute's value as the Python value it was saved from."""
        try:
            if mark is None:
                if isinstance(value, str) or (
                    isinstance(value, np.generic) and type(value).__module__ == "numpy" and value.dtype.kind in "biufc"
                ):
                    return value
                raise ValueError(f"an attribute of type {type(value).__name__} without a mark in {A_SCALARS}")
            if mark == "none":
                if not isinstance(value, self.h5py.Empty):
                    raise ValueError("None stored as a non-empty attribute")
                return None
            if mark == "bytes":
                if not (isinstance(value, np.ndarray) and value.dtype == np.uint8 and value.ndim == 1):
                    raise ValueError("bytes stored as something other than 1-d uint8")
                return value.tobytes()
            want = {"int": np.integer, "float": np.float64, "bool": np.bool_, "complex": np.complex128}[mark]
            if not isinstance(value, want):
                raise ValueError(f"a {mark} stored as {type(value).__name__}")
            return {"int": int, "float": float, "bool": bool, "complex": complex}[mark](value)
        except (ValueError, TypeError, KeyError) as exc:
            raise self.bad(path, f"malformed attribute: {exc}") from None

    def user_attrs(self, attrs: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in attrs.items() if not k.startswith(PREFIX)}

    def keys(self, gid: Any, attrs: dict[str, Any], path: str) -> tuple[str, list[Any], dict[str, Any], dict[str, tuple[bytes, int]]]:
        """(kind, keys in order, user attributes, member name -> (link name, link type)) of
        a group of an amber file (a foreign group: kind "group", its members)."""
        links = self.links(gid, path)
        members = {n.decode("utf-8", "surrogateescape"): (n, t) for n, t in links}
        if not self.amber:
            return "group", list(members), {}, members
        kind = self.kind_of(attrs, True, path)
        user = self.user_attrs(attrs)
        if kind in ("list", "tuple", "value"):
            if kind == "value":
                return kind, ["value"], user, members
            n = attrs.get(A_LEN)
            if not isinstance(n, np.integer) or n < 0:
                raise self.bad(path, f"a {kind} group without a valid {A_LEN} attribute")
            if len(members) + len(user) != n:
                raise self.bad(path, f"the {kind} declares {int(n)} items but holds {len(members) + len(user)}")
            return kind, list(range(int(n))), user, members
        order = key_order(attrs.get(A_KEYS), list(members), list(user), lambda what: self.bad(path, what))
        return kind, order, user, members

    # -- objects -------------------------------------------------------------------------
    def root(self) -> Any:
        return self.obj(self.rootid, "/", 0)

    def obj(self, oid: Any, path: str, depth: int) -> Any:
        """The value of a group or dataset (rebuilt once when it is linked more than once)."""
        h5py = self.h5py
        try:
            info = h5py.h5o.get_info(oid)
        except H5_ERRORS as exc:
            raise self.bad(path, f"the object cannot be read ({exc})") from None
        shared = info.rc > 1
        addr = int(info.addr)
        if shared:
            hit = self.memo.get(addr, _MISSING)
            if hit is _PENDING:
                raise self.bad(path, "a tuple contains itself, which cannot be restored")
            if hit is not _MISSING:
                return hit
        if isinstance(oid, h5py.h5g.GroupID):
            return self.group(oid, path, depth, addr if shared else None)
        if not isinstance(oid, h5py.h5d.DatasetID):
            raise self.bad(path, "an object that is neither a group nor a dataset (a named datatype?)")
        value = self.dataset(oid, path, info.num_attrs, addr)
        if shared:
            self.memo[addr] = value
        return value

    def member(self, gid: Any, key: str, path: str, depth: int, marks: dict[str, str], user: dict[str, Any],
               members: dict[str, tuple[bytes, int]]) -> Any:
        sub = join(path, key)
        if key in user:
            return self.scalar(user[key], marks.get(key), sub)
        link = members.get(key)
        if link is None:
            raise self.bad(sub, "a member the file declares is missing")
        return self.obj(self.open(gid, link[0], link[1], sub), sub, depth + 1)

    def group(self, gid: Any, path: str, depth: int, addr: int | None = None) -> Any:
        if depth > READ_DEPTH:
            raise self.bad(path, f"groups are nested more than {READ_DEPTH} deep")
        attrs = self.attrs(gid, path) if self.amber else {}
        kind, keys, user, members = self.keys(gid, attrs, path)
        marks = self.scalars(attrs, path) if self.amber else {}
        if kind == "value":
            return self.member(gid, "value", path, depth, marks, user, members)
        if kind in ("dict", "group"):
            d: dict[str, Any] = {}
            if addr is not None:
                self.memo[addr] = d
            for key in keys:
                d[key] = self.member(gid, key, path, depth, marks, user, members)
            return d
        if kind == "tuple":
            if addr is not None:
                self.memo[addr] = _PENDING
            t = tuple([self.member(gid, str(j), path, depth, marks, user, members) for j in keys])
            if addr is not None:
                self.memo[addr] = t
            return t
        lst: list[Any] = []
        if addr is not None:
            self.memo[addr] = lst
        for j in keys:
            lst.append(self.member(gid, str(j), path, depth, marks, user, members))
        return lst

    def dataset(self, dsid: Any, path: str, num_attrs: int, addr: int) -> Any:
        if not self.amber or not num_attrs:
            return self.array(dsid, path)
        attrs = self.attrs(dsid, path)
        kind = self.kind_of(attrs, False, path)
        if kind == "array":
            return self.array(dsid, path, attrs)
        if kind == "node":
            return self.node(dsid, path, addr)
        h5py = self.h5py
        if kind == "str":
            if h5py.check_string_dtype(dsid.dtype) is None or dsid.shape != ():
                raise self.bad(path, "a str dataset that is not one string")
            return h5py.Dataset(dsid).asstr()[()]
        if kind in ("bytes", "bytearray"):
            if dsid.dtype != np.uint8 or len(dsid.shape or ()) != 1:
                raise self.bad(path, f"a {kind} dataset that is not 1-d uint8")
            raw = self.array(dsid, path)
            return bytes(raw) if kind == "bytes" else bytearray(raw)
        item = _text(attrs.get(A_ITEM))
        if len(dsid.shape or ()) != 1 or item not in ITEM_KINDS:
            raise self.bad(path, f"a {kind} dataset needs 1-d data and an {A_ITEM} of int, float, bool or str")
        if item == "str":
            if h5py.check_string_dtype(dsid.dtype) is None:
                raise self.bad(path, "a list of str stored as non-strings")
            items = h5py.Dataset(dsid).asstr()[()].tolist()
        else:
            want = {"int": "i", "float": "f", "bool": "b"}[item]
            if dsid.dtype.kind != want:
                raise self.bad(path, f"a list of {item} stored as {dsid.dtype}")
            items = self.array(dsid, path).tolist()
        return items if kind == "list" else tuple(items)

    def dtype_of(self, dsid: Any) -> np.dtype:
        """The dataset's dtype (the last few looked up are remembered: building a dtype
        from an HDF5 type costs more than comparing two types)."""
        tid = dsid.get_type()
        for known, dt in self._types:
            if known == tid:
                return dt
        try:
            dt = tid.dtype
        except (TypeError, ValueError) as exc:
            raise FormatError(
                f"{self.name}: a dataset has an HDF5 datatype that NumPy cannot represent ({exc})"
            ) from None
        self._types = [(tid, dt), *self._types[:3]]
        return dt

    def array(self, dsid: Any, path: str, attrs: dict[str, Any] | None = None) -> Any:
        """A dataset's data as NumPy (in another tool's file, a scalar dataset as a scalar)."""
        h5py = self.h5py
        check_storage(self, dsid, path)
        space = dsid.get_space()
        if space.get_simple_extent_type() == h5py.h5s.NULL:  # an empty attribute-like dataset
            return None
        shape = space.shape
        dtype = self.dtype_of(dsid)
        logical = order = None
        if attrs is not None:
            logical = attrs.get(A_DTYPE)
            order = _text(attrs.get(A_ORDER))
            if order not in (None, "F"):
                raise self.bad(path, f"malformed {A_ORDER} attribute {order!r}")
        strings = h5py.check_string_dtype(dtype)
        if strings is not None and strings.length is not None:  # fixed-length: an S array
            strings = None
        if strings is not None or dtype.hasobject:
            try:
                ds = h5py.Dataset(dsid)
                data = ds.asstr()[()] if strings is not None and strings.encoding == "utf-8" else ds[()]
            except (*H5_ERRORS, UnicodeDecodeError) as exc:
                raise self.bad(path, f"the data cannot be read ({exc})") from None
            if logical is not None:
                return self.logical(np.asarray(data, dtype=object), logical, order, path)
            return data
        if dtype.metadata is not None or dtype.fields is not None:
            dtype = plain_dtype(dtype)
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes > self.limit:
            raise self.bad(
                path, f"a dataset of shape {shape} and dtype {dtype} needs {nbytes} bytes, more than this machine's memory"
            )
        out = self.map(dsid, shape, dtype) if self.mapped is not None else None
        if out is None:
            out = np.empty(shape, dtype=dtype)
            if out.size:
                try:
                    dsid.read(h5py.h5s.ALL, h5py.h5s.ALL, out)
                except H5_ERRORS as exc:
                    raise self.bad(path, f"the data cannot be read ({exc})") from None
        if not self.amber and not shape:
            return out[()]
        if logical is not None:
            return self.logical(out, logical, order, path)
        return np.asfortranarray(out) if order == "F" else out

    def map(self, dsid: Any, shape: tuple[int, ...], dtype: np.dtype) -> Any:
        """A read-only view of the mapped file for a contiguous, unfiltered dataset."""
        h5py = self.h5py
        try:
            plist = dsid.get_create_plist()
            if plist.get_layout() != h5py.h5d.CONTIGUOUS or plist.get_nfilters():
                return None
            offset = dsid.get_offset()
        except H5_ERRORS:
            return None
        n = math.prod(shape)
        if offset is None or not n or offset + n * dtype.itemsize > len(self.mapped):
            return None
        return np.frombuffer(self.mapped, dtype=dtype, count=n, offset=offset).reshape(shape)

    def logical_dtype(self, logical: Any, path: str) -> np.dtype:
        """The dtype an ``amber.dtype`` attribute names (datetimes and unicode strings only)."""
        from amber.handlers._numpy import dtype_from_node

        logical = _text(logical)
        try:
            dt = dtype_from_node(logical) if isinstance(logical, str) else None
        except AmberError:
            dt = None
        if dt is None or dt.kind not in "mMU" or dt.fields is not None:
            raise self.bad(path, f"malformed {A_DTYPE} attribute {logical!r}")
        return dt

    def logical(self, data: np.ndarray, logical: Any, order: Any, path: str) -> np.ndarray:
        """A dataset's array in the dtype it was saved with (datetimes, unicode strings)."""
        dt = self.logical_dtype(logical, path)
        try:
            if dt.kind == "U":
                if data.dtype.kind != "O":
                    raise ValueError("unicode text stored as non-strings")
                out = np.array(data.tolist(), dtype=dt).reshape(data.shape)
            else:
                if data.dtype.kind != "i" or data.dtype.itemsize != 8:
                    raise ValueError(f"datetimes stored as {data.dtype}")
                out = data.view(dt)
        except (ValueError, TypeError) as exc:
            raise self.bad(path, f"the data does not fit {A_DTYPE} {logical!r}: {exc}") from None
        return np.asfortranarray(out) if order == "F" else out

    def node(self, dsid: Any, path: str, addr: int) -> Any:
        from amber.formats._native import check_trust, decode_from

        found = self.nodes.readers.get(addr) if self.nodes is not None else None
        if found is None:  # not listed by the file: checked alone, before it is decoded
            reader = node_reader(dsid, self.name, path, whole=True)
            check_trust(reader.manifest, self.trusted, f"{self.name}:{path}")
        else:
            reader = found[1]
        return decode_from(reader, trusted=self.trusted, options=self.options)


def join(path: str, key: str) -> str:
    return f"{path.rstrip('/')}/{key}"


def key_order(keys: Any, members: list[str], attrs: list[str], bad: Any) -> list[str]:
    """A dict group's keys in their saved order: members and attributes interleaved as
    ``amber.keys`` says (``"m"``/``"a"`` per key), else members first."""
    if keys is None:
        return members + attrs
    keys = _text(keys)
    if (
        not isinstance(keys, str)
        or len(keys) != len(members) + len(attrs)
        or keys.count("m") != len(members)
        or set(keys) - {"m", "a"}
    ):
        raise bad(f"malformed {A_KEYS} attribute")
    mi, ai = iter(members), iter(attrs)
    return [next(mi) if c == "m" else next(ai) for c in keys]


def check_storage(loader: Loader, dsid: Any, path: str) -> None:
    """Refuse datasets whose data HDF5 would fetch from other files."""
    h5py = loader.h5py
    try:
        plist = dsid.get_create_plist()
        virtual = plist.get_layout() == h5py.h5d.VIRTUAL
        external = plist.get_external_count()
    except H5_ERRORS as exc:
        raise loader.bad(path, f"the dataset's storage cannot be read ({exc})") from None
    if virtual:
        raise FormatError(
            f"{loader.name}: the dataset {path} is a virtual dataset (its data lives in other files); "
            "amber does not follow references to other files"
        )
    if external:
        raise FormatError(
            f"{loader.name}: the dataset {path} keeps its data in {external} external file(s); "
            "amber does not read other files a file points at"
        )


def load(
    source: Any, *, name: str, trusted: tuple[str, ...], mmap: bool, options: dict[str, Any] | None
) -> tuple[Any, Any]:
    from amber.formats._native import _deep_recursion

    h5, extra = open_h5(source, name)
    try:
        try:
            header = file_header(h5, name)
            mapped = None
            if mmap and extra is None and isinstance(h5.filename, str) and h5.driver == "sec2":
                mapped = _map(h5.filename)
            loader = Loader(h5, name, header is not None, trusted=trusted, options=options, mapped=mapped)
            if header is not None:
                loader.nodes = NodeSet(loader, header["nodes"], whole=True)
                loader.nodes.check(trusted)
            with _deep_recursion():
                obj = loader.root()
        except AmberError:
            raise
        except H5_ERRORS as exc:
            raise CorruptFileError(f"{name}: malformed HDF5 file ({type(exc).__name__}: {exc})") from None
        return obj, (header or {}).get("metadata")
    finally:
        close_h5(h5, extra)


def _map(path: str) -> Any:
    import mmap as _mmap

    with open(path, "rb") as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            return None
        return _mmap.mmap(fh.fileno(), 0, access=_mmap.ACCESS_READ)
