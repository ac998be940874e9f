"""Checks of rebuilt objects whose compiled code trusts the state it was given.

Some trusted classes keep their state in C arrays and follow indices from it without
bounds checks. scikit-learn's ``Tree`` is the one every tree model holds: ``predict``
walks the child links of its node records, and ``decision_path`` writes one entry per
level into a buffer sized by ``max_depth``. ``Tree.__setstate__`` checks the dtype and
shape of the records, not the links, so a file whose links point outside the tree makes
the first ``predict`` read (and ``decision_path`` write) outside its memory: a crash at
best. A load rebuilds such an object from the file's state and then checks it here,
before anything is handed out: :func:`check_for` gives the check of a class (the native
format's generic handler runs it after ``__setstate__``, the native tree handler checks
the records before it builds, and the safe unpicklers, after a load that named a checked
class, run it on every instance reachable from the result: :func:`find_checked`). A few
compiled constructors trust their arguments: :func:`arg_check_for` checks them first.

Each check has a pure-NumPy twin of its C loop (``amber._speedups``); both name the same
first bad node in the same words.
"""

from __future__ import annotations

import functools
import gc
import operator
import re
import types
from collections.abc import Callable
from typing import Any

import numpy as np

from amber._compiled import compiled
from amber.errors import CorruptFileError

__all__ = [
    "ARG_CHECKED",
    "CHECKED",
    "STATE_CHECKED",
    "arg_check_for",
    "check_for",
    "find_checked",
    "state_check_for",
    "attention_problem",
    "attention_dtype_problem",
    "dtype_problem",
    "binary_tree_problem",
    "block_manager_problem",
    "datetimelike_problem",
    "fold_problem",
    "lightgbm_wrapper_problem",
    "xgboost_wrapper_problem",
    "lil_problem",
    "rnn_problem",
    "birch_problem",
    "bit_generator_problem",
    "bisecting_kmeans_problem",
    "categorical_problem",
    "covariance_problem",
    "hgb_problem",
    "kde_problem",
    "kmeans_problem",
    "libsvm_problem",
    "metric_problem",
    "multi_index_problem",
    "neighbors_problem",
    "polynomial_problem",
    "random_state_problem",
    "seed_sequence_problem",
    "predictor_problem",
    "sklearn_tree_problem",
    "sparse_problem",
    "target_encoder_problem",
    "tree_estimator_problem",
    "tree_nodes_problem",
]


#: The most OpenMP threads a fitted model may ask for (a fit asks for the machine's CPUs;
#: 4096 ran here, 32768 could not be created and libgomp ended the process).
_MAX_THREADS = 4096


def _tree_problem_np(left: np.ndarray, right: np.ndarray, feature: np.ndarray, n_features: int, max_depth: int) -> str | None:
    n = len(left)
    if n == 0:
        return "the tree has no nodes"
    i = np.arange(n)
    leaf = (left == -1) & (right == -1)
    one = (left == -1) ^ (right == -1)
    inner = ~leaf & ~one
    out = inner & ((left <= i) | (left >= n) | (right <= i) | (right >= n) | (left == right))
    fwd = inner & ~out
    bad_feature = fwd & ((feature < 0) | (feature >= n_features))
    counts = np.bincount(np.concatenate([left[fwd], right[fwd]]), minlength=n)
    unlinked = counts != 1
    unlinked[0] = False  # forward links never reach the root
    parent = np.full(n, -1, dtype=np.int64)
    parent[left[fwd]] = i[fwd]
    parent[right[fwd]] = i[fwd]
    # depth by pointer jumping: parents come before children, so the chains end
    depth = (parent >= 0).astype(np.int64)
    up = parent.copy()
    while True:
        m = up >= 0
        if not m.any():
            break
        depth[m] += depth[up[m]]
        up[m] = up[up[m]]
    deep = leaf & (depth > max_depth)
    bad = unlinked | one | out | bad_feature | deep
    if not bad.any():
        return None
    e = int(np.argmax(bad))
    return _reason(e, n, bool(unlinked[e]), int(counts[e]), bool(one[e]), bool(out[e]), bool(bad_feature[e]),
                   int(feature[e]), n_features, int(depth[e]), max_depth)


def _reason(e: int, n: int, unlinked: bool, count: int, one: bool, out: bool, bad_feature: bool, feature: int,
            n_features: int, depth: int, max_depth: int) -> str:
    if unlinked:
        return f"no node links to node {e}" if count == 0 else f"node {e} is the child of more than one node"
    if one:
        return f"node {e} has one child"
    if out:
        return f"node {e} links to a child outside nodes {e + 1}..{n - 1}"
    if bad_feature:
        return f"node {e} splits on feature {feature}, outside 0..{n_features - 1}"
    return f"leaf {e} lies {depth} levels deep, below the tree's max_depth {max_depth}"


_C = compiled("tree_problem")
_INTP = np.dtype(np.intp)
_HUGE = 1 << 62


@functools.lru_cache(maxsize=16)
def _layout(dt: np.dtype) -> tuple[int, int, int, int, bool] | None:
    """(itemsize, left_child, right_child and feature offsets, all three native int64) of
    a node record dtype, or None when it lacks one of the fields."""
    fields = dt.fields or {}
    keys = ("left_child", "right_child", "feature")
    if not all(k in fields for k in keys):
        return None
    native = _INTP.itemsize == 8 and all(fields[k][0] == _INTP for k in keys)
    return dt.itemsize, fields["left_child"][1], fields["right_child"][1], fields["feature"][1], native


def tree_nodes_problem(nodes: np.ndarray, n_features: int, max_depth: int, fast: bool = True) -> str | None:
    """Why scikit-learn tree node records ``nodes`` are unsafe to use, or None when every
    node is a leaf (both children -1) or has two children inside the tree with larger
    indices, every node but the root is the child of exactly one node, every split is on a
    feature ``0 <= f < n_features`` and no leaf lies deeper than ``max_depth``, which is
    below the number of nodes (``decision_path`` sizes a buffer as rows x (1 + max_depth)
    in C integers: a max_depth of 2**62 wrapped that to nothing and it wrote past it).
    (Larger child indices make the links a tree that predict walks down and out of.)"""
    layout = _layout(nodes.dtype)
    if layout is None:
        return "the node records lack child links or features"
    if not 0 <= max_depth < max(len(nodes), 1):
        return f"its max_depth {max_depth} is not below its number of nodes ({len(nodes)})"
    size, left_at, right_at, feature_at, native = layout
    if fast and _C is not None and native and nodes.ndim == 1 and nodes.flags.c_contiguous:
        # (the array itself: a memoryview of it spells out the record type first, 4 us a tree)
        return _C(nodes, len(nodes), size, left_at, right_at, feature_at, n_features, max_depth)
    as64 = [np.asarray(nodes[k], dtype=np.int64) for k in ("left_child", "right_child", "feature")]
    return _links_problem(*as64, n_features, max_depth, fast)


def _links_problem(left: np.ndarray, right: np.ndarray, feature: np.ndarray, n_features: int, max_depth: int,
                   fast: bool = True) -> str | None:
    """:func:`tree_nodes_problem` of three int64 columns."""
    if fast and _C is not None:
        packed = np.empty((len(left), 3), dtype=np.int64)
        packed[:, 0], packed[:, 1], packed[:, 2] = left, right, feature
        return _C(packed, len(left), 24, 0, 8, 16, n_features, max_depth)
    return _tree_problem_np(left, right, feature, n_features, max_depth)


def predictor_problem(pred: Any, n_features: int | None = None, categorical: np.ndarray | None = None,
                      fast: bool = True) -> str | None:
    """Why a histogram gradient boosting ``TreePredictor`` is unsafe to use, or None.

    Its node records must link as a tree does (:func:`tree_nodes_problem`, a node being a
    leaf by its ``is_leaf`` flag), a categorical split must name one of the bitsets the
    predictor holds (rows of 8 uint32 words, one bit per category value 0..255) and, when
    the estimator's ``n_features`` and ``categorical`` flags are given, every split must be
    on a feature below ``n_features``, and a categorical split on a categorical feature."""
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE

    nodes = getattr(pred, "nodes", None)
    if not isinstance(nodes, np.ndarray) or nodes.dtype != PREDICTOR_RECORD_DTYPE or nodes.ndim != 1:
        return "its nodes are not a 1-d array of the predictor record type"
    leaf = nodes["is_leaf"] != 0
    left = np.where(leaf, -1, nodes["left"].astype(np.int64))
    right = np.where(leaf, -1, nodes["right"].astype(np.int64))
    feature = np.where(leaf, -2, nodes["feature_idx"].astype(np.int64))
    problem = _links_problem(left, right, feature, _HUGE if n_features is None else n_features, len(nodes), fast)
    if problem is not None:
        return problem
    split = ~leaf & (nodes["is_categorical"] != 0)
    if split.any():
        for name in ("binned_left_cat_bitsets", "raw_left_cat_bitsets"):
            bits = getattr(pred, name, None)
            if not isinstance(bits, np.ndarray) or bits.dtype != np.uint32 or bits.ndim != 2 or bits.shape[1] != 8:
                return f"its {name} are not rows of 8 uint32 words"
            past = split & (nodes["bitset_idx"] >= len(bits))
            if past.any():
                e = int(np.argmax(past))
                return f"node {e} names bitset {int(nodes['bitset_idx'][e])}, past the {len(bits)} of its {name}"
    if categorical is not None and split.any():  # (predict looks up the known categories of its feature)
        wrong = split & ~categorical[np.where(split, feature, 0)]
        if wrong.any():
            e = int(np.argmax(wrong))
            return f"node {e} makes a categorical split on feature {int(feature[e])}, which the binner treats as numeric"
    return None


def hgb_problem(est: Any) -> str | None:
    """Why a rebuilt HistGradientBoosting model is unsafe, or None: every split of every
    tree on a feature it has (as many as ``n_features_in_``), categorical only where its
    binner says (:func:`predictor_problem`)."""
    predictors = est.__dict__.get("_predictors")
    if predictors is None:  # not fitted: nothing predicts
        return None
    n = est.__dict__.get("n_features_in_")
    flags = getattr(est.__dict__.get("_bin_mapper"), "is_categorical_", None)
    if type(n) is not int or n < 1 or not isinstance(flags, np.ndarray) or flags.ndim != 1 or len(flags) < n:
        return "its feature count or categorical flags are missing"
    if not isinstance(predictors, list) or not all(isinstance(it, list) for it in predictors):
        return "its trees are not lists of predictors"
    categorical = flags[:n] != 0
    for it, trees in enumerate(predictors):
        for k, pred in enumerate(trees):
            if type(pred).__qualname__ != "TreePredictor":
                return f"tree [{it}][{k}] is a {type(pred).__name__}"
            problem = predictor_problem(pred, n, categorical)
            if problem is not None:
                return f"tree [{it}][{k}]: {problem}"
    return None


def binary_tree_problem(tree: Any) -> str | None:
    """Why a rebuilt ``KDTree``/``BallTree`` is unsafe to query, or None: its index array
    must name data rows, every node's index range must lie inside it, a node that is not a
    leaf must have both children (``2i+1``, ``2i+2``) among the nodes, the node bounds must
    cover every node and feature, the sample weights every row, and its distance metric
    must fit the data (:func:`metric_problem`)."""
    state = tree.__getstate__()
    data, idx, nodes, bounds = state[0], state[1], state[2], state[3]
    n_nodes, metric, weights = state[6], state[11], state[12]
    if type(state[4]) is not int or state[4] < 1:
        return f"its leaf size is {state[4]!r:.20} (queries divide by it)"
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[0] < 1:
        return "its data is not a 2-d array of at least one row"
    rows, cols = data.shape
    if not isinstance(idx, np.ndarray) or idx.shape != (rows,):
        return f"its index array does not hold one entry per data row ({rows})"
    if rows and (int(idx.min()) < 0 or int(idx.max()) >= rows):
        return f"its index array names rows outside 0..{rows - 1}"
    if not isinstance(nodes, np.ndarray) or nodes.ndim != 1 or type(n_nodes) is not int or len(nodes) != n_nodes or n_nodes < 1:
        return f"it declares {n_nodes!r:.20} nodes and holds {getattr(nodes, 'shape', None)}"
    start, end = nodes["idx_start"], nodes["idx_end"]
    bad = (start < 0) | (start > end) | (end > rows)
    if bad.any():
        e = int(np.argmax(bad))
        return f"node {e} covers index entries {int(start[e])}..{int(end[e])}, outside 0..{rows}"
    inner = np.flatnonzero(nodes["is_leaf"] == 0)
    if len(inner) and int(inner[-1]) * 2 + 2 >= n_nodes:
        e = int(inner[inner * 2 + 2 >= n_nodes][0])
        return f"node {e} is no leaf, but its children {2 * e + 1} and {2 * e + 2} are not among its {n_nodes} nodes"
    lows = 2 if type(tree).__name__.startswith("KDTree") else 1
    if not isinstance(bounds, np.ndarray) or bounds.ndim != 3 or bounds.shape[0] < lows or bounds.shape[1:] != (n_nodes, cols):
        return f"its node bounds {getattr(bounds, 'shape', None)} do not cover {n_nodes} nodes of {cols} features"
    if weights is not None and (not isinstance(weights, np.ndarray) or weights.shape != (rows,)):
        return f"its sample weights do not hold one weight per data row ({rows})"
    problem = metric_problem(metric, cols)
    return None if problem is None else f"its distance metric {problem}"


def metric_problem(metric: Any, n_features: int) -> str | None:
    """Why a rebuilt ``DistanceMetric`` cannot measure points of ``n_features`` features
    without reading outside its parameters, or None. Its state is ``(p, vec, mat)``: the
    weights of a Minkowski metric (none, or one per feature), the variances of a
    standardized Euclidean one (one per feature), the inverse covariance of a Mahalanobis
    one (``n_features`` square; its scratch buffer is sized from it); Haversine measures
    points of exactly 2 features. Metrics without arrays need nothing."""
    kind = type(metric).__name__.rstrip("0123456789")
    if kind not in ("MinkowskiDistance", "SEuclideanDistance", "MahalanobisDistance", "HaversineDistance"):
        return None
    try:
        state = metric.__getstate__()
        vec, mat = np.asarray(state[1]), np.asarray(state[2])
    except Exception as exc:  # noqa: BLE001 - any failure means: not a usable metric
        return f"({kind}) has no readable state ({type(exc).__name__})"
    if kind == "MinkowskiDistance" and (vec.ndim != 1 or len(vec) not in (0, n_features)):
        return f"(Minkowski) has weights of shape {vec.shape} for {n_features} features"
    if kind == "SEuclideanDistance" and vec.shape != (n_features,):
        return f"(standardized Euclidean) has variances of shape {vec.shape} for {n_features} features"
    if kind == "MahalanobisDistance" and mat.shape != (n_features, n_features):
        return f"(Mahalanobis) has a matrix of shape {mat.shape} for {n_features} features"
    if kind == "HaversineDistance" and n_features != 2:
        return f"(Haversine) measures points of 2 features, not {n_features}"
    return None


def libsvm_problem(est: Any) -> str | None:
    """Why a rebuilt libsvm model (``SVC``, ``NuSVC``, ``SVR``, ``NuSVR``, ``OneClassSVM``)
    is unsafe to predict with, or None. libsvm takes its arrays as they are: the number of
    support vectors comes from ``support_``, the class count from ``_n_support``, and the
    sizes of the coefficient, intercept and probability arrays must follow from those."""
    d = est.__dict__
    if "support_" not in d:
        return None  # not fitted: predict refuses
    sup, sv, nsup = d.get("support_"), d.get("support_vectors_"), d.get("_n_support")
    dual, icpt, pa, pb, fit = (d.get(k) for k in ("_dual_coef_", "_intercept_", "_probA", "_probB", "shape_fit_"))
    if not all(isinstance(a, np.ndarray) and a.ndim == 1 for a in (sup, nsup, icpt, pa, pb)):
        return "its support indices, class sizes, intercepts or probability parameters are not 1-d arrays"
    if not (isinstance(fit, tuple) and len(fit) == 2 and all(type(x) is int and x >= 0 for x in fit)):
        return f"its training shape is {fit!r:.40}"
    n = len(sup)
    if n and (int(sup.min()) < 0 or int(sup.max()) >= fit[0]):
        return f"its support indices name samples outside 0..{fit[0] - 1}"
    k = len(nsup)
    if k < 2 or int(nsup.min()) < 0:
        return f"its class sizes {nsup.tolist()[:6]} are not at least two counts of zero or more"
    if getattr(est, "_impl", None) in ("c_svc", "nu_svc"):
        pairs = k * (k - 1) // 2
        if int(nsup.sum()) != n:
            return f"its class sizes add up to {int(nsup.sum())}, not its {n} support vectors"
        want_dual, want_icpt, probs = (k - 1, n), pairs, (0, pairs)
    else:
        if k != 2:
            return f"it has {k} class sizes, where libsvm's regression and one-class models have 2"
        want_dual, want_icpt, probs = (1, n), 1, (0, 1)
    if getattr(dual, "shape", None) != want_dual:
        return f"its dual coefficients have shape {getattr(dual, 'shape', None)}, not {want_dual}"
    if d.get("_sparse") is True:
        # (libsvm's sparse predict takes the CSR arrays of both and reads every dual coefficient from .data)
        if getattr(sv, "format", None) != "csr" or getattr(dual, "format", None) != "csr":
            return "it was fitted on sparse data, and its support vectors or dual coefficients are not CSR matrices"
        data = getattr(dual, "data", None)
        if not isinstance(data, np.ndarray) or data.shape != (want_dual[0] * want_dual[1],):
            return f"its sparse dual coefficients store {getattr(data, 'shape', None)} values, not all {want_dual[0] * want_dual[1]}"
    if len(icpt) != want_icpt or len(pa) not in probs or len(pb) != len(pa):
        return f"it has {len(icpt)} intercepts and {len(pa)}/{len(pb)} probability parameters for {k} classes"
    if getattr(est, "kernel", None) != "precomputed" and not callable(getattr(est, "kernel", None)):
        shape = getattr(sv, "shape", None)
        if shape is None or len(shape) != 2 or shape[0] != n or shape[1] != fit[1]:
            return f"its support vectors have shape {shape}, not ({n}, {fit[1]})"
    return None


def kmeans_problem(est: Any) -> str | None:
    """k-means predicts on sparse data with one loop over ``n_features_in_`` per center, in
    an OpenMP team of ``_n_threads`` (what fit found usable: from 1 to the machine's CPUs):
    libgomp took -1 as an unsigned count and ended the process (exit 1, out of memory),
    32768 ended it when the threads could not be created, 10**6 crashed it (SIGSEGV)."""
    centers, n = est.__dict__.get("cluster_centers_"), est.__dict__.get("n_features_in_")
    if centers is not None and (
        not isinstance(centers, np.ndarray) or centers.ndim != 2 or type(n) is not int or centers.shape[1] != n
    ):
        return f"its centers of shape {getattr(centers, 'shape', None)} do not have its {n!r:.20} features"
    threads = est.__dict__.get("_n_threads", 1)
    if type(threads) is not int or not 1 <= threads <= _MAX_THREADS:
        return f"its number of threads {threads!r:.20} is not between 1 and {_MAX_THREADS}"
    return None


def bspline_problem(spl: Any) -> str | None:
    """SciPy evaluates a B-spline in compiled code that trusts its knots ``t``, coefficients
    ``c`` and degree ``k`` to fit together as ``BSpline.__init__`` makes them, which
    unpickling skips: coefficients cut short gave other memory's bytes as values (a
    SplineTransformer's output summed to 1e255), a negative degree aborted the process.
    (``construct_fast`` skips the checks too, so strided knots stay allowed.)"""
    d = getattr(spl, "__dict__", None)
    if type(d) is not dict:
        return "it has no attributes"
    # (SciPy 1.15 and later keep them as _t and _c, behind properties)
    t, c, k = d.get("_t", d.get("t")), d.get("_c", d.get("c")), d.get("k")
    if type(k) is not int or not 0 <= k < 1 << 20:
        return f"its degree {k!r:.20} is not a non-negative integer"
    if not isinstance(t, np.ndarray) or t.ndim != 1 or t.dtype != np.float64:
        return "its knots are not a 1-d float64 array"
    n = t.shape[0] - k - 1
    if n < k + 1:
        return f"it has {t.shape[0]} knots, where degree {k} needs at least {2 * k + 2}"
    if not bool(np.isfinite(t).all()) or bool((np.diff(t) < 0).any()):
        return "its knots are not finite and non-decreasing"
    if t[n] <= t[k]:
        return "it has fewer than two distinct interior knots"
    if not isinstance(c, np.ndarray) or c.ndim < 1 or c.shape[0] < n:
        return f"its coefficients of shape {getattr(c, 'shape', None)} are fewer than its {n} basis functions"
    if c.dtype not in (np.float64, np.complex128):
        return f"its coefficients are {c.dtype}, not float64 or complex128"
    extrapolate, axis = d.get("extrapolate"), d.get("axis")
    if not (type(extrapolate) is bool or extrapolate == "periodic") or type(axis) is not int or not 0 <= axis < c.ndim:
        return "its extrapolation mode or axis is malformed"
    return None


def birch_problem(est: Any) -> str | None:
    """Birch predicts with scikit-learn's compiled nearest-center search, given the squared
    norms of its subcluster centers (``_subcluster_norms``) to read one per center unchecked:
    norms cut short read past their end (a crash, exit 139)."""
    centers, norms = est.__dict__.get("subcluster_centers_"), est.__dict__.get("_subcluster_norms")
    if centers is None and norms is None:
        return None
    if not isinstance(centers, np.ndarray) or centers.ndim != 2:
        return f"its subcluster centers are not a 2-d array ({type(centers).__name__})"
    if not isinstance(norms, np.ndarray) or norms.shape != (centers.shape[0],):
        return (f"it has squared norms of shape {getattr(norms, 'shape', None)} "
                f"for {centers.shape[0]} subcluster centers")
    return None


def neighbors_problem(est: Any) -> str | None:
    """A neighbors estimator searching by brute force hands its data ``_fit_X`` to scikit-learn's
    compiled nearest-neighbor search, which splits it into chunks by its row count (no rows:
    SIGFPE), and builds its distance metric from ``effective_metric_params_``: a Mahalanobis
    metric reads its matrix ``VI`` as ``n_features`` square unchecked (a 1x1 matrix on 4000
    features crashed kneighbors)."""
    params, fit_x = est.__dict__.get("effective_metric_params_"), est.__dict__.get("_fit_X")
    n = _width(est)
    if fit_x is not None:
        shape, rows = getattr(fit_x, "shape", None), est.__dict__.get("n_samples_fit_")
        if not isinstance(shape, tuple) or len(shape) != 2 or shape[0] < 1 or shape[0] != rows:
            return f"its data of shape {shape} does not hold its {rows!r:.20} samples (at least one)"
        if n is not None and shape[1] != n:
            return f"its data of shape {shape} does not have its {n} features"
    if est.__dict__.get("effective_metric_") != "mahalanobis":
        return None
    if n is None and isinstance(fit_x, np.ndarray) and fit_x.ndim == 2:
        n = fit_x.shape[1]
    matrix = None
    if isinstance(params, dict):  # (a tree's metric may be given V, and computes VI from it)
        matrix = params.get("VI", params.get("V"))
    try:
        shape = np.shape(matrix) if matrix is not None else None
    except Exception:  # noqa: BLE001 - no shape: not a matrix
        shape = None
    if n is None or shape != (n, n):
        return f"its Mahalanobis matrix has shape {shape} for {n!r:.20} features"
    return None


def covariance_problem(est: Any) -> str | None:
    """A covariance estimator's ``mahalanobis`` (``score_samples``, and ``EllipticEnvelope``'s
    predict) hands its precision matrix (or the inverse of its covariance) to SciPy's compiled
    Mahalanobis distance, which reads it as ``n_features`` square unchecked: a precision of
    one row on 3000 features crashed it (exit 139)."""
    d = est.__dict__
    location, precision, covariance = d.get("location_"), d.get("precision_"), d.get("covariance_")
    if location is None and precision is None and covariance is None:
        return None  # not fitted
    if not isinstance(location, np.ndarray) or location.ndim != 1:
        return f"its location of shape {getattr(location, 'shape', None)} is not a 1-d array"
    n = location.shape[0]
    for name, m in (("precision", precision), ("covariance", covariance)):
        if (m is not None or name == "covariance") and (not isinstance(m, np.ndarray) or m.shape != (n, n)):
            return f"its {name} matrix of shape {getattr(m, 'shape', None)} is not {n} square, as its location"
    width = d.get("n_features_in_", n)
    if width != n:
        return f"its location has {n} features, its input {width!r:.20}"
    return None


def bisecting_kmeans_problem(est: Any) -> str | None:
    """Bisecting k-means predicts down its tree of clusters, stacking two nodes' centers at
    each step and running k-means' loop on them (:func:`kmeans_problem`)."""
    problem = kmeans_problem(est)
    if problem is not None:
        return problem
    node, n = est.__dict__.get("_bisecting_tree"), est.__dict__.get("n_features_in_")
    mean = est.__dict__.get("_X_mean")
    if mean is not None and (not isinstance(mean, np.ndarray) or mean.shape != (n,)):
        return f"its data mean of shape {getattr(mean, 'shape', None)} does not have its {n!r:.20} features"
    stack, seen = ([node] if node is not None else []), set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            return "its tree of clusters holds a cycle"
        seen.add(id(node))
        center = getattr(node, "center", None)
        if not isinstance(center, np.ndarray) or center.shape != (n,):
            return f"a cluster center of shape {getattr(center, 'shape', None)} does not have its {n!r:.20} features"
        stack += [c for c in (getattr(node, "left", None), getattr(node, "right", None)) if c is not None]
    return None


def categorical_problem(cat: Any) -> str | None:
    """Why a rebuilt pandas ``Categorical`` is unsafe, or None: its codes must be integers
    from -1 (missing) to one less than its number of categories (pandas looks values up
    by code without a bounds check: a pickled code past the end read other memory)."""
    codes, dtype = getattr(cat, "_codes", None), getattr(cat, "dtype", None)
    categories = getattr(dtype, "categories", None)
    if not isinstance(codes, np.ndarray) or codes.dtype.kind not in "iu" or categories is None:
        return "its codes are not an integer array, or it has no categories"
    if codes.size and (int(codes.min()) < -1 or int(codes.max()) >= len(categories)):
        return f"its codes run from {int(codes.min())} to {int(codes.max())}, outside -1..{len(categories) - 1}"
    return None


def sparse_problem(m: Any) -> str | None:
    """Why a rebuilt SciPy sparse matrix or array is unsafe, or None. SciPy's compiled
    routines index with its arrays unchecked (a pickled CSR matrix whose column indices
    lay past its width crashed ``A @ x``); a pickle sets them without SciPy's constructor
    checks, so they run here: ``check_format(full_check=True)`` for CSR, CSC and BSR, the
    COO constructor's ``_check()``, and DIA's one data row per distinct offset."""
    try:
        if hasattr(m, "check_format"):
            m.check_format(full_check=True)
        elif hasattr(m, "_check"):
            m._check()
        else:  # DIA
            data, offsets = m.data, m.offsets
            if not (isinstance(data, np.ndarray) and isinstance(offsets, np.ndarray)) or data.ndim != 2 or offsets.ndim != 1:
                return "its data or offsets are not arrays of 2 and 1 dimensions"
            if data.shape[0] != len(offsets) or len(np.unique(offsets)) != len(offsets):
                return f"it holds {data.shape[0]} diagonals for {len(offsets)} offsets, or an offset twice"
            # (SciPy's kernels compute -offset and rows + offset in the offsets' integer type)
            room = int(np.iinfo(np.int64 if offsets.dtype.itemsize > 4 else np.int32).max) - max(*m.shape, data.shape[1])
            if offsets.dtype.kind not in "iu" or (len(offsets) and int(np.abs(offsets.astype(np.int64)).max()) > room):
                return f"its offsets are not integers within {room} of the main diagonal"
    except (ValueError, TypeError, AttributeError, IndexError, OverflowError) as exc:
        return f"{exc}".rstrip(".")
    return None


def tree_estimator_problem(est: Any) -> str | None:
    """A decision tree estimator's ``criterion`` is a name: a criterion object built for
    fewer classes than ``fit`` later meets writes past its arrays."""
    criterion = est.__dict__.get("criterion")
    if criterion is not None and not isinstance(criterion, str):
        return f"its criterion is a {type(criterion).__name__} object, not a name"
    return None


def _width(est: Any) -> int | None:
    """``n_features_in_``: the number of columns predict lets through (its input check is
    skipped when the attribute is missing), or None when it is not a plain int."""
    n = est.__dict__.get("n_features_in_") if type(getattr(est, "__dict__", None)) is dict else None
    return n if type(n) is int and n >= 0 else None


def _fitted_part(est: Any, attr: str, what: str) -> tuple[Any, int | None, str | None]:
    """(``est.attr``, ``n_features_in_``, None) for a fitted estimator; (None, None, None)
    when it holds no ``attr``; a problem when it holds one but no input width (predict then
    lets any input through)."""
    part = est.__dict__.get(attr)
    if part is None:
        return None, None, None
    n = _width(est)
    if n is None:
        return part, None, f"it has {what} but no number of input features (n_features_in_), so predict would pass any input"
    return part, n, None


def tree_width_problem(est: Any) -> str | None:
    """A fitted decision tree estimator lets ``n_features_in_`` columns through to its tree,
    which reads every column up to its own ``n_features`` unchecked (a tree of 10**6
    features in a 5-feature estimator crashed predict)."""
    tree, n, problem = _fitted_part(est, "tree_", "a tree")
    if n is None:
        return problem
    if getattr(tree, "n_features", None) != n:
        return f"its tree splits on {getattr(tree, 'n_features', None)!r:.20} features, its input has {n}"
    return None


def forest_problem(est: Any) -> str | None:
    """A forest checks its input once and hands it to every tree unchecked; so does an
    isolation forest (each tree's own subset of the columns)."""
    trees, n, problem = _fitted_part(est, "estimators_", "trees")
    if n is None:
        return problem
    if not isinstance(trees, list):
        return "its estimators are not a list"
    features = est.__dict__.get("estimators_features_")
    for i, t in enumerate(trees):
        w = _width(t)
        if w is None or w > n:
            return f"its tree {i} takes {w!r:.20} features, its input has {n}"
        if features is not None:
            f = features[i] if isinstance(features, list) and i < len(features) else None
            if not isinstance(f, np.ndarray) or f.ndim != 1 or len(f) < w:
                return f"its tree {i} takes {w} features, its feature subset has {len(f) if isinstance(f, np.ndarray) else f!r:.20}"
    return None


def gradient_boosting_problem(est: Any) -> str | None:
    """Gradient boosting adds every stage's trees into a raw prediction array in compiled
    code: stage ``k`` of each row writes column ``k``, unchecked, and the trees read the
    input's columns unchecked (stages wider than the raw predictions corrupted the heap)."""
    d = est.__dict__
    stages = d.get("estimators_")
    if stages is None:
        return None
    if not isinstance(stages, np.ndarray) or stages.dtype != object or stages.ndim != 2 or not stages.size:
        return "its stages are not a 2-d array of trees"
    k = stages.shape[1]
    if d.get("n_trees_per_iteration_") != k:
        return f"it has {k} trees per stage and {d.get('n_trees_per_iteration_')!r:.20} trees per iteration"
    n = _width(stages[0, 0])
    if n is None or any(_width(t) != n for t in stages.flat):
        return "its trees do not all take the same number of input features"
    init, loss = d.get("init_"), d.get("_loss")
    if isinstance(init, str) and init == "zero":
        return None
    if not getattr(loss, "is_multiclass", False):
        if k != 1:
            return f"it has {k} trees per stage for one raw prediction"
        return None
    classes = getattr(init, "classes_", None)
    if not isinstance(classes, np.ndarray) or len(classes) != k:
        return f"its initial estimator predicts {len(classes) if isinstance(classes, np.ndarray) else classes!r:.20} classes for {k} trees per stage"
    prior = getattr(init, "class_prior_", None)
    if prior is not None and (not isinstance(prior, np.ndarray) or prior.shape != (k,)
                              or getattr(init, "n_classes_", k) != k or getattr(init, "n_outputs_", 1) != 1):
        return f"its initial estimator's class priors do not have its {k} classes"
    return None


def hashing_problem(est: Any) -> str | None:
    """Feature hashing takes each hash modulo ``n_features`` in compiled code (0 divides by zero)."""
    n = est.__dict__.get("n_features")
    if type(n) is not int or not 1 <= n <= np.iinfo(np.int32).max:
        return f"its number of features {n!r:.20} is not between 1 and {np.iinfo(np.int32).max}"
    return None


_INTP_MAX = int(np.iinfo(np.intp).max)
#: comb(128, 64) > 2**63: a count with such a term is beyond any array, and computing it exactly can take long
_BIG_TERM = 64


def _poly_count(n: int, lo: int, hi: int, interaction_only: bool, include_bias: bool) -> int | None:
    """``PolynomialFeatures._num_combinations(n, lo, hi, ...)``, or None when it exceeds the
    largest ``intp`` (often not computed then: a term of it is ``comb(N, k)`` with
    ``64 <= k <= N - 64``, more than ``comb(128, 64) > 2**63``). What is computed then has
    binomials ``comb(N, k)`` with ``min(k, N - k) <= 64`` only, and at most 128 of them."""
    from sklearn.preprocessing import PolynomialFeatures

    if interaction_only:  # sum of comb(n, i) for i in max(1, lo)..min(hi, n)
        first, last = max(1, lo), min(hi, n)
        if max(first, _BIG_TERM) <= min(last, n - _BIG_TERM):
            return None
    elif min(n - 1, hi) >= _BIG_TERM:  # (at least the comb(n - 1 + hi, hi) terms of degree hi)
        return None
    count = int(PolynomialFeatures._num_combinations(n, lo, hi, interaction_only, include_bias))
    return count if count <= _INTP_MAX else None


def polynomial_problem(est: Any) -> str | None:
    """``PolynomialFeatures.transform`` on dense input fills an ``np.empty`` array of
    ``_n_out_full`` columns, the terms of every degree up to ``_max_degree`` of its input's
    ``n_features_in_`` columns, and keeps the last ``n_output_features_`` of them (degrees from
    ``_min_degree``): counts that ``fit`` did not compute for the stored degrees and flags left
    columns unfilled (a flipped ``interaction_only`` or a changed ``_max_degree`` gave
    uninitialised memory, values of 1e257, as features). Both counts must be what fit computes."""
    d = est.__dict__
    fields = ("n_output_features_", "_n_out_full", "_min_degree", "_max_degree")
    if not any(k in d for k in fields):
        return None  # not fitted
    n, out, full, lo, hi = (d.get(k) for k in ("n_features_in_", *fields))
    flags = [d.get("interaction_only"), d.get("include_bias")]
    if type(n) is not int or not 1 <= n <= _INTP_MAX:
        return f"its number of input features {n!r:.20} is not between 1 and {_INTP_MAX}"
    if not all(isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_)) for x in (lo, hi)) \
            or not 0 <= lo <= hi <= _INTP_MAX:
        return f"its degrees {lo!r:.20}..{hi!r:.20} are not integers with 0 <= min <= max <= {_INTP_MAX}"
    if not all(isinstance(x, (bool, np.bool_)) for x in flags):
        return "its interaction_only or include_bias is not a boolean"
    lo, hi = int(lo), int(hi)
    inter, bias = (bool(x) for x in flags)
    want = _poly_count(n, lo, hi, inter, bias)
    if want is None:
        return f"degrees {lo}..{hi} of {n} features make more than {_INTP_MAX} output features (fit refuses them)"
    if type(out) is not int or out != want:
        return f"it declares {out!r:.20} output features where its degrees and flags make {want}"
    want_full = _poly_count(n, 0, hi, inter, bias)
    if type(full) is not int or (full != want_full if want_full is not None else full <= _INTP_MAX):
        shown = want_full if want_full is not None else f"more than {_INTP_MAX}"
        return f"it declares {full!r:.20} features of all degrees up to {hi} where its flags make {shown}"
    return None


def target_encoder_problem(est: Any) -> str | None:
    """``TargetEncoder.transform`` fills an ``np.empty`` array of one column per input feature
    (per feature and class, for a multiclass target) from ``encodings_``, one encoding per
    column, each looked up by the category's index in ``categories_``: encodings cut short
    left columns unfilled (uninitialised memory, values of 1e305, as features). There must be
    one encoding per column, as long as its feature's categories."""
    d = est.__dict__
    if "encodings_" not in d and "categories_" not in d:
        return None  # not fitted
    n, enc, cats, kind = d.get("n_features_in_"), d.get("encodings_"), d.get("categories_"), d.get("target_type_")
    if type(n) is not int or n < 1:
        return f"its number of input features {n!r:.20} is not a positive integer"
    if not isinstance(cats, list) or len(cats) != n or not all(isinstance(c, np.ndarray) and c.ndim == 1 for c in cats):
        return f"its categories are not {n} 1-d arrays, one per input feature"
    if kind not in ("binary", "multiclass", "continuous") or type(kind) is not str:
        return f"its target type {kind!r:.20} is not binary, multiclass or continuous"
    per = 1
    if kind == "multiclass":
        classes = d.get("classes_")
        if not isinstance(classes, np.ndarray) or classes.ndim != 1:
            return "its classes are not a 1-d array"
        per = len(classes)
    if not isinstance(enc, list) or len(enc) != n * per:
        return (f"it holds {len(enc) if isinstance(enc, list) else type(enc).__name__} encodings for "
                f"{n} features" + (f" of {per} classes" if kind == "multiclass" else ""))
    for i, e in enumerate(enc):
        size = len(cats[i // per])
        if not isinstance(e, np.ndarray) or e.shape != (size,):
            return f"its encoding {i} of shape {getattr(e, 'shape', None)} is not one value per category of feature {i // per} ({size})"
    return None


def block_manager_problem(mgr: Any) -> str | None:
    """pandas takes a rebuilt frame's or series' blocks as its manager says: each block's
    values as long as the row axis and its placements (``mgr_locs``) naming every column once.
    Unpickling checks neither, and compiled ``take`` then indexed past the values (a Series of
    12 values whose RangeIndex was made 2**31 long crashed ``loc`` and ``astype``: exit 139)."""
    try:
        axes, blocks = list(mgr.axes), tuple(mgr.blocks)
        lengths = [len(a) for a in axes]
        shapes = [tuple(np.shape(b.values)) for b in blocks]
        locs = [np.asarray(b.mgr_locs.as_array, dtype=np.int64) for b in blocks]
    except Exception as exc:  # noqa: BLE001 - an unreadable manager is malformed
        return f"its axes or blocks are unreadable ({type(exc).__name__})"
    if getattr(mgr, "ndim", None) == 1:
        if len(axes) != 1 or len(blocks) != 1:
            return f"a one-dimensional manager holds {len(axes)} axes and {len(blocks)} blocks"
        if shapes[0] != (lengths[0],):
            return f"its values of shape {shapes[0]} do not have one entry per index label ({lengths[0]})"
        return None
    if len(axes) != 2:
        return f"a two-dimensional manager holds {len(axes)} axes"
    items, rows = lengths
    for i, (shape, loc) in enumerate(zip(shapes, locs)):
        if not (shape == (len(loc), rows) or (shape == (rows,) and len(loc) == 1)):
            return f"block {i} of shape {shape} does not hold {len(loc)} columns of its {rows} rows"
    flat = np.concatenate(locs) if locs else np.zeros(0, np.int64)
    if len(flat) != items or (items and (int(flat.min()) < 0 or int(flat.max()) >= items
                                         or not (np.bincount(flat, minlength=items) == 1).all())):
        return f"its blocks do not place each of its {items} columns exactly once"
    return None


def multi_index_problem(mi: Any) -> str | None:
    """A pickled ``MultiIndex`` is rebuilt without ``verify_integrity``, and compiled code
    takes each level's values by its codes unchecked (a code of -128, the least int8, or past its level, or
    the levels reversed under their codes, crashed ``repr`` and ``take``: SIGSEGV). What
    ``verify_integrity`` wants of the codes: one 1-d integer codes array per flat level, all
    as long as the index, each code from -1 (missing) to one less than its level's length.
    (Not its other wants, unique levels and a true ``sortorder``: breaking those makes
    lookups answer wrongly, never read outside memory.)"""
    import pandas as pd

    levels, codes = getattr(mi, "_levels", None), getattr(mi, "_codes", None)
    if not isinstance(levels, (list, tuple)) or not isinstance(codes, (list, tuple)) or not levels or len(levels) != len(codes):
        return f"it holds {len(codes) if isinstance(codes, (list, tuple)) else codes!r:.12} codes arrays for {len(levels) if isinstance(levels, (list, tuple)) else levels!r:.12} levels"
    n = None
    for i, (level, c) in enumerate(zip(levels, codes)):
        if not isinstance(level, pd.Index) or isinstance(level, pd.MultiIndex):
            return f"its level {i} is a {type(level).__name__}, not a flat Index"
        if not isinstance(c, np.ndarray) or c.ndim != 1 or c.dtype.kind not in "iu":
            return f"its codes for level {i} are not a 1-d integer array"
        n = len(c) if n is None else n
        if len(c) != n:
            return f"its codes for level {i} hold {len(c)} entries, not {n}"
        if c.size and (int(c.min()) < -1 or int(c.max()) >= len(level)):
            return f"its codes for level {i} run from {int(c.min())} to {int(c.max())}, outside -1..{len(level) - 1}"
    return None


#: the unpickling helpers of the libraries whose pickles amber reads (``_new_Index``,
#: ``__pyx_unpickle_*``, ``_reconstruct``, ``__randomstate_ctor``, ...): they build objects
#: from state, unchecked, as a load does
_UNPICKLE_HELPER = re.compile(r"_new_\w+|\w*_unpickle\w*|__pyx_unpickle_\w+|_\w*reconstruct\w*|__\w+_ctor|_rebuild\w*"
                              r"|_restore_\w+|scalar|_frombuffer")


def partial_problem(p: Any) -> str | None:
    """A ``functools.partial`` of a class whose instances are checked when they are loaded,
    or of a library's unpickling helper, would build such an object later, from arguments in
    the file (``MultiIndex`` with ``verify_integrity=False``), where no check runs."""
    func = getattr(p, "func", None)
    if isinstance(func, type) and check_for(func) is not None:
        return f"it builds {func.__module__}.{func.__qualname__}, whose loaded instances amber checks, from arguments in the file"
    name = getattr(func, "__name__", None)
    if not isinstance(func, type) and isinstance(name, str) and _UNPICKLE_HELPER.fullmatch(name):
        return f"it calls {getattr(func, '__module__', '?')}.{name}, an unpickling helper, with arguments in the file"
    return None


def kde_problem(kde: Any) -> str | None:
    """SciPy's ``gaussian_kde`` hands its dataset, weights and Cholesky factor to compiled
    kernels that size their loops by ``d`` and ``n``: a ``cho_cov`` flattened crashed
    ``evaluate`` (SIGSEGV), weights cut short summed other memory, an infinite covariance or
    ``d`` of 10**6 hung. As the constructor leaves them: ``d`` and ``n`` of 1 or more, a real
    dataset ``d x n``, ``n`` weights, covariances and Cholesky factors ``d x d``, all finite."""
    d, n, data = (kde.__dict__.get(k) for k in ("d", "n", "dataset"))
    if type(d) is not int or type(n) is not int or d < 1 or n < 1:
        return f"its dimension {d!r:.24} and size {n!r:.24} are not counts of 1 or more"
    if not isinstance(data, np.ndarray) or data.dtype.kind not in "iuf" or data.shape != (d, n):
        return f"its dataset of shape {getattr(data, 'shape', None)} is not {d} x {n} real numbers"
    want = {"_weights": (n,), **dict.fromkeys(("covariance", "cho_cov", "_data_covariance", "_data_cho_cov", "inv_cov"), (d, d))}
    for name, shape in want.items():
        a = kde.__dict__.get(name, _MISSING)
        if a is _MISSING and name in ("inv_cov", "_data_covariance", "_data_cho_cov"):
            continue  # (older SciPy kept inv_cov; _data_* only once computed)
        if not isinstance(a, np.ndarray) or a.dtype.kind not in "iuf" or a.shape != shape:
            return f"its {name} of shape {getattr(a, 'shape', None)} is not {' x '.join(map(str, shape))} real numbers"
        if not np.isfinite(a).all():
            return f"its {name} holds values that are not finite"
    if not np.isfinite(data).all():
        return "its dataset holds values that are not finite"
    for name in ("factor", "_neff", "log_det"):
        v = kde.__dict__.get(name)
        if v is not None and (not isinstance(v, (float, int, np.floating, np.integer)) or not np.isfinite(v)):
            return f"its {name} {v!r:.24} is not a finite number"
    return None


def _count(v: Any, low: int = 0, high: int = 1 << 62) -> bool:
    """An exact int from ``low`` up to (not including) ``high``."""
    return type(v) is int and low <= v < high


def sobol_problem(engine: Any) -> str | None:
    """SciPy's ``qmc.Sobol`` draws in compiled code that reads ``_sv[j, l - 1]`` for every
    dimension ``j < d`` and the lowest zero bit ``l`` of the point count, unchecked: an
    ``_sv`` cut short or a ``d`` larger than it read other memory (values of 3.9 from a
    sampler of [0, 1)). As the constructor leaves them: ``bits`` of 1 to 64, ``maxn`` of
    2**bits, direction numbers ``d x bits`` and a state of ``d`` integers of the unsigned type
    that fits ``bits``, and at most ``maxn`` points drawn (so ``l`` stays within ``bits``)."""
    st = engine.__dict__
    d, bits, maxn, drawn = (st.get(k) for k in ("d", "bits", "maxn", "num_generated"))
    if not _count(d) or not _count(bits, 1, 65) or type(maxn) is not int or maxn != 1 << bits:
        return f"its dimension {d!r:.24}, bits {bits!r:.24} and maximum of points {maxn!r:.24} do not fit together"
    if not _count(drawn, 0, maxn + 1):
        return f"its count of points drawn, {drawn!r:.24}, is not from 0 to {maxn}"
    dtype = np.uint32 if bits <= 32 else np.uint64
    if st.get("dtype_i") is not dtype:
        return f"its integer type {st.get('dtype_i')!r:.40} is not {dtype.__name__}, the type {bits} bits take"
    for name, shape in (("_sv", (d, bits)), ("_quasi", (d,)), ("_shift", (d,))):
        a = st.get(name)
        if type(a) is not np.ndarray or a.dtype != dtype or a.shape != shape:
            return f"its {name} of shape {getattr(a, 'shape', None)} is not {' x '.join(map(str, shape))} {dtype.__name__}"
    first = st.get("_first_point")
    if type(first) is not np.ndarray or first.shape != (1, d) or first.dtype != np.float64:
        return f"its first point of shape {getattr(first, 'shape', None)} is not 1 x {d} float64"
    return None


def halton_problem(engine: Any) -> str | None:
    """SciPy's ``qmc.Halton`` scrambles in compiled code that reads ``permutations[j, r]``
    for each digit ``r = (num_generated + i) % base``, unchecked: a negative count (C's
    remainder of a negative number is negative) or permutations narrower than the base read
    other memory. As the constructor leaves them: one base of 2 or more per dimension, a
    count of points drawn of 0 or more, and (scrambled) one permutation table per base, 2-d,
    of at least that many columns."""
    st = engine.__dict__
    d, bases, drawn = st.get("d"), st.get("base"), st.get("num_generated")
    if not _count(d) or type(bases) is not list or len(bases) != d or not all(_count(b, 2, 1 << 31) for b in bases):
        return f"its bases {bases!r:.60} are not {d!r:.24} integers of 2 or more"
    if not _count(drawn):
        return f"its count of points drawn, {drawn!r:.24}, is not 0 or more"
    perms = st.get("_permutations")
    if type(perms) is not list or len(perms) != d:
        return f"it holds {type(perms).__name__} permutations, not a list of {d}"
    for base, p in zip(bases, perms):
        if p is None:
            continue
        if type(p) is not np.ndarray or p.ndim != 2 or p.shape[1] < base or p.dtype.kind not in "iu":
            return f"a permutation table of shape {getattr(p, 'shape', None)} is not 2-d integers of {base} columns or more"
    return None


def multinomial_qmc_problem(sampler: Any) -> str | None:
    """SciPy's ``qmc.MultinomialQMC`` counts each draw into the bin its compiled search finds,
    which is -1 for no probabilities: an empty ``pvals`` wrote before its array (heap
    corruption, abort). As the constructor leaves it: one or more probabilities, in 1-d."""
    pvals = sampler.__dict__.get("pvals")
    if type(pvals) is not np.ndarray or pvals.ndim != 1 or pvals.size < 1:
        return f"its probabilities of shape {getattr(pvals, 'shape', None)} are not one or more, in 1-d"
    return None


_UNITS = ("s", "ms", "us", "ns")


def datetimelike_problem(arr: Any) -> str | None:
    """pandas' datetime, timedelta and period arrays read their resolution from the dtype of
    the NumPy array that holds them (``_ndarray``) in compiled code: an array recast to int32
    crashed ``repr`` of a DatetimeIndex (exit 139). It must be datetime64 (timedelta64) in the
    unit of the array's dtype, or int64 for periods."""
    values, dtype = getattr(arr, "_ndarray", None), getattr(arr, "dtype", None)
    if not isinstance(values, np.ndarray):
        return f"its values are a {type(values).__name__}, not a NumPy array"
    kind = type(arr).__name__
    if kind.startswith("Period"):
        return None if values.dtype == np.int64 else f"its period ordinals are {values.dtype}, not int64"
    want = "M" if kind.startswith("Datetime") else "m"
    unit = getattr(dtype, "unit", None)
    if isinstance(dtype, np.dtype) and dtype.kind == want:
        unit = np.datetime_data(dtype)[0]
    if values.dtype.kind != want or unit not in _UNITS or np.datetime_data(values.dtype)[0] != unit:
        return f"its values are {values.dtype}, where its dtype {str(dtype)!r:.40} needs {want}8[{unit}]"
    return None


def lil_problem(m: Any) -> str | None:
    """A LIL matrix keeps per row a sorted list of column indices and one of values; SciPy
    converts them to CSR without checking them (a column index of -1 crashed ``multiply``:
    abort, free(): invalid size). Each row must have strictly increasing indices inside the
    matrix's width and as many values."""
    shape, rows, data = getattr(m, "_shape", getattr(m, "shape", None)), getattr(m, "rows", None), getattr(m, "data", None)
    if not (isinstance(shape, tuple) and len(shape) == 2 and all(type(x) is int and x >= 0 for x in shape)):
        return f"its shape {shape!r:.40} is not two sizes"
    if not all(isinstance(a, np.ndarray) and a.dtype == object and a.shape == (shape[0],) for a in (rows, data)):
        return f"its rows and data are not object arrays of one entry per row ({shape[0]})"
    for i in range(shape[0]):
        r, d = rows[i], data[i]
        if type(r) is not list or type(d) is not list or len(r) != len(d):
            return f"row {i} does not hold a list of column indices and a list of as many values"
        if r:
            idx = np.array(r)
            if idx.dtype.kind not in "iu" or int(idx[0]) < 0 or int(idx[-1]) >= shape[1] or (len(idx) > 1 and bool((np.diff(idx) <= 0).any())):
                return f"row {i} has column indices that are not increasing integers inside 0..{shape[1] - 1}"
    return None


_RNN_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def rnn_problem(mod: Any) -> str | None:
    """PyTorch's fused RNN kernels (``LSTM``, ``GRU``, ``RNN``) take the module's
    ``_flat_weights`` and sizes as they are: an LSTM weight cut to no rows crashed ``forward``
    (exit 139), a ``hidden_size`` of 0 divided by zero (SIGFPE), 10**6 layers hung. The sizes
    must be what ``RNNBase.__init__`` accepts and every weight named and shaped as it makes them."""
    import torch

    d = mod.__dict__
    mode, size, hidden, layers, proj = (d.get(k) for k in ("mode", "input_size", "hidden_size", "num_layers", "proj_size"))
    bias, bidirectional = d.get("bias"), d.get("bidirectional")
    if mode not in _RNN_GATES or type(mode) is not str:
        return f"its mode {mode!r:.20} is not one of {sorted(_RNN_GATES)}"
    if not all(type(x) is int for x in (size, hidden, layers, proj)) or size < 1 or hidden < 1 or layers < 1 \
            or not 0 <= proj < hidden or (proj and mode != "LSTM"):
        return f"its sizes (input {size!r:.12}, hidden {hidden!r:.12}, layers {layers!r:.12}, projection {proj!r:.12}) are not what it accepts"
    if type(bias) is not bool or type(bidirectional) is not bool:
        return "its bias or bidirectional flag is not a boolean"
    dirs = 2 if bidirectional else 1
    per = 2 + 2 * bias + (proj > 0)
    names, weights, params = d.get("_flat_weights_names"), d.get("_flat_weights"), d.get("_parameters")
    if not isinstance(names, list) or not isinstance(weights, list) or len(names) != layers * dirs * per or len(weights) != len(names):
        return f"it names {len(names) if isinstance(names, list) else names!r:.12} flat weights for {layers} layers of {per} weights in {dirs} directions"
    gate, real = _RNN_GATES[mode] * hidden, proj or hidden
    for layer in range(layers):
        for direction in range(dirs):
            suffix = f"_l{layer}" + ("_reverse" if direction else "")
            want = [("weight_ih", (gate, size if layer == 0 else real * dirs)), ("weight_hh", (gate, real))]
            if bias:
                want += [("bias_ih", (gate,)), ("bias_hh", (gate,))]
            if proj:
                want += [("weight_hr", (proj, hidden))]
            at = (layer * dirs + direction) * per
            for j, (name, shape) in enumerate(want):
                w = weights[at + j]
                if names[at + j] != name + suffix:
                    return f"its flat weight {at + j} is named {names[at + j]!r:.30}, not {name + suffix!r}"
                if not isinstance(w, torch.Tensor) or tuple(w.shape) != shape:
                    return f"its weight {name + suffix} has shape {tuple(getattr(w, 'shape', ()))}, not {shape}"
                if isinstance(params, dict) and params.get(name + suffix) is not w:
                    return f"its flat weight {name + suffix} is not its parameter of that name"
    return None


def attention_problem(mod: Any) -> str | None:
    """``MultiheadAttention`` splits ``embed_dim`` into ``num_heads`` heads in compiled code:
    0 heads divided by zero (SIGFPE, in a TransformerDecoderLayer's forward). The heads must
    divide the embedding, ``head_dim`` being the quotient."""
    d = mod.__dict__
    embed, heads, head_dim = d.get("embed_dim"), d.get("num_heads"), d.get("head_dim")
    if not all(type(x) is int for x in (embed, heads, head_dim)) or embed < 1 or heads < 1 or embed % heads or head_dim != embed // heads:
        return f"its {heads!r:.12} heads of {head_dim!r:.12} do not split its embedding of {embed!r:.12}"
    return None


_ATTENTION_TENSORS = ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight", "in_proj_bias", "bias_k", "bias_v")


def attention_dtype_problem(mod: Any) -> str | None:
    """The fast paths of ``MultiheadAttention`` and ``TransformerEncoderLayer`` (batch first,
    evaluating without gradients: ``torch._transformer_encoder_layer_fwd``) read
    ``in_proj_bias`` as the type of the input without checking its dtype: a float16 bias in a
    float32 layer was read as float32, twice its bytes (outputs of other memory: NaN, or 1e12,
    changing from run to run), a float64 or int64 one as garbage. Its weights and biases
    (``out_proj``'s too) must share one dtype, as ``__init__`` and ``Module.to`` leave them."""
    import torch

    out = getattr(mod, "out_proj", None)
    tensors = [(k, getattr(mod, k, None)) for k in _ATTENTION_TENSORS]
    tensors += [(f"out_proj.{k}", getattr(out, k, None)) for k in ("weight", "bias")]
    dtypes = {k: t.dtype for k, t in tensors if isinstance(t, torch.Tensor)}
    if len(set(dtypes.values())) > 1:
        first = next(iter(dtypes))
        odd = next(k for k, v in dtypes.items() if v != dtypes[first])
        return f"its {odd} is {dtypes[odd]}, its {first} {dtypes[first]}"
    return None


#: The largest kernel size, dilation, stride, padding or output size a ``Fold``/``Unfold`` may
#: have: what a C ``int`` holds (a padding of 2**31 crashed ``Fold``'s forward, SIGSEGV).
_MAX_IM2COL = 2**31 - 1


def _pair_problem(value: Any, least: int) -> str | None:
    """Why ``value`` is not an int, or a pair of ints, from ``least`` to :data:`_MAX_IM2COL`."""
    items = value if isinstance(value, (tuple, list)) and len(value) == 2 else (value,)
    for v in items:
        try:
            i = operator.index(v)
        except TypeError:
            return f"{v!r:.24} is not an integer"
        if isinstance(v, bool) or not least <= i <= _MAX_IM2COL:
            return f"{v!r:.24} is outside {least}..{_MAX_IM2COL}"
    return None


def fold_problem(mod: Any) -> str | None:
    """``Fold`` and ``Unfold`` hand their sizes to compiled ``col2im``/``im2col``, which check
    the output shape they make but compute offsets from the sizes in overflowing integer
    arithmetic: a ``Fold`` padding of 2**31 crashed forward (SIGSEGV) and 2**32 hung it; an
    ``Unfold`` dilation or kernel size of 2**63-1, or a padding of 2**62, returned values that
    changed from run to run (read from outside its input). Each size must be an int or a pair
    of ints below 2**31: kernel size, dilation and stride 1 or more, padding 0 or more (and
    ``Fold``'s output size 1 or more)."""
    d = mod.__dict__
    names = (("output_size", 1),) if "output_size" in d else ()
    for name, least in (*names, ("kernel_size", 1), ("dilation", 1), ("padding", 0), ("stride", 1)):
        problem = _pair_problem(d.get(name), least)
        if problem is not None:
            return f"its {name} {problem}"
    return None


#: LightGBM's names for the number of threads (``lightgbm.basic._ConfigAliases``).
_LGBM_THREAD_KEYS = ("num_threads", "num_thread", "nthread", "nthreads", "n_jobs")


def lightgbm_wrapper_problem(est: Any) -> str | None:
    """LightGBM's scikit-learn wrappers (``LGBMClassifier``, ``LGBMRegressor``, ``LGBMRanker``)
    pass their parameters to every ``predict``: ``n_jobs``, or one of LightGBM's names for it
    among the other parameters (``_other_params``), becomes the number of OpenMP threads the
    booster predicts in (a negative one counts back from the CPUs). 10**5 crashed predict
    (SIGSEGV). Each must be None or an integer up to 4096."""
    d = est.__dict__
    other = d.get("_other_params")
    found = [("n_jobs", d.get("n_jobs"))]
    if isinstance(other, dict):
        found += [(k, other[k]) for k in _LGBM_THREAD_KEYS if k in other]
    for key, threads in found:
        if threads is None:
            continue
        try:
            n = operator.index(threads)
        except TypeError:
            return f"its number of threads ({key}) {threads!r:.20} is not an integer"
        if n > _MAX_THREADS:
            return f"its number of threads ({key}) {n} is more than {_MAX_THREADS}"
    return None


def xgboost_wrapper_problem(est: Any) -> str | None:
    """XGBoost's scikit-learn wrappers (``XGBClassifier``, ``XGBRegressor``, ...) predict
    (``predict_proba``, ``apply``, ``score``) with ``iteration_range=(0, best_iteration + 1)``
    when their booster has a ``best_iteration`` attribute (kept in the model as a string of
    digits), and XGBoost takes that end as a 32-bit count of layers: a ``best_iteration`` of
    2**31-1 or 2**31 wrapped to a negative end and crashed predict (SIGSEGV). It must name one
    of the booster's boosted rounds (a larger end XGBoost refuses, when it does not wrap)."""
    import xgboost

    booster = est.__dict__.get("_Booster")
    if not isinstance(booster, xgboost.Booster) or getattr(type(booster), "_amber_unstated", False) \
            or getattr(booster, "handle", None) is None:
        return None  # (not fitted, or not a booster: predict fails in Python; a booster never given its state is refused)
    best = booster.attr("best_iteration")
    if best is None:
        return None
    rounds = booster.num_boosted_rounds()
    if not (best.isascii() and best.isdigit()) or int(best) >= rounds:
        return f"its booster's best_iteration {best[:24]!r} is not one of its {rounds} boosted rounds"
    return None


#: The bits of MT19937's 624-word key it draws from: the top bit of the first word and every
#: other word (19937 bits; the low bits of the first word are output, never mixed in).
_MT_WORDS = 624
#: The largest SeedSequence pool and entropy a file may give (numpy's default pool is 4 words;
#: spawning mixes the entropy into a pool of ``pool_size`` words and the pool into itself,
#: quadratic work: 10**6 words hung).
_MAX_POOL, _MAX_ENTROPY_WORDS = 1024, 2**14


def _flag_problem(state: dict[str, Any]) -> str | None:
    has = state.get("has_uint32")
    if has not in (0, 1):
        return f"its has_uint32 flag {has!r:.20} is not 0 or 1"
    return None


def bit_generator_problem(bg: Any) -> str | None:
    """A NumPy bit generator's state setter copies the file's fields into its C struct
    unchecked, and drawing follows them: an ``MT19937`` position of 10**6 or -2**31 crashed
    drawing (SIGSEGV, in ``Generator``, ``RandomState`` and a frozen SciPy distribution's
    ``_random_state``), a key of zeros made it draw zeros for ever (``normal`` hung). The
    state must be one numpy's own seeding and drawing can reach: MT19937 a position 0..624 and
    a key whose 19937 mixed bits are not all zero; PCG64 (DXSM) an odd increment (an even one
    with state 0 is stuck at 0); Philox a buffer position 0..4; a has_uint32 flag of 0 or 1."""
    try:
        state = bg.state
        inner = state["state"]
    except Exception as exc:  # noqa: BLE001 - an unreadable state is malformed
        return f"its state is unreadable ({type(exc).__name__})"
    kind = state.get("bit_generator")
    if kind == "MT19937":
        key, pos = inner.get("key"), inner.get("pos")
        if not isinstance(key, np.ndarray) or key.shape != (_MT_WORDS,) or key.dtype != np.uint32:
            return f"its key is not {_MT_WORDS} uint32 words"
        if type(pos) is not int or not 0 <= pos <= _MT_WORDS:
            return f"its position {pos!r:.24} is outside 0..{_MT_WORDS}"
        if not (int(key[0]) & 0x80000000 or key[1:].any()):
            return "its key is all zero (in the 19937 bits it draws from)"
        return None
    if kind in ("PCG64", "PCG64DXSM"):
        inc = inner.get("inc")
        if type(inc) is not int or not 0 < inc < 2**128 or not inc & 1:
            return f"its increment {inc!r:.44} is not odd"
    elif kind == "Philox":
        pos = state.get("buffer_pos")
        if type(pos) is not int or not 0 <= pos <= 4:
            return f"its buffer position {pos!r:.24} is outside 0..4"
    return _flag_problem(state)


def _words(x: Any) -> int | None:
    """How many uint32 words SeedSequence makes of ``x`` (an int of 0 or more, or a flat
    sequence or integer array of them), or None when it is none of these; counted without
    going past :data:`_MAX_ENTROPY_WORDS` (a longer one counts as more)."""
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        return max(1, -(-int(x).bit_length() // 32)) if x >= 0 else None
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "iu" or x.ndim > 1 or (x.size and int(x.min()) < 0):
            return None
        return int(x.size) * (2 if x.dtype.itemsize > 4 else 1)
    if isinstance(x, (list, tuple)):
        if len(x) > _MAX_ENTROPY_WORDS:
            return len(x)
        total = 0
        for item in x:
            n = _words(item) if not isinstance(item, (list, tuple, np.ndarray)) else None
            if n is None:
                return None
            total += n
        return total
    return None


def seed_sequence_problem(ss: Any) -> str | None:
    """A SeedSequence's pickled fields are set as they are: spawning mixes its entropy into a
    pool of ``pool_size`` words, quadratic work (a pool size of 10**6 hung ``spawn``). The
    pool size must be 4 (numpy's least) to 1024, the pool that many uint32 words, and the
    entropy and spawn key integers of 0 or more, 2**14 words at most."""
    size, pool = getattr(ss, "pool_size", None), getattr(ss, "pool", None)
    if type(size) is not int or not 4 <= size <= _MAX_POOL:
        return f"its pool size {size!r:.24} is outside 4..{_MAX_POOL}"
    if not isinstance(pool, np.ndarray) or pool.dtype != np.uint32 or pool.shape != (size,):
        return f"its pool is not {size} uint32 words"
    entropy, key = getattr(ss, "entropy", None), getattr(ss, "spawn_key", None)
    words = 0 if entropy is None else _words(entropy)
    keys = _words(key) if isinstance(key, tuple) else None
    if words is None or keys is None:
        return "its entropy or spawn key is not integers of 0 or more"
    if words + keys > _MAX_ENTROPY_WORDS:
        return f"its entropy and spawn key make {words + keys} words, more than {_MAX_ENTROPY_WORDS}"
    return None


def random_state_problem(rs: Any) -> str | None:
    """``RandomState`` keeps a cached normal draw beside its bit generator (which is checked
    as such): a flag of 0 or 1 and a finite value, as drawing leaves them."""
    try:
        state = rs.get_state(legacy=False)
    except Exception as exc:  # noqa: BLE001 - an unreadable state is malformed
        return f"its state is unreadable ({type(exc).__name__})"
    has, gauss = state.get("has_gauss"), state.get("gauss")
    if has not in (0, 1) or not isinstance(gauss, float) or not np.isfinite(gauss):
        return f"its cached normal draw ({has!r:.12}, {gauss!r:.24}) is not a flag of 0 or 1 and a finite number"
    return None


_PREDICT = "predict would read outside its memory"


def _refused(what: str, problem: str, consequence: str = _PREDICT) -> CorruptFileError:
    return CorruptFileError(f"{what} is malformed: {problem}; {consequence}, so the file is refused (it is damaged or hostile)")


def sklearn_tree_problem(tree: Any) -> str | None:
    """Why a rebuilt ``sklearn.tree._tree.Tree`` is unsafe to use (:func:`tree_nodes_problem`,
    and as many records as it declares nodes), or None."""
    state = tree.__getstate__()
    nodes = state["nodes"]
    if state["node_count"] != len(nodes) or tree.capacity != len(nodes):
        return f"it declares {state['node_count']} nodes and holds {len(nodes)}"
    return tree_nodes_problem(nodes, int(tree.n_features), int(state["max_depth"]))


def rebuilt_dtype(d: np.dtype) -> np.dtype:
    """A new dtype of ``d``'s description (fields, subarray or type string), built by NumPy's
    constructor, which checks what ``__setstate__`` takes as it is (a field outside the
    items), and with the flags NumPy computes."""
    if d.fields is not None:
        names = list(d.names)
        spec: dict[str, Any] = {"names": names, "formats": [d.fields[n][0] for n in names],
                                "offsets": [d.fields[n][1] for n in names], "itemsize": d.itemsize,
                                "aligned": d.isalignedstruct}
        titles = [d.fields[n][2] if len(d.fields[n]) > 2 else None for n in names]
        if any(t is not None for t in titles):
            spec["titles"] = titles
        if d.type is not np.void and d.type is not np.record:  # (a base type with fields: (int32, [...]))
            return np.dtype((d.str, spec))
        return np.dtype(spec)
    if d.subdtype is not None:
        return np.dtype(d.subdtype)
    return np.dtype(d.str)


def dtype_problem(d: Any) -> str | None:
    """Why the dtype ``d`` is unsafe to use, or None. NumPy's ``__setstate__`` takes a dtype's
    fields and flags as a pickle gives them: a field said to lie 100,000,000 bytes into
    12-byte items made printing the array read far outside its memory (SIGSEGV), and an
    object dtype told it holds no references made arrays of uncounted or forged pointers.
    ``d`` must be what NumPy builds from its own description, flags included (they say how
    it holds objects, and USE_GETITEM on a void or datetime dtype made numpy's scalar() call a
    getitem that reads a NULL array)."""
    if not isinstance(d, np.dtype):
        return None
    if d.itemsize < 0 or (d.kind == "U" and d.itemsize % 4):  # (NumPy takes a string dtype's item size as given)
        return f"a {d.kind} dtype of {d.itemsize} bytes per item"
    for name, field in (d.fields or {}).items():  # (NumPy keeps the values as given; its constructor and ==
        # take ('<i2', 2) for a field, and using it crashed)
        if type(field) is not tuple or len(field) not in (2, 3) or not isinstance(field[0], np.dtype) \
                or type(field[1]) is not int:
            return f"a structured dtype whose field {name!r:.40} is {field!r:.60}, not (dtype, offset)"
    try:
        fresh = rebuilt_dtype(d)
    except Exception as exc:  # noqa: BLE001 - what NumPy's constructor refuses
        return f"a structured dtype whose fields NumPy cannot build ({exc})"
    if d.itemsize != fresh.itemsize or d.names != fresh.names or d.subdtype != fresh.subdtype or (
        d.fields is not None and dict(d.fields) != dict(fresh.fields)
    ) or d.alignment != fresh.alignment:  # (fields that are not the names' crashed sorting and copying;
        # an alignment of 0 with an object field, copying: SIGFPE)
        return f"a dtype whose fields, names, item size or alignment are not those NumPy builds from its description ({fresh!r:.60})"
    if d.flags != fresh.flags:  # (USE_GETITEM, 0x20, on a void or datetime dtype made numpy's scalar() read NULL)
        return f"the dtype {fresh!r:.60} has the flags {d.flags}, where NumPy gives it {fresh.flags}"
    return None


def _raising(problem: Callable[[Any], str | None], what: str, consequence: str = _PREDICT) -> Callable[[Any], None]:
    """The check that raises CorruptFileError when ``problem(obj)`` names one; ``what`` says
    what the object is (``{name}``: its class's name), ``consequence`` what would go wrong."""

    def check(obj: Any) -> None:
        found = problem(obj)
        if found is not None:
            raise _refused(what.format(name=type(obj).__name__), found, consequence)

    check.__name__ = check.__qualname__ = "check_" + problem.__name__.removesuffix("_problem")
    check.__doc__ = f"Raise CorruptFileError when :func:`{problem.__name__}` finds a problem."
    return check


check_sklearn_tree = _raising(sklearn_tree_problem, "a scikit-learn decision tree")
#: (features are checked by the predictor's estimator: :func:`hgb_problem`)
check_hgb_predictor = _raising(predictor_problem, "a histogram gradient boosting tree")
check_hgb = _raising(hgb_problem, "a histogram gradient boosting model")
check_binary_tree = _raising(binary_tree_problem, "a scikit-learn {name}")
check_libsvm = _raising(libsvm_problem, "a scikit-learn {name} model")
check_kmeans = _raising(kmeans_problem, "a scikit-learn {name} model")
check_bisecting_kmeans = _raising(bisecting_kmeans_problem, "a scikit-learn {name} model")
check_birch = _raising(birch_problem, "a scikit-learn {name} model")
check_covariance = _raising(covariance_problem, "a scikit-learn {name} model", "its Mahalanobis distances would read outside its memory")
check_neighbors = _raising(neighbors_problem, "a scikit-learn {name}")
_check_criterion = _raising(tree_estimator_problem, "a scikit-learn {name}", "fit would write outside its memory")
_check_tree_width = _raising(tree_width_problem, "a scikit-learn {name}")


def check_tree_estimator(est: Any) -> None:
    _check_criterion(est)
    _check_tree_width(est)


check_forest = _raising(forest_problem, "a scikit-learn {name}")
check_gradient_boosting = _raising(gradient_boosting_problem, "a scikit-learn {name}",
                                   "predict would write outside its memory")
check_hashing = _raising(hashing_problem, "a scikit-learn {name}", "transform would divide by zero or overflow")
check_categorical = _raising(categorical_problem, "a pandas {name}", "reading its values would read outside its memory")
check_sparse = _raising(sparse_problem, "a SciPy sparse {name}", "computing with it would read outside its memory")
check_bspline = _raising(bspline_problem, "a SciPy {name}", "evaluating it would read outside its memory")
check_block_manager = _raising(block_manager_problem, "a pandas {name}", "reading its values would read outside its memory")
check_multi_index = _raising(multi_index_problem, "a pandas {name}", "reading its values would read outside its memory")
check_kde = _raising(kde_problem, "a SciPy {name}", "evaluating it would read outside its memory or never end")
check_sobol = _raising(sobol_problem, "a SciPy {name} engine", "drawing from it would read outside its memory")
check_halton = _raising(halton_problem, "a SciPy {name} engine", "drawing from it would read outside its memory")
check_multinomial_qmc = _raising(multinomial_qmc_problem, "a SciPy {name} sampler", "drawing from it would write outside its memory")
check_partial = _raising(partial_problem, "a {name}", "calling it would build that object unchecked")
check_datetimelike = _raising(datetimelike_problem, "a pandas {name}", "reading its values would read outside its memory")
check_lil = _raising(lil_problem, "a SciPy sparse {name}", "computing with it would read outside its memory")
check_dtype = _raising(dtype_problem, "a NumPy {name}", "using its arrays would read outside their memory")
check_rnn = _raising(rnn_problem, "a PyTorch {name}", "forward would read outside its memory")
_check_heads = _raising(attention_problem, "a PyTorch {name}", "forward would divide by zero")
_check_attention_dtype = _raising(attention_dtype_problem, "a PyTorch {name}", "forward would read outside its memory")


def check_attention(mod: Any) -> None:
    _check_heads(mod)
    _check_attention_dtype(mod)
check_fold = _raising(fold_problem, "a PyTorch {name}", "forward would read outside its memory")
check_xgboost_wrapper = _raising(xgboost_wrapper_problem, "an XGBoost {name} model", "predict would read outside its memory")
check_lightgbm_wrapper = _raising(lightgbm_wrapper_problem, "a LightGBM {name} model",
                                  "predict would start more threads than the process can run and crash")
_DRAW = "drawing from it would read outside its memory or never end"
check_bit_generator = _raising(bit_generator_problem, "a NumPy {name} bit generator", _DRAW)
check_seed_sequence = _raising(seed_sequence_problem, "a NumPy {name}", "spawning from it would never end")
check_random_state = _raising(random_state_problem, "a NumPy {name}", "drawing from it would give non-finite numbers")
_UNFILLED = "transform would return uninitialised memory"
check_polynomial = _raising(polynomial_problem, "a scikit-learn {name}", _UNFILLED)
check_target_encoder = _raising(target_encoder_problem, "a scikit-learn {name}", _UNFILLED)


def _bind(args: tuple[Any, ...], kwargs: dict[str, Any], names: tuple[str, ...]) -> tuple[Any, ...]:
    """The values of the parameters ``names`` from a call's arguments, by position or by
    keyword (NEWOBJ_EX passes keywords to ``__new__``, which Cython's ``__cinit__`` takes);
    None for one not given. Anything else is the constructor's to refuse."""
    return tuple(args[i] if i < len(args) else kwargs.get(n) for i, n in enumerate(names))


def _criterion_args(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    """``Gini(n_outputs, n_classes)`` reads ``n_classes[k]`` for every output unchecked."""
    n_outputs, n_classes = _bind(args, kwargs, ("n_outputs", "n_classes"))
    count = len(n_classes) if isinstance(n_classes, np.ndarray) and n_classes.ndim == 1 else None
    if type(n_outputs) is int and count is not None and n_outputs > count:
        return f"{n_outputs} outputs with {count} class counts"
    return None


def _int_float_dict_args(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    """``IntFloatDict(keys, values)`` reads one key per value unchecked."""
    keys, values = (np.shape(a) if a is not None else () for a in _bind(args, kwargs, ("keys", "values")))
    if keys[:1] < values[:1]:
        return f"{values[0]} values with {keys[0] if keys else 0} keys"
    return None


def _quad_tree_args(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    """``_QuadTree(n_dimensions, verbose)``: a point of more than 3 dimensions overflows
    the fixed-size arrays of its cells."""
    (dims,) = _bind(args, kwargs, ("n_dimensions",))
    if type(dims) is int and not 1 <= dims <= 3:
        return f"{dims} dimensions (it holds 1 to 3)"
    return None


def _raising_call(problem: Callable[[tuple[Any, ...], dict[str, Any]], str | None], what: str) -> Callable[..., None]:
    """The argument check that raises CorruptFileError when ``problem(args, kwargs)`` names one."""

    def check(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        found = problem(args, kwargs)
        if found is not None:
            raise _refused(what, f"the file builds it from {found}", "building it would read or write outside its memory")

    return check


#: ``module.qualname`` of each class whose constructor arguments are checked before a load
#: calls it (its C code trusts them), with the check ``(args, kwargs) -> None``.
ARG_CHECKED: dict[str, Callable[[tuple[Any, ...], dict[str, Any]], None]] = {
    "sklearn.tree._criterion.ClassificationCriterion": _raising_call(_criterion_args, "a scikit-learn classification criterion"),
    "sklearn.utils._fast_dict.IntFloatDict": _raising_call(_int_float_dict_args, "a scikit-learn IntFloatDict"),
    "sklearn.neighbors._quad_tree._QuadTree": _raising_call(_quad_tree_args, "a scikit-learn _QuadTree"),
}
_arg_checks: dict[type, Callable[[tuple[Any, ...], dict[str, Any]], None] | None] = {}


def _by_class(table: dict[str, Any], cache: dict[type, Any], cls: type) -> Any:
    """``table``'s entry for ``cls`` or the nearest class of its MRO (a subclass of a listed
    class is treated alike), None when there is none; remembered in ``cache``."""
    try:
        return cache[cls]
    except KeyError:
        pass
    fn = None
    for k in getattr(cls, "__mro__", ()):
        fn = table.get(f"{getattr(k, '__module__', None)}.{getattr(k, '__qualname__', None)}")
        if fn is not None:
            break
    if len(cache) < 4096:
        cache[cls] = fn
    return fn


def arg_check_for(cls: type) -> Callable[[tuple[Any, ...], dict[str, Any]], None] | None:
    """The check of :data:`ARG_CHECKED` that arguments to ``cls`` must pass, or None."""
    return _by_class(ARG_CHECKED, _arg_checks, cls)  # type: ignore[no-any-return]


_PARSER = "its library would read outside its memory"


def _lightgbm_state(state: Any) -> Any:
    """``lightgbm.Booster.__setstate__`` hands the model text to LightGBM's parser, which
    crashes on malformed models (and a parsed bad model crashed ``predict``): the text is
    checked by amber's LightGBM model checker first, and its canonical rendering (the same
    bytes, for models LightGBM wrote) is what the parser gets."""
    from amber.handlers._gbm import ModelError, check_lightgbm_model

    if type(state) is not dict:
        raise _refused("a LightGBM booster", f"its state is a {type(state).__name__}, not a dict", _PARSER)
    key = "_handle" if "_handle" in state else "handle"
    text = state.get(key)
    if text is None:
        return state
    if type(text) is not str:
        raise _refused("a LightGBM booster", f"its model is a {type(text).__name__}, not text", _PARSER)
    try:
        return {**state, key: check_lightgbm_model(text)}
    except ModelError as exc:
        raise _refused("a LightGBM booster", f"its model fails amber's checks: {exc}", _PARSER) from None


def _xgboost_state(state: Any) -> Any:
    """``xgboost.Booster.__setstate__`` hands the serialized booster (XGBoost's memory
    snapshot: its training configuration and model, UBJSON) to XGBoost's parser, which takes
    the trees' links and feature indices on trust (a tampered tree crashed ``predict``, exit
    139, and so did a state without a model): amber's XGBoost checker sees the bytes first,
    and their canonical rendering (the same bytes, for boosters XGBoost wrote) is what XGBoost
    gets."""
    from amber.handlers._gbm import ModelError, check_xgboost_serialized

    if type(state) is not dict:
        raise _refused("an XGBoost booster", f"its state is a {type(state).__name__}, not a dict", _PARSER)
    raw = state.get("handle")
    if type(raw) not in (bytearray, bytes):
        raise _refused("an XGBoost booster", f"its model is a {type(raw).__name__}, not bytes", _PARSER)
    try:
        return {**state, "handle": bytearray(check_xgboost_serialized(bytes(raw)))}
    except ModelError as exc:
        raise _refused("an XGBoost booster", f"its model fails amber's checks: {exc}", _PARSER) from None


#: ``module.qualname`` of each class whose state is checked (and may be replaced by its
#: checked form) before its ``__setstate__`` sees it, with the check ``state -> state``.
STATE_CHECKED: dict[str, Callable[[Any], Any]] = {
    "lightgbm.basic.Booster": _lightgbm_state,
    "xgboost.core.Booster": _xgboost_state,
}
_state_checks: dict[type, Callable[[Any], Any] | None] = {}


def state_check_for(cls: type) -> Callable[[Any], Any] | None:
    """The check of :data:`STATE_CHECKED` for the state of instances of ``cls``, or None."""
    return _by_class(STATE_CHECKED, _state_checks, cls)  # type: ignore[no-any-return]


def _settle_state(obj: Any) -> None:
    """At the end of a load, an instance of a :data:`STATE_CHECKED` class whose state never
    came (no ``__setstate__`` ran: nothing was checked) is refused; one whose state was
    checked becomes an instance of its real class. (Until then it stays in a subclass whose
    ``__setstate__`` checks every state it is given: see ``_unpickler._guarded``.)"""
    cls = type(obj)
    if getattr(cls, "_amber_unstated", False):
        raise CorruptFileError(f"the file makes a {cls.__mro__[1].__name__} and never gives it its state; refusing")
    real = getattr(cls, "_amber_real", None)
    if real is not None:
        obj.__class__ = real


#: ``module.qualname`` of each class whose instances are checked, with the check.
CHECKED: dict[str, Callable[[Any], None]] = {
    "sklearn.tree._tree.Tree": check_sklearn_tree,
    "sklearn.tree._classes.BaseDecisionTree": check_tree_estimator,
    "sklearn.ensemble._forest.BaseForest": check_forest,
    "sklearn.ensemble._iforest.IsolationForest": check_forest,
    "sklearn.ensemble._gb.BaseGradientBoosting": check_gradient_boosting,
    "sklearn.feature_extraction.text.HashingVectorizer": check_hashing,
    "sklearn.feature_extraction._hash.FeatureHasher": check_hashing,
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor": check_hgb_predictor,
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier": check_hgb,
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingRegressor": check_hgb,
    **{f"sklearn.neighbors.{m}.{c}{w}": check_binary_tree
       for m, c in (("_kd_tree", "KDTree"), ("_ball_tree", "BallTree")) for w in ("", "32", "64")},
    **{f"sklearn.svm._classes.{c}": check_libsvm for c in ("SVC", "NuSVC", "SVR", "NuSVR", "OneClassSVM")},
    **{f"sklearn.cluster._kmeans.{c}": check_kmeans for c in ("KMeans", "MiniBatchKMeans")},
    "sklearn.cluster._bisect_k_means.BisectingKMeans": check_bisecting_kmeans,
    "sklearn.cluster._birch.Birch": check_birch,
    "sklearn.covariance._empirical_covariance.EmpiricalCovariance": check_covariance,
    "sklearn.neighbors._base.NeighborsBase": check_neighbors,
    "pandas.Categorical": check_categorical,
    "pandas.core.arrays.categorical.Categorical": check_categorical,
    "scipy.sparse._compressed._cs_matrix": check_sparse,
    "scipy.sparse._coo._coo_base": check_sparse,
    "scipy.sparse._dia._dia_base": check_sparse,
    "scipy.sparse._lil._lil_base": check_lil,
    "pandas.core.internals.managers.BaseBlockManager": check_block_manager,
    "pandas.MultiIndex": check_multi_index,  # (pandas 3; pandas 2 names it pandas.core.indexes.multi.MultiIndex)
    "pandas.core.indexes.multi.MultiIndex": check_multi_index,
    **{f"{m}.{c}Array": check_datetimelike for c in ("Datetime", "Timedelta", "Period")  # (pandas 3 names them pandas.arrays.*)
       for m in ("pandas.arrays", f"pandas.core.arrays.{ {'Datetime': 'datetimes', 'Timedelta': 'timedeltas', 'Period': 'period'}[c]}")},
    "torch.nn.modules.rnn.RNNBase": check_rnn,
    "torch.nn.modules.activation.MultiheadAttention": check_attention,
    **{f"torch.nn.modules.fold.{c}": check_fold for c in ("Fold", "Unfold")},
    "lightgbm.sklearn.LGBMModel": check_lightgbm_wrapper,
    "xgboost.sklearn.XGBModel": check_xgboost_wrapper,
    "scipy.interpolate._bsplines.BSpline": check_bspline,
    "scipy.stats._kde.gaussian_kde": check_kde,
    "scipy.stats._qmc.Sobol": check_sobol,
    "scipy.stats._qmc.Halton": check_halton,
    "scipy.stats._qmc.MultinomialQMC": check_multinomial_qmc,
    "functools.partial": check_partial,
    "numpy.dtypes.VoidDType": check_dtype,  # (structured dtypes the walk meets: as NumPy's constructor builds them)
    "sklearn.preprocessing._polynomial.PolynomialFeatures": check_polynomial,
    "sklearn.preprocessing._target_encoder.TargetEncoder": check_target_encoder,
    **{f"numpy.random.{m}.{c}": check_bit_generator
       for m, c in (("_mt19937", "MT19937"), ("_pcg64", "PCG64"), ("_pcg64", "PCG64DXSM"), ("_philox", "Philox"), ("_sfc64", "SFC64"))},
    "numpy.random.bit_generator.SeedSequence": check_seed_sequence,
    "numpy.random.mtrand.RandomState": check_random_state,
    **dict.fromkeys(STATE_CHECKED, _settle_state),
}
_checks: dict[type, Callable[[Any], None] | None] = {}


def check_for(cls: type) -> Callable[[Any], None] | None:
    """The check of :data:`CHECKED` that rebuilt instances of the class ``cls`` must pass, or None."""
    return _by_class(CHECKED, _checks, cls)  # type: ignore[no-any-return]


_MISSING = object()
_ATOMS = frozenset({str, int, float, bytes, bool, type(None), complex})
#: What the walk does not enter: code and namespaces a pickle can only name, never build
#: (a class's attributes are guarded by the unpickler's check that nothing it imports changes).
_OPAQUE = (type, types.FunctionType, types.BuiltinFunctionType, types.ModuleType, types.CodeType,
           types.FrameType, types.MethodDescriptorType, types.WrapperDescriptorType)


_C_FIND = compiled("find_checked")
_ATOM_TYPES = tuple(_ATOMS)


def find_checked(root: Any, extra: dict[type, Callable[[Any], None]] | None = None) -> list[tuple[Any, Any]]:
    """(check, object) for every object reachable from ``root`` whose class has a check
    (:func:`check_for`, or ``extra`` by exact type first), found through the references the
    garbage collector sees, and those it does not: the items of object arrays (read through
    ``ndarray``, so that a subclass hides none), the arrays they are views of, the fields of
    structured NumPy scalars, and what dtypes refer to (fields, titles, metadata, subarray
    bases; a structured dtype is checked itself); classes,
    functions and modules are checked but not entered. The C twin walks without building a
    list of referents per object (a 1M-entry dict: about 10x faster); same objects, same order."""
    table, lookup = _checks, check_for
    if extra:
        table = {**_checks, **extra}

        def lookup(t: type) -> Any:  # (kept in this walk's table too: one call per new type)
            check = table[t] = check_for(t)
            return check

    if _C_FIND is not None:
        return _C_FIND(root, _ATOM_TYPES, _OPAQUE, table, _MISSING, lookup, np.ndarray,  # type: ignore[no-any-return]
                       np.dtype, np.generic)
    return _find_checked_py(root, table, lookup)


def _find_checked_py(root: Any, table: dict[type, Any] | None = None,
                     lookup: Callable[[type], Any] | None = None) -> list[tuple[Any, Any]]:
    """:func:`find_checked` in Python (the reference, and the fallback)."""
    lookup = check_for if lookup is None else lookup
    found: list[tuple[Any, Any]] = []
    seen: set[int] = set()
    # what the walk makes itself (items of arrays, a dtype's fields): kept until it ends, or a
    # new object freed after its visit could lend its address to the next, taken as seen
    keep: list[Any] = []
    stack = [root]
    referents, cached = gc.get_referents, (_checks if table is None else table).get
    while stack:
        o = stack.pop()
        t = type(o)
        if t in _ATOMS or id(o) in seen:
            continue
        seen.add(id(o))
        check = cached(t, _MISSING)  # (the cache of check_for, read inline: a call per object doubled the walk)
        if check is _MISSING:
            check = lookup(t)
        if check is not None:
            found.append((check, o))
        if isinstance(o, _OPAQUE):  # (checked, not entered)
            continue
        if isinstance(o, np.ndarray):
            dtype = o.dtype
            if _dtype_refers(dtype):  # (a structured one is checked: NumPy trusts a pickled one's fields)
                stack.append(dtype)
            if dtype.hasobject:  # the items as stored, read through the base class: a subclass
                # may hide some (a masked array's tolist gives None where it is masked)
                plain = o if t is np.ndarray else np.ndarray.view(o, np.ndarray)
                items = plain.ravel(order="K").tolist()
                keep.append(items)
                stack.extend(items)
            if o.base is not None:  # (reachable as .base, with items outside the view)
                stack.append(o.base)
            if t is not np.ndarray:  # a subclass's own attributes (a masked array's mask and fill value)
                stack.extend(referents(o))
            continue
        if isinstance(o, np.dtype):  # (no referents for the garbage collector)
            parts = _dtype_parts(o)
            keep.append(parts)
            stack.extend(parts)
            continue
        if isinstance(o, np.generic):  # a NumPy scalar (no referents either): a structured one's fields
            dtype = o.dtype
            if _dtype_refers(dtype):
                stack.append(dtype)
            if dtype.hasobject:
                item = o.item()
                keep.append(item)
                stack.append(item)
            base = getattr(o, "base", None)
            if base is not None:  # (the array it was made of: items beside its own, reachable as .base)
                stack.append(base)
            continue
        stack.extend(referents(o))
    return found


def _dtype_refers(dtype: np.dtype) -> bool:
    """Does ``dtype`` refer to other objects (fields, their titles, metadata, a subarray)?"""
    return dtype.names is not None or dtype.metadata is not None or dtype.subdtype is not None


def _dtype_parts(dtype: np.dtype) -> list[Any]:
    """What a dtype refers to, for the walk: its metadata, its fields (each ``(dtype,
    offset[, title])``; a title may be any object) and its subarray's ``(base, shape)``."""
    parts: list[Any] = []
    if dtype.metadata is not None:
        parts.append(dtype.metadata)
    if dtype.fields is not None:
        parts.append(dtype.fields)
    if dtype.subdtype is not None:
        parts.append(dtype.subdtype)
    return parts

