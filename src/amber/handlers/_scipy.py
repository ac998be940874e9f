"""SciPy sparse matrices and arrays: every format, kept as the same class. Never pickles.

Each of the 14 classes (``csr``, ``csc``, ``coo``, ``bsr``, ``dia``, ``lil``, ``dok``, as
``*_matrix`` and ``*_array``) has its own tag, ``scipy.sparse.<class name>``. A node is
``[tag, meta, *arrays]``: ``meta`` is a map with the ``shape`` (and the format's flags), the
arrays are ordinary NumPy array nodes, stored as they are (same dtype, index dtype, order of
entries, duplicates)::

    csr/csc  [tag, {"shape", "sorted"?, "canonical"?, "maxprint"?}, data, indices, indptr]
    bsr      [tag, {...same...}, data (nnzb, R, C), indices, indptr]
    coo      [tag, {"shape", "canonical", "maxprint"?}, data, coord_0, ..., coord_ndim-1]
    dia      [tag, {"shape", "maxprint"?}, data (ndiag, L), offsets]
    lil      [tag, {"shape", "maxprint"?}, data, indices, indptr]   (rows flattened as in CSR)
    dok      [tag, {"shape", "maxprint"?}, values, coord_0, ..., coord_ndim-1] (insertion order)

``sorted``/``canonical`` are the cached ``has_sorted_indices``/``has_canonical_format`` flags
(absent when scipy has not computed them). Loading validates the structure before anything
is built (index ranges, ``indptr`` monotone and of the right length, consistent lengths,
block sizes dividing the shape, dtypes scipy supports); a damaged node raises
:class:`~amber.CorruptFileError`. Arrays in non-native byte order are loaded in native order.
"""

from __future__ import annotations

import itertools
from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from scipy.sparse._sputils import supported_dtypes as _scipy_dtypes

from amber.errors import CorruptFileError, EncodeError, UnsupportedTypeError
from amber.handlers._base import REGISTRY, DecodeContext, EncodeContext, Handler

__all__ = ["SPARSE_HANDLERS"]

#: Value dtypes scipy.sparse supports (native byte order).
_VALUE_DTYPES: frozenset[np.dtype] = frozenset(np.dtype(t) for t in _scipy_dtypes)
#: Index dtypes scipy.sparse uses.
_INDEX_DTYPES: frozenset[np.dtype] = frozenset({np.dtype(np.int32), np.dtype(np.int64)})
_MAXPRINT = 50
_MAX_DIM = (1 << 63) - 1
#: Element types of lil rows and dok values: numpy scalars where a Python one would round.
_KEEP_NUMPY_SCALARS = frozenset({np.dtype(np.longdouble), np.dtype(np.clongdouble)})


def _native(arr: np.ndarray) -> np.ndarray:
    dt = arr.dtype
    return arr if dt.isnative else arr.astype(dt.newbyteorder("="))


class _SparseHandler(Handler):
    """Shared encode/decode for one scipy.sparse class (subclasses set ``cls`` and ``fmt``)."""

    cls: ClassVar[type]
    fmt: ClassVar[str]
    #: dimensions this class supports
    ndims: ClassVar[tuple[int, ...]] = (2,)

    # -- encoding ---------------------------------------------------------------------
    def encode(self, obj: Any, ctx: EncodeContext) -> list[Any]:
        ctx.note_package("scipy")
        meta: dict[str, Any] = {"shape": [int(s) for s in obj.shape]}
        if getattr(obj, "maxprint", _MAXPRINT) != _MAXPRINT and type(obj.maxprint) is int:
            meta["maxprint"] = obj.maxprint
        return [self.tag, meta, *self.arrays(obj, meta, ctx)]

    @abstractmethod
    def arrays(self, obj: Any, meta: dict[str, Any], ctx: EncodeContext) -> list[Any]:
        """The array nodes of ``obj`` (its format's fields); may add entries to ``meta``."""

    def _refuse(self, obj: Any, why: str) -> UnsupportedTypeError:
        return UnsupportedTypeError(type(obj), "", why)

    def _check_values(self, obj: Any, arr: Any, what: str = "data") -> None:
        if not isinstance(arr, np.ndarray):
            raise self._refuse(obj, f"its {what} is a {type(arr).__name__}, not a NumPy array")
        if _native(arr[:0]).dtype not in _VALUE_DTYPES:
            raise self._refuse(
                obj, f"its {what} has dtype {arr.dtype}, which scipy.sparse does not support; "
                "convert it first (e.g. .astype(np.float32))"
            )

    def _check_index(self, obj: Any, arr: Any, what: str) -> None:
        if not isinstance(arr, np.ndarray) or _native(arr[:0]).dtype not in _INDEX_DTYPES:
            dt = getattr(arr, "dtype", type(arr).__name__)
            raise self._refuse(obj, f"its {what} have dtype {dt}; scipy.sparse index arrays are int32 or int64")

    # -- decoding ---------------------------------------------------------------------
    def corrupt(self, what: str) -> CorruptFileError:
        return CorruptFileError(
            f"{self.handler_id} node: {what}; the file is damaged or was not written by amber"
        )

    def decode(self, node: Any, ctx: DecodeContext) -> Any:
        if len(node) < 2 or type(node[1]) is not dict:
            raise self.corrupt("malformed node (expected [tag, meta, arrays...])")
        meta = node[1]
        shape = self._shape(meta.get("shape"))
        arrays = [ctx.decode(child, i) for i, child in enumerate(node[2:])]
        obj = self.build(shape, meta, arrays)
        mp = meta.get("maxprint")
        if mp is not None:
            if type(mp) is not int or mp < 0:
                raise self.corrupt(f"maxprint {mp!r:.40} is not a non-negative int")
            obj.maxprint = mp
        return obj

    @abstractmethod
    def build(self, shape: tuple[int, ...], meta: dict[str, Any], arrays: list[Any]) -> Any:
        """The matrix of this format from validated ``arrays`` (CorruptFileError otherwise)."""

    def _shape(self, node: Any) -> tuple[int, ...]:
        if (
            type(node) not in (list, tuple)
            or len(node) not in self.ndims
            or not all(type(s) is int and 0 <= s <= _MAX_DIM for s in node)
        ):
            nd = self.ndims
            n = str(nd[0]) if len(nd) == 1 else f"{nd[0]} or {nd[1]}" if len(nd) == 2 else f"{nd[0]} to {nd[-1]}"
            raise self.corrupt(f"shape {node!r:.80} is not a list of {n} non-negative ints")
        return tuple(node)

    def _count(self, arrays: list[Any], n: int) -> None:
        if len(arrays) != n:
            raise self.corrupt(f"it holds {len(arrays)} arrays, not {n}")

    def _arr(self, x: Any, what: str, ndim: int = 1) -> np.ndarray:
        if type(x) is not np.ndarray:
            raise self.corrupt(f"{what} is a {type(x).__name__}, not an array")
        if x.ndim != ndim:
            raise self.corrupt(f"{what} has {x.ndim} dimensions, not {ndim}")
        return x

    def _values(self, x: Any, what: str = "data", ndim: int = 1) -> np.ndarray:
        x = self._arr(x, what, ndim)
        if _native(x[:0]).dtype not in _VALUE_DTYPES:
            raise self.corrupt(f"{what} has dtype {x.dtype}, which scipy.sparse does not support")
        return _native(x)

    def _index(self, x: Any, what: str, maxval: int) -> np.ndarray:
        x = self._arr(x, what)
        if _native(x[:0]).dtype not in _INDEX_DTYPES:
            raise self.corrupt(f"{what} has dtype {x.dtype}, not int32 or int64")
        x = _native(x)
        if maxval > np.iinfo(x.dtype).max:
            raise self.corrupt(f"{what} of dtype {x.dtype} cannot index a dimension of {maxval}")
        return x

    def _within(self, idx: np.ndarray, bound: int, what: str) -> None:
        if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= bound):
            raise self.corrupt(f"{what} range {int(idx.min())}..{int(idx.max())} lies outside 0..{bound - 1}")

    def _indptr(self, indptr: np.ndarray, n: int, nnz_max: int, exact: bool = False) -> int:
        """Check an index pointer over ``n`` rows and return the number of stored entries."""
        if len(indptr) != n + 1:
            raise self.corrupt(f"indptr has {len(indptr)} entries, not {n + 1}")
        if indptr[0] != 0:
            raise self.corrupt(f"indptr starts at {int(indptr[0])}, not 0")
        if n and not bool((indptr[1:] >= indptr[:-1]).all()):
            raise self.corrupt("indptr decreases somewhere; it must be non-decreasing")
        nnz = int(indptr[-1])
        if nnz > nnz_max or (exact and nnz != nnz_max):
            raise self.corrupt(f"indptr ends at {nnz}, but there are {nnz_max} stored entries")
        return nnz

    def _flag(self, meta: dict[str, Any], key: str) -> bool | None:
        v = meta.get(key)
        if v is not None and type(v) is not bool:
            raise self.corrupt(f"flag {key!r} is {v!r:.40}, not a bool")
        return v

    def _empty(self, shape: tuple[int, ...], dtype: np.dtype, **kw: Any) -> Any:
        return self.cls(shape, dtype=dtype, **kw)


# -- CSR, CSC, BSR ----------------------------------------------------------------------


def _row_sorted(indices: np.ndarray, indptr: np.ndarray, strict: bool) -> bool:
    """Are the column indices (strictly) increasing within every row?"""
    nnz = int(indptr[-1])
    if nnz < 2:
        return True
    ix = indices[:nnz]
    ok = ix[1:] > ix[:-1] if strict else ix[1:] >= ix[:-1]
    bounds = indptr[1:-1]
    bounds = bounds[(bounds > 0) & (bounds < nnz)]
    ok[bounds - 1] = True  # a row's first entry may be smaller than the last one's
    return bool(ok.all())


class _CompressedHandler(_SparseHandler):
    def arrays(self, obj: Any, meta: dict[str, Any], ctx: EncodeContext) -> list[Any]:
        self._check_values(obj, obj.data)
        self._check_index(obj, obj.indices, "indices")
        self._check_index(obj, obj.indptr, "indptr")
        state = vars(obj)
        for key, attr in (("sorted", "_has_sorted_indices"), ("canonical", "_has_canonical_format")):
            if attr in state:
                meta[key] = bool(state[attr])
        return [ctx.encode(obj.data, "data"), ctx.encode(obj.indices, "indices"), ctx.encode(obj.indptr, "indptr")]

    def _geometry(self, shape: tuple[int, ...], data: np.ndarray) -> tuple[int, int, int, dict[str, Any]]:
        """(rows of indptr, bound of indices, largest value the index dtype must hold, ctor kw)."""
        m, n = shape if len(shape) == 2 else (1, shape[0])
        if self.fmt == "csc":
            m, n = n, m
        return m, n, max(shape, default=0), {}

    def build(self, shape: tuple[int, ...], meta: dict[str, Any], arrays: list[Any]) -> Any:
        self._count(arrays, 3)
        ndim = 3 if self.fmt == "bsr" else 1
        data = self._values(arrays[0], "data", ndim)
        rows, cols, maxval, kw = self._geometry(shape, data)
        indices = self._index(arrays[1], "indices", maxval)
        indptr = self._index(arrays[2], "indptr", maxval)
        if len(indices) != len(data):
            raise self.corrupt(f"indices has {len(indices)} entries but data has {len(data)}")
        nnz = self._indptr(indptr, rows, len(indices))
        if nnz < len(indices):  # scipy keeps exactly nnz entries
            indices, data = indices[:nnz], data[:nnz]
        self._within(indices, cols, "indices")
        sorted_, canonical = self._flag(meta, "sorted"), self._flag(meta, "canonical")
        if canonical and not _row_sorted(indices, indptr, strict=True):
            raise self.corrupt("it claims canonical format, but its indices are not strictly increasing in every row")
        if sorted_ and not canonical and not _row_sorted(indices, indptr, strict=False):
            raise self.corrupt("it claims sorted indices, but they are not sorted in every row")
        obj = self._empty(shape, data.dtype, **kw)
        obj.data, obj.indices, obj.indptr = data, indices, indptr
        if sorted_ is not None:
            obj.has_sorted_indices = sorted_
        if canonical is not None:
            obj.has_canonical_format = canonical
        return obj


class _BSRHandler(_CompressedHandler):
    def arrays(self, obj: Any, meta: dict[str, Any], ctx: EncodeContext) -> list[Any]:
        if getattr(obj.data, "ndim", 0) != 3:
            raise self._refuse(obj, "its data is not a 3-D array of blocks")
        return super().arrays(obj, meta, ctx)

    def _geometry(self, shape: tuple[int, ...], data: np.ndarray) -> tuple[int, int, int, dict[str, Any]]:
        m, n = shape
        r, c = data.shape[1:]
        if r < 1 or c < 1:
            raise self.corrupt(f"block size {r}x{c} is empty")
        if m % r or n % c:
            raise self.corrupt(f"block size {r}x{c} does not divide the shape {m}x{n}")
        return m // r, n // c, max(m // r, n // c, r, c), {"blocksize": (r, c)}


# -- COO --------------------------------------------------------------------------------


def _lex_strict(coords: list[np.ndarray]) -> bool:
    """Are the coordinate tuples strictly increasing in row-major (C) order?"""
    if not coords or len(coords[0]) < 2:
        return True
    gt = np.zeros(len(coords[0]) - 1, dtype=bool)
    eq = np.ones_like(gt)
    for c in coords:
        a, b = c[1:], c[:-1]
        gt |= eq & (a > b)
        eq &= a == b
    return bool(gt.all())


class _COOHandler(_SparseHandler):
    def arrays(self, obj: Any, meta: dict[str, Any], ctx: EncodeContext) -> list[Any]:
        self._check_values(obj, obj.data)
        for i, c in enumerate(obj.coords):
            self._check_index(obj, c, f"coordinates on axis {i}")
        meta["canonical"] = bool(obj.has_canonical_format)
        return [ctx.encode(obj.data, "data"), *(ctx.encode(c, f"coords[{i}]") for i, c in enumerate(obj.coords))]

    def build(self, shape: tuple[int, ...], meta: dict[str, Any], arrays: list[Any]) -> Any:
        self._count(arrays, 1 + len(shape))
        data = self._values(arrays[0])
        maxval = max(shape)
        coords = [self._index(c, f"coords[{i}]", maxval) for i, c in enumerate(arrays[1:])]
        for i, (c, s) in enumerate(zip(coords, shape)):
            if len(c) != len(data):
                raise self.corrupt(f"coords[{i}] has {len(c)} entries but data has {len(data)}")
            self._within(c, s, f"coords[{i}]")
        canonical = self._flag(meta, "canonical")
        if canonical is None:
            raise self.corrupt("the canonical-format flag is missing")
        if canonical and not _lex_strict(coords):
            raise self.corrupt("it claims canonical format, but its coordinates are not sorted and unique")
        obj = self._empty(shape, data.dtype)
        obj.data, obj.coords = data, tuple(coords)
        obj.has_canonical_format = canonical
        return obj


# -- DIA --------------------------------------------------------------------------------


class _DIAHandler(_SparseHandler):
    def arrays(self, obj: Any, meta: dict[str, Any], ctx: EncodeContext) -> list[Any]:
        self._check_values(obj, obj.data)
        self._check_index(obj, obj.offsets, "offsets")
        return [ctx.encode(obj.data, "data"), ctx.encode(obj.offsets, "offsets")]

    def build(self, shape: tuple[int, ...], meta: dict[str, Any], arrays: list[Any]) -> Any:
        self._count(arrays, 2)
        data = self._values(arrays[0], "data", 2)
        offsets = self._index(arrays[1], "offsets", max(shape))
        if data.shape[0] != len(offsets):
            raise self.corrupt(f"data holds {data.shape[0]} diagonals but there are {len(offsets)} offsets")
        if len(np.unique(offsets)) != len(offsets):
            raise self.corrupt("offsets has duplicate values")
        obj = self._empty(shape, data.dtype)
        obj.data, obj.offsets = data, offsets
        return obj


# -- LIL and DOK (stored flat, rebuilt as Python lists and dicts) -------------------------


def _index_dtype(maxval: int) -> np.dtype:
    return np.dtype(np.int32 if maxval <= np.iinfo(np.int32).max else np.int64)


def _items(values: np.ndarray) -> list[Any]:
    """Python scalars, as scipy builds them, unless that would round (long double)."""
    return list(values) if values.dtype in _KEEP_NUMPY_SCALARS else values.tolist()


class _LILHandler(_SparseHandler):
    def arrays(self, obj: Any, meta: dict[str, Any], ctx: EncodeContext) -> list[Any]:
        dt = np.dtype(obj.dtype)
        if _native(np.empty(0, dt)).dtype not in _VALUE_DTYPES:
            raise self._refuse(obj, f"its dtype {dt} is not one scipy.sparse supports")
        lengths = [len(r) for r in obj.rows]
        if lengths != [len(d) for d in obj.data]:
            raise EncodeError("a row of the lil matrix has a different number of indices and values")
        nnz = sum(lengths)
        it = _index_dtype(max(max(obj.shape), nnz))
        indptr = np.zeros(len(lengths) + 1, dtype=it)
        np.cumsum(lengths, out=indptr[1:])
        try:
            indices = np.fromiter(itertools.chain.from_iterable(obj.rows), dtype=it, count=nnz)
            data = np.fromiter(itertools.chain.from_iterable(obj.data), dtype=dt, count=nnz)
        except (TypeError, ValueError, OverflowError) as exc:
            raise EncodeError(f"the lil matrix holds entries that do not fit its dtype {dt}: {exc}") from None
        return [ctx.encode(data, "data"), ctx.encode(indices, "indices"), ctx.encode(indptr, "indptr")]

    def build(self, shape: tuple[int, ...], meta: dict[str, Any], arrays: list[Any]) -> Any:
        self._count(arrays, 3)
        m, n = shape
        data = self._values(arrays[0])
        indices = self._index(arrays[1], "indices", 0)
        indptr = self._index(arrays[2], "indptr", 0)
        if len(indices) != len(data):
            raise self.corrupt(f"indices has {len(indices)} entries but data has {len(data)}")
        self._indptr(indptr, m, len(indices), exact=True)
        self._within(indices, n, "indices")
        cols, vals, ptr = indices.tolist(), _items(data), indptr.tolist()
        rows = np.empty(m, dtype=object)
        values = np.empty(m, dtype=object)
        for i in range(m):
            a, b = ptr[i], ptr[i + 1]
            rows[i] = cols[a:b]
            values[i] = vals[a:b]
        obj = self._empty(shape, data.dtype)
        obj.rows, obj.data = rows, values
        return obj


class _DOKHandler(_SparseHandler):
    def arrays(self, obj: Any, meta: dict[str, Any], ctx: EncodeContext) -> list[Any]:
        dt = np.dtype(obj.dtype)
        if _native(np.empty(0, dt)).dtype not in _VALUE_DTYPES:
            raise self._refuse(obj, f"its dtype {dt} is not one scipy.sparse supports")
        nd, nnz = len(obj.shape), len(obj)
        it = _index_dtype(max(obj.shape, default=0))
        try:
            keys = np.array(list(obj.keys()), dtype=it).reshape(nnz, nd)
            values = np.fromiter(obj.values(), dtype=dt, count=nnz)
        except (TypeError, ValueError, OverflowError) as exc:
            raise EncodeError(f"the dok matrix holds keys or values that do not fit its shape and dtype: {exc}") from None
        coords = [np.ascontiguousarray(keys[:, i]) for i in range(nd)]
        return [ctx.encode(values, "values"), *(ctx.encode(c, f"coords[{i}]") for i, c in enumerate(coords))]

    def build(self, shape: tuple[int, ...], meta: dict[str, Any], arrays: list[Any]) -> Any:
        self._count(arrays, 1 + len(shape))
        values = self._values(arrays[0], "values")
        coords = [self._index(c, f"coords[{i}]", 0) for i, c in enumerate(arrays[1:])]
        for i, (c, s) in enumerate(zip(coords, shape)):
            if len(c) != len(values):
                raise self.corrupt(f"coords[{i}] has {len(c)} entries but there are {len(values)} values")
            self._within(c, s, f"coords[{i}]")
        keys: Any = coords[0].tolist() if len(shape) == 1 else zip(*(c.tolist() for c in coords))
        d = dict(zip(keys, list(values)))
        if len(d) != len(values):
            raise self.corrupt("it has duplicate keys")
        obj = self._empty(shape, values.dtype)
        store = getattr(obj, "_dict", None)
        if isinstance(store, dict):
            store.update(d)
        else:  # pragma: no cover - scipy versions whose dok is the dict itself
            obj.update(d)
        return obj


# -- registration -----------------------------------------------------------------------

_KINDS: dict[str, tuple[type[_SparseHandler], tuple[int, ...]]] = {
    "csr": (_CompressedHandler, (1, 2)),
    "csc": (_CompressedHandler, (2,)),
    "bsr": (_BSRHandler, (2,)),
    "coo": (_COOHandler, tuple(range(1, 65))),
    "dia": (_DIAHandler, (2,)),
    "lil": (_LILHandler, (2,)),
    "dok": (_DOKHandler, (1, 2)),
}


def _make(fmt: str, kind: str) -> type[_SparseHandler]:
    base, array_ndims = _KINDS[fmt]
    cls = getattr(sp, f"{fmt}_{kind}")
    allowed = tuple(getattr(cls, "_allow_nd", (2,)))
    ndims = tuple(d for d in array_ndims if d in allowed) if kind == "array" else (2,)
    return type(
        f"{fmt.upper()}{kind.capitalize()}Handler",
        (base,),
        {"handler_id": f"scipy.sparse.{fmt}_{kind}", "types": (cls,), "cls": cls, "fmt": fmt, "ndims": ndims,
         "__module__": __name__, "__doc__": f"``scipy.sparse.{fmt}_{kind}``."},
    )


SPARSE_HANDLERS: tuple[type[_SparseHandler], ...] = tuple(
    _make(fmt, kind) for fmt in _KINDS for kind in ("matrix", "array")
)

for _h in SPARSE_HANDLERS:
    REGISTRY.register(_h)


class FrozenDistributionHandler(Handler):
    """A frozen ``scipy.stats`` distribution (``loguniform(1e-3, 1e2)``, ``randint(1, 10)``,
    as in ``RandomizedSearchCV`` parameter spaces): its name in ``scipy.stats``, its shape
    arguments and its random state. Loading rebuilds it by calling that named distribution,
    never by restoring the distribution object's own state (which holds source text)."""

    handler_id = "scipy.stats.frozen"
    types: ClassVar[tuple[type, ...]] = ()

    def encode(self, obj: Any, ctx: EncodeContext) -> list[Any]:
        import scipy.stats as st

        name = getattr(obj.dist, "name", None)
        named = getattr(st, name, None) if isinstance(name, str) else None
        if named is None or type(named) is not type(obj.dist):
            raise UnsupportedTypeError(
                type(obj), "", "only distributions named in scipy.stats can be saved (not custom rv_ subclasses)"
            )
        ctx.note_package("scipy")
        return [
            self.tag,
            name,
            ctx.encode(tuple(obj.args), ".args"),
            ctx.encode(dict(obj.kwds), ".kwds"),
            ctx.encode(obj.random_state, ".random_state"),
        ]

    def decode(self, node: Any, ctx: DecodeContext) -> Any:
        import scipy.stats as st
        from scipy.stats._distn_infrastructure import rv_generic

        if len(node) != 5 or type(node[1]) is not str or not node[1].isidentifier() or node[1].startswith("_"):
            raise CorruptFileError("malformed scipy.stats.frozen node")
        dist = st.__dict__.get(node[1])
        if not isinstance(dist, rv_generic):
            raise CorruptFileError(f"{node[1]!r} is not a distribution in scipy.stats")
        args, kwds, state = ctx.decode(node[2]), ctx.decode(node[3]), ctx.decode(node[4])
        if type(args) is not tuple or type(kwds) is not dict or not all(type(k) is str for k in kwds):
            raise CorruptFileError(f"malformed arguments for scipy.stats.{node[1]}")
        if not all(type(v) in (int, float, bool) or isinstance(v, (np.number, np.ndarray)) for v in (*args, *kwds.values())):
            raise CorruptFileError(f"scipy.stats.{node[1]} takes numbers as shape arguments")
        if not (state is None or isinstance(state, (np.random.RandomState, np.random.Generator))):
            raise CorruptFileError(f"the random state of scipy.stats.{node[1]} is neither a RandomState nor a Generator")
        frozen = dist(*args, **kwds)
        frozen.random_state = state
        return frozen


def _frozen_types() -> tuple[type, ...]:
    from scipy.stats._distn_infrastructure import rv_continuous_frozen, rv_discrete_frozen

    return (rv_continuous_frozen, rv_discrete_frozen)


FrozenDistributionHandler.types = _frozen_types()
REGISTRY.register(FrozenDistributionHandler)
