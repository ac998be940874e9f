"""``amber.open``: lazy access. The manifest is read once; arrays are read on indexing."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from amber._node import is_tagged, parse_tag
from amber.container._reader import ContainerReader
from amber.errors import AmberError, CorruptFileError

__all__ = ["AmberFile", "LazyArray", "LazyNode"]


class LazyArray:
    """An array still in the file. Indexing reads only what the index needs.

    ``a[10:20]`` (and any index whose first axis is an int or a step-1 slice) reads only
    the rows it selects — exactly those bytes for an uncompressed blob (plus the rest of
    their checksum blocks when verifying), only the chunks that hold them when compressed.
    ``a[...]``, ``np.asarray(a)`` or ``a.read()`` read the whole array.
    """

    def __init__(self, reader: ContainerReader, blob: int, dtype: np.dtype, shape: tuple[int, ...], order: str) -> None:
        self._reader = reader
        self._blob = blob
        self.dtype = dtype
        self.shape = shape
        self.order = order
        b = reader.blob(blob)
        if b.nbytes != self.nbytes:
            raise CorruptFileError(
                f"{reader.name}: array of shape {shape} and dtype {dtype} needs {self.nbytes} bytes, "
                f"blob {blob} has {b.nbytes}"
            )

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d array")
        return self.shape[0]

    def __repr__(self) -> str:
        return f"<LazyArray {self.dtype} {self.shape} (blob {self._blob})>"

    def read(self) -> np.ndarray:
        from amber.handlers._numpy import from_buffer

        return from_buffer(self._reader.read(self._blob), self.dtype, self.shape, self.order)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        a = self.read()
        return a if dtype is None else a.astype(dtype)

    def __getitem__(self, key: Any) -> Any:
        if self.order != "C" or not self.shape:
            return self.read()[key]
        first, rest = (key[0], key[1:]) if isinstance(key, tuple) and key else (key, ())
        if first is Ellipsis:
            return self.read()[key]
        rows = self.shape[0]
        row_bytes = self.nbytes // rows if rows else 0
        if isinstance(first, (int, np.integer)):
            i = int(first)
            if i < 0:
                i += rows
            if not 0 <= i < rows:
                raise IndexError(f"index {first} is out of bounds for axis 0 with size {rows}")
            start, stop, squeeze = i, i + 1, True
        elif isinstance(first, slice) and first.step in (None, 1):
            start, stop, _ = first.indices(rows)
            stop = max(start, stop)
            squeeze = False
        else:
            return self.read()[key]
        raw = self._reader.read_range(self._blob, start * row_bytes, stop * row_bytes)
        part = np.frombuffer(raw, dtype=self.dtype).reshape((stop - start,) + self.shape[1:]).copy()
        if squeeze:
            return part[0][rest] if rest else part[0]
        return part[(slice(None), *rest)] if rest else part


class LazyNode:
    """A dict or list still in the file; indexing returns values, LazyNodes or LazyArrays."""

    def __init__(self, file: AmberFile, node: Any, path: str) -> None:
        self._file = file
        self._path = path
        self._node = node
        name = parse_tag(node[0]).name
        if name in ("map", "map.plain"):
            if len(node) != 3 or type(node[1]) is not tuple or type(node[2]) is not tuple or len(node[1]) != len(node[2]):
                raise CorruptFileError(f"{file.reader.name}: malformed map node at {path}")
            keys = [file._decode(k) if is_tagged(k) else k for k in node[1]]
            try:
                self._items: Any = dict(zip(keys, node[2]))
            except TypeError:
                raise CorruptFileError(f"{file.reader.name}: a map node at {path} has an unhashable key") from None
        else:
            self._items = node[1:]

    def keys(self) -> list[Any]:
        if type(self._items) is dict:
            return list(self._items.keys())
        return list(range(len(self._items)))

    def __iter__(self) -> Iterator[Any]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Any) -> bool:
        if type(self._items) is dict:
            return key in self._items
        return isinstance(key, int) and -len(self._items) <= key < len(self._items)

    def __getitem__(self, key: Any) -> Any:
        try:
            child = self._items[key]
        except (KeyError, IndexError, TypeError):
            raise KeyError(f"{self._path} has no item {key!r}") from None
        return self._file._wrap(child, f"{self._path}[{key!r}]")

    def read(self) -> Any:
        """Load this whole subtree (arrays included)."""
        return self._file._decode(self._node, lazy=False)

    def __repr__(self) -> str:
        kind = "dict" if type(self._items) is dict else "list"
        return f"<LazyNode {self._path}: {kind} of {len(self._items)}>"


_CONTAINERS = ("map", "map.plain", "list", "list.plain")


class AmberFile:
    """An open amber file (see :func:`amber.open`). Use as a context manager.

    ``f.keys()``, ``f["a"]``, ``len(f)`` and iteration work when the saved object is a
    dict or list; ``f.read()`` loads everything.
    """

    def __init__(self, reader: ContainerReader, trusted: tuple[str, ...] = ()) -> None:
        from amber.formats._native import check_trust, check_versions, tree_of

        self.reader = reader
        self.trusted = trusted
        self._needs = check_trust(reader.manifest, trusted, reader.name)
        check_versions(reader.manifest, reader.name)
        self._info: Any = None
        self._whole: Any = None
        tree = tree_of(reader, cached=True)
        if reader.manifest.get("refs"):
            # Shared references are numbered over the whole tree: load it all at once
            # (arrays stay lazy) so every reference resolves to the same object.
            self._whole = self._decode(tree)
            self._root: Any = None
        else:
            self._root = self._wrap(tree, "root")

    @property
    def root(self) -> Any:
        """The saved object, as lazily as possible (a LazyNode for dicts and lists)."""
        return self._whole if self._whole is not None else self._root

    @property
    def info(self) -> Any:
        if self._info is None:
            from amber._inspect import describe

            self._info = describe(self.reader)
        return self._info

    @property
    def metadata(self) -> Any:
        return self.reader.manifest.get("metadata")

    def keys(self) -> list[Any]:
        r = self.root
        return list(r.keys()) if hasattr(r, "keys") else list(range(len(r)))

    def __iter__(self) -> Iterator[Any]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.root)

    def __contains__(self, key: Any) -> bool:
        return key in self.root

    def __getitem__(self, key: Any) -> Any:
        r = self.root
        if not hasattr(r, "__getitem__"):
            raise TypeError(f"{self.reader.name}: the saved object is a {type(r).__name__}, not a container")
        return r[key]

    def _decode(self, node: Any, lazy: bool = True) -> Any:
        """Decode one subtree; with ``lazy`` its arrays (outside handlers) stay in the file."""
        from amber.formats._native import Decoder, _deep_recursion, _finish_path

        refs = bool(self.reader.manifest.get("refs"))
        dec = Decoder(self.reader, self.trusted, self._needs, lazy=lazy, inplace=False, refs=refs)
        dec.lazy = lazy
        try:
            with _deep_recursion():
                return dec.decode(node)
        except AmberError as exc:
            _finish_path(exc)
            raise

    def _wrap(self, child: Any, path: str) -> Any:
        if type(child) is dict:
            raise CorruptFileError(f"{self.reader.name}: a bare map stands where a node belongs, at {path}")
        if is_tagged(child):
            if parse_tag(child[0]).name in _CONTAINERS:
                return LazyNode(self, child, path)
            return self._decode(child)
        return child

    def read(self) -> Any:
        """Load the whole file (arrays included)."""
        from amber.formats._native import decode_from

        return decode_from(self.reader, trusted=self.trusted)

    def close(self) -> None:
        self.reader.close()

    def __enter__(self) -> AmberFile:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<amber.AmberFile {self.reader.name}>"
