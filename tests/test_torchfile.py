"""Reading files written by torch.save without torch.load: the zip archive and the legacy
stream, compared with ``torch.load(weights_only=True)``; trust (untrusted classes named,
hostile pickles refused before they run); corrupt and tricky archives (every failure an
amber error naming the member); byte order, devices, ``mmap=True``.

Hostile files are built by hand and are never given to torch.load or pickle.load.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import struct
import tarfile
import warnings
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn as nn

from amber.errors import CorruptFileError, DecodeError, FormatError, UntrustedTypeError
from amber.formats._torchfile import MAGIC_NUMBER, is_torch_legacy, is_torch_zip, load_torch

FORMATS = ["zip", "legacy"]


class Net(nn.Module):
    """A model class defined here: not trusted unless the caller says so."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


NET = f"{Net.__module__}.{Net.__qualname__}"


# ---------------------------------------------------------------------------------------
# helpers


def save(obj: Any, path: Path, fmt: str) -> Path:
    torch.save(obj, path, _use_new_zipfile_serialization=(fmt == "zip"))
    return path


def load(path: Any, **kw: Any) -> Any:
    return load_torch(path, name=str(path), **kw)


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.detach().contiguous().reshape(-1).view(torch.uint8)


def assert_same(a: Any, b: Any) -> None:
    """Equal structure, types, dtypes, shapes, strides and values (bit for bit)."""
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and a.device == b.device
        assert a.requires_grad == b.requires_grad
        if a.layout is torch.strided:
            assert a.stride() == b.stride() and a.storage_offset() == b.storage_offset()
            assert torch.equal(_bits(a), _bits(b))
        else:
            assert torch.equal(a.to_dense(), b.to_dense())
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    elif isinstance(a, nn.Module):
        assert_same(a.state_dict(), b.state_dict())
        assert repr(a) == repr(b)
    else:
        assert a == b


def against_torch(path: Path, **kw: Any) -> Any:
    ours = load(path, **kw)
    assert_same(ours, torch.load(path, weights_only=True))
    return ours


class Pid:
    """Pickled as a persistent id (what torch.save writes for a storage)."""

    def __init__(self, *pid: Any) -> None:
        self.pid = pid


class Call:
    """Pickled as ``fn(*args)``: how hand-made files call whatever they like."""

    def __init__(self, fn: Any, *args: Any) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self) -> Any:
        return self.fn, self.args


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj: Any) -> Any:
        return obj.pid if isinstance(obj, Pid) else None


def craft(obj: Any) -> bytes:
    buf = io.BytesIO()
    _Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def tensor_call(
    key: str,
    numel: int,
    size: tuple,
    stride: tuple,
    offset: int = 0,
    location: str = "cpu",
    hooks: Any = None,
    kind: Any = torch.FloatStorage,
) -> Call:
    """What torch.save's zip format writes for a tensor (float32 unless ``kind`` says) over storage ``key``."""
    storage = Pid("storage", kind, key, location, numel)
    hooks = OrderedDict() if hooks is None else hooks
    return Call(torch._utils._rebuild_tensor_v2, storage, offset, size, stride, False, hooks)


def legacy_tensor(key: str, numel: int, size: tuple, view: Any = None) -> Call:
    """The same in the legacy format (its storage ids also say which view of the storage)."""
    storage = Pid("storage", torch.FloatStorage, key, "cpu", numel, view)
    return Call(torch._utils._rebuild_tensor_v2, storage, 0, size, (1,) * len(size), False, OrderedDict())


def os_system(cmd: str) -> bytes:
    """A protocol 2 pickle of ``os.system(cmd)``, by hand (GLOBAL 'os system')."""
    c = cmd.encode()
    return b"\x80\x02cos\nsystem\nX" + struct.pack("<I", len(c)) + c + b"\x85R."


def write_archive(path: Path, records: dict[str, bytes]) -> Path:
    """A zip archive written by torch's own writer (aligned, stored); names under the prefix."""
    w = torch._C.PyTorchFileWriter(str(path))
    for name, data in records.items():
        w.write_record(name, data, len(data))
    w.write_end_of_file()
    return path


def records_of(path: Path) -> dict[str, bytes]:
    """A real archive's members, by name under the prefix (without the bookkeeping ones)."""
    with zipfile.ZipFile(path) as z:
        out = {}
        for n in z.namelist():
            rel = n.split("/", 1)[1]
            if rel not in ("version", ".data/serialization_id", ".format_version", ".storage_alignment"):
                out[rel] = z.read(n)
        return out


def legacy_file(path: Path, main: bytes, keys: list[str], data: list[tuple[int, bytes]]) -> Path:
    """The legacy stream: magic, version, sys_info, ``main``, keys, then count + bytes each."""
    sys_info = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 8}}
    out = [pickle.dumps(x, protocol=2) for x in (MAGIC_NUMBER, 1001, sys_info)]
    out += [main, pickle.dumps(keys, protocol=2)]
    for count, blob in data:
        out.append(struct.pack("<q", count) + blob)
    path.write_bytes(b"".join(out))
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------
# detection


def test_detection(tmp_path: Path) -> None:
    t = torch.arange(3.0)
    zp = save(t, tmp_path / "z.pt", "zip")
    with zipfile.ZipFile(zp) as z:
        assert is_torch_zip(z.namelist())
    assert not is_torch_zip(["data.pkl", "a/b/data.pkl", "archive/data/0"])
    lp = save(t, tmp_path / "l.pt", "legacy")
    assert is_torch_legacy(lp.read_bytes()[:64])
    for proto in range(6):
        assert is_torch_legacy(pickle.dumps(MAGIC_NUMBER, protocol=proto) + b"rest")
    assert not is_torch_legacy(pickle.dumps(12345, protocol=2))
    assert not is_torch_legacy(zp.read_bytes()[:64])


# ---------------------------------------------------------------------------------------
# round trips against torch.load(weights_only=True)

DTYPES = [
    torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.complex64, torch.complex128,
    torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8, torch.bool,
]
#: serialized through UntypedStorage + dtype (_rebuild_tensor_v3); torch's legacy loader cannot read them
NEW_DTYPES = [torch.uint16, torch.uint32, torch.uint64, torch.float8_e4m3fn, torch.float8_e5m2]


def dtype_tensors(dtypes: list[torch.dtype]) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    out = {}
    for d in dtypes:
        base = torch.randn(5, 7, generator=g, dtype=torch.float64) * 50
        if d.is_complex:
            t = torch.complex(base, -base).to(d)
        elif d is torch.bool:
            t = base > 0
        elif d in (torch.uint16, torch.uint32, torch.uint64):
            t = base.abs().to(torch.int64).to(d)
        else:
            t = base.to(d)
        out[str(d)] = t
    out["scalar"] = torch.tensor(3.5)
    out["empty"] = torch.empty(0, 3)
    return out


@pytest.mark.parametrize("fmt", FORMATS)
def test_dtypes(tmp_path: Path, fmt: str) -> None:
    against_torch(save(dtype_tensors(DTYPES), tmp_path / "t.pt", fmt))


def test_new_dtypes(tmp_path: Path) -> None:
    tensors = dtype_tensors(NEW_DTYPES)
    against_torch(save(tensors, tmp_path / "z.pt", "zip"))
    # torch's own legacy reader fails on these (UntypedStorage has no dtype); amber reads them
    assert_same(load(save(tensors, tmp_path / "l.pt", "legacy")), tensors)


@pytest.mark.parametrize("fmt", FORMATS)
def test_views_share_storage(tmp_path: Path, fmt: str) -> None:
    x = torch.arange(24, dtype=torch.float32)
    obj = {
        "x": x,
        "slice": x[3:9],
        "t": x.view(4, 6).t(),
        "strided": x.view(4, 6)[::2, 1::3],
        "expanded": x[:4].view(4, 1).expand(4, 5),
        "y": torch.ones(3),
        "y_again": None,
    }
    obj["y_again"] = obj["y"]
    out = against_torch(save(obj, tmp_path / "v.pt", fmt))
    ptr = out["x"].untyped_storage().data_ptr()
    assert all(out[k].untyped_storage().data_ptr() == ptr for k in ("slice", "t", "strided", "expanded"))
    assert not out["t"].is_contiguous()
    assert not out["x"].untyped_storage().resizable()  # as torch.load's: set_ cannot grow them
    out["x"][5] = -1.0
    assert out["slice"][2] == -1.0 and out["t"][5, 0] == -1.0
    assert out["y_again"] is out["y"]


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.bn(self.conv(x)).mean((2, 3)))


@pytest.mark.parametrize("fmt", FORMATS)
def test_cnn_state_dict(tmp_path: Path, fmt: str) -> None:
    torch.manual_seed(0)
    model = SmallCNN()
    model.train()
    model(torch.randn(2, 3, 8, 8))  # moves the batch-norm statistics
    sd = against_torch(save(model.state_dict(), tmp_path / "sd.pt", fmt))
    assert isinstance(sd, OrderedDict) and sd["bn.num_batches_tracked"].dtype == torch.int64
    fresh = SmallCNN()
    fresh.load_state_dict(sd)
    model.eval(), fresh.eval()
    x = torch.randn(1, 3, 8, 8)
    assert torch.equal(model(x), fresh(x))


@pytest.mark.parametrize("fmt", FORMATS)
def test_parameters_and_containers(tmp_path: Path, fmt: str) -> None:
    p = nn.Parameter(torch.randn(3, 2))
    frozen = nn.Parameter(torch.randn(2), requires_grad=False)
    obj = {
        "param": p,
        "frozen": frozen,
        "grad_tensor": torch.ones(2, requires_grad=True),
        "od": OrderedDict([("b", 1), ("a", torch.zeros(2, dtype=torch.int16))]),
        "nested": [1, "two", (3.0, None, True), {"k": [b"bytes", torch.arange(3)]}],
        "size": torch.Size([2, 3]),
        "dtype": torch.float16,
        "device": torch.device("cpu"),
        "epoch": 7,
    }
    out = against_torch(save(obj, tmp_path / "c.pt", fmt))
    assert type(out["param"]) is nn.Parameter and out["param"].requires_grad
    assert not out["frozen"].requires_grad


@pytest.mark.parametrize("fmt", FORMATS)
def test_whole_model(tmp_path: Path, fmt: str) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.BatchNorm1d(8), nn.Dropout(0.1), nn.Linear(8, 2))
    path = save(model, tmp_path / "m.pt", fmt)
    out = load(path)  # torch.nn modules are trusted by default: no trusted=
    ref = torch.load(path, weights_only=False)  # our own file, made just above
    assert_same(out, ref)
    out.eval()
    x = torch.randn(5, 4)
    assert torch.equal(out(x), model.eval()(x))


@pytest.mark.parametrize("fmt", FORMATS)
def test_sparse(tmp_path: Path, fmt: str) -> None:
    i = torch.tensor([[0, 1, 2], [2, 0, 1]])
    coo = torch.sparse_coo_tensor(i, torch.tensor([1.0, 2.0, 3.0]), (3, 3), check_invariants=True)
    against_torch(save({"coo": coo, "coalesced": coo.coalesce()}, tmp_path / "s.pt", fmt))


def test_sparse_invariants_checked(tmp_path: Path) -> None:
    """Indices out of range would make later reads go out of bounds: refused at load."""
    indices = tensor_call("0", 2, (1, 2), (2, 1), kind=torch.LongStorage)
    values = tensor_call("1", 2, (2,), (1,))
    pkl = craft({"s": Call(torch._utils._rebuild_sparse_tensor, torch.sparse_coo, (indices, values, torch.Size([2])))})
    rec = {
        "data.pkl": pkl,
        "data/0": np.array([0, 5], dtype="<i8").tobytes(),
        "data/1": np.ones(2, dtype="<f4").tobytes(),
    }
    with pytest.raises(CorruptFileError, match="sparse tensor is invalid"):
        load(write_archive(tmp_path / "s.pt", rec))
    rec["data/0"] = np.array([0, 1], dtype="<i8").tobytes()
    assert torch.equal(load(write_archive(tmp_path / "ok.pt", rec))["s"].to_dense(), torch.ones(2))


@pytest.mark.filterwarnings("ignore:.*(beta|prototype)")
def test_csr_and_nested(tmp_path: Path) -> None:
    obj = {
        "csr": torch.tensor([[0.0, 1.0], [2.0, 0.0]]).to_sparse_csr(),
        "nested": torch.nested.nested_tensor([torch.arange(2.0), torch.arange(3.0)]),
    }
    path = save(obj, tmp_path / "n.pt", "zip")
    out = load(path)
    ref = torch.load(path, weights_only=True)
    assert torch.equal(out["csr"].to_dense(), ref["csr"].to_dense())
    assert all(torch.equal(a, b) for a, b in zip(out["nested"].unbind(), ref["nested"].unbind()))


def test_tensor_attributes_and_subclass_state(tmp_path: Path) -> None:
    t = torch.ones(2)
    t.note = "kept"
    p = nn.Parameter(torch.zeros(3))
    p.tag = 5
    out = against_torch(save({"t": t, "p": p}, tmp_path / "a.pt", "zip"))
    assert out["t"].note == "kept" and out["p"].tag == 5


@pytest.mark.parametrize("fmt", FORMATS)
def test_file_objects(tmp_path: Path, fmt: str) -> None:
    obj = {"w": torch.randn(4, 4), "n": 3}
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=(fmt == "zip"))
    assert_same(load_torch(io.BytesIO(buf.getvalue()), name="<bytes>"), obj)
    path = save(obj, tmp_path / "f.pt", fmt)
    with open(path, "rb") as fh:
        assert_same(load_torch(fh, name=str(path), mmap=True), obj)


def test_legacy_sequential_saves_in_one_file(tmp_path: Path) -> None:
    """The legacy format is a stream: several saves into one file load one after another."""
    buf = io.BytesIO()
    torch.save({"a": torch.arange(3)}, buf, _use_new_zipfile_serialization=False)
    torch.save({"b": torch.ones(2)}, buf, _use_new_zipfile_serialization=False)
    buf.seek(0)
    assert_same(load_torch(buf, name="<bytes>"), {"a": torch.arange(3)})
    assert_same(load_torch(buf, name="<bytes>"), {"b": torch.ones(2)})


@pytest.mark.parametrize("array", [np.arange(3.0), np.array(["x", 1, None], dtype=object)], ids=["float", "object"])
def test_legacy_with_numpy_arrays(tmp_path: Path, array: np.ndarray) -> None:
    """A NumPy array stops the first (C) reading of the object pickle, which is then read
    again from a copy of its bytes: the file must still be left just past the pickle, where
    the storage key list and the storages follow (on disk, in a buffer, and for the second
    reading that map_location makes)."""

    def check(out: Any) -> None:
        assert list(out) == ["t", "a", "n"] and out["n"] == 7
        assert torch.equal(out["t"], torch.arange(4.0))
        assert type(out["a"]) is np.ndarray and out["a"].dtype == array.dtype
        assert out["a"].tolist() == array.tolist()

    obj = {"t": torch.arange(4.0), "a": array, "n": 7}
    path = save(obj, tmp_path / "np.pt", "legacy")
    check(load(path))
    check(load(path, map_location={"cpu": "cpu"}))  # (a dict: the pickle is read twice)
    with open(path, "rb") as fh:
        check(load_torch(fh, name=str(path)))
        assert fh.read() == b""  # left at the end of what torch.save wrote
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=False)
    torch.save({"b": torch.ones(2)}, buf, _use_new_zipfile_serialization=False)
    buf.seek(0)
    check(load_torch(buf, name="<bytes>"))
    assert_same(load_torch(buf, name="<bytes>"), {"b": torch.ones(2)})


# ---------------------------------------------------------------------------------------
# mmap


def test_mmap(tmp_path: Path) -> None:
    obj = {"w": torch.randn(64, 64), "b": torch.arange(10), "view": None}
    obj["view"] = obj["w"][1:3]
    path = save(obj, tmp_path / "m.pt", "zip")
    before = digest(path)
    out = load(path, mmap=True)
    assert_same(out, torch.load(path, weights_only=True))
    assert out["view"].untyped_storage().data_ptr() == out["w"].untyped_storage().data_ptr()
    out["w"] += 1  # copy-on-write: the process sees it, the file never does
    out["b"][0] = 99
    assert out["view"][0, 0] == obj["w"][1, 0] + 1
    del out
    assert digest(path) == before
    assert_same(load(path, mmap=True), obj)


def test_mmap_legacy_reads(tmp_path: Path) -> None:
    obj = {"w": torch.randn(8, 8)}
    path = save(obj, tmp_path / "l.pt", "legacy")
    before = digest(path)
    out = load(path, mmap=True)  # nothing to map: the legacy stream is read
    out["w"].zero_()
    assert digest(path) == before


# ---------------------------------------------------------------------------------------
# trust


@pytest.mark.parametrize("fmt", FORMATS)
def test_untrusted_class(tmp_path: Path, fmt: str) -> None:
    torch.manual_seed(0)
    model = Net()
    path = save(model, tmp_path / "net.pt", fmt)
    with pytest.raises(UntrustedTypeError) as e:
        load(path)
    assert e.value.untrusted == (NET,)
    assert NET in str(e.value) and str(path) in str(e.value)
    out = load(path, trusted=[NET])
    assert type(out) is Net
    x = torch.randn(2, 3)
    assert torch.equal(out(x), model(x))


@pytest.mark.parametrize("how", ["by_hand", "reduce"])
def test_hostile_zip(tmp_path: Path, how: str) -> None:
    marker = tmp_path / "marker"
    cmd = f"touch {marker}"
    if how == "by_hand":
        pkl, denied = os_system(cmd), "os.system"
    else:  # a real tensor next to the payload: nothing comes back
        pkl = craft({"w": tensor_call("0", 4, (4,), (1,)), "evil": Call(os.system, cmd)})
        denied = f"{os.system.__module__}.system"
    path = write_archive(tmp_path / "evil.pt", {"data.pkl": pkl, "data/0": bytes(16), "byteorder": b"little"})
    with pytest.raises(UntrustedTypeError) as e:
        load(path)
    assert denied in e.value.denied and "archive" not in e.value.untrusted
    assert "never loads" in str(e.value)
    assert not marker.exists()


def test_hostile_zip_lists_every_untrusted_global(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    pkl = craft([Call(os.system, f"touch {marker}"), Call(Net), Call(eval, "1")])
    path = write_archive(tmp_path / "evil.pt", {"data.pkl": pkl})
    with pytest.raises(UntrustedTypeError) as e:
        load(path, trusted=["os"])  # the deny list wins over trusted=
    assert set(e.value.untrusted) == {f"{os.system.__module__}.system", NET, "builtins.eval"}
    assert NET not in e.value.denied and "builtins.eval" in e.value.denied
    assert not marker.exists()


def test_hostile_legacy(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    path = legacy_file(tmp_path / "evil.pt", os_system(f"touch {marker}"), [], [])
    with pytest.raises(UntrustedTypeError) as e:
        load(path)
    assert e.value.denied == ("os.system",)
    assert not marker.exists()
    # in a header pickle too
    head = pickle.dumps(MAGIC_NUMBER, protocol=2) + pickle.dumps(1001, protocol=2) + os_system(f"touch {marker}")
    (tmp_path / "evil2.pt").write_bytes(head)
    with pytest.raises(UntrustedTypeError):
        load(tmp_path / "evil2.pt")
    assert not marker.exists()


def test_backward_hooks_refused(tmp_path: Path) -> None:
    pkl = craft({"w": tensor_call("0", 4, (4,), (1,), hooks=OrderedDict([(0, int)]))})
    path = write_archive(tmp_path / "h.pt", {"data.pkl": pkl, "data/0": bytes(16)})
    with pytest.raises(CorruptFileError, match="backward hooks"):
        load(path)


def test_storage_types_are_not_callable(tmp_path: Path) -> None:
    """A storage class from the pickle cannot be called to allocate."""
    pkl = craft(Call(torch.FloatStorage, 10**12))
    path = write_archive(tmp_path / "s.pt", {"data.pkl": pkl})
    with pytest.raises(CorruptFileError, match="data.pkl"):
        load(path)


# ---------------------------------------------------------------------------------------
# corrupt and tricky files


@pytest.fixture
def good_zip(tmp_path: Path) -> Path:
    obj = {"a": torch.arange(100, dtype=torch.float32), "b": torch.ones(3, 3, dtype=torch.int64)}
    return save(obj, tmp_path / "good.pt", "zip")


def test_truncated_zip(tmp_path: Path, good_zip: Path) -> None:
    data = good_zip.read_bytes()
    for cut in (10, 100, len(data) // 2, len(data) - 30, len(data) - 1):
        p = tmp_path / f"cut{cut}.pt"
        p.write_bytes(data[:cut])
        with pytest.raises(FormatError, match=str(p)):
            load(p)


def test_truncated_legacy(tmp_path: Path) -> None:
    data = save({"a": torch.arange(100.0)}, tmp_path / "l.pt", "legacy").read_bytes()
    for cut in (20, 200, len(data) - 500, len(data) - 1):
        p = tmp_path / f"cut{cut}.pt"
        p.write_bytes(data[:cut])
        with pytest.raises(FormatError, match=str(p)):
            load(p)


def test_wrong_member_size(tmp_path: Path, good_zip: Path) -> None:
    rec = records_of(good_zip)
    rec["data/0"] = rec["data/0"][:-4]
    p = write_archive(tmp_path / "short.pt", rec)
    with pytest.raises(CorruptFileError, match="short/data/0"):
        load(p)


def test_missing_member(tmp_path: Path, good_zip: Path) -> None:
    rec = records_of(good_zip)
    del rec["data/1"]
    p = write_archive(tmp_path / "miss.pt", rec)
    with pytest.raises(CorruptFileError, match="miss/data/1"):
        load(p)


def test_bad_pickle(tmp_path: Path, good_zip: Path) -> None:
    rec = records_of(good_zip)
    for bad in (b"garbage", rec["data.pkl"][:-10], b"\x80\x02]q\x00(K\x01e"):  # no STOP
        rec["data.pkl"] = bad
        p = write_archive(tmp_path / "bad.pt", rec)
        with pytest.raises(FormatError, match="bad/data.pkl"):
            load(p)


def test_tensor_larger_than_its_storage(tmp_path: Path) -> None:
    """torch's Tensor.set_ would grow the storage to fit: refused before it is called."""
    for size, stride, offset in [((10**9,), (1,), 0), ((2, 2), (10**12, 1), 0), ((4,), (1,), 1), ((4,), (-1,), 3)]:
        pkl = craft({"w": tensor_call("0", 4, size, stride, offset)})
        p = write_archive(tmp_path / "big.pt", {"data.pkl": pkl, "data/0": bytes(16)})
        with pytest.raises(CorruptFileError, match="big/data.pkl"):
            load(p)


def test_storage_larger_than_the_file(tmp_path: Path) -> None:
    pkl = craft({"w": tensor_call("0", 10**11, (4,), (1,))})
    p = write_archive(tmp_path / "z.pt", {"data.pkl": pkl, "data/0": bytes(16)})
    with pytest.raises(CorruptFileError, match="z/data/0"):
        load(p)
    main = craft({"w": legacy_tensor("0", 10**11, (4,))})
    p = legacy_file(tmp_path / "l.pt", main, ["0"], [(10**11, bytes(16))])
    with pytest.raises(CorruptFileError, match="more than the file holds"):
        load(p)


def test_legacy_wrong_count(tmp_path: Path) -> None:
    main = craft({"w": legacy_tensor("k", 4, (4,))})
    p = legacy_file(tmp_path / "l.pt", main, ["k"], [(3, bytes(12))])
    with pytest.raises(CorruptFileError, match="storage 'k'"):
        load(p)
    p = legacy_file(tmp_path / "l2.pt", main, [], [])  # a storage left out of the key list
    with pytest.raises(CorruptFileError, match="key list"):
        load(p)
    good = legacy_file(tmp_path / "l3.pt", main, ["k"], [(4, np.arange(4, dtype="<f4").tobytes())])
    assert torch.equal(load(good)["w"], torch.arange(4.0))


def test_legacy_storage_views(tmp_path: Path) -> None:
    """Old torch wrote storage views (root key, offset, size): they share the root's memory."""
    def view(offset: int, n: int, key: str) -> Call:
        return legacy_tensor("root", 8, (n,), view=(key, offset, n))

    main = craft({"whole": legacy_tensor("root", 8, (8,)), "mid": view(2, 3, "v1"), "tail": view(6, 2, "v2")})
    out = load(legacy_file(tmp_path / "v.pt", main, ["root"], [(8, np.arange(8, dtype="<f4").tobytes())]))
    assert torch.equal(out["mid"], torch.arange(2.0, 5.0)) and torch.equal(out["tail"], torch.arange(6.0, 8.0))
    out["whole"][3] = -1
    assert out["mid"][1] == -1
    main = craft({"bad": view(6, 3, "v3")})  # runs past the root storage
    with pytest.raises(CorruptFileError, match="past its 32-byte storage"):
        load(legacy_file(tmp_path / "bad.pt", main, ["root"], [(8, bytes(32))]))


def test_duplicate_and_ambiguous_members(tmp_path: Path, good_zip: Path) -> None:
    rec = records_of(good_zip)

    def zipped(name: str, members: list[tuple[str, bytes]]) -> Path:
        p = tmp_path / name
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
            with zipfile.ZipFile(p, "w") as z:
                for n, d in members:
                    z.writestr(n, d)
        return p

    members = [(f"archive/{k}", v) for k, v in rec.items()]
    dup = zipped("dup.pt", members + [("archive/data/0", bytes(400))])
    with pytest.raises(FormatError, match="several members named 'archive/data/0'"):
        load(dup)
    two = zipped("two.pt", [("a/data.pkl", rec["data.pkl"]), ("b/data.pkl", rec["data.pkl"])])
    with pytest.raises(FormatError, match="several pickles"):
        load(two)
    none = zipped("none.pt", [("readme.txt", b"hello")])
    with pytest.raises(FormatError, match="not a torch.save file"):
        load(none)
    script = zipped("script.pt", [("m/data.pkl", rec["data.pkl"]), ("m/constants.pkl", b""), ("m/code/m.py", b"")])
    with pytest.raises(FormatError, match="TorchScript"):
        load(script)


def test_unaligned_and_compressed_members(tmp_path: Path, good_zip: Path) -> None:
    """Archives re-packed by other zip tools: members unaligned, or deflated."""
    ref = torch.load(good_zip, weights_only=True)
    with zipfile.ZipFile(good_zip) as src:
        items = [(i.filename, src.read(i)) for i in src.infolist()]
    for method in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        p = tmp_path / f"repacked{method}.pt"
        with zipfile.ZipFile(p, "w", compression=method) as z:
            for n, d in items:
                z.writestr(n, d)
        assert_same(load(p), ref)
        assert_same(load(p, mmap=True), ref)
    # a deflated member whose bytes are damaged
    bad = tmp_path / f"repacked{zipfile.ZIP_DEFLATED}.pt"
    raw = bytearray(bad.read_bytes())
    with zipfile.ZipFile(bad) as z:
        info = z.getinfo("good/data/0")
    raw[info.header_offset + 30 + len(info.filename) + 5] ^= 0xFF
    bad.write_bytes(bytes(raw))
    with pytest.raises(CorruptFileError, match="good/data/0"):
        load(bad)


def test_not_torch_files(tmp_path: Path) -> None:
    p = tmp_path / "x.pt"
    for data in (b"", b"hello world", pickle.dumps({"a": 1}, protocol=2)):
        p.write_bytes(data)
        with pytest.raises(FormatError, match="not a PyTorch file"):
            load(p)


def test_old_tar_format(tmp_path: Path) -> None:
    p = tmp_path / "old.pt"
    with tarfile.open(p, "w", format=tarfile.PAX_FORMAT) as tar:
        for n in ("sys_info", "pickle", "tensors", "storages"):
            info = tarfile.TarInfo(n)
            info.size = 4
            tar.addfile(info, io.BytesIO(b"\x80\x02N."))
    with pytest.raises(FormatError, match="tar-based format.*not supported"):
        load(p)


# ---------------------------------------------------------------------------------------
# byte order and devices


def test_big_endian_archive(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(1)
    obj = {
        "f32": torch.randn(5, generator=g),
        "i64": torch.arange(-3, 4),
        "c64": torch.randn(3, dtype=torch.complex64, generator=g),
        "f16": torch.randn(4, generator=g).half(),
        "b": torch.tensor([True, False]),
    }
    rec = records_of(save(obj, tmp_path / "le.pt", "zip"))
    rec["byteorder"] = b"big"
    np_dtypes = ["<f4", "<i8", "<c8", "<f2", "|b1"]  # storages 0.. in pickling order
    for i, nd in enumerate(np_dtypes):
        rec[f"data/{i}"] = np.frombuffer(rec[f"data/{i}"], dtype=nd).byteswap().tobytes()
    out = load(write_archive(tmp_path / "be.pt", rec))
    assert_same(out, obj)


def test_gpu_saved_storages_load_on_cpu(tmp_path: Path) -> None:
    pkl = craft({"w": tensor_call("0", 4, (2, 2), (2, 1), location="cuda:0")})
    p = write_archive(tmp_path / "gpu.pt", {"data.pkl": pkl, "data/0": np.arange(4, dtype="<f4").tobytes()})
    want = torch.arange(4.0).view(2, 2)
    for ml in (None, "cpu", torch.device("cpu"), {"cuda:0": "cpu"}, {"cuda:1": "cuda:1"}):
        out = load(p, map_location=ml)["w"]
        assert out.device.type == "cpu" and torch.equal(out, want)
    seen = []
    out = load(p, map_location=lambda storage, loc: seen.append((loc, storage.device.type)))
    assert seen == [("cuda:0", "cpu")] and torch.equal(out["w"], want)
    out = load(p, map_location=lambda storage, loc: storage.clone())
    assert torch.equal(out["w"], want)
    if not torch.cuda.is_available():
        with pytest.raises(DecodeError, match="gpu/data/0"):
            load(p, map_location="cuda")
    with pytest.raises(TypeError, match="map_location"):
        load(p, map_location=3)


@pytest.mark.parametrize("fmt", FORMATS)
def test_map_location_meta(tmp_path: Path, fmt: str) -> None:
    """A real device move (the meta device: shapes only), through both formats."""
    obj = {"w": torch.randn(3, 4), "v": None}
    obj["v"] = obj["w"][1]
    out = load(save(obj, tmp_path / "m.pt", fmt), map_location="meta")
    assert out["w"].device.type == "meta" and out["w"].shape == (3, 4) and out["v"].shape == (4,)


def test_unsafe(tmp_path: Path) -> None:
    model = nn.Linear(2, 2)
    path = save(model, tmp_path / "u.pt", "zip")
    out = load_torch(path, name=str(path), unsafe=True)
    assert_same(out, model)
