"""``amber.open``: lazy access. The manifest is read once; arrays are read on indexing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from amber._node import Tag
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
        n = dtype.itemsize
        for s in shape:
            n *= s
        if b.nbytes != n:
            raise CorruptFileError(
                f"{reader.name}: array of shape {shape} and dtype {dtype} needs {n} bytes, blob {blob} has {b.nbytes}"
            )

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n

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
            part = part[0]
        return part[rest] if rest else part


class LazyNode:
    """A dict or list still in the file; indexing returns values, LazyNodes or LazyArrays."""

    def __init__(self, file: AmberFile, node: Any, path: str) -> None:
        self._file = file
        self._node = node
        self._path = path

    def keys(self) -> list[Any]:
        n = self._node
        if type(n) is dict:
            return list(n.keys())
        return list(range(len(n)))

    def __iter__(self) -> Iterator[Any]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._node)

    def __contains__(self, key: Any) -> bool:
        return key in self._node if type(self._node) is dict else isinstance(key, int) and 0 <= key < len(self._node)

    def __getitem__(self, key: Any) -> Any:
        n = self._node
        try:
            child = n[key]
        except (KeyError, IndexError, TypeError):
            raise KeyError(f"{self._path} has no item {key!r}") from None
        return self._file._wrap(child, f"{self._path}[{key!r}]")

    def read(self) -> Any:
        """Load this whole subtree."""
        return self._file._decode(self._node)

    def __repr__(self) -> str:
        kind = "dict" if type(self._node) is dict else "list"
        return f"<LazyNode {self._path}: {kind} of {len(self._node)}>"


class AmberFile(LazyNode):
    """An open amber file (see :func:`amber.open`). Use as a context manager."""

    def __init__(self, reader: ContainerReader, trusted: tuple[str, ...] = ()) -> None:
        from amber.formats._native import check_trust, check_versions

        self.reader = reader
        self.trusted = trusted
        self._needs = check_trust(reader.manifest, trusted, reader.name)
        check_versions(reader.manifest, reader.name)
        self._info: Any = None
        root = reader.manifest["root"]
        self._whole: Any = None
        if reader.manifest.get("refs"):
            # Shared references are numbered over the whole tree: load it all at once
            # (arrays stay lazy) so every reference resolves to the same object.
            self._whole = self._decode(root)
            root = self._whole
        super().__init__(self, root, "root")

    @property
    def info(self) -> Any:
        if self._info is None:
            from amber._inspect import describe

            self._info = describe(self.reader)
        return self._info

    @property
    def metadata(self) -> Any:
        return self.reader.manifest.get("metadata")

    def _decode(self, node: Any) -> Any:
        from amber.formats._native import Decoder, _deep_recursion, _finish_path

        dec = Decoder(self.reader, self.trusted, self._needs, lazy=True, inplace=False)
        try:
            with _deep_recursion():
                return dec.decode(node)
        except AmberError as exc:
            _finish_path(exc)
            raise

    def _wrap(self, child: Any, path: str) -> Any:
        if self._whole is not None:
            return LazyNode(self, child, path) if type(child) in (dict, list) and not isinstance(child, LazyArray) else child
        t = type(child)
        if t is dict or (t is list and not (child and type(child[0]) is Tag)):
            return LazyNode(self, child, path)
        if t is list and child[0].name == "numpy.ndarray":
            return self._decode(child)
        return self._decode(child) if t is list else child

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
