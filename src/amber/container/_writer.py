"""Streaming writer of the native container: header, aligned blobs, manifest, trailer.

Everything is written in one forward pass, so the target may be a pipe or a socket.
Uncompressed blobs are written straight from the caller's memory (no copy) while their
checksums are computed on another core; compressed blobs are cut into chunks that are
compressed in parallel and written in order.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future
from typing import Any, BinaryIO

import msgpack
import xxhash

from amber.container._codecs import Codec, Filter
from amber.container._pool import WORKERS, pool
from amber.container._spec import (
    ALIGN,
    COMPRESSED_CHUNK,
    FORMAT_VERSION,
    HASH_BLOCK,
    HEADER,
    HEADER_SIZE,
    MAGIC,
    MAGIC_END,
    TRAILER,
)

__all__ = ["ContainerWriter"]

_hash = xxhash.xxh3_64_intdigest
_ZEROS = bytes(ALIGN)
#: Inline (no thread hand-off) below this many bytes.
_SMALL = 4 * HASH_BLOCK
#: At most this many raw bytes queued for compression before the writer waits.
_INFLIGHT = 64 << 20


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
        self._pending: deque[tuple[dict[str, Any], list[Future[tuple[bytes, int]]], int]] = deque()
        self._inflight = 0
        header = HEADER.pack(MAGIC, FORMAT_VERSION[0], FORMAT_VERSION[1], 0)
        self._write(header + bytes(HEADER_SIZE - len(header)))

    def _write(self, data: Any) -> None:
        self.fh.write(data)
        self.pos += memoryview(data).nbytes

    def _align(self) -> None:
        pad = -self.pos % ALIGN
        if pad:
            self._write(_ZEROS[:pad])

    def add_blob(self, data: memoryview, filt: Filter | tuple[str, int] | None = None, compress: bool = True) -> int:
        """Queue a blob (a flat ``'B'`` view) and return its index in the blob table.

        ``filt`` is applied to each chunk before compression (ignored when not compressing,
        or when the blob's length is not a multiple of the filter's size).
        The caller keeps ``data`` alive and unchanged until :meth:`finish`.
        """
        index = len(self.blobs)
        n = data.nbytes
        codec = self.codec if compress and n else None
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
        if n <= step and not self._pending:  # one chunk and nothing queued: do it here
            out, h = _compress_chunk(codec, data, filt)
            self._write_chunks(entry, [(out, h)])
            return index
        ex = pool()
        futs = [ex.submit(_compress_chunk, codec, data[i : i + step], filt) for i in range(0, n, step)]
        self._pending.append((entry, futs, n))
        self._inflight += n
        self._drain(_INFLIGHT)
        return index

    def _write_plain(self, entry: dict[str, Any], data: memoryview) -> None:
        n = data.nbytes
        self._align()
        entry["offset"] = self.pos
        entry["stored"] = n
        entry["chunk"] = HASH_BLOCK
        if n <= _SMALL:
            hashes = [_hash(data[i : i + HASH_BLOCK]) for i in range(0, n, HASH_BLOCK)]
            self._write(data)
        else:  # hash on the other cores while this thread writes
            ex = pool()
            futs = [ex.submit(_hash, data[i : i + HASH_BLOCK]) for i in range(0, n, HASH_BLOCK)]
            self._write(data)
            hashes = [f.result() for f in futs]
        entry["chunks"] = [
            [min(HASH_BLOCK, n - i * HASH_BLOCK), h] for i, h in enumerate(hashes)
        ]

    def _write_chunks(self, entry: dict[str, Any], results: list[tuple[bytes, int]]) -> None:
        self._align()
        entry["offset"] = self.pos
        chunks = []
        for out, h in results:
            self._write(out)
            chunks.append([len(out), h])
        entry["stored"] = self.pos - entry["offset"]
        entry["chunks"] = chunks

    def _drain(self, limit: int) -> None:
        """Write finished blobs in order until at most ``limit`` raw bytes are queued."""
        while self._pending and (
            self._inflight > limit
            or len(self._pending) > 4 * WORKERS
            or all(f.done() for f in self._pending[0][1])
        ):
            entry, futs, n = self._pending.popleft()
            self._write_chunks(entry, [f.result() for f in futs])
            self._inflight -= n

    def abort(self) -> None:
        """Drop queued work after a failure (results are discarded)."""
        for _, futs, _ in self._pending:
            for f in futs:
                f.cancel()
        for _, futs, _ in self._pending:
            for f in futs:
                if not f.cancelled():
                    try:
                        f.result()
                    except Exception:
                        pass
        self._pending.clear()

    def finish(self, manifest: dict[str, Any]) -> int:
        """Write outstanding blobs, the manifest and the trailer; return the file size."""
        self._drain(-1)
        self._align()
        manifest["blobs"] = self.blobs
        raw = msgpack.packb(manifest, use_bin_type=True)
        offset = self.pos
        self._write(raw)
        self._write(
            TRAILER.pack(offset, len(raw), _hash(raw), FORMAT_VERSION[0], FORMAT_VERSION[1], 0, MAGIC_END)
        )
        return self.pos
