"""Where bytes come from and go to: local files, file objects, bytes and fsspec URLs.

Reading goes through a *source* with random access (``pread``/``readinto``), so the reader
fetches only the byte ranges it needs; local files can also be memory-mapped.
Writing to a local path is atomic: the bytes go to a temporary file in the same folder,
which replaces the target only once it is complete (``durable=True`` adds fsync).
"""

from __future__ import annotations

import io
import mmap as _mmap
import os
import threading
from abc import ABC, abstractmethod
from concurrent.futures import Future
from collections.abc import Callable
from typing import IO, Any, BinaryIO, Union

import numpy as np

from amber._compiled import compiled
from amber.container._pool import in_parts, io_thread
from amber.errors import StorageError

__all__ = [
    "AtomicFile",
    "BytesSource",
    "FileObjSource",
    "FileSource",
    "PathLike",
    "PART",
    "SPLIT",
    "RangeFile",
    "Source",
    "SourceFile",
    "is_url",
    "open_sink",
    "open_source",
    "part_size",
]

PathLike = Union[str, "os.PathLike[str]"]

#: Reads of at least this many bytes from a thread-safe source are split in parts of at
#: most PART bytes, which the loading thread and the read helper thread copy (and hash)
#: side by side (:func:`amber.container._pool.in_parts`).
SPLIT = 1 << 20


def _prefault_py(buf: Any) -> bool:
    """Map in a new buffer's pages before a read fills it (the C twin: one system call for
    all of them). Only a hint, so the pure-Python twin does nothing."""
    return False


_prefault = compiled("prefault") or _prefault_py
#: Buffers of at least this many bytes (and below SPLIT: those are filled by two threads,
#: which fault their pages in side by side) are prefaulted.
PREFAULT = 64 << 10
PART = 2 << 20


def part_size(n: int, unit: int = 1) -> int:
    """Bytes per part of a split read of ``n`` bytes: at most PART, at least two parts,
    a multiple of ``unit`` (a checksum block)."""
    return max(1, min(PART, n // 2) // unit) * unit


def is_url(target: Any) -> bool:
    """True for fsspec URLs such as ``memory://x`` or ``s3://bucket/key`` (not ``file://``)."""
    return isinstance(target, str) and "://" in target and not target.startswith("file://")


#: Windows opens files as text unless told (the attribute is looked up once: a failing
#: lookup costs an exception each time)
_O_BINARY = getattr(os, "O_BINARY", 0)


class Source(ABC):
    """Random-access bytes. ``thread_safe`` sources may be read from several threads at once."""

    size: int
    name: str
    thread_safe: bool = False
    #: The bytes are a private buffer of amber's: blobs may be handed out as views of it.
    owned: bool = False

    def pread(self, offset: int, n: int) -> bytes:
        buf = bytearray(n)
        self.readinto(offset, memoryview(buf))
        return bytes(buf)

    @abstractmethod
    def readinto(self, offset: int, buf: memoryview) -> None:
        """Fill ``buf`` with the bytes at ``offset``; raise StorageError past the end."""

    def readinto_parts(self, offset: int, buf: memoryview) -> None:
        """:meth:`readinto`; a large read from a thread-safe source goes in parts on two
        threads (:func:`amber.container._pool.in_parts`)."""
        n = len(buf)
        if n < SPLIT or not self.thread_safe:
            self.readinto(offset, buf)
            return
        step = part_size(n)
        in_parts([lambda s=s: self.readinto(offset + s, buf[s : s + step]) for s in range(0, n, step)])

    def mmap(self, private: bool = False) -> Any:
        """A read-only buffer over the whole file, or None when it cannot be mapped.
        ``private``: a writable copy-on-write mapping instead (writes never reach the file)."""
        return None

    def close(self) -> None:
        pass


class FileSource(Source):
    """A local file, read with ``os.preadv`` (thread-safe, releases the GIL)."""

    thread_safe = True

    def __init__(self, path: PathLike) -> None:
        self.name = os.fspath(path)
        try:
            self.fd = os.open(self.name, os.O_RDONLY | _O_BINARY)
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise StorageError(f"cannot open {self.name}: {exc.strerror or exc}") from exc
        self.size = os.fstat(self.fd).st_size
        self._map: _mmap.mmap | None = None
        self._private: _mmap.mmap | None = None

    def pread(self, offset: int, n: int) -> bytes:
        data = os.pread(self.fd, n, offset)  # (one call, no buffer to fill and copy)
        if len(data) == n:
            return data
        return super().pread(offset, n)  # a short read: the loop, which names the end of the file

    def readinto(self, offset: int, buf: memoryview) -> None:
        want = len(buf)
        done = 0
        while done < want:
            got = os.preadv(self.fd, [buf[done:]], offset + done)
            if got <= 0:
                raise StorageError(f"{self.name}: unexpected end of file at byte {offset + done}")
            done += got

    def mmap(self, private: bool = False) -> Any:
        if private:
            if self._private is None and self.size:
                self._private = _mmap.mmap(self.fd, 0, access=_mmap.ACCESS_COPY)
            return self._private
        if self._map is None and self.size:
            self._map = _mmap.mmap(self.fd, 0, access=_mmap.ACCESS_READ)
        return self._map

    def slurp(self) -> BytesSource:
        """The whole file in one read, as a private buffer (then closes the file)."""
        buf = np.empty(self.size, dtype=np.uint8)  # unlike bytearray(n), not zero-filled first
        if PREFAULT <= self.size < SPLIT:
            _prefault(buf)
        try:
            self.readinto_parts(0, memoryview(buf))
        finally:
            self.close()
        return BytesSource(buf, self.name, owned=True)

    def close(self) -> None:
        # An mmap stays valid after its descriptor is closed; arrays keep it alive.
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


#: Copies from bytes in memory at least this big go through NumPy, which releases the GIL
#: (a memoryview slice assignment holds it): amber.loads of a 200 MB matrix 83-95 -> 61-76 ms,
#: of the 1M-row frame 34-37 -> 24-31 ms (4 interleaved rounds in one process).
_GIL_FREE_COPY = 64 << 10


class BytesSource(Source):
    """Bytes already in memory (``loads``, or a stream that could not seek)."""

    thread_safe = True

    def __init__(self, data: Any, name: str = "<bytes>", owned: bool = False) -> None:
        self.view = memoryview(data).cast("B")
        self.size = len(self.view)
        self.name = name
        #: The buffer is amber's own (not the caller's): blobs may be handed out as views.
        self.owned = owned and not self.view.readonly

    def readinto(self, offset: int, buf: memoryview) -> None:
        end = offset + len(buf)
        if end > self.size:
            raise StorageError(f"{self.name}: unexpected end of data at byte {self.size}")
        if len(buf) < _GIL_FREE_COPY:
            buf[:] = self.view[offset:end]
        else:  # NumPy copies without the GIL: the parts of a split read copy side by side
            np.frombuffer(buf, dtype=np.uint8)[:] = np.frombuffer(self.view, dtype=np.uint8, count=end - offset,
                                                                  offset=offset)

    def pread(self, offset: int, n: int) -> bytes:
        if offset + n > self.size:
            raise StorageError(f"{self.name}: unexpected end of data at byte {self.size}")
        return bytes(self.view[offset : offset + n])


class FileObjSource(Source):
    """A seekable binary file object (also what fsspec opens); reads are serialised."""

    def __init__(self, fh: BinaryIO, name: str, owned: bool = False) -> None:
        self.fh = fh
        self.name = name
        self.owned = owned
        self._lock = threading.Lock()
        fh.seek(0, io.SEEK_END)
        self.size = fh.tell()

    def readinto(self, offset: int, buf: memoryview) -> None:
        with self._lock:
            self.fh.seek(offset)
            done = 0
            while done < len(buf):
                chunk = self.fh.read(len(buf) - done)
                if not chunk:
                    raise StorageError(f"{self.name}: unexpected end of file at byte {offset + done}")
                buf[done : done + len(chunk)] = chunk
                done += len(chunk)

    def close(self) -> None:
        if self.owned:
            self.fh.close()


class RangeFile(io.RawIOBase):
    """Random-access bytes as a seekable binary file (for what is read as one stream, like
    a pickle, a zip or a compressed stream). ``read_at(offset, view)`` fills ``view`` with
    the bytes at ``offset`` and returns how many it filled (None: all of them). Wrap it in
    ``io.BufferedReader`` for small reads."""

    def __init__(self, size: int, read_at: Callable[[int, memoryview], int | None], name: str = "") -> None:
        super().__init__()
        self.size = size
        self.name = name
        self._read_at = read_at
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = max(0, min(len(b), self.size - self._pos))
        if n:
            got = self._read_at(self._pos, memoryview(b).cast("B")[:n])
            n = n if got is None else got
            self._pos += n
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos


def SourceFile(source: Source) -> RangeFile:  # noqa: N802 - reads as the class it returns
    """A Source as a seekable binary file."""
    return RangeFile(source.size, source.readinto, source.name)


def _fsspec() -> Any:
    try:
        import fsspec
    except ImportError:
        raise StorageError("URLs need fsspec: pip install 'amber[remote]'") from None
    return fsspec


#: Local files up to this size are read whole, in one request.
SMALL_FILE = 4 << 20


def open_source(source: Any, whole: bool = False) -> Source:
    """A Source for a path, URL, bytes-like object or binary file object. With ``whole``, a
    small local file is read in one request and its arrays become views of that buffer."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return BytesSource(source)
    if isinstance(source, str) and source.startswith("file://"):
        source = source[len("file://") :]
    if is_url(source):
        fs, path = _fsspec().core.url_to_fs(source)
        try:
            fh = fs.open(path, "rb")
        except FileNotFoundError:
            raise
        except Exception as exc:
            raise StorageError(f"cannot open {source}: {exc}") from exc
        return FileObjSource(fh, source, owned=True)
    if isinstance(source, (str, os.PathLike)):
        fs = FileSource(source)
        return fs.slurp() if whole and fs.size <= SMALL_FILE else fs
    if hasattr(source, "read"):
        name = str(getattr(source, "name", "<file object>"))
        seekable = getattr(source, "seekable", None)
        if seekable is not None and seekable():
            return FileObjSource(source, name)
        return BytesSource(source.read(), name)
    raise TypeError(
        f"cannot read from {type(source).__name__}: pass a path, an fsspec URL, bytes, or a binary file object"
    )


#: Writes smaller than this are coalesced into the next one. Writes of a few MB at a time
#: were measured to be slower on a long-running process's fragmented memory (the kernel
#: builds large page-cache folios for them), so the I/O thread gets about 1 MB per call.
_COALESCE = 1 << 20
_IOV_MAX = 512
#: Flushes of at least this many bytes are written by the I/O thread.
_ASYNC_WRITE = 1 << 20


#: Linux: a file opened with O_TMPFILE has no name until it is linked in place; linking it
#: goes through its /proc/self/fd entry.
_UNNAMED = getattr(os, "O_TMPFILE", 0) if os.path.isdir("/proc/self/fd") else 0


class AtomicFile(io.RawIOBase):
    """Write to a temporary file beside ``path``; ``commit()`` puts it in place of ``path``.

    If anything fails before ``commit``, ``discard()`` removes the temporary file and any
    earlier file at ``path`` is left untouched. ``durable=True`` fsyncs the data before the
    rename and the folder after it, so the new file also survives a power loss.

    On Linux the temporary file has no name (``O_TMPFILE``): even a process killed in the
    middle of a dump leaves nothing behind, and a new file is linked in with one directory
    operation (a named temporary file costs two, create and rename: about 40 µs more a
    file on ext4). An existing ``path`` is replaced by rename, atomically, as before.
    Elsewhere (and on filesystems without ``O_TMPFILE``) the temporary file is a hidden
    ``.<name>.<random>.amber-tmp`` beside ``path``.
    """

    def __init__(self, path: PathLike, durable: bool = False) -> None:
        super().__init__()
        self.path = os.fspath(path)
        self.durable = durable
        self.folder = os.path.dirname(os.path.abspath(self.path))
        #: the temporary file's name; None while it has none (O_TMPFILE)
        self.tmp: str | None = None
        self.fd = -1
        if _UNNAMED:
            try:
                self.fd = os.open(self.folder, os.O_RDWR | _UNNAMED, 0o666)
            except OSError:  # not supported here (or no such folder: said below)
                self.fd = -1
        if self.fd < 0:
            self.fd, self.tmp = self._named(None)
        self._queue: list[memoryview] = []
        self._queued = 0
        self._io: Future[None] | None = None
        self._error: StorageError | None = None

    def _named(self, link_from: str | None) -> tuple[int, str]:
        """A new hidden name beside ``path``: a new empty file opened for writing, or (with
        ``link_from``) a hard link to that file (-1 as the descriptor)."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY
        base = os.path.basename(self.path)
        for _ in range(100):
            tmp = os.path.join(self.folder, f".{base}.{os.urandom(6).hex()}.amber-tmp")
            try:
                if link_from is None:
                    return os.open(tmp, flags, 0o666), tmp
                os.link(link_from, tmp, src_dir_fd=self.fd, follow_symlinks=True)
                return -1, tmp
            except FileExistsError:
                continue
            except OSError as exc:
                raise StorageError(f"cannot write {self.path}: {exc.strerror or exc}") from exc
        raise StorageError(f"cannot create a temporary file beside {self.path}")  # pragma: no cover

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        """Small pieces are held back and go out with the next large one (one writev)."""
        view = memoryview(data)
        total = view.nbytes
        if view.ndim != 1 or view.format != "B":
            view = view.cast("B")
        self._queue.append(view)
        self._queued += total
        if total >= _COALESCE or self._queued >= _COALESCE:
            self._flush()
        return total

    def _flush(self) -> None:
        """Write what is queued. Large writes go to the I/O thread, so the caller goes on
        encoding while the kernel copies (the buffers stay referenced until written); small
        ones are written here unless a background write is still running (order is kept)."""
        queue, n = self._queue, self._queued
        self._queue, self._queued = [], 0
        if not queue:
            return
        busy = self._io is not None and not self._io.done()
        if busy or n >= _ASYNC_WRITE:
            self._io = io_thread().submit(self._writev, queue)
            return
        self._check_io()
        self._writev(queue)
        self._check_io()

    def _writev(self, queue: list[memoryview]) -> None:
        if self._error is not None:
            return
        try:
            while queue:
                done = os.writev(self.fd, queue[:_IOV_MAX])
                while queue and done >= queue[0].nbytes:
                    done -= queue.pop(0).nbytes
                if done:
                    queue[0] = queue[0][done:]
        except OSError as exc:
            self._error = StorageError(f"writing {self.path} failed: {exc.strerror or exc}")

    def _wait(self) -> None:
        """Wait for the background writes (they use the file descriptor)."""
        if self._io is not None:
            self._io.result()
            self._io = None

    def _check_io(self) -> None:
        if self._error is not None:
            raise self._error

    def commit(self) -> None:
        self._flush()
        self._wait()
        self._check_io()
        try:
            if self.durable:
                os.fsync(self.fd)
            if self.tmp is None:
                self._link_in()
            os.close(self.fd)
            self.fd = -1
            if self.tmp is not None:
                os.replace(self.tmp, self.path)
                self.tmp = None
        except OSError as exc:
            self.discard()
            raise StorageError(f"cannot finish writing {self.path}: {exc.strerror or exc}") from exc
        if self.durable:
            dfd = os.open(self.folder, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    def _link_in(self) -> None:
        """Give the unnamed file its name: ``path`` itself when that is free, else a hidden
        name that ``commit`` then renames over ``path``."""
        # an absolute source path: src_dir_fd only makes os.link call linkat(), which can
        # follow the /proc link to the open file
        global _UNNAMED
        proc = f"/proc/self/fd/{self.fd}"
        try:
            # (a failed link costs more than a lookup; os.access says "no such file" without
            # the exception os.path.lexists makes and drops)
            if not os.access(self.path, os.F_OK, follow_symlinks=False):
                os.link(proc, self.path, src_dir_fd=self.fd, follow_symlinks=True)
                return
        except FileExistsError:  # made meanwhile
            pass
        except OSError:  # linking through /proc refused here: copy into a named file once
            _UNNAMED = 0  # (and name temporary files from the start from now on)
            fd, self.tmp = self._named(None)
            try:
                size, done = os.fstat(self.fd).st_size, 0
                while done < size:
                    n = os.sendfile(fd, self.fd, done, size - done)
                    if n <= 0:
                        raise OSError(f"copying the temporary file stopped at byte {done}")
                    done += n
                if self.durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
            return
        _fd, self.tmp = self._named(proc)

    def discard(self) -> None:
        try:
            self._wait()
        except BaseException:  # noqa: BLE001 - the write failed; the file goes anyway
            pass
        if self.fd >= 0:
            os.close(self.fd)  # an unnamed file vanishes with its last descriptor
            self.fd = -1
        if self.tmp is not None:
            try:
                os.unlink(self.tmp)
            except FileNotFoundError:
                pass
            self.tmp = None


class _Sink:
    """What ``dump`` writes to, with commit/discard for atomic targets."""

    def __init__(self, fh: IO[bytes], commit: Any = None, discard: Any = None) -> None:
        self.fh = fh
        self._commit = commit
        self._discard = discard

    def commit(self) -> None:
        if self._commit:
            self._commit()

    def discard(self) -> None:
        if self._discard:
            self._discard()


#: fsspec protocols whose writers honour autocommit=False (nothing visible before commit).
_TRANSACTIONAL = frozenset({"s3", "s3a", "gs", "gcs", "abfs", "az", "adl", "file", "local"})


def open_sink(target: Any, durable: bool = False) -> _Sink:
    """A sink for a path (atomic), an fsspec URL, or a binary file object."""
    if isinstance(target, str) and target.startswith("file://"):
        target = target[len("file://") :]
    if is_url(target):
        fsspec = _fsspec()
        fs, path = fsspec.core.url_to_fs(target)
        protocols = {fs.protocol} if isinstance(fs.protocol, str) else set(fs.protocol)
        try:
            if protocols & _TRANSACTIONAL:
                # The object appears only on commit(), so a failed dump leaves any earlier
                # object at that URL untouched (multipart upload completed on commit).
                fh = fs.open(path, "wb", autocommit=False)

                def commit() -> None:
                    fh.close()
                    fh.commit()

                return _Sink(fh, commit, fh.discard)
            # Elsewhere opening the target for writing may clobber it at once: write a
            # temporary object beside it and move it into place when complete.
            tmp = f"{path}.{os.urandom(6).hex()}.amber-tmp"
            fh = fs.open(tmp, "wb")
        except Exception as exc:
            raise StorageError(f"cannot write {target}: {exc}") from exc

        def move() -> None:
            fh.close()
            fs.mv(tmp, path)

        def remove() -> None:
            try:
                fh.close()
            finally:
                if fs.exists(tmp):
                    fs.rm(tmp)

        return _Sink(fh, move, remove)
    if isinstance(target, (str, os.PathLike)):
        af = AtomicFile(target, durable=durable)
        return _Sink(af, af.commit, af.discard)
    if hasattr(target, "write"):
        return _Sink(target)
    raise TypeError(
        f"cannot write to {type(target).__name__}: pass a path, an fsspec URL, or a binary file object"
    )
