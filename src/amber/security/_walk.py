"""A static walker of pickle streams: what a pickle would import and call, without loading it.

:func:`walk` reads the opcodes of one pickle (protocols 0 to 5) from a buffer and reports

* every global the pickle makes the unpickler import (``GLOBAL``, ``STACK_GLOBAL``, ``INST``
  and the extension-registry opcodes ``EXT1/2/4``), with the byte offset of the opcode;
* every call site: ``REDUCE``, ``BUILD``, ``INST``, ``OBJ``, ``NEWOBJ`` and ``NEWOBJ_EX``,
  with the dotted name of the callable when it is statically known, and the container
  opcodes ``APPEND(S)``, ``SETITEM(S)`` and ``ADDITEMS`` when they call a method of an
  imported global itself (``os.environ`` ``SETITEMS``);
* persistent ids, extension codes and the declared protocol;
* whether the stream is well formed, and if not, why and where it breaks.

:func:`walk_all` walks several pickles written one after the other into one stream (what
``pickle.load`` called repeatedly on one file reads), and :func:`pickle_globals` lists the
names of all their globals.

How it works. The walker is a symbolic unpickler: it keeps the unpickler's stack, its MARK
stack and its memo, with the same arity and the same stack-underflow rules as CPython's
unpickler, but every value on it is only one of: unknown, "the string pushed by the opcode
at offset N" (decoded only when a ``STACK_GLOBAL`` needs it), "the global named X", or "the
object made by calling the global X". That is enough to name the module and qualname a
``STACK_GLOBAL`` takes from the stack -- however they got there: any string opcode,
``DUP``, the memo (``PUT``/``BINPUT``/``MEMOIZE`` then ``GET``/``BINGET``) -- and to name
the callable of a ``REDUCE`` that follows a ``BINGET`` of a memoized global. When the
operands of a ``STACK_GLOBAL`` are not statically known strings, the global is still
reported, with ``resolved=False``.

Names are reported as the unpickler's default ``find_class`` would import them: with the
Python 2 names of protocols 0-2 mapped through ``_compat_pickle`` (``__builtin__.eval`` is
reported as ``builtins.eval``, the raw name is kept in :attr:`GlobalRef.raw`), following
the protocol in force at that opcode, as the unpickler does.

What it does not do. It never imports, calls or constructs anything from the stream, and
it never copies payloads: byte strings, long strings and frames are skipped by their
declared length (frames are walked into, as their content is opcodes), so a 500 MB
``BINBYTES8`` costs nothing, and nothing is allocated from a length field. It does not
decide whether a pickle is safe: a scanner built on it must treat unresolved globals,
call sites with an unknown target, persistent ids and malformed streams as suspicious.
It cannot see what happens inside the callables (``__reduce__`` of objects built from
trusted classes, ``__setstate__``, a ``persistent_load`` of the loader), and it knows
nothing of formats that embed raw data between the opcodes of one pickle (joblib's
``NumpyArrayWrapper`` writes array bytes straight after a ``BUILD``; walking on from
there reads array bytes as opcodes and reports the stream as malformed), unless the
caller says where they lie (``jumps``, below).

Hostile input. CPython's loaders do not read every malformed stream alike. ``pickle.loads``
reads the bytes in order. The C unpickler reading a *file* holds a ``FRAME`` in its buffer,
and an argument running past the end of the frame is read afresh from after it (the bytes
left in the frame are dropped), so is the start of the next pickle after a ``STOP`` inside
a frame. The pure-Python unpickler (joblib's) refuses those, but reads on into a ``FRAME``
longer than the data, and imports the module of a ``GLOBAL`` whose last line lacks its
newline. The walker reads the bytes in order, with the C unpickler's rules for what is an
error, and wherever loaders could part ways it sets :attr:`Walk.error` (walking on where
some loader would). The contract: when ``error`` is None, the walk has seen everything any
of these loaders would import or call, and stops where they stop (this is checked by
differential fuzzing against CPython's C and pure-Python unpicklers); when ``error`` is
set, the stream is malformed and the walk lists what the in-order reading met up to where
it stopped -- a scanner must treat any error as unsafe. The walk never raises on bad input,
always advances, and its memory grows with the number of opcodes read, never with a
length the stream declares.

Options for scanners (all off by default; the walk is the same without them).
``payloads=True`` records the byte and string payloads whose first two bytes look like
the start of a pickle, a compressed stream, a zip, a ``.npy`` file or joblib's ``ZF``
file (:attr:`Walk.payloads`: only their offsets; nothing is copied), and names, in
:attr:`CallSite.arg`, the payload a call takes as its only argument (``pickle.loads(b)``,
``torch.storage._load_from_bytes(b)``; for protocols 0-2, whose bytes are
``_codecs.encode(str, "latin1")``, the string opcode). ``watch`` lists global names whose
every use must be a direct call: :attr:`Walk.escapes` reports each place where one of
them is put into a container, an argument tuple or an object's state instead (where a
static walk loses track of it). ``jumps`` maps the offset of a ``BUILD`` to the offset
the unpickler reads on from after it (joblib's ``NumpyArrayWrapper`` reads its array's
bytes there); :attr:`Walk.jumped` lists the jumps taken.

Two implementations. :func:`_walk_py` is the reference; ``_cwalk.c`` is its line-by-line
port to C (the same stack values and memo, as Python objects; the rare cases above call
back into the helpers here), used when it was built (``setup.py``) and
``AMBER_PURE_PYTHON`` is not set. ``tests/test_pickle_walk_c.py`` checks that both give the
same walks.
"""

from __future__ import annotations

import codecs
import copyreg
import os
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

import _compat_pickle

__all__ = ["CallSite", "GlobalRef", "Walk", "is_opcode", "pickle_globals", "starts_like_pickle", "walk", "walk_all"]

#: Longest string (in bytes) decoded as a STACK_GLOBAL operand; longer ones are "unknown".
MAX_NAME_BYTES = 1024
_PY_SSIZE_T_MAX = (1 << 63) - 1
_HIGHEST_PROTOCOL = 5


@dataclass(frozen=True, slots=True)
class GlobalRef:
    """A global the pickle makes the unpickler import.

    ``name`` is ``"module.qualname"`` as the default ``find_class`` would import it (Python 2
    names mapped for protocols below 3); a part not known statically is ``"?"``.
    ``opcode`` is ``"GLOBAL"``, ``"STACK_GLOBAL"``, ``"INST"`` or ``"EXT"``; ``offset`` is
    the byte offset of that opcode in the buffer. ``"GETATTR"`` is an attribute fetched by
    ``builtins.getattr(X, "name")`` (a ``REDUCE``), named ``X.name``: as good as importing it
    (``raw`` says ``"<instance of X>"`` when X is an object made by calling the global X). ``resolved`` is False when the name is not
    (fully) known. ``module`` and ``qualname`` are the two parts (None when unknown), and
    ``raw`` is the name as written in the stream when the Python 2 mapping changed it.
    """

    name: str
    offset: int
    opcode: str
    resolved: bool
    module: str | None = None
    qualname: str | None = None
    raw: str | None = None


@dataclass(frozen=True, slots=True)
class CallSite:
    """An opcode that calls something: ``REDUCE``, ``BUILD``, ``INST``, ``OBJ``, ``NEWOBJ``,
    ``NEWOBJ_EX``, or ``APPEND``/``APPENDS``/``SETITEM``/``SETITEMS``/``ADDITEMS`` applied to
    an imported global itself.

    ``target`` is the dotted name of the global called (``REDUCE``, ``OBJ``, ``NEWOBJ*``,
    ``INST``), of the global whose call made the object a ``BUILD`` sets the state of (or the
    global itself), or of the global a container opcode mutates; None when not statically
    known.
    """

    offset: int
    opcode: str
    target: str | None
    #: With ``payloads=True``: the offset of the opcode whose payload is the call's only
    #: argument, as bytes (a bytes opcode, or a string opcode passed through
    #: ``_codecs.encode(s, "latin1")``); None otherwise.
    arg: int | None = None


@dataclass(slots=True)
class Walk:
    """What :func:`walk` found in one pickle."""

    globals: list[GlobalRef] = field(default_factory=list)
    calls: list[CallSite] = field(default_factory=list)
    #: Offset just after the STOP opcode, or where the walk stopped.
    end: int = 0
    #: True when a STOP opcode was reached.
    stopped: bool = False
    #: Why the stream is malformed or truncated (the first problem met), None when fine.
    error: str | None = None
    error_offset: int | None = None
    #: The protocol of the first PROTO opcode, if any.
    protocol: int | None = None
    #: Number of PERSID / BINPERSID opcodes.
    persistent_ids: int = 0
    ext_codes: list[int] = field(default_factory=list)
    #: Offset of the pickle's first opcode.
    start: int = 0
    #: With ``payloads=True``: (opcode offset, payload start, payload length) of the
    #: payloads that may hold another stream (see the module docstring).
    payloads: list[tuple[int, int, int]] = field(default_factory=list)
    #: With ``watch``: (name, offset) where a watched global was used other than by a call.
    escapes: list[tuple[str, int]] = field(default_factory=list)
    #: With ``jumps``: the offsets of the BUILD opcodes after which the walk jumped.
    jumped: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """The pickle ended with a STOP and nothing in it was malformed."""
        return self.stopped and self.error is None

    @property
    def global_names(self) -> list[str]:
        """Sorted unique names of the globals."""
        return sorted({g.name for g in self.globals})


class _Made(str):
    """Stack value: the object returned by calling the global of this name."""

    __slots__ = ()


class _AttrArgs(tuple):
    """Stack value: a 2-tuple (a global or an object made by one, a string's offset): the
    arguments of ``getattr(obj, "name")``, so the attribute it fetches can be named."""

    __slots__ = ()


class _Blob(int):
    """Stack value (``payloads=True``): bytes, the payload of the opcode at this offset."""

    __slots__ = ()


class _BlobArgs(tuple):
    """Stack value (``payloads=True``): ``(_Blob,)``, or ``(str offset, str offset)`` as
    ``_codecs.encode`` takes them."""

    __slots__ = ()


class _Options:
    __slots__ = ("payloads", "watch", "jumps", "armed")

    def __init__(self, payloads: bool, watch: frozenset[str], jumps: dict[int, int] | None) -> None:
        self.payloads = payloads
        self.watch = watch
        self.jumps = jumps
        #: a watched global has been pushed (so the next pickles, sharing the memo, watch too)
        self.armed = False


#: Most payloads recorded per walk (``payloads=True``).
MAX_PAYLOADS = 100_000
#: Opcodes whose payload is bytes (BINBYTES, SHORT_BINBYTES, BINBYTES8, BYTEARRAY8).
_BYTES_OPS = frozenset({0x42, 0x43, 0x8E, 0x96})
_LATIN1 = frozenset({"latin1", "latin-1", "latin_1", "iso-8859-1", "iso8859-1", "iso_8859_1", "l1"})


def _prefixes() -> frozenset[int]:
    """First two bytes (as ``b0 << 8 | b1``) of the streams a payload is recorded for:
    pickles (PROTO 0-5), gzip, bz2, xz, zstd, lz4, lzma-alone, zlib, zip, .npy and joblib's
    ZF files; also as the UTF-8 text of a latin-1 string (how protocols 0-2 write bytes)."""
    raw = [bytes((0x80, p)) for p in range(6)]
    raw += [b"\x1f\x8b", b"BZ", b"\xfd7", b"\x28\xb5", b"\x04\x22", b"\x5d\x00", b"PK", b"\x93N", b"ZF"]
    raw += [bytes((0x78, b)) for b in range(256) if (0x78 << 8 | b) % 31 == 0]
    out = {r[0] << 8 | r[1] for r in raw}
    for r in raw:  # the same bytes as latin-1 text, encoded in UTF-8
        u = r.decode("latin-1").encode("utf-8")
        out.add(u[0] << 8 | u[1])
    return frozenset(out)


_PREFIX2 = _prefixes()


def _note(items: list, watch: frozenset[str], escapes: list[tuple[str, int]], offset: int) -> None:
    for v in items:
        if type(v) is str and v in watch:
            escapes.append((str(v), offset))


# --------------------------------------------------------------------------- opcode table
# Kinds, numbered in the order the main loop tests them (most frequent first).
_PUSH = 0  # fixed-size argument (possibly none), pushes an unknown value
_MEMOIZE = 1
_SHORT_UNI = 2  # SHORT_BINUNICODE
_BINPUT = 3  # BINPUT, LONG_BINPUT
_BINGET = 4  # BINGET, LONG_BINGET
_MARK = 5
_LINE = 6  # INT, LONG, FLOAT, STRING, UNICODE, GET, PUT, PERSID: a newline-terminated argument
_COUNTED = 7  # BINBYTES*, BYTEARRAY8, LONG1, LONG4, BINUNICODE, BINUNICODE8, (SHORT_)BINSTRING
_SETITEM = 8
_APPEND = 9
_FILL = 10  # SETITEMS, APPENDS, ADDITEMS: items above the mark go into the object below it
_TUPLE_N = 11  # TUPLE1, TUPLE2, TUPLE3
_COLLECT = 12  # TUPLE, LIST, FROZENSET, DICT: items above the mark become one object
_REDUCE = 13
_BUILD = 14
_NEWOBJ = 15  # NEWOBJ, NEWOBJ_EX
_STACK_GLOBAL = 16
_GLOBAL = 17  # GLOBAL, INST
_FRAME = 18
_PROTO = 19
_STOP = 20
_OBJ = 21
_EXT = 22
_BINPERSID = 23
_POP = 24
_POP_MARK = 25
_DUP = 26
_READONLY = 27
_BAD = 99

# name, code, kind, size of the fixed argument (or of the length field for counted ones)
_OPS: tuple[tuple[str, int, int, int], ...] = (
    ("NONE", 0x4E, _PUSH, 0),
    ("NEWTRUE", 0x88, _PUSH, 0),
    ("NEWFALSE", 0x89, _PUSH, 0),
    ("EMPTY_DICT", 0x7D, _PUSH, 0),
    ("EMPTY_LIST", 0x5D, _PUSH, 0),
    ("EMPTY_TUPLE", 0x29, _PUSH, 0),
    ("EMPTY_SET", 0x8F, _PUSH, 0),
    ("NEXT_BUFFER", 0x97, _PUSH, 0),
    ("BININT", 0x4A, _PUSH, 4),
    ("BININT1", 0x4B, _PUSH, 1),
    ("BININT2", 0x4D, _PUSH, 2),
    ("BINFLOAT", 0x47, _PUSH, 8),
    ("MEMOIZE", 0x94, _MEMOIZE, 0),
    ("SHORT_BINUNICODE", 0x8C, _SHORT_UNI, 1),
    ("BINPUT", 0x71, _BINPUT, 1),
    ("LONG_BINPUT", 0x72, _BINPUT, 4),
    ("BINGET", 0x68, _BINGET, 1),
    ("LONG_BINGET", 0x6A, _BINGET, 4),
    ("MARK", 0x28, _MARK, 0),
    ("SETITEMS", 0x75, _FILL, 0),
    ("APPENDS", 0x65, _FILL, 0),
    ("ADDITEMS", 0x90, _FILL, 0),
    ("TUPLE1", 0x85, _TUPLE_N, 1),
    ("TUPLE2", 0x86, _TUPLE_N, 2),
    ("TUPLE3", 0x87, _TUPLE_N, 3),
    ("TUPLE", 0x74, _COLLECT, 0),
    ("LIST", 0x6C, _COLLECT, 0),
    ("FROZENSET", 0x91, _COLLECT, 0),
    ("DICT", 0x64, _COLLECT, 0),
    ("SETITEM", 0x73, _SETITEM, 0),
    ("APPEND", 0x61, _APPEND, 0),
    ("SHORT_BINBYTES", 0x43, _COUNTED, 1),
    ("BINBYTES", 0x42, _COUNTED, 4),
    ("BINBYTES8", 0x8E, _COUNTED, 8),
    ("BYTEARRAY8", 0x96, _COUNTED, 8),
    ("LONG1", 0x8A, _COUNTED, 1),
    ("LONG4", 0x8B, _COUNTED, 4),
    ("BINUNICODE", 0x58, _COUNTED, 4),
    ("BINUNICODE8", 0x8D, _COUNTED, 8),
    ("SHORT_BINSTRING", 0x55, _COUNTED, 1),
    ("BINSTRING", 0x54, _COUNTED, 4),
    ("REDUCE", 0x52, _REDUCE, 0),
    ("BUILD", 0x62, _BUILD, 0),
    ("NEWOBJ", 0x81, _NEWOBJ, 0),
    ("NEWOBJ_EX", 0x92, _NEWOBJ, 0),
    ("STACK_GLOBAL", 0x93, _STACK_GLOBAL, 0),
    ("GLOBAL", 0x63, _GLOBAL, 0),
    ("INST", 0x69, _GLOBAL, 0),
    ("FRAME", 0x95, _FRAME, 8),
    ("PROTO", 0x80, _PROTO, 1),
    ("STOP", 0x2E, _STOP, 0),
    ("INT", 0x49, _LINE, 0),
    ("LONG", 0x4C, _LINE, 0),
    ("FLOAT", 0x46, _LINE, 0),
    ("STRING", 0x53, _LINE, 0),
    ("UNICODE", 0x56, _LINE, 0),
    ("GET", 0x67, _LINE, 0),
    ("PUT", 0x70, _LINE, 0),
    ("OBJ", 0x6F, _OBJ, 0),
    ("EXT1", 0x82, _EXT, 1),
    ("EXT2", 0x83, _EXT, 2),
    ("EXT4", 0x84, _EXT, 4),
    ("PERSID", 0x50, _LINE, 0),
    ("BINPERSID", 0x51, _BINPERSID, 0),
    ("POP", 0x30, _POP, 0),
    ("POP_MARK", 0x31, _POP_MARK, 0),
    ("DUP", 0x32, _DUP, 0),
    ("READONLY_BUFFER", 0x98, _READONLY, 0),
)

_KIND = [_BAD] * 256
_STEP = [1] * 256  # opcode byte + fixed argument
_ARGSIZE = [0] * 256
_NAME: dict[int, str] = {}
#: opcodes pushing a str (their offset stands for the string on the walker's stack)
_PUSHES_STR = [False] * 256
for _c in (0x8C, 0x58, 0x8D, 0x55, 0x54, 0x53, 0x56):
    _PUSHES_STR[_c] = True
for _n, _c, _k, _s in _OPS:
    _KIND[_c] = _k
    _STEP[_c] = 1 + _s
    _ARGSIZE[_c] = _s
    _NAME[_c] = _n
del _n, _c, _k, _s

_u2 = struct.Struct("<H").unpack_from
_u4 = struct.Struct("<I").unpack_from
_i4 = struct.Struct("<i").unpack_from
_u8 = struct.Struct("<Q").unpack_from

_NAME_MAPPING: dict[tuple[str, str], tuple[str, str]] = _compat_pickle.NAME_MAPPING
_IMPORT_MAPPING: dict[str, str] = _compat_pickle.IMPORT_MAPPING

_NL = re.compile(b"\n")
# Python 2 string escapes PyBytes_DecodeEscape understands; anything else is "unknown".
_ESCAPE = re.compile(rb"\\(x[0-9A-Fa-f]{2}|[0-7]{1,3}|[\\'\"abfnrtv\n]|.|\Z)", re.S)
_SIMPLE_ESCAPES = {
    b"\\": b"\\",
    b"'": b"'",
    b'"': b'"',
    b"a": b"\x07",
    b"b": b"\x08",
    b"f": b"\x0c",
    b"n": b"\n",
    b"r": b"\r",
    b"t": b"\t",
    b"v": b"\x0b",
    b"\n": b"",
}


class _Unsure(Exception):
    pass


def _unescape_replace(m: re.Match[bytes]) -> bytes:
    # What PyBytes_DecodeEscape does (the same from Python 3.8 to 3.14)
    e = m.group(1)
    simple = _SIMPLE_ESCAPES.get(e)
    if simple is not None:
        return simple
    if len(e) == 3 and e[:1] == b"x":
        return bytes((int(e[1:], 16),))
    if b"0" <= e[:1] <= b"7":
        return bytes((int(e, 8) & 0xFF,))  # above 0o377: truncated (and a warning)
    if not e or e == b"x":
        raise _Unsure  # a trailing backslash or a bad \x: the unpickler fails
    return b"\\" + e  # an unknown escape is kept as it is (and a warning)


def _decode_ascii(raw: bytes) -> str | None:
    # Python 2 str payloads: the unpickler decodes them with its *encoding* (ASCII by
    # default, latin-1 or bytes when asked), so only plain ASCII has one meaning.
    return raw.decode("ascii") if raw.isascii() else None


def _bytes(data: object, a: int, b: int) -> bytes:
    return bytes(data[a:b])  # type: ignore[index]


def _string_at(data: object, n: int, off: int, find_nl: object) -> str | None:
    """The str value pushed by the string opcode at ``off`` (None if not statically known)."""
    op = data[off]  # type: ignore[index]
    try:
        if op == 0x8C or op == 0x55:  # SHORT_BINUNICODE, SHORT_BINSTRING
            ln = data[off + 1]  # type: ignore[index]
            a = off + 2
        elif op == 0x58 or op == 0x54:  # BINUNICODE, BINSTRING
            ln = _u4(data, off + 1)[0]
            a = off + 5
        elif op == 0x8D:  # BINUNICODE8
            ln = _u8(data, off + 1)[0]
            a = off + 9
        else:  # STRING, UNICODE: up to the newline (looked for in a bounded window: the
            # same string may be fetched from the memo for many STACK_GLOBALs)
            a = off + 1
            e = find_nl(b"\n", a, min(n, a + 4 * MAX_NAME_BYTES + 1))  # type: ignore[operator]
            if e < 0:
                return None
            raw = _bytes(data, a, e)
            if op == 0x56:  # UNICODE
                return codecs.raw_unicode_escape_decode(raw)[0]
            # STRING: quoted, with Python 2 escapes, then decoded with the unpickler's encoding
            if len(raw) < 2 or raw[0] != raw[-1] or raw[:1] not in (b"'", b'"'):
                return None
            return _decode_ascii(_ESCAPE.sub(_unescape_replace, raw[1:-1]))
        if ln > MAX_NAME_BYTES or a + ln > n:
            return None
        raw = _bytes(data, a, a + ln)
        if op == 0x55 or op == 0x54:
            return _decode_ascii(raw)
        return raw.decode("utf-8", "surrogatepass")
    except (_Unsure, UnicodeDecodeError, ValueError, IndexError, struct.error):
        return None


def _map_name(module: str, qualname: str, proto: int) -> tuple[str, str]:
    """What the default ``find_class`` imports for (module, qualname) at this protocol."""
    if proto < 3:
        pair = _NAME_MAPPING.get((module, qualname))
        if pair is not None:
            return pair
        mapped = _IMPORT_MAPPING.get(module)
        if mapped is not None:
            return mapped, qualname
    return module, qualname


def _global_ref(
    module: str | None, qualname: str | None, proto: int, offset: int, opcode: str
) -> GlobalRef:
    raw = None
    if module is not None and qualname is not None:
        m, q = _map_name(module, qualname, proto)
        if (m, q) != (module, qualname):
            raw = f"{module}.{qualname}"
        return GlobalRef(f"{m}.{q}", offset, opcode, True, m, q, raw)
    if module is not None and proto < 3:
        mapped = _IMPORT_MAPPING.get(module)
        if mapped is not None:
            raw = f"{module}.?"
            module = mapped
    name = f"{'?' if module is None else module}.{'?' if qualname is None else qualname}"
    return GlobalRef(name, offset, opcode, False, module, qualname, raw)


def _as_buffer(buf: object) -> tuple[object, int, object]:
    """(indexable bytes-like, its length, find) without copying ``buf``.

    ``find(b"\\n", start[, end])`` is the offset of the next newline or -1.
    """
    if isinstance(buf, (bytes, bytearray)):
        return buf, len(buf), buf.find
    try:
        mv = memoryview(buf)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"expected a bytes-like object, not {type(buf).__name__}") from None
    if not mv.c_contiguous:
        raise TypeError("expected a C-contiguous buffer")
    if mv.format != "B" or mv.ndim != 1:
        mv = mv.cast("B")
    search = _NL.search
    size = len(mv)

    def find(_sub: bytes, pos: int, end: int = size) -> int:
        m = search(mv, pos, end)
        return -1 if m is None else m.start()

    return mv, size, find


def _truncation(data: object, n: int, o: int) -> str:
    op = data[o]  # type: ignore[index]
    name = _NAME.get(op, f"opcode 0x{op:02x}")
    return f"the argument of {name} at offset {o} runs past the end of the data ({n - o - 1} bytes left)"


# The rare, involved cases: used by the walk below and, through callbacks, by the C walk.
def _args_value(items: list, track: bool) -> object:
    """The stack value of a tuple of ``items`` (one or two): the arguments of
    ``getattr(X, "name")`` (:class:`_AttrArgs`), with ``track`` the bytes argument of a call
    (:class:`_BlobArgs`), else None (unknown)."""
    if len(items) == 2 and isinstance(items[0], str) and type(items[1]) is int:
        return _AttrArgs(items)
    if track:
        if len(items) == 1 and type(items[0]) is _Blob:
            return _BlobArgs(items)
        if len(items) == 2 and type(items[0]) is int and type(items[1]) is int:
            return _BlobArgs(items)
    return None


def _getattr_ref(data: object, n: int, args: _AttrArgs, offset: int, find_nl: object) -> tuple[GlobalRef, str | None, str]:
    """``getattr(X, "name")`` at ``offset``: (its GlobalRef, the stack value, its name)."""
    attr = _string_at(data, n, args[1], find_nl)
    owner = args[0]
    known = attr is not None and attr.isidentifier()
    name = f"{owner}.{attr if known else '?'}"
    ref = GlobalRef(name, offset, "GETATTR", known, None, None, None if type(owner) is str else f"<instance of {owner}>")
    return ref, (name if known else None), name


def _ext_ref(code: int, proto: int, offset: int) -> tuple[GlobalRef, str | None, str | None]:
    """``EXT`` of ``code`` at ``offset``: (its GlobalRef, the stack value, the name to watch)."""
    pair = copyreg._inverted_registry.get(code)  # type: ignore[attr-defined]
    if isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], str) and isinstance(pair[1], str):
        ref = _global_ref(pair[0], pair[1], proto, offset, "EXT")
        return ref, ref.name, ref.name
    return GlobalRef(f"?.ext{code}", offset, "EXT", False), None, None


def _latin1_arg(data: object, n: int, off: int, find_nl: object) -> bool:
    """Is the string opcode at ``off`` a latin-1 codec name (``_codecs.encode(s, "latin1")``)?"""
    enc = _string_at(data, n, off, find_nl)
    return enc is not None and enc.lower() in _LATIN1


# ------------------------------------------------------------------------------ the walk
def _walk_py(  # noqa: C901
    data: object, n: int, start: int, memo: dict, find_nl: object, opts: _Options | None = None, keep: bool = True
) -> Walk:
    kinds = _KIND
    steps = _STEP
    argsize = _ARGSIZE
    u4 = _u4
    u8 = _u8
    made = _Made
    pushes_str = _PUSHES_STR
    plain = isinstance(data, (bytes, bytearray))
    stack: list = []
    push = stack.append
    marks: list[int] = []
    fence = 0
    globals_: list[GlobalRef] = []
    calls: list[CallSite] = []
    ext_codes: list[int] = []
    persids = 0
    proto = 0  # the unpickler's current protocol (for the Python 2 name mapping)
    protocol = None
    error: str | None = None  # why the walk stopped
    soft: str | None = None  # a problem some unpicklers stop at and others do not
    soft_off = 0
    stopped = False
    i = start
    o = start
    underflow = "stack underflow"
    track = False
    watch: frozenset[str] = frozenset()
    jumps = None
    payloads: list[tuple[int, int, int]] = []
    escapes: list[tuple[str, int]] = []
    jumped: list[int] = []
    if opts is not None:
        track, watch, jumps = opts.payloads, opts.watch, opts.jumps
    # escapes are looked for only once a watched global is on the stack (or in the memo)
    watching: frozenset[str] = watch if opts is not None and opts.armed else frozenset()
    prefix2 = _PREFIX2
    # End of the current FRAME: the C unpickler reading a file (not a bytes object) holds
    # the frame in its buffer, and an argument running past the end of that buffer is read
    # afresh from after the frame, dropping the bytes left in it: a reading different from
    # pickle.loads'. n + 1 stands for "no frame" (data[i] fails before i gets there).
    fend = n + 1
    try:
        while True:
            op = data[i]  # type: ignore[index]
            if i >= fend:
                if i > fend and soft is None:
                    soft = (
                        f"the argument of {_NAME.get(data[o], '?')} at offset {o} runs past "  # type: ignore[index]
                        f"the end of its FRAME (offset {fend}): unpicklers read it differently"
                    )
                    soft_off = o
                fend = n + 1
            o = i
            k = kinds[op]
            if k == 0:  # _PUSH
                i += steps[op]
                push(None)
            elif k == 1:  # _MEMOIZE
                if len(stack) <= fence:
                    error = underflow
                    break
                memo[len(memo)] = stack[-1]
                i += 1
            elif k == 2:  # _SHORT_UNI
                push(i)
                if track and data[i + 1] >= 4 and i + 2 + data[i + 1] <= n and len(payloads) < MAX_PAYLOADS:  # type: ignore[index]
                    if (data[i + 2] << 8 | data[i + 3]) in prefix2:  # type: ignore[index]
                        payloads.append((i, i + 2, data[i + 1]))  # type: ignore[index]
                i += 2 + data[i + 1]  # type: ignore[index]
            elif k == 3:  # _BINPUT
                key = data[i + 1] if op == 0x71 else u4(data, i + 1)[0]  # type: ignore[index]
                if len(stack) <= fence:
                    error = underflow
                    break
                memo[key] = stack[-1]
                i += steps[op]
            elif k == 4:  # _BINGET
                key = data[i + 1] if op == 0x68 else u4(data, i + 1)[0]  # type: ignore[index]
                try:
                    push(memo[key])
                except KeyError:
                    error = f"memo key {key} not found"
                    break
                i += steps[op]
            elif k == 5:  # _MARK
                fence = len(stack)
                marks.append(fence)
                i += 1
            elif k == 6:  # _LINE: INT, LONG, FLOAT, STRING, UNICODE, GET, PUT, PERSID
                e1 = find_nl(b"\n", i + 1)  # type: ignore[operator]
                if e1 < 0:
                    error = "no newline-terminated argument"
                    break
                if e1 == i + 1 and (op == 0x49 or op == 0x4C or op == 0x46 or op == 0x67 or op == 0x70):
                    error = "an empty argument"
                    break
                if op == 0x67 or op == 0x70:  # GET, PUT
                    try:
                        arg = data[i + 1 : e1 + 1]  # type: ignore[index]
                        if not plain:
                            arg = bytes(arg)
                        z = arg.find(b"\0")
                        if z >= 0:  # the C unpickler parses the line as a C string
                            arg = arg[:z]
                        key = int(arg)
                    except ValueError:
                        error = "an argument that is not an integer"
                        break
                    if op == 0x67:
                        try:
                            push(memo[key])
                        except KeyError:
                            error = f"memo key {key} not found"
                            break
                    else:
                        if len(stack) <= fence:
                            error = underflow
                            break
                        if key < 0:
                            error = "negative PUT argument"
                            break
                        memo[key] = stack[-1]
                elif op == 0x53 or op == 0x56:  # STRING, UNICODE
                    push(i)
                    if track and op == 0x56 and e1 - i > 4 and len(payloads) < MAX_PAYLOADS:
                        if (data[i + 1] << 8 | data[i + 2]) in prefix2:  # type: ignore[index]
                            payloads.append((i, i + 1, e1 - i - 1))
                else:  # INT, LONG, FLOAT, PERSID
                    push(None)
                    if op == 0x50:
                        persids += 1
                i = e1 + 1
            elif k == 7:  # _COUNTED
                c = argsize[op]
                if c == 1:
                    ln = data[i + 1]  # type: ignore[index]
                elif c == 4:
                    ln = u4(data, i + 1)[0]
                    if op == 0x8B and ln >= 0x80000000:  # LONG4 is signed
                        error = "a negative byte count"
                        break
                else:
                    ln = u8(data, i + 1)[0]
                    if ln > _PY_SSIZE_T_MAX:
                        error = f"length {ln} exceeds the maximum size"
                        break
                if track:
                    a = i + 1 + c
                    if op in _BYTES_OPS:
                        push(_Blob(i))
                    else:
                        push(i if pushes_str[op] else None)
                    if ln >= 4 and a + ln <= n and op != 0x8A and op != 0x8B and len(payloads) < MAX_PAYLOADS:
                        if (data[a] << 8 | data[a + 1]) in prefix2:  # type: ignore[index]
                            payloads.append((i, a, ln))
                else:
                    push(i if pushes_str[op] else None)
                i += 1 + c + ln
                if i > n:  # checked here: the next index would be huge
                    break
            elif k == 8:  # _SETITEM
                if len(stack) - 3 < fence:
                    error = underflow
                    break
                target = stack[-3]
                if type(target) is str:
                    calls.append(CallSite(i, "SETITEM", target))
                if watching:
                    _note(stack[-2:], watch, escapes, i)
                del stack[-2:]
                i += 1
            elif k == 9:  # _APPEND
                if len(stack) - 2 < fence:
                    error = underflow
                    break
                target = stack[-2]
                if type(target) is str:
                    calls.append(CallSite(i, "APPEND", target))
                if watching:
                    _note(stack[-1:], watch, escapes, i)
                del stack[-1]
                i += 1
            elif k == 10:  # _FILL: SETITEMS, APPENDS, ADDITEMS
                if not marks:
                    error = "could not find MARK"
                    break
                x = marks.pop()
                fence = marks[-1] if marks else 0
                if x <= fence:
                    error = underflow
                    break
                if len(stack) > x:
                    target = stack[x - 1]
                    if type(target) is str:
                        calls.append(CallSite(i, _NAME[op], target))
                    if op == 0x75 and (len(stack) - x) & 1:
                        error = "odd number of items"
                        break
                    if watching:
                        _note(stack[x:], watch, escapes, i)
                    del stack[x:]
                i += 1
            elif k == 11:  # _TUPLE_N
                c = argsize[op]
                if len(stack) - c < fence:
                    error = underflow
                    break
                pair = _args_value(stack[-c:], track) if c < 3 else None
                if watching:
                    _note(stack[-c:], watch, escapes, i)
                if c > 1:
                    del stack[1 - c :]
                stack[-1] = pair
                i += 1
            elif k == 12:  # _COLLECT: TUPLE, LIST, FROZENSET, DICT
                if not marks:
                    error = "could not find MARK"
                    break
                x = marks.pop()
                fence = marks[-1] if marks else 0
                if op == 0x64 and (len(stack) - x) & 1:
                    error = "odd number of items"
                    break
                if watching:
                    _note(stack[x:], watch, escapes, i)
                pair = _args_value(stack[x:], track) if op == 0x74 and len(stack) - x < 3 else None
                del stack[x:]
                push(pair)
                i += 1
            elif k == 13:  # _REDUCE
                if len(stack) - 2 < fence:
                    error = underflow
                    break
                fn = stack[-2]
                args = stack[-1]
                del stack[-1]
                if fn == "builtins.getattr" and type(args) is _AttrArgs:
                    # getattr(X, "name"): the attribute fetched is as good as a global
                    calls.append(CallSite(i, "REDUCE", fn))
                    ref, stack[-1], name = _getattr_ref(data, n, args, i, find_nl)
                    globals_.append(ref)
                    if watch and name in watch:
                        watching = watch
                        opts.armed = True  # type: ignore[union-attr]
                elif type(args) is _BlobArgs and type(fn) is str:
                    if len(args) == 1:
                        calls.append(CallSite(i, "REDUCE", fn, int(args[0])))
                        stack[-1] = made(fn)
                    else:
                        calls.append(CallSite(i, "REDUCE", fn))
                        latin1 = fn == "_codecs.encode" and _latin1_arg(data, n, args[1], find_nl)
                        stack[-1] = _Blob(args[0]) if latin1 else made(fn)
                elif type(fn) is str:
                    calls.append(CallSite(i, "REDUCE", fn))
                    stack[-1] = made(fn)
                else:
                    calls.append(CallSite(i, "REDUCE", None))
                    stack[-1] = None
                i += 1
            elif k == 14:  # _BUILD
                if len(stack) - 2 < fence:
                    error = underflow
                    break
                if watching:
                    _note(stack[-1:], watch, escapes, i)
                del stack[-1]
                inst = stack[-1]
                calls.append(CallSite(i, "BUILD", str(inst) if isinstance(inst, str) else None))
                i += 1
                if jumps is not None and o in jumps:
                    # the unpickler reads raw data (joblib's array) from here, then goes on
                    if fend <= n and i != fend and soft is None:
                        soft = (
                            f"the data read after BUILD at offset {o} starts inside a FRAME "
                            f"(which ends at offset {fend}): unpicklers read it differently"
                        )
                        soft_off = o
                    stack[-1] = None
                    jumped.append(o)
                    fend = n + 1
                    j = jumps[o]
                    if j > n:
                        error = f"the data read after it runs to offset {j}, past the end ({n})"
                        break
                    i = j
            elif k == 15:  # _NEWOBJ, NEWOBJ_EX
                c = 3 if op == 0x92 else 2
                if len(stack) - c < fence:
                    error = underflow
                    break
                cls = stack[-c]
                del stack[1 - c :]
                if type(cls) is str:
                    calls.append(CallSite(i, _NAME[op], cls))
                    stack[-1] = made(cls)
                else:
                    calls.append(CallSite(i, _NAME[op], None))
                    stack[-1] = None
                i += 1
            elif k == 16:  # _STACK_GLOBAL
                if len(stack) - 2 < fence:
                    error = underflow
                    break
                mod_v = stack[-2]
                name_v = stack[-1]
                del stack[-1]
                mod = _string_at(data, n, mod_v, find_nl) if type(mod_v) is int else None
                qual = _string_at(data, n, name_v, find_nl) if type(name_v) is int else None
                ref = _global_ref(mod, qual, proto, i, "STACK_GLOBAL")
                globals_.append(ref)
                stack[-1] = ref.name if ref.resolved else None
                if watch and ref.name in watch:
                    watching = watch
                    opts.armed = True  # type: ignore[union-attr]
                i += 1
            elif k == 17:  # _GLOBAL, INST
                e1 = find_nl(b"\n", i + 1)  # type: ignore[operator]
                e2 = find_nl(b"\n", e1 + 1) if e1 >= 0 else -1  # type: ignore[operator]
                enc = "utf-8" if op == 0x63 else "ascii"
                if (e2 if e2 >= 0 else n) >= fend and soft is None:
                    soft = f"the module and name of {_NAME[op]} at offset {i} run past the end of its FRAME (offset {fend}): unpicklers read them differently"
                    soft_off = i
                if e2 < 0:
                    # The data ends inside the module or name line. The pure-Python
                    # unpickler still imports: its readline returns the partial line,
                    # and [:-1] drops its last character.
                    error = "no newline-terminated module and name"
                    if e1 < 0:
                        raw_mod, raw_qual = _bytes(data, i + 1, n)[:-1], b""
                    else:
                        raw_mod, raw_qual = _bytes(data, i + 1, e1), _bytes(data, e1 + 1, n)[:-1]
                    try:
                        mod, qual = raw_mod.decode(enc), raw_qual.decode(enc)
                    except UnicodeDecodeError:
                        break
                    if mod:
                        globals_.append(_global_ref(mod, qual, proto, i, _NAME[op]))
                    break
                try:
                    mod = _bytes(data, i + 1, e1).decode(enc)
                    qual = _bytes(data, e1 + 1, e2).decode(enc)
                except UnicodeDecodeError:
                    error = f"a module or name that is not {enc}"
                    break
                # recorded before any check that may fail after it: the pure-Python
                # unpickler imports the module before it looks for INST's MARK
                ref = _global_ref(mod, qual, proto, i, _NAME[op])
                globals_.append(ref)
                if not mod or not qual:
                    error = "an empty module or name"
                    break
                if op == 0x69:  # INST: the arguments are the items above the MARK
                    if not marks:
                        error = "could not find MARK"
                        break
                    x = marks.pop()
                    fence = marks[-1] if marks else 0
                    if watching:
                        _note(stack[x:], watch, escapes, i)
                    del stack[x:]
                    calls.append(CallSite(i, "INST", ref.name if ref.resolved else None))
                    push(made(ref.name))
                else:
                    push(ref.name)
                    if watch and ref.name in watch:
                        watching = watch
                        opts.armed = True  # type: ignore[union-attr]
                i = e2 + 1
            elif k == 18:  # _FRAME
                ln = u8(data, i + 1)[0]
                i += 9
                new_end = i + ln
                if soft is None:
                    if ln > _PY_SSIZE_T_MAX or new_end > n:
                        soft = (
                            f"FRAME at offset {o} declares {ln} bytes, only {n - i} follow "
                            "(the C unpickler stops there, the pure-Python one reads on)"
                        )
                        soft_off = o
                    elif fend <= n and (i > fend or i < fend < new_end):
                        soft = (
                            f"FRAME at offset {o} runs past the end of the FRAME it is in "
                            f"(offset {fend}): unpicklers read it differently"
                        )
                        soft_off = o
                if fend > n or new_end > fend or i >= fend:
                    fend = new_end
            elif k == 19:  # _PROTO
                v = data[i + 1]  # type: ignore[index]
                if v > _HIGHEST_PROTOCOL:
                    error = f"unsupported pickle protocol {v}"
                    break
                proto = v
                if protocol is None:
                    protocol = v
                i += 2
            elif k == 20:  # _STOP
                if len(stack) <= fence:
                    error = underflow
                    break
                stopped = True
                i += 1
                if i < fend <= n and soft is None:
                    # loaders reading a file skip the rest of the frame, others do not
                    soft = (
                        f"STOP at offset {o} leaves {fend - i} bytes of its FRAME unread: "
                        "unpicklers disagree on where the next pickle starts"
                    )
                    soft_off = o
                break
            elif k == 21:  # _OBJ
                if not marks:
                    error = "could not find MARK"
                    break
                x = marks.pop()
                fence = marks[-1] if marks else 0
                if len(stack) - x < 1:
                    error = underflow
                    break
                cls = stack[x]
                if watching:
                    _note(stack[x + 1 :], watch, escapes, i)
                del stack[x:]
                if type(cls) is str:
                    calls.append(CallSite(i, "OBJ", cls))
                    push(made(cls))
                else:
                    calls.append(CallSite(i, "OBJ", None))
                    push(None)
                i += 1
            elif k == 22:  # _EXT
                c = argsize[op]
                if c == 1:
                    code = data[i + 1]  # type: ignore[index]
                elif c == 2:
                    code = _u2(data, i + 1)[0]
                else:
                    code = _i4(data, i + 1)[0]
                ext_codes.append(code)
                if code <= 0:
                    error = f"extension code {code} <= 0"
                    break
                ref, value, name = _ext_ref(code, proto, i)
                push(value)
                if watch and name is not None and name in watch:
                    watching = watch
                    opts.armed = True  # type: ignore[union-attr]
                globals_.append(ref)
                i += 1 + c
            elif k == 23:  # _BINPERSID
                if len(stack) <= fence:
                    error = underflow
                    break
                if watching:
                    _note(stack[-1:], watch, escapes, i)
                stack[-1] = None
                persids += 1
                i += 1
            elif k == 24:  # _POP
                ln = len(stack)
                if marks and marks[-1] == ln:
                    marks.pop()
                    fence = marks[-1] if marks else 0
                elif ln <= fence:
                    error = underflow
                    break
                else:
                    del stack[-1]
                i += 1
            elif k == 25:  # _POP_MARK
                if not marks:
                    error = "could not find MARK"
                    break
                x = marks.pop()
                fence = marks[-1] if marks else 0
                del stack[x:]
                i += 1
            elif k == 26:  # _DUP
                if len(stack) <= fence:
                    error = underflow
                    break
                push(stack[-1])
                i += 1
            elif k == 27:  # _READONLY
                if len(stack) <= fence:
                    error = underflow
                    break
                stack[-1] = None
                i += 1
            else:
                error = f"unknown opcode 0x{op:02x}"
                break
    except (IndexError, struct.error):
        pass
    if error is not None:
        name = _NAME.get(data[o])  # type: ignore[index]
        error = f"{error} at {name} (offset {o})" if name else f"{error} (offset {o})"
    elif not stopped:
        if i == n and (o != i or n == start):
            # the data ran out right before an opcode
            error = "the data ends without a STOP opcode"
            o = n
        else:
            # the data ran out in the argument of the opcode at o (i > n, or an
            # IndexError / struct.error reading it)
            error = _truncation(data, n, o)
            if o < fend <= n and soft is None:
                soft = f"the argument of {_NAME.get(data[o], '?')} at offset {o} runs past the end of its FRAME (offset {fend})"  # type: ignore[index]
                soft_off = o
    end = i if stopped else o
    err_off = o if error is not None else None
    if soft is not None:
        if error is None:
            error = soft
        else:
            error = f"{soft}; then: {error}"
        err_off = soft_off
    return Walk(
        globals=globals_,
        calls=calls,
        end=end,
        stopped=stopped,
        error=error,
        error_offset=err_off,
        protocol=protocol,
        persistent_ids=persids,
        ext_codes=ext_codes,
        start=start,
        payloads=payloads,
        escapes=escapes,
        jumped=jumped,
    )


def _load_c() -> object:
    """The C walker, set up with this module's tables; None when it is not built (or
    ``AMBER_PURE_PYTHON`` is set), and the pure-Python walk is used."""
    if os.environ.get("AMBER_PURE_PYTHON"):
        return None
    try:
        from amber.security import _cwalk  # type: ignore[attr-defined]
    except ImportError:
        return None
    _cwalk.setup(
        _KIND, _ARGSIZE, _STEP, [int(b) for b in _PUSHES_STR], _NAME, _PREFIX2, _Made, _AttrArgs, _Blob, _BlobArgs,
        GlobalRef, CallSite, _NAME_MAPPING, _IMPORT_MAPPING, _string_at, _getattr_ref, _ext_ref, _latin1_arg, Walk,
    )
    return _cwalk


_C = _load_c()
_NO_WATCH: frozenset[str] = frozenset()


def _walk_c(
    data: object, n: int, start: int, memo: dict, find_nl: object, opts: _Options | None = None, keep: bool = True
) -> Walk:
    """The C walk. With ``keep`` false, ``memo`` is brought up to date only when the walk
    stopped at a STOP before the end of the data (the only case where walk_all reads on)."""
    if opts is None:
        return _C.walk(data, n, start, memo, find_nl, False, _NO_WATCH, None, False, keep)[0]  # type: ignore[attr-defined]
    w, opts.armed = _C.walk(  # type: ignore[attr-defined]
        data, n, start, memo, find_nl, opts.payloads, opts.watch, opts.jumps, opts.armed, keep
    )
    return w


_walk = _walk_py if _C is None else _walk_c


def _options(payloads: bool, watch: Iterable[str], jumps: dict[int, int] | None) -> _Options | None:
    watch = frozenset(watch)
    if not payloads and not watch and jumps is None:
        return None
    return _Options(bool(payloads), watch, jumps)


def is_opcode(byte: int) -> bool:
    """Is ``byte`` a pickle opcode (of any protocol)?"""
    return _KIND[byte] != _BAD


def starts_like_pickle(head: bytes) -> bool:
    """Could a stream starting with ``head`` be a pickle? (``PROTO`` 2-5, or any opcode a
    protocol 0/1 pickle may start with.) Only a cheap first look: the walk decides."""
    if not head:
        return False
    if head[0] == 0x80:
        return len(head) > 1 and head[1] <= 5
    return _KIND[head[0]] != _BAD


def walk(
    buf: bytes | bytearray | memoryview,
    start: int = 0,
    *,
    payloads: bool = False,
    watch: Iterable[str] = (),
    jumps: dict[int, int] | None = None,
) -> Walk:
    """Walk ONE pickle starting at ``start``, up to and including its STOP.

    ``payloads``, ``watch`` and ``jumps``: see the module docstring. Raises TypeError when
    ``buf`` is not a bytes-like object and ValueError when ``start`` is outside it; never
    raises on what the buffer holds.
    """
    data, n, find_nl = _as_buffer(buf)
    _check_start(start, n)
    return _walk(data, n, start, {}, find_nl, _options(payloads, watch, jumps))


def walk_all(
    buf: bytes | bytearray | memoryview,
    start: int = 0,
    *,
    limit: int = 1000,
    payloads: bool = False,
    watch: Iterable[str] = (),
    jumps: dict[int, int] | None = None,
) -> list[Walk]:
    """Walk consecutive pickles (several pickles concatenated in one stream).

    Goes on until the data ends, until a pickle does not end with a STOP (that walk is the
    last one, with its error), or until what follows a STOP is not a pickle (it fails at its
    first opcode: that walk is left out); at most ``limit`` pickles. When the last walk's
    ``end`` is before the end of the buffer, the rest was not walked. The memo carries over
    from one pickle to the next, as it does when one ``Unpickler`` loads them in turn.
    """
    data, n, find_nl = _as_buffer(buf)
    _check_start(start, n)
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    opts = _options(payloads, watch, jumps)
    memo: dict = {}
    walks: list[Walk] = []
    pos = start
    while len(walks) < limit and pos < n:
        w = _walk(data, n, pos, memo, find_nl, opts, False)  # (the memo is read on only after a STOP before n)
        if walks and not w.stopped and w.end == pos and not w.globals:
            break  # what follows the previous STOP is not a pickle: its first opcode fails
        walks.append(w)
        if not w.stopped:
            break
        pos = w.end
    if not walks:
        walks.append(_walk(data, n, pos, memo, find_nl, opts))
    return walks


def pickle_globals(buf: bytes | bytearray | memoryview, start: int = 0) -> list[str]:
    """Sorted unique names of all globals of all consecutive pickles from ``start``."""
    return sorted({g.name for w in walk_all(buf, start) for g in w.globals})


def _check_start(start: int, n: int) -> None:
    if not isinstance(start, int) or isinstance(start, bool):
        raise TypeError(f"start must be an int, not {type(start).__name__}")
    if not 0 <= start <= n:
        raise ValueError(f"start {start} is outside the buffer (0 to {n})")
