"""pandas: frames, series, indexes, extension arrays and scalars round-trip exactly, through
bytes, files, memory maps and lazy access; hostile pandas nodes end in an AmberError.

Exact means: equal values (bit for bit where ``check_exact`` compares them), equal dtypes,
the same Index classes (and frequencies), the same Python types inside object columns,
``attrs`` and ``flags`` kept.
"""

from __future__ import annotations

import datetime as dt
import decimal
import zoneinfo
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import amber
from _hostile import T, build, parse, raw_blob

pytestmark = pytest.mark.timeout(120)

N = 7
PARIS = zoneinfo.ZoneInfo("Europe/Paris")

# ---------------------------------------------------------------------------------------
# exact comparison
# ---------------------------------------------------------------------------------------


def _types(values: Any) -> list[str]:
    return [type(v).__qualname__ for v in np.asarray(values, dtype=object).tolist()]


def assert_index_same(a: pd.Index, b: pd.Index) -> None:
    assert type(a) is type(b), (type(a), type(b))
    pd.testing.assert_index_equal(a, b, exact=True, check_exact=True, check_names=True)
    assert a.dtype == b.dtype and str(a.dtype) == str(b.dtype)
    assert a.names == b.names
    if isinstance(a, pd.MultiIndex):
        for la, lb in zip(a.levels, b.levels):
            assert_index_same(la, lb)
    else:
        assert getattr(a, "freq", None) == getattr(b, "freq", None)
        if a.dtype == object:
            assert _types(a) == _types(b)


def assert_array_same(a: Any, b: Any) -> None:
    assert type(a) is type(b)
    assert a.dtype == b.dtype and str(a.dtype) == str(b.dtype)
    pd.testing.assert_extension_array_equal(a, b, check_exact=True)


def assert_series_same(a: pd.Series, b: pd.Series) -> None:
    assert type(a) is type(b)
    pd.testing.assert_series_equal(a, b, check_exact=True, check_freq=True, check_flags=True, check_index_type=True)
    assert a.dtype == b.dtype and str(a.dtype) == str(b.dtype)
    assert_index_same(a.index, b.index)
    assert a.name == b.name and type(a.name) is type(b.name)
    assert a.attrs.keys() == b.attrs.keys()
    if a.dtype == object:
        assert _types(a) == _types(b)


def assert_frame_same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert type(a) is type(b)
    pd.testing.assert_frame_equal(
        a, b, check_exact=True, check_freq=True, check_flags=True, check_index_type=True, check_column_type=True
    )
    assert [str(d) for d in a.dtypes] == [str(d) for d in b.dtypes]
    assert list(a.dtypes) == list(b.dtypes)
    assert_index_same(a.index, b.index)
    assert_index_same(a.columns, b.columns)
    assert a.flags.allows_duplicate_labels == b.flags.allows_duplicate_labels
    assert a.attrs.keys() == b.attrs.keys()
    for i in range(a.shape[1]):
        if a.dtypes.iloc[i] == object:
            assert _types(a.iloc[:, i]) == _types(b.iloc[:, i])


def assert_same(a: Any, b: Any) -> None:
    if isinstance(a, pd.DataFrame):
        assert_frame_same(a, b)
    elif isinstance(a, pd.Series):
        assert_series_same(a, b)
    elif isinstance(a, pd.Index):
        assert_index_same(a, b)
    elif isinstance(a, pd.api.extensions.ExtensionArray):
        assert_array_same(a, b)
    else:
        assert type(a) is type(b)
        assert (a is b) if a is pd.NA or a is pd.NaT else (a == b)
        if isinstance(a, pd.Timestamp):
            assert a.unit == b.unit and a.tz == b.tz


# ---------------------------------------------------------------------------------------
# samples
# ---------------------------------------------------------------------------------------


def _mixed() -> pd.Series:
    return pd.Series(
        [1, 2.5, "x", None, {"k": [1, 2]}, decimal.Decimal("1.5"), pd.Timestamp("2020-01-01", tz="UTC")],
        dtype=object,
    )


COLUMNS: dict[str, Callable[[], Any]] = {
    "int64": lambda: np.arange(N, dtype=np.int64) - 3,
    "int8": lambda: np.arange(N, dtype=np.int8),
    "uint32": lambda: np.arange(N, dtype=np.uint32) * 7,
    "float32": lambda: np.linspace(-1, 1, N, dtype=np.float32),
    "float64-special": lambda: np.array([0.0, -0.0, np.nan, np.inf, -np.inf, 1e-310, 3.5]),
    "bool": lambda: np.arange(N) % 2 == 0,
    "complex": lambda: np.arange(N) * (1 + 2j),
    "category": lambda: pd.Categorical(list("abcab") + [None, "c"]),
    "category-ordered-int": lambda: pd.Categorical([3, 1, 2, 3, None, 1, 2], categories=[3, 2, 1], ordered=True),
    "Int64": lambda: pd.array([1, None, 3, -4, 5, None, 7], dtype="Int64"),
    "UInt8": lambda: pd.array([1, None, 3, 4, 255, None, 7], dtype="UInt8"),
    "Float32": lambda: pd.array([1.5, None, 3, 4, np.nan, None, 7], dtype="Float32"),
    "boolean": lambda: pd.array([True, None, False, True, True, None, False], dtype="boolean"),
    "str": lambda: pd.array(["a", None, "ü", "", "🎉", "x" * 50, "z"], dtype="str"),
    "string-pyarrow": lambda: pd.array(["a", None, "b", "", "ß", "c", "d"], dtype="string[pyarrow]"),
    "string-python": lambda: pd.array(["a", None, "b", "", "ß", "c", "d"], dtype="string[python]"),
    "str-python-nan": lambda: pd.array(["a", None, "b", "", "ß", "c", "d"], dtype=pd.StringDtype("python", np.nan)),
    "object-str": lambda: pd.Series(["a", None, "b", np.nan, pd.NA, "", "é\u2028"], dtype=object),
    "object-str-nul": lambda: pd.Series(["a\0b", "c", "", "\0", "d", "e", "f"], dtype=object),
    "object-str-surrogate": lambda: pd.Series(["\ud800", "a", "\udfff x", "b", "c", "d", "e"], dtype=object),
    "object-mixed": _mixed,
    "object-subclass": lambda: pd.Series([np.str_("a"), "b", "c", "d", "e", "f", "g"], dtype=object),
    "int64[pyarrow]": lambda: pd.array([1, 2, None, 4, 5, 6, 7], dtype="int64[pyarrow]"),
    "double[pyarrow]": lambda: pd.array([1.5, None, 3, 4, 5, 6, 7], dtype="double[pyarrow]"),
    "bool[pyarrow]": lambda: pd.array([True, None, False, True, True, False, None], dtype="bool[pyarrow]"),
    "large_string[pyarrow]": lambda: pd.array(list("abcdef") + [None], dtype=pd.ArrowDtype(pa.large_string())),
    "timestamp[pyarrow]": lambda: pd.array(
        pd.date_range("2020", periods=N, tz="UTC"), dtype=pd.ArrowDtype(pa.timestamp("us", tz="UTC"))
    ),
    "decimal[pyarrow]": lambda: pd.array(
        [decimal.Decimal("1.25")] * (N - 1) + [None], dtype=pd.ArrowDtype(pa.decimal128(10, 2))
    ),
    "list[pyarrow]": lambda: pd.array([[1, 2], [], None, [3], [4, 5, 6], [7], [8]], dtype=pd.ArrowDtype(pa.list_(pa.int64()))),
    "dictionary[pyarrow]": lambda: pd.array(
        pa.array(list("abcabca")).dictionary_encode(), dtype=pd.ArrowDtype(pa.dictionary(pa.int32(), pa.string()))
    ),
    "struct[pyarrow]": lambda: pd.array(
        pa.array([{"x": i, "y": str(i)} for i in range(N)]),
        dtype=pd.ArrowDtype(pa.struct([("x", pa.int64()), ("y", pa.string())])),
    ),
    "datetime-ns": lambda: pd.date_range("2020-01-01", periods=N, freq="37s").as_unit("ns").values,
    "datetime-s": lambda: np.array(["2020-01-01", "NaT", "1970-01-01", "2262-01-01", "1677-10-01", "2000-02-29", "1900-01-01"], dtype="M8[s]"),
    "datetime-tz": lambda: pd.array(pd.date_range("2021-03-27", periods=N, freq="h", tz=PARIS)),
    "datetime-tz-fixed": lambda: pd.array(pd.date_range("2021", periods=N, tz=dt.timezone(dt.timedelta(hours=5, minutes=30)))),
    "datetime-utc-nat": lambda: pd.array(pd.DatetimeIndex(["2020-01-01", None, "2021-06-01", None, "2022", "2023", "2024"], tz="UTC")),
    "timedelta": lambda: pd.to_timedelta([1, None, 3, -4, 5, 6, 7], unit="s").values,
    "period-M": lambda: pd.array(pd.period_range("2020-01", periods=N, freq="M")),
    "period-Q-nat": lambda: pd.array([pd.Period("2020Q1"), pd.NaT, pd.Period("2021Q3")] * 2 + [pd.NaT], dtype="period[Q-DEC]"),
    "interval-int": lambda: pd.array(pd.interval_range(0, N)),
    "interval-float-nan": lambda: pd.arrays.IntervalArray.from_arrays(
        [0.0, np.nan, 1, 2, 3, 4, 5], [0.5, np.nan, 2, 3, 4, 5, 6], closed="both"
    ),
    "interval-datetime": lambda: pd.array(pd.interval_range(pd.Timestamp("2020"), periods=N, freq="D", closed="left")),
}

INDEXES: dict[str, Callable[[], pd.Index]] = {
    "range": lambda: pd.RangeIndex(5, 5 + 3 * N, 3, name="r"),
    "int": lambda: pd.Index(np.arange(N) * 10, name="i"),
    "float": lambda: pd.Index(np.linspace(0, 1, N)),
    "str": lambda: pd.Index([f"r{i}" for i in range(N)], name="s"),
    "object-mixed": lambda: pd.Index([1, "a", 2.5, None, (1, 2), "b", 3], dtype=object),
    "object-tuples": lambda: pd.Index([(i, "x") for i in range(N)], tupleize_cols=False),
    "datetime-freq-D": lambda: pd.date_range("2020-01-01", periods=N, freq="D", name="when"),
    "datetime-freq-B": lambda: pd.date_range("2020-01-01", periods=N, freq="B"),
    "datetime-freq-W": lambda: pd.date_range("2020-01-01", periods=N, freq="W-WED"),
    "datetime-freq-ME-tz": lambda: pd.date_range("2020-01-31", periods=N, freq="ME", tz=PARIS),
    "datetime-nofreq": lambda: pd.DatetimeIndex(["2020-01-03", "2020-01-01", "NaT", "2020-02-01", "2021", "2022", "2023"]),
    "timedelta-freq": lambda: pd.timedelta_range("1s", periods=N, freq="15min"),
    "period": lambda: pd.period_range("2020-01", periods=N, freq="M", name="p"),
    "interval": lambda: pd.interval_range(0, N, closed="neither"),
    "categorical": lambda: pd.CategoricalIndex(list("abcabca"), categories=list("cba"), ordered=True, name="c"),
    "multi": lambda: pd.MultiIndex.from_arrays(
        [list("aabbccd"), [1, 2, 1, 2, 1, None, 2], pd.date_range("2020", periods=N)], names=["l", None, 3]
    ),
    "Int64": lambda: pd.Index(pd.array([1, 2, None, 4, 5, 6, 7], dtype="Int64")),
    "bool": lambda: pd.Index([True, False] * 3 + [True]),
}


def frame_all_columns() -> pd.DataFrame:
    df = pd.DataFrame({name: make() for name, make in COLUMNS.items()})
    df.index = pd.date_range("2021-01-01", periods=N, freq="D", name="day")
    df.attrs = {"source": "test", "nested": {"n": [1, 2, 3]}}
    return df


FRAMES: dict[str, Callable[[], pd.DataFrame]] = {
    "all-columns": frame_all_columns,
    "consolidated-2d": lambda: pd.DataFrame(np.arange(6 * N, dtype=np.float64).reshape(N, 6), columns=list("abcdef")),
    "fortran-block": lambda: pd.DataFrame(np.asfortranarray(np.arange(3 * N).reshape(N, 3))),
    "duplicate-columns": lambda: pd.DataFrame(np.arange(3 * N).reshape(N, 3), columns=["a", "b", "a"]).assign(
        c=["x"] * N
    ).set_axis(["a", "b", "a", "a"], axis=1),
    "int-columns": lambda: pd.DataFrame({0: np.arange(N), 5: np.arange(N) * 1.5, -3: ["s"] * N}),
    "tuple-columns": lambda: pd.DataFrame(
        np.arange(2 * N).reshape(N, 2), columns=pd.Index([(1, "a"), (2, "b")], tupleize_cols=False)
    ),
    "none-and-float-labels": lambda: pd.DataFrame({None: np.arange(N), 1.5: np.arange(N), "x": np.arange(N)}),
    "multiindex-rows-and-columns": lambda: pd.DataFrame(
        np.arange(4 * N).reshape(N, 4),
        index=pd.MultiIndex.from_arrays([list("aabbccd"), range(N)], names=["k", "n"]),
        columns=pd.MultiIndex.from_product([["x", "y"], [1, 2]], names=["top", "sub"]),
    ),
    "empty": lambda: pd.DataFrame(),
    "empty-rows": lambda: pd.DataFrame(
        {"a": np.array([], dtype=np.int32), "s": pd.array([], dtype="str"), "c": pd.Categorical([], categories=["u"]),
         "o": pd.Series([], dtype=object), "d": pd.to_datetime([]).tz_localize("UTC")}
    ),
    "empty-columns": lambda: pd.DataFrame(index=pd.Index(list("abc"), name="idx")),
    "no-duplicates-flag": lambda: pd.DataFrame({"a": [1, 2]}, index=["x", "y"]).set_flags(allows_duplicate_labels=False),
    "categorical-index": lambda: pd.DataFrame({"v": np.arange(N)}, index=INDEXES["categorical"]()),
    "interval-index": lambda: pd.DataFrame({"v": np.arange(N)}, index=INDEXES["interval"]()),
    "mixed-object-frame": lambda: pd.DataFrame({"m": _mixed(), "s": ["a"] * N, "o2": _mixed()[::-1].values}),
}

OBJECTS: dict[str, Callable[[], Any]] = {
    **{f"frame:{k}": v for k, v in FRAMES.items()},
    **{f"series:{k}": (lambda make=make, k=k: pd.Series(make(), name=k)) for k, make in COLUMNS.items()},
    **{f"index:{k}": v for k, v in INDEXES.items()},
    **{f"column-index:{k}": (lambda make=make: pd.DataFrame(np.zeros((2, N)), columns=make())) for k, make in INDEXES.items()},
    **{f"array:{k}": v for k, v in COLUMNS.items() if not isinstance(v(), (np.ndarray, pd.Series))},
    "array:numpy-extension": lambda: pd.arrays.NumpyExtensionArray(np.arange(4.0)),
    "array:numpy-extension-object": lambda: pd.arrays.NumpyExtensionArray(np.array(["a", None, 1], dtype=object)),
    "series:int-name": lambda: pd.Series([1, 2], name=7),
    "series:tuple-name": lambda: pd.Series([1, 2], name=("a", 1)),
    "series:no-name": lambda: pd.Series([1.5, 2.5]),
    "series:attrs-flags": lambda: pd.Series([1, 2], index=["a", "b"]).set_flags(allows_duplicate_labels=False),
    "series:empty": lambda: pd.Series([], dtype="float32"),
    "scalar:timestamp-tz-ns": lambda: pd.Timestamp("2021-03-28 01:59:59.123456789", tz=PARIS),
    "scalar:timestamp-s": lambda: pd.Timestamp("1500-01-01").as_unit("s"),
    "scalar:timedelta": lambda: pd.Timedelta(123456789, "ns"),
    "scalar:period": lambda: pd.Period("2020-05", "M"),
    "scalar:interval": lambda: pd.Interval(pd.Timestamp("2020"), pd.Timestamp("2021"), closed="left"),
    "scalar:nat": lambda: pd.NaT,
    "scalar:na": lambda: pd.NA,
}


def _with_attrs(obj: Any) -> Any:
    if isinstance(obj, (pd.DataFrame, pd.Series)) and not obj.attrs:
        obj.attrs = {"note": "kept", "weights": [1.5, 2.5]}
    return obj


@pytest.fixture(params=sorted(OBJECTS), ids=str)
def sample(request: pytest.FixtureRequest) -> Any:
    return _with_attrs(OBJECTS[request.param]())


# ---------------------------------------------------------------------------------------
# round trips
# ---------------------------------------------------------------------------------------


def test_roundtrip_bytes(sample: Any) -> None:
    out = amber.loads(amber.dumps(sample))
    assert_same(sample, out)
    if isinstance(sample, (pd.DataFrame, pd.Series)):
        assert out.attrs == sample.attrs


def test_roundtrip_file_and_mmap(sample: Any, tmp_path: Path) -> None:
    path = tmp_path / "x.amber"
    amber.dump(sample, path)
    assert_same(sample, amber.load(path))
    assert_same(sample, amber.load(path, mmap=True))


@pytest.mark.parametrize("compress", [True, "lz4"])
def test_roundtrip_compressed(compress: Any) -> None:
    df = frame_all_columns()
    assert_same(df, amber.loads(amber.dumps(df, compress=compress)))


def test_deterministic() -> None:
    a = amber.dumps(frame_all_columns(), deterministic=True)
    b = amber.dumps(frame_all_columns(), deterministic=True)
    assert a == b


def test_lazy_open_child_of_dict(tmp_path: Path) -> None:
    df = frame_all_columns()
    s = pd.Series(np.arange(1000.0), name="s")
    path = tmp_path / "d.amber"
    amber.dump({"df": df, "s": s, "n": 1}, path)
    with amber.open(path) as f:
        assert set(f.keys()) == {"df", "s", "n"}
        assert_same(df, f["df"])
        assert_same(s, f["s"])


def test_mmap_is_zero_copy_and_read_only(tmp_path: Path) -> None:
    df = pd.DataFrame({"a": np.arange(10_000.0), "b": np.arange(10_000)})
    path = tmp_path / "m.amber"
    amber.dump(df, path)
    out = amber.load(path, mmap=True)
    assert_same(df, out)
    for blk in out._mgr.blocks:
        assert not blk.values.flags.writeable  # a view of the file
    writable = out.copy()
    writable.iloc[0, 0] = -1.0
    assert writable.iloc[0, 0] == -1.0


def test_shared_frame_stored_once() -> None:
    df = pd.DataFrame({"a": np.arange(3)})
    out = amber.loads(amber.dumps({"x": df, "y": df}))
    assert out["x"] is out["y"]
    shallow = df.copy(deep=False)  # shares its block with df, but is another frame
    a, b = amber.loads(amber.dumps([df, shallow]))
    assert a is not b
    a.iloc[0, 0] = 99  # the loaded frames do not share memory behind pandas' back
    assert b.iloc[0, 0] == 0


def test_tiny_buffers_live_in_the_node() -> None:
    df = pd.DataFrame({"a": [1, 2, 3], "s": ["x", "y", None], "o": pd.Series(["p", None, "q"], dtype=object)})
    data = amber.dumps(df)
    assert parse(data).blobs == []
    out = amber.loads(data)
    assert_same(df, out)
    out.iloc[0, 0] = 5  # inline arrays are writable too


def test_block_layout_kept() -> None:
    df = pd.DataFrame(np.arange(40.0).reshape(10, 4), columns=list("abcd"))
    df["s"] = "x"
    df["t"] = "y"
    out = amber.loads(amber.dumps(df))
    assert [b.mgr_locs.as_array.tolist() for b in out._mgr.blocks] == [
        b.mgr_locs.as_array.tolist() for b in df._mgr.blocks
    ]
    assert_same(df, out)


def test_loaded_frame_is_usable() -> None:
    df = frame_all_columns()
    out = amber.loads(amber.dumps(df))
    assert out.groupby("category", observed=True)["int64"].sum().equals(df.groupby("category", observed=True)["int64"].sum())
    assert out["str"].str.upper().equals(df["str"].str.upper())
    assert out.loc["2021-01-02", "category"] == df.loc["2021-01-02", "category"]
    out["new"] = 1
    out.iloc[0, 0] = 100
    assert out.iloc[0, 0] == 100 and df.iloc[0, 0] != 100


def test_unsupported_pandas_types_name_themselves() -> None:
    sparse = pd.DataFrame({"sp": pd.arrays.SparseArray([0, 0, 1])})
    with pytest.raises(amber.UnsupportedTypeError, match="Sparse"):
        amber.dumps(sparse)
    with pytest.raises(amber.UnsupportedTypeError):
        amber.dumps(pd.Series([lambda x: x], dtype=object))


def test_pandas_is_imported_lazily() -> None:
    import subprocess
    import sys

    code = "import amber, sys; amber.dumps([1]); assert 'pandas' not in sys.modules and 'pyarrow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_numpy_frames_need_no_pyarrow(tmp_path: Path) -> None:
    """Without pyarrow, a frame without Arrow columns saves and loads, and a file with
    Arrow columns is refused with a DecodeError that says what to install."""
    import subprocess
    import sys

    arrow_file = tmp_path / "arrow.amber"
    amber.dump(pd.DataFrame({"s": pd.array(["a", "b"], dtype="string[pyarrow]")}), arrow_file)
    code = f"""
import sys
sys.modules["pyarrow"] = None  # import pyarrow now raises ImportError
import numpy as np, pandas as pd, amber
df = pd.DataFrame({{"a": np.arange(3), "o": pd.Series(["x", None, "z"], dtype=object),
                   "c": pd.Categorical([1, 2, 1]), "I": pd.array([1, None, 3], dtype="Int64"),
                   "s": ["x", None, "y"]}})
assert df["s"].dtype == pd.StringDtype("python", na_value=np.nan)
out = amber.loads(amber.dumps(df))
pd.testing.assert_frame_equal(out, df, check_exact=True)
assert list(out.dtypes) == list(df.dtypes)
try:
    amber.load({str(arrow_file)!r})
except amber.DecodeError as exc:
    assert "pip install pyarrow" in str(exc), exc
else:
    raise AssertionError("loaded Arrow columns without pyarrow")
"""
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------------------------
# property-based
# ---------------------------------------------------------------------------------------

_text = st.text(st.characters(codec="utf-8"), max_size=8)


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(0, 12))
    kinds = draw(st.lists(st.sampled_from(
        ["int", "float", "bool", "str", "object", "Int64", "boolean", "Float64", "category", "datetime", "string"]
    ), max_size=6))
    cols: dict[Any, Any] = {}
    for j, kind in enumerate(kinds):
        if kind == "int":
            v: Any = np.array(draw(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=n, max_size=n)), dtype=np.int64)
        elif kind == "float":
            v = np.array(draw(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=n, max_size=n)), dtype=float)
        elif kind == "bool":
            v = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
        elif kind == "str":
            v = pd.array(draw(st.lists(st.none() | _text, min_size=n, max_size=n)), dtype="str")
        elif kind == "string":
            v = pd.array(draw(st.lists(st.none() | _text, min_size=n, max_size=n)), dtype="string[python]")
        elif kind == "object":
            v = pd.Series(draw(st.lists(st.none() | st.text(max_size=8), min_size=n, max_size=n)), dtype=object)
        elif kind == "Int64":
            v = pd.array(draw(st.lists(st.none() | st.integers(-(2**63), 2**63 - 1), min_size=n, max_size=n)), dtype="Int64")
        elif kind == "boolean":
            v = pd.array(draw(st.lists(st.none() | st.booleans(), min_size=n, max_size=n)), dtype="boolean")
        elif kind == "Float64":
            v = pd.array(draw(st.lists(st.none() | st.floats(allow_nan=False), min_size=n, max_size=n)), dtype="Float64")
        elif kind == "category":
            v = pd.Categorical(draw(st.lists(st.none() | st.sampled_from("abc"), min_size=n, max_size=n)))
        else:
            ints = draw(st.lists(st.integers(-(2**62), 2**62), min_size=n, max_size=n))
            v = np.array(ints, dtype="M8[ns]")
        cols[f"c{j}" if draw(st.booleans()) else j] = v
    index = pd.RangeIndex(n) if draw(st.booleans()) else pd.Index([f"r{i}" for i in range(n)])
    df = pd.DataFrame(cols, index=index)
    if draw(st.booleans()):
        df = df.copy()  # consolidates the blocks
    return df


@settings(max_examples=50, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(frames())
def test_hypothesis_roundtrip(df: pd.DataFrame) -> None:
    assert_frame_same(df, amber.loads(amber.dumps(df)))


# ---------------------------------------------------------------------------------------
# hostile pandas nodes
# ---------------------------------------------------------------------------------------


class Exploded:
    """An amber file taken apart: the node tree (editable lists and dicts) and the raw
    bytes of every blob (editable), put back together by :meth:`bytes`."""

    def __init__(self, obj: Any) -> None:
        data = amber.dumps(obj, deterministic=True)
        p = parse(data)
        self.manifest = p.manifest
        self.tree = p.tree()
        self.blobs = [bytearray(data[b["offset"] : b["offset"] + b["nbytes"]]) for b in p.blobs]

    def bytes(self) -> bytes:
        return build(
            self.tree, [raw_blob(bytes(b)) for b in self.blobs],
            needs=self.manifest["needs"], refs=self.manifest["refs"],
        )

    def load(self) -> Any:
        return amber.loads(self.bytes())

    @property
    def meta(self) -> dict[str, Any]:
        return self.tree[1]

    def block(self, i: int) -> dict[str, Any]:
        return self.meta["blocks"][i]


def _sample_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "i": np.arange(4, dtype=np.int64),
            "o": pd.Series(["a", "bb", None, "c"], dtype=object),
            "c": pd.Categorical(list("abab")),
            "s": pd.array(["x", "y", None, "zz"], dtype="str"),
            "tz": pd.date_range("2020", periods=4, tz="UTC"),
            "iv": pd.interval_range(0, 4),
            "I": pd.array([1, None, 3, 4], dtype="Int64"),
        },
        index=pd.date_range("2020-01-01", periods=4, freq="D"),
    )


def _kind(e: Exploded, kind: str) -> dict[str, Any]:
    for b in e.meta["blocks"]:
        spec = b.get("ea") or (b.get("obj") or [None])[0]
        if spec is not None and spec.get("kind") == kind:
            return spec
    raise AssertionError(kind)


def _set(path: str, value: Any) -> Callable[[Exploded], None]:
    def edit(e: Exploded) -> None:
        *head, last = path.split("/")
        node: Any = e.meta
        for p in head:
            node = node[int(p)] if p.lstrip("-").isdigit() else node[p]
        node[int(last) if last.lstrip("-").isdigit() else last] = value

    return edit


def _replace(e: Exploded, holder: Any, key: Any, data: bytes) -> None:
    """Put ``data`` behind the buffer reference ``holder[key]``: inline bytes (tiny
    buffers) or a blob number."""
    if isinstance(holder[key], bytes):
        holder[key] = bytes(data)
    else:
        e.blobs[holder[key]] = bytearray(data)


def _blob_of(spec_path: Callable[[Exploded], Any], key: str, data: bytes) -> Callable[[Exploded], None]:
    def edit(e: Exploded) -> None:
        _replace(e, spec_path(e), key, data)

    return edit


def _arrow_string(e: Exploded) -> dict[str, Any]:
    return _kind(e, "arrow")["chunks"][0]


HOSTILE_FRAME: dict[str, Callable[[Exploded], None]] = {
    "placement-duplicate": lambda e: e.block(0).__setitem__("at", [0, 0]),
    "placement-out-of-range": lambda e: e.block(0).__setitem__("at", [99]),
    "placement-negative": lambda e: e.block(0).__setitem__("at", [-1]),
    "placement-bool": lambda e: e.block(0).__setitem__("at", [True]),
    "column-in-no-block": lambda e: e.meta["blocks"].pop(),
    "blocks-not-list": _set("blocks", 3),
    "block-not-map": _set("blocks/0", [1, 2]),
    "block-without-values": lambda e: e.block(0).pop("np"),
    "np-rows-mismatch": _set("blocks/0/np/shape", [1, 3]),
    "np-object-dtype": _set("blocks/0/np/dtype", "O"),
    "np-void-dtype": _set("blocks/0/np/dtype", "|V8"),
    "np-datetime-day-unit": _set("blocks/0/np/dtype", "<M8[D]"),
    "np-string-dtype": _set("blocks/0/np/dtype", "<U2"),
    "np-1d": _set("blocks/0/np/shape", [4]),
    "np-bad-order": _set("blocks/0/np/order", "K"),
    "np-blob-missing": _set("blocks/0/np/blob", 999),
    "np-blob-of-wrong-size": lambda e: _replace(e, e.block(0)["np"], "blob", bytes(3)),
    "np-blob-a-string": _set("blocks/0/np/blob", "blob0"),
    "np-inline-too-long": _set("blocks/0/np/blob", bytes(40)),
    "spec-not-map": lambda e: e.meta["blocks"][2].__setitem__("ea", 5),
    "spec-unknown-kind": lambda e: _kind(e, "cat").__setitem__("kind", "pickle"),
    "ea-two-columns": lambda e: e.meta["blocks"][2].__setitem__("at", [2, 3]),
    "strs-count": lambda e: _kind(e, "strs").__setitem__("n", 5),
    "strs-invalid-utf8": _blob_of(lambda e: _kind(e, "strs"), "text", b"a\0bb\0\xff\0c"),
    "strs-too-few": _blob_of(lambda e: _kind(e, "strs"), "text", b"a\0bb"),
    "strs-missing-code": _blob_of(lambda e: _kind(e, "strs"), "miss", bytes([0, 0, 9, 0])),
    "strs-missing-short": _blob_of(lambda e: _kind(e, "strs"), "miss", bytes([0, 0])),
    "cat-code-out-of-range": _blob_of(lambda e: _kind(e, "cat")["codes"], "blob", bytes([0, 1, 5, 0])),
    "cat-codes-float": lambda e: _kind(e, "cat")["codes"].__setitem__("dtype", "|b1"),
    "cat-ordered-not-bool": lambda e: _kind(e, "cat").__setitem__("ordered", 1),
    "cat-categories-not-index": lambda e: _kind(e, "cat").__setitem__("cats", [T("list.plain"), "a", "b"]),
    "cat-duplicate-categories": lambda e: _replace(e, _kind(e, "cat")["cats"][1]["v"]["chunks"][0]["bufs"], 2, b"aa"),
    "arrow-type-garbage": lambda e: _kind(e, "arrow").__setitem__("type", b"\x00garbage"),
    "arrow-type-not-bytes": lambda e: _kind(e, "arrow").__setitem__("type", "utf8"),
    "arrow-buffer-count": lambda e: _arrow_string(e).__setitem__("bufs", [None]),
    "arrow-length-too-long": lambda e: _arrow_string(e).__setitem__("n", 10**6),
    "arrow-length-mismatch": lambda e: _arrow_string(e).__setitem__("n", 3),
    "arrow-offsets-backwards": lambda e: _replace(
        e, _arrow_string(e)["bufs"], 1, np.array([0, 1, 0, 2, 4], dtype=np.int64).tobytes()
    ),
    "arrow-offsets-past-data": lambda e: _replace(
        e, _arrow_string(e)["bufs"], 1, np.array([0, 1, 2, 3, 1 << 40], dtype=np.int64).tobytes()
    ),
    "arrow-offsets-short": lambda e: _replace(e, _arrow_string(e)["bufs"], 1, np.array([0, 1], dtype=np.int64).tobytes()),
    "arrow-validity-short": lambda e: _replace(e, _arrow_string(e)["bufs"], 0, b""),
    "arrow-invalid-utf8": lambda e: _replace(e, _arrow_string(e)["bufs"], 2, b"xy\xff\xfe"),
    "arrow-split-character": lambda e: (
        _replace(e, _arrow_string(e)["bufs"], 2, "xé!".encode()),
        _replace(e, _arrow_string(e)["bufs"], 1, np.array([0, 1, 2, 2, 4], dtype=np.int64).tobytes()),
    ),
    "arrow-pandas-kind": lambda e: _kind(e, "arrow").__setitem__("pd", "eval"),
    "arrow-nested-type-as-flat": lambda e: _kind(e, "arrow").__setitem__(
        "type", pa.schema([pa.field("v", pa.list_(pa.int64()))]).serialize().to_pybytes()
    ),
    "dt-unknown-zone": lambda e: _kind(e, "dt").__setitem__("tz", "Mars/Olympus"),
    "dt-zone-not-tz": lambda e: _kind(e, "dt").__setitem__("tz", [T("list.plain"), 1]),
    "dt-int-values": lambda e: _kind(e, "dt")["a"].__setitem__("dtype", "<i8"),
    "interval-closed": lambda e: _kind(e, "interval").__setitem__("closed", "sideways"),
    "interval-left-after-right": lambda e: _replace(
        e, _kind(e, "interval")["left"], "blob", np.array([9, 9, 9, 9], dtype=np.int64).tobytes()
    ),
    "interval-dtype-mismatch": lambda e: _kind(e, "interval")["right"].__setitem__("dtype", "<f8"),
    "masked-mask-not-bool": lambda e: _kind(e, "masked")["mask"].__setitem__("dtype", "|u1"),
    "masked-mask-short": lambda e: _kind(e, "masked")["mask"].__setitem__("shape", [3]),
    "masked-data-complex": lambda e: _kind(e, "masked")["data"].__setitem__("dtype", "<c8"),
    "index-not-index": _set("index", [T("list.plain"), 1, 2, 3, 4]),
    "index-freq-wrong": lambda e: e.meta["index"][1].__setitem__("freq", "h"),
    "index-freq-garbage": lambda e: e.meta["index"][1].__setitem__("freq", "not a frequency"),
    "index-freq-on-ints": lambda e: e.meta["columns"][1].__setitem__("freq", "D"),
    "index-length": lambda e: e.meta["index"][1]["v"]["a"].__setitem__("shape", [5]),
    "columns-not-index": _set("columns", 5),
    "attrs-not-dict": _set("attrs", [T("list.plain"), 1]),
    "dups-not-bool": _set("dups", "no"),
    "dups-false-with-duplicates": lambda e: (
        e.meta.__setitem__("dups", False),
        # column labels "i o c s tz iv I" become "i o c s tz iv i"
        _replace(e, e.meta["columns"][1]["v"]["chunks"][0]["bufs"], 2, b"iocstzivi"),
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_FRAME))
def test_hostile_frame_nodes(case: str) -> None:
    e = Exploded(_sample_frame())
    HOSTILE_FRAME[case](e)
    with pytest.raises(amber.AmberError):
        e.load()


HOSTILE_OTHER: dict[str, tuple[Callable[[], Any], Callable[[Exploded], None]]] = {
    "range-step-zero": (lambda: pd.RangeIndex(0, 5), lambda e: e.tree.__setitem__(3, 0)),
    "range-float": (lambda: pd.RangeIndex(0, 5), lambda e: e.tree.__setitem__(2, 5.5)),
    "range-short": (lambda: pd.RangeIndex(0, 5), lambda e: e.tree.pop()),
    "multi-code-out-of-range": (
        lambda: pd.MultiIndex.from_product([["a", "b"], [1, 2]]),
        lambda e: _replace(e, e.meta["codes"][0], "blob", bytes([0, 0, 7, 1])),
    ),
    "multi-codes-lengths": (
        lambda: pd.MultiIndex.from_product([["a", "b"], [1, 2]]),
        lambda e: e.meta["codes"][1].__setitem__("shape", [3]),
    ),
    "multi-names-count": (
        lambda: pd.MultiIndex.from_product([["a", "b"], [1, 2]]),
        lambda e: e.meta.__setitem__("names", [T("list.plain"), "x"]),
    ),
    "multi-no-levels": (
        lambda: pd.MultiIndex.from_product([["a", "b"], [1, 2]]),
        lambda e: (e.meta.__setitem__("levels", []), e.meta.__setitem__("codes", [])),
    ),
    "series-unhashable-name": (
        lambda: pd.Series([1, 2], name="n"),
        lambda e: e.meta.__setitem__("name", [T("list.plain"), 1]),
    ),
    "series-length": (lambda: pd.Series([1, 2], name="n"), lambda e: e.meta["v"].__setitem__("shape", [3])),
    "period-freq-garbage": (
        lambda: pd.array(pd.period_range("2020", periods=3, freq="M")),
        lambda e: e.tree[1].__setitem__("freq", "fortnightly"),
    ),
    "period-ordinals-int32": (
        lambda: pd.array(pd.period_range("2020", periods=3, freq="M")),
        lambda e: e.tree[1]["a"].__setitem__("dtype", "<i4"),
    ),
    "array-node-holds-numpy": (
        lambda: pd.array([1, 2], dtype="Int64"),
        lambda e: e.tree.__setitem__(1, e.tree[1]["data"] | {"kind": "np"}),
    ),
    "obj-items-wrong-length": (
        lambda: pd.Series([1, "a", None], dtype=object),
        lambda e: e.meta["v"]["items"][1].__setitem__("shape", [2]),
    ),
    "ipc-garbage": (
        lambda: pd.Series(pd.array([[1], [2, 3]], dtype=pd.ArrowDtype(pa.list_(pa.int64())))),
        lambda e: e.blobs.__setitem__(e.meta["v"]["ipc"], bytearray(b"\xff\xff\xff\xff" + bytes(60))),
    ),
    "ipc-truncated": (
        lambda: pd.Series(pd.array([[1], [2, 3]], dtype=pd.ArrowDtype(pa.list_(pa.int64())))),
        lambda e: e.blobs.__setitem__(e.meta["v"]["ipc"], e.blobs[e.meta["v"]["ipc"]][:-40]),
    ),
    "ipc-child-offsets": (
        lambda: pd.Series(pd.array([[1], [2, 3]], dtype=pd.ArrowDtype(pa.list_(pa.int64())))),
        lambda e: _poke_ipc_offsets(e, e.meta["v"]["ipc"]),
    ),
    "timestamp-unit": (lambda: pd.Timestamp("2020"), lambda e: e.tree.__setitem__(2, "D")),
    "timestamp-nat-value": (lambda: pd.Timestamp("2020"), lambda e: e.tree.__setitem__(1, -(2**63))),
    "timestamp-value-huge": (lambda: pd.Timestamp("2020"), lambda e: e.tree.__setitem__(1, 2**64 - 1)),
    "timedelta-float": (lambda: pd.Timedelta(1), lambda e: e.tree.__setitem__(1, 1.5)),
    "period-bad-freq": (lambda: pd.Period("2020", "Y"), lambda e: e.tree.__setitem__(2, "eval")),
    "interval-reversed": (lambda: pd.Interval(0, 1), lambda e: e.tree.__setitem__(1, 5)),
    "na-payload": (lambda: pd.NA, lambda e: e.tree.append(1)),
}


def _poke_ipc_offsets(e: Exploded, ref: int) -> None:
    """Overwrite the list offsets inside an IPC stream (found by their known bytes)."""
    blob = e.blobs[ref]
    offsets = np.array([0, 1, 3], dtype=np.int32).tobytes()
    at = bytes(blob).find(offsets)
    assert at >= 0
    blob[at : at + len(offsets)] = np.array([0, 1, 1 << 20], dtype=np.int32).tobytes()


@pytest.mark.parametrize("case", sorted(HOSTILE_OTHER))
def test_hostile_other_nodes(case: str) -> None:
    make, edit = HOSTILE_OTHER[case]
    e = Exploded(make())
    edit(e)
    with pytest.raises(amber.AmberError):
        e.load()


def test_exploded_files_load_untouched() -> None:
    """The hostile cases start from files that load as they are."""
    assert_frame_same(_sample_frame(), Exploded(_sample_frame()).load())
    for make, _ in HOSTILE_OTHER.values():
        assert_same(make(), Exploded(make()).load())


def test_hostile_errors_are_corrupt_file_errors() -> None:
    e = Exploded(_sample_frame())
    e.block(0)["at"] = [0, 0]
    with pytest.raises(amber.CorruptFileError, match="same column"):
        e.load()
    e = Exploded(_sample_frame())
    _arrow_string(e)["n"] = 3
    with pytest.raises(amber.CorruptFileError):
        e.load()


@pytest.mark.parametrize("dictionary", [False, True])
def test_compressed_ipc_streams_are_refused(dictionary: bool) -> None:
    """A compressed IPC buffer declares its own decompressed size: a few bytes could ask
    for gigabytes. amber never writes compressed streams and refuses them unread."""
    typ = pa.dictionary(pa.int32(), pa.string()) if dictionary else pa.list_(pa.int64())
    values = pa.array(["a", "b"] * 500).dictionary_encode() if dictionary else pa.array([[0] * 10] * 1000)
    s = pd.Series(pd.array(values, dtype=pd.ArrowDtype(typ)))
    e = Exploded(s)
    schema = pa.schema([pa.field("v", typ)])
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema, options=pa.ipc.IpcWriteOptions(compression="zstd")) as w:
        w.write_batch(pa.record_batch([values], schema=schema))
    e.blobs[e.meta["v"]["ipc"]] = bytearray(sink.getvalue().to_pybytes())
    with pytest.raises(amber.CorruptFileError, match="compressed"):
        e.load()
    assert_same(s, Exploded(s).load())


def test_pyarrow_extension_types_are_not_auto_loaded() -> None:
    """pyarrow has no pickle-based extension type left to auto-load; a stream naming an
    unknown extension type gives plain storage, never code."""
    assert not hasattr(pa, "PyExtensionType")
    field = pa.field("v", pa.int64(), metadata={b"ARROW:extension:name": b"arrow.py_extension_type",
                                                 b"ARROW:extension:metadata": b"\x80\x04garbage"})
    e = Exploded(pd.Series(pd.array([[1], [2, 3]], dtype=pd.ArrowDtype(pa.list_(pa.int64())))))
    sink = pa.BufferOutputStream()
    schema = pa.schema([field])
    with pa.ipc.new_stream(sink, schema) as w:
        w.write_batch(pa.record_batch([pa.array([1, 2])], schema=schema))
    e.blobs[e.meta["v"]["ipc"]] = bytearray(sink.getvalue().to_pybytes())
    out = e.load()
    assert out.dtype == pd.ArrowDtype(pa.int64())


def test_tree_is_plain_msgpack() -> None:
    """Nothing but plain values, tags and blob numbers in a frame's node."""
    tree = msgpack.unpackb(parse(amber.dumps(frame_all_columns())).manifest["tree"], raw=False, strict_map_key=False)

    def walk(x: Any) -> None:
        assert x is None or isinstance(x, (bool, int, float, str, bytes, list, dict)), type(x)
        for v in x if isinstance(x, list) else x.values() if isinstance(x, dict) else ():
            walk(v)

    walk(tree)


# --- Arrow arrays in pickles: the rebuild arguments are checked before Arrow builds ------

class _RebuildsArrow:
    """Pickles as ``pyarrow.lib._restore_array(data)`` with the data given."""

    def __init__(self, data: Any) -> None:
        self.data = data

    def __reduce__(self) -> Any:
        from pyarrow.lib import _restore_array  # type: ignore[attr-defined]

        return (_restore_array, (self.data,))


def _array_data(arr: Any) -> tuple[Any, ...]:
    return arr.__reduce__()[1][0]  # type: ignore[no-any-return]


def _bad_arrow_data() -> dict[str, tuple[Any, str]]:
    typ, n, nulls, off, bufs, kids, dic = _array_data(pa.array(["x", None, "yz"], type=pa.large_string()))
    ltyp, ln, lnulls, loff, lbufs, lkids, ldic = _array_data(pa.array([[1, 2], None, [3]], type=pa.list_(pa.int8())))
    dtyp, dn, dnulls, doff, dbufs, dkids, ddic = _array_data(pa.array(["a", "b", "a"]).dictionary_encode())
    return {
        "negative offset": ((typ, n, nulls, -1, bufs, kids, dic), r"an Arrow offset of -1"),
        "huge length": ((typ, 2**62, nulls, off, bufs, kids, dic), r"an Arrow length of"),
        "buffers cut short": ((typ, n, nulls, off, bufs[:1], kids, dic), r"large_string data with 1 buffers, not 3"),
        "no buffers": ((typ, n, nulls, off, [], kids, dic), r"with 0 buffers, not 3"),
        "a buffer that is not one": ((typ, n, nulls, off, [None, b"x", None], kids, dic), r"buffer that is not a buffer"),
        "child where none belongs": ((typ, n, nulls, off, bufs, [(typ, n, nulls, off, bufs, [], None)], dic),
                                     r"with 1 children, not 0"),
        "list without its child": ((ltyp, ln, lnulls, loff, lbufs, [], ldic), r"with 0 children, not 1"),
        "list child of another type": ((ltyp, ln, lnulls, loff, lbufs, [(typ, n, nulls, off, bufs, [], None)], ldic),
                                       r"child of type large_string stands where its parent has int8"),
        "dictionary type without one": ((dtyp, dn, dnulls, doff, dbufs, dkids, None), r"without a dictionary"),
        "dictionary on a string": ((typ, n, nulls, off, bufs, kids, ddic), r"with a dictionary"),
        "null count below -1": ((typ, n, -5, off, bufs, kids, dic), r"an Arrow null count of -5"),
        "not a tuple": ([typ, n, nulls, off, bufs, kids, dic], r"not a 7-tuple"),
    }


@pytest.mark.parametrize("case", list(_bad_arrow_data()))
def test_malformed_arrow_rebuild_refused(case: str, tmp_path: Path) -> None:
    """Arrow builds an array from its pickled data before anything validates it, indexing
    the buffer and child lists by the type's layout: an offset of -1 or a buffer list cut
    short crashed plain pickle.load (exit 139, probed in a child process)."""
    import pickle

    data, message = _bad_arrow_data()[case]
    p = tmp_path / "arrow.pkl"
    p.write_bytes(pickle.dumps(_RebuildsArrow(data)))
    with pytest.raises(amber.AmberError, match=r"rebuilds an Arrow array from malformed data \(.*" + message):
        amber.load(p, trusted=["pyarrow.lib._restore_array"])


def test_good_arrow_arrays_load_from_pickles(tmp_path: Path) -> None:
    """Arrays of every layout (views with variadic buffers, dictionaries, nested lists,
    structs, maps, run-end encoded, nulls, slices) and pandas' pyarrow columns come
    back equal."""
    import pickle

    import pyarrow.compute as pc

    arrays = [
        pa.array(["x", None, "yz"], type=pa.large_string()), pa.array(["a" * 20, "b", None], type=pa.string_view()),
        pa.array([b"q" * 30, b"r"], type=pa.binary_view()), pa.array(["a", "b", "a"]).dictionary_encode(),
        pa.array([[1, 2], None, [3]], type=pa.list_(pa.int8())), pa.array([[1, 2], [3, 4]], type=pa.list_(pa.int8(), 2)),
        pa.array([{"a": 1, "b": "x"}, None]), pa.array([[(1, 2)], []], type=pa.map_(pa.int8(), pa.int8())),
        pc.run_end_encode(pa.array([1, 1, 2])), pa.nulls(3), pa.array([True, None, False]),
        pa.array(["a", "bb", "ccc", "d"]).slice(1, 2), pa.array(range(10), type=pa.int64()).slice(3),
        pa.array([[["x"]], [[None]]], type=pa.large_list(pa.list_(pa.string()))),
    ]
    for arr in arrays:
        p = tmp_path / "a.pkl"
        p.write_bytes(pickle.dumps(arr))
        got = amber.load(p, trusted=["pyarrow.lib._restore_array", "pyarrow.lib.run_end_encoded", "pyarrow.lib.map_",
                                     "pyarrow.lib.list_", "pyarrow.lib.large_list", "pyarrow.lib.struct", "pyarrow.lib.field"])
        assert got.equals(arr), arr.type
    frame = pd.DataFrame({"s": pd.array(["a", None, "c"], dtype="string[pyarrow]"),
                          "i": pd.array([1, None, 3], dtype="int64[pyarrow]"),
                          "c": pd.Categorical(["u", "v", "u"])})
    p = tmp_path / "f.pkl"
    frame.to_pickle(p)
    pd.testing.assert_frame_equal(amber.load(p), frame)
