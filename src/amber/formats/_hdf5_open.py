"""Lazy access to HDF5 files (``amber.open("x.h5")``) and their description (``amber inspect``).

``H5File`` feels like :class:`amber._lazy.AmberFile`: ``f.info``, ``f.metadata``,
``f.keys()``, ``f["weights"]["layer1"][:8]`` or ``f["weights/layer1"][:8]``. Groups come
back as :class:`H5Group` (dict-like, or list-like for a saved list or tuple), arrays as
:class:`H5Dataset`, whose slicing is h5py's: only the chunks (uncompressed: the bytes) that
hold the selection are read. Everything else (scalars, strings, amber nodes) comes back as
its value. The trust list is checked against every amber node when the file is opened.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from amber.errors import AmberError, CorruptFileError
from amber.formats._hdf5 import A_DTYPE, A_ITEM, A_ORDER, A_TYPE
from amber.formats._hdf5_read import (
    H5_ERRORS,
    Loader,
    NodeSet,
    check_storage,
    close_h5,
    file_header,
    join,
    node_reader,
    open_h5,
)

__all__ = ["H5Dataset", "H5File", "H5Group", "describe"]

#: Children described per container before "... N more".
_SHOW = 12


class H5Dataset:
    """An array still in the file. ``d[10:20]``, ``d[3, :, 0]``... read only what they select
    (h5py slicing); ``d[...]``, ``d.read()`` or ``np.asarray(d)`` read it all. ``d.dataset``
    is the h5py dataset itself."""

    def __init__(self, file: H5File, dsid: Any, path: str, attrs: dict[str, Any] | None = None) -> None:
        self._file = file
        self.dataset = file.h5py.Dataset(dsid)
        self.path = path
        #: amber's attributes that change how the data reads (saved dtype, Fortran order)
        self._attrs = attrs if attrs and (A_DTYPE in attrs or A_ORDER in attrs) else None
        self._logical: np.dtype | None = None
        if self._attrs is not None and A_DTYPE in self._attrs:
            self._logical = file.loader.logical_dtype(self._attrs[A_DTYPE], path)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.dataset.shape or ())

    @property
    def dtype(self) -> np.dtype:
        return self._logical if self._logical is not None else self.dataset.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    @property
    def chunks(self) -> tuple[int, ...] | None:
        return self.dataset.chunks

    @property
    def compression(self) -> str | None:
        return self.dataset.compression

    @property
    def attrs(self) -> dict[str, Any]:
        """The dataset's HDF5 attributes, as stored (nothing is unpickled or converted)."""
        return self._file._call(lambda: self._file.loader.attrs(self.dataset.id, self.path), self.path)

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d array")
        return self.shape[0]

    def __repr__(self) -> str:
        return f"<H5Dataset {self.path}: {self.dtype} {self.shape}>"

    def read(self) -> Any:
        """The whole array."""
        return self._file._call(lambda: self._file.loader.array(self.dataset.id, self.path, self._attrs), self.path)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        a = np.asarray(self.read())
        return a if dtype is None else a.astype(dtype)

    def __getitem__(self, key: Any) -> Any:
        if key is Ellipsis or (isinstance(key, tuple) and key == ()):
            return self.read()
        file = self._file
        h5py = file.h5py
        ds = self.dataset

        def part() -> Any:
            strings = h5py.check_string_dtype(ds.dtype)
            if strings is not None and strings.length is None and strings.encoding == "utf-8":
                return ds.asstr()[key]
            return ds[key]

        try:
            data = part()
        except (OSError, RuntimeError) as exc:
            raise CorruptFileError(f"{file.name}: reading {self.path}[{key!r}] failed ({exc})") from None
        if self._logical is not None:
            arr = np.asarray(data, dtype=object if self._logical.kind == "U" else None)
            out = file.loader.logical(arr, self._attrs[A_DTYPE], None, self.path)  # type: ignore[index]
            return out if isinstance(data, np.ndarray) else out[()]
        return data


class H5Group:
    """A group: dict-like (keys are member and attribute names), or list-like for a saved
    list or tuple (``g[3]``). Indexing returns groups, lazy datasets or values; ``g.read()``
    loads the whole group. ``g.group`` is the h5py group itself."""

    def __init__(self, file: H5File, gid: Any, path: str) -> None:
        self._file = file
        self.group = file.h5py.Group(gid)
        self.path = path
        loader = file.loader
        attrs = loader.attrs(gid, path) if file.amber else {}
        self.kind, self._keys, self._user, self._members = loader.keys(gid, attrs, path)
        self._marks = loader.scalars(attrs, path) if file.amber else {}

    @property
    def _listlike(self) -> bool:
        return self.kind in ("list", "tuple")

    def keys(self) -> list[Any]:
        return list(self._keys)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: Any) -> bool:
        try:
            self._resolve_key(key)
        except KeyError:
            return False
        return True

    @property
    def attrs(self) -> dict[str, Any]:
        """The group's HDF5 attributes, as stored (nothing is unpickled or converted)."""
        return self._file._call(lambda: self._file.loader.attrs(self.group.id, self.path), self.path)

    def _resolve_key(self, key: Any) -> tuple[H5Group, str]:
        """(group, member name) that ``key`` (maybe a path "a/b/3") names."""
        if isinstance(key, str) and "/" in key.strip("/"):
            first, _, rest = key.strip("/").partition("/")
            child = self[int(first) if self._listlike and first.lstrip("-").isdigit() else first]
            if not isinstance(child, H5Group):
                raise KeyError(f"{join(self.path, first)} is not a group, so it has no item {rest!r}")
            return child._resolve_key(rest)
        if isinstance(key, str):
            key = key.strip("/")
        if self._listlike:
            if isinstance(key, str) and key.lstrip("-").isdigit():
                key = int(key)
            if not isinstance(key, (int, np.integer)) or isinstance(key, bool):
                raise KeyError(f"{self.path} is a {self.kind}: index it with an int, not {key!r}")
            n = len(self._keys)
            i = int(key) + n if key < 0 else int(key)
            if not 0 <= i < n:
                raise KeyError(f"{self.path} has no item {key!r} (it has {n})")
            return self, str(i)
        if key not in self._keys:
            raise KeyError(f"{self.path} has no item {key!r}")
        return self, key

    def __getitem__(self, key: Any) -> Any:
        group, name = self._resolve_key(key)
        return self._file._call(lambda: group._child(name), join(group.path, name))

    def _child(self, name: str) -> Any:
        file = self._file
        loader = file.loader
        sub = join(self.path, name)
        if name in self._user:
            return loader.scalar(self._user[name], self._marks.get(name), sub)
        link = self._members.get(name)
        if link is None:
            raise loader.bad(sub, "a member the file declares is missing")
        return file._wrap(loader.open(self.group.id, link[0], link[1], sub), sub)

    def read(self) -> Any:
        """Load this whole group (arrays included)."""
        return self._file._call(lambda: self._file.loader.obj(self.group.id, self.path, 0), self.path)

    def __repr__(self) -> str:
        return f"<H5Group {self.path}: {self.kind} of {len(self._keys)}>"


class H5File:
    """An open HDF5 file (see :func:`amber.open`). Use as a context manager.

    ``f.keys()``, ``f["a"]``, ``f["a/b"]``, ``len(f)``, iteration; ``f.read()`` loads
    everything; ``f.attrs`` shows the root's attributes; ``f.h5`` is the h5py file itself
    (read-only) for anything else.
    """

    def __init__(self, h5: Any, extra: Any, name: str, trusted: tuple[str, ...] = (), check: bool = True) -> None:
        self.h5 = h5
        self._extra = extra
        self.name = name
        self.trusted = tuple(trusted)
        self.header = file_header(h5, name)
        self.amber = self.header is not None
        self.loader = Loader(h5, name, self.amber, trusted=self.trusted)
        self.h5py = self.loader.h5py
        self.nodes: NodeSet | None = None
        if self.header is not None:
            self.nodes = self.loader.nodes = NodeSet(self.loader, self.header["nodes"], whole=False)
            if check:
                self.nodes.check(self.trusted)
        self._info: Any = None
        self._root: Any = None

    @classmethod
    def open(cls, source: Any, *, name: str, trusted: tuple[str, ...] = (), check: bool = True) -> H5File:
        """Open ``source``; ``check=False`` skips the trust check (for describing a file,
        which imports nothing)."""
        h5, extra = open_h5(source, name)
        try:
            try:
                return cls(h5, extra, name, trusted, check)
            except AmberError:
                raise
            except H5_ERRORS as exc:
                raise CorruptFileError(f"{name}: malformed HDF5 file ({type(exc).__name__}: {exc})") from None
        except BaseException:
            close_h5(h5, extra)
            raise

    def _call(self, fn: Any, path: str) -> Any:
        """Run ``fn``; h5py's errors become CorruptFileErrors naming the file and ``path``."""
        if not self.h5.id.valid:
            raise ValueError(f"{self.name} is closed")
        try:
            return fn()
        except (AmberError, KeyError):
            raise
        except H5_ERRORS as exc:
            raise CorruptFileError(f"{self.name}: reading {path} failed ({type(exc).__name__}: {exc})") from None

    def _wrap(self, oid: Any, path: str) -> Any:
        h5py = self.h5py
        if isinstance(oid, h5py.h5g.GroupID):
            return H5Group(self, oid, path)
        if not isinstance(oid, h5py.h5d.DatasetID):
            raise self.loader.bad(path, "an object that is neither a group nor a dataset")
        attrs = self.loader.attrs(oid, path) if self.amber else None
        kind = self.loader.kind_of(attrs, False, path) if attrs is not None else "array"
        if kind == "array":
            check_storage(self.loader, oid, path)
            return H5Dataset(self, oid, path, attrs)
        return self.loader.obj(oid, path, 0)

    @property
    def root(self) -> Any:
        """The saved object, as lazily as possible (an H5Group for dicts, lists and tuples)."""
        if self._root is None:
            def make() -> Any:
                g = H5Group(self, self.loader.rootid, "/")
                return g._child("value") if g.kind == "value" else g

            self._root = self._call(make, "/")
        return self._root

    @property
    def info(self) -> Any:
        if self._info is None:
            self._info = self._call(lambda: _describe_open(self, _size(self)), "/")
        return self._info

    @property
    def metadata(self) -> Any:
        return None if self.header is None else self.header.get("metadata")

    @property
    def attrs(self) -> dict[str, Any]:
        """The root group's HDF5 attributes, as stored."""
        return self._call(lambda: self.loader.attrs(self.loader.rootid, "/"), "/")

    def _container(self) -> Any:
        r = self.root
        if not isinstance(r, (H5Group, H5Dataset, dict, list, tuple)):
            raise TypeError(f"{self.name}: the saved object is a {type(r).__name__}, not a container")
        return r

    def keys(self) -> list[Any]:
        r = self._container()
        return list(r.keys()) if hasattr(r, "keys") else list(range(len(r)))

    def __iter__(self) -> Iterator[Any]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._container())

    def __contains__(self, key: Any) -> bool:
        return key in self._container()

    def __getitem__(self, key: Any) -> Any:
        return self._container()[key]

    def read(self) -> Any:
        """Load the whole file (arrays included)."""
        from amber.formats._native import _deep_recursion

        def load() -> Any:
            with _deep_recursion():
                return self.loader.root()

        return self._call(load, "/")

    def close(self) -> None:
        close_h5(self.h5, self._extra)

    def __enter__(self) -> H5File:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<amber.H5File {self.name}>"


def _size(file: H5File) -> int:
    try:
        return int(file.h5.id.get_filesize())
    except H5_ERRORS:
        return 0


# ---------------------------------------------------------------------------------------
# describe (amber inspect)
# ---------------------------------------------------------------------------------------


def describe(source: Any, *, name: str, size: int) -> Any:
    """An Info for ``source``; nothing named in the file is imported or trusted."""
    f = H5File.open(source, name=name, check=False)
    try:
        return f._call(lambda: _describe_open(f, size), "/")
    finally:
        f.close()


class _Describer:
    def __init__(self, file: H5File) -> None:
        self.file = file
        self.h5py = file.h5py
        self.types: set[str] = set()
        self.islands: list[dict[str, Any]] = []

    def child(self, g: H5Group, name: str, depth: int) -> dict[str, Any]:
        file, loader = self.file, self.file.loader
        sub = join(g.path, name)
        if name in g._user:
            v = loader.scalar(g._user[name], g._marks.get(name), sub)
            t = type(v)
            tname = "NoneType" if v is None else (f"numpy.{t.__name__}" if isinstance(v, np.generic) else t.__name__)
            self.types.add(tname)
            r = repr(v)
            return {"type": tname, "value": r if len(r) <= 60 else r[:57] + "..."}
        link = g._members.get(name)
        if link is None:
            return {"type": "missing member"}
        if link[1] == self.h5py.h5l.TYPE_EXTERNAL:
            return {"type": "external link (not followed)"}
        try:
            oid = loader.open(g.group.id, link[0], link[1], sub)
        except AmberError as exc:
            return {"type": "unreadable", "value": str(exc)[:120]}
        if depth > 64:
            return {"type": "..."}
        try:
            if isinstance(oid, self.h5py.h5g.GroupID):
                return self.group(H5Group(file, oid, sub), depth + 1)
            return self.dataset(oid, sub)
        except AmberError as exc:  # describe what can be described; name what cannot
            return {"type": "unreadable", "value": str(exc)[:160], "hdf5": sub}

    def group(self, g: H5Group, depth: int) -> dict[str, Any]:
        if self.file.amber:
            self.types.add(g.kind)
        out: dict[str, Any] = {"type": g.kind, "len": len(g), "hdf5": g.path}
        items: dict[str, Any] = {}
        for key in g.keys()[:_SHOW]:
            label = f"[{key}]" if g._listlike else str(key)
            items[label] = self.child(g, str(key), depth)
        if items:
            out["items"] = items
        if not self.file.amber and g.group.attrs:
            out["attrs"] = sorted(g.group.attrs)[:_SHOW]
        return out

    def dataset(self, dsid: Any, path: str) -> dict[str, Any]:
        file, loader = self.file, self.file.loader
        attrs = loader.attrs(dsid, path) if file.amber else {}
        kind = loader.kind_of(attrs, False, path) if file.amber else "array"
        ds = self.h5py.Dataset(dsid)
        out: dict[str, Any]
        if kind == "node":
            out = self.node(dsid, path, attrs)
        elif kind == "array":
            try:
                check_storage(loader, dsid, path)
            except AmberError as exc:
                return {"type": "dataset (not read)", "value": str(exc)[:120]}
            d = H5Dataset(file, dsid, path, attrs)
            out = {"type": "ndarray" if file.amber else "dataset", "dtype": str(d.dtype), "shape": list(d.shape),
                   "nbytes": d.nbytes}
            if file.amber:
                self.types.add("numpy.ndarray")
        elif kind in ("list", "tuple"):
            out = {"type": f"{kind} of {attrs.get(A_ITEM)}", "len": int(ds.shape[0]) if ds.shape else 0}
            self.types.add(kind)
        else:
            out = {"type": kind, "nbytes": int(dsid.get_storage_size())}
            self.types.add(kind)
        out["hdf5"] = path
        if ds.chunks:
            out["chunks"] = list(ds.chunks)
        if ds.compression:
            opts = ds.compression_opts
            out["codec"] = ds.compression + (f" {opts}" if isinstance(opts, int) else "")
            out["stored"] = int(dsid.get_storage_size())
        if not file.amber and attrs:
            out["attrs"] = sorted(attrs)[:_SHOW]
        elif not file.amber and ds.attrs:
            out["attrs"] = sorted(ds.attrs)[:_SHOW]
        return out

    def node(self, dsid: Any, path: str, attrs: dict[str, Any]) -> dict[str, Any]:
        from amber._inspect import _Describer as NodeDescriber
        from amber.formats._native import _deep_recursion, tree_of

        loader = self.file.loader
        nodes = self.file.nodes
        found = nodes.readers.get(loader.address(dsid, path)) if nodes is not None else None
        reader = found[1] if found is not None else node_reader(dsid, self.file.name, path, whole=False)
        with _deep_recursion():
            out = dict(NodeDescriber(reader).node(tree_of(reader, cached=True)))
        m = reader.manifest
        self.types.update(t for t in (m.get("types") or []) if isinstance(t, str))
        for isl in m.get("islands") or []:
            if isinstance(isl, dict):
                self.islands.append({**isl, "path": f"{path}:{isl.get('path')}"})
        typ = attrs.get(A_TYPE)
        out["node"] = typ.decode() if isinstance(typ, bytes) else typ
        out["stored"] = int(dsid.get_storage_size())
        return out


def _describe_open(f: H5File, size: int) -> Any:
    from amber._inspect import Info
    from amber.trust import untrusted

    h5py = f.h5py
    d = _Describer(f)
    root = H5Group(f, f.loader.rootid, "/")
    tree = d.child(root, "value", 0) if root.kind == "value" else d.group(root, 0)

    # totals over every dataset (each counted once, however often it is linked)
    stats = {"datasets": 0, "data": 0, "stored": 0}
    codecs: set[str] = set()

    def visit(objname: bytes, info: Any) -> None:
        if info.type != h5py.h5o.TYPE_DATASET:
            return
        dsid = h5py.h5o.open(f.loader.rootid, objname)
        shape = dsid.shape or ()
        stats["datasets"] += 1
        stats["data"] += int(np.prod(shape, dtype=np.int64)) * dsid.get_type().get_size()
        stats["stored"] += int(dsid.get_storage_size())
        ds = h5py.Dataset(dsid)
        if ds.compression:
            codecs.add(ds.compression)
        elif dsid.get_create_plist().get_nfilters():
            codecs.add("filter")

    h5py.h5o.visit(f.loader.rootid, visit, info=True)
    needs = f.nodes.needs() if f.nodes is not None else []
    header = f.header or {}
    return Info(
        path=f.name,
        size=size,
        format="hdf5",
        format_version=header.get("version") or "",
        amber_version=header.get("amber"),
        created=None,
        env=header.get("env"),
        metadata=header.get("metadata"),
        types=sorted(d.types),
        needs=needs,
        untrusted=untrusted(needs, imports=False),
        codecs=sorted(codecs),
        blobs=stats["datasets"],
        data_bytes=stats["data"],
        stored_bytes=stats["stored"],
        tree=tree,
        islands=d.islands,
    )


