"""amber.testing: assert_equal (every branch, passing and failing, with the path it names),
assert_roundtrip and assert_same_predictions."""

from __future__ import annotations

import collections
import copy
import dataclasses
import datetime as dt
import decimal
import enum
import fractions
import functools
import os
import pathlib
import re
import subprocess
import sys
import threading
import types
import uuid
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import amber
from amber.testing import assert_equal, assert_roundtrip, assert_same_predictions

NAN = float("nan")


def fails(actual: Any, expected: Any, where: str, detail: str = "", **kwargs: Any) -> str:
    """assert_equal raises, naming exactly ``where`` (and ``detail`` after it, if given)."""
    with pytest.raises(AssertionError) as info:
        assert_equal(actual, expected, **kwargs)
    msg = str(info.value)
    assert msg.startswith(where + ": "), msg
    assert detail in msg[len(where) + 2 :], msg
    return msg


def fails_like(actual: Any, expected: Any, pattern: str, **kwargs: Any) -> None:
    """assert_equal raises, with a message matching the regular expression ``pattern``."""
    with pytest.raises(AssertionError, match=pattern):
        assert_equal(actual, expected, **kwargs)


# ------------------------------------------------------------------------ test types


class Plain:
    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)


class Slotted:
    __slots__ = ("x", "__hidden")

    def __init__(self, x: Any, hidden: Any = None) -> None:
        self.x = x
        if hidden is not None:
            self.__hidden = hidden


class WithState:
    """Compared by what __getstate__ returns: the cache is left out."""

    def __init__(self, value: Any, cache: Any = None) -> None:
        self.value = value
        self.cache = cache

    def __getstate__(self) -> dict[str, Any]:
        return {"value": self.value}


@dataclasses.dataclass
class Config:
    name: str
    weights: Any = None


@dataclasses.dataclass(slots=True)
class SlotConfig:
    lr: float
    layers: list[int]


class Color(enum.Enum):
    RED = 1
    BLUE = 2


class MyList(list):  # type: ignore[type-arg]
    pass


Point = collections.namedtuple("Point", "x y")


def helper(x: Any) -> Any:
    return x


def other_helper(x: Any) -> Any:
    return x


class Lossy:
    """Its amber state forgets ``note``: a round trip must catch that."""

    def __init__(self, value: int, note: str) -> None:
        self.value = value
        self.note = note

    def __amber_state__(self) -> int:
        return self.value

    @classmethod
    def __amber_from_state__(cls, state: int) -> Lossy:
        return cls(state, "lost")


# ------------------------------------------------------------------- Python values


@pytest.mark.parametrize(
    "value",
    [None, True, 7, 2**100, "text", b"bytes", bytearray(b"ba"), range(3), Ellipsis, 1.5, NAN, float("inf"), -0.0,
     complex(1, NAN), decimal.Decimal("1.10"), decimal.Decimal("NaN"), fractions.Fraction(1, 3), uuid.UUID(int=5),
     dt.date(2020, 1, 2), dt.timedelta(seconds=3), dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc), dt.time(1, 2),
     dt.timezone.utc, pathlib.PurePosixPath("/a/b"), slice(1, 5, 2), Color.RED],
    ids=repr,
)
def test_scalars_equal_to_a_copy(value: Any) -> None:
    assert_equal(value, copy.copy(value))
    assert_equal([value], [copy.deepcopy(value)])


def test_scalar_mismatches_name_the_path() -> None:
    fails({"a": [1, 2]}, {"a": [1, 3]}, "root['a'][1]", "2 != 3")
    fails("x", "y", "root", "'x' != 'y'")
    fails(b"x", b"y", "root")
    fails(None, 0, "root", "type NoneType != int")
    fails(True, 1, "root", "type bool != int")
    fails(1, 1.0, "root", "type int != float")
    fails(1.5, 2.5, "root", "1.5 != 2.5")
    fails(NAN, 1.0, "root", "nan != 1.0")
    fails(1j, 2j, "root")
    fails(complex(1, NAN), complex(1, 0), "root")
    fails(decimal.Decimal("1.0"), decimal.Decimal("1.00"), "root")  # equal by ==, not the same value
    fails(decimal.Decimal("NaN"), decimal.Decimal("1"), "root")
    fails(fractions.Fraction(1, 3), fractions.Fraction(1, 4), "root")
    fails(dt.date(2020, 1, 1), dt.date(2020, 1, 2), "root")
    fails(range(3), range(4), "root")
    fails(Color.RED, Color.BLUE, "root", "<Color.RED: 1> != <Color.BLUE: 2>")
    fails(pathlib.PurePosixPath("a"), pathlib.PurePosixPath("b"), "root")
    fails([1], [2], "model[0]", "1 != 2", path="model")


def test_nan_and_signed_zero() -> None:
    assert_equal(NAN, float("nan"))
    assert_equal([NAN, {"x": NAN}], [float("nan"), {"x": float("nan")}])
    fails(-0.0, 0.0, "root", "-0.0 != 0.0")
    assert_equal(-0.0, 0.0, check_type=False)
    assert_equal(-0.0, 0.0, atol=1e-12)  # with a tolerance, zeros are zeros
    fails(float("inf"), float("-inf"), "root")
    fails(float("inf"), 1e308, "root", atol=1e300)


def test_tolerance_and_check_type() -> None:
    assert_equal(1.0, 1.0 + 1e-12, rtol=1e-9)
    fails(1.0, 1.001, "root", rtol=1e-9)
    assert_equal([1.0, 2.0], [1.05, 2.0], atol=0.1)
    fails(10, 11, "root", "10 != 11", atol=5)  # integers are always exact
    assert_equal(1, 1.0, check_type=False)
    assert_equal(True, 1, check_type=False)
    assert_equal([1, 2], (1, 2), check_type=False)
    assert_equal({1, 2}, frozenset({1, 2}), check_type=False)
    assert_equal(np.float32(1.5), 1.5, check_type=False)
    fails([1, 2], (1, 2), "root", "type list != tuple")
    with pytest.raises(ValueError, match="rtol"):
        assert_equal(1.0, 1.0, rtol=-1)
    with pytest.raises(ValueError, match="atol"):
        assert_equal(1.0, 1.0, atol=NAN)


def test_datetimes_keep_their_zone() -> None:
    utc = dt.datetime(2020, 1, 1, 12, tzinfo=dt.timezone.utc)
    plus1 = utc.astimezone(dt.timezone(dt.timedelta(hours=1)))
    assert utc == plus1
    fails(utc, plus1, "root")
    assert_equal(utc, plus1, check_type=False)


# ---------------------------------------------------------------------- containers


def test_dicts_need_the_same_keys_in_the_same_order() -> None:
    assert_equal({"a": 1, "b": [2]}, {"a": 1, "b": [2]})
    fails({"a": 1, "b": 2}, {"b": 2, "a": 1}, "root", "the same keys in a different order")
    fails({"a": 1, "b": 2}, {"a": 1, "c": 2}, "root", "keys differ: 'b' only in actual; 'c' only in expected")
    fails({"a": 1}, {"a": 1, "z": 0}, "root", "'z' only in expected")
    fails({1: "x"}, {1.0: "x"}, "root", "key 1 is int != float")
    fails({"a": {"b": {"c": 1.0}}}, {"a": {"b": {"c": 2.0}}}, "root['a']['b']['c']", "1.0 != 2.0")
    fails({(1, "k"): 1}, {(1, "k"): 2}, "root[(1, 'k')]")
    # keys that hash by identity pair by position and compare deeply
    ka, kb = Plain(n=1), Plain(n=1)
    assert_equal({ka: "v"}, {kb: "v"})
    fails({ka: "v"}, {Plain(n=2): "v"}, "root.keys()[0].n", "1 != 2")
    fails({ka: "v"}, {kb: "w"}, "root.values()[0]")


def test_dict_subclasses() -> None:
    od = collections.OrderedDict(a=1)
    assert_equal(od, collections.OrderedDict(a=1))
    fails(od, {"a": 1}, "root", "type collections.OrderedDict != dict")
    assert_equal(collections.defaultdict(list, a=[1]), collections.defaultdict(list, a=[1]))
    fails(collections.defaultdict(list), collections.defaultdict(set), "root.default_factory", "class builtins.list != builtins.set")
    assert_equal(collections.Counter("aab"), collections.Counter("aab"))
    fails(collections.Counter("aab"), collections.Counter("abb"), "root['a']", "2 != 1")


def test_sequences() -> None:
    assert_equal([1, (2, 3)], [1, (2, 3)])
    fails([1, 2, 3], [1, 2], "root", "length 3 != 2")
    fails((1, (2, 3)), (1, (2, 4)), "root[1][1]", "3 != 4")
    fails(Point(1, 2), Point(1, 3), "root.y", "2 != 3")
    fails(Point(1, 2), (1, 2), "root", "type test_testing.Point != tuple")
    assert_equal(collections.deque([1, 2], maxlen=3), collections.deque([1, 2], maxlen=3))
    fails(collections.deque([1], maxlen=2), collections.deque([1], maxlen=3), "root.maxlen", "2 != 3")
    fails(collections.deque([1, 2]), collections.deque([1, 5]), "root[1]")
    a, b = MyList([1]), MyList([1])
    a.tag, b.tag = "x", "y"  # type: ignore[attr-defined]
    fails(a, b, "root.tag", "'x' != 'y'")


def test_sets() -> None:
    assert_equal({1, "a", (2, 3)}, {(2, 3), "a", 1})
    assert_equal(frozenset({NAN, 1.0}), frozenset({float("nan"), 1.0}))  # NaN is NaN
    fails({1, 2}, {1, 3}, "root", "items differ: 2 only in actual; 3 only in expected")
    fails({1, 2}, {1, 2, 3}, "root", "3 only in expected")
    fails({1, 2}, {1.0, 2}, "root", "item types differ")
    fails({1}, frozenset({1}), "root", "type set != frozenset")
    # items that hash by identity are paired by deep equality
    assert_equal({Plain(n=1), Plain(n=2)}, {Plain(n=2), Plain(n=1)})
    fails({Plain(n=1)}, {Plain(n=3)}, "root", "items differ")


def test_cycles_end() -> None:
    a: list[Any] = [1]
    a.append(a)
    b: list[Any] = [1]
    b.append(b)
    assert_equal(a, b)
    da: dict[str, Any] = {"x": 1.0}
    da["self"] = da
    db: dict[str, Any] = {"x": 1.0}
    db["self"] = db
    assert_equal(da, db)
    # a mutual cycle through objects, with a difference inside it
    pa, qa = Plain(v=1), Plain(v=2)
    pa.other, qa.other = qa, pa
    pb, qb = Plain(v=1), Plain(v=3)
    pb.other, qb.other = qb, pb
    fails(pa, pb, "root.other.v", "2 != 3")
    qb.v = 2
    assert_equal(pa, pb)


def test_shared_references_are_compared_once() -> None:
    shared = np.arange(5.0)
    assert_equal([shared, shared, {"s": shared}], [shared.copy(), shared.copy(), {"s": shared.copy()}])
    # a wide diamond: every level shares its child twice (2**40 paths, 40 pairs to compare)
    node_a: Any = [1.0]
    node_b: Any = [1.0]
    for _ in range(40):
        node_a, node_b = [node_a, node_a], [node_b, node_b]
    assert_equal(node_a, node_b)
    leaf = node_b
    while len(leaf) == 2:
        leaf = leaf[0]
    leaf[0] = 2.0
    fails(node_a, node_b, "root" + "[0]" * 41, "1.0 != 2.0")


def test_deep_nesting_needs_no_recursion() -> None:
    a: Any = 0
    b: Any = 0
    for _ in range(5_000):  # far deeper than Python's recursion limit
        a, b = [a], [b]
    assert_equal(a, b)


# --------------------------------------------------------------------------- NumPy


def test_arrays_equal() -> None:
    x = np.arange(12.0).reshape(3, 4)
    assert_equal(x, x.copy())
    assert_equal(np.asfortranarray(x), x.copy())  # memory order is not compared
    assert_equal(np.array([1.0, NAN, -0.0]), np.array([1.0, NAN, -0.0]))
    assert_equal(np.array(["a", "bc"]), np.array(["a", "bc"]))
    assert_equal(np.array([b"a"]), np.array([b"a"]))
    assert_equal(np.array([True, False]), np.array([True, False]))
    assert_equal(np.zeros((0, 3)), np.zeros((0, 3)))
    assert_equal(np.array(5), np.array(5))
    assert_equal(np.array(["2020-01-01", "NaT"], dtype="M8[s]"), np.array(["2020-01-01", "NaT"], dtype="M8[s]"))
    assert_equal(np.array([1, "NaT"], dtype="m8[ms]"), np.array([1, "NaT"], dtype="m8[ms]"))
    assert_equal(np.array([complex(NAN, 1), 2j]), np.array([complex(NAN, 1), 2j]))
    assert_equal(np.array([1.0], dtype=np.longdouble), np.array([1.0], dtype=np.longdouble))
    assert_equal(np.array([1.0], dtype=np.float16), np.array([1.0], dtype=np.float16))


def test_array_mismatches() -> None:
    x = np.arange(12.0).reshape(3, 4)
    y = x.copy()
    y[1, 3] = 0.25
    y[2, 0] = -1
    fails({"w": x}, {"w": y}, "root['w'][1, 3]", "7.0 != 0.25 (2 of 12 elements differ)")
    fails(x, x.astype(np.float32), "root", "dtype float64 != float32")
    fails(x, x.reshape(4, 3), "root", "shape (3, 4) != (4, 3)")
    fails(x.astype(">f8"), x.astype("<f8"), "root", "dtype >f8 != float64")
    fails(np.array([NAN, 1.0]), np.array([1.0, NAN]), "root[0]", "nan != 1.0 (2 of 2 elements differ)")
    fails(np.array([-0.0]), np.array([0.0]), "root[0]", "-0.0 != 0.0")
    assert_equal(np.array([-0.0]), np.array([0.0]), check_type=False)
    fails(np.array(3), np.array(4), "root", "3 != 4")  # 0-d: no index
    fails(np.array(["a", "b"]), np.array(["a", "c"]), "root[1]", "'b' != 'c'")
    fails(np.array(["2020", "NaT"], "M8[D]"), np.array(["NaT", "NaT"], "M8[D]"), "root[0]")
    fails(np.array([1 + 1j]), np.array([1 + 2j]), "root[0]")
    fails(x, x.tolist(), "root", "type numpy.ndarray != list")
    assert_equal(x, x.tolist(), check_type=False)
    assert_equal(np.arange(3), np.arange(3.0), check_type=False)


def test_array_tolerance() -> None:
    x = np.linspace(0, 1, 5)
    assert_equal(x, x + 1e-10, atol=1e-9)
    assert_equal(x * (1 + 1e-10), x, rtol=1e-9)
    fails(x, x + 1e-3, "root[0]", "(5 of 5 elements differ)", atol=1e-9)
    assert_equal(np.array([NAN, np.inf]), np.array([NAN, np.inf]), rtol=0.1)


def test_object_structured_and_masked_arrays() -> None:
    oa = np.array([1, "x", None, [1, 2]], dtype=object)
    ob = np.array([1, "x", None, [1, 2]], dtype=object)
    assert_equal(oa, ob)
    ob[3] = [1, 3]
    fails(oa, ob, "root[3][1]", "2 != 3")
    grid = np.empty((2, 2), dtype=object)
    grid[:] = 0
    other = grid.copy()
    other[1, 0] = 0.0
    fails(grid, other, "root[1, 0]", "type int != float")

    dtype = np.dtype([("id", "<i4"), ("xy", "<f8", (2,)), ("sub", [("a", "u1")])])
    sa, sb = np.zeros(3, dtype), np.zeros(3, dtype)
    sa["xy"][:, 0] = NAN
    sb["xy"][:, 0] = NAN
    assert_equal(sa, sb)
    sb["xy"][2, 1] = 1.5
    fails(sa, sb, "root['xy'][2, 1]", "0.0 != 1.5")
    sb = sa.copy()
    sb["sub"]["a"][1] = 9
    fails(sa, sb, "root['sub']['a'][1]", "0 != 9")
    fails(sa, np.zeros(3, [("id", "<i4")]), "root", "dtype")

    ma = np.ma.masked_array([1.0, 2.0, 3.0], mask=[False, True, False])
    mb = np.ma.masked_array([1.0, 99.0, 3.0], mask=[False, True, False])
    assert_equal(ma, mb)  # masked values do not count
    fails(ma, np.ma.masked_array([1.0, 2.0, 3.0], mask=False), "root.mask[1]", "True != False")
    fails(ma, np.ma.masked_array([1.0, 2.0, 4.0], mask=[False, True, False]), "root[2]", "3.0 != 4.0")
    fails(ma, np.ma.masked_array(ma.data, mask=ma.mask, fill_value=-1.0), "root.fill_value")
    fails(ma, ma.data, "root", "type numpy.ma.MaskedArray != numpy.ndarray")


def test_numpy_scalars_dtypes_generators() -> None:
    assert_equal(np.float32(1.5), np.float32(1.5))
    assert_equal(np.float64(NAN), np.float64(NAN))
    fails(np.float32(1.5), np.float64(1.5), "root", "type numpy.float32 != numpy.float64")
    fails(np.float64(1.5), 1.5, "root", "type numpy.float64 != float")
    fails(np.int64(3), np.int64(4), "root", "3 != 4")
    fails(np.float64(-0.0), np.float64(0.0), "root", "-0.0 != 0.0")
    assert_equal(np.dtype("f8"), np.dtype("f8"))
    fails([np.dtype("<f8")], [np.dtype(">f8")], "root[0]")
    assert_equal(np.random.default_rng(3), np.random.default_rng(3))
    fails(np.random.default_rng(3), np.random.default_rng(4), "root.bit_generator.state['state']['state']")
    assert_equal(np.random.RandomState(3), np.random.RandomState(3))
    fails(np.random.RandomState(3), np.random.RandomState(4), "root.get_state()['state']['key'][0]", "(624 of 624 elements differ)")


# -------------------------------------------------------------------------- pandas


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": [1.0, NAN, 3.0],
            "n": [1, 2, 3],
            "cat": pd.Categorical(["a", "b", "a"], categories=["a", "b", "c"]),
            "when": pd.date_range("2024-03-30", periods=3, freq="D", tz="Europe/Paris"),
            "s": ["u", "v", "w"],
        }
    )


def test_pandas_frames() -> None:
    df = frame()
    assert_equal({"df": df}, {"df": frame()})
    other = frame()
    other.loc[2, "x"] = 3.5
    msg = fails({"df": df}, {"df": other}, "root['df']", 'column name="x"')
    assert "values are different" in msg
    tz = frame()
    tz["when"] = tz["when"].dt.tz_convert("UTC")  # the same instants in another zone
    fails(df, tz, "root", 'column name="when"')
    cats = frame()
    cats["cat"] = cats["cat"].cat.remove_unused_categories()
    fails(df, cats, "root", 'column name="cat"')
    ordered = frame()
    ordered["cat"] = ordered["cat"].cat.as_ordered()
    fails(df, ordered, "root", 'column name="cat"')
    fails(df, df.astype({"n": "int32"}), "root", "dtype")
    assert_equal(df, df.astype({"n": "int32"}), check_type=False)
    indexed = frame()
    indexed.index = pd.Index([0, 1, 2])
    fails(df, indexed, "root", "root.index classes are different")  # RangeIndex vs Index
    assert_equal(df, indexed, check_type=False)
    near = frame()
    near["x"] = near["x"] + 1e-12
    fails(df, near, "root", 'column name="x"')
    assert_equal(df, near, rtol=1e-9)
    attrs = frame()
    attrs.attrs["source"] = "sensor"
    fails(df, attrs, "root.attrs", "'source' only in expected")


def test_pandas_series_index_scalars() -> None:
    s = pd.Series([1.0, NAN], name="s", index=pd.Index(["a", "b"], name="k"))
    assert_equal(s, s.copy())
    fails(s, s.rename("t"), "root", "name")
    fails([s], [pd.Series([1.0, 2.0], name="s", index=s.index)], "root[0]")
    assert_equal(pd.MultiIndex.from_tuples([(1, "a"), (2, "b")]), pd.MultiIndex.from_tuples([(1, "a"), (2, "b")]))
    fails(pd.Index([1, 2]), pd.Index([1, 3]), "root")
    assert_equal(pd.array([1, None], dtype="Int64"), pd.array([1, None], dtype="Int64"))
    fails(pd.array([1, None], dtype="Int64"), pd.array([1, 2], dtype="Int64"), "root")
    assert_equal(pd.Categorical(["a", "b"]), pd.Categorical(["a", "b"]))
    fails(pd.Categorical(["a", "b"]), pd.Categorical(["a", "a"]), "root")
    ts = pd.Timestamp("2020-01-01", tz="UTC")
    assert_equal(ts, pd.Timestamp("2020-01-01", tz="UTC"))
    fails(ts, ts.tz_convert("Europe/Paris"), "root")
    fails(pd.Timedelta(1, "s"), pd.Timedelta(2, "s"), "root")
    assert_equal([pd.NaT, pd.NA], [pd.NaT, pd.NA])
    fails(pd.Period("2020Q1"), pd.Period("2020Q2"), "root")
    assert_equal(pd.CategoricalDtype(["a"]), pd.CategoricalDtype(["a"]))
    fails(pd.CategoricalDtype(["a"]), pd.CategoricalDtype(["b"]), "root")
    fails(s, s.to_frame(), "root", "type pandas.Series != pandas.DataFrame")


# --------------------------------------------------------------------- SciPy sparse


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse(fmt: str) -> None:
    dense = np.array([[0.0, 1.5, 0.0], [NAN, 0.0, -2.0]])
    m = sp.csr_matrix(dense).asformat(fmt)
    assert_equal(m, sp.csr_matrix(dense).asformat(fmt))
    assert_equal([m], [m.copy()])
    changed = dense.copy()
    changed[1, 2] = 4.0
    fails({"m": m}, {"m": sp.csr_matrix(changed).asformat(fmt)}, "root['m'][1, 2]", "-2.0 != 4.0 (1 of 3 stored entries differ)")
    added = dense.copy()
    added[0, 0] = 7.0
    fails(m, sp.csr_matrix(added).asformat(fmt), "root[0, 0]", "0.0 != 7.0")
    other = "csc" if fmt == "csr" else "csr"
    fails(m, m.asformat(other), "root", "type scipy.sparse")
    assert_equal(m, m.asformat(other), check_type=False)
    fails(m, m.astype(np.float32), "root", "dtype float64 != float32")
    fails(m, sp.csr_matrix(np.zeros((3, 3))).asformat(fmt), "root", "shape (2, 3) != (3, 3)")
    arr = sp.csr_array(dense).asformat(fmt)
    assert_equal(arr, sp.csr_array(dense).asformat(fmt))
    fails(m, arr, "root", "type")


def test_sparse_duplicates_and_explicit_zeros() -> None:
    dup = sp.coo_matrix(([1.0, 2.0, 0.0], ([0, 0, 1], [1, 1, 0])), shape=(2, 2))
    summed = sp.coo_matrix(([3.0], ([0], [1])), shape=(2, 2))
    assert_equal(dup, summed)  # the same values: duplicates add up, a stored 0 is a 0
    fails(dup, sp.coo_matrix(([3.5], ([0], [1])), shape=(2, 2)), "root[0, 1]", "3.0 != 3.5")
    fails(dup, dup.tocsr(), "root", "type")
    assert_equal(sp.dok_array(np.eye(2)), sp.dok_array(np.eye(2)))
    assert_equal(sp.lil_matrix(np.eye(2)), sp.lil_matrix(np.eye(2)))


# -------------------------------------------------------------------------- PyTorch


def test_tensors() -> None:
    t = torch.arange(6.0).reshape(2, 3)
    assert_equal(t, t.clone())
    assert_equal(torch.tensor([1.0, NAN]), torch.tensor([1.0, NAN]))
    assert_equal(torch.tensor([1.0, NAN], dtype=torch.bfloat16), torch.tensor([1.0, NAN], dtype=torch.bfloat16))
    assert_equal(torch.tensor([1 + 2j]), torch.tensor([1 + 2j]))
    u = t.clone()
    u[1, 2] = NAN
    fails({"t": t}, {"t": u}, "root['t'][1, 2]", "5.0 != nan (1 of 6 elements differ)")
    fails(t, t.double(), "root", "dtype torch.float32 != torch.float64")
    fails(t, t.reshape(3, 2), "root", "shape (2, 3) != (3, 2)")
    fails(t, t.clone().requires_grad_(), "root", "requires_grad False != True")
    fails(t, torch.empty(2, 3, device="meta"), "root", "device cpu != meta")
    assert_equal(torch.empty(2, device="meta"), torch.empty(2, device="meta"))
    fails(torch.nn.Parameter(t.clone()), t.clone(), "root", "type torch.nn.parameter.Parameter != torch.Tensor")
    assert_equal(torch.nn.Parameter(t.clone()), torch.nn.Parameter(t.clone()))
    assert_equal(t.to_sparse(), t.to_sparse())
    fails(t.to_sparse(), t, "root", "layout")
    assert_equal(t.to(torch.float64), t, check_type=False)
    assert_equal([torch.float16, torch.device("cpu"), torch.Size([2, 3])], [torch.float16, torch.device("cpu"), torch.Size([2, 3])])
    fails(torch.float16, torch.bfloat16, "root")
    assert_equal(t, t + 1e-7, atol=1e-6)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert_equal(g1, g2)
    fails_like(g1, torch.Generator().manual_seed(2), r"^root\.get_state\(\)\[\d+\]: ")


def small_net(seed: int) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Dropout(0.25), torch.nn.Linear(4, 2))


def test_modules() -> None:
    assert_equal(small_net(0), small_net(0))
    fails({"net": small_net(0)}, {"net": small_net(1)}, "root['net'].state_dict()['0.weight'][0, 0]")
    net = small_net(0)
    with torch.no_grad():
        net[3].bias[1] += 1
    fails(small_net(0), net, "root.state_dict()['3.bias'][1]", "(1 of 2 elements differ)")
    net = small_net(0)
    net[2].p = 0.5
    fails(small_net(0), net, "root[2].p", "0.25 != 0.5")
    fails(small_net(0), small_net(0).eval(), "root.training", "True != False")
    net = small_net(0)
    net[0].weight.requires_grad_(False)
    fails(small_net(0), net, "root[0].weight", "requires_grad True != False")
    fails(
        torch.nn.BatchNorm1d(3),
        torch.nn.BatchNorm1d(3, track_running_stats=False),
        "root.state_dict()",
        "keys differ: 'running_mean', 'running_var', 'num_batches_tracked' only in actual",
    )
    fails(small_net(0), torch.nn.Sequential(torch.nn.Linear(3, 4)), "root", "submodules differ")
    bigger = torch.nn.Sequential(*small_net(0), torch.nn.Tanh())
    fails(small_net(0), bigger, "root", "submodules differ")


# --------------------------------------------------------------------- scikit-learn


def data(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(60, 3))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    return X, y


def test_estimators() -> None:
    X, y = data(0)
    fitted = LogisticRegression().fit(X, y)
    assert_equal(fitted, LogisticRegression().fit(X, y))
    fails_like(fitted, LogisticRegression().fit(*data(1)), r"^root\.(n_iter_|coef_|intercept_)\[\d+(, \d+)?\]: .* elements differ\)$")
    fails(fitted, LogisticRegression(), "root", "attributes differ: 'n_features_in_', 'classes_'")
    fails(LogisticRegression(C=1.0), LogisticRegression(C=2.0), "root.C", "1.0 != 2.0")
    fails(fitted, PCA(), "root", "type sklearn.linear_model._logistic.LogisticRegression != sklearn.decomposition._pca.PCA")
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    same = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    assert_equal({"model": pipe}, {"model": same})
    X2, y2 = data(2)
    other = make_pipeline(StandardScaler(), LogisticRegression()).fit(X2, y2)
    fails({"model": pipe}, {"model": other}, "root['model'].steps[0][1].mean_[0]")
    other.steps[0] = ("standardscaler", StandardScaler().fit(X))
    fails({"model": pipe}, {"model": other}, "root['model'].steps[1][1].coef_[0, 0]")


# ------------------------------------------------------------ objects and callables


def test_generic_objects() -> None:
    assert_equal(Plain(a=1, b=[2.0]), Plain(a=1, b=[2.0]))
    fails(Plain(a=1, b=[2.0]), Plain(a=1, b=[2.5]), "root.b[0]", "2.0 != 2.5")
    fails(Plain(a=1), Plain(a=1, c=2), "root", "attributes differ: 'c' only in expected")
    assert_equal(Plain(a=1, b=2), Plain(b=2, a=1))  # attribute order does not matter
    fails(Plain(a=1), Config("a"), "root", "type test_testing.Plain != test_testing.Config")
    assert_equal(Slotted(1, hidden=2), Slotted(1, hidden=2))
    fails(Slotted(1), Slotted(2), "root.x", "1 != 2")
    fails(Slotted(1, hidden=2), Slotted(1, hidden=3), "root._Slotted__hidden", "2 != 3")
    fails(Slotted(1, hidden=2), Slotted(1), "root", "'_Slotted__hidden' only in actual")
    assert_equal(WithState(1, cache="a"), WithState(1, cache="b"))  # only what __getstate__ keeps
    fails(WithState(1), WithState(2), "root.value", "1 != 2")
    assert_equal(object(), object())


def test_dataclasses() -> None:
    assert_equal(Config("a", np.ones(2)), Config("a", np.ones(2)))
    fails(Config("a", np.ones(2)), Config("a", np.zeros(2)), "root.weights[0]", "1.0 != 0.0 (2 of 2 elements differ)")
    fails(Config("a"), Config("b"), "root.name", "'a' != 'b'")
    assert_equal(SlotConfig(0.1, [1, 2]), SlotConfig(0.1, [1, 2]))
    fails(SlotConfig(0.1, [1, 2]), SlotConfig(0.1, [1, 3]), "root.layers[1]", "2 != 3")
    extra = Config("a")
    extra.note = "x"  # type: ignore[attr-defined]
    fails(extra, Config("a"), "root", "'note' only in actual")


def test_callables_by_identity_or_name() -> None:
    assert_equal([helper, Plain, len, np.log1p, np.mean, os.path.join], [helper, Plain, len, np.log1p, np.mean, os.path.join])
    fails(helper, other_helper, "root", "function test_testing.helper != test_testing.other_helper")
    fails(Plain, Slotted, "root", "class test_testing.Plain != test_testing.Slotted")
    fails(np.log1p, np.log, "root", "ufunc numpy.log1p != numpy.log")
    fails(len, abs, "root", "builtins.len != builtins.abs")

    def local() -> None: ...

    def local2() -> None: ...

    local2.__qualname__ = local.__qualname__
    fails(local, local2, "root", "is not the same object")
    fails(lambda: 1, lambda: 1, "root", "is not the same object")
    # a class reloaded from its module is a new object with the same name
    twin = type("Plain", (), {"__module__": Plain.__module__, "__qualname__": Plain.__qualname__})
    assert_equal(Plain, twin)
    assert_equal(functools.partial(helper, 1, k=2), functools.partial(helper, 1, k=2))
    fails(functools.partial(helper, 1, k=2), functools.partial(helper, 1, k=3), "root.keywords['k']", "2 != 3")
    fails(functools.partial(helper, 1), functools.partial(other_helper, 1), "root.func")
    assert_equal(WithState(1).__getstate__, WithState(1).__getstate__)
    fails(WithState(1).__getstate__, WithState(2).__getstate__, "root.__self__.value", "1 != 2")
    rng_a, rng_b = np.random.RandomState(0), np.random.RandomState(1)
    fails(rng_a.random_sample, rng_b.random_sample, "root.__self__.get_state()['state']['key'][0]", "0 != 1")


class Text(str):
    pass


class Count(int):
    pass


class Registry(dict):  # type: ignore[type-arg]
    pass


def test_subclasses_of_builtins_and_namespaces() -> None:
    assert_equal(Text("a"), Text("a"))
    fails(Text("a"), Text("b"), "root", "'a' != 'b'")
    fails(Text("a"), "a", "root", "type test_testing.Text != str")
    ca, cb = Count(3), Count(3)
    ca.unit, cb.unit = "m", "m"  # type: ignore[attr-defined]
    assert_equal(ca, cb)
    cb.unit = "s"  # type: ignore[attr-defined]
    fails(ca, cb, "root.unit", "'m' != 's'")
    fails(Count(3), Count(4), "root", "3 != 4")
    ra, rb = Registry(a=1), Registry(a=1)
    ra.meta, rb.meta = {"v": 1}, {"v": 2}  # type: ignore[attr-defined]
    fails(ra, rb, "root.meta['v']", "1 != 2")
    assert_equal(types.SimpleNamespace(x=[1]), types.SimpleNamespace(x=[1]))
    fails(types.SimpleNamespace(x=[1]), types.SimpleNamespace(x=[2]), "root.x[0]", "1 != 2")
    assert_equal(np.random.PCG64(1), np.random.PCG64(1))
    fails(np.random.PCG64(1), np.random.PCG64(2), "root.state['state']['state']")
    fails(np.mean, np.sum, "root", "numpy.mean != numpy.sum")
    fails(str.upper, str.lower, "root", "builtins.str.upper != builtins.str.lower")
    fails([].append, [1].append, "root.__self__", "length 0 != 1")


def test_objects_without_python_state() -> None:
    lock = threading.Lock()
    assert_equal(lock, lock)
    fails(lock, threading.Lock(), "root", "compared with ==")
    assert_equal(re.compile("a+", re.I), re.compile("a+", re.I))  # through __reduce_ex__
    fails(re.compile("a+"), re.compile("b+"), "root.__reduce__()[1][0]", "'a+' != 'b+'")


# ------------------------------------------------------------------- assert_roundtrip


def test_roundtrip_objects(tmp_path: pathlib.Path) -> None:
    X, y = data(0)
    objects = {
        "builtins": [1, -0.0, NAN, "s", b"b", (1, 2), {3}, collections.deque([1], maxlen=4), dt.date(2020, 1, 1)],
        "arrays": {"f": np.arange(6.0).reshape(2, 3), "s": np.array(["a", "bc"]), "m": np.ma.masked_array([1, 2], mask=[0, 1])},
        "frame": frame(),
        "sparse": [sp.csr_matrix(np.eye(3)), sp.csc_array(np.eye(2))],
        "tensor": torch.arange(4.0),
        "net": small_net(0),
        "model": make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y),
    }
    shared = np.ones(3)
    objects["shared"] = [shared, shared]
    loop: list[Any] = ["loop"]
    loop.append(loop)
    objects["loop"] = loop
    for key, obj in objects.items():
        loaded = assert_roundtrip(obj)
        assert type(loaded) is type(obj), key
    loaded = assert_roundtrip(objects, tmp_path=tmp_path)
    assert loaded["shared"][0] is loaded["shared"][1]
    assert [p.suffix for p in tmp_path.iterdir()] == [".amber"]


def test_roundtrip_compress_and_mmap(tmp_path: pathlib.Path) -> None:
    obj = {"big": np.arange(100_000, dtype=np.float64), "frame": frame(), "t": torch.ones(50, 50)}
    assert_roundtrip(obj, compress="zstd")
    loaded = assert_roundtrip(obj, mmap=True, tmp_path=tmp_path)
    assert not loaded["big"].flags.writeable  # mapped, read-only
    loaded = assert_roundtrip(obj, mmap=True)  # the temporary file goes away; the map stays valid
    assert float(loaded["big"][-1]) == 99_999.0
    loaded, meta = assert_roundtrip(obj, with_metadata=True, verify=False)
    assert meta is None


def test_roundtrip_user_classes_and_errors() -> None:
    obj = {"p": Plain(a=np.ones(2), cfg=Config("c", [1.0]))}
    with pytest.raises(amber.UntrustedTypeError):  # amber's own error, unchanged
        assert_roundtrip(obj)
    loaded = assert_roundtrip(obj, trusted=[__name__])
    assert type(loaded["p"]) is Plain
    with pytest.raises(amber.UnsupportedTypeError):
        assert_roundtrip({"f": lambda: 1})
    with pytest.raises(amber.FormatError):
        assert_roundtrip([1], format="no-such-format")
    with pytest.raises(AssertionError, match=r"^after amber\.dump and amber\.load: root\['x'\]\.note: 'lost' != 'kept'"):
        assert_roundtrip({"x": Lossy(1, "kept")}, trusted=[__name__])


# ----------------------------------------------------------- assert_same_predictions


def test_same_predictions_pipeline() -> None:
    X, y = data(0)
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    loaded = assert_roundtrip(pipe)
    assert assert_same_predictions(pipe, loaded, X) == ["predict", "predict_proba", "decision_function"]
    assert assert_same_predictions(pipe, loaded, X, methods=["predict_proba"]) == ["predict_proba"]
    other = make_pipeline(StandardScaler(), LogisticRegression()).fit(*data(3))
    with pytest.raises(AssertionError, match=r"^predict\(X\)\[\d+\]: "):
        assert_same_predictions(pipe, other, X)
    with pytest.raises(AssertionError, match=r"^predict_proba\(X\)\[\d+, \d\]: "):
        assert_same_predictions(pipe, other, X, methods=["predict_proba"])
    nudged = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    nudged[-1].coef_ = nudged[-1].coef_ * (1 + 1e-12)
    with pytest.raises(AssertionError, match=r"^decision_function\(X\)"):
        assert_same_predictions(pipe, nudged, X, methods=["decision_function"])
    assert assert_same_predictions(pipe, nudged, X, rtol=1e-9) == ["predict", "predict_proba", "decision_function"]

    reducer = make_pipeline(StandardScaler(), PCA(n_components=2)).fit(X)
    assert assert_same_predictions(reducer, assert_roundtrip(reducer), X) == ["transform", "score_samples"]
    with pytest.raises(AssertionError, match="nothing compared"):
        assert_same_predictions(pipe, pipe, X, methods=["transform", "no_such_method"])


class Partial:
    """predict works, predict_proba is not implemented, transform is missing on model_b."""

    def __init__(self, offset: float = 0.0, with_transform: bool = True) -> None:
        self.offset = offset
        self.with_transform = with_transform

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray(X).sum(axis=1) + self.offset

    def predict_proba(self, X: Any) -> np.ndarray:
        raise NotImplementedError

    def __getattr__(self, name: str) -> Any:
        if name == "transform" and self.__dict__.get("with_transform"):
            return lambda X: np.asarray(X) * 2
        raise AttributeError(name)


def test_same_predictions_method_availability() -> None:
    X = np.ones((3, 2))
    assert assert_same_predictions(Partial(), Partial(), X) == ["predict", "transform"]
    with pytest.raises(AssertionError, match=r"^predict\(X\)\[0\]: 2.0 != 2.5 \(3 of 3 elements differ\)"):
        assert_same_predictions(Partial(), Partial(0.5), X)
    with pytest.raises(AssertionError, match=r"^transform\(X\): model_b has no method 'transform'"):
        assert_same_predictions(Partial(), Partial(with_transform=False), X)
    with pytest.raises(AssertionError, match="nothing compared"):
        assert_same_predictions(object(), object(), X)


def test_same_predictions_torch_module() -> None:
    net = small_net(0)  # in training mode: dropout would make two calls differ
    loaded = assert_roundtrip(net)
    X = torch.randn(8, 3, generator=torch.Generator().manual_seed(0))
    assert assert_same_predictions(net, loaded, X) == ["forward"]
    assert net.training and net[2].training and loaded.training  # modes restored
    frozen = small_net(0).eval()
    assert assert_same_predictions(frozen, small_net(0), X) == ["forward"]
    assert not frozen.training
    with pytest.raises(AssertionError, match=r"^forward\(X\)\[0, 0\]: "):
        assert_same_predictions(net, small_net(1), X)
    nudged = small_net(0)
    with torch.no_grad():
        nudged[3].bias += 1e-7
    assert assert_same_predictions(net, nudged, X, atol=1e-5) == ["forward"]


# ------------------------------------------------------------------------- imports


def test_import_is_lazy() -> None:
    code = (
        "import sys, amber.testing\n"
        "heavy = [m for m in ('torch', 'pandas', 'scipy', 'sklearn') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
