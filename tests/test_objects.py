"""Generic objects: instances of classes without a handler of their own, saved through their
pickling protocol (never pickle itself), and classes and functions saved by name.

Covers the reductions pickle knows (``__dict__``, ``__slots__``, ``__getstate__``/
``__setstate__``, ``__reduce__``/``__reduce_ex__`` with args, state, list and dict items,
``__getnewargs__``/``__getnewargs_ex__``), dataclasses, enums, named tuples, subclasses of
builtins, sharing and cycles; the opt-in ``__amber_state__``; ``@amber.handler`` and
handler plugins from entry points; ``amber.explain``/``check``/``copy``; and a hypothesis
round trip of random object graphs. The trust side of loading is in tests/test_trust.py.

The classes live in tests/_objects_mod.py, so they have importable names. Tests marked
``xfail(strict=True, reason="BUG: ...")`` document bugs found in amber.
"""

from __future__ import annotations

import functools
import operator
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import _objects_mod as m
import amber
from _hostile import parse
from amber._node import parse_tag
from amber.handlers import REGISTRY

MOD = m.MODULE
TRUSTED = [MOD]


def roundtrip(obj: Any, trusted: list[str] | None = TRUSTED) -> Any:
    data = amber.dumps(obj)
    return amber.loads(data, trusted=trusted)


def needs_of(obj: Any) -> list[str]:
    return amber.inspect(amber.dumps(obj)).needs


def tags_in(data: bytes) -> set[tuple[str, int]]:
    """Every (tag name, version) in a file's node tree."""
    out: set[tuple[str, int]] = set()

    def walk(x: Any) -> None:
        if isinstance(x, list):
            if x and isinstance(x[0], bytes):
                t = parse_tag(x[0])
                out.add((t.name, t.version))
            for v in x:
                walk(v)
        elif isinstance(x, dict):
            for v in x.values():
                walk(v)

    walk(parse(data).tree())
    return out


@pytest.fixture
def registry() -> Iterator[Any]:
    """The handler registry, restored after the test (handlers, fallbacks, plugin flag)."""
    saved = (dict(REGISTRY.by_type), dict(REGISTRY.by_tag), dict(REGISTRY._fallbacks), REGISTRY._plugins_loaded)
    try:
        yield REGISTRY
    finally:
        REGISTRY.by_type.clear()
        REGISTRY.by_type.update(saved[0])
        REGISTRY.by_tag.clear()
        REGISTRY.by_tag.update(saved[1])
        REGISTRY._fallbacks.clear()
        REGISTRY._fallbacks.update(saved[2])
        REGISTRY._plugins_loaded = saved[3]


# ---------------------------------------------------------------------------------------
# round trips of generic objects
# ---------------------------------------------------------------------------------------

CASES: dict[str, Any] = {
    "dict-attrs": lambda: m.Point(1, [2, {"k": (3, 4)}]),
    "empty": lambda: m.Empty(),
    "slots": lambda: m.Slotted(1, "b"),
    "slots-and-dict": lambda: m.SlotsAndDict([1], {"x": 2}),
    "inherited-slots": lambda: m.InheritedSlots(1, 2.5, None),
    "getstate-setstate-tuple": lambda: m.TupleState(7, "seven"),
    "reduce-args-state": lambda: m.Reduced([1, 2], {"b": 1}),
    "newargs": lambda: m.NewArgs("key"),
    "newargs-ex-kwargs": lambda: m.NewArgsEx("key", scale=2.5),
    "reduce-ex-listitems": lambda: m.ReducedList([1, [2], m.Point(0, 0)], label="L"),
    "reduce-dictitems": lambda: m.ReducedDict({"a": 1, 2: [3], (4, 5): m.Point(1, 1)}, label="D"),
    "dataclass": lambda: m.DC("n", [1, 2], m.DC("child")),
    "frozen-dataclass": lambda: m.FrozenDC(1, (2, 3)),
    "slots-dataclass": lambda: m.SlotsDC(1, [m.SlotsDC(2)]),
    "frozen-slots-dataclass": lambda: m.FrozenSlotsDC(1, "q"),
    "namedtuple": lambda: m.Pair(1, [2, m.Pair(3, 4)]),
    "typed-namedtuple": lambda: m.Typed(3),
    "list-subclass": lambda: m.MyList([1, "a", m.Point(1, 2)]),
    "dict-subclass": lambda: m.MyDict(a=1, b=[2]),
    "set-subclass": lambda: m.MySet({1, "x", (2, 3)}),
    "int-subclass": lambda: m.MyInt(5),
    "big-int-subclass": lambda: m.MyInt(2**100),
    "str-subclass": lambda: m.MyStr("text"),
    "nested-class": lambda: m.Outer.Inner(m.Outer.Inner(1)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_generic_roundtrip(name: str) -> None:
    obj = CASES[name]()
    data = amber.dumps(obj)
    needs = amber.inspect(data).needs
    assert needs and all(n.startswith(MOD + ".") for n in needs)
    with pytest.raises(amber.UntrustedTypeError) as ei:
        amber.loads(data)
    assert ei.value.untrusted == tuple(needs)
    out = amber.loads(data, trusted=TRUSTED)
    assert type(out) is type(obj)
    assert out == obj
    assert out is not obj
    if isinstance(obj, (list, dict, set)):
        assert getattr(out, "__dict__", {}) == getattr(obj, "__dict__", {})
    # exactly the declared names are enough
    assert amber.loads(data, trusted=needs) == obj


def test_slots_kept_exactly() -> None:
    out = roundtrip(m.InheritedSlots(1, 2, 3))
    assert (out.a, out.b, out.c) == (1, 2, 3) and not hasattr(out, "__dict__")
    out = roundtrip(m.PartlySet(1))
    assert out.a == 1 and not hasattr(out, "b")  # an unset slot stays unset
    out = roundtrip(m.SlotsAndDict(1, 2))
    assert out.a == 1 and out.__dict__ == {"extra": 2}


def test_getstate_setstate_are_used() -> None:
    obj = m.WithState([1, 2, 3])
    obj.cache = -1  # __getstate__ leaves it out, __setstate__ recomputes it
    out = roundtrip(obj)
    assert out.values == [1, 2, 3] and out.cache == 6 and out.restored is True


def test_reduce_to_a_factory_function() -> None:
    obj = m.Widget("w", 3)
    data = amber.dumps(obj)
    assert amber.inspect(data).needs == [f"{MOD}.make_widget"]
    out = amber.loads(data, trusted=[f"{MOD}.make_widget"])
    assert (out.name, out.size, out.via_factory) == ("w", 3, True)  # made by the factory


def test_newargs_reach_new() -> None:
    out = roundtrip(m.NewArgs("k"))
    assert out.made_by_new and out.key == "k" and out.extra == ["k", "k"]
    out = roundtrip(m.NewArgsEx("k", scale=0.5))
    assert (out.key, out.scale) == ("k", 0.5)
    node = parse(amber.dumps(m.NewArgsEx("k", scale=0.5))).tree()
    assert parse_tag(node[0]).name == "object" and node[1] == f"{MOD}.NewArgsEx"


def test_subclass_attributes_kept() -> None:
    for obj in (m.MyList([1]), m.MyDict(a=1), m.MySet({1}), m.MyInt(3), m.MyStr("s")):
        obj.unit = ["m"]
        out = roundtrip(obj)
        assert type(out) is type(obj) and out == obj and out.unit == ["m"]
    assert roundtrip(m.MyInt(-(2**70))) == -(2**70)


def test_enums_are_the_same_members() -> None:
    obj = [m.Color.RED, m.Color.GREEN, m.Level.HIGH, m.Perm.R | m.Perm.W, m.Perm(0), {m.Level.LOW: m.Color.RED}]
    out = roundtrip(obj)
    assert out[0] is m.Color.RED and out[1] is m.Color.GREEN and out[2] is m.Level.HIGH
    assert out[3] == m.Perm.R | m.Perm.W and m.Perm.W in out[3] and m.Perm.X not in out[3]
    assert type(out[3]) is m.Perm and out[4] == m.Perm(0) and type(out[4]) is m.Perm
    assert out[5] == {m.Level.LOW: m.Color.RED} and type(next(iter(out[5]))) is m.Level


def test_namedtuples() -> None:
    obj = {"p": m.Pair(1, 2), "t": m.Typed(5, "z"), "key": {m.Pair(1, 2): "v"}}
    out = roundtrip(obj)
    assert out == obj and type(out["p"]) is m.Pair and type(out["t"]) is m.Typed
    assert out["p"].a == 1 and out["t"].y == "z"
    assert type(next(iter(out["key"]))) is m.Pair


def test_shared_references_keep_identity() -> None:
    p = m.Point(1, 2)
    shared_list = [p]
    d = m.DC("d", [1])
    obj = {"a": p, "b": [p, p], "c": m.Point(p, shared_list), "l": shared_list, "d1": d, "d2": d, "v": d.values}
    out = roundtrip(obj)
    assert out["a"] is out["b"][0] is out["b"][1] is out["c"].x is out["l"][0]
    assert out["c"].y is out["l"]
    assert out["d1"] is out["d2"] and out["v"] is out["d1"].values
    assert out["a"] is not p


def test_cycles_through_attributes() -> None:
    a = m.Point(1, None)
    a.me = a
    b = m.Point(2, a)
    a.y = b  # a -> b -> a
    lst = m.MyList()
    lst.append(lst)
    lst.owner = a
    dct = m.MyDict()
    dct["self"] = dct
    dc = m.DC("dc")
    dc.child = dc
    s = m.SlotsDC(1)
    s.b = [s]
    f = m.FrozenDC(1)
    object.__setattr__(f, "b", (f,))  # a cycle through a frozen dataclass and a tuple in its state
    out = roundtrip([a, b, lst, dct, dc, s])
    oa, ob, olst, odct, odc, os_ = out
    assert oa.me is oa and oa.y is ob and ob.y is oa and ob.x == 2
    assert olst[0] is olst and olst.owner is oa
    assert odct["self"] is odct
    assert odc.child is odc
    assert os_.b[0] is os_


def test_cycle_through_constructor_arguments_is_refused() -> None:
    r = m.Reduced(None)
    r.a = r  # __reduce__ passes a as the argument that creates r
    with pytest.raises(amber.EncodeError, match="cycle|refers back"):
        amber.dumps({"r": r})


def test_objects_referencing_their_class() -> None:
    p = m.Point(1, 2)
    p.kind = m.Point
    p.kinds = [m.Point, m.DC, int, np.ndarray]
    out = roundtrip(p)
    assert out.kind is m.Point and type(out) is m.Point
    assert out.kinds == [m.Point, m.DC, int, np.ndarray] and out.kinds[1] is m.DC


def test_classes_and_functions_as_values() -> None:
    obj = {"cls": m.Point, "nested": m.Outer.Inner, "fn": m.square, "ufunc": np.log1p, "np": np.mean, "b": int}
    data = amber.dumps(obj)
    assert amber.inspect(data).needs == sorted(
        [f"{MOD}.Outer.Inner", f"{MOD}.Point", f"{MOD}.square", "builtins.int", "numpy.log1p", "numpy.mean"]
    )
    assert ("global", 1) in tags_in(data)
    out = amber.loads(data, trusted=TRUSTED)
    for k in obj:
        assert out[k] is obj[k]
    assert out["fn"](3) == 9 and out["ufunc"](0.0) == 0.0
    # NumPy ufuncs need no trust at all
    ufuncs = [np.log1p, np.exp, np.add, np.sqrt]
    assert amber.loads(amber.dumps(ufuncs)) == ufuncs


def test_singleton_reduced_to_a_name() -> None:
    data = amber.dumps([m.SENTINEL, m.SENTINEL])
    assert amber.inspect(data).needs == [f"{MOD}.SENTINEL"]
    out = amber.loads(data, trusted=[f"{MOD}.SENTINEL"])
    assert out[0] is m.SENTINEL and out[1] is m.SENTINEL


@pytest.mark.parametrize("obj", [m._Stray(), m._Impostor()])
def test_singleton_name_must_give_the_object_back(obj: Any) -> None:
    """Like pickle, dump checks that the name a reduction returns imports back to the object
    (before the fix, the file was written and its load failed or returned another object)."""
    with pytest.raises(amber.UnsupportedTypeError, match="does not give it back") as ei:
        amber.dumps({"s": obj})
    assert ei.value.path == "root['s']"


def test_a_handler_less_subclass_of_a_handled_type_is_generic() -> None:
    """A class with __amber_state__ but no __amber_from_state__ is saved generically."""
    out = roundtrip(m.HalfOpted([1]))
    assert type(out) is m.HalfOpted and out.v == [1]


def test_objects_inside_numpy_object_arrays_and_containers() -> None:
    arr = np.empty(3, dtype=object)
    arr[:] = [m.Point(1, 2), m.Color.RED, m.square]
    obj = {"arr": arr, "t": (m.DC("x"), frozenset({m.Pair(1, 2)})), "deep": [[[[m.Slotted(1, 2)]]]]}
    out = roundtrip(obj)
    assert out["arr"][0] == m.Point(1, 2) and out["arr"][1] is m.Color.RED and out["arr"][2] is m.square
    assert out["t"] == obj["t"] and out["deep"] == obj["deep"]


def test_manifest_types_list_the_tags_written() -> None:
    data = amber.dumps([m.Color.RED, m.SENTINEL, m.Point(1, 2)])
    written = {name for name, _ in tags_in(data)} - {"list", "list.plain", "map", "map.plain", "ref", "seg"}
    assert written == {"reduce", "global", "object"}
    assert set(amber.inspect(data).types) == written


# ---------------------------------------------------------------------------------------
# opt-in: __amber_state__ / __amber_from_state__
# ---------------------------------------------------------------------------------------


def test_amber_state_opt_in() -> None:
    obj = {"a": m.Opted([1.0, 2.0], "model"), "b": None}
    obj["b"] = obj["a"]
    data = amber.dumps(obj)  # the unsavable cache is left out by __amber_state__
    info = amber.inspect(data)
    assert info.types == ["state"] and info.needs == [f"{MOD}.Opted"] and info.untrusted == [f"{MOD}.Opted"]
    with pytest.raises(amber.UntrustedTypeError) as ei:
        amber.loads(data)
    assert ei.value.untrusted == (f"{MOD}.Opted",)
    out = amber.loads(data, trusted=[f"{MOD}.Opted"])
    assert type(out["a"]) is m.Opted and out["a"].weights == [1.0, 2.0] and out["a"].name == "model"
    assert out["b"] is out["a"]  # shared once
    assert ("state", 1) in tags_in(data) and ("object", 1) not in tags_in(data)


# ---------------------------------------------------------------------------------------
# @amber.handler
# ---------------------------------------------------------------------------------------


def _point_handler(name: str | None = None, version: int = 1) -> Any:
    @amber.handler(m.HPoint, name=name, version=version)
    class PointHandler:
        calls = 0

        def encode(self, p: m.HPoint) -> Any:
            return {"x": p.x, "y": p.y}

        def decode(self, state: Any) -> m.HPoint:
            PointHandler.calls += 1
            return m.HPoint(state["x"], state["y"])

    return PointHandler


def test_user_handler_roundtrip(registry: Any) -> None:
    h = _point_handler(name="tests.objects.Point")
    p = m.HPoint(1.5, -2)
    obj = {"p": p, "again": p, "list": [m.HPoint(3, 4)]}
    data = amber.dumps(obj)
    info = amber.inspect(data)
    assert "tests.objects.Point" in info.types
    assert info.needs == [] and info.untrusted == []  # a registered handler needs no trust
    assert ("tests.objects.Point", 1) in tags_in(data)
    out = amber.loads(data)
    assert type(out["p"]) is m.HPoint and (out["p"].x, out["p"].y) == (1.5, -2)
    assert out["again"] is out["p"] and h.calls == 2
    # a subclass is not covered by the handler: saved generically
    data = amber.dumps(m.HPoint2(1, 2))
    assert amber.inspect(data).needs == [f"{MOD}.HPoint2"]


def test_user_handler_default_name_and_version_written(registry: Any) -> None:
    _point_handler(version=3)
    data = amber.dumps(m.HPoint(1, 2))
    assert amber.inspect(data).types == [f"{MOD}.HPoint"]
    assert (f"{MOD}.HPoint", 3) in tags_in(data)
    node = parse(data).tree()
    assert node[0] == f"{MOD}.HPoint@3".encode()
    assert vars(amber.loads(data)) == {"x": 1, "y": 2}


def test_reregistering_replaces(registry: Any) -> None:
    _point_handler(name="tests.objects.Re")

    @amber.handler(m.HPoint, name="tests.objects.Re")
    class Again:
        def encode(self, p: m.HPoint) -> Any:
            return [p.x, p.y, "again"]

        def decode(self, state: Any) -> m.HPoint:
            assert state[2] == "again"
            return m.HPoint(-state[0], -state[1])

    out = amber.loads(amber.dumps(m.HPoint(1, 2)))
    assert (out.x, out.y) == (-1, -2)


def test_file_with_an_unregistered_handler(registry: Any) -> None:
    _point_handler(name="tests.objects.Gone")
    data = amber.dumps({"p": m.HPoint(1, 2)})
    registry.by_tag.pop(("tests.objects.Gone", 1))
    registry.by_type.pop(m.HPoint)
    with pytest.raises(amber.FormatError, match="tests.objects.Gone") as ei:
        amber.loads(data)
    assert not isinstance(ei.value, amber.UntrustedTypeError)
    # registering it again makes the file load
    _point_handler(name="tests.objects.Gone")
    assert amber.loads(data)["p"].y == 2


@pytest.mark.parametrize(
    "kw",
    [
        {"name": "Point"},  # not dotted
        {"name": "1pkg.Point"},
        {"name": "pkg..Point"},
        {"name": "pkg.Point-2"},
        {"name": "pkg.Point@2"},
        {"name": "map.Point"},  # reserved first part
        {"name": "object.Point"},
        {"name": "reduce.x"},
        {"name": "pkg.Point", "version": 0},
        {"name": "pkg.Point", "version": 70000},
        {"name": "pkg.Point", "version": "1"},
    ],
)
def test_invalid_handler_names(kw: dict[str, Any], registry: Any) -> None:
    with pytest.raises(amber.AmberError):
        _point_handler(**kw)
    assert m.HPoint not in registry.by_type


def test_handler_needs_encode_and_decode(registry: Any) -> None:
    class OnlyEncode:
        def encode(self, p: Any) -> Any:
            return 1

    with pytest.raises(amber.AmberError, match="decode"):
        amber.handler(m.HPoint, name="tests.objects.Half")(OnlyEncode)


def test_handler_cannot_replace_a_builtin_handler(registry: Any) -> None:
    amber.dumps(np.zeros(1))  # the NumPy handlers are registered lazily
    with pytest.raises(amber.AmberError, match="namespace"):
        amber.handler(m.HPoint, name="numpy.ndarray")(type("H", (), {"encode": lambda s, o: 1, "decode": lambda s, x: x}))
    # also before pandas' handlers are first registered (they would then fail to register)
    with pytest.raises(amber.AmberError, match="namespace"):
        amber.handler(m.HPoint, name="pandas.DataFrame")
    with pytest.raises(amber.AmberError, match="already registered"):
        amber.handler(m.HPoint, name="collections.OrderedDict")(type("H", (), {"encode": lambda s, o: 1, "decode": lambda s, x: x}))
    assert amber.loads(amber.dumps(np.arange(3))).tolist() == [0, 1, 2]


class _V1:
    def encode(self, o: m.HVersioned) -> Any:
        return o.value

    def decode(self, state: Any) -> m.HVersioned:
        return m.HVersioned(state)  # files of v1 had no unit: the default "m"


class _V2:
    def encode(self, o: m.HVersioned) -> Any:
        return {"value": o.value, "unit": o.unit}

    def decode(self, state: Any) -> m.HVersioned:
        return m.HVersioned(state["value"], state["unit"])


def test_handler_versions_old_files_still_load(registry: Any) -> None:
    amber.handler(m.HVersioned, name="tests.objects.V", version=1)(_V1)
    old = amber.dumps(m.HVersioned(3, "cm"))
    assert ("tests.objects.V", 1) in tags_in(old)
    amber.handler(m.HVersioned, name="tests.objects.V", version=2)(_V2)
    new = amber.dumps(m.HVersioned(3, "cm"))
    assert ("tests.objects.V", 2) in tags_in(new)
    assert vars(amber.loads(new)) == {"value": 3, "unit": "cm"}
    assert vars(amber.loads(old)) == {"value": 3, "unit": "m"}  # decoded by v1
    # without the v1 decoder, the old file names the handler it needs
    registry.by_tag.pop(("tests.objects.V", 1))
    with pytest.raises(amber.FormatError, match="tests.objects.V"):
        amber.loads(old)


def test_handler_registering_the_old_version_last_keeps_writing_the_new(registry: Any) -> None:
    amber.handler(m.HVersioned, name="tests.objects.W", version=2)(_V2)
    amber.handler(m.HVersioned, name="tests.objects.W", version=1)(_V1)  # to read old files
    data = amber.dumps(m.HVersioned(3, "cm"))
    assert vars(amber.loads(data)) == {"value": 3, "unit": "cm"}


# ---------------------------------------------------------------------------------------
# handler plugins from entry points
# ---------------------------------------------------------------------------------------

_PLUGIN = '''
from amber.handlers import Handler

class FakeThing:
    def __init__(self, v):
        self.v = v

class FakeHandler(Handler):
    handler_id = "fakeplugin.thing"
    types = (FakeThing,)

    def encode(self, obj, ctx):
        return [self.tag, ctx.encode(obj.v)]

    def decode(self, node, ctx):
        return FakeThing(ctx.decode(node[1]))
'''


def _install(site: Path, dist: str, module: str, source: str, entry: str) -> None:
    info = site / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[amber.handlers]\n{entry}\n")
    (site / f"{module}.py").write_text(textwrap.dedent(source))


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry: Any) -> Iterator[tuple[Path, str]]:
    """A folder on sys.path where fake distributions are installed; the registry will look
    for plugins again. Yields (folder, unique suffix for module names)."""
    suffix = uuid.uuid4().hex[:8]
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    registry._plugins_loaded = False
    before = set(sys.modules)
    yield folder, suffix
    for name in set(sys.modules) - before:
        if suffix in name:
            del sys.modules[name]


def test_entry_point_plugin_is_used(site: tuple[Path, str], registry: Any) -> None:
    folder, suffix = site
    mod = f"fakeplugin_{suffix}"
    _install(folder, f"fakeplugin{suffix}", mod, _PLUGIN, f"fake = {mod}:FakeHandler")
    assert mod not in sys.modules
    import importlib

    thing = importlib.import_module(mod).FakeThing([1, 2])
    data = amber.dumps({"t": thing})
    assert registry._plugins_loaded
    info = amber.inspect(data)
    assert info.types == ["fakeplugin.thing"] and info.needs == []  # the plugin's handler, not the generic one
    out = amber.loads(data)
    assert type(out["t"]).__name__ == "FakeThing" and out["t"].v == [1, 2]

    # A fresh process (simulated): the handler is not registered until a file needs it.
    registry.by_tag.pop(("fakeplugin.thing", 1))
    registry.by_type.pop(type(thing))
    registry._plugins_loaded = False
    out = amber.loads(data)
    assert out["t"].v == [1, 2] and ("fakeplugin.thing", 1) in registry.by_tag


def test_broken_plugin_warns_and_breaks_nothing(site: tuple[Path, str], registry: Any) -> None:
    folder, suffix = site
    good = f"fakeplugin_{suffix}"
    _install(folder, f"fakeplugin{suffix}", good, _PLUGIN, f"fake = {good}:FakeHandler")
    bad = f"brokenplugin_{suffix}"
    _install(folder, f"brokenplugin{suffix}", bad, "raise RuntimeError('boom at import')\n", f"broken = {bad}:Handler")
    missing = f"missingplugin_{suffix}"
    _install(folder, f"missingplugin{suffix}", missing, "X = 1\n", f"missing = {missing}:NoSuchName")
    import importlib

    thing = importlib.import_module(good).FakeThing("v")
    with pytest.warns(amber.AmberWarning) as record:
        data = amber.dumps([thing, m.Point(1, 2), np.arange(3)])
    messages = [str(w.message) for w in record]
    assert any("broken" in s and "boom at import" in s for s in messages)
    assert any("missing" in s and "NoSuchName" in s for s in messages)
    assert amber.inspect(data).types == ["fakeplugin.thing", "numpy.ndarray", "object"]
    out = amber.loads(data, trusted=TRUSTED)  # no second warning: plugins are looked up once
    assert out[0].v == "v" and out[1] == m.Point(1, 2) and out[2].tolist() == [0, 1, 2]


# ---------------------------------------------------------------------------------------
# explain, check, copy
# ---------------------------------------------------------------------------------------


def test_explain_lists_every_problem_with_its_path() -> None:
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    pipe = Pipeline([("f", FunctionTransformer(lambda x: x)), ("s", StandardScaler())])
    obj = {
        "a": pipe,
        "g": (i for i in range(3)),
        "p": operator.attrgetter("x"),
        "ok": [1, np.log1p, np.zeros(2)],
        "u": [m.Point(1, 2), m.Point(3, 4)],
        "fn": m.square,
    }
    problems = amber.explain(obj)
    by_path = {p.path: p for p in problems}
    assert set(by_path) == {"root['a'].steps[0][1].func", "root['g']", "root['p']", "root['u'][0]", "root['fn']"}
    assert by_path["root['a'].steps[0][1].func"].kind == "unsupported"
    assert "lambda" in by_path["root['a'].steps[0][1].func"].reason
    assert by_path["root['g']"].kind == "unsupported" and "generator" in by_path["root['g']"].type
    assert by_path["root['p']"].kind == "unsupported" and "operator.attrgetter" in by_path["root['p']"].reason
    assert by_path["root['u'][0]"].kind == "untrusted" and by_path["root['u'][0]"].type == f"{MOD}.Point"
    assert f"trusted=['{MOD}.Point']" in by_path["root['u'][0]"].remedy
    assert by_path["root['fn']"].kind == "untrusted" and by_path["root['fn']"].type == f"{MOD}.square"
    text = str(problems)
    assert len(text.splitlines()) == 5
    for path in by_path:
        assert path in text
    assert not amber.check(obj)
    # the same object, once its unsupported parts are gone
    del obj["a"], obj["g"], obj["p"]
    assert [p.kind for p in amber.explain(obj)] == ["untrusted", "untrusted"]
    assert amber.explain(obj, trusted=TRUSTED) == []
    assert amber.check(obj, trusted=TRUSTED) and not amber.check(obj)
    assert amber.check(obj, trusted=[f"{MOD}.Point", f"{MOD}.square"])


def test_explain_clean_data() -> None:
    for obj in ({"x": [1, 2.0, "s", None], "a": np.arange(3)}, [np.log1p, np.mean], (1, 2), {}):
        problems = amber.explain(obj)
        assert problems == [] and not problems
        assert "nothing to report" in str(problems)
        assert amber.check(obj)


def test_explain_denied_callables_are_not_offered_trust() -> None:
    problems = amber.explain({"b": m.Point(1, 2).__eq__, "e": m.EvalReduce()})
    assert {p.path for p in problems} == {"root['b']", "root['e']"}
    for p in problems:
        assert p.kind == "unsupported" and "never loads" in p.reason and "trusted=" not in str(p)


def test_copy_is_deep_and_keeps_sharing() -> None:
    p = m.Point(1, [1, 2])
    d = m.DC("x", [3])
    d.child = d
    obj = {"a": p, "b": [p, p.y], "d": d, "fn": m.square, "e": m.Color.RED, "arr": np.arange(3)}
    c = amber.copy(obj)  # the object's own classes and functions are trusted for the copy
    assert c["a"] == p and c["a"] is not p and c["a"].y is not p.y
    assert c["b"][0] is c["a"] and c["b"][1] is c["a"].y
    assert c["d"].child is c["d"] and c["d"] is not d and c["d"].values == [3]
    assert c["fn"] is m.square and c["e"] is m.Color.RED
    assert np.array_equal(c["arr"], obj["arr"]) and c["arr"] is not obj["arr"]
    c["a"].y.append(9)
    assert p.y == [1, 2]


def test_copy_refuses_what_cannot_be_saved() -> None:
    with pytest.raises(amber.UnsupportedTypeError, match="operator.attrgetter") as ei:
        amber.copy({"k": operator.attrgetter("x")})
    assert ei.value.path == "root['k']"
    with pytest.raises(amber.UnsupportedTypeError, match="lambda"):
        amber.copy([lambda: 1])


# ---------------------------------------------------------------------------------------
# hypothesis: random object graphs with sharing and cycles
# ---------------------------------------------------------------------------------------

_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.text(max_size=4),
    st.binary(max_size=4),
)


@st.composite
def graphs(draw: Any) -> Any:
    nodes = [m.TreeNode() for _ in range(draw(st.integers(1, 6)))]
    pool = [[] for _ in range(draw(st.integers(0, 2)))]  # lists shared between nodes
    ref = st.sampled_from(nodes)
    items = [_leaves, ref, st.tuples(_leaves, _leaves), st.lists(st.one_of(_leaves, ref), max_size=3)]
    if pool:
        items.append(st.sampled_from(pool))
    item = st.one_of(*items)
    for lst in pool:
        lst.extend(draw(st.lists(st.one_of(_leaves, ref), max_size=3)))
    for n in nodes:
        n.value = draw(item)
        n.items = draw(st.lists(item, max_size=4))
        n.attrs = draw(st.dictionaries(st.text(max_size=3), item, max_size=3))
    return draw(st.one_of(ref, st.lists(item, min_size=1, max_size=4)))


def assert_isomorphic(a: Any, b: Any, fwd: dict[int, Any], back: dict[int, Any], path: str = "root") -> None:
    """Same values, same types, and the same pattern of sharing (a bijection of objects)."""
    assert type(a) is type(b), path
    if isinstance(a, (m.TreeNode, list, dict)):
        if id(a) in fwd or id(b) in back:
            assert fwd.get(id(a)) is b and back.get(id(b)) is a, f"{path}: sharing differs"
            return
        fwd[id(a)], back[id(b)] = b, a
        assert b is not a, path
    if isinstance(a, m.TreeNode):
        assert_isomorphic(a.value, b.value, fwd, back, path + ".value")
        assert_isomorphic(a.items, b.items, fwd, back, path + ".items")
        assert_isomorphic(a.attrs, b.attrs, fwd, back, path + ".attrs")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_isomorphic(x, y, fwd, back, f"{path}[{i}]")
    elif isinstance(a, dict):
        assert list(a) == list(b), path
        for k in a:
            assert_isomorphic(a[k], b[k], fwd, back, f"{path}[{k!r}]")
    elif isinstance(a, float):
        assert np.float64(a).tobytes() == np.float64(b).tobytes(), path
    else:
        assert a == b, path


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs())
def test_random_object_graphs_roundtrip(root: Any) -> None:
    data = amber.dumps(root, deterministic=True)
    out = amber.loads(data, trusted=[f"{MOD}.TreeNode"])
    assert_isomorphic(root, out, {}, {})
    assert amber.dumps(out, deterministic=True) == data


def test_register_function_form(registry: Any) -> None:
    amber.register(m.HVersioned, encode=lambda o: {"v": 7}, decode=lambda s: ("rebuilt", s["v"]), name="tests.objects.R")
    data = amber.dumps([m.HVersioned(1)])
    assert amber.loads(data) == [("rebuilt", 7)]
    assert "tests.objects.R" in amber.inspect(data).types
    with pytest.raises(amber.AmberError, match="needs a type and two functions"):
        amber.register(m.HVersioned, encode=lambda o: o)


def test_register_handler_class(registry: Any) -> None:
    from amber.handlers import Handler

    class H(Handler):
        handler_id = "tests.objects.RH"
        types = (m.HVersioned,)

        def encode(self, obj: Any, ctx: Any) -> list[Any]:
            return [self.tag, 5]

        def decode(self, node: Any, ctx: Any) -> Any:
            return node[1] * 2

    amber.register(H)
    assert amber.loads(amber.dumps(m.HVersioned(1))) == 10


def test_partial_of_a_trusted_function_round_trips_and_of_an_untrusted_one_needs_trust() -> None:
    p = functools.partial(np.add, 10)
    out = amber.loads(amber.dumps({"p": p, "again": p}))
    assert out["p"](1) == 11 and out["again"] is out["p"] and out["p"].func is np.add
    q = functools.partial(m.square, x=3) if "x" in m.square.__code__.co_varnames else functools.partial(m.square, 3)
    data = amber.dumps(q)
    assert amber.untrusted_types(data) == [f"{MOD}.square"]
    with pytest.raises(amber.UntrustedTypeError):
        amber.loads(data)
    assert amber.loads(data, trusted=[f"{MOD}.square"])() == q()


def test_ordered_dict_instance_attributes_round_trip() -> None:
    import collections

    d = collections.OrderedDict(a=1, b=[2])
    d._metadata = {"": {"version": 1}}  # as torch's state_dict() carries
    d.me = d
    shared = [3]
    d.shared, d["s"] = shared, shared  # numbered in the attributes, referenced from the items
    out = amber.loads(amber.dumps(d))
    assert out == d and out._metadata == {"": {"version": 1}} and out.me is out
    assert out.shared is out["s"]
    assert not hasattr(amber.loads(amber.dumps(collections.OrderedDict(a=1))), "_metadata")


def test_reduce_may_not_call_a_default_trusted_class_that_is_not_rebuilt_by_calling(tmp_path: Path) -> None:
    """torch.nn.Linear(30000, 30000) in a tiny file would allocate 3.6 GB with no trusted=."""
    from _hostile import T, build

    name = "torch.nn.modules.linear.Linear"
    data = build([T("reduce"), name, [T("tuple"), 30000, 30000]], needs=[name])
    with pytest.raises(amber.CorruptFileError, match="not rebuilt by calling it"):
        amber.loads(data)
    # the caller may still allow it by naming the class
    small = build([T("reduce"), name, [T("tuple"), 2, 3]], needs=[name])
    assert amber.loads(small, trusted=[name]).weight.shape == (3, 2)
