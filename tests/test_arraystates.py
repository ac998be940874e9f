"""The static proof that a pickle's BUILDs cannot hand NumPy a short object list
(amber.security._arraystates), its C twin, and the fast reading it allows.

A stream the proof accepts is read by the C unpickler with no dtype watch, so the proof
must never accept a stream whose reading would give ``ndarray.__setstate__`` an object
list of another length than the shape: checked here against the pure-Python unpickler's
own check of every BUILD (``array_state_problem``), on streams of many objects and on
random damage to them.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import random
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import amber
from amber.formats import _pickle
from amber.formats._pickle import pickle_trust
from amber.security import _arraystates
from amber.security._arraystates import _array_states_proven_py, array_states_proven
from amber.security._unpickler import SafePyUnpickler

C_BUILT = _arraystates._C is not None


def _both(data: bytes) -> bool:
    slow = _array_states_proven_py(data, 0)
    if C_BUILT:
        assert _arraystates._C(data, 0) == slow
    return slow


def _objects(n: int) -> np.ndarray:
    a = np.empty(n, dtype=object)
    a[:] = [f"s{i}" for i in range(n)]
    return a


def _common() -> dict[str, Any]:
    rec = np.zeros(3, dtype=[("o", "O"), ("i", "i4")])
    rec["o"] = ["x", (1, 2), None]
    strings = _objects(50)
    frame = pd.DataFrame({"n": np.arange(50), "f": np.linspace(0, 1, 50)})
    frame["s"] = pd.Series(strings, dtype=object)
    return {
        "strings": strings,
        "2d": np.array([[1, "x"], [None, 2.5]], dtype=object),
        "fortran": np.asfortranarray(np.array([[1, "x", 3], [None, 2.0, "y"]], dtype=object)),
        "0d": np.array("z", dtype=object),
        "empty": np.empty((0, 3), dtype=object),
        "record": rec,
        "masked": np.ma.array(strings[:6].reshape(2, 3), mask=[[0, 1, 0], [1, 0, 0]]),
        "frame": frame,
        "shared": [strings, {"again": strings}, (strings, strings)],
        "numbers": np.arange(12.0).reshape(3, 4),
    }


@pytest.mark.parametrize("protocol", [3, 4, 5])
@pytest.mark.parametrize("name", sorted(set(_common()) - {"record"}))
def test_common_objects_are_proven(name: str, protocol: int) -> None:
    assert _both(pickle.dumps(_common()[name], protocol=protocol))


def test_models_with_structured_arrays_are_proven() -> None:
    """A forest's trees hold structured node arrays (a void dtype with fields of fixed-size
    dtypes): proven, as the proof checks their layout, with an object array of class names
    beside them."""
    from sklearn.tree import DecisionTreeClassifier

    X = np.random.default_rng(0).normal(size=(60, 3))
    tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, np.array(["a", "b"], dtype=object)[(X[:, 0] > 0).astype(int)])
    assert tree.classes_.dtype == object
    data = pickle.dumps(tree, protocol=5)
    assert _both(data)
    assert amber.loads(data).predict(X).tolist() == tree.predict(X).tolist()


@pytest.mark.parametrize("protocol", [0, 1, 2])
def test_old_protocols_are_proven(protocol: int) -> None:
    """Protocols 0-2 write bytes as ``_codecs.encode(text, "latin1")`` (followed: bytes) and,
    protocol 0, strings as lines (read when they hold no escapes)."""
    for name in ("strings", "numbers", "2d", "masked"):
        assert _both(pickle.dumps(_common()[name], protocol=protocol)), name


def _object_dtype_flags(flags: int) -> bytes:
    data = pickle.dumps(_objects(3), protocol=4)
    assert data.count(b"K?t") == 1  # the object dtype's state ends with its flags, 63
    return data.replace(b"K?t", b"K" + bytes([flags]) + b"t")


def _record_flags(flags: int) -> bytes:
    data = pickle.dumps(_common()["record"], protocol=4)
    assert data.count(b"K\x1bt") == 1  # the structured dtype's flags, 27
    return data.replace(b"K\x1bt", b"K" + bytes([flags]) + b"t")


@pytest.mark.parametrize("flags", [0, 6, 62, 59])
def test_dtype_states_that_change_an_object_dtype_s_flags_are_not_proven_and_are_refused(
        flags: int, tmp_path: Path) -> None:
    """NumPy takes a dtype's flags from its state: an object dtype told it holds no
    references filled arrays with uncounted pointers (flags 6: a crash found by fuzzing
    the checked reading) or read pointers from the file's bytes (flags 0)."""
    data = _object_dtype_flags(flags)
    assert not _both(data)
    p = tmp_path / "flags.pkl"
    p.write_bytes(data)
    with pytest.raises(amber.AmberError, match=rf"the dtype dtype\('O'\) has the flags {flags}, where NumPy gives it 63"):
        amber.load(p)


def test_flags_numpy_never_gives_are_refused_by_the_checked_reading(tmp_path: Path) -> None:
    """An object dtype's state with one more flag (NPY_USE_SETITEM): the proof wants NumPy's
    63 exactly, and so does the checked reading now (other flags change behaviour too:
    USE_GETITEM on a void or datetime dtype made numpy's scalar() read a NULL array; found in
    a second review)."""
    data = _object_dtype_flags(127)
    assert not _both(data)
    p = tmp_path / "flags.pkl"
    p.write_bytes(data)
    with pytest.raises(amber.AmberError, match=r"has the flags 127, where NumPy gives it 63"):
        amber.load(p)


def test_structured_dtype_flags_are_checked(tmp_path: Path) -> None:
    """A structured dtype with an object field is left to the checked reading, which
    compares its flags with the ones NumPy gives the same fields."""
    assert not _both(pickle.dumps(_common()["record"], protocol=4))
    p = tmp_path / "rec.pkl"
    p.write_bytes(_record_flags(0))
    with pytest.raises(amber.AmberError, match=r"the flags 0, where NumPy gives it 27"):
        amber.load(p)
    p.write_bytes(_record_flags(27))
    assert amber.load(p).tolist() == _common()["record"].tolist()


def test_plain_dtypes_claiming_references_are_not_proven() -> None:
    data = pickle.dumps(np.arange(3.0), protocol=4)
    assert data.count(b"K\x00t") == 1
    assert _both(data)
    assert not _both(data.replace(b"K\x00t", b"K?t"))


def _short() -> bytes:
    data = pickle.dumps(_objects(12), protocol=4)
    assert data.count(b"K\x0c\x85") == 1
    return data.replace(b"K\x0c\x85", b"K\x90\x85")  # the shape (12,) said to be (144,)


class _Reduced:
    def __init__(self, *reduced: Any) -> None:
        self.reduced = reduced

    def __reduce__(self) -> Any:
        return self.reduced


def _state(raw: Any) -> tuple[Any, ...]:
    return (1, (3,), np.dtype(object), False, raw)


def _made() -> tuple[Any, ...]:
    from numpy._core.multiarray import _reconstruct

    return (_reconstruct, (np.ndarray, (0,), b"b"))


def _unproven() -> dict[str, bytes]:
    from pandas.api.typing import FrozenList

    items = ["a", "b", "c"]
    kept = [[items], _Reduced(*_made(), _state(items))]  # the list is put in another list first
    called = [_Reduced(collections.OrderedDict, (items,)), _Reduced(*_made(), _state(items))]
    return {
        "a list shorter than the shape": _short(),
        "a list as the state": pickle.dumps(_Reduced(*_made(), list(_state(items))), protocol=4),
        "a deque as the state": pickle.dumps(_Reduced(*_made(), collections.deque(_state(items))), protocol=4),
        "a list subclass as the items": pickle.dumps(_Reduced(*_made(), _state(FrozenList(items))), protocol=4),
        "a list passed to a call before": pickle.dumps(called, protocol=4),
        "a list kept in another list before": pickle.dumps(kept, protocol=4),
        "a state whose items place is made by a call": pickle.dumps(
            _Reduced(*_made(), _state(_Reduced(list, (items,)))), protocol=4),
        "a dict state with a key made by a call": pickle.dumps(
            _Reduced(*_made(), {_Reduced(FrozenList, (items,)): 1}), protocol=4),
        "a truncated stream": pickle.dumps(_objects(3), protocol=4)[:-5],
    }


@pytest.mark.parametrize("case", sorted(_unproven()))
def test_unsound_or_unknown_states_are_not_proven(case: str) -> None:
    assert not _both(_unproven()[case])


def test_memo_keys_far_from_the_count_and_frames_inside_frames_are_not_followed() -> None:
    good = pickle.dumps(_objects(3), protocol=4)
    assert _both(good)
    # a LONG_BINPUT far above the number of keys set
    sparse = b"\x80\x04N\x72" + (1 << 20).to_bytes(4, "little") + b"."
    assert not _both(sparse)
    assert _both(b"\x80\x04N\x72" + (0).to_bytes(4, "little") + b".")
    # a FRAME opening inside another, and an argument running past the end of its frame
    inner = b"\x95" + (2).to_bytes(8, "little") + b"N."
    outer = b"\x80\x04\x95" + len(inner).to_bytes(8, "little") + inner
    assert not _both(outer)
    crossing = b"\x80\x04\x95" + (2).to_bytes(8, "little") + b"\x8c\x03" + b"abc."
    assert not _both(crossing)
    assert _both(b"\x80\x04\x95" + (6).to_bytes(8, "little") + b"\x8c\x03abc" + b".")


@pytest.mark.parametrize("version", [2, 3, 4])
def test_six_item_dtype_states_numpy_crashes_on_are_not_proven_and_are_refused(version: int, tmp_path: Path) -> None:
    """NumPy's dtype ``__setstate__`` crashes on a state of 6 items whose version is 2 or
    more (found by the twins test's damaged streams): never proven, and refused before the
    BUILD by the checked reading."""
    bad = pickle.dumps([_objects(3), _Reduced(np.dtype, ("O8", False, True), (version, "|", None, {}, 8, 1))], protocol=4)
    assert not _both(bad)
    p = tmp_path / "six.pkl"
    p.write_bytes(bad)
    with pytest.raises(amber.AmberError, match=rf"a dtype state of 6 items with version {version}, which NumPy's"):
        amber.load(p)


def test_int_lines_are_read_as_both_unpicklers_read_them() -> None:
    """C's strtol reads ``010`` as octal: a shape spelled so is not trusted."""
    ok = (b"cnumpy._core.multiarray\n_reconstruct\n(cnumpy\nndarray\n(I0\ntS'b'\ntR(I1\n(I2\ntcnumpy\ndtype\n"
          b"(\x8c\x02O8I0\nI1\ntR(I3\nS'|'\nNNNI-1\nI-1\nI63\ntbI00\n(lS'a'\naS'b'\natb.")  # (a binary type string)
    assert _both(ok)
    assert not _both(ok.replace(b"(I2\nt", b"(I02\nt", 1))
    # (found in review: the C twin kept 60 bits of 18-digit values, and -999999999999999999
    # wrapped to a positive number: 17 digits at most, in both)
    assert not _both(ok.replace(b"(I2\nt", b"(I-999999999999999999\nI0\nt", 1))
    assert not _both(ok.replace(b"(I2\nt", b"(I100000000000000000\nt", 1))


# ------------------------------------------------------------------ against the unpickler

def _damaged(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        if not out:
            break
        at = rng.randrange(len(out))
        what = rng.random()
        if what < 0.5:
            out[at] = rng.randrange(256)
        elif what < 0.75:
            del out[at]
        else:
            out.insert(at, rng.randrange(256))
    return bytes(out)


def _array_state_refused(data: bytes) -> bool:
    """Does the checked pure-Python reading refuse an array or dtype state of ``data``, or
    crash on it? (Read in a forked child: a stream the proof accepts must not crash it.)"""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read)
        verdict = b"0"
        try:
            SafePyUnpickler(io.BytesIO(data), pickle_trust(()), "").load()
        except amber.AmberError as exc:
            verdict = b"1" if any(w in str(exc) for w in ("object array", "not a tuple", "has the flags", "crashes")) else b"0"
        except BaseException:  # noqa: BLE001 - damaged streams fail in many ways; only states matter here
            pass
        os.write(write, verdict)
        os._exit(0)
    os.close(write)
    got = os.read(read, 1)
    os.close(read)
    _, status = os.waitpid(pid, 0)
    return status != 0 or got != b"0"


_LEAVES = st.one_of(st.none(), st.integers(-5, 5), st.text(max_size=3), st.floats(allow_nan=False), st.binary(max_size=3))


@st.composite
def _object_arrays(draw: Any) -> np.ndarray:
    shape = tuple(draw(st.lists(st.integers(0, 3), max_size=3)))
    n = int(np.prod(shape)) if shape else 1
    a = np.empty(n, dtype=object)
    a[:] = [draw(_LEAVES) for _ in range(n)] if n else []
    return a.reshape(shape)


_TREES = st.recursive(
    st.one_of(_LEAVES, _object_arrays(), st.builds(lambda n: np.arange(n), st.integers(0, 4))),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.tuples(inner, inner),
                            st.dictionaries(st.text(max_size=2), inner, max_size=3)),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=_TREES, protocol=st.integers(0, 5), seed=st.integers(0, 2**32 - 1))
def test_twins_agree_and_nothing_proven_is_refused_by_the_checked_reading(tree: Any, protocol: int, seed: int) -> None:
    data = pickle.dumps(tree, protocol=protocol)
    if protocol >= 3:
        assert _both(data)  # what pickle writes from 3 on is proven
    rng = random.Random(seed)
    for _ in range(8):
        bad = _damaged(data, rng)
        if _both(bad):
            assert not _array_state_refused(bad), bad


def test_shapes_said_larger_or_smaller_are_never_proven() -> None:
    rng = random.Random(7)
    for n in range(1, 30):
        data = pickle.dumps(_objects(n), protocol=rng.choice([2, 3, 4, 5]))
        for m in range(0, 40):
            if m == n or n > 255 or m > 255:
                continue
            bad = data.replace(b"K" + bytes([n]) + b"\x85", b"K" + bytes([m]) + b"\x85", 1)
            assert bad != data
            assert not _both(bad)


def test_bad_arguments() -> None:
    if not C_BUILT:
        pytest.skip("the C twin is not built")
    with pytest.raises(TypeError):
        _arraystates._C(b"")
    with pytest.raises(TypeError):
        _arraystates._C("text", 0)
    assert _arraystates._C(b"", 0) == 0
    assert _arraystates._C(b"N.", 5) == 0  # a start past the end
    assert array_states_proven(b"\x80\x04N.") is True


# ------------------------------------------------------------------ the loads it speeds up

def _no_pure_python(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the pure-Python unpickler was used")

    monkeypatch.setattr(_pickle._JoblibUnpickler, "load", refuse)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_object_array_pickles_are_read_by_the_c_unpickler(suffix: str, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    obj = {k: v for k, v in _common().items() if k != "record"}  # (structured with objects: not proven)
    p = tmp_path / f"objects.pkl{suffix}"
    if suffix:
        pd.to_pickle(obj, p)
    else:
        p.write_bytes(pickle.dumps(obj, protocol=5))
    _no_pure_python(monkeypatch)
    out = amber.load(p, trusted=["numpy.ma"])
    pd.testing.assert_frame_equal(out["frame"], obj["frame"])
    for k in ("strings", "2d", "fortran", "0d", "empty", "masked", "numbers"):
        assert out[k].dtype == obj[k].dtype and out[k].shape == obj[k].shape and out[k].tolist() == obj[k].tolist(), k
    assert type(out["masked"]) is np.ma.MaskedArray
    assert out["shared"][0] is out["shared"][1]["again"] is out["shared"][2][0]


def test_a_local_pickle_is_proven_once_and_only_when_it_names_numpy_dtype(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    reads: list[int] = []

    def counted(data: Any, start: int) -> int:
        calls.append(start)
        return _arraystates.array_states_proven(data, start)

    real_init = _pickle._FirstTry.__init__

    def counted_init(self: Any, *args: Any, **kwargs: Any) -> None:
        reads.append(1)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(_pickle, "array_states_proven", counted)
    monkeypatch.setattr(_pickle._FirstTry, "__init__", counted_init)
    _no_pure_python(monkeypatch)
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps({"a": [1, 2.5, "x"], "b": (None, b"y")}, protocol=5))
    assert amber.load(plain) == {"a": [1, 2.5, "x"], "b": (None, b"y")}
    assert calls == [] and reads == [1]  # nothing to prove: no proof
    arrays = tmp_path / "arrays.pkl"
    obj = {"n": np.arange(5), "o": np.array(["a", None, 3], dtype=object), "m": np.zeros((2, 3))}
    arrays.write_bytes(pickle.dumps(obj, protocol=5))
    out = amber.load(arrays)
    assert calls == [0] and reads == [1, 1]  # proven when numpy.dtype was named, and read once
    assert out["o"].tolist() == ["a", None, 3] and out["m"].shape == (2, 3) and out["n"].tolist() == [0, 1, 2, 3, 4]


def test_unproven_object_array_pickles_still_go_to_the_checked_reading(tmp_path: Path) -> None:
    p = tmp_path / "short.pkl"
    p.write_bytes(_short())
    with pytest.raises(amber.AmberError, match=r"short.pkl: an object array of shape \(144,\) comes with 12 items"):
        amber.load(p)
    q = tmp_path / "old.pkl"
    q.write_bytes(pickle.dumps({"s": _objects(5), "n": np.arange(3)}, protocol=2))  # not proven: read as before
    out = amber.load(q)
    assert out["s"].tolist() == _objects(5).tolist() and out["n"].tolist() == [0, 1, 2]


def test_pure_python_twin_is_used_without_the_c_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_arraystates, "_C", None)
    assert array_states_proven(pickle.dumps(_objects(4), protocol=4))
    assert not array_states_proven(_short())


def test_torch_files_and_npy_files_with_object_arrays_take_the_c_unpickler(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    from amber.formats import _npy, _torchfile

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the pure-Python unpickler was used")

    monkeypatch.setattr(_torchfile._TorchPyUnpickler, "load", refuse)
    monkeypatch.setattr(_npy, "SafePyUnpickler", refuse)
    t = tmp_path / "o.pt"
    torch.save({"names": _objects(20), "t": torch.arange(3)}, t)
    got = amber.load(t, trusted=["torch"])
    assert got["names"].tolist() == _objects(20).tolist() and torch.equal(got["t"], torch.arange(3))
    n = tmp_path / "o.npy"
    np.save(n, _common()["2d"], allow_pickle=True)
    assert amber.load(n, allow_pickle=True).tolist() == _common()["2d"].tolist()


def test_a_list_whose_items_are_set_by_index_or_slice_is_not_counted() -> None:
    """``SETITEM`` on a list sets an item, or (with a slice a call made) changes its length:
    the list's count is no longer known."""
    data = pickle.dumps(_Reduced(*_made(), _state(["a", "b", "c"])), protocol=4)
    at = data.index(b"\x8c\x01a")  # the list's items: add lst[0] = "z" before the BUILD
    tail = data.index(b"e", at)  # APPENDS
    edited = data[: tail + 1] + b"K\x00\x8c\x01zs" + data[tail + 1 :]
    assert _both(data)
    assert not _both(edited)
    assert amber.loads(edited).tolist() == ["z", "b", "c"]  # (a sound stream: only the proof declines it)


# ------------------------------------------------------------ structured dtypes in any pickle

def _field_offset_past_the_items(protocol: int = 4, with_objects: bool = False) -> bytes:
    """A record array whose dtype's second field is said to lie 100,000,000 bytes into
    12-byte items: NumPy's dtype ``__setstate__`` takes it, and printing the array read far
    outside its memory (SIGSEGV)."""
    rec = np.zeros(3, dtype=[("a", "f8"), ("b", "i4")])
    data = pickle.dumps({"rec": rec, "names": _objects(2)} if with_objects else rec, protocol=protocol)
    assert data.count(b"K\x08\x86") == 1  # the field b: (dtype('int32'), 8)
    return data.replace(b"K\x08\x86", b"J" + (100_000_000).to_bytes(4, "little") + b"\x86")


@pytest.mark.parametrize("with_objects", [False, True])
@pytest.mark.parametrize("how", ["pkl", "joblib"])
def test_a_structured_dtype_with_fields_outside_its_items_is_refused(how: str, with_objects: bool,
                                                                     tmp_path: Path) -> None:
    """Whatever road the stream takes (the C unpickler, proven or not, or the checked
    reading), a structured dtype whose fields lie outside its items is refused at load."""
    p = tmp_path / f"rec.{how}"
    if how == "pkl":
        p.write_bytes(_field_offset_past_the_items(with_objects=with_objects))
    else:  # the same dtype state inside a joblib file (read by the checked pure-Python unpickler)
        import joblib

        rec = np.zeros(3, dtype=[("a", "f8"), ("b", "i4")])
        joblib.dump({"rec": rec, "names": _objects(2)} if with_objects else rec, p)
        data = p.read_bytes()
        assert data.count(b"K\x08\x86") == 1
        p.write_bytes(data.replace(b"K\x08\x86", b"J" + (100_000_000).to_bytes(4, "little") + b"\x86"))
    with pytest.raises(amber.AmberError, match=r"structured|dtype"):
        amber.load(p)


def test_structured_arrays_and_dtypes_load(tmp_path: Path) -> None:
    aligned = np.dtype([("a", "f4"), ("b", "i8")], align=True)
    data = {
        "rec": np.zeros(3, dtype=[("a", "f8"), ("b", "i4")]),
        "aligned": np.zeros(2, dtype=aligned),
        "nested": np.zeros(2, dtype=[("x", [("y", "f4"), ("z", "u1")]), ("w", ("f8", (2,)))]),
        "offsets": np.zeros(2, dtype={"names": ["a", "b"], "formats": ["i4", "f8"], "offsets": [0, 16], "itemsize": 32}),
        "titles": np.zeros(2, dtype=[(("title", "a"), "f8")]),
        "dtype": aligned,
    }
    p = tmp_path / "recs.pkl"
    p.write_bytes(pickle.dumps(data, protocol=5))
    out = amber.load(p)
    for k, v in data.items():
        if k == "dtype":
            assert out[k] == v and out[k].flags == v.flags
        else:
            assert out[k].dtype == v.dtype and out[k].tobytes() == v.tobytes(), k


def test_structured_dtypes_are_proven_and_string_dtypes_are_not() -> None:
    assert _both(pickle.dumps(_objects(3), protocol=4))
    for proven in (np.zeros(2, dtype=[("a", "f8"), ("b", "i4")]), np.zeros(2, dtype=("f8", (2,))), np.zeros(2, "V8"),
                   np.zeros(2, "c16"), np.zeros(2, dtype={"names": ["x", "y"], "formats": ["u1", "f8"],
                                                           "offsets": [8, 0], "itemsize": 24})):
        for protocol in (2, 4, 5):
            assert _both(pickle.dumps(proven, protocol=protocol)), (proven.dtype, protocol)
    # string dtypes: NumPy takes their item size from a state (a U dtype of 1 byte per item
    # read 3 bytes past each; found in review); subarray and title fields are not followed
    for declined in (np.zeros(2, "S4"), np.zeros(2, "<U3"), np.zeros(2, dtype=[("a", "f8", (2,))]),
                     np.zeros(2, dtype=[(("t", "a"), "f8")]), np.zeros(2, dtype=[("a", [("b", "i4")])])):
        assert not _both(pickle.dumps(declined, protocol=4)), declined.dtype


# streams written opcode by opcode (protocol 4)
def _u(text: str) -> bytes:
    b = text.encode()
    return b"\x8c" + bytes([len(b)]) + b


def _sg(module: str, name: str) -> bytes:
    return _u(module) + _u(name) + b"\x93"


def _i4(v: int) -> bytes:
    return b"J" + struct.pack("<i", v)


def _k(v: int) -> bytes:
    return b"K" + bytes([v])


def _dt(typestr: str) -> bytes:  # numpy.dtype(typestr, False, True)
    return _sg("numpy", "dtype") + _u(typestr) + b"\x89\x88\x87R"


def _array(dtype: bytes, n: int, raw: bytes) -> bytes:  # _reconstruct(ndarray, (0,), b"b") + BUILD
    head = _sg("numpy._core.multiarray", "_reconstruct") + _sg("numpy", "ndarray") + _k(0) + b"\x85" + b"C\x01b" + b"\x87R"
    return head + b"(" + _k(1) + _k(n) + b"\x85" + dtype + b"\x89" + raw + b"tb"


def _void_with_state(typestr: str, field: str, field_dtype: str, offset: int, elsize: int, length: int) -> bytes:
    """A void dtype given a dtype state of ``length`` (5, 6 or 7) items with one field."""
    if length == 7:  # (version, byte order, subarray, names, fields, elsize, alignment)
        fields = b"}" + _u(field) + _dt(field_dtype) + _i4(offset) + b"\x86s"
        state = b"(" + _k(2) + _u("|") + b"N" + _u(field) + b"\x85" + fields + _i4(elsize) + _k(8) + b"t"
    else:  # (version,) byte order, subarray, fields with the names at -1, elsize, alignment
        fields = b"}(" + _i4(-1) + _u(field) + b"\x85" + _u(field) + _dt(field_dtype) + _i4(offset) + b"\x86u"
        state = b"(" + (_k(1) if length == 6 else b"") + _u("|") + b"N" + fields + _i4(elsize) + _k(8) + b"t"
    return _dt(typestr) + state + b"b"


def _two_items() -> bytes:
    return b"](" + _u("x") + b"\x85" + _u("y") + b"\x85e"


_SHORT_DTYPE_STATES = {
    "6 items: an object field 4096 bytes into 16-byte items": (
        b"\x80\x04" + _array(_void_with_state("V16", "o", "O", 4096, 16, 6), 2, _two_items()) + b"."),
    "5 items: an int field 10**8 bytes into 12-byte items": (
        b"\x80\x04" + _array(_void_with_state("V12", "a", "<i4", 10**8, 12, 5), 2, b"C\x18" + b"\0" * 24) + b"."),
    "7 items: an object field 4096 bytes into 16-byte items": (
        b"\x80\x04" + _array(_void_with_state("V16", "o", "O", 4096, 16, 7), 2, _two_items()) + b"."),
    "8 items: a field 10**8 bytes in, the array sorted during the load": (
        b"\x80\x04" + _sg("numpy", "sort") + _array(
            _dt("V12") + b"(" + _k(3) + _u("|") + b"N" + _u("a") + b"\x85}" + _u("a") + _dt("<i4") + _i4(10**8)
            + b"\x86s" + _k(12) + _k(1) + _k(0) + b"tb", 2, b"C\x18" + b"\0" * 24) + b"\x85R."),
}


@pytest.mark.parametrize("case", list(_SHORT_DTYPE_STATES), ids=list(_SHORT_DTYPE_STATES))
def test_dtype_states_numpy_trusts_are_never_proven_and_are_refused(case: str, tmp_path: Path) -> None:
    """Found in review: NumPy's dtype __setstate__ takes states of 5, 6 and 7 items too and
    trusts their fields; the proof passed them (as array states, or by their version), and
    the C reading then wrote object pointers outside the array (exit 139). A structured
    dtype handed to numpy.sort during the load crashed it before the check after the load.
    Neither twin proves these now, and the checked reading refuses each at its BUILD. Loaded
    in a child process, so that a crash fails this test rather than ending the run."""
    data = _SHORT_DTYPE_STATES[case]
    assert not _both(data)
    p = tmp_path / "s.pkl"
    p.write_bytes(data)
    code = (f"import amber, sys\ntry:\n    amber.load({str(p)!r})\nexcept amber.AmberError as e:\n"
            "    print(e); sys.exit(3)\nprint('loaded')")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 3, (run.returncode, run.stdout, run.stderr[-2000:])


@pytest.mark.parametrize("kind", ["M8", "m8"])
def test_datetime_dtype_states_without_their_unit_are_not_proven_and_are_refused(kind: str, tmp_path: Path) -> None:
    """NumPy's ``__setstate__`` crashes on a datetime or timedelta dtype's state of 8 items
    (version 3: no unit), found by the twins test's damaged streams."""
    bad = pickle.dumps([_objects(2), _Reduced(np.dtype, (kind, False, True), (3, "<", None, None, None, -1, -1, 0))],
                       protocol=4)
    assert not _both(bad)
    p = tmp_path / "dt.pkl"
    p.write_bytes(bad)
    with pytest.raises(amber.AmberError, match=r"without its unit, which NumPy's __setstate__ crashes on"):
        amber.load(p)
    good = pickle.dumps({"t": np.arange(3).astype("M8[ns]"), "d": np.arange(2).astype("m8[s]"), "o": _objects(2)}, protocol=4)
    assert _both(good)


def test_a_dtype_made_larger_after_an_array_took_it_is_refused() -> None:
    """Found in review: NumPy takes a string or void dtype's item size from its state, so a
    dtype of no size that an array of 100,000 items already used, then given items of 1 MB,
    made that array read far past its memory. A state may not make a dtype's items larger,
    but for a dtype of no size that went straight from its making to its BUILD (how NumPy
    pickles record dtypes: numpy.dtype(numpy.record) given fields and a size)."""
    made = _sg("numpy", "dtype") + _u("V") + b"\x89\x88\x87R\x94"  # (memo 0)
    array = (_sg("numpy._core.multiarray", "_reconstruct") + _sg("numpy", "ndarray") + _k(0) + b"\x85C\x01b\x87R"
             + b"(" + _k(1) + _i4(100_000) + b"\x85h\x00\x89C\x00tb")
    grow = b"h\x00(" + _k(3) + _u("|") + b"NNN" + _i4(1 << 20) + _k(1) + _k(0) + b"tb0"
    data = b"\x80\x04" + made + b"0" + array + grow + b"."
    assert not _both(data)
    with pytest.raises(amber.AmberError, match=r"makes dtype\('V'\)'s items 1048576 bytes, more than its 0"):
        amber.loads(data)
    from numpy.ma import mrecords

    rec = mrecords.fromarrays([np.arange(3), np.array([0.5, 1.5, 2.5])], names="n,x")
    back = amber.loads(pickle.dumps(rec, protocol=4), trusted=["numpy.rec", "numpy.record", "numpy.ma.mrecords"])
    assert back.dtype == rec.dtype and back.tolist() == rec.tolist()


def test_the_proof_s_tables_have_a_budget() -> None:
    """Found in review: the C twin keeps up to 64 bytes per tuple, list or dict a stream
    makes, and a 16 MB stream of empty tuples took 511 MB. At most one container per 16
    bytes of the stream (and 64 more) is followed; past that the proof declines (the checked
    reading runs)."""
    def stream(empty_tuples: int) -> bytes:
        return b"\x80\x04" + b")0" * empty_tuples + pickle.dumps(np.array(["a"], dtype=object), protocol=4)[2:]

    assert _both(stream(10)) and not _both(stream(8192))  # (the same stream, under and over the budget)
    assert _both(pickle.dumps([np.array(["a", None], dtype=object), (1, 2), {"k": [3]}], protocol=4))


def _void(names: tuple[str, ...] = ("a", "b"), fields: tuple[tuple[str, str, int], ...] = (("a", "<i4", 0), ("b", "<f8", 4)),
          typestr: str = "V12", elsize: int = 12, align: int = 1, one_fill: bool = True, after: bytes = b"",
          flags: int = 16, version: int = 3, fields_dict: bytes = b"}") -> bytes:
    """An array of 2 items of a void dtype given an 8-item state: its names and a fields dict
    (memo 9) of (dtype, offset) pairs; ``after`` runs once the array is built."""
    names_b = b"(" + b"".join(_u(x) for x in names) + b"t"
    if one_fill:
        fields_b = fields_dict + b"q\x09(" + b"".join(_u(k) + _dt(t) + _i4(o) + b"\x86" for k, t, o in fields) + b"u"
    else:
        fields_b = fields_dict + b"q\x09" + b"".join(_u(k) + _dt(t) + _i4(o) + b"\x86s" for k, t, o in fields)
    dtype = (_dt(typestr) + b"(" + _k(version) + _u("|") + b"N" + names_b + fields_b + _i4(elsize) + _i4(align)
             + _i4(flags) + b"tb")
    raw = b"B" + struct.pack("<I", 2 * elsize) + b"\0" * (2 * elsize)
    return b"\x80\x04" + _array(dtype, 2, raw) + after + b"."


_VOIDS = {
    "a name that is no field": (_void(names=("a", "c")), True),
    "the same name twice": (_void(names=("a", "a"), fields=(("a", "<i4", 0),)), True),
    "a field past the items": (_void(fields=(("a", "<i4", 0), ("b", "<f8", 8))), True),
    "a negative offset": (_void(fields=(("a", "<i4", -4), ("b", "<f8", 4))), True),
    "a size not the type string's": (_void(elsize=16), False),
    "an alignment of 3": (_void(align=3), False),
    "fields set one by one": (_void(one_fill=False), False),
    "fields changed after the dtype took them": (
        _void(after=b"h\x09" + _u("b") + _dt("<f8") + _i4(1000) + b"\x86s0"), True),
    "a void field": (_void(fields=(("a", "<i4", 0), ("b", "V8", 4))), False),
    # (found in a second review: USE_GETITEM, 0x20, made numpy's scalar() call a getitem that
    # reads a NULL array; version 2 has NumPy work out flags of 63; an OrderedDict as fields,
    # which NumPy keeps, changed after the check moved a field 10**8 bytes out)
    "flags that are not NumPy's": (_void(flags=0x20 | 16), False),
    "flags of 0 with fields": (_void(flags=0), False),
    "version 2": (_void(version=2, flags=8), False),
    "an OrderedDict as fields, changed afterwards": (
        _void(fields_dict=_sg("collections", "OrderedDict") + b")R",
              after=b"h\x09" + _u("b") + _dt("<f8") + _i4(10**8) + b"\x86s0"), True),
}


@pytest.mark.parametrize("case", list(_VOIDS), ids=list(_VOIDS))
def test_structured_layouts_the_proof_cannot_vouch_for_are_declined(case: str) -> None:
    """The proof follows a void dtype's state only when its names are exactly the keys of a
    fields dict filled once, each a fixed-size dtype inside the items, and nothing touches
    the dict afterwards (NumPy keeps it as the dtype's fields). Streams that lay fields
    outside the items or disagree on names are refused by the checked reading (loaded in a
    child process: they crashed NumPy)."""
    data, dangerous = _VOIDS[case]
    assert not _both(data)
    if dangerous:
        code = ("import amber, sys\ntry:\n    r = amber.loads(sys.stdin.buffer.read()); print(repr(r)); "
                "r.sort(); r.copy(); print(r == r)\nexcept amber.AmberError as e:\n    print(e); sys.exit(3)")
        run = subprocess.run([sys.executable, "-c", code], input=data, capture_output=True, timeout=120)
        assert run.returncode == 3, (run.returncode, run.stdout[-500:], run.stderr[-1000:])


def test_a_structured_array_the_proof_vouches_for_loads() -> None:
    data = _void()
    assert _both(data) and _both(_void(flags=144, align=8, fields=(("a", "<i4", 0), ("b", "<f8", 8)), elsize=16,
                                       typestr="V16"))
    out = amber.loads(data)
    assert out.dtype == np.dtype({"names": ["a", "b"], "formats": ["<i4", "<f8"], "offsets": [0, 4], "itemsize": 12})
    assert out.tolist() == [(0, 0.0), (0, 0.0)]


def _array_of(dtype_made: Any, n: int, raw: Any) -> Any:
    from numpy._core.multiarray import _reconstruct

    return _Reduced(_reconstruct, (np.ndarray, (0,), b"b"), (1, (n,), dtype_made, False, raw))


@pytest.mark.parametrize("case", ["a field that is no dtype", "an alignment of 0 with an object field"])
def test_structured_dtype_states_the_checked_reading_refuses(case: str) -> None:
    """Found in a last review: NumPy keeps a fields dict's values as given, and its
    constructor and == take ('<i2', 2) as a field, so the comparison passed and using the
    array crashed (exit 139); an alignment of 0 with an object field made copying divide by
    zero (SIGFPE). Loaded in a child process."""
    if case == "a field that is no dtype":
        made = _Reduced(np.dtype, ("V4", False, True), (3, "|", None, ("y",), {"y": ("<i2", 2)}, 4, 1, 16))
        data = pickle.dumps([_array_of(made, 2, b"\0" * 8)], protocol=4)
    else:
        state = (3, "|", None, ("a", "o"), {"a": (np.dtype("i8"), 0), "o": (np.dtype("O"), 8)}, 16, 0, 27)
        made = _Reduced(np.dtype, ("V16", False, True), state)
        data = pickle.dumps([_array_of(made, 2, [1, "x", 2, "y"])], protocol=4)
    assert not _both(data)
    code = ("import amber, sys\ntry:\n    r = amber.loads(sys.stdin.buffer.read())[0]; r.copy(); r.tolist(); print(r)\n"
            "except amber.AmberError as e:\n    print(e); sys.exit(3)")
    run = subprocess.run([sys.executable, "-c", code], input=data, capture_output=True, timeout=120)
    assert run.returncode == 3, (run.returncode, run.stdout[-500:], run.stderr[-1000:])


def test_a_base_type_with_fields_loads() -> None:
    """(int32, [('lo', int16), ('hi', int16)]): rebuilt as the same base type with fields, not
    as a plain structure (it was refused for its flags; found in a last review)."""
    d = np.dtype(("<i4", [("lo", "<i2"), ("hi", "<i2")]))
    a = np.arange(3, dtype="<i4").view(d)
    for protocol in (2, 4, 5):
        out = amber.loads(pickle.dumps({"d": d, "a": a}, protocol=protocol))
        assert out["d"] == d and out["a"].dtype == d and out["a"].tolist() == a.tolist()
