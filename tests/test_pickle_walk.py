"""The static pickle walker (amber.security._walk).

Real pickles are only ever produced with pickle.dumps here, and compared with a reference
built on pickletools.genops. Hostile streams are only walked, never loaded. The one place
that runs CPython's unpicklers (test_differential_against_cpython_unpicklers) feeds them
small generated streams through an Unpickler whose find_class never imports anything (it
returns a local dummy class), so nothing from a stream can run.
"""

from __future__ import annotations

import collections
import copyreg
import dataclasses
import datetime
import decimal
import enum
import fractions
import functools
import io
import operator
import pathlib
import pickle
import pickletools
import random
import struct
import time
import tracemalloc
import uuid

import numpy as np
import pytest

from amber.security import _walk
from amber.security._walk import CallSite, GlobalRef, Walk, pickle_globals, walk, walk_all

MOD = __name__


# ----------------------------------------------------------------------------- samples
class Outer:
    class Inner:
        def __init__(self) -> None:
            self.x = 1


@dataclasses.dataclass
class Point:
    x: int
    y: float


class Color(enum.Enum):
    RED = 1


class Slotted:
    __slots__ = ("a", "b")

    def __init__(self) -> None:
        self.a = 1
        self.b = "two"


class WithState:
    def __init__(self) -> None:
        self.v = [1, 2]

    def __getstate__(self) -> dict:
        return {"v": self.v, "extra": "s"}

    def __setstate__(self, state: dict) -> None:
        self.v = state["v"]


Pair = collections.namedtuple("Pair", "a b")


def _objects() -> list[tuple[str, object]]:
    rec: list = [1]
    rec.append(rec)
    shared = ["shared"]
    objs: list[tuple[str, object]] = [
        ("ints", [0, 1, -1, 255, 256, 65535, 65536, -(2**31), 2**31, 2**64, -(10**100)]),
        ("floats", [0.0, -1.5, float("inf"), 1e308, complex(1, -2)]),
        ("strings", ["", "a", "é\u20ac\U0001f600", "x" * 300, "line\nbreak", "back\\slash"]),
        ("bytes", [b"", b"\x00\xff", b"y" * 300, b"z" * 100_000, bytearray(b"ba" * 10)]),
        ("constants", [None, True, False, Ellipsis, NotImplemented]),
        ("tuples", [(), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4), ((),)]),
        ("containers", {"l": [1, [2, [3]]], "s": {1, 2}, "f": frozenset("ab"), "d": {(1, 2): {3: 4}}}),
        ("recursive", rec),
        ("shared", [shared, shared, {"k": shared}]),
        ("big dict", {f"k{i}": i for i in range(2500)}),
        ("big list", list(range(3000))),
        ("ranges", [range(5), slice(1, 2, 3)]),
        (
            "collections",
            [
                collections.OrderedDict(a=1),
                collections.defaultdict(list, a=[1]),
                collections.Counter("abca"),
                collections.deque([1, 2]),
                Pair(1, 2),
            ],
        ),
        (
            "stdlib",
            [
                datetime.datetime(2020, 1, 2, 3, 4, 5),
                datetime.date(2021, 1, 1),
                datetime.timedelta(days=1),
                decimal.Decimal("1.25"),
                fractions.Fraction(1, 3),
                uuid.UUID(int=5),
                pathlib.PurePosixPath("/a/b"),
            ],
        ),
        ("callables", [functools.partial(max, 1), operator.itemgetter(1), len, Outer]),
        ("user classes", [Point(1, 2.0), Color.RED, Slotted(), WithState()]),
        ("nested class", Outer.Inner()),
        (
            "numpy",
            [
                np.arange(10),
                np.zeros((3, 4), dtype=np.float32)[:, ::2],
                np.array(["a", None, 1], dtype=object),
                np.zeros(3, dtype=[("a", "i4"), ("b", "f8")]),
                np.float64(1.5),
                np.dtype("int16"),
                np.arange(20_000, dtype=np.float64),
            ],
        ),
    ]
    return objs


@functools.lru_cache(maxsize=None)
def _ml_objects() -> list[tuple[str, object]]:
    pd = pytest.importorskip("pandas")
    linear = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3))
    y = (X[:, 0] > 0).astype(int)
    model = linear.LogisticRegression().fit(X, y)
    df = pd.DataFrame(
        {
            "a": [1, 2, 3],
            "b": ["x", "y", None],
            "c": pd.Categorical(["u", "v", "u"]),
            "d": pd.to_datetime(["2020-01-01", "2021-01-01", "2022-01-01"]),
        }
    )
    return [("sklearn LogisticRegression", model), ("pandas DataFrame", df)]


@functools.lru_cache(maxsize=None)
def real_pickles() -> tuple[tuple[str, bytes], ...]:
    out = []
    for label, obj in _objects() + _ml_objects():
        for proto in range(pickle.HIGHEST_PROTOCOL + 1):
            try:
                data = pickle.dumps(obj, protocol=proto)
            except (pickle.PicklingError, TypeError, AttributeError):
                continue
            out.append((f"{label} / protocol {proto}", data))
    # out-of-band buffers (NEXT_BUFFER, READONLY_BUFFER)
    bufs: list = []
    out.append(("oob", pickle.dumps([np.arange(5), pickle.PickleBuffer(b"ro")], protocol=5, buffer_callback=bufs.append)))
    # persistent ids (PERSID, BINPERSID)
    for proto in range(6):
        f = io.BytesIO()
        p = _PidPickler(f, protocol=proto)
        p.dump({"ext": _External(), "more": [_External(), 1]})
        out.append((f"persistent / protocol {proto}", f.getvalue()))
    return tuple(out)


class _External:
    pass


class _PidPickler(pickle.Pickler):
    def persistent_id(self, obj: object) -> str | None:
        return "ext" if isinstance(obj, _External) else None


# ---------------------------------------------------------------- ground truth (genops)
def _mapped(module: str, name: str, proto: int) -> str:
    import _compat_pickle

    if proto < 3:
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
    return f"{module}.{name}"


def reference(data: bytes) -> dict:
    """An independent model (pickle.py's stack-of-lists) over pickletools.genops."""
    stack: list = []
    meta: list = []
    memo: dict = {}
    proto = 0
    protocol = None
    globals_: list = []
    calls: list = []
    persids = 0
    end = None
    for op, arg, pos in pickletools.genops(data):
        name = op.name
        if name == "PROTO":
            proto = arg
            protocol = arg if protocol is None else protocol
        elif name == "FRAME":
            pass
        elif name == "STOP":
            end = pos + 1
            break
        elif name == "MARK":
            meta.append(stack)
            stack = []
        elif name in ("GLOBAL", "INST"):
            module, qual = arg.split(" ")
            full = _mapped(module, qual, proto)
            globals_.append((full, pos, name))
            if name == "INST":
                stack = meta.pop()
                calls.append((pos, "INST", full))
                stack.append(("made", full))
            else:
                stack.append(("global", full))
        elif name == "STACK_GLOBAL":
            qual = stack.pop()
            module = stack.pop()
            assert module[0] == "str" and qual[0] == "str"
            full = _mapped(module[1], qual[1], proto)
            globals_.append((full, pos, name))
            stack.append(("global", full))
        elif name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"):
            stack.append(("str", arg))
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[arg] = stack[-1]
        elif name == "MEMOIZE":
            memo[len(memo)] = stack[-1]
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            stack.append(memo[arg])
        elif name in ("REDUCE", "NEWOBJ", "NEWOBJ_EX"):
            args = stack[-1]
            del stack[len(stack) - {"REDUCE": 1, "NEWOBJ": 1, "NEWOBJ_EX": 2}[name] :]
            fn = stack.pop()
            target = fn[1] if fn is not None and fn[0] == "global" else None
            calls.append((pos, name, target))
            if target == "builtins.getattr" and args is not None and args[0] == "pair":
                stack.append(("global", f"{args[1]}.{args[2]}"))  # getattr(Outer, "Inner")
            else:
                stack.append(("made", target) if target else None)
        elif name == "TUPLE2" and stack[-2] is not None and stack[-2][0] in ("global", "made") and (
            stack[-1] is not None and stack[-1][0] == "str"
        ):
            pair = ("pair", stack[-2][1], stack[-1][1])
            del stack[-2:]
            stack.append(pair)
        elif name == "BUILD":
            stack.pop()
            inst = stack[-1]
            calls.append((pos, name, inst[1] if inst is not None and inst[0] in ("global", "made") else None))
        elif name == "OBJ":
            items = stack
            stack = meta.pop()
            cls = items[0]
            target = cls[1] if cls is not None and cls[0] == "global" else None
            calls.append((pos, name, target))
            stack.append(("made", target) if target else None)
        elif name in ("APPENDS", "SETITEMS", "ADDITEMS"):
            items = stack
            stack = meta.pop()
            if items and stack[-1] is not None and stack[-1][0] == "global":
                calls.append((pos, name, stack[-1][1]))
        elif name in ("APPEND", "SETITEM"):
            del stack[-(1 if name == "APPEND" else 2) :]
            if stack[-1] is not None and stack[-1][0] == "global":
                calls.append((pos, name, stack[-1][1]))
        elif name in ("TUPLE", "LIST", "DICT", "FROZENSET"):
            stack = meta.pop()
            stack.append(None)
        elif name == "POP_MARK":
            stack = meta.pop()
        elif name == "POP":
            if stack:
                stack.pop()
            else:
                stack = meta.pop()
        elif name == "DUP":
            stack.append(stack[-1])
        elif name in ("PERSID", "BINPERSID"):
            persids += 1
            if name == "BINPERSID":
                stack.pop()
            stack.append(None)
        else:
            assert not any(s.name in ("mark", "stackslice") for s in op.stack_before), name
            del stack[len(stack) - len(op.stack_before) :]
            stack.extend([None] * len(op.stack_after))
    return {"globals": globals_, "calls": calls, "end": end, "protocol": protocol, "persistent_ids": persids}


def summary(w: Walk) -> dict:
    return {
        # attributes fetched with getattr are the walker's own inference, not an import
        "globals": [(g.name, g.offset, g.opcode) for g in w.globals if g.opcode != "GETATTR"],
        "calls": [(c.offset, c.opcode, c.target) for c in w.calls],
        "end": w.end,
        "protocol": w.protocol,
        "persistent_ids": w.persistent_ids,
    }


# ------------------------------------------------------------------------ real pickles
def test_opcode_table_matches_pickletools() -> None:
    ours = {code: name for name, code, _kind, _size in _walk._OPS}
    theirs = {ord(op.code): op.name for op in pickletools.opcodes}
    assert ours == theirs
    for op in pickletools.opcodes:
        size = _walk._ARGSIZE[ord(op.code)]
        if op.arg is not None and op.arg.n > 0:  # fixed-size argument
            assert size == op.arg.n, op.name
        elif op.arg is not None and op.arg.n in (-2, -3, -4, -5):  # length-prefixed
            assert size == {-2: 1, -3: 4, -4: 4, -5: 8}[op.arg.n], op.name


def test_real_pickles_match_genops_ground_truth() -> None:
    protocols = set()
    for label, data in real_pickles():
        w = walk(data)
        assert w.ok, (label, w.error)
        assert w.end == len(data), label
        assert all(g.resolved for g in w.globals), label
        assert summary(w) == reference(data), label
        protocols.add(w.protocol)
    assert protocols == {None, 2, 3, 4, 5}


def test_real_pickles_name_what_pickle_imports() -> None:
    by_label = dict(real_pickles())
    assert walk(by_label["callables / protocol 4"]).global_names == sorted(
        {"functools.partial", "builtins.max", "operator.itemgetter", "builtins.len", f"{MOD}.Outer"}
    )
    # protocol 4 names nested classes by their qualname
    assert f"{MOD}.Outer.Inner" in walk(by_label["nested class / protocol 4"]).global_names
    # protocols 0-2 are written with Python 2 names and read back through the mapping
    p0 = walk(by_label["stdlib / protocol 0"])
    assert "copyreg._reconstructor" in p0.global_names
    assert any(g.raw == "copy_reg._reconstructor" for g in p0.globals)
    model = walk(by_label["sklearn LogisticRegression / protocol 5"])
    assert "sklearn.linear_model._logistic.LogisticRegression" in model.global_names
    assert any(n.startswith("numpy.") for n in model.global_names)
    frame = walk(by_label["pandas DataFrame / protocol 4"])
    assert any(n.startswith("pandas.") for n in frame.global_names)
    assert pickle_globals(by_label["numpy / protocol 2"]) == walk(by_label["numpy / protocol 2"]).global_names
    pers = [walk(d) for label, d in real_pickles() if label.startswith("persistent")]
    assert [w.persistent_ids for w in pers] == [2] * 6
    oob = walk(by_label["oob"])
    assert oob.ok


def test_buffer_types_give_the_same_walk() -> None:
    data = dict(real_pickles())["numpy / protocol 0"]  # newline-terminated arguments
    expected = summary(walk(data))
    arr = np.frombuffer(data, dtype=np.uint8)
    for buf in (bytearray(data), memoryview(data), arr, memoryview(arr)):
        assert summary(walk(buf)) == expected
    words = np.frombuffer(data[: len(data) // 4 * 4], dtype=np.uint32)
    assert walk(words).end > 0  # any C-contiguous buffer is read as bytes
    with pytest.raises(TypeError):
        walk("cos\nsystem\n.")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        walk(12)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        walk(memoryview(np.zeros((4, 4), np.uint8)[:, ::2]))
    with pytest.raises(ValueError):
        walk(data, start=len(data) + 1)
    assert walk(b"x" + data, start=1).ok


def test_truncated_real_pickles_never_raise_and_keep_the_prefix() -> None:
    rng = random.Random(1)
    for label, data in real_pickles():
        full = walk(data)
        n = len(data)
        cuts = range(n) if n <= 200 else sorted({0, 1, 2, n - 1, n - 2, *rng.sample(range(n), 30)})
        for cut in cuts:
            piece = data[:cut]
            w = walk(piece)
            assert not w.stopped and w.error is not None and w.error_offset is not None, (label, cut)
            assert w.end <= cut and w.error_offset <= cut
            before = [g for g in full.globals if g.offset < w.end]
            assert [g for g in w.globals if g.offset < w.end] == before, (label, cut)
            assert [c for c in w.calls if c.offset < w.end] == [c for c in full.calls if c.offset < w.end]
            walk_all(piece)


def test_random_and_mutated_streams_never_raise_or_hang() -> None:
    rng = random.Random(7)
    seeds = [d for _, d in real_pickles() if len(d) < 5000]
    opcodes = bytes(ord(op.code) for op in pickletools.opcodes)
    for k in range(4000):
        if k % 2:
            data = bytearray(rng.choice(seeds))
            for _ in range(rng.randint(1, 4)):
                p = rng.randrange(len(data))
                r = rng.random()
                if r < 0.4:
                    data[p] = rng.randrange(256)
                elif r < 0.6:
                    data.insert(p, rng.choice(opcodes))
                elif r < 0.8:
                    del data[p]
                else:
                    data[p:p] = data[rng.randrange(len(data)) :][: rng.randint(1, 20)]
            data = bytes(data)
        else:
            data = bytes(rng.choice(opcodes) if rng.random() < 0.7 else rng.randrange(256) for _ in range(rng.randint(0, 40)))
        for w in walk_all(data):
            assert 0 <= w.end <= len(data)
            assert w.stopped or w.error is not None
            if w.error is not None:
                assert w.error_offset is not None and 0 <= w.error_offset <= len(data)


# ----------------------------------------------------------------------- hostile streams
def names(w: Walk) -> list[str]:
    return [g.name for g in w.globals]


def test_global_and_reduce() -> None:
    data = b"cos\nsystem\n(S'echo hi'\ntR."
    w = walk(data)
    assert w.ok and w.end == len(data)
    assert w.globals == [GlobalRef("os.system", 0, "GLOBAL", True, "os", "system")]
    assert w.calls == [CallSite(data.index(b"R"), "REDUCE", "os.system")]


def _su(s: str) -> bytes:
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b


def test_stack_global_with_memoized_strings() -> None:
    # module and name memoized with BINPUT, fetched back with BINGET
    data = b"\x80\x04" + _su("os") + b"q\x00" + _su("system") + b"q\x01" + b"0" + b"0" + b"h\x00h\x01\x93" + b"(" + _su("id") + b"tR."
    w = walk(data)
    assert w.ok and names(w) == ["os.system"] and w.globals[0].resolved
    assert w.calls[0].target == "os.system"
    # LONG_BINPUT / LONG_BINGET, PUT / GET, MEMOIZE, DUP
    variants = {
        "long": _su("os") + b"r\x05\x00\x00\x00" + b"0" + _su("system") + b"r\x06\x00\x00\x00" + b"0j\x05\x00\x00\x00j\x06\x00\x00\x00\x93",
        "text": _su("os") + b"p17\n0" + _su("system") + b"p 18 \n0g17\ng0018\n\x93",
        "memoize": _su("os") + b"\x94" + _su("system") + b"\x94" + b"00h\x00h\x01\x93",
        "dup": _su("subprocess") + b"\x94" + _su("Popen") + b"2" + b"0" + b"\x93",
    }
    expected = {"long": "os.system", "text": "os.system", "memoize": "os.system", "dup": "subprocess.Popen"}
    for key, body in variants.items():
        w = walk(b"\x80\x04" + body + b".")
        assert w.ok, (key, w.error)
        assert names(w) == [expected[key]] and w.globals[0].resolved, key


@pytest.mark.parametrize(
    "encoded",
    [
        b"\x8c\x02os",
        b"X\x02\x00\x00\x00os",
        b"\x8d\x02\x00\x00\x00\x00\x00\x00\x00os",
        b"Vo\\u0073\n",
        b"S'o\\x73'\n",
        b'S"\\157s"\n',
        b"U\x02os",
        b"T\x02\x00\x00\x00os",
    ],
)
def test_string_opcodes_as_stack_global_operands(encoded: bytes) -> None:
    w = walk(b"\x80\x04" + encoded + b"S'system'\n\x93N\x85R.")
    assert w.ok, w.error
    assert w.globals == [GlobalRef("os.system", w.globals[0].offset, "STACK_GLOBAL", True, "os", "system")]
    assert [(c.opcode, c.target) for c in w.calls] == [("REDUCE", "os.system")]


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        (b"C\x02os", "?.system"),  # bytes are not str: the unpickler refuses, the walker cannot name it
        (b"U\x02\xe9s", "?.system"),  # non-ASCII Python 2 str: depends on the loader's encoding
        (b"\x8c\x02\xff\xfe", "?.system"),  # not UTF-8
        (b"X" + struct.pack("<I", 2000) + b"o" * 2000, "?.system"),  # longer than MAX_NAME_BYTES
        (b"S'bad\\x4'\n", "?.system"),  # bad escape
        (b"K\x01", "?.system"),
        (b"cbuiltins\nstr\n)R", "?.system"),  # the result of a call
    ],
)
def test_unknown_stack_global_operands_are_reported_unresolved(module: bytes, expected: str) -> None:
    w = walk(b"\x80\x04" + module + _su("system") + b"\x93)R.")
    glob = [g for g in w.globals if g.opcode == "STACK_GLOBAL"]
    assert [g.name for g in glob] == [expected] and not glob[0].resolved
    assert glob[0].module is None and glob[0].qualname == "system"
    assert w.calls[-1] == CallSite(w.calls[-1].offset, "REDUCE", None)
    w = walk(b"\x80\x04" + _su("os") + module + b"\x93.")
    assert [g.name for g in w.globals if g.opcode == "STACK_GLOBAL"] == ["os.?"]


def test_unknown_escapes_are_kept_as_cpython_does() -> None:
    w = walk(b"\x80\x04S'o\\s'\n" + _su("x") + b"\x93.")
    assert names(w) == ["o\\s.x"] and w.globals[0].resolved


def test_python2_names_are_mapped_below_protocol_3() -> None:
    w = walk(b"c__builtin__\neval\n(S'1'\ntR.")
    assert w.ok and names(w) == ["builtins.eval"]
    assert w.globals[0].raw == "__builtin__.eval" and w.globals[0].module == "builtins"
    assert w.calls == [CallSite(w.calls[0].offset, "REDUCE", "builtins.eval")]
    assert names(walk(b"\x80\x02c__builtin__\neval\n.")) == ["builtins.eval"]
    assert names(walk(b"\x80\x02ccopy_reg\n_reconstructor\n.")) == ["copyreg._reconstructor"]
    assert names(walk(b"\x80\x02c__builtin__\nxrange\n.")) == ["builtins.range"]  # NAME_MAPPING
    assert names(walk(b"\x80\x02cexceptions\nStandardError\n.")) == ["builtins.Exception"]
    # protocol 3 and up: no mapping, as in find_class
    w = walk(b"\x80\x03c__builtin__\neval\n.")
    assert names(w) == ["__builtin__.eval"] and w.globals[0].raw is None
    # the protocol in force at the opcode counts (PROTO may come again), also for STACK_GLOBAL
    w = walk(b"\x80\x04\x80\x02" + _su("__builtin__") + _su("eval") + b"\x93.")
    assert names(w) == ["builtins.eval"] and w.protocol == 4
    assert names(walk(_su("__builtin__") + _su("eval") + b"\x93.")) == ["builtins.eval"]  # no PROTO: 0
    assert names(walk(_su("__builtin__") + b"K\x01\x93.")) == ["builtins.?"]


def test_inst_obj_newobj_and_build_call_sites() -> None:
    w = walk(b"(S'ls'\nios\nsystem\n.")
    assert w.ok
    assert w.globals == [GlobalRef("os.system", 7, "INST", True, "os", "system")]
    assert w.calls == [CallSite(7, "INST", "os.system")]
    data = b"(cos\nsystem\nS'ls'\no."
    w = walk(data)
    assert w.ok and w.calls == [CallSite(data.index(b"o."), "OBJ", "os.system")]
    data = b"\x80\x02cmod\nCls\n)\x81}b."
    w = walk(data)
    assert w.calls == [CallSite(data.index(b"\x81"), "NEWOBJ", "mod.Cls"), CallSite(data.index(b"b."), "BUILD", "mod.Cls")]
    data = b"\x80\x04cmod\nCls\n)}\x92N\x85b."
    w = walk(data)
    assert w.calls == [CallSite(data.index(b"\x92"), "NEWOBJ_EX", "mod.Cls"), CallSite(data.index(b"b."), "BUILD", "mod.Cls")]
    # BUILD on an imported global itself (setting attributes of a module or class)
    w = walk(b"cos\npath\n}b.")
    assert w.calls == [CallSite(10, "BUILD", "os.path")]
    # a call whose callable is not a global: target unknown
    w = walk(b"cfunctools\npartial\ncos\nsystem\n\x85R)R.")
    assert [c.target for c in w.calls] == ["functools.partial", None]
    # mutating an imported global with the container opcodes
    w = walk(b"cos\nenviron\n(S'LD_PRELOAD'\nS'x.so'\nu.")
    assert w.calls == [CallSite(w.calls[0].offset, "SETITEMS", "os.environ")]
    w = walk(b"cos\nenviron\nS'A'\nS'B'\ns.")
    assert w.calls[0].opcode == "SETITEM" and w.calls[0].target == "os.environ"
    w = walk(b"\x80\x04cmod\nregistry\nK\x01a(K\x02e\x8f(K\x03\x90.")
    assert [(c.opcode, c.target) for c in w.calls] == [("APPEND", "mod.registry"), ("APPENDS", "mod.registry")]
    # filling objects made by calls, or plain containers, is not a call site
    data = b"\x80\x02ccollections\nOrderedDict\n)R(K\x01K\x02u."
    assert walk(data).calls == [CallSite(data.index(b"R"), "REDUCE", "collections.OrderedDict")]


def test_text_memo_keys_are_parsed_as_cpython_does() -> None:
    # whitespace, underscores and leading zeros; a NUL ends the C unpickler's C string
    w = walk(b"cos\nsystem\np 1_0 \n0g010\n)R" + b"cos\nsystem\np2\x00junk\n0g2\n)R" + b"0.")
    assert w.ok and [c.target for c in w.calls] == ["os.system", "os.system"]


def test_memoized_global_keeps_its_name_for_reduce() -> None:
    data = b"\x80\x04" + _su("os") + _su("system") + b"\x93\x94" + b"0" + b"h\x00" + _su("id") + b"\x85R."
    w = walk(data)
    assert w.ok and w.calls == [CallSite(w.calls[0].offset, "REDUCE", "os.system")]
    w = walk(b"cos\nsystem\np3\n0g3\n(S'id'\ntR.")
    assert w.ok and w.calls[0].target == "os.system"


def test_dotted_qualnames_are_kept() -> None:
    data = b"\x80\x04" + _su("pkg.mod") + _su("Outer.Inner") + b"\x93."
    w = walk(data)
    assert w.globals == [GlobalRef("pkg.mod.Outer.Inner", len(data) - 2, "STACK_GLOBAL", True, "pkg.mod", "Outer.Inner")]


@pytest.fixture
def extensions():
    codes = [(MOD, "ext_one", 0xF1), ("os", "system", 0x1F2), (MOD, "ext_four", 0x10003)]
    for module, name, code in codes:
        copyreg.add_extension(module, name, code)
    try:
        yield codes
    finally:
        for module, name, code in codes:
            copyreg.remove_extension(module, name, code)


def test_ext_codes(extensions) -> None:
    w = walk(b"\x80\x02\x82\xf1\x83\xf2\x01\x84\x03\x00\x01\x00\x83\x39\x30)R.")
    assert w.ok
    assert w.ext_codes == [0xF1, 0x1F2, 0x10003, 12345]
    assert names(w) == [f"{MOD}.ext_one", "os.system", f"{MOD}.ext_four", "?.ext12345"]
    assert [g.opcode for g in w.globals] == ["EXT"] * 4
    assert [g.resolved for g in w.globals] == [True, True, True, False]
    assert w.calls == [CallSite(16, "REDUCE", None)]
    w = walk(b"\x80\x02\x83\xf2\x01)R.")
    assert w.calls == [CallSite(6, "REDUCE", "os.system")]
    w = walk(b"\x80\x02\x82\x00.")
    assert w.ext_codes == [0] and not w.stopped and "code 0" in w.error


def test_concatenated_pickles() -> None:
    first = pickle.dumps({"harmless": [1, 2]}, protocol=4)
    second = b"cos\nsystem\n(S'id'\ntR."
    data = first + second
    assert walk(data).ok and walk(data).globals == []
    walks = walk_all(data)
    assert [w.start for w in walks] == [0, len(first)]
    assert all(w.ok for w in walks)
    assert walks[1].globals == [GlobalRef("os.system", len(first), "GLOBAL", True, "os", "system")]
    assert pickle_globals(data) == ["os.system"]
    assert len(walk_all(first * 5)) == 5 and len(walk_all(first * 5, limit=3)) == 3
    # the memo carries over, as when one Unpickler loads the pickles in turn
    memo_first = b"\x80\x04" + _su("os") + b"\x94" + _su("system") + b"\x94\x86."
    memo_second = b"\x80\x04h\x00h\x01\x93N\x85R."
    w2 = walk_all(memo_first + memo_second)[1]
    assert w2.ok and names(w2) == ["os.system"] and w2.calls[0].target == "os.system"
    assert "memo key 0 not found" in walk(memo_second).error


def test_data_after_stop() -> None:
    data = pickle.dumps([1, 2], protocol=2)
    for tail in (b"\n", b"\x00\x00garbage", b"\xff"):
        w = walk(data + tail)
        assert w.ok and w.end == len(data)
        walks = walk_all(data + tail)
        assert len(walks) == 1 and walks[0].ok
    # a tail that starts like a pickle is walked (and reported broken)
    walks = walk_all(data + b"cos\nsystem\n")
    assert len(walks) == 2 and names(walks[1]) == ["os.system"] and not walks[1].stopped


def test_truncated_huge_payload_header_allocates_nothing() -> None:
    data = b"\x80\x04\x8e" + (500_000_000).to_bytes(8, "little") + b"abc"
    tracemalloc.start()
    try:
        t0 = time.perf_counter()
        w = walk(data)
        elapsed = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert not w.stopped and w.error_offset == 2 and "BINBYTES8" in w.error
    assert peak < 200_000 and elapsed < 0.05
    for op in (b"B", b"X", b"T", b"\x8d", b"\x96"):
        size = 8 if op in (b"\x8d", b"\x96") else 4
        w = walk(b"\x80\x04" + op + (2 ** (8 * size) - 1).to_bytes(size, "little") + b"abc.")
        assert not w.stopped and w.error_offset == 2


def test_huge_payload_is_skipped_not_read() -> None:
    size = 500_000_000
    buf = np.zeros(11 + size + 1, dtype=np.uint8)  # calloc'd: the pages are never touched
    buf[:11] = np.frombuffer(b"\x80\x04\x8e" + size.to_bytes(8, "little"), dtype=np.uint8)
    buf[-1] = ord(".")
    t0 = time.perf_counter()
    w = walk(memoryview(buf))
    elapsed = time.perf_counter() - t0
    assert w.ok and w.end == len(buf)
    assert elapsed < 0.05, elapsed


def test_frames() -> None:
    data = pickle.dumps({"k": [os_system_marker := 1, 2]} | {f"x{i}": i for i in range(20_000)}, protocol=5)
    assert data.count(b"\x95") >= 1 and os_system_marker == 1
    assert walk(data).ok
    # a global inside a frame is found
    body = b"cos\nsystem\n)R."
    framed = b"\x80\x04\x95" + len(body).to_bytes(8, "little") + body
    w = walk(framed)
    assert w.ok and names(w) == ["os.system"]
    # a frame declaring more than the data holds: the C unpickler refuses it, the
    # pure-Python one reads on, so the walk notes the error and goes on into the frame
    long_frame = b"\x80\x04\x95" + (10**9).to_bytes(8, "little") + body
    w = walk(long_frame)
    assert w.stopped and names(w) == ["os.system"] and w.error_offset == 2 and "FRAME" in w.error
    # an argument running past the end of its frame is read differently by loaders
    crossing = b"\x80\x04\x95\x04\x00\x00\x00\x00\x00\x00\x00cos\nsystem\n)R."
    w = walk(crossing)
    assert names(w) == ["os.system"] and w.error is not None and "FRAME" in w.error
    # a STOP leaving bytes of its frame unread: where the next pickle starts is ambiguous
    hidden = b"\x80\x04\x95\x0f\x00\x00\x00\x00\x00\x00\x00K\x01.cos\nsystem\n."
    w = walk(hidden)
    assert w.stopped and w.end == 14 and "next pickle" in w.error
    assert "os.system" in pickle_globals(hidden)


def test_persistent_ids() -> None:
    w = walk(b"Pabc\n.")
    assert w.ok and w.persistent_ids == 1
    w = walk(b"\x80\x02X\x03\x00\x00\x00abcQ]\x94Q\x86.")
    assert w.ok and w.persistent_ids == 2


@pytest.mark.parametrize(
    ("data", "message", "offset"),
    [
        (b"", "without a STOP", 0),
        (b"K\x01", "without a STOP", 2),
        (b"\x80\x05\xff.", "unknown opcode 0xff", 2),
        (b"\x80\x06N.", "unsupported pickle protocol 6", 0),
        (b"N0R.", "stack underflow at REDUCE", 2),
        (b"Nt.", "could not find MARK at TUPLE", 1),
        (b"N(.", "stack underflow at STOP", 2),
        (b"(K\x01d.", "odd number of items at DICT", 3),
        (b"h\x05.", "memo key 5 not found at BINGET", 0),
        (b"Np-1\n.", "negative PUT argument", 1),
        (b"Ng1x\n.", "not an integer", 1),
        (b"cos\nsystem", "newline-terminated", 0),
        (b"c\nsystem\n.", "empty module or name", 0),
        (b"cos\xff\nsystem\n.", "not utf-8", 0),
        (b"\x8b\xff\xff\xff\xff.", "negative byte count", 0),
        (b"I\n.", "empty argument at INT", 0),
        (b"\x8c\x05ab", "SHORT_BINUNICODE at offset 0 runs past the end", 0),
        (b"\x80\x04J\x01\x02", "BININT at offset 2 runs past the end", 2),
    ],
)
def test_malformed_streams(data: bytes, message: str, offset: int) -> None:
    w = walk(data)
    assert not w.stopped and message in w.error and w.error_offset == offset, w.error


def test_partial_last_line_still_imports_with_the_pure_python_unpickler() -> None:
    # pickle._Unpickler's readline returns a partial last line and [:-1] cuts it: it
    # imports module "o" for b"cos"
    w = walk(b"cos")
    assert names(w) == ["o."] and not w.stopped
    w = walk(b"cos\nsystemX")
    assert names(w) == ["os.system"] and not w.stopped


def test_walk_speed_on_a_big_dict() -> None:
    data = pickle.dumps({f"key{i}": i for i in range(300_000)}, protocol=4)
    t0 = time.perf_counter()
    w = walk(data)
    elapsed = time.perf_counter() - t0
    assert w.ok and w.globals == []
    assert elapsed < 3.0, elapsed  # about 0.15 s on the development machine


# ------------------------------------------------- differential test against CPython
class _Dummy:
    def __init__(self, *a: object, **k: object) -> None:
        pass

    def __setstate__(self, state: object) -> None:
        pass

    def extend(self, items: object) -> None:
        pass

    def append(self, item: object) -> None:
        pass

    def __setitem__(self, key: object, value: object) -> None:
        pass

    def add(self, item: object) -> None:
        pass


def _recording(base: type) -> type:
    class Recording(base):  # type: ignore[misc, valid-type]
        """Imports nothing: every global resolves to _Dummy."""

        def __init__(self, f: io.BytesIO) -> None:
            super().__init__(f, buffers=iter([bytearray(b"x")] * 20))
            self.found: list[tuple[str, str]] = []

        def find_class(self, module: str, name: str) -> type:
            self.found.append((module, name))
            if not module or not name:
                raise pickle.UnpicklingError("empty")
            return _Dummy

        def persistent_load(self, pid: object) -> object:
            return _Dummy()

    return Recording


class _Gen:
    """Small, well-bounded random pickle programs (memo keys < 8, payloads < 8 bytes)."""

    MODS = ("m1", "pkg.sub", "__builtin__", "copy_reg")
    NAMES = ("f", "A.B", "eval", "_reconstructor")

    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    def string(self, s: str) -> bytes:
        b = s.encode()
        return self.r.choice(
            [
                b"\x8c" + bytes([len(b)]) + b,
                b"X" + struct.pack("<I", len(b)) + b,
                b"\x8d" + struct.pack("<Q", len(b)) + b,
                b"U" + bytes([len(b)]) + b,
                b"S'" + b + b"'\n",
                b"V" + b + b"\n",
            ]
        )

    def put(self) -> bytes:
        k = self.r.randrange(8)
        return self.r.choice([b"\x94", b"q" + bytes([k]), b"r" + struct.pack("<I", k), b"p%d\n" % k])

    def get(self) -> bytes:
        k = self.r.randrange(8)
        return self.r.choice([b"h" + bytes([k]), b"j" + struct.pack("<I", k), b"g%d\n" % k])

    def atom(self) -> bytes:
        r = self.r
        return r.choice(
            [
                b"N",
                b"\x88",
                b"}",
                b"]",
                b")",
                b"\x8f",
                b"K\x07",
                b"J\x01\x00\x00\x00",
                b"I5\n",
                b"L5L\n",
                b"F1.5\n",
                b"\x8a\x01\x05",
                b"C\x02bb",
                b"\x8e\x01\x00\x00\x00\x00\x00\x00\x00b",
                b"\x96\x00\x00\x00\x00\x00\x00\x00\x00",
                b"Pid\n",
                self.get(),
                self.string(r.choice(self.MODS + self.NAMES)),
            ]
        )

    def glob(self) -> bytes:
        r = self.r
        m, n = r.choice(self.MODS), r.choice(self.NAMES)
        c = r.randrange(3)
        if c == 0:
            return b"c%s\n%s\n" % (m.encode(), n.encode())
        if c == 1:
            return self.string(m) + self.put() + self.string(n) + b"\x93"
        return self.value(2) + self.value(2) + b"\x93"

    def value(self, depth: int) -> bytes:
        r = self.r
        if depth > 3:
            return self.atom()
        v = lambda: self.value(depth + 1)  # noqa: E731
        c = r.randrange(14)
        if c < 4:
            return self.atom()
        if c == 4:
            return self.glob()
        if c == 5:
            return b"(" + b"".join(v() for _ in range(r.randint(0, 3))) + r.choice([b"t", b"l", b"\x91", b"d"])
        if c == 6:
            k = r.randint(1, 3)
            return b"".join(v() for _ in range(k)) + bytes([0x84 + k])
        if c == 7:
            return self.glob() + v() + b"R"
        if c == 8:
            return v() + v() + b"b"
        if c == 9:
            return self.glob() + v() + r.choice([b"\x81", v() + b"\x92"])
        if c == 10:
            return b"(" + self.glob() + v() + b"o"
        if c == 11:
            m, n = r.choice(self.MODS), r.choice(self.NAMES)
            return b"(" + v() + b"i%s\n%s\n" % (m.encode(), n.encode())
        if c == 12:
            return v() + self.put() + r.choice([b"", b"0" + self.get(), b"2" + b"0"])
        return r.choice([b"]", b"}", b"\x8f"]) + b"(" + b"".join(v() for _ in range(r.randint(0, 4))) + r.choice([b"e", b"u", b"\x90"])

    def program(self) -> bytes:
        r = self.r
        head = b"\x80" + bytes([r.choice([2, 3, 4, 5])]) if r.random() < 0.7 else b""
        body = self.value(0) + b"".join(r.choice([b"2", b"0", b"(", b"1", b"a", b"s", b"Q", b"\x98", b"e", self.put()]) for _ in range(r.randint(0, 2)))
        if r.random() < 0.3:
            body = b"\x95" + struct.pack("<Q", len(body) + 1) + body
        return head + body + b"."


def test_differential_against_cpython_unpicklers() -> None:
    """Whatever CPython's C or pure-Python unpickler imports, the walk names; when it loads
    the stream, the walk reaches the same STOP without error."""
    loaders = {"C": _recording(pickle.Unpickler), "py": _recording(pickle._Unpickler)}  # type: ignore[attr-defined]
    gen = _Gen(3)
    loaded = 0
    for _ in range(1500):
        data = gen.program()
        w = walk(data)
        resolved = {g.raw or g.name for g in w.globals if g.resolved}
        for loader in loaders.values():
            f = io.BytesIO(data)
            u = loader(f)
            try:
                u.load()
                ok = True
            except Exception:
                ok = False
            if w.error is None:
                missed = [f"{m}.{n}" for m, n in u.found if m and f"{m}.{n}" not in resolved]
                assert not missed or any(not g.resolved for g in w.globals), (data, missed)
            if ok:
                loaded += 1
                assert w.ok and w.end == f.tell(), (data, w)
    assert loaded > 300


def test_getattr_of_a_global_is_named() -> None:
    """``getattr(pandas.DataFrame, "to_pickle")``: the attribute is reported like a global,
    and a call of it has it as its target."""
    def s4(x: str) -> bytes:
        return b"\x8c" + bytes([len(x)]) + x.encode()

    data = (
        b"\x80\x04" + s4("builtins") + s4("getattr") + b"\x93" + s4("pandas") + s4("DataFrame") + b"\x93"
        + s4("to_pickle") + b"\x86R" + s4("x") + b"\x85R."
    )
    w = walk(data)
    assert w.ok
    assert [(g.name, g.opcode) for g in w.globals][-1] == ("pandas.DataFrame.to_pickle", "GETATTR")
    assert w.calls[-1].target == "pandas.DataFrame.to_pickle"
