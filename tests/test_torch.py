"""PyTorch handlers: tensors of every dtype, views and shared storages, Parameters, state
dicts, optimizer state, sparse tensors, small torch values, ``map_location``, ``mmap=True``,
and hostile tensor nodes (every malformed node is a CorruptFileError, never a crash).
"""

from __future__ import annotations

import io
import os
import re
import warnings
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import amber
from _hostile import T, parse
from amber.handlers._torch import DTYPES

SETTINGS = settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
#: dtypes whose creation makes torch warn (pytest turns warnings into errors)
QUIET = pytest.mark.filterwarnings("ignore:ComplexHalf support is experimental")
ALL_DTYPES = sorted(DTYPES)


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------


def roundtrip(obj: Any, **kw: Any) -> Any:
    return amber.loads(amber.dumps(obj), **kw)


def storage_bytes(t: torch.Tensor) -> bytes:
    st_ = t.untyped_storage()
    if not st_.nbytes():
        return b""
    return np.asarray(torch.empty(0, dtype=torch.uint8).set_(st_)).tobytes()


def assert_same(a: torch.Tensor, b: torch.Tensor) -> None:
    """Same type, dtype, view geometry, grad flag, device and bytes (bit for bit)."""
    assert type(a) is type(b)
    assert a.dtype == b.dtype and a.shape == b.shape, f"{a.dtype}{tuple(a.shape)} != {b.dtype}{tuple(b.shape)}"
    assert a.stride() == b.stride() and a.storage_offset() == b.storage_offset()
    assert a.requires_grad == b.requires_grad and a.device == b.device
    if a.device.type != "meta":
        assert storage_bytes(a) == storage_bytes(b)


def random_tensor(dtype: torch.dtype, shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    """Random bits of any dtype (valid bools for bool)."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape)) if shape else 1
    if not n:
        return torch.empty(shape, dtype=dtype)
    if dtype is torch.bool:
        return torch.from_numpy(rng.integers(0, 2, n).astype(bool)).reshape(shape)
    raw = rng.integers(0, 256, n * dtype.itemsize, dtype=np.uint8)
    return torch.from_numpy(raw).view(dtype).reshape(shape)


def same_memory(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def _train_step(m: torch.nn.Module, o: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> None:
    o.zero_grad()
    torch.nn.functional.mse_loss(m(x), y).backward()
    o.step()


# ---------------------------------------------------------------------------------------
# tensors: dtypes, views, sharing
# ---------------------------------------------------------------------------------------


@QUIET
@pytest.mark.parametrize("name", ALL_DTYPES)
def test_every_dtype_round_trips(name: str) -> None:
    t = random_tensor(DTYPES[name], (3, 5), seed=len(name))
    out = roundtrip({"t": t, "scalar": t[1, 2].clone(), "empty": t[:0]})
    assert_same(t, out["t"])
    assert_same(t[1, 2].clone(), out["scalar"])
    assert out["empty"].shape == (0, 5) and out["empty"].dtype == t.dtype


def test_values_and_special_floats() -> None:
    t = torch.tensor([0.0, -0.0, float("inf"), -float("inf"), float("nan"), 1e-45, 3.4e38])
    for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.complex64, torch.complex128):
        x = t.to(dtype)
        out = roundtrip(x)
        assert_same(x, out)
        assert torch.equal(torch.isnan(out), torch.isnan(x))


@pytest.mark.parametrize(
    "make",
    [
        lambda b: b.t(),
        lambda b: b[1:, ::2],
        lambda b: b[2],
        lambda b: b[:, 3],
        lambda b: b.unsqueeze(0).expand(4, 4, 6),
        lambda b: b.reshape(2, 2, 6).permute(2, 0, 1),
        lambda b: b.narrow(1, 2, 3),
        lambda b: b[1:1],
        lambda b: b[3, 5],
        lambda b: b.as_strided((2, 2), (7, 1), 3),
    ],
    ids=["t", "step", "row", "col", "expand", "permute", "narrow", "empty", "scalar", "as_strided"],
)
def test_views_keep_their_geometry(make: Callable[[torch.Tensor], torch.Tensor]) -> None:
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    v = make(base)
    out = roundtrip(v)
    assert_same(v, out)
    assert torch.equal(out, v)


def test_views_share_storage_after_load() -> None:
    x = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    obj = {"x": x, "xt": x.t(), "row": x[1], "bits": x.view(torch.int32), "flat": x.view(-1)[2:]}
    out = roundtrip(obj)
    for k, v in obj.items():
        assert_same(v, out[k])
        assert same_memory(out["x"], out[k])
    out["x"][1, 0] = 100.0
    assert out["row"][0] == 100.0 and out["xt"][0, 1] == 100.0
    assert out["bits"][1, 0] == torch.tensor(100.0).view(torch.int32)
    # the storage is written once
    assert len(parse(amber.dumps(obj)).blobs) == 1


def test_same_tensor_twice_is_one_object() -> None:
    w = torch.randn(4, 4)
    out = roundtrip({"embed": w, "lm_head": w, "list": [w]})
    assert out["embed"] is out["lm_head"] is out["list"][0]


def test_separate_storages_stay_separate() -> None:
    a = torch.zeros(4)
    b = a.clone()
    out = roundtrip([a, b])
    assert not same_memory(out[0], out[1])


def test_conjugate_and_negative_views_are_resolved() -> None:
    z = torch.tensor([1 + 2j, -3 - 4j], dtype=torch.complex64)
    c = z.conj()
    n = torch._neg_view(z)
    assert c.is_conj() and n.is_neg()
    out = roundtrip({"c": c, "n": n, "z": z})
    assert not out["c"].is_conj() and not out["n"].is_neg()
    assert torch.equal(out["c"], z.conj().resolve_conj())
    assert torch.equal(out["n"], -z)
    assert torch.equal(out["z"], z)


def test_loaded_tensors_are_writable_and_fresh(tmp_path: Path) -> None:
    t = torch.arange(10.0)
    p = tmp_path / "t.amber"
    amber.dump(t, p)
    a, b = amber.load(p), amber.load(p)
    a += 1  # no warning (pytest turns them into errors), no crash
    assert torch.equal(b, torch.arange(10.0))
    assert not same_memory(a, b)


def test_big_tensor_loads_into_fresh_memory(tmp_path: Path) -> None:
    # above the whole-file read size: read blob by blob
    t = torch.randn(3 << 20)
    p = tmp_path / "big.amber"
    amber.dump({"t": t, "half": t[: 1 << 20]}, p)
    out = amber.load(p)
    assert torch.equal(out["t"], t) and same_memory(out["t"], out["half"])
    out["t"].mul_(2)


@pytest.mark.parametrize("compress", ["zstd", "lz4", True])
def test_compressed(compress: Any) -> None:
    obj = {"f": torch.randn(100, 30), "c": torch.randn(50, dtype=torch.complex64), "b": torch.randn(40).bfloat16()}
    out = amber.loads(amber.dumps(obj, compress=compress))
    for k in obj:
        assert_same(obj[k], out[k])


# ---------------------------------------------------------------------------------------
# autograd, Parameters, state dicts, optimizers
# ---------------------------------------------------------------------------------------


def test_requires_grad_kept_grad_not_stored() -> None:
    leaf = torch.randn(3, requires_grad=True)
    (leaf * 2).sum().backward()
    assert leaf.grad is not None
    nonleaf = leaf * 3
    out = roundtrip({"leaf": leaf, "nonleaf": nonleaf, "plain": torch.ones(2)})
    assert out["leaf"].requires_grad and out["leaf"].is_leaf and out["leaf"].grad is None
    assert out["nonleaf"].requires_grad and out["nonleaf"].is_leaf
    assert torch.equal(out["nonleaf"], nonleaf.detach())
    assert not out["plain"].requires_grad


@pytest.mark.parametrize("requires_grad", [True, False])
def test_parameters(requires_grad: bool) -> None:
    p = torch.nn.Parameter(torch.randn(4, 3, dtype=torch.bfloat16), requires_grad=requires_grad)
    out = roundtrip({"p": p, "data": p.data, "detached": p.detach()[1]})
    assert type(out["p"]) is torch.nn.Parameter and out["p"].requires_grad is requires_grad
    assert_same(p, out["p"])
    assert type(out["data"]) is torch.Tensor
    assert same_memory(out["p"], out["data"]) and same_memory(out["p"], out["detached"])


def test_parameter_of_integers_and_sparse() -> None:
    p = torch.nn.Parameter(torch.arange(5), requires_grad=False)
    sp = torch.nn.Parameter(torch.eye(3).to_sparse())
    out = roundtrip([p, sp])
    assert type(out[0]) is torch.nn.Parameter and not out[0].requires_grad and torch.equal(out[0], p)
    assert type(out[1]) is torch.nn.Parameter and out[1].requires_grad and out[1].is_sparse
    assert torch.equal(out[1].to_dense(), torch.eye(3))


def test_tensor_attributes_round_trip() -> None:
    t = torch.ones(2)
    t.note = {"kind": "mask"}
    out = roundtrip(t)
    assert out.note == {"kind": "mask"}


def test_module_state_dict() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.LazyLinear(5)
    )
    x = torch.randn(2, 3, 8, 8)
    model(x)  # materialise the lazy layer, update running stats
    model.eval()
    sd = model.state_dict()
    out = roundtrip(sd)
    assert type(out) is OrderedDict and list(out) == list(sd)
    for k in sd:
        assert_same(sd[k], out[k])
    clone = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(144, 5)
    ).eval()
    clone.load_state_dict(out)
    with torch.no_grad():
        assert torch.equal(clone(x), model(x))


def test_optimizer_state_dict_after_a_step() -> None:
    torch.manual_seed(0)

    def make() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        m = torch.nn.Linear(6, 3)
        return m, torch.optim.Adam(m.parameters(), lr=0.01)

    model, opt = make()
    x, y = torch.randn(8, 6), torch.randn(8, 3)

    _train_step(model, opt, x, y)
    sd = opt.state_dict()
    out = roundtrip({"model": model.state_dict(), "opt": sd})
    assert out["opt"]["param_groups"] == sd["param_groups"]
    for i, s in sd["state"].items():
        for k, v in s.items():
            assert_same(v, out["opt"]["state"][i][k])
    model2, opt2 = make()
    model2.load_state_dict(out["model"])
    opt2.load_state_dict(out["opt"])
    _train_step(model, opt, x, y)
    _train_step(model2, opt2, x, y)
    for a, b in zip(model.parameters(), model2.parameters()):
        assert torch.equal(a, b)


# ---------------------------------------------------------------------------------------
# whole modules and optimizers (through the generic object reducer)
# ---------------------------------------------------------------------------------------


class SmallCNN(torch.nn.Module):
    """A user module: loading it needs ``trusted=``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.fc = torch.nn.Linear(8 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.max_pool2d(torch.relu(self.bn(self.conv(x))), 2)
        return self.fc(x.flatten(1))


def _check_module(model: torch.nn.Module, out: torch.nn.Module, x: torch.Tensor) -> None:
    assert type(out) is type(model) and out.training == model.training
    for (ka, a), (kb, b) in zip(model.state_dict(keep_vars=True).items(), out.state_dict(keep_vars=True).items()):
        assert ka == kb
        assert_same(a, b)
    with torch.no_grad():
        assert torch.equal(out(x), model(x))


def test_sequential_mlp() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Dropout(0.1), torch.nn.Linear(16, 3))
    model.eval()
    out = roundtrip(model)  # torch.nn modules are trusted by default
    _check_module(model, out, torch.randn(4, 6))
    assert all(type(p) is torch.nn.Parameter and p.requires_grad for p in out.parameters())


def test_cnn_with_batchnorm_sequential_and_user_class(tmp_path: Path) -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 3, 8, 8)
    seq = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 3),
    )
    cnn = SmallCNN()
    for m in (seq, cnn):
        m(x)  # running statistics move
        m.eval()
    _check_module(seq, roundtrip(seq), x)
    p = tmp_path / "cnn.amber"
    amber.dump(cnn, p)
    name = f"{SmallCNN.__module__}.SmallCNN"
    with pytest.raises(amber.UntrustedTypeError, match=re.escape(name)):
        amber.load(p)
    _check_module(cnn, amber.load(p, trusted=[name]), x)
    _check_module(cnn, amber.load(p, trusted=[name], mmap=True), x)
    meta = amber.load(p, trusted=[name], map_location="meta")
    assert all(t.is_meta for t in meta.state_dict().values())


def test_model_and_optimizer_together_keep_training_identically() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    x, y = torch.randn(5, 4), torch.randn(5, 2)

    _train_step(model, opt, x, y)
    out = roundtrip({"model": model, "opt": opt})
    model2, opt2 = out["model"], out["opt"]
    assert opt2.param_groups[0]["params"][0] is model2[0].weight  # one object, as saved
    for _ in range(2):
        _train_step(model, opt, x, y)
        _train_step(model2, opt2, x, y)
    for a, b in zip(model.parameters(), model2.parameters()):
        assert torch.equal(a, b)


# ---------------------------------------------------------------------------------------
# sparse, meta, small torch values
# ---------------------------------------------------------------------------------------


def _sparse_samples() -> dict[str, torch.Tensor]:
    dense = torch.tensor([[0.0, 1.5, 0.0, 0.0], [2.0, 0.0, 0.0, -3.0], [0.0, 0.0, 0.0, 0.0], [4.0, 0.0, 5.0, 0.0]])
    uncoalesced = torch.sparse_coo_tensor(
        torch.tensor([[1, 0, 1], [2, 0, 2]]), torch.tensor([1.0, 2.0, 3.0]), (2, 3), check_invariants=True
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Sparse CSR tensor support is in beta state"
        return {
            "coo": dense.to_sparse(),
            "uncoalesced": uncoalesced,
            "hybrid": torch.randn(3, 2, 4).to_sparse(1),
            "csr": dense.to_sparse_csr(),
            "csc": dense.to_sparse_csc(),
            "bsr": dense.to_sparse_bsr((2, 2)),
            "bsc": dense.to_sparse_bsc((2, 2)),
            "int_csr": dense.int().to_sparse_csr(),
        }


def test_sparse_tensors() -> None:
    samples = _sparse_samples()
    out = roundtrip(samples)
    for k, t in samples.items():
        o = out[k]
        assert o.layout == t.layout and o.shape == t.shape and o.dtype == t.dtype, k
        assert torch.equal(o.to_dense(), t.to_dense()), k
        if t.layout == torch.sparse_coo:
            assert o.is_coalesced() == t.is_coalesced()
            assert torch.equal(o._indices(), t._indices()) and torch.equal(o._values(), t._values())


def test_sparse_requires_grad() -> None:
    t = torch.eye(3).to_sparse().requires_grad_()
    out = roundtrip(t)
    assert out.requires_grad and out.is_sparse


def test_meta_tensors() -> None:
    m = torch.empty(5, 7, device="meta")
    p = torch.nn.Parameter(torch.empty(3, device="meta"))
    data = amber.dumps({"m": m, "t": m.t(), "p": p})
    assert len(parse(data).blobs) == 0
    out = amber.loads(data)
    assert out["m"].is_meta and out["m"].shape == (5, 7) and out["t"].stride() == (1, 7)
    assert type(out["p"]) is torch.nn.Parameter and out["p"].is_meta


def test_small_torch_values() -> None:
    g = torch.Generator().manual_seed(1234)
    torch.rand(3, generator=g)
    obj = {
        "size": torch.Size([2, 3, 0]),
        "empty_size": torch.Size([]),
        "view_size": torch.Size([-1, 4]),
        "dtypes": [DTYPES[n] for n in ALL_DTYPES],
        "devices": [torch.device("cpu"), torch.device("cuda", 1), torch.device("meta")],
        "formats": [torch.contiguous_format, torch.channels_last, torch.channels_last_3d, torch.preserve_format],
        "layouts": [torch.strided, torch.sparse_coo, torch.sparse_csr],
        "gen": g,
    }
    out = roundtrip(obj)
    for k in ("size", "empty_size", "view_size", "dtypes", "devices", "formats", "layouts"):
        assert out[k] == obj[k] and type(out[k]) is type(obj[k])
    assert type(out["size"]) is torch.Size
    assert torch.equal(torch.rand(5, generator=out["gen"]), torch.rand(5, generator=g))


@pytest.mark.parametrize(
    "make",
    [
        lambda: torch.quantize_per_tensor(torch.randn(3), 0.1, 0, torch.qint8),
        lambda: torch.nested.nested_tensor([torch.ones(2), torch.ones(3)]),
        lambda: torch.empty(2, dtype=torch.bits8),
    ],
    ids=["quantized", "nested", "bits8"],
)
def test_unsupported_tensors_are_refused_clearly(make: Callable[[], torch.Tensor]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nested tensors are a prototype
        t = make()
    with pytest.raises(amber.UnsupportedTypeError, match=r"root\['x'\]"):
        amber.dumps({"x": t})


def test_inspect_and_lazy_open(tmp_path: Path) -> None:
    p = tmp_path / "sd.amber"
    sd = {"w": torch.randn(3, 4), "b": torch.zeros(3)}
    amber.dump(sd, p)
    info = amber.inspect(p)
    assert "torch.Tensor" in info.types and "torch" in info.env["packages"]
    str(info)
    with amber.open(p) as f:
        assert sorted(f.keys()) == ["b", "w"]
        assert torch.equal(f["w"], sd["w"])


# ---------------------------------------------------------------------------------------
# map_location
# ---------------------------------------------------------------------------------------


def _model_file(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    obj = {"w": torch.randn(4, 4), "p": torch.nn.Parameter(torch.randn(3)), "sp": torch.eye(2).to_sparse()}
    obj["wt"] = obj["w"].t()
    p = tmp_path / "m.amber"
    amber.dump(obj, p)
    return p, obj


@pytest.mark.parametrize("where", ["cpu", torch.device("cpu"), {"cpu": "cpu"}, {"cuda:0": "meta"}])
def test_map_location_cpu(tmp_path: Path, where: Any) -> None:
    p, obj = _model_file(tmp_path)
    out = amber.load(p, map_location=where)
    for k in ("w", "p", "wt"):
        assert_same(obj[k], out[k])
    assert same_memory(out["w"], out["wt"])


@pytest.mark.parametrize("where", ["meta", torch.device("meta"), {"cpu": "meta"}, {"cpu": torch.device("meta")}])
def test_map_location_meta_reads_no_bytes(tmp_path: Path, where: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from amber.container._reader import ContainerReader

    p, obj = _model_file(tmp_path)

    def no_reads(*a: Any, **k: Any) -> Any:
        raise AssertionError("map_location='meta' read a blob")

    monkeypatch.setattr(ContainerReader, "read", no_reads)
    monkeypatch.setattr(ContainerReader, "mapped", no_reads)
    out = amber.load(p, map_location=where, mmap=True)
    for k in ("w", "p", "wt", "sp"):
        assert out[k].is_meta and out[k].shape == obj[k].shape and out[k].dtype == obj[k].dtype
    assert type(out["p"]) is torch.nn.Parameter and out["p"].requires_grad
    assert out["wt"].stride() == obj["wt"].stride()


def test_map_location_callable(tmp_path: Path) -> None:
    p, obj = _model_file(tmp_path)
    seen: list[tuple[int, str]] = []

    def keep(storage: Any, location: str) -> Any:
        seen.append((storage.nbytes(), location))
        return storage

    out = amber.load(p, map_location=keep)
    assert_same(obj["w"], out["w"])
    assert seen and all(loc == "cpu" for _, loc in seen)
    out = amber.load(p, map_location=lambda s, loc: None)  # None: the default place
    assert_same(obj["p"], out["p"])
    out = amber.load(p, map_location=lambda s, loc: torch.UntypedStorage(s.nbytes(), device="meta"))
    assert out["w"].is_meta


def test_map_location_errors(tmp_path: Path) -> None:
    p, _ = _model_file(tmp_path)
    with pytest.raises(amber.DecodeError, match="map_location must be"):
        amber.load(p, map_location=3.5)
    with pytest.raises(amber.DecodeError, match="map_location names no device"):
        amber.load(p, map_location="no-such-device")
    with pytest.raises(amber.DecodeError, match="map_location returned"):
        amber.load(p, map_location=lambda s, loc: "nope")


def _with_device(data: bytes, device: str) -> bytes:
    """The file with its (only) storage node claiming it was saved on ``device``."""
    p = parse(data)
    tree = p.tree()
    tree[1]["storage"][1]["device"] = device
    return p.rebuild(tree=tree)


def test_saved_on_an_absent_device() -> None:
    t = torch.arange(6.0)
    data = _with_device(amber.dumps(t), "cuda:0")
    with pytest.raises(amber.DecodeError, match="map_location='cpu'") as info:
        amber.loads(data)
    assert not isinstance(info.value, amber.CorruptFileError)
    assert torch.equal(amber.loads(data, map_location="cpu"), t)
    assert torch.equal(amber.loads(data, map_location={"cuda:0": "cpu"}), t)
    assert amber.loads(data, map_location={"cuda:0": "meta"}).is_meta


# ---------------------------------------------------------------------------------------
# mmap
# ---------------------------------------------------------------------------------------


def _mapped_ranges(path: Path) -> list[tuple[int, int]]:
    out = []
    real = os.path.realpath(path)
    with open("/proc/self/maps") as f:
        for line in f:
            if line.rstrip().endswith(real):
                lo, hi = line.split()[0].split("-")
                out.append((int(lo, 16), int(hi, 16)))
    return out


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="needs /proc/self/maps")
def test_mmap_tensors_are_backed_by_the_file_and_copy_on_write(tmp_path: Path) -> None:
    p = tmp_path / "m.amber"
    x = torch.randn(64, 64)
    obj = {"x": x, "xt": x.t(), "p": torch.nn.Parameter(torch.randn(1000)), "b": torch.randn(8).bfloat16()}
    amber.dump(obj, p)
    out = amber.load(p, mmap=True)
    ranges = _mapped_ranges(p)
    for k, v in obj.items():
        assert_same(v, out[k])
        ptr = out[k].untyped_storage().data_ptr()
        assert any(lo <= ptr < hi for lo, hi in ranges), f"{k} is not in a mapping of the file"
    assert same_memory(out["x"], out["xt"])
    out["x"].zero_()  # writable without a warning; the write stays in this process
    assert torch.equal(out["xt"], torch.zeros(64, 64))
    again = amber.load(p, mmap=True)
    assert torch.equal(again["x"], x)
    del out, again


def test_mmap_survives_file_removal(tmp_path: Path) -> None:
    p = tmp_path / "m.amber"
    t = torch.randn(1000)
    amber.dump(t, p)
    out = amber.load(p, mmap=True)
    p.unlink()
    assert torch.equal(out, t)


@pytest.mark.parametrize("compress", ["zstd", None])
def test_mmap_compressed_and_non_file_sources(tmp_path: Path, compress: Any) -> None:
    t = {"a": torch.randn(300), "b": torch.arange(10)}
    p = tmp_path / "c.amber"
    amber.dump(t, p, compress=compress)
    for out in (amber.load(p, mmap=True), amber.load(io.BytesIO(p.read_bytes()), mmap=True)):
        for k in t:
            assert_same(t[k], out[k])
        out["a"] += 1


# ---------------------------------------------------------------------------------------
# property-based round trip
# ---------------------------------------------------------------------------------------

_HYPO_DTYPES = [n for n in ALL_DTYPES if n != "complex32"]


@st.composite
def tensor_views(draw: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(base, view) for a random dtype, shape and view operation."""
    name = draw(st.sampled_from(_HYPO_DTYPES))
    shape = tuple(draw(st.lists(st.integers(0, 5), min_size=0, max_size=3)))
    base = random_tensor(DTYPES[name], shape, seed=draw(st.integers(0, 1000)))
    how = draw(st.sampled_from(["same", "t", "step", "select", "expand", "offset", "flip", "strided", "bits"]))
    v = base
    if how == "t" and base.ndim >= 2:
        v = base.transpose(0, base.ndim - 1)
    elif how == "step" and base.ndim:
        v = base[..., ::2]
    elif how == "select" and base.ndim and base.shape[0]:
        v = base[draw(st.integers(0, base.shape[0] - 1))]
    elif how == "expand":
        v = base.unsqueeze(0).expand(3, *base.shape)
    elif how == "offset" and base.numel() > 1:
        v = base.reshape(-1)[1:]
    elif how == "flip" and base.ndim:
        v = base.flip(0)  # a copy: no negative strides in torch
    elif how == "strided" and base.numel() >= 4:
        v = base.reshape(-1).as_strided((2, 2), (1, 2), 0)
    elif how == "bits" and base.ndim and base.is_contiguous() and base.element_size() == 4 and base.dtype != torch.int32:
        v = base.view(torch.int32)
    return base, v


@SETTINGS
@given(tensor_views(), st.sampled_from([None, None, "zstd"]), st.booleans())
def test_random_tensors_round_trip(tmp_path_factory: Any, bv: tuple[torch.Tensor, torch.Tensor], compress: Any,
                                   mmap: bool) -> None:
    base, v = bv
    if mmap:
        p = tmp_path_factory.mktemp("t") / "t.amber"
        amber.dump({"base": base, "view": v}, p, compress=compress)
        out = amber.load(p, mmap=True)
    else:
        out = amber.loads(amber.dumps({"base": base, "view": v}, compress=compress))
    assert_same(base, out["base"])
    assert_same(v, out["view"])
    assert same_memory(out["base"], out["view"]) == same_memory(base, v)


# ---------------------------------------------------------------------------------------
# hostile nodes
# ---------------------------------------------------------------------------------------


def _tree(obj: Any) -> tuple[Any, Any]:
    p = parse(amber.dumps(obj))
    return p, p.tree()


def _tensor_file(edit: Callable[[dict[str, Any], dict[str, Any]], None], t: torch.Tensor | None = None) -> bytes:
    """A file of one tensor whose tensor map and storage map ``edit`` changed."""
    p, tree = _tree(torch.arange(12, dtype=torch.float32).reshape(3, 4) if t is None else t)
    edit(tree[1], tree[1]["storage"][1])
    return p.rebuild(tree=tree)


def _set(key: str, value: Any, where: str = "t") -> Callable[[dict[str, Any], dict[str, Any]], None]:
    def edit(tm: dict[str, Any], sm: dict[str, Any]) -> None:
        (tm if where == "t" else sm)[key] = value

    return edit


def _drop(key: str, where: str = "t") -> Callable[[dict[str, Any], dict[str, Any]], None]:
    def edit(tm: dict[str, Any], sm: dict[str, Any]) -> None:
        del (tm if where == "t" else sm)[key]

    return edit


HOSTILE_TENSORS = {
    "shape beyond storage": _set("shape", [4, 4]),
    "huge shape": _set("shape", [1 << 40, 1 << 40]),
    "shape over 2**62": _set("shape", [1 << 63, 1]),
    "stride beyond storage": _set("stride", [4, 2]),
    "huge stride": _set("stride", [1 << 62, 1]),
    "negative stride": _set("stride", [-4, 1]),
    "offset beyond storage": _set("offset", 1),
    "offset of empty view beyond storage": lambda tm, sm: tm.update(shape=[0, 4], offset=100),
    "huge offset": _set("offset", 1 << 62),
    "negative offset": _set("offset", -1),
    "float offset": _set("offset", 0.0),
    "stride length": _set("stride", [4]),
    "too many dims": lambda tm, sm: tm.update(shape=[1] * 65, stride=[1] * 65),
    "shape not a list": _set("shape", "3,4"),
    "bool in shape": _set("shape", [True, 4]),
    "unknown dtype": _set("dtype", "float128"),
    "quantized dtype": _set("dtype", "qint8"),
    "dtype not a string": _set("dtype", 5),
    "wider dtype": _set("dtype", "float64"),
    "missing dtype": _drop("dtype"),
    "missing storage": _drop("storage"),
    "storage is an int": _set("storage", 7),
    "storage is a numpy node": _set("storage", [T("numpy.dtype"), "<f4"]),
    "storage is a tensor": lambda tm, sm: tm.update(storage=[T("torch.Tensor"), dict(tm)]),
    "requires_grad not bool": _set("requires_grad", 1),
    "int requires_grad": lambda tm, sm: tm.update(dtype="int32", requires_grad=True),
    "unknown layout": _set("layout", "mkldnn"),
    "attrs with dunder": _set("attrs", [T("map.plain"), ["__class__"], [1]]),
    "attrs not a dict": _set("attrs", 3),
    "attrs shadowing a method": _set("attrs", [T("map.plain"), ["numpy"], [1]]),
    "attrs shadowing a property": _set("attrs", [T("map.plain"), ["grad"], [1]]),
    "storage size != blob": _set("nbytes", 47, "s"),
    "storage size larger": _set("nbytes", 1 << 40, "s"),
    "negative storage size": _set("nbytes", -1, "s"),
    "no blob": _drop("blob", "s"),
    "device garbage": _set("device", "gpu!!", "s"),
    "device unknown": _set("device", "warpdrive", "s"),
    "device not a string": _set("device", 0, "s"),
    "meta storage with a blob": _set("device", "meta", "s"),
}


@pytest.mark.parametrize("edit", list(HOSTILE_TENSORS.values()), ids=list(HOSTILE_TENSORS))
def test_hostile_tensor_nodes(edit: Callable[[dict[str, Any], dict[str, Any]], None]) -> None:
    data = _tensor_file(edit)
    with pytest.raises(amber.CorruptFileError):
        amber.loads(data)
    with pytest.raises(amber.CorruptFileError):
        amber.loads(data, map_location="meta")
    with pytest.raises(amber.AmberError):
        with amber.open(data) as f:
            f.read()


@pytest.mark.parametrize("blob", [5, "0", -1, None])
def test_storage_naming_no_blob(blob: Any) -> None:
    data = _tensor_file(_set("blob", blob, "s"))
    for kw in ({}, {"map_location": "meta"}):
        with pytest.raises(amber.FormatError, match="blob"):
            amber.loads(data, **kw)


def test_hostile_controls() -> None:
    """Edits that keep the node valid load fine (the hostile cases fail for their reason)."""
    t = amber.loads(_tensor_file(lambda tm, sm: tm.update(shape=[2, 2], stride=[1, 2], offset=8)))
    assert torch.equal(t, torch.tensor([[8.0, 10.0], [9.0, 11.0]]))
    t = amber.loads(_tensor_file(lambda tm, sm: tm.update(shape=[0, 4], offset=12)))
    assert t.shape == (0, 4)
    t = amber.loads(_tensor_file(lambda tm, sm: tm.update(dtype="int32")))
    assert t.dtype == torch.int32


@pytest.mark.parametrize(
    "node",
    [
        [T("torch.Tensor")],
        [T("torch.Tensor"), [1, 2]],
        [T("torch.Tensor"), {}, {}],
        [T("torch.storage"), "cpu"],
        [T("torch.nn.Parameter"), {"dtype": "float32"}],
        [T("torch.Size"), 1 << 63],
        [T("torch.Size"), "a"],
        [T("torch.dtype"), "qint8"],
        [T("torch.dtype")],
        [T("torch.layout"), "_mkldnn"],
        [T("torch.memory_format"), "weird"],
        [T("torch.device"), "cuda:-1"],
        [T("torch.device"), "x" * 100],
        [T("torch.device"), "warpdrive"],
        [T("torch.Generator"), "cpu", b"\x00" * 10],
        [T("torch.Generator"), "cuda", b""],
        [T("torch.Generator"), "cpu"],
    ],
)
def test_hostile_small_nodes(node: Any) -> None:
    p = parse(amber.dumps(1))
    with pytest.raises(amber.CorruptFileError):
        amber.loads(p.rebuild(tree=node))


def test_one_blob_cannot_back_two_storages() -> None:
    p, tree = _tree([torch.zeros(4), torch.ones(4)])
    items = tree[1:]
    items[1][1]["storage"][1]["blob"] = items[0][1]["storage"][1]["blob"]
    with pytest.raises(amber.CorruptFileError, match="used by two nodes"):
        amber.loads(p.rebuild(tree=tree))


def _sparse_file(t: torch.Tensor, edit: Callable[[Any], None]) -> bytes:
    p, tree = _tree(t)
    edit(tree[1])
    return p.rebuild(tree=tree)


def _to_meta(storage_map: dict[str, Any]) -> None:
    storage_map["device"] = "meta"
    del storage_map["blob"]


@pytest.mark.parametrize(
    "make",
    [
        # indices out of range: the shape shrinks under them
        lambda: _sparse_file(torch.eye(4).to_sparse(), lambda m: m.update(shape=[2, 2])),
        lambda: _sparse_file(torch.eye(4).to_sparse_csr(), lambda m: m.update(shape=[2, 4])),
        lambda: _sparse_file(torch.eye(4).to_sparse_csc(), lambda m: m.update(shape=[4, 2])),
        # claims to be coalesced when it is not
        lambda: _sparse_file(
            torch.sparse_coo_tensor(torch.tensor([[1, 0, 1]]), torch.tensor([1.0, 2.0, 3.0]), (2,), check_invariants=True),
            lambda m: m.update(coalesced=True),
        ),
        # parts that are not dense tensors
        lambda: _sparse_file(torch.eye(3).to_sparse(), lambda m: m.update(indices=5)),
        lambda: _sparse_file(torch.eye(3).to_sparse(), lambda m: m.update(values=[T("torch.Size"), 1])),
        lambda: _sparse_file(torch.eye(3).to_sparse(), lambda m: m.update(coalesced="yes")),
        lambda: _sparse_file(torch.eye(3).to_sparse_csr(), lambda m: m.pop("plain")),
        # parts on different devices (the values claim to be meta: unchecked if accepted)
        lambda: _sparse_file(torch.eye(3).to_sparse(), lambda m: _to_meta(m["values"][1]["storage"][1])),
        # compressed indices swapped with plain ones (not monotonic)
        lambda: _sparse_file(
            torch.tensor([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]).to_sparse_csr(),
            lambda m: m.update(compressed=m["plain"], plain=m["compressed"]),
        ),
    ],
)
def test_hostile_sparse_tensors(make: Callable[[], bytes]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Sparse CSR tensor support is in beta state"
        data = make()
    with pytest.raises(amber.CorruptFileError) as info:
        amber.loads(data)
    assert "sparse" in str(info.value) or "coalesced" in str(info.value)


@SETTINGS
@given(
    st.lists(st.integers(0, 1 << 20), min_size=0, max_size=4),
    st.lists(st.integers(0, 1 << 20), min_size=0, max_size=4),
    st.integers(0, 1 << 20),
    st.sampled_from(["float32", "float64", "uint8", "complex128", "bfloat16"]),
)
def test_random_geometry_is_checked_exactly(shape: list[int], stride: list[int], offset: int, dtype: str) -> None:
    """Any shape/stride/offset either fits the 48-byte storage (and every element reads) or
    is refused as corrupt: never an out-of-bounds read."""
    stride = (stride + [1] * len(shape))[: len(shape)]
    data = _tensor_file(lambda tm, sm: tm.update(shape=shape, stride=stride, offset=offset, dtype=dtype))
    itemsize = DTYPES[dtype].itemsize
    if 0 in shape:
        fits = offset * itemsize <= 48
    else:
        fits = (offset + sum((n - 1) * s for n, s in zip(shape, stride)) + 1) * itemsize <= 48
    if fits:
        t = amber.loads(data)
        assert list(t.shape) == shape and list(t.stride()) == stride
        if t.numel() <= 4096:  # stride 0 can make a huge tensor of one element
            t.clone()
    else:
        with pytest.raises(amber.CorruptFileError, match="needs|more than 2..62 elements"):
            amber.loads(data)


def test_inspect_shows_tensor_dtype_and_shape() -> None:
    import scipy.sparse as sp

    data = amber.dumps({"w": torch.zeros(3, 4), "s": sp.csr_matrix(np.eye(3))})
    text = str(amber.inspect(data))
    assert "'w': torch.Tensor float32 (3, 4)" in text
    assert "'s': scipy.sparse.csr_matrix sparse (3, 3)" in text
    tree = amber.inspect(data).tree
    assert tree["items"]["'w'"]["storage_nbytes"] == 48 if "'w'" in tree["items"] else tree["items"]["w"]["storage_nbytes"] == 48


@pytest.mark.parametrize("which", [0, 1, 2])
def test_damaged_tensor_bytes_fail_the_whole_load(tmp_path: Path, which: int) -> None:
    """Tensor bytes are checked after the reads (the hasher overlaps them): a flipped bit in
    any storage, first, middle or last, still fails the load before anything is returned."""
    sd = {f"w{i}": torch.arange(1_500_000, dtype=torch.float32) + i for i in range(3)}  # 6 MB each
    p = tmp_path / "sd.amber"
    amber.dump(sd, p)
    from amber.container._io import open_source
    from amber.container._reader import ContainerReader

    reader = ContainerReader(open_source(p))
    big = sorted((x for x in reader.blobs if x.nbytes > 1 << 20), key=lambda x: x.offset)[which]
    reader.close()
    raw = bytearray(p.read_bytes())
    raw[big.offset + big.nbytes - 5] ^= 0x10
    p.write_bytes(bytes(raw))
    with pytest.raises(amber.CorruptFileError, match=rf"blob {big.index}, chunk \d+ .*checksum mismatch"):
        amber.load(p)
    assert len(amber.load(p, verify=False)) == 3
