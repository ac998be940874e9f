"""Compression codecs for blob chunks, and the byte-shuffle filter.

A codec is named in the manifest as ``{"name": "zstd", "configuration": {"level": 3}}``.
Every codec compresses one chunk to one self-contained byte string; chunks of a blob are
independent, so they compress and decompress in parallel and a slice needs only its chunks.
The stdlib codecs (zlib, gzip, bz2, lzma) are always there; zstd and lz4 come with the
``amber[zstd]`` and ``amber[lz4]`` extras and are imported on first use.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from amber.errors import AmberError, CorruptFileError, FormatError

__all__ = ["Codec", "CODECS", "DEFAULT_CODEC", "Filter", "filter_from_manifest", "resolve_compress"]


@dataclass(frozen=True)
class Codec:
    """One configured codec: a name, a level, and how far one byte can expand on decode."""

    name: str
    level: int | None
    #: Upper bound of raw bytes per stored byte; a file declaring more is refused before allocation.
    max_ratio: int

    def to_dict(self) -> dict[str, Any]:
        conf = {} if self.level is None else {"level": self.level}
        return {"name": self.name, "configuration": conf}

    def compress(self, data: Any) -> bytes:
        return _IMPL[self.name][0](data, self.level)

    def decompress(self, data: Any, raw_size: int) -> bytes:
        try:
            out = _IMPL[self.name][1](data, raw_size)
        except AmberError:
            raise
        except Exception as exc:  # each library raises its own error type on bad input
            raise CorruptFileError(f"{self.name} could not decompress a chunk: {exc}") from None
        if len(out) != raw_size:
            raise CorruptFileError(
                f"{self.name} chunk decompressed to {len(out)} bytes, the manifest declares {raw_size}"
            )
        return out


_local = threading.local()


def _zstd_module() -> Any:
    try:
        import zstandard
    except ImportError:  # pragma: no cover - depends on the environment
        raise AmberError("the zstd codec needs the zstandard package: pip install 'amber[zstd]'") from None
    return zstandard


def _zstd_c(data: Any, level: int | None) -> bytes:
    cache = getattr(_local, "zc", None)
    if cache is None:
        cache = _local.zc = {}
    c = cache.get(level)
    if c is None:
        c = cache[level] = _zstd_module().ZstdCompressor(level=3 if level is None else level)
    return c.compress(data)


def _zstd_d(data: Any, raw: int) -> bytes:
    zstd = _zstd_module()
    # A frame names its own size, and zstandard allocates that much whatever the cap:
    # refuse a frame whose size disagrees with the manifest before it allocates anything.
    size = zstd.get_frame_parameters(data).content_size
    if size != zstd.CONTENTSIZE_UNKNOWN and size != raw:
        raise CorruptFileError(f"zstd frame declares {size} bytes, the manifest {raw}")
    d = getattr(_local, "zd", None)
    if d is None:
        d = _local.zd = zstd.ZstdDecompressor()
    return d.decompress(data, max_output_size=raw)


def _lz4_block() -> Any:
    try:
        import lz4.block
    except ImportError:  # pragma: no cover
        raise AmberError("the lz4 codec needs the lz4 package: pip install 'amber[lz4]'") from None
    return lz4.block


def _lz4_c(data: Any, level: int | None) -> bytes:
    blk = _lz4_block()
    if level and level > 0:
        return blk.compress(data, mode="high_compression", compression=level, store_size=False)
    return blk.compress(data, mode="fast", acceleration=1, store_size=False)


def _lz4_d(data: Any, raw: int) -> bytes:
    return _lz4_block().decompress(data, uncompressed_size=raw)


def _zlib_c(data: Any, level: int | None) -> bytes:
    import zlib

    return zlib.compress(data, 6 if level is None else level)


def _zlib_d(data: Any, raw: int) -> bytes:
    import zlib

    d = zlib.decompressobj()
    out = d.decompress(data, raw)
    if d.unconsumed_tail or not d.eof:
        raise CorruptFileError("zlib chunk is longer than declared or truncated")
    return out


def _gzip_c(data: Any, level: int | None) -> bytes:
    import gzip

    return gzip.compress(data, 6 if level is None else level, mtime=0)


def _gzip_d(data: Any, raw: int) -> bytes:
    import zlib

    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = d.decompress(data, raw)
    if d.unconsumed_tail or not d.eof:
        raise CorruptFileError("gzip chunk is longer than declared or truncated")
    return out


def _bz2_c(data: Any, level: int | None) -> bytes:
    import bz2

    return bz2.compress(data, 9 if level is None else level)


def _bz2_d(data: Any, raw: int) -> bytes:
    import bz2

    d = bz2.BZ2Decompressor()
    out = d.decompress(data, max_length=raw)
    if not d.eof:
        raise CorruptFileError("bz2 chunk is longer than declared or truncated")
    return out


def _lzma_c(data: Any, level: int | None) -> bytes:
    import lzma

    return lzma.compress(data, format=lzma.FORMAT_XZ, preset=6 if level is None else level)


def _lzma_d(data: Any, raw: int) -> bytes:
    import lzma

    d = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
    out = d.decompress(data, max_length=raw)
    if not d.eof:
        raise CorruptFileError("lzma chunk is longer than declared or truncated")
    return out


_IMPL: dict[str, tuple[Callable[[Any, Any], bytes], Callable[[Any, int], bytes]]] = {
    "zstd": (_zstd_c, _zstd_d),
    "lz4": (_lz4_c, _lz4_d),
    "zlib": (_zlib_c, _zlib_d),
    "gzip": (_gzip_c, _gzip_d),
    "bz2": (_bz2_c, _bz2_d),
    "lzma": (_lzma_c, _lzma_d),
}

#: name -> (level range, default level, max expansion ratio of the format)
CODECS: dict[str, tuple[range, int | None, int]] = {
    "zstd": (range(-7, 23), 3, 1 << 16),
    "lz4": (range(0, 17), 0, 256),
    "zlib": (range(0, 10), 6, 1100),
    "gzip": (range(0, 10), 6, 1100),
    "bz2": (range(1, 10), 9, 1 << 26),
    "lzma": (range(0, 10), 6, 1 << 26),
}

#: What ``compress=True`` means: fast to write and read, and smaller than zlib. Measured on
#: photos (with the delta filter) and float weights (with shuffle), level 1 compresses as
#: well as level 3 at twice the speed.
DEFAULT_CODEC = ("zstd", 1)


def _make(name: str, level: int | None) -> Codec:
    levels, default, ratio = CODECS[name]
    if level is None:
        level = default
    if level is not None and level not in levels:
        raise ValueError(
            f"compression level {level} is out of range for {name}: use {levels.start}..{levels.stop - 1}"
        )
    return Codec(name, level, ratio)


def split_compress(compress: Any, hint: str = "a codec name like 'zstd', 'zstd:9', or ('zstd', 9)") -> tuple[Any, Any]:
    """``(name, level)`` of a ``compress=`` value other than None/True/False: a name
    (``"zstd"``), ``"zstd:9"``, a ``(name, level)`` pair or ``{"name": ..., "level": ...}``
    (level None when not given). ValueError, ending with ``hint``, for anything else."""
    level: Any = None
    if isinstance(compress, str):
        name, _, lv = compress.partition(":")
        if lv:
            try:
                level = int(lv)
            except ValueError:
                raise ValueError(f"compress={compress!r}: the level after ':' must be an integer") from None
    elif isinstance(compress, tuple) and len(compress) == 2:
        name, level = compress
    elif isinstance(compress, dict):
        name, level = compress.get("name"), compress.get("level")
    else:
        raise ValueError(f"compress={compress!r} is not understood: pass True, {hint}")
    return name, level


def resolve_compress(compress: Any) -> Codec | None:
    """Turn the ``compress=`` argument into a Codec (or None for no compression).

    Accepts None/False, True, a codec name (``"zstd"``), ``"zstd:9"``, a ``(name, level)``
    pair, or a dict ``{"name": ..., "level": ...}``.
    """
    if compress is None or compress is False:
        return None
    if compress is True:
        return _make(*DEFAULT_CODEC)
    name, level = split_compress(compress)
    if name not in CODECS:
        raise ValueError(f"unknown codec {name!r}: choose one of {', '.join(CODECS)}")
    return _make(name, level)


def codec_from_manifest(entry: Any, where: str) -> Codec:
    """Read a codec description from a manifest, refusing anything malformed."""
    if not isinstance(entry, dict) or entry.get("name") not in CODECS:
        raise FormatError(f"{where}: unknown codec {entry!r}; this amber knows {', '.join(CODECS)}")
    conf = entry.get("configuration") or {}
    level = conf.get("level") if isinstance(conf, dict) else None
    if level is not None and type(level) is not int:
        raise FormatError(f"{where}: codec level {level!r} is not an integer")
    _, _, ratio = CODECS[entry["name"]]
    return Codec(entry["name"], level, ratio)


class Filter:
    """A reversible byte transform applied to each chunk before compression.

    * ``shuffle`` (``itemsize``): all first bytes of every item, then all second bytes, ...
      Numbers that share exponents or high bytes then compress far better.
    * ``delta`` (``stride``): every byte minus the byte ``stride`` before it (mod 256),
      the first ``stride`` bytes of a chunk kept. With ``stride`` = one image row this is
      PNG's "Up" predictor: photos shrink by a third more and still decode at memory speed.

    A chunk's length is a multiple of the ``size`` of the filter.
    """

    __slots__ = ("name", "size")

    def __init__(self, name: str, size: int) -> None:
        if name not in ("shuffle", "delta"):
            raise ValueError(f"unknown filter {name!r}")
        self.name = name
        self.size = size

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, ("itemsize" if self.name == "shuffle" else "stride"): self.size}

    def apply(self, raw: memoryview) -> Any:
        a = np.frombuffer(raw, dtype=np.uint8)
        if self.name == "shuffle":
            return a.reshape(-1, self.size).T.tobytes()
        k = self.size
        out = np.empty_like(a)
        out[:k] = a[:k]
        np.subtract(a[k:], a[:-k], out=out[k:])
        return out

    def undo(self, data: Any, out: memoryview) -> None:
        dst = np.frombuffer(out, dtype=np.uint8)
        src = np.frombuffer(data, dtype=np.uint8)
        if self.name == "shuffle":
            dst.reshape(-1, self.size)[...] = src.reshape(self.size, -1).T
            return
        dst[...] = src
        rows = dst.reshape(-1, self.size)
        k, n = 1, rows.shape[0]
        while k < n:  # prefix sum over rows by doubling: log2(rows) vectorised passes
            rows[k:] += rows[:-k]
            k *= 2


def filter_from_manifest(entry: Any, where: str) -> Filter | None:
    if entry is None:
        return None
    if isinstance(entry, dict):
        name = entry.get("name")
        size = entry.get("itemsize" if name == "shuffle" else "stride")
        if name in ("shuffle", "delta") and type(size) is int and 1 <= size <= (16 if name == "shuffle" else 1 << 24):
            return Filter(name, size)
    raise FormatError(f"{where}: unknown or malformed filter {entry!r:.80}")
