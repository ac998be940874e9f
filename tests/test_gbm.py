"""LightGBM and XGBoost: boosters and scikit-learn-API models round-trip with identical
predictions, load without ``trusted=``, never touch pickle, and damaged or hostile model
payloads end in ``amber.CorruptFileError`` -- never a crash of the native libraries (their
parsers crash on malformed models, so amber checks and re-renders every model first)."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
from contextlib import ExitStack
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable
from unittest import mock

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

import amber
from _hostile import T, build, plainmap, raw_blob
from amber.handlers import _gbm
from amber.handlers._gbm import ModelError, _ubj_read, _ubj_write, check_lightgbm_model, check_xgboost_model

pytestmark = pytest.mark.timeout(120)

LGB = {"verbose": -1, "num_threads": 1, "seed": 1}
XGB = {"nthread": 1, "seed": 1}


@lru_cache(maxsize=None)
def data() -> dict[str, Any]:
    rng = np.random.default_rng(7)
    n = 400
    X = rng.standard_normal((n, 5))
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(5)])
    df["cat"] = pd.Categorical(rng.choice(["red", "green", "blue", "grey"], n))
    score = X[:, 0] + 0.5 * X[:, 1] * X[:, 2] + (df["cat"] == "red") - 0.3 * rng.standard_normal(n)
    return {
        "X": X,
        "df": df,
        "y_bin": (score > 0.3).astype(int),
        "y_multi": np.digitize(score, [-0.5, 0.5, 1.5]),
        "y_reg": score,
        "group": [40] * 10,
        "y_rank": np.clip(np.digitize(score, [-0.5, 0.5, 1.5]), 0, 3),
    }


def rt(obj: Any, **kw: Any) -> Any:
    return amber.loads(amber.dumps(obj), **kw)


# ---------------------------------------------------------------------------------------
# boosters
# ---------------------------------------------------------------------------------------


def test_lightgbm_booster_round_trip() -> None:
    d = data()
    X, y = d["X"], d["y_bin"]
    train = lgb.Dataset(X[:300], y[:300])
    valid = lgb.Dataset(X[300:], y[300:], reference=train)
    b = lgb.train({"objective": "binary", **LGB}, train, 10, valid_sets=[valid], valid_names=["hold"],
                  callbacks=[lgb.early_stopping(2, verbose=False)])
    got = rt(b)
    assert type(got) is lgb.Booster
    assert got.best_iteration == b.best_iteration and got.best_score == b.best_score
    assert got.params == b.params and got.name_valid_sets == ["hold"]
    assert got.model_to_string() == b.model_to_string()
    for kw in ({}, {"raw_score": True}, {"pred_leaf": True}, {"pred_contrib": True}, {"num_iteration": 2}):
        np.testing.assert_array_equal(got.predict(X, **kw), b.predict(X, **kw))


@pytest.mark.parametrize(
    "params, label",
    [
        ({"objective": "multiclass", "num_class": 4}, "y_multi"),
        ({"objective": "multiclassova", "num_class": 4}, "y_multi"),
        ({"objective": "regression", "linear_tree": True}, "y_reg"),
        ({"objective": "binary", "boosting": "rf", "bagging_freq": 1, "bagging_fraction": 0.6}, "y_bin"),
        ({"objective": "binary", "boosting": "dart"}, "y_bin"),
        ({"objective": "huber", "monotone_constraints": [1, 0, 0, -1, 0]}, "y_reg"),
        ({"objective": "binary", "min_data_in_leaf": 10_000}, "y_bin"),  # single-leaf trees
    ],
    ids=["multiclass", "ova", "linear", "rf", "dart", "monotone", "stumps"],
)
def test_lightgbm_booster_variants(params: dict[str, Any], label: str) -> None:
    d = data()
    b = lgb.train({**params, **LGB}, lgb.Dataset(d["X"], d[label]), 4)
    got = rt(b)
    np.testing.assert_array_equal(got.predict(d["X"]), b.predict(d["X"]))
    np.testing.assert_array_equal(got.predict(d["X"], pred_leaf=True), b.predict(d["X"], pred_leaf=True))


def test_lightgbm_pandas_categorical_booster() -> None:
    d = data()
    b = lgb.train({"objective": "binary", "min_data_per_group": 5, "cat_smooth": 1, **LGB},
                  lgb.Dataset(d["df"], d["y_bin"]), 6)
    assert b.pandas_categorical == [["blue", "green", "grey", "red"]]
    got = rt(b)
    assert got.pandas_categorical == b.pandas_categorical
    np.testing.assert_array_equal(got.predict(d["df"]), b.predict(d["df"]))


def test_xgboost_booster_round_trip() -> None:
    d = data()
    X, y = d["X"], d["y_bin"]
    names = [f"x{i}" for i in range(5)]
    dtrain = xgb.DMatrix(X[:300], y[:300], feature_names=names, feature_types=["float"] * 4 + ["int"])
    dvalid = xgb.DMatrix(X[300:], y[300:], feature_names=names, feature_types=["float"] * 4 + ["int"])
    b = xgb.train({"objective": "binary:logistic", "max_depth": 3, **XGB}, dtrain, 20, evals=[(dvalid, "v")],
                  early_stopping_rounds=2, verbose_eval=False)
    b.set_attr(note="kept")
    b.user_note = {"any": [1, 2]}  # a Python attribute, as a pickle would keep it
    got = rt(b)
    assert type(got) is xgb.Booster
    assert got.best_iteration == b.best_iteration and got.best_score == b.best_score
    assert got.attributes() == b.attributes() and got.attr("note") == "kept"
    assert got.feature_names == names and got.feature_types == b.feature_types
    assert got.user_note == {"any": [1, 2]}
    assert bytes(got.save_raw("ubj")) == bytes(b.save_raw("ubj"))
    for kw in ({}, {"output_margin": True}, {"pred_leaf": True}, {"pred_contribs": True},
               {"iteration_range": (0, b.best_iteration + 1)}):
        np.testing.assert_array_equal(got.predict(dvalid, **kw), b.predict(dvalid, **kw))


@pytest.mark.parametrize(
    "params, label",
    [
        ({"objective": "multi:softprob", "num_class": 4}, "y_multi"),
        ({"booster": "dart", "rate_drop": 0.3}, "y_reg"),
        ({"booster": "gblinear"}, "y_reg"),
        ({"multi_strategy": "multi_output_tree", "tree_method": "hist"}, "y_2d"),
        ({"tree_method": "hist"}, "y_2d"),
        ({"objective": "reg:quantileerror", "quantile_alpha": [0.2, 0.8]}, "y_reg"),
        ({"num_parallel_tree": 3, "subsample": 0.7, "colsample_bynode": 0.7}, "y_reg"),
        ({"max_depth": 5, "gamma": 3.0, "tree_method": "exact"}, "y_reg"),  # pruned (deleted) nodes
    ],
    ids=["softprob", "dart", "gblinear", "multi-output-tree", "per-target-trees", "quantile", "forest", "pruned"],
)
def test_xgboost_booster_variants(params: dict[str, Any], label: str) -> None:
    d = data()
    y = np.column_stack([d["y_reg"], -d["y_reg"]]) if label == "y_2d" else d[label]
    dm = xgb.DMatrix(d["X"], y)
    depth = {} if params.get("booster") == "gblinear" else {"max_depth": 3}
    b = xgb.train({**depth, **params, **XGB}, dm, 4)
    got = rt(b)
    assert bytes(got.save_raw("ubj")) == bytes(b.save_raw("ubj"))
    np.testing.assert_array_equal(got.predict(dm), b.predict(dm))


def test_xgboost_categorical_booster() -> None:
    d = data()
    dm = xgb.DMatrix(d["df"], d["y_bin"], enable_categorical=True)
    b = xgb.train({"objective": "binary:logistic", "max_depth": 3, "max_cat_to_onehot": 1, **XGB}, dm, 5)
    got = rt(b)
    assert got.feature_types == b.feature_types == ["float"] * 5 + ["c"]
    np.testing.assert_array_equal(got.predict(dm), b.predict(dm))
    np.testing.assert_array_equal(got.inplace_predict(d["df"]), b.inplace_predict(d["df"]))


def test_boosters_in_files(tmp_path: Path) -> None:
    d = data()
    lb = lgb.train({"objective": "binary", **LGB}, lgb.Dataset(d["X"], d["y_bin"]), 3)
    xb = xgb.train({"max_depth": 2, **XGB}, xgb.DMatrix(d["X"], d["y_reg"]), 3)
    path = tmp_path / "boosters.amber"
    amber.dump({"lgb": lb, "xgb": xb}, path, compress="zstd")
    got = amber.load(path)
    np.testing.assert_array_equal(got["lgb"].predict(d["X"]), lb.predict(d["X"]))
    np.testing.assert_array_equal(got["xgb"].predict(xgb.DMatrix(d["X"])), xb.predict(xgb.DMatrix(d["X"])))
    info = amber.inspect(path)
    assert {"lightgbm.Booster", "xgboost.Booster"} <= set(info.types)


# ---------------------------------------------------------------------------------------
# scikit-learn API models (saved by the generic object reducer, boosters by these handlers)
# ---------------------------------------------------------------------------------------


def same_params(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal parameter dicts, NaN equal to NaN (XGBoost's ``missing``)."""
    nan = lambda v: isinstance(v, float) and v != v  # noqa: E731
    return a.keys() == b.keys() and all(a[k] == b[k] or (nan(a[k]) and nan(b[k])) for k in a)


def _fit(make: Callable[[], Any], X: Any, y: Any, **fit: Any) -> Any:
    return make().fit(X, y, **fit)


SKLEARN_CASES: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
    ("LGBMClassifier-binary", lambda d: _fit(lambda: lgb.LGBMClassifier(n_estimators=8, **LGB), d["X"], d["y_bin"])),
    ("LGBMClassifier-multiclass", lambda d: _fit(lambda: lgb.LGBMClassifier(n_estimators=6, **LGB), d["X"],
                                                d["y_multi"].astype(str))),
    ("LGBMRegressor", lambda d: _fit(lambda: lgb.LGBMRegressor(n_estimators=8, **LGB), d["X"], d["y_reg"])),
    ("LGBMRanker", lambda d: _fit(lambda: lgb.LGBMRanker(n_estimators=5, min_child_samples=5, **LGB), d["X"],
                                  d["y_rank"], group=d["group"])),
    ("LGBMClassifier-pandas-categorical", lambda d: _fit(
        lambda: lgb.LGBMClassifier(n_estimators=8, min_data_per_group=5, cat_smooth=1, **LGB), d["df"], d["y_bin"])),
    ("LGBMClassifier-early-stopping", lambda d: _fit(
        lambda: lgb.LGBMClassifier(n_estimators=50, **LGB), d["X"][:300], d["y_bin"][:300],
        eval_X=(d["X"][300:],), eval_y=(d["y_bin"][300:],), callbacks=[lgb.early_stopping(2, verbose=False)])),
    ("XGBClassifier-binary", lambda d: _fit(lambda: xgb.XGBClassifier(n_estimators=8, max_depth=3, n_jobs=1),
                                            d["X"], d["y_bin"])),
    ("XGBClassifier-multiclass", lambda d: _fit(lambda: xgb.XGBClassifier(n_estimators=6, max_depth=3, n_jobs=1),
                                                d["X"], d["y_multi"])),
    ("XGBClassifier-early-stopping", lambda d: _fit(
        lambda: xgb.XGBClassifier(n_estimators=60, max_depth=3, n_jobs=1, early_stopping_rounds=2),
        d["X"][:300], d["y_bin"][:300], eval_set=[(d["X"][300:], d["y_bin"][300:])], verbose=False)),
    ("XGBClassifier-pandas-categorical", lambda d: _fit(
        lambda: xgb.XGBClassifier(n_estimators=6, max_depth=3, n_jobs=1, enable_categorical=True,
                                  max_cat_to_onehot=1), d["df"], d["y_bin"])),
    ("XGBRegressor", lambda d: _fit(lambda: xgb.XGBRegressor(n_estimators=8, max_depth=3, n_jobs=1), d["X"], d["y_reg"])),
    ("XGBRanker", lambda d: _fit(lambda: xgb.XGBRanker(n_estimators=5, max_depth=3, n_jobs=1), d["X"], d["y_rank"],
                                 qid=np.repeat(np.arange(10), 40))),
    ("XGBRFClassifier", lambda d: _fit(lambda: xgb.XGBRFClassifier(n_estimators=5, max_depth=3, n_jobs=1),
                                       d["X"], d["y_bin"])),
    ("XGBRFRegressor", lambda d: _fit(lambda: xgb.XGBRFRegressor(n_estimators=5, max_depth=3, n_jobs=1),
                                      d["X"], d["y_reg"])),
]


@pytest.mark.parametrize("make", [m for _, m in SKLEARN_CASES], ids=[i for i, _ in SKLEARN_CASES])
def test_sklearn_api_models(make: Callable[[dict[str, Any]], Any]) -> None:
    d = data()
    model = make(d)
    X = d["df"] if isinstance(getattr(model, "feature_names_in_", None), np.ndarray) and "cat" in model.feature_names_in_ \
        else d["X"]
    got = amber.loads(amber.dumps(model))  # no trusted=: these models are trusted by default
    assert type(got) is type(model)
    np.testing.assert_array_equal(got.predict(X), model.predict(X))
    if hasattr(model, "predict_proba"):
        np.testing.assert_array_equal(got.predict_proba(X), model.predict_proba(X))
    for attr in ("classes_", "n_classes_", "n_features_in_", "feature_names_in_", "best_iteration_", "best_iteration"):
        try:
            want = getattr(model, attr)
        except AttributeError:
            continue
        have = getattr(got, attr)
        assert np.array_equal(have, want) if isinstance(want, np.ndarray) else have == want, attr
    assert same_params(got.get_params(), model.get_params())


def test_early_stopping_is_used_after_loading() -> None:
    d = data()
    model = dict(SKLEARN_CASES)["XGBClassifier-early-stopping"](d)
    assert 0 < model.best_iteration < 59
    got = rt(model)
    assert got.best_iteration == model.best_iteration
    lmodel = dict(SKLEARN_CASES)["LGBMClassifier-early-stopping"](d)
    assert 0 < lmodel.best_iteration_ < 50
    assert rt(lmodel).best_iteration_ == lmodel.best_iteration_


def test_nothing_pickles() -> None:
    """Neither saving nor loading calls pickle, and the file holds no pickle island."""
    d = data()
    models = [make(d) for _, make in SKLEARN_CASES[:2] + SKLEARN_CASES[6:8]]

    def boom(*a: Any, **k: Any) -> Any:
        raise AssertionError("pickle was called")

    with ExitStack() as stack:
        for name in ("dumps", "loads", "dump", "load", "Pickler", "Unpickler"):
            stack.enter_context(mock.patch.object(pickle, name, boom))
        blob = amber.dumps(models)
        got = amber.loads(blob)
    for a, b in zip(models, got):
        np.testing.assert_array_equal(a.predict(d["X"]), b.predict(d["X"]))
    assert not [t for t in amber.inspect(blob).types if "pickle" in t]


def test_missing_library_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    d = data()
    blob = amber.dumps([lgb.train({"objective": "binary", **LGB}, lgb.Dataset(d["X"], d["y_bin"]), 2)])
    monkeypatch.setattr(_gbm, "_lgb", None)
    monkeypatch.setattr(_gbm, "_LGB_ERROR", "ModuleNotFoundError: No module named 'lightgbm'", raising=False)
    with pytest.raises(amber.DecodeError, match="pip install lightgbm"):
        amber.loads(blob)


def test_models_amber_cannot_check_are_refused_when_saved(monkeypatch: pytest.MonkeyPatch) -> None:
    d = data()
    b = lgb.train({"objective": "binary", **LGB}, lgb.Dataset(d["X"], d["y_bin"]), 2)

    def refuse(text: str) -> str:
        raise ModelError("tree 0 has a field from the future")

    monkeypatch.setattr(_gbm, "check_lightgbm_model", refuse)
    with pytest.raises(amber.EncodeError, match="cannot verify this LightGBM model.*from the future"):
        amber.dumps({"m": b})


# ---------------------------------------------------------------------------------------
# damaged and hostile payloads
# ---------------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def lgb_text() -> str:
    d = data()
    return lgb.train({"objective": "multiclass", "num_class": 4, "num_leaves": 5, **LGB},
                     lgb.Dataset(d["X"], d["y_multi"]), 2).model_to_string()


@lru_cache(maxsize=None)
def xgb_raw() -> bytes:
    d = data()
    return bytes(xgb.train({"objective": "multi:softprob", "num_class": 4, "max_depth": 2, **XGB},
                           xgb.DMatrix(d["X"], d["y_multi"]), 2).save_raw("ubj"))


def lgb_file(model: bytes | str, state: Any = None, meta: Any = None) -> bytes:
    raw = model.encode() if isinstance(model, str) else model
    node = [T("lightgbm.Booster"), {"model": 0} if meta is None else meta, plainmap({}) if state is None else state]
    return build(node, [raw_blob(raw)])


def xgb_file(model: bytes, attrs: Any = None, meta: Any = None) -> bytes:
    node = [T("xgboost.Booster"), {"model": 0, "format": "ubj"} if meta is None else meta,
            plainmap({}) if attrs is None else attrs]
    return build(node, [raw_blob(model)])


def lgb_edit(old: str, new: str, count: int = 1) -> bytes:
    text = lgb_text()
    assert old in text, old
    return lgb_file(text.replace(old, new, count))


def xgb_edit(edit: Callable[[Any], None]) -> bytes:
    top = _ubj_read(xgb_raw())
    edit(top)
    out = bytearray()
    _ubj_write(top, out)
    return xgb_file(bytes(out))


def tree0(top: Any) -> Any:
    return top["learner"]["gradient_booster"]["model"]["trees"][0]


def set_arr(key: str, i: int, v: Any) -> Callable[[Any], None]:
    def edit(top: Any) -> None:
        arr = tree0(top)[key]
        a = arr.a.copy()
        a[i] = v
        arr.a = a
    return edit


def set_str(path: tuple[str, ...], v: Any) -> Callable[[Any], None]:
    def edit(top: Any) -> None:
        node = top
        for p in path[:-1]:
            node = node[p]
        node[path[-1]] = v
    return edit


def _leaf_line(key: str) -> str:
    start = lgb_text().index("Tree=0")
    return next(line for line in lgb_text()[start:].split("\n") if line.startswith(key + "="))


HOSTILE_LGB: list[tuple[str, Callable[[], bytes]]] = [
    ("garbage", lambda: lgb_file(b"not a model at all")),
    ("empty-blob", lambda: build([T("lightgbm.Booster"), {"model": 0}, plainmap({})], [raw_blob(b"")])),
    ("not-utf8", lambda: lgb_file(b"tree\nversion=v4\n\xff\xfe")),
    ("nul", lambda: lgb_edit("version=v4", "version=v4\0")),
    ("carriage-return", lambda: lgb_edit("\n", "\r\n", 3)),
    ("truncated-half", lambda: lgb_file(lgb_text()[: len(lgb_text()) // 2])),
    ("truncated-in-tree", lambda: lgb_file(lgb_text()[: lgb_text().index("Tree=1") + 40])),
    ("child-out-of-range", lambda: lgb_edit(_leaf_line("left_child"), "left_child=1 2 -1 7")),
    ("child-cycle", lambda: lgb_edit(_leaf_line("left_child"), "left_child=1 0 -1 -2")),
    ("leaf-twice", lambda: lgb_edit(_leaf_line("right_child"), "right_child=-2 -2 -3 -4")),
    ("split-feature-too-big", lambda: lgb_edit(_leaf_line("split_feature"), "split_feature=0 1 2 5")),
    ("too-few-leaf-values", lambda: lgb_edit(_leaf_line("leaf_value"), "leaf_value=0.1 0.2")),
    ("huge-int", lambda: lgb_edit(_leaf_line("split_feature"), "split_feature=0 1 2 99999999999")),
    ("float-overflow", lambda: lgb_edit(_leaf_line("threshold"), "threshold=1e999 1 2 3")),
    ("float-syntax", lambda: lgb_edit(_leaf_line("threshold"), "threshold=0x10 1 2 3")),
    ("categorical-without-tables", lambda: lgb_edit(_leaf_line("decision_type"), "decision_type=1 2 2 2")),
    ("bad-missing-type", lambda: lgb_edit(_leaf_line("decision_type"), "decision_type=12 2 2 2")),
    ("num-leaves-lies", lambda: lgb_edit("num_leaves=5", "num_leaves=9")),
    ("unknown-tree-key", lambda: lgb_edit("shrinkage=1\n", "shrinkage=1\nbackdoor=1\n")),
    ("duplicate-tree-key", lambda: lgb_edit("shrinkage=1\n", "shrinkage=1\nshrinkage=2\n")),
    ("tree-label", lambda: lgb_edit("Tree=1", "Tree=7")),
    ("tree-sizes-lie", lambda: lgb_edit("tree_sizes=", "tree_sizes=1 ")),
    ("objective-num-class", lambda: lgb_edit("objective=multiclass num_class:4", "objective=multiclass num_class:9")),
    ("objective-unknown", lambda: lgb_edit("objective=multiclass num_class:4", "objective=evil num_class:4")),
    ("trees-per-iteration", lambda: lgb_edit("num_tree_per_iteration=4", "num_tree_per_iteration=5")),
    ("num-class-huge", lambda: lgb_edit("num_class=4", "num_class=99999999999")),
    ("feature-names-count", lambda: lgb_edit("feature_names=Column_0 ", "feature_names=")),
    ("header-junk", lambda: lgb_edit("label_index=0", "label_index=0\nwhat=ever")),
    ("no-end-of-trees", lambda: lgb_edit("end of trees", "end of forest")),
    ("param-line", lambda: lgb_edit("[boosting: gbdt]", "boosting gbdt")),
    ("pandas-not-json", lambda: lgb_edit("pandas_categorical:null", "pandas_categorical:{oops")),
    ("after-pandas", lambda: lgb_file(lgb_text() + "more\n")),
    ("state-handle", lambda: lgb_file(lgb_text(), plainmap({"_handle": 12345}))),
    ("state-num-inner-eval", lambda: lgb_file(lgb_text(), plainmap({"_Booster__num_inner_eval": 0}))),
    ("state-best-iteration-str", lambda: lgb_file(lgb_text(), plainmap({"best_iteration": "3"}))),
    ("state-not-dict", lambda: lgb_file(lgb_text(), [T("list.plain"), 1, 2])),
    ("meta-no-model", lambda: lgb_file(lgb_text(), meta={"blob": 0})),
    ("meta-model-str", lambda: lgb_file(lgb_text(), meta={"model": "0"})),
    ("meta-not-map", lambda: build([T("lightgbm.Booster"), [0], plainmap({})], [raw_blob(lgb_text().encode())])),
    ("short-node", lambda: build([T("lightgbm.Booster"), {"model": 0}], [raw_blob(lgb_text().encode())])),
]

HOSTILE_XGB: list[tuple[str, Callable[[], bytes]]] = [
    ("garbage", lambda: xgb_file(b"{not ubjson")),
    ("empty-blob", lambda: build([T("xgboost.Booster"), {"model": 0, "format": "ubj"}, plainmap({})], [raw_blob(b"")])),
    ("truncated", lambda: xgb_file(xgb_raw()[: len(xgb_raw()) // 2])),
    ("truncated-1", lambda: xgb_file(xgb_raw()[:-1])),
    ("trailing", lambda: xgb_file(xgb_raw() + b"Z")),
    ("json-not-ubj", lambda: xgb_file(b'{"learner": {}}')),
    ("deep-nesting", lambda: xgb_file(b"[" * 5000 + b"]" * 5000)),
    ("length-beyond", lambda: xgb_file(b"{L\x7f\xff\xff\xff\xff\xff\xff\xff")),
    ("negative-length", lambda: xgb_file(b"[$d#L\xff\xff\xff\xff\xff\xff\xff\xff")),
    ("left-child-out-of-range", lambda: xgb_edit(set_arr("left_children", 0, 999))),
    ("left-child-negative", lambda: xgb_edit(set_arr("left_children", 0, -7))),
    ("child-points-to-root", lambda: xgb_edit(set_arr("right_children", 0, 0))),
    ("leaf-with-right-child", lambda: xgb_edit(set_arr("right_children", 3, 1))),
    ("parent-lies", lambda: xgb_edit(set_arr("parents", 1, 2))),
    ("split-feature-too-big", lambda: xgb_edit(set_arr("split_indices", 0, 5))),
    ("split-type-2", lambda: xgb_edit(set_arr("split_type", 0, 2))),
    ("categorical-without-table", lambda: xgb_edit(set_arr("split_type", 0, 1))),
    ("tree-info-group", lambda: xgb_edit(set_str(("learner", "gradient_booster", "model", "tree_info"),
                                                 _gbm._UArr(ord("l"), np.array([0, 9, 2, 3, 0, 1, 2, 3], ">i4"))))),
    ("num-trees-lies", lambda: xgb_edit(set_str(("learner", "gradient_booster", "model", "gbtree_model_param", "num_trees"), "9"))),
    ("num-nodes-lies", lambda: xgb_edit(lambda top: tree0(top)["tree_param"].__setitem__("num_nodes", "99"))),
    ("num-class-mismatch", lambda: xgb_edit(set_str(("learner", "objective", "softmax_multiclass_param", "num_class"), "9"))),
    ("num-feature-str", lambda: xgb_edit(set_str(("learner", "learner_model_param", "num_feature"), "5; rm"))),
    ("base-score-count", lambda: xgb_edit(set_str(("learner", "learner_model_param", "base_score"), "[1E0,2E0]"))),
    ("objective-unknown", lambda: xgb_edit(set_str(("learner", "objective", "name"), "evil:objective"))),
    ("booster-unknown", lambda: xgb_edit(set_str(("learner", "gradient_booster", "name"), "gbforest"))),
    ("unknown-field", lambda: xgb_edit(lambda top: tree0(top).__setitem__("backdoor", "1"))),
    ("feature-type", lambda: xgb_edit(set_str(("learner", "feature_types"), _gbm._UList(["float"] * 4 + ["evil"])))),
    ("best-iteration-attr", lambda: xgb_edit(set_str(("learner", "attributes"), {"best_iteration": "x"}))),
    ("format", lambda: xgb_file(xgb_raw(), meta={"model": 0, "format": "json"})),
    ("attrs-handle", lambda: xgb_file(xgb_raw(), plainmap({"handle": 1}))),
    ("attrs-dunder", lambda: xgb_file(xgb_raw(), plainmap({"__class__": "x"}))),
    ("attrs-not-dict", lambda: xgb_file(xgb_raw(), [T("list.plain"), 1])),
]


def test_hostile_controls_load() -> None:
    d = data()
    b = amber.loads(lgb_file(lgb_text()))
    assert b.predict(d["X"]).shape == (400, 4)
    x = amber.loads(xgb_file(xgb_raw()))
    assert x.predict(xgb.DMatrix(d["X"])).shape == (400, 4)
    out = bytearray()
    _ubj_write(_ubj_read(xgb_raw()), out)
    assert bytes(out) == xgb_raw()  # the re-encoding is exact


@pytest.mark.parametrize("make", [m for _, m in HOSTILE_LGB + HOSTILE_XGB],
                         ids=[f"lgb-{i}" for i, _ in HOSTILE_LGB] + [f"xgb-{i}" for i, _ in HOSTILE_XGB])
def test_hostile_payloads(make: Callable[[], bytes]) -> None:
    with pytest.raises(amber.CorruptFileError):
        amber.loads(make())


def test_hostile_message_names_the_problem() -> None:
    with pytest.raises(amber.CorruptFileError, match=r"lightgbm\.Booster node: .*tree 0.*leaves exactly once"):
        amber.loads(lgb_edit(_leaf_line("right_child"), "right_child=-2 -2 -3 -4"))
    with pytest.raises(amber.CorruptFileError, match=r"xgboost\.Booster node: .*tree 0.*feature outside 0\.\.4"):
        amber.loads(xgb_edit(set_arr("split_indices", 0, 5)))


def test_checks_are_idempotent() -> None:
    assert check_lightgbm_model(lgb_text()) == lgb_text()  # LightGBM's own text, byte for byte
    assert check_xgboost_model(xgb_raw()) == xgb_raw()
    with pytest.raises(ModelError):
        check_xgboost_model(b"")


FUZZ = textwrap.dedent(
    """
    import random, sys, warnings
    warnings.simplefilter("ignore")
    import numpy as np, lightgbm as lgb, xgboost as xgb
    import amber
    from _hostile import T, build, plainmap, raw_blob
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 4)); y = rng.integers(0, 3, 200)
    Xn = X.copy(); Xn[::5, 1] = np.nan
    lt = lgb.train({"objective": "multiclass", "num_class": 3, "num_leaves": 5, "verbose": -1, "num_threads": 1},
                   lgb.Dataset(X, y), 2).model_to_string().encode()
    xr = bytes(xgb.train({"objective": "multi:softprob", "num_class": 3, "max_depth": 2, "nthread": 1},
                         xgb.DMatrix(X, y), 2).save_raw("ubj"))
    r = random.Random(int(sys.argv[1]))
    loaded = 0
    for i in range(int(sys.argv[2])):
        which = i % 2
        b = bytearray(lt if which == 0 else xr)
        for _ in range(r.randint(1, 3)):
            p = r.randrange(len(b))
            k = r.randrange(4)
            if k == 0: b[p] = r.randrange(256)
            elif k == 1: b[p] = r.choice(b"0123456789-") if which == 0 else (b[p] + r.choice([1, -1, 128])) % 256
            elif k == 2: del b[p:p + r.randint(1, 30)]
            else: b[p:p] = bytes(r.randrange(256) for _ in range(r.randint(1, 4)))
        tag = T("lightgbm.Booster") if which == 0 else T("xgboost.Booster")
        meta = {"model": 0} if which == 0 else {"model": 0, "format": "ubj"}
        try:
            m = amber.loads(build([tag, meta, plainmap({})], [raw_blob(bytes(b))]))
        except amber.CorruptFileError:
            continue
        loaded += 1
        for data in (X, Xn):
            try:
                if which == 0:
                    m.predict(data); m.predict(data, pred_leaf=True); m.predict(data, pred_contrib=True)
                else:
                    d = xgb.DMatrix(data); m.predict(d); m.predict(d, pred_leaf=True); m.predict(d, pred_contribs=True)
            except Exception:
                pass
    print("done", loaded)
    """
)


@pytest.mark.timeout(300)
def test_fuzzed_models_never_crash_the_process(tmp_path: Path) -> None:
    """Randomly damaged models (valid checksums): each load is refused or the loaded model
    predicts; a crash of LightGBM/XGBoost would kill this child process."""
    script = tmp_path / "fuzz.py"
    script.write_text(FUZZ)
    tests_dir = str(Path(__file__).parent)
    proc = subprocess.run([sys.executable, str(script), "1", "240"], capture_output=True, text=True, timeout=280,
                          cwd=tests_dir, env={**os.environ, "PYTHONPATH": tests_dir})
    assert proc.returncode == 0, f"the child died with {proc.returncode}: {proc.stderr[-2000:]}"
    assert proc.stdout.startswith("done")
