"""Streaming writer of the native container: header, aligned blobs, manifest, trailer.

Everything is written in one forward pass, so the target may be a pipe or a socket.
Uncompressed blobs are written straight from the caller's memory (no copy) while their
checksums are computed on another core; compressed blobs are cut into chunks that are
compressed in parallel and written in order.
"""

from __future__ import annotations

import zlib
from collections import deque
from concurrent.futures import Future
from typing import Any, BinaryIO

import msgpack
import xxhash

from amber.container._codecs import Codec, Filter
from amber.container._pool import WORKERS, hasher, pool
from amber.container._spec import (
    FLAG_MANIFEST_ZLIB,
    MANIFEST_ZLIB_ABOVE,
    MANIFEST_ZLIB_UPTO,
    ALIGN,
    COMPRESSED_CHUNK,
    FORMAT_VERSION,
    HASH_BLOCK,
    HEADER,
    HEADER_SIZE,
    MAGIC,
    MAGIC_END,
    MAX_CHUNK,
    TRAILER,
)

__all__ = ["ContainerWriter"]

_hash = xxhash.xxh3_64_intdigest
_ZEROS = bytes(ALIGN)
#: Hash inline (no thread hand-off) below this many bytes.
_SMALL = 4 * HASH_BLOCK
#: Compress inline below this many bytes (a thread hand-off costs more than it saves).
_TINY = 16 << 10
#: At most this many raw bytes queued for compression before the writer waits.
_INFLIGHT = 32 << 20
#: Uncompressed blobs get at most about this many checksum blocks.
_MAX_BLOCKS = 128


def hash_block_for(n: int) -> int:
    """Checksum block size of an uncompressed blob: 1 MiB, doubled until at most
    ``_MAX_BLOCKS`` blocks cover the blob (so the blob table stays small for big arrays)."""
    block = HASH_BLOCK
    while n > block * _MAX_BLOCKS and block < MAX_CHUNK:
        block *= 2
    return block


def _hash_blocks(data: memoryview, block: int) -> list[list[int]]:
    n = data.nbytes
    return [[min(block, n - i), _hash(data[i : i + block])] for i in range(0, n, block)]


def _compress_chunk(codec: Codec, raw: memoryview, filt: Filter | None) -> tuple[bytes, int]:
    out = codec.compress(raw if filt is None else filt.apply(raw))
    return out, _hash(out)


class ContainerWriter:
    """Write blobs as they come, then the manifest; ``pos`` counts bytes written."""

    def __init__(self, fh: BinaryIO, codec: Codec | None = None, filters: bool = True) -> None:
        self.fh = fh
        self.codec = codec
        self.filters = filters
        self.pos = 0
        self.blobs: list[dict[str, Any]] = []
        self._pending: deque[tuple[dict[str, Any], int, int, Future[tuple[bytes, int]], int]] = deque()
        self._inflight = 0
        self._hashing: list[tuple[dict[str, Any], Future[list[list[int]]]]] = []
        header = HEADER.pack(MAGIC, FORMAT_VERSION[0], FORMAT_VERSION[1], 0)
        self._write(header + bytes(HEADER_SIZE - len(header)))

    def _write(self, data: Any) -> None:
        self.fh.write(data)
        self.pos += memoryview(data).nbytes

    def _align(self) -> None:
        pad = -self.pos % ALIGN
        if pad:
            self._write(_ZEROS[:pad])

    def add_blob(self, data: memoryview, filt: Filter | tuple[str, int] | None = None) -> int:
        """Queue a blob (a flat ``'B'`` view) and return its index in the blob table.

        ``filt`` is applied to each chunk before compression (ignored when not compressing,
        or when the blob's length is not a multiple of the filter's size).
        The caller keeps ``data`` alive and unchanged until :meth:`finish`.
        """
        index = len(self.blobs)
        n = data.nbytes
        codec = self.codec if n else None
        entry: dict[str, Any] = {"offset": 0, "nbytes": n, "stored": 0}
        self.blobs.append(entry)
        if codec is None:
            self._drain(0)
            self._write_plain(entry, data)
            return index
        if isinstance(filt, tuple):
            filt = Filter(*filt)
        if filt is not None and (not self.filters or n % filt.size or filt.size * 2 > COMPRESSED_CHUNK):
            filt = None
        unit = 1 if filt is None else filt.size
        step = max(unit, COMPRESSED_CHUNK // unit * unit)
        entry["codec"] = codec.to_dict()
        if filt is not None:
            entry["filter"] = filt.to_dict()
        entry["chunk"] = step
        entry["chunks"] = []
        last = -(-n // step) - 1
        if n <= _TINY and not self._pending:  # small and nothing queued: no hand-off
            self._write_chunk(entry, 0, last, _compress_chunk(codec, data, filt))
            return index
        ex = pool()
        for k, i in enumerate(range(0, n, step)):
            raw = data[i : i + step]
            self._pending.append((entry, k, last, ex.submit(_compress_chunk, codec, raw, filt), raw.nbytes))
            self._inflight += raw.nbytes
            self._drain(_INFLIGHT)
        return index

    def _write_plain(self, entry: dict[str, Any], data: memoryview) -> None:
        n = data.nbytes
        block = hash_block_for(n)
        self._align()
        entry["offset"] = self.pos
        entry["stored"] = n
        entry["chunk"] = block
        if n <= _SMALL:  # a thread hand-off per small blob costs more than it saves
            entry["chunks"] = _hash_blocks(data, block)
        else:  # checksums on another core while this thread writes; collected in finish()
            self._hashing.append((entry, hasher().submit(_hash_blocks, data, block)))
        self._write(data)

    def _write_chunk(self, entry: dict[str, Any], k: int, last: int, result: tuple[bytes, int]) -> None:
        out, h = result
        if k == 0:
            self._align()
            entry["offset"] = self.pos
        self._write(out)
        entry["chunks"].append([len(out), h])
        if k == last:
            entry["stored"] = self.pos - entry["offset"]

    def _drain(self, limit: int) -> None:
        """Write finished chunks in order; wait while more than ``limit`` raw bytes are queued."""
        pending = self._pending
        while pending and (self._inflight > limit or len(pending) > 8 * WORKERS or pending[0][3].done()):
            entry, k, last, fut, n = pending.popleft()
            self._write_chunk(entry, k, last, fut.result())
            self._inflight -= n

    def abort(self) -> None:
        """Drop queued work after a failure: cancel what has not started, wait for the rest
        (it reads the caller's buffers), discard every result."""
        futs = [fut for _, fut in self._hashing] + [item[3] for item in self._pending]
        for fut in futs:
            fut.cancel()
        for fut in futs:
            if not fut.cancelled():
                fut.exception()
        self._hashing.clear()
        self._pending.clear()

    def finish(self, manifest: dict[str, Any]) -> int:
        """Write outstanding blobs, the manifest and the trailer; return the file size."""
        self._drain(-1)
        for entry, fut in self._hashing:
            entry["chunks"] = fut.result()
        self._hashing.clear()
        self._align()
        manifest["blobs"] = self.blobs
        raw = msgpack.packb(manifest, use_bin_type=True)
        flags = 0
        # Models with many parts repeat names a lot; a large manifest (a big dict's keys and
        # values) would cost more time to compress than the bytes are worth.
        if MANIFEST_ZLIB_ABOVE < len(raw) <= MANIFEST_ZLIB_UPTO:
            packed = zlib.compress(raw, 1)
            if len(packed) < len(raw) * 0.9:
                raw, flags = packed, FLAG_MANIFEST_ZLIB
        offset = self.pos
        self._write(raw)
        self._write(
            TRAILER.pack(offset, len(raw), _hash(raw), FORMAT_VERSION[0], FORMAT_VERSION[1], flags, MAGIC_END)
        )
        return self.pos
