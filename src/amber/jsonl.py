"""``amber.jsonl``: records too many to hold in memory, streamed one JSON line each.

>>> import amber.jsonl
>>> amber.jsonl.write("events.jsonl", ({"id": i, "at": (i, "s")} for i in range(3)))  # doctest: +SKIP
3
>>> for rec in amber.jsonl.read("events.jsonl"):                                     # doctest: +SKIP
...     print(rec)
{'id': 0, 'at': (0, 's')}
...

Every record is written like amber's tagged JSON (``.json``) in compact form, on one line:
plain JSON records stay plain JSON, typed values (tuples, datetimes, arrays, objects with a
handler) are tagged, and a record that imports names (a class, a function) carries its own
``$amber`` header so that reading it checks them against the trust list. Writing and reading
take constant memory whatever the number of records.

A crash while writing leaves a *torn* last line (no final newline, not valid JSON). Reading
reports it, after all the good records, with a ``CorruptFileError`` (or a warning with
``on_error="warn"``); it is never merged with the next record or returned as data.
:func:`append` refuses to write after it unless ``repair=True``, which cuts it off.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

from amber.container._io import _fsspec, is_url, open_sink
from amber.errors import AmberWarning, CorruptFileError, StorageError
from amber.formats import _json

__all__ = ["append", "read", "write"]

_ON_ERROR = ("raise", "warn")
_CHUNK = 1 << 16


def write(
    target: Any,
    records: Iterable[Any],
    *,
    compact: bool = True,
    array_lists: int | None = 1000,
    deterministic: bool = True,
    durable: bool = False,
) -> int:
    """Write ``records`` (any iterable, consumed once) to ``target``, one line each; return
    how many were written.

    ``target``: a path (written atomically: to a temporary file renamed into place when
    complete, so a failed write leaves an earlier file intact), an fsspec URL, or a binary
    file object. ``array_lists``: arrays of at most this many numbers are nested lists,
    larger ones base64 (as in ``.json``). ``durable=True`` fsyncs before the rename.
    ``compact`` must stay True: a record is one line.
    """
    if not compact:
        raise ValueError("JSONL records are one line each: compact=False is not available (use .json for indented JSON)")
    sink = open_sink(target, durable=durable)
    try:
        n = _json.write_lines(records, sink.fh, array_lists, deterministic)
        sink.commit()
    except BaseException:
        sink.discard()
        raise
    return n


def _open_read(source: Any) -> tuple[Any, str, bool]:
    """(file object yielding lines, name, whether to close it)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return io.BytesIO(bytes(source)), "<bytes>", True
    if isinstance(source, str) and source.startswith("file://"):
        source = source[len("file://") :]
    if is_url(source):
        fs, path = _fsspec().core.url_to_fs(source)
        try:
            return fs.open(path, "rb"), source, True
        except FileNotFoundError:
            raise
        except Exception as exc:
            raise StorageError(f"cannot open {source}: {exc}") from exc
    if isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        try:
            return open(name, "rb", buffering=_CHUNK), name, True
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise StorageError(f"cannot open {name}: {exc.strerror or exc}") from exc
    if hasattr(source, "readline") or hasattr(source, "__iter__"):
        return source, str(getattr(source, "name", "<file object>")), False
    raise TypeError(
        f"cannot read JSONL from {type(source).__name__}: pass a path, an fsspec URL, bytes, or a file object"
    )


def read(
    source: Any,
    *,
    trusted: Iterable[str] | None = None,
    schema: Any = None,
    on_error: str = "raise",
    map_location: Any = None,
) -> Iterator[Any]:
    """The records of a JSONL file, one at a time (a lazy iterator: the file is read line by
    line, in constant memory).

    ``source``: a path, an fsspec URL, bytes, or a binary or text file object (left open).
    ``trusted``: names records may import beyond the trust list; a record that needs an
    untrusted name raises ``UntrustedTypeError`` (naming the line) before anything is
    imported. ``schema``: a JSON Schema (dict, or the path of one) every record must match
    (``SchemaError`` naming the line and the JSON path). ``on_error``: what to do with a
    line that is not valid JSON, e.g. the torn last line a crash leaves: ``"raise"`` a
    ``CorruptFileError`` naming its line number and byte offset (the default; records
    before it have been yielded), or ``"warn"`` (an ``AmberWarning``) and skip it.
    Records that are valid JSON but cannot be rebuilt always raise.
    """
    if on_error not in _ON_ERROR:
        raise ValueError(f"on_error must be one of {_ON_ERROR}, not {on_error!r}")
    options = {"map_location": map_location} if map_location is not None else None
    fh, name, close = _open_read(source)
    try:
        dec = _json.LineDecoder(name, trusted or (), schema, options)
    except BaseException:
        if close:
            fh.close()
        raise
    return _records(fh, name, close, dec, on_error)


def _records(fh: Any, name: str, close: bool, dec: Any, on_error: str) -> Iterator[Any]:
    offset = 0
    lineno = 0
    try:
        for line in fh:
            lineno += 1
            text = type(line) is str
            size = len(line.encode("utf-8", "surrogatepass")) if text else len(line)
            complete = line.endswith("\n" if text else b"\n")
            if not line.strip():
                offset += size
                continue
            try:
                doc = dec.parse(line, lineno, offset)
                torn = not complete and _json._torn_number(doc)
            except CorruptFileError as exc:
                if complete:
                    if on_error == "raise":
                        raise
                    warnings.warn(f"{exc}; the line was skipped", AmberWarning, stacklevel=2)
                    offset += size
                    continue
                torn = True
            if torn:
                err = _json._torn(name, lineno, offset, size)
                if on_error == "raise":
                    raise err
                warnings.warn(str(err), AmberWarning, stacklevel=2)
                return
            yield dec.record(doc, lineno, offset)
            offset += size
    finally:
        if close:
            fh.close()


def _tail(fh: Any) -> tuple[int, int, bool]:
    """(size, start of the last line, whether that line is torn) of a file whose last
    byte is not a newline (the last line is read whole to judge it)."""
    size = fh.seek(0, io.SEEK_END)
    pos = size
    start = 0
    while pos > 0:
        lo = max(0, pos - _CHUNK)
        fh.seek(lo)
        buf = fh.read(pos - lo)
        i = buf.rfind(b"\n")
        if i >= 0:
            start = lo + i + 1
            break
        pos = lo
    fh.seek(start)
    last = fh.read(size - start)
    if not last.strip():
        return size, start, False
    try:
        doc = _json.parse(last, "")
    except CorruptFileError:
        return size, start, True
    return size, start, _json._torn_number(doc)


def append(
    target: Any,
    records: Iterable[Any],
    *,
    repair: bool = False,
    array_lists: int | None = 1000,
    deterministic: bool = True,
    durable: bool = False,
) -> int:
    """Add ``records`` at the end of a JSONL file (created if missing); return how many.

    A torn last line (a write that was interrupted) is refused with a ``CorruptFileError``
    naming its byte offset, unless ``repair=True``: then it is cut off (with an
    ``AmberWarning`` saying how many bytes went) before appending. A valid last line without
    its final newline (from another tool) gets one. If encoding a record fails, the file is
    cut back to its size before the call. ``target``: a local path, a seekable binary file
    object opened for reading and writing, or an fsspec URL whose filesystem can append
    (no repair there). ``durable=True`` fsyncs at the end.
    """
    if isinstance(target, str) and target.startswith("file://"):
        target = target[len("file://") :]
    if is_url(target):
        return _append_url(target, records, repair, array_lists, deterministic)
    if isinstance(target, (str, os.PathLike)):
        path = os.fspath(target)
        try:
            fh = open(path, "r+b") if os.path.exists(path) else open(path, "w+b")
        except OSError as exc:
            raise StorageError(f"cannot append to {path}: {exc.strerror or exc}") from exc
        with fh:
            return _append_to(fh, path, records, repair, array_lists, deterministic, durable)
    if hasattr(target, "write") and hasattr(target, "seek"):
        return _append_to(target, str(getattr(target, "name", "<file object>")), records, repair, array_lists,
                          deterministic, durable)
    raise TypeError(f"cannot append to {type(target).__name__}: pass a path, an fsspec URL or a binary file object")


def _check_tail(fh: Any, name: str, repair: bool) -> bytes:
    """Deal with the file's last line; return what to write before the new records."""
    size = fh.seek(0, io.SEEK_END)
    if size == 0:
        return b""
    fh.seek(size - 1)
    if fh.read(1) == b"\n":
        return b""
    size, start, torn = _tail(fh)
    if not torn:
        return b"\n"
    if not repair:
        raise CorruptFileError(
            f"{name}: the last line (from byte offset {start}, {size - start} bytes, no final newline) is incomplete: "
            "a write was interrupted. Appending after it would merge it with the next record; pass repair=True to "
            "cut it off first (the records before it are intact)"
        )
    fh.truncate(start)
    warnings.warn(
        f"{name}: cut off an incomplete last line ({size - start} bytes at byte offset {start}) before appending",
        AmberWarning,
        stacklevel=4,
    )
    return b""


def _append_to(fh: Any, name: str, records: Iterable[Any], repair: bool, array_lists: int | None,
               deterministic: bool, durable: bool) -> int:
    prefix = _check_tail(fh, name, repair)
    size = fh.seek(0, io.SEEK_END)
    try:
        if prefix:
            fh.write(prefix)
        n = _json.write_lines(records, fh, array_lists, deterministic)
        fh.flush()
        if durable:
            os.fsync(fh.fileno())
    except BaseException:
        try:
            fh.truncate(size)  # all or nothing, when it is an exception rather than a crash
        except (OSError, ValueError):
            pass
        raise
    return n


def _append_url(url: str, records: Iterable[Any], repair: bool, array_lists: int | None, deterministic: bool) -> int:
    fs, path = _fsspec().core.url_to_fs(url)
    prefix = b""
    try:
        exists = fs.exists(path)
    except Exception as exc:
        raise StorageError(f"cannot append to {url}: {exc}") from exc
    if exists:
        with fs.open(path, "rb") as fh:
            size = fh.seek(0, io.SEEK_END)
            if size:
                fh.seek(size - 1)
                if fh.read(1) != b"\n":
                    size, start, torn = _tail(fh)
                    if torn:
                        raise CorruptFileError(
                            f"{url}: the last line (from byte offset {start}, {size - start} bytes, no final newline) "
                            "is incomplete: a write was interrupted. Repairing needs a local file: copy it, append "
                            "with repair=True, and copy it back"
                        )
                    prefix = b"\n"
    try:
        fh = fs.open(path, "ab")
    except Exception as exc:
        raise StorageError(f"cannot append to {url} ({type(fs).__name__} may not support appending): {exc}") from exc
    with fh:
        if prefix:
            fh.write(prefix)
        return _json.write_lines(records, fh, array_lists, deterministic)
