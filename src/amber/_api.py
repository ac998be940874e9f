"""The public functions: dump, dumps, load, loads, open, inspect."""

from __future__ import annotations

import builtins
import gc
import io
import os
from collections.abc import Iterable
from typing import Any

from amber.container._codecs import resolve_compress
from amber.container._io import (
    SMALL_FILE,
    BytesSource,
    FileSource,
    PathLike,
    Source,
    SourceFile,
    is_url,
    open_sink,
    open_source,
)
from amber.container._reader import ContainerReader, sniff
from amber.errors import FormatError, StorageError
from amber.formats._native import decode_from, encode_to
from amber._node import ext_hook

__all__ = ["FORMATS_BY_SUFFIX", "convert", "dump", "dumps", "inspect", "load", "loads", "open", "scan", "untrusted_types"]

#: Suffix -> format name (for dump; load looks at the bytes first).
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
    ".ndjson": "jsonl",
}
#: Formats dump writes.
WRITABLE = ("amber", "pickle", "joblib", "cloudpickle", "json", "jsonl", "hdf5")
#: Formats load reads ("cloudpickle" files are pickles: they load with unsafe=True).
READABLE = ("amber", "pickle", "joblib", "cloudpickle", "torch", "npy", "npz", "json", "jsonl", "hdf5")
#: Formats that store ``metadata=``.
_WITH_METADATA = ("amber", "json", "hdf5")
#: Options only the JSON formats take.
_JSON_DEFAULTS = {"compact": False, "array_lists": 1000}
_COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".lzma", ".zst", ".lz4", ".z")


def _suffix_format(target: Any) -> str | None:
    name = os.fspath(target) if isinstance(target, (str, os.PathLike)) else getattr(target, "name", "")
    if not isinstance(name, str):
        return None
    root, suffix = os.path.splitext(name.lower())
    if suffix in _COMPRESSED_SUFFIXES:  # model.pkl.gz
        suffix = os.path.splitext(root)[1]
    return FORMATS_BY_SUFFIX.get(suffix)


def _format_for(target: Any, fmt: str | None, allowed: tuple[str, ...] = WRITABLE) -> str:
    if fmt is None:
        fmt = _suffix_format(target) or "amber"
    if fmt not in allowed:
        what = "writes" if allowed is WRITABLE else "reads"
        raise FormatError(
            f"format {fmt!r} is not available in this version of amber (it {what} "
            f"{', '.join(allowed)}); pass one of those as format=, or save to a .amber file"
        )
    return fmt


class _GCPaused:
    """The cyclic garbage collector off while a dump or load builds many objects at once:
    every collection it would start walks objects that all stay alive. The one collection
    left due runs at the caller's next allocation; counted in, loading 20,000 small objects
    of user classes took 150 ms against 235 ms with the collector on (best of 7; a 300,000-key
    dict's pickle 184 against 191 ms). It is switched on again afterwards only if it was on
    before (a caller who turned it off keeps it off)."""

    __slots__ = ("was",)

    def __enter__(self) -> None:
        self.was = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc: Any) -> None:
        if self.was:
            gc.enable()


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
    protocol: int | None = None,
    allow_pickle: bool = False,
    compact: bool = False,
    array_lists: int | None = 1000,
) -> None:
    """Save ``obj`` to ``target``: a path, an fsspec URL (``s3://...``) or a binary file object.

    The format comes from ``format=`` or the target's suffix: ``.amber`` (the default, also
    for no or unknown suffixes), ``.pkl``/``.pickle`` (``"pickle"``), ``.joblib``
    (``"joblib"``), ``.json`` (tagged JSON, ``"json"``), ``.jsonl`` (one record per line,
    ``"jsonl"``: ``obj`` is an iterable of records), ``.h5``/``.hdf5`` (``"hdf5"``), and
    ``format="cloudpickle"`` for lambdas and closures.

    Args:
        compress: None (default), True (zstd level 1, with byte-shuffle or row-delta filters for arrays), a codec
            name (``"zstd"``, ``"lz4"``, ``"zlib"``, ``"gzip"``, ``"bz2"``, ``"lzma"``),
            ``"zstd:9"`` or ``("zstd", 9)``. Pickle files compress the whole stream with it;
            joblib files take joblib's own values (0-9, ``"zlib"``, ``("lz4", 3)``, ...).
        metadata: any JSON-like value stored with the file (``amber.open(p).metadata``);
            native, JSON and HDF5 formats.
        deterministic: leave out the creation time, so equal objects give equal bytes.
        durable: fsync the file and its folder before returning (survives power loss, slower).
        filters: let compression byte-shuffle numeric arrays and row-delta 8-bit images
            first (default); ``False`` compresses the raw bytes.
        protocol: the pickle protocol (0-5, default the highest) of pickle-family formats.
        allow_pickle: store the parts that only pickle can hold (a lambda, a closure) as
            quarantined "pickle islands" (with cloudpickle) instead of refusing them;
            everything else stays native. Loading such a file needs ``allow_pickle=True``.
        compact: JSON formats: no indentation (``.jsonl`` records are always compact).
        array_lists: JSON formats: arrays of at most this many numbers are written as
            nested lists, larger ones as base64 (``0``: always base64, ``None``: always lists).

    Writing to a path is atomic: a failed or interrupted dump leaves an earlier file intact.
    """
    fmt = _format_for(target, format)
    _check_options(fmt, metadata=metadata, deterministic=deterministic, allow_pickle=allow_pickle,
                   protocol=protocol, compact=compact, array_lists=array_lists)
    if fmt == "hdf5":
        from amber.formats._hdf5 import dump_hdf5

        dump_hdf5(obj, target, compress=compress, metadata=metadata, durable=durable)
        return
    codec = resolve_compress(compress) if fmt == "amber" else None
    sink = open_sink(target, durable=durable)
    try:
        with _GCPaused():
            _dump_to(fmt, obj, sink.fh, codec=codec, compress=compress, metadata=metadata, compact=compact,
                     array_lists=array_lists, deterministic=deterministic, filters=filters,
                     allow_pickle=allow_pickle, protocol=protocol)
        sink.commit()
    except BaseException:
        sink.discard()
        raise


def _dump_to(fmt: str, obj: Any, fh: Any, *, codec: Any, compress: Any, metadata: Any, compact: bool,
             array_lists: int | None, deterministic: bool, filters: bool, allow_pickle: bool,
             protocol: int | None) -> None:
    """Write ``obj`` to the binary file ``fh`` in format ``fmt`` (any but HDF5)."""
    if fmt in ("json", "jsonl"):
        _dump_json(fmt, obj, fh, compress=compress, metadata=metadata, compact=compact, array_lists=array_lists)
    elif fmt == "amber":
        encode_to(fh, obj, codec=codec, metadata=metadata, deterministic=deterministic, filters=filters,
                  allow_pickle=allow_pickle)
    else:
        _dump_pickled(fmt, obj, fh, protocol, compress)


def _check_options(fmt: str, **options: Any) -> None:
    """Refuse an option the format would silently ignore."""
    for name, value in options.items():
        if name in _JSON_DEFAULTS:
            if fmt not in ("json", "jsonl") and value != _JSON_DEFAULTS[name]:
                raise FormatError(f"{name}= is an option of the JSON formats, not of {fmt!r} files")
        elif name == "protocol":
            if value is not None and fmt not in ("pickle", "joblib", "cloudpickle"):
                raise FormatError(f"protocol= is for pickle-family formats; {fmt!r} files have no protocol")
        elif name == "metadata":
            if value is not None and fmt not in _WITH_METADATA:
                raise FormatError(f"metadata= is stored by the native, JSON and HDF5 formats, not by {fmt!r} files")
        elif name == "deterministic":
            if value and fmt not in ("amber", "json", "jsonl", "hdf5"):
                raise FormatError(f"deterministic= is an option of amber's own formats, not of {fmt!r} files")
        elif value and fmt != "amber":
            raise FormatError(f"{name}= is stored only by the native format, not by {fmt!r} files")


def _dump_json(fmt: str, obj: Any, fh: Any, *, compress: Any, metadata: Any, compact: bool,
               array_lists: int | None) -> None:
    from amber.formats import _json

    if compress is not None:
        raise FormatError(f"compress= is not available for {fmt!r} files: JSON is stored as plain text")
    if fmt == "json":
        _json.dump_json(obj, fh, compact=compact, metadata=metadata, array_lists=array_lists)
    else:
        _json.dump_jsonl(obj, fh)


def _dump_pickled(fmt: str, obj: Any, fh: Any, protocol: int | None, compress: Any) -> None:
    from amber.formats import _pickle

    writer = {"pickle": _pickle.dump_pickle, "joblib": _pickle.dump_joblib, "cloudpickle": _pickle.dump_cloudpickle}
    writer[fmt](obj, fh, protocol=protocol, compress=compress)


def dumps(
    obj: Any,
    *,
    format: str = "amber",
    compress: Any = None,
    metadata: Any = None,
    deterministic: bool = False,
    filters: bool = True,
    protocol: int | None = None,
    allow_pickle: bool = False,
    compact: bool = False,
    array_lists: int | None = 1000,
) -> bytes:
    """Like :func:`dump`, returning the file's bytes."""
    fmt = _format_for(None, format)
    _check_options(fmt, metadata=metadata, deterministic=deterministic, allow_pickle=allow_pickle,
                   protocol=protocol, compact=compact, array_lists=array_lists)
    buf = io.BytesIO()
    if fmt == "hdf5":
        from amber.formats._hdf5 import dump_hdf5

        dump_hdf5(obj, buf, compress=compress, metadata=metadata)
    else:
        with _GCPaused():
            _dump_to(fmt, obj, buf, codec=resolve_compress(compress) if fmt == "amber" else None, compress=compress,
                     metadata=metadata, compact=compact, array_lists=array_lists, deterministic=deterministic,
                     filters=filters, allow_pickle=allow_pickle, protocol=protocol)
    return buf.getvalue()


#: The signature that starts an HDF5 file.
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


_JSON_START = frozenset(b'{["-0123456789tfn"')


def _looks_like_json(head: bytes) -> bool:
    """Could this be the start of a JSON text (after a BOM and white space)?"""
    text = head[3:] if head.startswith(b"\xef\xbb\xbf") else head
    text = text.lstrip(b" \t\r\n")
    return bool(text) and text[0] in _JSON_START


def _detect(src: Source, source: Any = None) -> str:
    """The format of ``src``, from its first bytes (and a zip's member names); JSON text
    is ``"jsonl"`` when the name of ``source`` (or of ``src``) says so."""
    head = src.pread(0, min(64, src.size))
    if sniff(head):
        return "amber"
    from amber.container._streams import sniff_compression
    from amber.formats._npy import NPY_MAGIC
    from amber.formats._torchfile import is_torch_legacy
    from amber.security._walk import starts_like_pickle

    if head.startswith(HDF5_MAGIC):
        return "hdf5"
    if head.startswith(NPY_MAGIC):
        return "npy"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _zip_kind(src)
    if is_torch_legacy(head):
        return "torch"
    if sniff_compression(head) or starts_like_pickle(head):
        return "pickle"
    if _looks_like_json(bytes(head)):
        named = _suffix_format(source if source is not None else src.name)
        return "jsonl" if named == "jsonl" else "json"
    at = 512  # an HDF5 file with a user block: the signature at 512, 1024, 2048, ...
    while at + 8 <= src.size and at <= 1 << 20:
        if bytes(src.pread(at, 8)) == HDF5_MAGIC:
            return "hdf5"
        at *= 2
    raise FormatError(
        f"{src.name}: not an amber file, nor any other format amber reads (it starts with {bytes(head[:8])!r}); "
        "amber reads its own files, JSON, JSONL, HDF5, pickle, joblib, PyTorch (.pt) and NumPy (.npy/.npz) files"
    )


def _zip_kind(src: Source) -> str:
    import zipfile

    from amber.formats._torchfile import is_torch_zip

    try:
        with zipfile.ZipFile(SourceFile(src)) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise FormatError(f"{src.name}: a zip archive amber cannot read ({exc})") from None
    if is_torch_zip(names):
        return "torch"
    if all(n.endswith(".npy") for n in names):
        return "npz"
    raise FormatError(
        f"{src.name}: a zip archive that is neither a PyTorch checkpoint (no */data.pkl member) nor a "
        f".npz file (members {names[:5]}{'...' if len(names) > 5 else ''})"
    )


def _whole(src: Source) -> Any:
    """The whole file as a buffer when that costs no read (a mapping or bytes in memory)."""
    mapped = src.mmap()
    if mapped is not None:
        return mapped
    return src.view if isinstance(src, BytesSource) else None


def load(
    source: PathLike | Any,
    *,
    format: str | None = None,
    mmap: bool = False,
    trusted: Iterable[str] | None = None,
    verify: bool = True,
    with_metadata: bool = False,
    map_location: Any = None,
    unsafe: bool = False,
    allow_pickle: bool = False,
    schema: Any = None,
) -> Any:
    """Load an object. Safe: only types on the trust list are rebuilt, whatever the format.

    Reads amber files, amber's tagged JSON and JSONL (and any plain JSON), HDF5 files (amber's,
    and other tools' as dicts of arrays), pickles (any protocol, also gzip/bz2/xz/zstd/lz4-compressed),
    joblib files (every compression joblib writes), PyTorch ``torch.save`` files (zip and
    legacy) and NumPy ``.npy``/``.npz`` files; the format is recognised from the bytes
    (``format=`` forces one). Pickle-based files are never unpickled with ``pickle.load``:
    their globals go through the same trust list as amber's own files.

    Args:
        mmap: map uncompressed arrays from the file, read-only and without copying
            (local files only; other sources read normally). Mapped blobs are not hashed,
            since that would read every page; the manifest and all structure still are.
        trusted: extra names (``"mypkg.Model"`` or a module prefix ``"mypkg"``) the load may import.
        verify: check every checksum (default). ``False`` skips the blob hashes.
        with_metadata: return ``(obj, metadata)`` (metadata is None for other tools' files).
        map_location: where tensors go, as in ``torch.load``: a device (``"cpu"``,
            ``torch.device("meta")``), a ``{saved: wanted}`` dict, or a callable.
        unsafe: load a pickle-based file with the library that wrote it (``pickle.load``,
            joblib, ``torch.load(weights_only=False)``, ``numpy.load(allow_pickle=True)``),
            with no trust check at all. **That runs whatever code the file carries**: use
            it only for files you made yourself (cloudpickle files need it). For amber
            files it means ``allow_pickle=True``.
        allow_pickle: unpickle the pickle islands of an amber file (parts saved with
            ``dump(..., allow_pickle=True)``). They run code from the file when loaded:
            allow them only for files from someone you trust. Without it, a file with
            islands is refused with a ``PickleIslandError`` naming each one.
        schema: JSON and JSONL: a JSON Schema (a dict, or the path of a schema file) the
            data (each record, for JSONL) must match; a mismatch raises ``SchemaError``
            quoting the failing path.
    """
    obj, metadata, _ = _load(
        source,
        format=format,
        mmap=mmap,
        trusted=trusted,
        verify=verify,
        map_location=map_location,
        unsafe=unsafe,
        allow_pickle=allow_pickle,
        schema=schema,
    )
    return (obj, metadata) if with_metadata else obj


def _load(
    source: Any,
    *,
    format: str | None,
    mmap: bool,
    trusted: Iterable[str] | None,
    verify: bool,
    map_location: Any,
    unsafe: bool,
    allow_pickle: bool,
    schema: Any = None,
) -> tuple[Any, Any, str]:
    """(object, metadata, format) of ``source``."""
    with _GCPaused():
        src = open_source(source)
        try:
            fmt = _detect(src, source) if format is None else _format_for(source, format, READABLE)
            trusted = tuple(trusted or ())
            if schema is not None and fmt not in ("json", "jsonl"):
                raise FormatError(f"schema= validates JSON and JSONL files; {src.name} is a {fmt!r} file")
            if fmt in ("json", "jsonl"):
                from amber.formats import _json

                data = _whole(src)
                if data is None:
                    data = src.pread(0, src.size)
                if fmt == "json":
                    obj, metadata = _json.load_json(data, name=src.name, trusted=trusted, schema=schema)
                    return obj, metadata, fmt
                return _json.load_jsonl(data, name=src.name, trusted=trusted, schema=schema), None, fmt
            if fmt == "hdf5":
                from amber.formats._hdf5 import load_hdf5

                target = src.name if isinstance(src, FileSource) else SourceFile(src)
                options = {"map_location": map_location} if map_location is not None else None
                obj, metadata = load_hdf5(target, name=src.name, trusted=trusted, mmap=mmap, options=options)
                return obj, metadata, fmt
            if fmt == "amber":
                if not mmap and isinstance(src, FileSource) and src.size <= SMALL_FILE:
                    src = src.slurp()  # one read; its arrays become views of that buffer

                reader = ContainerReader(src, verify=verify, ext_hook=ext_hook)
                options: dict[str, Any] = {"map_location": map_location} if map_location is not None else {}
                if allow_pickle or unsafe:
                    options["allow_pickle"] = True
                obj = decode_from(reader, trusted=trusted, mmap=mmap, options=options or None)
                return obj, reader.manifest.get("metadata"), fmt
            obj = _load_other(fmt, src, trusted=trusted, mmap=mmap, unsafe=unsafe, map_location=map_location)
            return obj, None, fmt
        finally:
            src.close()


def _fingerprint(source: Any) -> dict[str, Any]:
    """Name, size and SHA-256 of a source's bytes (for provenance)."""
    import hashlib

    src = open_source(source)
    try:
        h = hashlib.sha256()
        buf = memoryview(bytearray(min(src.size, 8 << 20) or 1))
        pos = 0
        while pos < src.size:
            n = min(len(buf), src.size - pos)
            src.readinto(pos, buf[:n])
            h.update(buf[:n])
            pos += n
        return {"name": os.path.basename(src.name) if not is_url(source) else src.name, "size": src.size,
                "sha256": h.hexdigest()}
    finally:
        src.close()


def convert(
    source: PathLike | Any,
    target: PathLike | Any,
    *,
    format: str | None = None,
    compress: Any = None,
    trusted: Iterable[str] | None = None,
    metadata: Any = None,
    protocol: int | None = None,
    unsafe: bool = False,
    allow_pickle: bool = False,
) -> str:
    """Load ``source`` (any format :func:`load` reads, safely under the trust list) and
    save it to ``target`` (format from ``format=`` or the target's suffix, ``.amber`` by
    default). Returns the format the source was read as.

    An amber target records where it came from (the source's name, format, size and
    SHA-256, shown by ``amber inspect``) and keeps an amber source's metadata unless
    ``metadata=`` replaces it. ``unsafe``/``allow_pickle`` are passed to :func:`load`.
    """
    fmt_out = _format_for(target, format)
    obj, meta, fmt_in = _load(
        source, format=None, mmap=False, trusted=trusted, verify=True, map_location=None, unsafe=unsafe,
        allow_pickle=allow_pickle,
    )
    if fmt_out != "amber":
        keep = metadata if metadata is not None else meta
        dump(obj, target, format=fmt_out, compress=compress, protocol=protocol,
             metadata=keep if fmt_out in _WITH_METADATA else None)
        return fmt_in
    origin = {**_fingerprint(source), "format": fmt_in}
    sink = open_sink(target)
    try:
        encode_to(
            sink.fh,
            obj,
            codec=resolve_compress(compress),
            metadata=metadata if metadata is not None else meta,
            allow_pickle=allow_pickle,
            converted_from=origin,
        )
        sink.commit()
    except BaseException:
        sink.discard()
        raise
    return fmt_in


def _load_other(fmt: str, src: Source, *, trusted: tuple[str, ...], mmap: bool, unsafe: bool, map_location: Any) -> Any:
    def opener() -> Any:
        if isinstance(src, FileSource):  # the C file reader: no Python call per read
            # the file already open, not its path again: what the proof read (whole()) and
            # what is unpickled must be the same file, even if the path changes meanwhile
            fd = os.dup(src.fd)
            os.lseek(fd, 0, os.SEEK_SET)
            return builtins.open(fd, "rb")
        return io.BufferedReader(SourceFile(src), 256 << 10)

    def whole() -> Any:
        return _whole(src)

    mapped = src.mmap() if mmap else None
    if fmt in ("pickle", "joblib", "cloudpickle"):
        from amber.formats._pickle import load_pickled

        return load_pickled(
            opener,
            head=src.pread(0, min(16, src.size)),
            name=src.name,
            size=src.size,
            trusted=trusted,
            unsafe=unsafe,
            mapped=mapped,
            whole=whole,
        )
    if fmt == "npy":
        from amber.formats._npy import load_npy

        if unsafe:
            mapped = None
        return load_npy(
            opener, name=src.name, size=src.size, trusted=trusted, unsafe=unsafe, mapped=mapped, whole=whole
        )
    if fmt == "npz":
        from amber.formats._npy import load_npz

        return load_npz(opener, name=src.name, trusted=trusted, unsafe=unsafe)
    from amber.formats._torchfile import load_torch

    target = src.name if isinstance(src, FileSource) else opener()
    return load_torch(target, name=src.name, trusted=trusted, mmap=mmap, map_location=map_location, unsafe=unsafe)


def loads(
    data: bytes | bytearray | memoryview,
    *,
    trusted: Iterable[str] | None = None,
    verify: bool = True,
    with_metadata: bool = False,
    map_location: Any = None,
    format: str | None = None,
    unsafe: bool = False,
    allow_pickle: bool = False,
    schema: Any = None,
) -> Any:
    """Load an object from bytes made by :func:`dumps` (or any format :func:`load` reads)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"loads() takes bytes, not {type(data).__name__}; use load() for files")
    return load(
        data,
        format=format,
        trusted=trusted,
        verify=verify,
        with_metadata=with_metadata,
        map_location=map_location,
        unsafe=unsafe,
        allow_pickle=allow_pickle,
        schema=schema,
    )


def _opened(source: Any) -> tuple[Source, str]:
    """``source`` opened once, with its format from the first bytes (see :func:`_detect`)."""
    src = open_source(source)
    try:
        return src, _detect(src, source)
    except BaseException:
        src.close()
        raise


def open(source: PathLike | Any, *, trusted: Iterable[str] | None = None, verify: bool = True) -> Any:
    """Open an amber or HDF5 file lazily: ``f.info``, ``f.metadata``, ``f.keys()``,
    ``f["a"]["b"][10:20]`` (HDF5 also ``f["a/b"]``).

    Only the manifest (HDF5: the file's index) is read up front; arrays are read when
    indexed, and a slice of an array reads only the bytes (or compressed chunks) that hold it.
    """
    src, fmt = _opened(source)
    if fmt == "amber":
        from amber._lazy import AmberFile

        try:
            return AmberFile(ContainerReader(src, verify=verify, ext_hook=ext_hook), trusted=tuple(trusted or ()))
        except BaseException:
            src.close()
            raise
    src.close()
    if fmt == "hdf5":  # h5py opens a local file by name, anything else as a file object
        from amber.formats._hdf5 import open_hdf5

        return open_hdf5(_local_or_file(source), name=_name_of(source), trusted=tuple(trusted or ()))
    raise FormatError(
        f"{_name_of(source)}: amber.open gives lazy access to amber and HDF5 files; this is a {fmt!r} "
        "file: read it whole with amber.load"
    )


def _name_of(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return str(getattr(source, "name", "<file object>"))


def _local_or_file(source: Any) -> Any:
    """A local path as a str (h5py opens it by name); a URL as an fsspec file object;
    a file object as it is."""
    if isinstance(source, str) and source.startswith("file://"):
        source = source[len("file://") :]
    if is_url(source):
        import fsspec

        try:
            return fsspec.open(source, "rb").open()
        except Exception as exc:
            raise StorageError(f"cannot open {source}: {exc}") from exc
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return io.BytesIO(source)
    return source


def inspect(source: PathLike | Any) -> Any:
    """Describe a file without importing any type in it: formats, versions, environment,
    metadata, needed types and the tree of types, shapes, dtypes and sizes."""
    from amber._inspect import describe

    src, fmt = _opened(source)
    try:
        if fmt == "amber":
            return describe(ContainerReader(src, verify=True, ext_hook=ext_hook))
        if fmt in ("json", "jsonl", "hdf5"):
            return _describe_other(fmt, src)
        raise FormatError(
            f"{src.name}: amber inspect describes amber, JSON and HDF5 files; this is a {fmt!r} "
            "file: use amber.scan (or `amber scan`) to see what it would import and run"
        )
    finally:
        src.close()


def _describe_other(fmt: str, src: Source) -> Any:
    """``inspect`` of an open JSON, JSONL or HDF5 source."""
    if fmt == "hdf5":
        from amber.formats._hdf5 import describe_hdf5

        # h5py opens a local file by name, anything else through the Source
        return describe_hdf5(src.name if isinstance(src, FileSource) else src, name=src.name, size=src.size)
    from amber.formats._json import describe_json

    data = _whole(src)
    if data is None:
        data = src.pread(0, src.size)
    return describe_json(data, name=src.name, size=src.size)


def untrusted_types(source: PathLike | Any, *, trusted: Iterable[str] | None = None) -> list[str]:
    """The classes and functions a file needs that a load with ``trusted=`` would refuse
    (sorted; empty when it loads as is). Nothing named by the file is imported. For
    pickle-based files (pickle, joblib, PyTorch, object ``.npy``) the names come from the
    scanner's static walk of their pickles (:func:`scan`)."""
    from amber.trust import untrusted

    src, fmt = _opened(source)
    try:
        if fmt in ("json", "jsonl", "hdf5"):
            return sorted(untrusted(_describe_other(fmt, src).needs, tuple(trusted or ())))
        if fmt != "amber":
            from amber.security._scan import scan_file

            report = scan_file(SourceFile(src), trusted=tuple(trusted or ()), name=src.name)
            return sorted(n for n, status in report.globals.items() if status != "trusted")
        reader = ContainerReader(src, verify=True, ext_hook=ext_hook)
        needs = reader.manifest.get("needs") or []
        if not isinstance(needs, list) or not all(type(n) is str for n in needs):
            raise FormatError(f"{reader.name}: the manifest's list of needed names is malformed")
        return untrusted(needs, tuple(trusted or ()))
    finally:
        src.close()

def scan(
    paths: PathLike | Iterable[PathLike] | Any,
    *,
    recursive: bool = False,
    trusted: Iterable[str] | None = None,
) -> Any:
    """Statically check pickle-based files (pickle, joblib, PyTorch, NumPy, zip archives)
    and amber files for code they would run when loaded, without loading or importing
    anything from them. Returns a report: ``.verdict`` (``"safe"``, ``"unknown"``,
    ``"dangerous"``, ``"error"``), ``.files`` (one report per file, with its findings),
    ``.exit_code``, ``.to_json()``, ``.to_sarif()``; ``str(report)`` is a summary table.

    ``recursive``: scan every file below the folders among ``paths``. ``trusted``: extra
    names to treat as trusted, as for :func:`load`.
    """
    from amber.security._scan import scan as _scan

    return _scan(paths, recursive=recursive, trusted=tuple(trusted or ()))
