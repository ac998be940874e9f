"""The compact node of scikit-learn's fitted decision trees (amber.handlers._sklearn)."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest
from sklearn.ensemble import RandomForestRegressor
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

import amber
from _hostile import parse


def _fit_clf() -> DecisionTreeClassifier:
    rng = np.random.default_rng(0)
    X = rng.random((120, 4))
    y = np.stack([(X[:, 0] > 0.5).astype(int), (X[:, 1] * 3).astype(int)], axis=1)
    return DecisionTreeClassifier(random_state=0).fit(X, y)  # two outputs, 2 and 3 classes


def test_tree_node_is_compact_and_exact() -> None:
    clf = _fit_clf()
    data = amber.dumps(clf)
    info = amber.inspect(data)
    assert "sklearn.tree.Tree" in info.types and "reduce" not in info.types
    out = amber.loads(data)
    X = np.random.default_rng(1).random((50, 4))
    for a, b in zip(clf.predict_proba(X), out.predict_proba(X)):
        np.testing.assert_array_equal(a, b)
    for key in ("nodes", "values"):
        np.testing.assert_array_equal(clf.tree_.__getstate__()[key], out.tree_.__getstate__()[key])
    assert out.tree_.max_depth == clf.tree_.max_depth and out.tree_.node_count == clf.tree_.node_count


def test_regressor_forest_and_mmap(tmp_path: Any) -> None:
    rng = np.random.default_rng(2)
    X, y = rng.random((200, 3)), rng.random(200)
    forest = RandomForestRegressor(n_estimators=5, random_state=0).fit(X, y)
    p = tmp_path / "f.amber"
    amber.dump(forest, p, compress=True)
    np.testing.assert_array_equal(amber.load(p).predict(X), forest.predict(X))
    amber.dump(forest, p)
    loaded = amber.load(p, mmap=True)  # trees copy their records: the model is independent of the file
    np.testing.assert_array_equal(loaded.predict(X), forest.predict(X))
    single = DecisionTreeRegressor(max_depth=1).fit(X[:1], y[:1])  # a single leaf
    np.testing.assert_array_equal(amber.loads(amber.dumps(single)).predict(X), single.predict(X))


def _tree_meta(tree: Any) -> dict[str, Any]:
    """The Tree node's map inside an estimator's object node."""
    found: list[dict[str, Any]] = []

    def walk(x: Any) -> None:
        if isinstance(x, list):
            if x and isinstance(x[0], bytes) and b"sklearn.tree.Tree" in x[0]:
                found.append(x[1])
            for v in x:
                walk(v)
        elif isinstance(x, dict):
            for v in x.values():
                walk(v)

    walk(tree)
    assert len(found) == 1
    return found[0]


EDITS: dict[str, Callable[[dict[str, Any]], None]] = {
    "node_count_too_big": lambda m: m.update(node_count=m["node_count"] + 1),
    "node_count_negative": lambda m: m.update(node_count=-1),
    "values_shape_wrong": lambda m: m.update(values_shape=[m["values_shape"][0], 5, 1]),
    "values_shape_2d": lambda m: m.update(values_shape=m["values_shape"][:2]),
    "n_classes_missing": lambda m: m.update(n_classes=[]),
    "n_classes_zero": lambda m: m.update(n_classes=[0] * len(m["n_classes"])),
    "n_outputs_zero": lambda m: m.update(n_outputs=0),
    "nodes_dtype_other": lambda m: m.update(nodes_dtype="<f8"),
    "nodes_blob_swapped": lambda m: m.update(nodes=m["values"]),
    "nodes_blob_missing": lambda m: m.update(nodes=99),
    "max_depth_str": lambda m: m.update(max_depth="3"),
    # decision_path sized its buffer rows x (1 + max_depth) in C integers: 2**62 - 1 wrapped
    # it to nothing and it wrote past it (exit 139; found in review)
    "max_depth_huge": lambda m: m.update(max_depth=(1 << 62) - 1),
    "max_depth_node_count": lambda m: m.update(max_depth=m["node_count"]),
    "not_a_map": lambda m: m.clear(),
}


@pytest.mark.parametrize("edit", list(EDITS.values()), ids=list(EDITS))
def test_hostile_tree_nodes_are_refused(edit: Callable[[dict[str, Any]], None]) -> None:
    p = parse(amber.dumps(_fit_clf(), deterministic=True))
    tree = p.tree()
    edit(_tree_meta(tree))
    with pytest.raises(amber.AmberError):
        amber.loads(p.rebuild(tree=tree))
