"""Reader of the native container: trailer, manifest, blob table, verified blob reads.

Nothing is trusted before it is checked: the trailer must point inside the file, the
manifest checksum must match, every blob must lie in the data section without overlapping
another, and every declared size must be possible for the bytes that back it, all before
any buffer is allocated. Reads go through a Source, so only the ranges needed are fetched.
"""

from __future__ import annotations

import functools
import os
import zlib
from concurrent.futures import Future
from typing import Any, Callable, Iterator

import msgpack
import numpy as np
import xxhash

from amber._compiled import compiled
from amber.container._codecs import Codec, Filter, codec_from_manifest, filter_from_manifest
from amber.container._io import SPLIT, Source, part_size
from amber.container._pool import hasher, in_parts, pool
from amber.container._spec import (
    FLAG_MANIFEST_ZLIB,
    MANIFEST_MAX_RATIO,
    ALIGN,
    FORMAT_VERSION,
    HEADER,
    HEADER_SIZE,
    MAGIC,
    MAGIC_END,
    MAX_CHUNK,
    TRAILER,
    TRAILER_SIZE,
)
from amber.errors import CorruptFileError, FormatError, VersionError

__all__ = ["BlobInfo", "ContainerReader", "sniff"]

_hash = xxhash.xxh3_64_intdigest
#: C twin of BlobInfo's checks for plain uncompressed entries (None: every entry in Python).
_plain_blobs = compiled("plain_blobs")
#: Read this many bytes per request when streaming a blob (hashing overlaps the next read).
_PIECE = 2 << 20
#: With read-ahead, uncompressed blobs up to this size are read in spans of up to _AHEAD_SPAN.
_AHEAD_BLOB = 1 << 20
_AHEAD_SPAN = 16 << 20
#: A span is read and hashed in pieces of about this size, small enough to stay in a core's cache.
_HOT = 256 << 10


@functools.lru_cache(maxsize=1)
def _memory_limit() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 1 << 40


def sniff(head: bytes) -> bool:
    """True when ``head`` starts like an amber native file."""
    return head[: len(MAGIC)] == MAGIC


_ENTRY_KEYS = frozenset({"offset", "nbytes", "stored", "chunk", "chunks", "codec", "filter"})


class _Where:
    """``"<file>: blob <i>"``, formatted only when an error message needs it."""

    __slots__ = ("name", "index")

    def __init__(self, name: str, index: int) -> None:
        self.name, self.index = name, index

    def __str__(self) -> str:
        return f"{self.name}: blob {self.index}"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


class BlobInfo:
    """One validated entry of the blob table."""

    __slots__ = ("index", "offset", "nbytes", "stored", "codec", "filter", "chunk", "chunks", "starts")

    def __init__(self, index: int, entry: Any, data_end: int, name: str) -> None:
        where = _Where(name, index)
        if type(entry) is not dict:
            raise FormatError(f"{where}: the blob table entry is not a map")
        try:
            offset, nbytes, stored = entry["offset"], entry["nbytes"], entry["stored"]
            chunk, chunks = entry["chunk"], entry["chunks"]
        except KeyError as exc:
            raise FormatError(f"{where}: the blob table entry lacks {exc.args[0]!r}") from None
        if not (type(offset) is int and type(nbytes) is int and type(stored) is int and type(chunk) is int) or min(
            offset, nbytes, stored, chunk
        ) < 0:
            for key, val in (("offset", offset), ("nbytes", nbytes), ("stored", stored), ("chunk", chunk)):
                if type(val) is not int or val < 0:
                    raise FormatError(f"{where}: {key}={val!r} is not a non-negative integer")
        if offset % ALIGN or offset < HEADER_SIZE or offset + stored > data_end:
            raise CorruptFileError(
                f"{where}: bytes {offset}..{offset + stored} lie outside the data section "
                f"({HEADER_SIZE}..{data_end}) or are not {ALIGN}-byte aligned"
            )
        if not 0 < chunk <= MAX_CHUNK:
            raise FormatError(f"{where}: chunk size {chunk} is out of range (1..{MAX_CHUNK})")
        if not isinstance(chunks, list) or len(chunks) != -(-nbytes // chunk):
            raise CorruptFileError(f"{where}: {nbytes} bytes in chunks of {chunk} need "
                                   f"{-(-nbytes // chunk)} chunk entries")
        if len(entry) > 5 and not _ENTRY_KEYS.issuperset(entry):
            unknown = set(entry) - _ENTRY_KEYS
            raise FormatError(
                f"{where}: unknown blob fields {sorted(map(str, unknown))}: the file was written by a "
                "newer amber; upgrade amber to read it"
            )
        self.codec: Codec | None = None
        if entry.get("codec") is not None:
            self.codec = codec_from_manifest(entry["codec"], where)
        filt = filter_from_manifest(entry.get("filter"), where)
        if filt is not None and (self.codec is None or chunk % filt.size or nbytes % filt.size):
            raise FormatError(f"{where}: filter {filt.to_dict()} does not fit the chunk size or codec")
        starts = [offset]
        for k, c in enumerate(chunks):
            if (
                not isinstance(c, list)
                or len(c) != 2
                or type(c[0]) is not int
                or type(c[1]) is not int
                or c[0] < 0
            ):
                raise FormatError(f"{where}: chunk entry {k} is malformed")
            starts.append(starts[-1] + c[0])
        if starts[-1] - offset != stored:
            raise CorruptFileError(f"{where}: chunk sizes add up to {starts[-1] - offset}, not {stored}")
        if self.codec is None:
            if stored != nbytes or any(c[0] != chunk for c in chunks[:-1]):
                raise CorruptFileError(f"{where}: an uncompressed blob must store exactly its {nbytes} bytes")
        else:
            # Refuse sizes the stored bytes cannot possibly decompress to, before allocating.
            if nbytes > max(stored, 1) * self.codec.max_ratio:
                raise CorruptFileError(
                    f"{where}: declares {nbytes} bytes from {stored} stored bytes, "
                    f"more than {self.codec.name} can expand to"
                )
            if nbytes > _memory_limit():
                raise CorruptFileError(
                    f"{where}: declares {nbytes} bytes, more than this machine's memory"
                )
        self.index, self.offset, self.nbytes, self.stored = index, offset, nbytes, stored
        self.filter: Filter | None = filt
        self.chunk, self.chunks, self.starts = chunk, chunks, starts


class _Check:
    """A checksum job queued on the hasher thread; ``result()`` is the job's own (None when
    every checksum matches). A job the hasher has not started yet when its result is asked
    for is run by the asking thread instead of waiting behind the queue."""

    __slots__ = ("fn", "args", "fut", "done", "value")

    def __init__(self, fn: Callable[..., tuple[int, int] | None], *args: Any) -> None:
        self.fn, self.args = fn, args
        self.fut: Future[tuple[int, int] | None] = hasher().submit(fn, *args)
        self.done = False
        self.value: tuple[int, int] | None = None

    def take(self) -> None:
        """Run the job here if the hasher has not started it (else leave it to the hasher)."""
        if not self.done and self.fut.cancel():
            self.value = self.fn(*self.args)
            self.done = True

    def result(self) -> tuple[int, int] | None:
        self.take()
        if not self.done:  # a job covers several blobs: asked for once per blob
            self.value = self.fut.result()
            self.done = True
        return self.value


def _check_blocks(view: memoryview, b: BlobInfo, k0: int, k1: int) -> tuple[int, int] | None:
    """(blob index, block) of the first mismatch among checksum blocks ``k0..k1-1`` of the
    uncompressed blob ``b``, whose bytes ``view`` holds from block ``k0`` on; None if all match."""
    s = 0
    for k in range(k0, k1):
        ln, h = b.chunks[k]
        if _hash(view[s : s + ln]) != h:
            return b.index, k
        s += ln
    return None


def _check_span(buf: memoryview, base: int, span: list[BlobInfo]) -> tuple[int, int] | None:
    """:func:`_check_blocks` for every blob of ``span``, whose bytes ``buf`` holds from file
    offset ``base`` on."""
    for b in span:
        s = b.offset - base
        bad = _check_blocks(buf[s : s + b.nbytes], b, 0, len(b.chunks))
        if bad is not None:
            return bad
    return None


def _inflate(data: bytes, limit: int, where: str) -> bytes:
    """A zlib stream's content, refusing streams that expand past ``limit`` bytes."""
    d = zlib.decompressobj()
    try:
        out = d.decompress(data, limit)
    except zlib.error as exc:
        raise CorruptFileError(f"{where} cannot be decompressed: {exc}") from None
    if d.unconsumed_tail or not d.eof or d.unused_data:
        raise CorruptFileError(f"{where} is not one complete zlib stream of at most {limit} bytes")
    return out


class ContainerReader:
    """Parse and check an amber file held by ``source``; read blobs on request."""

    def __init__(
        self, source: Source, verify: bool = True, ext_hook: Callable[[int, bytes], Any] | None = None
    ) -> None:
        self.source = source
        self.name = source.name
        self.verify = verify
        #: Read runs of small blobs in one request (set for whole-file loads).
        self.readahead = False
        self._ahead: dict[int, np.ndarray] = {}
        #: checksums computed on the hasher thread while reading goes on: blob index -> the
        #: checks of its bytes (see _Check), until they are settled
        self._pending: dict[int, list[_Check]] = {}
        size = source.size
        if size < HEADER_SIZE + TRAILER_SIZE:
            head = source.pread(0, min(size, len(MAGIC)))
            if sniff(head):
                raise CorruptFileError(f"{self.name}: truncated amber file ({size} bytes)")
            raise FormatError(f"{self.name}: not an amber file ({size} bytes, too short)")
        head = source.pread(0, HEADER.size)
        magic, major, minor, _flags = HEADER.unpack(head)
        if magic != MAGIC:
            raise FormatError(
                f"{self.name}: not an amber file (starts with {head[:8]!r}); "
                "for pickle, joblib, PyTorch or NumPy files pass format=... "
            )
        if (major, minor) > FORMAT_VERSION:
            raise VersionError((major, minor), FORMAT_VERSION, f"{self.name}: ")
        tail = source.pread(size - TRAILER_SIZE, TRAILER_SIZE)
        m_off, m_len, m_hash, t_major, t_minor, flags, end = TRAILER.unpack(tail)
        if end != MAGIC_END:
            raise CorruptFileError(
                f"{self.name}: the file does not end with the amber trailer "
                "(truncated, or still being written)"
            )
        if (t_major, t_minor) != (major, minor):
            raise CorruptFileError(f"{self.name}: header and trailer disagree on the format version")
        if m_off < HEADER_SIZE or m_off + m_len != size - TRAILER_SIZE:
            raise CorruptFileError(
                f"{self.name}: the trailer points the manifest at bytes {m_off}..{m_off + m_len}, "
                f"outside the file ({size} bytes)"
            )
        if flags & ~FLAG_MANIFEST_ZLIB:
            raise FormatError(
                f"{self.name}: unknown trailer flags {flags:#x}: the file was written by a newer amber; upgrade to load it"
            )
        raw = source.pread(m_off, m_len)
        if _hash(raw) != m_hash:
            raise CorruptFileError(f"{self.name}: manifest checksum mismatch at byte offset {m_off}")
        if flags & FLAG_MANIFEST_ZLIB:
            raw = _inflate(raw, MANIFEST_MAX_RATIO * len(raw) + (1 << 20), f"{self.name}: the manifest at byte {m_off}")
        try:
            kw = {"ext_hook": ext_hook} if ext_hook is not None else {}
            manifest = msgpack.unpackb(raw, raw=False, strict_map_key=True, **kw)
        except CorruptFileError:
            raise
        except Exception as exc:
            raise CorruptFileError(f"{self.name}: the manifest at byte {m_off} cannot be decoded: {exc}") from None
        if not isinstance(manifest, dict) or "tree" not in manifest:
            raise FormatError(f"{self.name}: the manifest has no node tree")
        self.manifest = manifest
        self.version = (major, minor)
        self.data_end = m_off
        blobs = manifest.get("blobs", [])
        if not isinstance(blobs, list):
            raise FormatError(f"{self.name}: the blob table is not a list")
        fast = _plain_blobs(BlobInfo, blobs, m_off, HEADER_SIZE, ALIGN, MAX_CHUNK) if _plain_blobs and type(blobs) is list else None
        if fast is None:
            self.blobs = [BlobInfo(i, e, m_off, self.name) for i, e in enumerate(blobs)]
        elif None not in fast:  # (all plain)
            self.blobs = fast
        else:  # the C twin built the plain uncompressed entries; the others are checked here
            self.blobs = [BlobInfo(i, blobs[i], m_off, self.name) if b is None else b for i, b in enumerate(fast)]
        if len(self.blobs) > 1:
            spans = sorted((b.offset, b.offset + b.stored, b.index) for b in self.blobs if b.stored)
            for (s0, e0, i0), (s1, _e1, i1) in zip(spans, spans[1:]):
                if s1 < e0:
                    raise CorruptFileError(f"{self.name}: blobs {i0} and {i1} overlap at byte offset {s1}")

    # -- blob access ------------------------------------------------------------------
    def blob(self, index: Any) -> BlobInfo:
        if type(index) is not int or not 0 <= index < len(self.blobs):
            raise FormatError(f"{self.name}: node refers to blob {index!r}, which does not exist")
        return self.blobs[index]

    def _bad(self, b: BlobInfo, k: int) -> CorruptFileError:
        return CorruptFileError(
            f"{self.name}: blob {b.index}, chunk {k} at byte offset {b.starts[k]}: checksum mismatch: "
            "the file is damaged; restore it from a good copy"
        )

    def mapped(self, index: int, private: bool = False) -> memoryview | None:
        """A read-only view of an uncompressed blob inside a memory map, or None.
        ``private``: a writable view of a copy-on-write mapping (writes stay in this process),
        for frameworks that cannot mark memory read-only (torch)."""
        b = self.blob(index)
        if b.codec is not None:
            return None
        mm = self.source.mmap(private)
        if mm is None:
            return None
        return memoryview(mm)[b.offset : b.offset + b.nbytes]

    def read(self, index: int, alloc: Callable[[int], np.ndarray] | None = None, late_check: bool = False) -> np.ndarray:
        """The whole blob as a writable uint8 array (checksums verified).

        With ``readahead`` on (a whole-file load), a small uncompressed blob is read
        together with the small uncompressed blobs that follow it (one request for many
        arrays); the arrays are then views into that shared buffer, hashed as it is read.
        A larger blob (and a span of at least ``SPLIT`` bytes) is read in parts that this
        thread and the read helper thread take in turn, each part hashed as it is read. From a source that is
        not thread-safe (a file object) it is read in pieces whose checksums the hasher
        thread computes while this one reads on; there ``late_check=True`` (for bytes that
        are only ever data, such as array contents, never parsed during the load) takes
        the blob before its checksums are known: the load must call :meth:`settle` before
        it hands anything out.
        ``alloc(n)`` gives the memory a blob read on its own goes into (a writable uint8
        array; default ``np.empty``): torch passes its own allocator, whose freed memory is
        reused without page faults.
        """
        b = self.blob(index)
        if b.codec is None and self.source.owned:  # the whole file is ours already
            out = np.frombuffer(self.source.view, dtype=np.uint8, count=b.nbytes, offset=b.offset)
            self._check(b, out)
            return out
        late = late_check and self.readahead  # only a whole-file load settles at its end
        cached = self._ahead.pop(index, None)
        if cached is None and self.readahead and b.codec is None and 0 < b.nbytes <= _AHEAD_BLOB:
            cached = self._read_span(b)
        if cached is not None:  # (a span is checked as it is read)
            return cached
        out = np.empty(b.nbytes, dtype=np.uint8) if alloc is None or not b.nbytes else alloc(b.nbytes)
        if not b.nbytes:
            return out
        view = memoryview(out)
        if b.codec is None:
            self._read_plain(b, view, late)
            if not late:
                self._settle_one(index)
        else:
            self._read_chunks(b, view, range(len(b.chunks)), 0)
        return out

    def _settle_one(self, index: int) -> None:
        checks = self._pending.pop(index, None)
        if checks:
            for check in checks:
                bad = check.result()
                if bad is not None:
                    raise self._bad(self.blobs[bad[0]], bad[1])

    def settle(self) -> None:
        """Wait for the checksums of every blob handed out unchecked so far; raise
        ``CorruptFileError`` for the first that does not match."""
        if not self._pending:  # (most loads: every blob was checked as it was read)
            return
        pending, self._pending = self._pending, {}
        checks = list(dict.fromkeys(c for cs in pending.values() for c in cs))
        # the hasher works through its queue from the front: this thread takes the jobs it
        # has not started from the back, so both work until they meet
        for c in reversed(checks):
            c.take()
        bad = [r for r in (c.result() for c in checks) if r is not None]
        if bad:
            i, k = min(bad)
            raise self._bad(self.blobs[i], k)

    def _check(self, b: BlobInfo, data: Any, k0: int = 0) -> None:
        """Verify the checksum blocks of uncompressed blob bytes already in memory;
        ``data`` starts at block ``k0`` and covers whole blocks."""
        if not self.verify:
            return
        view = memoryview(data)
        bad = _check_blocks(view, b, k0, min(len(b.chunks), k0 - (-view.nbytes // b.chunk)))
        if bad is not None:
            raise self._bad(b, bad[1])

    def _read_span(self, first: BlobInfo) -> np.ndarray:
        """Read ``first`` and the small uncompressed blobs that follow it in the index, in
        one read while they also follow it in the file. The format does not order blobs by
        offset (docs/format.md section 5): the span ends at the first blob that does not
        start at or after the previous one's end."""
        span = [first]
        prev_end = first.offset + first.nbytes
        for b in self.blobs[first.index + 1 :]:
            if (
                b.codec is not None
                or not 0 < b.nbytes <= _AHEAD_BLOB
                or b.offset < prev_end
                or b.offset + b.nbytes - first.offset > _AHEAD_SPAN
            ):
                break
            span.append(b)
            prev_end = b.offset + b.nbytes
        end = span[-1].offset + span[-1].nbytes
        buf = np.empty(end - first.offset, dtype=np.uint8)
        view = memoryview(buf)
        base = first.offset
        if not self.verify:
            self.source.readinto_parts(base, view)
        elif len(buf) >= SPLIT and len(span) > 1 and self.source.thread_safe:
            step = part_size(len(buf))  # parts of whole blobs, of about step bytes each
            groups, a = [], 0
            for j in range(1, len(span) + 1):
                if j == len(span) or span[j].offset - span[a].offset >= step:
                    groups.append(span[a:j])
                    a = j
            in_parts([lambda g=g: self._read_hashed(view, base, g) for g in groups])
        else:
            self._read_hashed(view, base, span)
        for b in span[1:]:  # handed out only once checked
            self._ahead[b.index] = buf[b.offset - first.offset : b.offset - first.offset + b.nbytes]
        return buf[: first.nbytes]

    def _read_hashed(self, view: memoryview, base: int, span: list[BlobInfo]) -> None:
        """Read ``span`` (its bytes go to ``view``, which starts at file offset ``base``) in
        pieces of about _HOT bytes, hashing each at once on this thread while it is still in
        the core's cache (measured: 230 MB of image tiles hashed in 8-9 ms this way, in 16 ms
        after 16 MB reads). Not on the hasher thread: there the hashing competed with the
        decoding of these many small objects (a 100-tree forest: 17 ms this way, 40-44 ms
        with a Python job on the hasher thread, 30-37 ms even with a native thread that
        never took the GIL). A large span is read in parts on two threads (_read_span)."""
        i, n = 0, len(span)
        while i < n:
            j = i + 1
            while j < n and span[j].offset + span[j].nbytes - span[i].offset <= _HOT:
                j += 1
            s, e = span[i].offset - base, span[j - 1].offset + span[j - 1].nbytes - base
            self.source.readinto(base + s, view[s:e])
            bad = _check_span(view[s:e], span[i].offset, span[i:j])
            if bad is not None:
                raise self._bad(self.blobs[bad[0]], bad[1])
            i = j

    def _read_plain(self, b: BlobInfo, view: memoryview, late: bool) -> None:
        """Read an uncompressed blob. From a thread-safe source a blob of at least
        ``SPLIT`` bytes is read in parts of whole checksum blocks, which this thread and
        the read helper take in turn, each reading and hashing its blocks. Otherwise a
        blob of one piece that is needed checked at once is read and checked here (no
        hand-off), and a larger one is read in pieces whose checksums the hasher thread
        computes while the next piece is read (pending until settled)."""
        src = self.source
        if not self.verify:
            src.readinto_parts(b.offset, view)
            return
        if b.nbytes >= SPLIT and src.thread_safe:
            blocks = len(b.chunks)
            if blocks < 2:  # one checksum block: read in parts, hashed once whole
                src.readinto_parts(b.offset, view)
                self._check(b, view)
            else:  # parts of whole checksum blocks, each hashed as it is read
                per = part_size(b.nbytes, b.chunk) // b.chunk
                in_parts([lambda k=k: self._read_blocks(b, view, k, min(k + per, blocks)) for k in range(0, blocks, per)])
            return
        if not late and b.nbytes <= _PIECE:
            src.readinto(b.offset, view)
            self._check(b, view)
            return
        checks = []
        for k, k1, piece in self._pieces(b, view, 0, len(b.chunks), _PIECE):
            checks.append(_Check(_check_blocks, piece, b, k, k1))
        self._pending[b.index] = checks

    def _read_blocks(self, b: BlobInfo, view: memoryview, k0: int, k1: int) -> None:
        """Read checksum blocks ``k0..k1-1`` of the uncompressed blob ``b`` into ``view`` (which
        holds the whole blob), hashing each block as soon as it is read (still in the cache);
        blocks smaller than _HOT are read together, one request for about _HOT bytes."""
        for k, k2, piece in self._pieces(b, view, k0, k1, _HOT):
            bad = _check_blocks(piece, b, k, k2)
            if bad is not None:
                raise self._bad(b, bad[1])

    def _pieces(self, b: BlobInfo, view: memoryview, k0: int, k1: int, size: int) -> Iterator[tuple[int, int, memoryview]]:
        """Read checksum blocks ``k0..k1-1`` of the uncompressed blob ``b`` into ``view``
        (which holds the whole blob) in pieces of whole blocks, about ``size`` bytes each
        (at least one block); yield ``(first block, end block, the piece's bytes)`` after
        each read."""
        per = max(1, size // b.chunk)
        for k in range(k0, k1, per):
            k2 = min(k + per, k1)
            s, e = k * b.chunk, min(b.nbytes, k2 * b.chunk)
            self.source.readinto(b.offset + s, view[s:e])
            yield k, k2, view[s:e]

    def _chunk_task(self, b: BlobInfo, k: int, out: memoryview, out_start: int) -> None:
        ln, h = b.chunks[k]
        data = self.source.pread(b.starts[k], ln)
        self._decode_chunk(b, k, data, out, out_start)

    def _decode_chunk(self, b: BlobInfo, k: int, data: bytes, out: memoryview, out_start: int) -> None:
        if self.verify and _hash(data) != b.chunks[k][1]:
            raise self._bad(b, k)
        raw_len = min(b.chunk, b.nbytes - k * b.chunk)
        assert b.codec is not None
        raw = b.codec.decompress(data, raw_len)
        dst = out[out_start : out_start + raw_len]
        if b.filter is not None:
            b.filter.undo(raw, dst)
        else:
            dst[:] = raw

    def _read_chunks(self, b: BlobInfo, out: memoryview, ks: range, base: int) -> None:
        """Decode chunks ``ks`` into ``out``; ``base`` is the raw offset ``out`` starts at."""
        if len(ks) == 1:
            k = ks[0]
            self._chunk_task(b, k, out, k * b.chunk - base)
            return
        ex = pool()
        if self.source.thread_safe:
            futs = [ex.submit(self._chunk_task, b, k, out, k * b.chunk - base) for k in ks]
        else:
            futs = []
            for k in ks:
                data = self.source.pread(b.starts[k], b.chunks[k][0])
                futs.append(ex.submit(self._decode_chunk, b, k, data, out, k * b.chunk - base))
        err = None
        for f in futs:
            try:
                f.result()
            except Exception as exc:  # wait for all, then raise the first
                err = err or exc
        if err is not None:
            raise err

    def read_range(self, index: int, start: int, stop: int) -> bytes | memoryview:
        """Raw bytes ``start:stop`` of a blob, reading only the chunks that hold them.

        For an uncompressed blob with ``verify`` on, the whole checksum blocks that hold the
        range are read and checked; with ``verify`` off exactly the range is read.
        """
        b = self.blob(index)
        start, stop = max(0, start), min(b.nbytes, stop)
        if stop <= start:
            return b""
        k0, k1 = start // b.chunk, (stop - 1) // b.chunk
        if b.codec is None and not self.verify:
            return self.source.pread(b.offset + start, stop - start)
        base = k0 * b.chunk
        span = min(b.nbytes, (k1 + 1) * b.chunk) - base
        view = memoryview(np.empty(span, dtype=np.uint8))
        if b.codec is None:
            self.source.readinto(b.offset + base, view)
            self._check(b, view, k0)
        else:
            self._read_chunks(b, view, range(k0, k1 + 1), base)
        return view[start - base : stop - base]

    def close(self) -> None:
        self.source.close()
