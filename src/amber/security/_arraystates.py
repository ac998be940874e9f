"""A static proof that a pickle's ``BUILD`` opcodes cannot hand NumPy a short object list.

NumPy's ``ndarray.__setstate__`` fills an object array from the state's list by the shape
the state gives, without comparing the two, and the C unpickler's ``BUILD`` cannot be
hooked. :class:`~amber.security._unpickler.SafeUnpickler` therefore stops at the first
object dtype a stream makes, and the stream is read again by the pure-Python unpickler,
whose ``BUILD`` checks every array state (:func:`array_state_problem`): safe, but a pickle
with a 200,000-item object column then loads ten times slower than ``pickle.load``.

:func:`array_states_proven` reads the opcodes of one pickle without running anything, as
an abstract unpickler whose values are only what the proof needs, and returns True when
every ``BUILD`` of the stream is harmless to NumPy, whatever object it is applied to. The
stream can then be read by the C unpickler with no dtype watch. Anything it cannot follow
makes it answer False (the checked pure-Python reading then runs, as before): it is a
proof of safety, never a judgement of danger.

The abstract values. ``U``: any object (what a call, a global or a persistent id gives).
``SAFE``: an object that is neither a list (nor a list subclass) nor a sequence NumPy
could take as an array state with such a list in it: strings, bytes, numbers, None,
booleans, sets, and tuples whose length no array state has. ``INT(v)``: an int pushed by
an int opcode. ``LIST(i)``: the list made by the ``EMPTY_LIST`` or ``LIST`` opcode number
``i``, whose items are counted as ``APPEND(S)`` adds them. ``DICT(i)``: a dict made by an
opcode, with whether every key is a plain value (a key made by a call could be a list
subclass, and a masked array's ``__setstate__`` unpacks a dict state by its keys).
``TUPLE(k, product, raw, shape)``: a tuple of ``k`` items, the product of its items when
they are all ints from 0 (else -1) -- so it can stand for a shape -- and, for the lengths
an array state has (4 and 5: the ndarray's, 7: ``numpy.ma``'s), what stands at the
state's items place (a list's number, -2 for a value that is no list, -1 unknown) and the
product of the tuple at its shape place. ``NONE``, ``STR`` (a string opcode's text),
``DTYPE_CLASS`` (the global ``numpy.dtype``) and ``DTYPE(kind)`` (what calling it with a
type string made: an object dtype, another builtin kind, a void dtype, or unknown) let the
proof check the dtypes' own states.

The rules. A list that is used in any way other than as the target of ``APPEND(S)`` or
the items place of a tuple of 4, 5 or 7 items (an argument of a call, a dict value, an
item of another list, a ``BUILD`` state...) is *escaped*: code the proof cannot see may
change it later. A ``BUILD`` passes when its state is ``SAFE``, an ``INT``, a dict whose
keys are all plain, a tuple of another length, or a tuple of 4, 5 or 7 items whose items
place holds no list, or an unescaped list with exactly as many items as the product of
its shape. Everything else (an unknown state, a list as the state, an unknown items
place, a shape that is not a tuple of known ints, a count that differs) fails the proof.

Dtypes. NumPy takes a dtype's flags from its state (8 or 9 items) as they are, and an
object dtype whose flags say it holds no references makes arrays of uncounted or forged
pointers. A ``BUILD`` with such a state passes only on a dtype the proof saw made by
``numpy.dtype(typestr, ...)``, with version 3 (4 for a datetime's 9 items) and exactly
NumPy's flags (USE_GETITEM on a void or datetime dtype made ``scalar()`` read a NULL
array): 63 for an object dtype and 0 for the other fixed-size kinds, with no subarray,
names or fields; for a void type string (``V64``) its own item size, and either no fields
(flags 0, alignment 1) or fields as :meth:`_Proof.void_ok` says (NumPy trusts their
offsets, names and sizes, and a stream could hand such an array to a trusted function
during the load). String dtypes given a state (NumPy takes their item size from it),
other structured dtypes, and a state of that length on anything else, fail the proof (the
checked reading then runs). NumPy's dtype ``__setstate__`` also takes states of
5, 6 and 7 items, trusting their fields alike: a tuple of 6 items fails the proof, one of 5
or 7 passes only as an array's state (an int version of 0 to 2, then a shape of known ints
where a dtype's state has its byte order, which NumPy requires to be a string).
``numpy.dtype`` may only be called by ``REDUCE``: used any other way (``NEWOBJ``, an
argument, an item) the proof fails. (The other ways to make a dtype -- its classes in
``numpy.dtypes``, attributes -- stay watched in the C unpickler's proven reading: a dtype
made there sends the stream to the checked reading.)

The stream must be well formed as the C unpickler reading a file sees it: the proof fails
on a truncated or malformed stream, on a stack underflow, a memo key not set, and on an
opcode or argument running past the end of its ``FRAME`` (where the unpickler reading a
file and a linear reading part ways), or a ``FRAME`` starting inside another.

Two implementations: this one is the reference; ``_speedups.array_states_proven`` is its
port to C, used when built. ``tests/test_arraystates.py`` checks that both give the same
answers, and that no stream they prove makes the checked reading find a bad state.
"""

from __future__ import annotations

import re
import struct
from typing import Any

from amber._compiled import compiled

__all__ = ["array_states_proven"]

# kinds of abstract values
U, SAFE, INT, LIST, DICT, TUPLE, NONE, STR, DTYPE_CLASS, DTYPE, CODECS_ENCODE = range(11)
#: what a dtype made by ``numpy.dtype(typestr, ...)`` is, by its type string
D_OBJECT, D_PLAIN, D_VOID, D_UNKNOWN, D_DATETIME = range(5)
#: NumPy's flags of an object dtype
OBJECT_FLAGS = 63
#: the items place holds no list / is unknown (TUPLE values; a list's number otherwise)
NOT_A_LIST, UNKNOWN = -2, -1
#: products saturate here
_CAP = 1 << 62
#: memo keys are followed up to this far past twice the number of keys set: picklers
#: number them from 0 up (the C twin keeps the memo in an array)
MEMO_SLACK = 1024

_u4 = struct.Struct("<I").unpack_from
_i4 = struct.Struct("<i").unpack_from
_u8 = struct.Struct("<Q").unpack_from

_STATE_LENGTHS = (4, 5, 7)


class _Fail(Exception):
    pass


def _shape_at(k: int) -> int:
    return 1 if k == 7 else k - 4


def _raw_at(k: int) -> int:
    return 4 if k == 7 else k - 1


class _Proof:
    def __init__(self, n: int = 1 << 62) -> None:
        #: at most this many tuples, lists and dicts (a budget: the C twin keeps up to 64 bytes
        #: per container, and a stream of empty tuples made its tables 32 times its size)
        self.budget = n // 32 + 64
        self.made = 0
        self.list_count: list[int] = []
        self.list_escaped: list[bool] = []
        self.dict_plain: list[bool] = []
        #: a dict's (key, value) pairs when one SETITEMS (or DICT) filled it and nothing else
        #: touched it since, else None; and whether a void dtype took it as its fields (it may
        #: then not be touched at all: NumPy keeps the dict itself)
        self.dict_pairs: list[list[tuple[Any, Any]] | None] = []
        self.dict_fills: list[int] = []
        self.dict_owned: list[bool] = []
        self.owned_next: int | None = None
        #: ``numpy.dtype`` was used other than as the callable of a REDUCE
        self.lost_dtype_class = False
        self.utext: Any = None  # (the text of a STR value made by a unicode opcode, or None)

    def escape(self, v: tuple[Any, ...]) -> None:
        kind = v[0]
        if kind == DTYPE_CLASS:  # numpy.dtype handed on: dtypes made where the proof cannot see
            self.lost_dtype_class = True
        elif kind == LIST:
            self.list_escaped[v[1]] = True
        elif kind == DICT:
            self.dict_plain[v[1]] = False
            self.dict_pairs[v[1]] = None
            if self.dict_owned[v[1]]:  # (a void dtype's fields, used again: they could change)
                raise _Fail
        elif kind == TUPLE:
            if v[3] >= 0:
                self.list_escaped[v[3]] = True
            if v[1] in (8, 9):
                self.escape(v[7])
                self.escape(v[8])

    def spend(self) -> None:
        self.made += 1
        if self.made > self.budget:
            raise _Fail

    def new_list(self, count: int) -> tuple[Any, ...]:
        self.spend()
        self.list_count.append(count)
        self.list_escaped.append(False)
        return (LIST, len(self.list_count) - 1)

    def new_dict(self, keys: list[tuple[Any, ...]], values: list[tuple[Any, ...]]) -> tuple[Any, ...]:
        self.spend()
        self.dict_plain.append(True)
        self.dict_pairs.append([])
        self.dict_fills.append(0)
        self.dict_owned.append(False)
        v = (DICT, len(self.dict_plain) - 1)
        self.set_items(v, keys, values)
        return v

    def set_items(self, target: tuple[Any, ...], keys: list[tuple[Any, ...]], values: list[tuple[Any, ...]]) -> None:
        for x in values:
            self.escape(x)
        if target[0] == DICT:
            i = target[1]
            if self.dict_owned[i]:
                raise _Fail
            if keys:
                self.dict_fills[i] += 1
                self.dict_pairs[i] = list(zip(keys, values)) if self.dict_fills[i] == 1 else None
            if any(key[0] == U for key in keys):
                self.dict_plain[i] = False
            for key in keys:  # (a list key fails at run time; a tuple key holds no unescaped list)
                self.escape(key)
        else:  # (a list's item set by index, or by a slice a call made: its length may change)
            if keys:
                self.escape(target)
            for key in keys:
                self.escape(key)

    def append(self, target: tuple[Any, ...], items: list[tuple[Any, ...]]) -> None:
        for x in items:
            self.escape(x)
        if target[0] == LIST:
            i = target[1]
            self.list_count[i] = min(self.list_count[i] + len(items), _CAP)

    def tuple_of(self, items: list[tuple[Any, ...]]) -> tuple[Any, ...]:
        self.spend()
        k = len(items)
        prod = 1
        for x in items:
            if x[0] != INT or x[1] < 0:
                prod = -1
                break
            prod = min(prod * x[1], _CAP)
        raw, shape = NOT_A_LIST, -1
        if k in _STATE_LENGTHS:
            ra, sa = _raw_at(k), _shape_at(k)
            for j, x in enumerate(items):
                if j != ra:
                    self.escape(x)
            r = items[ra]
            if r[0] == LIST:
                raw = r[1]
            elif r[0] == U:
                raw = UNKNOWN
            else:
                self.escape(r)  # (a dict, or a tuple that holds a list, at the items place)
            s = items[sa]
            shape = s[2] if s[0] == TUPLE else -1
        else:  # (a dtype state's subarray and fields are held, as an array state's items are)
            for j, x in enumerate(items):
                if k not in (8, 9) or j not in (2, 4):
                    self.escape(x)
        first = items[0] if k else _U
        dtype_state = k in (8, 9)
        flags = items[7][1] if dtype_state and items[7][0] == INT and items[7][1] >= 0 else -1
        subarray = items[2] if dtype_state else _U
        fields = items[4] if dtype_state else _U
        second = items[1] if k >= 2 else _U
        elsize, align, names = (items[5], items[6], items[3]) if dtype_state else (_U, _U, _U)
        strs = tuple(items) if 1 <= k <= 64 and all(x[0] == STR for x in items) else None
        return (TUPLE, k, prod, raw, shape, first, flags, subarray, fields, second, elsize, align, names, strs)

    def void_ok(self, target: tuple[Any, ...], state: tuple[Any, ...]) -> bool:
        """A void dtype's state of 8 items (version 3): NumPy takes its fields, names, item
        size and flags as they are. It passes with no subarray, its item size that of its
        type string, NumPy's own flags and alignment (0 and 1; with
        fields 16 and 1, or 144 and a power of two up to 16 when aligned), and either no
        names and fields, or names (unicode strings, each once) that are exactly
        the keys of a fields dict one SETITEMS filled with ``(dtype, offset)`` pairs of
        fixed-size dtypes lying inside the items. The dict may then not be touched again."""
        if state[1] != 8 or state[7][0] != NONE:
            return False
        elsize, align, names, fields = state[10], state[11], state[12], state[8]
        if elsize[0] != INT or elsize[1] != target[2] or align[0] != INT:
            return False
        if names[0] == NONE and fields[0] == NONE:
            return state[6] == 0 and align[1] == 1
        # (NumPy's flags and alignment of fields of fixed-size dtypes: 16 and 1 packed, 144 and
        # the largest field's aligned; an alignment of 0 made copying divide by zero)
        if not (state[6] == 16 and align[1] == 1 or state[6] == 144 and align[1] in (1, 2, 4, 8, 16)):
            return False
        if names[0] != TUPLE or names[13] is None or fields[0] != DICT:
            return False
        pairs = self.dict_pairs[fields[1]]
        texts = [self.utext(x) for x in names[13]]
        if pairs is None or len(pairs) != len(texts) or None in texts or len(set(texts)) != len(texts):
            return False
        seen = set()
        for key, value in pairs:
            kt = self.utext(key) if key[0] == STR else None
            if kt is None or kt in seen or value[0] != TUPLE or value[1] != 2:
                return False
            fd, off = value[5], value[9]
            if fd[0] != DTYPE or fd[1] != D_PLAIN or fd[2] < 1 or off[0] != INT or not 0 <= off[1] <= elsize[1] - fd[2]:
                return False
            seen.add(kt)
        if seen != set(texts):
            return False
        self.owned_next = fields[1]
        return True

    def build_ok(self, target: tuple[Any, ...], state: tuple[Any, ...]) -> bool:
        kind = state[0]
        if target[0] == DTYPE and (kind != TUPLE or (target[1] == D_DATETIME and state[1] != 9)):
            return False  # (NumPy reads any sequence as a dtype state; a datetime's needs its unit)
        if kind == TUPLE and state[1] in (5, 6, 7) and not (
            state[1] != 6 and state[5][0] == INT and 0 <= state[5][1] <= 2 and state[4] >= 0
        ):
            # NumPy's dtype __setstate__ takes states of 5 to 9 items and trusts their fields,
            # subarray and size: one of 5 or 7 items passes only as an array's (a version, then
            # a shape of known ints where a dtype's state has its byte order, which NumPy
            # requires to be a string), one of 6 items never (no array state has 6 items)
            return False
        if kind == TUPLE and state[1] in (8, 9):  # a dtype's state
            # (version 3 for 8 items, 4 for 9: with another one NumPy works the flags out itself)
            if target[0] != DTYPE or state[6] < 0 or state[5] != (INT, state[1] - 5):
                return False
            d, flags, subarray, fields = target[1], state[6], state[7], state[8]
            if d == D_OBJECT:
                return flags == OBJECT_FLAGS and subarray[0] == NONE and fields[0] == NONE
            if d in (D_PLAIN, D_DATETIME):  # (a datetime's state without its unit, 8 items, crashes NumPy)
                # exactly NumPy's flags, 0: USE_GETITEM (0x20) made numpy's scalar() call a getitem
                # that reads a NULL array (a crash; found in review)
                return (d == D_PLAIN or state[1] == 9) and flags == 0 and subarray[0] == NONE and fields[0] == NONE
            if d == D_VOID:
                return self.void_ok(target, state)
            return False  # (string and unknown dtypes: NumPy takes their item size from the state)
        if kind in (SAFE, INT, NONE, STR):
            return True
        if kind == DICT:
            ok = self.dict_plain[state[1]]
            self.escape(state)
            return ok
        if kind == TUPLE:
            k, raw, shape = state[1], state[3], state[4]
            if k not in _STATE_LENGTHS or raw == NOT_A_LIST:
                return True
            if raw == UNKNOWN:
                return False
            ok = not self.list_escaped[raw] and shape >= 0 and self.list_count[raw] == shape
            self.list_escaped[raw] = True
            return ok
        return False  # an unknown object, or a list, as the state


_SAFE = (SAFE,)
_U = (U,)
_NONE = (NONE,)
_DTYPE_CLASS = (DTYPE_CLASS,)
_CODECS_ENCODE = (CODECS_ENCODE,)
#: type strings of builtin dtypes that are not void (byte order, type, size, datetime unit)
#: (not the flexible kinds S, a, c, U and V: NumPy takes their item size from a state)
_PLAIN_TYPESTR = re.compile(rb"[<>|=]?[?bBhHiIlLqQpPefdgFDGMmu][0-9]{0,4}(\[[0-9]{0,4}[A-Za-z]{1,2}\])?")
#: fixed-size kinds as NumPy spells them when it pickles a dtype (complex ``c16``: not the
#: flexible ``c``, which is S1), with their sizes; and void type strings
_FIELD_TYPESTR = re.compile(rb"[<>|=]?[biufc](1|2|4|8|16|32)")
_VOID_TYPESTR = re.compile(rb"[<>|=]?V([1-9][0-9]{0,8})")
_OBJECT_TYPESTR = frozenset(order + body for order in (b"", b"<", b">", b"|", b"=") for body in (b"O", b"O8", b"O4"))


def _dtype_kind(text: bytes | None) -> tuple[int, int]:
    """What ``numpy.dtype(text, ...)`` makes, by the type string alone, and its item size
    where a structured dtype may hold it as a field (NumPy's own spelling: ``i8``, ``f4``,
    ``u1``, ``c16``, ``b1``; a void dtype's ``V64``), else -1."""
    if text is None:
        return D_UNKNOWN, -1
    if text in _OBJECT_TYPESTR:
        return D_OBJECT, -1
    m = _FIELD_TYPESTR.fullmatch(text)
    if m:
        return D_PLAIN, int(m.group(1))
    if _PLAIN_TYPESTR.fullmatch(text):
        return (D_DATETIME if text.lstrip(b"<>|=")[:1] in (b"M", b"m") else D_PLAIN), -1
    m = _VOID_TYPESTR.fullmatch(text)
    if m:
        return D_VOID, int(m.group(1))
    return D_UNKNOWN, -1


def _text(data: Any, n: int, v: tuple[Any, ...]) -> bytes | None:
    """The bytes of the string a STR value stands for (at most 64 of them), else None."""
    if v[0] != STR:
        return None
    o = v[1]
    op = data[o]
    if op in (0x56, 0x53):  # UNICODE, STRING lines: plain text only (no escapes; STRING quoted)
        e = bytes(data[o + 1 : o + 67]).find(b"\n")
        raw = bytes(data[o + 1 : o + 1 + e]) if e >= 0 else b"\\"
        if op == 0x53:
            raw = raw[1:-1] if len(raw) >= 2 and raw[:1] == raw[-1:] and raw[:1] in (b"'", b'"') else b"\\"
        return None if b"\\" in raw else raw
    if op in (0x8C, 0x55):
        ln, a = data[o + 1], o + 2
    elif op in (0x58, 0x54):
        ln, a = _u4(data, o + 1)[0], o + 5
    else:  # 0x8D
        ln, a = _u8(data, o + 1)[0], o + 9
    if ln > 64:
        return None
    return bytes(data[a : a + ln])


def _utext(data: Any, n: int, v: tuple[Any, ...]) -> bytes | None:
    """The UTF-8 bytes of a string a binary unicode opcode pushed (at most 64), else None:
    two strings are equal exactly when these are (not so across encodings)."""
    if v[0] != STR or data[v[1]] not in (0x8C, 0x58, 0x8D):
        return None
    return _text(data, n, v)


def _int_line(raw: bytes) -> tuple[Any, ...]:
    """The value of an INT opcode's line: True/False for ``01``/``00``; an int for plain
    decimal digits without a leading zero (C's ``strtol`` reads ``010`` as octal, Python
    as ten: any other spelling is an unknown value)."""
    if raw in (b"01", b"00"):
        return _SAFE
    digits = raw[1:] if raw[:1] == b"-" else raw
    if digits.isdigit() and digits.isascii() and (digits == b"0" or digits[:1] != b"0") and len(digits) <= 17:  # (the C twin keeps 60 bits)
        return (INT, int(raw))
    return _U


def _array_states_proven_py(data: Any, start: int = 0) -> bool:  # noqa: C901
    """Twin of ``_speedups.array_states_proven``: see the module docstring."""
    mv = memoryview(data).cast("B") if not isinstance(data, (bytes, bytearray)) else data
    n = len(mv)
    p = _Proof(n)
    p.utext = lambda v: _utext(mv, n, v)
    stack: list[tuple[Any, ...]] = []
    marks: list[int] = []
    memo: dict[int, tuple[Any, ...]] = {}
    i = start
    fend = -1  # end of the current FRAME, -1 outside one

    def need(end: int) -> None:
        if end > n or (fend >= 0 and end > fend):
            raise _Fail

    def line(a: int) -> int:
        e = bytes(mv[a : n if fend < 0 else fend]).find(b"\n")
        if e < 0:
            raise _Fail
        return a + e

    def fence() -> int:
        return marks[-1] if marks else 0

    def pop() -> tuple[Any, ...]:
        if len(stack) <= fence():
            raise _Fail
        return stack.pop()

    def pop_mark() -> list[tuple[Any, ...]]:
        if not marks:
            raise _Fail
        m = marks.pop()
        items = stack[m:]
        del stack[m:]
        return items

    def top() -> tuple[Any, ...]:
        if len(stack) <= fence():
            raise _Fail
        return stack[-1]

    def put(key: int) -> None:
        value = top()
        if key < 0 or key > 2 * len(memo) + MEMO_SLACK:
            raise _Fail
        memo[key] = value

    try:
        while True:
            if fend >= 0 and i == fend:
                fend = -1
            need(i + 1)
            op = mv[i]
            o = i
            i += 1
            if op == 0x4E:  # NONE
                stack.append(_NONE)
            elif op in (0x88, 0x89, 0x8F):  # NEWTRUE, NEWFALSE, EMPTY_SET
                stack.append(_SAFE)
            elif op == 0x5D:  # EMPTY_LIST
                stack.append(p.new_list(0))
            elif op == 0x7D:  # EMPTY_DICT
                stack.append(p.new_dict([], []))
            elif op == 0x29:  # EMPTY_TUPLE
                stack.append(p.tuple_of([]))
            elif op == 0x4B:  # BININT1
                need(i + 1)
                stack.append((INT, mv[i]))
                i += 1
            elif op == 0x4D:  # BININT2
                need(i + 2)
                stack.append((INT, mv[i] | mv[i + 1] << 8))
                i += 2
            elif op == 0x4A:  # BININT
                need(i + 4)
                stack.append((INT, _i4(mv, i)[0]))
                i += 4
            elif op == 0x47:  # BINFLOAT
                need(i + 8)
                stack.append(_SAFE)
                i += 8
            elif op in (0x8C, 0x43, 0x55, 0x8A):  # SHORT_BINUNICODE, SHORT_BINBYTES, SHORT_BINSTRING, LONG1
                need(i + 1)
                ln = mv[i]
                need(i + 1 + ln)
                stack.append(_U if op == 0x8A else (STR, o) if op != 0x43 else _SAFE)
                i += 1 + ln
            elif op in (0x58, 0x42, 0x54, 0x8B):  # BINUNICODE, BINBYTES, BINSTRING, LONG4
                need(i + 4)
                ln = _u4(mv, i)[0]
                if op in (0x54, 0x8B) and ln >= 1 << 31:  # signed lengths
                    raise _Fail
                need(i + 4 + ln)
                stack.append(_U if op == 0x8B else (STR, o) if op != 0x42 else _SAFE)
                i += 4 + ln
            elif op in (0x8D, 0x8E, 0x96):  # BINUNICODE8, BINBYTES8, BYTEARRAY8
                need(i + 8)
                ln = _u8(mv, i)[0]
                need(i + 8 + ln)
                stack.append((STR, o) if op == 0x8D else _SAFE)
                i += 8 + ln
            elif op == 0x94:  # MEMOIZE
                put(len(memo))
            elif op == 0x71:  # BINPUT
                need(i + 1)
                put(mv[i])
                i += 1
            elif op == 0x72:  # LONG_BINPUT
                need(i + 4)
                put(_u4(mv, i)[0])
                i += 4
            elif op in (0x68, 0x6A):  # BINGET, LONG_BINGET
                w = 1 if op == 0x68 else 4
                need(i + w)
                key = mv[i] if w == 1 else _u4(mv, i)[0]
                if key not in memo:
                    raise _Fail
                stack.append(memo[key])
                i += w
            elif op == 0x28:  # MARK
                marks.append(len(stack))
            elif op in (0x65, 0x75, 0x90):  # APPENDS, SETITEMS, ADDITEMS
                items = pop_mark()
                target = top()
                if op == 0x65:
                    p.append(target, items)
                elif op == 0x75:
                    if len(items) % 2:
                        raise _Fail
                    p.set_items(target, items[0::2], items[1::2])
                else:
                    for x in items:
                        p.escape(x)
            elif op == 0x61:  # APPEND
                x = pop()
                p.append(top(), [x])
            elif op == 0x73:  # SETITEM
                value = pop()
                key = pop()
                p.set_items(top(), [key], [value])
            elif op in (0x85, 0x86, 0x87):  # TUPLE1, TUPLE2, TUPLE3
                k = op - 0x84
                if len(stack) - k < fence():
                    raise _Fail
                items = stack[-k:]
                del stack[-k:]
                stack.append(p.tuple_of(items))
            elif op == 0x74:  # TUPLE
                stack.append(p.tuple_of(pop_mark()))
            elif op == 0x6C:  # LIST
                items = pop_mark()
                for x in items:
                    p.escape(x)
                stack.append(p.new_list(len(items)))
            elif op == 0x64:  # DICT
                items = pop_mark()
                if len(items) % 2:
                    raise _Fail
                stack.append(p.new_dict(items[0::2], items[1::2]))
            elif op == 0x91:  # FROZENSET
                for x in pop_mark():
                    p.escape(x)
                stack.append(_SAFE)
            elif op == 0x52:  # REDUCE
                args = pop()
                func = pop()
                p.escape(args)
                if func[0] == DTYPE_CLASS:
                    first = args[5] if args[0] == TUPLE and args[1] >= 1 else _U
                    stack.append((DTYPE, *_dtype_kind(_text(mv, n, first))))
                elif func[0] == CODECS_ENCODE:  # (protocols 0-2 write bytes so: bytes)
                    stack.append(_SAFE)
                else:
                    stack.append(_U)
            elif op == 0x62:  # BUILD
                state = pop()
                if not p.build_ok(top(), state):
                    return False
                p.escape(state)
                if p.owned_next is not None:  # (a void dtype's fields dict: not to be touched again)
                    p.dict_owned[p.owned_next] = True
                    p.owned_next = None
            elif op == 0x81:  # NEWOBJ
                args = pop()
                p.escape(pop())
                p.escape(args)
                stack.append(_U)
            elif op == 0x92:  # NEWOBJ_EX
                kwargs = pop()
                args = pop()
                p.escape(pop())
                p.escape(args)
                p.escape(kwargs)
                stack.append(_U)
            elif op == 0x93:  # STACK_GLOBAL
                name = pop()
                module = pop()
                pair = (_text(mv, n, module), _text(mv, n, name))
                stack.append(_DTYPE_CLASS if pair == (b"numpy", b"dtype") else _CODECS_ENCODE if pair == (b"_codecs", b"encode") else _U)
            elif op in (0x63, 0x69):  # GLOBAL, INST: two lines
                e1 = line(i)
                e2 = line(e1 + 1)
                if e1 == i or e2 == e1 + 1:
                    raise _Fail
                pair = (bytes(mv[i:e1]), bytes(mv[e1 + 1 : e2])) if op == 0x63 else None
                i = e2 + 1
                if op == 0x69:
                    for x in pop_mark():
                        p.escape(x)
                stack.append(_DTYPE_CLASS if pair == (b"numpy", b"dtype") else _CODECS_ENCODE if pair == (b"_codecs", b"encode") else _U)
            elif op == 0x6F:  # OBJ
                items = pop_mark()
                if not items:
                    raise _Fail
                for x in items:
                    p.escape(x)
                stack.append(_U)
            elif op in (0x49, 0x4C, 0x46, 0x53, 0x56, 0x67, 0x70, 0x50):  # line opcodes
                e = line(i)
                raw = bytes(mv[i:e])
                i = e + 1
                if op == 0x49:  # INT
                    stack.append(_int_line(raw))
                elif op in (0x67, 0x70):  # GET, PUT
                    if not (raw.isdigit() and raw.isascii() and len(raw) <= 18):
                        raise _Fail  # (digits only: the two unpicklers parse anything else apart)
                    key = int(raw)
                    if op == 0x67:
                        if key not in memo:
                            raise _Fail
                        stack.append(memo[key])
                    else:
                        put(key)
                elif op == 0x50:  # PERSID
                    stack.append(_U)
                elif op == 0x4C:  # LONG
                    stack.append(_U)
                elif op == 0x46:  # FLOAT
                    stack.append(_SAFE)
                else:  # STRING, UNICODE
                    stack.append((STR, o))
            elif op == 0x51:  # BINPERSID
                p.escape(pop())
                stack.append(_U)
            elif op in (0x82, 0x83, 0x84):  # EXT1, EXT2, EXT4
                w = {0x82: 1, 0x83: 2, 0x84: 4}[op]
                need(i + w)
                i += w
                stack.append(_U)
            elif op == 0x30:  # POP
                if marks and len(stack) == marks[-1]:  # POP of an empty mark drops the mark
                    marks.pop()
                else:
                    pop()
            elif op == 0x31:  # POP_MARK
                pop_mark()
            elif op == 0x32:  # DUP
                stack.append(top())
            elif op == 0x80:  # PROTO
                need(i + 1)
                i += 1
            elif op == 0x95:  # FRAME
                need(i + 8)
                if fend >= 0:
                    raise _Fail  # a frame inside a frame
                ln = _u8(mv, i)[0]
                i += 8
                if i + ln > n:
                    raise _Fail
                fend = i + ln if ln else -1
            elif op == 0x2E:  # STOP
                pop()
                return not stack and not p.lost_dtype_class
            else:  # NEXT_BUFFER, READONLY_BUFFER and anything unknown
                return False
    except (_Fail, IndexError, struct.error):
        return False


_C = compiled("array_states_proven")


def array_states_proven(data: Any, start: int = 0) -> bool:
    """True when no ``BUILD`` of the pickle at ``start`` of ``data`` can hand NumPy an object
    list shorter or longer than its shape says, or a dtype state it trusts to its harm (see
    the module docstring); False when that is not proven."""
    if _C is not None:
        return bool(_C(data, start))
    return _array_states_proven_py(data, start)
