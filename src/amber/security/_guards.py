"""Checks of rebuilt objects whose compiled code trusts the state it was given.

Some trusted classes keep their state in C arrays and follow indices from it without
bounds checks. scikit-learn's ``Tree`` is the one every tree model holds: ``predict``
walks the child links of its node records, and ``decision_path`` writes one entry per
level into a buffer sized by ``max_depth``. ``Tree.__setstate__`` checks the dtype and
shape of the records, not the links, so a file whose links point outside the tree makes
the first ``predict`` read (and ``decision_path`` write) outside its memory: a crash at
best. A load rebuilds such an object from the file's state and then checks it here,
before anything is handed out: :func:`check_for` gives the check of a class (the safe
unpicklers run it on every instance they build, the native format's generic handler
after ``__setstate__``, and the native tree handler checks the records before it builds).

Each check has a pure-NumPy twin of its C loop (``amber._speedups``); both name the same
first bad node in the same words.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from amber.errors import CorruptFileError

__all__ = ["CHECKED", "check_for", "check_hgb", "check_hgb_predictor", "check_sklearn_tree", "predictor_problem", "tree_nodes_problem"]


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


def _load_c() -> Any:
    if os.environ.get("AMBER_PURE_PYTHON"):
        return None
    try:
        from amber._speedups import tree_problem  # type: ignore[attr-defined]
    except ImportError:
        return None
    return tree_problem


_C = _load_c()
_INTP = np.dtype(np.intp)
_HUGE = 1 << 62
#: record dtype -> (itemsize, left_child offset, right_child offset, all three native int64,
#: feature offset), or () when it lacks a field
_layouts: dict[np.dtype, tuple[int, ...]] = {}


def _layout(dt: np.dtype) -> tuple[int, ...]:
    fields = dt.fields or {}
    keys = ("left_child", "right_child", "feature")
    if not all(k in fields for k in keys):
        return ()
    native = _INTP.itemsize == 8 and all(fields[k][0] == _INTP for k in keys)
    return dt.itemsize, fields["left_child"][1], fields["right_child"][1], native, fields["feature"][1]


def tree_nodes_problem(nodes: np.ndarray, n_features: int, max_depth: int, fast: bool = True) -> str | None:
    """Why scikit-learn tree node records ``nodes`` are unsafe to use, or None when every
    node is a leaf (both children -1) or has two children inside the tree with larger
    indices, every node but the root is the child of exactly one node, every split is on a
    feature ``0 <= f < n_features`` and no leaf lies deeper than ``max_depth``.
    (Larger child indices make the links a tree that predict walks down and out of.)"""
    layout = _layouts.get(nodes.dtype)
    if layout is None:
        layout = _layouts[nodes.dtype] = _layout(nodes.dtype)
    if not layout:
        return "the node records lack child links or features"
    if fast and _C is not None and layout[3] and nodes.ndim == 1 and nodes.flags.c_contiguous:
        return _C(memoryview(nodes).cast("B"), len(nodes), layout[0], layout[1], layout[2], layout[4], n_features, max_depth)
    as64 = [np.asarray(nodes[k], dtype=np.int64) for k in ("left_child", "right_child", "feature")]
    return _links_problem(*as64, n_features, max_depth, fast)


def _links_problem(left: np.ndarray, right: np.ndarray, feature: np.ndarray, n_features: int, max_depth: int,
                   fast: bool = True) -> str | None:
    """:func:`tree_nodes_problem` of three int64 columns."""
    if fast and _C is not None:
        packed = np.empty((len(left), 3), dtype=np.int64)
        packed[:, 0], packed[:, 1], packed[:, 2] = left, right, feature
        return _C(memoryview(packed).cast("B"), len(left), 24, 0, 8, 16, n_features, max_depth)
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


def check_hgb_predictor(pred: Any) -> None:
    """Raise CorruptFileError unless the rebuilt ``TreePredictor`` links as a tree and its
    categorical splits name bitsets it holds (features are checked by its estimator)."""
    problem = predictor_problem(pred)
    if problem is not None:
        raise _refused("a histogram gradient boosting tree", problem)


def check_hgb(est: Any) -> None:
    """Raise CorruptFileError unless every tree of a rebuilt HistGradientBoosting model splits
    on features it has (as many as ``n_features_in_``), categorical where its binner says."""
    predictors = est.__dict__.get("_predictors")
    if predictors is None:  # not fitted: nothing predicts
        return
    n = est.__dict__.get("n_features_in_")
    binner = est.__dict__.get("_bin_mapper")
    flags = getattr(binner, "is_categorical_", None)
    if type(n) is not int or n < 1 or not isinstance(flags, np.ndarray) or flags.ndim != 1 or len(flags) < n:
        raise _refused("a histogram gradient boosting model", "its feature count or categorical flags are missing")
    categorical = flags[:n] != 0
    if not isinstance(predictors, list) or not all(isinstance(it, list) for it in predictors):
        raise _refused("a histogram gradient boosting model", "its trees are not lists of predictors")
    for it, trees in enumerate(predictors):
        for k, pred in enumerate(trees):
            if type(pred).__qualname__ != "TreePredictor":
                raise _refused("a histogram gradient boosting model", f"tree [{it}][{k}] is a {type(pred).__name__}")
            problem = predictor_problem(pred, n, categorical)
            if problem is not None:
                raise _refused(f"tree [{it}][{k}] of a histogram gradient boosting model", problem)


def binary_tree_problem(tree: Any) -> str | None:
    """Why a rebuilt ``KDTree``/``BallTree`` is unsafe to query, or None: its index array
    must name data rows, every node's index range must lie inside it, a node that is not a
    leaf must have both children (``2i+1``, ``2i+2``) among the nodes, the node bounds must
    cover every node and feature, the sample weights every row, and its distance metric
    must fit the data (:func:`metric_problem`)."""
    state = tree.__getstate__()
    data, idx, nodes, bounds = state[0], state[1], state[2], state[3]
    n_nodes, metric, weights = state[6], state[11], state[12]
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
    without reading outside its parameters, or None (filled in below)."""
    return None


def check_binary_tree(tree: Any) -> None:
    """Raise CorruptFileError unless the rebuilt neighbors tree is safe to query."""
    problem = binary_tree_problem(tree)
    if problem is not None:
        raise _refused(f"a scikit-learn {type(tree).__name__}", problem)


def _refused(what: str, problem: str) -> CorruptFileError:
    return CorruptFileError(
        f"{what} is malformed: {problem}; predict would read outside its memory, "
        "so the file is refused (it is damaged or hostile)"
    )


def check_sklearn_tree(tree: Any) -> None:
    """Raise CorruptFileError unless the rebuilt ``sklearn.tree._tree.Tree`` is safe to use."""
    state = tree.__getstate__()
    nodes = state["nodes"]
    problem = None
    if state["node_count"] != len(nodes) or tree.capacity != len(nodes):
        problem = f"it declares {state['node_count']} nodes and holds {len(nodes)}"
    if problem is None:
        problem = tree_nodes_problem(nodes, int(tree.n_features), int(state["max_depth"]))
    if problem is not None:
        raise _refused("a scikit-learn decision tree", problem)


#: ``module.qualname`` of each class whose instances are checked, with the check.
CHECKED: dict[str, Callable[[Any], None]] = {
    "sklearn.tree._tree.Tree": check_sklearn_tree,
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor": check_hgb_predictor,
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier": check_hgb,
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingRegressor": check_hgb,
    **{f"sklearn.neighbors.{m}.{c}{w}": check_binary_tree
       for m, c in (("_kd_tree", "KDTree"), ("_ball_tree", "BallTree")) for w in ("", "32", "64")},
}
_checks: dict[type, Callable[[Any], None] | None] = {}


def check_for(cls: type) -> Callable[[Any], None] | None:
    """The check of :data:`CHECKED` that rebuilt instances of the class ``cls`` must pass, or None."""
    try:
        return _checks[cls]
    except KeyError:
        pass
    fn = CHECKED.get(f"{getattr(cls, '__module__', None)}.{getattr(cls, '__qualname__', None)}")
    if len(_checks) < 4096:
        _checks[cls] = fn
    return fn
