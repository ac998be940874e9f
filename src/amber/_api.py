"""The public functions: dump, dumps, load, loads, open, inspect."""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from typing import Any

from amber.container._codecs import resolve_compress
from amber.container._io import PathLike, open_sink, open_source
from amber.container._reader import ContainerReader
from amber.errors import FormatError, StorageError
from amber._node import ext_hook

__all__ = ["dump", "dumps", "inspect", "load", "loads", "open", "untrusted_types", "FORMATS_BY_SUFFIX"]

#: Suffix -> format name. Formats other than the native one arrive with later releases.
FORMATS_BY_SUFFIX = {
    ".amber": "amber",
    ".pkl": "pickle",
    ".pickle": "pickle",
    ".joblib": "joblib",
    ".json": "json",
    ".jsonl": "jsonl",
    ".h5": "hdf5",
    ".hdf5": "hdf5",
    ".pt": "torch",
    ".pth": "torch",
    ".npy": "npy",
    ".npz": "npz",
}
_AVAILABLE = ("amber",)


def _format_for(target: Any, fmt: str | None) -> str:
    if fmt is None:
        name = os.fspath(target) if isinstance(target, (str, os.PathLike)) else getattr(target, "name", "")
        suffix = os.path.splitext(str(name))[1].lower() if isinstance(name, str) else ""
        fmt = FORMATS_BY_SUFFIX.get(suffix, "amber")
    if fmt not in _AVAILABLE:
        raise FormatError(
            f"format {fmt!r} is not available in this version of amber (it reads and writes "
            f"{', '.join(_AVAILABLE)}); save to a .amber file or pass format='amber'"
        )
    return fmt


def dump(
    obj: Any,
    target: PathLike | Any,
    *,
    format: str | None = None,
    compress: Any = None,
    metadata: Any = None,
    deterministic: bool = False,
    durable: bool = False,
    filters: bool = True,
) -> None:
    """Save ``obj`` to ``target``: a path, an fsspec URL (``s3://...``) or a binary file object.

    Args:
        compress: None (default), True (zstd level 1, with byte-shuffle or row-delta filters for arrays), a codec
            name (``"zstd"``, ``"lz4"``, ``"zlib"``, ``"gzip"``, ``"bz2"``, ``"lzma"``),
            ``"zstd:9"`` or ``("zstd", 9)``.
        metadata: any JSON-like value stored with the file (``amber.open(p).metadata``).
        deterministic: leave out the creation time, so equal objects give equal bytes.
        durable: fsync the file and its folder before returning (survives power loss, slower).
        filters: let compression byte-shuffle numeric arrays and row-delta 8-bit images
            first (default); ``False`` compresses the raw bytes.

    Writing to a path is atomic: a failed or interrupted dump leaves an earlier file intact.
    """
    from amber.formats._native import encode_to

    _format_for(target, format)
    codec = resolve_compress(compress)
    sink = open_sink(target, durable=durable)
    try:
        encode_to(sink.fh, obj, codec=codec, metadata=metadata, deterministic=deterministic, filters=filters)
        sink.commit()
    except BaseException:
        sink.discard()
        raise


def dumps(
    obj: Any, *, compress: Any = None, metadata: Any = None, deterministic: bool = False, filters: bool = True
) -> bytes:
    """Like :func:`dump`, returning the file's bytes."""
    from amber.formats._native import encode_to

    buf = io.BytesIO()
    encode_to(
        buf, obj, codec=resolve_compress(compress), metadata=metadata, deterministic=deterministic, filters=filters
    )
    return buf.getvalue()


def _reader(source: Any, verify: bool, whole: bool = False) -> ContainerReader:
    src = open_source(source, whole=whole)
    try:
        return ContainerReader(src, verify=verify, ext_hook=ext_hook)
    except BaseException:
        src.close()
        raise


def load(
    source: PathLike | Any,
    *,
    format: str | None = None,
    mmap: bool = False,
    trusted: Iterable[str] | None = None,
    verify: bool = True,
    with_metadata: bool = False,
    map_location: Any = None,
) -> Any:
    """Load an object saved by amber. Safe: only types on the trust list are rebuilt.

    Args:
        mmap: map uncompressed arrays from the file, read-only and without copying
            (local files only; other sources read normally). Mapped blobs are not hashed,
            since that would read every page; the manifest and all structure still are.
        trusted: extra names (``"mypkg.Model"`` or a module prefix ``"mypkg"``) the load may import.
        verify: check every checksum (default). ``False`` skips the blob hashes.
        with_metadata: return ``(obj, metadata)``.
        map_location: where tensors go, as in ``torch.load``: a device (``"cpu"``,
            ``torch.device("meta")``), a ``{saved: wanted}`` dict, or a callable.
    """
    from amber.formats._native import decode_from

    _format_for(source, format)
    reader = _reader(source, verify, whole=not mmap)
    try:
        options = {"map_location": map_location} if map_location is not None else None
        obj = decode_from(reader, trusted=trusted or (), mmap=mmap, options=options)
        if with_metadata:
            return obj, reader.manifest.get("metadata")
        return obj
    finally:
        reader.close()


def loads(
    data: bytes | bytearray | memoryview,
    *,
    trusted: Iterable[str] | None = None,
    verify: bool = True,
    with_metadata: bool = False,
    map_location: Any = None,
) -> Any:
    """Load an object from bytes made by :func:`dumps`."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"loads() takes bytes, not {type(data).__name__}; use load() for files")
    return load(data, trusted=trusted, verify=verify, with_metadata=with_metadata, map_location=map_location)


def open(source: PathLike | Any, *, trusted: Iterable[str] | None = None, verify: bool = True) -> Any:
    """Open a file lazily: ``f.info``, ``f.metadata``, ``f.keys()``, ``f["a"]["b"][10:20]``.

    Only the manifest is read up front; arrays are read when indexed, and a slice of an
    array reads only the bytes (or compressed chunks) that hold it.
    """
    from amber._lazy import AmberFile

    _format_for(source, None)
    return AmberFile(_reader(source, verify), trusted=tuple(trusted or ()))


def inspect(source: PathLike | Any) -> Any:
    """Describe a file without importing any type in it: formats, versions, environment,
    metadata, needed types and the tree of types, shapes, dtypes and sizes."""
    from amber._inspect import describe

    _format_for(source, None)
    reader = _reader(source, verify=True)
    try:
        return describe(reader)
    finally:
        reader.close()


def untrusted_types(source: PathLike | Any, *, trusted: Iterable[str] | None = None) -> list[str]:
    """The classes and functions a file needs that a load with ``trusted=`` would refuse
    (sorted; empty when it loads as is). Nothing named by the file is imported."""
    from amber.trust import untrusted

    _format_for(source, None)
    reader = _reader(source, verify=True)
    try:
        needs = reader.manifest.get("needs") or []
        if not isinstance(needs, list) or not all(type(n) is str for n in needs):
            raise FormatError(f"{reader.name}: the manifest's list of needed names is malformed")
        return untrusted(needs, tuple(trusted or ()))
    finally:
        reader.close()
