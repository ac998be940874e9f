"""The HDF5 format (.h5/.hdf5): round trips of every supported type, the layout plain h5py
sees, lazy and partial reads, other tools' files, trust, atomic writes and malformed files."""

from __future__ import annotations

import collections
import io
import json
import os
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import amber
from amber.formats._hdf5 import (
    HDF5_MAGIC,
    chunk_shape,
    describe_hdf5,
    dump_hdf5,
    load_hdf5,
    looks_like_hdf5,
    open_hdf5,
    resolve_hdf5_compress,
)
from amber.testing import assert_equal

h5py = pytest.importorskip("h5py")

sys.path.insert(0, str(Path(__file__).parent))
from test_roundtrip import BUILTIN_CASES, DTYPES, LAYOUTS, assert_same, layout_array, random_array  # noqa: E402


def rt(obj: Any, tmp_path: Path, name: str = "x.h5", **kw: Any) -> Any:
    path = tmp_path / name
    amber.dump(obj, path, **kw)
    return amber.load(path)


def smooth_tiles(n: int, seed: int = 0) -> list[np.ndarray]:
    """Tiles that compress, like photos: gradients plus a little noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:240, 0:320]
    out = []
    for _ in range(n):
        a, b, c = rng.random(3)
        base = (a * y + b * x + 60 * c)[..., None] + np.array([0, 40, 80])
        out.append(((base + rng.integers(0, 2, (240, 320, 3))) % 256).astype(np.uint8))
    return out


def tiles(n: int = 20, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (240, 320, 3), dtype=np.uint8) for _ in range(n)]


# ---------------------------------------------------------------------------------------
# round trips
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("obj", list(BUILTIN_CASES.values()), ids=list(BUILTIN_CASES))
@pytest.mark.parametrize("where", ["root", "in_dict", "in_list"])
def test_builtin_roundtrip(obj: Any, where: str, tmp_path: Path) -> None:
    wrapped = {"root": obj, "in_dict": {"k": obj, "z": 1}, "in_list": [obj, 1]}[where]
    out = rt(wrapped, tmp_path)
    assert_same(wrapped, out)  # stricter than amber.testing.assert_equal: exact types, bits, order


@pytest.mark.parametrize("dtype", list(DTYPES.values()), ids=list(DTYPES))
@pytest.mark.parametrize("layout", [*LAYOUTS, "scalar"])
def test_ndarray_roundtrip(dtype: np.dtype, layout: str, tmp_path: Path) -> None:
    a = random_array(dtype, (), seed=3)[()] if layout == "scalar" else layout_array(dtype, layout)
    obj = {"a": a, "l": [a]}
    out = rt(obj, tmp_path)
    assert_same(obj, out)
    if layout == "F":
        assert out["a"].flags.f_contiguous
    if layout != "scalar":
        assert out["a"].flags.writeable


@pytest.mark.parametrize(
    "dtype", ["?", "i1", "<i4", ">i8", "<u8", "<f2", "<f4", ">f8", "<c16", "S5", "V3", "<M8[ns]", ">m8[ms]", "<U7"]
)
def test_arrays_are_datasets_of_their_own_dtype(dtype: str, tmp_path: Path) -> None:
    """Arrays HDF5 can hold are plain datasets; datetimes are int64 and unicode text is
    UTF-8 strings, with the saved dtype in ``amber.dtype``."""
    a = random_array(np.dtype(dtype), (3, 4))
    path = tmp_path / "a.h5"
    amber.dump({"a": a}, path)
    with h5py.File(path, "r") as f:
        ds = f["a"]
        assert isinstance(ds, h5py.Dataset) and ds.shape == (3, 4)
        assert ds.attrs.get("amber.kind") is None
        if a.dtype.kind in "mM":
            assert ds.dtype == np.dtype(dtype[0] + "i8") and ds.attrs["amber.dtype"] == a.dtype.str.encode()
            assert np.array_equal(ds[()], a.view(dtype[0] + "i8"))
        elif a.dtype.kind == "U":
            assert h5py.check_string_dtype(ds.dtype).encoding == "utf-8"
            assert ds.asstr()[0, 0] == a[0, 0]
        else:
            assert ds.dtype == a.dtype
            assert ds[()].tobytes() == a.tobytes()


def test_view_saves_only_its_elements(tmp_path: Path) -> None:
    base = np.arange(1 << 20, dtype=np.float64)
    path = tmp_path / "v.h5"
    amber.dump({"v": base[::4096]}, path)
    assert path.stat().st_size < 8 * 256 + 8192
    assert_same(base[::4096].copy(), amber.load(path)["v"])


def test_sklearn_models_predict_the_same(tmp_path: Path) -> None:
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = make_classification(300, 8, random_state=0)
    forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    out = rt({"forest": forest, "pipe": pipe, "X": X}, tmp_path)
    assert np.array_equal(out["forest"].predict_proba(X), forest.predict_proba(X))
    assert np.array_equal(out["pipe"].predict_proba(X), pipe.predict_proba(X))
    assert_equal(out["forest"], forest)
    with h5py.File(tmp_path / "x.h5", "r") as f:  # the models are amber nodes beside a plain dataset
        assert f["forest"].attrs["amber.kind"] == b"node"
        assert f["forest"].attrs["amber.type"] == b"sklearn.ensemble._forest.RandomForestClassifier"
        assert f["X"].dtype == np.float64 and f["X"].shape == (300, 8)


def test_pandas_and_scipy(tmp_path: Path) -> None:
    import pandas as pd
    import scipy.sparse as sp

    df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", None], "t": pd.date_range("2020", periods=3)})
    obj = {"df": df, "s": df["a"], "csr": sp.random(20, 30, density=0.1, format="csr", random_state=0),
           "coo": sp.coo_matrix(np.eye(3))}
    out = rt(obj, tmp_path)
    assert_equal(out, obj)


def test_torch_state_dict_and_tensors(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    t = torch.arange(6.0).reshape(2, 3)
    obj = {"state": model.state_dict(), "t": t, "same": t, "model": model}
    out = rt(obj, tmp_path)
    assert_equal(out, obj)
    assert out["same"] is out["t"]  # one node, hard-linked
    x = torch.randn(5, 4)
    assert torch.equal(out["model"](x), model(x))


def test_numpy_scalar_types_kept(tmp_path: Path) -> None:
    scalars = [np.float64(1.5), np.float32(-0.0), np.int64(-(2**63)), np.uint64(2**64 - 1), np.bool_(True),
               np.str_("héllo"), np.bytes_(b"a\x00b"), np.datetime64("NaT"), np.timedelta64(5, "ms"),
               np.float16(np.nan), np.complex64(1 - 2j), np.longdouble("1.1"), np.clongdouble(1 + 1j)]
    out = rt({"s": scalars, **{f"k{i}": s for i, s in enumerate(scalars)}}, tmp_path)
    for i, s in enumerate(scalars):
        assert type(out[f"k{i}"]) is type(s) and type(out["s"][i]) is type(s)
        assert_same(s, out[f"k{i}"])


# ---------------------------------------------------------------------------------------
# the layout plain h5py sees
# ---------------------------------------------------------------------------------------


def test_nested_dicts_are_groups_with_natural_names(tmp_path: Path) -> None:
    w1, b1 = np.arange(12.0).reshape(3, 4), np.ones(4, np.float32)
    obj = {"weights": {"layer1": w1, "layer1_bias": b1, "deeper": {"x": np.arange(3)}}, "lr": 0.01,
           "epochs": 10, "name": "resnet", "done": True, "note": None, "raw": b"\x00\x01"}
    path = tmp_path / "m.h5"
    amber.dump(obj, path)
    with h5py.File(path, "r") as f:
        assert isinstance(f["weights"], h5py.Group)
        assert np.array_equal(f["weights/layer1"][()], w1)
        assert np.array_equal(f["weights"]["layer1_bias"][()], b1)
        assert np.array_equal(f["weights/deeper/x"][()], np.arange(3))
        # scalars are attributes of the group that holds them
        assert f.attrs["lr"] == 0.01 and f.attrs["epochs"] == 10 and f.attrs["name"] == "resnet"
        assert f.attrs["done"] == True  # noqa: E712 - numpy bool
        assert isinstance(f.attrs["note"], h5py.Empty)
        assert bytes(f.attrs["raw"]) == b"\x00\x01"
        assert f.attrs["amber.format"] == b"amber-hdf5" and f.attrs["amber.version"] == b"1.0"
        marks = json.loads(f.attrs["amber.scalars"])
        assert marks == {"lr": "float", "epochs": "int", "done": "bool", "note": "none", "raw": "bytes"}
    out = amber.load(path)
    assert_same(obj, out)
    assert type(out["epochs"]) is int and type(out["lr"]) is float and type(out["done"]) is bool


def test_lists_of_arrays_are_one_dataset_per_item(tmp_path: Path) -> None:
    ts = tiles(5)
    path = tmp_path / "t.h5"
    amber.dump({"tiles": ts, "pair": (ts[0], "label")}, path)
    with h5py.File(path, "r") as f:
        g = f["tiles"]
        assert g.attrs["amber.kind"] == b"list" and g.attrs["amber.len"] == 5
        assert sorted(g, key=int) == ["0", "1", "2", "3", "4"]
        for i, t in enumerate(ts):
            assert g[str(i)].shape == (240, 320, 3) and np.array_equal(g[str(i)][()], t)
        assert f["pair"].attrs["amber.kind"] == b"tuple" and f["pair"].attrs["1"] == "label"
    out = amber.load(path)
    assert_same({"tiles": ts, "pair": (ts[0], "label")}, out)


def test_root_list_of_tiles_round_trips(tmp_path: Path) -> None:
    ts = tiles(30)
    path = tmp_path / "tiles.h5"
    amber.dump(ts, path)
    with h5py.File(path, "r") as f:
        assert len(f) == 30 and np.array_equal(f["29"][()], ts[29])
    out = amber.load(path)
    assert isinstance(out, list) and len(out) == 30
    assert all(np.array_equal(a, b) for a, b in zip(out, ts))


def test_lists_of_plain_scalars_are_one_dataset(tmp_path: Path) -> None:
    obj = {"loss": [0.5, 0.25, float("nan"), -0.0], "steps": [1, 2, 3], "flags": (True, False),
           "names": ["a", "héllo"], "mixed": [1, "a", None]}
    path = tmp_path / "l.h5"
    amber.dump(obj, path)
    with h5py.File(path, "r") as f:
        assert f["loss"].dtype == np.float64 and f["loss"].attrs["amber.item"] == b"float"
        assert f["steps"].dtype == np.int64 and list(f["steps"][()]) == [1, 2, 3]
        assert f["flags"].attrs["amber.kind"] == b"tuple"
        assert list(f["names"].asstr()[()]) == ["a", "héllo"]
        assert isinstance(f["mixed"], h5py.Group)
    assert_same(obj, amber.load(path))


def test_insertion_order_kept_across_attributes_and_members(tmp_path: Path) -> None:
    obj = {"z": 1, "arr": np.arange(3), "a": "text", "sub": {"y": 2.0, "b": np.zeros(1), "x": None},
           "m": [1, [2]], "last": 0.5}
    out = rt(obj, tmp_path)
    assert list(out) == list(obj) and list(out["sub"]) == list(obj["sub"])
    with amber.open(tmp_path / "x.h5") as f:
        assert f.keys() == list(obj)
        assert f["sub"].keys() == ["y", "b", "x"]


def test_keys_hdf5_cannot_name_make_the_dict_a_node(tmp_path: Path) -> None:
    obj = {"ok": {"a/b": 1, "": 2, ".": 3}, "ints": {1: np.arange(2)}, "nul": {"a\x00": 1}, "fine": {"a.b c": 1}}
    path = tmp_path / "k.h5"
    amber.dump(obj, path)
    with h5py.File(path, "r") as f:
        for key in ("ok", "ints", "nul"):
            assert f[key].attrs["amber.kind"] == b"node"
            assert f[key].attrs["amber.type"] == b"builtins.dict"
        assert f["fine"].attrs["a.b c"] == 1
    assert_same(obj, amber.load(path))
    # keys starting with "amber." are amber's own attribute namespace: that dict is a node
    obj = {"amber.kind": 5, "x": np.arange(2)}
    amber.dump(obj, path)
    with h5py.File(path, "r") as f:
        assert f.attrs["amber.kind"] == b"value" and f["value"].attrs["amber.kind"] == b"node"
    assert_same(obj, amber.load(path))


def test_containers_of_many_small_values_are_one_node(tmp_path: Path) -> None:
    """HDF5 takes about 0.1 ms per attribute and 0.5 ms per group: a container with more
    than 256 scalars or records of scalars is one amber node; arrays keep it a group."""
    big = {f"w{i}": i for i in range(300)}
    records = [{"id": i, "name": "x"} for i in range(300)]
    samples = [{"img": np.full((2, 2), i % 256, np.uint8), "label": i} for i in range(300)]
    config = {f"k{i}": float(i) for i in range(256)}
    obj = {"big": big, "records": records, "samples": samples, "config": config, "mixed": [1, "a"] * 200}
    path = tmp_path / "n.h5"
    amber.dump(obj, path)
    with h5py.File(path, "r") as f:
        for key in ("big", "records", "mixed"):
            assert f[key].attrs["amber.kind"] == b"node", key
        assert isinstance(f["samples"], h5py.Group) and f["samples/299/img"].shape == (2, 2)
        assert f["samples/7"].attrs["label"] == 7
        assert isinstance(f["config"], h5py.Group) and len(f["config"].attrs) == 256 + 1
    assert_same(obj, amber.load(path))
    amber.dump(big, path)  # at the root too
    with h5py.File(path, "r") as f:
        assert f.attrs["amber.kind"] == b"value" and f["value"].attrs["amber.kind"] == b"node"
    assert_same(big, amber.load(path))


def test_long_strings_and_bytes_are_datasets(tmp_path: Path) -> None:
    obj = {"text": "é" * 20_000, "blob": bytes(range(256)) * 100, "ba": bytearray(b"xyz"), "short": "s"}
    path = tmp_path / "s.h5"
    amber.dump(obj, path)
    with h5py.File(path, "r") as f:
        assert f["text"].attrs["amber.kind"] == b"str" and f["text"].asstr()[()] == obj["text"]
        assert f["blob"].attrs["amber.kind"] == b"bytes" and f["blob"][()].tobytes() == obj["blob"]
        assert f["ba"].attrs["amber.kind"] == b"bytearray"
    assert_same(obj, amber.load(path))


def test_shared_objects_are_hard_links_and_come_back_shared(tmp_path: Path) -> None:
    arr = np.arange(1000.0)
    lst: list[Any] = [1, 2, arr]
    s = {1, 2}
    obj = {"a": arr, "b": {"again": arr}, "l1": lst, "l2": lst, "set1": s, "set2": s}
    path = tmp_path / "sh.h5"
    amber.dump(obj, path)
    with h5py.File(path, "r") as f:
        assert f["a"].id == f["b/again"].id and f["l1"].id == f["l2"].id and f["set1"].id == f["set2"].id
        assert f["a"].id.get_storage_size() == arr.nbytes
    out = amber.load(path)
    assert out["a"] is out["b"]["again"] is out["l1"][2]
    assert out["l1"] is out["l2"] and out["set1"] is out["set2"]


def test_cycles_through_dicts_and_lists(tmp_path: Path) -> None:
    d: dict[str, Any] = {"x": np.arange(2)}
    d["self"] = d
    lst: list[Any] = [1]
    lst.append(lst)
    out = rt({"d": d, "l": lst}, tmp_path)
    assert out["d"]["self"] is out["d"] and out["l"][1] is out["l"]
    t: Any = ([],)
    t[0].append(t)
    with pytest.raises(amber.EncodeError, match="cycle through an immutable"):
        amber.dump({"t": t}, tmp_path / "t.h5")


def test_deep_nesting_becomes_a_node(tmp_path: Path) -> None:
    obj: Any = {"leaf": 1}
    for _ in range(300):
        obj = {"n": obj}
    out = rt(obj, tmp_path)
    assert_same(obj, out)


def test_compression_gzip_and_lzf(tmp_path: Path) -> None:
    smooth = np.tile(np.arange(1000, dtype=np.float32), (100, 1))
    obj = {"w": smooth, "tiles": [np.zeros((240, 320, 3), np.uint8)] * 2, "small": np.arange(4)}
    sizes = {}
    for comp in (None, True, "gzip", "gzip:9", ("zlib", 3), "lzf"):
        path = tmp_path / f"c{len(sizes)}.h5"
        amber.dump(obj, path, compress=comp)
        sizes[str(comp)] = path.stat().st_size
        with h5py.File(path, "r") as f:
            expect = {None: None, True: "gzip", "gzip": "gzip", "gzip:9": "gzip", ("zlib", 3): "gzip", "lzf": "lzf"}[comp]
            assert f["w"].compression == expect
            assert f["small"].compression is None  # too small to be worth it
            if expect:
                assert f["w"].chunks is not None and f["w"].shuffle
                assert f["tiles/0"].chunks == (240, 320, 3)  # a tile is one chunk
        assert_same(obj, amber.load(path))
    assert sizes["True"] < sizes["None"] / 5 and sizes["lzf"] < sizes["None"] / 2


@pytest.mark.parametrize("bad", ["zstd", "lz4:3", "bz2", "gzip:12", ("gzip", "x"), "lzf:3", 3.5])
def test_unsupported_compression_is_refused(bad: Any, tmp_path: Path) -> None:
    with pytest.raises(amber.FormatError) as ei:
        amber.dump({"a": np.zeros(100)}, tmp_path / "c.h5", compress=bad)
    assert "compress" in str(ei.value)
    assert not list(tmp_path.iterdir())


def test_compress_option_parsing() -> None:
    assert resolve_hdf5_compress(None) is None and resolve_hdf5_compress(False) is None
    assert resolve_hdf5_compress(True) == ("gzip", 1)
    assert resolve_hdf5_compress("gzip") == ("gzip", 4)
    assert resolve_hdf5_compress({"name": "zlib", "level": 2}) == ("gzip", 2)
    assert resolve_hdf5_compress("lzf") == ("lzf", None)


def test_chunk_shape() -> None:
    assert chunk_shape((1000, 240, 320, 3), 1) == (1, 240, 320, 3)  # one image per chunk
    assert chunk_shape((10,), 8) == (10,)
    assert chunk_shape((100_000, 100), 8) == (1310, 100)  # rows of 800 bytes: about 1 MiB
    assert chunk_shape((10_000_000,), 1) == (1 << 20,)
    assert chunk_shape((3, 1000, 1000), 8) == (1, 131, 1000)  # an 8 MB row: cut along axis 1
    assert chunk_shape((0, 5), 4) == (1, 5)


def test_metadata_round_trip(tmp_path: Path) -> None:
    meta = {"run": 7, "tags": ["a", "b"], "score": 0.93, "nested": {"x": None}}
    path = tmp_path / "m.h5"
    amber.dump({"a": np.arange(3)}, path, metadata=meta)
    obj, got = amber.load(path, with_metadata=True)
    assert got == meta
    with amber.open(path) as f:
        assert f.metadata == meta
    assert amber.inspect(path).metadata == meta
    with h5py.File(path, "r") as f:
        assert json.loads(f.attrs["amber.metadata"]) == meta
        env = json.loads(f.attrs["amber.env"])
        assert env["packages"]["h5py"] == h5py.__version__ and "python" in env
    with pytest.raises(amber.EncodeError):
        amber.dump({}, tmp_path / "bad.h5", metadata={"x": object()})


def test_same_object_same_bytes(tmp_path: Path) -> None:
    obj = {"a": np.arange(10), "b": [1, "x", {2, 3}], "c": {"d": 1.5}}
    amber.dump(obj, tmp_path / "1.h5")
    amber.dump(obj, tmp_path / "2.h5")
    assert (tmp_path / "1.h5").read_bytes() == (tmp_path / "2.h5").read_bytes()


def test_dumps_loads_file_objects_and_urls(tmp_path: Path) -> None:
    obj = {"a": np.arange(5), "s": "x"}
    data = amber.dumps(obj, format="hdf5")
    assert data.startswith(HDF5_MAGIC) and looks_like_hdf5(data[:64])
    assert_same(obj, amber.loads(data))
    buf = io.BytesIO()
    amber.dump(obj, buf, format="hdf5")
    buf.seek(0)
    assert_same(obj, amber.load(buf))
    pytest.importorskip("fsspec")
    amber.dump(obj, "memory://amber-test/x.h5")
    assert_same(obj, amber.load("memory://amber-test/x.h5"))
    with amber.open("memory://amber-test/x.h5") as f:
        assert np.array_equal(f["a"][1:3], [1, 2])
    # and straight through the format's own functions
    dump_hdf5(obj, tmp_path / "d.h5")
    got, meta = load_hdf5(str(tmp_path / "d.h5"), name="d.h5")
    assert_same(obj, got) and meta is None


def test_looks_like_hdf5_with_a_user_block() -> None:
    assert looks_like_hdf5(HDF5_MAGIC + b"\0" * 8)
    assert looks_like_hdf5(b"\0" * 512 + HDF5_MAGIC)
    assert not looks_like_hdf5(b"\x89PNG\r\n\x1a\n")


def test_mmap_maps_contiguous_datasets(tmp_path: Path) -> None:
    obj = {"big": np.arange(100_000.0), "small": np.arange(3), "z": {"c": np.ones(5000, np.int32)}}
    path = tmp_path / "m.h5"
    amber.dump(obj, path)
    out = amber.load(path, mmap=True)
    assert_same(obj, out)
    assert not out["big"].flags.writeable and not out["z"]["c"].flags.writeable
    assert out["small"].flags.writeable  # a few bytes in the dataset header: read


# ---------------------------------------------------------------------------------------
# lazy access and partial reads
# ---------------------------------------------------------------------------------------


def test_open_is_lazy_and_sliceable(tmp_path: Path) -> None:
    ts = tiles(6)
    obj = {"weights": {"layer1": np.arange(100.0).reshape(10, 10)}, "tiles": ts, "lr": 0.1, "s": {1, 2},
           "when": np.array(["2020-01-01", "2021-06-30"], dtype="M8[D]"), "names": np.array(["ab", "c"])}
    path = tmp_path / "o.h5"
    amber.dump(obj, path, metadata={"m": 1})
    with amber.open(path) as f:
        assert f.keys() == list(obj) and "tiles" in f and "nope" not in f and len(f) == len(obj)
        w = f["weights"]["layer1"]
        assert w.shape == (10, 10) and w.dtype == np.float64 and len(w) == 10
        assert np.array_equal(w[:2], obj["weights"]["layer1"][:2])
        assert np.array_equal(f["weights/layer1"][3, 4:6], [34.0, 35.0])
        assert np.array_equal(f["tiles"][3][10:20, 5], ts[3][10:20, 5])
        assert np.array_equal(f["tiles/-1"].read(), ts[-1]) and np.array_equal(np.asarray(f["tiles"][0]), ts[0])
        assert f["lr"] == 0.1 and type(f["lr"]) is float and f["s"] == {1, 2}
        assert f["when"].dtype == np.dtype("M8[D]") and f["when"][1] == np.datetime64("2021-06-30")
        assert f["names"][:1].tolist() == ["ab"] and f["names"].dtype == np.dtype("<U2")
        assert len(f["tiles"]) == 6 and f["tiles"].keys() == list(range(6))
        assert f.attrs["amber.format"] == b"amber-hdf5" and f["weights"].attrs == {}
        assert_same(obj, f.read())
        assert_same(obj["weights"], f["weights"].read())
        assert f.metadata == {"m": 1} and f.info.format == "hdf5"
        with pytest.raises(KeyError):
            f["nope"]
        with pytest.raises(KeyError):
            f["tiles"][6]
    with amber.open(tmp_path / "o.h5") as f:
        pass
    with pytest.raises(ValueError):
        f["lr"]


def test_open_a_root_that_is_not_a_container(tmp_path: Path) -> None:
    amber.dump(np.arange(10), tmp_path / "a.h5")
    with amber.open(tmp_path / "a.h5") as f:
        assert np.array_equal(f.root[2:4], [2, 3]) and np.array_equal(f[5], 5)
    amber.dump(3.5, tmp_path / "f.h5")
    with amber.open(tmp_path / "f.h5") as f:
        assert f.root == 3.5 and f.read() == 3.5
        with pytest.raises(TypeError):
            f.keys()


class CountingFile(io.RawIOBase):
    """A read-only file that counts the bytes h5py reads through it."""

    def __init__(self, path: Path) -> None:
        self.fh = open(path, "rb")  # noqa: SIM115
        self.name = str(path)
        self.bytes = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = self.fh.readinto(b)
        self.bytes += n or 0
        return n

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.fh.seek(offset, whence)

    def tell(self) -> int:
        return self.fh.tell()

    def close(self) -> None:
        self.fh.close()
        super().close()


@pytest.mark.parametrize("compress", [None, "gzip"])
def test_reading_one_tile_touches_only_its_chunk(compress: Any, tmp_path: Path) -> None:
    """A measurement, not a timing: the bytes h5py reads from the file to give one tile."""
    ts = smooth_tiles(40)
    path = tmp_path / "t.h5"
    amber.dump({"tiles": ts, "stack": np.stack(ts)}, path, compress=compress)
    size = path.stat().st_size
    with h5py.File(path, "r") as f:
        ds = f["stack"]
        if compress:
            assert ds.chunks == (1, 240, 320, 3)  # one tile per chunk
            stored = {k: ds.id.get_chunk_info_by_coord((k, 0, 0, 0)).size for k in range(40)}
            assert sum(stored.values()) < ds.nbytes / 2  # they compress
            chunk = {"stack": stored[20], "tiles": f["tiles/20"].id.get_storage_size()}
        else:
            assert ds.chunks is None  # contiguous: HDF5 reads exactly the selected rows
            chunk = {"stack": ts[20].nbytes, "tiles": ts[20].nbytes}
    for key in ("tiles", "stack"):
        fh = CountingFile(path)
        with amber.open(fh) as f:
            before = fh.bytes
            got = f[key][20][:] if key == "tiles" else f[key][20]
            read = fh.bytes - before
        fh.close()
        assert np.array_equal(got, ts[20])
        # the tile's own chunk, plus at most a few kB of HDF5 index, out of a file of 80 tiles
        assert chunk[key] <= read <= chunk[key] + 16 * 1024, (key, read, chunk[key], size)


def test_lazy_file_through_a_file_object(tmp_path: Path) -> None:
    amber.dump({"a": np.arange(10)}, tmp_path / "x.h5")
    with open(tmp_path / "x.h5", "rb") as fh, amber.open(fh) as f:
        assert np.array_equal(f["a"][2:4], [2, 3])


def test_inspect_and_describe(tmp_path: Path) -> None:
    ts = tiles(3)
    obj = {"tiles": ts, "cfg": {"lr": 0.1}, "s": {1, 2}, "w": np.zeros((100, 100))}
    path = tmp_path / "i.h5"
    amber.dump(obj, path, compress="gzip", metadata={"v": 1})
    info = amber.inspect(path)
    assert info.format == "hdf5" and info.format_version == "1.0" and info.amber_version == amber.__version__
    assert info.metadata == {"v": 1} and info.codecs == ["gzip"] and info.blobs == 5
    assert info.data_bytes >= 3 * ts[0].nbytes + 80_000 and info.stored_bytes < info.data_bytes
    assert info.tree["items"]["tiles"]["items"]["[0]"]["chunks"] == [240, 320, 3]
    assert info.tree["items"]["cfg"]["items"]["lr"] == {"type": "float", "value": "0.1"}
    assert info.tree["items"]["s"]["type"] == "set"
    assert "set" in info.types and "numpy.ndarray" in info.types
    text = str(info)
    assert "hdf5 file, amber layout 1.0" in text and "gzip" in text and "chunks (240, 320, 3)" in text
    json.loads(info.to_json())
    same = describe_hdf5(str(path), name="i.h5", size=path.stat().st_size)
    assert same.tree == info.tree


def test_convert_between_native_and_hdf5(tmp_path: Path) -> None:
    obj = {"a": np.arange(4), "b": [1, 2.5], "s": {1}}
    amber.dump(obj, tmp_path / "x.amber", metadata={"k": 1})
    assert amber.convert(tmp_path / "x.amber", tmp_path / "x.h5") == "amber"
    assert_same(obj, amber.load(tmp_path / "x.h5"))
    assert amber.convert(tmp_path / "x.h5", tmp_path / "y.amber") == "hdf5"
    assert_same(obj, amber.load(tmp_path / "y.amber"))


# ---------------------------------------------------------------------------------------
# files other tools wrote
# ---------------------------------------------------------------------------------------


def test_plain_h5py_file_loads_as_dicts_of_arrays(tmp_path: Path) -> None:
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.arange(5)
        f.create_group("g/h")
        f["g/h/y"] = np.ones((2, 3), np.float32)
        f["scalar"] = 3.5
        f["text"] = "héllo"
        f["texts"] = np.array([b"a", b"bc"], dtype=h5py.string_dtype("utf-8"))
        f["fixed"] = np.array([b"ab", b"c"])
        f["comp"] = np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8")])
        f["gz"] = f.create_dataset("gz_", data=np.arange(1000), compression="gzip")
        f.attrs["who"] = "me"
        f["g"].attrs["n"] = 3
        f["soft"] = h5py.SoftLink("/g/h/y")
        f["hard"] = f["x"]
    out = amber.load(path)
    assert set(out) == {"x", "g", "scalar", "text", "texts", "fixed", "comp", "gz", "gz_", "soft", "hard"}
    assert np.array_equal(out["x"], np.arange(5)) and out["hard"] is out["x"]
    assert np.array_equal(out["g"]["h"]["y"], np.ones((2, 3), np.float32))
    assert out["scalar"] == 3.5 and isinstance(out["scalar"], np.float64)
    assert out["text"] == "héllo" and list(out["texts"]) == ["a", "bc"]
    assert out["fixed"].dtype == np.dtype("S2") and out["comp"].dtype.names == ("a", "b")
    assert np.array_equal(out["soft"], out["g"]["h"]["y"]) and np.array_equal(out["gz"], np.arange(1000))
    assert amber.load(path, with_metadata=True)[1] is None
    with amber.open(path) as f:
        assert f.metadata is None and f.attrs == {"who": "me"} and f["g"].attrs == {"n": 3}
        assert f["g"].keys() == ["h"] and np.array_equal(f["g/h/y"][0], [1, 1, 1])
        assert f["scalar"].shape == () and f["scalar"][()] == 3.5
        assert "written by another tool" in str(f.info) or "another tool" in str(f.info)
    info = amber.inspect(path)
    assert info.format == "hdf5" and info.amber_version is None and info.blobs == 8  # "gz" and "gz_" are one dataset
    assert info.tree["items"]["x"]["type"] == "dataset"


def test_hickle_file_loads_and_nothing_is_unpickled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hickle = pytest.importorskip("hickle")
    obj = {"arr": np.arange(6).reshape(2, 3), "lst": [np.ones(3), np.zeros(2)], "x": 1.5}
    path = tmp_path / "h.hkl"
    hickle.dump(obj, str(path), mode="w")

    def refuse(*args: Any, **kw: Any) -> Any:
        raise AssertionError("something was unpickled")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    out = amber.load(path, format="hdf5")

    def arrays(d: Any) -> list[np.ndarray]:
        if isinstance(d, dict):
            return [a for v in d.values() for a in arrays(v)]
        return [np.asarray(d)]

    found = arrays(out)
    assert any(a.shape == (2, 3) and np.array_equal(a, obj["arr"]) for a in found)
    assert any(np.array_equal(a, np.ones(3)) for a in found if a.shape == (3,))
    with amber.open(path) as f:
        g = f[f.keys()[0]]
        attrs = g.attrs  # hickle's pickled 'type' attributes are shown as stored bytes
        assert all(not callable(v) for v in attrs.values())
    assert amber.inspect(path).format == "hdf5"


def test_keras_style_weights(tmp_path: Path) -> None:
    path = tmp_path / "keras.h5"
    k1, b1 = np.random.default_rng(0).random((4, 8), dtype=np.float32), np.zeros(8, np.float32)
    k2 = np.random.default_rng(1).random((8, 2), dtype=np.float32)
    with h5py.File(path, "w") as f:
        mw = f.create_group("model_weights")
        mw.attrs["layer_names"] = np.array([b"dense", b"dense_1"])
        for layer, weights in (("dense", {"kernel:0": k1, "bias:0": b1}), ("dense_1", {"kernel:0": k2})):
            g = mw.create_group(layer)
            g.attrs["weight_names"] = np.array([f"{layer}/{n}".encode() for n in weights])
            for n, w in weights.items():
                g[f"{layer}/{n}"] = w
        f.attrs["keras_version"] = "2.15.0"
        f.attrs["model_config"] = json.dumps({"class_name": "Sequential"})
    out = amber.load(path)
    assert np.array_equal(out["model_weights"]["dense"]["dense"]["kernel:0"], k1)
    assert np.array_equal(out["model_weights"]["dense_1"]["dense_1"]["kernel:0"], k2)
    with amber.open(path) as f:
        assert list(f["model_weights"].attrs["layer_names"]) == [b"dense", b"dense_1"]
        assert np.array_equal(f["model_weights/dense/dense/bias:0"][:2], [0, 0])
        assert f.attrs["keras_version"] == "2.15.0"


def test_external_links_and_external_storage_are_refused(tmp_path: Path) -> None:
    other = tmp_path / "secret.h5"
    with h5py.File(other, "w") as f:
        f["data"] = np.arange(3)
    path = tmp_path / "ext.h5"
    with h5py.File(path, "w") as f:
        f["ok"] = np.arange(2)
        f["ext"] = h5py.ExternalLink(str(other), "/data")
    with pytest.raises(amber.FormatError, match="external link"):
        amber.load(path)
    with amber.open(path) as f:
        assert np.array_equal(f["ok"][:], [0, 1])
        with pytest.raises(amber.FormatError, match="external link"):
            f["ext"]
    # a soft link whose path runs through an external link is refused too
    path2 = tmp_path / "soft.h5"
    with h5py.File(path2, "w") as f:
        f["ext"] = h5py.ExternalLink(str(other), "/")
        f["via"] = h5py.SoftLink("/ext/data")
    with amber.open(path2) as f, pytest.raises(amber.FormatError, match="external link"):
        f["via"]
    # raw data kept in another file
    raw = tmp_path / "raw.bin"
    raw.write_bytes(np.arange(4, dtype="<i8").tobytes())
    path3 = tmp_path / "extstore.h5"
    with h5py.File(path3, "w") as f:
        f.create_dataset("d", shape=(4,), dtype="<i8", external=[(str(raw), 0, 32)])
    with pytest.raises(amber.FormatError, match="external file"):
        amber.load(path3)
    # a virtual dataset
    path4 = tmp_path / "vds.h5"
    layout = h5py.VirtualLayout(shape=(3,), dtype="<i8")
    layout[:] = h5py.VirtualSource(str(other), "data", shape=(3,))
    with h5py.File(path4, "w") as f:
        f.create_virtual_dataset("v", layout)
    with pytest.raises(amber.FormatError, match="virtual dataset"):
        amber.load(path4)
    assert amber.inspect(path).format == "hdf5"  # describing never follows them


def test_dangling_soft_link(tmp_path: Path) -> None:
    path = tmp_path / "d.h5"
    with h5py.File(path, "w") as f:
        f["gone"] = h5py.SoftLink("/nowhere")
    with pytest.raises(amber.CorruptFileError, match="points at nothing"):
        amber.load(path)


# ---------------------------------------------------------------------------------------
# trust
# ---------------------------------------------------------------------------------------


def test_untrusted_types_in_nodes_listed_before_any_import(canary: tuple[str, Path], tmp_path: Path) -> None:
    import subprocess

    name, marker = canary
    path = tmp_path / "u.h5"
    code = (
        f"import amber, numpy as np, {name} as c\n"
        f"amber.dump({{'z': c.Zeta(1), 'deep': {{'a': [c.Alpha(2), np.arange(3)]}}, 'ok': np.arange(2)}}, "
        f"{str(path)!r})\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    marker.unlink()
    expected = (f"{name}.Alpha", f"{name}.Zeta")
    with pytest.raises(amber.UntrustedTypeError) as ei:
        amber.load(path)
    assert ei.value.untrusted == expected and f"trusted={list(expected)!r}" in str(ei.value)
    with pytest.raises(amber.UntrustedTypeError) as ei:
        amber.open(path)
    assert ei.value.untrusted == expected
    with pytest.raises(amber.UntrustedTypeError) as ei:
        amber.load(path, trusted=[f"{name}.Zeta"])
    assert ei.value.untrusted == (f"{name}.Alpha",)
    assert amber.untrusted_types(path) == list(expected)
    info = amber.inspect(path)
    assert info.untrusted == list(expected)
    assert name not in sys.modules and not marker.exists()
    out = amber.load(path, trusted=[name])
    assert marker.exists() and out["z"].v == 1 and out["deep"]["a"][0].v == 2


def test_a_node_the_file_does_not_list_is_still_checked(canary: tuple[str, Path], tmp_path: Path) -> None:
    """``amber.nodes`` only speeds up the search: a node it leaves out is checked on its own."""
    import subprocess

    name, marker = canary
    path = tmp_path / "u.h5"
    code = f"import amber, {name} as c\namber.dump({{'z': c.Zeta(1)}}, {str(path)!r})\n"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    marker.unlink()
    with h5py.File(path, "r+") as f:
        f.attrs["amber.nodes"] = "[]"
    with pytest.raises(amber.UntrustedTypeError) as ei:
        amber.load(path)
    assert ei.value.untrusted == (f"{name}.Zeta",)
    assert name not in sys.modules and not marker.exists()


# ---------------------------------------------------------------------------------------
# atomic writes
# ---------------------------------------------------------------------------------------


def test_failed_dump_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "keep.h5"
    amber.dump({"v": 1}, path)
    before = path.read_bytes()
    with pytest.raises(amber.UnsupportedTypeError) as ei:
        amber.dump({"a": np.arange(3), "b": {"c": [1, lambda: 0]}}, path)
    assert ei.value.path == "root['b']['c'][1]"
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.h5"]
    with pytest.raises(amber.StorageError):
        amber.dump({"a": 1}, tmp_path / "no" / "such" / "dir.h5")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.h5"]


def test_durable_dump(tmp_path: Path) -> None:
    amber.dump({"a": np.arange(3)}, tmp_path / "d.h5", durable=True)
    assert_same({"a": np.arange(3)}, amber.load(tmp_path / "d.h5"))


# ---------------------------------------------------------------------------------------
# malformed files
# ---------------------------------------------------------------------------------------


def _amber_file(tmp_path: Path) -> Path:
    path = tmp_path / "good.h5"
    amber.dump({"tiles": tiles(3), "cfg": {"lr": 0.5}, "s": {1, 2}, "l": [1, "a", None]}, path)
    return path


def _edit(path: Path, fn: Any) -> Path:
    with h5py.File(path, "r+") as f:
        fn(f)
    return path


MALFORMED = {
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 3]),
    "header_only": lambda p: p.write_bytes(p.read_bytes()[:100]),
    "garbage_after_signature": lambda p: p.write_bytes(HDF5_MAGIC + os.urandom(5000)),
    "zeroed_middle": lambda p: p.write_bytes(p.read_bytes()[:2000] + bytes(3000) + p.read_bytes()[5000:]),
    "bad_kind": lambda p: _edit(p, lambda f: f["tiles"].attrs.__setitem__("amber.kind", "spaceship")),
    "bad_kind_bytes": lambda p: _edit(p, lambda f: f["tiles"].attrs.__setitem__("amber.kind", b"\xff\xfe")),
    "value_kind_below_root": lambda p: _edit(p, lambda f: f["cfg"].attrs.__setitem__("amber.kind", "value")),
    "missing_member": lambda p: _edit(p, lambda f: f["tiles"].__delitem__("1")),
    "bad_len": lambda p: _edit(p, lambda f: f["tiles"].attrs.__setitem__("amber.len", 7)),
    "no_len": lambda p: _edit(p, lambda f: f["tiles"].attrs.__delitem__("amber.len")),
    "renamed_member": lambda p: _edit(p, lambda f: f["tiles"].move("2", "x")),
    "bad_scalars_json": lambda p: _edit(p, lambda f: f["cfg"].attrs.__setitem__("amber.scalars", "{not json")),
    "bad_scalar_mark": lambda p: _edit(p, lambda f: f["cfg"].attrs.__setitem__("amber.scalars", '{"lr": "dragon"}')),
    "mark_mismatch": lambda p: _edit(p, lambda f: f["cfg"].attrs.__setitem__("amber.scalars", '{"lr": "none"}')),
    "unmarked_array_attr": lambda p: _edit(p, lambda f: f["cfg"].attrs.__setitem__("x", np.arange(3))),
    "bad_keys": lambda p: _edit(p, lambda f: f.attrs.__setitem__("amber.keys", "mmz")),
    "node_corrupt_bytes": lambda p: _edit(p, lambda f: f["s"].__setitem__(slice(0, 8), np.zeros(8, np.uint8))),
    "node_truncated": lambda p: _edit(p, lambda f: (f.__delitem__("s"), f.__setitem__("s", np.zeros(10, np.uint8)),
                                                    f["s"].attrs.__setitem__("amber.kind", "node"))),
    "node_wrong_dtype": lambda p: _edit(p, lambda f: (f.__delitem__("s"), f.__setitem__("s", np.zeros(10, np.float32)),
                                                      f["s"].attrs.__setitem__("amber.kind", "node"))),
    "bad_nodes_attr": lambda p: _edit(p, lambda f: f.attrs.__setitem__("amber.nodes", '{"a": 1}')),
    "nodes_names_an_array": lambda p: _edit(p, lambda f: f.attrs.__setitem__("amber.nodes", '["/tiles/0"]')),
    "bad_env": lambda p: _edit(p, lambda f: f.attrs.__setitem__("amber.env", "{")),
    "bad_version": lambda p: _edit(p, lambda f: f.attrs.__setitem__("amber.version", "one")),
    "other_format": lambda p: _edit(p, lambda f: f.attrs.__setitem__("amber.format", "zarr")),
    "bad_dtype_attr": lambda p: _edit(p, lambda f: f["tiles/0"].attrs.__setitem__("amber.dtype", "<f8")),
    "bad_order_attr": lambda p: _edit(p, lambda f: f["tiles/0"].attrs.__setitem__("amber.order", "Q")),
    "list_dataset_no_item": lambda p: _edit(p, lambda f: f["tiles/0"].attrs.__setitem__("amber.kind", "list")),
    "str_kind_on_array": lambda p: _edit(p, lambda f: f["tiles/0"].attrs.__setitem__("amber.kind", "str")),
    "tuple_contains_itself": lambda p: _edit(p, lambda f: (f.__setitem__("t", f["tiles"]),
                                                           f["tiles"].attrs.__setitem__("amber.kind", "tuple"),
                                                           f["tiles"].__delitem__("2"),
                                                           f["tiles"].__setitem__("2", f["tiles"]))),
}


@pytest.mark.parametrize("damage", list(MALFORMED), ids=list(MALFORMED))
def test_malformed_files_raise_amber_errors(damage: str, tmp_path: Path) -> None:
    path = _amber_file(tmp_path)
    MALFORMED[damage](path)
    with pytest.raises(amber.AmberError) as ei:
        amber.load(path)
    assert isinstance(ei.value, (amber.FormatError, amber.VersionError)), type(ei.value)
    assert "good.h5" in str(ei.value)
    # lazy access: refused when opened, or when the damaged part is read
    try:
        with amber.open(path) as f:
            f.read()
    except amber.AmberError:
        pass
    else:  # pragma: no cover
        raise AssertionError("the damage went unnoticed")


def test_newer_layout_version_is_refused(tmp_path: Path) -> None:
    path = _edit(_amber_file(tmp_path), lambda f: f.attrs.__setitem__("amber.version", "2.0"))
    with pytest.raises(amber.VersionError, match="upgrade amber"):
        amber.load(path)


def test_errors_name_the_hdf5_path(tmp_path: Path) -> None:
    path = _edit(_amber_file(tmp_path), lambda f: f["tiles"].__delitem__("1"))
    with pytest.raises(amber.CorruptFileError, match=r"/tiles"):
        amber.load(path)
    path = _edit(_amber_file(tmp_path), lambda f: f["s"].__setitem__(slice(0, 8), np.zeros(8, np.uint8)))
    with pytest.raises(amber.CorruptFileError, match=r"/s"):
        amber.load(path)


def test_not_hdf5_at_all(tmp_path: Path) -> None:
    path = tmp_path / "n.h5"
    path.write_bytes(b"hello")
    with pytest.raises(amber.AmberError):
        load_hdf5(str(path), name="n.h5")
    with pytest.raises(amber.AmberError):
        open_hdf5(str(path), name="n.h5")
    with pytest.raises(FileNotFoundError):
        load_hdf5(str(tmp_path / "missing.h5"), name="missing.h5")


def test_ordered_dict_and_subclasses_stay_exact(tmp_path: Path) -> None:
    obj = {"od": collections.OrderedDict(b=1, a=2), "dd": collections.defaultdict(list, {"x": [1]}),
           "c": collections.Counter("abca")}
    assert_same(obj, rt(obj, tmp_path))


def test_random_damage_gives_amber_errors_only(tmp_path: Path) -> None:
    """Seeded byte flips, mostly in the first 12 kB where HDF5 keeps its index."""
    import random

    src = tmp_path / "src.h5"
    amber.dump({"tiles": tiles(2), "cfg": {"lr": 0.5, "name": "x", "n": [1, 2]}, "s": {1, 2},
                "u": np.array(["ab", "c"]), "big": np.arange(5000.0)}, src)
    data = src.read_bytes()
    rng = random.Random(1234)
    path = tmp_path / "damaged.h5"
    for _ in range(60):
        b = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(min(len(b), 12000)) if rng.random() < 0.8 else rng.randrange(len(b))] = rng.randrange(256)
        path.write_bytes(bytes(b))
        for op in (amber.load, lambda p: amber.open(p).read(), lambda p: str(amber.inspect(p))):
            try:
                op(path)
            except amber.AmberError:
                pass
