"""The pickle family: pickle, joblib and cloudpickle files.

Writing uses the libraries themselves (``pickle``, ``joblib.dump``, ``cloudpickle``), so
the files are exactly what those tools make and read. Reading never calls ``pickle.load``
or ``joblib.load`` (unless the caller passes ``unsafe=True``): the stream goes through
:class:`~amber.security._unpickler.SafeUnpickler`, the C unpickler with every global
resolved through the trust list, so loading an existing ``.pkl`` costs about what
``pickle.load`` does.

joblib files are pickles whose arrays are written raw, right after the ``BUILD`` opcode
of a ``NumpyArrayWrapper``. The C unpickler cannot stop there, so a load starts in C and,
on meeting the first wrapper, starts again with the pure-Python unpickler (as joblib
itself uses), which reads each array straight into its memory. joblib need not be
installed for that: its wrapper is replaced by amber's own class.
"""

from __future__ import annotations

import contextlib
import io
import pickle
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

import numpy as np

from amber.container._streams import compressed_reader, compressed_writer, sniff_compression
from amber.errors import AmberError, DecodeError, FormatError
from amber.security._arraystates import array_states_proven
from amber.security._unpickler import (
    ObjectArraysAhead,
    PickleTrust,
    Refused,
    SafePyUnpickler,
    SafeUnpickler,
    refusal,
    untrusted_globals,
)
from amber.security._walk import pickle_globals

__all__ = [
    "JOBLIB_CODECS",
    "dump_cloudpickle",
    "dump_joblib",
    "dump_pickle",
    "load_pickled",
    "nothing_after",
    "pickle_trust",
]

#: What ``joblib.dump(compress=...)`` accepts by name.
JOBLIB_CODECS = ("zlib", "gzip", "bz2", "lzma", "xz", "lz4")


# -- writing -------------------------------------------------------------------------------


def _protocol(protocol: int | None) -> int:
    if protocol is None:
        return pickle.HIGHEST_PROTOCOL
    if not isinstance(protocol, int) or not 0 <= protocol <= pickle.HIGHEST_PROTOCOL:
        raise ValueError(f"protocol={protocol!r}: pickle protocols are 0..{pickle.HIGHEST_PROTOCOL}")
    return protocol


def _dump_with(dump: Callable[[Any, IO[bytes]], None], fh: IO[bytes], compress: Any) -> None:
    wrapped = compressed_writer(fh, compress)
    if wrapped is None:
        dump(fh)
        return
    w, _ = wrapped
    try:
        dump(w)
    finally:
        w.close()


def dump_pickle(obj: Any, fh: IO[bytes], *, protocol: int | None = None, compress: Any = None) -> None:
    """Write ``obj`` as a pickle (whole-stream ``compress`` if given: zstd, lz4, gzip, ...)."""
    proto = _protocol(protocol)
    _dump_with(lambda f: pickle.dump(obj, f, protocol=proto), fh, compress)


def dump_cloudpickle(obj: Any, fh: IO[bytes], *, protocol: int | None = None, compress: Any = None) -> None:
    """Write ``obj`` with cloudpickle (lambdas, closures, classes defined in ``__main__``).
    Loading such a file runs the code it carries, so it needs ``unsafe=True``."""
    try:
        import cloudpickle
    except ImportError:
        raise FormatError("format='cloudpickle' needs cloudpickle: pip install 'amber[pickle]'") from None
    proto = _protocol(protocol)
    _dump_with(lambda f: cloudpickle.dump(obj, f, protocol=proto), fh, compress)


def dump_joblib(obj: Any, fh: IO[bytes], *, protocol: int | None = None, compress: Any = None) -> None:
    """Write ``obj`` with ``joblib.dump``; ``compress`` takes joblib's values (0-9, True,
    a codec name from :data:`JOBLIB_CODECS` or a ``(name, level)`` pair)."""
    try:
        import joblib
    except ImportError:
        raise FormatError("format='joblib' needs joblib: pip install 'amber[pickle]'") from None
    if compress is None:
        compress = 0
    name = compress[0] if isinstance(compress, tuple) else compress
    if isinstance(name, str):
        name = name.partition(":")[0]
        if name not in JOBLIB_CODECS:
            raise ValueError(f"joblib cannot compress with {name!r}: use one of {', '.join(JOBLIB_CODECS)}, or 0-9")
        if isinstance(compress, str) and ":" in compress:
            compress = (name, int(compress.partition(":")[2]))
    joblib.dump(obj, fh, compress=compress, protocol=_protocol(protocol))


# -- reading -------------------------------------------------------------------------------


class _JoblibArray:
    """Stands in for ``joblib.numpy_pickle.NumpyArrayWrapper``: ``BUILD`` fills in the
    array's subclass, shape, order and dtype; the bytes follow in the stream."""

    subclass: Any
    shape: Any
    order: Any
    dtype: Any

    def read(self, u: _JoblibUnpickler) -> Any:
        state = self.__dict__
        dtype, shape, order, sub = state.get("dtype"), state.get("shape"), state.get("order", "C"), state.get("subclass")
        if (
            not isinstance(dtype, np.dtype)
            or not isinstance(shape, tuple)
            or not all(isinstance(s, int) and s >= 0 for s in shape)
            or order not in ("C", "F")
        ):
            raise FormatError(
                f"{u.where}a joblib array header is malformed (dtype {dtype!r}, shape {shape!r}, order {order!r})"
            )
        if dtype.hasobject:  # joblib pickles object arrays whole, as a nested stream
            arr = _JoblibUnpickler(u.fh, u.trust, u.where, u.size, None).load()
            if not isinstance(arr, np.ndarray):
                raise FormatError(f"{u.where}a joblib object array is a {type(arr).__name__}, not an array")
            return arr
        fh = u.fh
        if "numpy_array_alignment_bytes" in state and state["numpy_array_alignment_bytes"] is not None:
            pad = fh.read(1)
            if len(pad) != 1 or len(fh.read(pad[0])) != pad[0]:
                raise FormatError(f"{u.where}the file ends inside a joblib array's padding")
        count = 1
        for s in shape:
            count *= s
        nbytes = count * dtype.itemsize
        pos = fh.tell() if u.size is not None else 0
        if u.size is not None and pos + nbytes > u.size:
            raise FormatError(
                f"{u.where}a joblib array of shape {shape} and dtype {dtype} needs {nbytes} bytes at byte "
                f"{pos}, past the end of the file ({u.size} bytes); the file is truncated or corrupt"
            )
        if u.mapped is not None:
            arr = np.frombuffer(u.mapped, dtype=dtype, count=count, offset=pos)
            fh.seek(pos + nbytes)
        else:
            arr = np.empty(count, dtype=dtype)
            _read_exact(fh, memoryview(arr.view(np.uint8)) if nbytes else memoryview(b""), u.where)
        arr = arr.reshape(shape[::-1]).T if order == "F" else arr.reshape(shape)
        if dtype.byteorder == (">" if sys.byteorder == "little" else "<") and u.mapped is None:
            arr = arr.byteswap().view(dtype.newbyteorder("="))
        if isinstance(sub, type) and issubclass(sub, np.ndarray) and sub is not np.ndarray:
            arr = arr.view(sub)
        return arr


class _JoblibMemmap:
    """joblib records ``numpy.memmap`` as an array's subclass; amber loads it as ndarray
    (``numpy.memmap`` itself opens files and is never resolved)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise DecodeError("the pickle calls numpy.memmap, which amber never does")


def _read_exact(fh: IO[bytes], view: memoryview, where: str) -> None:
    done = 0
    while done < len(view):
        n = fh.readinto(view[done:])  # type: ignore[attr-defined]
        if not n:
            raise FormatError(f"{where}the file ends inside a joblib array ({done} of {len(view)} bytes)")
        done += n


_JOBLIB_OVERRIDES = {
    "joblib.numpy_pickle.NumpyArrayWrapper": _JoblibArray,
    "numpy.memmap": _JoblibMemmap,
}


class _JoblibUnpickler(SafePyUnpickler):
    """The pure-Python restricted unpickler, reading joblib's arrays after their wrappers."""

    dispatch = SafePyUnpickler.dispatch.copy()

    def __init__(self, fh: IO[bytes], trust: PickleTrust, where: str, size: int | None, mapped: Any) -> None:
        super().__init__(fh, trust, where)
        self.fh, self.trust, self.where, self.size, self.mapped = fh, trust, where, size, mapped

    def load_build(self) -> None:
        SafePyUnpickler.load_build(self)
        top = self.stack[-1]
        if type(top) is _JoblibArray:
            self.stack[-1] = top.read(self)

    dispatch[pickle.BUILD[0]] = load_build


class _Capped:
    """A buffered reader whose ``read(n)`` never asks for more than the stream holds: a
    length field claiming gigabytes in a small file becomes a short read (a clean
    "truncated" error) instead of a gigabyte allocation in the reader."""

    def __init__(self, fh: IO[bytes], size: int) -> None:
        self._fh = fh
        self._size = size
        self.readinto = fh.readinto  # type: ignore[attr-defined]
        self.readline = fh.readline
        self.peek = fh.peek  # type: ignore[attr-defined]
        self.tell = fh.tell
        self.seek = fh.seek

    def read(self, n: int = -1) -> bytes:
        if n > 1 << 16:
            n = min(n, self._size - self._fh.tell())
        return self._fh.read(n)


class _SwitchToJoblib(Exception):
    pass


class _FirstTry(SafeUnpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module == "joblib.numpy_pickle":
            if name in ("NDArrayWrapper", "ZNDArrayWrapper"):
                raise FormatError(
                    "this joblib file was written by joblib < 0.10, which kept arrays in separate "
                    "files; load it with that joblib and save it again"
                )
            raise _SwitchToJoblib
        return super().find_class(module, name)


def pickle_trust(trusted: Iterable[str], overrides: dict[str, Any] | None = None) -> PickleTrust:
    """The trust for a plain pickle: ``overrides``, plus torch's checked stand-ins when the
    file names torch (imported only then)."""
    trusted = tuple(trusted)

    def torch_names() -> dict[str, Any]:
        from amber.formats._torchfile import pickle_overrides

        return pickle_overrides(trusted)

    return PickleTrust(trusted, overrides=overrides, lazy={"torch.": torch_names})


def _decompressed_bytes(opener: Callable[[], IO[bytes]], kind: str | None) -> bytes:
    """The stream's (decompressed) bytes, at most ``_PROVE_IN_MEMORY`` and one of them."""
    with opener() as raw:
        if kind is None:
            return _read_up_to(raw, _PROVE_IN_MEMORY + 1)
        with compressed_reader(raw, kind) as fh:
            return _read_up_to(fh, _PROVE_IN_MEMORY + 1)


def _read_up_to(fh: IO[bytes], limit: int) -> bytes:
    """The stream's bytes, at most ``limit`` of them (some readers return less per call)."""
    parts, got = [], 0
    while got < limit:
        part = fh.read(limit - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


#: A compressed or remote stream is read into memory to be proven only up to this size: past
#: it, the checked reading streams it (a 400 KB gzip file of zeros took 842 MB; found in review).
_PROVE_IN_MEMORY = 256 << 20


def _proven_stream(opener: Callable[[], IO[bytes]], kind: str | None) -> Any:
    """The stream's bytes as a context manager, for a stream that is not a local file in the
    clear (compressed, remote): read into memory (at most ``_PROVE_IN_MEMORY`` bytes),
    proven, and read from there. None when :func:`array_states_proven` does not prove it, or
    the stream is larger."""
    data = _decompressed_bytes(opener, kind)
    if len(data) > _PROVE_IN_MEMORY or not array_states_proven(data, 0):
        return None
    return contextlib.closing(io.BytesIO(data))


def load_pickled(
    opener: Callable[[], IO[bytes]],
    *,
    head: bytes,
    name: str,
    size: int | None = None,
    trusted: Iterable[str] = (),
    unsafe: bool = False,
    mapped: Any = None,
    whole: Callable[[], Any] | None = None,
) -> Any:
    """Load the pickle (or joblib file) that ``opener()`` streams, compressed or not.

    ``head`` holds the stream's first bytes (16 suffice), ``size`` its length when known,
    ``mapped`` a buffer over the whole file (for ``mmap=True``: uncompressed joblib arrays
    become views of it) and ``whole()`` gives the file's bytes without a copy, when it
    can (used only to list globals when one is refused).
    """
    where = f"{name}: "
    kind = sniff_compression(head)

    @contextlib.contextmanager
    def stream() -> Iterator[IO[bytes]]:
        """The (decompressed) stream; closing it closes the file under it too."""
        with opener() as raw:
            if kind is not None:
                with compressed_reader(raw, kind) as fh:
                    yield fh
            elif size is not None and hasattr(raw, "peek"):
                yield _Capped(raw, size)  # type: ignore[misc]
            else:
                yield raw

    if unsafe:
        return _load_unsafe(stream, name)
    trust = pickle_trust(trusted, _JOBLIB_OVERRIDES)
    known = size if kind is None else None
    try:
        # a local file: the proof runs on the mapped bytes (no copy) when the stream first
        # names numpy.dtype, and the load goes on, so a stream of arrays is read once (a
        # stream without arrays is never proven); otherwise it runs when a dtype is made
        local = whole() if whole is not None and kind is None else None
        proven: Any = (lambda: array_states_proven(local, 0)) if local is not None else False
        try:
            with stream() as fh:
                return nothing_after(_FirstTry(fh, trust, where, proven=proven).load(), fh, trust, where)
        except ObjectArraysAhead:  # a dtype made: read again, at C speed when the states are proven
            again = None if local is not None else _proven_stream(opener, kind)  # (a local file: proven above)
            if again is not None:
                try:
                    with again as fh:
                        return nothing_after(_FirstTry(fh, trust, where, proven=True).load(), fh, trust, where)
                except (_SwitchToJoblib, ObjectArraysAhead):  # (a dtype made another way: checked reading)
                    pass
        except _SwitchToJoblib:
            pass
        with stream() as fh:  # joblib files, and object arrays not proven: the pure-Python
            # unpickler, which checks every array state before its BUILD
            obj = _JoblibUnpickler(fh, trust, where, known, mapped if kind is None else None).load()
            return nothing_after(obj, fh, trust, where)
    except Refused as exc:
        data = whole() if whole is not None and kind is None else None
        if data is None:
            data = _decompressed_bytes(opener, kind)
        raise refusal(data, 0, trust, exc, where) from None
    except MemoryError:
        if known is not None and known < 1 << 30:  # no honest small file needs that much
            raise FormatError(
                f"{where}the pickle declares sizes far larger than the file ({known} bytes); "
                "it is corrupt or hostile"
            ) from None
        raise
    except (AmberError, RecursionError):
        raise
    except Exception as exc:  # what a malformed stream makes pickle, a codec or a __setstate__ raise
        raise FormatError(
            f"{where}cannot load this pickle ({type(exc).__name__}: {exc}); the file is truncated, "
            "corrupt, or not a pickle"
        ) from None


def nothing_after(obj: Any, fh: IO[bytes], trust: PickleTrust, where: str) -> Any:
    """``obj``, the object the pickle that ``fh`` was just read to the end of made, when the
    stream ends there. Bytes after its STOP are refused (FormatError), so that no part of a
    file is silently left out: a second pickle there (``pickle.dump`` called twice on one
    file, or a payload hidden behind a harmless first pickle, which a reader that loads on
    would run) is walked, never run, and its untrusted globals are named."""
    first = fh.read(1)
    if not first:
        return obj
    try:
        at: int | None = fh.tell() - 1
    except (OSError, AttributeError):  # (a zlib stream cannot tell)
        at = None
    rest = first + fh.read(_PROVE_IN_MEMORY)  # (at most that much is walked)
    bad, denied = untrusted_globals(pickle_globals(rest), trust)  # (junk: a walk that finds none)
    named = [n + (" (which can run arbitrary code)" if n in denied else "") for n in bad]
    found = f"; it names untrusted globals: {', '.join(named)}" if named else ""
    if denied:
        found += "; do not load this file unless you made it"
    more = f" for {len(rest)} bytes" if len(rest) <= _PROVE_IN_MEMORY else ""
    end = f" that ends at its byte {at}" if at is not None else ""
    raise FormatError(
        f"{where}the stream goes on{more} after the pickle{end} (another pickle: pickle.dump called more "
        f"than once on one file, or something hidden behind the first){found}. amber.load reads one "
        "object per file and none of those bytes were loaded or run; check the file with amber.scan. "
        "To keep several objects in one file, dump them together (a list or a dict)"
    )


def _load_unsafe(stream: Callable[[], Any], name: str) -> Any:
    """Plain unpickling, for files the caller made and trusts: runs whatever the file says."""
    try:
        from joblib.numpy_pickle import NumpyUnpickler
    except ImportError:
        NumpyUnpickler = None  # noqa: N806
    with stream() as fh:
        if NumpyUnpickler is None:
            return pickle.load(fh)
        return NumpyUnpickler(name, fh, ensure_native_byte_order=True).load()
