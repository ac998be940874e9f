"""Whole-stream compression for formats that are one byte stream (pickle, joblib, JSON).

The native format compresses blob by blob (see :mod:`amber.container._codecs`); formats
made by other tools compress the whole file. This module writes such streams and
recognises them by their magic bytes, so a ``.pkl.gz``, a ``joblib.dump(compress=3)``
file or a zstd-compressed pickle all load the same way.
"""

from __future__ import annotations

import io
import zlib
from typing import IO, Any

from amber.container._codecs import resolve_compress
from amber.errors import FormatError

__all__ = ["STREAM_CODECS", "compressed_reader", "compressed_writer", "sniff_compression"]

#: Magic bytes of the compressed streams amber reads, longest first.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x04\x22\x4d\x18", "lz4"),
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\x5d\x00\x00", "lzma"),  # the "alone" format joblib writes for compress="lzma"
)
#: Codec names accepted by ``compress=`` for whole-stream formats.
STREAM_CODECS = ("zstd", "lz4", "zlib", "gzip", "bz2", "lzma", "xz")


def sniff_compression(head: bytes) -> str | None:
    """The compression of a stream starting with ``head`` (16 bytes suffice), or None."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    # zlib: CMF 0x78 and a header checksum (what joblib's compress=True writes)
    if len(head) >= 2 and head[0] == 0x78 and (head[0] << 8 | head[1]) % 31 == 0:
        return "zlib"
    return None


class _ZlibReader(io.RawIOBase):
    """A raw zlib stream as a readable file (the stdlib has one only for gzip). Each step
    inflates at most 64 KiB, so a small hostile stream cannot expand all at once."""

    _STEP = 1 << 16

    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh
        self._d = zlib.decompressobj()
        self._buf = memoryview(b"")
        self._eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._buf:
            if self._d.unconsumed_tail:
                self._buf = memoryview(self._d.decompress(self._d.unconsumed_tail, self._STEP))
            elif self._eof or self._d.eof:
                return 0
            else:
                chunk = self._fh.read(self._STEP)
                if chunk:
                    self._buf = memoryview(self._d.decompress(chunk, self._STEP))
                else:
                    self._eof = True
                    self._buf = memoryview(self._d.flush())
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


class _ZlibWriter(io.RawIOBase):
    def __init__(self, fh: IO[bytes], level: int) -> None:
        self._fh = fh
        self._c = zlib.compressobj(level)

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self._fh.write(self._c.compress(b))
        return len(memoryview(b))

    def close(self) -> None:
        if not self.closed:
            self._fh.write(self._c.flush())
        super().close()


def compressed_reader(fh: IO[bytes], kind: str) -> IO[bytes]:
    """A buffered reader of the decompressed bytes of ``fh``, a ``kind`` stream."""
    if kind == "gzip":
        import gzip

        return gzip.GzipFile(fileobj=fh, mode="rb")  # type: ignore[return-value]
    if kind == "bz2":
        import bz2

        return bz2.BZ2File(fh, "rb")  # type: ignore[return-value]
    if kind in ("xz", "lzma"):
        import lzma

        return lzma.LZMAFile(fh, "rb")  # type: ignore[return-value]
    if kind == "zlib":
        return io.BufferedReader(_ZlibReader(fh), 1 << 16)  # type: ignore[return-value]
    if kind == "zstd":
        try:
            import zstandard
        except ImportError:
            raise FormatError("this file is zstd-compressed: pip install 'amber[zstd]' to read it") from None
        raw = zstandard.ZstdDecompressor().stream_reader(fh, read_across_frames=True)
        return io.BufferedReader(raw, 1 << 16)  # type: ignore[arg-type,return-value]
    if kind == "lz4":
        try:
            import lz4.frame
        except ImportError:
            raise FormatError("this file is lz4-compressed: pip install 'amber[lz4]' to read it") from None
        return lz4.frame.LZ4FrameFile(fh, "rb")  # type: ignore[return-value]
    raise FormatError(f"unknown stream compression {kind!r}")


def compressed_writer(fh: IO[bytes], compress: Any) -> tuple[IO[bytes], str] | None:
    """A writer that compresses into ``fh`` per ``compress=`` (None when it means no
    compression), with the codec's name. Closing the writer finishes the stream but
    leaves ``fh`` open."""
    name = compress.partition(":")[0] if isinstance(compress, str) else None
    if name == "xz":
        compress = "lzma" + compress[2:]
    codec = resolve_compress(compress)
    if codec is None:
        return None
    level = codec.level
    if codec.name == "gzip":
        import gzip

        return gzip.GzipFile(fileobj=fh, mode="wb", compresslevel=level, mtime=0), "gzip"  # type: ignore[return-value]
    if codec.name == "bz2":
        import bz2

        return bz2.BZ2File(fh, "wb", compresslevel=level), "bz2"  # type: ignore[return-value]
    if codec.name == "lzma":
        import lzma

        return lzma.LZMAFile(fh, "wb", preset=level), "xz"  # type: ignore[return-value]
    if codec.name == "zlib":
        return io.BufferedWriter(_ZlibWriter(fh, level), 1 << 20), "zlib"  # type: ignore[return-value]
    if codec.name == "zstd":
        import zstandard

        w = zstandard.ZstdCompressor(level=level).stream_writer(fh, closefd=False)
        return w, "zstd"  # type: ignore[return-value]
    import lz4.frame

    return lz4.frame.LZ4FrameFile(fh, "wb", compression_level=level), "lz4"  # type: ignore[return-value]
