"""The public API: targets and sources, compression, mmap, lazy open, inspect, metadata,
determinism, provenance and atomic writes."""

from __future__ import annotations

import collections
import io
import json
import os
import platform
import subprocess
import sys
import threading
import uuid
import warnings
from pathlib import Path
from typing import Any, Callable

import zlib

import msgpack
import numpy as np
import pytest
import xxhash

import amber
from amber.container import FORMAT_VERSION, ContainerReader, open_source
from amber.container import _io
from amber.container._spec import TRAILER, TRAILER_SIZE
from test_roundtrip import FACTORY_NAME, assert_same, make_default

# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------


def sample() -> dict[str, Any]:
    rng = np.random.default_rng(7)
    return {
        "w": rng.random((3, 4)),
        "ids": np.arange(10, dtype=np.int32),
        "cfg": {"lr": 0.1, "steps": (1, 2, 3), "name": "run", "tags": {"a", "b"}},
        "big": 2**70,
    }


class _NoSeek(io.RawIOBase):
    """A stream that cannot seek or tell, like a pipe or a socket."""

    def seekable(self) -> bool:
        return False

    def seek(self, *a: Any) -> int:
        raise io.UnsupportedOperation("seek")

    def tell(self) -> int:
        raise io.UnsupportedOperation("tell")


class NonSeekableWriter(_NoSeek):
    def __init__(self) -> None:
        super().__init__()
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self.data += bytes(b)
        return memoryview(b).nbytes


class NonSeekableReader(_NoSeek):
    def __init__(self, data: bytes) -> None:
        super().__init__()
        self._b = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        return self._b.readinto(buf)


class CountingReader(io.RawIOBase):
    """A seekable file object that counts the bytes read through it."""

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self._b = io.BytesIO(data)
        self.nread = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, off: int, whence: int = 0) -> int:
        return self._b.seek(off, whence)

    def tell(self) -> int:
        return self._b.tell()

    def readinto(self, buf: Any) -> int:
        n = self._b.readinto(buf)
        self.nread += n
        return n

    def read(self, n: int = -1) -> bytes:
        d = self._b.read(n)
        self.nread += len(d)
        return d


def read_manifest(data: bytes, check: bool = True) -> tuple[dict[str, Any], int]:
    """The decoded manifest of a file's bytes, and the offset where it starts."""
    m_off, m_len, m_hash, _major, _minor, flags, _end = TRAILER.unpack(data[-TRAILER_SIZE:])
    raw = data[m_off : m_off + m_len]
    assert not check or xxhash.xxh3_64_intdigest(raw) == m_hash
    if flags & 1:
        raw = zlib.decompress(raw)
    return msgpack.unpackb(raw, raw=False, strict_map_key=False, ext_hook=msgpack.ExtType), m_off


def rewrite_manifest(data: bytes, edit: Callable[[dict[str, Any]], None], check: bool = True) -> bytes:
    """Re-pack a file's manifest after ``edit`` changed it, with a valid trailer checksum."""
    manifest, m_off = read_manifest(data, check)
    edit(manifest)
    raw = msgpack.packb(manifest, use_bin_type=True)
    _o, _l, _h, major, minor, _flags, end = TRAILER.unpack(data[-TRAILER_SIZE:])
    trailer = TRAILER.pack(m_off, len(raw), xxhash.xxh3_64_intdigest(raw), major, minor, 0, end)
    return data[:m_off] + raw + trailer


def tmp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".amber-tmp"))


# ---------------------------------------------------------------------------------------
# targets and sources
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["str", "path", "unicode_name"])
def test_dump_load_paths(tmp_path: Path, kind: str) -> None:
    obj = sample()
    if kind == "str":
        target: Any = str(tmp_path / "model.amber")
    elif kind == "path":
        target = tmp_path / "model.amber"
    else:
        target = tmp_path / "dir with spaces" / "mödel ✓.amber"
        target.parent.mkdir()
    amber.dump(obj, target)
    assert Path(target).is_file()
    assert_same(obj, amber.load(target))
    assert_same(obj, amber.load(str(target)))
    assert_same(obj, amber.load(Path(target)))
    assert tmp_files(Path(target).parent) == []


def test_dump_overwrites(tmp_path: Path) -> None:
    p = tmp_path / "x.amber"
    amber.dump([1], p)
    amber.dump({"second": np.arange(3)}, p)
    assert_same({"second": np.arange(3)}, amber.load(p))
    assert [x.name for x in tmp_path.iterdir()] == ["x.amber"]


def test_dump_to_binary_file_objects(tmp_path: Path) -> None:
    obj = sample()
    p = tmp_path / "fh.amber"
    with open(p, "wb") as fh:
        amber.dump(obj, fh)
        assert not fh.closed
    with open(p, "rb") as fh:
        assert_same(obj, amber.load(fh))
        assert not fh.closed
    buf = io.BytesIO()
    amber.dump(obj, buf)
    assert len(buf.getvalue()) == p.stat().st_size
    buf.seek(0)
    assert_same(obj, amber.load(buf))
    assert_same(obj, amber.load(io.BytesIO(buf.getvalue())))


def test_dump_to_non_seekable_stream() -> None:
    obj = sample()
    for compress in (None, "zstd"):
        w = NonSeekableWriter()
        amber.dump(obj, w, compress=compress)
        assert_same(obj, amber.loads(bytes(w.data)))
        assert_same(obj, amber.load(NonSeekableReader(bytes(w.data))))


def test_dump_and_load_through_a_pipe() -> None:
    obj = {**sample(), "big": np.random.default_rng(0).random(300_000)}  # larger than a pipe buffer
    r, w = os.pipe()
    got: list[bytes] = []

    def drain() -> None:
        with os.fdopen(r, "rb") as fh:
            got.append(fh.read())

    t = threading.Thread(target=drain)
    t.start()
    with os.fdopen(w, "wb") as fh:
        assert not fh.seekable()
        amber.dump(obj, fh)
    t.join(timeout=30)
    assert got and got[0][:4] == b"\x89AMB"
    assert_same(obj, amber.loads(got[0]))

    # and load straight from a pipe (not seekable)
    r, w = os.pipe()
    t = threading.Thread(target=lambda: (os.write(w, got[0]), os.close(w)))
    t.start()
    with os.fdopen(r, "rb") as fh:
        out = amber.load(fh)
    t.join(timeout=30)
    assert_same(obj, out)


def test_dumps_loads() -> None:
    obj = sample()
    data = amber.dumps(obj)
    assert type(data) is bytes and data.startswith(b"\x89AMB\r\n\x1a\n")
    assert_same(obj, amber.loads(data))
    assert_same(obj, amber.loads(bytearray(data)))
    assert_same(obj, amber.loads(memoryview(data)))
    out, meta = amber.loads(amber.dumps(1, metadata={"m": 1}), with_metadata=True)
    assert out == 1 and meta == {"m": 1}
    with pytest.raises(TypeError):
        amber.loads(data.decode("latin-1"))  # type: ignore[arg-type]


def test_file_url(tmp_path: Path) -> None:
    url = "file://" + str(tmp_path / "u.amber")
    amber.dump(sample(), url)
    assert (tmp_path / "u.amber").is_file()
    assert_same(sample(), amber.load(url))


@pytest.fixture
def memory_url() -> Any:
    fsspec = pytest.importorskip("fsspec")
    folder = f"/amber-tests-{uuid.uuid4().hex}"
    yield f"memory://{folder}"
    fs = fsspec.filesystem("memory")
    if fs.exists(folder):
        fs.rm(folder, recursive=True)


def test_fsspec_memory_url(memory_url: str) -> None:
    obj = sample()
    url = memory_url + "/model.amber"
    amber.dump(obj, url, compress="zstd", metadata={"k": [1, 2]})
    assert_same(obj, amber.load(url))
    out, meta = amber.load(url, with_metadata=True)
    assert meta == {"k": [1, 2]}
    with amber.open(url) as f:
        assert sorted(f.keys()) == sorted(obj.keys())
        assert np.array_equal(np.asarray(f["ids"][2:5]), obj["ids"][2:5])
        assert f.metadata == {"k": [1, 2]}
    assert "numpy.ndarray" in str(amber.inspect(url))
    amber.dump([2], url, durable=True)  # overwrite; durable is a no-op for remote targets
    assert amber.load(url) == [2]


def test_fsspec_missing_object(memory_url: str) -> None:
    with pytest.raises(OSError):
        amber.load(memory_url + "/missing.amber")


def test_fsspec_failed_dump_keeps_earlier_object(memory_url: str) -> None:
    url = memory_url + "/model.amber"
    amber.dump({"old": 1}, url)
    with pytest.raises(amber.UnsupportedTypeError):
        amber.dump({"a": np.arange(10), "f": lambda: 0}, url)
    assert amber.load(url) == {"old": 1}


def test_missing_file_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        amber.load(tmp_path / "nope.amber")


def test_not_an_amber_file(tmp_path: Path) -> None:
    p = tmp_path / "junk.amber"
    p.write_bytes(b"hello, this is not an amber file at all" * 10)
    with pytest.raises(amber.FormatError):
        amber.load(p)
    with pytest.raises(amber.FormatError):
        amber.loads(b"")


# ---------------------------------------------------------------------------------------
# formats and suffixes
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["model.amber", "model", "model.bin", "model.AMBER", "archive.tar.amber"])
def test_native_format_is_the_default(tmp_path: Path, name: str) -> None:
    p = tmp_path / name
    amber.dump({"a": 1}, p)
    assert [x.name for x in tmp_path.iterdir()] == [name]  # written exactly there, no suffix added
    assert p.read_bytes().startswith(b"\x89AMB")
    assert amber.load(p) == {"a": 1}


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".pt"])
def test_suffixes_of_formats_dump_does_not_write(tmp_path: Path, suffix: str) -> None:
    p = tmp_path / f"model{suffix}"
    with pytest.raises(amber.FormatError, match="not available"):
        amber.dump({"a": 1}, p)
    assert list(tmp_path.iterdir()) == []
    amber.dump({"a": 1}, p, format="amber")
    assert amber.load(p) == {"a": 1}  # load goes by the bytes, not the name


@pytest.mark.parametrize(("suffix", "start"), [(".pkl", b"\x80\x05"), (".pickle", b"\x80\x05"), (".joblib", b"\x80")])
def test_pickle_suffixes_write_pickles(tmp_path: Path, suffix: str, start: bytes) -> None:
    p = tmp_path / f"model{suffix}"
    amber.dump({"a": 1}, p)
    assert p.read_bytes().startswith(start)
    assert amber.load(p) == {"a": 1}


def test_unavailable_format_refused(tmp_path: Path) -> None:
    with pytest.raises(amber.FormatError):
        amber.dump(1, tmp_path / "x.amber", format="npy")
    with pytest.raises(amber.FormatError):
        amber.dump(1, tmp_path / "x.amber", format="no-such-format")
    with pytest.raises(amber.FormatError):
        amber.load(io.BytesIO(amber.dumps(1)), format="no-such-format")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------
# compression
# ---------------------------------------------------------------------------------------

LEVELS = {
    "zstd": [-7, 1, 3, 22],
    "lz4": [0, 1, 16],
    "zlib": [0, 1, 9],
    "gzip": [0, 6, 9],
    "bz2": [1, 9],
    "lzma": [0, 6, 9],
}
CODEC_LEVELS = [(c, lv) for c, lvs in LEVELS.items() for lv in lvs]


def compress_sample() -> dict[str, Any]:
    rng = np.random.default_rng(3)
    return {
        "f8": np.cumsum(rng.normal(size=5000)),
        "i2": np.arange(3000, dtype=">i2"),
        "c32": (rng.random(100) + 1j).astype(np.clongdouble),
        "rec": np.zeros(50, dtype=[("a", "u1"), ("b", "<f8"), ("c", "S4")]),
        "u": np.array(["abc", "ü"] * 20),
        "b": rng.random(1000) > 0.5,
        "empty": np.zeros((0, 3)),
        "zero_d": np.array(1.5),
        "plain": {"x": [1, 2, 3], "s": "text" * 100},
    }


@pytest.mark.parametrize(("codec", "level"), CODEC_LEVELS, ids=[f"{c}-{lv}" for c, lv in CODEC_LEVELS])
def test_every_codec_and_level(codec: str, level: int) -> None:
    obj = compress_sample()
    for spec in (f"{codec}:{level}", (codec, level), {"name": codec, "level": level}):
        data = amber.dumps(obj, compress=spec)
        assert_same(obj, amber.loads(data))
        info = amber.inspect(data)
        assert info.codecs == [codec]
        assert codec in str(info)


@pytest.mark.parametrize("codec", list(LEVELS))
def test_codec_by_name(codec: str) -> None:
    obj = compress_sample()
    data = amber.dumps(obj, compress=codec)
    assert_same(obj, amber.loads(data))
    assert amber.inspect(data).codecs == [codec]


def test_compress_true_means_zstd() -> None:
    obj = compress_sample()
    data = amber.dumps(obj, compress=True)
    assert_same(obj, amber.loads(data))
    info = amber.inspect(data)
    assert info.codecs == ["zstd"]
    assert info.stored_bytes < info.data_bytes


def test_compress_true_level_matches_docstring() -> None:
    import re

    m = re.search(r"True \(zstd level (\d+)", amber.dump.__doc__ or "")
    assert m, "dump's docstring no longer names the level compress=True uses"
    info = amber.inspect(amber.dumps(np.arange(1000.0), compress=True))
    assert f"zstd {m.group(1)}" in str(info)


@pytest.mark.parametrize("off", [None, False])
def test_no_compression(off: Any) -> None:
    data = amber.dumps(compress_sample(), compress=off)
    info = amber.inspect(data)
    assert info.codecs == [] and info.stored_bytes == info.data_bytes


@pytest.mark.parametrize("bad", [("zstd", 99), "zstd:x", "nope", ("lz4", -1), ("bz2", 0), 5, "gzip:10", ("lzma", 10)])
def test_bad_compress_argument(bad: Any, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        amber.dumps(1, compress=bad)
    with pytest.raises(ValueError):
        amber.dump(1, tmp_path / "x.amber", compress=bad)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def multichunk() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    img = (np.add.outer(np.arange(700), np.arange(600))[:, :, None] + np.arange(3)) % 256
    return {
        "f8": np.cumsum(rng.normal(size=3 * 2**17)).reshape(-1, 4),  # 3 MiB, itemsize 8
        "i2": (np.arange(700_000) % 1000).astype("<i2"),  # 1.3 MiB, itemsize 2
        "gc": (rng.random(40_000) + 1j).astype(np.clongdouble),  # 1.2 MiB, itemsize 32
        "rec": np.zeros(100_000, dtype=[("a", "u1"), ("b", ">f8"), ("c", "S4")]),  # 1.3 MiB, itemsize 13
        "img": img.astype(np.uint8),  # 1.2 MiB image, rows of 1800 bytes
    }


def _blobs(data: bytes) -> list[Any]:
    r = ContainerReader(open_source(data))
    try:
        return list(r.blobs)
    finally:
        r.close()


@pytest.mark.parametrize("codec", ["zstd", "lz4", "zlib", "gzip", "bz2:1", "lzma:0"])
def test_multichunk_arrays_with_shuffle(codec: str, multichunk: dict[str, np.ndarray]) -> None:
    data = amber.dumps(multichunk, compress=codec)
    out = amber.loads(data)
    assert_same(multichunk, out)
    by_size = {b.nbytes: b for b in _blobs(data)}
    assert len(by_size) == len(multichunk)
    for key, itemsize in (("f8", 8), ("i2", 2)):
        blob = by_size[multichunk[key].nbytes]
        assert len(blob.chunks) >= 2, key
        assert blob.filter is not None and blob.filter.name == "shuffle" and blob.filter.size == itemsize, key
    assert len(by_size[multichunk["f8"].nbytes].chunks) >= 3
    assert "shuffle" in str(amber.inspect(data))
    # partial reads of compressed arrays straddling chunk boundaries
    with amber.open(data) as f:
        rows = f["f8"][32_760:32_800]  # 32 bytes a row: the first chunk ends at row 32768
        assert np.array_equal(np.asarray(rows), multichunk["f8"][32_760:32_800])
        assert np.array_equal(np.asarray(f["img"][580:590]), multichunk["img"][580:590])
        assert np.array_equal(np.asarray(f["i2"][:]), multichunk["i2"])
        assert np.array_equal(np.asarray(f["rec"][80_000:80_700]), multichunk["rec"][80_000:80_700])


# ---------------------------------------------------------------------------------------
# mmap
# ---------------------------------------------------------------------------------------


def test_mmap_uncompressed_read_only(tmp_path: Path) -> None:
    shared = np.arange(12.0).reshape(3, 4)
    obj = {
        "c": np.random.default_rng(0).random((100, 7)),
        "f": np.asfortranarray(np.arange(24, dtype=">i4").reshape(4, 6)),
        "zero_d": np.array(3),
        "empty": np.zeros((0, 2)),
        "rec": np.ones(20, dtype=[("a", "<i2"), ("b", "S3")]),
        "obj": np.array([shared, None], dtype=object),
        "again": shared,
        "tiny": np.arange(3),
    }
    p = tmp_path / "m.amber"
    amber.dump(obj, p)
    out = amber.load(p, mmap=True)
    assert_same(obj, out)
    for k in ("c", "f", "rec"):
        assert not out[k].flags.writeable, k
        with pytest.raises(ValueError):
            out[k][0] = out[k][1]
    # arrays of at most 64 bytes live inside their node: loaded into memory, writable
    assert out["tiny"].flags.writeable and out["zero_d"].flags.writeable
    assert out["f"].flags.f_contiguous
    assert out["obj"][0] is out["again"]
    # not mapped: a normal writable array
    normal = amber.load(p)
    assert normal["c"].flags.writeable


def test_mmap_arrays_survive_file_replacement_and_removal(tmp_path: Path) -> None:
    p = tmp_path / "m.amber"
    a = np.random.default_rng(0).random(100_000)
    amber.dump({"a": a}, p)
    out = amber.load(p, mmap=True)["a"]
    amber.dump({"a": np.zeros(100_000)}, p)  # atomic replace: the mapping keeps the old file
    assert np.array_equal(out, a)
    os.remove(p)
    assert np.array_equal(out, a)


@pytest.mark.parametrize("compress", [True, "lz4", "bz2"])
def test_mmap_with_compressed_blobs_still_loads(tmp_path: Path, compress: Any) -> None:
    obj = compress_sample()
    p = tmp_path / "c.amber"
    amber.dump(obj, p, compress=compress)
    out = amber.load(p, mmap=True)
    assert_same(obj, out)


def test_mmap_on_non_file_sources() -> None:
    obj = compress_sample()
    data = amber.dumps(obj)
    assert_same(obj, amber.load(data, mmap=True))
    assert_same(obj, amber.load(io.BytesIO(data), mmap=True))


# ---------------------------------------------------------------------------------------
# lazy open
# ---------------------------------------------------------------------------------------


def lazy_sample(shared: bool) -> dict[str, Any]:
    rng = np.random.default_rng(5)
    s = [1, 2]
    obj: dict[str, Any] = {
        "a": {"b": rng.random((200, 6)), "c": [1, "two", {"d": (3, 4)}], "f": np.asfortranarray(rng.random((5, 3)))},
        "meta": "text",
        "t": (1, np.arange(3)),
        "n": {1: "non-str key"},
        "z": np.array(2.5),
    }
    if shared:
        obj["s1"] = s
        obj["s2"] = {"inner": s}
    return obj


@pytest.fixture(params=["plain", "shared", "zstd"])
def lazy_file(request: Any, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    obj = lazy_sample(shared=request.param == "shared")
    p = tmp_path / "lazy.amber"
    amber.dump(obj, p, compress="zstd" if request.param == "zstd" else None, metadata={"epoch": 3})
    return p, obj


def test_open_navigation(lazy_file: tuple[Path, dict[str, Any]]) -> None:
    p, obj = lazy_file
    with amber.open(p) as f:
        assert list(f.keys()) == list(obj.keys())
        assert "a" in f and "missing" not in f
        assert len(f) == len(obj)
        assert list(f["a"].keys()) == ["b", "c", "f"]
        b = obj["a"]["b"]
        part = f["a"]["b"][10:20]
        assert np.array_equal(np.asarray(part), b[10:20]) and np.asarray(part).dtype == b.dtype
        assert np.array_equal(np.asarray(f["a"]["b"][7]), b[7])
        assert np.array_equal(np.asarray(f["a"]["b"][-1]), b[-1])
        assert np.array_equal(np.asarray(f["a"]["b"][190:500]), b[190:500])
        assert np.array_equal(np.asarray(f["a"]["b"][::7]), b[::7])
        assert np.array_equal(np.asarray(f["a"]["b"]), b)
        assert np.array_equal(np.asarray(f["a"]["f"][1:3]), obj["a"]["f"][1:3])
        assert f["a"]["c"][2]["d"] == (3, 4)
        assert f["meta"] == "text"
        t = f["t"]
        assert len(t) == 2 and t[0] == 1 and np.array_equal(np.asarray(t[1]), obj["t"][1])
        n = f["n"]  # a dict, or a lazy view of it
        assert list(n.keys()) == [1] and n[1] == "non-str key" and 1 in n
        assert float(np.asarray(f["z"])) == 2.5
        with pytest.raises(KeyError):
            f["missing"]
        assert f.metadata == {"epoch": 3}
        assert isinstance(f.info, type(amber.inspect(p)))
        assert_same(obj, f.read())
        if "s1" in obj:
            assert f["s1"][1] == 2


def test_open_multi_axis_index(lazy_file: tuple[Path, dict[str, Any]]) -> None:
    p, obj = lazy_file
    b = obj["a"]["b"]
    with amber.open(p) as f:
        for key in (np.s_[10:20, 2], np.s_[1:4, ::2], np.s_[3, 1:3], np.s_[..., 1], np.s_[[1, 5]], np.s_[5:, -1]):
            got = np.asarray(f["a"]["b"][key])
            assert got.shape == b[key].shape and np.array_equal(got, b[key]), key


@pytest.mark.parametrize("root", [(np.arange(5), 2), [np.arange(4), "x"], np.arange(6).reshape(2, 3), 5,
                                  {1: np.arange(2)}, collections.OrderedDict(a=np.arange(2))],
                         ids=["tuple", "list", "array", "int", "nonstr_dict", "ordereddict"])
def test_open_non_dict_roots(tmp_path: Path, root: Any) -> None:
    p = tmp_path / "r.amber"
    amber.dump(root, p)
    with amber.open(p) as f:
        assert_same(root, f.read())
        if isinstance(root, (tuple, list)):
            assert list(f.keys()) == [0, 1]
            assert len(f) == 2
            assert_same(root[0], np.asarray(f[0]))
            assert f[1] == root[1]
        elif isinstance(root, dict):
            assert list(f.keys()) == list(root.keys())
            key = next(iter(root))
            assert_same(root[key], np.asarray(f[key]))


@pytest.mark.parametrize("shared_refs", [False, True])
def test_open_slice_reads_only_what_it_needs(shared_refs: bool) -> None:
    """f["a"]["b"][10:20] on an 8 MiB array reads about one 1 MiB block, not the array
    (also when the file has shared references, which lazy access must number)."""
    b = np.random.default_rng(2).random((1024, 1024))  # 8 MiB, one row = 8 KiB
    s = [1]
    inner = {"b": b, "s": s, "s2": s} if shared_refs else {"b": b, "c": [1]}
    for compress in (None, "zstd"):
        data = amber.dumps({"a": inner}, compress=compress)
        src = CountingReader(data)
        with amber.open(src) as f:
            start = src.nread
            part = np.asarray(f["a"]["b"][10:20])
            used = src.nread - start
        assert np.array_equal(part, b[10:20])
        assert used < 3 << 20, f"{used} bytes read for 10 rows (compress={compress})"


def test_lazy_node_read_loads_the_subtree() -> None:
    obj = {"n": {"x": [1, {"y": np.ones(3)}]}, "l": [np.arange(3), (1, np.arange(2))]}
    with amber.open(amber.dumps(obj)) as f:
        node = f["n"]
        assert hasattr(node, "read")
        assert_same(obj["n"], node.read())
        assert_same(obj["l"], f["l"].read())


def test_open_sources(tmp_path: Path) -> None:
    obj = {"x": np.arange(10), "y": "z"}
    p = tmp_path / "o.amber"
    amber.dump(obj, p)
    for src in (p, str(p), p.read_bytes(), io.BytesIO(p.read_bytes())):
        with amber.open(src) as f:
            assert np.array_equal(np.asarray(f["x"][3:6]), obj["x"][3:6])
            assert f["y"] == "z"


def test_open_untrusted(tmp_path: Path) -> None:
    p = tmp_path / "u.amber"
    amber.dump({"d": collections.defaultdict(make_default)}, p)
    with pytest.raises(amber.UntrustedTypeError):
        amber.open(p)
    with amber.open(p, trusted=[FACTORY_NAME]) as f:
        assert f.read()["d"].default_factory is make_default


# ---------------------------------------------------------------------------------------
# inspect
# ---------------------------------------------------------------------------------------


def test_inspect_report(tmp_path: Path) -> None:
    p = tmp_path / "i.amber"
    obj = {"w": np.zeros((3, 4)), "t": (1, 2), "od": collections.OrderedDict(a=1)}
    amber.dump(obj, p, metadata={"author": "me"})
    info = amber.inspect(p)
    text = str(info)
    assert amber.__version__ in text
    assert f"{FORMAT_VERSION[0]}.{FORMAT_VERSION[1]}" in text
    assert platform.python_version() in text
    assert np.__version__ in text
    assert "numpy.ndarray" in text and "tuple" in text and "collections.OrderedDict" in text
    assert "(3, 4)" in text and "<f8" in text
    assert "author" in text
    assert info.metadata == {"author": "me"}
    assert info.env["packages"]["numpy"] == np.__version__
    assert info.blobs == 1 and info.data_bytes == 96
    assert json.loads(info.to_json())["metadata"] == {"author": "me"}
    assert amber.inspect(str(p)).to_dict() == info.to_dict()
    assert amber.inspect(p.read_bytes()).types == info.types


def test_inspect_lists_untrusted_without_importing(tmp_path: Path) -> None:
    p = tmp_path / "u.amber"
    amber.dump({"d": collections.defaultdict(make_default)}, p)
    info = amber.inspect(p)
    assert FACTORY_NAME in info.needs
    assert info.untrusted == [FACTORY_NAME]
    assert "UNTRUSTED" in str(info)


def test_inspect_of_a_crafted_unimportable_name(tmp_path: Path) -> None:
    """inspect must not import anything: a name whose module does not exist is just listed."""
    data = amber.dumps({"d": collections.defaultdict(make_default)})
    bogus = "no_such_module_xyz.evil"
    data = data.replace(FACTORY_NAME.encode(), bogus.encode().ljust(len(FACTORY_NAME), b"_"))
    name = bogus.ljust(len(FACTORY_NAME), "_")
    data = rewrite_manifest(data, lambda m: None, check=False)  # recompute the checksum
    info = amber.inspect(data)
    assert name in info.untrusted
    assert "no_such_module_xyz" not in sys.modules


# ---------------------------------------------------------------------------------------
# metadata
# ---------------------------------------------------------------------------------------

METADATA = [
    {"epoch": 3, "loss": 0.125, "tags": ["a", "b"], "nested": {"x": [1, {"y": None}], "ok": True}},
    [1, 2.5, "three", None, False, [], {}],
    "just a string",
    42,
    -(2**63),
    2**64 - 1,
    1e308,
    float("nan"),
    float("-inf"),
    True,
    {"": {"": [[[[]]]]}, "unicode ✓": "\x00"},
    [{"deep": [{"er": [0] * 3}]}] * 3,
]


@pytest.mark.parametrize("meta", METADATA, ids=[str(i) for i in range(len(METADATA))])
def test_metadata_roundtrip(meta: Any, tmp_path: Path) -> None:
    p = tmp_path / "m.amber"
    amber.dump({"x": 1}, p, metadata=meta)
    obj, got = amber.load(p, with_metadata=True)
    assert obj == {"x": 1}
    assert_same(meta, got)
    with amber.open(p) as f:
        assert_same(meta, f.metadata)
    assert_same(meta, amber.inspect(p).metadata)
    obj, got = amber.loads(amber.dumps(2, metadata=meta), with_metadata=True)
    assert_same(meta, got)


def test_metadata_absent() -> None:
    assert amber.loads(amber.dumps(1), with_metadata=True) == (1, None)
    assert amber.loads(amber.dumps(1, metadata={"a": 1})) == 1


_cyclic: list[Any] = []
_cyclic.append(_cyclic)
BAD_METADATA = {
    "tuple": (1, 2),
    "set": {1},
    "int_key": {1: "x"},
    "none_key": {None: 1},
    "big_int": 2**64,
    "small_int": -(2**63) - 1,
    "bytes": b"x",
    "ndarray": np.arange(3),
    "np_scalar": np.float64(1.0),
    "datetime": __import__("datetime").date(2020, 1, 1),
    "nested_bad": {"ok": [1, {"bad": object()}]},
    "cyclic": _cyclic,
    "type": float,
}


@pytest.mark.parametrize("meta", list(BAD_METADATA.values()), ids=list(BAD_METADATA))
def test_non_json_metadata_raises_encode_error(meta: Any, tmp_path: Path) -> None:
    with pytest.raises(amber.EncodeError):
        amber.dumps(1, metadata=meta)
    p = tmp_path / "m.amber"
    with pytest.raises(amber.EncodeError):
        amber.dump(1, p, metadata=meta)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------
# determinism
# ---------------------------------------------------------------------------------------


def test_deterministic_dumps_identical() -> None:
    obj = {**sample(), **compress_sample(), "set": {f"s{i}" for i in range(100)}, "fs": frozenset("abcdef")}
    for compress in (None, "zstd", "lz4"):
        a = amber.dumps(obj, deterministic=True, compress=compress)
        b = amber.dumps(obj, deterministic=True, compress=compress)
        assert a == b
        assert amber.inspect(a).created is None
        assert_same(obj, amber.loads(a))


def test_deterministic_ignores_set_construction_order() -> None:
    words = [f"w{i}" for i in range(200)]
    s1, s2 = set(words), set(reversed(words))
    assert amber.dumps(s1, deterministic=True) == amber.dumps(s2, deterministic=True)


_HASHSEED_SCRIPT = r"""
import hashlib, sys
import numpy as np
import amber
objs = {
    "set_of_str": {f"s{i}" for i in range(64)},
    "frozenset_of_str": frozenset(f"f{i}" for i in range(64)),
    "set_of_bytes": {f"b{i}".encode() for i in range(64)},
    "dict_of_sets": {"a": {"x", "y", "z", "w"}, "b": [{"p", "q", "r"}]},
    "set_of_tuples": {("a", i) for i in range(30)},
    "mixed_with_arrays": {"a": np.arange(1000.0), "s": {"u", "v", "w", "x"}},
    "set_of_frozensets": {frozenset({f"a{i}"}) for i in range(20)},
    "set_of_tuples_with_nan": {(float("nan"), i) for i in range(12)} | {(0.5, 2), (2.0, 1)},
}
for name, obj in objs.items():
    for compress in (None, "zstd"):
        print(name, compress, hashlib.sha256(amber.dumps(obj, deterministic=True, compress=compress)).hexdigest())
"""


@pytest.fixture(scope="module")
def hashseed_digests() -> dict[tuple[str, str], set[str]]:
    """Digests of deterministic dumps made in processes with different hash seeds."""
    out: dict[tuple[str, str], set[str]] = collections.defaultdict(set)
    for seed in ("0", "1", "2", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        res = subprocess.run([sys.executable, "-c", _HASHSEED_SCRIPT], env=env, capture_output=True, text=True,
                             timeout=120)
        assert res.returncode == 0, res.stderr
        for line in res.stdout.splitlines():
            name, compress, digest = line.split()
            out[name, compress].add(digest)
    return out


@pytest.mark.parametrize("name", ["set_of_str", "frozenset_of_str", "set_of_bytes", "dict_of_sets",
                                  "set_of_tuples", "mixed_with_arrays"])
@pytest.mark.parametrize("compress", ["None", "zstd"])
def test_deterministic_across_hash_seeds(hashseed_digests: dict[tuple[str, str], set[str]], name: str,
                                         compress: str) -> None:
    assert len(hashseed_digests[name, compress]) == 1


@pytest.mark.parametrize("name", ["set_of_frozensets", "set_of_tuples_with_nan"])
def test_deterministic_partially_ordered_sets_across_hash_seeds(
    hashseed_digests: dict[tuple[str, str], set[str]], name: str
) -> None:
    assert len(hashseed_digests[name, "None"]) == 1


def test_non_deterministic_dumps_differ_only_in_created() -> None:
    obj = {**sample(), **compress_sample()}
    a = amber.dumps(obj)
    b = amber.dumps(obj)
    ma, offa = read_manifest(a)
    mb, offb = read_manifest(b)
    assert "created" in ma and "created" in mb
    ma.pop("created")
    mb.pop("created")
    assert ma == mb
    assert offa == offb and a[:offa] == b[:offb]  # header and blobs byte-identical
    assert amber.inspect(a).created


# ---------------------------------------------------------------------------------------
# provenance
# ---------------------------------------------------------------------------------------


def test_manifest_records_environment(tmp_path: Path) -> None:
    p = tmp_path / "e.amber"
    amber.dump({"a": np.arange(3)}, p)
    env = amber.inspect(p).env
    assert env["packages"]["numpy"] == np.__version__
    assert env["python"] == platform.python_version()
    manifest, _ = read_manifest(p.read_bytes())
    assert manifest["env"]["packages"]["numpy"] == np.__version__
    assert manifest["amber"] == amber.__version__


def _with_numpy_version(data: bytes, version: str) -> bytes:
    def edit(m: dict[str, Any]) -> None:
        m["env"]["packages"]["numpy"] = version

    return rewrite_manifest(data, edit)


def _bump_minor(v: str) -> str:
    major, minor, *_ = v.split(".")
    return f"{major}.{int(minor) + 1}.0"


@pytest.mark.parametrize("version", ["1.0.0", "0.9.1", "99.0", "bump_minor"])
def test_version_mismatch_warns(tmp_path: Path, version: str) -> None:
    if version == "bump_minor":
        version = _bump_minor(np.__version__)
    obj = {"a": np.arange(3)}
    p = tmp_path / "v.amber"
    p.write_bytes(_with_numpy_version(amber.dumps(obj), version))
    with pytest.warns(amber.VersionMismatchWarning, match="numpy") as rec:
        out = amber.load(p)
    assert_same(obj, out)
    assert version in str(rec[0].message) and np.__version__ in str(rec[0].message)
    assert issubclass(amber.VersionMismatchWarning, amber.AmberWarning)
    with pytest.warns(amber.VersionMismatchWarning):
        with amber.open(p) as f:
            assert np.array_equal(np.asarray(f["a"]), obj["a"])


def test_same_major_minor_does_not_warn(tmp_path: Path) -> None:
    major, minor, *_ = np.__version__.split(".")
    data = _with_numpy_version(amber.dumps({"a": np.arange(3)}), f"{major}.{minor}.999")

    def add_unknown(m: dict[str, Any]) -> None:
        m["env"]["packages"]["no-such-package-xyz"] = "1.0"

    data = rewrite_manifest(data, add_unknown)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        amber.loads(data)
        amber.load(data)


def test_version_mismatch_via_patched_dump(monkeypatch: pytest.MonkeyPatch) -> None:
    import amber.formats._native as native

    real = native.package_version
    monkeypatch.setattr(native, "package_version", lambda name: "0.1.0" if name == "numpy" else real(name))
    data = amber.dumps([np.float32(1)])
    monkeypatch.setattr(native, "package_version", real)
    assert amber.inspect(data).env["packages"]["numpy"] == "0.1.0"
    with pytest.warns(amber.VersionMismatchWarning, match="0.1.0"):
        amber.loads(data)


# ---------------------------------------------------------------------------------------
# atomic writes
# ---------------------------------------------------------------------------------------


class Interrupt(BaseException):
    """Like KeyboardInterrupt: not an Exception."""


class Boom:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


@pytest.fixture
def boom_handler() -> Any:
    from amber.handlers import REGISTRY, Handler

    class BoomHandler(Handler):
        handler_id = "tests.Boom"
        types = (Boom,)

        def encode(self, obj: Boom, ctx: Any) -> list[Any]:
            raise obj.exc

        def decode(self, node: list[Any], ctx: Any) -> Any:  # pragma: no cover
            raise AssertionError("never saved")

    REGISTRY.register(BoomHandler)
    yield
    REGISTRY.by_tag.pop(("tests.Boom", 1), None)
    REGISTRY.by_type.pop(Boom, None)


@pytest.fixture(scope="module")
def big_array() -> np.ndarray:
    return np.random.default_rng(9).random(1 << 20)  # 8 MiB


FAILURES = {
    "unsupported_after_big_array": (lambda: lambda: 0, amber.UnsupportedTypeError),
    "keyboard_interrupt_from_handler": (lambda: Boom(KeyboardInterrupt()), KeyboardInterrupt),
    "base_exception_from_handler": (lambda: Boom(Interrupt()), Interrupt),
    "error_from_handler": (lambda: Boom(RuntimeError("handler failed")), (RuntimeError, amber.EncodeError)),
    "unencodable_str": (lambda: "\ud800", amber.EncodeError),
    "too_deep": (lambda: _deep(20_000), amber.NestingError),
}


def _deep(n: int) -> Any:
    x: Any = []
    for _ in range(n):
        x = [x]
    return x


@pytest.mark.usefixtures("boom_handler")
@pytest.mark.parametrize("compress", [None, "zstd"])
@pytest.mark.parametrize("failure", list(FAILURES))
def test_failed_dump_keeps_earlier_file(tmp_path: Path, big_array: np.ndarray, failure: str, compress: Any) -> None:
    p = tmp_path / "model.amber"
    amber.dump({"old": [1, 2, 3]}, p)
    before = p.read_bytes()
    make_bad, exc_type = FAILURES[failure]
    obj = {"first": big_array, "more": [big_array[::2].copy(), np.arange(10)], "bad": make_bad()}
    with pytest.raises(exc_type):
        amber.dump(obj, p, compress=compress)
    assert p.read_bytes() == before
    assert tmp_files(tmp_path) == []
    assert [x.name for x in tmp_path.iterdir()] == ["model.amber"]
    assert amber.load(p) == {"old": [1, 2, 3]}


@pytest.mark.usefixtures("boom_handler")
def test_failed_dump_to_new_path_leaves_nothing(tmp_path: Path, big_array: np.ndarray) -> None:
    p = tmp_path / "new.amber"
    with pytest.raises(KeyboardInterrupt):
        amber.dump([big_array, Boom(KeyboardInterrupt())], p)
    assert list(tmp_path.iterdir()) == []


def test_bad_metadata_keeps_earlier_file(tmp_path: Path, big_array: np.ndarray) -> None:
    p = tmp_path / "model.amber"
    amber.dump([1], p)
    before = p.read_bytes()
    with pytest.raises(amber.EncodeError):
        amber.dump(big_array, p, metadata={"bad": (1,)})
    assert p.read_bytes() == before and tmp_files(tmp_path) == []


@pytest.mark.parametrize("compress", [None, "lz4"])
def test_durable_dump(tmp_path: Path, big_array: np.ndarray, compress: Any) -> None:
    p = tmp_path / "d.amber"
    amber.dump({"a": big_array}, p, durable=True, compress=compress)
    assert_same({"a": big_array}, amber.load(p))
    amber.dump({"b": 1}, p, durable=True)
    assert amber.load(p) == {"b": 1}
    before = p.read_bytes()
    with pytest.raises(amber.UnsupportedTypeError):
        amber.dump({"a": big_array, "f": lambda: 0}, p, durable=True, compress=compress)
    assert p.read_bytes() == before
    assert [x.name for x in tmp_path.iterdir()] == ["d.amber"]


_KILLED_DUMP = """
import os, sys, time
import numpy as np
import amber

class Stall:
    def __reduce__(self):
        open(sys.argv[2], "w").close()  # the big array before it is in the file by now
        time.sleep(60)
        return (int, ())

amber.dump({"big": np.ones(4_000_000), "stall": Stall()}, sys.argv[1])
"""


def test_a_killed_dump_keeps_the_earlier_file_and_leaves_nothing(tmp_path: Path) -> None:
    """SIGKILL in the middle of a dump: the earlier file is intact and, on Linux (O_TMPFILE),
    no temporary file is left behind either; elsewhere a hidden .amber-tmp file may stay."""
    p = tmp_path / "model.amber"
    amber.dump({"old": 1}, p)
    marker = tmp_path / "started"
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_DUMP, str(p), str(marker)])
    try:
        for _ in range(600):
            if marker.exists() or proc.poll() is not None:
                break
            threading.Event().wait(0.05)
        assert marker.exists(), "the dump never reached the stalling object"
    finally:
        proc.kill()
        proc.wait()
    assert amber.load(p) == {"old": 1}
    left = sorted(x.name for x in tmp_path.iterdir())
    if _io._UNNAMED:
        assert left == ["model.amber", "started"]
    else:  # pragma: no cover - not Linux
        assert set(left) - set(tmp_files(tmp_path)) == {"model.amber", "started"}


def test_dump_makes_new_files_with_the_usual_permissions(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    p = tmp_path / "x.amber"
    amber.dump([1], p)
    q = tmp_path / "plain"
    q.write_bytes(b"")
    assert (p.stat().st_mode & 0o777) == (q.stat().st_mode & 0o777) == 0o666 & ~umask
    amber.dump([2], p)  # replaced: still a file of its own
    assert amber.load(p) == [2] and (p.stat().st_mode & 0o777) == 0o666 & ~umask


def test_dump_when_linking_the_unnamed_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where /proc links cannot be followed (some sandboxes), the unnamed file is copied
    into a named one once, and later dumps name their temporary files from the start."""
    if not _io._UNNAMED:
        pytest.skip("no O_TMPFILE here")
    real_link = os.link

    def link(src: Any, dst: Any, **kw: Any) -> None:
        if str(src).startswith("/proc/"):
            raise PermissionError(1, "Operation not permitted")
        real_link(src, dst, **kw)

    monkeypatch.setattr(os, "link", link)
    monkeypatch.setattr(_io, "_UNNAMED", _io._UNNAMED)
    big = np.arange(3_000_000.0)
    p = tmp_path / "x.amber"
    amber.dump({"a": big}, p)
    assert _io._UNNAMED == 0
    assert np.array_equal(amber.load(p)["a"], big)
    amber.dump({"b": big[:10]}, p, durable=True)  # named from the start now
    assert np.array_equal(amber.load(p)["b"], big[:10])
    assert [x.name for x in tmp_path.iterdir()] == ["x.amber"]


def test_dump_over_an_existing_file_is_a_rename(tmp_path: Path) -> None:
    """An open reader of the old file keeps reading the old bytes (its inode), as with any
    atomic replace; the path shows the new file."""
    p = tmp_path / "x.amber"
    amber.dump({"v": np.arange(1000)}, p)
    with amber.open(p) as f:
        amber.dump({"v": np.arange(1000) * 2}, p)
        assert np.array_equal(f["v"][:], np.arange(1000))
    assert np.array_equal(amber.load(p)["v"], np.arange(1000) * 2)
    assert [x.name for x in tmp_path.iterdir()] == ["x.amber"]


def test_dump_into_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(amber.StorageError) as ei:
        amber.dump(1, tmp_path / "no" / "such" / "dir" / "x.amber")
    assert isinstance(ei.value, OSError)
    assert not (tmp_path / "no").exists()


def test_manifest_compressed_only_when_mid_sized() -> None:
    from amber.container._spec import FLAG_MANIFEST_ZLIB, TRAILER, TRAILER_SIZE

    def flags(data: bytes) -> int:
        return TRAILER.unpack(data[-TRAILER_SIZE:])[5]

    small = amber.dumps({"a": 1})
    parts = amber.dumps([{"name": f"layer{i}", "kind": "dense", "units": 64, "act": "relu"} for i in range(500)])
    big = amber.dumps({f"key{i}": i for i in range(200_000)})  # a manifest of megabytes
    assert flags(small) == 0 and flags(parts) == FLAG_MANIFEST_ZLIB and flags(big) == 0
    for data in (small, parts, big):
        amber.loads(data)


def test_hdf5_with_a_user_block_is_recognised_by_its_bytes(tmp_path: Path) -> None:
    import h5py

    p = tmp_path / "weights.data"  # no telling suffix: the signature sits at byte 512
    with h5py.File(p, "w", userblock_size=512) as f:
        f["layer"] = np.arange(6.0).reshape(2, 3)
    out = amber.load(p)
    assert list(out) == ["layer"] and np.array_equal(out["layer"], np.arange(6.0).reshape(2, 3))
    assert amber.inspect(p).format == "hdf5"


class _Stream(io.RawIOBase):
    """A file object that cannot seek (a pipe, a socket): read once, front to back."""

    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        return self._buf.readinto(b)


def test_open_and_inspect_read_a_stream_once(tmp_path: Path) -> None:
    """The format is told from the same read that the file is then used from: a stream
    that cannot seek is not asked for its bytes twice."""
    data = amber.dumps({"w": np.arange(4.0)})
    with amber.open(_Stream(data)) as f:
        assert np.array_equal(f["w"][:2], [0.0, 1.0])
    assert amber.inspect(_Stream(data)).format == "amber"
    assert amber.untrusted_types(_Stream(data)) == []
    text = amber.dumps({"t": (1, 2)}, format="json")
    assert amber.inspect(_Stream(text)).format == "json"


def test_dump_and_load_pause_the_cyclic_gc_and_leave_it_as_they_found_it(tmp_path: Path) -> None:
    import gc

    seen: list[bool] = []

    class Probe:
        def __reduce__(self) -> Any:
            seen.append(gc.isenabled())
            return (dict, ())

    p = tmp_path / "g.amber"
    assert gc.isenabled()
    amber.dump({"a": [1, 2]}, p)
    amber.dump(Probe(), tmp_path / "probe.pkl")  # (pickled by pickle itself, inside the pause)
    assert seen == [False] and gc.isenabled()
    assert amber.load(p) == {"a": [1, 2]} and gc.isenabled()
    with pytest.raises(amber.AmberError):
        amber.loads(b"\x80\x05garbage")
    assert gc.isenabled()
    with pytest.raises(amber.AmberError):
        amber.dump(lambda: 0, tmp_path / "f.amber")
    assert gc.isenabled()
    gc.disable()
    try:
        amber.dump({"b": 1}, p)
        assert amber.load(p) == {"b": 1} and amber.loads(amber.dumps([3])) == [3]
        assert not gc.isenabled()  # (a caller who turned it off keeps it off)
    finally:
        gc.enable()
