"""amber._speedups against the pure-Python twins it replaces, value by value."""

from __future__ import annotations

import math
import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amber.formats import _json as J


# AMBER_PURE_PYTHON=1 runs the rest of the suite on the pure-Python twins; these tests are
# about the compiled ones (CI never sets it).
pytestmark = pytest.mark.skipif(bool(os.environ.get("AMBER_PURE_PYTHON")), reason="AMBER_PURE_PYTHON is set")


def test_the_speedups_are_built_and_used() -> None:
    """make install builds them (setup.py); the JSON dump's speed depends on them."""
    from amber import _speedups

    assert J._plain_scan is _speedups.plain_scan


class _Str(str):
    pass


class _Int(int):
    pass


_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(2**70), max_value=2**70), st.text(max_size=5),
    st.floats(), st.sampled_from([math.inf, -math.inf, math.nan, -0.0]), st.binary(max_size=3),
    st.builds(_Str, st.text(max_size=3)), st.builds(_Int, st.integers()), st.just(1 + 2j),
)
_VALUES = st.one_of(_SCALARS, st.tuples(_SCALARS, _SCALARS), st.lists(_SCALARS, max_size=3).map(tuple),
                    st.lists(_SCALARS, max_size=2), st.dictionaries(st.text(max_size=2), _SCALARS, max_size=2))


def _all_stops(scan: Any, pairs: list[tuple[Any, Any]]) -> tuple[list[Any], list[Any]]:
    """Every stop of a scan resumed until the end, and the tuple keys it listed."""
    it = iter(pairs)
    tuples: list[Any] = []
    stops = []
    while (stop := scan(it, tuples)) is not None:
        stops.append(stop)
    return stops, tuples


def _same(a: Any, b: Any) -> bool:
    return repr(a) == repr(b) and [type(x) for x in a] == [type(x) for x in b]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.integers(), st.text(max_size=3)), _VALUES), max_size=30))
def test_plain_scan_matches_the_python_twin(pairs: list[tuple[Any, Any]]) -> None:
    from amber._speedups import plain_scan

    py_stops, py_tuples = _all_stops(J._plain_scan_py, pairs)
    c_stops, c_tuples = _all_stops(plain_scan, pairs)
    assert _same(py_stops, c_stops) and _same(py_tuples, c_tuples)
    for a, b in zip(py_stops, c_stops):
        assert a[0] is b[0] and a[1] is b[1]


def test_plain_scan_on_dict_items_and_enumerate() -> None:
    from amber._speedups import plain_scan

    d = {"a": 1, "b": (1, 2.5, None, True, "x"), "c": 1.5, "d": [1], "e": (1, [2]), "f": math.nan, "g": ()}
    for make in (lambda: iter(d.items()), lambda: enumerate(list(d.values()))):
        assert _same(_all_stops(plain_scan, list(make())), _all_stops(J._plain_scan_py, list(make())))
        it = make()
        tuples: list[Any] = []
        assert plain_scan(it, tuples)[1] == [1]  # resumable: the iterator is consumed up to the stop
        assert plain_scan(it, tuples)[1] == (1, [2])


def test_plain_scan_bad_arguments() -> None:
    from amber._speedups import plain_scan

    with pytest.raises(TypeError):
        plain_scan([1, 2], [])  # not an iterator
    with pytest.raises(TypeError):
        plain_scan(iter([]), ())  # tuples must be a list
    with pytest.raises(TypeError):
        plain_scan(iter([]))  # type: ignore[call-arg]
    with pytest.raises(ValueError):
        plain_scan(iter([(1, 2, 3)]), [])
    with pytest.raises(ZeroDivisionError):
        plain_scan((1 // 0 for _ in range(1)), [])
    assert plain_scan(iter([[1, 2], "ab"]), []) is None  # any (key, value) pair, as unpacking takes it
