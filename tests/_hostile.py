"""Helpers for the corruption tests: take amber files apart, build hostile ones with valid
checksums, flip bits, compare loaded data exactly, and measure time and memory.

The container (header, aligned blobs, manifest, trailer, checksums) is written here from
docs/format.md, independently of amber's writer, so a hostile file can say anything the
format can express: a blob table that lies, a node tree that refers forward, a zstd frame
that lies about its size... Only the container nodes of the tree (maps, lists) come from
amber's own encoder (see ``embed``), so the tests follow changes of their layout.
"""

from __future__ import annotations

import contextlib
import struct
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import zlib

import msgpack
import numpy as np
import xxhash

import amber
from amber._node import tag as _wire_tag
from amber.container._spec import (
    ALIGN,
    FORMAT_VERSION,
    HASH_BLOCK,
    HEADER,
    HEADER_SIZE,
    MAGIC,
    MAGIC_END,
    MAX_CHUNK,
    FLAG_MANIFEST_ZLIB,
    TRAILER,
    TRAILER_SIZE,
)

__all__ = [
    "ALIGN", "FORMAT_VERSION", "HASH_BLOCK", "HEADER", "HEADER_SIZE", "MAGIC", "MAGIC_END", "MAX_CHUNK",
    "TRAILER", "TRAILER_SIZE", "Blob", "Budget", "Parsed", "T", "budget", "build", "deep_equal",
    "embed", "flip", "h64", "mapn", "tuplen", "nd", "obj_nd", "parse", "plainmap", "plainlist", "listn",
    "raw_blob", "stored_blob", "pack",
]

h64 = xxhash.xxh3_64_intdigest
MB = 1 << 20


def T(name: str, version: int = 1) -> Any:
    """The wire form of a node tag (whatever amber currently writes for it)."""
    return _wire_tag(name, version)


def pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


# -- node builders (docs/format.md §7-8) ------------------------------------------------
#
# Containers (maps, lists, tuples) are not built by hand: amber encodes a template whose
# placeholders are then swapped for the (hostile) nodes, so these helpers keep working when
# the layout of container nodes changes. A ``_Node`` placeholder stands where amber decodes
# a node (amber writes it as a one-item frozenset node, which forces the enclosing container
# into its node-holding form); a ``_Raw`` placeholder stands for raw content inside a plain
# container, which amber does not decode.


class _Node:
    def __init__(self, value: Any) -> None:
        self.value = value


class _Raw:
    def __init__(self, value: Any) -> None:
        self.value = value


def _is_node(v: Any) -> bool:
    return isinstance(v, (list, tuple, dict, msgpack.ExtType, msgpack.Timestamp))


def embed(template: Any) -> Any:
    """amber's node tree for ``template``, with every ``_Node``/``_Raw`` swapped in."""
    subs: list[Any] = []

    def prep(x: Any) -> Any:
        if isinstance(x, _Node):
            subs.append(x.value)
            return frozenset({f"\0hostile-node-{len(subs) - 1}\0"})
        if isinstance(x, _Raw):
            subs.append(x.value)
            return f"\0hostile-raw-{len(subs) - 1}\0"
        if type(x) is dict:
            return {k: prep(v) for k, v in x.items()}
        if type(x) is list:
            return [prep(v) for v in x]
        if type(x) is tuple:
            return tuple(prep(v) for v in x)
        return x

    data = amber.dumps(prep(template), deterministic=True)
    man = parse(data).manifest
    tree = msgpack.unpackb(man["tree"], raw=False, strict_map_key=False)
    frozen = T("frozenset")

    def swap(x: Any) -> Any:
        if type(x) is list:
            if len(x) == 2 and x[0] == frozen and type(x[1]) is str and x[1].startswith("\0hostile-node-"):
                return subs[int(x[1].strip("\0").rsplit("-", 1)[1])]
            return [swap(v) for v in x]
        if type(x) is dict:
            return {k: swap(v) for k, v in x.items()}
        if type(x) is str and x.startswith("\0hostile-raw-"):
            return subs[int(x.strip("\0").rsplit("-", 1)[1])]
        return x

    return swap(tree)


def _wrap(v: Any) -> Any:
    return _Node(v) if _is_node(v) else v


def mapn(d: dict[str, Any]) -> Any:
    """A str-keyed dict node whose values (when not scalars) are the given nodes."""
    return embed({k: _wrap(v) for k, v in d.items()})


def listn(*items: Any) -> Any:
    """A list node whose items (when not scalars) are the given nodes."""
    return embed([_wrap(v) for v in items])


def tuplen(*items: Any) -> Any:
    return embed(tuple(_wrap(v) for v in items))


def plainmap(d: dict[str, Any]) -> Any:
    """A str-keyed dict node whose values are taken raw, not decoded (``map.plain``)."""
    return embed({k: _Raw(v) for k, v in d.items()})


def plainlist(*items: Any) -> Any:
    """A list node whose items are taken raw, not decoded (``list.plain``)."""
    return embed([_Raw(v) for v in items])


def nd(blob: Any, dtype: Any, shape: Any, order: Any = "C") -> list[Any]:
    return [T("numpy.ndarray"), {"dtype": dtype, "shape": shape, "order": order, "blob": blob}]


def obj_nd(shape: Any, items: Any, dtype: Any = "O") -> list[Any]:
    return [T("numpy.ndarray"), {"dtype": dtype, "shape": shape, "items": items}]


# -- blobs ------------------------------------------------------------------------------


@dataclass
class Blob:
    """Stored bytes plus the blob-table fields other than ``offset``/``stored``."""

    stored: bytes
    entry: dict[str, Any]
    #: Put the blob at this file offset instead of the next aligned one (may overlap, be
    #: unaligned...): the builder pads with zeros up to it when it lies ahead.
    at: int | None = None


def raw_blob(data: bytes, chunk: int = HASH_BLOCK, **fields: Any) -> Blob:
    chunks = [[len(data[i : i + chunk]), h64(data[i : i + chunk])] for i in range(0, len(data), chunk)]
    entry: dict[str, Any] = {"nbytes": len(data), "chunk": chunk, "chunks": chunks}
    entry.update(fields)
    return Blob(data, entry)


def stored_blob(
    chunks: list[bytes], nbytes: int, chunk: int, codec: str | None = "zstd", level: int | None = None,
    **fields: Any,
) -> Blob:
    """A compressed blob made of the given stored chunk streams (any content)."""
    entry: dict[str, Any] = {"nbytes": nbytes, "chunk": chunk, "chunks": [[len(c), h64(c)] for c in chunks]}
    if codec is not None:
        entry["codec"] = {"name": codec, "configuration": {} if level is None else {"level": level}}
    entry.update(fields)
    return Blob(b"".join(chunks), entry)


# -- whole files ------------------------------------------------------------------------


def header(version: tuple[int, int] = FORMAT_VERSION, flags: int = 0) -> bytes:
    head = HEADER.pack(MAGIC, version[0], version[1], flags)
    return head + bytes(HEADER_SIZE - len(head))


def trailer(m_off: int, raw: bytes, version: tuple[int, int] = FORMAT_VERSION, reserved: int = 0,
            end: bytes = MAGIC_END) -> bytes:
    return TRAILER.pack(m_off, len(raw), h64(raw), version[0], version[1], reserved, end)


def base_manifest(tree: Any, needs: list[str] | tuple[str, ...] = (), refs: int = 0) -> dict[str, Any]:
    return {
        "format": "amber",
        "amber": amber.__version__,
        "env": {"packages": {}},
        "metadata": None,
        "types": [],
        "needs": list(needs),
        "refs": refs,
        "tree": pack(tree),
        "blobs": [],
    }


def build(
    tree: Any,
    blobs: list[Blob] | tuple[Blob, ...] = (),
    *,
    needs: list[str] | tuple[str, ...] = (),
    refs: int = 0,
    manifest: dict[str, Any] | None = None,
    raw_manifest: bytes | None = None,
    version: tuple[int, int] = FORMAT_VERSION,
    trailer_version: tuple[int, int] | None = None,
    patch_entries: Any = None,
) -> bytes:
    """A complete file with valid checksums. ``manifest`` entries override the defaults
    (``tree`` given there is used as is: pass bytes or any msgpack value); ``raw_manifest``
    replaces the packed manifest altogether; ``patch_entries(table)`` may edit the blob table
    after the offsets are known (it gets the table and the data section's end)."""
    out = bytearray(header(version))
    table = []
    for b in blobs:
        if b.at is None:
            out += bytes(-len(out) % ALIGN)
            off = len(out)
        else:
            off = b.at
            if off > len(out):
                out += bytes(off - len(out))
        e = {"offset": off, "stored": len(b.stored)}
        e.update(b.entry)
        table.append(e)
        out[off : off + len(b.stored)] = b.stored
    out += bytes(-len(out) % ALIGN)
    if patch_entries is not None:
        patch_entries(table, len(out))
    man = base_manifest(tree, needs, refs)
    man["blobs"] = table
    if manifest:
        man.update(manifest)
    raw = pack(man) if raw_manifest is None else raw_manifest
    m_off = len(out)
    return bytes(out) + raw + trailer(m_off, raw, trailer_version or version)


@dataclass
class Parsed:
    """An amber file taken apart: everything before the manifest, the manifest, the tree."""

    data: bytes
    m_off: int
    m_len: int
    manifest: dict[str, Any]
    version: tuple[int, int]
    blobs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def prefix(self) -> bytes:
        return self.data[: self.m_off]

    def tree(self) -> Any:
        return msgpack.unpackb(self.manifest["tree"], raw=False, strict_map_key=False)

    def rebuild(self, manifest: dict[str, Any] | None = None, *, tree: Any = None, raw_manifest: bytes | None = None,
                version: tuple[int, int] | None = None, trailer_version: tuple[int, int] | None = None,
                prefix: bytes | None = None) -> bytes:
        """The same data section with a new (checksum-valid) manifest and trailer."""
        man = dict(self.manifest if manifest is None else manifest)
        if tree is not None:
            man["tree"] = pack(tree)
        raw = pack(man) if raw_manifest is None else raw_manifest
        pre = bytearray(self.prefix if prefix is None else prefix)
        v = version or self.version
        pre[: HEADER.size] = HEADER.pack(MAGIC, v[0], v[1], 0)
        return bytes(pre) + raw + trailer(len(pre), raw, trailer_version or v)


def parse(data: bytes) -> Parsed:
    m_off, m_len, m_hash, major, minor, flags, end = TRAILER.unpack(data[-TRAILER_SIZE:])
    assert end == MAGIC_END and h64(data[m_off : m_off + m_len]) == m_hash
    raw = data[m_off : m_off + m_len]
    if flags & FLAG_MANIFEST_ZLIB:  # rebuilt files are written with a plain manifest
        raw = zlib.decompress(raw)
    man = msgpack.unpackb(raw, raw=False, strict_map_key=False)
    return Parsed(data, m_off, m_len, man, (major, minor), list(man.get("blobs", [])))


def flip(data: bytes, pos: int, bit: int) -> bytes:
    b = bytearray(data)
    b[pos] ^= 1 << bit
    return bytes(b)


# -- exact comparison -------------------------------------------------------------------


def deep_equal(a: Any, b: Any, path: str = "root") -> None:
    """Assert ``a`` and ``b`` are the same data: same types all the way down, arrays with
    the same dtype, shape, memory order and bytes, floats bit-identical (NaN-safe)."""
    assert type(a) is type(b), f"{path}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, f"{path}: {a.dtype}{a.shape} != {b.dtype}{b.shape}"
        if a.dtype.hasobject:
            for i, (x, y) in enumerate(zip(a.ravel().tolist(), b.ravel().tolist())):
                deep_equal(x, y, f"{path}.flat[{i}]")
        else:
            assert a.tobytes() == b.tobytes(), f"{path}: array bytes differ"
            assert a.flags.f_contiguous == b.flags.f_contiguous, f"{path}: memory order differs"
    elif isinstance(a, float):
        assert struct.pack("<d", a) == struct.pack("<d", b), f"{path}: {a!r} != {b!r}"
    elif isinstance(a, dict):
        assert list(a) == list(b), f"{path}: keys {list(a)} != {list(b)}"
        for k in a:
            deep_equal(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            deep_equal(x, y, f"{path}[{i}]")
    elif isinstance(a, (set, frozenset)):
        assert a == b, f"{path}: {a!r} != {b!r}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


# -- time and memory --------------------------------------------------------------------


@dataclass
class Budget:
    peak: int = 0
    seconds: float = 0.0

    @property
    def peak_mb(self) -> float:
        return self.peak / MB


@contextlib.contextmanager
def budget(trace: bool = True) -> Iterator[Budget]:
    """Measure wall time and the tracemalloc peak (NumPy buffers included) of a block.

    tracemalloc walks the whole Python stack on every allocation, which makes code that
    recurses thousands of levels deep crawl: pass ``trace=False`` there (peak stays 0)."""
    res = Budget()
    if not trace:
        t0 = time.perf_counter()
        try:
            yield res
        finally:
            res.seconds = time.perf_counter() - t0
        return
    was = tracemalloc.is_tracing()
    if not was:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    t0 = time.perf_counter()
    try:
        yield res
    finally:
        res.seconds = time.perf_counter() - t0
        res.peak = max(0, tracemalloc.get_traced_memory()[1] - base)
        if not was:
            tracemalloc.stop()
