"""Constants of the native container layout (see docs/format.md)."""

from __future__ import annotations

import struct

__all__ = [
    "ALIGN",
    "FORMAT_VERSION",
    "HASH_BLOCK",
    "HEADER",
    "HEADER_SIZE",
    "MAGIC",
    "MAGIC_END",
    "MAX_CHUNK",
    "TRAILER",
    "TRAILER_SIZE",
    "COMPRESSED_CHUNK",
    "FLAG_MANIFEST_ZLIB",
    "MANIFEST_ZLIB_ABOVE",
    "MANIFEST_ZLIB_UPTO",
    "MANIFEST_MAX_RATIO",
]

#: First 8 bytes of every amber file (PNG-style: a high byte, the name, CR LF, ^Z, LF).
MAGIC = b"\x89AMB\r\n\x1a\n"
#: Last 8 bytes of every complete amber file.
MAGIC_END = b"AMBEREND"
#: (major, minor) written by this amber; readers accept this and anything older.
FORMAT_VERSION = (1, 0)
#: Every blob starts at a multiple of this many bytes from the start of the file.
ALIGN = 64

#: magic, major, minor, flags; padded with zeros to HEADER_SIZE.
HEADER = struct.Struct("<8sHHI")
HEADER_SIZE = 64
#: manifest offset, manifest length, manifest xxh3-64, major, minor, flags, magic end.
TRAILER = struct.Struct("<QQQHHI8s")
#: Trailer flag: the manifest bytes are a zlib stream of the msgpack manifest.
FLAG_MANIFEST_ZLIB = 1
#: Writers compress manifests larger than this many bytes (when that saves 10% or more)...
MANIFEST_ZLIB_ABOVE = 4096
#: ...and no larger than this (compressing a big data manifest costs more than it saves).
MANIFEST_ZLIB_UPTO = 1 << 20
#: A compressed manifest may expand to at most this many times its size (plus 1 MiB).
MANIFEST_MAX_RATIO = 256
TRAILER_SIZE = TRAILER.size  # 40

#: Uncompressed blobs carry one checksum per block of (at least) this many bytes.
HASH_BLOCK = 1 << 20
#: Compressed blobs are cut into independently compressed chunks of (about) this many raw bytes.
COMPRESSED_CHUNK = 1 << 20
#: No chunk or hash block in a valid file declares more raw bytes than this.
MAX_CHUNK = 1 << 30
