"""Robustness of the native format against damaged and hostile files.

Truncated files, wrong magic, newer format versions, bit flips anywhere, random bytes, and
manifests that are checksum-valid but lie (sizes beyond the file, absurd shapes, bogus
dtypes, forward references, unknown tags, imports nobody declared...): every one must end
in a specific ``amber.AmberError`` quickly and with bounded memory. Never a crash, a hang,
a MemoryError, or data that differs from what was saved.

Hostile files are built by tests/_hostile.py, independently of amber's writer, following
docs/format.md. Tests marked ``xfail(strict=True, reason="BUG: ...")`` document bugs found
in amber; they start to fail (XPASS) once the bug is fixed, so the mark can be removed.
"""

from __future__ import annotations

import bz2
import gc
import gzip
import itertools
import json
import lzma
import os
import random
import subprocess
import sys
import textwrap
import tracemalloc
import zlib
from datetime import datetime, timezone
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterator
from unittest import mock

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import amber
from _hostile import (
    ALIGN,
    FORMAT_VERSION,
    HEADER_SIZE,
    MAGIC,
    MAGIC_END,
    MAX_CHUNK,
    TRAILER,
    TRAILER_SIZE,
    Blob,
    T,
    budget,
    build,
    deep_equal,
    flip,
    h64,
    listn,
    mapn,
    nd,
    obj_nd,
    pack,
    parse,
    plainlist,
    plainmap,
    raw_blob,
    stored_blob,
)

#: Nothing here may hang: every test has a deadline (some set a tighter one).
pytestmark = pytest.mark.timeout(60)

#: Memory any hostile case may use (the files themselves are a few KiB).
PEAK_MB = 50
#: Wall time any single hostile load may take.
SECONDS = 2.0

FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

# ---------------------------------------------------------------------------------------
# samples
# ---------------------------------------------------------------------------------------


def sample_obj() -> dict[str, Any]:
    shared = [1, 2, 3]
    return {
        "f64": np.linspace(-1, 1, 40),
        "i32": np.arange(48, dtype="<i4").reshape(6, 8),
        "fortran": np.asfortranarray(np.arange(24, dtype=">f4").reshape(3, 8)),
        "img": np.arange(96, dtype=np.uint8).reshape(8, 12) * 7,
        "c128": np.array([1 + 2j, -3.5j] * 3),
        "bools": np.array([True, False, True] * 30),
        "strs": np.array(["ab", "cde"] * 5),
        "empty": np.zeros((0, 3)),
        "tiny": np.array([7, 8, 9], dtype="<i2"),  # stored inline in its node
        "i16": np.arange(40, dtype="<i2"),
        "u64": np.arange(20, dtype="<u8") * 3,
        "f16": np.arange(40, dtype="<f2"),
        "scalar": np.float32(1.5),
        "objects": np.array([1, "x", None], dtype=object),
        "nested": {
            "list": [1, "two", (3.0, None), [b"raw", {"deep": [1, 2, {"deeper": (1, (2, (3,)))}]}]],
            "set": {1, 2, 3},
            "big": 2**70,
            "when": datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
            "dec": Decimal("1.25"),
        },
        "a": shared,
        "b": shared,
    }


#: Codec of each successive blob in the mixed sample (None: stored uncompressed).
MIXED_CODECS = [None, "zstd", "lz4", None, "zlib", "gzip", "bz2", None, "lzma"]


@lru_cache(maxsize=None)
def mixed_sample() -> bytes:
    """The sample written by amber itself, its blobs alternately uncompressed and
    compressed with every codec (amber's writer, with the codec switched per blob)."""
    from amber.container import _writer
    from amber.container._codecs import resolve_compress

    orig = _writer.ContainerWriter.add_blob
    count = itertools.count()

    def add_blob(self: Any, data: Any, *args: Any, **kw: Any) -> int:
        self.codec = resolve_compress(MIXED_CODECS[next(count) % len(MIXED_CODECS)])
        return orig(self, data, *args, **kw)

    with mock.patch.object(_writer.ContainerWriter, "add_blob", add_blob):
        return amber.dumps(sample_obj(), compress="zstd", deterministic=True)


@lru_cache(maxsize=None)
def clean_mixed() -> Any:
    return amber.loads(mixed_sample())


@lru_cache(maxsize=None)
def multichunk_sample() -> tuple[bytes, dict[str, Any]]:
    """Blobs cut into many small chunks (so reads take the multi-chunk, thread-pool paths):
    a zstd blob, a shuffled zlib blob and an uncompressed blob with 64-byte hash blocks."""
    import zstandard

    z = np.arange(125, dtype="<f8") ** 2
    s = np.arange(60, dtype="<i4") * 1001
    r = np.arange(250, dtype="<u2")
    zraw = z.tobytes()
    zchunks = [zstandard.ZstdCompressor().compress(zraw[i : i + 96]) for i in range(0, len(zraw), 96)]
    sraw = s.tobytes()
    schunks = []
    for i in range(0, len(sraw), 48):
        part = np.frombuffer(sraw[i : i + 48], np.uint8).reshape(-1, 4).T.tobytes()
        schunks.append(zlib.compress(part))
    blobs = [
        stored_blob(zchunks, len(zraw), 96, "zstd"),
        stored_blob(schunks, len(sraw), 48, "zlib", filter={"name": "shuffle", "itemsize": 4}),
        raw_blob(r.tobytes(), chunk=64),
    ]
    tree = mapn({"z": nd(0, "<f8", [125]), "s": nd(1, "<i4", [6, 10]), "r": nd(2, "<u2", [250])})
    data = build(tree, blobs, manifest={"types": ["numpy.ndarray"]})
    return data, {"z": z, "s": s.reshape(6, 10), "r": r}


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------


def expect_error(
    data: bytes,
    exc: type[BaseException] | tuple[type[BaseException], ...] = amber.FormatError,
    *,
    match: str | None = None,
    peak_mb: float | None = PEAK_MB,
    seconds: float = SECONDS,
    lazy: bool = True,
    **load_kw: Any,
) -> BaseException:
    """``amber.loads(data)`` raises ``exc`` quickly within the memory budget, and so does
    reading the whole file through ``amber.open``. ``peak_mb=None``: time only (for cases
    that recurse deeply, which tracemalloc slows down by orders of magnitude)."""
    trace = peak_mb is not None
    limit = PEAK_MB if peak_mb is None else peak_mb
    with budget(trace) as b:
        with pytest.raises(exc, match=match) as info:
            amber.loads(data, **load_kw)
    assert b.seconds < seconds, f"took {b.seconds:.2f}s to refuse the file"
    assert b.peak_mb < limit, f"used {b.peak_mb:.1f} MiB to refuse the file"
    if lazy:
        with budget(trace) as b:
            with pytest.raises(amber.AmberError):
                f = amber.open(data, trusted=load_kw.get("trusted"))
                try:
                    f.read()
                finally:
                    f.close()
        assert b.seconds < seconds and b.peak_mb < limit
    return info.value


def loads_ok(data: bytes, trace: bool = True, **kw: Any) -> Any:
    with budget(trace) as b:
        out = amber.loads(data, **kw)
    assert b.seconds < SECONDS and b.peak_mb < PEAK_MB
    return out


def isolated(code: str) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter (tests/ on the path); it sets ``result`` (a dict).
    Adds ``rss_mb``: how much the peak resident memory (VmHWM) grew while ``code`` ran.
    (Not ru_maxrss: Linux carries that over from the forking pytest process.)"""
    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc/self/status")
    script = textwrap.dedent("""
        import json
        def _rss():
            for line in open("/proc/self/status"):
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        import amber, numpy, _hostile
        _r0 = _rss()
    """) + textwrap.dedent(code) + "\nresult['rss_mb'] = _rss() - _r0\nprint(json.dumps(result))\n"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def regions(data: bytes) -> list[tuple[int, int, str]]:
    """Every byte range of a valid file, named by what it holds."""
    p = parse(data)
    t = len(data) - TRAILER_SIZE
    out = [(0, 8, "magic"), (8, 12, "version"), (12, 16, "flags"), (16, HEADER_SIZE, "header padding")]
    spans = sorted((b["offset"], b["offset"] + b["stored"]) for b in p.blobs if b["stored"])
    pos = HEADER_SIZE
    for s, e in spans:
        if s > pos:
            out.append((pos, s, "gap"))
        out.append((s, e, "blob"))
        pos = e
    if p.m_off > pos:
        out.append((pos, p.m_off, "gap"))
    out += [
        (p.m_off, t, "manifest"),
        (t, t + 8, "trailer offset"),
        (t + 8, t + 16, "trailer length"),
        (t + 16, t + 24, "trailer hash"),
        (t + 24, t + 28, "trailer version"),
        (t + 28, t + 32, "trailer flags"),
        (t + 32, t + 40, "trailer magic"),
    ]
    assert sum(e - s for s, e, _ in out) == len(data)
    return out


#: Bytes no reader looks at (docs/format.md §2, §3, §5): a change there must either be
#: refused or load the very same data.
UNREAD = {"flags", "header padding", "gap"}
#: Fields whose change may say "another format" or "a newer amber" (FormatError, not only
#: CorruptFileError) even when other bytes were damaged too: the trailer's flags are read
#: before anything else, and a bit this amber does not know means a newer writer.
SAYS_FORMAT = {"magic", "version", "trailer flags"}


def check_damaged(data: bytes, clean: Any, kinds: set[str]) -> str:
    """Load a copy of a file whose bytes of the given kinds were changed: it must be refused
    with the right error, or (only for bytes nobody reads) give exactly the same data."""
    try:
        got = amber.loads(data)
    except amber.FormatError as exc:
        if kinds == {"magic"}:
            assert not isinstance(exc, (amber.CorruptFileError, amber.VersionError)), exc
        elif kinds == {"version"}:
            assert isinstance(exc, (amber.VersionError, amber.CorruptFileError)), exc
        elif not kinds <= UNREAD and not kinds & SAYS_FORMAT:
            assert isinstance(exc, amber.CorruptFileError), f"{kinds}: {exc!r}"
        return type(exc).__name__
    assert kinds <= UNREAD, f"a change to the {sorted(kinds)} loaded without an error"
    deep_equal(got, clean)
    return "same data"


# ---------------------------------------------------------------------------------------
# the samples themselves
# ---------------------------------------------------------------------------------------


def test_mixed_sample_round_trips_and_mixes_codecs() -> None:
    data = mixed_sample()
    deep_equal(amber.loads(data), sample_obj())
    names = [(b.get("codec") or {}).get("name") for b in parse(data).blobs if b["stored"]]
    assert None in names and {"zstd", "lz4", "zlib", "gzip", "bz2", "lzma"} <= set(names)
    loaded = amber.loads(data)
    assert loaded["a"] is loaded["b"]


def test_multichunk_sample_round_trips() -> None:
    data, expected = multichunk_sample()
    deep_equal(amber.loads(data), expected)
    with amber.open(data) as f:
        deep_equal(f["z"][3:100], expected["z"][3:100])
        deep_equal(f["r"][200:], expected["r"][200:])


# ---------------------------------------------------------------------------------------
# truncation, extension, wrong magic
# ---------------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_every_truncation_is_refused() -> None:
    data = mixed_sample()
    for n in range(len(data)):
        with pytest.raises(amber.FormatError) as info:
            amber.loads(data[:n])
        if n >= len(MAGIC):  # starts with the magic: truncated, not "not amber"
            assert isinstance(info.value, amber.CorruptFileError), (n, info.value)
        else:
            assert not isinstance(info.value, amber.CorruptFileError), (n, info.value)


@pytest.mark.timeout(60)
def test_truncated_files_on_disk(tmp_path: Path) -> None:
    data = mixed_sample()
    p = tmp_path / "t.amber"
    lengths = sorted({0, 1, 7, 8, 63, 64, 103, 104, len(data) - 41, len(data) - 40, len(data) - 1}
                     | set(range(0, len(data), 97)))
    for n in lengths:
        p.write_bytes(data[:n])
        with pytest.raises(amber.FormatError):
            amber.load(p)
        with pytest.raises(amber.FormatError):
            amber.open(p).read()
        with pytest.raises(amber.FormatError):
            amber.inspect(p)
        with open(p, "rb") as fh:
            with pytest.raises(amber.FormatError):
                amber.load(fh)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda d: d + b"\0", id="one-byte-appended"),
        pytest.param(lambda d: d + MAGIC_END, id="trailer-magic-appended"),
        pytest.param(lambda d: d + d, id="file-twice"),
        pytest.param(lambda d: d[:-TRAILER_SIZE] + b"\0" * 8 + d[-TRAILER_SIZE:], id="bytes-before-trailer"),
        pytest.param(lambda d: d[: len(d) // 2] + d[-TRAILER_SIZE:], id="middle-cut-out"),
        pytest.param(lambda d: d[:HEADER_SIZE] + d[-TRAILER_SIZE:], id="header-and-trailer-only"),
    ],
)
def test_extended_or_spliced_files_are_corrupt(damage: Callable[[bytes], bytes]) -> None:
    expect_error(damage(mixed_sample()), amber.CorruptFileError)


@pytest.mark.parametrize(
    "head",
    [
        b"", b"\x89", b"\x89AMB", b"\x89AMB\r\n\x1a", b"\x89AMB\n\x1a\n\0", b"\x89AMB\r\r\x1a\n",
        b"AMB\r\n\x1a\n", b"\x80\x04\x95", b"PK\x03\x04", b"\x93NUMPY", b"{\"a\": 1}", b"\x1f\x8b\x08",
        b"\x28\xb5\x2f\xfd", b"\x89HDF\r\n\x1a\n", b"\x89PNG\r\n\x1a\n", b"\x89amb\r\n\x1a\n",
    ],
)
def test_wrong_magic_is_not_an_amber_file(head: bytes) -> None:
    data = mixed_sample()
    for fake in (head, head + data[len(head):], head + data[8:], head + bytes(200)):
        if fake.startswith(MAGIC):
            continue
        exc = expect_error(fake, amber.FormatError, match="not an amber file", lazy=False, format="amber")
        assert not isinstance(exc, (amber.CorruptFileError, amber.VersionError))
        if fake == b'{"a": 1}':  # a valid JSON text: a JSON file, which loads and inspects as one
            assert amber.loads(fake) == {"a": 1} and amber.inspect(fake).format == "json"
        else:
            with pytest.raises(amber.FormatError):  # whatever it looks like, it does not load
                amber.loads(fake)
            # inspect and open go by the bytes: whatever format it looks like, it is refused
            with pytest.raises(amber.FormatError):
                amber.inspect(fake)
        with pytest.raises(amber.FormatError):
            amber.open(fake)


def test_each_magic_byte_changed() -> None:
    data = mixed_sample()
    for i in range(len(MAGIC)):
        for v in (0, 0xFF, data[i] ^ 0x20):
            bad = bytearray(data)
            bad[i] = v
            if bytes(bad) != data:
                exc = expect_error(bytes(bad), amber.FormatError, lazy=False)
                assert not isinstance(exc, amber.CorruptFileError)


# ---------------------------------------------------------------------------------------
# random bytes
# ---------------------------------------------------------------------------------------


@pytest.mark.timeout(120)
@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes_are_not_amber(data: bytes) -> None:
    if data.startswith(MAGIC):
        return
    with pytest.raises(amber.FormatError, match="not an amber file") as info:
        amber.loads(data, format="amber")
    assert not isinstance(info.value, amber.CorruptFileError)


@pytest.mark.timeout(120)
@FUZZ
@given(st.binary(max_size=4096) | st.binary(max_size=64).map(lambda b: b"\x80\x04\x95" + b))
def test_random_bytes_of_any_format(data: bytes) -> None:
    """Without format=, load recognises the bytes (pickle, zip, npy, compressed...): random
    bytes give an AmberError (or, rarely, a valid pickle of plain data), never anything else."""
    try:
        amber.loads(data)
    except amber.AmberError:
        pass


@pytest.mark.timeout(60)
def test_seeded_random_bytes_of_many_lengths() -> None:
    rng = random.Random(20240501)
    header = mixed_sample()[:HEADER_SIZE]
    for n in list(range(0, 300)) + [rng.randrange(300, 100_000) for _ in range(100)]:
        data = rng.randbytes(n)
        with pytest.raises(amber.FormatError):
            amber.loads(data, format="amber")
        try:  # recognised as what it looks like: an AmberError, or a harmless pickle
            amber.loads(data)
        except amber.AmberError:
            pass
        # the same bytes behind a valid magic, and behind a whole valid header
        with pytest.raises(amber.FormatError):
            amber.loads(MAGIC + data)
        with pytest.raises(amber.FormatError):
            amber.loads(header + data)


@pytest.mark.timeout(120)
@FUZZ
@given(st.binary(min_size=0, max_size=2048))
def test_random_manifest_bytes_with_valid_checksum(body: bytes) -> None:
    pre = mixed_sample()[:HEADER_SIZE]
    with budget() as b:
        with pytest.raises(amber.FormatError):
            amber.loads(pre + body + TRAILER.pack(HEADER_SIZE, len(body), h64(body), 1, 0, 0, MAGIC_END))
    assert b.peak_mb < PEAK_MB


@pytest.mark.timeout(120)
@FUZZ
@given(
    st.integers(0, 2**64 - 1) | st.sampled_from([0, 63, 64, 65, 2**63, 2**64 - 1]),
    st.integers(0, 2**64 - 1) | st.sampled_from([0, 1, 2**63, 2**64 - 1]),
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**16 - 1) | st.just(1),
    st.integers(0, 2**16 - 1) | st.just(0),
)
def test_random_trailer_fields(m_off: int, m_len: int, m_hash: int, major: int, minor: int) -> None:
    data = mixed_sample()
    p = parse(data)
    if (m_off, m_len, m_hash, major, minor) == (p.m_off, p.m_len, h64(data[p.m_off : p.m_off + p.m_len]), 1, 0):
        return
    bad = data[:-TRAILER_SIZE] + TRAILER.pack(m_off, m_len, m_hash, major, minor, 0, MAGIC_END)
    with budget() as b:
        with pytest.raises(amber.CorruptFileError):
            amber.loads(bad)
    assert b.peak_mb < PEAK_MB


# ---------------------------------------------------------------------------------------
# format versions
# ---------------------------------------------------------------------------------------

NEWER = [(FORMAT_VERSION[0], FORMAT_VERSION[1] + 1), (FORMAT_VERSION[0] + 1, 0), (2**16 - 1, 2**16 - 1)]


def _check_version_error(exc: BaseException, found: tuple[int, int]) -> None:
    assert isinstance(exc, amber.VersionError)
    assert exc.found == found and exc.newest == FORMAT_VERSION
    text = str(exc)
    assert "upgrade" in text.lower() and f"{found[0]}.{found[1]}" in text


@pytest.mark.parametrize("version", NEWER, ids=lambda v: f"{v[0]}.{v[1]}")
def test_newer_version_in_header_and_trailer(version: tuple[int, int], tmp_path: Path) -> None:
    bad = parse(mixed_sample()).rebuild(version=version)
    _check_version_error(expect_error(bad, amber.VersionError), version)
    p = tmp_path / "new.amber"
    p.write_bytes(bad)
    for fn in (amber.load, amber.open, amber.inspect):
        with pytest.raises(amber.VersionError) as info:
            fn(p)
        _check_version_error(info.value, version)


@pytest.mark.parametrize("version", NEWER, ids=lambda v: f"{v[0]}.{v[1]}")
def test_newer_version_in_header_only(version: tuple[int, int]) -> None:
    bad = parse(mixed_sample()).rebuild(version=version, trailer_version=FORMAT_VERSION)
    _check_version_error(expect_error(bad, amber.VersionError), version)


@pytest.mark.parametrize("version", NEWER, ids=lambda v: f"{v[0]}.{v[1]}")
def test_newer_version_with_a_different_layout(version: tuple[int, int]) -> None:
    """A future format may put anything after its header: the version decides first."""
    head = MAGIC + version[0].to_bytes(2, "little") + version[1].to_bytes(2, "little") + bytes(52)
    for body in (bytes(100), random.Random(1).randbytes(5000), b"FUTURE" * 40):
        _check_version_error(expect_error(head + body, amber.VersionError), version)


def test_newer_version_in_trailer_only_is_corrupt() -> None:
    bad = parse(mixed_sample()).rebuild(version=FORMAT_VERSION, trailer_version=NEWER[0])
    expect_error(bad, amber.CorruptFileError, match="disagree")


def test_older_version_loads_the_same_data() -> None:
    """(0, 9) is older than 1.0, so the version rule says accept."""
    deep_equal(amber.loads(parse(mixed_sample()).rebuild(version=(0, 9))), clean_mixed())


# ---------------------------------------------------------------------------------------
# bit flips
# ---------------------------------------------------------------------------------------


def _flip_everything(data: bytes) -> dict[str, set[str]]:
    """Flip every bit of the header, trailer and padding, and two bits of every other byte."""
    clean = amber.loads(data)
    outcomes: dict[str, set[str]] = {}
    for start, end, kind in regions(data):
        every_bit = kind not in ("blob", "manifest")
        for pos in range(start, end):
            bits = range(8) if every_bit else (pos % 8, (pos + 3) % 8)
            for bit in bits:
                outcomes.setdefault(kind, set()).add(check_damaged(flip(data, pos, bit), clean, {kind}))
    return outcomes


@pytest.mark.timeout(120)
def test_bit_flips_everywhere_mixed_sample() -> None:
    outcomes = _flip_everything(mixed_sample())
    assert outcomes["blob"] == {"CorruptFileError"}
    assert outcomes["manifest"] == {"CorruptFileError"}
    for kind in ("trailer offset", "trailer length", "trailer hash", "trailer version", "trailer magic"):
        assert outcomes[kind] == {"CorruptFileError"}, kind
    assert outcomes["magic"] == {"FormatError"}
    assert outcomes["version"] <= {"VersionError", "CorruptFileError"} and "VersionError" in outcomes["version"]
    for kind in UNREAD:
        assert outcomes.get(kind, {"same data"}) <= {"same data", "FormatError", "CorruptFileError"}


@pytest.mark.timeout(120)
def test_bit_flips_everywhere_multichunk_sample() -> None:
    data, _ = multichunk_sample()
    outcomes = _flip_everything(data)
    assert outcomes["blob"] == {"CorruptFileError"}
    assert outcomes["manifest"] == {"CorruptFileError"}


@pytest.mark.timeout(60)
def test_bit_flips_in_blobs_are_found_by_lazy_reads() -> None:
    """Slices read through ``amber.open`` check the chunks they touch."""
    data, _ = multichunk_sample()
    names = {0: "z", 1: "s", 2: "r"}
    for i, b in enumerate(parse(data).blobs):
        for pos in range(b["offset"], b["offset"] + b["stored"], 7):
            bad = flip(data, pos, pos % 8)
            with amber.open(bad) as f:
                with pytest.raises(amber.CorruptFileError, match="checksum"):
                    f[names[i]][:]


@pytest.mark.parametrize("size", [300_000, 50_000])
@pytest.mark.parametrize("which", [0, 17, 39])
def test_bit_flip_in_a_read_ahead_array_fails_the_load(tmp_path: Path, which: int, size: int) -> None:
    """Arrays read ahead in shared spans are read and checked in pieces of one or several
    arrays (300 kB arrays: one a piece; 50 kB: five); a mismatch in any of them (first of a
    span or piece, middle, last) still fails the load."""
    arrays = [np.full(size, i, dtype=np.uint8) for i in range(40)]
    path = tmp_path / "tiles.amber"
    amber.dump(arrays, path)
    data = path.read_bytes()
    b = parse(data).blobs[which]
    path.write_bytes(flip(data, b["offset"] + 12_345, 3))
    with pytest.raises(amber.CorruptFileError, match=f"blob {which}, chunk 0 .*checksum mismatch"):
        amber.load(path)
    assert amber.load(path, verify=False)[which][12_345] == which ^ 8
    # a clean file still loads, with every array its own values
    amber.dump(arrays, path)
    assert all(np.array_equal(a, b) for a, b in zip(amber.load(path), arrays))


@pytest.mark.parametrize("chunk", [0, 1, 2, 4])
def test_bit_flip_in_a_big_array_read_in_pieces_fails_the_load(tmp_path: Path, chunk: int) -> None:
    """A big blob is read in parts of whole checksum blocks that this thread and the read
    helper take in turn, each reading and hashing its blocks; a mismatch in any part names
    the block it lies in, and with checksums off the other parts' bytes are right."""
    big = np.arange(5 << 20, dtype=np.uint8)  # 5 MiB: five 1 MiB checksum blocks
    path = tmp_path / "big.amber"
    amber.dump({"small": np.ones(10), "big": big}, path)
    data = path.read_bytes()
    blobs = parse(data).blobs
    i, b = next((i, b) for i, b in enumerate(blobs) if b["nbytes"] == big.nbytes)
    at = (chunk << 20) + 77
    path.write_bytes(flip(data, b["offset"] + at, 0))
    with pytest.raises(amber.CorruptFileError, match=rf"blob {i}, chunk {chunk} .*checksum mismatch"):
        amber.load(path)
    got = amber.load(path, verify=False)["big"]
    want = big.copy()
    want[at] ^= 1
    assert np.array_equal(got, want)


def test_bit_flip_in_a_one_block_array_read_in_parts_fails_the_load(tmp_path: Path) -> None:
    """A blob of one checksum block big enough to be read in parts is hashed once all of
    them are in; damage in its last part fails the load."""
    one = np.arange(1 << 20, dtype=np.uint8)  # 1 MiB: one checksum block
    path = tmp_path / "one.amber"
    amber.dump([one, np.zeros(3)], path, compress=None)
    data = path.read_bytes()
    b = next(b for b in parse(data).blobs if b["nbytes"] == one.nbytes)
    assert len(b["chunks"]) == 1
    path.write_bytes(flip(data, b["offset"] + one.nbytes - 5, 2))
    with pytest.raises(amber.CorruptFileError, match=r"chunk 0 .*checksum mismatch"):
        amber.load(path)
    assert amber.load(path, verify=False)[0][-5] == one[-5] ^ 4


@pytest.mark.parametrize("chunk", [4096, 1000])
def test_small_checksum_blocks_in_a_big_blob(tmp_path: Path, chunk: int) -> None:
    """A writer may declare checksum blocks as small as it likes (1 byte to 1 GiB): the
    parts of a big blob then read several blocks per request, and a damaged block in any
    part is still named exactly."""
    big = np.arange(3 << 20, dtype=np.uint8) * 7
    path = tmp_path / "small-blocks.amber"
    amber.dump({"big": big}, path)
    p = parse(path.read_bytes())
    man = dict(p.manifest, blobs=[dict(b) for b in p.blobs])
    i, b = next((i, b) for i, b in enumerate(man["blobs"]) if b["nbytes"] == big.nbytes)
    raw = p.data[b["offset"] : b["offset"] + b["nbytes"]]
    b["chunk"] = chunk
    b["chunks"] = [[len(raw[s : s + chunk]), h64(raw[s : s + chunk])] for s in range(0, len(raw), chunk)]
    data = p.rebuild(man)
    path.write_bytes(data)
    deep_equal(amber.load(path), {"big": big})
    for at in (5, len(raw) // 2 - 1, len(raw) // 2 + 3 * chunk + 1, len(raw) - 1):
        path.write_bytes(flip(data, b["offset"] + at, 6))
        with pytest.raises(amber.CorruptFileError, match=rf"blob {i}, chunk {at // chunk} .*checksum mismatch"):
            amber.load(path)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_loads_in_a_forked_child_get_their_own_helper_threads(tmp_path: Path) -> None:
    """A forked child inherits the pools but not their threads: work queued there would
    never run and keep its buffers alive. The child starts pools of its own, so its loads
    read on two threads again and leave nothing queued."""
    obj = {"big": np.arange(3 << 20, dtype=np.uint8), "tiles": [np.full(300_000, i, np.uint8) for i in range(8)]}
    path = tmp_path / "fork.amber"
    amber.dump(obj, path)
    deep_equal(amber.load(path), obj)  # the parent's helper thread is running now
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        code = 3
        try:
            import time

            from amber.container._pool import read_helper

            for _ in range(3):
                deep_equal(amber.load(path), obj)
            ex = read_helper()
            alive = [t.is_alive() for t in ex._threads]  # type: ignore[attr-defined]
            # (a helper job cancelled because this thread took every part stays queued until
            # the helper's next look at its queue: there is one that looks)
            deadline = time.monotonic() + 10
            while ex._work_queue.qsize() and time.monotonic() < deadline:  # type: ignore[attr-defined]
                time.sleep(0.01)
            code = 0 if alive == [True] and ex._work_queue.qsize() == 0 else 2  # type: ignore[attr-defined]
        except BaseException as exc:  # noqa: BLE001 - said on stderr, the exit code fails the test
            sys.stderr.write(f"in the child: {exc!r}\n")
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, status


def test_loads_and_dumps_at_interpreter_exit(tmp_path: Path) -> None:
    """An atexit handler runs after the thread pools stopped taking work: big reads and
    writes then run on the calling thread, and still load and save the same data."""
    path = tmp_path / "exit.amber"
    code = textwrap.dedent(
        f"""
        import atexit
        import numpy as np
        import amber

        def at_exit():
            for n in (2 << 20, 9 << 20):
                obj = {{"a": np.arange(n, dtype=np.uint8), "tiles": [np.full(300_000, 5, np.uint8)] * 9}}
                amber.dump(obj, {str(path)!r})
                amber.dump(obj, {str(path)!r} + ".z", compress=True)
                for p in ({str(path)!r}, {str(path)!r} + ".z"):
                    back = amber.load(p)
                    assert np.array_equal(back["a"], obj["a"]) and len(back["tiles"]) == 9
            print("ok")

        amber.load(amber.dumps(np.zeros(4 << 20, np.uint8)))  # the pools exist and run
        atexit.register(at_exit)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_a_load_interrupted_while_the_helper_reads_waits_for_it() -> None:
    """The parts of a large read go into the caller's buffer from the caller's file, which
    the load closes as soon as it ends: an interruption (Ctrl-C) while a part still runs on
    the helper is raised only once no part runs any more, whether it came in a part of
    this thread's or while this thread waited for the helper's. Forced: whichever part
    each thread takes, the helper's runs slowly and this thread's is the one interrupted
    (or ends at once, and the interruption comes while this thread waits)."""
    import signal
    import threading
    import time

    from amber.container._pool import in_parts

    me = threading.get_ident()
    lock = threading.Lock()
    running = [0]
    started = threading.Event()

    def part(mine: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            with lock:
                running[0] += 1
            try:
                if threading.get_ident() == me:
                    assert started.wait(10), "the read helper never took a part"
                    mine()
                else:  # the helper: still reading when this thread is interrupted
                    started.set()
                    time.sleep(0.3)
            finally:
                with lock:
                    running[0] -= 1
        return run

    def interrupt() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        in_parts([part(interrupt), part(interrupt)])
    assert running == [0]

    def alarm(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    started.clear()
    old = signal.signal(signal.SIGALRM, alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05)  # this thread's part ends at once: the alarm comes in its wait
        with pytest.raises(KeyboardInterrupt):
            in_parts([part(lambda: None), part(lambda: None)])
        assert running == [0]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_parts_of_a_split_read_raise_the_lowest_failure_and_stop() -> None:
    """Every part runs once; after a part fails no new part starts, and the error of the
    lowest failed part is raised (the first damaged block of a blob, as a read in one
    piece would report). With the helper held up, this thread takes the parts in order,
    so where it stops is known (the other thread's stop, when it sees the failure between
    two parts, is not forced here: it depends on timing)."""
    import threading

    from amber.container._pool import in_parts, read_helper

    ran: list[int] = []

    def ok(i: int) -> Callable[[], None]:
        return lambda: ran.append(i)

    def bad(i: int) -> Callable[[], None]:
        def run() -> None:
            ran.append(i)
            raise ValueError(f"part {i}")
        return run

    in_parts([ok(i) for i in range(50)])  # both threads
    assert sorted(ran) == list(range(50))
    ran.clear()
    with pytest.raises(ValueError, match="part 2"):  # both threads: part 2 is taken before 3, so it runs
        in_parts([ok(0), ok(1), bad(2), bad(3), *[ok(i) for i in range(4, 200)]])
    assert 2 in ran and len(ran) == len(set(ran))
    release = threading.Event()
    busy = read_helper().submit(release.wait, 60)
    try:
        ran.clear()
        with pytest.raises(ValueError, match="part 2"):
            in_parts([ok(0), ok(1), bad(2), bad(3), ok(4)])
        assert ran == [0, 1, 2]  # nothing after the failure
        assert not busy.done()
    finally:
        release.set()
        busy.result()


def test_a_file_that_shrinks_while_it_is_read_names_where_it_ended(tmp_path: Path) -> None:
    """A local file cut short after it was opened (another process truncating it): reads
    past the new end raise StorageError naming the byte where the data ended (or where the
    read began, past it), never return short bytes, and a load of it fails with an
    AmberError."""
    from amber.container._io import FileSource

    p = tmp_path / "shrinks.amber"
    amber.dump({"a": np.arange(100_000)}, p)
    src = FileSource(p)
    try:
        size = src.size
        assert src.pread(0, 64) == p.read_bytes()[:64]
        os.truncate(p, 1000)
        with pytest.raises(amber.StorageError, match="unexpected end of file at byte 1000"):
            src.pread(900, 200)
        with pytest.raises(amber.StorageError, match=f"unexpected end of file at byte {size - 40}"):
            src.pread(size - 40, 40)  # (nothing there any more: the end is where the read began)
    finally:
        src.close()
    with pytest.raises(amber.AmberError):
        amber.load(p)


def test_a_failure_on_the_helper_stops_this_thread_taking_parts() -> None:
    """The stop crosses threads: a part that fails on the read helper keeps this thread
    from starting another part once its current one ends (and the helper's error is
    raised). Forced here: the helper's part fails while this thread is inside a part, and
    that part ends only after it failed, whichever parts each thread took."""
    import threading

    from amber.container._pool import in_parts

    me = threading.get_ident()
    here_started, helper_failed = threading.Event(), threading.Event()
    started: list[tuple[str, int]] = []

    def part(i: int) -> Callable[[], None]:
        def run() -> None:
            here = threading.get_ident() == me
            started.append(("here" if here else "helper", i))
            if not here:  # fails once this thread is inside a part of its own
                assert here_started.wait(30), "this thread never took a part"
                helper_failed.set()
                raise ValueError(f"helper part {i}")
            here_started.set()
            assert helper_failed.wait(30), "the read helper never took a part"
        return run

    with pytest.raises(ValueError, match="helper part"):
        in_parts([part(i) for i in range(40)])
    assert sorted(who for who, _ in started) == ["helper", "here"]  # one part each, then both stopped


def test_big_reads_from_bytes_in_memory(tmp_path: Path) -> None:
    """``loads`` of bytes copies large reads with NumPy (no GIL, the parts side by side):
    the data comes back whole, and damage in any part is still named exactly."""
    obj = {"big": np.arange(5 << 20, dtype=np.uint8) * 3, "tiles": [np.full(300_000, i, np.uint8) for i in range(9)]}
    data = amber.dumps(obj)
    deep_equal(amber.loads(data), obj)
    deep_equal(amber.loads(bytearray(data)), obj)
    deep_equal(amber.loads(memoryview(data)), obj)
    blobs = parse(data).blobs
    i, b = next((i, b) for i, b in enumerate(blobs) if b["nbytes"] == 5 << 20)
    for at in (7, (3 << 20) + 11, (5 << 20) - 1):
        with pytest.raises(amber.CorruptFileError, match=rf"blob {i}, chunk {at >> 20} .*checksum mismatch"):
            amber.loads(flip(data, b["offset"] + at, 1))
    j, t = next((j, t) for j, t in enumerate(blobs) if t["nbytes"] == 300_000 and j > len(blobs) // 2)
    with pytest.raises(amber.CorruptFileError, match=rf"blob {j}, chunk 0 .*checksum mismatch"):
        amber.loads(flip(data, t["offset"] + 5, 1))


def test_big_reads_finish_here_when_the_read_helper_is_busy(tmp_path: Path) -> None:
    """The read helper is one thread shared by every load of the process: when it is busy
    (another load, or here held up), the loading thread takes every part itself and
    cancels the helper's job, so a load never waits for another one's reads."""
    import threading

    from amber.container._pool import read_helper

    obj = {"big": np.arange(3 << 20, dtype=np.uint8), "tiles": [np.full(300_000, i, np.uint8) for i in range(12)]}
    path = tmp_path / "busy.amber"
    amber.dump(obj, path)
    release = threading.Event()
    busy = read_helper().submit(release.wait, 60)  # the single helper thread is held up
    try:
        for kw in ({}, {"verify": False}):
            deep_equal(amber.load(path, **kw), obj)
        data = path.read_bytes()
        b = parse(data).blobs[-1]
        path.write_bytes(flip(data, b["offset"] + 99, 5))
        with pytest.raises(amber.CorruptFileError, match="checksum mismatch"):
            amber.load(path)
        assert not busy.done()  # all of it was done here
    finally:
        release.set()
        busy.result()


def test_blobs_stored_out_of_index_order_load(tmp_path: Path) -> None:
    """docs/format.md section 5: readers must not rely on blobs being stored in index order.
    A file over SMALL_FILE (not read whole) whose data section holds its blobs in reverse
    order, each with its own bytes and checksums (offsets and manifest checksum updated),
    loads the same data read ahead in spans (verified or not), mapped and through
    ``amber.open``."""
    obj = {
        "a": np.arange(8192, dtype=np.float64),
        "b": np.arange(100, 20100, dtype=np.int32),
        "c": np.linspace(0, 1, 3000, dtype=np.float32),
        "d": np.arange(300, dtype=np.int16),
        "big": np.arange(5 << 20, dtype=np.uint8),
    }
    path = tmp_path / "reordered.amber"
    amber.dump(obj, path)
    p = parse(path.read_bytes())
    assert len(p.blobs) == len(obj)
    stored = [p.data[b["offset"] : b["offset"] + b.get("stored", b["nbytes"])] for b in p.blobs]
    out = bytearray(p.data[: min(b["offset"] for b in p.blobs)])
    man = dict(p.manifest, blobs=[dict(b) for b in p.blobs])
    for b, raw in reversed(list(zip(man["blobs"], stored))):
        out += bytes(-len(out) % ALIGN)
        b["offset"] = len(out)
        out += raw
    out += bytes(-len(out) % ALIGN)
    offsets = [b["offset"] for b in man["blobs"]]
    assert offsets == sorted(offsets, reverse=True)  # every blob lies before the one ahead of it
    path.write_bytes(p.rebuild(man, prefix=bytes(out)))
    assert path.stat().st_size > 4 << 20
    for kw in ({}, {"verify": False}, {"mmap": True}):
        deep_equal(amber.load(path, **kw), obj)
    with amber.open(path) as f:
        for name, want in obj.items():
            deep_equal(f[name][:], want)


def test_damage_that_fails_a_handler_check_is_reported_as_damage(tmp_path: Path) -> None:
    """Array bytes are handed to handlers before their checksums are known; when damaged
    bytes make a handler refuse the data (a category code out of range), the load reports
    the checksum mismatch, the real cause."""
    pd = pytest.importorskip("pandas")
    n = 1_000_000
    frame = pd.DataFrame(
        {"cat": pd.Categorical.from_codes(np.arange(n) % 3, ["a", "b", "c"]), "x": np.zeros(n)}
    )  # 9 MB: read in pieces, not whole
    path = tmp_path / "frame.amber"
    amber.dump(frame, path)
    data = bytearray(path.read_bytes())
    b = next(b for b in parse(bytes(data)).blobs if b["nbytes"] == n)  # the int8 codes
    data[b["offset"] + 500] = 0x70  # code 112 of 3 categories
    path.write_bytes(bytes(data))
    with pytest.raises(amber.CorruptFileError, match="checksum mismatch"):
        amber.load(path)
    with pytest.raises(amber.CorruptFileError, match="(?i)code|categor"):
        amber.load(path, verify=False)


@pytest.mark.timeout(120)
@FUZZ
@given(st.lists(st.tuples(st.integers(0, 10**9), st.integers(1, 255)), min_size=1, max_size=8))
def test_random_multi_byte_damage(changes: list[tuple[int, int]]) -> None:
    data = mixed_sample()
    bad = bytearray(data)
    for pos, x in changes:
        bad[pos % len(data)] ^= x
    changed = [i for i in {pos % len(data) for pos, _ in changes} if bad[i] != data[i]]
    kinds = {kind for s, e, kind in regions(data) for i in changed if s <= i < e}
    if kinds:
        check_damaged(bytes(bad), clean_mixed(), kinds)


# ---------------------------------------------------------------------------------------
# hostile blob tables (checksum-valid manifests that lie)
# ---------------------------------------------------------------------------------------

ARR = np.arange(4, dtype="<f8")
H32 = h64(ARR.tobytes())
TREE1 = mapn({"a": nd(0, "<f8", [4])})
Patch = Callable[[list[dict[str, Any]], int], None]


def _zstd(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor().compress(data)


def table_case(patch: Patch | None, blobs: Any = None, tree: Any = TREE1) -> Callable[[], bytes]:
    def make() -> bytes:
        bl = blobs() if callable(blobs) else (blobs or [raw_blob(ARR.tobytes())])
        return build(tree, bl, patch_entries=patch)
    return make


def _set(**fields: Any) -> Patch:
    def patch(table: list[dict[str, Any]], end: int) -> None:
        table[0].update(fields)
    return patch


def _del(key: str) -> Patch:
    def patch(table: list[dict[str, Any]], end: int) -> None:
        del table[0][key]
    return patch


def _at_manifest(table: list[dict[str, Any]], end: int) -> None:
    table[0]["offset"] = end  # aligned, but where the manifest starts


def _comp_blob() -> list[Blob]:
    return [stored_blob([_zstd(ARR.tobytes())], ARR.nbytes, 1 << 20)]


TWO_TREE = mapn({"a": nd(0, "<f8", [16]), "b": nd(1, "<f8", [4])})


def _two(second_at: int) -> Callable[[], list[Blob]]:
    """Blob 0 (128 bytes) at 64, blob 1 (32 bytes) at ``second_at``."""
    def make() -> list[Blob]:
        b1 = raw_blob(np.arange(16.0).tobytes())
        b2 = raw_blob(ARR.tobytes())
        b1.at, b2.at = 64, second_at
        return [b1, b2]
    return make


def _manifest_case(**fields: Any) -> Callable[[], bytes]:
    return lambda: build(TREE1, [raw_blob(ARR.tobytes())], manifest=fields)


BLOB_TABLE_CASES: list[Any] = [
    ("offset-far-beyond-file", table_case(_set(offset=1 << 40)), amber.CorruptFileError),
    ("offset-max-u64", table_case(_set(offset=2**64 - 64)), amber.CorruptFileError),
    ("offset-into-manifest", table_case(_at_manifest), amber.CorruptFileError),
    ("offset-in-header", table_case(_set(offset=0)), amber.CorruptFileError),
    ("offset-unaligned", table_case(_set(offset=72)), amber.CorruptFileError),
    ("offset-negative", table_case(_set(offset=-64)), amber.FormatError),
    ("offset-bool", table_case(_set(offset=True)), amber.FormatError),
    ("offset-float", table_case(_set(offset=64.0)), amber.FormatError),
    ("offset-str", table_case(_set(offset="64")), amber.FormatError),
    ("offset-nil", table_case(_set(offset=None)), amber.FormatError),
    ("stored-beyond-file", table_case(_set(stored=2**62)), amber.CorruptFileError),
    ("blobs-overlap-same-offset", table_case(None, _two(64), TWO_TREE), amber.CorruptFileError),
    ("blobs-overlap-inside", table_case(None, _two(128), TWO_TREE), amber.CorruptFileError),
    ("nbytes-2**60-uncompressed", table_case(_set(nbytes=2**60)), amber.CorruptFileError),
    ("nbytes-2**60-uncompressed-max-chunk", table_case(_set(nbytes=2**60, chunk=MAX_CHUNK)), amber.CorruptFileError),
    ("nbytes-max-u64-uncompressed", table_case(_set(nbytes=2**64 - 1)), amber.CorruptFileError),
    ("nbytes-2**60-zstd", table_case(_set(nbytes=2**60), _comp_blob), amber.CorruptFileError),
    ("nbytes-2**60-zstd-max-chunk", table_case(_set(nbytes=2**60, chunk=MAX_CHUNK), _comp_blob),
     amber.CorruptFileError),
    ("nbytes-max-u64-zstd", table_case(_set(nbytes=2**64 - 1), _comp_blob), amber.CorruptFileError),
    ("nbytes-beyond-zstd-ratio", table_case(_set(nbytes=1 << 26, chunk=1 << 26), _comp_blob), amber.CorruptFileError),
    ("nbytes-negative", table_case(_set(nbytes=-1)), amber.FormatError),
    ("nbytes-smaller-than-stored-uncompressed", table_case(_set(nbytes=16)), amber.CorruptFileError),
    ("chunk-zero", table_case(_set(chunk=0)), amber.FormatError),
    ("chunk-over-max", table_case(_set(chunk=MAX_CHUNK + 1)), amber.FormatError),
    ("chunk-negative", table_case(_set(chunk=-(1 << 20))), amber.FormatError),
    ("chunk-bool", table_case(_set(chunk=True)), amber.FormatError),
    ("chunks-too-many", table_case(_set(chunks=[[32, H32], [0, h64(b"")]])), amber.CorruptFileError),
    ("chunks-too-few", table_case(_set(chunks=[])), amber.CorruptFileError),
    ("chunks-count-for-small-chunk", table_case(_set(chunk=8)), amber.CorruptFileError),
    ("chunks-not-a-list", table_case(_set(chunks={"0": [32, H32]})), amber.FormatError),
    ("chunks-nil", table_case(_set(chunks=None)), amber.FormatError),
    ("chunk-entry-short", table_case(_set(chunks=[[32]])), amber.FormatError),
    ("chunk-entry-long", table_case(_set(chunks=[[32, H32, 0]])), amber.FormatError),
    ("chunk-entry-str", table_case(_set(chunks=[["32", H32]])), amber.FormatError),
    ("chunk-entry-negative", table_case(_set(chunks=[[-32, H32]])), amber.FormatError),
    ("chunk-entry-bool", table_case(_set(chunks=[[32, True]])), amber.FormatError),
    ("chunk-entry-map", table_case(_set(chunks=[{"len": 32}])), amber.FormatError),
    ("chunk-sizes-do-not-add-up", table_case(_set(chunks=[[16, H32]])), amber.CorruptFileError),
    ("uneven-hash-blocks", table_case(_set(chunk=8, chunks=[[16, 0], [0, 0], [8, 0], [8, 0]])),
     amber.CorruptFileError),
    ("wrong-block-hash", table_case(_set(chunks=[[32, H32 ^ 1]])), amber.CorruptFileError),
    ("unknown-codec", table_case(_set(codec={"name": "brotli", "configuration": {}}), _comp_blob), amber.FormatError),
    ("codec-not-a-map", table_case(_set(codec="zstd"), _comp_blob), amber.FormatError),
    ("codec-empty-map", table_case(_set(codec={}), _comp_blob), amber.FormatError),
    ("codec-level-str", table_case(_set(codec={"name": "zstd", "configuration": {"level": "3"}}), _comp_blob),
     amber.FormatError),
    ("codec-wrong-for-stream", table_case(_set(codec={"name": "lz4", "configuration": {}}), _comp_blob),
     amber.CorruptFileError),
    ("codec-dropped-from-compressed", table_case(_set(codec=None), _comp_blob), amber.CorruptFileError),
    ("filter-unknown", table_case(_set(filter={"name": "rot13", "itemsize": 8}), _comp_blob), amber.FormatError),
    ("filter-itemsize-0", table_case(_set(filter={"name": "shuffle", "itemsize": 0}), _comp_blob), amber.FormatError),
    ("filter-itemsize-17", table_case(_set(filter={"name": "shuffle", "itemsize": 17}), _comp_blob),
     amber.FormatError),
    ("filter-not-dividing", table_case(_set(filter={"name": "shuffle", "itemsize": 3}), _comp_blob),
     amber.FormatError),
    ("filter-delta-huge-stride", table_case(_set(filter={"name": "delta", "stride": 2**40}), _comp_blob),
     amber.FormatError),
    ("filter-on-uncompressed-blob", table_case(_set(filter={"name": "shuffle", "itemsize": 8})), amber.FormatError),
    ("filter-not-a-map", table_case(_set(filter="shuffle"), _comp_blob), amber.FormatError),
    ("unknown-blob-field", table_case(_set(encryption="aes")), amber.FormatError),
    ("entry-missing-chunks", table_case(_del("chunks")), amber.FormatError),
    ("entry-missing-offset", table_case(_del("offset")), amber.FormatError),
    ("entry-missing-nbytes", table_case(_del("nbytes")), amber.FormatError),
    ("blob-table-not-a-list", _manifest_case(blobs={"0": {}}), amber.FormatError),
    ("blob-entry-not-a-map", _manifest_case(blobs=[[64, 32, 32]]), amber.FormatError),
    ("blob-entry-nil", _manifest_case(blobs=[None]), amber.FormatError),
    ("blob-table-empty-but-used", _manifest_case(blobs=[]), amber.FormatError),
    ("blob-entry-int-keys", lambda: build(TREE1, raw_manifest=pack({"tree": pack(TREE1), "blobs": [{0: 64}]})),
     amber.CorruptFileError),
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("make, exc", [pytest.param(m, e, id=i) for i, m, e in BLOB_TABLE_CASES])
def test_hostile_blob_table(make: Callable[[], bytes], exc: type[BaseException]) -> None:
    expect_error(make(), exc)


def test_hostile_blob_table_controls() -> None:
    """The files those cases start from load fine."""
    deep_equal(loads_ok(table_case(None)()), {"a": ARR})
    deep_equal(loads_ok(table_case(None, _comp_blob)()), {"a": ARR})
    deep_equal(loads_ok(table_case(None, _two(192), TWO_TREE)()), {"a": np.arange(16.0), "b": ARR})


# ---------------------------------------------------------------------------------------
# decompression that lies
# ---------------------------------------------------------------------------------------

RAW = (np.arange(200, dtype="<u2") % 7).tobytes()  # 400 compressible bytes
CODEC_NAMES = ["zstd", "lz4", "zlib", "gzip", "bz2", "lzma"]


def compress(codec: str, data: bytes) -> bytes:
    """One stream of ``codec`` as docs/format.md §5.5 describes it."""
    if codec == "zstd":
        return _zstd(data)
    if codec == "lz4":
        import lz4.block

        return lz4.block.compress(data, store_size=False)
    return {
        "zlib": lambda: zlib.compress(data),
        "gzip": lambda: gzip.compress(data, mtime=0),
        "bz2": lambda: bz2.compress(data),
        "lzma": lambda: lzma.compress(data, format=lzma.FORMAT_XZ),
    }[codec]()


def _one_chunk(codec: str, stream: bytes, nbytes: int, chunk: int = 1 << 20, **kw: Any) -> bytes:
    return build(nd(0, "|u1", [nbytes]), [stored_blob([stream], nbytes, chunk, codec, **kw)])


@pytest.mark.parametrize("codec", CODEC_NAMES)
def test_honest_streams_load(codec: str) -> None:
    assert loads_ok(_one_chunk(codec, compress(codec, RAW), len(RAW))).tobytes() == RAW


@pytest.mark.parametrize("codec", CODEC_NAMES)
@pytest.mark.parametrize(
    "lie",
    ["declares-more", "declares-less", "declares-one-byte", "truncated-stream", "garbage-stream", "empty-stream",
     "other-codecs-stream"],
)
def test_decompression_yielding_the_wrong_size(codec: str, lie: str) -> None:
    stream, n = compress(codec, RAW), len(RAW)
    if lie == "declares-more":
        n += 8
    elif lie == "declares-less":
        n -= 8
    elif lie == "declares-one-byte":
        n = 1
    elif lie == "truncated-stream":
        stream = stream[: len(stream) * 2 // 3]
    elif lie == "garbage-stream":
        stream = random.Random(len(codec)).randbytes(len(stream))
    elif lie == "empty-stream":
        stream = b""
    elif lie == "other-codecs-stream":
        stream = compress(CODEC_NAMES[(CODEC_NAMES.index(codec) + 1) % len(CODEC_NAMES)], RAW)
    expect_error(_one_chunk(codec, stream, n), amber.CorruptFileError)


@pytest.mark.parametrize("codec", CODEC_NAMES)
@pytest.mark.parametrize("extra", ["trailing-junk", "second-stream"])
def test_bytes_after_the_stream_never_give_wrong_data(codec: str, extra: str) -> None:
    """docs/format.md §14 lets a reader ignore what follows the stream; then the data read
    must still be exactly right (or the chunk refused)."""
    stream = compress(codec, RAW)
    if extra == "trailing-junk":
        data, want = _one_chunk(codec, stream + b"\0trailing junk", len(RAW)), RAW
    else:
        data, want = _one_chunk(codec, stream + stream, 2 * len(RAW)), RAW + RAW
    try:
        got = amber.loads(data)
    except amber.CorruptFileError:
        return
    assert got.tobytes() == want


@pytest.mark.parametrize("codec", CODEC_NAMES)
def test_shuffled_chunk_of_the_wrong_size(codec: str) -> None:
    raw = np.arange(50, dtype="<f8").tobytes()
    shuffled = np.frombuffer(raw, np.uint8).reshape(-1, 8).T.tobytes()
    blob = stored_blob([compress(codec, shuffled)], len(raw) + 8, 1 << 20, codec,
                       filter={"name": "shuffle", "itemsize": 8})
    expect_error(build(nd(0, "<f8", [51]), [blob]), amber.CorruptFileError)


@pytest.mark.parametrize("codec", ["zstd", "zlib", "lz4"])
def test_one_bad_chunk_among_many(codec: str) -> None:
    """Parallel chunk decoding: one lying chunk fails the read, without a hang."""
    raw = bytes(range(256)) * 40
    chunk = 256
    streams = [compress(codec, raw[i : i + chunk]) for i in range(0, len(raw), chunk)]
    tree = mapn({"x": nd(0, "|u1", [len(raw)])})
    assert loads_ok(build(tree, [stored_blob(streams, len(raw), chunk, codec)]))["x"].tobytes() == raw
    for k in (0, 17, len(streams) - 1):
        bad = list(streams)
        bad[k] = compress(codec, raw[k * chunk : k * chunk + chunk - 1])  # one byte short
        expect_error(build(tree, [stored_blob(bad, len(raw), chunk, codec)]), amber.CorruptFileError)


@pytest.mark.timeout(30)
def test_zstd_bomb_declared_size_beyond_any_ratio_is_refused_before_allocating() -> None:
    """Declared sizes that the stored bytes cannot produce: refused from the table alone."""
    frame = _zstd(bytes(1000))
    for nbytes, chunk, count in [(2**40, 1 << 26, 2**40 >> 26), (2**36, 1 << 26, 2**36 >> 26),
                                 (1 << 31, 1 << 21, 1024)]:
        data = build(nd(0, "|u1", [nbytes]), [stored_blob([frame] * count, nbytes, chunk, "zstd")])
        expect_error(data, amber.CorruptFileError, match="expand")


def _zstd_stream_of_zeros(n: int, content_size: bool = True) -> bytes:
    import zstandard

    co = zstandard.ZstdCompressor(write_content_size=content_size).compressobj(size=n if content_size else -1)
    block = bytes(1 << 20)
    return b"".join([co.compress(block) for _ in range(n >> 20)] + [co.flush()])


@pytest.mark.timeout(30)
def test_zstd_frame_without_content_size_bigger_than_declared() -> None:
    frame = _zstd_stream_of_zeros(64 << 20, content_size=False)
    assert len(frame) < 64 << 10
    expect_error(_one_chunk("zstd", frame, 1000), amber.CorruptFileError)


@pytest.mark.timeout(30)
def test_zstd_bomb_real_frame_bigger_than_declared() -> None:
    frame = _zstd_stream_of_zeros(64 << 20)
    assert len(frame) < 64 << 10
    expect_error(_one_chunk("zstd", frame, 1000), amber.CorruptFileError)


@pytest.mark.timeout(30)
def test_zstd_frame_lying_about_its_content_size() -> None:
    import zstandard

    frame = zstandard.ZstdCompressor(write_content_size=True).compress(b"abc" * 10)
    # frame header descriptor 0xE0: an 8-byte Frame_Content_Size, single segment
    liar = frame[:4] + bytes([0xE0]) + (1 << 30).to_bytes(8, "little") + frame[6:]
    assert zstandard.get_frame_parameters(liar).content_size == 1 << 30
    expect_error(_one_chunk("zstd", liar, 30), amber.CorruptFileError)


# ---------------------------------------------------------------------------------------
# hostile array nodes
# ---------------------------------------------------------------------------------------


def arr_case(tree: Any, blob: bytes = ARR.tobytes(), **kw: Any) -> Callable[[], bytes]:
    return lambda: build(tree, [raw_blob(blob)], **kw)


def deep_dtype(levels: int) -> Any:
    d: Any = "<f8"
    for _ in range(levels):
        d = {"base": d, "shape": [1]}
    return d


def struct_dtype(fmt: Any, itemsize: int = 8, offset: int = 0) -> dict[str, Any]:
    return {"names": ["x"], "formats": [fmt], "offsets": [offset], "itemsize": itemsize, "aligned": False}


def _short(d: Any) -> str:
    try:
        return str(d)[:24]
    except RecursionError:
        return "deeply-nested"


ARRAY_CASES: list[Any] = [
    ("shape-2**40x2**40", arr_case(nd(0, "<f8", [2**40, 2**40])), amber.CorruptFileError),
    ("shape-2**63x2**63", arr_case(nd(0, "<f8", [2**63, 2**63])), amber.CorruptFileError),
    ("shape-max-u64", arr_case(nd(0, "<f8", [2**64 - 1])), amber.CorruptFileError),
    ("shape-overflow-times-zero", arr_case(nd(0, "<f8", [2**63, 2**63, 0]), b""), amber.CorruptFileError),
    ("shape-negative", arr_case(nd(0, "<f8", [-1, -4])), amber.CorruptFileError),
    ("shape-one-negative", arr_case(nd(0, "<f8", [-4])), amber.CorruptFileError),
    ("shape-min-i64", arr_case(nd(0, "<f8", [-(2**63), -4])), amber.CorruptFileError),
    ("shape-65-dims", arr_case(nd(0, "<f8", [1] * 64 + [4])), amber.CorruptFileError),
    ("shape-10000-dims", arr_case(nd(0, "<f8", [1] * 10_000 + [4])), amber.CorruptFileError),
    ("shape-float", arr_case(nd(0, "<f8", [4.0])), amber.CorruptFileError),
    ("shape-bool", arr_case(nd(0, "<f8", [True, 4])), amber.CorruptFileError),
    ("shape-str", arr_case(nd(0, "<f8", "4")), amber.CorruptFileError),
    ("shape-int", arr_case(nd(0, "<f8", 4)), amber.CorruptFileError),
    ("shape-nil", arr_case(nd(0, "<f8", None)), amber.CorruptFileError),
    ("shape-map", arr_case(nd(0, "<f8", {"0": 4})), amber.CorruptFileError),
    ("shape-too-big-for-blob", arr_case(nd(0, "<f8", [5])), amber.CorruptFileError),
    ("shape-too-small-for-blob", arr_case(nd(0, "<f8", [3])), amber.CorruptFileError),
    ("shape-0d-for-4-items", arr_case(nd(0, "<f8", [])), amber.CorruptFileError),
    ("dtype-too-small-for-blob", arr_case(nd(0, "<f4", [4])), amber.CorruptFileError),
    ("dtype-too-big-for-blob", arr_case(nd(0, "<c16", [4])), amber.CorruptFileError),
    ("order-bogus", arr_case(nd(0, "<f8", [4], "X")), amber.CorruptFileError),
    ("order-int", arr_case(nd(0, "<f8", [4], 1)), amber.CorruptFileError),
    ("blob-missing", arr_case([T("numpy.ndarray"), {"dtype": "<f8", "shape": [4]}]), amber.FormatError),
    ("blob-out-of-range", arr_case(nd(1, "<f8", [4])), amber.FormatError),
    ("blob-negative", arr_case(nd(-1, "<f8", [4])), amber.FormatError),
    ("blob-bool", arr_case(nd(False, "<f8", [4])), amber.FormatError),
    ("blob-str", arr_case(nd("0", "<f8", [4])), amber.FormatError),
    ("blob-list", arr_case(nd([0], "<f8", [4])), amber.FormatError),
    ("blob-max-u64", arr_case(nd(2**64 - 1, "<f8", [4])), amber.FormatError),
    ("blob-used-twice", arr_case(listn(nd(0, "<f8", [4]), nd(0, "<f8", [4]))), amber.CorruptFileError),
    ("payload-missing", arr_case([T("numpy.ndarray")]), amber.CorruptFileError),
    ("payload-not-a-map", arr_case([T("numpy.ndarray"), ["<f8", [4], 0]]), amber.CorruptFileError),
    ("payload-extra-item", arr_case([T("numpy.ndarray"), {"dtype": "<f8", "shape": [4], "blob": 0}, 1]),
     amber.CorruptFileError),
    # object arrays
    ("object-items-count-mismatch", arr_case(obj_nd([3], [1, 2])), amber.CorruptFileError),
    ("object-items-absurd-shape", arr_case(obj_nd([2**40, 2**40], [])), amber.CorruptFileError),
    ("object-items-absurd-shape-times-zero", arr_case(obj_nd([2**62, 4, 0], [])), amber.CorruptFileError),
    ("object-items-0d-empty", arr_case(obj_nd([], [])), amber.CorruptFileError),
    ("object-items-not-a-list", arr_case(obj_nd([2], {"0": 1, "1": 2})), amber.CorruptFileError),
    ("object-items-int", arr_case(obj_nd([2], 5)), amber.CorruptFileError),
    ("object-items-missing", arr_case([T("numpy.ndarray"), {"dtype": "O", "shape": [2]}]), amber.CorruptFileError),
    ("object-dtype-with-a-blob", arr_case(nd(0, "O", [4])), amber.CorruptFileError),
    ("object-items-hold-a-bare-map", arr_case(obj_nd([1], [{"a": 1}])), amber.CorruptFileError),
    ("object-items-hold-a-forward-ref", arr_case(obj_nd([1], [[T("ref"), 5]]), refs=1), amber.CorruptFileError),
]

BOGUS_DTYPES: list[Any] = [
    "|O", "<O", ">O", "=O", "|O8", "O8", "object", "O4", "<f8,<i4", "<a5", "a5", "f8", "<f8 ", " <f8", "", "<",
    "<f7", "<i3", "<U99999999999", "<V99999999999", "|S99999999999", "<M8[9999999999999999999as]",
    "<m8[fortnight]", "<(2,2)f8", "<(2**40,)f8", "<q", "<P", "<g", "|b7", "<f8\0", "<f8\u00e9", "x" * 1000,
    8, 8.0, None, True, b"<f8", ["<f8"], {"type": "<f8"}, {"base": "O", "shape": [2]},
    {"base": "<f8", "shape": [2**31]}, {"base": "<f8", "shape": [-1]}, {"base": "<f8", "shape": "2"},
    {"base": "<f8", "shape": [2**20, 2**20]},
    struct_dtype("O"), struct_dtype("|O"), struct_dtype({"base": "O", "shape": [1]}),
    struct_dtype("<f8", itemsize=4), struct_dtype("<f8", offset=2**40), struct_dtype("<f8", itemsize=-8),
    struct_dtype("<f8", itemsize=2**62),
    {"names": ["x", "x"], "formats": ["<f8", "<f8"], "offsets": [0, 0], "itemsize": 8},
    {"names": ["x"], "formats": ["<f8", "<f8"], "offsets": [0], "itemsize": 8},
    {"names": "x", "formats": "<f8", "offsets": 0, "itemsize": 8},
    {"names": [1], "formats": ["<f8"], "offsets": [0], "itemsize": 8},
    {"names": ["x"], "formats": ["<f8"]},
    deep_dtype(33), deep_dtype(400),
]

ARRAY_CASES += [
    (f"dtype-{i}-{_short(d)}", arr_case(nd(0, d, [4])), amber.CorruptFileError) for i, d in enumerate(BOGUS_DTYPES)
]
ARRAY_CASES += [
    (f"scalar-dtype-{i}-{_short(d)}", arr_case([T("numpy.scalar"), d, bytes(8)]), amber.CorruptFileError)
    for i, d in enumerate(BOGUS_DTYPES)
]
ARRAY_CASES += [
    # an object scalar made from raw bytes would be a pointer taken from the file
    ("scalar-object-pointer", arr_case([T("numpy.scalar"), "O", (2**40).to_bytes(8, "little")]),
     amber.CorruptFileError),
    ("scalar-struct-object-pointer", arr_case([T("numpy.scalar"), struct_dtype("O"), bytes(8)]),
     amber.CorruptFileError),
    ("scalar-bytes-too-short", arr_case([T("numpy.scalar"), "<f8", bytes(4)]), amber.CorruptFileError),
    ("scalar-bytes-too-long", arr_case([T("numpy.scalar"), "<f8", bytes(9)]), amber.CorruptFileError),
    ("scalar-bytes-str", arr_case([T("numpy.scalar"), "<f8", "12345678"]), amber.CorruptFileError),
    ("scalar-arity", arr_case([T("numpy.scalar"), "<f8"]), amber.CorruptFileError),
    ("dtype-node-deep", arr_case([T("numpy.dtype"), deep_dtype(400)]), amber.CorruptFileError),
    ("dtype-node-bogus", arr_case([T("numpy.dtype"), "<f8,<i4"]), amber.CorruptFileError),
]
ARRAY_CASES += [
    (f"zero-itemsize-{d}-{shape}", arr_case(nd(0, d, shape), b""), amber.CorruptFileError)
    for d in ("|S0", "<U0")
    for shape in ([2**40, 2**40], [2**62, 2])
]

ZERO_ITEMSIZE_CASES = [
    (f"zero-itemsize-{name}-{shape}", arr_case(nd(0, d, shape), b""), amber.CorruptFileError)
    for name, d in (("V0", "|V0"), ("empty-struct", {"names": [], "formats": [], "offsets": [], "itemsize": 0}))
    for shape in ([2**40, 2**40], [2**62, 2])
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("make, exc", [pytest.param(m, e, id=i) for i, m, e in ARRAY_CASES])
def test_hostile_array_nodes(make: Callable[[], bytes], exc: type[BaseException]) -> None:
    expect_error(make(), exc)


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "make, exc", [pytest.param(m, e, id=i) for i, m, e in ZERO_ITEMSIZE_CASES]
)
def test_absurd_shapes_of_zero_itemsize(make: Callable[[], bytes], exc: type[BaseException]) -> None:
    expect_error(make(), exc)


def test_hostile_array_controls() -> None:
    """The nodes those cases start from load fine, itemsize-0 arrays of sane shapes included."""
    deep_equal(loads_ok(arr_case(nd(0, "<f8", [4]))()), ARR)
    deep_equal(loads_ok(arr_case(nd(0, "<f8", [2, 2], "F"))()), ARR.reshape(2, 2, order="F"))
    deep_equal(loads_ok(arr_case(obj_nd([2], [1, "x"]))()), np.array([1, "x"], dtype=object))
    deep_equal(loads_ok(arr_case([T("numpy.scalar"), "<f8", bytes(8)])()), np.float64(0))
    got = loads_ok(build(nd(0, "|V0", [3, 2]), [raw_blob(b"")]))
    assert got.shape == (3, 2) and got.size == 6 and got.dtype.itemsize == 0


@pytest.mark.parametrize("shape", [[2**40, 2**40], [2**63], [-1], [1] * 65])
def test_hostile_shapes_through_lazy_open(shape: list[int]) -> None:
    data = build(mapn({"a": nd(0, "<f8", shape)}), [raw_blob(ARR.tobytes())])
    with budget() as b:
        with pytest.raises(amber.CorruptFileError):
            with amber.open(data) as f:
                f["a"]
    assert b.peak_mb < PEAK_MB and b.seconds < SECONDS


# ---------------------------------------------------------------------------------------
# hostile node trees
# ---------------------------------------------------------------------------------------


def tree_case(tree: Any, **kw: Any) -> Callable[[], bytes]:
    return lambda: build(tree, **kw)


def raw_tree(raw: Any, **kw: Any) -> Callable[[], bytes]:
    """A manifest whose ``tree`` field is ``raw`` (normally the packed tree)."""
    return lambda: build(None, manifest={"tree": raw}, **kw)


def seg(node: Any) -> list[Any]:
    return [T("seg"), pack(node)]


def nested_lists(depth: int) -> bytes:
    """A packed tree of ``depth`` nested list nodes in one msgpack document (built by hand:
    msgpack-python refuses to pack that deep)."""
    return b"\x92\xc4\x04list" * depth + b"\x01"


def nested_with_segments(depth: int, every: int = 100) -> Any:
    """``depth`` nested list nodes, cut into a segment every ``every`` levels the way amber's
    writer does it."""
    node: Any = 1
    for level in range(depth, 0, -1):
        node = [T("list"), node]
        if level % every == 0:
            node = seg(node)
    return node


def _defaultdict(factory: str | None) -> list[Any]:
    return [T("collections.defaultdict"), factory, "k", 1]


TREE_CASES: list[Any] = [
    # references
    ("ref-forward", tree_case(listn([T("ref"), 5], listn()), refs=1), amber.CorruptFileError),
    ("ref-to-itself-pending", tree_case([T("frozenset"), [T("ref"), 0]], refs=1), amber.CorruptFileError),
    ("ref-into-pending-parent", tree_case(listn([T("frozenset"), listn([T("ref"), 1])]), refs=1),
     amber.CorruptFileError),
    ("ref-out-of-range", tree_case(listn([T("ref"), 2**64 - 1]), refs=1), amber.CorruptFileError),
    ("ref-negative", tree_case(listn([T("ref"), -1]), refs=1), amber.CorruptFileError),
    ("ref-bool", tree_case(listn([T("ref"), False]), refs=1), amber.CorruptFileError),
    ("ref-str", tree_case(listn([T("ref"), "0"]), refs=1), amber.CorruptFileError),
    ("ref-no-target", tree_case(listn([T("ref")]), refs=1), amber.CorruptFileError),
    ("ref-two-targets", tree_case(listn([T("ref"), 0, 0]), refs=1), amber.CorruptFileError),
    ("ref-at-root", tree_case([T("ref"), 0], refs=1), amber.CorruptFileError),
    ("ref-undeclared", tree_case(listn(listn(), [T("ref"), 1]), refs=0), amber.CorruptFileError),
    # tags
    ("unknown-tag", tree_case([b"no.such.handler", 1]), amber.FormatError),
    ("unknown-tag-empty", tree_case([b"", 1]), amber.FormatError),
    ("unknown-tag-pickle", tree_case([b"pickle", b"\x80\x04K\x01."]), amber.FormatError),
    ("unknown-tag-os-system", tree_case([b"os.system", "echo hi"]), amber.FormatError),
    ("unknown-version-tuple@2", tree_case([T("tuple", 2), 1]), amber.FormatError),
    ("unknown-version-map@2", tree_case([T("map", 2), [], []]), amber.FormatError),
    ("unknown-version-ref@3", tree_case(listn(listn(), [T("ref", 3), 1]), refs=1), amber.FormatError),
    ("unknown-version-seg@2", tree_case([T("seg", 2), pack(1)]), amber.FormatError),
    ("unknown-version-ndarray@99999", tree_case([T("numpy.ndarray", 99999), {}]), amber.FormatError),
    ("tag-unicode-digit-version", tree_case(["tuple@\u00b2".encode(), 1]), amber.FormatError),
    ("tag-arabic-digit-version", tree_case(["tuple@\u0661".encode(), 1]), amber.FormatError),
    ("tag-not-utf8", tree_case([b"\xff\xfe", 1]), amber.CorruptFileError),
    ("tag-huge", tree_case([b"x" * 100_000, 1]), amber.FormatError),
    ("many-distinct-unknown-tags", tree_case(listn(*[[f"t{i}".encode()] for i in range(5000)])), amber.FormatError),
    # structure
    ("bare-map-root", tree_case({"a": 1}), amber.CorruptFileError),
    ("bare-map-in-list", tree_case(listn({"a": 1})), amber.CorruptFileError),
    ("bare-map-in-map", tree_case(mapn({"a": {"b": 1}})), amber.CorruptFileError),
    ("bare-map-in-tuple", tree_case([T("tuple"), {"b": 1}]), amber.CorruptFileError),
    ("map-without-payload", tree_case([T("map")]), amber.CorruptFileError),
    ("map-payload-list", tree_case([T("map"), [1, 2]]), amber.CorruptFileError),
    ("map-payload-int", tree_case([T("map"), 5]), amber.CorruptFileError),
    ("map-payload-two-maps", tree_case([T("map"), {}, {}]), amber.CorruptFileError),
    ("map-plain-payload-int", tree_case([T("map.plain"), 1]), amber.CorruptFileError),
    ("seg-without-payload", tree_case([T("seg")]), amber.CorruptFileError),
    ("seg-payload-str", tree_case([T("seg"), "\x91\x01"]), amber.CorruptFileError),
    ("seg-junk", tree_case([T("seg"), b"\xc1"]), amber.CorruptFileError),
    ("seg-truncated", tree_case([T("seg"), pack(listn(1, 2, 3))[:-1]]), amber.CorruptFileError),
    ("seg-extra-data", tree_case([T("seg"), pack(1) + pack(2)]), amber.CorruptFileError),
    ("seg-holding-ext", tree_case([T("seg"), pack(msgpack.ExtType(5, b"x"))]), amber.CorruptFileError),
    ("seg-holding-int-key", tree_case([T("seg"), pack({1: 2})]), amber.CorruptFileError),
    ("deep-lists-in-one-document", raw_tree(nested_lists(1500)), amber.CorruptFileError),
    ("very-deep-lists-in-one-document", raw_tree(nested_lists(200_000)), amber.CorruptFileError),
    ("too-deep-with-segments", tree_case(nested_with_segments(10_500)), amber.CorruptFileError),
    # handler payloads
    ("ordereddict-odd-items", tree_case([T("collections.OrderedDict"), 1, 2, 3]), amber.CorruptFileError),
    ("ordereddict-unhashable-key", tree_case([T("collections.OrderedDict"), listn(), 1]), amber.CorruptFileError),
    ("counter-unhashable-key", tree_case([T("collections.Counter"), [T("set")], 1]), amber.CorruptFileError),
    ("map-unhashable-key", tree_case([T("map"), [listn()], [1]]), amber.CorruptFileError),
    ("set-unhashable", tree_case([T("set"), listn()]), amber.CorruptFileError),
    ("set-signalling-nan-decimal", tree_case([T("set"), [T("decimal.Decimal"), "sNaN"]]), amber.CorruptFileError),
    ("deque-negative-maxlen", tree_case([T("collections.deque"), -1]), amber.CorruptFileError),
    ("deque-huge-maxlen", tree_case([T("collections.deque"), 2**64 - 1]), amber.CorruptFileError),
    ("complex-ints", tree_case([T("complex"), 1, 2]), amber.CorruptFileError),
    ("range-step-zero", tree_case([T("range"), 0, 10, 0]), amber.CorruptFileError),
    ("range-floats", tree_case([T("range"), 0.0, 10, 1]), amber.CorruptFileError),
    ("date-invalid", tree_case([T("datetime.date"), 2024, 13, 45]), amber.CorruptFileError),
    ("datetime-short", tree_case([T("datetime.datetime"), 2024, 1, 1]), amber.CorruptFileError),
    ("datetime-zone-path", tree_case([T("datetime.datetime"), 2024, 1, 1, 0, 0, 0, 0, 0, "../../etc/passwd"]),
     amber.CorruptFileError),
    ("datetime-zone-absolute", tree_case([T("datetime.datetime"), 2024, 1, 1, 0, 0, 0, 0, 0, "/etc/localtime"]),
     amber.CorruptFileError),
    ("datetime-zone-directory", tree_case([T("datetime.datetime"), 2024, 1, 1, 0, 0, 0, 0, 0, "America"]),
     amber.CorruptFileError),
    ("datetime-zone-not-tzif", tree_case([T("datetime.datetime"), 2024, 1, 1, 0, 0, 0, 0, 0, "zone.tab"]),
     amber.CorruptFileError),
    ("datetime-fold-7", tree_case([T("datetime.datetime"), 2024, 1, 1, 0, 0, 0, 0, 7, None]), amber.CorruptFileError),
    ("timezone-too-far", tree_case([T("datetime.timezone"), 5, 0, 0, None]), amber.CorruptFileError),
    ("timedelta-overflow", tree_case([T("datetime.timedelta"), 2**62, 0, 0]), amber.CorruptFileError),
    ("decimal-not-a-number", tree_case([T("decimal.Decimal"), "one"]), amber.CorruptFileError),
    ("fraction-zero-denominator", tree_case([T("fractions.Fraction"), 1, 0]), amber.CorruptFileError),
    ("fraction-floats", tree_case([T("fractions.Fraction"), 1.5, 2]), amber.CorruptFileError),
    ("uuid-short", tree_case([T("uuid.UUID"), b"\0" * 15]), amber.CorruptFileError),
    ("path-unknown-class", tree_case([T("pathlib.Path"), "EvilPath", "/"]), amber.CorruptFileError),
    ("int-not-bytes", tree_case([T("int"), 5]), amber.CorruptFileError),
    ("bytearray-str", tree_case([T("bytearray"), "abc"]), amber.CorruptFileError),
    ("ellipsis-payload", tree_case([T("ellipsis"), 1]), amber.CorruptFileError),
    ("slice-short", tree_case([T("slice"), 1]), amber.CorruptFileError),
    ("generator-unknown-bitgen", tree_case([T("numpy.random.Generator"), "Evil", plainmap({})],
                                           needs=["numpy.random.PCG64"]), amber.CorruptFileError),
    ("generator-bad-state", tree_case([T("numpy.random.Generator"), "PCG64", plainmap({"state": 1})],
                                      needs=["numpy.random.PCG64"]), amber.CorruptFileError),
    ("randomstate-bad-state", tree_case([T("numpy.random.RandomState"), "MT19937", plainmap({"x": 1})],
                                        needs=["numpy.random.MT19937"]), amber.CorruptFileError),
    ("defaultdict-factory-int", tree_case([T("collections.defaultdict"), 5, "k", 1]), amber.CorruptFileError),
    # the tree field itself
    ("tree-missing", lambda: build(None, raw_manifest=pack({"blobs": [], "needs": []})), amber.FormatError),
    ("tree-str", raw_tree("\x91\x01"), amber.FormatError),
    ("tree-int", raw_tree(1), amber.FormatError),
    ("tree-list", raw_tree([1]), amber.FormatError),
    ("tree-empty-bin", raw_tree(b""), amber.CorruptFileError),
    ("tree-junk", raw_tree(b"\xc1\xc1\xc1"), amber.CorruptFileError),
    ("tree-truncated", raw_tree(pack(listn(1, "abc"))[:-2]), amber.CorruptFileError),
    ("tree-two-documents", raw_tree(pack(1) + pack(2)), amber.CorruptFileError),
    ("tree-array-claims-4G-items", raw_tree(b"\xdd\xff\xff\xff\xff" + b"\x01" * 16), amber.CorruptFileError),
    ("tree-map-claims-4G-items", raw_tree(b"\xdf\xff\xff\xff\xff" + b"\x01" * 16), amber.CorruptFileError),
    ("tree-bin-claims-4GB", raw_tree(b"\xc6\xff\xff\xff\xff" + b"\x01" * 16), amber.CorruptFileError),
    ("tree-str-claims-4GB", raw_tree(b"\xdb\xff\xff\xff\xff" + b"\x01" * 16), amber.CorruptFileError),
    ("tree-invalid-utf8-str", raw_tree(b"\xa2\xff\xfe"), amber.CorruptFileError),
    ("tree-reserved-byte", raw_tree(b"\xc1"), amber.CorruptFileError),
    # the manifest itself
    ("manifest-list", lambda: build(None, raw_manifest=pack([pack(1)])), amber.FormatError),
    ("manifest-nil", lambda: build(None, raw_manifest=pack(None)), amber.FormatError),
    ("manifest-empty", lambda: build(None, raw_manifest=b""), amber.CorruptFileError),
    ("manifest-int-keys", lambda: build(None, raw_manifest=pack({1: 2, "tree": pack(1)})), amber.CorruptFileError),
    ("manifest-ext-in-metadata", lambda: build(1, manifest={"metadata": msgpack.ExtType(7, b"")}),
     amber.CorruptFileError),
    ("manifest-array-claims-4G-items", lambda: build(None, raw_manifest=b"\xdd\xff\xff\xff\xff\x01"),
     amber.CorruptFileError),
]
TREE_CASES += [
    (f"ext-type-{code}-in-tree", tree_case(listn(msgpack.ExtType(code, b"tuple"))), amber.CorruptFileError)
    for code in (0, 1, 2, 5, 42, 127)
]
TREE_CASES += [
    (f"ext-type-{code}-as-tag", tree_case([msgpack.ExtType(code, b"tuple"), 1]), amber.CorruptFileError)
    for code in (0, 1)
]

# Documented in docs/format.md: the content of plain arrays, list.plain and map.plain is
# returned as data without being decoded (that is what makes plain data free to load), and
# msgpack decodes its own timestamp extension (-1) before amber sees it. Such hostile bytes
# come back as inert values (tuples, dicts, msgpack.Timestamp): nothing is imported or called.
BUGGY_TREE_CASES: list[Any] = [
    ("timestamp-in-tree", tree_case(listn(msgpack.Timestamp(1, 0))), amber.CorruptFileError, None),
    ("timestamp-in-plain-list", tree_case(plainlist(msgpack.Timestamp(2**33, 5))), amber.CorruptFileError,
     None),
    ("timestamp-in-metadata", lambda: build(1, manifest={"metadata": msgpack.Timestamp(1, 0)}),
     amber.CorruptFileError, None),
    ("ndarray-node-in-plain-list", tree_case(plainlist(nd(0, "<f8", [4]))), amber.CorruptFileError,
     None),
    ("ndarray-node-in-plain-map", tree_case(plainmap({"a": nd(0, "<f8", [4])})), amber.CorruptFileError,
     None),
    ("ref-node-in-plain-array", tree_case(listn(listn(), [1, [T("ref"), 0]]), refs=1), amber.CorruptFileError,
     None),
    ("bare-map-in-plain-list", tree_case(plainlist({"a": 1})), amber.CorruptFileError, None),
]

#: Cases that recurse thousands of levels: timed, but not traced (see ``budget``).
DEEP = {"too-deep-with-segments"}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("case, make, exc", [pytest.param(i, m, e, id=i) for i, m, e in TREE_CASES]
                         )
def test_hostile_node_trees(case: str, make: Callable[[], bytes], exc: type[BaseException]) -> None:
    expect_error(make(), exc, peak_mb=None if case in DEEP else PEAK_MB)


@pytest.mark.parametrize("case, make", [pytest.param(i, m, id=i) for i, m, _, _ in BUGGY_TREE_CASES])
def test_plain_content_is_inert_data(case: str, make: Callable[[], bytes]) -> None:
    before = set(sys.modules)
    out = amber.loads(make())
    assert set(sys.modules) == before  # nothing was imported
    leaves: list[Any] = []

    def walk(x: Any) -> None:
        if isinstance(x, (list, tuple)):
            for v in x:
                walk(v)
        elif isinstance(x, dict):
            for v in x.values():
                walk(v)
        else:
            leaves.append(x)

    walk(out)
    plain = (int, float, str, bytes, bool, type(None), msgpack.Timestamp)
    assert all(isinstance(v, plain) for v in leaves), leaves


def test_hostile_node_tree_controls() -> None:
    """What the cases above start from is fine."""
    got = loads_ok(build(listn(listn(), [T("ref"), 1]), refs=1))
    assert got == [[], []] and got[0] is got[1]
    assert loads_ok(build([T("tuple", 1), 1])) == (1,)
    good_map = mapn({"a": 1, "b": listn()})
    assert loads_ok(build([T("map", 1), *good_map[1:]])) == {"a": 1, "b": []}
    assert loads_ok(build(seg(seg(listn(1))))) == [1]
    x = loads_ok(build(None, manifest={"tree": nested_lists(500)}))
    for _ in range(500):
        x = x[0]
    assert x == 1
    x = loads_ok(build(nested_with_segments(9_000)), trace=False)
    for _ in range(9_000):
        x = x[0]
    assert x == 1
    got = loads_ok(build([T("datetime.datetime"), 2024, 1, 1, 0, 0, 0, 0, 0, "Europe/Paris"]))
    assert got.tzinfo is not None and str(got.tzinfo) == "Europe/Paris"
    d = loads_ok(build(_defaultdict("builtins.list"), needs=["builtins.list"]))
    assert d["k"] == 1 and d["other"] == []


@pytest.mark.timeout(60)
def test_chain_of_segments_uses_bounded_memory() -> None:
    """Segments nested directly in segments: every level holds the bytes of all inside it,
    so the reader bounds the chain (amber itself nests one segment per 100 levels)."""
    res = isolated("""
        from _hostile import T, build, pack
        node = 1
        for _ in range(8000):
            node = [T("seg"), pack(node)]
        data = build(node)
        try:
            amber.loads(data)
            result = {"size": len(data), "error": None}
        except amber.CorruptFileError as exc:
            result = {"size": len(data), "error": str(exc)}
    """)
    assert res["size"] < 80 << 10 and res["error"] and "segments are nested" in res["error"]
    assert res["rss_mb"] < PEAK_MB, res


@pytest.mark.timeout(60)
def test_many_package_names_in_env_load_quickly_and_leave_nothing_behind() -> None:
    def fresh(n: int) -> bytes:
        names = {f"fake-pkg-{random.random()}-{i}": "1.0" for i in range(n)}
        return build(plainmap({}), manifest={"env": {"packages": names}})

    data = fresh(3000)
    gc.collect()
    was = tracemalloc.is_tracing()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        assert amber.loads(data) == {}
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - base
    finally:
        if not was:
            tracemalloc.stop()
    data = fresh(3000)
    with budget(trace=False) as b:
        assert amber.loads(data) == {}
    assert kept < 256 << 10, f"a load kept {kept / 1024:.0f} KiB"
    assert b.seconds < 0.25, b.seconds


@pytest.mark.parametrize("name", ["", "*", "[", "a\0b", "../..", "/", "..", "\\", "numpy/../x", " ", "x" * 5000])
def test_odd_package_names_in_env(name: str) -> None:
    assert loads_ok(build(plainmap({}), manifest={"env": {"packages": {name: "1.0"}}})) == {}


@pytest.mark.parametrize("env", [None, 1, "x", [], {"packages": None}, {"packages": [1]},
                                 {"packages": {"numpy": None}}, {"packages": {"numpy": 1}},
                                 {"packages": {"numpy": [1, 2]}}, {"packages": {"numpy": {"a": 1}}}])
def test_malformed_env_is_ignored(env: Any) -> None:
    assert loads_ok(build(plainmap({}), manifest={"env": env})) == {}


# ---------------------------------------------------------------------------------------
# trust: nothing is imported unless declared and trusted
# ---------------------------------------------------------------------------------------


def test_needs_os_system_is_refused_before_anything(canary: tuple[str, Path]) -> None:
    name, marker = canary
    needs = ["os.system", f"{name}.factory"]
    data = build(listn(_defaultdict(f"{name}.factory"), _defaultdict("os.system")), needs=needs)
    for trusted in (None, ["os"], ["os.system", name]):
        exc = expect_error(data, amber.UntrustedTypeError, trusted=trusted)
        assert "os.system" in exc.untrusted and "os.system" in str(exc)
    with pytest.raises(amber.UntrustedTypeError):
        amber.open(data, trusted=[name])
    info = amber.inspect(data)
    assert "os.system" in info.untrusted
    str(info)
    assert name not in sys.modules and not marker.exists()


@pytest.mark.parametrize(
    "needs, trusted",
    [
        (["os.system"], None),
        (["os.system"], ["os"]),
        (["posix.system"], ["posix"]),
        (["subprocess.Popen"], ["subprocess"]),
        (["builtins.eval"], ["builtins"]),
        (["builtins.exec"], ["builtins.exec"]),
        (["builtins.getattr"], None),
        (["importlib.import_module"], ["importlib"]),
        (["pickle.loads"], None),
        (["numpy.load"], ["numpy"]),
        (["functools.partial"], ["functools"]),
        (["builtins.list", "os.system"], None),
    ],
)
def test_denied_names_in_needs(needs: list[str], trusted: list[str] | None) -> None:
    exc = expect_error(build(plainmap({}), needs=needs), amber.UntrustedTypeError, trusted=trusted)
    assert set(exc.untrusted) == {n for n in needs if n != "builtins.list"}


@pytest.mark.parametrize("needs", ["os.system", [1], [None], {"os": "system"}, [["os.system"]], 5, [b"os.system"]])
def test_malformed_needs(needs: Any) -> None:
    expect_error(build(plainmap({}), manifest={"needs": needs}), amber.FormatError)


def test_untrusted_canary_is_never_imported(canary: tuple[str, Path]) -> None:
    name, marker = canary
    data = build(_defaultdict(f"{name}.factory"), needs=[f"{name}.factory"])
    exc = expect_error(data, amber.UntrustedTypeError)
    assert exc.untrusted == (f"{name}.factory",)
    amber.inspect(data)
    assert name not in sys.modules and not marker.exists()


def test_trusted_canary_is_imported_control(canary: tuple[str, Path]) -> None:
    """The canary works: trusted and declared, it is imported and used."""
    name, marker = canary
    data = build(_defaultdict(f"{name}.factory"), needs=[f"{name}.factory"])
    d = amber.loads(data, trusted=[name])
    assert d["missing"] == "made" and marker.exists()


@pytest.mark.parametrize(
    "tree, needs",
    [
        (_defaultdict("builtins.list"), []),
        (_defaultdict("builtins.list"), ["builtins.dict"]),
        (_defaultdict("os.system"), []),
        (_defaultdict("builtins.eval"), ["builtins.list"]),
        ([T("numpy.random.Generator"), "PCG64", plainmap({})], []),
        ([T("numpy.random.Generator"), "PCG64", plainmap({})], ["numpy.random.MT19937"]),
        ([T("numpy.random.RandomState"), "MT19937", plainmap({})], []),
    ],
)
def test_resolving_an_undeclared_name(tree: Any, needs: list[str]) -> None:
    expect_error(build(tree, needs=needs), amber.CorruptFileError, match="does not declare")


def test_resolving_an_undeclared_canary(canary: tuple[str, Path]) -> None:
    name, marker = canary
    data = build(_defaultdict(f"{name}.factory"), needs=["builtins.list"])
    expect_error(data, amber.CorruptFileError, match="does not declare", trusted=[name])
    assert name not in sys.modules and not marker.exists()


# ---------------------------------------------------------------------------------------
# lazy access and inspect never crash on hostile files
# ---------------------------------------------------------------------------------------

ALL_CASES = [(i, m) for i, m, _ in BLOB_TABLE_CASES + ARRAY_CASES + TREE_CASES + ZERO_ITEMSIZE_CASES] + [
    (i, m) for i, m, _, _ in BUGGY_TREE_CASES
]

INSPECT_BUGGY: dict[str, Any] = {}



def test_inspect_of_deep_data_written_by_amber() -> None:
    x: Any = 1
    for _ in range(200):
        x = [x]
    info = amber.inspect(amber.dumps(x))
    text = str(info)
    assert text.count("list (1 item)") >= 100  # the tree is shown, cut off well below 200 levels
    assert json.loads(info.to_json())["tree"]["type"] == "list"


def test_lazy_open_of_deep_data_written_by_amber() -> None:
    x: Any = 1
    for _ in range(5000):
        x = [x]
    with amber.open(amber.dumps(x)) as f:
        y = f.read()
        assert len(f) == 1
    for _ in range(5000):
        y = y[0]
    assert y == 1


def _touch_lazily(data: bytes) -> None:
    """Open lazily and touch everything that can be touched."""
    with amber.open(data) as f:
        repr(f)
        root = f.root
        if hasattr(root, "keys"):
            for k in list(root.keys())[:50]:
                v = root[k]
                if hasattr(v, "keys"):
                    list(v.keys())
                    len(v)
                if hasattr(v, "shape") and hasattr(v, "read"):
                    v.read()
            len(root)
        f.read()


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "case, make",
    [pytest.param(i, m, id=i, marks=[INSPECT_BUGGY[i]] if i in INSPECT_BUGGY else []) for i, m in ALL_CASES],
)
def test_inspect_never_crashes_on_hostile_files(case: str, make: Callable[[], bytes]) -> None:
    data = make()
    with budget(case not in DEEP) as b:
        try:
            info = amber.inspect(data)
        except amber.AmberError:
            pass
        else:
            str(info)
            info.to_json()
    assert b.seconds < SECONDS and b.peak_mb < PEAK_MB


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "case, make",
    [pytest.param(i, m, id=i) for i, m in ALL_CASES],
)
def test_lazy_access_never_crashes_on_hostile_files(case: str, make: Callable[[], bytes]) -> None:
    data = make()
    with budget(case not in DEEP) as b:
        try:
            _touch_lazily(data)
        except amber.AmberError:
            pass
    assert b.seconds < SECONDS and b.peak_mb < PEAK_MB


def _malformed_maps() -> Iterator[Any]:
    """Map nodes that amber.load refuses, each with a key that lazy access might serve."""
    good = mapn({"a": 1, "b": listn()})
    plain = plainmap({"a": 1, "b": 2})
    for m in (good, plain):
        yield pytest.param(m + [m[-1]], "a", id=f"{m[0].decode()}-extra-payload")
        yield pytest.param([m[0], m[1] + ["c"], m[2]], "a", id=f"{m[0].decode()}-more-keys-than-values")
        yield pytest.param([m[0], m[1], m[2] + [3]], "a", id=f"{m[0].decode()}-more-values-than-keys")


@pytest.mark.parametrize("tree, key", list(_malformed_maps()))
def test_lazy_access_refuses_what_load_refuses(tree: Any, key: Any) -> None:
    data = build(tree)
    expect_error(data, amber.CorruptFileError, lazy=False)
    with pytest.raises(amber.CorruptFileError):
        with amber.open(data) as f:
            f[key]


# ---------------------------------------------------------------------------------------
# random (checksum-valid) node trees and blob tables
# ---------------------------------------------------------------------------------------

KNOWN_TAGS = [
    "map", "map.plain", "list", "list.plain", "tuple", "ref", "seg", "dict", "collections.OrderedDict",
    "collections.Counter", "collections.defaultdict", "set", "frozenset", "collections.deque", "int",
    "complex", "bytearray", "range", "slice", "ellipsis", "datetime.timezone", "datetime.datetime",
    "datetime.date", "datetime.time", "datetime.timedelta", "decimal.Decimal", "fractions.Fraction",
    "uuid.UUID", "pathlib.Path", "numpy.ndarray", "numpy.scalar", "numpy.dtype", "numpy.random.Generator",
    "numpy.random.RandomState", "bogus", "map@2", "tuple@0", "list@1",
]
scalars = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(max_size=8)
    | st.binary(max_size=16)
    | st.sampled_from(["<f8", "|u1", "O", "|V0", "<U3", "C", "F", "PCG64", "MT19937", "UTC", "Europe/Paris",
                       "builtins.list", "PurePath", "sNaN", "a", "b"])
    | st.sampled_from([[2], [2, 2], [], [0], [2**40, 2**40], [-1], ["a", "b"]])
)


def _nodes(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    tagged = st.builds(lambda t, xs: [t.encode(), *xs], st.sampled_from(KNOWN_TAGS), st.lists(children, max_size=4))
    meta = st.fixed_dictionaries({}, optional={
        "dtype": children | st.sampled_from(["<f8", "O", "|u1", "<i4"]), "shape": children,
        "order": st.sampled_from(["C", "F", "X"]), "blob": st.integers(-1, 3), "items": st.lists(children, max_size=4),
    })
    arrays = st.builds(lambda m: [T("numpy.ndarray"), m], meta)
    segs = st.builds(lambda x: [T("seg"), pack(x)], children)
    refs = st.builds(lambda n: [T("ref"), n], st.integers(-1, 6))
    maps = st.builds(lambda t, kv: [T(t), list(kv), list(kv.values())],
                     st.sampled_from(["map", "map.plain"]), st.dictionaries(st.text(max_size=3), children, max_size=3))
    bare = st.dictionaries(st.text(max_size=3), children, max_size=3)
    return tagged | arrays | segs | refs | maps | st.lists(children, max_size=4) | bare


trees = st.recursive(scalars, _nodes, max_leaves=25)
NEEDS = st.sampled_from([[], ["builtins.list"], ["numpy.random.PCG64", "numpy.random.MT19937"]])
FUZZ_BLOBS = [raw_blob(ARR.tobytes()), raw_blob(np.arange(4, dtype="<i4").tobytes()), raw_blob(b"")]


@pytest.mark.timeout(180)
@pytest.mark.parametrize("touch", [amber.loads, _touch_lazily], ids=["load", "lazily"])
@FUZZ
@given(tree=trees, needs=NEEDS, refs=st.integers(0, 1))
def test_random_node_trees(touch: Callable[[bytes], Any], tree: Any, needs: list[str], refs: int) -> None:
    data = build(tree, FUZZ_BLOBS, needs=needs, refs=refs)
    with budget() as b:
        try:
            touch(data)
        except amber.AmberError:
            pass
    assert b.seconds < SECONDS and b.peak_mb < PEAK_MB


entry_values = st.integers(-1, 2**64 - 1) | st.sampled_from([0, 64, 128, 32, 1 << 20, 1 << 26, 2**60]) | st.none()


@pytest.mark.timeout(180)
@FUZZ
@given(st.lists(st.fixed_dictionaries(
    {"offset": entry_values, "nbytes": entry_values, "stored": entry_values, "chunk": entry_values},
    optional={
        "chunks": st.lists(st.lists(entry_values, max_size=3), max_size=3),
        "codec": st.none() | st.sampled_from([{"name": c, "configuration": {}} for c in CODEC_NAMES] + ["zstd", {}]),
        "filter": st.none() | st.fixed_dictionaries({"name": st.sampled_from(["shuffle", "delta", "x"]),
                                                     "itemsize": entry_values, "stride": entry_values}),
    }), max_size=3))
def test_random_blob_tables(entries: list[dict[str, Any]]) -> None:
    def patch(table: list[dict[str, Any]], end: int) -> None:
        table[:] = entries

    data = build(mapn({"a": nd(0, "<f8", [4]), "b": nd(1, "|u1", [4])}),
                 [raw_blob(ARR.tobytes()), raw_blob(b"abcd")], patch_entries=patch)
    with budget() as b:
        try:
            amber.loads(data)
        except amber.AmberError:
            pass
    assert b.seconds < SECONDS and b.peak_mb < PEAK_MB


def test_a_checksum_job_runs_once_however_often_it_is_asked() -> None:
    """One job covers the blobs of a span; each of them asks for its result. A job still
    queued (the hasher thread busy) is taken back and run by the asker, once."""
    import threading

    from amber.container._pool import hasher
    from amber.container._reader import _Check

    release = threading.Event()
    busy = hasher().submit(release.wait, 30)  # the single hasher thread is held up
    calls = []

    def job(x: int) -> None:
        calls.append((x, threading.current_thread() is threading.main_thread()))
        return None

    try:
        check = _Check(job, 7)
        assert check.result() is None and check.result() is None
        assert calls == [(7, True)]  # taken back from the queue, run here, once
    finally:
        release.set()
        busy.result()
