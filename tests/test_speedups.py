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


# -- plain_blobs: container._reader.BlobInfo's checks for uncompressed entries ------------

_DATA_END = 1 << 20


def _entry_strategy() -> st.SearchStrategy[Any]:
    """Blob table entries near the edges of validity: mostly plausible numbers, some wrong
    types, sizes and keys (each of which the C twin must leave to Python)."""
    num = st.one_of(
        st.sampled_from([0, 1, 63, 64, 128, 4096, _DATA_END - 64, _DATA_END, 2**62, 2**63, -1]),
        st.integers(min_value=0, max_value=_DATA_END), st.just(True), st.just(64.0), st.builds(_Int, st.just(64)),
    )

    @st.composite
    def entry(draw: Any) -> Any:
        offset = draw(st.one_of(st.integers(min_value=1, max_value=_DATA_END // 64 - 1).map(lambda x: x * 64), num))
        nbytes = draw(st.one_of(st.integers(min_value=0, max_value=5000), num))
        chunk = draw(st.one_of(st.sampled_from([1000, 1024, 1 << 20, 1 << 30, (1 << 30) + 1, 0]), num))
        e: dict[Any, Any] = {"offset": offset, "nbytes": nbytes, "stored": nbytes, "chunk": chunk}
        if type(nbytes) is int and type(chunk) is int and 0 <= nbytes <= 5000 and chunk > 0:
            lens = [chunk] * (-(-nbytes // chunk))
            if lens:
                lens[-1] = nbytes - chunk * (len(lens) - 1)
            e["chunks"] = [[ln, draw(st.integers(min_value=0, max_value=2**64 - 1))] for ln in lens]
        else:
            e["chunks"] = []
        for _ in range(draw(st.integers(min_value=0, max_value=2))):  # up to two changes
            change = draw(st.sampled_from(["stored", "drop", "extra", "codec", "filter", "chunklen", "chunktype",
                                           "hash", "tuple", "chunks"]))
            if change == "stored":
                e["stored"] = draw(num)
            elif change == "drop":
                e.pop(draw(st.sampled_from(list(e))), None)
            elif change == "extra":
                e[draw(st.sampled_from(["x", "codec", "filter", 7]))] = None
            elif change == "codec":
                e["codec"] = draw(st.sampled_from([None, "zstd", {"name": "zstd"}]))
            elif change == "filter":
                e["filter"] = draw(st.sampled_from([None, "shuffle"]))
            elif e.get("chunks") and change == "chunklen" and all(type(c) is list and c for c in e["chunks"]):
                e["chunks"][draw(st.integers(0, len(e["chunks"]) - 1))][0] = draw(num)
            elif type(e.get("chunks")) is list and e["chunks"] and change == "chunktype":
                e["chunks"][0] = draw(st.sampled_from([(1, 2), [1], [1, 2, 3], "x", [1, 2.0]]))
            elif e.get("chunks") and change == "hash" and type(e["chunks"][0]) is list and len(e["chunks"][0]) > 1:
                e["chunks"][0][1] = draw(st.sampled_from([True, -1, 2**80, "h"]))
            elif change == "tuple":
                e["chunks"] = tuple(e.get("chunks", ()))
            elif change == "chunks":
                e["chunks"] = [*e.get("chunks", ()), [1, 1]]
        return draw(st.sampled_from([e, e, e, [e], "e"]))

    return entry()


@settings(max_examples=400, deadline=None)
@given(st.lists(_entry_strategy(), min_size=1, max_size=4))
def test_plain_blobs_matches_blobinfo(entries: list[Any]) -> None:
    """Where the C twin builds a BlobInfo, Python builds an equal one; where Python refuses
    an entry or the entry is compressed, the C twin leaves it to Python (None)."""
    from amber import _speedups
    from amber.container._reader import BlobInfo
    from amber.container._spec import ALIGN, HEADER_SIZE, MAX_CHUNK

    fast = _speedups.plain_blobs(BlobInfo, entries, _DATA_END, HEADER_SIZE, ALIGN, MAX_CHUNK)
    assert len(fast) == len(entries)
    for i, (e, b) in enumerate(zip(entries, fast)):
        try:
            ref = BlobInfo(i, e, _DATA_END, "f")
        except Exception:  # noqa: BLE001 - any refusal: C must not accept it
            assert b is None
            continue
        if b is not None:
            assert ref.codec is None and ref.filter is None
            for slot in BlobInfo.__slots__:
                assert getattr(b, slot) == getattr(ref, slot), slot
                assert type(getattr(b, slot)) is type(getattr(ref, slot)), slot


def test_plain_blobs_builds_the_usual_entries() -> None:
    """The entries amber writes for uncompressed blobs all take the C path."""
    import numpy as np

    import amber
    from amber import _speedups
    from amber.container import _reader

    assert _reader._plain_blobs is _speedups.plain_blobs
    data = amber.dumps({"a": np.arange(10), "b": [np.zeros(3), b"x" * 100], "e": np.zeros(0)})
    r = _reader.ContainerReader(_reader_source(data))
    fast = _speedups.plain_blobs(_reader.BlobInfo, r.manifest["blobs"], r.data_end, 64, 64, 1 << 30)
    assert fast and all(b is not None for b in fast)


def _reader_source(data: bytes) -> Any:
    from amber.container._io import BytesSource

    return BytesSource(data)


def test_plain_blobs_bad_arguments() -> None:
    from amber import _speedups
    from amber.container._reader import BlobInfo

    with pytest.raises(TypeError):
        _speedups.plain_blobs(BlobInfo, (), 1, 64, 64, 1)
    with pytest.raises(ValueError):
        _speedups.plain_blobs(BlobInfo, [], 1, 64, 0, 1)


# -- find_checked: security._guards' object-graph walk ------------------------------------

class _Holder:
    def __init__(self, *items: Any) -> None:
        self.items = list(items)


class _Slotted:
    __slots__ = ("a", "b")


def _graph_strategy() -> st.SearchStrategy[Any]:
    """Object graphs with checked instances (an unfitted DecisionTreeClassifier, a pandas
    Categorical, a SciPy CSR matrix) inside lists, tuples, dicts, sets, user objects, slots,
    object arrays and numeric arrays, with classes, functions and modules among them."""
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp
    from sklearn.tree import DecisionTreeClassifier

    leaves = st.one_of(
        st.none(), st.integers(), st.text(max_size=3), st.floats(allow_nan=False), st.binary(max_size=3),
        st.just(1j), st.booleans(),
        st.builds(DecisionTreeClassifier), st.just(pd.Categorical(["a", "b"])), st.builds(lambda: sp.csr_matrix(np.eye(2))),
        st.just(np.arange(3)), st.just(int), st.just(len), st.just(math), st.just(DecisionTreeClassifier),
    )

    def slotted(a: Any, b: Any) -> _Slotted:
        s = _Slotted()
        s.a, s.b = a, b
        return s

    def obj_array(items: list[Any]) -> Any:
        arr = np.empty(len(items), dtype=object)
        arr[:] = items if items else arr
        return arr

    def structured(items: list[Any]) -> Any:
        """Arrays and scalars whose dtypes hold objects in fields, titles, metadata and
        subarrays (the walk makes new tuples and lists of their items)."""
        first = items[0] if items else None
        dt = np.dtype([(("t", "a"), "O"), ("b", "O", (2,))], metadata={"m": first})
        arr = np.zeros(len(items), dtype=dt)
        for i, x in enumerate(items):
            arr[i] = (x, (x, first))
        scalar = arr[0] if len(arr) else np.zeros(1, dtype=[("a", "O")])[0]
        return [arr, scalar, np.dtype(float, metadata={"x": items}), masked(items)]

    def masked(items: list[Any]) -> Any:
        arr = np.ma.MaskedArray(obj_array(items), mask=[i % 2 == 0 for i in range(len(items))])
        return arr

    return st.recursive(
        leaves,
        lambda kids: st.one_of(
            st.lists(kids, max_size=4), st.lists(kids, max_size=4).map(tuple),
            st.dictionaries(st.one_of(st.text(max_size=2), st.integers()), kids, max_size=4),
            st.lists(kids, max_size=3).map(lambda xs: _Holder(*xs)), st.tuples(kids, kids).map(lambda ab: slotted(*ab)),
            st.lists(kids, max_size=3).map(obj_array), st.frozensets(st.integers(), max_size=3),
            st.lists(kids, max_size=3).map(structured),
        ),
        max_leaves=20,
    )


@settings(max_examples=300, deadline=None)
@given(_graph_strategy(), st.integers(min_value=0, max_value=3))
def test_find_checked_matches_the_python_twin(graph: Any, cycles: int) -> None:
    """Same (check, object) pairs in the same order, cycles and shared objects included."""
    from amber.security import _guards as G

    root = [graph, graph]
    for _ in range(cycles):
        root.append(root)
        root = [root, {"back": root}]
    want = G._find_checked_py(root)
    got = G.find_checked(root)
    assert G._C_FIND is not None
    assert [(c, id(o)) for c, o in got] == [(c, id(o)) for c, o in want]


def test_find_checked_bad_arguments() -> None:
    from amber import _speedups

    import numpy as np

    types = (np.ndarray, np.dtype, np.generic)
    with pytest.raises(TypeError):
        _speedups.find_checked([], (), (), {}, None, len, list)
    with pytest.raises(TypeError):
        _speedups.find_checked([], [int], (), {}, None, len, *types)
    with pytest.raises(TypeError):
        _speedups.find_checked([], (1,), (), {}, None, len, *types)
    with pytest.raises(TypeError):
        _speedups.find_checked([], (), (), {}, None, len, list, 3, list)
    with pytest.raises(ValueError):
        _speedups.find_checked([], (int,) * 17, (), {}, None, len, *types)
    with pytest.raises(ZeroDivisionError):  # an error of check_for comes through
        _speedups.find_checked([object()], (), (), {}, None, lambda t: 1 / 0, *types)


@settings(max_examples=300, deadline=None)
@given(
    steps=st.lists(st.integers(min_value=-3, max_value=6), max_size=40),
    start=st.integers(min_value=-2, max_value=4),
    text=st.binary(max_size=80),
    width=st.sampled_from([4, 8]),
    short=st.booleans(),
    high=st.booleans(),
)
def test_text_offsets_matches_the_python_twin(steps: list[int], start: int, text: bytes, width: int,
                                              short: bool, high: bool) -> None:
    """String-array offsets: the C verdict (0 bad offsets, 1 ASCII text, 2 other text)
    equals the NumPy twin's, including offsets past the text, decreasing ones, a negative
    first one, and an offsets buffer one entry short."""
    import numpy as np

    from amber import _speedups
    from amber.security._arrowcheck import _text_offsets_py

    offs = np.cumsum([start, *steps]).astype(np.int32 if width == 4 else np.int64)
    data = bytes(b | 0x80 if high and i % 7 == 3 else b & 0x7F for i, b in enumerate(text))
    n = len(offs) - 1 + (1 if short else 0)
    buf = offs.tobytes()
    assert _speedups.text_offsets(buf, data, n, width) == _text_offsets_py(buf, data, n, width)


def test_text_offsets_bad_arguments() -> None:
    from amber import _speedups

    with pytest.raises(ValueError):
        _speedups.text_offsets(b"\0" * 8, b"", 0, 3)
    with pytest.raises(ValueError):
        _speedups.text_offsets(b"\0" * 8, b"", -1, 4)
    with pytest.raises(TypeError):
        _speedups.text_offsets(b"\0" * 8, b"", 0)
    assert _speedups.text_offsets(b"\0" * 4, b"", 0, 4) == 1  # one offset, no text
    assert _speedups.text_offsets(b"", b"", 0, 4) == 0  # no offsets at all
    from amber.security._arrowcheck import _text_offsets_py

    # an offsets buffer longer than the offsets by bytes that are no whole offset (Arrow allows
    # it; the NumPy twin raised; found in review)
    for width in (4, 8):
        odd = b"\0" * width + (1).to_bytes(width, "little") + b"\0" * 3
        assert _speedups.text_offsets(odd, b"a", 1, width) == _text_offsets_py(odd, b"a", 1, width) == 1


def test_prefault_maps_a_new_buffer_in_and_keeps_every_byte() -> None:
    """prefault is only a hint: whatever the buffer holds stays as it was. It maps in pages
    that are not there yet (True), and leaves memory the allocator hands out again alone
    (False: its pages are there already)."""
    import mmap
    import re
    import sys

    import numpy as np

    from amber import _speedups
    from amber.container import _io

    assert _io._prefault is _speedups.prefault
    assert _io._prefault_py(bytearray(1 << 16)) is False
    used = np.arange(300_000, dtype=np.uint8)  # pages already there, holding data
    before = used.copy()
    assert _speedups.prefault(used) is False
    assert np.array_equal(used, before)
    fresh = mmap.mmap(-1, 1 << 20)  # new anonymous memory: no page there yet
    release = tuple(int(x) for x in re.findall(r"\d+", os.uname().release)[:2])
    assert _speedups.prefault(fresh) is (sys.platform == "linux" and release >= (5, 14))
    assert fresh[:] == bytes(1 << 20)
    fresh[:] = b"\x07" * (1 << 20)
    assert _speedups.prefault(fresh) is False and fresh[-1] == 7
    fresh.close()
    assert _speedups.prefault(np.empty(100, dtype=np.uint8)) is False  # no whole page inside
    assert _speedups.prefault(memoryview(bytearray(0))) is False
    with pytest.raises(BufferError):
        _speedups.prefault(b"read-only bytes")
    with pytest.raises(TypeError):
        _speedups.prefault()


@pytest.mark.parametrize("size, called", [(1 << 10, False), (100 << 10, True), (2 << 20, False)])
def test_a_small_file_read_whole_is_prefaulted(tmp_path: Any, monkeypatch: Any, size: int, called: bool) -> None:
    """Files from PREFAULT (64 kB) up to SPLIT (1 MB) get their buffer prefaulted before the
    one read; smaller ones hold few pages, larger ones are read by two threads side by side."""
    import numpy as np

    import amber
    from amber.container import _io

    seen: list[int] = []
    monkeypatch.setattr(_io, "_prefault", lambda buf: seen.append(len(buf)) or False)
    data = np.arange(size, dtype=np.uint8)
    path = tmp_path / "a.amber"
    amber.dump(data, path)
    assert np.array_equal(amber.load(path), data)
    assert seen == ([path.stat().st_size] if called else [])
