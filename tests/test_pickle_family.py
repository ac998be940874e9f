"""The pickle family: writing pickle/joblib/cloudpickle files, loading existing pickle,
joblib and NumPy files safely, pickle islands in the native format, and convert."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import pickle
import subprocess
import struct
import sys
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

import amber
from tests._payloads import TECHNIQUES, Reduce, containers, hostile_pickle

rng = np.random.default_rng(0)
X = rng.normal(size=(120, 4))
Y = (X[:, 0] + X[:, 1] > 0).astype(int)


def _models() -> dict[str, Any]:
    return {
        "forest": RandomForestClassifier(n_estimators=5, random_state=0).fit(X, Y),
        "hgb": HistGradientBoostingClassifier(max_iter=5).fit(X, Y),
        "pipeline": make_pipeline(StandardScaler(), FunctionTransformer(np.abs), LogisticRegression()).fit(X, Y),
    }


MODELS = _models()

DATA: dict[str, Any] = {
    "builtins": {
        "t": (1, 2.5, "x", b"by", None, True),
        "ba": bytearray(b"ba"),
        "s": {1, 2},
        "f": frozenset([3]),
        "c": 1j,
        "r": range(3),
        "sl": slice(1, 2),
        "big": 2**100,
        "nested": [[{"k": (1,)}]],
    },
    "arrays": {
        "f8": np.arange(12.0).reshape(3, 4),
        "fortran": np.asfortranarray(np.arange(12).reshape(3, 4)),
        "be": np.arange(5, dtype=">i4"),
        "struct": np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8", (2,))]),
        "str": np.array(["a", "bc"]),
        "dt": np.array(["2020-01-01"], dtype="datetime64[ms]"),
        "scalar": np.float32(3.5),
        "empty": np.zeros((0, 3)),
        "objects": np.array([1, "a", None], dtype=object),
        "rng": np.random.default_rng(1),
        "legacy_rng": np.random.RandomState(2),
    },
    "frame": pd.DataFrame(
        {
            "a": np.arange(4),
            "s": list("abcd"),
            "c": pd.Categorical(list("xyxy")),
            "t": pd.date_range("2020", periods=4, tz="Europe/Paris"),
            "n": pd.array([1, None, 3, 4], dtype="Int64"),
        }
    ),
    "sparse": {"csr": sp.csr_matrix(np.eye(3)), "coo": sp.coo_array(np.eye(2))},
}


def same(a: Any, b: Any) -> None:
    from amber.testing import assert_equal

    assert_equal(a, b)


# ---------------------------------------------------------------------------------------
# loading existing files, safely
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", range(6))
@pytest.mark.parametrize("name", [*DATA, *MODELS])
def test_existing_pickles_load_with_no_trust(tmp_path: Path, name: str, protocol: int) -> None:
    obj = DATA.get(name, MODELS.get(name))
    p = tmp_path / "x.pkl"
    p.write_bytes(pickle.dumps(obj, protocol=protocol))
    loaded = amber.load(p)
    if name in MODELS:
        assert type(loaded) is type(obj)
        np.testing.assert_array_equal(loaded.predict_proba(X), obj.predict_proba(X))
    else:  # what pickle itself gives (protocols < 5 lose an array's byte order, for one)
        same(loaded, pickle.loads(p.read_bytes()))  # our own file


@pytest.mark.parametrize("compress", [0, 3, "zlib", "gzip", "bz2", "lzma", "xz", "lz4", ("zlib", 9)])
@pytest.mark.parametrize("name", ["arrays", "frame", "forest"])
def test_existing_joblib_files_load(tmp_path: Path, name: str, compress: Any) -> None:
    obj = DATA.get(name, MODELS.get(name))
    p = tmp_path / "x.joblib"
    joblib.dump(obj, p, compress=compress)
    loaded = amber.load(p)
    if name in MODELS:
        np.testing.assert_array_equal(loaded.predict_proba(X), obj.predict_proba(X))
    else:  # as joblib gives it (arrays in native byte order)
        same(loaded, joblib.load(p))  # our own file


def test_joblib_mmap_gives_views_of_the_file(tmp_path: Path) -> None:
    big = {"w": np.arange(100_000, dtype=np.float64), "b": np.ones((3, 3), order="F")}
    p = tmp_path / "m.joblib"
    joblib.dump(big, p)
    loaded = amber.load(p, mmap=True)
    same(loaded, big)
    assert not loaded["w"].flags.owndata and not loaded["w"].flags.writeable


@pytest.mark.parametrize("wrap", ["gzip", "bz2", "xz", "zstd", "lz4"])
def test_compressed_pickles_are_recognised(tmp_path: Path, wrap: str) -> None:
    raw = pickle.dumps(DATA["arrays"], protocol=5)
    if wrap == "zstd":
        import zstandard

        data = zstandard.ZstdCompressor().compress(raw)
    elif wrap == "lz4":
        import lz4.frame

        data = lz4.frame.compress(raw)
    else:
        data = {"gzip": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress}[wrap](raw)
    p = tmp_path / f"x.pkl.{wrap}"
    p.write_bytes(data)
    same(amber.load(p), DATA["arrays"])


def test_npy_and_npz(tmp_path: Path) -> None:
    a = np.arange(24, dtype="<f4").reshape(2, 3, 4)
    np.save(tmp_path / "a.npy", a)
    same(amber.load(tmp_path / "a.npy"), a)
    m = amber.load(tmp_path / "a.npy", mmap=True)
    same(m, a)
    assert not m.flags.writeable
    f = np.asfortranarray(a)
    np.save(tmp_path / "f.npy", f)
    same(amber.load(tmp_path / "f.npy"), f)
    objs = np.array([{"a": 1}, (1, 2), "s", None], dtype=object)
    np.save(tmp_path / "o.npy", objs, allow_pickle=True)
    same(amber.load(tmp_path / "o.npy"), objs)
    np.savez(tmp_path / "z.npz", a=a, b=np.arange(3))
    z = amber.load(tmp_path / "z.npz")
    assert list(z) == ["a", "b"]
    same(z["a"], a)
    np.savez_compressed(tmp_path / "zc.npz", a=a, o=objs)
    z = amber.load(tmp_path / "zc.npz")
    same(z["o"], objs)


def test_untrusted_class_names_every_global(tmp_path: Path) -> None:
    from tests._objects_mod import Point

    obj = {"a": Point(1, 2), "b": [Reduce(sorted, [3, 1])], "c": np.arange(3)}
    p = tmp_path / "x.pkl"
    p.write_bytes(pickle.dumps(obj, protocol=4))
    with pytest.raises(amber.UntrustedTypeError) as err:
        amber.load(p)
    assert err.value.untrusted == ("builtins.sorted", "tests._objects_mod.Point")
    assert "trusted=['builtins.sorted', 'tests._objects_mod.Point']" in str(err.value)
    assert amber.load(p, trusted=["tests._objects_mod.Point", "builtins.sorted"])["b"] == [[1, 3]]


def test_truncated_and_garbage_pickles_give_format_errors(tmp_path: Path) -> None:
    data = pickle.dumps(DATA["arrays"], protocol=5)
    for cut in (3, len(data) // 3, len(data) - 1):
        with pytest.raises(amber.FormatError):
            amber.loads(data[:cut], format="pickle")
    with pytest.raises(amber.FormatError):
        amber.loads(b"\x80\x05garbage-not-a-pickle", format="pickle")
    with pytest.raises(amber.FormatError, match="not an amber file, nor any other format amber reads"):
        amber.loads(b"\x00 is no pickle opcode, nor any magic")


_WRAPS: dict[str, Any] = {
    "none": lambda b: b,
    "gzip": gzip.compress,
    "bz2": bz2.compress,
    "xz": lzma.compress,
    "zlib": __import__("zlib").compress,  # (its reader cannot tell where it is)
    "zstd": lambda b: __import__("zstandard").ZstdCompressor().compress(b),
    "lz4": lambda b: __import__("lz4.frame").frame.compress(b),
}


@pytest.mark.parametrize("wrap", sorted(_WRAPS))
def test_bytes_after_the_pickle_are_refused(tmp_path: Path, wrap: str) -> None:
    """pickle.load returns the first of several pickles in a file and leaves the rest unread;
    amber.load refuses such a file rather than leave part of it out unseen, and names what a
    hidden second pickle would run (without running it)."""
    first = pickle.dumps(["a", "b", "c"], protocol=4)
    p = tmp_path / "x.pkl"
    p.write_bytes(_WRAPS[wrap](first))
    assert amber.load(p) == ["a", "b", "c"]
    second = pickle.dumps({"more": 1}, protocol=4)
    p.write_bytes(_WRAPS[wrap](first + second))
    at = "" if wrap == "zlib" else f" that ends at its byte {len(first)}"
    with pytest.raises(amber.FormatError, match=rf"goes on for {len(second)} bytes after the pickle{at} \(another pickle"
                       ".*one object per file") as info:
        amber.load(p)
    assert "names" not in str(info.value) and str(p) in str(info.value)
    marker = tmp_path / "ran"
    p.write_bytes(_WRAPS[wrap](first + hostile_pickle("reduce-os.system", marker)))
    with pytest.raises(amber.FormatError, match=r"it names untrusted globals: (os|posix)\.system \(which can run arbitrary code\); do not load"):
        amber.load(p)
    assert not marker.exists()
    p.write_bytes(_WRAPS[wrap](first + b"\x80\x04cmypkg\nThing\n)R."))  # untrusted, not denied
    with pytest.raises(amber.FormatError, match=r"it names untrusted globals: mypkg\.Thing\. amber\.load reads"):
        amber.load(p)
    p.write_bytes(_WRAPS[wrap](first + b"\x00\x01 not a pickle"))
    with pytest.raises(amber.FormatError, match=r"goes on for 15 bytes after"):
        amber.load(p)
    with pytest.raises(amber.FormatError, match="goes on"):  # bytes in memory: the same
        amber.loads(p.read_bytes(), format="pickle")


def test_bytes_after_an_object_arrays_pickle_are_refused(tmp_path: Path) -> None:
    buf = io.BytesIO()
    np.save(buf, np.array([1, "x"], dtype=object), allow_pickle=True)
    marker = tmp_path / "ran"
    p = tmp_path / "o.npy"
    p.write_bytes(buf.getvalue() + hostile_pickle("reduce-os.system", marker))
    with pytest.raises(amber.FormatError, match=r"goes on for \d+ bytes after the pickle.*untrusted globals: (os|posix)\.system"):
        amber.load(p)
    assert not marker.exists()
    p.write_bytes(buf.getvalue())
    assert amber.load(p).tolist() == [1, "x"]


def test_bytes_after_a_joblib_pickle_are_refused(tmp_path: Path) -> None:
    p = tmp_path / "m.joblib"
    joblib.dump({"w": np.arange(10)}, p)
    with open(p, "ab") as f:
        f.write(pickle.dumps(1))
    with pytest.raises(amber.FormatError, match="goes on for 5 bytes after the pickle"):
        amber.load(p)


# ---------------------------------------------------------------------------------------
# hostile files: refused, payload never runs
# ---------------------------------------------------------------------------------------


def _containers(data: bytes, obj_maker: Any, tmp_path: Path) -> dict[str, Path]:
    """The same payload in every container amber loads."""
    out = {"raw.pkl": tmp_path / "raw.pkl"}
    out["raw.pkl"].write_bytes(data)
    out["gzip.pkl.gz"] = tmp_path / "p.pkl.gz"
    out["gzip.pkl.gz"].write_bytes(gzip.compress(data))
    for comp in (0, 3, "gzip", "bz2", "lzma", "xz", "lz4"):
        p = tmp_path / f"j{comp}.joblib"
        joblib.dump({"model": obj_maker(), "w": np.arange(10)}, p, compress=comp)
        out[f"joblib-{comp}"] = p
    p = tmp_path / "o.npy"
    np.save(p, np.array([obj_maker(), 1], dtype=object), allow_pickle=True)
    out["npy-object"] = p
    p = tmp_path / "o.npz"
    np.savez_compressed(p, a=np.array([obj_maker()], dtype=object))
    out["npz-object"] = p
    return out


@pytest.mark.parametrize("technique", sorted(TECHNIQUES))
def test_every_technique_in_every_container_is_refused(tmp_path: Path, technique: str) -> None:
    marker = tmp_path / "marker"
    for kind, data in containers(hostile_pickle(technique, marker, 4)).items():
        p = tmp_path / "file"
        p.write_bytes(data)
        with pytest.raises(amber.UntrustedTypeError) as err:
            amber.load(p)
        assert err.value.untrusted, kind
        with pytest.raises(amber.UntrustedTypeError):
            amber.convert(p, tmp_path / "out.amber")
        assert amber.untrusted_types(p), kind
        assert not marker.exists(), (technique, kind)
        assert not (tmp_path / "out.amber").exists()


@pytest.mark.parametrize("technique", sorted(TECHNIQUES))
def test_hostile_pickles_refused_before_the_payload_runs(tmp_path: Path, technique: str) -> None:
    marker = tmp_path / "marker"
    for protocol in (0, 2, 4, 5):
        data = hostile_pickle(technique, marker, protocol)
        for load in (
            lambda: amber.loads(data),
            lambda: amber.loads(data, format="pickle"),
            lambda: amber.convert(io.BytesIO(data), tmp_path / "out.amber"),
        ):
            with pytest.raises(amber.UntrustedTypeError) as err:
                load()
            assert err.value.denied or err.value.untrusted
            assert "unsafe" not in str(err.value)  # never advises switching safety off
            assert not marker.exists(), technique
        assert not (tmp_path / "out.amber").exists()


def test_hostile_payload_in_every_container(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    make = lambda: Reduce(os.system, f"touch {marker}")  # noqa: E731
    for kind, p in _containers(hostile_pickle("reduce-os.system", marker), make, tmp_path).items():
        with pytest.raises(amber.UntrustedTypeError) as err:
            amber.load(p)
        assert {"os.system", "posix.system"} & set(err.value.denied), kind
        with pytest.raises(amber.UntrustedTypeError):
            amber.convert(p, tmp_path / "out.amber")
        assert not marker.exists(), kind
        assert not (tmp_path / "out.amber").exists()


def test_the_corpus_is_real_and_unsafe_runs_it(tmp_path: Path) -> None:
    """``unsafe=True`` really is plain pickle: each payload creates its marker (in a
    child process, so nothing of it touches the test run)."""
    for technique in ("reduce-os.system", "STACK_GLOBAL-memo", "INST-opcode", "getattr-chain"):
        marker = tmp_path / f"marker-{technique}"
        p = tmp_path / f"{technique}.pkl"
        p.write_bytes(hostile_pickle(technique, marker))
        code = f"import amber; amber.load({str(p)!r}, unsafe=True)"
        subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, timeout=120)
        assert marker.exists(), technique


# ---------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", range(6))
def test_dump_pickle_is_a_real_pickle(tmp_path: Path, protocol: int) -> None:
    p = tmp_path / "x.pkl"
    amber.dump(DATA["builtins"], p, protocol=protocol)
    data = p.read_bytes()
    if protocol >= 2:
        assert data[:2] == bytes([0x80, protocol])
    assert pickle.loads(data) == DATA["builtins"]  # our own file
    assert amber.load(p) == DATA["builtins"]


@pytest.mark.parametrize("compress", ["zstd", "lz4", "gzip", "bz2", "lzma", "xz", "zlib", True, "zstd:9"])
def test_dump_pickle_compressed(tmp_path: Path, compress: Any) -> None:
    p = tmp_path / "x.pkl"
    amber.dump(DATA["arrays"], p, compress=compress)
    assert len(p.read_bytes()) < len(pickle.dumps(DATA["arrays"], protocol=5))
    same(amber.load(p), DATA["arrays"])


@pytest.mark.parametrize("compress", [None, 3, True, "lz4", ("gzip", 6), "zlib:1"])
def test_dump_joblib_is_read_by_joblib(tmp_path: Path, compress: Any) -> None:
    p = tmp_path / "m.joblib"
    amber.dump(MODELS["forest"], p, compress=compress)
    loaded = joblib.load(p)  # our own file
    np.testing.assert_array_equal(loaded.predict(X), MODELS["forest"].predict(X))
    np.testing.assert_array_equal(amber.load(p).predict(X), MODELS["forest"].predict(X))


def test_dump_joblib_rejects_codecs_joblib_lacks(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="joblib cannot compress"):
        amber.dump([1], tmp_path / "m.joblib", compress="zstd")
    assert list(tmp_path.iterdir()) == []


def test_cloudpickle_needs_unsafe(tmp_path: Path) -> None:
    k = 3
    f = lambda x: x * k  # noqa: E731
    p = tmp_path / "f.pkl"
    amber.dump(f, p, format="cloudpickle")
    with pytest.raises(amber.UntrustedTypeError) as err:
        amber.load(p)
    assert any(n.startswith("cloudpickle.") for n in err.value.denied)
    assert amber.load(p, unsafe=True)(2) == 6


def test_native_only_options_are_refused_for_pickles(tmp_path: Path) -> None:
    for kw in ({"metadata": {"a": 1}}, {"deterministic": True}, {"allow_pickle": True}):
        with pytest.raises(amber.FormatError):
            amber.dump(1, tmp_path / "x.pkl", **kw)
    with pytest.raises(amber.FormatError):
        amber.dump(1, tmp_path / "x.amber", protocol=2)
    assert list(tmp_path.iterdir()) == []


def test_dumps_and_loads_in_pickle_formats() -> None:
    for fmt in ("pickle", "joblib", "cloudpickle"):
        data = amber.dumps(DATA["builtins"], format=fmt)
        assert amber.loads(data) == DATA["builtins"]


@settings(max_examples=150, deadline=None)
@given(
    obj=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text() | st.binary(),
        lambda kids: st.lists(kids, max_size=4)
        | st.tuples(kids, kids)
        | st.dictionaries(st.text(max_size=5), kids, max_size=4)
        | st.frozensets(st.integers(), max_size=4),
        max_leaves=20,
    ),
    protocol=st.integers(0, 5),
)
def test_safe_load_equals_pickle(obj: Any, protocol: int) -> None:
    data = pickle.dumps(obj, protocol=protocol)
    assert amber.loads(data, format="pickle") == pickle.loads(data)  # our own data


# ---------------------------------------------------------------------------------------
# pickle islands
# ---------------------------------------------------------------------------------------


def test_islands_hold_only_what_pickle_must(tmp_path: Path) -> None:
    k = 2
    pipe = make_pipeline(FunctionTransformer(lambda x: x * k), LogisticRegression()).fit(X, Y)
    obj = {"pipe": pipe, "weights": np.arange(10_000.0), "f": lambda: 5}
    obj["again"] = obj["f"]
    p = tmp_path / "m.amber"
    with pytest.raises(amber.UnsupportedTypeError, match="allow_pickle=True"):
        amber.dump(obj, p)
    amber.dump(obj, p, allow_pickle=True)
    with pytest.raises(amber.PickleIslandError) as err:
        amber.load(p)
    assert [path for path, _ in err.value.islands] == ["root['pipe'].steps[0][1].func", "root['f']"]
    assert "allow_pickle=True" in str(err.value)
    info = amber.inspect(p)
    assert [i["path"] for i in info.islands] == ["root['pipe'].steps[0][1].func", "root['f']"]
    assert "PICKLE" in str(info)
    loaded = amber.load(p, allow_pickle=True, mmap=True)
    assert loaded["f"]() == 5 and loaded["again"] is loaded["f"]
    assert not loaded["weights"].flags.writeable  # the array stayed native and mapped
    np.testing.assert_array_equal(loaded["pipe"].predict(X), pipe.predict(X))


# ---------------------------------------------------------------------------------------
# convert
# ---------------------------------------------------------------------------------------


def test_convert_pickle_to_amber_with_provenance(tmp_path: Path) -> None:
    src = tmp_path / "model.pkl"
    src.write_bytes(pickle.dumps(MODELS["pipeline"], protocol=4))
    assert amber.convert(src, tmp_path / "model.amber") == "pickle"
    info = amber.inspect(tmp_path / "model.amber")
    assert info.converted_from["name"] == "model.pkl" and info.converted_from["format"] == "pickle"
    assert len(info.converted_from["sha256"]) == 64
    loaded = amber.load(tmp_path / "model.amber")
    np.testing.assert_array_equal(loaded.predict(X), MODELS["pipeline"].predict(X))


def test_convert_between_formats(tmp_path: Path) -> None:
    joblib.dump(DATA["frame"], tmp_path / "f.joblib", compress=3)
    amber.convert(tmp_path / "f.joblib", tmp_path / "f.pkl", compress="zstd")
    amber.convert(tmp_path / "f.pkl", tmp_path / "f.amber", compress=True, metadata={"run": 7})
    amber.convert(tmp_path / "f.amber", tmp_path / "f2.joblib")
    same(joblib.load(tmp_path / "f2.joblib"), DATA["frame"])
    assert amber.open(tmp_path / "f.amber").metadata == {"run": 7}


def test_cli_convert(tmp_path: Path) -> None:
    from amber._cli import main

    from tests._objects_mod import Point

    src = tmp_path / "p.pkl"
    src.write_bytes(pickle.dumps({"p": Point(1, 2)}))
    assert main(["convert", str(src), str(tmp_path / "p.amber")]) == 1
    assert not (tmp_path / "p.amber").exists()
    assert main(["convert", str(src), str(tmp_path / "p.amber"), "--trusted", "tests._objects_mod.Point"]) == 0
    assert amber.load(tmp_path / "p.amber", trusted=["tests._objects_mod.Point"])["p"] == Point(1, 2)


def test_plain_pickles_of_tensors_and_modules(tmp_path: Path) -> None:
    """``pickle.dump`` of tensors stores each storage as a nested legacy torch.save file
    (``torch.storage._load_from_bytes``): read by amber's torch reader, never torch.load."""
    import torch

    obj = {
        "w": torch.randn(3, 4),
        "view": torch.arange(10)[2:8:2],
        "half": torch.ones(2, dtype=torch.float16),
        "param": torch.nn.Parameter(torch.ones(2)),
        "model": torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU()),
    }
    for protocol in (2, 5):
        p = tmp_path / f"t{protocol}.pkl"
        p.write_bytes(pickle.dumps(obj, protocol=protocol))
        same(amber.load(p), pickle.loads(p.read_bytes()))  # our own file


def test_untrusted_types_of_other_tools_files(tmp_path: Path) -> None:
    import torch

    from tests._objects_mod import Point

    marker = tmp_path / "marker"
    (tmp_path / "h.pkl").write_bytes(hostile_pickle("STACK_GLOBAL-memo", marker))
    assert amber.untrusted_types(tmp_path / "h.pkl") == ["os.system"]
    joblib.dump({"p": Point(1, 2), "a": np.arange(3)}, tmp_path / "p.joblib", compress=3)
    torch.save({"p": Point(1, 2), "t": torch.ones(2)}, tmp_path / "p.pt")
    np.save(tmp_path / "p.npy", np.array([Point(1, 2)], dtype=object), allow_pickle=True)
    for name in ("p.joblib", "p.pt", "p.npy"):
        assert amber.untrusted_types(tmp_path / name) == ["tests._objects_mod.Point"], name
        assert amber.untrusted_types(tmp_path / name, trusted=["tests"]) == [], name
    (tmp_path / "m.pkl").write_bytes(pickle.dumps(MODELS["pipeline"]))
    assert amber.untrusted_types(tmp_path / "m.pkl") == []
    assert not marker.exists()


@pytest.mark.parametrize("fmt", ["amber", "pickle", "joblib"])
@pytest.mark.parametrize("name", ["builtins", "arrays", "frame", "sparse"])
def test_assert_roundtrip_in_every_writable_format(tmp_path: Path, fmt: str, name: str) -> None:
    from amber.testing import assert_roundtrip

    obj = DATA[name]
    if fmt == "joblib" and name == "arrays":  # joblib loads arrays in native byte order
        obj = {k: v for k, v in obj.items() if k != "be"}
    assert_roundtrip(obj, format=fmt, tmp_path=tmp_path)


def _s4(x: str) -> bytes:
    return b"\x8c" + bytes([len(x)]) + x.encode()


def test_a_pickle_cannot_patch_what_it_imports() -> None:
    """BUILD on an imported class sets attributes on it for the whole process: amber undoes
    the change and refuses the file."""
    import scipy.sparse._csr as csr

    before = csr.csr_matrix.tocsc
    data = (
        b"\x80\x04" + _s4("scipy.sparse._csr") + _s4("csr_matrix") + b"\x93"
        + b"N}" + _s4("tocsc") + _s4("numpy") + _s4("abs") + b"\x93s" + _s4("added") + b"Ns\x86b."
    )
    with pytest.raises(amber.FormatError, match="undid the change"):
        amber.loads(data, format="pickle")
    assert csr.csr_matrix.tocsc is before and not hasattr(csr.csr_matrix, "added")
    data = b"\x80\x04" + _s4("numpy") + _s4("mean") + b"\x93" + b"N}" + _s4("__defaults__") + b"(K\x05ts\x86b."
    with pytest.raises(amber.FormatError, match="numpy.mean"):
        amber.loads(data, format="pickle")
    assert "__defaults__" not in vars(np.mean)


def test_cli_scan_exit_codes_and_formats(tmp_path: Path, capsys: Any) -> None:
    import json

    from amber._cli import main

    good, bad = tmp_path / "good.pkl", tmp_path / "bad.pkl"
    good.write_bytes(pickle.dumps(MODELS["forest"]))
    bad.write_bytes(hostile_pickle("reduce-os.system", tmp_path / "marker"))
    assert main(["scan", str(good)]) == 0
    assert "safe" in capsys.readouterr().out
    assert main(["scan", str(good), str(bad)]) == 1
    out = capsys.readouterr().out
    assert "dangerous" in out and "posix.system" in out
    assert main(["scan", str(tmp_path), "--recursive", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert sorted(f["verdict"] for f in report["files"]) == ["dangerous", "safe"]
    assert main(["scan", str(bad), "--sarif"]) == 1
    sarif = json.loads(capsys.readouterr().out)
    assert sarif["version"] == "2.1.0" and sarif["runs"][0]["results"]
    assert main(["scan", str(tmp_path / "missing.pkl")]) == 2
    capsys.readouterr()
    assert amber.scan(good).verdict == "safe"
    assert not (tmp_path / "marker").exists()


def test_a_pickle_node_the_manifest_does_not_list_is_refused(tmp_path: Path) -> None:
    """A hand-edited file whose tree has a pickle island but whose manifest lists none:
    refused even with allow_pickle=True (the manifest is what a load audits first)."""
    from tests._hostile import parse

    k = 2
    p = parse(amber.dumps({"f": lambda: k}, allow_pickle=True))
    assert amber.loads(p.rebuild(), allow_pickle=True)["f"]() == 2  # the rebuilt file is sound
    manifest = dict(p.manifest)
    del manifest["islands"]
    with pytest.raises(amber.PickleIslandError):
        amber.loads(p.rebuild(manifest), allow_pickle=True)


# --- object arrays: NumPy's __setstate__ fills them from a list by the state's shape ------

def _short_object_array_pickle() -> bytes:
    """An object array pickle (protocol 2, as joblib nests them) whose state says 144 items
    and lists 12."""
    a = np.empty(12, dtype=object)
    a[:] = [f"s{i}" for i in range(12)]
    data = pickle.dumps(a, protocol=2)
    assert data.count(b"K\x0c\x85") == 1  # the state's shape (12,)
    return data.replace(b"K\x0c\x85", b"K\x90\x85")


def test_object_array_state_shorter_than_its_shape_refused_by_the_python_unpickler() -> None:
    """NumPy reads the state's list by the shape without comparing them (plain pickle.load
    of such a stream crashes): the pure-Python unpickler, which joblib files go through,
    checks before BUILD."""
    import io

    from amber.formats._pickle import pickle_trust
    from amber.security._unpickler import SafePyUnpickler

    with pytest.raises(amber.AmberError, match=r"object array of shape \(144,\) comes with 12 items"):
        SafePyUnpickler(io.BytesIO(_short_object_array_pickle()), pickle_trust(()), "").load()


def test_joblib_object_array_shorter_than_its_shape_refused(tmp_path: Path) -> None:
    a = np.empty(12, dtype=object)
    a[:] = [f"s{i}" for i in range(12)]
    p = tmp_path / "obj.joblib"
    joblib.dump({"a": a}, p)
    data = p.read_bytes()
    at = data.rindex(b"K\x0c\x85")  # the nested pickle's state (the first is joblib's header)
    p.write_bytes(data[:at] + b"K\x90\x85" + data[at + 3 :])
    with pytest.raises(amber.AmberError, match=r"obj.joblib: .*object array of shape \(144,\) comes with 12 items"):
        amber.load(p)


def test_joblib_object_arrays_load(tmp_path: Path) -> None:
    rec = np.zeros(3, dtype=[("n", "i4"), ("o", "O")])
    rec["o"] = ["x", None, 2.5]
    arrays = {
        "strings": np.array(["a", "bb", None], dtype=object), "2d": np.array([[1, "x"], [None, 2.0]], dtype=object),
        "fortran": np.asfortranarray(np.array([[1, "x", 3], [None, 2.0, "y"]], dtype=object)),
        "empty": np.empty((0, 4), dtype=object), "record": rec, "0d": np.array("z", dtype=object),
    }
    p = tmp_path / "objs.joblib"
    joblib.dump(arrays, p)
    out = amber.load(p)
    for k, v in arrays.items():
        assert out[k].dtype == v.dtype and out[k].shape == v.shape, k
        assert out[k].tolist() == v.tolist(), k


def _short_object_array_bytes(data: bytes) -> bytes:
    """``data`` with its one object array state's shape (12,) said to be (144,)."""
    at = data.rindex(b"K\x0c\x85")
    return data[:at] + b"K\x90\x85" + data[at + 3 :]


def _twelve() -> np.ndarray:
    a = np.empty(12, dtype=object)
    a[:] = [f"s{i}" for i in range(12)]
    return a


def test_plain_pickle_object_array_shorter_than_its_shape_refused(tmp_path: Path) -> None:
    """The C unpickler's BUILD cannot be hooked: a stream that makes an object dtype is read
    again by the pure-Python unpickler, which checks the array state (plain pickle.load of
    this file crashes, exit 139)."""
    p = tmp_path / "short.pkl"
    p.write_bytes(_short_object_array_bytes(pickle.dumps(_twelve(), protocol=4)))
    with pytest.raises(amber.AmberError, match=r"short.pkl: an object array of shape \(144,\) comes with 12 items"):
        amber.load(p)


def test_npy_object_array_shorter_than_its_shape_refused(tmp_path: Path) -> None:
    p = tmp_path / "short.npy"
    np.save(p, _twelve(), allow_pickle=True)
    p.write_bytes(_short_object_array_bytes(p.read_bytes()))
    with pytest.raises(amber.AmberError, match=r"object array of shape \(144,\) comes with 12 items"):
        amber.load(p, allow_pickle=True)


def test_torch_file_object_array_shorter_than_its_shape_refused(tmp_path: Path) -> None:
    import zipfile

    torch = pytest.importorskip("torch")
    src, bad = tmp_path / "src.pt", tmp_path / "short.pt"
    torch.save({"obj": _twelve(), "t": torch.arange(4)}, src)
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(bad, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            zout.writestr(info, _short_object_array_bytes(data) if info.filename.endswith("data.pkl") else data)
    with pytest.raises(amber.AmberError, match=r"data.pkl .*object array of shape \(144,\) comes with 12 items"):
        amber.load(bad, trusted=["torch"])


def _short_masked_state() -> tuple[Any, tuple[Any, ...], tuple[Any, ...]]:
    """A masked object array's reduce value whose 7-item state says 12x12 and lists 12 items
    (``numpy.ma`` hands items 1-4 on to the ndarray's ``__setstate__``)."""
    a = np.ma.array(np.array([f"s{i}" for i in range(144)], dtype=object).reshape(12, 12))
    func, args, state = a.__reduce__()
    assert len(state) == 7 and type(state[4]) is list
    return func, args, (*state[:4], state[4][:12], *state[5:])


class _ShortMasked:
    """Pickles (and saves natively) as a masked object array with a short state."""

    def __reduce_ex__(self, protocol: int) -> Any:
        return _short_masked_state()


@pytest.mark.parametrize("how", ["pkl", "joblib", "amber"])
def test_masked_object_array_shorter_than_its_shape_refused(how: str, tmp_path: Path) -> None:
    """A masked array's state has 7 items, not an ndarray's 4 or 5: it is checked all the
    same (before, plain pickle.load and amber.load of each of these files crashed, SIGSEGV)."""
    p = tmp_path / f"masked.{how}"
    if how == "pkl":
        p.write_bytes(pickle.dumps({"m": _ShortMasked()}, protocol=4))
    elif how == "joblib":
        joblib.dump({"m": _ShortMasked()}, p)
    else:
        amber.dump({"m": _ShortMasked()}, p)
    with pytest.raises(amber.AmberError, match=r"object array of shape \(12, 12\) comes with 12 items"):
        amber.load(p)


class _Reduced:
    """Pickles as ``func(*args)`` with ``state`` (a BUILD)."""

    def __init__(self, func: Any, args: tuple[Any, ...], state: Any) -> None:
        self.reduced = (func, args, state)

    def __reduce__(self) -> Any:
        return self.reduced


def _array_state_bypasses() -> dict[str, Any]:
    """Object-array states NumPy takes that are not (version, shape, dtype, fortran, list):
    every one of them crashed amber.load (SIGSEGV) before the check looked past tuples."""
    import collections

    from numpy._core.multiarray import _reconstruct
    from pandas.api.typing import FrozenList

    def state(raw: Any) -> tuple[Any, ...]:
        return (1, (12, 12), np.dtype(object), False, raw)

    made = (_reconstruct, (np.ndarray, (0,), b"b"))
    func, args, masked = _short_masked_state()
    return {
        "a list as the state": _Reduced(*made, list(state(["x"] * 12))),
        "a deque as the state": _Reduced(*made, collections.deque(state(["x"] * 12))),
        "a list subclass of 12 items": _Reduced(*made, state(FrozenList(["x"] * 12))),
        "a masked array's state as a list": _Reduced(func, args, list(masked)),
    }


@pytest.mark.parametrize("case", sorted(_array_state_bypasses()))
@pytest.mark.parametrize("how", ["pkl", "joblib"])
def test_array_states_numpy_takes_in_other_shapes_are_refused(case: str, how: str, tmp_path: Path) -> None:
    obj = {"a": _array_state_bypasses()[case]}
    p = tmp_path / f"bad.{how}"
    if how == "pkl":
        p.write_bytes(pickle.dumps(obj, protocol=4))
    else:
        joblib.dump(obj, p)
    with pytest.raises(amber.AmberError, match=r"not a tuple|shape \(12, 12\) comes with 12 items"):
        amber.load(p)


def test_a_masked_array_state_as_a_list_is_refused_in_amber_files(tmp_path: Path) -> None:
    p = tmp_path / "bad.amber"
    amber.dump({"a": _array_state_bypasses()["a masked array's state as a list"]}, p)
    with pytest.raises(amber.CorruptFileError, match=r"an array's state is a list, not a tuple"):
        amber.load(p)


@pytest.mark.parametrize("how", ["pkl", "joblib", "amber"])
def test_masked_arrays_load(how: str, tmp_path: Path) -> None:
    """Good masked arrays (objects, numbers, records) load equal, mask and fill value kept."""
    from numpy.ma import mrecords

    obj = np.ma.array(np.array([["a", None, 3], [2.5, "b", "c"]], dtype=object), mask=[[0, 1, 0], [0, 0, 1]])
    num = np.ma.array(np.arange(6.0).reshape(2, 3), mask=[[1, 0, 0], [0, 1, 0]], fill_value=-1.0)
    rec = mrecords.fromarrays([np.arange(3), np.array([0.5, 1.5, 2.5])], names="n,x")  # (numbers: numpy pickles
    # masked records as bytes, which holds no objects)
    data = {"obj": obj, "num": num, "rec": rec}
    p = tmp_path / f"m.{how}"
    if how == "pkl":
        p.write_bytes(pickle.dumps(data, protocol=4))
    elif how == "joblib":
        joblib.dump(data, p)
    else:
        amber.dump(data, p)
    out = amber.load(p, trusted=["numpy.rec", "numpy.record", "numpy.ma.mrecords"])  # (numpy.ma is trusted)
    for k, v in data.items():
        assert type(out[k]) is type(v), k
        assert out[k].dtype == v.dtype and out[k].shape == v.shape, k
        assert out[k].tolist() == v.tolist(), k
        assert (np.ma.getmaskarray(out[k]) == np.ma.getmaskarray(v)).all(), k
    assert out["num"].fill_value == -1.0


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_object_arrays_in_pickles_torch_and_npy_files_load(protocol: int, tmp_path: Path) -> None:
    """Files with object arrays take the checked pure-Python path and come back equal;
    dtype classes stored as values stay themselves when no object dtype is made."""
    torch = pytest.importorskip("torch")
    rec = np.zeros(2, dtype=[("o", "O"), ("i", "i4")])
    rec["o"] = ["x", (1, 2)]
    obj = {"strings": np.array(["a", None, "ccc"], dtype=object), "rec": rec, "2d": np.array([[1, "x"], [2.5, None]], dtype=object),
           "empty": np.empty((0, 3), dtype=object), "n": np.arange(5), "dt": np.dtype(object), "df": pd.DataFrame({"o": ["a", None]})}
    p = tmp_path / "o.pkl"
    p.write_bytes(pickle.dumps(obj, protocol=protocol))
    out = amber.load(p)
    for k in ("strings", "rec", "2d", "empty", "n"):
        assert out[k].dtype == obj[k].dtype and out[k].shape == obj[k].shape and out[k].tolist() == obj[k].tolist(), k
    assert out["dt"] == np.dtype(object)
    pd.testing.assert_frame_equal(out["df"], obj["df"])
    t = tmp_path / "o.pt"
    torch.save({"arr": obj["strings"], "t": torch.arange(3)}, t)
    got = amber.load(t, trusted=["torch"])
    assert got["arr"].tolist() == obj["strings"].tolist() and torch.equal(got["t"], torch.arange(3))
    plain = tmp_path / "c.pkl"
    plain.write_bytes(pickle.dumps([np.dtypes.Float64DType, np.float32, np.arange(2)], protocol=protocol))
    classes = amber.load(plain, trusted=["numpy.dtypes.Float64DType"])
    assert classes[0] is np.dtypes.Float64DType and classes[1] is np.float32
    # the dtype classes the C unpickler replaces by watching stand-ins come back themselves
    watched = tmp_path / "w.pkl"
    watched.write_bytes(pickle.dumps({"k": [np.dtype, np.dtypes.ObjectDType], "a": np.arange(2), "d": np.dtype("f4")},
                                     protocol=protocol))
    back_w = amber.load(watched, trusted=["numpy.dtype", "numpy.dtypes.ObjectDType"])
    assert back_w["k"][0] is np.dtype and back_w["k"][1] is np.dtypes.ObjectDType and back_w["d"] == np.dtype("f4")
    # globals whose == is no bool (pandas.NA) and classmethods through getattr pass the watch
    import zoneinfo

    odd = tmp_path / "na.pkl"
    odd.write_bytes(pickle.dumps({"na": pd.NA, "z": zoneinfo.ZoneInfo("Europe/Paris"),
                                  "o": np.array([pd.NA, 1], dtype=object)}, protocol=protocol))
    back = amber.load(odd)
    assert back["na"] is pd.NA and str(back["z"]) == "Europe/Paris" and back["o"][0] is pd.NA


# --- every dtype class is watched; checks run whatever makes the checked objects --------------

class _Reduced:
    """Pickles as ``func(*args)`` with ``state`` for its BUILD (None: no BUILD)."""

    def __init__(self, func: Any, args: tuple[Any, ...], state: Any = None) -> None:
        self.rv = (func, args) if state is None else (func, args, state)

    def __reduce__(self) -> Any:
        return self.rv


def _string_dtype_short_list() -> Any:
    """A StringDType array (its items are references, as an object array's are) of shape
    (100000,) whose state holds a list of 1."""
    from numpy._core.multiarray import _reconstruct

    return {"x": _Reduced(_reconstruct, (np.ndarray, (0,), b"b"),
                          (1, (100_000,), _Reduced(np.dtypes.StringDType, ()), False, ["a"]))}


def _dtype_class_six_item_state(cls: str) -> Any:
    """numpy.dtypes.<cls>(8) with a 6-item dtype state of version 3 (NumPy's __setstate__
    reads past it)."""
    return [_Reduced(getattr(np.dtypes, cls), (8,), (3, "|", None, {}, 8, 1))]


def _saved(obj: Any, how: str, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    p = tmp_path / f"x.{how}"
    if how == "joblib":
        joblib.dump(obj, p)
    elif how == "amber":
        amber.dump(obj, p)
    elif how == "pt":
        import torch

        torch.save(obj, p)
        return p, {"trusted": ["tests"]}
    else:
        p.write_bytes(pickle.dumps(obj, protocol=4))
    return p, {}


_DTYPE_CLASS_CASES = {
    "StringDType array of 100000 items with a list of 1": (_string_dtype_short_list, r"comes with 1 items"),
    "BytesDType(8) with a 6-item state of version 3": (lambda: _dtype_class_six_item_state("BytesDType"), r"6 items with version 3"),
    "StrDType(8) with a 6-item state of version 3": (lambda: _dtype_class_six_item_state("StrDType"), r"6 items with version 3"),
}


@pytest.mark.parametrize("how", ["pkl", "loads", "joblib", "pt"])
@pytest.mark.parametrize("case", list(_DTYPE_CLASS_CASES), ids=list(_DTYPE_CLASS_CASES))
def test_dtypes_made_by_any_dtype_class_are_checked(case: str, how: str, tmp_path: Path) -> None:
    """Found in review: the C unpickler watched only numpy.dtype, ObjectDType and VoidDType,
    so these streams (which the proof declines) crashed the process on every pickle road
    (exit 139): a StringDType array filled from a short list, and a BytesDType/StrDType
    dtype given a state NumPy's __setstate__ reads past. Every dtype class is watched now,
    and the checked reading refuses them. Loaded in a child process, so that a crash fails
    this test rather than ending the run."""
    make, message = _DTYPE_CLASS_CASES[case]
    p, kw = _saved(make(), "pkl" if how == "loads" else how, tmp_path)
    load = f"amber.loads(open({str(p)!r}, 'rb').read())" if how == "loads" else f"amber.load({str(p)!r}, **{kw!r})"
    code = ("import amber, sys\ntry:\n    " + load + "\nexcept amber.AmberError as e:\n    print(e); sys.exit(3)\nprint('loaded')")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parent.parent)
    assert run.returncode == 3, (run.returncode, run.stdout, run.stderr[-2000:])
    assert re_search(message, run.stdout) and "NumPy would use memory it does not own" in run.stdout


def re_search(pattern: str, text: str) -> bool:
    import re

    return re.search(pattern, text) is not None


@pytest.mark.parametrize("how", ["pkl", "joblib", "pt"])
def test_string_dtype_arrays_and_dtype_classes_load(how: str, tmp_path: Path) -> None:
    obj = {"s": np.array(["a", "", "long text " * 20], dtype=np.dtypes.StringDType()), "b": np.dtypes.BytesDType(4),
           "n": np.arange(3.0)}
    p, kw = _saved(obj, how, tmp_path)
    out = amber.load(p, **kw)
    assert out["s"].dtype == obj["s"].dtype and out["s"].tolist() == obj["s"].tolist()
    assert out["b"] == np.dtype("S4") and out["n"].tolist() == [0.0, 1.0, 2.0]


def _random_state_by_name(pos: int) -> Any:
    """A RandomState pickled as NumPy's helper builds one from a bit generator's name (as
    older NumPy wrote them): the MT19937 class is never named in the stream."""
    from numpy.random import _pickle as npp

    state = np.random.RandomState(1).get_state(legacy=False)
    state["state"]["pos"] = pos
    return {"rs": _Reduced(getattr(npp, "__randomstate_ctor"), ("MT19937",), state)}


@pytest.mark.parametrize("how", ["pkl", "joblib"])
def test_generators_made_by_name_are_checked(how: str, tmp_path: Path) -> None:
    """Found in review: the after-load checks ran only when the stream named a checked class,
    and NumPy's pickle helpers also take a bit generator's name: a RandomState at MT19937
    position 10**6 loaded and crashed its first draw (exit 139). A function that may make
    checked objects (anything but the helpers of _PLAIN_MAKERS) now sets the walk off."""
    p, _ = _saved(_random_state_by_name(10**6), how, tmp_path)
    with pytest.raises(amber.CorruptFileError, match=r"MT19937 bit generator is malformed: its position 1000000 is outside 0..624"):
        amber.load(p)
    good, _ = _saved(_random_state_by_name(17), how, tmp_path)
    rs = amber.load(good)["rs"]
    want = np.random.RandomState(1)
    st = want.get_state(legacy=False)
    st["state"]["pos"] = 17
    want.set_state(st)
    assert rs.random_sample(5).tolist() == want.random_sample(5).tolist()


def _hidden_in_masked(hide: str) -> Any:
    bad = pd.MultiIndex(levels=[[1, 2], ["a", "b"]], codes=[[0, -128], [0, 1]], verify_integrity=False)
    if hide == "masked item":
        a = np.ma.MaskedArray(np.empty(2, dtype=object), mask=[True, False])
        a.data[0], a.data[1] = bad, "visible"
    elif hide == "fill value":
        a = np.ma.MaskedArray(np.array(["x", "y"], dtype=object), mask=[True, False])
        a.fill_value = {"in": bad}  # (a MultiIndex itself would become an array of its tuples)
    else:  # outside the view, in its base
        from numpy.lib.stride_tricks import as_strided

        base = np.empty(3, dtype=object)
        base[:] = ["x", "y", bad]
        a = _Reduced(as_strided, (base,), None)
        a.rv = (as_strided, (base, (2,), (8,)))
    return {"k": a}


@pytest.mark.parametrize("how", ["pkl", "joblib"])
@pytest.mark.parametrize("hide", ["masked item", "fill value", "base"])
def test_checked_objects_hidden_in_arrays_are_found(hide: str, how: str, tmp_path: Path) -> None:
    """Found in review: the after-load walk read object arrays through their own tolist and
    never entered an ndarray subclass, so a MultiIndex whose codes run past its level (its
    values read other memory) loaded when it sat at a masked position, or in the fill value,
    of a masked object array. Items are now read through ndarray itself, a subclass's
    attributes and an array's base are walked too."""
    p, _ = _saved(_hidden_in_masked(hide), how, tmp_path)
    trusted = ["numpy.lib.stride_tricks.as_strided"] if hide == "base" else []
    with pytest.raises(amber.CorruptFileError, match=r"pandas MultiIndex is malformed: its codes for level 0 run from -128"):
        amber.load(p, trusted=trusted)


def test_the_walk_finds_the_same_objects_in_both_twins_through_subclasses_and_bases() -> None:
    from amber.security import _guards

    mi = pd.MultiIndex.from_arrays([[1, 2], ["a", "b"]])
    a = np.ma.MaskedArray(np.empty(2, dtype=object), mask=[True, False])
    a.data[0], a.data[1] = mi, "v"
    base = np.empty(3, dtype=object)
    base[:] = ["x", "y", pd.MultiIndex.from_arrays([[3], ["c"]])]
    root = {"masked": a, "view": base[:2]}
    got = _guards.find_checked(root)
    assert [id(o) for _, o in got] == [id(o) for _, o in _guards._find_checked_py(root)]
    assert {id(mi), id(base[2])} <= {id(o) for _, o in got}


# --- hiding checked objects from the after-load walk (found by a hunt for bypasses) --------------

def _bad_mi() -> Any:
    """A MultiIndex whose codes run past its level (its values read other memory)."""
    return pd.MultiIndex(levels=[[1, 2], ["a", "b"]], codes=[[0, -128], [0, 1]], verify_integrity=False)


def _hidden() -> dict[str, Any]:
    mi = _bad_mi()
    dt = np.dtype([("a", "O")])
    return {
        "in a structured scalar": {"v": np.array([(mi, 1.0)], dtype=[("a", "O"), ("b", "f8")])[0]},
        # the walk's own tuples of items: one freed could lend its address to the next
        "behind another structured array": [np.array([(1.5,)], dtype=dt), np.array([(mi,)], dtype=dt)],
        "in a field title": {"a": np.zeros(2, np.dtype([((mi, "a"), "f8")]))},
        "in a dtype's title": {"d": np.dtype([((mi, "a"), "f8")])},
        "in dtype metadata": {"a": np.zeros(2, np.dtype(float, metadata={"m": mi}))},
        "in a structured dtype's metadata": {"a": np.zeros(2, np.dtype([("a", "f8")], metadata={"m": mi}))},
        "in a subarray's metadata": {"a": np.zeros(2, np.dtype((np.dtype(float, metadata={"m": mi}), (2,))))},
    }


HIDDEN = _hidden()


@pytest.mark.parametrize("how", ["pkl", "joblib", "pt"])
@pytest.mark.parametrize("where", list(HIDDEN), ids=list(HIDDEN))
def test_checked_objects_numpy_keeps_out_of_the_gc_s_sight_are_found(where: str, how: str, tmp_path: Path) -> None:
    """NumPy scalars and dtypes tell the garbage collector of no references, and the walk
    recorded the tuples it made itself by address: a bad MultiIndex in a structured scalar,
    in a field title or in dtype metadata, or in the second of two structured arrays, loaded
    (repr then read other memory). The walk now enters scalars and dtypes, and keeps what it
    made until it ends."""
    p, kw = _saved(HIDDEN[where], how, tmp_path)
    with pytest.raises(amber.CorruptFileError, match=r"pandas MultiIndex is malformed: its codes for level 0 run from -128"):
        amber.load(p, **kw)


def test_dtypes_with_titles_metadata_and_subarrays_load(tmp_path: Path) -> None:
    dt = np.dtype([(("a title", "a"), "f8"), ("b", "O", (2,))], metadata={"unit": "m", "scale": 2.5})
    arr = np.zeros(3, dt)
    arr["b"][1] = ("x", None)
    obj = {"a": arr, "s": arr[1], "d": np.dtype(float, metadata={"k": [1, 2]})}
    p = tmp_path / "t.pkl"
    p.write_bytes(pickle.dumps(obj, protocol=5))
    out = amber.load(p)
    assert out["a"].dtype == dt and out["a"].dtype.metadata == {"unit": "m", "scale": 2.5}
    assert out["a"]["b"][1].tolist() == ["x", None] and out["s"]["b"].tolist() == ["x", None]
    assert out["d"].metadata == {"k": [1, 2]}


def _raw(*ops: bytes) -> bytes:
    return pickle.PROTO + b"\x02" + b"".join(ops) + pickle.STOP


def _g(module: str, name: str) -> bytes:
    return pickle.GLOBAL + f"{module}\n{name}\n".encode()


def _s(text: str) -> bytes:
    b = text.encode()
    return pickle.SHORT_BINUNICODE + bytes([len(b)]) + b


def test_a_class_reached_through_getattr_or_an_enum_member_is_not_changed_for_the_process(tmp_path: Path) -> None:
    """BUILD on a class getattr handed out (getattr(pandas.Series, "str") is StringMethods),
    or on the shared member an enum's call hands out (uuid.SafeUUID(0)), set attributes that
    outlived the load: check_untouched saw neither. Both are undone and refused now."""
    import uuid

    inner = pickle.dumps(_bad_mi(), protocol=2)[2:-1]
    patch_class = _raw(_g("builtins", "getattr"), _g("pandas.core.series", "Series"), _s("str"), pickle.TUPLE2,
                       pickle.REDUCE, pickle.NONE, pickle.EMPTY_DICT, _s("hidden"), inner, pickle.SETITEM,
                       pickle.TUPLE2, pickle.BUILD)
    patch_member = _raw(_g("uuid", "SafeUUID"), pickle.BININT1 + b"\x00", pickle.TUPLE1, pickle.REDUCE,
                        pickle.EMPTY_DICT, _s("_value_"), pickle.BININT1 + b"\x07", pickle.SETITEM, pickle.BUILD)
    for data in (patch_class, patch_member):
        with pytest.raises(amber.FormatError, match="the pickle changes .* amber undid the change"):
            amber.loads(data)
    assert not hasattr(pd.Series.str, "hidden") and uuid.SafeUUID.safe.value == 0


def test_pandas_datetime_helpers_take_datetime_data_only(tmp_path: Path) -> None:
    """pandas' _new_DatetimeIndex wrapped a bare int64 array as datetimes and asked its dtype
    for a unit it lacks: the process crashed while the file was still loading (exit 139)."""
    from pandas.core.indexes.datetimes import _new_DatetimeIndex
    from pandas.core.indexes.timedeltas import _new_TimedeltaIndex

    for func, cls, data, match in (
        (_new_DatetimeIndex, pd.DatetimeIndex, np.zeros(2, "int64"), "dtype int64"),
        (_new_DatetimeIndex, pd.DatetimeIndex, np.zeros(2, "m8[ns]"), "dtype timedelta64"),
        (_new_TimedeltaIndex, pd.TimedeltaIndex, np.zeros(2, "f8"), "dtype float64"),
        (_new_DatetimeIndex, pd.TimedeltaIndex, np.zeros(2, "M8[ns]"), "was asked to build"),
    ):
        data_pkl = pickle.dumps({"ix": _Reduced(func, (cls, {"data": data, "tz": "UTC", "freq": None}))}, protocol=4)
        with pytest.raises(amber.AmberError, match=match):
            amber.loads(data_pkl)
    good = _Reduced(_new_DatetimeIndex, (pd.DatetimeIndex, {"data": np.array([0, 10**9], "M8[ns]"), "tz": "UTC",
                                                            "freq": None}))
    assert list(amber.loads(pickle.dumps(good, protocol=4))) == list(pd.to_datetime([0, 10**9], utc=True))
    for index in (pd.date_range("2024", periods=3, tz="Europe/Paris"), pd.timedelta_range("1s", periods=3)):
        pd.testing.assert_index_equal(amber.loads(pickle.dumps(index, protocol=4)), index)


@pytest.mark.parametrize("how", ["pkl", "amber"])
def test_a_partial_of_a_checked_class_is_refused(how: str, tmp_path: Path) -> None:
    """A FunctionTransformer holding partial(MultiIndex, codes=..., verify_integrity=False):
    nothing checked exists when the file loads; transform then built the bad MultiIndex."""
    import functools

    from sklearn.preprocessing import FunctionTransformer

    bad = FunctionTransformer(func=functools.partial(pd.MultiIndex, codes=[[0, -128], [0, 1]], verify_integrity=False),
                              validate=False)
    p, _ = _saved(bad, how, tmp_path)
    with pytest.raises(amber.CorruptFileError, match=r"it builds pandas.MultiIndex, whose loaded instances amber checks"):
        amber.load(p, trusted=["pandas.MultiIndex"])
    fine = FunctionTransformer(func=functools.partial(np.clip, a_min=0, a_max=1))
    q, _ = _saved(fine, how, tmp_path)
    assert amber.load(q).func.keywords == {"a_min": 0, "a_max": 1}


def test_numpy_ndarray_called_with_a_buffer_is_refused(tmp_path: Path) -> None:
    """Found in review: numpy.ndarray((1,), 'O', b'AAAAAAAA') (trusted, by REDUCE or NEWOBJ)
    made an object array whose pointers were the file's bytes, on every road, the checked
    reading's too: touching it crashed, and forged pointers are a way to run code."""
    for via in ("REDUCE", "NEWOBJ"):
        for dtype in ("O", np.dtype([("a", "O")])):
            args = ((1,), dtype, b"A" * 8)
            if via == "REDUCE":
                data = pickle.dumps({"x": _Reduced(np.ndarray, args)}, protocol=4)
            else:  # NEWOBJ: numpy.ndarray.__new__(numpy.ndarray, *args)
                data = b"\x80\x02cnumpy\nndarray\n" + pickle.dumps(args, protocol=2)[2:-1] + b"\x81."
            for load in (amber.loads, lambda d: amber.loads(d, format="pickle")):
                with pytest.raises(amber.AmberError, match="calls numpy.ndarray with a buffer"):
                    load(data)
            from amber.formats._pickle import pickle_trust
            from amber.security._unpickler import SafePyUnpickler

            with pytest.raises(amber.AmberError, match="calls numpy.ndarray with a buffer"):  # (the checked reading)
                SafePyUnpickler(io.BytesIO(data), pickle_trust(())).load()
    # amber's own format: a reduce node calling numpy.ndarray
    from tests._hostile import parse

    p = parse(amber.dumps({"x": np.zeros(2)}))
    tree = [b"reduce", "numpy.ndarray", [b"tuple", [b"tuple", 1], "O", b"A" * 8]]
    with pytest.raises(amber.AmberError, match="calls numpy.ndarray with a buffer"):
        amber.loads(p.rebuild({**p.manifest, "needs": ["numpy.ndarray"]}, tree=tree))
    # arrays as pickles and amber files make them still load, at every protocol, masked ones too
    arrays = {"o": np.array(["a", None], dtype=object), "f": np.arange(3.0), "m": np.ma.array([1, 2], mask=[0, 1]),
              "cls": np.ndarray}
    for protocol in (0, 2, 4, 5):
        out = amber.loads(pickle.dumps(arrays, protocol=protocol))
        assert out["o"].tolist() == ["a", None] and out["f"].tolist() == [0.0, 1.0, 2.0]
        assert out["m"].mask.tolist() == [False, True] and out["cls"] is np.ndarray


def test_a_compressed_pickle_is_proven_in_memory_only_up_to_a_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found in review: a compressed pickle that makes a dtype was decompressed whole into
    memory to be proven (a 400 KB gzip file of zeros took 842 MB). Past the limit, the
    checked reading streams it."""
    from amber.formats import _pickle

    monkeypatch.setattr(_pickle, "_PROVE_IN_MEMORY", 4096)
    obj = {"o": np.array(["a", None, 3], dtype=object), "pad": b"x" * 20_000}
    p = tmp_path / "big.pkl.gz"
    p.write_bytes(gzip.compress(pickle.dumps(obj, protocol=5)))
    assert _pickle._proven_stream(lambda: open(p, "rb"), "gzip") is None
    out = amber.load(p)
    assert out["o"].tolist() == ["a", None, 3] and out["pad"] == obj["pad"]
    small = tmp_path / "small.pkl.gz"
    small.write_bytes(gzip.compress(pickle.dumps({"o": obj["o"]}, protocol=5)))
    assert _pickle._proven_stream(lambda: open(small, "rb"), "gzip") is not None


def test_the_pickle_read_is_the_file_opened_even_if_its_path_changes(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Found in review: the proof read the file amber opened, and the unpickler opened the
    path again: a file swapped in between was read without its proof (a crash). Both now
    read the file first opened."""
    import amber._api as api

    p, other = tmp_path / "a.pkl", tmp_path / "b.pkl"
    p.write_bytes(pickle.dumps({"which": "first", "o": np.array(["a", None], dtype=object)}, protocol=5))
    other.write_bytes(pickle.dumps({"which": "second"}, protocol=5))
    real = api.open_source

    def swapping(source: Any, *args: Any, **kwargs: Any) -> Any:
        src = real(source, *args, **kwargs)
        os.replace(other, p)  # (the path now names another file)
        return src

    monkeypatch.setattr(api, "open_source", swapping)
    out = amber.load(p)
    assert out["which"] == "first" and out["o"].tolist() == ["a", None]


# --- a second review of the day's fixes -------------------------------------------------------

def test_numpy_ndarray_with_a_buffer_by_obj_and_inst_is_refused() -> None:
    """The checked reading checked REDUCE and NEWOBJ calls of numpy.ndarray, not OBJ and INST
    (found in a second review)."""
    buf = b"C\x08" + b"A" * 8
    args = b"K\x01\x85" + b"\x8c\x01O" + buf
    obj = b"\x80\x04(\x8c\x05numpy\x8c\x07ndarray\x93" + args + b"o."
    inst = b"\x80\x04(" + args + b"inumpy\nndarray\n."
    for data in (obj, inst):
        with pytest.raises(amber.AmberError, match="calls numpy.ndarray with a buffer"):
            amber.loads(data)
        from amber.formats._pickle import pickle_trust
        from amber.security._unpickler import SafePyUnpickler

        with pytest.raises(amber.AmberError, match="calls numpy.ndarray with a buffer"):
            SafePyUnpickler(io.BytesIO(data), pickle_trust(())).load()


def test_a_dtype_an_array_used_cannot_grow_when_a_call_hands_it_back() -> None:
    """numpy.dtype(pandas.Series(a)) gives back the dtype of ``a`` itself: an array of 100,000
    items of a dtype of no size, then given items of 8 bytes, read past its memory (found in a
    second review). A dtype a call hands back is not fresh."""
    def u(t: str) -> bytes:
        b = t.encode()
        return b"\x8c" + bytes([len(b)]) + b

    def sg(m: str, n: str) -> bytes:
        return u(m) + u(n) + b"\x93"

    dtype_v = sg("numpy", "dtype") + u("V") + b"\x89\x88\x87R"
    array = (sg("numpy._core.multiarray", "_reconstruct") + sg("numpy", "ndarray") + b"K\x00\x85C\x01b\x87R"
             + b"(K\x01J" + struct.pack("<i", 100_000) + b"\x85" + dtype_v + b"\x89C\x00tb")
    state = b"(K\x03" + u("|") + b"N" + u("a") + b"\x85}" + u("a") + sg("numpy", "dtype") + u("<i8") + b"\x89\x88\x87R" \
        + b"K\x00\x86sK\x08K\x01K\x10t"
    data = (b"\x80\x04" + array + b"q\x000" + sg("numpy", "dtype") + sg("pandas", "Series") + b"h\x00\x85R\x85R"
            + state + b"b0h\x00.")
    with pytest.raises(amber.AmberError, match=r"makes dtype\('V'\)'s items 8 bytes, more than its 0"):
        amber.loads(data)


def test_numpy_scalars_of_objects_take_a_0d_array_only() -> None:
    """numpy's scalar() with an empty array for a dtype of object fields read an item past it
    (a crash on first use; found in a second review)."""
    from numpy._core.multiarray import scalar

    dt = np.dtype([(f"x{i}", "O") for i in range(8)])
    data = pickle.dumps({"v": _Reduced(scalar, (dt, np.empty((0,), dt)))}, protocol=4)
    with pytest.raises(amber.AmberError, match="numpy's scalar was given ndarray data"):
        amber.loads(data)
    good = np.array([(None, 1.5)], dtype=[("a", "O"), ("b", "f8")])[0]
    back = amber.loads(pickle.dumps({"v": good, "f": np.float32(2.5)}, protocol=4))
    assert back["v"].item() == (None, 1.5) and back["f"] == np.float32(2.5)


def test_a_partial_of_an_unpickling_helper_is_refused() -> None:
    """partial(pandas' _new_Index, MultiIndex, {...codes of -128...}) loaded, and calling it
    built the bad MultiIndex (_new_Index skips its check itself; found in a second review)."""
    import functools

    from pandas.core.indexes.base import _new_Index

    d = {"levels": [pd.Index([1, 2]), pd.Index(["a", "b"])],
         "codes": [np.array([0, -128], dtype=np.int8), np.array([0, 1], dtype=np.int8)]}
    data = pickle.dumps({"make": functools.partial(_new_Index, pd.MultiIndex, d)}, protocol=4)
    with pytest.raises(amber.CorruptFileError, match="calls pandas.core.indexes.base._new_Index, an unpickling helper"):
        amber.loads(data)


def test_the_walk_enters_a_numpy_scalar_s_base() -> None:
    """A structured scalar keeps the array it was taken from as its base, with items beside
    its own (found in a second review): the walk enters it, in both twins."""
    from amber.security import _guards

    bad = pd.MultiIndex.from_arrays([[1], ["a"]])
    arr = np.zeros(2, dtype=[("a", "O")])
    arr[0], arr[1] = (1.0,), (bad,)
    root = {"v": arr[0]}
    del arr
    for walk in (_guards.find_checked, _guards._find_checked_py):
        assert any(o is bad for _, o in walk(root))


def test_a_flag_member_a_load_makes_and_changes_is_not_kept_for_the_process() -> None:
    """Calling a flag enum with a combined value makes and caches a member, which a BUILD
    changed for the whole process (found in a second review): the load's new members are
    dropped from the cache afterwards, so later calls make them again."""
    import enum

    from sklearn.ensemble._hist_gradient_boosting.common import MonotonicConstraint

    assert issubclass(MonotonicConstraint, enum.Enum)
    def u(t: str) -> bytes:
        return b"\x8c" + bytes([len(t)]) + t.encode()

    data = (b"\x80\x04" + u("sklearn.ensemble._hist_gradient_boosting.common") + u("MonotonicConstraint") + b"\x93"
            + b"K\x03\x85R}" + u("hidden") + u("yes") + b"sb0N.")
    amber.loads(data)
    assert not hasattr(MonotonicConstraint(3), "hidden")


def test_pickle_of_the_masked_constant_loads_as_it() -> None:
    import pickle

    assert amber.loads(pickle.dumps([np.ma.masked, 1], protocol=2), format="pickle",
                       trusted=["numpy.ma.core.MaskedConstant"])[0] is np.ma.masked


_MASKED_42 = (1, (), np.dtype("f8"), False, np.array(42.0).tobytes(), np.array(False).tobytes(), 7.0)


def _masked_is_pristine() -> bool:
    m = np.ma.masked
    return (m.shape == () and m.dtype is np.dtype("f8") and m.dtype.metadata is None and float(m.data) == 0.0
            and bool(m.mask) and not m.flags.writeable and not m._mask.flags.writeable)


@pytest.mark.parametrize("how", ["class", "ma.min", "ma.max", "ma.sum", "global", "big", "metadata"])
def test_masked_constant_changed_any_way_is_restored(how: str) -> None:
    """However a pickle reaches numpy.ma.masked (calling its class, a trusted function that
    returns it, such as numpy.ma.min of a fully masked array, or its name), a BUILD on it is
    undone and the file refused, on the C unpickler too, with numpy.ma or numpy trusted
    (found in review: it stayed 42.0, unmasked, or a million items long, or with dtype
    metadata, or writeable)."""
    import pickle

    state = _MASKED_42
    if how == "big":
        state = (1, (10**5,), np.dtype("f8"), False, bytes(8 * 10**5), bytes(10**5), 7.0)
    if how == "metadata":
        state = (1, (), np.dtype("f8", metadata={"evil": 1}), False, bytes(8), b"\x01", None)
    all_masked = np.ma.array([1.0], mask=[True])
    if how == "class":
        data = pickle.dumps(np.ma.masked, protocol=2)[:-1] + pickle.dumps(state, protocol=2)[2:-1] + b"b."
    elif how.startswith("ma."):
        data = pickle.dumps(_Reduced(getattr(np.ma, how[3:]), (all_masked,), state), protocol=2)
    else:
        data = b"\x80\x02cnumpy.ma\nmasked\n" + pickle.dumps(state, protocol=2)[2:-1] + b"b."
    for trusted in (["numpy.ma"], ["numpy"]):
        with pytest.raises(amber.AmberError, match="numpy.ma.masked"):
            amber.loads(data, format="pickle", trusted=trusted)
        assert _masked_is_pristine()


def test_module_tables_changed_by_a_pickle_are_restored() -> None:
    """SETITEM on a module's dict or on a module's object array (numpy.ma's fill values,
    SciPy's Cotes table) is undone and the file refused (found in review: the change lasted
    for the whole process)."""
    import numpy.ma.core as ma_core

    before = dict(ma_core.default_filler)
    data = b"\x80\x02cnumpy.ma.core\ndefault_filler\n(U\x01fG@E\x00\x00\x00\x00\x00\x00u."
    with pytest.raises(amber.FormatError, match="numpy.ma.core.default_filler"):
        amber.loads(data, format="pickle", trusted=["numpy"])
    assert ma_core.default_filler == before
    assert np.ma.array([1.0, 2.0], mask=[1, 0]).filled()[0] == 1e20
    stable = pytest.importorskip("scipy.stats._levy_stable")
    first = stable.Cotes_table[0]
    with pytest.raises(amber.FormatError, match="Cotes_table"):
        amber.loads(b"\x80\x02cscipy.stats._levy_stable\nCotes_table\nK\x00U\x04evils.", format="pickle",
                    trusted=["scipy"])
    assert stable.Cotes_table[0] is first
