"""Layouts the scanner walks through without running anything: joblib's raw arrays
between pickle opcodes, zip archives (torch.save, ``.npz``, any zip) checked against the
readers that disagree on them, and small helpers for torch's legacy formats.

joblib. ``joblib.dump`` writes a pickle whose arrays are replaced by a
``joblib.numpy_pickle.NumpyArrayWrapper``; right after the ``BUILD`` that gives a wrapper
its state, ``joblib.load`` reads the array's bytes straight from the file (after a padding
byte and that many padding bytes, since joblib 1.2), or a nested pickle for object arrays,
then reads opcodes again. :func:`joblib_layout` finds where each array ends with a small
evaluator of literal values (ints, strings, bytes, tuples, lists, dicts, ``numpy.dtype``
built from a dtype string and a state that must be exactly what NumPy itself pickles for
some dtype; nothing else is evaluated, nothing is imported, no object from the stream is
built). It refuses, with a reason, every stream whose layout it cannot determine exactly as
joblib would: the wrapper class used other than by ``NEWOBJ`` (or ``copyreg._reconstructor``),
a shape or dtype that is not literal, a ``BUILD`` state it cannot follow. The scanner then
reports the file as unknown, never safe.

zip. :func:`read_zip` lists the members from the central directory (Python's ``zipfile``)
and checks each local header against it, and the bytes around the members: data before the
first member, between members or before the central directory, members that overlap,
duplicate names, names with NUL bytes, local headers that disagree with the directory. Such
archives are read differently by different readers (PyTorch's miniz, Python's zipfile,
streaming unzippers), which is how scanners have been bypassed. Member bytes are read by
:func:`member_chunks` from the local header's data offset, ignoring flag bits (an
"encrypted" flag on a plain member does not stop torch from reading it).
"""

from __future__ import annotations

import re
import reprlib
import struct
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from amber.container._io import RangeFile
from amber.security import _walk as W

__all__ = [
    "JOBLIB_WRAPPER",
    "JoblibLayout",
    "PreadFile",
    "ZipListing",
    "ZipMember",
    "joblib_layout",
    "member_chunks",
    "read_zip",
    "small_int_pickle",
]

JOBLIB_WRAPPER = "joblib.numpy_pickle.NumpyArrayWrapper"
#: joblib < 0.10 wrappers: arrays in separate files, loaded by joblib with numpy.load.
JOBLIB_OLD_WRAPPERS = frozenset({"joblib.numpy_pickle.NDArrayWrapper", "joblib.numpy_pickle.ZNDArrayWrapper"})
#: Strings, bytes and long ints longer than this are not decoded (they stand for "some value").
_MAX_LITERAL = 4096


# ------------------------------------------------------------------------------ joblib
@dataclass
class JoblibLayout:
    """Where joblib's arrays lie in a stream: ``jumps`` maps the offset of each wrapper's
    ``BUILD`` to the offset where ``joblib.load`` reads opcodes again; ``object_pickles``
    are the offsets of the nested pickles of object arrays (walked on their own).
    ``refused`` says why the layout could not be followed (from ``refused_offset`` on);
    ``error`` is a malformed stream (the walker reports it too)."""

    jumps: dict[int, int] = field(default_factory=dict)
    object_pickles: list[int] = field(default_factory=list)
    arrays: int = 0
    array_bytes: int = 0
    refused: str | None = None
    refused_offset: int | None = None
    error: str | None = None


class _Refuse(Exception):
    pass


class _Malformed(Exception):
    pass


class _Opaque:
    """Any value the evaluator does not follow."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<opaque>"


_OPAQUE = _Opaque()


class _Global:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


class _Obj:
    """The result of calling a global (other than the few followed)."""

    __slots__ = ("name",)

    def __init__(self, name: str | None) -> None:
        self.name = name


class _Wrapper:
    """A NumpyArrayWrapper instance: its attributes as far as BUILD set them."""

    __slots__ = ("attrs",)

    def __init__(self) -> None:
        self.attrs: dict[Any, Any] = {}


class _DType:
    """``numpy.dtype(descr, align, copy)`` and the state BUILD gave it."""

    __slots__ = ("args", "state", "resolved")

    def __init__(self, args: Any) -> None:
        self.args = args
        self.state: Any = None
        self.resolved: Any = None


class _ReconArgs(tuple):
    """``(NumpyArrayWrapper, object, None)``: the arguments copyreg._reconstructor takes to
    make a wrapper in protocols 0 and 1."""

    __slots__ = ()


_DESCR = re.compile(r"[<>|=]?[A-Za-z?][A-Za-z]?[0-9]{0,12}")
_NO_VALUE = object()


def _is_wrapper_class(v: Any) -> bool:
    return type(v) is _Global and (v.name == JOBLIB_WRAPPER or v.name in JOBLIB_OLD_WRAPPERS)


def _check_free(items: Any, what: str) -> None:
    """The wrapper class may not be stored anywhere (where the evaluator would lose it)."""
    for v in items:
        t = type(v)
        if (t is _Global and (v.name == JOBLIB_WRAPPER or v.name in JOBLIB_OLD_WRAPPERS)) or t is _ReconArgs:
            raise _Refuse(f"the array wrapper class is used as {what}, which joblib may turn into an array read")


def _recon_args(items: list[Any]) -> bool:
    return (
        len(items) == 3
        and type(items[0]) is _Global
        and items[0].name == JOBLIB_WRAPPER
        and type(items[1]) is _Global
        and items[1].name == "builtins.object"
        and items[2] is None
    )


_SCALARS = frozenset({str, int, bool, bytes, type(None)})


def _flat(t: Any) -> Any:
    """``(types, t)`` for a tuple of scalars (equal only for the same types and values:
    ``True`` and ``1`` differ, and the evaluator tells them apart), else None."""
    if type(t) is not tuple:
        return None
    types = tuple(map(type, t))
    return (types, t) if _SCALARS.issuperset(types) else None


def _key(d: _DType) -> Any:
    """A hashable key of everything the resolution of ``d`` reads: its args and state, with
    the fields of a structured dtype keyed by their own (flat) dtypes; None for anything
    else (sub-arrays, nested structures, values that are not scalars: resolved afresh)."""
    a = _flat(d.args)
    st = d.state
    if a is None:
        return None
    if st is None:
        return a, None
    flat = _flat(st)
    if flat is not None:
        return a, flat
    if type(st) is not tuple or len(st) not in (8, 9) or st[2] is not None or type(st[4]) is not dict:
        return None
    rest, names = _flat(st[:3] + st[5:]), _flat(st[3])
    if rest is None or names is None:
        return None
    fields = []
    inners: dict[int, Any] = {}  # fields share their dtype objects (the memo): keyed once each
    for name, f in st[4].items():
        if type(name) is not str or type(f) is not tuple or len(f) not in (2, 3) or type(f[0]) is not _DType:
            return None
        sub, tail = f[0], _flat(f[1:])
        inner = inners.get(id(sub))
        if inner is None:
            inner = inners[id(sub)] = _flat(sub.args), (None if sub.state is None else _flat(sub.state))
        if tail is None or inner[0] is None or (sub.state is not None and inner[1] is None):
            return None
        fields.append((name, inner, tail))
    return a, rest, names, tuple(fields)


#: dtypes already resolved, by the key of their args and state: most files hold the same few
_DTYPES: dict[Any, Any] = {}


def _resolve_dtype(d: _DType, depth: int = 0) -> Any:
    """The numpy.dtype a load gets for ``d``, or raise _Refuse (only when its state is
    exactly the one NumPy pickles for the dtype built here from public constructors)."""
    if d.resolved is not None:
        return d.resolved
    if depth == 0:  # (a nested dtype's result also depends on how deep it sits)
        key = _key(d)
        if key is not None:
            hit = _DTYPES.get(key)
            if hit is None:
                hit = _resolve_dtype_now(d, depth)
                if len(_DTYPES) < 1024:
                    _DTYPES[key] = hit
            d.resolved = hit
            return hit
    return _resolve_dtype_now(d, depth)


def _resolve_dtype_now(d: _DType, depth: int) -> Any:
    if depth > 16:
        raise _Refuse("numpy dtypes nested too deeply")
    import numpy as np

    args = d.args
    if (
        type(args) is not tuple
        or len(args) != 3
        or type(args[0]) is not str
        or not _DESCR.fullmatch(args[0])
        or args[1] not in (False, True)
        or args[2] not in (False, True)
    ):
        raise _Refuse(f"numpy.dtype is called with arguments the scanner does not follow ({_show(args)})")
    descr = args[0]
    try:
        base = np.dtype(descr)
    except Exception:
        raise _Refuse(f"numpy.dtype({descr!r}) is not a dtype") from None
    state = d.state
    if state is None:
        cand = base
    else:
        if type(state) is not tuple or len(state) not in (8, 9):
            raise _Refuse(f"a numpy dtype's state is {_show(state)}")
        version, endian, sub, names, fields, elsize, alignment, flags = state[:8]
        metadata = state[8] if len(state) == 9 else None
        if type(version) is not int or type(endian) is not str or endian not in "<>|=" or len(endian) != 1:
            raise _Refuse(f"a numpy dtype's state is {_show(state)}")
        if not all(type(x) is int for x in (elsize, alignment, flags)):
            raise _Refuse(f"a numpy dtype's state is {_show(state)}")
        conv_sub: Any = None
        conv_fields: Any = None
        try:
            if sub is None and names is None and fields is None:
                cand = base
                if metadata is not None:
                    # datetime units: (None, (unit, num, den, events)) as NumPy writes it
                    ok = (
                        base.kind in "mM"
                        and type(metadata) is tuple
                        and len(metadata) == 2
                        and metadata[0] is None
                        and type(metadata[1]) is tuple
                        and len(metadata[1]) == 4
                        and type(metadata[1][0]) is bytes
                        and type(metadata[1][1]) is int
                        and metadata[1][0].isalpha()
                    )
                    if not ok:
                        raise _Refuse(f"a numpy dtype's metadata is {_show(metadata)}")
                    num = metadata[1][1]
                    cand = np.dtype(f"{descr}[{'' if num == 1 else num}{metadata[1][0].decode()}]")
                if endian in "<>":
                    cand = cand.newbyteorder(endian)
            elif sub is not None and names is None and fields is None:
                if not (type(sub) is tuple and len(sub) == 2 and type(sub[0]) is _DType and type(sub[1]) is tuple):
                    raise _Refuse(f"a numpy sub-array dtype's state is {_show(sub)}")
                inner = _resolve_dtype(sub[0], depth + 1)
                shape = sub[1]
                if not all(type(s) is int and 0 <= s < 1 << 31 for s in shape):
                    raise _Refuse(f"a numpy sub-array shape is {_show(shape)}")
                conv_sub = (inner, shape)
                cand = np.dtype((inner, shape))
            elif sub is None and type(names) is tuple and type(fields) is dict:
                spec: dict[str, Any] = {"names": [], "formats": [], "offsets": [], "titles": [], "itemsize": elsize}
                conv_fields = {}
                for key, f in fields.items():
                    if type(f) is not tuple or len(f) not in (2, 3) or type(f[0]) is not _DType or type(f[1]) is not int:
                        raise _Refuse(f"a numpy structured dtype's field is {_show(f)}")
                    conv_fields[key] = (_resolve_dtype(f[0], depth + 1), *f[1:])
                for nm in names:
                    if type(nm) is not str or nm not in conv_fields:
                        raise _Refuse(f"a numpy structured dtype names field {_show(nm)}, which it does not define")
                    f = conv_fields[nm]
                    spec["names"].append(nm)
                    spec["formats"].append(f[0])
                    spec["offsets"].append(f[1])
                    spec["titles"].append(f[2] if len(f) == 3 else None)
                if len(names) > 4096:
                    raise _Refuse("a numpy structured dtype with too many fields")
                cand = np.dtype(spec, align=bool(flags & 0x80))
            else:
                raise _Refuse(f"a numpy dtype's state is {_show(state)}")
        except _Refuse:
            raise
        except Exception as exc:
            raise _Refuse(f"a numpy dtype's state is not one NumPy writes ({type(exc).__name__})") from None
        literal = (version, endian, conv_sub, names, conv_fields, elsize, alignment, flags) + (
            (metadata,) if len(state) == 9 else ()
        )
        red = cand.__reduce__()
        try:
            same = red[1] == (descr, False, True) and args[1:] == (False, True) and red[2] == literal
        except Exception:
            same = False
        if not same:
            raise _Refuse(f"a numpy dtype's state is not exactly what NumPy pickles ({_show(state)})")
    d.resolved = cand
    return cand


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlevel = 3


def _show(v: Any) -> str:
    """A short repr of a literal value (bounded, whatever its size or depth)."""
    if isinstance(v, (_Global, _Obj, _DType, _Wrapper)):
        return f"<{type(v).__name__.strip('_')}>"
    try:
        return _REPR.repr(v)
    except Exception:
        return f"<{type(v).__name__}>"


def _truthy(v: Any) -> bool:
    if v is None or type(v) in (bool, int, float, str, bytes, tuple, list, dict):
        return bool(v)
    raise _Refuse(f"a BUILD state is {_show(v)}")


def _apply_build(w: _Wrapper, state: Any) -> None:
    """What the pure-Python unpickler's load_build does to a plain object's attributes."""
    slotstate = None
    if type(state) is tuple and len(state) == 2:
        state, slotstate = state
    if _truthy(state):
        if type(state) is not dict:
            raise _Refuse(f"an array wrapper's state is {_show(state)}")
        w.attrs.update(state)
    if slotstate is not None and _truthy(slotstate):
        if type(slotstate) is not dict or not all(type(k) is str for k in slotstate):
            raise _Refuse(f"an array wrapper's slot state is {_show(slotstate)}")
        w.attrs.update(slotstate)


def _array_extent(buf: Any, n: int, pos: int, w: _Wrapper, out: JoblibLayout) -> int:
    """Where joblib reads opcodes again after the array whose wrapper ``w`` was just built,
    the array's bytes starting at ``pos``."""
    a = w.attrs
    shape = a.get("shape", _NO_VALUE)
    dtype = a.get("dtype", _NO_VALUE)
    if shape is _NO_VALUE or dtype is _NO_VALUE:
        raise _Refuse("an array wrapper without a shape or dtype")
    if type(shape) is not tuple or not all(type(s) is int and s >= 0 for s in shape):
        raise _Refuse(f"an array's shape is {_show(shape)}, not a tuple of sizes")
    count = 1
    for s in shape:
        count *= s
    if count >= 1 << 63:
        raise _Refuse(f"an array's shape {shape} overflows joblib's 64-bit element count")
    if type(dtype) is not _DType:
        raise _Refuse(f"an array's dtype is {_show(dtype)}, not a numpy.dtype the scanner can follow")
    dt = _resolve_dtype(dtype)
    out.arrays += 1
    if dt.hasobject:
        # pickle.dump(array, protocol=5) right there: a nested pickle with its own memo
        w2 = W.walk(buf, pos) if pos < n else None
        if w2 is None or not w2.ok:
            raise _Refuse(
                f"the nested pickle of an object array at offset {pos} is malformed "
                f"({w2.error if w2 is not None else 'the data ends there'})"
            )
        out.object_pickles.append(pos)
        return w2.end
    align = a.get("numpy_array_alignment_bytes", None)
    if align is not None:
        if type(align) not in (int, bool, str, bytes, float, tuple):
            raise _Refuse(f"an array wrapper's alignment is {_show(align)}")
        if pos >= n:
            raise _Malformed(f"the data ends at the padding byte of an array (offset {pos})")
        pos += 1 + buf[pos]
    if dt.itemsize == 0:
        raise _Refuse(f"an array of itemsize 0 ({dt}), which joblib cannot read")
    nbytes = count * dt.itemsize
    out.array_bytes += nbytes
    return pos + nbytes


def _wrapper_build(data: Any, n: int, o: int, i: int, w: _Wrapper, state: Any, out: JoblibLayout) -> int:
    """BUILD at ``o`` gives the wrapper ``w`` its state: where joblib reads opcodes again
    (the C evaluator's helper; raises _Refuse/_Malformed as the Python evaluator would)."""
    _check_free((state,), "an array wrapper's state")
    _apply_build(w, state)
    resume = _array_extent(data, n, i, w, out)
    out.jumps[o] = resume
    return resume


if W._C is not None:
    W._C.setup_joblib(  # type: ignore[attr-defined]
        _OPAQUE, _Global, _Obj, _Wrapper, _DType, _ReconArgs, _wrapper_build, JOBLIB_WRAPPER, JOBLIB_OLD_WRAPPERS,
        _resolve_dtype,
    )


def joblib_layout(buf: Any, start: int = 0) -> JoblibLayout:
    """Follow the first pickle of a joblib stream in ``buf`` from ``start`` and say where
    each array lies (see the module docstring). Never raises on what the buffer holds.

    The C evaluator (``_cwalk.joblib_layout``) follows the streams joblib writes; any
    stream it does not follow to its STOP (a refusal, an error, an opcode it leaves out)
    is evaluated again from the start by the Python one, which words the reasons."""
    data, n, find_nl = W._as_buffer(buf)
    if W._C is not None:
        out = JoblibLayout()
        if W._C.joblib_layout(data, n, start, out):  # type: ignore[attr-defined]
            return out
    return _joblib_layout_py(data, n, find_nl, start)


def _joblib_layout_py(data: Any, n: int, find_nl: Any, start: int) -> JoblibLayout:  # noqa: C901
    out = JoblibLayout()
    kinds, argsize, names = W._KIND, W._ARGSIZE, W._NAME
    u4, u8, i4, u2 = W._u4, W._u8, W._i4, W._u2
    stack: list[Any] = []
    marks: list[int] = []
    memo: dict[Any, Any] = {}
    proto = 0
    i = start
    o = start

    def pop_mark() -> list[Any]:
        if not marks:
            raise _Malformed("could not find MARK")
        x = marks.pop()
        items = stack[x:]
        del stack[x:]
        return items

    def need(k: int) -> None:
        if len(stack) - k < (marks[-1] if marks else 0):
            raise _Malformed("stack underflow")

    check_free = _check_free
    wrapper_names = JOBLIB_OLD_WRAPPERS | {JOBLIB_WRAPPER}

    try:
        while True:
            if i >= n:
                raise _Malformed("the data ends without a STOP opcode")
            op = data[i]
            o = i
            k = kinds[op]
            if k == 99:
                raise _Malformed(f"unknown opcode 0x{op:02x}")
            if k == 4:  # BINGET, LONG_BINGET
                key = data[i + 1] if op == 0x68 else u4(data, i + 1)[0]
                try:
                    stack.append(memo[key])
                except KeyError:
                    raise _Malformed(f"memo key {key} not found") from None
                i += 1 + argsize[op]
            elif k == 1:  # MEMOIZE
                if len(stack) <= (marks[-1] if marks else 0):
                    raise _Malformed("stack underflow")
                memo[len(memo)] = stack[-1]
                i += 1
            elif k == 0:  # _PUSH
                c = argsize[op]
                if i + 1 + c > n:
                    raise _Malformed("truncated")
                if op == 0x4E:
                    v: Any = None
                elif op == 0x88:
                    v = True
                elif op == 0x89:
                    v = False
                elif op == 0x7D:
                    v = {}
                elif op == 0x5D:
                    v = []
                elif op == 0x29:
                    v = ()
                elif op == 0x4A:
                    v = i4(data, i + 1)[0]
                elif op == 0x4B:
                    v = data[i + 1]
                elif op == 0x4D:
                    v = u2(data, i + 1)[0]
                elif op == 0x47:
                    v = struct.unpack_from(">d", data, i + 1)[0]
                else:  # EMPTY_SET, NEXT_BUFFER
                    v = _OPAQUE
                stack.append(v)
                i += 1 + c
            elif k == 2:  # SHORT_BINUNICODE
                ln = data[i + 1]
                a = i + 2
                if a + ln > n:
                    raise _Malformed("truncated")
                try:
                    stack.append(bytes(data[a : a + ln]).decode("utf-8", "surrogatepass"))
                except UnicodeDecodeError:
                    stack.append(_OPAQUE)
                i = a + ln
            elif k == 5:  # MARK
                marks.append(len(stack))
                i += 1
            elif k == 14:  # BUILD
                need(2)
                state = stack.pop()
                inst = stack[-1]
                if _is_wrapper_class(inst):
                    raise _Refuse("BUILD sets attributes of the array wrapper class itself")
                i += 1
                if type(inst) is _Wrapper:
                    _check_free((state,), "an array wrapper's state")
                    _apply_build(inst, state)
                    resume = _array_extent(data, n, i, inst, out)
                    out.jumps[o] = resume
                    stack[-1] = _OPAQUE
                    if resume > n:
                        raise _Malformed(f"an array runs to offset {resume}, past the end of the data ({n})")
                    i = resume
                else:
                    if type(state) is _Global or type(state) is _ReconArgs:
                        check_free((state,), "an object's state")
                    if type(inst) is _DType:
                        inst.state = state
                        inst.resolved = None
            elif k == 10:  # SETITEMS, APPENDS, ADDITEMS
                items = pop_mark()
                check_free(items, "a container item")
                if not stack:
                    raise _Malformed("stack underflow")
                target = stack[-1]
                if op == 0x75:
                    if len(items) & 1:
                        raise _Malformed("odd number of items")
                    if type(target) is dict:
                        for j in range(0, len(items), 2):
                            target[items[j]] = items[j + 1]
                elif op == 0x65 and type(target) is list:
                    target.extend(items)
                i += 1
            elif k == 15:  # NEWOBJ, NEWOBJ_EX
                c = 3 if op == 0x92 else 2
                need(c)
                cls = stack[-c]
                _check_free(stack[1 - c :], "an argument")
                del stack[1 - c :]
                if _is_wrapper_class(cls):
                    if cls.name != JOBLIB_WRAPPER:
                        raise _Refuse(f"{cls.name} (joblib < 0.10 keeps arrays in separate files)")
                    stack[-1] = _Wrapper()
                else:
                    stack[-1] = _Obj(cls.name if type(cls) is _Global else None)
                i += 1
            elif k == 11:  # TUPLE1/2/3
                c = argsize[op]
                if len(stack) - c < (marks[-1] if marks else 0):
                    raise _Malformed("stack underflow")
                items = stack[-c:]
                del stack[-c:]
                if c == 3 and _recon_args(items):
                    stack.append(_ReconArgs(items))
                else:
                    check_free(items, "a tuple item")
                    stack.append(tuple(items))
                i += 1
            elif k == 18:  # FRAME: its content is opcodes, read in order
                i += 9
            elif k == 3:  # BINPUT, LONG_BINPUT
                if len(stack) <= (marks[-1] if marks else 0):
                    raise _Malformed("stack underflow")
                key = data[i + 1] if op == 0x71 else u4(data, i + 1)[0]
                memo[key] = stack[-1]
                i += 1 + argsize[op]
            elif k == 7:  # strings, bytes, LONG1/LONG4
                c = argsize[op]
                if c == 1:
                    ln = data[i + 1]
                elif c == 4:
                    ln = u4(data, i + 1)[0]
                    if op == 0x8B and ln >= 0x80000000:
                        raise _Malformed("a negative byte count")
                else:
                    ln = u8(data, i + 1)[0]
                a = i + 1 + c
                if a + ln > n:
                    raise _Malformed("truncated")
                if ln > _MAX_LITERAL:
                    v = _OPAQUE
                elif op in (0x8C, 0x58, 0x8D, 0x55, 0x54):  # strings
                    s = W._string_at(data, n, i, find_nl)
                    v = _OPAQUE if s is None else s
                elif op == 0x8A or op == 0x8B:  # LONG1, LONG4
                    v = int.from_bytes(bytes(data[a : a + ln]), "little", signed=True) if ln <= 64 else _OPAQUE
                else:  # bytes
                    v = bytes(data[a : a + ln])
                stack.append(v)
                i = a + ln
            elif k == 12:  # TUPLE, LIST, FROZENSET, DICT
                items = pop_mark()
                if op == 0x74 and len(items) == 3 and _recon_args(items):
                    stack.append(_ReconArgs(items))
                    i += 1
                    continue
                check_free(items, "a container item")
                if op == 0x74:
                    stack.append(tuple(items))
                elif op == 0x6C:
                    stack.append(list(items))
                elif op == 0x64:
                    if len(items) & 1:
                        raise _Malformed("odd number of items")
                    stack.append({items[j]: items[j + 1] for j in range(0, len(items), 2)})
                else:
                    stack.append(_OPAQUE)
                i += 1
            elif k == 13:  # REDUCE
                need(2)
                fn, args = stack[-2], stack[-1]
                del stack[-1]
                if type(fn) is _Global and fn.name in wrapper_names:
                    raise _Refuse("the array wrapper class is called with REDUCE")
                name = fn.name if type(fn) is _Global else None
                if type(args) is _ReconArgs:
                    if name != "copyreg._reconstructor":
                        raise _Refuse(f"the array wrapper class is passed to {name or 'a callable'}")
                    stack[-1] = _Wrapper()
                else:
                    if type(args) is _Global or type(args) is _ReconArgs:
                        check_free((args,), "an argument")
                    if name == "numpy.dtype":
                        stack[-1] = _DType(args)
                    elif name == "_codecs.encode" and type(args) is tuple and len(args) == 2 and type(args[0]) is str:
                        enc = args[1]
                        if type(enc) is str and enc.lower() in W._LATIN1:
                            try:
                                stack[-1] = args[0].encode("latin-1")
                            except UnicodeEncodeError:
                                raise _Malformed("_codecs.encode fails") from None
                        else:
                            stack[-1] = _Obj(name)
                    elif name == "builtins.bytes" and args == ():
                        stack[-1] = b""
                    else:
                        stack[-1] = _Obj(name)
                i += 1
            elif k == 16:  # STACK_GLOBAL
                need(2)
                mod, qual = stack[-2], stack[-1]
                del stack[-1]
                if type(mod) is not str or type(qual) is not str:
                    raise _Malformed("STACK_GLOBAL requires str")
                stack[-1] = _Global(W._global_ref(mod, qual, proto, i, "STACK_GLOBAL").name)
                i += 1
            elif k == 17:  # GLOBAL, INST
                e1 = find_nl(b"\n", i + 1)
                e2 = find_nl(b"\n", e1 + 1) if e1 >= 0 else -1
                if e2 < 0:
                    raise _Malformed("no newline-terminated module and name")
                enc = "utf-8" if op == 0x63 else "ascii"
                try:
                    mod = bytes(data[i + 1 : e1]).decode(enc)
                    qual = bytes(data[e1 + 1 : e2]).decode(enc)
                except UnicodeDecodeError:
                    raise _Malformed("a module or name that cannot be decoded") from None
                g = _Global(W._global_ref(mod, qual, proto, i, names[op]).name)
                if op == 0x69:  # INST
                    items = pop_mark()
                    if _is_wrapper_class(g):
                        raise _Refuse("the array wrapper class is called with INST")
                    _check_free(items, "an argument")
                    stack.append(_Obj(g.name))
                else:
                    stack.append(g)
                i = e2 + 1
            elif k == 6:  # line arguments: INT, LONG, FLOAT, STRING, UNICODE, GET, PUT, PERSID
                e = find_nl(b"\n", i + 1)
                if e < 0:
                    raise _Malformed("no newline-terminated argument")
                line = bytes(data[i + 1 : e]) if e - i <= 256 else None
                if op in (0x67, 0x70):  # GET, PUT
                    if line is None:
                        raise _Malformed("a memo key line too long")
                    z = line.find(b"\0")
                    key = int(line[:z] if z >= 0 else line)
                    if op == 0x67:
                        if key not in memo:
                            raise _Malformed(f"memo key {key} not found")
                        stack.append(memo[key])
                    else:
                        need(1)
                        memo[key] = stack[-1]
                elif op == 0x49:  # INT
                    if line is None:
                        v = _OPAQUE
                    elif line == b"00":
                        v = False
                    elif line == b"01":
                        v = True
                    else:
                        v = int(line)
                    stack.append(v)
                elif op == 0x4C:  # LONG
                    v = _OPAQUE if line is None else int(line[:-1] if line.endswith(b"L") else line)
                    stack.append(v)
                elif op == 0x46:  # FLOAT
                    stack.append(_OPAQUE if line is None else float(line))
                elif op in (0x53, 0x56):  # STRING, UNICODE
                    s = W._string_at(data, n, i, find_nl) if line is not None else None
                    stack.append(_OPAQUE if s is None else s)
                else:  # PERSID
                    stack.append(_OPAQUE)
                i = e + 1
            elif k == 8:  # SETITEM
                need(3)
                key, val = stack[-2], stack[-1]
                del stack[-2:]
                _check_free((key, val), "a dict item")
                target = stack[-1]
                if type(target) is dict:
                    target[key] = val
                i += 1
            elif k == 9:  # APPEND
                need(2)
                val = stack.pop()
                _check_free((val,), "a list item")
                if type(stack[-1]) is list:
                    stack[-1].append(val)
                i += 1
            elif k == 19:  # PROTO
                proto = data[i + 1]
                i += 2
            elif k == 20:  # STOP
                return out
            elif k == 21:  # OBJ
                items = pop_mark()
                if not items:
                    raise _Malformed("stack underflow")
                if _is_wrapper_class(items[0]):
                    raise _Refuse("the array wrapper class is called with OBJ")
                _check_free(items[1:], "an argument")
                stack.append(_Obj(items[0].name if type(items[0]) is _Global else None))
                i += 1
            elif k == 22:  # EXT1/2/4
                raise _Refuse("an extension code (EXT opcode), which the scanner cannot resolve")
            elif k == 23:  # BINPERSID
                need(1)
                _check_free(stack[-1:], "a persistent id")
                stack[-1] = _OPAQUE
                i += 1
            elif k == 24:  # POP
                if marks and marks[-1] == len(stack):
                    marks.pop()
                else:
                    need(1)
                    stack.pop()
                i += 1
            elif k == 25:  # POP_MARK
                pop_mark()
                i += 1
            elif k == 26:  # DUP
                need(1)
                stack.append(stack[-1])
                i += 1
            elif k == 27:  # READONLY_BUFFER
                need(1)
                i += 1
            else:
                raise _Malformed(f"unknown opcode 0x{op:02x}")
    except _Refuse as exc:
        out.refused = str(exc)
        out.refused_offset = o
    except _Malformed as exc:
        out.error = f"{exc} (offset {o})"
    except (IndexError, struct.error, ValueError, TypeError, OverflowError, RecursionError) as exc:
        out.error = f"{type(exc).__name__} at offset {o}"
    return out


# --------------------------------------------------------------------------------- zip
@dataclass
class ZipMember:
    """One member as the central directory (or, without one, its local header) lists it."""

    name: str
    method: int
    flags: int
    csize: int
    usize: int
    crc: int
    header_offset: int
    #: where its data starts (from the local header); None when that header is unreadable
    data_offset: int | None = None


@dataclass
class ZipListing:
    members: list[ZipMember] = field(default_factory=list)
    #: (severity, rule, member, offset, reason)
    problems: list[tuple[str, str, str, int | None, str]] = field(default_factory=list)
    #: byte ranges (offset, length) that no member or directory accounts for
    gaps: list[tuple[int, int]] = field(default_factory=list)
    #: the central directory was read (False: members come from local headers)
    directory: bool = True


def PreadFile(pread: Callable[[int, int], bytes], size: int) -> RangeFile:  # noqa: N802
    """A seekable read-only file over ``pread(offset, n) -> bytes`` (which may return fewer
    bytes than asked for, at the end of a truncated source)."""

    def read_at(offset: int, view: memoryview) -> int:
        data = pread(offset, len(view))
        view[: len(data)] = data
        return len(data)

    return RangeFile(size, read_at)


_LOCAL = struct.Struct("<4s5H3L2H")  # signature, version, flags, method, time, date, crc, csize, usize, nlen, xlen
_MAX_MEMBERS = 1_000_000


def _local_header(pread: Callable[[int, int], bytes], size: int, off: int) -> tuple[Any, ...] | None:
    if off < 0 or off + _LOCAL.size > size:
        return None
    head = pread(off, _LOCAL.size)
    if len(head) != _LOCAL.size or head[:4] != b"PK\x03\x04":
        return None
    f = _LOCAL.unpack(head)
    name = pread(off + _LOCAL.size, f[9])
    return f + (name,)


def _descriptor_len(pread: Callable[[int, int], bytes], size: int, off: int, m: ZipMember) -> int:
    """Length of the data descriptor after a member's data (flag bit 3), 0 if none."""
    if not m.flags & 0x08:
        return 0
    head = pread(off, 4) if off + 4 <= size else b""
    sig = 4 if head == b"PK\x07\x08" else 0
    zip64 = m.csize >= 0xFFFFFFFF or m.usize >= 0xFFFFFFFF
    return sig + 4 + (16 if zip64 else 8)


def read_zip(pread: Callable[[int, int], bytes], size: int) -> ZipListing:  # noqa: C901
    """List a zip archive's members and what about its layout readers may disagree on
    (see the module docstring). Never raises on what the bytes hold."""
    out = ZipListing()
    problem = out.problems.append
    try:
        zf = zipfile.ZipFile(PreadFile(pread, size))
        infos = zf.infolist()
        start_dir = zf.start_dir
    except Exception as exc:
        out.directory = False
        problem((
            "unknown",
            "zip-bad-directory",
            "",
            None,
            f"Python's zipfile cannot read the central directory ({type(exc).__name__}: {exc}); other "
            "readers may still find members: the local headers are scanned instead",
        ))
        _walk_local_headers(pread, size, out)
        return out
    if len(infos) > _MAX_MEMBERS:
        problem(("unknown", "zip-too-many", "", None, f"{len(infos)} members; only the first {_MAX_MEMBERS} are scanned"))
        infos = infos[:_MAX_MEMBERS]
    names = Counter(i.orig_filename for i in infos)
    for dup, k in names.items():
        if k > 1:
            problem((
                "dangerous",
                "zip-duplicate-name",
                dup,
                None,
                f"{k} members are named {dup!r}: readers pick different ones (the scanner scans all)",
            ))
    for info in infos:
        if "\0" in info.orig_filename:
            problem((
                "unknown",
                "zip-name-mismatch",
                info.orig_filename,
                info.header_offset,
                f"the member name {info.orig_filename!r} holds a NUL byte: readers cut it differently",
            ))
        m = ZipMember(
            info.orig_filename,
            info.compress_type,
            info.flag_bits,
            info.compress_size,
            info.file_size,
            info.CRC,
            info.header_offset,
        )
        out.members.append(m)
        lh = _local_header(pread, size, m.header_offset)
        if lh is None:
            problem((
                "unknown",
                "zip-header-mismatch",
                m.name,
                m.header_offset,
                f"no local header where the central directory puts member {m.name!r} (offset {m.header_offset})",
            ))
            continue
        _sig, _ver, lflags, lmethod, _t, _d, lcrc, lcsize, lusize, nlen, xlen, lname = lh
        m.data_offset = m.header_offset + _LOCAL.size + nlen + xlen
        enc = "utf-8" if info.flag_bits & 0x800 else "cp437"
        try:
            cd_raw = info.orig_filename.encode(enc)
        except UnicodeEncodeError:
            cd_raw = info.orig_filename.encode("utf-8")
        diffs = []
        if lname != cd_raw:
            diffs.append(f"name {lname[:80]!r}")
        if lmethod != m.method:
            diffs.append(f"compression method {lmethod} (directory: {m.method})")
        if not lflags & 0x08 and lcsize != 0xFFFFFFFF and lusize != 0xFFFFFFFF:
            if lcsize != m.csize or lusize != m.usize:
                diffs.append(f"sizes {lcsize}/{lusize} (directory: {m.csize}/{m.usize})")
            if lcrc != m.crc:
                diffs.append("CRC")
        if diffs:
            problem((
                "unknown",
                "zip-header-mismatch",
                m.name,
                m.header_offset,
                f"the local header of {m.name!r} disagrees with the central directory: {', '.join(diffs)}; "
                "readers that trust one or the other read different data",
            ))
        if m.flags & 0x01:
            problem((
                "unknown",
                "zip-flags",
                m.name,
                m.header_offset,
                f"member {m.name!r} is flagged as encrypted; some readers (torch) ignore the flag, "
                "the scanner reads it as plain data",
            ))
        if m.data_offset + m.csize > size:
            problem((
                "unknown",
                "zip-truncated",
                m.name,
                m.header_offset,
                f"member {m.name!r} runs past the end of the archive ({m.data_offset + m.csize} > {size})",
            ))
    _check_extents(pread, size, out, start_dir)
    return out


def _check_extents(pread: Callable[[int, int], bytes], size: int, out: ZipListing, start_dir: int) -> None:
    spans = sorted(
        (m.header_offset, m.data_offset + m.csize + _descriptor_len(pread, size, m.data_offset + m.csize, m), m.name)
        for m in out.members
        if m.data_offset is not None
    )
    pos = 0
    for s, e, name in spans:
        if s > pos:
            out.gaps.append((pos, s - pos))
            rule = "zip-prefix-data" if pos == 0 else "zip-gap-data"
            where = "before the first member" if pos == 0 else f"before member {name!r}"
            out.problems.append((
                "unknown",
                rule,
                "",
                pos,
                f"{s - pos} bytes at offset {pos} {where} that the central directory does not list "
                "(readers that scan local headers, or read the file as another format, see them)",
            ))
        elif s < pos:
            out.problems.append((
                "unknown",
                "zip-overlap",
                name,
                s,
                f"member {name!r} (offset {s}) overlaps the member before it: one stretch of bytes read as two members",
            ))
        pos = max(pos, e)
    if spans and start_dir > pos:
        out.gaps.append((pos, start_dir - pos))
        out.problems.append((
            "unknown",
            "zip-gap-data",
            "",
            pos,
            f"{start_dir - pos} bytes at offset {pos}, between the last member and the central directory, "
            "that no member accounts for",
        ))


def _walk_local_headers(pread: Callable[[int, int], bytes], size: int, out: ZipListing) -> None:
    """Members from the local headers, in order (for archives without a readable directory)."""
    off = 0
    while off < size and len(out.members) < _MAX_MEMBERS:
        lh = _local_header(pread, size, off)
        if lh is None:
            break
        _sig, _ver, flags, method, _t, _d, crc, csize, usize, nlen, xlen, lname = lh
        name = lname.decode("utf-8" if flags & 0x800 else "cp437", "replace")
        m = ZipMember(name, method, flags, csize, usize, crc, off, off + _LOCAL.size + nlen + xlen)
        if flags & 0x08 and csize == 0:
            out.problems.append((
                "unknown",
                "zip-bad-directory",
                name,
                off,
                f"member {name!r} has no size in its local header; the members after it are not scanned",
            ))
            out.members.append(m)
            break
        out.members.append(m)
        nxt = m.data_offset + csize  # type: ignore[operator]
        nxt += _descriptor_len(pread, size, nxt, m)
        if nxt <= off:
            break
        off = nxt


def member_chunks(
    pread: Callable[[int, int], bytes], size: int, m: ZipMember, limit: int, step: int = 1 << 20
) -> Iterator[bytes]:
    """The (decompressed) bytes of member ``m``, at most ``limit`` of them, in chunks.
    Raises ValueError for a compression method it cannot read, zlib.error & co. for
    corrupt data."""
    if m.data_offset is None:
        raise ValueError("its local header is unreadable")
    start = m.data_offset
    end = min(size, start + m.csize)
    if m.method == zipfile.ZIP_STORED:
        pos = start
        while pos < end and limit > 0:
            n = min(step, end - pos, limit)
            chunk = pread(pos, n)
            if not chunk:
                return
            yield chunk
            pos += len(chunk)
            limit -= len(chunk)
        return
    if m.method == zipfile.ZIP_DEFLATED:
        d: Any = zlib.decompressobj(-15)

        def feed(raw: bytes, room: int) -> bytes:
            return d.decompress(raw, room)

    elif m.method == zipfile.ZIP_BZIP2:
        import bz2

        d = bz2.BZ2Decompressor()

        def feed(raw: bytes, room: int) -> bytes:
            return d.decompress(raw, room)

    elif m.method == zipfile.ZIP_LZMA and hasattr(zipfile, "LZMADecompressor"):
        d = zipfile.LZMADecompressor()
        step = 1 << 12  # no output bound: feed it little at a time

        def feed(raw: bytes, room: int) -> bytes:
            return d.decompress(raw)

    else:
        raise ValueError(f"compression method {m.method} is not supported")
    pos = start
    pending = b""
    while limit > 0:
        if not pending:
            if pos >= end:
                if m.method == zipfile.ZIP_DEFLATED:
                    tail = d.flush()
                    if tail:
                        yield tail[:limit]
                return
            pending = pread(pos, min(step, end - pos))
            pos += len(pending)
            if not pending:
                return
        if m.method == zipfile.ZIP_DEFLATED:
            out = d.decompress(pending, min(step, limit))
            pending = d.unconsumed_tail
            if d.eof:
                pending = b""
                pos = end
        else:
            out = feed(pending, min(step, limit))
            pending = b""
            if getattr(d, "eof", False):
                pos = end
        if out:
            yield out
            limit -= len(out)


# ---------------------------------------------------------------------- small pickles
def small_int_pickle(buf: Any, pos: int) -> tuple[int, int] | None:
    """(value, end) of a pickle at ``pos`` that holds only an int (as torch's legacy tar
    format writes its counts), or None."""
    try:
        i = pos
        if buf[i] == 0x80:
            i += 2
        op = buf[i]
        if op == 0x4B:  # BININT1
            v, i = buf[i + 1], i + 2
        elif op == 0x4D:  # BININT2
            v, i = buf[i + 1] | buf[i + 2] << 8, i + 3
        elif op == 0x4A:  # BININT
            v, i = struct.unpack_from("<i", buf, i + 1)[0], i + 5
        elif op == 0x8A:  # LONG1
            ln = buf[i + 1]
            v, i = int.from_bytes(bytes(buf[i + 2 : i + 2 + ln]), "little", signed=True), i + 2 + ln
        elif op in (0x49, 0x4C):  # INT, LONG
            e = bytes(buf[i + 1 : i + 40]).find(b"\n")
            if e < 0:
                return None
            text = bytes(buf[i + 1 : i + 1 + e]).rstrip(b"L")
            v, i = int(text), i + 2 + e
        else:
            return None
        if buf[i] != 0x2E:  # STOP
            return None
        return v, i + 1
    except (IndexError, ValueError, struct.error):
        return None
