"""The static scanner (amber.security._scan): hostile files flagged, benign files safe.

Hostile streams come from tests._payloads (each would create a marker file if it ran);
they are only ever scanned, never loaded, and every test checks the marker stays absent.
Benign files are made with pickle, joblib, torch.save and numpy themselves.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import os
import pickle
import random
import re
import tarfile
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from amber.security import _walk
from amber.security._archives import joblib_layout
from amber.security._scan import FileReport, ScanReport, scan, scan_file
from _payloads import TECHNIQUES, Reduce, _str4, containers, hostile_pickle, mutate

joblib = pytest.importorskip("joblib")


@pytest.fixture
def marker(tmp_path: Path) -> Any:
    path = tmp_path / "marker"
    yield path
    assert not path.exists(), "a hostile payload ran"


def _flagged(r: FileReport) -> bool:
    return r.verdict in ("dangerous", "unknown")


def _explain(r: FileReport) -> str:
    return f"{r.path}: {r.verdict} {r.format} " + "; ".join(f"{f.severity} {f.rule} {f.name} {f.member}: {f.reason}" for f in r.findings)


def _safe(r: FileReport) -> None:
    assert r.verdict == "safe", _explain(r)


# ------------------------------------------------------------------- hostile corpus
@pytest.mark.parametrize("technique", sorted(TECHNIQUES))
def test_every_technique_in_every_container_is_flagged(technique: str, marker: Path) -> None:
    streams = {f"raw-protocol-{p}": hostile_pickle(technique, marker, p) for p in (0, 2, 4, 5)}
    streams.update(containers(hostile_pickle(technique, marker)))
    for kind, data in streams.items():
        r = scan_file(data, name=f"{technique} in {kind}")
        assert r.verdict == "dangerous", _explain(r)
    # and through a file on disk
    path = marker.parent / "model.bin"
    path.write_bytes(containers(hostile_pickle(technique, marker))["torch-zip"])
    assert _flagged(scan_file(path))


def test_findings_name_the_global_the_offset_and_the_member(marker: Path) -> None:
    stream = hostile_pickle("reduce-os.system", marker, 4)
    r = scan_file(containers(stream)["torch-zip"])
    (f,) = [f for f in r.findings if f.rule == "denied-call"]
    assert f.severity == "dangerous" and f.name in ("os.system", "posix.system")
    assert f.member == "archive/data.pkl"
    assert stream[f.offset] == ord("R")  # the REDUCE
    assert r.globals[f.name] == "denied"
    gz = scan_file(containers(stream)["gzip"])
    assert [f.member for f in gz.findings if f.rule == "denied-call"] == ["|gzip"]
    assert gz.format == "pickle+gzip"


@pytest.mark.parametrize("compress", [0, 3, "zlib", "gzip", "bz2", "lzma", "xz", "lz4"])
def test_joblib_files_with_a_payload_are_flagged(compress: Any, marker: Path) -> None:
    payload = Reduce(os.system, f"touch {marker}")
    obj = {"w": np.arange(10.0), "x": payload, "objects": np.array([payload, 1], dtype=object)}
    buf = io.BytesIO()
    joblib.dump(obj, buf, compress=compress)
    r = scan_file(buf.getvalue())
    assert r.verdict == "dangerous", _explain(r)
    assert r.format.startswith("joblib")
    # the payload only inside the object array's nested pickle
    buf = io.BytesIO()
    joblib.dump([np.arange(3), np.array([payload], dtype=object)], buf, compress=compress)
    assert scan_file(buf.getvalue()).verdict == "dangerous"


def test_truncated_and_broken_streams_that_run_before_the_break(marker: Path) -> None:
    stream = hostile_pickle("reduce-os.system", marker, 4)
    for data in (
        stream[:-1] + b"\xff\xff",  # os.system is called, then garbage
        b"cos\nsystem\n(S'x'\ntR\xff",
        stream[: len(stream) // 2],  # imported, not yet called
        stream[:-1],  # no STOP
    ):
        r = scan_file(data)
        assert r.verdict == "dangerous", _explain(r)
        assert any(f.rule == "malformed-stream" for f in r.findings)
    # broken streams that import nothing are never "safe" when they start as a pickle
    r = scan_file(b"\x80\x04\x95\xff\xff\xff")
    assert r.verdict == "unknown"


def test_obfuscations_and_odd_opcodes() -> None:
    hidden = b"\x80\x04" + _str4("builtins") + _str4("str") + b"\x93)R" + _str4("system") + b"\x93."
    assert scan_file(hidden).verdict == "dangerous"  # STACK_GLOBAL of a module not known statically
    assert [f.rule for f in scan_file(b"\x80\x02\x82\x05)R.").findings] == ["ext-code"]
    assert [f.rule for f in scan_file(b"\x80\x02X\x01\x00\x00\x00aQ.").findings] == ["persistent-id"]
    r = scan_file(pickle.dumps(1) + b"\xff\xfe trailing")
    assert r.verdict == "unknown" and [f.rule for f in r.findings] == ["data-after-stop"]
    # a second pickle after the first: walked too
    assert scan_file(pickle.dumps(1) + hostile_pickle("reduce-eval", Path("/nonexistent"))).verdict == "dangerous"


def test_getattr_is_trusted_only_on_trusted_class_attributes() -> None:
    import functools

    def via_getattr(owner: tuple[str, str], attr: str, call_owner: bool = False) -> bytes:
        get = _str4("builtins") + _str4("getattr") + b"\x93"
        own = _str4(owner[0]) + _str4(owner[1]) + b"\x93" + (b")R" if call_owner else b"")
        return b"\x80\x04" + get + own + _str4(attr) + b"\x86R."

    assert scan_file(via_getattr(("zoneinfo", "ZoneInfo"), "_unpickle")).verdict == "safe"
    r = scan_file(via_getattr(("collections", "OrderedDict"), "update", call_owner=True))
    assert r.verdict == "dangerous"  # an attribute of an instance
    assert scan_file(via_getattr(("numpy", "ndarray"), "tofile")).verdict == "dangerous"
    assert scan_file(via_getattr(("numpy", "ndarray"), "__class__")).verdict == "dangerous"
    assert scan_file(via_getattr(("pandas", "DataFrame"), "eval")).verdict == "dangerous"  # a trusted class's method
    r = scan_file(via_getattr(("mypkg", "Model"), "from_config"))  # an untrusted class's: unknown
    assert r.verdict == "unknown" and r.globals["mypkg.Model.from_config"] == "untrusted"
    assert r.globals["builtins.getattr"] == "untrusted"
    # getattr handed to something that calls it later
    r = scan_file(pickle.dumps(Reduce(functools.partial, getattr, np.ndarray, "tofile")))
    assert r.verdict == "dangerous" and any(f.rule == "getattr" for f in r.findings)


def test_nested_pickles_are_scanned(marker: Path) -> None:
    inner = hostile_pickle("reduce-os.system", marker, 4)
    for proto in (0, 2, 4, 5):
        r = scan_file(pickle.dumps({"blob": inner, "ok": b"\x00" * 10}, protocol=proto))
        assert r.verdict == "dangerous", (proto, _explain(r))
        (f,) = [f for f in r.findings if f.rule == "denied-call"]
        assert "@" in f.member
    # compressed and zipped payloads too
    assert scan_file(pickle.dumps([gzip.compress(inner)])).verdict == "dangerous"
    assert scan_file(pickle.dumps([containers(inner)["torch-zip"]])).verdict == "dangerous"
    # pickle.loads of a payload: dangerous, and the payload itself is named
    r = scan_file(hostile_pickle("nested-pickle.loads", marker, 4))
    assert {f.member for f in r.findings if f.rule == "denied-call"} >= {"", f"@{_payload_start(r)}"}


def _payload_start(r: FileReport) -> int:
    return int(next(f.member for f in r.findings if f.member.startswith("@"))[1:])


def test_torch_load_from_bytes_needs_a_literal_scanned_payload(marker: Path) -> None:
    torch = pytest.importorskip("torch")
    import torch.storage as ts

    legacy = io.BytesIO()
    torch.save(torch.ones(3), legacy, _use_new_zipfile_serialization=False)
    _safe(scan_file(pickle.dumps(Reduce(ts._load_from_bytes, legacy.getvalue()))))
    hostile = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + hostile_pickle("reduce-os.system", marker, 2)
    assert scan_file(pickle.dumps(Reduce(ts._load_from_bytes, hostile))).verdict == "dangerous"
    built = (
        b"\x80\x04" + _str4("torch.storage") + _str4("_load_from_bytes") + b"\x93"
        + _str4("builtins") + _str4("bytes") + b"\x93K\x05\x85R\x85R."
    )
    r = scan_file(built)  # bytes made at load time: nothing to scan
    assert r.verdict == "dangerous" and [f.rule for f in r.findings] == ["load-from-bytes"]


# ------------------------------------------------------------------------ zip tricks
def _zip(members: list[tuple[str, bytes]], prefix: bytes = b"", method: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    buf.write(prefix)
    with zipfile.ZipFile(buf, "a" if prefix else "w", method) as zf:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # duplicate names
            for name, data in members:
                zf.writestr(name, data)
    return buf.getvalue()


@pytest.fixture(scope="module")
def torch_members() -> list[tuple[str, bytes]]:
    torch = pytest.importorskip("torch")
    buf = io.BytesIO()
    torch.save({"w": torch.ones(4), "b": torch.zeros(2, dtype=torch.int8)}, buf)
    with zipfile.ZipFile(buf) as zf:
        return [(n, zf.read(n)) for n in zf.namelist()]


def test_zip_tricks(torch_members: list[tuple[str, bytes]], marker: Path) -> None:
    evil = hostile_pickle("reduce-os.system", marker, 2)
    _safe(scan_file(_zip(torch_members)))

    def rules(data: bytes) -> tuple[str, set[str]]:
        r = scan_file(data)
        return r.verdict, {f.rule for f in r.findings}

    v, found = rules(_zip(torch_members + [(torch_members[0][0], evil)]))
    assert v == "dangerous" and "zip-duplicate-name" in found and "denied-call" in found
    v, found = rules(_zip(torch_members + [("archive/notes.txt", evil)]))  # a pickle renamed
    assert v == "dangerous"
    v, found = rules(_zip(torch_members + [("archive/data/99", evil)]))  # a pickle in a storage member
    assert v == "dangerous" and "nested-pickle" in found
    v, found = rules(_zip(torch_members, prefix=evil))  # pickle.load reads the start, zip readers the end
    assert v == "dangerous" and "zip-polyglot" in found
    v, found = rules(_zip(torch_members, prefix=b"\x00" * 100))
    assert v == "unknown" and "zip-polyglot" in found
    v, found = rules(_zip([("x/data.pkl", evil), ("x/data/0", b"\0" * 8)], method=zipfile.ZIP_DEFLATED))
    assert v == "dangerous"
    # the local header names another file than the central directory
    data = bytearray(_zip([("archive/data.pkl", evil)]))
    i = data.find(b"archive/data.pkl")
    data[i : i + 7] = b"ARCHIVE"
    v, found = rules(bytes(data))
    assert v == "dangerous" and "zip-header-mismatch" in found
    # an "encrypted" flag that torch ignores
    data = bytearray(_zip([("archive/data.pkl", evil)]))
    data[data.find(b"PK\x03\x04") + 6] |= 1
    data[data.find(b"PK\x01\x02") + 8] |= 1
    v, found = rules(bytes(data))
    assert v == "dangerous" and "zip-flags" in found
    # a broken central directory: the local headers are scanned
    data = _zip([("archive/data.pkl", evil)])
    v, found = rules(data[: data.find(b"PK\x01\x02")] + b"\x00" * 30)
    assert v == "dangerous" and "zip-bad-directory" in found
    # data hidden between members
    good = _zip([("a.txt", b"hello"), ("b.txt", b"world")])
    j = good.find(b"PK\x03\x04", 4)
    gap = good[:j] + evil + good[j:]
    assert scan_file(gap).verdict != "safe"
    # TorchScript archives
    v, found = rules(_zip(torch_members + [("archive/constants.pkl", pickle.dumps(1)), ("archive/code/x.py", b"")]))
    assert "torchscript" in found and v == "unknown"


def test_legacy_torch_and_tar(marker: Path) -> None:
    torch = pytest.importorskip("torch")
    buf = io.BytesIO()
    torch.save({"w": torch.ones(3), "n": torch.nn.Linear(2, 2)}, buf, _use_new_zipfile_serialization=False)
    r = scan_file(buf.getvalue())
    _safe(r)
    assert r.format == "torch-legacy"
    evil = hostile_pickle("reduce-os.system", marker, 2)
    tb = io.BytesIO()
    with tarfile.open(fileobj=tb, mode="w") as tf:
        for name, data in (("pickle", evil), ("storages", pickle.dumps(0, protocol=2)), ("tensors", pickle.dumps(0, protocol=2))):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    r = scan_file(tb.getvalue())
    assert r.format == "torch-tar" and r.verdict == "dangerous"


def test_storages_are_never_read(tmp_path: Path) -> None:
    """A torch.save checkpoint: only the zip directory, local headers and pickle members are read."""
    torch = pytest.importorskip("torch")
    path = tmp_path / "ckpt.pt"
    torch.save({f"layer{i}": torch.randn(256, 256) for i in range(16)}, path)  # 4 MiB of storages
    size = path.stat().st_size

    class Counting(io.RawIOBase):
        def __init__(self, fh: Any) -> None:
            self.fh, self.read_bytes = fh, 0

        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return True

        def seek(self, *a: Any) -> int:
            return self.fh.seek(*a)

        def tell(self) -> int:
            return self.fh.tell()

        def readinto(self, b: Any) -> int:
            n = self.fh.readinto(b)
            self.read_bytes += n
            return n

    with open(path, "rb") as fh:
        counting = Counting(fh)
        r = scan_file(counting)
    _safe(r)
    with zipfile.ZipFile(path) as zf:
        pkl = zf.getinfo("ckpt/data.pkl").file_size
    assert counting.read_bytes < pkl + 100_000 < size // 10
    assert r.scanned_bytes == counting.read_bytes
    assert scan_file(path).scanned_bytes < size // 10


# --------------------------------------------------------------------- benign corpus
@pytest.fixture(scope="module")
def sklearn_models() -> dict[str, Any]:
    pytest.importorskip("sklearn")
    import pandas as pd
    from sklearn.cluster import KMeans
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import make_classification
    from sklearn.decomposition import PCA
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        IsolationForest,
        RandomForestClassifier,
        StackingClassifier,
    )
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    X, y = make_classification(n_samples=60, n_features=5, random_state=0)
    df = pd.DataFrame(X, columns=list("abcde"))
    df["cat"] = ["u", "v", "w"] * 20
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "LogisticRegression": LogisticRegression().fit(X, y),
            "RandomForest": RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y),
            "GradientBoosting": GradientBoostingClassifier(n_estimators=3).fit(X, y),
            "HistGradientBoosting": HistGradientBoostingClassifier(max_iter=3, categorical_features=[0]).fit(
                np.c_[np.arange(60) % 3, X], y
            ),
            "SVC": SVC(probability=True).fit(X, y),
            "KNeighbors": KNeighborsClassifier().fit(X, y),
            "KMeans": KMeans(2, n_init=1).fit(X),
            "PCA": PCA(2).fit(X),
            "Tfidf": TfidfVectorizer().fit(["a b c", "b c d", "PKzip BZh x^2 \x80\x02"]),
            "Pipeline+ColumnTransformer": Pipeline(
                [
                    ("ct", ColumnTransformer([("n", StandardScaler(), list("abcde")), ("c", OneHotEncoder(), ["cat"])])),
                    ("lr", LogisticRegression()),
                ]
            ).fit(df, y),
            "StandardScaler": StandardScaler().fit(X),
            "MLP": MLPClassifier(max_iter=20).fit(X, y),
            "DecisionTree": DecisionTreeClassifier().fit(X, y),
            "Ridge": Ridge().fit(X, y),
            "IsolationForest": IsolationForest(n_estimators=3).fit(X),
            "Stacking": StackingClassifier([("a", LogisticRegression()), ("b", DecisionTreeClassifier())]).fit(X, y),
        }


def _frames() -> dict[str, Any]:
    import pandas as pd

    out = {
        "time zones": pd.DataFrame(
            {"t": pd.date_range("2020", periods=3, tz="Europe/Paris"), "u": pd.date_range("2020", periods=3, tz="UTC")}
        ),
        "categoricals": pd.DataFrame({"c": pd.Categorical(["a", "b", "a"])}),
        "nullable": pd.DataFrame(
            {
                "i": pd.array([1, None, 3], dtype="Int64"),
                "b": pd.array([True, None, False], dtype="boolean"),
                "s": pd.array(["x", None, "z"], dtype="string"),
            }
        ),
        "periods, intervals, timedeltas": pd.DataFrame(
            {"p": pd.period_range("2020", periods=3, freq="M"), "td": pd.to_timedelta([1, 2, 3], unit="s"),
             "iv": pd.interval_range(0, 3)}
        ),
        "multiindex series": pd.Series([1.0, 2.0], index=pd.MultiIndex.from_tuples([(1, "a"), (2, "b")])),
    }
    try:
        import pyarrow  # noqa: F401

        out["arrow"] = pd.DataFrame(
            {"a": pd.array([1, 2, None], dtype="int64[pyarrow]"), "s": pd.array(["a", None, "c"], dtype="string[pyarrow]")}
        )
    except ImportError:
        pass
    return out


_ARRAYS = {
    "float": np.arange(10.0),
    "structured": np.zeros(3, dtype=[("x", "<i2"), ("y", "S3"), ("z", ">f8", (2,))]),
    "aligned struct": np.zeros(2, dtype=np.dtype([("a", "i1"), ("b", "<f8")], align=True)),
    "big-endian": np.arange(5, dtype=">i4"),
    "object": np.array([1, "x", None], dtype=object),
    "fortran": np.asfortranarray(np.ones((3, 4))),
    "datetime": np.array(["2020-01-01"], dtype="M8[ns]"),
    "unicode": np.array(["ab", "c"]),
    "complex": np.ones(2, dtype=complex),
    "bool": np.ones(3, bool),
    "empty": np.zeros((0, 3)),
    "scalar": np.float32(1.5),
    "int8 starting like a pickle": np.array([-128, 2, 99, 10, 10], dtype=np.int8),
    "uint8 starting like gzip": np.array([0x1F, 0x8B, 8, 0, 0], dtype=np.uint8),
}
_PLAIN = {"a": [1, 2.5, "x", b"\x80\x02 bytes", b"PK\x03\x04 zip-like", None, True], "s": {1, 2}, "f": frozenset([3]),
          "t": (1,), "c": 1j, "big": 10**30, "nested": {"k": [[1], {"z": ()}]}}


def test_benign_sklearn_models_are_safe(sklearn_models: dict[str, Any]) -> None:
    assert len(sklearn_models) >= 15
    for label, model in sklearn_models.items():
        for proto in range(pickle.HIGHEST_PROTOCOL + 1):
            _safe(scan_file(pickle.dumps(model, protocol=proto), name=f"{label} pickle {proto}"))
        buf = io.BytesIO()
        joblib.dump(model, buf)
        _safe(scan_file(buf.getvalue(), name=f"{label} joblib"))


def test_benign_frames_arrays_and_data_are_safe() -> None:
    objs = {**_frames(), **{f"array {k}": v for k, v in _ARRAYS.items()}, "plain": _PLAIN, "rng": np.random.default_rng(0)}
    for label, obj in objs.items():
        for proto in range(pickle.HIGHEST_PROTOCOL + 1):
            _safe(scan_file(pickle.dumps(obj, protocol=proto), name=f"{label} pickle {proto}"))


@pytest.mark.parametrize("compress", [0, 3, "gzip", "bz2", "lzma", "xz", "lz4"])
def test_benign_joblib_files_are_safe(compress: Any, sklearn_models: dict[str, Any]) -> None:
    objs = {**{f"array {k}": v for k, v in _ARRAYS.items()}, "forest": sklearn_models["RandomForest"], **_frames()}
    for label, obj in objs.items():
        buf = io.BytesIO()
        joblib.dump(obj, buf, compress=compress)
        r = scan_file(buf.getvalue(), name=f"{label} joblib {compress}")
        _safe(r)
        assert r.format.startswith(("joblib", "pickle"))


def test_joblib_protocols_and_array_layout() -> None:
    arrays = [v for v in _ARRAYS.values() if isinstance(v, np.ndarray)]
    for proto in range(pickle.HIGHEST_PROTOCOL + 1):
        buf = io.BytesIO()
        joblib.dump(arrays, buf, protocol=proto)
        data = buf.getvalue()
        layout = joblib_layout(data)
        assert layout.refused is None and layout.error is None, (proto, layout)
        assert layout.arrays == len(arrays)
        walks = _walk.walk_all(data, jumps=layout.jumps)
        assert len(walks) == 1 and walks[0].ok and walks[0].end == len(data)
        _safe(scan_file(data, name=f"joblib protocol {proto}"))


def test_joblib_layouts_the_scanner_cannot_follow_are_unknown() -> None:
    buf = io.BytesIO()
    joblib.dump([np.arange(3), np.arange(4)], buf)
    data = bytearray(buf.getvalue())
    i = data.find(b"K\x03\x85")  # shape (3,) -> (2,): joblib reads 8 bytes less, then opcodes
    data[i + 1] = 2
    assert scan_file(bytes(data)).verdict == "unknown"
    # the shape as a string: joblib converts it, the scanner does not follow
    data = bytearray(buf.getvalue())
    data[i : i + 2] = b"\x8c\x013"
    assert scan_file(bytes(data)).verdict != "safe"
    # the wrapper class called with REDUCE (joblib would run its __init__)
    wrapper = _str4("joblib.numpy_pickle") + _str4("NumpyArrayWrapper") + b"\x93"
    r = scan_file(b"\x80\x04" + wrapper + b")R}b.")
    assert r.verdict == "unknown" and any(f.rule == "joblib-layout" for f in r.findings)


def test_benign_torch_files_are_safe() -> None:
    torch = pytest.importorskip("torch")
    objs = {
        "state dict": torch.nn.Linear(3, 2).state_dict(),
        "full model": torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU(), torch.nn.BatchNorm1d(2)),
        "half": torch.ones(3, dtype=torch.float16),
        "int8": torch.tensor([-128, 2, 3], dtype=torch.int8),
    }
    for label, obj in objs.items():
        for legacy in (False, True):
            buf = io.BytesIO()
            torch.save(obj, buf, _use_new_zipfile_serialization=not legacy)
            r = scan_file(buf.getvalue(), name=label)
            _safe(r)
            assert r.format == ("torch-legacy" if legacy else "torch-zip")
        for proto in range(pickle.HIGHEST_PROTOCOL + 1):  # plain pickles: storages are nested torch.save bytes
            _safe(scan_file(pickle.dumps(obj, protocol=proto), name=f"{label} pickle {proto}"))


def test_numpy_files() -> None:
    buf = io.BytesIO()
    np.save(buf, _ARRAYS["object"], allow_pickle=True)
    r = scan_file(buf.getvalue())
    _safe(r)
    assert r.format == "npy"
    for save in (np.savez, np.savez_compressed):
        buf = io.BytesIO()
        save(buf, a=_ARRAYS["float"], o=_ARRAYS["object"])
        r = scan_file(buf.getvalue())
        _safe(r)
        assert r.format == "npz"
    r = scan_file(containers(hostile_pickle("reduce-eval", Path("/nonexistent")))["npz"])
    assert r.verdict == "dangerous" and any(f.member.startswith("a.npy") for f in r.findings)


def test_files_without_pickles_are_safe() -> None:
    for data in (b"", b"Hello world\n", b"Licensed under the Apache License\n", b"Name,Age\nBob,3\n",
                 b"x hello", b"\x89PNG\r\n\x1a\n" + bytes(100), gzip.compress(b"just text"), bz2.compress(b"text")):
        r = scan_file(data)
        _safe(r)
    # text that happens to be a valid pickle importing something is not safe
    assert scan_file(b"cfoo\nbar\n.").verdict == "unknown"
    # something that claims to be compressed but is not: could not be read
    assert scan_file(b"\x1f\x8b" + bytes(30)).verdict == "error"


def test_amber_files() -> None:
    import amber
    from _objects_mod import Point

    r = scan_file(amber.dumps({"a": np.arange(3), "b": [1, "x"]}))
    _safe(r)
    assert r.format == "amber"
    data = amber.dumps(Point(1, 2.0))
    r = scan_file(data)
    assert r.verdict == "unknown" and [f.rule for f in r.findings] == ["untrusted-type"], _explain(r)
    assert r.findings[0].name == f"{Point.__module__}.Point"
    _safe(scan_file(data, trusted=[f"{Point.__module__}.Point"]))
    assert scan_file(data[:-10]).verdict == "error"  # truncated: amber.load refuses it
    pytest.importorskip("cloudpickle")
    r = scan_file(amber.dumps({"f": lambda x: x + 1, "a": 1}, allow_pickle=True))
    assert r.verdict == "dangerous" and any(f.rule == "pickle-island" for f in r.findings)
    # the island's cloudpickle bytes are scanned too
    assert any(f.member.startswith("#blob") for f in r.findings)


# --------------------------------------------------------------------------- fuzzing
def test_fuzzed_streams_never_raise_or_hang() -> None:
    rng = random.Random(20250101)
    seeds = [pickle.dumps(o, protocol=p) for o in (_PLAIN, _ARRAYS["structured"], list(range(30))) for p in range(6)]
    seeds += [fn(Path("/nonexistent/marker"), 4) for fn in TECHNIQUES.values()]
    seeds += list(containers(seeds[0]).values())
    buf = io.BytesIO()
    joblib.dump([np.arange(5), np.array([1, "x"], dtype=object)], buf)
    seeds.append(buf.getvalue())
    t0 = time.perf_counter()
    slowest = 0.0
    for _ in range(10_000):
        s = rng.choice(seeds)
        s = rng.randbytes(rng.randint(0, 300)) if rng.random() < 0.1 else mutate(rng, s)
        t = time.perf_counter()
        r = scan_file(bytes(s))
        slowest = max(slowest, time.perf_counter() - t)
        assert not any(f.reason.startswith("the scan failed") for f in r.findings), (bytes(s), r.findings)
        if bytes(s[:2]) in (b"\x80\x04", b"\x80\x05") and r.verdict == "safe":
            assert r.format in ("pickle", "joblib", "other", "empty")
    assert time.perf_counter() - t0 < 60
    assert slowest < 5


# ------------------------------------------------------------------------ the API
def test_scan_paths_directories_and_exit_codes(tmp_path: Path, marker: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "weights.safetensors.txt").write_bytes(hostile_pickle("reduce-exec", marker, 4))
    (tmp_path / "ok.pkl").write_bytes(pickle.dumps([1, 2]))
    (tmp_path / "README.md").write_text("# model\n")
    r = scan(tmp_path)
    assert [f.verdict for f in r.files] == ["error"] and r.exit_code == 2
    r = scan(tmp_path, recursive=True)
    verdicts = {os.path.basename(f.path): f.verdict for f in r.files}
    assert verdicts == {"ok.pkl": "safe", "README.md": "safe", "weights.safetensors.txt": "dangerous"}
    assert r.verdict == "dangerous" and r.exit_code == 1
    assert scan([tmp_path / "ok.pkl", str(tmp_path / "README.md")]).exit_code == 0
    missing = scan(tmp_path / "missing.pkl")
    assert missing.verdict == "error" and missing.exit_code == 2 and missing.files[0].findings[0].rule == "unreadable"
    assert scan([]).exit_code == 0
    with pytest.raises(TypeError):
        scan(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        scan_file(3.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        scan_file(b"", trusted=[1])  # type: ignore[list-item]
    # a file object, and trusted= widening the list
    with open(tmp_path / "ok.pkl", "rb") as fh:
        assert scan_file(fh).verdict == "safe"
    data = pickle.dumps(Path)  # pathlib.Path is trusted; a module-level class of the tests is not
    _safe(scan_file(data))
    from _objects_mod import Point

    untrusted = pickle.dumps(Point)
    name = f"{Point.__module__}.Point"
    assert scan_file(untrusted).verdict == "unknown"
    _safe(scan_file(untrusted, trusted=[name]))
    assert scan_file(untrusted).globals == {name: "untrusted"}


def test_recursive_scans_list_files_as_os_walk_does(tmp_path: Path, marker: Path) -> None:
    """scan(recursive=True) lists directories itself (no stat of a regular file before it
    is opened): the same files in the same order as os.walk with sorted names, links to
    files followed, links to directories not walked into, broken links reported, FIFOs
    and sockets skipped."""
    import socket
    import stat as stat_

    top = tmp_path / "top"
    for d in ("b", "a/z", "a/y", "c"):
        (top / d).mkdir(parents=True)
    for f in ("b/2.pkl", "b/1.pkl", "a/z/x.pkl", "a/y/w.txt", "a/ok.pkl", "0.pkl", "c/.hidden"):
        (top / f).write_bytes(pickle.dumps([f]))
    (top / "a" / "bad.pkl").write_bytes(hostile_pickle("reduce-exec", marker, 4))
    (top / "link.pkl").symlink_to(top / "b" / "1.pkl")
    (top / "dirlink").symlink_to(top / "a")
    (top / "broken.pkl").symlink_to(top / "missing")
    os.mkfifo(top / "c" / "fifo")
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(top / "c" / "sock"))
    except OSError:
        pass

    def reference(path: str) -> list[str]:
        out = []
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for f in sorted(files):
                fp = os.path.join(root, f)
                try:
                    st = os.stat(fp)
                except OSError:
                    out.append(fp + " (error)")
                    continue
                if stat_.S_ISREG(st.st_mode):
                    out.append(fp)
        return out

    try:
        r = scan(top, recursive=True)
    finally:
        sock.close()
    got = [f.path + (" (error)" if f.verdict == "error" else "") for f in r.files]
    assert got == reference(str(top))
    assert {os.path.basename(f.path): f.verdict for f in r.files if f.verdict != "safe"} == {
        "bad.pkl": "dangerous", "broken.pkl": "error"}
    # a file its directory listed as regular and that is no longer one when opened: the
    # open does not wait on a FIFO, and the report says what it is
    from amber.security import _scan as S

    cache = S._status_cache(())
    fifo = S._scan_one(str(top / "c" / "fifo"), (), None, cache, S._REGULAR)
    assert (fifo.verdict, fifo.findings[0].reason) == ("error", "not a regular file")
    assert S._scan_one(str(top / "a"), (), None, cache, S._REGULAR).format == "directory"
    assert S._scan_one(str(top / "0.pkl"), (), None, cache, S._REGULAR).verdict == "safe"
    assert not marker.exists()


def test_heads_whose_first_byte_starts_no_magic_skip_the_magic_checks() -> None:
    """_scan_src skips its magic-number checks for a head whose first byte starts none of
    them (_FIRST_BYTES): no head starting with another byte is any of those formats."""
    from amber.container._streams import sniff_compression
    from amber.security import _scan as S

    rng = random.Random(4)
    magics = [S._amber_magic(), b"\x93NUMPY", b"PK\x03\x04", b"PK\x05\x06", b"ZF0x", b"7z\xbc\xaf\x27\x1c",
              b"Rar!\x1a\x07", b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd", b"\x04\x22\x4d\x18",
              b"\x5d\x00\x00", b"\x78\x9c"]
    assert {m[0] for m in magics} <= S._FIRST_BYTES
    for b0 in range(256):
        for _ in range(200):
            head = bytes([b0]) + bytes(rng.randrange(256) for _ in range(rng.randrange(0, 24)))
            if b0 not in S._FIRST_BYTES:
                assert sniff_compression(head) is None
                assert not any(head.startswith(m) for m in magics)
            elif sniff_compression(head) is not None:
                assert b0 in S._FIRST_BYTES


def test_the_tar_header_precheck_agrees_with_tarfile() -> None:
    """_is_tar_header rejects a header whose checksum field tarfile.nti cannot read
    without parsing it: the same answers as tarfile's own checks, on real headers whose
    checksum field is rewritten in every way int(s, 8) reads, and on random bytes."""
    from amber.security._scan import _is_tar_header

    def reference(head: bytes) -> bool:
        if len(head) < 512 or not any(head[:512]):
            return False
        try:
            if tarfile.nti(head[148:156]) not in tarfile.calc_chksums(head[:512]):  # type: ignore[attr-defined]
                return False
            tarfile.TarInfo.frombuf(head[:512], "utf-8", "surrogateescape")
        except Exception:
            return False
        return True

    rng = random.Random(2)
    alphabet = b"01234567 \t\n\r\x0b\x0c\x1c\x1f_+-oO\x00\x80\xffx9a"
    headers = 0
    for fmt in (tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
            info = tarfile.TarInfo("name")
            tf.addfile(info)
        h = buf.getvalue()[:512]
        chk = sum(h[:148]) + 256 + sum(h[156:512])
        forms = [b"%06o\x00 " % chk, b" %06o\x00" % chk, b"0o%05o\x00" % chk, b"+%06o\x00" % chk,
                 b"%03o_%03o" % (chk >> 9, chk & 511), b"\x0b%06o\x1f" % chk, b"%o" % chk]
        for _ in range(4000):
            field = bytes(rng.choice(alphabet) for _ in range(8)) if rng.random() < 0.6 else rng.choice(forms)
            head = h[:148] + field[:8].ljust(8, b"\x00") + h[156:]
            want = reference(head)
            assert _is_tar_header(head) == want, field
            headers += want
    assert headers > 1000
    for _ in range(3000):
        head = bytes(rng.randrange(256) for _ in range(rng.choice([511, 512, 700])))
        assert _is_tar_header(head) == reference(head)


def test_reports_render(marker: Path) -> None:
    files = [
        scan_file(containers(hostile_pickle("reduce-os.system", marker, 4))["torch-zip"], name="evil.pt"),
        scan_file(pickle.dumps(1), name="ok.pkl"),
        scan_file(pickle.dumps(Path) + b"\x00junk", name="odd.pkl"),
    ]
    report = ScanReport(files)
    assert report.verdict == "dangerous" and report.exit_code == 1
    d = json.loads(report.to_json())
    assert d["verdict"] == "dangerous" and d["files"][0]["findings"][0]["severity"] == "dangerous"
    sarif = report.to_sarif()
    json.dumps(sarif)
    assert sarif["version"] == "2.1.0" and "$schema" in sarif
    (run,) = sarif["runs"]
    assert run["tool"]["driver"]["name"] == "amber scan"
    rule_ids = {r["id"] for r in run["tool"]["driver"]["rules"]}
    assert {r["ruleId"] for r in run["results"]} <= rule_ids
    levels = {r["ruleId"]: r["level"] for r in run["results"]}
    assert levels["denied-call"] == "error" and levels["data-after-stop"] == "warning"
    (loc,) = next(r for r in run["results"] if r["ruleId"] == "denied-call")["locations"]
    assert loc["physicalLocation"]["artifactLocation"]["uri"] == "evil.pt"
    assert loc["logicalLocations"][0]["fullyQualifiedName"] == "archive/data.pkl"
    text = str(report)
    assert "evil.pt" in text and "dangerous" in text and "denied-call" in text and "3 files" in text
    table = text.splitlines()[:4]
    assert table[0].split() == ["VERDICT", "FORMAT", "FINDINGS", "PATH"]
    assert any(line.split()[0] == "safe" and line.endswith("ok.pkl") for line in table)
    assert str(ScanReport()) == "no files scanned"


def test_walker_scanner_options() -> None:
    inner = pickle.dumps([1])
    data = pickle.dumps({"x": inner, "y": b"plain bytes"}, protocol=4)
    w = _walk.walk(data, payloads=True)
    assert [(data[a : a + ln]) for _, a, ln in w.payloads] == [inner]
    assert _walk.walk(data).payloads == []  # off by default
    get = b"\x80\x04" + _str4("builtins") + _str4("getattr") + b"\x93"
    w = _walk.walk(get + b"\x85.", watch={"builtins.getattr"})
    assert [n for n, _ in w.escapes] == ["builtins.getattr"]
    lfb = b"\x80\x04" + _str4("torch.storage") + _str4("_load_from_bytes") + b"\x93C\x04abcd\x85R."
    (call,) = _walk.walk(lfb, payloads=True).calls
    assert call.arg == lfb.index(b"C\x04abcd")


def test_big_decompressed_streams_spill_to_a_temporary_file(tmp_path: Path, monkeypatch: Any) -> None:
    """Past SPILL_AT, decompressed bytes go to a mapped temporary file: same findings."""
    from amber.security import _scan

    monkeypatch.setattr(_scan, "SPILL_AT", 1000)
    marker = tmp_path / "marker"
    hostile = pickle.dumps({"pad": b"x" * 5000, "x": Reduce(os.system, f"touch {marker}")}, protocol=4)
    benign = pickle.dumps({"pad": b"x" * 5000, "w": list(range(500))}, protocol=4)
    gz_bad, gz_good = tmp_path / "bad.pkl.gz", tmp_path / "good.pkl.gz"
    gz_bad.write_bytes(gzip.compress(hostile))
    gz_good.write_bytes(gzip.compress(benign))
    zp = tmp_path / "archive.zip"
    with zipfile.ZipFile(zp, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a/data.pkl", hostile)
    assert _scan.scan_file(gz_good).verdict == "safe"
    assert _scan.scan_file(gz_bad).verdict == "dangerous"
    assert _scan.scan_file(zp).verdict == "dangerous"
    assert not marker.exists()


def test_the_fast_judgement_of_benign_streams_matches_the_general_one(
    sklearn_models: dict[str, Any], marker: Path, monkeypatch: Any
) -> None:
    """``_judge_plain`` (benign streams judged without the general pass) gives exactly the
    reports the general pass gives: on benign models and data of every protocol, joblib
    files, the hostile techniques in every container, the bypass corpus and broken streams."""
    from _bypasses import BYPASSES

    from amber.security import _scan as S

    corpus = []
    for model in sklearn_models.values():
        corpus += [pickle.dumps(model, protocol=p) for p in (0, 2, 4, 5)]
        buf = io.BytesIO()
        joblib.dump(model, buf)
        corpus.append(buf.getvalue())
    for obj in (*_frames().values(), *_ARRAYS.values(), _PLAIN):
        corpus += [pickle.dumps(obj, protocol=p) for p in (2, 5)]
    for fn in TECHNIQUES.values():
        corpus += list(containers(fn(marker, 4)).values())
    corpus += [b.build(marker)[1] for b in BYPASSES.values()]
    rng = random.Random(8)
    corpus += [mutate(rng, rng.choice(corpus)) for _ in range(800)]
    fast_taken = 0
    calls = []
    real = S._judge_plain

    def counting(*a: Any) -> bool:
        got = real(*a)
        calls.append(got)
        return got

    monkeypatch.setattr(S, "_judge_plain", counting)
    for data in corpus:
        calls.clear()
        monkeypatch.setattr(S, "_FAST_JUDGE", True)
        fast = scan_file(data)
        fast_taken += any(calls)
        monkeypatch.setattr(S, "_FAST_JUDGE", False)
        general = scan_file(data)
        if general != fast:  # (some reasons quote a parser's message with an object's address)
            assert re.sub(" at 0x[0-9a-f]+", "", repr(general)) == re.sub(" at 0x[0-9a-f]+", "", repr(fast)), data[:200]
    assert fast_taken > 100  # the fast path is taken (most benign streams)
