"""Tagged JSON (``.json``): every builtin and NumPy case round-trips exactly, plain JSON stays
plain, shared objects and cycles survive, deep nesting works, trust and schemas are checked,
and malformed input gives AmberError subclasses (never a raw KeyError/TypeError/RecursionError).
"""

from __future__ import annotations

import collections
import datetime as dt
import decimal
import json
import math
import struct
import sys
import textwrap
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings

import amber
import amber.testing
from amber.formats._json import describe_json, dumps_json, load_json, looks_like_json
from test_hypothesis import nested
from test_roundtrip import (
    BUILTIN_CASES,
    DTYPES,
    NAN_PAYLOAD,
    NEG_NAN,
    SURROGATE_CASES,
    _nest,
    _unnest,
    assert_same,
    LAYOUTS,
    float_bits,
    layout_array,
)

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


def rt(obj: Any, trusted: tuple[str, ...] = (), **kw: Any) -> Any:
    """dumps_json then load_json (the module functions)."""
    return load_json(dumps_json(obj, **kw), trusted=trusted)[0]


def doc(obj: Any, **kw: Any) -> Any:
    """The parsed JSON document amber writes for ``obj``."""
    return json.loads(dumps_json(obj, **kw))


def data_of(obj: Any, **kw: Any) -> Any:
    d = doc(obj, **kw)
    return d["data"] if isinstance(d, dict) and next(iter(d), None) == "$amber" else d


def has_dollar_keys(x: Any) -> bool:
    if isinstance(x, dict):
        return any(k.startswith("$") for k in x) or any(has_dollar_keys(v) for v in x.values())
    if isinstance(x, list):
        return any(has_dollar_keys(v) for v in x)
    return False


def load_bytes(raw: bytes | str, **kw: Any) -> Any:
    return load_json(raw.encode() if isinstance(raw, str) else raw, **kw)[0]


# ---------------------------------------------------------------------------------------
# every builtin case, through the module and through amber.dumps(format="json")
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("obj", list(BUILTIN_CASES.values()), ids=list(BUILTIN_CASES))
def test_builtin_roundtrip(obj: Any) -> None:
    out = rt(obj)
    assert_same(obj, out)
    if obj is None or obj is Ellipsis or type(obj) is bool:
        assert out is obj


@pytest.mark.parametrize("compact", [False, True], ids=["pretty", "compact"])
def test_builtin_cases_through_the_api(compact: bool) -> None:
    data = amber.dumps(BUILTIN_CASES, format="json", compact=compact)
    json.loads(data)  # valid JSON
    assert_same(BUILTIN_CASES, amber.loads(data))


def test_file_roundtrip_by_suffix(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    amber.dump(BUILTIN_CASES["mixture"], path, metadata={"run": 7})
    obj, meta = amber.load(path, with_metadata=True)
    assert_same(BUILTIN_CASES["mixture"], obj)
    assert meta == {"run": 7}
    assert path.read_bytes().endswith(b"\n")


def test_float_bits_kept() -> None:
    for x in (-0.0, NAN_PAYLOAD, NEG_NAN, math.nan, math.inf, -math.inf, 5e-324, sys.float_info.max):
        assert float_bits(rt(x)) == float_bits(x)
        assert float_bits(rt([x])[0]) == float_bits(x)
        assert float_bits(rt((x, 1))[0]) == float_bits(x)
        assert float_bits(rt({"k": x})["k"]) == float_bits(x)
    z = rt(complex(-0.0, NAN_PAYLOAD))
    assert float_bits(z.real) == float_bits(-0.0) and float_bits(z.imag) == float_bits(NAN_PAYLOAD)


def test_non_finite_floats_are_tagged() -> None:
    assert data_of([math.nan, math.inf, -math.inf, NAN_PAYLOAD]) == [
        {"$float": "nan"}, {"$float": "inf"}, {"$float": "-inf"}, {"$float": "0x7ff0000000000001"}
    ]


@pytest.mark.parametrize("obj", list(SURROGATE_CASES.values()), ids=list(SURROGATE_CASES))
def test_lone_surrogates_roundtrip(obj: Any) -> None:
    data = dumps_json(obj)
    data.decode("utf-8")  # the file stays valid UTF-8: lone surrogates are tagged
    assert_same(obj, load_json(data)[0])


def test_surrogate_string_is_a_str_tag() -> None:
    assert data_of("a\ud800") == {"$str": "Ye2ggA=="}
    assert data_of({"a\udfff": 1}) == {"$dict": [[{"$str": "Ye2/vw=="}, 1]]}


# ---------------------------------------------------------------------------------------
# NumPy
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", list(DTYPES.values()), ids=list(DTYPES))
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("array_lists", [1000, 0], ids=["lists", "base64"])
def test_ndarray_roundtrip(dtype: np.dtype, layout: str, array_lists: int) -> None:
    a = layout_array(dtype, layout)
    out = rt(a, array_lists=array_lists)
    assert_same(a, out)
    assert out.flags.writeable
    if layout == "F":
        assert out.flags.f_contiguous


def test_small_numeric_arrays_are_nested_lists() -> None:
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert data_of(a) == {"$ndarray": {"dtype": "float32", "shape": [2, 3], "data": [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]}}
    assert data_of(np.array([True, False])) == {"$ndarray": {"dtype": "bool", "shape": [2], "data": [True, False]}}
    big_endian = data_of(np.arange(2, dtype=">i4"))
    assert big_endian == {"$ndarray": {"dtype": ">i4", "shape": [2], "data": [0, 1]}}
    f = data_of(np.asfortranarray(np.eye(2, dtype=np.uint8)))
    assert f["$ndarray"]["order"] == "F"


def test_array_lists_option() -> None:
    a = np.arange(20.0)
    assert "$ndarray" in data_of(a, array_lists=20)
    big = data_of(a, array_lists=19)
    assert "$numpy.ndarray" in big and "$blob" in big["$numpy.ndarray"][0]["blob"]
    assert big["$numpy.ndarray"][0]["dtype"] == "<f8" and big["$numpy.ndarray"][0]["shape"] == [20]
    assert "$ndarray" in data_of(np.arange(5000.0), array_lists=None)
    assert "$numpy.ndarray" in data_of(np.arange(3.0), array_lists=0)
    # non-finite values and other dtypes stay exact bytes
    assert "$numpy.ndarray" in data_of(np.array([1.0, np.nan]))
    assert "$numpy.ndarray" in data_of(np.array([1 + 2j]))
    with pytest.raises(ValueError):
        dumps_json(a, array_lists=-1)


def test_numpy_scalars_dtypes_generators() -> None:
    for s in (np.float32(1.5), np.int64(-(2**63)), np.uint64(2**64 - 1), np.bool_(True), np.str_("héllo"),
              np.bytes_(b"a\x00"), np.datetime64("NaT"), np.longdouble("1.1"), np.clongdouble(1 + 1j)):
        out = rt(s)
        assert type(out) is type(s)
        assert_same(s, out)
    for d in DTYPES.values():
        assert rt(d) == d and rt(d).str == d.str
    g = np.random.default_rng(5)
    h = rt({"rng": g, "again": g})
    assert h["rng"] is h["again"]
    assert np.array_equal(h["rng"].normal(size=5), g.normal(size=5))


def test_object_array_and_shared_array() -> None:
    a = np.arange(2000.0)
    obj = {"x": a, "y": a, "o": np.array([1, "a", (2, 3), None], dtype=object)}
    out = rt(obj)
    assert out["x"] is out["y"]
    assert_same(obj["o"], out["o"])


# ---------------------------------------------------------------------------------------
# plain JSON, the "$" rule, determinism, compact/pretty
# ---------------------------------------------------------------------------------------

PLAIN = {"name": "amber", "n": [1, 2.5, -3, None, True, False], "nested": {"a": {"b": [{}, [], ""]}},
         "unicode": "héllo ✓ \U0001f600", "big": 2**64 - 1, "neg": -(2**63)}


def test_plain_json_is_written_bare() -> None:
    raw = dumps_json(PLAIN)
    parsed = json.loads(raw)
    assert parsed == PLAIN and not has_dollar_keys(parsed)
    assert load_json(raw)[0] == PLAIN
    for x in (None, 1, "s", [], {}, [1, [2, [3]]], 1.5):
        assert json.loads(dumps_json(x)) == x


def test_any_json_file_loads() -> None:
    other = json.dumps({"x": [1, {"y": None}], "z": "é"}, indent=4).encode()
    assert load_json(other)[0] == {"x": [1, {"y": None}], "z": "é"}
    assert load_json(b"\xef\xbb\xbf[1, 2]")[0] == [1, 2]  # a BOM
    assert load_json(b"  7 \n")[0] == 7


def test_tagged_data_gets_a_header() -> None:
    d = doc((1, 2), metadata={"m": 1})
    assert list(d) == ["$amber", "data"]
    head = d["$amber"]
    assert head["format"] == "amber-json" and head["version"] == 1 and head["metadata"] == {"m": 1}
    assert {"python", "platform", "packages"} <= set(head["env"])
    assert "created" not in head
    assert list(doc([1], metadata="x")) == ["$amber", "data"]  # metadata alone also needs one


@pytest.mark.parametrize("d", [{"$a": 1, "b": 2}, {"$amber": 1, "data": 2}, {"$tuple": [1, 2]}, {"$": 0}, {"$ref": 0}],
                         ids=["dollar", "amber", "tuple", "bare", "ref"])
def test_user_dict_whose_first_key_starts_with_dollar(d: dict[str, Any]) -> None:
    assert data_of(d) == {"$dict": [[k, v] for k, v in d.items()]}
    assert rt(d) == d and list(rt(d)) == list(d)
    later = {"b": 2, **d}  # only the first key decides: this one is a plain object
    assert data_of(later) == later
    assert rt(later) == later


def test_deterministic_and_compact() -> None:
    obj = {"s": {3, 1, "a", (1, 2)}, "f": frozenset({2.5, -1}), "a": np.arange(3), "t": dt.date(2020, 1, 2)}
    pretty = dumps_json(obj)
    assert pretty == dumps_json(obj)
    compact = dumps_json(obj, compact=True)
    assert compact == dumps_json(obj, compact=True)
    assert b"\n" not in compact[:-1] and pretty.count(b"\n") > 10
    assert json.loads(pretty) == json.loads(compact)
    timed = json.loads(dumps_json(obj, deterministic=False))
    assert "created" in timed["$amber"]


@SETTINGS
@given(nested)
def test_hypothesis_roundtrip(obj: Any) -> None:
    data = dumps_json(obj)
    assert data == dumps_json(obj)
    assert_same(obj, load_json(data)[0])


@SETTINGS
@given(st.recursive(st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text()
                    | st.floats(allow_nan=False, allow_infinity=False),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
                    max_leaves=20))
def test_hypothesis_plain_json_is_plain(obj: Any) -> None:
    if isinstance(obj, dict) and obj and next(iter(obj)).startswith("$"):
        return
    raw = dumps_json(obj, compact=True)
    if not has_dollar_keys(obj):
        assert orjson.loads(raw) == obj


# ---------------------------------------------------------------------------------------
# shared references, cycles, nesting
# ---------------------------------------------------------------------------------------


def test_shared_and_cycles() -> None:
    inner = [1, 2]
    d = {"a": inner, "b": inner, "c": (inner, inner)}
    out = rt(d)
    assert out["a"] is out["b"] is out["c"][0] is out["c"][1]
    lst: list[Any] = [1]
    lst.append(lst)
    out = rt(lst)
    assert out[1] is out
    dd: dict[Any, Any] = {1: "x"}
    dd[2] = dd
    out = rt(dd)
    assert out[2] is out
    a: list[Any] = []
    b = {"a": a}
    a.append(b)
    out = rt([a, b])
    assert out[0][0] is out[1] and out[1]["a"] is out[0]
    od = collections.OrderedDict(x=1)
    od["self"] = od
    out = rt({"od": od})
    assert out["od"]["self"] is out["od"]


def test_shared_tuples_not_duplicated() -> None:
    t: Any = ("leaf",)
    for _ in range(20):
        t = (t, t)
    data = dumps_json(t, compact=True)
    assert len(data) < 20_000
    out = load_json(data)[0]
    assert out[0][0][0] == out[1][1][1]


def test_cycle_through_a_tuple_is_refused() -> None:
    t: tuple[list[Any]] = ([],)
    t[0].append(t)
    with pytest.raises(amber.EncodeError, match="refers back"):
        dumps_json(t)


@pytest.mark.parametrize("kind", ["list", "dict", "tuple", "intdict", "mixed"])
def test_nesting_5000_levels(kind: str) -> None:
    limit = sys.getrecursionlimit()
    obj = _nest(kind, 5000)
    data = dumps_json(obj)
    out = load_json(data)[0]
    assert _unnest(kind, out, 5000) == "leaf"
    assert sys.getrecursionlimit() == limit


def test_too_deep_to_save_is_a_nesting_error() -> None:
    with pytest.raises(amber.NestingError):
        dumps_json(_nest("list", 100_000))


def test_deep_other_tool_json_loads_and_hostile_depth_is_refused() -> None:
    deep = b"[" * 3000 + b"1" + b"]" * 3000
    out = load_json(deep)[0]
    for _ in range(3000):
        out = out[0]
    assert out == 1
    with pytest.raises(amber.CorruptFileError, match="nested"):
        load_json(b"[" * 200_000 + b"]" * 200_000)
    with pytest.raises(amber.CorruptFileError):
        load_json(b"[" * 5000)


def test_escaped_lone_surrogates_from_other_tools() -> None:
    assert load_json(b'["\\ud800", {"k": "\\udfff"}]')[0] == ["\ud800", {"k": "\udfff"}]


# ---------------------------------------------------------------------------------------
# the big dict: the $tuples form
# ---------------------------------------------------------------------------------------


def test_big_dict_with_tuples_uses_one_list_of_tuple_keys() -> None:
    d = {f"k{i}": (i, "x") if i % 3 == 0 else i for i in range(200)}
    raw = data_of(d)
    obj, where = raw["$tuples"]
    assert where == [f"k{i}" for i in range(0, 200, 3)]
    assert obj["k3"] == [3, "x"] and obj["k4"] == 4
    assert_same(d, rt(d))
    lst = [(i,) if i % 2 else i for i in range(100)]
    assert data_of(lst)["$tuples"][1] == list(range(1, 100, 2))
    assert_same(lst, rt(lst))
    small = {"a": (1, 2)}
    assert data_of(small) == {"a": {"$tuple": [1, 2]}}


def test_big_dict_with_other_values_mixed_in() -> None:
    d: dict[Any, Any] = {f"k{i}": (i, 2.5) for i in range(100)}
    d["nan"] = math.nan
    d["set"] = {1}
    d["nested"] = (1, [2])
    d["bytes_tuple"] = (b"x",)
    d["huge"] = 2**80
    out = rt(d)
    assert_same(d, out)
    d2 = dict(d)
    d2[5] = "int key after str keys"
    assert_same(d2, rt(d2))


# ---------------------------------------------------------------------------------------
# readable forms: datetimes, durations, decimals, UUIDs, fractions, complex numbers
# ---------------------------------------------------------------------------------------

UTC = dt.timezone.utc


def _zone(key: str) -> Any:
    zoneinfo = pytest.importorskip("zoneinfo")
    try:
        return zoneinfo.ZoneInfo(key)
    except zoneinfo.ZoneInfoNotFoundError:  # pragma: no cover
        pytest.skip("no time zone database")


READABLE_CASES: list[tuple[Any, Any]] = [
    (dt.datetime(2026, 11, 22, 9, 30), {"$datetime": "2026-11-22T09:30:00"}),
    (dt.datetime(2026, 11, 22, 9, 30, 0, 1), {"$datetime": "2026-11-22T09:30:00.000001"}),
    (dt.datetime(2026, 11, 22, 9, 30, 0, 120000, fold=1), {"$datetime": "2026-11-22T09:30:00.120000", "fold": 1}),
    (dt.datetime(2026, 11, 22, 9, 30, tzinfo=UTC), {"$datetime": "2026-11-22T09:30:00+00:00"}),
    (dt.datetime(2026, 11, 22, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
     {"$datetime": "2026-11-22T09:30:00-05:00"}),
    (dt.datetime(2026, 11, 22, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=1), "CET")),
     {"$datetime": "2026-11-22T09:30:00+01:00", "tzname": "CET"}),
    (dt.datetime(1, 1, 1, tzinfo=dt.timezone(-dt.timedelta(seconds=1, microseconds=1))),
     {"$datetime": "0001-01-01T00:00:00-00:00:01.000001"}),
    (dt.datetime.max, {"$datetime": "9999-12-31T23:59:59.999999"}),
    (dt.date(2024, 2, 29), {"$date": "2024-02-29"}),
    (dt.date.min, {"$date": "0001-01-01"}),
    (dt.time(9, 30), {"$time": "09:30:00"}),
    (dt.time(23, 59, 59, 999999, fold=1), {"$time": "23:59:59.999999", "fold": 1}),
    (dt.time(9, 30, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30), "IST")),
     {"$time": "09:30:00+05:30", "tzname": "IST"}),
    (dt.timedelta(0), {"$timedelta": "PT0S"}),
    (dt.timedelta(days=1, hours=2, minutes=3, seconds=4, microseconds=500000), {"$timedelta": "P1DT2H3M4.5S"}),
    (dt.timedelta(microseconds=-1), {"$timedelta": "-PT0.000001S"}),
    (dt.timedelta(days=-1, seconds=5, microseconds=7), {"$timedelta": "-PT23H59M54.999993S"}),
    (dt.timedelta(days=-3), {"$timedelta": "-P3D"}),
    (dt.timedelta.max, {"$timedelta": "P999999999DT23H59M59.999999S"}),
    (dt.timedelta.min, {"$timedelta": "-P999999999D"}),
    (decimal.Decimal("1.10"), {"$decimal": "1.10"}),
    (decimal.Decimal("-0.00"), {"$decimal": "-0.00"}),
    (decimal.Decimal("NaN"), {"$decimal": "NaN"}),
    (decimal.Decimal("-sNaN123"), {"$decimal": "-sNaN123"}),
    (decimal.Decimal("-Infinity"), {"$decimal": "-Infinity"}),
    (decimal.Decimal("1E+3"), {"$decimal": "1E+3"}),
    (decimal.Decimal("0E-7"), {"$decimal": "0E-7"}),
    (decimal.Decimal("3.14159265358979323846264338327950288"), {"$decimal": "3.14159265358979323846264338327950288"}),
    (__import__("uuid").UUID("12345678-1234-5678-1234-56781234abcd"), {"$uuid": "12345678-1234-5678-1234-56781234abcd"}),
    (__import__("fractions").Fraction(-3, 4), {"$fraction": "-3/4"}),
    (__import__("fractions").Fraction(5), {"$fraction": "5/1"}),
    (__import__("fractions").Fraction(2**200 + 1, 3**90), {"$fraction": f"{2**200 + 1}/{3**90}"}),
    (complex(1.5, -2), {"$complex": [1.5, -2.0]}),
    (complex(-0.0, math.nan), {"$complex": [-0.0, {"$float": "nan"}]}),
    (complex(math.inf, -0.0), {"$complex": [{"$float": "inf"}, -0.0]}),
    (complex(NAN_PAYLOAD, -math.inf), {"$complex": [{"$float": "0x7ff0000000000001"}, {"$float": "-inf"}]}),
]


@pytest.mark.parametrize("obj, form", READABLE_CASES, ids=[repr(c[0])[:50] for c in READABLE_CASES])
def test_readable_forms(obj: Any, form: Any) -> None:
    assert data_of(obj) == form  # JSON context
    assert data_of(collections.OrderedDict(k=obj)) == {"$collections.OrderedDict": ["k", form]}  # in a payload
    assert_same(obj, rt(obj))
    many = [obj, obj, (obj, [1]), collections.deque([obj]), collections.OrderedDict(k=obj)]
    assert_same(many, rt(many))


def test_readable_named_zones_keep_their_key_and_fold() -> None:
    ny = _zone("America/New_York")
    first = dt.datetime(2026, 11, 1, 1, 30, tzinfo=ny)  # the hour that happens twice
    second = first.replace(fold=1)
    assert data_of(first) == {"$datetime": "2026-11-01T01:30:00-04:00", "tz": "America/New_York"}
    assert data_of(second) == {"$datetime": "2026-11-01T01:30:00-05:00", "tz": "America/New_York", "fold": 1}
    for obj in (first, second, dt.datetime(1800, 1, 1, tzinfo=ny), dt.time(9, 30, tzinfo=ny),
                dt.time(1, 30, fold=1, tzinfo=ny)):
        out = rt(obj)
        assert_same(obj, out)
        assert out.tzinfo is ny  # the zone itself (ZoneInfo caches by key)
    assert rt(second).utcoffset() == dt.timedelta(hours=-5)
    assert data_of({first})["$set"] == [{"$datetime": "2026-11-01T01:30:00-04:00", "tz": "America/New_York"}]


def test_readable_values_are_not_numbered() -> None:
    """A readable value is written in full each time (as plain tuples are): no $ref to a
    datetime, and numbering around it stays in step in both contexts."""
    when = dt.datetime(2026, 1, 1, tzinfo=UTC)
    shared = [1, 2]
    obj = {"a": when, "b": when, "s": shared, "set": {when, dt.date(2020, 1, 1)}, "t": (when, shared), "s2": shared}
    d = data_of(obj)
    assert d["a"] == d["b"] == {"$datetime": "2026-01-01T00:00:00+00:00"}
    assert d["s2"] == {"$ref": 1}  # #0 the dict, #1 the list: datetimes take no number
    assert d["t"] == {"$tuple": [{"$datetime": "2026-01-01T00:00:00+00:00"}, {"$ref": 1}]}
    out = rt(obj)
    assert_same(obj, out)
    assert out["s"] is out["s2"] is out["t"][1]
    # inside payloads: the native numbering, with readable values taking no number
    od = collections.OrderedDict(a=when, b=shared, c=when, d=shared)
    p = data_of([od, shared])
    assert p[0] == {"$collections.OrderedDict": ["a", {"$datetime": "2026-01-01T00:00:00+00:00"}, "b", {"$list.plain": [1, 2]},
                                                  "c", {"$datetime": "2026-01-01T00:00:00+00:00"}, "d", {"$ref": 2}]}
    assert p[1] == {"$ref": 2}
    out = rt([od, shared])
    assert out[0]["b"] is out[0]["d"] is out[1]


def test_readable_datetimes_in_big_containers() -> None:
    days = {f"k{i}": dt.date(2020, 1, 1) + dt.timedelta(days=i) if i % 2 else (i, "x") for i in range(100)}
    raw = data_of(days)
    obj, where = raw["$tuples"]
    assert obj["k1"] == {"$date": "2020-01-02"} and where == [f"k{i}" for i in range(0, 100, 2)]
    assert_same(days, rt(days))
    lst = [dt.timedelta(seconds=i) for i in range(100)]
    assert data_of(lst)[3] == {"$timedelta": "PT3S"}
    assert_same(lst, rt(lst))


def test_readable_forms_through_jsonl(tmp_path: Path) -> None:
    recs = [{"when": dt.datetime(2026, 1, 1, 12, tzinfo=UTC), "d": decimal.Decimal("1.10")},
            {"dur": dt.timedelta(minutes=-90)}]
    path = tmp_path / "r.jsonl"
    amber.jsonl.write(path, recs)
    assert path.read_bytes().splitlines() == [
        b'{"when":{"$datetime":"2026-01-01T12:00:00+00:00"},"d":{"$decimal":"1.10"}}',
        b'{"dur":{"$timedelta":"-PT1H30M"}}',
    ]
    assert_same(recs, list(amber.jsonl.read(path)))


def test_huge_fraction_keeps_the_generic_form() -> None:
    import fractions

    f = fractions.Fraction(2**20000 + 1, 3)
    assert "$fractions.Fraction" in data_of(f)
    out = rt(f)
    assert type(out) is fractions.Fraction and out == f  # (repr would pass the digit limit)


def test_readable_types_are_listed_in_the_header() -> None:
    head = doc([dt.date(2020, 1, 1), {decimal.Decimal(1)}])["$amber"]
    assert {"datetime.date", "decimal.Decimal", "set"} <= set(head["types"])
    raw = dumps_json({"when": dt.datetime(2020, 1, 1)})
    info = describe_json(raw, name="r.json", size=len(raw))
    assert "datetime.datetime" in info.types and "datetime.datetime" in str(info)


#: Written earlier by the generic mapping (every handler's positional payload): still read,
#: references included (#3 is the first UTC datetime, #4 its timezone, #18 the list "s").
OLD_FORMS = (
    '{"naive":{"$datetime.datetime":[2026,11,22,9,30,0,0,0,null]},"utc":[{"$datetime.datetime":[2026,11,22,9,30,0,'
    '0,0,{"$datetime.timezone":[0,0,0,null]}]},{"$ref":3},{"$datetime.datetime":[2026,1,1,0,0,0,0,0,{"$ref":4}]}],'
    '"ny":{"$datetime.datetime":[2026,11,1,1,30,0,0,1,"America/New_York"]},"date":{"$datetime.date":[2024,2,29]},'
    '"time":{"$datetime.time":[9,30,0,5,0,{"$datetime.timezone":[-1,68400,0,"EST"]}]},"td":{"$datetime.timedelta":'
    '[-1,5,7]},"dec":[{"$decimal.Decimal":["-0.00"]},{"$decimal.Decimal":["NaN"]},{"$decimal.Decimal":["1E+3"]}],'
    '"uuid":{"$uuid.UUID":[{"$bytes":"EjRWeBI0VngSNFZ4EjRWeA=="}]},"frac":{"$fractions.Fraction":[-3,4]},'
    '"c":{"$complex":[-0.0,{"$float":"nan"}]},"s":[1,2],"set":{"$set":[{"$datetime.date":[2020,1,1]},{"$ref":3}]},'
    '"s2":{"$ref":18}}'
)


def test_old_generic_forms_still_load() -> None:
    import fractions
    import uuid

    ny = _zone("America/New_York")
    when = dt.datetime(2026, 11, 22, 9, 30, tzinfo=UTC)
    expected = {
        "naive": dt.datetime(2026, 11, 22, 9, 30),
        "utc": [when, when, dt.datetime(2026, 1, 1, tzinfo=UTC)],
        "ny": dt.datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=ny),
        "date": dt.date(2024, 2, 29),
        "time": dt.time(9, 30, 0, 5, tzinfo=dt.timezone(dt.timedelta(hours=-5), "EST")),
        "td": dt.timedelta(days=-1, seconds=5, microseconds=7),
        "dec": [decimal.Decimal("-0.00"), decimal.Decimal("NaN"), decimal.Decimal("1E+3")],
        "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "frac": fractions.Fraction(-3, 4),
        "c": complex(-0.0, math.nan),
        "s": [1, 2],
        "set": {dt.date(2020, 1, 1), when},
        "s2": [1, 2],
    }
    out = load_bytes(OLD_FORMS)
    assert_same(expected, out)
    assert out["utc"][0] is out["utc"][1] and out["s"] is out["s2"]
    assert_same(expected, rt(expected))  # and the same values written anew


@given(st.datetimes(timezones=st.none() | st.timezones() | st.builds(
    dt.timezone, st.timedeltas(-dt.timedelta(hours=23, minutes=59), dt.timedelta(hours=23, minutes=59)))),
    st.booleans())
@SETTINGS
def test_readable_datetimes_fuzzed(when: dt.datetime, fold: bool) -> None:
    when = when.replace(fold=int(fold))
    assert_same(when, rt(when))
    assert_same(when.timetz(), rt(when.timetz()))
    assert_same(when.date(), rt(when.date()))


@given(st.timedeltas(), st.decimals(allow_nan=True, allow_infinity=True), st.fractions(), st.uuids())
@SETTINGS
def test_readable_values_fuzzed(td: dt.timedelta, dec: decimal.Decimal, frac: Any, u: Any) -> None:
    obj = [td, dec, frac, u, {td, frac, u}]
    if not dec.is_snan():  # (a signalling NaN cannot be hashed, so stays out of the set)
        obj.append({dec})
    assert_same(obj, rt(obj))


READABLE_MALFORMED = {
    "datetime_month": '{"$datetime": "2020-13-01T00:00:00"}',
    "datetime_text": '{"$datetime": "yesterday"}',
    "datetime_date_only": '{"$datetime": "2020-01-01"}',
    "datetime_number": '{"$datetime": 1700000000}',
    "datetime_fold": '{"$datetime": "2020-01-01T00:00:00", "fold": 2}',
    "datetime_fold_bool": '{"$datetime": "2020-01-01T00:00:00", "fold": true}',
    "datetime_extra_key": '{"$datetime": "2020-01-01T00:00:00", "x": 1}',
    "datetime_bad_zone": '{"$datetime": "2020-01-01T00:00:00", "tz": "Nowhere/Atlantis"}',
    "datetime_zone_path": '{"$datetime": "2020-01-01T00:00:00", "tz": "../../etc/passwd"}',
    "datetime_zone_not_str": '{"$datetime": "2020-01-01T00:00:00", "tz": 5}',
    "datetime_tzname_naive": '{"$datetime": "2020-01-01T00:00:00", "tzname": "CET"}',
    "datetime_offset_24h": '{"$datetime": "2020-01-01T00:00:00+24:00"}',
    "datetime_in_payload": '{"$set": [{"$datetime": "2020-02-30T00:00:00"}]}',
    "date_bad": '{"$date": "2023-02-29"}',
    "date_extra_key": '{"$date": "2023-02-28", "fold": 0}',
    "time_bad": '{"$time": "24:00:00"}',
    "timedelta_empty": '{"$timedelta": "P"}',
    "timedelta_empty_t": '{"$timedelta": "P1DT"}',
    "timedelta_overflow": '{"$timedelta": "P9999999999D"}',
    "timedelta_list": '{"$timedelta": [1, 2, 3]}',
    "decimal_text": '{"$decimal": "one"}',
    "decimal_spaces": '{"$decimal": " 1"}',
    "decimal_exponent": '{"$decimal": "1E+99999999999999999999"}',
    "uuid_short": '{"$uuid": "1234"}',
    "uuid_bytes": '{"$uuid": {"$bytes": "EjRWeBI0VngSNFZ4EjRWeA=="}}',
    "fraction_zero": '{"$fraction": "1/0"}',
    "fraction_float": '{"$fraction": "0.5"}',
    "fraction_in_payload": '{"$set": [{"$fraction": "1/0"}]}',
}


@pytest.mark.parametrize("raw", list(READABLE_MALFORMED.values()), ids=list(READABLE_MALFORMED))
def test_malformed_readable_forms_are_amber_errors(raw: str) -> None:
    with pytest.raises(amber.DecodeError):
        load_bytes(raw)


def test_readable_forms_read_from_hand_written_json() -> None:
    assert load_bytes('{"$datetime": "2026-11-22T09:30:00Z"}') == dt.datetime(2026, 11, 22, 9, 30, tzinfo=UTC)
    assert load_bytes('{"$datetime": "2026-11-22T09:30:00.5"}') == dt.datetime(2026, 11, 22, 9, 30, 0, 500000)
    assert load_bytes('{"$timedelta": "PT90M"}') == dt.timedelta(minutes=90)
    assert load_bytes('{"$fraction": "2/4"}') == __import__("fractions").Fraction(1, 2)
    assert str(load_bytes('{"$decimal": "1.50e3"}')) == "1.50E+3"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["$datetime", "$date", "$time", "$timedelta", "$decimal", "$uuid", "$fraction"]),
       st.none() | st.integers() | st.text(max_size=30) | st.lists(st.integers(), max_size=3),
       st.dictionaries(st.sampled_from(["tz", "tzname", "fold", "x"]), st.none() | st.integers(-1, 2) | st.text(max_size=8),
                       max_size=2))
def test_fuzzed_readable_tags_never_leak_raw_errors(key: str, payload: Any, extra: dict[str, Any]) -> None:
    for raw in ({key: payload, **extra}, {"$set": [{key: payload, **extra}]}):
        try:
            load_json(json.dumps(raw).encode())
        except amber.AmberError:
            pass


# ---------------------------------------------------------------------------------------
# other libraries' objects
# ---------------------------------------------------------------------------------------


def test_sklearn_pipeline_and_forest_predict_the_same() -> None:
    sklearn = pytest.importorskip("sklearn")
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    assert sklearn
    X, y = make_classification(n_samples=200, n_features=6, random_state=0)
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    data = dumps_json({"pipe": pipe, "forest": forest})
    json.loads(data)
    out = load_json(data)[0]
    assert np.array_equal(out["pipe"].predict_proba(X), pipe.predict_proba(X))
    assert np.array_equal(out["forest"].predict_proba(X), forest.predict_proba(X))
    amber.testing.assert_equal(pipe, out["pipe"])


def test_pandas_frame_with_several_dtypes() -> None:
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({
        "i": np.arange(5, dtype=np.int32), "f": [1.5, np.nan, 3.0, -0.0, 1e300], "s": list("abcde"),
        "b": [True, False, True, True, False], "t": pd.date_range("2020-01-01", periods=5, tz="UTC"),
        "c": pd.Categorical(["x", "y", "x", "z", "y"]), "n": pd.array([1, None, 3, 4, 5], dtype="Int64"),
    }, index=pd.Index(list("vwxyz"), name="key"))
    out = rt({"df": df, "s": df["f"]})
    pd.testing.assert_frame_equal(out["df"], df)
    pd.testing.assert_series_equal(out["s"], df["f"])


def test_scipy_sparse() -> None:
    sp = pytest.importorskip("scipy.sparse")
    m = sp.random(30, 20, density=0.1, format="csr", random_state=1)
    for x in (m, m.tocsc(), m.tocoo(), sp.csr_array(m)):
        out = rt(x)
        assert type(out) is type(x)
        assert (out != x).nnz == 0


def test_torch_state_dict() -> None:
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    sd = model.state_dict()
    out = rt(sd)
    assert list(out) == list(sd)
    for k in sd:
        assert torch.equal(out[k], sd[k]) and out[k].dtype == sd[k].dtype
    m2 = rt(model)
    x = torch.randn(5, 4)
    assert torch.equal(m2(x), model(x))


# ---------------------------------------------------------------------------------------
# to_json / from_json, trust
# ---------------------------------------------------------------------------------------

MODULE_SRC = textwrap.dedent('''
    import pathlib
    MARKER = pathlib.Path(__file__).with_suffix(".imported")
    MARKER.write_text("imported")

    class Point:
        def __init__(self, x, y):
            self.x, self.y = x, y
        def __eq__(self, other):
            return type(other) is Point and (self.x, self.y) == (other.x, other.y)
        def to_json(self):
            return {"x": self.x, "y": self.y}
        @classmethod
        def from_json(cls, data):
            return cls(data["x"], data["y"])

    class Plain:
        def __init__(self, v):
            self.v = v
        def __eq__(self, other):
            return type(other) is Plain and self.v == other.v
''')


@pytest.fixture
def usermod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Two modules that write a marker file when imported (``jsonmod_a``, ``jsonmod_b``)."""
    for name in ("jsonmod_a", "jsonmod_b"):
        (tmp_path / f"{name}.py").write_text(MODULE_SRC)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    mods = [importlib.import_module(n) for n in ("jsonmod_a", "jsonmod_b")]
    yield mods, tmp_path
    for n in ("jsonmod_a", "jsonmod_b"):
        sys.modules.pop(n, None)


def _forget(mods: list[Any], tmp_path: Path) -> None:
    for m in mods:
        sys.modules.pop(m.__name__, None)
        m.MARKER.unlink(missing_ok=True)


def test_to_json_from_json(usermod: Any) -> None:
    (a, b), _ = usermod
    p = a.Point(1, (2, 3))
    d = doc({"p": p, "again": p})
    assert d["data"]["p"] == {"$json.object": ["jsonmod_a.Point", {"x": 1, "y": {"$tuple": [2, 3]}}]}
    assert d["data"]["again"] == {"$ref": 1}
    assert d["$amber"]["needs"] == ["jsonmod_a.Point"]
    out = rt({"p": p, "again": p}, trusted=("jsonmod_a.Point",))
    assert out["p"] == p and out["again"] is out["p"]
    # inside a handler's payload (here a set) it is the native node, still rebuilt
    out = rt({p.x: [{"s": frozenset({"k"}), "p": p}]}, trusted=("jsonmod_a",))
    assert out[1][0]["p"] == p
    nested_in_object = rt(b.Plain(a.Point(5, 6)), trusted=("jsonmod_a", "jsonmod_b"))
    assert nested_in_object == b.Plain(a.Point(5, 6))


def test_untrusted_names_listed_before_any_import(usermod: Any) -> None:
    (a, b), tmp_path = usermod
    data = dumps_json([a.Point(1, 2), b.Plain(3), b.Point(0, 0)])
    _forget([a, b], tmp_path)
    with pytest.raises(amber.UntrustedTypeError) as ei:
        load_json(data)
    assert set(ei.value.untrusted) == {"jsonmod_a.Point", "jsonmod_b.Plain", "jsonmod_b.Point"}
    assert "jsonmod_a" not in sys.modules and "jsonmod_b" not in sys.modules
    assert not list(tmp_path.glob("*.imported"))
    with pytest.raises(amber.UntrustedTypeError) as ei:
        load_json(data, trusted=("jsonmod_a",))
    assert set(ei.value.untrusted) == {"jsonmod_b.Plain", "jsonmod_b.Point"}
    assert not list(tmp_path.glob("*.imported"))
    out = load_json(data, trusted=("jsonmod_a", "jsonmod_b"))[0]
    assert [type(x).__name__ for x in out] == ["Point", "Plain", "Point"]


def test_bare_json_cannot_import_undeclared_names(usermod: Any) -> None:
    (a, b), tmp_path = usermod
    _forget([a, b], tmp_path)
    for raw in ('{"$json.object": ["jsonmod_a.Point", {"x": 1, "y": 2}]}', '[{"$global": ["jsonmod_a.Point"]}]',
                '{"$amber": {"needs": []}, "data": {"$global": ["jsonmod_a.Point"]}}'):
        with pytest.raises(amber.CorruptFileError, match="jsonmod_a.Point"):
            load_bytes(raw, trusted=("jsonmod_a",))
    assert not list(tmp_path.glob("*.imported")) and "jsonmod_a" not in sys.modules


def test_denied_names_refused_even_if_declared() -> None:
    raw = '{"$amber": {"needs": ["os.system"]}, "data": {"$global": ["os.system"]}}'
    with pytest.raises(amber.UntrustedTypeError) as ei:
        load_bytes(raw, trusted=("os",))
    assert ei.value.denied == ("os.system",)


def test_newer_version_refused() -> None:
    with pytest.raises(amber.VersionError):
        load_bytes('{"$amber": {"format": "amber-json", "version": 2}, "data": 1}')
    with pytest.raises(amber.FormatError):
        load_bytes('{"$amber": {"format": "other"}, "data": 1}')


# ---------------------------------------------------------------------------------------
# schema
# ---------------------------------------------------------------------------------------

USERS_SCHEMA = {
    "type": "object",
    "properties": {"users": {"type": "array", "items": {
        "type": "object", "properties": {"age": {"type": "integer", "minimum": 0}}, "required": ["age"]}}},
}


def test_schema_error_quotes_the_path(tmp_path: Path) -> None:
    good = {"users": [{"age": 1}, {"age": 2}]}
    assert load_json(dumps_json(good), schema=USERS_SCHEMA)[0] == good
    bad = {"users": [{"age": 1}, {"age": 2}, {"age": 3}, {"age": -4}]}
    with pytest.raises(amber.errors.SchemaError) as ei:
        load_json(dumps_json(bad, metadata={"m": 1}), schema=USERS_SCHEMA, name="users.json")
    assert ei.value.path == "$.users[3].age"
    assert "$.users[3].age" in str(ei.value) and "users.json" in str(ei.value)
    assert "-4" in ei.value.message
    assert isinstance(ei.value, amber.DecodeError)
    spath = tmp_path / "schema.json"
    spath.write_text(json.dumps(USERS_SCHEMA))
    with pytest.raises(amber.errors.SchemaError):
        load_json(dumps_json(bad), schema=spath)
    with pytest.raises(amber.errors.SchemaError) as ei:
        load_json(dumps_json({"users": [{"age": 1, "we ird": 2}], "x": 1}),
                  schema={"properties": {"users": {"items": {"properties": {"we ird": {"type": "string"}}}}}})
    assert ei.value.path == '$.users[0]["we ird"]'


def test_schema_through_the_api(tmp_path: Path) -> None:
    path = tmp_path / "u.json"
    amber.dump({"users": [{"age": "x"}]}, path)
    with pytest.raises(amber.AmberError, match=r"\$\.users\[0\]\.age"):
        amber.load(path, schema=USERS_SCHEMA)


def test_invalid_schema_is_an_amber_error() -> None:
    with pytest.raises(amber.AmberError, match="schema itself"):
        load_json(b"1", schema={"type": 5})


# ---------------------------------------------------------------------------------------
# malformed input
# ---------------------------------------------------------------------------------------

_GOOD_ARRAY = dumps_json(np.arange(100.0), array_lists=0).decode()

MALFORMED = {
    "empty": "",
    "truncated": dumps_json({"a": [1, 2, (3, 4)]})[:-9].decode(),
    "not_json": "{'a': 1}",
    "nan_literal": "[NaN]",
    "number_out_of_range": "[1e999]",
    "bad_utf8": b'["\xff\xfe"]',
    "tuple_not_array": '{"$tuple": 5}',
    "tag_extra_keys": '{"$tuple": [1], "x": 2}',
    "ref_out_of_range": '[{"$ref": 99}]',
    "ref_negative": '[{"$ref": -1}]',
    "ref_not_int": '[{"$ref": "0"}]',
    "ref_pending_tuple": '{"$tuple": [[1], {"$ref": 0}]}',
    "bytes_bad_base64": '{"$bytes": "!!!"}',
    "bytes_not_str": '{"$bytes": 5}',
    "float_bad": '{"$float": "NaNish"}',
    "float_finite_bits": '{"$float": "0x3ff0000000000000"}',
    "str_bad": '{"$str": "////"}',
    "dict_not_pairs": '{"$dict": [1, 2]}',
    "dict_unhashable_key": '{"$dict": [[[1], 2]]}',
    "tuples_bad": '{"$tuples": [{"a": [1]}, ["b"]]}',
    "tuples_not_array": '{"$tuples": [{"a": 1}, ["a"]]}',
    "tuples_nested": '{"$tuples": [{"a": [[1]]}, ["a"]]}',
    "unknown_tag": '{"$no.such.handler": [1]}',
    "tag_payload_not_array": '{"$set": 5}',
    "empty_tag": '{"$": 1}',
    "blob_outside_node": '{"$blob": "AA=="}',
    "nested_header": '[{"$amber": {}, "data": 1}]',
    "header_extra_key": '{"$amber": {}, "data": 1, "x": 2}',
    "header_not_object": '{"$amber": 5, "data": 1}',
    "header_bad_needs": '{"$amber": {"needs": "os"}, "data": 1}',
    "header_bad_version": '{"$amber": {"version": "1"}, "data": 1}',
    "ndarray_wrong_count": '{"$ndarray": {"dtype": "float64", "shape": [2, 3], "data": [1, 2, 3]}}',
    "ndarray_huge_shape": '{"$ndarray": {"dtype": "uint8", "shape": [1000000000, 1000000000], "data": [1]}}',
    "ndarray_huge_empty": '{"$ndarray": {"dtype": "uint8", "shape": [1000000000000, 0], "data": []}}',
    "ndarray_object_dtype": '{"$ndarray": {"dtype": "object", "shape": [1], "data": [1]}}',
    "ndarray_strings": '{"$ndarray": {"dtype": "float64", "shape": [1], "data": ["1.5"]}}',
    "ndarray_overflow": '{"$ndarray": {"dtype": "int8", "shape": [1], "data": [300]}}',
    "ndarray_ragged": '{"$ndarray": {"dtype": "int8", "shape": [2, 2], "data": [[1, 2], [3]]}}',
    "ndarray_extra_key": '{"$ndarray": {"dtype": "int8", "shape": [1], "data": [1], "x": 1}}',
    "ndarray_bad_order": '{"$ndarray": {"dtype": "int8", "shape": [1], "data": [1], "order": "K"}}',
    "ndarray_bad_shape": '{"$ndarray": {"dtype": "int8", "shape": [-1], "data": [1]}}',
    "blob_huge_shape": '{"$numpy.ndarray": [{"dtype": "<f8", "shape": [100000000000], "order": "C", "blob": {"$blob": "AAAAAAAAAAA="}}]}',
    "blob_bad_base64": '{"$numpy.ndarray": [{"dtype": "<f8", "shape": [1], "order": "C", "blob": {"$blob": "AAAA*AAAAAA="}}]}',
    "blob_used_twice": '{"$numpy.ndarray": [{"dtype": "|u1", "shape": [1], "order": "C", "blob": 0}]}',
    "datetime_bad": '{"$datetime.datetime": [2020, 13, 1, 0, 0, 0, 0, 0, null]}',
    "int_payload": '{"$int": ["xx"]}',
    "json_object_bad": '{"$json.object": "x"}',
    "deep": "[" * 100_000 + "]" * 100_000,
    "extra_data": "[1] [2]",
}


@pytest.mark.parametrize("raw", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_input_is_an_amber_error(raw: str | bytes) -> None:
    with pytest.raises(amber.DecodeError):
        load_bytes(raw)


def test_good_blob_array_still_loads() -> None:
    assert np.array_equal(load_bytes(_GOOD_ARRAY), np.arange(100.0))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 300) | st.floats(allow_nan=False) | st.text(max_size=6)
    | st.sampled_from(["AA==", "nan", "0x7ff0000000000001", "<f8", "float64", "C", "F"]),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(["$tuple", "$tuples", "$dict", "$ref", "$bytes", "$float", "$str", "$blob",
                                       "$ndarray", "$set", "$int", "$json.object", "$numpy.ndarray", "$amber",
                                       "$map", "$list", "$global", "data", "dtype", "shape", "blob", "a"]),
                      inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_fuzzed_tags_never_leak_raw_errors(value: Any) -> None:
    raw = json.dumps(value).encode()
    try:
        load_json(raw)
    except amber.AmberError:
        pass


# ---------------------------------------------------------------------------------------
# detection, inspect
# ---------------------------------------------------------------------------------------


def test_looks_like_json() -> None:
    for head in (b"{", b"  [1", b'"x"', b"-1", b"12", b"true", b"false", b"null", b"\xef\xbb\xbf {", b"\n\t{"):
        assert looks_like_json(head), head
    for head in (b"", b"   ", b"AMBR", b"\x80\x04", b"PK\x03\x04", b"x"):
        assert not looks_like_json(head), head


def test_inspect(tmp_path: Path) -> None:
    obj = {"w": np.arange(5000.0), "small": np.eye(2), "t": (1, 2), "when": dt.date(2020, 1, 1),
           "d": decimal.Decimal("1.5")}
    raw = dumps_json(obj, metadata={"author": "me"})
    info = describe_json(raw, name="m.json", size=len(raw))
    assert info.format == "json" and info.format_version == "1"
    assert info.metadata == {"author": "me"}
    assert {"numpy.ndarray", "datetime.date", "decimal.Decimal"} <= set(info.types)
    assert info.blobs == 2 and info.data_bytes == 5000 * 8 + 32
    text = str(info)
    assert "ndarray <f8 (5000,)" in text and "'t': tuple" in text
    plain = describe_json(b'{"a": [1, 2]}', name="p.json", size=12)
    assert plain.amber_version is None and plain.types == []
    path = tmp_path / "i.json"
    path.write_bytes(raw)
    assert amber.inspect(path).format == "json"


def test_inspect_names_untrusted_without_importing(usermod: Any) -> None:
    (a, b), tmp_path = usermod
    raw = dumps_json({"p": a.Point(1, 2)})
    _forget([a, b], tmp_path)
    info = describe_json(raw, name="u.json", size=len(raw))
    assert info.needs == ["jsonmod_a.Point"] and info.untrusted == ["jsonmod_a.Point"]
    assert "jsonmod_a.Point" in str(info)
    assert "jsonmod_a" not in sys.modules and not list(tmp_path.glob("*.imported"))


def test_struct_pack_sanity() -> None:  # the float tag's bit text is the IEEE-754 pattern
    assert struct.pack("<Q", int(data_of(NEG_NAN)["$float"], 16)) == float_bits(NEG_NAN)


# ---------------------------------------------------------------------------------------
# the other handler issues' own cases, through JSON
# ---------------------------------------------------------------------------------------


def _json_rt(obj: Any, trusted: tuple[str, ...] = ()) -> Any:
    data = amber.dumps(obj, format="json")
    json.loads(data)
    return amber.loads(data, trusted=trusted)


def _objects_cases() -> dict[str, Any]:
    import test_objects

    return test_objects.CASES


@pytest.mark.parametrize("name", list(_objects_cases()))
def test_generic_objects(name: str) -> None:
    import test_objects

    obj = test_objects.CASES[name]()
    with pytest.raises(amber.UntrustedTypeError):
        _json_rt(obj)
    out = _json_rt(obj, tuple(test_objects.TRUSTED))
    assert type(out) is type(obj) and out == obj


def _pandas_cases() -> list[str]:
    try:
        import test_pandas
    except ImportError:  # pragma: no cover
        return []
    return sorted(test_pandas.OBJECTS)


@pytest.mark.parametrize("name", _pandas_cases())
def test_pandas_objects(name: str) -> None:
    import test_pandas

    obj = test_pandas._with_attrs(test_pandas.OBJECTS[name]())
    out = _json_rt(obj)
    test_pandas.assert_same(obj, out)


@pytest.mark.parametrize("kind", ["matrix", "array"])
@pytest.mark.parametrize("fmt", ["csr", "csc", "coo", "bsr", "dia", "lil", "dok"])
def test_scipy_every_format(fmt: str, kind: str) -> None:
    import test_scipy

    for dtype in test_scipy.DTYPES:
        a = test_scipy.make(fmt, kind, dtype)
        test_scipy.assert_same(a, _json_rt(a))


def test_gbm_models() -> None:
    lgb = pytest.importorskip("lightgbm")
    xgb = pytest.importorskip("xgboost")
    rng = np.random.default_rng(7)
    X = rng.standard_normal((200, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    models = [
        lgb.train({"objective": "binary", "verbose": -1, "num_threads": 1}, lgb.Dataset(X, y), 5),
        lgb.LGBMClassifier(n_estimators=5, verbose=-1, n_jobs=1).fit(X, y),
        xgb.XGBClassifier(n_estimators=5, nthread=1).fit(X, y),
    ]
    for m in models:
        out = _json_rt(m)
        got = out.predict(X) if hasattr(out, "predict_proba") else out.predict(X)
        np.testing.assert_array_equal(got, m.predict(X))
