"""The C walker (amber.security._cwalk) against the pure-Python one, stream by stream.

``_walk._walk_c`` must give exactly what ``_walk._walk_py`` gives: the same Walk (globals,
call sites, errors and their messages, offsets, payloads, escapes, jumps), the same types
of values (a call's target is a ``str`` or a ``_Made``), the same memo left for the next
pickle of the stream, and the same "armed" state of a watch. Checked on generated pickle
programs, real pickles of every protocol, the hostile and bypass corpora, joblib files
with their array jumps, and thousands of mutated and random streams, with and without the
scanner's options. Nothing here loads a pickle.
"""

from __future__ import annotations

import copyreg
import io
import mmap
import os
import pickle
import random
import struct
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from _bypasses import BYPASSES
from _payloads import TECHNIQUES, containers, mutate
from test_pickle_walk import _Gen

from amber.security import _walk as W
from amber.security._archives import joblib_layout

# AMBER_PURE_PYTHON=1 runs the rest of the suite on the pure-Python twins; these tests are
# about the compiled ones (CI never sets it).
pytestmark = pytest.mark.skipif(bool(os.environ.get("AMBER_PURE_PYTHON")), reason="AMBER_PURE_PYTHON is set")


WATCH = frozenset({"builtins.getattr", "os.system", "pkg.sub.f", "m1.eval", "copyreg._reconstructor", "?.ext7"})


def test_the_c_walker_is_built_and_used() -> None:
    """make install builds it (setup.py); the scanner's speed depends on it."""
    from amber.security import _cwalk  # noqa: F401

    assert W._C is not None and W._walk is W._walk_c


def _shape(v: Any) -> Any:
    """A value with the types of the walker's stack values spelt out."""
    if isinstance(v, tuple):
        return (type(v).__name__, tuple(_shape(x) for x in v))
    return (type(v).__name__, v)


def _fields(w: W.Walk) -> Any:
    calls = [(c.offset, c.opcode, _shape(c.target), _shape(c.arg)) for c in w.calls]
    globs = [(type(g).__name__, g.name, g.offset, g.opcode, g.resolved, g.module, g.qualname, g.raw) for g in w.globals]
    return (globs, calls, w.end, w.stopped, w.error, w.error_offset, w.protocol, w.persistent_ids, w.ext_codes,
            w.start, w.payloads, w.escapes, w.jumped)


def _run(impl: Any, buf: Any, start: int, opts: dict[str, Any]) -> tuple[list[Any], Any, bool]:
    """walk_all with one implementation: the walks, the memo left, whether a watch is armed."""
    data, n, find = W._as_buffer(buf)
    o = W._options(opts.get("payloads", False), opts.get("watch", ()), opts.get("jumps"))
    memo: dict = {}
    walks = []
    pos = start
    for _ in range(50):
        w = impl(data, n, pos, memo, find, o)
        walks.append(_fields(w))
        if not w.stopped or w.end >= n:
            break
        pos = w.end
    return walks, sorted((k, _shape(v)) for k, v in memo.items()), bool(o and o.armed)


def same(buf: Any, start: int = 0, **opts: Any) -> None:
    py = _run(W._walk_py, buf, start, opts)
    c = _run(W._walk_c, buf, start, opts)
    assert c == py, (bytes(buf)[:200], opts)


OPTION_SETS: list[dict[str, Any]] = [{}, {"payloads": True, "watch": WATCH}, {"watch": WATCH}, {"payloads": True}]


def test_generated_programs() -> None:
    gen = _Gen(11)
    for k in range(3000):
        same(gen.program(), **OPTION_SETS[k % len(OPTION_SETS)])


def test_real_pickles_of_every_protocol() -> None:
    import collections
    import datetime
    import decimal

    values = [
        None, 1, -5, 1 << 70, 1.5, "text", "\udc80", b"bytes", bytearray(b"ba"), (1, 2), [1, [2, (3,)]],
        {"a": 1, 2: "b"}, {1, 2}, frozenset({3}), collections.OrderedDict(a=1), collections.deque([1], maxlen=3),
        datetime.datetime(2020, 1, 2, 3, 4, 5), decimal.Decimal("1.5"), np.arange(5), np.zeros((2, 3), "f4"),
        np.array([1, "x"], dtype=object), Path("a/b"), range(3), slice(1, 2), complex(1, 2),
    ]
    shared = [1, 2]
    values.append([shared, shared, {"s": shared}])
    for proto in range(6):
        for v in values:
            data = pickle.dumps(v, protocol=proto)
            for opts in OPTION_SETS:
                same(data, **opts)
        same(b"".join(pickle.dumps(v, protocol=proto) for v in values), payloads=True, watch=WATCH)


def test_hostile_and_bypass_corpora() -> None:
    marker = Path("/nonexistent/amber-marker")
    streams = [fn(marker, p) for fn in TECHNIQUES.values() for p in (0, 2, 4, 5)]
    for b in BYPASSES.values():
        streams.append(b.build(marker)[1])
    for s in list(streams):
        streams.extend(containers(s).values())
    assert len(streams) > 100
    for s in streams:
        for opts in OPTION_SETS:
            same(s, **opts)


def test_memo_keys_on_both_sides_of_the_array_bound() -> None:
    """The C walk keeps memo keys below 4096 in an array and the others in the dict: keys
    around the bound, huge and sparse keys, text GET/PUT keys, MEMOIZE after sparse puts
    (its key is len(memo)), and a memo handed from one pickle to the next give what the
    Python walk gives."""
    def long_put(k: int) -> bytes:
        return b"r" + struct.pack("<I", k)

    def long_get(k: int) -> bytes:
        return b"j" + struct.pack("<I", k)

    g = b"\x8c\x02os\x94\x8c\x06system\x94\x93"
    streams = []
    for k in (0, 255, 4094, 4095, 4096, 4097, 70000, 2**31, 2**32 - 1):
        streams.append(b"\x80\x04" + g + long_put(k) + b"0" + long_get(k) + b")R.")
        streams.append(b"\x80\x04" + g + long_put(k) + b".\x80\x04" + long_get(k) + b")R.")  # (2 pickles)
        streams.append(b"\x80\x04" + g + long_put(k) + b"\x94" * 3 + b"0" + long_get(k) + b")R.")
        streams.append(b"\x80\x04N" + long_put(k) + b"0" + long_get((k + 1) % 2**32) + b".")  # a key not set
        streams.append(b"(cos\nsystem\np" + str(k).encode() + b"\n0g" + str(k).encode() + b"\n(S'x'\ntR.")
        streams.append(b"(cos\nsystem\np0" + str(k).encode() + b"\n0g" + str(k).encode() + b"\n)R.")
    for key in (b"99999999999999999999999", b"-1", b"-0", b"+5", b" 7", b"1_0", b"4096\x00junk", b"0x10"):
        streams.append(b"(cos\nsystem\np" + key + b"\n0g" + key + b"\n)R.")
    # a memo handed on: the first pickle puts (small and large keys), the second gets them
    first = b"\x80\x04" + g + long_put(5) + long_put(5000) + b"\x94."
    streams.append(first + b"\x80\x04" + long_get(5) + long_get(5000) + b"\x94" + long_get(7) + b")R.")
    streams.append(first + b"\x80\x04" + long_get(5) + b")R." + b"\x80\x04" + long_get(5000) + b")R.")
    streams.append(pickle.dumps([[i] * 2 for i in range(5000)], protocol=4) * 2)
    for s in streams:
        for opts in OPTION_SETS:
            same(s, **opts)
        for impl in (W._walk_c, W._walk_py):  # walk_all (which lets the C walk skip the memo at the end)
            W._walk = impl
            try:
                got = [_fields(w) for w in W.walk_all(s, payloads=True, watch=WATCH)]
            finally:
                W._walk = W._walk_c
            if impl is W._walk_c:
                c_walks = got
        assert c_walks == got, s[:200]


def test_shared_short_strings_are_the_strings_of_their_bytes() -> None:
    """The C code shares the str objects of short ASCII strings through a table: 5,000
    distinct names (collisions, evictions), lengths around its 64-byte bound, non-ASCII and
    surrogate bytes, through GLOBAL, STACK_GLOBAL and the joblib evaluator: the walks equal
    the Python ones."""
    rng = random.Random(9)
    alphabet = "abcdefghijklmnopqrstuvwxyz_."
    names = ["".join(rng.choice(alphabet) for _ in range(rng.choice([0, 1, 5, 63, 64, 65, 200]))) for _ in range(5000)]
    names += ["caf\u00e9", "\udc80x", "x" * 64 + "\u00e9"]
    for k in range(0, len(names) - 1, 2):
        mod, qual = names[k], names[k + 1]
        mb, qb = mod.encode("utf-8", "surrogatepass"), qual.encode("utf-8", "surrogatepass")
        sg = b"\x80\x04\x8c" + bytes([len(mb) & 0xFF]) + mb[:255] + b"\x8c" + bytes([len(qb) & 0xFF]) + qb[:255] + b"\x93)R."
        gl = b"c" + mb.replace(b"\n", b"") + b"\n" + qb.replace(b"\n", b"") + b"\n)R."
        for data in (sg, gl):
            same(data)
            same(data, payloads=True, watch=WATCH)
            _layout_same(data)


def test_plain_walk_makes_the_checks_of_the_fast_judgement() -> None:
    """_cwalk.plain_walk (the per-walk checks of _scan._judge_plain) says False exactly when
    the Python checks fail, and gives the walk's names when they pass and every name is in
    ``ok`` (None when some is not): on real, hostile and mutated streams, with ``ok`` empty,
    partial and full."""
    from amber.security import _cwalk
    from amber.security._scan import _WATCH

    def reference(w: W.Walk, ok: set[str]) -> Any:
        if w.error is not None or w.ext_codes or w.persistent_ids or w.escapes or w.payloads:
            return False
        if any(c.arg is not None or c.target in _WATCH for c in w.calls):
            return False
        if any(not g.resolved or g.opcode in ("GETATTR", "EXT") for g in w.globals):
            return False
        names = [g.name for g in w.globals]
        return names if all(nm in ok for nm in names) else None

    rng = random.Random(12)
    marker = Path("/nonexistent/amber-marker")
    seeds = [pickle.dumps(v, protocol=p) for v in ({"a": [1, 2.5]}, np.arange(3), Path("x")) for p in range(6)]
    seeds += [fn(marker, p) for fn in TECHNIQUES.values() for p in (0, 2, 4)]
    seeds += [b.build(marker)[1] for b in BYPASSES.values()]
    streams = seeds + [mutate(rng, rng.choice(seeds)) for _ in range(3000)]
    outcomes = set()
    for data in streams:
        for w in W.walk_all(data, payloads=True, watch=_WATCH):
            names = [g.name for g in w.globals]
            for ok in (set(), set(names), set(names[: len(names) // 2]), {"os.system", *names}):
                want = reference(w, ok)
                assert _cwalk.plain_walk(w, _WATCH, ok) == want, data[:200]
                outcomes.add("False" if want is False else "None" if want is None else "names")
    assert outcomes == {"False", "None", "names"}
    with pytest.raises(TypeError):
        _cwalk.plain_walk(W.walk(b"N."), _WATCH)
    assert _cwalk.plain_walk("not a walk", _WATCH, set()) is None


def test_extension_codes() -> None:
    copyreg.add_extension("pkg.sub", "f", 7)
    try:
        for data in (b"\x82\x07.", b"\x83\x07\x00\x85R.", b"\x84\x07\x00\x00\x00)R.", b"\x82\x08.", b"\x82\x00.",
                     b"\x84\xff\xff\xff\xff.", b"\x82", b"\x83\x07"):
            for opts in OPTION_SETS:
                same(data, **opts)
    finally:
        copyreg.remove_extension("pkg.sub", "f", 7)


def test_getattr_and_codecs_payloads() -> None:
    inner = pickle.dumps([1, 2], protocol=2)
    cases = [
        # getattr(os, "system") through STACK_GLOBAL, memo and TUPLE2 / MARK..TUPLE
        b"\x80\x04\x8c\x08builtins\x8c\x07getattr\x93\x8c\x02os\x8c\x06system\x93\x8c\x06system\x86R.",
        b"\x80\x04\x8c\x08builtins\x8c\x07getattr\x93(\x8c\x02os\x8c\x06system\x93\x8c\x03b-c\x8c\x01x\x86t.",
        b"cbuiltins\ngetattr\n(cos\nsystem\nS'system'\ntR.",
        # _codecs.encode(str, "latin1") then pickle.loads of it
        b"c_codecs\nencode\n(V" + inner.decode("latin-1").encode("raw_unicode_escape") + b"\nS'latin1'\ntR.",
        b"\x80\x02c_pickle\nloads\nc_codecs\nencode\nX\x05\x00\x00\x00\x80\x02]q.X\x06\x00\x00\x00LATIN1\x86R\x85R.",
        b"\x80\x04\x8c\x07_pickle\x8c\x05loads\x93C" + bytes([len(inner)]) + inner + b"\x85R.",
        b"\x80\x04\x8c\x07_pickle\x8c\x05loads\x93(B" + struct.pack("<I", len(inner)) + inner + b"tR.",
    ]
    for data in cases:
        for opts in OPTION_SETS:
            same(data, **opts)


def test_joblib_files_with_their_jumps() -> None:
    objs = [np.arange(10), {"a": np.zeros((3, 4), "f4"), "b": [np.ones(2, "c16"), "x"]},
            np.array([1, "x", None], dtype=object), np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")])]
    for obj in objs:
        buf = io.BytesIO()
        joblib.dump(obj, buf)
        data = buf.getvalue()
        jumps = joblib_layout(data).jumps
        assert jumps
        same(data, payloads=True, watch=WATCH, jumps=jumps)
        same(data, jumps=jumps)
        # a jump past the end, and jumps into the middle of the data
        same(data, jumps={o: len(data) + 5 for o in jumps})
        same(data, jumps={o: o + 1 for o in jumps}, payloads=True)


def test_frames_and_huge_lengths() -> None:
    body = pickle.dumps({"k": [1, 2, 3]}, protocol=4)
    cases = [
        b"\x95" + struct.pack("<Q", 3) + b"K\x01.",
        b"\x95" + struct.pack("<Q", 2) + b"K\x01.",
        b"\x95" + struct.pack("<Q", 1 << 63) + b"K\x01.",
        b"\x95" + struct.pack("<Q", (1 << 64) - 1) + b"K\x01.",
        b"\x95" + struct.pack("<Q", 20) + b"\x95" + struct.pack("<Q", 30) + b"K\x01.",
        b"\x95" + struct.pack("<Q", 4) + b"K\x01.K\x02.",
        b"\x95" + struct.pack("<Q", 5) + b"cos\nsystem\n.",
        b"\x8e" + struct.pack("<Q", 1 << 63) + b"x.",
        b"\x8e" + struct.pack("<Q", (1 << 63) - 1) + b"x.",
        b"\x8e" + struct.pack("<Q", (1 << 64) - 1),
        b"\x8b\xff\xff\xff\xff.",
        b"\x8d" + struct.pack("<Q", 1 << 62) + b"ab",
        b"\x80\x06.",
        body[:-1], body + body, body + b"garbage",
    ]
    for data in cases:
        for opts in OPTION_SETS:
            same(data, **opts)


def test_text_opcodes() -> None:
    cases = [b"I12\n.", b"I\n.", b"Lx\n.", b"p1\n0g1\n.", b"N p 1_0\n0g10\n.", b"Np-1\n.", b"Np1\x00zz\n0g1\n.",
             b"Ng9\n.", b"Np" + b"9" * 5000 + b"\n.", b"Pid\nQ.", b"S'abc'\n.", b"S\"a\\x41\"\n.", b"S'a\n.",
             b"Vab\\u0041\n.", b"cos\nsys", b"cos", b"c", b"cos\n\n.", b"c\nx\n.", b"c\xff\nx\n.", b"i\xc3\xa9\nx\n.",
             b"(cos\nsystem\nS'ls'\ni.", b"(ios\nsystem\n.", b"cos\nsystem\n(S'x'\ntR."]
    for data in cases:
        for opts in OPTION_SETS:
            same(data, **opts)


def test_buffer_types() -> None:
    data = pickle.dumps({"a": [1, (2, "x")], "f": np.float64(2)}, protocol=5)
    for buf in (data, bytearray(data), memoryview(data), memoryview(bytearray(b"xx" + data))[2:]):
        same(buf, payloads=True, watch=WATCH)
    with mmap.mmap(-1, len(data)) as m:
        m[:] = data
        same(m, payloads=True)
    same(b"\x00\x00" + data, start=2)
    same(data, start=len(data))


def test_mutated_and_random_streams() -> None:
    rng = random.Random(5)
    seeds = [pickle.dumps(v, protocol=p) for v in ({"a": [1, 2.5, "s"], "t": (1, b"x")}, list(range(40)),
                                                  np.arange(3), [Path("x"), {1, 2}]) for p in range(6)]
    seeds += [fn(Path("/nonexistent/m"), 4) for fn in TECHNIQUES.values()]
    gen = _Gen(99)
    seeds += [gen.program() for _ in range(50)]
    for k in range(6000):
        s = rng.randbytes(rng.randint(0, 200)) if k % 10 == 0 else mutate(rng, rng.choice(seeds))
        same(s, **OPTION_SETS[k % len(OPTION_SETS)])


def test_every_prefix_of_a_real_pickle() -> None:
    data = pickle.dumps([{"a": (1, "b")}, np.arange(2), Path("p"), b"\x80\x04bytes"], protocol=4)
    for k in range(len(data) + 1):
        same(data[:k], payloads=True, watch=WATCH)


def test_bad_arguments_raise_not_crash() -> None:
    from amber.security import _cwalk

    with pytest.raises(TypeError):
        _cwalk.walk("text", 4, 0, {}, None, False, frozenset(), None, False)
    with pytest.raises(ValueError):
        _cwalk.walk(b"abc", 5, 0, {}, None, False, frozenset(), None, False)
    with pytest.raises(ValueError):
        _cwalk.walk(b"abc", 3, 4, {}, None, False, frozenset(), None, False)
    with pytest.raises(TypeError):
        _cwalk.walk(b"abc", 3, 0, {}, None, False, frozenset(), [1], False)
    ok = (b"N.", 2, 0, {}, None, False, frozenset(), None, False)
    assert _cwalk.walk(*ok)[0].stopped and _cwalk.walk(*ok, False)[0].stopped
    for bad in (ok[:8], ok + (True, 1), (b"N.", 2.0, *ok[2:]), (b"N.", 2, "0", *ok[3:]), (*ok[:3], [], *ok[4:]),
                (*ok[:6], {"a"}, *ok[7:])):
        with pytest.raises(TypeError):
            _cwalk.walk(*bad)
    with pytest.raises(OverflowError):
        _cwalk.walk(b"N.", 1 << 80, *ok[2:])
    from amber.security._archives import JoblibLayout

    with pytest.raises(TypeError):
        _cwalk.joblib_layout(b"N.", 2, 0)
    with pytest.raises(TypeError):
        _cwalk.joblib_layout(b"N.", "2", 0, JoblibLayout())
    with pytest.raises(ValueError):
        _cwalk.joblib_layout(b"N.", 3, 0, JoblibLayout())


# ------------------------------------------------------------------ joblib's layout
def _layout_same(data: bytes) -> bool:
    """The C evaluator's layout equals the Python one's whenever it follows the stream to
    its STOP; True when it did."""
    from amber.security import _archives as A

    view, n, find = W._as_buffer(data)
    c_out = A.JoblibLayout()
    done = W._C.joblib_layout(view, n, 0, c_out)  # type: ignore[union-attr]
    py_out = A._joblib_layout_py(view, n, find, 0)
    if done:
        assert c_out == py_out, data[:300]
        assert py_out.refused is None and py_out.error is None
    return bool(done)


def _joblib_samples() -> list[bytes]:
    objs: list[Any] = [
        np.arange(10), {"a": np.zeros((3, 4), "f4"), "b": [np.ones(2, "c16"), "x", (1, 2.5, None, True)]},
        np.array([1, "x", None], dtype=object), np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]),
        np.zeros((2, 2), "M8[ms]"), np.asfortranarray(np.ones((3, 2))), [np.arange(3)] * 3, {"k": {1: b"b", 2: {3}}},
        np.zeros(0, "u1"), np.zeros((2, 3), ">i8"), np.zeros(3, "S5"),
    ]
    out = []
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), np.arange(40) % 2
    objs += [LogisticRegression().fit(X, y), DecisionTreeClassifier(max_depth=3).fit(X, y)]
    for obj in objs:
        for proto in (None, 2, 3, 4, 5):
            buf = io.BytesIO()
            joblib.dump(obj, buf, protocol=proto)
            out.append(buf.getvalue())
    return out


def test_joblib_layout_c_equals_python_and_follows_real_files() -> None:
    samples = _joblib_samples()
    followed = [_layout_same(s) for s in samples]
    assert all(followed[::5])  # the files joblib writes with its default protocol: followed in C


def test_joblib_layout_c_on_mutated_and_hostile_streams() -> None:
    rng = random.Random(7)
    seeds = _joblib_samples()
    marker = Path("/nonexistent/amber-marker")
    seeds += [fn(marker, p) for fn in TECHNIQUES.values() for p in (2, 4)]
    for _ in range(5000):
        _layout_same(mutate(rng, rng.choice(seeds), (1, 3)))


def test_resolved_dtypes_are_cached_by_type_and_value() -> None:
    """The layout's dtype cache never hands one stream's dtype to another whose literal
    state differs only in type (flags ``False`` for ``0``, equal as values): the evaluator
    refuses that one."""
    from amber.security import _archives as A

    def dtype(args: Any, state: Any) -> Any:
        d = A._DType(args)
        d.state = state
        return d

    plain = (3, "<", None, None, None, -1, -1, 0)
    assert A._resolve_dtype(dtype(("f8", False, True), plain)) == np.dtype("<f8")
    assert A._resolve_dtype(dtype(("f8", False, True), plain)) == np.dtype("<f8")  # from the cache
    with pytest.raises(A._Refuse):
        A._resolve_dtype(dtype(("f8", False, True), (*plain[:-1], False)))
    # a structured dtype (scikit-learn's tree nodes) is cached with its nested field dtypes
    i8, f8 = dtype(("i8", False, True), plain), dtype(("f8", False, True), plain)
    fields = {"a": (i8, 0), "b": (f8, 8)}
    first = A._resolve_dtype(dtype(("V16", False, True), (3, "|", None, ("a", "b"), fields, 16, 1, 16)))
    assert first == np.dtype([("a", "<i8"), ("b", "<f8")])
    again = dtype(("V16", False, True), (3, "|", None, ("a", "b"), {"a": (dtype(("i8", False, True), plain), 0),
                                                                    "b": (dtype(("f8", False, True), plain), 8)}, 16, 1, 16))
    assert A._resolve_dtype(again) is first
    odd = {"a": (dtype(("i8", False, True), (*plain[:-1], False)), 0), "b": (f8, 8)}
    with pytest.raises(A._Refuse):
        A._resolve_dtype(dtype(("V16", False, True), (3, "|", None, ("a", "b"), odd, 16, 1, 16)))


def test_the_c_dtype_keys_are_equal_only_when_the_python_ones_are() -> None:
    """The C evaluator caches resolved dtypes by a key of its own (bytes): two dtypes may
    share one only when ``_archives._key`` gives them equal keys (values equal across
    types, ``1``/``True``/``1.0``, differ); and it keys (almost) every dtype _key keys.
    Checked on pairs of 4,000 random dtypes: shared and odd field dtypes, states of every
    shape."""
    from amber.security import _archives as A
    from amber.security import _cwalk

    rng = random.Random(5)
    scalars = [0, 1, True, False, -1, 3, "<", "|", "f8", "i8", "\udc80", "é", b"x", b"", None, 1.0, [1], (), ("a",),
               1 << 70]

    def tup(k: int) -> tuple[Any, ...]:
        return tuple(rng.choice(scalars) for _ in range(k))

    def dtype(depth: int = 0) -> Any:
        d = A._DType(rng.choice([("f8", False, True), ("i8", 0, 1), ("f8", 0, True), tup(3), tup(2), ["f8", False, True],
                                 "f8"]))
        r = rng.random()
        if r < 0.2:
            d.state = None
        elif r < 0.4:
            d.state = rng.choice([(3, "<", None, None, None, -1, -1, 0), (3, "<", None, None, None, -1, -1, False),
                                  tup(8), tup(1)])
        else:
            subs = [dtype(depth + 1) if depth < 2 else A._DType(("f8", False, True)) for _ in range(rng.randint(1, 3))]
            fields: dict[Any, Any] = {}
            for j in range(rng.randint(0, 4)):
                tail = rng.choice([(8 * j,), (8 * j, "title"), (8 * j, None), (1.5,), (8 * j, [1]), (j, 1, 2), (True,)])
                key = rng.choice([f"f{j}", f"f{j}", 7])
                fields[key] = rng.choice([(rng.choice(subs), *tail), (rng.choice(subs), *tail), [rng.choice(subs), 0],
                                          ("x", 0)])
            names = rng.choice([tuple(k for k in fields if type(k) is str), ("a", 1), ["a"], None])
            st: list[Any] = [3, "|", rng.choice([None, None, None, 0]), names, rng.choice([fields, fields, None]),
                             16, rng.choice([1, True, 1.0]), 16]
            if rng.random() < 0.3:
                st.append(rng.choice([None, (None, (b"s", 1, 1, 1))]))
            d.state = tuple(st) if rng.random() < 0.95 else st
        return d

    items = []
    for _ in range(4000):
        d = dtype()
        items.append((A._key(d), _cwalk.dtype_key(d)))
    keyed = 0
    for py, c in items:
        assert c is None or type(c) is bytes
        if c is not None:
            assert py is not None
            keyed += 1
        elif py is not None:  # (only an int past 64 bits stops the C key)
            assert "1180591620717411303424" in repr(py)
    assert keyed > 500
    by_c: dict[bytes, Any] = {}
    for py, c in items:
        if c is not None:
            assert by_c.setdefault(c, py) == py  # equal C keys: equal Python keys
    by_py: dict[Any, bytes] = {}
    for py, c in items:
        if c is not None:
            assert by_py.setdefault(py, c) == c  # and the other way round
    assert len(by_c) < keyed  # (some dtypes were equal)
    with pytest.raises(TypeError):
        _cwalk.dtype_key(("f8", False, True))


_GUARD_CHILD = r"""
import ctypes, io, mmap, pickle, random, sys
import joblib, numpy as np
sys.path.insert(0, sys.argv[1])
from _payloads import TECHNIQUES, mutate
from pathlib import Path
from amber.security import _walk as W
from amber.security import _archives as A

libc = ctypes.CDLL(None, use_errno=True)
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
PAGE = mmap.PAGESIZE

def at_page_end(data):
    # the data ends where an unreadable page starts: a read past its end faults
    pages = (len(data) + PAGE - 1) // PAGE + 1
    m = mmap.mmap(-1, pages * PAGE)
    base = ctypes.addressof(ctypes.c_char.from_buffer(m))
    if libc.mprotect(base + (pages - 1) * PAGE, PAGE, 0) != 0:
        raise OSError(ctypes.get_errno(), "mprotect")
    start = (pages - 1) * PAGE - len(data)
    m[start:start + len(data)] = data
    return m, memoryview(m)[start:start + len(data)]

rng = random.Random(3)
seeds = [pickle.dumps(v, protocol=p) for v in ({"a": [1, 2.5, "s"], "t": (1, b"x")}, np.arange(3)) for p in range(6)]
seeds += [fn(Path("/nonexistent/m"), 4) for fn in TECHNIQUES.values()]
buf = io.BytesIO()
joblib.dump({"a": np.arange(4), "b": np.zeros((2, 2), "f4")}, buf)
seeds.append(buf.getvalue())
streams = [s[:k] for s in seeds[:4] + seeds[-1:] for k in range(len(s) + 1)]
streams += [mutate(rng, rng.choice(seeds)) for _ in range(3000)]
for s in streams:
    m, view = at_page_end(s)
    W.walk_all(view, payloads=True, watch={"os.system"})
    A.joblib_layout(view)
    view.release()
    m.close()
print("ok", len(streams))
"""


def test_the_c_code_never_reads_past_the_end_of_the_data(tmp_path: Path) -> None:
    """Each stream ends right where an unreadable page starts, so a read of even one byte
    past its end kills the (child) process: every prefix of real pickles and 3,000 mutated
    streams, through the C walk and the C joblib evaluator."""
    import subprocess
    import sys

    script = tmp_path / "guard.py"
    script.write_text(_GUARD_CHILD)
    r = subprocess.run([sys.executable, str(script), str(Path(__file__).parent)], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0 and r.stdout.startswith("ok"), (r.returncode, r.stdout[-500:], r.stderr[-2000:])


def test_the_c_code_leaks_nothing() -> None:
    """Walks and layouts of good and broken streams (errors, bail-outs, callbacks) leave
    no Python object behind: the reference counting of every path balances."""
    import gc
    import tracemalloc

    from amber._speedups import plain_scan

    rng = random.Random(11)
    seeds = [pickle.dumps(v, protocol=p) for v in ({"a": [1, 2.5, "s"], "t": (1, b"x")}, np.arange(3)) for p in range(6)]
    seeds += [fn(Path("/nonexistent/m"), p) for fn in TECHNIQUES.values() for p in (0, 2, 4)]
    gen = _Gen(5)
    seeds += [gen.program() for _ in range(60)]
    buf = io.BytesIO()
    joblib.dump({"a": np.arange(4), "b": [np.zeros((2, 2), "f4"), "x"]}, buf)
    seeds.append(buf.getvalue())
    streams = seeds + [mutate(rng, rng.choice(seeds)) for _ in range(600)]
    values = {f"k{i}": (i, 1.5) if i % 3 else [i] for i in range(300)}

    def work() -> None:
        for s in streams:
            W.walk_all(s, payloads=True, watch=WATCH)
            A.joblib_layout(s)
        it, tuples = iter(values.items()), []  # type: ignore[var-annotated]
        while plain_scan(it, tuples) is not None:
            pass

    from amber.security import _archives as A

    work()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for _ in range(4):
            work()
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    assert grown < 20_000, after.compare_to(before, "lineno")[:5]
