"""scikit-learn: every estimator of ``sklearn.utils.all_estimators()`` round-trips.

Each estimator is built as scikit-learn's own common tests build it, fitted on tiny data,
saved with ``amber.dumps`` and loaded with ``amber.loads`` **without** ``trusted=``. The
loaded estimator must equal the original attribute by attribute (array bytes, dtypes,
random states, internal Cython states such as trees'), and give identical output from
every method it has among predict, predict_proba, predict_log_proba, decision_function,
transform, score_samples, kneighbors and mahalanobis on data it has not seen.

Then named integration tests for the models people save most, the errors for what
cannot be saved (lambdas, local functions) and the trust list's refusals. The exceptions
are listed, with their reasons, in docs/sklearn.md.
"""

from __future__ import annotations

import copyreg
import types
import warnings
from typing import Any

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
sp = pytest.importorskip("scipy.sparse")

import amber  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.utils import all_estimators  # noqa: E402
from sklearn.utils._tags import get_tags  # noqa: E402

try:  # scikit-learn's own instances for its common tests (small, fast parameters)
    from sklearn.utils._test_common.instance_generator import _construct_instances
except ImportError:  # pragma: no cover - other scikit-learn versions
    _construct_instances = None

METHODS = (
    "predict",
    "predict_proba",
    "predict_log_proba",
    "decision_function",
    "transform",
    "score_samples",
    # for the estimators that have none of the above: neighbors, covariances
    "kneighbors",
    "mahalanobis",
)

ALL = all_estimators()

#: Estimators that are not round-tripped, with the reason (also in docs/sklearn.md).
#: "skip": not about amber (cannot be built or fitted cheaply here).
#: "xfail": amber is at fault (strict: the test fails when it starts to pass).
EXCEPTIONS: dict[str, tuple[str, str]] = {}


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Any:
    """One OpenMP/BLAS thread: on a busy CI machine, spinning thread pools of tiny fits
    (t-SNE, histogram gradient boosting, k-means) otherwise cost seconds each."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(1):
        yield


# ----------------------------------------------------------------------------- data

_rng = np.random.RandomState(0)
N_FIT, N_NEW, N_FEAT = 60, 20, 5
X_FIT = _rng.normal(size=(N_FIT, N_FEAT))
X_NEW = _rng.normal(size=(N_NEW, N_FEAT))
Y_REG = X_FIT @ np.array([1.0, -2.0, 0.5, 0.0, 3.0]) + 0.1 * _rng.normal(size=N_FIT)
Y_CLASS = np.digitize(Y_REG, np.quantile(Y_REG, [1 / 3, 2 / 3]))  # 3 balanced classes
Y_BINARY = (Y_CLASS > 0).astype(np.int64)
Y_BINARY2 = (X_FIT[:, 0] > 0).astype(np.int64)
X_CAT_FIT = _rng.randint(0, 4, size=(N_FIT, 3))
X_CAT_NEW = _rng.randint(0, 4, size=(N_NEW, 3))
DOCS_FIT = [
    "the cat sat on the mat",
    "the dog ate my homework",
    "a cat and a dog are friends",
    "models are saved without pickle",
    "amber loads the model safely",
    "the quick brown fox jumps over the lazy dog",
] * 2
Y_DOCS = np.array([0, 1, 0, 1, 0, 1] * 2)
DOCS_NEW = ["a lazy cat", "the model is saved", "friends jump over the mat", "unseen words only"]
DICTS_FIT = [{"a": float(i % 3), "b": float(i % 5), f"c{i % 4}": 1.0} for i in range(N_FIT)]
DICTS_NEW = [{"a": 1.0, "c2": 2.0}, {"b": 3.0, "z": 1.0}, {}]
IMAGES = _rng.uniform(size=(2, 12, 12))


def _own_instances() -> dict[str, Any]:
    """Constructors for the estimators scikit-learn's instance generator does not fit here."""
    from sklearn.linear_model import LogisticRegression

    def frozen() -> Any:
        from sklearn.frozen import FrozenEstimator

        return FrozenEstimator(LogisticRegression().fit(X_FIT, Y_CLASS))

    return {
        # the generator's dictionary has 3 features; our data 5
        "SparseCoder": lambda Est: Est(dictionary=np.random.RandomState(1).normal(size=(4, N_FEAT))),
        # the generator refuses to build it: it wraps an already fitted estimator
        "FrozenEstimator": lambda Est: frozen(),
    }


OWN_INSTANCES = _own_instances()
#: Parameters set on the generator's instance, for our data.
SET_PARAMS: dict[str, dict[str, Any]] = {
    # every test point needs a neighbour within the radius (5 features, unit variance)
    "RadiusNeighborsClassifier": {"radius": 5.0},
    "RadiusNeighborsRegressor": {"radius": 5.0},
    "RadiusNeighborsTransformer": {"radius": 5.0},
    # the fewest iterations it allows (default 1000)
    "TSNE": {"max_iter": 250},
}


def _build(name: str, Est: type) -> Any:
    """A small, fast, deterministic instance of ``Est``."""
    if name in OWN_INSTANCES:
        est = OWN_INSTANCES[name](Est)
    elif _construct_instances is not None:
        est = clone(next(iter(_construct_instances(Est))))
    else:  # pragma: no cover - scikit-learn without its instance generator
        try:
            est = Est()
        except TypeError as exc:
            pytest.skip(f"needs constructor arguments ({exc})")
    est.set_params(**SET_PARAMS.get(name, {}))
    keys = est.get_params(deep=True)
    # Determinism, also of random draws at predict/transform time (DummyClassifier's
    # "stratified" predictions, random projections, ...): a fixed random_state everywhere.
    est.set_params(**{k: 0 for k in keys if k == "random_state" or k.endswith("__random_state")})
    est.set_params(**{k: 1 for k in keys if k == "n_jobs" or k.endswith("__n_jobs")})
    return est


def _data(name: str, est: Any) -> tuple[tuple[Any, ...], Any]:
    """(arguments of fit, input of the methods on new data) for ``est``."""
    tags = get_tags(est)
    it, tt = tags.input_tags, tags.target_tags
    if name in ("LabelEncoder", "LabelBinarizer"):
        return (Y_CLASS,), np.array([2, 0, 1, 1])
    if name == "MultiLabelBinarizer":
        return ([(0, 1), (2,), (1, 3), ()],), [(1,), (0, 3), ()]
    if name == "PatchExtractor":
        return (IMAGES,), IMAGES
    if it.string and not it.two_d_array:  # text vectorizers
        return (DOCS_FIT, Y_DOCS), DOCS_NEW
    if it.dict:
        return (DICTS_FIT,), DICTS_NEW
    if not it.two_d_array and it.one_d_array:  # IsotonicRegression
        return (X_FIT[:, 0], Y_REG), X_NEW[:, 0]
    if it.pairwise:
        return (X_FIT @ X_FIT.T, Y_CLASS), X_NEW @ X_FIT.T
    if name in ("CategoricalNB", "OneHotEncoder", "OrdinalEncoder", "TargetEncoder"):
        return (X_CAT_FIT, Y_CLASS), X_CAT_NEW
    X, Xn = X_FIT, X_NEW
    if it.positive_only or name == "SkewedChi2Sampler":  # (it needs X > -skewedness)
        X, Xn = np.abs(X), np.abs(Xn)
    if name == "MissingIndicator":
        X, Xn = X.copy(), Xn.copy()
        X[::7, 1] = np.nan
        Xn[::3, 1] = np.nan
    if tags.estimator_type == "regressor":
        y = Y_REG
        if tt.positive_only:
            y = np.exp(y / 4)
        if not tt.single_output:
            y = np.column_stack([y, 2 * y + 1])
    else:
        y = Y_CLASS
        if tags.classifier_tags is not None and not tags.classifier_tags.multi_class:
            y = Y_BINARY
        if not tt.single_output:
            y = np.column_stack([Y_BINARY, Y_BINARY2])
    return (X, y), Xn


# ------------------------------------------------------------------------- compare


def assert_same(a: Any, b: Any, path: str = "root", seen: dict[tuple[int, int], Any] | None = None) -> None:
    """``b`` is an exact copy of ``a``: same types, bytes of arrays, attributes, states."""
    if seen is None:  # pairs already compared (kept alive, so that their ids stay theirs)
        seen = {}
    assert type(a) is type(b), f"{path}: {type(a)} != {type(b)}"
    if a is None or isinstance(a, (bool, int, str, bytes, complex)):
        assert a == b, f"{path}: {a!r} != {b!r}"
        return
    if isinstance(a, float):  # bit for bit (-0.0 is not 0.0; NaN is NaN)
        assert np.float64(a).tobytes() == np.float64(b).tobytes() or (a != a and b != b), f"{path}: {a!r} != {b!r}"
        return
    if isinstance(a, (type, types.FunctionType, types.BuiltinFunctionType, np.ufunc)) or callable(a) and hasattr(
        a, "__qualname__"
    ) and not hasattr(a, "__dict__"):
        assert a is b, f"{path}: {a!r} is not {b!r}"
        return
    if isinstance(a, np.generic):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes(), f"{path}: {a!r} != {b!r}"
        return
    if isinstance(a, np.dtype):
        assert a == b, f"{path}: {a!r} != {b!r}"
        return
    key = (id(a), id(b))
    if key in seen:
        return
    seen[key] = (a, b)
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, f"{path}: {a.dtype}{a.shape} != {b.dtype}{b.shape}"
        if a.dtype.hasobject:
            for i, (x, y) in enumerate(zip(a.ravel(order="K"), b.ravel(order="K"))):
                assert_same(x, y, f"{path}.flat[{i}]", seen)
        elif a.tobytes() != b.tobytes():
            np.testing.assert_array_equal(a, b, err_msg=path, strict=True)
            raise AssertionError(f"{path}: array bytes differ")
        return
    if sp.issparse(a):
        assert a.dtype == b.dtype and a.shape == b.shape and a.format == b.format, path
        np.testing.assert_array_equal(a.toarray(), b.toarray(), err_msg=path, strict=True)
        return
    if isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]", seen)
        return
    if isinstance(a, dict):
        assert list(a) == list(b), f"{path}: keys {list(a)} != {list(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{path}[{k!r}]", seen)
        return
    if isinstance(a, (set, frozenset)):
        assert a == b, path
        return
    if isinstance(a, np.random.RandomState):
        assert_same(a.get_state(legacy=False), b.get_state(legacy=False), f"{path}.get_state()", seen)
        return
    if isinstance(a, np.random.Generator):
        assert_same(a.bit_generator.state, b.bit_generator.state, f"{path}.bit_generator.state", seen)
        return
    mod = type(a).__module__
    if mod.startswith("pandas"):
        import pandas as pd

        if isinstance(a, pd.DataFrame):
            pd.testing.assert_frame_equal(a, b, check_exact=True)
        elif isinstance(a, pd.Series):
            pd.testing.assert_series_equal(a, b, check_exact=True)
        elif isinstance(a, pd.Index):
            pd.testing.assert_index_equal(a, b, exact=True)
        else:
            assert a == b, path
        return
    # anything else: what its pickling protocol says it is made of
    ra, rb = a.__reduce_ex__(4), b.__reduce_ex__(4)
    if isinstance(ra, str):  # a named singleton, e.g. np.mean (an array-function dispatcher)
        assert a is b, f"{path}: {a!r} is not {b!r}"
        return
    assert type(ra) is tuple and type(rb) is tuple, f"{path}: reduces to {ra!r}"
    assert ra[0] is rb[0], f"{path}: rebuilt by {ra[0]!r} != {rb[0]!r}"
    if ra[0] is copyreg.__newobj__:
        assert ra[1][0] is rb[1][0], path
    assert len(ra) == len(rb), path
    assert_same(ra[1], rb[1], f"{path}.__reduce__()[1]", seen)
    sa, sb = (ra[2], rb[2]) if len(ra) > 2 else (None, None)
    if type(sa) is dict and type(sb) is dict:  # attributes: root.estimators_[0].tree_
        assert list(sa) == list(sb), f"{path}: attributes {list(sa)} != {list(sb)}"
        for k in sa:
            assert_same(sa[k], sb[k], f"{path}.{k}", seen)
    else:
        assert_same(sa, sb, f"{path}.__getstate__()", seen)
    for i in range(3, len(ra)):
        ia, ib = (x if x is None else list(x) for x in (ra[i], rb[i]))  # list and dict items
        assert_same(ia, ib, f"{path}.__reduce__()[{i}]", seen)


def _outputs(est: Any, X: Any) -> dict[str, Any]:
    """Every method's output on ``X`` (or the exception it raises), and its warnings."""
    out: dict[str, Any] = {}
    for m in METHODS:
        if not hasattr(est, m):
            continue
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            try:
                r = getattr(est, m)(X)
            except Exception as exc:  # the copy must fail the same way
                r = (type(exc), str(exc))
        if sp.issparse(r):
            r = (type(r), r.toarray())
        out[m] = (r, [(x.category, str(x.message)) for x in w])
    return out


# ----------------------------------------------------------------------- the test


def _cases() -> list[Any]:
    cases = []
    for name, Est in ALL:
        marks = []
        if name in EXCEPTIONS:
            kind, reason = EXCEPTIONS[name]
            skip = kind == "skip"
            marks.append(pytest.mark.skip(reason=reason) if skip else pytest.mark.xfail(reason=reason, strict=True))
        cases.append(pytest.param(name, Est, id=name, marks=marks))
    return cases


@pytest.mark.parametrize(("name", "Est"), _cases())
def test_all_estimators_roundtrip(name: str, Est: type) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # convergence, tiny data, deprecations: fitting only
        est = _build(name, Est)
        fit_args, X_new = _data(name, est)
        est.fit(*fit_args)
    # A deprecated class warns whenever an instance is created: by a load too (as by pickle)
    deprecated = any(f"Class {name} is deprecated" in str(w.message) for w in caught)

    data = amber.dumps(est)
    assert amber.untrusted_types(data) == []
    if deprecated:
        with pytest.warns(FutureWarning, match=f"Class {name} is deprecated"):
            loaded = amber.loads(data)
    else:
        loaded = amber.loads(data)

    assert type(loaded) is type(est)
    assert sorted(loaded.get_params()) == sorted(est.get_params())
    assert_same(est, loaded)

    before = _outputs(est, X_new)
    after = _outputs(loaded, X_new)
    assert list(before) == list(after)
    for m in before:
        assert_same(before[m], after[m], f"{name}.{m}(X_new)")


def test_exceptions_are_current_and_documented() -> None:
    from pathlib import Path

    assert set(EXCEPTIONS) <= {name for name, _ in ALL}
    assert all(kind in ("skip", "xfail") and reason for kind, reason in EXCEPTIONS.values())
    doc = Path(__file__).resolve().parents[1] / "docs" / "sklearn.md"
    if doc.exists():
        text = doc.read_text(encoding="utf-8")
        assert all(f"`{name}`" in text for name in EXCEPTIONS)


# ------------------------------------------------------------ named integration tests


def _fit(est: Any, *args: Any, **kwargs: Any) -> Any:
    """``est.fit`` with the warnings tiny data brings (convergence, few samples) silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(*args, **kwargs)


def roundtrip(obj: Any) -> Any:
    """Save and load with the default trust list only; the copy equals the original."""
    data = amber.dumps(obj)
    assert amber.untrusted_types(data) == []
    loaded = amber.loads(data)
    assert type(loaded) is type(obj)
    assert_same(obj, loaded)
    return loaded


def assert_same_outputs(a: Any, b: Any, X: Any, methods: tuple[str, ...] = METHODS) -> None:
    """Both give identical output from every method they have (at least one)."""
    oa, ob = _outputs(a, X), _outputs(b, X)
    oa = {m: v for m, v in oa.items() if m in methods}
    ob = {m: v for m, v in ob.items() if m in methods}
    assert oa and list(oa) == list(ob)
    for m in oa:
        r = oa[m][0]
        assert not (type(r) is tuple and isinstance(r[0], type) and issubclass(r[0], Exception)), (m, r)
        assert_same(oa[m], ob[m], f"{type(a).__name__}.{m}(X)")


def _frame(n: int, seed: int) -> Any:
    pd = pytest.importorskip("pandas")
    r = np.random.RandomState(seed)
    age = r.uniform(18, 80, n)
    age[::9] = np.nan
    return pd.DataFrame(
        {
            "age": age,
            "income": r.lognormal(10, 1, n),
            "city": r.choice(["paris", "lyon", "nice"], n),
            "plan": pd.Categorical(r.choice(["free", "pro", "team"], n)),
        }
    )


@pytest.mark.parametrize("pandas_output", [False, True])
def test_pipeline_column_transformer_dataframe(pandas_output: bool) -> None:
    from sklearn.compose import ColumnTransformer, make_column_selector
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    df, new = _frame(80, 0), _frame(25, 1)
    new.loc[3, "city"] = "brest"  # unseen category
    y = (df["income"] > df["income"].median()).to_numpy().astype(int)
    pre = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), ["age", "income"]),
            (
                "cat",
                OneHotEncoder(handle_unknown="ignore", sparse_output=not pandas_output),
                make_column_selector(dtype_exclude="number"),
            ),
        ]
    )
    model = Pipeline([("pre", pre), ("clf", LogisticRegression())])
    if pandas_output:
        model.set_output(transform="pandas")
    _fit(model, df, y)
    loaded = roundtrip(model)
    assert_same_outputs(model, loaded, new)
    assert_same(model[:-1].transform(new), loaded[:-1].transform(new))
    assert list(loaded.named_steps["pre"].get_feature_names_out()) == list(pre.get_feature_names_out())


def test_function_transformer_numpy_functions() -> None:
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    X = np.abs(X_FIT)
    ft = FunctionTransformer(np.log1p, inverse_func=np.expm1, check_inverse=False)
    model = _fit(make_pipeline(ft, Ridge()), X, Y_REG)
    ttr = _fit(TransformedTargetRegressor(Ridge(), func=np.log, inverse_func=np.exp), X, np.exp(Y_REG / 4))
    agg = _fit(FunctionTransformer(np.mean, kw_args={"axis": 1, "keepdims": True}), X)
    for est in (model, ttr, agg):
        loaded = roundtrip(est)
        assert_same_outputs(est, loaded, np.abs(X_NEW))
    loaded = amber.loads(amber.dumps(ft.fit(X)))
    assert loaded.func is np.log1p and loaded.inverse_func is np.expm1
    assert_same(ft.inverse_transform(X_NEW), loaded.inverse_transform(X_NEW))


def test_stacking_and_voting() -> None:
    from sklearn.ensemble import StackingClassifier, StackingRegressor, VotingClassifier
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVR
    from sklearn.tree import DecisionTreeClassifier

    base = [
        ("tree", DecisionTreeClassifier(max_depth=3, random_state=0)),
        ("nb", GaussianNB()),
        ("knn", KNeighborsClassifier()),
    ]
    models = [
        StackingClassifier(base, final_estimator=LogisticRegression(), cv=3),
        StackingClassifier(base, stack_method="predict_proba", passthrough=True, cv=3),
        VotingClassifier(base, voting="soft", weights=[1, 2, 1]),
        VotingClassifier(base, voting="hard"),
    ]
    for m in models:
        _fit(m, X_FIT, Y_CLASS)
        assert_same_outputs(m, roundtrip(m), X_NEW)
    reg = _fit(StackingRegressor([("ridge", Ridge()), ("svr", SVR())], cv=3), X_FIT, Y_REG)
    assert_same_outputs(reg, roundtrip(reg), X_NEW)


def test_trees_and_forests() -> None:
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        IsolationForest,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    cls = [
        DecisionTreeClassifier(random_state=0),
        RandomForestClassifier(n_estimators=10, random_state=0, oob_score=True),
        ExtraTreesClassifier(n_estimators=10, random_state=0),
        GradientBoostingClassifier(n_estimators=10, random_state=0),
        GradientBoostingClassifier(n_estimators=10, loss="exponential", subsample=0.8, random_state=0),
    ]
    regs = [
        DecisionTreeRegressor(max_depth=4, criterion="absolute_error", random_state=0),
        RandomForestRegressor(n_estimators=10, max_samples=0.5, random_state=0),
        ExtraTreesRegressor(n_estimators=10, random_state=0),
        GradientBoostingRegressor(n_estimators=10, loss="huber", random_state=0),
        GradientBoostingRegressor(n_estimators=10, loss="quantile", alpha=0.9, random_state=0),
    ]
    for m in cls:
        y = Y_BINARY if getattr(m, "loss", None) == "exponential" else Y_CLASS
        _fit(m, X_FIT, y)
        loaded = roundtrip(m)
        assert_same_outputs(m, loaded, X_NEW)
        assert_same(m.apply(X_NEW), loaded.apply(X_NEW))
    for m in regs:
        _fit(m, X_FIT, Y_REG)
        loaded = roundtrip(m)
        assert_same_outputs(m, loaded, X_NEW)
        assert_same(m.apply(X_NEW), loaded.apply(X_NEW))
    forest = _fit(IsolationForest(n_estimators=10, random_state=0), X_FIT)
    assert_same_outputs(forest, roundtrip(forest), X_NEW)
    # the tree itself
    tree = cls[0].tree_
    loaded_tree = amber.loads(amber.dumps(tree))
    assert type(loaded_tree) is type(tree)
    assert_same(tree.predict(X_NEW.astype(np.float32)), loaded_tree.predict(X_NEW.astype(np.float32)))
    assert loaded_tree.node_count == tree.node_count and loaded_tree.max_depth == tree.max_depth


def test_hist_gradient_boosting() -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    # missing values, early stopping, 3 classes, interaction and monotonic constraints
    X = X_FIT.copy()
    X[::5, 0] = np.nan
    Xn = X_NEW.copy()
    Xn[::4, 0] = np.nan
    for clf in (
        HistGradientBoostingClassifier(
            max_iter=10, min_samples_leaf=5, early_stopping=True, validation_fraction=0.2, random_state=0
        ),
        HistGradientBoostingClassifier(
            max_iter=10,
            min_samples_leaf=5,
            interaction_cst=[[0, 1], [2, 3, 4]],
            monotonic_cst=[1, 0, 0, 0, -1],
            class_weight="balanced",
        ),
    ):
        y = Y_CLASS if clf.monotonic_cst is None else Y_BINARY
        _fit(clf, X, y)
        loaded = roundtrip(clf)
        assert_same_outputs(clf, loaded, Xn)
        assert_same(list(clf.staged_predict_proba(Xn)), list(loaded.staged_predict_proba(Xn)))
    for loss in ("squared_error", "absolute_error", "poisson", "gamma", "quantile"):
        y_reg = np.exp(Y_REG / 4) if loss in ("poisson", "gamma") else Y_REG
        reg = HistGradientBoostingRegressor(loss=loss, max_iter=10, min_samples_leaf=5, random_state=0)
        if loss == "quantile":
            reg.set_params(quantile=0.8)
        _fit(reg, X, y_reg)
        assert_same_outputs(reg, roundtrip(reg), Xn)


@pytest.mark.parametrize("source", ["pandas_category_dtype", "numpy_column_indices"])
def test_hist_gradient_boosting_categorical(source: str) -> None:
    pd = pytest.importorskip("pandas")
    from sklearn.ensemble import HistGradientBoostingClassifier

    if source == "pandas_category_dtype":
        X, Xn = _frame(80, 0), _frame(25, 1)
        X["city"] = X["city"].astype("category")
        Xn["city"] = pd.Categorical(Xn["city"], categories=X["city"].cat.categories)
        y = (X["income"] > X["income"].median()).to_numpy().astype(int)
        cats: Any = "from_dtype"
    else:
        X = np.column_stack([X_FIT, X_CAT_FIT[:, 0]])
        Xn = np.column_stack([X_NEW, X_CAT_NEW[:, 0]])
        y, cats = Y_CLASS, [N_FEAT]
    clf = HistGradientBoostingClassifier(
        max_iter=10, min_samples_leaf=5, categorical_features=cats, random_state=0
    )
    _fit(clf, X, y)
    assert clf.is_categorical_ is not None and clf.is_categorical_.any()
    loaded = roundtrip(clf)
    assert_same_outputs(clf, loaded, Xn)


def test_svm_probability() -> None:
    from sklearn.svm import SVC, SVR, NuSVC, OneClassSVM

    for m in (
        SVC(probability=True, random_state=0),
        SVC(kernel="poly", degree=2, decision_function_shape="ovo"),
        NuSVC(kernel="sigmoid"),
    ):
        _fit(m, X_FIT, Y_CLASS)
        loaded = roundtrip(m)
        assert_same_outputs(m, loaded, X_NEW)
        assert_same(m.support_vectors_, loaded.support_vectors_)
    for m in (SVR(kernel="rbf", C=3.0), OneClassSVM(gamma="scale", nu=0.2)):
        _fit(m, X_FIT, Y_REG)
        assert_same_outputs(m, roundtrip(m), X_NEW)


@pytest.mark.parametrize(
    "params",
    [
        dict(algorithm="kd_tree"),
        dict(algorithm="ball_tree"),
        dict(algorithm="kd_tree", metric="chebyshev", weights="distance"),
        dict(algorithm="ball_tree", metric="minkowski", p=3),
        dict(algorithm="ball_tree", metric="mahalanobis", metric_params={"VI": np.diag([1.0, 2, 0.5, 1, 3])}),
        dict(algorithm="brute", metric="cosine"),
    ],
    ids=lambda p: "-".join(str(v) for k, v in p.items() if k != "metric_params"),
)
def test_kneighbors_classifier(params: dict[str, Any]) -> None:
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

    clf = _fit(KNeighborsClassifier(n_neighbors=4, **params), X_FIT, Y_CLASS)
    loaded = roundtrip(clf)
    assert_same_outputs(clf, loaded, X_NEW)
    assert type(loaded._tree) is type(clf._tree)
    assert_same(clf.kneighbors_graph(X_NEW, mode="distance"), loaded.kneighbors_graph(X_NEW, mode="distance"))
    reg = _fit(KNeighborsRegressor(n_neighbors=3, **params), X_FIT, Y_REG)
    assert_same_outputs(reg, roundtrip(reg), X_NEW)


@pytest.mark.parametrize("kind", ["KDTree", "BallTree"])
def test_kd_and_ball_tree_objects(kind: str) -> None:
    import sklearn.neighbors as nb

    Tree = getattr(nb, kind)
    for tree in (Tree(X_FIT, leaf_size=5), Tree(X_FIT, leaf_size=8, metric="manhattan")):
        loaded = roundtrip(tree)
        assert type(loaded) is Tree
        assert_same(tree.query(X_NEW, k=4), loaded.query(X_NEW, k=4))
        assert_same(tree.query(X_NEW, k=2, dualtree=True), loaded.query(X_NEW, k=2, dualtree=True))
        assert_same(tree.query_radius(X_NEW, r=1.5), loaded.query_radius(X_NEW, r=1.5))
        assert_same(
            tree.query_radius(X_NEW, r=2.0, return_distance=True, sort_results=True),
            loaded.query_radius(X_NEW, r=2.0, return_distance=True, sort_results=True),
        )
        assert_same(tree.kernel_density(X_NEW, h=0.5), loaded.kernel_density(X_NEW, h=0.5))
        r = [0.5, 1.0, 2.0]
        assert_same(tree.two_point_correlation(X_NEW, r=r), loaded.two_point_correlation(X_NEW, r=r))
        assert_same(tree.get_arrays(), loaded.get_arrays())


@pytest.mark.parametrize(
    ("metric", "kwargs"),
    [
        ("euclidean", {}),
        ("minkowski", {"p": 3.0}),
        ("minkowski", {"p": 2.0, "w": np.arange(1.0, 6.0)}),
        ("mahalanobis", {"VI": np.diag([1.0, 2.0, 0.5, 1.0, 3.0])}),
        ("seuclidean", {"V": np.arange(1.0, 6.0)}),
        ("chebyshev", {}),
        ("haversine", {}),
    ],
    ids=lambda v: v if isinstance(v, str) else "-".join(v),
)
def test_distance_metric(metric: str, kwargs: dict[str, Any]) -> None:
    from sklearn.metrics import DistanceMetric

    X, Y = (X_FIT[:, :2], X_NEW[:, :2]) if metric == "haversine" else (X_FIT, X_NEW)
    for dtype in (np.float64, np.float32):
        dm = DistanceMetric.get_metric(metric, dtype=dtype, **kwargs)
        loaded = roundtrip(dm)
        assert type(loaded) is type(dm)
        Xd, Yd = X.astype(dtype), Y.astype(dtype)
        assert_same(dm.pairwise(Xd, Yd), loaded.pairwise(Xd, Yd))
        assert_same(dm.pairwise(Yd), loaded.pairwise(Yd))


def test_clustering() -> None:
    from sklearn.cluster import DBSCAN, HDBSCAN, AgglomerativeClustering, Birch, KMeans, MiniBatchKMeans

    for m in (
        KMeans(n_clusters=3, n_init=2, random_state=0),
        KMeans(n_clusters=3, n_init=1, algorithm="elkan", random_state=0),
        MiniBatchKMeans(n_clusters=3, n_init=1, random_state=0),
        Birch(n_clusters=3),
    ):
        _fit(m, X_FIT)
        loaded = roundtrip(m)
        assert_same_outputs(m, loaded, X_NEW)
        assert_same(m.labels_, loaded.labels_)
    for m in (
        DBSCAN(eps=1.2, min_samples=3),
        HDBSCAN(min_cluster_size=5),
        AgglomerativeClustering(n_clusters=3, linkage="ward"),
    ):
        _fit(m, X_FIT)
        loaded = roundtrip(m)
        assert_same(m.labels_, loaded.labels_)
    db = _fit(DBSCAN(eps=1.2, min_samples=3), X_FIT)
    assert roundtrip(db).core_sample_indices_.tolist() == db.core_sample_indices_.tolist()


def test_decomposition() -> None:
    from sklearn.decomposition import NMF, PCA, IncrementalPCA, KernelPCA, TruncatedSVD

    X, Xn = np.abs(X_FIT), np.abs(X_NEW)
    sparse_X = sp.csr_matrix(np.where(X > 1.0, X, 0.0))
    models = [
        (PCA(n_components=3), X, Xn),
        (PCA(n_components=0.9, whiten=True, svd_solver="full"), X, Xn),
        (PCA(n_components=2, svd_solver="randomized", random_state=0), X, Xn),
        (TruncatedSVD(n_components=2, random_state=0), sparse_X, sp.csr_matrix(Xn)),
        (NMF(n_components=2, init="nndsvda", max_iter=500, random_state=0), X, Xn),
        (IncrementalPCA(n_components=2, batch_size=20), X, Xn),
        (KernelPCA(n_components=2, kernel="rbf", fit_inverse_transform=True), X, Xn),
    ]
    for m, Xf, Xnew in models:
        _fit(m, Xf)
        loaded = roundtrip(m)
        assert_same_outputs(m, loaded, Xnew)
        Z = m.transform(Xnew)
        assert_same(m.inverse_transform(Z), loaded.inverse_transform(Z))


SENTENCES = [
    "Amber saves scikit-learn models without pickle.",
    "The model is loaded safely, and nothing is executed.",
    "Pickle files can run arbitrary code when they are loaded!",
    "A vectorizer keeps its vocabulary and its stop words.",
    "Tf-idf weights come from the document frequencies.",
]


@pytest.mark.parametrize("kind", ["count", "tfidf", "hashing"])
def test_text_vectorizers(kind: str) -> None:
    from sklearn.feature_extraction.text import (
        CountVectorizer,
        HashingVectorizer,
        TfidfTransformer,
        TfidfVectorizer,
    )
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    new = ["pickle runs code", "the vocabulary of a model", "nothing known here: zebra"]
    if kind == "count":
        models = [
            CountVectorizer(stop_words="english", ngram_range=(1, 2)),
            CountVectorizer(analyzer="char_wb", ngram_range=(2, 3), max_features=40, binary=True),
            CountVectorizer(stop_words=["the", "and", "is"], lowercase=False, token_pattern=r"(?u)\b\w+\b"),
        ]
    elif kind == "tfidf":
        models = [
            TfidfVectorizer(stop_words="english", sublinear_tf=True),
            TfidfVectorizer(ngram_range=(1, 2), norm="l1", smooth_idf=False, dtype=np.float32),
        ]
    else:
        models = [
            HashingVectorizer(n_features=64, alternate_sign=False),
            make_pipeline(HashingVectorizer(n_features=32), TfidfTransformer()),
        ]
    for m in models:
        _fit(m, SENTENCES)
        loaded = roundtrip(m)
        assert_same_outputs(m, loaded, new)
        if hasattr(m, "vocabulary_"):
            assert loaded.vocabulary_ == m.vocabulary_
            assert type(loaded.vocabulary_) is dict
            assert list(loaded.get_feature_names_out()) == list(m.get_feature_names_out())
            assert loaded.get_stop_words() == m.get_stop_words()
        if hasattr(m, "idf_"):
            assert_same(m.idf_, loaded.idf_)
    clf = make_pipeline(TfidfVectorizer(stop_words="english"), LogisticRegression())
    _fit(clf, SENTENCES, [0, 1, 1, 0, 0])
    assert_same_outputs(clf, roundtrip(clf), new)


def test_mlp() -> None:
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    for m in (
        MLPClassifier(hidden_layer_sizes=(16, 8), max_iter=50, random_state=0),
        MLPClassifier(
            hidden_layer_sizes=(8,), solver="sgd", activation="tanh", early_stopping=True, max_iter=30, random_state=0
        ),
        MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", activation="logistic", max_iter=30, random_state=0),
    ):
        _fit(m, X_FIT, Y_CLASS)
        loaded = roundtrip(m)
        assert_same_outputs(m, loaded, X_NEW)
        assert_same(m.coefs_, loaded.coefs_)
    reg = _fit(MLPRegressor(hidden_layer_sizes=(8,), max_iter=50, random_state=0), X_FIT, Y_REG)
    loaded = roundtrip(reg)
    assert_same_outputs(reg, loaded, X_NEW)
    # training goes on identically from the loaded copy (weights, optimizer and random state)
    for m in (reg, loaded):
        m.set_params(warm_start=True, max_iter=5)
        _fit(m, X_FIT, Y_REG)
        m.partial_fit(X_FIT, Y_REG)
    assert_same(reg, loaded)
    assert_same(reg.predict(X_NEW), loaded.predict(X_NEW))


def _check_search(search: Any, loaded: Any) -> None:
    assert_same_outputs(search, loaded, X_NEW)
    assert type(loaded.best_estimator_) is type(search.best_estimator_)
    assert_same(search.best_estimator_.predict(X_NEW), loaded.best_estimator_.predict(X_NEW))
    assert_same(loaded.best_params_, search.best_params_)
    assert loaded.score(X_NEW, Y_CLASS[:N_NEW]) == search.score(X_NEW, Y_CLASS[:N_NEW])
    assert_same(search.cv_results_, loaded.cv_results_)  # masked arrays among them


def test_search_cv() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    pipe = make_pipeline(StandardScaler(), LogisticRegression())
    grid = GridSearchCV(pipe, {"logisticregression__C": [0.1, 1.0, 10.0]}, cv=3, scoring="accuracy")
    rand = RandomizedSearchCV(
        SVC(),
        {"C": [0.1, 1.0, 10.0], "gamma": np.logspace(-3, 0, 7), "kernel": ["rbf", "poly"]},
        n_iter=4,
        cv=3,
        scoring={"acc": "accuracy", "f1": "f1_macro", "bal": "balanced_accuracy"},
        refit="bal",
        random_state=0,
    )
    plain = GridSearchCV(LogisticRegression(), {"C": [0.5, 2.0]}, cv=2)  # scorer_ is the estimator's score
    for search in (grid, rand, plain):
        _fit(search, X_FIT, Y_CLASS)
        _check_search(search, roundtrip(search))
    loaded = roundtrip(grid)
    assert loaded.scorer_(loaded, X_NEW, Y_CLASS[:N_NEW]) == grid.scorer_(grid, X_NEW, Y_CLASS[:N_NEW])
    loaded = roundtrip(rand)
    assert sorted(loaded.scorer_) == ["acc", "bal", "f1"]
    for k, scorer in rand.scorer_.items():
        assert loaded.scorer_[k](loaded, X_NEW, Y_CLASS[:N_NEW]) == scorer(rand, X_NEW, Y_CLASS[:N_NEW])
    # a loaded search can be fitted again, and finds the same
    _fit(loaded, X_FIT, Y_CLASS)
    assert_same(loaded.predict(X_NEW), rand.predict(X_NEW))
    assert_same(loaded.best_params_, rand.best_params_)


def _distribution_search(discrete: bool) -> Any:
    from scipy import stats
    from sklearn.model_selection import RandomizedSearchCV
    from sklearn.svm import SVC

    dists: dict[str, Any] = {"C": stats.loguniform(1e-2, 1e2), "gamma": stats.expon(scale=0.1)}
    if discrete:
        dists = {"kernel": ["poly"], "degree": stats.randint(1, 4)}
    search = RandomizedSearchCV(SVC(), dists, n_iter=4, cv=3, scoring="accuracy", random_state=0)
    return _fit(search, X_FIT, Y_CLASS)


def test_randomized_search_scipy_distributions_default_trust() -> None:
    search = _distribution_search(discrete=False)
    _check_search(search, roundtrip(search))


def test_randomized_search_scipy_distributions_rebuilt_by_name() -> None:
    """Frozen distributions are saved by their scipy.stats name and arguments, and rebuilt by
    calling that distribution: the distribution object's own state (which holds source
    text it exec()s) is never restored, so they need no trust."""
    search = _distribution_search(discrete=False)
    data = amber.dumps(search)
    assert amber.untrusted_types(data) == []
    assert "scipy.stats.frozen" in amber.inspect(data).types
    loaded = amber.loads(data)
    for k in ("C", "gamma"):
        dist = loaded.param_distributions[k]
        assert_same(dist.rvs(size=5, random_state=1), search.param_distributions[k].rvs(size=5, random_state=1))


def test_randomized_search_discrete_distribution() -> None:
    search = _distribution_search(discrete=True)
    loaded = amber.loads(amber.dumps(search), trusted=["scipy.stats"])
    _check_search(search, loaded)


def test_hostile_distribution_does_not_run_on_load() -> None:
    """A distribution whose state carries code is refused by the default trust list."""
    import builtins
    import copy

    from scipy import stats

    dist = copy.deepcopy(stats.norm)
    dist._parse_arg_template = "import builtins; builtins._amber_pwned = True\n" + dist._parse_arg_template
    data = amber.dumps({"model": dist})
    assert amber.untrusted_types(data) == ["scipy.stats._continuous_distns.norm_gen"]
    with pytest.raises(amber.UntrustedTypeError):
        amber.loads(data)
    assert not hasattr(builtins, "_amber_pwned")


def test_scoring_monitor_is_not_trusted_by_default() -> None:
    """scikit-learn callbacks connect to the socket address in their state on unpickling."""
    callback = pytest.importorskip("sklearn.callback")
    # its state, without the listener a real one opens in __init__
    monitor = object.__new__(callback.ScoringMonitor)
    vars(monitor).update(_scoring=["accuracy"], _log=[], _estimator_scorers={}, _listener_handle=("/nowhere", b"k"))
    data = amber.dumps(monitor)
    assert "sklearn.callback._scoring_monitor.ScoringMonitor" in amber.untrusted_types(data)
    with pytest.raises(amber.UntrustedTypeError):
        amber.loads(data)


def test_feature_selection_and_calibration() -> None:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.feature_selection import SelectKBest, SelectPercentile, chi2, f_classif, mutual_info_classif
    from sklearn.isotonic import IsotonicRegression
    from sklearn.svm import LinearSVC

    for sel in (
        SelectKBest(f_classif, k=2),
        SelectKBest(chi2, k=3),
        SelectPercentile(mutual_info_classif, percentile=50),
    ):
        X = np.abs(X_FIT) if sel.score_func is chi2 else X_FIT
        _fit(sel, X, Y_CLASS)
        loaded = roundtrip(sel)
        assert loaded.score_func is sel.score_func
        assert_same_outputs(sel, loaded, np.abs(X_NEW))
        assert_same(sel.get_support(), loaded.get_support())
    for cal in (
        CalibratedClassifierCV(LinearSVC(), cv=3, method="sigmoid"),
        CalibratedClassifierCV(LinearSVC(), cv=3, method="isotonic"),
        CalibratedClassifierCV(LinearSVC(), cv=3, method="temperature"),
    ):
        _fit(cal, X_FIT, Y_CLASS)
        assert_same_outputs(cal, roundtrip(cal), X_NEW)
    x = X_FIT[:, 0]
    for iso in (
        IsotonicRegression(),
        IsotonicRegression(increasing=False, out_of_bounds="clip", y_min=-3.0, y_max=3.0),
    ):
        _fit(iso, x, Y_REG)
        loaded = roundtrip(iso)
        xn = np.linspace(-4, 4, 33)
        assert_same(iso.predict(xn), loaded.predict(xn))
        assert_same(iso.transform(xn), loaded.transform(xn))


def test_encoders_categories() -> None:
    from sklearn.preprocessing import LabelBinarizer, LabelEncoder, OneHotEncoder, OrdinalEncoder, TargetEncoder

    colors = np.array(["red", "green", "blue", "green", "red", "red", "blue", "teal"] * 5)
    le = _fit(LabelEncoder(), colors)
    loaded = roundtrip(le)
    assert_same(loaded.classes_, le.classes_)
    assert_same(loaded.transform(["teal", "blue"]), le.transform(["teal", "blue"]))
    assert_same(loaded.inverse_transform([0, 3]), le.inverse_transform([0, 3]))
    lb = _fit(LabelBinarizer(), colors)
    assert_same(roundtrip(lb).transform(["red", "teal"]), lb.transform(["red", "teal"]))

    X = np.column_stack([colors, np.array(["s", "m", "l", "xl"] * 10), np.arange(40) % 3]).astype(object)
    X[:, 2] = X[:, 2].astype(int)
    Xn = np.array([["blue", "m", 1], ["purple", "s", 2], ["red", "xl", 5]], dtype=object)
    cats = [["red", "green", "blue", "teal"], ["s", "m", "l", "xl"], [0, 1, 2]]
    encoders = [
        OneHotEncoder(handle_unknown="ignore"),
        OneHotEncoder(drop="first", sparse_output=False, handle_unknown="ignore", dtype=np.float32),
        OneHotEncoder(categories=cats, handle_unknown="infrequent_if_exist", min_frequency=6),
        OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
        OrdinalEncoder(
            categories=cats, handle_unknown="use_encoded_value", unknown_value=np.nan, encoded_missing_value=-2
        ),
    ]
    for enc in encoders:
        _fit(enc, X)
        loaded = roundtrip(enc)
        assert len(loaded.categories_) == 3
        for a, b in zip(enc.categories_, loaded.categories_):
            assert_same(a, b)
        assert_same_outputs(enc, loaded, Xn)
        assert list(loaded.get_feature_names_out()) == list(enc.get_feature_names_out())
    te = _fit(TargetEncoder(random_state=0, cv=3), X[:, :2], Y_REG[:40])
    assert_same_outputs(te, roundtrip(te), Xn[:, :2])


def test_dump_and_load_file(tmp_path: Any) -> None:
    from sklearn.ensemble import RandomForestClassifier

    model = _fit(RandomForestClassifier(n_estimators=5, random_state=0), X_FIT, Y_CLASS)
    path = tmp_path / "forest.amber"
    amber.dump(model, path)
    assert amber.untrusted_types(path) == []
    loaded = amber.load(path)
    assert_same(model, loaded)
    assert_same_outputs(model, loaded, X_NEW)


# ------------------------------------------------------------------------- errors


def scale_by_two(x: Any) -> Any:
    """A module-level function of the user's own: saved by name, loaded when trusted."""
    return 2 * x


def test_lambda_in_pipeline_is_refused_with_its_path() -> None:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    model = _fit(make_pipeline(FunctionTransformer(lambda x: x)), X_FIT)
    with pytest.raises(amber.UnsupportedTypeError) as info:
        amber.dumps(model)
    err = info.value
    assert isinstance(err, amber.AmberError)
    assert err.path == "root.steps[0][1].func"
    assert "root.steps[0][1].func" in str(err)
    assert "lambda" in str(err) and "module level" in str(err)


def test_local_function_is_refused_with_its_path() -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    def clip(x: Any) -> Any:
        return np.clip(x, -1, 1)

    model = Pipeline([("scale", StandardScaler()), ("clip", FunctionTransformer(clip))])
    _fit(model, X_FIT)
    with pytest.raises(amber.UnsupportedTypeError) as info:
        amber.dumps(model)
    assert info.value.path == "root.steps[1][1].func"
    assert "module level" in str(info.value) and "clip" in str(info.value)

    ct = ColumnTransformer([("f", FunctionTransformer(inverse_func=clip), [0, 1])])
    _fit(ct, X_FIT)
    with pytest.raises(amber.UnsupportedTypeError) as info:
        amber.dumps(ct)
    assert info.value.path.startswith("root.transformers")
    assert info.value.path.endswith(".inverse_func")


def test_explain_and_check() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    bad = make_pipeline(FunctionTransformer(lambda x: x), StandardScaler(), LogisticRegression())
    _fit(bad, X_FIT, Y_CLASS)
    problems = amber.explain(bad)
    assert [p.path for p in problems] == ["root.steps[0][1].func"]
    assert problems[0].kind == "unsupported"
    assert "module level" in str(problems)
    assert amber.check(bad) is False

    good = make_pipeline(FunctionTransformer(np.log1p), StandardScaler(), LogisticRegression())
    _fit(good, np.abs(X_FIT), Y_CLASS)
    assert list(amber.explain(good)) == []
    assert amber.check(good) is True

    # a module-level function of the user's: saves, but loading needs trusted=[...]
    own = _fit(make_pipeline(FunctionTransformer(scale_by_two), LogisticRegression()), X_FIT, Y_CLASS)
    problems = amber.explain(own)
    assert [(p.path, p.kind) for p in problems] == [("root.steps[0][1].func", "untrusted")]
    name = f"{scale_by_two.__module__}.scale_by_two"
    assert name in problems[0].remedy
    data = amber.dumps(own)
    assert amber.untrusted_types(data) == [name]
    with pytest.raises(amber.UntrustedTypeError):
        amber.loads(data)
    loaded = amber.loads(data, trusted=[name])
    assert loaded[0].func is scale_by_two
    assert_same(own.predict_proba(X_NEW), loaded.predict_proba(X_NEW))
