"""Checks of rebuilt objects whose compiled code trusts its state (amber.security._guards).

scikit-learn's Tree follows the child links of its node records without bounds checks:
a file with a link outside the tree makes the first predict read outside the process's
memory (a segfault, seen by hand). Every load path must refuse such a tree before it
hands anything out: the native tree handler, the native generic reducer, pickle, joblib
and torch.save files. The C check and its NumPy twin must name the same first bad node.
"""

from __future__ import annotations

import copy
import functools
import io
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.ensemble import (
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.neighbors import BallTree, KDTree, KNeighborsClassifier
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from sklearn.tree._tree import NODE_DTYPE, Tree

import amber
from amber.security import _guards
from amber.security._guards import check_for, check_sklearn_tree, tree_nodes_problem

C_BUILT = _guards._C is not None


@pytest.fixture(scope="module")
def fitted() -> DecisionTreeClassifier:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5))
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1)
    return DecisionTreeClassifier(max_depth=6, random_state=0).fit(X, y)


def _records(left: list[int], right: list[int], feature: list[int]) -> np.ndarray:
    nodes = np.zeros(len(left), dtype=NODE_DTYPE)
    nodes["left_child"], nodes["right_child"], nodes["feature"] = left, right, feature
    return nodes


def _both(nodes: np.ndarray, n_features: int, max_depth: int) -> str | None:
    slow = tree_nodes_problem(nodes, n_features, max_depth, fast=False)
    if C_BUILT:
        assert tree_nodes_problem(nodes, n_features, max_depth) == slow
    return slow


def _with_nodes(model: Any, edit: Callable[[np.ndarray], None], max_depth: int | None = None) -> Any:
    """A copy of ``model`` whose tree's records ``edit`` changed (set without any check)."""
    state = model.tree_.__getstate__()
    nodes = state["nodes"].copy()
    edit(nodes)
    tree = Tree(*model.tree_.__reduce__()[1])
    tree.__setstate__({**state, "nodes": nodes, "max_depth": state["max_depth"] if max_depth is None else max_depth})
    bad = copy.copy(model)
    bad.tree_ = tree
    return bad


# --- the check itself -------------------------------------------------------------------

def test_real_trees_pass(fitted: DecisionTreeClassifier) -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 4))
    y = (X[:, 0] > 0).astype(int)
    models = [
        fitted,
        DecisionTreeRegressor(random_state=0).fit(X, X[:, 1]),
        DecisionTreeClassifier(max_leaf_nodes=9, random_state=0).fit(X, y),  # best-first builder
    ]
    trees = [m.tree_ for m in models]
    trees += [e.tree_ for e in RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y).estimators_]
    trees += [e.tree_ for e in ExtraTreesRegressor(n_estimators=5, random_state=0).fit(X, X[:, 0]).estimators_]
    trees += [e.tree_ for e in GradientBoostingClassifier(n_estimators=5, random_state=0).fit(X, y).estimators_.ravel()]
    for t in trees:
        state = t.__getstate__()
        assert _both(state["nodes"], t.n_features, state["max_depth"]) is None
        check_sklearn_tree(t)
    assert check_for(Tree) is check_sklearn_tree
    from sklearn.linear_model import LogisticRegression

    assert check_for(DecisionTreeClassifier) is _guards.check_tree_estimator
    assert check_for(LogisticRegression) is None


@pytest.mark.parametrize(
    ("left", "right", "feature", "max_depth", "reason"),
    [
        ([], [], [], 0, "the tree has no nodes"),
        ([-1], [-1], [-2], 0, None),
        ([1, -1, -1], [2, -1, -1], [0, -2, -2], 1, None),
        ([1, -1, -1], [2, -1, -1], [0, -2, -2], 0, "leaf 1 lies 1 levels deep, below the tree's max_depth 0"),
        ([1, -1, -1], [-1, -1, -1], [0, -2, -2], 1, "node 0 has one child"),
        ([-1, -1, -1], [2, -1, -1], [0, -2, -2], 1, "node 0 has one child"),
        ([1, -1, -1], [3, -1, -1], [0, -2, -2], 1, "node 0 links to a child outside nodes 1..2"),
        ([0, -1, -1], [2, -1, -1], [0, -2, -2], 1, "node 0 links to a child outside nodes 1..2"),
        ([1, -1, -1], [1, -1, -1], [0, -2, -2], 1, "node 0 links to a child outside nodes 1..2"),
        ([10**12, -1, -1], [2, -1, -1], [0, -2, -2], 1, "node 0 links to a child outside nodes 1..2"),
        ([-7, -1, -1], [2, -1, -1], [0, -2, -2], 1, "node 0 links to a child outside nodes 1..2"),
        ([1, -1, -1], [2, -1, -1], [5, -2, -2], 1, "node 0 splits on feature 5, outside 0..4"),
        ([1, -1, -1], [2, -1, -1], [-1, -2, -2], 1, "node 0 splits on feature -1, outside 0..4"),
        ([1, -1, -1, -1], [2, -1, -1, -1], [0, -2, -2, -2], 2, "no node links to node 3"),
        ([1, 3, -1, -1, -1], [2, 4, 3, -1, -1], [0, 0, 0, -2, -2], 2, "node 2 has one child"),
        ([1, 3, 3, -1, -1], [2, 4, 4, -1, -1], [0, 0, 0, -2, -2], 2, "node 3 is the child of more than one node"),
        ([1, -1, 3, -1, -1], [2, -1, 4, -1, -1], [0, -2, 1, -2, -2], 2, None),
        ([1, -1, 3, -1, -1], [2, -1, 4, -1, -1], [0, -2, 1, -2, -2], 1, "leaf 3 lies 2 levels deep, below the tree's max_depth 1"),
    ],
)
def test_each_rule(left: list[int], right: list[int], feature: list[int], max_depth: int, reason: str | None) -> None:
    assert _both(_records(left, right, feature), 5, max_depth) == reason


@st.composite
def _node_records(draw: Any) -> tuple[np.ndarray, int, int]:
    """A random valid tree (children drawn after their parent), then maybe a few edits."""
    n_features = draw(st.integers(1, 6))
    left, right, feature, depth = [-1], [-1], [-2], [0]
    frontier = [0]
    while frontier and len(left) < draw(st.integers(1, 60)):
        i = frontier.pop(draw(st.integers(0, len(frontier) - 1)))
        n = len(left)
        left[i], right[i], feature[i] = n, n + 1, draw(st.integers(0, n_features - 1))
        left += [-1, -1]
        right += [-1, -1]
        feature += [-2, -2]
        depth += [depth[i] + 1] * 2
        frontier += [n, n + 1]
    cols = [left, right, feature]
    for _ in range(draw(st.integers(0, 3))):
        col = draw(st.integers(0, 2))
        at = draw(st.integers(0, len(left) - 1))
        cols[col][at] = draw(st.integers(-3, len(left) + 2) | st.sampled_from([-(1 << 63), (1 << 63) - 1]))
    max_depth = max(depth) + draw(st.integers(-2, 2))
    return _records(*cols), n_features, max_depth


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_node_records())
def test_c_and_numpy_agree(case: tuple[np.ndarray, int, int]) -> None:
    nodes, n_features, max_depth = case
    _both(nodes, n_features, max_depth)


def test_records_of_another_layout_use_numpy(fitted: DecisionTreeClassifier) -> None:
    nodes = fitted.tree_.__getstate__()["nodes"]
    other = nodes.astype([(k, "<i4" if k in ("left_child", "right_child", "feature") else v[0])
                          for k, v in NODE_DTYPE.fields.items()])
    assert tree_nodes_problem(other, 5, fitted.tree_.max_depth) is None
    assert tree_nodes_problem(np.zeros(3, dtype=[("a", "<i8")]), 5, 3) == "the node records lack child links or features"


# --- every load path refuses a malformed tree ---------------------------------------------

BAD_TREES: dict[str, Callable[[np.ndarray], None]] = {
    "child past the end": lambda n: n["left_child"].__setitem__(0, 10**9),
    "negative child": lambda n: n["right_child"].__setitem__(0, -5),
    "child loops back": lambda n: n["left_child"].__setitem__(int(np.flatnonzero(n["left_child"] > 0)[-1]), 0),
    "one child": lambda n: n["right_child"].__setitem__(0, -1),
    "feature out of range": lambda n: n["feature"].__setitem__(0, 99),
}


def _dumped(model: Any, how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    p = tmp_path / f"model.{how}"
    if how == "amber":
        amber.dump(model, p)
    elif how == "amber-generic":  # the generic reducer, as for a tree of another layout
        from amber.handlers._object import REDUCE
        from amber.handlers._sklearn import TreeHandler

        monkeypatch.setattr(TreeHandler, "encode", lambda self, obj, ctx: REDUCE.encode(obj, ctx))
        amber.dump(model, p)
        monkeypatch.undo()
    elif how == "pkl":
        with open(p, "wb") as fh:
            pickle.dump(model, fh, protocol=4)
    elif how == "pkl0":
        with open(p, "wb") as fh:
            pickle.dump(model, fh, protocol=0)
    elif how == "joblib":
        joblib.dump(model, p)
    else:
        torch.save({"model": model}, p)
    return p


def _load(p: Path, how: str) -> Any:
    out = amber.load(p, **({"trusted": ["sklearn"]} if how == "pt" else {}))
    return out["model"] if how == "pt" else out


HOW = ["amber", "amber-generic", "pkl", "pkl0", "joblib", "pt"]


def _edited(make: Callable[[], Any], **fields: Any) -> Callable[[], Any]:
    """A maker of ``make()`` with attributes set (a callable value maps the current one)."""
    def build() -> Any:
        m = make()
        for k, v in fields.items():
            setattr(m, k, v(getattr(m, k)) if callable(v) else v)
        return m
    return build


def _assert_refused(model: Any, how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, match: str,
                    consequence: str) -> None:
    """``model`` saved the ``how`` way is refused on load with a CorruptFileError matching
    ``match`` that names the file and says ``consequence``."""
    p = _dumped(model, how, tmp_path, monkeypatch)
    with pytest.raises(amber.CorruptFileError, match=match) as info:
        _load(p, how)
    assert str(p) in str(info.value) and consequence in str(info.value)


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("bad", list(BAD_TREES), ids=list(BAD_TREES))
def test_malformed_tree_refused(fitted: Any, how: str, bad: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = _dumped(_with_nodes(fitted, BAD_TREES[bad]), how, tmp_path, monkeypatch)
    with pytest.raises(amber.CorruptFileError, match=r"(node|leaf) \d+ .*predict would read outside its memory") as info:
        _load(p, how)
    assert str(p) in str(info.value)


@pytest.mark.parametrize("how", HOW)
def test_tree_deeper_than_its_max_depth_refused(fitted: Any, how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """decision_path writes one entry per level into a buffer sized by max_depth."""
    p = _dumped(_with_nodes(fitted, lambda n: None, max_depth=2), how, tmp_path, monkeypatch)
    with pytest.raises(amber.CorruptFileError, match=r"leaf \d+ lies \d+ levels deep, below the tree's max_depth 2"):
        _load(p, how)


# --- histogram gradient boosting and neighbors trees --------------------------------------

def _hgb() -> Any:
    rng = np.random.default_rng(4)
    X = rng.normal(size=(300, 4))
    X[:, 3] = rng.integers(0, 6, 300)
    y = (X[:, 0] + (X[:, 3] > 2) > 0.5).astype(int)
    return HistGradientBoostingClassifier(max_iter=5, categorical_features=[3], random_state=0).fit(X, y), X


def _hgb_bad(edit: Callable[[Any], None]) -> Callable[[], Any]:
    def make() -> Any:
        model, _ = _hgb()
        bad = copy.deepcopy(model)
        edit(bad._predictors[2][0])
        return bad

    return make


def _first_split(pred: Any, categorical: bool) -> int:
    nodes = pred.nodes
    return int(np.flatnonzero((nodes["is_leaf"] == 0) & ((nodes["is_categorical"] != 0) == categorical))[0])


def _neighbors_bad(cls: type, field: int, edit: Callable[[Any], Any]) -> Callable[[], Any]:
    def make() -> Any:
        tree = cls(np.random.default_rng(5).normal(size=(80, 3)), leaf_size=5)
        state = list(tree.__getstate__())
        state[field] = edit(copy.copy(state[field]))
        bad = cls.__new__(cls)
        bad.__setstate__(tuple(state))
        return bad

    return make


def _metric(name: str, **kw: Any) -> Any:
    from sklearn.metrics import DistanceMetric

    return DistanceMetric.get_metric(name, **kw)


def _set(arr: np.ndarray, where: Any, value: Any) -> np.ndarray:
    arr = arr.copy()
    if type(where) is tuple:  # (field, row) of a record array
        arr[where[0]][where[1]] = value
    else:
        arr[where] = value
    return arr


BAD_OTHERS: dict[str, tuple[Callable[[], Any], str]] = {
    "hgb child past the end": (
        _hgb_bad(lambda p: p.nodes["left"].__setitem__(_first_split(p, False), 10**6)),
        r"node \d+ links to a child outside"),
    "hgb feature past n_features": (
        _hgb_bad(lambda p: p.nodes["feature_idx"].__setitem__(_first_split(p, False), 9)),
        r"node \d+ splits on feature 9, outside 0..3"),
    "hgb categorical split on a numeric feature": (
        _hgb_bad(lambda p: p.nodes["feature_idx"].__setitem__(_first_split(p, True), 1)),
        r"makes a categorical split on feature 1, which the binner treats as numeric"),
    "hgb bitset past the end": (
        _hgb_bad(lambda p: p.nodes["bitset_idx"].__setitem__(_first_split(p, True), 40)),
        r"names bitset 40, past the \d+ of its binned_left_cat_bitsets"),
    "hgb short bitsets": (
        _hgb_bad(lambda p: setattr(p, "raw_left_cat_bitsets", np.zeros((5, 2), np.uint32))),
        r"raw_left_cat_bitsets are not rows of 8 uint32 words"),
    "kd index past the rows": (
        _neighbors_bad(KDTree, 1, lambda a: _set(a, 7, 10**7)), r"index array names rows outside 0..79"),
    "ball index negative": (
        _neighbors_bad(BallTree, 1, lambda a: _set(a, 0, -3)), r"index array names rows outside 0..79"),
    "kd node range past the index": (
        _neighbors_bad(KDTree, 2, lambda a: _set(a, ("idx_end", 3), 500)), r"node 3 covers index entries"),
    "ball inner node without children": (
        _neighbors_bad(BallTree, 2, lambda a: _set(a, ("is_leaf", -1), 0)), r"is no leaf, but its children"),
    "kd leaf size 0": (_neighbors_bad(KDTree, 4, lambda v: 0), r"its leaf size is 0"),
    "ball minkowski weights short": (
        _neighbors_bad(BallTree, 11, lambda m: _metric("minkowski", p=3, w=np.ones(1))), r"Minkowski\) has weights of shape \(1,\)"),
    "kd minkowski weights short": (
        _neighbors_bad(KDTree, 11, lambda m: _metric("minkowski", p=3, w=np.ones(2))), r"Minkowski\) has weights of shape \(2,\)"),
    "ball seuclidean variances short": (
        _neighbors_bad(BallTree, 11, lambda m: _metric("seuclidean", V=np.ones(1))), r"standardized Euclidean\) has variances"),
    "ball mahalanobis matrix small": (
        _neighbors_bad(BallTree, 11, lambda m: _metric("mahalanobis", VI=np.eye(1))), r"Mahalanobis\) has a matrix of shape \(1, 1\)"),
    "ball haversine on 3 features": (
        _neighbors_bad(BallTree, 11, lambda m: _metric("haversine")), r"Haversine\) measures points of 2 features, not 3"),
    "kd bounds too small": (
        _neighbors_bad(KDTree, 3, lambda a: np.ascontiguousarray(a[:, :2])), r"node bounds .* do not cover"),
}


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("bad", list(BAD_OTHERS), ids=list(BAD_OTHERS))
def test_malformed_models_refused(how: str, bad: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make, match = BAD_OTHERS[bad]
    _assert_refused(make(), how, tmp_path, monkeypatch, match, "predict would read outside its memory")


@pytest.mark.parametrize("how", HOW)
def test_good_models_load_everywhere(fitted: Any, how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(2)
    X = rng.normal(size=(50, 5))
    model = _load(_dumped(fitted, how, tmp_path, monkeypatch), how)
    np.testing.assert_array_equal(model.predict(X), fitted.predict(X))
    assert (model.decision_path(X) != fitted.decision_path(X)).nnz == 0
    hgb, Xh = _hgb()
    again = _load(_dumped(hgb, how, tmp_path, monkeypatch), how)
    np.testing.assert_array_equal(again.predict_proba(Xh), hgb.predict_proba(Xh))
    for algorithm in ("kd_tree", "ball_tree"):
        knn = KNeighborsClassifier(n_neighbors=3, algorithm=algorithm).fit(X, X[:, 0] > 0)
        again = _load(_dumped(knn, how, tmp_path, monkeypatch), how)
        np.testing.assert_array_equal(again.kneighbors(X[:7])[1], knn.kneighbors(X[:7])[1])


def test_tree_without_state_refused(tmp_path: Path) -> None:
    """``Tree(n_features, n_classes, n_outputs)`` with no state has no nodes: predict would read
    node 0 of an empty array. A pickle that builds one and never sets its state is refused."""
    empty = Tree(3, np.array([2], dtype=np.intp), 1)
    with pytest.raises(amber.CorruptFileError, match="the tree has no nodes"):  # state set: no nodes
        amber.loads(pickle.dumps(empty, protocol=2))
    with pytest.raises(amber.CorruptFileError, match="the tree has no nodes"):  # REDUCE without BUILD
        amber.loads(pickle.dumps(_NoBuild(empty), protocol=2))


class _NoBuild:
    """Pickles as ``Tree(*args)`` with no state (what a hostile file may write)."""

    def __init__(self, tree: Any) -> None:
        self.args = tree.__reduce__()[1]

    def __reduce__(self) -> Any:
        return (Tree, self.args)


def test_check_runs_once_per_tree_of_a_forest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(100, 3))
    forest = RandomForestClassifier(n_estimators=7, random_state=0).fit(X, X[:, 0] > 0)
    seen: list[Any] = []
    real = _guards.CHECKED["sklearn.tree._tree.Tree"]
    monkeypatch.setitem(_guards._checks, Tree, lambda t: (seen.append(t), real(t)))
    p = tmp_path / "f.pkl"
    p.write_bytes(pickle.dumps(forest))
    loaded = amber.load(p)
    assert len(seen) == 7 and all(any(s is e.tree_ for e in loaded.estimators_) for s in seen)


@pytest.mark.parametrize("how", ["amber", "pkl", "joblib"])
def test_good_metrics_load(how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(6)
    X = rng.normal(size=(40, 3))
    trees = [
        BallTree(X, metric="minkowski", p=3, w=np.array([1.0, 2.0, 0.5])),
        KDTree(X, metric="minkowski", p=3),
        BallTree(X, metric="seuclidean", V=np.array([1.0, 2.0, 3.0])),
        BallTree(X, metric="mahalanobis", VI=np.eye(3) * 2),
        BallTree(X[:, :2] / 4, metric="haversine"),
    ]
    for tree in trees:
        Q = np.asarray(tree.data)[:4]
        again = _load(_dumped(tree, how, tmp_path, monkeypatch), how)
        np.testing.assert_array_equal(again.query(Q, k=2)[1], tree.query(Q, k=2)[1])


class _Calls:
    """Pickles (and saves) as a call of ``cls`` with ``args``, as a hostile file may."""

    def __init__(self, cls: Any, args: tuple[Any, ...]) -> None:
        self.cls, self.args = cls, args

    def __reduce__(self) -> Any:
        return (self.cls, self.args)


def _hostile_calls() -> dict[str, tuple[Any, tuple[Any, ...], str]]:
    from sklearn.neighbors._quad_tree import _QuadTree
    from sklearn.tree._criterion import Entropy, Gini
    from sklearn.utils._fast_dict import IntFloatDict

    return {
        "gini outputs past its class counts": (Gini, (10**7, np.array([2], dtype=np.intp)), "10000000 outputs with 1 class counts"),
        "entropy outputs past its class counts": (Entropy, (3, np.array([2, 2], dtype=np.intp)), "3 outputs with 2 class counts"),
        "int float dict values past its keys": (IntFloatDict, (np.array([1], dtype=np.intp), np.ones(4000)), "4000 values with 1 keys"),
        "quad tree of 40 dimensions": (_QuadTree, (40, 0), "40 dimensions"),
    }


@pytest.mark.parametrize("how", ["pkl", "pkl0", "amber"])
@pytest.mark.parametrize("case", ["gini outputs past its class counts", "entropy outputs past its class counts",
                                  "int float dict values past its keys", "quad tree of 40 dimensions"])
def test_hostile_constructor_arguments_refused(case: str, how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Compiled constructors that read their arguments unchecked are not called with bad ones
    (Gini(10**7, [2]) crashed the process while unpickling)."""
    cls, args, match = _hostile_calls()[case]
    p = _dumped(_Calls(cls, args), how, tmp_path, monkeypatch)
    with pytest.raises(amber.CorruptFileError, match=match) as info:
        amber.load(p)
    assert "building it would read or write outside its memory" in str(info.value)


def test_good_constructor_arguments_pass() -> None:
    from sklearn.tree._criterion import Gini

    g = Gini(2, np.array([3, 4], dtype=np.intp))
    for data in (pickle.dumps(g), amber.dumps(g)):
        again = amber.loads(data)
        assert type(again) is Gini and again.__reduce__()[1][0] == 2


def _svm_models() -> dict[str, Any]:
    import warnings

    import scipy.sparse as sp
    from sklearn.svm import SVC, SVR, NuSVC, NuSVR, OneClassSVM

    rng = np.random.default_rng(7)
    X = rng.normal(size=(60, 4))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # probability= is deprecated in 1.9
        prob = SVC(probability=True, random_state=0).fit(X, y)
    return {
        "svc": SVC().fit(X, y), "svc-prob": prob, "nusvc": NuSVC().fit(X, X[:, 0] > 0), "svr": SVR().fit(X, X[:, 0]),
        "nusvr": NuSVR().fit(X, X[:, 0]), "ocsvm": OneClassSVM().fit(X),
        "svc-precomputed": SVC(kernel="precomputed").fit(X @ X.T, y), "svc-sparse": SVC().fit(sp.csr_matrix(X), y),
    }


SVM_BREAKS: dict[str, tuple[Callable[[Any], None], str]] = {
    "support index past the samples": (lambda m: setattr(m, "support_", m.support_ + 10**6), r"support indices name samples outside"),
    "negative class size": (lambda m: m._n_support.__setitem__(0, -5), r"class sizes .* are not at least two counts"),
    "dual coefficients short": (lambda m: setattr(m, "_dual_coef_", np.zeros((m._dual_coef_.shape[0], 1))), r"dual coefficients have shape"),
    "intercepts missing": (lambda m: setattr(m, "_intercept_", np.zeros(0)), r"intercepts"),
}


@pytest.mark.parametrize("how", ["pkl", "amber"])
@pytest.mark.parametrize("brk", list(SVM_BREAKS))
def test_malformed_svm_refused(brk: str, how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    edit, match = SVM_BREAKS[brk]
    for name, model in _svm_models().items():
        bad = copy.deepcopy(model)
        edit(bad)
        p = _dumped(bad, how, tmp_path, monkeypatch)
        with pytest.raises(amber.CorruptFileError, match=match):
            amber.load(p)


@pytest.mark.parametrize("how", ["pkl", "joblib", "amber"])
def test_good_svm_and_kmeans_load(how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sklearn.cluster import KMeans, MiniBatchKMeans

    rng = np.random.default_rng(7)
    X = rng.normal(size=(60, 4))
    for name, model in _svm_models().items():
        again = _load(_dumped(model, how, tmp_path, monkeypatch), how)
        Xq = X @ X.T if name == "svc-precomputed" else X
        np.testing.assert_array_equal(again.predict(Xq), model.predict(Xq))
    for model in (KMeans(3, n_init=1, random_state=0).fit(X), MiniBatchKMeans(3, n_init=1, random_state=0).fit(X)):
        np.testing.assert_array_equal(_load(_dumped(model, how, tmp_path, monkeypatch), how).predict(X), model.predict(X))


def test_kmeans_centers_of_other_width_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sklearn.cluster import KMeans

    model = KMeans(3, n_init=1, random_state=0).fit(np.random.default_rng(8).normal(size=(30, 4)))
    model.cluster_centers_ = np.zeros((3, 1))
    for how in ("pkl", "amber"):
        with pytest.raises(amber.CorruptFileError, match=r"centers of shape \(3, 1\) do not have its 4 features"):
            amber.load(_dumped(model, how, tmp_path, monkeypatch))


def test_checked_classes_stay_themselves(fitted: Any) -> None:
    """A pickle that stores a checked class itself gets that very class back."""
    from sklearn.svm import SVC

    out = amber.loads(pickle.dumps({"cls": SVC, "tree": Tree, "model": fitted}))
    assert out["cls"] is SVC and out["tree"] is Tree and type(out["model"].tree_) is Tree


@pytest.mark.parametrize("where", ["object array", "tuple in a set", "dict key", "deep list", "pandas object column"])
def test_malformed_tree_found_wherever_it_sits(fitted: Any, where: str) -> None:
    import pandas as pd

    bad = _with_nodes(fitted, BAD_TREES["child past the end"])
    if where == "object array":
        holder: Any = np.array([1, bad, "x"], dtype=object)
    elif where == "tuple in a set":
        holder = {("a", bad.tree_)}
    elif where == "dict key":
        holder = {bad.tree_: 1}
    elif where == "deep list":
        holder = [[[[[bad]]]]]
    else:
        holder = pd.DataFrame({"m": pd.Series([None, bad], dtype=object)})
    with pytest.raises(amber.CorruptFileError, match="links to a child outside"):
        amber.loads(pickle.dumps(holder))


@pytest.mark.parametrize("how", ["pkl", "amber"])
def test_tree_estimator_with_a_criterion_object_refused(how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """fit with a criterion object built for fewer classes than y has wrote past its arrays."""
    from sklearn.tree._criterion import Gini

    model = DecisionTreeClassifier(criterion=Gini(1, np.array([2], dtype=np.intp)))
    with pytest.raises(amber.CorruptFileError, match="its criterion is a Gini object, not a name"):
        amber.load(_dumped(model, how, tmp_path, monkeypatch))
    amber.load(_dumped(DecisionTreeClassifier(criterion="entropy"), how, tmp_path, monkeypatch))


def test_bisecting_kmeans_centers_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its prediction stacks the centers of its tree's nodes and runs k-means' loop over
    n_features_in_ on them (the loop that read past narrow centers in KMeans)."""
    from sklearn.cluster import BisectingKMeans

    X = np.random.default_rng(9).normal(size=(60, 4))
    model = BisectingKMeans(4, random_state=0).fit(X)
    for how in ("pkl", "amber"):
        np.testing.assert_array_equal(amber.load(_dumped(model, how, tmp_path, monkeypatch)).predict(X), model.predict(X))
    bad = copy.deepcopy(model)
    bad._bisecting_tree.left.center = np.zeros(1)
    for how in ("pkl", "amber"):
        with pytest.raises(amber.CorruptFileError, match=r"a cluster center of shape \(1,\) does not have its 4 features"):
            amber.load(_dumped(bad, how, tmp_path, monkeypatch))


def test_second_load_with_the_same_trust_is_checked_too(fitted: Any) -> None:
    """The unpickler's cache hands out the class again without resolving it: the second of
    two loads sharing one trust (as the legacy torch format's pickles do) is still checked."""
    from amber.security._unpickler import PickleTrust, SafePyUnpickler

    trust = PickleTrust()
    good = pickle.dumps(fitted)
    bad = pickle.dumps(_with_nodes(fitted, BAD_TREES["child past the end"]))
    # (the checked reading: a tree's structured node records are not proven for the C one)
    SafePyUnpickler(io.BytesIO(good), trust).load()
    with pytest.raises(amber.CorruptFileError, match="links to a child outside"):
        SafePyUnpickler(io.BytesIO(bad), trust).load()


class _NewObjEx:
    """Pickles as NEWOBJ_EX: ``cls.__new__(cls, *args, **kwargs)``, keywords included."""

    def __init__(self, cls: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.cls, self.args, self.kwargs = cls, args, kwargs

    def __reduce_ex__(self, protocol: Any) -> Any:
        import copyreg

        return (copyreg.__newobj_ex__, (self.cls, self.args, self.kwargs))


@pytest.mark.parametrize("case", ["gini outputs past its class counts", "int float dict values past its keys",
                                  "quad tree of 40 dimensions"])
@pytest.mark.parametrize("split", [0, 1, 2])
def test_hostile_constructor_keywords_refused(case: str, split: int) -> None:
    """NEWOBJ_EX hands __new__ keywords, which Cython's __cinit__ takes: the check binds
    them as the constructor would (split: how many arguments go by position)."""
    cls, args, match = _hostile_calls()[case]
    names = {"gini": ("n_outputs", "n_classes"), "int": ("keys", "values"), "quad": ("n_dimensions", "verbose")}
    keys = names[case.split()[0]]
    data = pickle.dumps(_NewObjEx(cls, args[:split], dict(zip(keys[split:], args[split:]))), protocol=4)
    with pytest.raises(amber.CorruptFileError, match=match):
        amber.loads(data)


@pytest.mark.parametrize("holder", ["categorical", "frame", "series", "index"])
@pytest.mark.parametrize("code", [30000, -2])
def test_pandas_categorical_codes_out_of_range_refused(holder: str, code: int) -> None:
    """pandas looks values up by code without a bounds check: a pickled Categorical whose
    codes ran past its categories gave back other memory's bytes as values."""
    import pandas as pd

    cat = pd.Categorical(np.arange(300) % 200)
    obj = {"categorical": cat, "frame": pd.DataFrame({"c": cat, "x": np.arange(300)}),
           "series": pd.Series(cat), "index": pd.CategoricalIndex(cat)}[holder]
    good = pickle.dumps(obj, protocol=5)
    bad_codes = np.full_like(cat.codes, code)
    bad = good.replace(cat.codes.tobytes(), bad_codes.tobytes())
    assert bad != good
    with pytest.raises(amber.CorruptFileError, match=rf"pandas Categorical is malformed: its codes run from {code} to {code}"):
        amber.loads(bad)
    again = amber.loads(good)
    assert (again == obj).all() if holder != "frame" else again.equals(obj)


@pytest.mark.parametrize("kind", ["matrix", "array"])
@pytest.mark.parametrize("fmt", ["csr", "csc", "bsr", "coo", "dia"])
def test_scipy_sparse_indices_out_of_range_refused(fmt: str, kind: str) -> None:
    """SciPy's compiled routines index with a matrix's arrays unchecked: a pickled CSR
    matrix with column indices past its width crashed A @ x (exit 139, by hand)."""
    import scipy.sparse as sp

    A = getattr(sp, f"{fmt}_{kind}")(sp.random(50, 40, density=0.2, format="csr", random_state=0))
    good = pickle.dumps({"m": A}, protocol=5)
    assert (amber.loads(good)["m"] != A).nnz == 0
    arr = A.offsets if fmt == "dia" else (A.coords[0] if fmt == "coo" else A.indices)
    bad = good.replace(arr.tobytes(), np.full_like(arr, 3 if fmt == "dia" else 10**8).tobytes())
    assert bad != good
    with pytest.raises(amber.CorruptFileError, match=rf"a SciPy sparse {fmt}_{kind} is malformed: .*computing with it"):
        amber.loads(bad)


def _lgbm() -> tuple[Any, np.ndarray]:
    import warnings

    lgb = pytest.importorskip("lightgbm")
    X = np.random.default_rng(10).normal(size=(200, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lgb.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, (X[:, 0] > 0).astype(int)), X


def _tamper_lgbm(data: bytes) -> bytes:
    """The first tree's left_child values overwritten in place (same length)."""
    i = data.find(b"left_child=")
    j = data.find(b"\n", i)
    assert i > 0
    return data[:i] + b"left_child=" + b"9" * (j - i - len(b"left_child=")) + data[j:]


@pytest.mark.parametrize("how", ["pkl", "pkl0", "joblib"])
def test_lightgbm_model_text_checked_before_lightgbm_parses_it(how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Booster.__setstate__ hands the model text to LightGBM's parser, and a tampered tree
    made predict crash (exit 139): amber's LightGBM checker sees the text first."""
    import warnings

    model, X = _lgbm()
    p = _dumped(model, how, tmp_path, monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = amber.load(p)
        np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
    assert type(again.booster_).__name__ == "Booster"
    p.write_bytes(_tamper_lgbm(p.read_bytes()))
    with pytest.raises(amber.CorruptFileError, match="LightGBM booster is malformed: its model fails amber's checks"):
        amber.load(p)


def test_lightgbm_booster_called_or_left_without_state_refused() -> None:
    lgb = pytest.importorskip("lightgbm")
    text = _lgbm()[0].booster_.model_to_string()
    with pytest.raises(amber.DecodeError, match=r"calls Booster\(\.\.\.\), which its own pickling never does"):
        amber.loads(pickle.dumps(_Calls(lgb.Booster, (None, None, None, _tamper_lgbm(text.encode()).decode()))))

    bare = b"\x80\x02clightgbm.basic\nBooster\n)\x81."  # GLOBAL, EMPTY_TUPLE, NEWOBJ: no BUILD
    with pytest.raises(amber.CorruptFileError, match="never gives it its state"):
        amber.loads(bare)


def test_lightgbm_state_checked_on_the_generic_reducer_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """A native file may name the Booster class with a state of its own (not the booster
    handler's node): that state is checked before __setstate__ sees it too."""
    import lightgbm as lgb

    from amber.handlers._gbm import LightGBMBoosterHandler
    from amber.handlers._object import OBJECT

    booster = _lgbm()[0].booster_
    monkeypatch.setattr(LightGBMBoosterHandler, "encode", lambda self, obj, ctx: OBJECT.encode(obj, ctx))
    data = amber.dumps(booster)
    real_state = lgb.Booster.__getstate__

    def tampered(self: Any) -> dict[str, Any]:
        state = real_state(self)
        state["_handle"] = _tamper_lgbm(state["_handle"].encode()).decode()
        return state

    monkeypatch.setattr(lgb.Booster, "__getstate__", tampered)
    bad = amber.dumps(booster)
    monkeypatch.undo()
    assert type(amber.loads(data)).__name__ == "Booster"
    with pytest.raises(amber.CorruptFileError, match="its model fails amber's checks"):
        amber.loads(bad)


def test_malformed_tree_in_an_npy_object_array_refused_naming_the_file(fitted: Any, tmp_path: Path) -> None:
    p = tmp_path / "models.npy"
    np.save(p, np.array([_with_nodes(fitted, BAD_TREES["child past the end"])], dtype=object), allow_pickle=True)
    with pytest.raises(amber.CorruptFileError, match="links to a child outside") as info:
        amber.load(p, allow_pickle=True)
    assert str(p) in str(info.value)


def _xgb(kind: str) -> tuple[Any, np.ndarray]:
    pytest.importorskip("xgboost")
    return _xgb_fitted(kind)


@functools.lru_cache(maxsize=None)
def _xgb_fitted(kind: str) -> tuple[Any, np.ndarray]:
    import xgboost as xgb

    X = np.random.default_rng(11).normal(size=(200, 5))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    # one thread: XGBoost's OpenMP threads and torch's contend here (0.2 s a round, not 1 ms)
    if kind == "classifier":
        return xgb.XGBClassifier(n_estimators=5, max_depth=3, n_jobs=1).fit(X, y), X
    if kind == "regressor":
        return xgb.XGBRegressor(n_estimators=5, max_depth=3, n_jobs=1).fit(X, X[:, 0]), X
    return xgb.train({"max_depth": 3, "objective": "multi:softprob", "num_class": 3, "nthread": 1},
                     xgb.DMatrix(X, label=y + (X[:, 2] > 0), nthread=1), 5), X


def _tamper_xgb(raw: bytes, how: str) -> bytearray:
    """A serialized booster (Booster.__getstate__()["handle"]) with one thing changed."""
    from amber.handlers._gbm import _UArr, _ubj_read, _ubj_write

    top = _ubj_read(bytes(raw))
    tree = top["Model"]["learner"]["gradient_booster"]["model"]["trees"][0]
    key, value = {"child past the end": ("left_children", 10**6), "negative child": ("right_children", -5),
                  "split on a feature past the end": ("split_indices", 10**6)}.get(how, (None, None))
    if key is not None:
        arr = tree[key].a.copy()
        arr[0] = value
        tree[key] = _UArr(tree[key].m, arr)
    elif how == "array shorter than the tree":
        tree["split_conditions"] = _UArr(tree["split_conditions"].m, tree["split_conditions"].a[:-1])
    elif how == "config objective not the model's":
        top["Config"]["learner"]["objective"] = {"name": "multi:softprob", "softmax_multiclass_param": {"num_class": "50"}}
    else:
        assert how == "config tree count not the model's"
        top["Config"]["learner"]["gradient_booster"]["gbtree_model_param"]["num_trees"] = "500"
    out = bytearray()
    _ubj_write(top, out)
    return out


def _xgb_dumped(obj: Any, how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tamper: str | None = None) -> Path:
    """``obj`` saved as ``how`` (see _dumped), its boosters' states tampered with (_tamper_xgb)."""
    import xgboost as xgb

    if tamper is None:
        return _dumped(obj, how, tmp_path, monkeypatch)
    real = xgb.Booster.__getstate__
    with monkeypatch.context() as m:
        m.setattr(xgb.Booster, "__getstate__", lambda self: {**real(self), "handle": _tamper_xgb(real(self)["handle"], tamper)})
        return _dumped(obj, how, tmp_path, monkeypatch)


@pytest.mark.parametrize("how", ["pkl", "pkl0", "joblib", "pt"])
@pytest.mark.parametrize("kind", ["classifier", "regressor", "booster"])
def test_xgboost_serialized_booster_checked_before_xgboost_parses_it(
    kind: str, how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Booster.__setstate__ hands the serialized booster to XGBoost's parser, and a tree
    whose child link or split feature lay outside the tree made predict crash (exit 139,
    probed in a child process): amber's XGBoost checker sees the bytes first. A good model
    loads with the same predictions."""
    xgb = pytest.importorskip("xgboost")
    model, X = _xgb(kind)
    p = _xgb_dumped(model, how, tmp_path, monkeypatch)
    again = amber.load(p)
    again = again["model"] if how == "pt" else again
    if kind == "booster":
        assert type(again) is xgb.Booster
        np.testing.assert_array_equal(again.predict(xgb.DMatrix(X)), model.predict(xgb.DMatrix(X)))
        assert again.save_raw("ubj") == model.save_raw("ubj")
    else:
        assert type(again.get_booster()) is xgb.Booster
        np.testing.assert_array_equal(again.predict(X), model.predict(X))
        if kind == "classifier":
            np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
    p = _xgb_dumped(model, how, tmp_path, monkeypatch, tamper="child past the end")
    with pytest.raises(amber.CorruptFileError, match="XGBoost booster is malformed: its model fails amber's checks: "
                                                     "tree 0: a child index lies outside") as info:
        amber.load(p)
    assert str(p) in str(info.value)


#: Tamperings of a pickled XGBoost booster (see _tamper_xgb), with what amber's refusal says.
_XGB_TAMPERED = {
    "negative child": r"tree 0: a child index lies outside 1\.\.\d+",
    "split on a feature past the end": r"tree 0: a split uses a feature outside 0\.\.4",
    "array shorter than the tree": r"tree 0 split_conditions has (\d+) entries, not (?!\1)\d+",
    "config objective not the model's": "the Config's objective differs from the model's",
    "config tree count not the model's": "the Config's gbtree_model_param differs from the model's",
}


@pytest.mark.parametrize("tamper", list(_XGB_TAMPERED))
def test_xgboost_tampered_serialized_booster_refused(tamper: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Handed to XGBoost (probed in child processes), the bad links and features crashed
    predict (exit 139), the short array XGBoost refused itself, and the Config ones it
    ignored; amber refuses each, saying what is wrong."""
    model = _xgb("classifier")[0]
    p = _xgb_dumped(model, "pkl", tmp_path, monkeypatch, tamper=tamper)
    with pytest.raises(amber.CorruptFileError, match="an XGBoost booster is malformed: its model fails amber's checks: "
                                                     + _XGB_TAMPERED[tamper]):
        amber.load(p)


def test_xgboost_booster_called_or_without_model_refused() -> None:
    xgb = pytest.importorskip("xgboost")
    raw = bytearray(_xgb("booster")[0].save_raw("ubj"))
    with pytest.raises(amber.DecodeError, match=r"calls Booster\(\.\.\.\), which its own pickling never does"):
        amber.loads(pickle.dumps(_Calls(xgb.Booster, (None, None, raw))))
    bare = b"\x80\x02cxgboost.core\nBooster\n)\x81."  # GLOBAL, EMPTY_TUPLE, NEWOBJ: no BUILD
    with pytest.raises(amber.CorruptFileError, match="never gives it its state"):
        amber.loads(bare)
    # a state without a model: XGBoost keeps handle None, and predict crashed (exit 139)
    no_model = b"\x80\x02cxgboost.core\nBooster\n)\x81}X\x06\x00\x00\x00handleNsb."
    with pytest.raises(amber.CorruptFileError, match="its model is a NoneType, not bytes"):
        amber.loads(no_model)
    with pytest.raises(amber.CorruptFileError, match="XGBoost booster is malformed: its model fails amber's checks: "
                                                     "the serialized booster lacks"):
        amber.loads(b"\x80\x02cxgboost.core\nBooster\n)\x81}X\x06\x00\x00\x00handleC\x02{}sb.")


def test_xgboost_state_checked_on_the_generic_reducer_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """A native file may name the Booster class with a state of its own (not the booster
    handler's node): that state is checked before __setstate__ sees it too."""
    xgb = pytest.importorskip("xgboost")
    from amber.handlers._gbm import XGBoostBoosterHandler
    from amber.handlers._object import OBJECT

    booster = _xgb("booster")[0]
    monkeypatch.setattr(XGBoostBoosterHandler, "encode", lambda self, obj, ctx: OBJECT.encode(obj, ctx))
    data = amber.dumps(booster)
    real_state = xgb.Booster.__getstate__
    monkeypatch.setattr(xgb.Booster, "__getstate__",
                        lambda self: {**real_state(self), "handle": _tamper_xgb(real_state(self)["handle"], "child past the end")})
    bad = amber.dumps(booster)
    monkeypatch.undo()
    assert amber.loads(data).save_raw("ubj") == booster.save_raw("ubj")
    with pytest.raises(amber.CorruptFileError, match="its model fails amber's checks"):
        amber.loads(bad)


@pytest.mark.parametrize("lib", ["lightgbm", "xgboost"])
def test_booster_state_given_twice_checked_both_times(lib: str) -> None:
    """A pickle may BUILD an object more than once. The LightGBM booster's state was checked
    on the first BUILD only, and the second reached Booster.__setstate__ unchecked: a
    tampered tree then crashed predict (exit 139, probed in a child process). Every BUILD is
    checked now, and what the load hands out is a plain Booster."""
    if lib == "lightgbm":
        pytest.importorskip("lightgbm")
        booster = _lgbm()[0].booster_
        good = booster.__getstate__()
        bad = {**good, "_handle": _tamper_lgbm(good["_handle"].encode()).decode()}
        head = b"\x80\x02clightgbm.basic\nBooster\n)\x81"
    else:
        pytest.importorskip("xgboost")
        booster = _xgb("booster")[0]
        good = booster.__getstate__()
        bad = {**good, "handle": _tamper_xgb(good["handle"], "child past the end")}
        head = b"\x80\x02cxgboost.core\nBooster\n)\x81"

    def build(state: dict[str, Any]) -> bytes:  # the state, then BUILD
        return pickle.dumps(state, protocol=2)[2:-1] + b"b"

    again = amber.loads(head + build(good) + build(good) + b".")
    assert type(again) is type(booster)
    with pytest.raises(amber.CorruptFileError, match="booster is malformed: its model fails amber's checks"):
        amber.loads(head + build(good) + build(bad) + b".")


# --- SciPy B-splines (SplineTransformer) ---------------------------------------------------

def _spline_transformer(**kw: Any) -> Any:
    from sklearn.preprocessing import SplineTransformer

    return SplineTransformer(**kw).fit(np.linspace(0, 1, 40)[:, None] * [1, 3])


def _bspline_edit(spl: Any, field: str, value: Any) -> None:
    """Set a BSpline's knots, coefficients or degree as its state holds them."""
    d = spl.__dict__
    key = {"t": "_t" if "_t" in d else "t", "c": "_c" if "_c" in d else "c"}.get(field, field)
    d[key] = value(d[key]) if callable(value) else value


BAD_SPLINES: dict[str, tuple[str, Any, str]] = {
    "coefficients cut short": ("c", lambda c: c[:1].copy(), r"coefficients of shape \(1, \d+\) are fewer"),
    "no coefficients": ("c", lambda c: c[:0].copy(), r"coefficients of shape \(0, \d+\) are fewer"),
    "negative degree": ("k", -5, r"degree -5 is not a non-negative integer"),
    "degree past the knots": ("k", 50, r"degree 50 needs at least 102"),
    "knots cut short": ("t", lambda t: t[:3].copy(), r"it has 3 knots"),
    "knots reversed": ("t", lambda t: t[::-1].copy(), r"knots are not finite and non-decreasing"),
    "nan knot": ("t", lambda t: np.where(np.arange(len(t)) == 4, np.nan, t), r"not finite"),
    "float32 knots": ("t", lambda t: t.astype(np.float32), r"knots are not a 1-d float64 array"),
    "integer coefficients": ("c", lambda c: c.astype(np.int64), r"coefficients are int64"),
    "axis past the coefficients": ("axis", 5, r"extrapolation mode or axis is malformed"),
}


@pytest.mark.parametrize("how", ["amber", "pkl", "joblib", "pt"])
@pytest.mark.parametrize("bad", list(BAD_SPLINES), ids=list(BAD_SPLINES))
def test_malformed_bspline_refused(bad: str, how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A SplineTransformer whose B-spline coefficients were cut short transformed into other
    memory's bytes (values of 1e255); a negative degree aborted the process."""
    model = _spline_transformer()
    field, value, message = BAD_SPLINES[bad]
    _bspline_edit(model.bsplines_[1], field, value)
    _assert_refused(model, how, tmp_path, monkeypatch, r"a SciPy BSpline is malformed: .*" + message, "evaluating it would read outside its memory")


@pytest.mark.parametrize("how", ["amber", "pkl", "joblib"])
def test_good_bsplines_load(how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Splines as scikit-learn and SciPy make them pass: every extrapolation mode and degree
    of SplineTransformer, quantile knots, interpolating and least-squares splines, their
    derivatives and antiderivatives, basis elements, complex and multi-column coefficients."""
    from scipy.interpolate import BSpline, make_interp_spline, make_lsq_spline

    from amber.security._guards import bspline_problem

    x = np.linspace(-0.5, 3.5, 57)[:, None] * [1, 1]
    models = [_spline_transformer(degree=d, extrapolation=e, n_knots=k, knots=kn)
              for d, e, k, kn in [(0, "continue", 3, "uniform"), (1, "linear", 4, "quantile"), (3, "periodic", 5, "uniform"),
                                  (3, "continue", 7, "quantile"), (5, "constant", 6, "uniform"), (2, "error", 4, "uniform")]]
    t = np.linspace(0, 1, 30)
    interp = make_interp_spline(t, np.sin(6 * t), k=3)
    splines = [interp, interp.derivative(), interp.antiderivative(2), BSpline.basis_element([0, 1, 2, 3]),
               make_interp_spline(t, np.exp(1j * t), k=2), make_interp_spline(t, np.c_[t, t**2], k=1, axis=0),
               make_lsq_spline(t, np.cos(t), np.r_[[0.0] * 4, 0.5, [1.0] * 4], k=3),
               BSpline(np.r_[[0.0] * 3, 1, [2.0] * 3], np.ones((2, 4, 3)), 2, extrapolate="periodic", axis=1)]
    for spl in splines + [s for m in models for s in m.bsplines_]:
        assert bspline_problem(spl) is None, spl
    for m in models:
        xs = np.linspace(0, 1, 20)[:, None] * [1, 3] if m.extrapolation == "error" else x
        again = _load(_dumped(m, how, tmp_path, monkeypatch), how)
        np.testing.assert_array_equal(again.transform(xs), m.transform(xs))
    again = _load(_dumped(splines, how, tmp_path, monkeypatch), how)
    for a, b in zip(again, splines):
        np.testing.assert_array_equal(a(np.linspace(-0.2, 1.2, 31)), b(np.linspace(-0.2, 1.2, 31)))


# --- trees inside estimators and ensembles, gradient boosting stages, feature hashing ------

def _wide_tree(model: Any, n_features: int = 10**6) -> Any:
    """``model`` (a fitted tree estimator) with a tree that splits on feature n_features-1."""
    from sklearn.tree._tree import Tree

    st = model.tree_.__getstate__()
    nodes = st["nodes"].copy()
    nodes["feature"][nodes["left_child"] >= 0] = n_features - 1
    tree = Tree(n_features, np.asarray(model.tree_.n_classes, dtype=np.intp), model.tree_.n_outputs)
    tree.__setstate__({**st, "nodes": nodes})
    model.tree_ = tree
    return model


def _xy(seed: int = 0, classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(120, 5))
    return X, (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int) * (classes - 2)


def _bad_ensembles() -> dict[str, tuple[Callable[[], Any], str, str]]:
    from sklearn.ensemble import GradientBoostingClassifier, IsolationForest, RandomForestClassifier
    from sklearn.feature_extraction import FeatureHasher
    from sklearn.feature_extraction.text import HashingVectorizer
    from sklearn.tree import DecisionTreeClassifier

    X, y = _xy()
    X3, y3 = _xy(classes=3)

    def tree_wide() -> Any:
        return _wide_tree(DecisionTreeClassifier(max_depth=3).fit(X, y))

    def tree_unsized() -> Any:
        m = DecisionTreeClassifier(max_depth=3).fit(X, y)
        del m.n_features_in_
        return m

    def forest_wide() -> Any:
        m = RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(X, y)
        m.estimators_[1] = _wide_tree(m.estimators_[1], 9)
        m.estimators_[1].n_features_in_ = 9
        return m

    def iforest_subset() -> Any:
        m = IsolationForest(n_estimators=3, max_features=3, random_state=0).fit(X)
        m.estimators_features_[2] = m.estimators_features_[2][:1]
        return m

    def gb_wide() -> Any:
        m = GradientBoostingClassifier(n_estimators=3, max_depth=2).fit(X, y)
        m.estimators_ = np.repeat(m.estimators_, 40, axis=1)
        return m

    def gb_init_classes() -> Any:
        m = GradientBoostingClassifier(n_estimators=3, max_depth=2).fit(X3, y3)
        m.init_.class_prior_ = m.init_.class_prior_[:1].copy()
        return m

    def hashing(cls: Any, **kw: Any) -> Callable[[], Any]:
        def make() -> Any:
            m = cls(**kw)
            m.n_features = 0
            return m
        return make

    return {
        "tree wider than its estimator": (tree_wide, r"its tree splits on 1000000 features, its input has 5", "predict would read"),
        "tree estimator without a width": (tree_unsized, r"no number of input features", "predict would read"),
        "forest with a wide tree": (forest_wide, r"its tree 1 takes 9 features, its input has 5", "predict would read"),
        "isolation forest subset short": (iforest_subset, r"its tree 2 takes 3 features, its feature subset has 1", "predict would read"),
        "boosting stages wider than its outputs": (gb_wide, r"it has 40 trees per stage and 1 trees per iteration", "predict would write"),
        "boosting init with fewer classes": (gb_init_classes, r"class priors do not have its 3 classes", "predict would write"),
        "hashing vectorizer of 0 features": (hashing(HashingVectorizer), r"number of features 0 is not between 1", "divide by zero"),
        "feature hasher of 0 features": (hashing(FeatureHasher, input_type="string"), r"number of features 0", "divide by zero"),
    }


BAD_ENSEMBLES = _bad_ensembles()


@pytest.mark.parametrize("how", ["amber", "pkl", "joblib"])
@pytest.mark.parametrize("bad", list(BAD_ENSEMBLES), ids=list(BAD_ENSEMBLES))
def test_malformed_ensembles_refused(bad: str, how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Probed in child processes before the checks: a tree of 10**6 features in a 5-feature
    estimator crashed predict (exit 139), gradient boosting stages wider than its raw
    predictions corrupted the heap (abort), feature hashing into 0 features divided by
    zero (SIGFPE)."""
    make, message, consequence = BAD_ENSEMBLES[bad]
    _assert_refused(make(), how, tmp_path, monkeypatch, message, consequence)


@pytest.mark.parametrize("how", ["amber", "pkl"])
def test_good_ensembles_load(how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sklearn.dummy import DummyClassifier
    from sklearn.ensemble import (AdaBoostClassifier, BaggingClassifier, ExtraTreesRegressor, GradientBoostingClassifier,
                                  GradientBoostingRegressor, IsolationForest, RandomForestClassifier, RandomTreesEmbedding)
    from sklearn.feature_extraction import FeatureHasher
    from sklearn.feature_extraction.text import HashingVectorizer
    from sklearn.linear_model import LogisticRegression

    X, y = _xy()
    X3, y3 = _xy(classes=3)
    models: list[tuple[Any, str, np.ndarray]] = [
        (RandomForestClassifier(n_estimators=3, max_features=2, random_state=0).fit(X, y), "predict_proba", X),
        (ExtraTreesRegressor(n_estimators=3, random_state=0).fit(X, X[:, 0]), "predict", X),
        (IsolationForest(n_estimators=3, max_features=3, random_state=0).fit(X), "score_samples", X),
        (IsolationForest(n_estimators=3, random_state=0).fit(X), "score_samples", X),
        (BaggingClassifier(n_estimators=3, max_features=2, random_state=0).fit(X, y), "predict_proba", X),
        (AdaBoostClassifier(n_estimators=3, random_state=0).fit(X3, y3), "predict_proba", X3),
        (RandomTreesEmbedding(n_estimators=3, random_state=0).fit(X), "transform", X),
        (GradientBoostingClassifier(n_estimators=3).fit(X, y), "predict_proba", X),
        (GradientBoostingClassifier(n_estimators=3).fit(X3, y3), "predict_proba", X3),
        (GradientBoostingClassifier(n_estimators=3, init="zero").fit(X3, y3), "predict_proba", X3),
        (GradientBoostingClassifier(n_estimators=3, init=LogisticRegression()).fit(X3, y3), "predict_proba", X3),
        (GradientBoostingClassifier(n_estimators=3, init=DummyClassifier(strategy="most_frequent")).fit(X3, y3),
         "predict_proba", X3),
        (GradientBoostingRegressor(n_estimators=3).fit(X, X[:, 1]), "predict", X),
        (GradientBoostingRegressor(n_estimators=3, init="zero").fit(X, X[:, 1]), "predict", X),
    ]
    for model, method, data in models:
        again = _load(_dumped(model, how, tmp_path, monkeypatch), how)
        out, want = getattr(again, method)(data), getattr(model, method)(data)
        np.testing.assert_array_equal(out.toarray() if hasattr(out, "toarray") else out,
                                      want.toarray() if hasattr(want, "toarray") else want)
    hv = _load(_dumped(HashingVectorizer(n_features=64), how, tmp_path, monkeypatch), how)
    assert hv.transform(["a b c"]).shape == (1, 64)
    fh = _load(_dumped(FeatureHasher(n_features=8, input_type="string"), how, tmp_path, monkeypatch), how)
    assert fh.transform([["a", "b"]]).shape == (1, 8)


# --- found by fuzzing fitted state (every estimator, one field changed, in child processes) --

def _bad_fuzzed() -> dict[str, tuple[Callable[[], Any], str, str]]:
    import scipy.sparse as sparse
    from sklearn.cluster import Birch, BisectingKMeans, KMeans, MiniBatchKMeans
    from sklearn.covariance import EllipticEnvelope, LedoitWolf
    from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors
    from sklearn.svm import SVC

    X, y = _xy()
    X3, y3 = _xy(classes=3)

    def sparse_svc_short_dual() -> Any:
        m = SVC().fit(sparse.csr_matrix(X3), y3)
        d = m._dual_coef_
        m._dual_coef_ = type(d)((d.data[:1], d.indices[:1], np.r_[0, [1] * d.shape[0]]), shape=d.shape)
        return m

    return {
        "k-means of -1 threads": (_edited(lambda: KMeans(3, n_init=1, random_state=0).fit(X), _n_threads=-1),
                                  r"its number of threads -1 is not between 1 and 4096", "predict would"),
        "mini-batch k-means of 0 threads": (_edited(lambda: MiniBatchKMeans(3, n_init=1, random_state=0).fit(X), _n_threads=0),
                                            r"its number of threads 0 is not", "predict would"),
        "bisecting k-means of -2**31 threads": (
            _edited(lambda: BisectingKMeans(3, random_state=0).fit(X), _n_threads=-2**31), r"number of threads -2147483648", "predict would"),
        "k-means of 10**6 threads": (_edited(lambda: MiniBatchKMeans(3, n_init=1, random_state=0).fit(X), _n_threads=10**6),
                                     r"number of threads 1000000 is not between 1 and 4096", "predict would"),
        "birch norms cut short": (_edited(lambda: Birch(n_clusters=None).fit(X), _subcluster_norms=lambda a: a[:1].copy()),
                                  r"squared norms of shape \(1,\) for \d+ subcluster centers", "predict would read"),
        "birch without norms": (_edited(lambda: Birch().fit(X), _subcluster_norms=None), r"squared norms of shape None", "predict would read"),
        "brute-force neighbors of a 1x1 Mahalanobis matrix": (
            _edited(lambda: NearestNeighbors(algorithm="brute", metric="mahalanobis", metric_params={"VI": np.eye(5)}).fit(X),
                   effective_metric_params_={"VI": np.eye(1)}),
            r"its Mahalanobis matrix has shape \(1, 1\) for 5 features", "predict would read"),
        "brute-force neighbors without data rows": (
            _edited(lambda: KNeighborsClassifier(3, algorithm="brute").fit(X, y), _fit_X=lambda a: a[:0].copy()),
            r"its data of shape \(0, 5\) does not hold its 120 samples", "predict would"),
        "neighbors data narrower than the input": (
            _edited(lambda: NearestNeighbors(algorithm="brute").fit(X), _fit_X=lambda a: a[:, :2].copy()),
            r"its data of shape \(120, 2\) does not have its 5 features", "predict would"),
        "sparse SVC with dual coefficients left out": (sparse_svc_short_dual, r"sparse dual coefficients store \(1,\) values, not all",
                                                      "predict would read"),
        "covariance precision of one row": (_edited(lambda: LedoitWolf().fit(X), precision_=lambda a: a[:1].copy()),
                                           r"its precision matrix of shape \(1, 5\) is not 5 square", "Mahalanobis distances would read"),
        "elliptic envelope covariance transposed into a row": (
            _edited(lambda: EllipticEnvelope(random_state=0).fit(X), precision_=None, covariance_=lambda a: a.ravel()[None].copy()),
            r"its covariance matrix of shape \(1, 25\) is not 5 square", "Mahalanobis distances would read"),
    }


BAD_FUZZED = _bad_fuzzed()


@pytest.mark.parametrize("how", ["amber", "pkl", "joblib"])
@pytest.mark.parametrize("bad", list(BAD_FUZZED), ids=list(BAD_FUZZED))
def test_malformed_fuzzed_state_refused(bad: str, how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by a fuzz of fitted state (one field of a fitted estimator changed, pickled, loaded
    and used in a child process): k-means with a negative number of threads ended the process
    in libgomp (exit 1, "out of memory allocating 927712937064 bytes"), with 10**6 it crashed
    (SIGSEGV); Birch's squared center norms cut short, a brute-force Mahalanobis matrix of 1x1
    and a covariance model's precision of one row crashed predict (exit 139: a 20M-center Birch,
    4000 and 3000 features); brute-force neighbors without data rows divided by zero (SIGFPE);
    a sparse SVC's dual coefficients left out of its CSR matrix read past them (NaN outputs)."""
    make, message, consequence = BAD_FUZZED[bad]
    _assert_refused(make(), how, tmp_path, monkeypatch, message, consequence)


@pytest.mark.parametrize("how", ["amber", "pkl", "joblib"])
def test_good_fuzzed_classes_load(how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import scipy.sparse as sparse
    from sklearn.cluster import Birch, BisectingKMeans, KMeans, MiniBatchKMeans
    from sklearn.covariance import OAS, EllipticEnvelope, EmpiricalCovariance, GraphicalLasso, MinCovDet, ShrunkCovariance
    from sklearn.neighbors import KNeighborsClassifier, LocalOutlierFactor, NearestNeighbors
    from sklearn.svm import SVC, SVR, OneClassSVM

    X, y = _xy()
    X3, y3 = _xy(classes=3)
    Xs = sparse.csr_matrix(np.where(np.abs(X) > 0.5, X, 0))
    vi = {"VI": np.linalg.inv(np.cov(X.T))}
    models: list[tuple[Any, str, Any]] = [
        (KMeans(3, n_init=1, random_state=0).fit(X), "predict", sparse.csr_matrix(X)),
        (KMeans(3, n_init=1, algorithm="elkan", random_state=0).fit(X), "transform", X),
        (MiniBatchKMeans(3, n_init=1, random_state=0).partial_fit(X), "predict", X),
        (BisectingKMeans(3, random_state=0).fit(X), "predict", X),
        (Birch(n_clusters=None).fit(X), "predict", X),
        (Birch(n_clusters=3).partial_fit(X[:60]).partial_fit(X[60:]), "transform", X),
        (NearestNeighbors(algorithm="brute", metric="mahalanobis", metric_params=vi).fit(X), "kneighbors", X),
        (NearestNeighbors(algorithm="ball_tree", metric="mahalanobis", metric_params={"V": np.cov(X.T)}).fit(X), "kneighbors", X),
        (NearestNeighbors(algorithm="brute").fit(Xs), "kneighbors", Xs),
        (NearestNeighbors(metric="precomputed").fit(np.abs(X @ X.T)), "kneighbors", np.abs(X[:7] @ X.T)),
        (KNeighborsClassifier(3, algorithm="brute", metric="cosine").fit(X, y), "predict_proba", X),
        (LocalOutlierFactor(novelty=True).fit(X), "score_samples", X),
        (SVC().fit(sparse.csr_matrix(X3), y3), "decision_function", sparse.csr_matrix(X3)),
        (SVC(kernel="linear").fit(Xs, y), "predict", Xs),
        (SVR().fit(Xs, X[:, 1]), "predict", Xs),
        (OneClassSVM().fit(Xs), "decision_function", Xs),
        *[(m.fit(X), "mahalanobis", X) for m in (EmpiricalCovariance(), EmpiricalCovariance(store_precision=False),
                                                 EmpiricalCovariance(assume_centered=True), ShrunkCovariance(), OAS(),
                                                 MinCovDet(random_state=0), GraphicalLasso())],
        (EllipticEnvelope(random_state=0).fit(X), "decision_function", X),
    ]
    for model, method, data in models:
        again = _load(_dumped(model, how, tmp_path, monkeypatch), how)
        np.testing.assert_array_equal(getattr(again, method)(data), getattr(model, method)(data))


# --- transformers that return np.empty arrays their state says how to fill -----------------

def _bad_unfilled() -> dict[str, tuple[Callable[[], Any], str]]:
    from sklearn.preprocessing import PolynomialFeatures, TargetEncoder

    X, y = _xy()
    X3, y3 = _xy(classes=3)
    cats = np.c_[(X[:, :2] > 0).astype(int) + (X[:, :2] > 1), (X[:, 2] * 3).round() % 5]

    def poly(**kw: Any) -> Callable[[], Any]:
        return lambda: PolynomialFeatures(**kw).fit(X)

    def target(kind: str) -> Callable[[], Any]:
        return lambda: TargetEncoder(target_type=kind).fit(
            cats, {"binary": y, "multiclass": y3, "continuous": X[:, 0]}[kind])

    return {
        "polynomial features with interaction_only flipped": (
            _edited(poly(degree=3), interaction_only=True), r"it declares 56 output features where its degrees and flags make 26"),
        "polynomial features of max degree 0": (_edited(poly(degree=2), _max_degree=0), r"declares 21 output features where .* make 1"),
        "polynomial features of max degree -1": (_edited(poly(degree=2), _max_degree=-1), r"its degrees 0..-1 are not integers"),
        "polynomial features of min degree 3 kept as 2": (_edited(poly(degree=(2, 3)), _min_degree=3),
                                                          r"declares 51 output features where .* make 36"),
        "polynomial features of max degree 2**62": (_edited(poly(degree=2), _max_degree=2**62), r"make more than \d+ output features"),
        "polynomial features with the full count raised": (_edited(poly(degree=(2, 3)), _n_out_full=lambda n: n + 5),
                                                           r"declares 61 features of all degrees up to 3 where its flags make 56"),
        "polynomial features without n_features_in_": (_edited(poly(degree=2), n_features_in_=None), r"number of input features None"),
        "polynomial features of 10**6 inputs": (_edited(poly(degree=2), n_features_in_=10**6), r"declares 21 output features where"),
        "polynomial features with include_bias a string": (_edited(poly(degree=2), include_bias="yes"), r"is not a boolean"),
        "target encoder with encodings cut short": (_edited(target("binary"), encodings_=lambda e: e[:1]),
                                                    r"it holds 1 encodings for 3 features"),
        "multiclass target encoder with an encoding per feature": (_edited(target("multiclass"), encodings_=lambda e: e[:3]),
                                                                  r"it holds 3 encodings for 3 features of 3 classes"),
        "multiclass target encoder with a class dropped": (_edited(target("multiclass"), classes_=lambda c: c[:2]),
                                                          r"it holds 9 encodings for 3 features of 2 classes"),
        "target encoder with a short encoding": (_edited(target("continuous"), encodings_=lambda e: [e[0][:1], *e[1:]]),
                                                 r"its encoding 0 of shape \(1,\) is not one value per category of feature 0 \(3\)"),
        "target encoder with its categories cut short": (_edited(target("binary"), categories_=lambda c: c[:2]),
                                                         r"its categories are not 3 1-d arrays"),
        "target encoder of an unknown target type": (_edited(target("multiclass"), target_type_="multilabel"),
                                                    r"its target type 'multilabel' is not"),
    }


BAD_UNFILLED = _bad_unfilled()


@pytest.mark.parametrize("how", ["amber", "pkl", "joblib"])
@pytest.mark.parametrize("bad", list(BAD_UNFILLED), ids=list(BAD_UNFILLED))
def test_transformer_state_that_leaves_output_unfilled_refused(bad: str, how: str, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by the fuzz of fitted state (in child processes): PolynomialFeatures with its
    interaction_only flipped or its _max_degree changed, and TargetEncoder with its encodings_
    cut short, transformed into columns of an np.empty array they never filled (values of
    1e257 and 1e305: other memory's bytes)."""
    make, message = BAD_UNFILLED[bad]
    _assert_refused(make(), how, tmp_path, monkeypatch, message, "transform would return uninitialised memory")


@pytest.mark.parametrize("how", ["amber", "pkl", "joblib"])
def test_good_polynomial_features_and_target_encoders_load(how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import scipy.sparse as sparse
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import PolynomialFeatures, TargetEncoder

    X, y = _xy()
    X3, y3 = _xy(classes=3)
    Xs = sparse.csr_matrix(np.where(np.abs(X) > 0.5, X, 0))
    cats = np.c_[(X[:, :2] > 0).astype(int) + (X[:, :2] > 1), (X[:, 2] * 3).round() % 5]
    words = np.array(["a", "b", "c", "d"], dtype=object)[cats[:, :2].astype(int) % 4]
    models: list[tuple[Any, Any]] = [
        *[(PolynomialFeatures(**kw).fit(X), X) for kw in (
            {}, {"degree": 3}, {"degree": 0}, {"degree": 1, "include_bias": False}, {"degree": (2, 3)},
            {"degree": (0, 0)}, {"degree": (3, 3), "include_bias": False}, {"degree": 4, "interaction_only": True},
            {"degree": (2, 6), "interaction_only": True, "include_bias": False}, {"degree": np.int64(2), "order": "F"},
            {"degree": (np.int32(1), np.int64(2)), "interaction_only": np.bool_(True)})],
        (PolynomialFeatures(degree=3).fit(Xs), Xs),
        (PolynomialFeatures(degree=4).fit(Xs.tocsc()), Xs.tocsc()),
        (PolynomialFeatures(degree=(12, 12), interaction_only=True).fit(np.ones((2, 13))), np.ones((2, 13))),
        (make_pipeline(PolynomialFeatures(), Ridge()).fit(X, X[:, 0]), X),
        *[(TargetEncoder(target_type=kind, **kw).fit(cats, target), cats)
          for kind, target in (("binary", y), ("multiclass", y3), ("continuous", X[:, 0]), ("auto", y3))
          for kw in ({}, {"smooth": 2.0}, {"cv": 2})],
        (TargetEncoder(categories=[np.arange(3), np.arange(3), np.arange(5)]).fit(cats, y), cats),
        (TargetEncoder().fit(words, y3), words),
        (ColumnTransformer([("t", TargetEncoder(), [0, 1]), ("p", PolynomialFeatures(), [2])]).fit(cats, y), cats),
    ]
    for model, data in models:
        again = _load(_dumped(model, how, tmp_path, monkeypatch), how)
        method = "predict" if hasattr(model, "predict") else "transform"
        out, want = getattr(again, method)(data), getattr(model, method)(data)
        np.testing.assert_array_equal(out.toarray() if hasattr(out, "toarray") else out,
                                      want.toarray() if hasattr(want, "toarray") else want)


# --- found by fuzzing pickled pandas, SciPy and torch internals (in child processes) -------

class _Reduced:
    """Pickles as ``reduce`` says (to write internals no constructor would make)."""

    def __init__(self, reduce: tuple[Any, ...]) -> None:
        self.reduce = reduce

    def __reduce__(self) -> tuple[Any, ...]:
        return self.reduce


def _bad_internals() -> dict[str, tuple[Callable[[], Any], str]]:
    import pandas as pd
    import scipy.sparse as sparse

    def series_of_long_index() -> Any:
        s = pd.Series(np.arange(12.0))
        s._mgr.axes[0] = pd.RangeIndex(-2**31, 12)
        return s

    def frame_with_a_column_twice() -> Any:
        df = pd.DataFrame({"a": np.arange(3), "b": np.arange(3.0)})
        df._mgr.blocks[1]._mgr_locs = df._mgr.blocks[0].mgr_locs
        return df

    def datetimes_as_int32() -> Any:
        arr = pd.date_range("2024-01-01", periods=6, tz="UTC")._data
        fn, args, state = arr.__reduce__()
        return _Reduced((fn, args, (state[0], state[1].view(np.int64).astype(np.int32))))

    def lil_of_column(col: int) -> Callable[[], Any]:
        def build() -> Any:
            m = sparse.lil_matrix(sparse.random(6, 5, density=0.4, random_state=0))
            m.rows[1] = [col]
            m.data[1] = [1.0]
            return m
        return build

    def dia_far_offset() -> Any:
        m = sparse.dia_matrix((np.ones((1, 5)), [0]), shape=(5, 5))
        m.offsets = np.array([np.iinfo(np.int32).min], dtype=np.int32)
        return m

    def lstm(**fields: Any) -> Callable[[], Any]:
        def build() -> Any:
            m = torch.nn.LSTM(4, 5, num_layers=2)
            for k, v in fields.items():
                if k in m._parameters:
                    m._parameters[k] = torch.nn.Parameter(v(m._parameters[k]))
                else:
                    m.__dict__[k] = v
            return m
        return build

    def decoder_of_no_heads() -> Any:
        m = torch.nn.TransformerDecoderLayer(8, 2, dim_feedforward=16)
        m.self_attn.num_heads = 0
        return m

    return {
        "series of 12 values on a RangeIndex of 2**31": (series_of_long_index, r"pandas SingleBlockManager is malformed: its values of shape \(12,\)"),
        "frame placing a column twice": (frame_with_a_column_twice, r"pandas BlockManager is malformed: its blocks do not place each of its 2 columns"),
        "datetimes held as int32": (datetimes_as_int32, r"pandas DatetimeArray is malformed: its values are int32, where .* needs M8\[us\]"),
        "LIL column index -1": (lil_of_column(-1), r"sparse lil_matrix is malformed: row 1 has column indices"),
        "LIL column index past the width": (lil_of_column(5), r"row 1 has column indices that are not increasing integers inside 0..4"),
        "DIA offset of -2**31": (dia_far_offset, r"sparse dia_matrix is malformed: its offsets are not integers within"),
        "LSTM weight of no rows": (lstm(weight_ih_l1=lambda w: w[:0]), r"PyTorch LSTM is malformed: its weight weight_ih_l1 has shape \(0, 5\)"),
        "LSTM of hidden size 0": (lstm(hidden_size=0), r"its sizes \(input 4, hidden 0"),
        "LSTM of 10**6 layers": (lstm(num_layers=10**6), r"it names 8 flat weights for 1000000 layers"),
        "decoder attention of 0 heads": (decoder_of_no_heads, r"PyTorch MultiheadAttention is malformed: its 0 heads"),
    }


BAD_INTERNALS = _bad_internals()



def _dump_any(obj: Any, how: str, tmp_path: Path) -> Path:
    p = tmp_path / f"obj.{how}"
    if how == "pt":
        torch.save(obj, p)
    elif how == "joblib":
        joblib.dump(obj, p)
    else:
        p.write_bytes(pickle.dumps(obj, protocol=4))
    return p


@pytest.mark.parametrize("how", ["pkl", "joblib", "pt"])
@pytest.mark.parametrize("bad", list(BAD_INTERNALS), ids=list(BAD_INTERNALS))
def test_malformed_internals_refused(bad: str, how: str, tmp_path: Path) -> None:
    """Found by fuzzing the pickled internals of pandas, SciPy and torch objects (one field
    changed, loaded and used in child processes): a Series whose RangeIndex outgrew its values
    crashed loc/astype (exit 139), a DatetimeIndex whose values were recast to int32 crashed
    repr (exit 139), a LIL matrix with a column index of -1 aborted multiply (free(): invalid
    size), a DIA offset of -2**31 crashed A @ x, an LSTM weight cut to no rows crashed forward
    (exit 139), an LSTM of hidden size 0 and an attention of 0 heads divided by zero (SIGFPE)."""
    make, message = BAD_INTERNALS[bad]
    p = _dump_any(make(), how, tmp_path)
    with pytest.raises(amber.CorruptFileError, match=message) as info:
        amber.load(p, trusted=["torch.nn.functional.relu"])
    assert str(p) in str(info.value)


@pytest.mark.parametrize("how", ["pkl", "joblib", "pt"])
def test_good_internals_load(how: str, tmp_path: Path) -> None:
    import warnings

    import pandas as pd
    import scipy.sparse as sparse

    n = 6
    frames = [
        pd.DataFrame({"i": np.arange(n), "f": np.arange(n) / 3, "b": np.arange(n) % 2 == 0, "I": pd.array([1, None] * 3, dtype="Int64"),
                      "s": pd.array(["a", None, "c"] * 2, dtype="string"), "c": pd.Categorical(list("xyzxyz")),
                      "d": pd.date_range("2024", periods=n), "tz": pd.date_range("2024", periods=n, tz="Europe/Berlin", unit="s"),
                      "td": pd.to_timedelta(np.arange(n), unit="s"), "p": pd.period_range("2024-01", periods=n, freq="M"),
                      "iv": pd.interval_range(0, n), "sp": pd.arrays.SparseArray([0, 1.5] * 3)},
                     index=pd.MultiIndex.from_product([["a", "b"], [1, 2, 3]])),
        pd.DataFrame(np.ones((3, 4)), columns=list("aabc")),
        pd.DataFrame(),
        pd.Series([], dtype=float),
        pd.Series(pd.date_range("2024", periods=3, freq="h", unit="ms"), index=pd.RangeIndex(2, 8, 2)),
        pd.DatetimeIndex(["2024-01-01", None]),
        pd.to_timedelta([1, 2], unit="D"),
        pd.PeriodIndex(["2024-01", "2024-03"], freq="M"),
    ]
    for obj in frames:
        again = amber.load(_dump_any(obj, how, tmp_path))
        assert repr(again) == repr(obj)
    lil = sparse.lil_array(sparse.random(6, 5, density=0.4, random_state=0))
    mats = [lil, sparse.lil_matrix((3, 0)), sparse.dia_matrix((np.ones((2, 5)), [-4, 7]), shape=(5, 5))]
    for m in mats:
        again = amber.load(_dump_any(m, how, tmp_path))
        np.testing.assert_array_equal(again.toarray(), m.toarray())
    torch.manual_seed(0)
    mods: list[tuple[Any, tuple[Any, ...]]] = [
        (torch.nn.LSTM(4, 5, num_layers=2, batch_first=True), (torch.randn(2, 3, 4),)),
        (torch.nn.LSTM(4, 6, bidirectional=True, proj_size=3, bias=False), (torch.randn(3, 2, 4),)),
        (torch.nn.GRU(4, 5, bidirectional=True), (torch.randn(3, 2, 4),)),
        (torch.nn.RNN(4, 5, nonlinearity="relu", bias=False, num_layers=3), (torch.randn(3, 2, 4),)),
        (torch.nn.MultiheadAttention(8, 2, kdim=6, vdim=5, batch_first=True), (torch.randn(2, 3, 8), torch.randn(2, 4, 6), torch.randn(2, 4, 5))),
        (torch.nn.TransformerDecoderLayer(8, 2, dim_feedforward=16, dropout=0.0), (torch.randn(3, 2, 8), torch.randn(4, 2, 8))),
    ]
    for mod, args in mods:
        mod.eval()
        again = amber.load(_dump_any(mod, how, tmp_path), trusted=["torch.nn.functional.relu"])
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (LSTM projections warn that oneDNN lacks them)
            out, want = again(*args), mod(*args)
        out, want = (out[0], want[0]) if isinstance(out, tuple) else (out, want)
        torch.testing.assert_close(out, want, rtol=0, atol=0)


# --- NumPy random generators: the state setter copies a file's fields into C unchecked --------

def _with_state(bg: Any, **fields: Any) -> Any:
    """``bg`` given a state with ``fields`` changed, through numpy's own setter (as unpickling
    does); nothing draws from it here."""
    state = bg.state
    for k, v in fields.items():
        (state["state"] if k in state["state"] else state)[k] = v
    bg.state = state
    return bg


def _seed_sequence(pool_size: int | None = None, entropy: Any = None) -> Any:
    ss = np.random.SeedSequence(1)
    fields = (ss.entropy if entropy is None else entropy, 0, ss.pool, ss.pool_size if pool_size is None else pool_size, ())
    ss.__setstate__(fields)
    return ss


def _bad_random() -> dict[str, tuple[Callable[[], Any], str, str]]:
    from scipy import stats

    gen, rs = np.random.Generator, np.random.RandomState
    mt = np.random.MT19937
    draw = "drawing from it would read outside its memory or never end"

    def mt_gen(**fields: Any) -> Callable[[], Any]:
        return lambda: gen(_with_state(mt(1), **fields))

    def rs_state(**fields: Any) -> Callable[[], Any]:
        def build() -> Any:
            r = rs(5)
            state = r.get_state(legacy=False)
            r.set_state({**state, **fields})
            return r
        return build

    def with_seed_seq(ss: Callable[[], Any]) -> Callable[[], Any]:
        def build() -> Any:
            bg = np.random.SFC64(3)
            fn, args, (state, _) = bg.__reduce__()
            bg.__setstate__((state, ss()))
            return gen(bg)
        return build

    return {
        "MT19937 position 10**6": (mt_gen(pos=10**6), r"NumPy MT19937 bit generator is malformed: its position 1000000 is outside 0..624", draw),
        "MT19937 position -2**31": (mt_gen(pos=-2**31), r"its position -2147483648 is outside 0..624", draw),
        "MT19937 key of zeros": (mt_gen(key=np.zeros(624, np.uint32)), r"its key is all zero", draw),
        "MT19937 key of zeros but the unused low bits": (
            mt_gen(key=np.r_[np.uint32(0x7FFFFFFF), np.zeros(623, np.uint32)]), r"its key is all zero", draw),
        "RandomState position 10**6": (lambda: rs(_with_state(mt(1), pos=10**6)), r"MT19937 bit generator is malformed: its position 1000000", draw),
        "RandomState cached normal of inf": (rs_state(has_gauss=1, gauss=float("inf")),
                                                r"NumPy RandomState is malformed: its cached normal draw \(1, inf\)", "non-finite"),
        "frozen multivariate normal holding a RandomState at -2**31": (
            lambda: stats.multivariate_normal(np.zeros(2), np.eye(2), seed=rs(_with_state(mt(1), pos=-2**31))),
            r"MT19937 bit generator is malformed: its position -2147483648", draw),
        "frozen multivariate t holding a RandomState at 10**6": (
            lambda: stats.multivariate_t(np.zeros(2), np.eye(2), seed=rs(_with_state(mt(1), pos=10**6))),
            r"MT19937 bit generator is malformed: its position 1000000", draw),
        "PCG64 of an even increment": (lambda: gen(_with_state(np.random.PCG64(0), inc=0, state=0)),
                                       r"NumPy PCG64 bit generator is malformed: its increment 0 is not odd", draw),
        "PCG64DXSM of an even increment": (lambda: gen(_with_state(np.random.PCG64DXSM(0), inc=2)), r"PCG64DXSM .* increment 2 is not odd", draw),
        "Philox buffer position -2**31": (lambda: gen(_with_state(np.random.Philox(2), buffer_pos=-2**31)),
                                          r"NumPy Philox bit generator is malformed: its buffer position -2147483648 is outside 0..4", draw),
        "SFC64 has_uint32 of 7": (lambda: gen(_with_state(np.random.SFC64(3), has_uint32=7)), r"its has_uint32 flag 7 is not 0 or 1", draw),
        "generator whose SeedSequence has a pool of 10**6": (
            with_seed_seq(lambda: _seed_sequence(pool_size=10**6)),
            r"NumPy SeedSequence is malformed: its pool size 1000000 is outside 4..1024", "spawning from it would never end"),
        "SeedSequence pool of 10**6": (lambda: _seed_sequence(pool_size=10**6), r"its pool size 1000000 is outside 4..1024", "spawning"),
        "SeedSequence pool of 0": (lambda: _seed_sequence(pool_size=0), r"its pool size 0 is outside", "spawning"),
        "SeedSequence of 10**6 entropy words": (lambda: _seed_sequence(entropy=[2**31] * 10**6),
                                                r"its entropy and spawn key make 1000000 words", "spawning"),
        "SeedSequence of negative entropy": (lambda: _seed_sequence(entropy=[1, -1]), r"not integers of 0 or more", "spawning"),
    }


BAD_RANDOM = _bad_random()


@pytest.mark.parametrize("how", ["amber", "pkl", "joblib"])
@pytest.mark.parametrize("bad", list(BAD_RANDOM), ids=list(BAD_RANDOM))
def test_malformed_random_state_refused(bad: str, how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        request: pytest.FixtureRequest) -> None:
    """Found by fuzzing pickled NumPy generators (one field changed, loaded and used in child
    processes): an MT19937 position of 10**6 or -2**31 crashed drawing (SIGSEGV: in a Generator,
    a RandomState, and a RandomState a frozen SciPy distribution keeps), a key of zeros and a
    SeedSequence pool of 10**6 words hung (normal, spawn); a Philox buffer position of -2**31
    crashed drawing too (by hand)."""
    make, message, consequence = BAD_RANDOM[bad]
    if how == "amber" and bad.startswith("generator whose SeedSequence"):
        pytest.skip("amber's own format keeps a generator's state, not its seed sequence")
    _assert_refused(make(), how, tmp_path, monkeypatch, message, consequence)


def _good_random() -> list[Any]:
    from scipy import stats
    from sklearn.ensemble import RandomForestClassifier

    rs, gen = np.random.RandomState, np.random.Generator
    drawn_rs = rs(7)
    drawn_rs.normal()  # (a cached normal draw)
    used = np.random.default_rng(3)
    used.random(3, dtype=np.float32)  # (a cached 32-bit half)
    mt_used = gen(np.random.MT19937(9))
    mt_used.random(700)  # (past a regeneration of its key)
    philox = gen(np.random.Philox(2))
    philox.integers(0, 10, 3)
    spawned = np.random.default_rng(5).spawn(2)[1]
    X, y = _xy()
    forest = RandomForestClassifier(3, random_state=rs(0)).fit(X, y)
    return [
        np.random.default_rng(0), np.random.default_rng(), used, drawn_rs, rs(5), rs(), mt_used, philox, spawned,
        gen(np.random.MT19937(1)), gen(np.random.PCG64DXSM(4)), gen(np.random.SFC64(3)), gen(np.random.SFC64()),
        np.random.default_rng(np.random.SeedSequence(11, pool_size=8)), np.random.default_rng([1, 2, 2**70]),
        np.random.SeedSequence(np.arange(100, dtype=np.uint64), spawn_key=(3, 4)),
        stats.multivariate_normal(np.zeros(2), np.eye(2), seed=rs(3)), stats.multivariate_t(np.zeros(2), np.eye(2), seed=4),
        forest,
    ]


def _draws(obj: Any, spawn: bool = True) -> Any:
    if isinstance(obj, np.random.Generator):
        spawned = obj.spawn(1)[0].random(2) if spawn else ()
        return obj.random(5), obj.normal(size=3), obj.integers(0, 10, 5), spawned, obj.random(3, dtype=np.float32)
    if isinstance(obj, np.random.RandomState):
        return obj.rand(5), obj.randn(3), obj.randint(0, 10, 5)
    if isinstance(obj, np.random.SeedSequence):
        return obj.generate_state(4), obj.spawn(2)[1].generate_state(2)
    if hasattr(obj, "estimators_"):
        return obj.random_state.rand(3)
    return obj.rvs(size=3)


@pytest.mark.parametrize("how", ["amber", "pkl", "joblib"])
def test_good_random_generators_load(how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for obj in _good_random():
        again = _load(_dumped(obj, how, tmp_path, monkeypatch), how)
        spawn = how != "amber"  # (amber's own format keeps a generator's state, not its seed sequence)
        got, want = _draws(again, spawn), _draws(obj, spawn)
        for a, b in zip(got, want) if isinstance(got, tuple) else [(got, want)]:
            np.testing.assert_array_equal(a, b)


# --- pandas MultiIndex: unpickled without verify_integrity, its codes index its levels unchecked --

def _multi_index(edit: Callable[[list[Any], list[np.ndarray]], None]) -> Any:
    """A 3 x 4 MultiIndex whose levels and codes ``edit`` changed, built as unpickling builds
    it (``verify_integrity=False``); nothing reads its values here."""
    import pandas as pd

    mi = pd.MultiIndex.from_product([["a", "b", "c"], [1, 2, 3, 4]], names=["l", "m"])
    levels, codes = list(mi.levels), [c.copy() for c in mi.codes]
    edit(levels, codes)
    return pd.MultiIndex(levels=levels, codes=codes, names=mi.names, verify_integrity=False)


def _mi_code(i: int, j: int, v: int) -> Callable[[list[Any], list[np.ndarray]], None]:
    def edit(levels: list[Any], codes: list[np.ndarray]) -> None:
        codes[i][j] = v
    return edit


def _bad_multi_index() -> dict[str, tuple[Callable[[], Any], str]]:
    import pandas as pd

    def frame(mi: Callable[[], Any], where: str) -> Callable[[], Any]:
        def build() -> Any:
            df = pd.DataFrame(np.arange(24.0).reshape(12, 2), columns=["x", "y"])
            if where == "rows":
                df.index = mi()
                return df
            return pd.DataFrame(np.arange(24.0).reshape(2, 12), columns=mi())
        return build

    past = _mi_code(0, 5, 127)
    return {
        "code past its level": (lambda: _multi_index(past), r"its codes for level 0 run from 0 to 127, outside -1..2"),
        "code of -128": (lambda: _multi_index(_mi_code(1, 0, -128)), r"its codes for level 1 run from -128 to 3, outside -1..3"),
        "code of -2": (lambda: _multi_index(_mi_code(0, 11, -2)), r"its codes for level 0 run from -2 to 2, outside -1..2"),
        "levels reversed": (lambda: _multi_index(lambda lv, c: lv.reverse()), r"its codes for level 1 run from 0 to 3, outside -1..2"),
        "codes cut short": (lambda: _multi_index(lambda lv, c: c.__setitem__(1, c[1][:5])), r"its codes for level 1 hold 5 entries, not 12"),
        "frame rows with a code past its level": (frame(lambda: _multi_index(past), "rows"), r"outside -1..2"),
        "frame columns with a code past its level": (frame(lambda: _multi_index(past), "columns"), r"outside -1..2"),
        "series index with the levels reversed": (
            lambda: pd.Series(np.arange(12), index=_multi_index(lambda lv, c: lv.reverse())), r"outside -1..2"),
    }


BAD_MULTI_INDEX = _bad_multi_index()


@pytest.mark.parametrize("how", ["amber", "pkl", "joblib"])
@pytest.mark.parametrize("bad", list(BAD_MULTI_INDEX), ids=list(BAD_MULTI_INDEX))
def test_malformed_multi_index_refused(bad: str, how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by fuzzing pickled pandas objects (one field changed, loaded and used in child
    processes): a MultiIndex code past its level or of -128 (int8 codes), or its levels reversed under
    their codes, crashed repr and take (SIGSEGV). amber's own format builds it with
    ``verify_integrity=True``, which refuses the same files in pandas' words."""
    make, message = BAD_MULTI_INDEX[bad]
    p = _dumped(make(), how, tmp_path, monkeypatch)
    with pytest.raises(amber.CorruptFileError, match=None if how == "amber" else message) as info:
        _load(p, how)
    assert str(p) in str(info.value)
    if how != "amber":
        assert "pandas MultiIndex is malformed" in str(info.value) and "reading its values would read outside its memory" in str(info.value)


@pytest.mark.parametrize("how", ["amber", "pkl", "joblib"])
def test_good_multi_indexes_load(how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pandas as pd

    mi = pd.MultiIndex.from_product([["a", "b", "c"], [1, 2, 3, 4]], names=["l", "m"])
    missing = pd.MultiIndex.from_arrays([["a", None, "b", "a"], [1.0, 2.0, np.nan, 1.0], pd.date_range("2024", periods=4)])
    wide = pd.MultiIndex.from_arrays([np.arange(300) % 200, np.arange(300)])  # (int16 codes)
    objs = [
        mi, missing, wide, mi[:0], mi[::-3], pd.MultiIndex.from_tuples([("x", 1)]),
        pd.DataFrame({"v": np.arange(12.0), "s": list("abcdefghijkl")}, index=mi),
        pd.DataFrame(np.ones((2, 4)), columns=missing), pd.Series(np.arange(300), index=wide),
        pd.DataFrame({"k": [1, 1, 2], "j": list("xyx"), "v": [1.0, 2.0, 3.0]}).groupby(["k", "j"]).sum().unstack(),
    ]
    for obj in objs:
        again = _load(_dumped(obj, how, tmp_path, monkeypatch), how)
        assert repr(again) == repr(obj)
        if isinstance(obj, pd.MultiIndex):
            assert again.equals(obj) and list(again.take([0, -1])) == list(obj.take([0, -1])) if len(obj) else True


# --- SciPy gaussian_kde: compiled kernels size their loops by d and n -----------------------

def _kde_edited(weights: bool = False, **fields: Any) -> Callable[[], Any]:
    def build() -> Any:
        from scipy import stats

        X = np.random.default_rng(0).normal(size=(3, 40))
        kde = stats.gaussian_kde(X[0], weights=np.abs(X[1]) + 0.1) if weights else stats.gaussian_kde(X)
        for k, v in fields.items():
            kde.__dict__[k] = v(kde.__dict__[k]) if callable(v) else v
        return kde
    return build


BAD_KDE: dict[str, tuple[Callable[[], Any], str]] = {
    "cho_cov flattened": (_kde_edited(cho_cov=lambda a: a.ravel().copy()), r"its cho_cov of shape \(9,\) is not 3 x 3"),
    "1-d cho_cov flattened": (_kde_edited(True, cho_cov=lambda a: a.ravel().copy()), r"its cho_cov of shape \(1,\) is not 1 x 1"),
    "covariance of one row": (_kde_edited(covariance=lambda a: a[:1].copy()), r"its covariance of shape \(1, 3\) is not 3 x 3"),
    "weights cut short": (_kde_edited(True, _weights=lambda a: a[:1].copy()), r"its _weights of shape \(1,\) is not 40 real numbers"),
    "d of 10**6": (_kde_edited(True, d=10**6), r"its dataset of shape \(1, 40\) is not 1000000 x 40"),
    "d of -2**31": (_kde_edited(d=-2**31), r"its dimension -2147483648 and size 40 are not counts"),
    "n past the dataset": (_kde_edited(n=41), r"its dataset of shape \(3, 40\) is not 3 x 41"),
    "infinite covariance": (_kde_edited(covariance=lambda a: a * np.inf), r"its covariance holds values that are not finite"),
    "NaN in the dataset": (_kde_edited(dataset=lambda a: np.where(a > 1, np.nan, a)), r"its dataset holds values that are not finite"),
    "infinite factor": (_kde_edited(factor=np.inf), r"its factor inf is not a finite number"),
    "inv_cov of the wrong shape": (_kde_edited(inv_cov=np.eye(2)), r"its inv_cov of shape \(2, 2\) is not 3 x 3"),
}


@pytest.mark.parametrize("how", ["amber", "pkl", "joblib"])
@pytest.mark.parametrize("bad", list(BAD_KDE), ids=list(BAD_KDE))
def test_malformed_kde_refused(bad: str, how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by fuzzing pickled SciPy objects (one field changed, loaded and used in child
    processes): a gaussian_kde whose cho_cov was flattened crashed evaluate (SIGSEGV), weights
    cut short gave sums of other memory, an infinite covariance and a d of 10**6 hung."""
    make, message = BAD_KDE[bad]
    _assert_refused(make(), how, tmp_path, monkeypatch, message, "evaluating it would read outside its memory or never end")


@pytest.mark.parametrize("how", ["amber", "pkl", "joblib"])
def test_good_kdes_load(how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from scipy import stats

    rng = np.random.default_rng(1)
    X = rng.normal(size=(3, 50))
    kdes = [  # ("scott" only: another bandwidth keeps a lambda or bound method, which amber does not load)
        stats.gaussian_kde(X), stats.gaussian_kde(X[0]), stats.gaussian_kde(X[:2]),
        stats.gaussian_kde(X[0], weights=np.abs(X[1]) + 0.1), stats.gaussian_kde(X[:2], weights=np.arange(1, 51)),
        stats.gaussian_kde(np.arange(10)), stats.gaussian_kde(X.astype(np.float32)),
    ]
    for kde in kdes:
        again = _load(_dumped(kde, how, tmp_path, monkeypatch), how)
        pts = np.linspace(-1, 1, 5 * kde.d).reshape(kde.d, 5)
        for f in ("evaluate", "logpdf"):
            np.testing.assert_array_equal(getattr(again, f)(pts), getattr(kde, f)(pts))
        np.testing.assert_array_equal(again.resample(4, seed=0), kde.resample(4, seed=0))
        assert again.integrate_gaussian(np.zeros(kde.d), np.eye(kde.d)) == kde.integrate_gaussian(np.zeros(kde.d), np.eye(kde.d))
        if kde.d == 1:  # (integrate_box of more dimensions is a Monte Carlo estimate)
            assert again.integrate_box_1d(-1, 1) == kde.integrate_box_1d(-1, 1)


# --- SciPy QMC engines: compiled draws index their tables by the engine's own counts ---------

def _qmc(kind: str) -> Callable[[], Any]:
    def build() -> Any:
        from scipy.stats import qmc

        return {
            "sobol": lambda: qmc.Sobol(3, rng=0),
            "sobol-plain": lambda: qmc.Sobol(3, scramble=False, rng=0),
            "halton": lambda: qmc.Halton(3, rng=0),
            "multinomial": lambda: qmc.MultinomialQMC([0.2, 0.3, 0.5], 10, rng=0),
        }[kind]()
    return build


BAD_QMC: dict[str, tuple[Callable[[], Any], str]] = {
    # (each read other memory in a fuzzing run: draws of 3.9 and more from a sampler of [0, 1))
    "sobol _sv of one row": (_edited(_qmc("sobol"), _sv=lambda a: a[:1].copy()), r"its _sv of shape \(1, 30\) is not 3 x 30 uint32"),
    "sobol _sv empty": (_edited(_qmc("sobol-plain"), _sv=lambda a: a[:0].copy()), r"its _sv of shape \(0, 30\) is not 3 x 30"),
    "sobol d past _sv": (_edited(_qmc("sobol"), d=500), r"its _sv of shape \(3, 30\) is not 500 x 30"),
    "sobol _quasi empty": (_edited(_qmc("sobol"), _quasi=lambda a: a[:0].copy()), r"its _quasi of shape \(0,\) is not 3 uint32"),
    "sobol _shift of one": (_edited(_qmc("sobol-plain"), _shift=lambda a: a[:1].copy()), r"its _shift of shape \(1,\) is not 3"),
    "sobol bits past _sv": (_edited(_qmc("sobol"), bits=31, maxn=2**31), r"its _sv of shape \(3, 30\) is not 3 x 31"),
    "sobol maxn past bits": (_edited(_qmc("sobol"), maxn=2**40), r"bits 30 and maximum of points 1099511627776 do not fit"),
    "sobol drawn past maxn": (_edited(_qmc("sobol"), num_generated=2**31), r"its count of points drawn, 2147483648, is not from 0"),
    "sobol 64-bit type for 30 bits": (_edited(_qmc("sobol"), dtype_i=lambda _: np.uint64), r"its integer type .* is not uint32"),
    "halton drawn negative": (_edited(_qmc("halton"), num_generated=-1), r"its count of points drawn, -1, is not 0 or more"),
    "halton drawn -2**31": (_edited(_qmc("halton"), num_generated=-2**31), r"its count of points drawn, -2147483648"),
    "halton narrow permutations": (_edited(_qmc("halton"), _permutations=lambda ps: [p[:, :1].copy() for p in ps]),
                                   r"a permutation table of shape \(\d+, 1\) is not 2-d integers of 2 columns or more"),
    "halton base of 1": (_edited(_qmc("halton"), base=[1, 3, 5]), r"its bases \[1, 3, 5\] are not 3 integers of 2 or more"),
    "halton fewer permutations": (_edited(_qmc("halton"), _permutations=lambda ps: ps[:1]), r"not a list of 3"),
    # (heap corruption: "corrupted size vs. prev_size", abort)
    "multinomial no probabilities": (_edited(_qmc("multinomial"), pvals=np.zeros(0)),
                                     r"its probabilities of shape \(0,\) are not one or more, in 1-d"),
}


@pytest.mark.parametrize("how", ["amber", "pkl", "joblib"])
@pytest.mark.parametrize("bad", list(BAD_QMC), ids=list(BAD_QMC))
def test_malformed_qmc_engines_refused(bad: str, how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by fuzzing SciPy's QMC engines (one field changed, loaded and drawn from in child
    processes): Sobol's and Halton's compiled draws read other memory, and MultinomialQMC
    with no probabilities wrote before its array."""
    make, message = BAD_QMC[bad]
    consequence = "would write outside its memory" if "multinomial" in bad else "would read outside its memory"
    _assert_refused(make(), how, tmp_path, monkeypatch, message, consequence)


@pytest.mark.parametrize("how", ["amber", "pkl", "joblib"])
def test_good_qmc_engines_load(how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from scipy.stats import qmc

    engines = [
        qmc.Sobol(3, rng=0), qmc.Sobol(2, scramble=False, rng=1), qmc.Sobol(1, bits=40, rng=2), qmc.Halton(3, rng=0),
        qmc.Halton(2, scramble=False, rng=1),  # (not LatinHypercube: it keeps a bound method of itself)
        qmc.MultinomialQMC([0.2, 0.3, 0.5], 16, rng=0), qmc.MultivariateNormalQMC([0.0, 1.0], [[1.0, 0.5], [0.5, 1.0]], rng=0),
    ]
    engines[0].random(8)  # (part-way through the sequence)
    engines[3].random(5)
    for e in engines:
        again = _load(_dumped(e, how, tmp_path, monkeypatch), how)
        np.testing.assert_array_equal(again.random(8), e.random(8))


# --- found by fuzzing LightGBM/XGBoost wrappers and torch modules (one field changed, in child processes) --

def _fold(cls: type, **fields: Any) -> Callable[[], Any]:
    def build() -> Any:
        m = cls(output_size=(4, 4), kernel_size=2) if cls is torch.nn.Fold else cls(kernel_size=2)
        for k, v in fields.items():
            setattr(m, k, v)
        return m
    return build


BAD_FOLDS = {
    "Fold padding of 2**31": (_fold(torch.nn.Fold, padding=2**31), r"PyTorch Fold is malformed: its padding 2147483648 is outside 0\.\.2147483647"),
    "Fold padding of 2**32 in a pair": (_fold(torch.nn.Fold, padding=(0, 2**32)), r"its padding 4294967296 is outside 0\.\.2147483647"),
    "Fold output size of 0": (_fold(torch.nn.Fold, output_size=(0, 4)), r"its output_size 0 is outside 1\.\."),
    "Unfold dilation of 2**63-1": (_fold(torch.nn.Unfold, dilation=2**63 - 1), r"PyTorch Unfold is malformed: its dilation 9223372036854775807 is outside 1\.\."),
    "Unfold kernel size of 2**63-1": (_fold(torch.nn.Unfold, kernel_size=2**63 - 1), r"its kernel_size 9223372036854775807 is outside 1\.\."),
    "Unfold padding of 2**62": (_fold(torch.nn.Unfold, padding=2**62), r"its padding 4611686018427387904 is outside 0\.\."),
    "Unfold stride of 0": (_fold(torch.nn.Unfold, stride=0), r"its stride 0 is outside 1\.\."),
    "Unfold stride of a float": (_fold(torch.nn.Unfold, stride=1.5), r"its stride 1\.5 is not an integer"),
}


@pytest.mark.parametrize("how", ["amber", "pkl", "pkl0", "joblib", "pt"])
@pytest.mark.parametrize("bad", list(BAD_FOLDS), ids=list(BAD_FOLDS))
def test_malformed_fold_refused(bad: str, how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fold and Unfold compute im2col offsets from their sizes in overflowing integer
    arithmetic: a Fold padding of 2**31 crashed forward (SIGSEGV), an Unfold dilation of
    2**63-1 returned values that changed from run to run (read outside its input)."""
    make, message = BAD_FOLDS[bad]
    _assert_refused(make(), how, tmp_path, monkeypatch, message, "forward would read outside its memory")


@pytest.mark.parametrize("how", ["amber", "pkl", "joblib", "pt"])
def test_good_folds_load(how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    mods: list[tuple[Any, torch.Tensor]] = [
        (torch.nn.Unfold(kernel_size=2), torch.randn(1, 2, 4, 4)),
        (torch.nn.Unfold(kernel_size=(2, 3), dilation=(1, 2), padding=1, stride=(2, 1)), torch.randn(2, 3, 5, 6)),
        (torch.nn.Unfold(kernel_size=[3, 3], padding=[0, 1]), torch.randn(1, 1, 4, 4)),
        (torch.nn.Fold(output_size=(4, 4), kernel_size=2), torch.randn(1, 8, 9)),
        (torch.nn.Fold(output_size=[5, 6], kernel_size=(2, 3), dilation=1, padding=(1, 0), stride=(2, 1)), torch.randn(2, 12, 12)),
        (torch.nn.Sequential(torch.nn.Unfold(2), torch.nn.Fold((4, 4), 2)), torch.randn(1, 2, 4, 4)),
    ]
    for mod, x in mods:
        again = _load(_dumped(mod, how, tmp_path, monkeypatch), how)
        torch.testing.assert_close(again(x), mod(x), rtol=0, atol=0)


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _xgb_early_stopped() -> Any:
    """An XGBClassifier early-stopped on a validation set: its booster keeps best_iteration."""
    import xgboost as xgb

    rng = np.random.default_rng(13)
    X = rng.normal(size=(120, 4))
    y = (X[:, 0] > 0).astype(int) ^ (rng.random(120) < 0.3)
    model = xgb.XGBClassifier(n_estimators=40, max_depth=3, n_jobs=1, early_stopping_rounds=2, learning_rate=1.0)
    model.fit(X[:80], y[:80], eval_set=[(X[80:], y[80:])], verbose=False)
    assert model.get_booster().attr("best_iteration") is not None
    return model


def _lgbm_edited(kind: str = "classifier", **edits: Any) -> Callable[[], Any]:
    """A maker of a small fitted LightGBM wrapper with attributes set (``_other_params`` merged)."""
    def build() -> Any:
        import warnings

        lgb = pytest.importorskip("lightgbm")
        X = np.random.default_rng(11).normal(size=(60, 4))
        y = np.arange(60) % 3 if kind == "classifier" else X[:, 0]
        cls = lgb.LGBMClassifier if kind == "classifier" else lgb.LGBMRegressor
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = cls(n_estimators=3, num_leaves=4, verbose=-1, n_jobs=1).fit(X, y)
        for k, v in edits.items():
            if k == "_other_params":
                m._other_params.update(v)
            else:
                setattr(m, k, v)
        return m
    return build


def _xgb_best(kind: str, best: str) -> Callable[[], Any]:
    """A maker of a fitted XGBoost wrapper (5 rounds) whose booster's best_iteration is ``best``."""
    def build() -> Any:
        model = copy.deepcopy(_xgb(kind)[0])
        model.get_booster().set_attr(best_iteration=best)
        return model
    return build


_THREADS = "predict would start more threads than the process can run"
_READS = "predict would read outside its memory"
BAD_WRAPPERS = {
    "LGBMClassifier of 10**5 threads": (_lgbm_edited(n_jobs=10**5), r"LightGBM LGBMClassifier model is malformed: its number of threads \(n_jobs\) 100000 is more than 4096", _THREADS),
    "LGBMRegressor of 2**31 threads": (_lgbm_edited("regressor", n_jobs=2**31), r"LightGBM LGBMRegressor model is malformed: its number of threads \(n_jobs\) 2147483648", _THREADS),
    "LGBMClassifier of 1e5 threads": (_lgbm_edited(n_jobs=1e5), r"its number of threads \(n_jobs\) 100000\.0 is not an integer", _THREADS),
    "LGBMClassifier num_threads of 10**5": (_lgbm_edited(_other_params={"num_threads": 10**5}), r"its number of threads \(num_threads\) 100000 is more", _THREADS),
    "LGBMRegressor nthread alias of 10**5": (_lgbm_edited("regressor", _other_params={"nthread": 10**5}), r"its number of threads \(nthread\) 100000 is more", _THREADS),
    "XGBClassifier best_iteration of 2**31": (_xgb_best("classifier", str(2**31)), r"XGBoost XGBClassifier model is malformed: its booster's best_iteration '2147483648' is not one of its 5 boosted rounds", _READS),
    "XGBRegressor best_iteration of 2**31-1": (_xgb_best("regressor", str(2**31 - 1)), r"XGBoost XGBRegressor model is malformed: its booster's best_iteration '2147483647' is not one", _READS),
    "XGBClassifier best_iteration past its rounds": (_xgb_best("classifier", "5"), r"its booster's best_iteration '5' is not one of its 5 boosted rounds", _READS),
}


@pytest.mark.parametrize("how", ["amber", "pkl", "pkl0", "joblib"])
@pytest.mark.parametrize("bad", list(BAD_WRAPPERS), ids=list(BAD_WRAPPERS))
def test_malformed_gbm_wrappers_refused(bad: str, how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """LightGBM's scikit-learn wrappers pass n_jobs (or a num_threads alias among their other
    parameters) to every predict as the booster's OpenMP thread count: 10**5 crashed predict
    (SIGSEGV). XGBoost's predict with iteration_range (0, best_iteration + 1), a 32-bit end:
    a best_iteration of 2**31-1 or 2**31 wrapped and crashed predict (SIGSEGV)."""
    make, message, consequence = BAD_WRAPPERS[bad]
    _assert_refused(make(), how, tmp_path, monkeypatch, message, consequence)


@pytest.mark.parametrize("how", ["amber", "pkl", "joblib"])
def test_good_gbm_wrappers_load(how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import warnings

    X = np.random.default_rng(12).normal(size=(40, 5))
    models = [_lgbm_edited()(), _lgbm_edited("regressor")(), _lgbm_edited(n_jobs=None)(), _lgbm_edited(n_jobs=-1)(),
              _lgbm_edited(n_jobs=8)(), _lgbm_edited(_other_params={"num_threads": 2})(), _lgbm_edited(n_jobs=np.int64(2))()]
    if _has("xgboost"):
        models += [_xgb("classifier")[0], _xgb("regressor")[0], _xgb_best("classifier", "0")(), _xgb_best("regressor", "4")(),
                   _xgb_early_stopped()]
    for model in models:
        again = _load(_dumped(model, how, tmp_path, monkeypatch), how)
        x = X[:, :model.n_features_in_]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for method in ("predict", "predict_proba", "apply"):
                if hasattr(model, method):
                    np.testing.assert_array_equal(getattr(again, method)(x), getattr(model, method)(x))


def _attention_with(make: Callable[[], Any], where: str, dtype: torch.dtype) -> Callable[[], Any]:
    """A maker of ``make()`` whose attention tensor ``where`` (a dotted path) is cast to ``dtype``."""
    def build() -> Any:
        m = make()
        owner, _, name = where.rpartition(".")
        mod = m.get_submodule(owner)
        with torch.no_grad():
            t = getattr(mod, name).detach().normal_()
        setattr(mod, name, torch.nn.Parameter(t.to(dtype), requires_grad=False))
        return m.eval()
    return build


def _encoder_layer() -> Any:
    return torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)


BAD_ATTENTION = {
    "encoder layer attention bias of float16": (_attention_with(_encoder_layer, "self_attn.in_proj_bias", torch.float16),
                                                r"PyTorch MultiheadAttention is malformed: its in_proj_bias is torch\.float16, its in_proj_weight torch\.float32"),
    "attention bias of float64": (_attention_with(lambda: torch.nn.Sequential(torch.nn.MultiheadAttention(8, 2, batch_first=True)), "0.in_proj_bias", torch.float64),
                                  r"its in_proj_bias is torch\.float64, its in_proj_weight torch\.float32"),
    "attention output bias of int64": (_attention_with(_encoder_layer, "self_attn.out_proj.bias", torch.int64),
                                       r"its out_proj\.bias is torch\.int64, its in_proj_weight torch\.float32"),
}


@pytest.mark.parametrize("how", ["amber", "pkl", "pkl0", "joblib", "pt"])
@pytest.mark.parametrize("bad", list(BAD_ATTENTION), ids=list(BAD_ATTENTION))
def test_attention_weights_of_several_dtypes_refused(bad: str, how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path of a batch-first TransformerEncoderLayer (and MultiheadAttention) reads
    in_proj_bias as float32 whatever its dtype: a float16 bias was read past its end (outputs
    of NaN or 1e12 changing from run to run), a float64 or int64 one as garbage."""
    make, message = BAD_ATTENTION[bad]
    p = _dumped(make(), how, tmp_path, monkeypatch)
    with pytest.raises(amber.CorruptFileError, match=message) as info:
        _load_relu(p, how)
    assert str(p) in str(info.value) and "forward would read outside its memory" in str(info.value)


def _load_relu(p: Path, how: str) -> Any:
    """``_load``, trusting the activation a TransformerEncoderLayer keeps."""
    out = amber.load(p, trusted=["torch.nn.functional.relu"])
    return out["model"] if how == "pt" else out


@pytest.mark.parametrize("how", ["amber", "pkl", "joblib", "pt"])
def test_good_attention_of_any_one_dtype_loads(how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8)
    mods: list[tuple[Any, tuple[Any, ...]]] = [
        (_encoder_layer().eval(), (x,)),
        (_encoder_layer().double().eval(), (x.double(),)),
        (torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True, norm_first=True).eval(), (x,)),
        (torch.nn.MultiheadAttention(8, 2, batch_first=True, add_bias_kv=True).eval(), (x, x, x)),
        (torch.nn.MultiheadAttention(8, 2, kdim=6, vdim=5, bias=False).eval(), (x, torch.randn(4, 3, 6), torch.randn(4, 3, 5))),
        (torch.nn.MultiheadAttention(8, 2, batch_first=True).double().eval(), (x.double(),) * 3),
    ]
    for mod, args in mods:
        again = _load_relu(_dumped(mod, how, tmp_path, monkeypatch), how)
        with torch.no_grad():
            out, want = again(*args), mod(*args)
        out, want = (out[0], want[0]) if isinstance(out, tuple) else (out, want)
        torch.testing.assert_close(out, want, rtol=0, atol=0)
    half = torch.nn.MultiheadAttention(8, 2, batch_first=True).half()
    again = _load(_dumped(half, how, tmp_path, monkeypatch), how)
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), half.state_dict().values()))


def test_tree_max_depth_beyond_its_nodes_refused_in_pickles(tmp_path: Path) -> None:
    """A pickled tree whose max_depth exceeds what its nodes can reach: decision_path sized
    a buffer rows x (1 + max_depth) in C integers, and 2**62 - 1 wrapped it to nothing
    (exit 139 on four rows; found in review)."""
    import pickle

    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(0)
    x = rng.random((200, 4))
    clf = DecisionTreeClassifier(max_depth=4, random_state=0).fit(x, (x[:, 0] + x[:, 1] > 1).astype(int))
    state = clf.tree_.__getstate__()
    clf.tree_.__setstate__(dict(state, max_depth=(1 << 62) - 1))
    p = tmp_path / "deep.pkl"
    p.write_bytes(pickle.dumps(clf))
    with pytest.raises(amber.CorruptFileError, match=r"max_depth 4611686018427387903 is not below its number of nodes"):
        amber.load(p)
