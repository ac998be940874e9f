"""SciPy sparse matrices and arrays: every format and class round-trips exactly (class,
dtype, shape, index arrays and their dtype, order of entries, duplicates, format flags),
and damaged or hostile sparse nodes end in ``amber.CorruptFileError``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import amber
from _hostile import T, build, nd, obj_nd, raw_blob
from test_roundtrip import payload_bytes

FORMATS = ["csr", "csc", "coo", "bsr", "dia", "lil", "dok"]
KINDS = ["matrix", "array"]
DTYPES = [
    np.bool_, np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64,
    np.float32, np.float64, np.longdouble, np.complex64, np.complex128, np.clongdouble,
]
SETTINGS = settings(
    max_examples=50, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def cls_of(fmt: str, kind: str) -> type:
    return getattr(sp, f"{fmt}_{kind}")


def dense(shape: tuple[int, ...], dtype: Any, density: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    out = np.zeros(shape, dtype=dt)
    mask = rng.random(shape) < density
    n = int(mask.sum())
    if dt.kind == "b":
        out[mask] = True
    elif dt.kind in "iu":
        out[mask] = rng.integers(1, 100, n).astype(dt)
    elif dt.kind == "f":
        out[mask] = (rng.standard_normal(n) + 0.1).astype(dt) / dt.type(3)
    else:
        out[mask] = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(dt) / dt.type(3)
    return out


def make(fmt: str, kind: str, dtype: Any = np.float64, shape: tuple[int, ...] = (6, 8),
         density: float = 0.35, seed: int = 0) -> Any:
    arr = dense(shape, dtype, density, seed)
    if fmt == "bsr":
        return cls_of(fmt, kind)(arr, blocksize=(2, 2))
    return cls_of(fmt, kind)(arr)


def same_array(a: np.ndarray, b: np.ndarray, what: str) -> None:
    assert type(b) is np.ndarray, what
    assert a.dtype == b.dtype and a.shape == b.shape, f"{what}: {a.dtype}{a.shape} != {b.dtype}{b.shape}"
    assert payload_bytes(a) == payload_bytes(b), f"{what}: bytes differ"


def assert_same(a: Any, b: Any) -> None:
    """``b`` is ``a`` rebuilt exactly: same class, dtype, shape, stored arrays and flags."""
    assert type(a) is type(b), f"{type(a).__name__} != {type(b).__name__}"
    assert a.shape == b.shape and a.dtype == b.dtype and a.maxprint == b.maxprint
    fmt = a.format
    if fmt in ("csr", "csc", "bsr"):
        for name in ("data", "indices", "indptr"):
            same_array(getattr(a, name), getattr(b, name), name)
        assert vars(a).get("_has_canonical_format") == vars(b).get("_has_canonical_format")
        assert a.has_sorted_indices == b.has_sorted_indices
        if fmt == "bsr":
            assert a.blocksize == b.blocksize
    elif fmt == "coo":
        same_array(a.data, b.data, "data")
        assert len(a.coords) == len(b.coords)
        for i, (x, y) in enumerate(zip(a.coords, b.coords)):
            same_array(x, y, f"coords[{i}]")
        assert a.has_canonical_format == b.has_canonical_format
    elif fmt == "dia":
        same_array(a.data, b.data, "data")
        same_array(a.offsets, b.offsets, "offsets")
    elif fmt == "lil":
        assert b.rows.dtype == object and b.rows.shape == a.rows.shape == b.data.shape
        assert [list(r) for r in a.rows] == [list(r) for r in b.rows]
        assert all(type(c) is int for r in b.rows for c in r)
        for i, (x, y) in enumerate(zip(a.data, b.data)):
            same_array(np.array(x, dtype=a.dtype), np.array(y, dtype=b.dtype), f"data[{i}]")
    elif fmt == "dok":
        assert list(a.keys()) == list(b.keys())
        same_array(np.array(list(a.values()), dtype=a.dtype), np.array(list(b.values()), dtype=b.dtype), "values")
    else:  # pragma: no cover
        raise AssertionError(fmt)


def rt(obj: Any, **kw: Any) -> Any:
    return amber.loads(amber.dumps(obj), **kw)


# ---------------------------------------------------------------------------------------
# round trips
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_kind_and_dtype(fmt: str, kind: str, dtype: Any) -> None:
    a = make(fmt, kind, dtype)
    b = rt(a)
    assert_same(a, b)
    assert np.array_equal(a.toarray(), b.toarray())


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("shape", [(0, 0), (0, 5), (4, 0), (4, 6)], ids=str)
def test_empty(fmt: str, kind: str, shape: tuple[int, int]) -> None:
    a = cls_of(fmt, kind)(shape, dtype=np.float32)
    b = rt(a)
    assert_same(a, b)
    assert b.nnz == 0


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fmt", ["csr", "csc", "bsr"])
@pytest.mark.parametrize("idx", [np.int32, np.int64])
def test_compressed_index_dtypes_kept(fmt: str, kind: str, idx: Any) -> None:
    a = make(fmt, kind)
    a.indices, a.indptr = a.indices.astype(idx), a.indptr.astype(idx)
    b = rt(a)
    assert b.indices.dtype == idx and b.indptr.dtype == idx
    assert_same(a, b)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("idx", [np.int32, np.int64])
def test_coo_and_dia_index_dtypes_kept(kind: str, idx: Any) -> None:
    a = make("coo", kind)
    a.coords = tuple(c.astype(idx) for c in a.coords)
    d = make("dia", kind)
    d.offsets = d.offsets.astype(idx)
    b, e = rt([a, d])
    assert all(c.dtype == idx for c in b.coords) and e.offsets.dtype == idx
    assert_same(a, b)
    assert_same(d, e)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_unsorted_indices_and_flags_kept(fmt: str, kind: str) -> None:
    # rows with unsorted and duplicate column indices, exactly as given
    data = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    indices = np.array([3, 0, 2, 2, 1], dtype=np.int32)
    indptr = np.array([0, 2, 2, 5], dtype=np.int32)
    a = cls_of(fmt, kind)((data, indices, indptr), shape=(3, 4) if fmt == "csr" else (4, 3))
    assert not a.has_sorted_indices and not a.has_canonical_format
    b = rt(a)
    assert_same(a, b)
    assert not b.has_sorted_indices and not b.has_canonical_format
    a.sort_indices()  # sorted, but not canonical: a duplicate remains
    b = rt(a)
    assert_same(a, b)
    assert b.has_sorted_indices and not b.has_canonical_format
    a.sum_duplicates()
    b = rt(a)
    assert_same(a, b)
    assert vars(b)["_has_canonical_format"] is True
    # flags never computed stay uncomputed
    fresh = cls_of(fmt, kind)((data, indices, indptr), shape=a.shape)
    assert "_has_sorted_indices" not in vars(rt(fresh))


@pytest.mark.parametrize("kind", KINDS)
def test_coo_duplicates_and_order_kept(kind: str) -> None:
    row = np.array([2, 0, 2, 1, 0], dtype=np.int32)
    col = np.array([1, 3, 1, 0, 3], dtype=np.int32)
    data = np.array([1, 2, 3, 4, 5], dtype=np.int64)
    a = cls_of("coo", kind)((data, (row, col)), shape=(3, 4))
    b = rt(a)
    assert_same(a, b)
    assert not b.has_canonical_format and b.nnz == 5
    a.sum_duplicates()
    b = rt(a)
    assert_same(a, b)
    assert b.has_canonical_format and b.nnz == 3


def test_one_dimensional_and_nd_arrays() -> None:
    vec = dense((12,), np.float64, 0.4)
    cases = [sp.coo_array(vec), sp.dok_array(vec), sp.csr_array(vec), sp.coo_array(dense((3, 4, 5), np.int16, 0.3))]
    out = rt(cases)
    for a, b in zip(cases, out):
        assert_same(a, b)
        assert b.ndim == a.ndim
        assert np.array_equal(a.toarray(), b.toarray())


def test_lil_and_dok_content_kept() -> None:
    lil = sp.lil_array((4, 5), dtype=np.complex128)
    lil[0, 3] = 1 + 2j
    lil[0, 1] = -3j
    lil[3, 4] = 7
    dok = sp.dok_matrix((4, 5), dtype=np.int8)
    dok[3, 1] = 5
    dok[0, 0] = -2
    dok[2, 4] = 9  # insertion order is kept
    b, e = rt([lil, dok])
    assert_same(lil, b)
    assert_same(dok, e)
    assert list(e.keys()) == [(3, 1), (0, 0), (2, 4)]
    assert all(type(v) is np.int8 for v in e.values())
    b[1, 1] = 4  # the rebuilt objects are fully usable
    e[1, 1] = 4
    assert b.nnz == 4 and e.nnz == 4


def test_long_double_values_exact_in_lil_and_dok() -> None:
    x = np.longdouble(1) / np.longdouble(3)
    lil = sp.lil_matrix((2, 2), dtype=np.longdouble)
    lil[1, 0] = x
    dok = sp.dok_array((3,), dtype=np.longdouble)
    dok[2] = x
    b, e = rt([lil, dok])
    assert b[1, 0] == x and e[2] == x


def test_shared_and_nested() -> None:
    a = make("csr", "array")
    t = a.T  # a csc view sharing nothing amber cares about, but saved alongside
    b = rt({"a": a, "again": a, "t": t, "list": [make("dok", "matrix"), make("lil", "array")]})
    assert b["a"] is b["again"]
    assert_same(a, b["a"])
    assert_same(t, b["t"])


def test_shared_arrays_stay_shared() -> None:
    a = make("csr", "array")
    b = sp.csr_array(a.shape)
    b.data, b.indices, b.indptr = a.data, a.indices, a.indptr
    c, d = rt([a, b])
    assert c.data is d.data and c.indices is d.indices and c.indptr is d.indptr


def test_maxprint_kept() -> None:
    a = make("csr", "matrix")
    a.maxprint = 7
    assert rt(a).maxprint == 7
    assert rt(make("coo", "array")).maxprint == make("coo", "array").maxprint


def test_non_native_byte_order_loads_native() -> None:
    a = make("csr", "matrix")
    b = sp.csr_matrix((a.data.astype(">f8"), a.indices.astype(">i4"), a.indptr.astype(">i4")), shape=a.shape)
    c = rt(b)
    assert c.data.dtype == np.dtype("<f8").newbyteorder("=") and c.indices.dtype.isnative
    assert np.array_equal(c.toarray(), a.toarray())


def test_mmap_and_file_round_trip(tmp_path: Any) -> None:
    objs = {f"{f}_{k}": make(f, k) for f in FORMATS for k in KINDS}
    path = tmp_path / "sparse.amber"
    amber.dump(objs, path)
    for kw in ({}, {"mmap": True}):
        got = amber.load(path, **kw)
        for name, a in objs.items():
            assert_same(a, got[name])
            assert np.array_equal((got[name] @ np.ones(8)), a @ np.ones(8))


def test_loaded_arrays_are_writable() -> None:
    b = rt(make("csr", "matrix"))
    b.data[0] = 42.0
    b.sort_indices()
    assert b[b.nonzero()[0][0], b.nonzero()[1][0]] in b.data


def test_unsupported_dtype_refused_at_save() -> None:
    a = sp.csr_matrix((np.ones(2, np.float16), np.array([0, 1]), np.array([0, 1, 2])), shape=(2, 2))
    with pytest.raises(amber.UnsupportedTypeError, match="float16"):
        amber.dumps(a)
    a = make("coo", "array")
    a.coords = tuple(c.astype(np.uint16) for c in a.coords)
    with pytest.raises(amber.UnsupportedTypeError, match="int32 or int64"):
        amber.dumps({"x": a})


def test_inspect_names_the_class() -> None:
    info = amber.inspect(amber.dumps([make("bsr", "array"), make("lil", "matrix")]))
    assert {"scipy.sparse.bsr_array", "scipy.sparse.lil_matrix"} <= set(info.types)


# ---------------------------------------------------------------------------------------
# random matrices (hypothesis)
# ---------------------------------------------------------------------------------------


@st.composite
def sparse_objects(draw: st.DrawFn) -> Any:
    fmt = draw(st.sampled_from(FORMATS))
    kind = draw(st.sampled_from(KINDS))
    dtype = draw(st.sampled_from(DTYPES))
    if kind == "array" and fmt in ("coo", "csr", "dok") and draw(st.booleans()):
        ndim = draw(st.integers(1, 3)) if fmt == "coo" else 1
    else:
        ndim = 2
    shape = tuple(draw(st.lists(st.integers(0, 9), min_size=ndim, max_size=ndim)))
    if fmt == "bsr":
        r, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        shape = (shape[0] * r, shape[1] * c)
    density = draw(st.floats(0, 1))
    arr = dense(shape, dtype, density, seed=draw(st.integers(0, 2**16)))
    if fmt == "bsr":
        return sp.bsr_array(arr, blocksize=(r, c)) if kind == "array" else sp.bsr_matrix(arr, blocksize=(r, c))
    obj = cls_of(fmt, kind)(arr)
    if fmt in ("csr", "csc", "coo") and obj.nnz > 1 and draw(st.booleans()):
        # shuffle the stored entries (unsorted indices, non-canonical coo)
        perm = np.random.default_rng(draw(st.integers(0, 99))).permutation(obj.nnz)
        coo = obj.tocoo()
        coo = type(coo)((coo.data[perm], tuple(c[perm] for c in coo.coords)), shape=coo.shape)
        obj = coo if fmt == "coo" else getattr(coo, f"to{fmt}")()
        if fmt != "coo":
            obj = type(obj)((obj.data, obj.indices, obj.indptr), shape=obj.shape)
    return obj


@SETTINGS
@given(sparse_objects())
def test_hypothesis_round_trip(a: Any) -> None:
    b = rt(a)
    assert_same(a, b)
    assert np.array_equal(a.toarray(), b.toarray())


# ---------------------------------------------------------------------------------------
# hostile nodes
# ---------------------------------------------------------------------------------------


def sparse_file(name: str, meta: Any, *arrays: Any) -> bytes:
    """A file whose root is ``[scipy.sparse.<name>, meta, *arrays]``; NumPy arrays become
    array nodes over their own blobs, anything else is put in the node as it is."""
    blobs, nodes = [], []
    for a in arrays:
        if isinstance(a, np.ndarray):
            nodes.append(nd(len(blobs), a.dtype.str, list(a.shape)))
            blobs.append(raw_blob(np.ascontiguousarray(a).tobytes()))
        else:
            nodes.append(a)
    return build([T(f"scipy.sparse.{name}"), meta, *nodes], blobs, manifest={"types": [f"scipy.sparse.{name}"]})


i4 = lambda *v: np.array(v, dtype="<i4")  # noqa: E731
f8 = lambda *v: np.array(v, dtype="<f8")  # noqa: E731

CSR = dict(data=f8(1, 2, 3), indices=i4(0, 2, 1), indptr=i4(0, 2, 2, 3))


def csr(name: str = "csr_matrix", shape: Any = (3, 4), meta: dict[str, Any] | None = None, **arrays: Any) -> bytes:
    a = {**CSR, **arrays}
    return sparse_file(name, {"shape": list(shape), **(meta or {})}, a["data"], a["indices"], a["indptr"])


COO = dict(data=f8(1, 2, 3), row=i4(2, 0, 2), col=i4(1, 3, 1))


def coo(name: str = "coo_array", shape: Any = (3, 4), meta: dict[str, Any] | None = None, **arrays: Any) -> bytes:
    a = {**COO, **arrays}
    return sparse_file(name, {"shape": list(shape), "canonical": False, **(meta or {})}, a["data"], a["row"], a["col"])


BSR = dict(data=np.arange(8, dtype="<f8").reshape(2, 2, 2), indices=i4(1, 0), indptr=i4(0, 1, 2))


def bsr(shape: Any = (4, 4), **arrays: Any) -> bytes:
    a = {**BSR, **arrays}
    return sparse_file("bsr_array", {"shape": list(shape)}, a["data"], a["indices"], a["indptr"])


def dia(shape: Any = (3, 3), data: Any = None, offsets: Any = None) -> bytes:
    data = np.ones((2, 3)) if data is None else data
    return sparse_file("dia_matrix", {"shape": list(shape)}, data, i4(0, 1) if offsets is None else offsets)


def lil(shape: Any = (3, 4), **arrays: Any) -> bytes:
    a = {**CSR, **arrays}
    return sparse_file("lil_array", {"shape": list(shape)}, a["data"], a["indices"], a["indptr"])


def dok(shape: Any = (3, 4), values: Any = None, row: Any = None, col: Any = None) -> bytes:
    return sparse_file("dok_array", {"shape": list(shape)}, f8(1, 2) if values is None else values,
                       i4(0, 2) if row is None else row, i4(3, 1) if col is None else col)


def test_hostile_controls_load() -> None:
    """The files the hostile cases are made from load fine."""
    a = amber.loads(csr())
    assert type(a) is sp.csr_matrix and a.toarray().tolist() == [[1, 0, 2, 0], [0] * 4, [0, 3, 0, 0]]
    assert amber.loads(csr("csc_array", shape=(4, 3))).shape == (4, 3)
    assert amber.loads(csr("csr_array", shape=(5,), indptr=i4(0, 3), indices=i4(4, 0, 2))).shape == (5,)
    assert amber.loads(coo()).nnz == 3
    assert amber.loads(bsr()).blocksize == (2, 2)
    assert amber.loads(dia()).nnz == 5
    assert amber.loads(lil()).rows.tolist() == [[0, 2], [], [1]]
    assert dict(amber.loads(dok())) == {(0, 3): 1.0, (2, 1): 2.0}
    assert amber.loads(csr(meta={"sorted": True, "canonical": True})).has_canonical_format


BIG = 2**40
HOSTILE: list[tuple[str, Any]] = [
    # csr / csc
    ("no-meta", lambda: build([T("scipy.sparse.csr_matrix")])),
    ("meta-not-map", lambda: sparse_file("csr_matrix", [3, 4], CSR["data"], CSR["indices"], CSR["indptr"])),
    ("shape-missing", lambda: sparse_file("csr_matrix", {}, CSR["data"], CSR["indices"], CSR["indptr"])),
    ("shape-negative", lambda: csr(shape=(-3, 4))),
    ("shape-float", lambda: csr(shape=(3.0, 4))),
    ("shape-3d-matrix", lambda: csr(shape=(3, 4, 1))),
    ("shape-1d-matrix", lambda: csr(shape=(4,))),
    ("shape-huge-rows", lambda: csr(shape=(BIG, 4))),
    ("shape-beyond-int64", lambda: csr(shape=(3, 2**64 - 1))),
    ("int32-indices-huge-columns", lambda: csr(shape=(3, 2**33))),
    ("too-few-arrays", lambda: sparse_file("csr_matrix", {"shape": [3, 4]}, CSR["data"], CSR["indices"])),
    ("too-many-arrays", lambda: sparse_file("csr_matrix", {"shape": [3, 4]}, *CSR.values(), CSR["data"])),
    ("array-is-int", lambda: csr(indices=7)),
    ("array-is-list", lambda: csr(indptr=(0, 2, 2, 3))),
    ("array-is-str", lambda: csr(data="abc")),
    ("data-object", lambda: csr(data=obj_nd([3], [1, "x", None]))),
    ("data-float16", lambda: csr(data=np.ones(3, "<f2"))),
    ("data-str", lambda: csr(data=np.array(["a", "b", "c"]))),
    ("data-2d", lambda: csr(data=np.ones((3, 1)))),
    ("indices-float", lambda: csr(indices=np.array([0.0, 2.0, 1.0]))),
    ("indices-uint", lambda: csr(indices=np.array([0, 2, 1], "<u4"))),
    ("indices-int16", lambda: csr(indices=np.array([0, 2, 1], "<i2"))),
    ("indptr-2d", lambda: csr(indptr=i4(0, 2, 2, 3).reshape(2, 2))),
    ("indices-too-big", lambda: csr(indices=i4(0, 4, 1))),
    ("indices-negative", lambda: csr(indices=i4(0, -1, 1))),
    ("indices-int64-min", lambda: csr(indices=np.array([0, -(2**63), 1], "<i8"), indptr=np.array([0, 2, 2, 3], "<i8"))),
    ("indices-short", lambda: csr(indices=i4(0, 2))),
    ("data-short", lambda: csr(data=f8(1, 2))),
    ("indptr-short", lambda: csr(indptr=i4(0, 2, 3))),
    ("indptr-long", lambda: csr(indptr=i4(0, 1, 2, 2, 3))),
    ("indptr-not-from-0", lambda: csr(indptr=i4(1, 2, 2, 3))),
    ("indptr-decreasing", lambda: csr(indptr=i4(0, 3, 2, 3))),
    ("indptr-negative", lambda: csr(indptr=i4(0, -5, 2, 3))),
    ("indptr-beyond-nnz", lambda: csr(indptr=i4(0, 2, 2, 4))),
    ("indptr-huge", lambda: csr(indptr=i4(0, 2, 2, 2**31 - 1))),
    ("csc-indices-vs-rows", lambda: csr("csc_matrix", shape=(2, 3))),
    ("csc-indptr-vs-cols", lambda: csr("csc_array", shape=(4, 4))),
    ("csr-1d-indptr", lambda: csr("csr_array", shape=(5,))),
    ("flag-not-bool", lambda: csr(meta={"sorted": 1})),
    ("claims-canonical-unsorted", lambda: csr(meta={"canonical": True}, indices=i4(2, 0, 1))),
    ("claims-canonical-duplicates", lambda: csr(meta={"canonical": True}, indices=i4(2, 2, 1))),
    ("claims-sorted-unsorted", lambda: csr(meta={"sorted": True}, indices=i4(2, 0, 1))),
    ("maxprint-str", lambda: csr(meta={"maxprint": "50"})),
    ("maxprint-negative", lambda: csr(meta={"maxprint": -1})),
    # bsr
    ("bsr-block-not-dividing", lambda: bsr(shape=(5, 4))),
    ("bsr-block-empty", lambda: bsr(data=np.ones((2, 0, 2)))),
    ("bsr-data-2d", lambda: bsr(data=np.ones((2, 4)))),
    ("bsr-indices-beyond-blocks", lambda: bsr(indices=i4(2, 0))),
    ("bsr-indptr-vs-blocks", lambda: bsr(shape=(8, 4))),
    ("bsr-huge-block", lambda: bsr(shape=(BIG, BIG), data=np.ones((0, BIG // 2**20, 2**20)), indices=i4(), indptr=i4(0, 0))),
    # coo
    ("coo-canonical-missing", lambda: sparse_file("coo_array", {"shape": [3, 4]}, *COO.values())),
    ("coo-canonical-not-bool", lambda: coo(meta={"canonical": "yes"})),
    ("coo-claims-canonical", lambda: coo(meta={"canonical": True})),
    ("coo-row-too-big", lambda: coo(row=i4(3, 0, 2))),
    ("coo-col-negative", lambda: coo(col=i4(1, -3, 1))),
    ("coo-lengths-differ", lambda: coo(col=i4(1, 3))),
    ("coo-too-few-coords", lambda: sparse_file("coo_array", {"shape": [3, 4], "canonical": False}, COO["data"], COO["row"])),
    ("coo-too-many-coords", lambda: coo(shape=(3,))),
    ("coo-matrix-1d", lambda: sparse_file("coo_matrix", {"shape": [4], "canonical": False}, COO["data"], COO["col"])),
    ("coo-65d", lambda: sparse_file("coo_array", {"shape": [1] * 65, "canonical": False}, f8(), *[i4()] * 65)),
    ("coo-int32-huge-shape", lambda: coo(shape=(3, 2**40))),
    ("coo-data-object", lambda: coo(data=obj_nd([3], [1.5, 2, None]))),
    # dia
    ("dia-offsets-duplicate", lambda: dia(offsets=i4(1, 1))),
    ("dia-offsets-count", lambda: dia(offsets=i4(0))),
    ("dia-data-1d", lambda: dia(data=np.ones(3))),
    ("dia-offsets-float", lambda: dia(offsets=np.array([0.0, 1.0]))),
    # lil
    ("lil-indptr-short-of-nnz", lambda: lil(indptr=i4(0, 2, 2, 2))),
    ("lil-indices-too-big", lambda: lil(indices=i4(0, 9, 1))),
    ("lil-rows-vs-shape", lambda: lil(shape=(5, 4))),
    ("lil-data-str", lambda: lil(data=np.array(["a", "b", "c"]))),
    # dok
    ("dok-duplicate-keys", lambda: dok(row=i4(1, 1), col=i4(2, 2))),
    ("dok-key-too-big", lambda: dok(row=i4(0, 3))),
    ("dok-lengths-differ", lambda: dok(values=f8(1, 2, 3))),
    ("dok-3d", lambda: sparse_file("dok_array", {"shape": [2, 2, 2]}, f8(1), i4(0), i4(0), i4(0))),
]


@pytest.mark.parametrize("make_file", [m for _, m in HOSTILE], ids=[i for i, _ in HOSTILE])
def test_hostile_nodes(make_file: Any) -> None:
    data = make_file()
    with pytest.raises(amber.CorruptFileError):
        amber.loads(data)


def test_hostile_message_says_what_and_where() -> None:
    with pytest.raises(amber.CorruptFileError, match=r"scipy\.sparse\.csr_matrix node: indices range 0\.\.4"):
        amber.loads(csr(indices=i4(0, 4, 1)))


@SETTINGS
@given(
    fmt=st.sampled_from(["csr_matrix", "csc_array", "lil_array"]),
    indices=st.lists(st.integers(-3, 6), max_size=6),
    indptr=st.lists(st.integers(-2, 7), min_size=0, max_size=6),
)
def test_random_index_arrays_load_valid_or_fail_cleanly(fmt: str, indices: list[int], indptr: list[int]) -> None:
    """Whatever the index arrays say, a load either gives a matrix that passes scipy's own
    full format check or raises CorruptFileError."""
    data = np.arange(len(indices), dtype="<f8")
    try:
        got = amber.loads(csr(fmt, shape=(4, 5), data=data, indices=i4(*indices), indptr=i4(*indptr)))
    except amber.CorruptFileError:
        return
    probe = got.tocsr()
    probe.check_format(full_check=True)
    assert probe.toarray().shape == (4, 5)


@SETTINGS
@given(
    shape=st.lists(st.integers(0, 4), min_size=1, max_size=3),
    coords=st.lists(st.lists(st.integers(-1, 5), max_size=4), min_size=1, max_size=3),
    canonical=st.booleans(),
)
def test_random_coo_coords_load_valid_or_fail_cleanly(shape: list[int], coords: list[list[int]], canonical: bool) -> None:
    n = len(coords[0])
    data = sparse_file("coo_array", {"shape": shape, "canonical": canonical}, np.ones(n), *[i4(*c) for c in coords])
    try:
        got = amber.loads(data)
    except amber.CorruptFileError:
        return
    assert got.shape == tuple(shape)
    dense_ = got.toarray()
    assert dense_.sum() == n
    if got.has_canonical_format:
        got.sum_duplicates()
        assert got.nnz == n
