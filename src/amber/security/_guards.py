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

__all__ = ["CHECKED", "check_for", "check_sklearn_tree", "tree_nodes_problem"]


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
    return _tree_problem_np(*as64, n_features, max_depth)


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
        raise CorruptFileError(
            f"a scikit-learn decision tree is malformed: {problem}; predict would read outside the tree, "
            "so the file is refused (it is damaged or hostile)"
        )


#: ``module.qualname`` of each class whose instances are checked, with the check.
CHECKED: dict[str, Callable[[Any], None]] = {"sklearn.tree._tree.Tree": check_sklearn_tree}
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
