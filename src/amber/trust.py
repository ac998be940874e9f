"""The trust list: which named callables and classes a load may import.

Trust only ever comes from the caller (``trusted=`` per call, :func:`trust` per process);
nothing stored in a file can widen it. Names on the deny list are refused even when their
package is trusted. An entry trusts a name exactly, or every name below a module when it is
that module's dotted prefix (``"mypkg"`` trusts ``"mypkg.models.Model"``).
"""

from __future__ import annotations

import importlib
import sys
import types
import warnings
from collections.abc import Iterable
from typing import Any

from amber.errors import DecodeError, UntrustedTypeError

__all__ = [
    "DEFAULT_CLASSES",
    "DEFAULT_TRUSTED",
    "DENIED",
    "is_denied",
    "is_trusted",
    "resolve",
    "trust",
    "trusted_names",
    "untrusted",
]

#: Names any load may import: harmless constructors of plain data.
DEFAULT_TRUSTED: frozenset[str] = frozenset(
    f"builtins.{n}"
    for n in (
        "bool bytearray bytes complex dict float frozenset int list object range set slice str tuple"
    ).split()
) | frozenset(
    {
        "collections.OrderedDict",
        "collections.Counter",
        "collections.defaultdict",
        "collections.deque",
        "numpy.ndarray",
        "numpy.dtype",
        "re._compile",
        # scikit-learn's default scoring functions (SelectKBest & co. hold them as parameters)
        "sklearn.feature_selection._univariate_selection.f_classif",
        "sklearn.feature_selection._univariate_selection.f_regression",
        "sklearn.feature_selection._univariate_selection.r_regression",
        "sklearn.feature_selection._univariate_selection.chi2",
        "sklearn.feature_selection._mutual_info.mutual_info_classif",
        "sklearn.feature_selection._mutual_info.mutual_info_regression",
        # HistGradientBoosting's categorical preprocessor holds partial(check_array, ...)
        "sklearn.utils.validation.check_array",
        # BisectingKMeans keeps the k-means step it runs as an attribute
        "sklearn.cluster._kmeans._kmeans_single_lloyd",
        "sklearn.cluster._kmeans._kmeans_single_elkan",
        # masked arrays (the search CVs' cv_results_) and B-splines (SplineTransformer)
        "numpy.ma.MaskedArray",
        "numpy.ma.core._mareconstruct",
        "scipy.interpolate._bsplines.BSpline",
        "scipy._lib.array_api_compat.numpy._aliases.asarray",
    }
) | frozenset(
    # the metrics behind scikit-learn's named scorers (``scoring="accuracy"``, scorer_)
    f"sklearn.metrics.{n}"
    for n in (
        "_classification.accuracy_score _classification.balanced_accuracy_score "
        "_classification.brier_score_loss _classification.d2_brier_score "
        "_classification.d2_log_loss_score _classification.f1_score _classification.fbeta_score "
        "_classification.jaccard_score _classification.log_loss _classification.matthews_corrcoef "
        "_classification.precision_score _classification.recall_score "
        "_ranking.average_precision_score _ranking.roc_auc_score _ranking.top_k_accuracy_score "
        "_regression.d2_absolute_error_score _regression.explained_variance_score _regression.max_error "
        "_regression.mean_absolute_error _regression.mean_absolute_percentage_error "
        "_regression.mean_gamma_deviance _regression.mean_poisson_deviance _regression.mean_tweedie_deviance "
        "_regression.mean_squared_error _regression.mean_squared_log_error _regression.median_absolute_error "
        "_regression.r2_score _regression.root_mean_squared_error _regression.root_mean_squared_log_error "
        "_scorer.negative_likelihood_ratio _scorer.positive_likelihood_ratio "
        "cluster._supervised.adjusted_mutual_info_score cluster._supervised.adjusted_rand_score "
        "cluster._supervised.completeness_score cluster._supervised.fowlkes_mallows_score "
        "cluster._supervised.homogeneity_score cluster._supervised.mutual_info_score "
        "cluster._supervised.normalized_mutual_info_score cluster._supervised.rand_score "
        "cluster._supervised.v_measure_score"
    ).split()
) | frozenset(
    # NumPy functions that only compute (FunctionTransformer, aggregations in models).
    # Every NumPy ufunc (np.log1p, np.exp, ...) is trusted as well; see _KIND_RULES.
    f"numpy.{n}"
    for n in (
        "mean median average sum prod std var min max amin amax ptp argmin argmax cumsum cumprod "
        "nanmean nanmedian nansum nanprod nanstd nanvar nanmin nanmax nanargmin nanargmax "
        "percentile quantile nanpercentile nanquantile round around clip diff gradient "
        "sort argsort unique ravel transpose squeeze atleast_1d atleast_2d "
        "asarray ascontiguousarray asfortranarray copy where nan_to_num real imag angle"
    ).split()
)

#: Module prefixes whose *classes* a load may import and rebuild: the estimators, frames,
#: matrices, models and modules that ML files hold, and the internal types inside them.
#: Only classes: a function under these modules is trusted only when named in
#: DEFAULT_TRUSTED or when it is a generated unpickler of such a class (Cython's
#: ``__pyx_unpickle_*``, scikit-learn's ``newObj``, pandas' ``_unpickle*``).
DEFAULT_CLASSES: tuple[str, ...] = (
    "sklearn",
    "scipy.sparse",
    "scipy.stats",
    "pandas",
    "lightgbm.sklearn",
    "lightgbm.basic",
    "xgboost.sklearn",
    "xgboost.core",
    "torch.nn.modules",
    "torch.nn.parameter",
    "torch.optim",
    "numpy.random",
    "numpy.dtypes",
    "collections",
    "enum",
)
#: Parts of those packages that read or write files, fetch data or run tests.
_CLASS_EXCLUDED: tuple[str, ...] = (
    "sklearn.datasets.",
    "sklearn.externals.",
    "sklearn.utils._testing.",
    "sklearn.utils._show_versions.",
    "sklearn.utils.parallel.",
    "pandas.io.",
    "pandas.util.",
    "pandas._testing.",
    "pandas.core.computation.",
    "pandas.plotting.",
    # ScoringMonitor & co. connect to the socket address in their state when unpickled
    "sklearn.callback.",
    # distributions: their __setstate__ exec()s the argument-parser source in their state
    "scipy.stats._distn_infrastructure.",
    "scipy.stats._continuous_distns.",
    "scipy.stats._discrete_distns.",
    "scipy.stats._levy_stable.",
)
_UNPICKLER_NAMES = ("__pyx_unpickle_", "_unpickle", "newObj")

#: Callables that load or execute code; never imported, whatever the caller trusts.
DENIED_PREFIXES: tuple[str, ...] = (
    "os.",
    "posix.",
    "nt.",
    "subprocess.",
    "importlib.",
    "runpy.",
    "shutil.",
    "socket.",
    "code.",
    "codeop.",
    "pty.",
    "webbrowser.",
    "pip.",
    "ctypes.",
    "sys.",
    "marshal.",
    "pickle.",
    "_pickle.",
    "dill.",
    "cloudpickle.",
    "joblib.",
    "torch.hub.",
    "torch.serialization.",
    "torch.storage._load_from_bytes",
    "torch.jit.",
    "torch.package.",
    "torch._C._load",
    "pandas.io.pickle.",
    "numpy.lib.format.",
    "numpy.lib.npyio.",
    "numpy.lib._npyio_impl.",
    "numpy.lib._datasource.",
    "numpy.ndarray.tofile",
    "numpy.ndarray.dump",
    "multiprocessing.",
    # found in published scanner bypasses (2024-2026): they run code, spawn processes,
    # write files or reach any callable by name
    "cProfile.",
    "profile.",
    "trace.",
    "bdb.",
    "pdb.",
    "timeit.",
    "doctest.",
    "idlelib.",
    "lib2to3.",
    "pydoc.",
    "pkgutil.",
    "_operator.attrgetter",
    "_operator.methodcaller",
    "_operator.itemgetter",
    "numpy.f2py.",
    "numpy.testing.",
    "numpy.distutils.",
    "torch._dynamo.",
    "torch._inductor.",
    "torch.fx.experimental.symbolic_shapes.",
    "torch.utils.collect_env.",
    "torch.utils.data.datapipes.",
    "torch.utils._config_module.",
    "torch.utils.bottleneck.",
    "uuid._get_command_stdout",
    "_osx_support.",
    "_aix_support.",
    "_pyrepl.",
    "imaplib.",
    "poplib.",
    "mailcap.",
    "test.",
    "ensurepip.",
    "venv.",
    "distutils.",
    "setuptools.",
    "mlflow.projects.",
    "logging.FileHandler",
    "logging.handlers.",
    "logging.config.",
    "py_compile.",
    "compileall.",
    "sqlite3.",
    "shelve.",
    "dbm.",
    "ssl.",
    "socketserver.",
    "xmlrpc.",
    "requests.",
    "aiohttp.",
    "types.CodeType",
    "types.FunctionType",
    "types.LambdaType",
    "io.",
    "_io.",
    "tempfile.",
    "urllib.",
    "http.",
    "ftplib.",
    "smtplib.",
    "asyncio.",
    "threading.",
    "signal.",
)
DENIED: frozenset[str] = frozenset(
    {
        "builtins.eval",
        "builtins.exec",
        "builtins.compile",
        "builtins.open",
        "builtins.getattr",
        "builtins.setattr",
        "builtins.delattr",
        "builtins.__import__",
        "builtins.globals",
        "builtins.locals",
        "builtins.vars",
        "builtins.breakpoint",
        "builtins.input",
        "numpy.load",
        "numpy.loadtxt",
        "numpy.fromfile",
        "numpy.lib.npyio.load",
        "torch.load",
        "pandas.read_pickle",
        "functools.partial",
        "functools.reduce",
        "operator.attrgetter",
        "operator.methodcaller",
        "operator.itemgetter",
        "copyreg._reconstructor",
        "copyreg.__newobj__",
        "copyreg.__newobj_ex__",
        "numpy.memmap",
        "numpy.DataSource",
        "numpy.save",
        "numpy.savez",
        "numpy.savetxt",
        "numpy.frombuffer",
        "numpy.genfromtxt",
        "numpy.fromregex",
        "numpy.core.multiarray._reconstruct",
        "numpy._core.multiarray._reconstruct",
        "torch.save",
        "torch.hub",
    }
)

_process_trusted: set[str] = set()


def trust(*names: str) -> None:
    """Trust ``names`` (exact names or module prefixes) for every later load in this process."""
    for n in names:
        if not isinstance(n, str) or not n:
            raise TypeError(f"trust() takes dotted names as strings, not {n!r}")
        _process_trusted.add(n)


def trusted_names() -> frozenset[str]:
    """What :func:`trust` added in this process."""
    return frozenset(_process_trusted)


def is_denied(name: str) -> bool:
    """Is ``name`` on the deny list (or reaching for a dunder attribute such as ``__class__``)?"""
    if name in DENIED or name.startswith(DENIED_PREFIXES):
        return True
    return any(p.startswith("__") and p.endswith("__") for p in name.split(".")[1:])


def _matches(name: str, entries: Iterable[str]) -> bool:
    for e in entries:
        if name == e or name.startswith(e + "."):
            return True
    return False


def _test_code(name: str) -> bool:
    """Test modules shipped inside packages (``sklearn/conftest.py``, ``pandas/tests/...``):
    never trusted by default, and never imported to find out (they import pytest & co.)."""
    return any(p in ("conftest", "tests", "testing") or p.startswith("test_") for p in name.split(".")[1:-1])


def _by_default_prefix(name: str) -> bool:
    """Is ``name`` below a module whose classes are trusted by default (pending the check
    that it *is* a class, which needs an import of that trusted module)?"""
    if _test_code(name):
        return False
    return _matches(name, DEFAULT_CLASSES) and not name.startswith(_CLASS_EXCLUDED) or name.startswith("numpy.")


def _kind_ok(name: str, obj: Any) -> bool:
    """May ``obj``, imported as ``name`` from a by-default trusted module, be used?"""
    if name.startswith("numpy.") and not _matches(name, DEFAULT_CLASSES):
        import numpy as np

        if isinstance(obj, type) and issubclass(obj, np.void):  # np.void(n) allocates n bytes
            return False
        return isinstance(obj, np.ufunc) or (isinstance(obj, type) and issubclass(obj, (np.generic, np.dtype)))
    if isinstance(obj, type):
        # defined under those modules, not merely imported into one of them
        # ("sklearn.callback._transport.Listener" is multiprocessing's)
        return _by_default_prefix(f"{obj.__module__}.{obj.__qualname__}")
    last = name.rpartition(".")[2]
    return callable(obj) and last.startswith(_UNPICKLER_NAMES)


_kind_cache: dict[str, bool] = {}


class _NotImportable(DecodeError):
    """The name is not importable in this environment (a missing module or attribute)."""


def _default_kind_trusted(name: str) -> bool:
    """Import ``name`` (its module is trusted by default) and check that it is a class or
    another kind of object the defaults trust. Cached per process. A name that is not
    importable here (another version of the package?) is not a trust question: it passes,
    and resolving it then fails with the import error, naming the package."""
    ok = _kind_cache.get(name)
    if ok is None:
        try:
            ok = _kind_ok(name, _import(name))
        except _NotImportable:
            ok = True
        except DecodeError:
            ok = False
        if len(_kind_cache) < 65536:
            _kind_cache[name] = ok
    return ok


def is_trusted(name: str, extra: Iterable[str] = (), imports: bool = True) -> bool:
    """May a load import ``name``, given the caller's extra ``trusted=`` entries?

    Names trusted by a default module prefix are checked to be classes (or other kinds
    the defaults allow); that imports the (trusted) module, never anything untrusted.
    ``imports=False`` skips that check (for ``inspect``, which imports nothing).
    """
    if is_denied(name):
        return False
    if name in DEFAULT_TRUSTED or _matches(name, _process_trusted) or _matches(name, extra):
        return True
    return _by_default_prefix(name) and (not imports or _default_kind_trusted(name))


def caller_trusts(name: str, extra: Iterable[str] = ()) -> bool:
    """Did the caller trust ``name`` (``trusted=`` or :func:`trust`), beyond the defaults?"""
    if is_denied(name):
        return False
    return _matches(name, _process_trusted) or _matches(name, extra)


def untrusted(names: Iterable[str], extra: Iterable[str] = (), imports: bool = True) -> list[str]:
    """The names among ``names`` that a load with ``trusted=extra`` may not import."""
    extra = tuple(extra)
    return sorted({n for n in names if not is_trusted(n, extra, imports)})


def _import(name: str) -> Any:
    """The object named ``module.qualname`` (no trust check: callers check first)."""
    module, _, qual = name.rpartition(".")
    parts = name.split(".")
    # Find the longest importable module prefix (for nested qualnames such as a.B.C).
    for cut in range(len(parts) - 1, 0, -1):
        modname = ".".join(parts[:cut])
        obj: Any = sys.modules.get(modname)
        if obj is None:
            try:
                obj = importlib.import_module(modname)
            except ImportError:
                continue
            except Exception as exc:  # a module that fails on import
                raise _NotImportable(f"cannot import {modname!r} (for {name!r}): {type(exc).__name__}: {exc}") from None
        try:
            with warnings.catch_warnings():  # numpy.core.* and other deprecated aliases warn
                warnings.simplefilter("ignore")
                for attr in parts[cut:]:
                    obj = getattr(obj, attr)
                    if isinstance(obj, types.ModuleType):  # "pkg.mod.os.system": not its own name
                        raise DecodeError(f"{name!r} reaches module {obj.__name__!r} through an attribute; refusing")
        except AttributeError:
            break
        real = f"{getattr(obj, '__module__', None)}.{getattr(obj, '__qualname__', None)}"
        if real != name and is_denied(real):
            raise DecodeError(f"{name!r} is {real!r}, which amber never loads")
        return obj
    raise _NotImportable(f"cannot import {name!r}: no module {module or qual!r} provides it in this environment")


def resolve(name: str, extra: Iterable[str] = ()) -> Any:
    """Import and return the object named ``module.qualname``, only if it is trusted."""
    if not is_trusted(name, extra):
        raise UntrustedTypeError([name], denied=[name] if is_denied(name) else ())
    return _import(name)
