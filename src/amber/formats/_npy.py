"""NumPy's ``.npy`` and ``.npz`` files, read without ``numpy.load(allow_pickle=True)``.

The header is parsed with NumPy's own header reader (a literal, never evaluated code);
plain arrays are read straight into their memory (or mapped with ``mmap=True``); object
arrays, which NumPy stores as a pickle after the header, go through amber's restricted
unpickler under the trust list.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterable
from typing import IO, Any

import numpy as np

from amber.errors import AmberError, FormatError
from amber.security._arraystates import array_states_proven
from amber.security._unpickler import ObjectArraysAhead, Refused, SafePyUnpickler, SafeUnpickler, refusal

__all__ = ["NPY_MAGIC", "load_npy", "load_npz", "read_npy"]

NPY_MAGIC = b"\x93NUMPY"


def _header(fh: IO[bytes], where: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    from numpy.lib import format as npformat

    try:
        version = npformat.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = npformat.read_array_header_1_0(fh)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = npformat.read_array_header_2_0(fh)
        else:
            raise ValueError(f"unknown .npy version {version}")
    except ValueError as exc:
        raise FormatError(f"{where}not a readable .npy header ({exc})") from None
    return shape, fortran, dtype


def _object_array(fh: IO[bytes], trust: Any, where: str, whole: Callable[[], Any] | None, start: int) -> Any:
    """The object array pickled at ``start`` of the stream ``fh`` is positioned at: by the C
    unpickler when its states are proven sound (``array_states_proven`` on ``whole()``),
    else by the pure-Python unpickler, which checks every array state."""
    data = whole() if whole is not None else None
    if data is not None and array_states_proven(data, start):
        try:
            return SafeUnpickler(fh, trust, where, proven=True).load()
        except ObjectArraysAhead:  # (a dtype made another way: the checked reading, from the start)
            fh.seek(start)
    return SafePyUnpickler(fh, trust, where).load()


def read_npy(
    fh: IO[bytes],
    *,
    where: str,
    size: int | None = None,
    trusted: Iterable[str] = (),
    mapped: Any = None,
    whole: Callable[[], Any] | None = None,
) -> np.ndarray:
    """Read one array from the ``.npy`` stream ``fh`` (positioned at its magic).

    ``size``: bytes in the stream, when known (declared sizes are checked against it);
    ``mapped``: a buffer over the whole stream, to return a view instead of reading;
    ``whole()``: the stream's bytes, asked for only to list every untrusted global when an
    object array's pickle is refused."""
    shape, fortran, dtype = _header(fh, where)
    if dtype.hasobject:
        start = fh.tell()
        from amber.formats._pickle import nothing_after, pickle_trust

        trust = pickle_trust(trusted)
        try:
            arr = nothing_after(_object_array(fh, trust, where, whole, start), fh, trust, where)
        except Refused as exc:
            raise refusal(whole() if whole is not None else None, start, trust, exc, where) from None
        except AmberError:
            raise
        except Exception as exc:
            raise FormatError(f"{where}cannot load the object array's pickle ({type(exc).__name__}: {exc})") from None
        if not isinstance(arr, np.ndarray):
            raise FormatError(f"{where}the object array's pickle holds a {type(arr).__name__}, not an array")
        return arr
    count = 1
    for s in shape:
        count *= s
    nbytes = count * dtype.itemsize
    pos = fh.tell()
    if size is not None and pos + nbytes > size:
        raise FormatError(
            f"{where}the header declares shape {shape} of {dtype} ({nbytes} bytes) but only {size - pos} "
            "bytes follow it; the file is truncated or corrupt"
        )
    if mapped is not None:
        arr = np.frombuffer(mapped, dtype=dtype, count=count, offset=pos)
    else:
        arr = np.empty(count, dtype=dtype)
        view = memoryview(arr.view(np.uint8)) if nbytes else memoryview(b"")
        done = 0
        while done < nbytes:
            n = fh.readinto(view[done:])  # type: ignore[attr-defined]
            if not n:
                raise FormatError(f"{where}the file ends inside the array data ({done} of {nbytes} bytes)")
            done += n
    return arr.reshape(shape[::-1]).T if fortran else arr.reshape(shape)


def load_npy(
    opener: Callable[[], IO[bytes]],
    *,
    name: str,
    size: int | None,
    trusted: Iterable[str] = (),
    unsafe: bool = False,
    mapped: Any = None,
    whole: Callable[[], Any] | None = None,
) -> np.ndarray:
    """Load a ``.npy`` file (``whole()``: its bytes without a copy, when it can)."""
    with opener() as fh:
        if unsafe:
            return np.load(fh, allow_pickle=True)
        return read_npy(fh, where=f"{name}: ", size=size, trusted=trusted, mapped=mapped, whole=whole)


def load_npz(
    opener: Callable[[], IO[bytes]], *, name: str, trusted: Iterable[str] = (), unsafe: bool = False
) -> dict[str, np.ndarray]:
    """Load every array of a ``.npz`` file into a dict (member order, ``.npy`` dropped)."""
    out: dict[str, np.ndarray] = {}
    with opener() as raw:
        try:
            zf = zipfile.ZipFile(raw)
        except zipfile.BadZipFile as exc:
            raise FormatError(f"{name}: not a readable .npz archive ({exc})") from None
        with zf:
            infos = zf.infolist()
            names = [i.filename for i in infos]
            if len(set(names)) != len(names):
                raise FormatError(f"{name}: the archive holds two members with the same name; refusing it")
            for info in infos:
                key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                where = f"{name}[{info.filename}]: "
                try:
                    with zf.open(info) as member:
                        if unsafe:
                            out[key] = np.load(member, allow_pickle=True)
                            continue
                        out[key] = read_npy(
                            member, where=where, size=info.file_size, trusted=trusted,
                            whole=lambda info=info: zf.read(info),
                        )
                except (zipfile.BadZipFile, OSError, EOFError) as exc:
                    raise FormatError(f"{where}cannot read this member ({exc})") from None
    return out
