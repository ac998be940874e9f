"""The trust list on loading generic objects: what a file may make amber import and call.

* ``UntrustedTypeError`` names every untrusted class or function at once (sorted), with the
  exact ``trusted=[...]`` to pass, before anything named by the file is imported;
* the deny list (``os.system``, ``eval``, ``pickle.loads``, ``functools.partial``...) refuses
  a file whatever the caller trusts, and before anything is called: hostile node trees built
  by hand (tests/_hostile.py) name them as globals, object classes and reduce callables,
  with arguments that would leave a marker file behind if they ever ran;
* attribute tricks (``pkg.mod.os.system``, dunders) and functions under the modules whose
  classes are trusted by default are refused too;
* trust comes only from the caller (``trusted=``, ``amber.trust``), never from the file;
* ``amber.untrusted_types``, ``amber.inspect`` and ``amber inspect`` list what a file needs.

Tests marked ``xfail(strict=True, reason="BUG: ...")`` document bugs found in amber.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import _objects_mod as m
import amber
from _hostile import T, build, listn, mapn, parse

MOD = m.MODULE  # "_objects_mod"
trust_mod = sys.modules["amber.trust"]  # amber.trust is the function; this is the module


# ---------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------


@pytest.fixture
def process_trust() -> Iterator[None]:
    """Restore the process-wide trust list (``amber.trust(...)``) after the test."""
    saved = set(trust_mod._process_trusted)
    try:
        yield
    finally:
        trust_mod._process_trusted.clear()
        trust_mod._process_trusted.update(saved)


@pytest.fixture
def no_import(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every name amber's trust layer imports; the test asserts on the list."""
    calls: list[str] = []
    real = trust_mod._import

    def spy(name: str) -> Any:
        calls.append(name)
        return real(name)

    monkeypatch.setattr(trust_mod, "_import", spy)
    return calls


def _run(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    tests_dir = str(Path(__file__).parent)
    env["PYTHONPATH"] = os.pathsep.join([str(cwd), tests_dir, env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


# ---------------------------------------------------------------------------------------
# UntrustedTypeError: every name at once, sorted, before any import
# ---------------------------------------------------------------------------------------


def test_untrusted_error_lists_everything_before_any_import(canary: tuple[str, Path], tmp_path: Path) -> None:
    name, marker = canary
    path = tmp_path / "obj.amber"
    # The file is written by another process, which imports the module (and so makes the
    # marker); this process has never imported it.
    res = _run(
        f"import amber, numpy as np, _objects_mod as m, {name} as c\n"
        f"amber.dump({{'z': c.Zeta(1), 'a': [c.Alpha(2), c.Alpha(3)], 'f': c.helper, "
        f"'p': m.Point(1, 2), 'u': np.log1p, 'l': [1, 2]}}, {str(path)!r})\n",
        tmp_path,
    )
    assert res.returncode == 0, res.stderr
    assert marker.exists()
    marker.unlink()
    assert name not in sys.modules

    expected = sorted([f"{name}.Alpha", f"{name}.Zeta", f"{name}.helper", f"{MOD}.Point"])
    with pytest.raises(amber.UntrustedTypeError) as ei:
        amber.load(path)
    exc = ei.value
    assert exc.untrusted == tuple(expected)
    assert exc.denied == ()
    msg = str(exc)
    assert f"trusted={expected!r}" in msg  # the exact argument to pass, copy-pasteable
    for word in ("unsafe", "pickle", "allow_pickle", "disable"):
        assert word not in msg.lower()
    assert name not in sys.modules and not marker.exists()

    # Partial trust: still refused, naming only what is left, still nothing imported.
    with pytest.raises(amber.UntrustedTypeError) as ei:
        amber.load(path, trusted=[name])
    assert ei.value.untrusted == (f"{MOD}.Point",)
    assert f"trusted={[f'{MOD}.Point']!r}" in str(ei.value)
    with pytest.raises(amber.UntrustedTypeError):
        amber.open(path, trusted=[f"{MOD}.Point"])
    assert amber.untrusted_types(path) == expected
    info = amber.inspect(path)
    assert info.untrusted == expected and set(expected) <= set(info.needs) and "numpy.log1p" in info.needs
    assert name not in sys.modules and not marker.exists()

    # Control: with everything trusted the module is imported and the objects rebuilt.
    out = amber.load(path, trusted=expected)
    assert marker.exists() and name in sys.modules
    c = sys.modules[name]
    assert type(out["z"]) is c.Zeta and out["z"].v == 1
    assert [type(a) for a in out["a"]] == [c.Alpha, c.Alpha] and out["a"][1].v == 3
    assert out["f"] is c.helper and out["u"] is np.log1p and out["p"] == m.Point(1, 2)


def test_untrusted_error_with_a_hand_built_tree(canary: tuple[str, Path]) -> None:
    """The same with a node tree built by hand (no process ever imported the module)."""
    name, marker = canary
    names = [f"{name}.Zeta", f"{name}.helper", f"{name}.Alpha"]
    tree = listn(
        [T("object"), names[0], None, {"v": 1}],
        [T("global"), names[1]],
        [T("reduce"), names[2], [5]],
    )
    data = build(tree, needs=names)
    with pytest.raises(amber.UntrustedTypeError) as ei:
        amber.loads(data)
    assert ei.value.untrusted == tuple(sorted(names))
    assert name not in sys.modules and not marker.exists()
    z, helper, a = amber.loads(data, trusted=[name])
    assert marker.exists()
    assert z.v == 1 and a.v == 5 and helper(3) == 3


def test_untrusted_types_names_only_what_is_missing() -> None:
    data = amber.dumps({"p": m.Point(1, 2), "dc": m.DC("x"), "f": m.square, "u": np.log1p, "m": np.mean})
    assert amber.untrusted_types(data) == [f"{MOD}.DC", f"{MOD}.Point", f"{MOD}.square"]
    assert amber.untrusted_types(data, trusted=[f"{MOD}.Point"]) == [f"{MOD}.DC", f"{MOD}.square"]
    assert amber.untrusted_types(data, trusted=[MOD]) == []
    with pytest.raises(amber.UntrustedTypeError) as ei:
        amber.loads(data, trusted=[f"{MOD}.DC", f"{MOD}.square"])
    assert ei.value.untrusted == (f"{MOD}.Point",)


# ---------------------------------------------------------------------------------------
# trust: per call, by prefix, per process
# ---------------------------------------------------------------------------------------


def test_trust_by_exact_name_and_by_module_prefix() -> None:
    data = amber.dumps([m.Point(1, 2), m.Outer.Inner(3)])
    out = amber.loads(data, trusted=[f"{MOD}.Point", f"{MOD}.Outer.Inner"])
    assert out == [m.Point(1, 2), m.Outer.Inner(3)]
    assert amber.loads(data, trusted=[MOD]) == out
    assert amber.loads(data, trusted=[f"{MOD}.Outer", f"{MOD}.Point"]) == out  # a class as prefix
    # A prefix matches whole dotted parts only.
    for wrong in ("_objects", "_objects_mo", f"{MOD}.Poin", f"{MOD}.Point.x", "Point", f"{MOD}.Outer.Inn", "*"):
        with pytest.raises(amber.UntrustedTypeError):
            amber.loads(data, trusted=[wrong, f"{MOD}.Outer.Inner"])


def test_process_trust(process_trust: None) -> None:
    data = amber.dumps({"p": m.Point(1, 2), "f": m.square})
    with pytest.raises(amber.UntrustedTypeError):
        amber.loads(data)
    amber.trust(f"{MOD}.Point")
    assert amber.untrusted_types(data) == [f"{MOD}.square"]
    amber.trust(MOD)
    assert MOD in trust_mod.trusted_names()
    assert amber.loads(data) == {"p": m.Point(1, 2), "f": m.square}
    assert amber.untrusted_types(data) == [] and amber.inspect(data).untrusted == []


def test_process_trust_is_reset_by_the_fixture() -> None:
    """Runs after test_process_trust: the process list no longer trusts the module."""
    assert MOD not in trust_mod.trusted_names()
    with pytest.raises(amber.UntrustedTypeError):
        amber.loads(amber.dumps(m.Point(1, 2)))


@pytest.mark.parametrize("bad", ["", None, 5, b"os", ["x"]])
def test_trust_rejects_non_names(bad: Any, process_trust: None) -> None:
    with pytest.raises(TypeError):
        amber.trust(bad)


def test_process_trust_never_admits_a_denied_name(process_trust: None, tmp_path: Path) -> None:
    marker = tmp_path / "MARKER"
    amber.trust("os", "builtins", "posix")
    data = build([T("reduce"), "os.system", [f"touch {marker}"]], needs=["os.system"])
    with pytest.raises(amber.UntrustedTypeError) as ei:
        amber.loads(data)
    assert ei.value.denied == ("os.system",)
    assert not marker.exists()


def test_default_trust() -> None:
    """Plain data, NumPy ufuncs and the named NumPy functions, collections and enum
    classes, scikit-learn estimators load with no trusted= at all; other functions don't."""
    from collections import OrderedDict, deque

    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    X = np.arange(20.0).reshape(10, 2)
    pipe = Pipeline([("f", FunctionTransformer(np.log1p)), ("s", StandardScaler())]).fit(X)
    obj = {"pipe": pipe, "fns": [np.log1p, np.exp, np.mean, np.add, int, OrderedDict], "d": deque([1])}
    data = amber.dumps(obj)
    assert amber.untrusted_types(data) == []
    out = amber.loads(data)
    assert out["fns"] == [np.log1p, np.exp, np.mean, np.add, int, OrderedDict]
    assert out["fns"][0] is np.log1p
    assert np.array_equal(out["pipe"].transform(X), pipe.transform(X))
    assert out["pipe"].steps[0][1].func is np.log1p

    for fn in (np.linalg.inv, np.polyfit, len, m.square):
        data = amber.dumps(fn)
        with pytest.raises(amber.UntrustedTypeError):
            amber.loads(data)
        name = f"{fn.__module__}.{fn.__qualname__}"
        assert amber.loads(data, trusted=[name]) is fn


# ---------------------------------------------------------------------------------------
# the deny list: never imported nor called, whatever the caller trusts
# ---------------------------------------------------------------------------------------


def _would_touch(name: str, marker: Path) -> list[Any]:
    """Arguments with which ``name`` would create ``marker`` if it were ever called."""
    code = f"open({str(marker)!r}, 'w').close()"
    return {
        "os.system": [f"touch {marker}"],
        "posix.system": [f"touch {marker}"],
        "builtins.eval": [code],
        "builtins.exec": [code],
        "subprocess.Popen": [["touch", str(marker)]],
        "subprocess.run": [["touch", str(marker)]],
        "numpy.load": [str(marker)],
        "pickle.loads": [pickle.dumps(_Touch(str(marker)))],
        "functools.partial": [code],
        "builtins.getattr": [code, "upper"],
        "builtins.open": [str(marker), "w"],
        "importlib.import_module": ["this_module_does_not_exist"],
        "runpy.run_path": [str(marker)],
    }[name]


class _Touch:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> Any:
        return (os.system, (f"touch {self.path}",))


DENIED = [
    "os.system",
    "posix.system",
    "builtins.eval",
    "builtins.exec",
    "subprocess.Popen",
    "subprocess.run",
    "numpy.load",
    "pickle.loads",
    "functools.partial",
    "builtins.getattr",
    "builtins.open",
    "importlib.import_module",
    "runpy.run_path",
]
TRUST_ALL = ["os", "posix", "builtins", "subprocess", "numpy", "pickle", "functools", "importlib", "runpy"]


def _hostile(kind: str, name: str, marker: Path) -> Any:
    args = _would_touch(name, marker)
    if kind == "global":
        return [T("global"), name]
    if kind == "object":
        return [T("object"), name, args]
    if kind == "reduce":
        return [T("reduce"), name, args]
    if kind == "reduce-nested":  # deep inside ordinary data, after harmless objects
        return mapn({"ok": [T("reduce"), "builtins.list", [[1, 2]]], "x": listn(1, [T("reduce"), name, args])})
    if kind == "object-state":  # a trusted class whose state holds the call
        return [T("object"), "collections.OrderedDict", None, {"evil": [T("reduce"), name, args]}]
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["global", "object", "reduce", "reduce-nested", "object-state"])
@pytest.mark.parametrize("name", DENIED)
def test_denied_names_are_refused_before_anything(name: str, kind: str, tmp_path: Path, no_import: list[str]) -> None:
    marker = tmp_path / "MARKER"
    needs = sorted({name, "builtins.list", "collections.OrderedDict"})
    data = build(_hostile(kind, name, marker), needs=needs)
    for trusted in (None, TRUST_ALL, [name], TRUST_ALL + [name, "collections"]):
        with pytest.raises(amber.UntrustedTypeError) as ei:
            amber.loads(data, trusted=trusted)
        exc = ei.value
        assert exc.untrusted == (name,) and exc.denied == (name,)
        msg = str(exc)
        assert name in msg and "never loads" in msg
        assert "trusted=" not in msg  # no trusted=[...] can admit it, so none is suggested
        with pytest.raises(amber.UntrustedTypeError):
            amber.open(data, trusted=trusted)
    assert amber.untrusted_types(data, trusted=TRUST_ALL) == [name]
    assert name in amber.inspect(data).untrusted
    assert not marker.exists()
    assert no_import == []  # the deny list is checked before any import


def test_denied_and_untrusted_names_together(tmp_path: Path) -> None:
    marker = tmp_path / "MARKER"
    tree = listn(
        [T("reduce"), "os.system", [f"touch {marker}"]],
        [T("object"), f"{MOD}.Point", None, {"x": 1, "y": 2}],
        [T("reduce"), "builtins.eval", ["1"]],
    )
    data = build(tree, needs=["os.system", f"{MOD}.Point", "builtins.eval"])
    with pytest.raises(amber.UntrustedTypeError) as ei:
        amber.loads(data)
    exc = ei.value
    assert exc.untrusted == ("_objects_mod.Point", "builtins.eval", "os.system")
    assert exc.denied == ("builtins.eval", "os.system")
    # the message suggests trusting only what may be trusted
    assert f"trusted={[f'{MOD}.Point']!r}" in str(exc)
    with pytest.raises(amber.UntrustedTypeError) as ei:
        amber.loads(data, trusted=[MOD, "os", "builtins"])
    assert ei.value.untrusted == ("builtins.eval", "os.system")
    assert not marker.exists()


@pytest.mark.parametrize(
    "name",
    [
        "sklearn.base.BaseEstimator.__class__",
        "sklearn.base.BaseEstimator.__init__.__globals__",
        "sklearn.base.BaseEstimator.__reduce_ex__",
        "builtins.object.__subclasses__",
        "builtins.__import__",
        f"{MOD}.square.__globals__",
        f"{MOD}.Point.__init__.__builtins__",
        "numpy.ndarray.__reduce__",
    ],
)
def test_dunder_attributes_are_denied(name: str, tmp_path: Path, no_import: list[str]) -> None:
    data = build([T("reduce"), name, ["x"]], needs=[name])
    top = name.split(".")[0]
    for trusted in (None, [top], [name], [name.rsplit(".", 1)[0]]):
        with pytest.raises(amber.UntrustedTypeError) as ei:
            amber.loads(data, trusted=trusted)
        assert ei.value.denied == (name,)
    assert no_import == []


name_note = {"sklearn.utils.fixes.os.system": "does not exist"}


@pytest.mark.parametrize(
    "name",
    [
        "sklearn._config.os.system",  # a trusted package's module attribute: os
        "sklearn.utils.validation.joblib.load",  # ... joblib
        "sklearn.utils.fixes.os.system",  # an attribute that does not exist
        "sklearn.base.np.load",  # numpy.load through an attribute
        "pandas.core.frame.np.lib.npyio.load",
    ],
)
def test_module_attribute_tricks_are_refused(name: str, tmp_path: Path) -> None:
    marker = tmp_path / "MARKER"
    data = build([T("reduce"), name, [f"touch {marker}"]], needs=[name])
    with pytest.raises(amber.DecodeError) as ei:
        amber.loads(data)
    if "does not exist" in name_note.get(name, ""):  # missing: an import error, not a trust question
        assert "cannot import" in str(ei.value)
    else:
        assert isinstance(ei.value, amber.UntrustedTypeError) and ei.value.untrusted == (name,)
    # Even when the caller trusts the whole package, the name is never resolved to the
    # module it reaches through an attribute.
    top = name.split(".")[0]
    with pytest.raises(amber.DecodeError, match="refusing|cannot import|never loads"):
        amber.loads(data, trusted=[top])
    assert not marker.exists()


@pytest.mark.parametrize(
    "name, args",
    [
        # functions under modules whose classes are trusted by default
        ("sklearn.base.clone", ["x"]),
        ("sklearn.datasets.fetch_openml", ["iris"]),
        ("sklearn.datasets.load_svmlight_file", ["{marker}"]),
        ("sklearn.utils._testing.assert_run_python_script_without_output", ["open('{marker}', 'w').close()"]),
        ("sklearn.utils._testing.TempMemmap", [1]),  # a class, but in an excluded module
        ("pandas.eval", ["1 + 1"]),
        ("pandas.read_csv", ["{marker}"]),
        ("pandas.core.computation.eval.eval", ["1"]),
        ("numpy.lib.format.open_memmap", ["{marker}", "w+", "f8", [1]]),
        ("numpy.lib.format.read_array", ["{marker}", True]),
        ("numpy.ndarray.tofile", ["{marker}"]),
        ("numpy.savez_compressed", ["{marker}"]),
        ("numpy.linalg.inv", [[[1.0]]]),
        ("numpy.random.default_rng", [1]),  # a function under numpy.random (classes only)
        ("collections.namedtuple", ["X", "a"]),
        ("enum.unique", [1]),
    ],
)
def test_functions_under_default_trusted_modules_are_untrusted(name: str, args: list[Any], tmp_path: Path) -> None:
    marker = tmp_path / "MARKER"
    args = [a.format(marker=marker) if isinstance(a, str) else a for a in args]
    data = build([T("reduce"), name, args], needs=[name])
    with pytest.raises(amber.UntrustedTypeError) as ei:
        amber.loads(data)
    assert ei.value.untrusted == (name,)
    if name in _ALSO_DENIED:  # file readers and writers: refused whatever the caller trusts
        assert ei.value.denied == (name,) and "trusted=" not in str(ei.value)
    else:
        assert ei.value.denied == () and f"trusted={[name]!r}" in str(ei.value)
    assert not marker.exists()


_ALSO_DENIED = {"numpy.lib.format.open_memmap", "numpy.lib.format.read_array", "numpy.ndarray.tofile"}


@pytest.mark.parametrize(
    "name, args",
    [
        # Classes that a module under a default-trusted prefix merely imports from elsewhere:
        # trusting sklearn's classes must not trust multiprocessing's, itertools' or threading's.
        ("sklearn.callback._transport.Listener", ["{marker}"]),  # binds a socket at a path
        ("sklearn.callback._transport.Thread", []),
        ("collections._starmap", []),
        ("numpy.random.bit_generator.cycle", [[1]]),
        ("enum.DynamicClassAttribute", []),
    ],
)
def test_classes_imported_into_default_trusted_modules_are_untrusted(
    name: str, args: list[Any], tmp_path: Path
) -> None:
    try:
        trust_mod._import(name)
    except amber.DecodeError as exc:
        if "cannot import" in str(exc):
            pytest.skip(f"{name} does not exist in this environment")
    marker = tmp_path / "MARKER"
    args = [a.format(marker=marker) if isinstance(a, str) else a for a in args]
    data = build([T("reduce"), name, args], needs=[name])
    try:
        with pytest.raises(amber.UntrustedTypeError) as ei:
            amber.loads(data)
        assert ei.value.untrusted == (name,)
        assert not marker.exists()
    finally:
        if marker.exists():
            marker.unlink()


@pytest.mark.parametrize(
    "name, trusted",
    [
        ("torch.hub.load", ["torch"]),
        ("torch.hub.download_url_to_file", ["torch"]),
        ("torch.hub.load_state_dict_from_url", ["torch.hub"]),
        ("torch.serialization.load", ["torch"]),  # the real name of torch.load
        ("pandas.read_pickle", ["pandas"]),
        ("pandas.io.pickle.read_pickle", ["pandas"]),
        ("numpy.lib._npyio_impl.load", ["numpy"]),  # real name numpy.load
    ],
)
def test_loaders_are_denied_even_when_their_package_is_trusted(name: str, trusted: list[str]) -> None:
    """The architecture: "Callables that load or execute (numpy.load, pickle.loads,
    torch.load, ...) are denied even when their package is trusted"."""
    data = build([T("reduce"), name, ["x"]], needs=[name])
    with pytest.raises(amber.DecodeError, match="never loads"):
        amber.loads(data, trusted=trusted)


def test_torch_hub_copies_no_file_when_torch_is_trusted(tmp_path: Path) -> None:
    """torch.hub.download_url_to_file with a file:// URL: a file anywhere on disk. (The
    deny list is checked by name: this test imports torch only if amber fails it.)"""
    src = tmp_path / "secret.txt"
    src.write_text("secret")
    dst = tmp_path / "copied.txt"
    name = "torch.hub.download_url_to_file"
    data = build([T("reduce"), name, [src.as_uri(), str(dst), None, False]], needs=[name])
    with pytest.raises(amber.UntrustedTypeError):
        amber.loads(data, trusted=["torch"])
    assert not dst.exists()


def test_read_pickle_runs_no_pickle_when_pandas_is_trusted(tmp_path: Path) -> None:
    marker = tmp_path / "MARKER"
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps(_Touch(str(marker))))
    data = build([T("reduce"), "pandas.read_pickle", [str(evil)]], needs=["pandas.read_pickle"])
    with pytest.raises(amber.UntrustedTypeError):
        amber.loads(data, trusted=["pandas"])
    assert not marker.exists()


# ---------------------------------------------------------------------------------------
# the file cannot widen trust, nor use names it does not declare
# ---------------------------------------------------------------------------------------


def test_names_missing_from_needs_are_corrupt(tmp_path: Path) -> None:
    marker = tmp_path / "MARKER"
    cases = [
        ([T("reduce"), "os.system", [f"touch {marker}"]], []),
        ([T("reduce"), "os.system", [f"touch {marker}"]], ["builtins.list"]),
        ([T("object"), f"{MOD}.Point", None, {"x": 1}], []),
        ([T("global"), f"{MOD}.square"], [f"{MOD}.Point"]),
        ([T("state"), f"{MOD}.Opted", {"w": [1.0], "n": "n"}], [f"{MOD}.Point"]),
        (listn([T("object"), f"{MOD}.Point", None, {"x": 1}], [T("global"), "numpy.load"]), [f"{MOD}.Point"]),
    ]
    for tree, needs in cases:
        data = build(tree, needs=needs)
        with pytest.raises(amber.CorruptFileError, match="does not declare"):
            amber.loads(data, trusted=[MOD, "os"])
    assert not marker.exists()


@pytest.mark.parametrize(
    "extra",
    [
        {"trusted": [MOD]},
        {"trust": [MOD], "unsafe": True, "allow_pickle": True},
        {"metadata": {"trusted": [MOD], "trust": MOD}},
        {"env": {"packages": {MOD: "1.0"}, "trusted": [MOD]}},
        {"types": [MOD, f"{MOD}.Point"]},
    ],
)
def test_nothing_in_the_file_widens_trust(extra: dict[str, Any]) -> None:
    data = amber.dumps({"p": m.Point(1, 2)}, metadata={"note": "hi"})
    p = parse(data)
    man = dict(p.manifest)
    man.update(extra)
    hostile = p.rebuild(man)
    assert amber.loads(hostile, trusted=[MOD]) == {"p": m.Point(1, 2)}  # the file is valid
    with pytest.raises(amber.UntrustedTypeError) as ei:
        amber.loads(hostile)
    assert ei.value.untrusted == (f"{MOD}.Point",)
    with pytest.raises(amber.UntrustedTypeError):
        amber.open(hostile)
    assert amber.untrusted_types(hostile) == [f"{MOD}.Point"]


def test_malformed_object_nodes_are_corrupt() -> None:
    cases = [
        [T("object"), "numpy.log1p"],  # too short
        [T("object"), "numpy.log1p", None, None],  # not a class
        [T("object"), 5, None],
        [T("reduce"), f"{MOD}.Point", None, None, None, None, None, None],  # too long
        [T("reduce"), f"{MOD}.Point", [1, 2], None, None, None, mapn({"k": 1})],  # kwargs on reduce
        [T("object"), f"{MOD}.Point", "notatuple"],
        [T("object"), f"{MOD}.Point", None, "not a dict"],
        [T("object"), f"{MOD}.Slotted", None, listn(None, "not a dict")],
        [T("object"), f"{MOD}.Point", None, None, 5],  # list items that are not a list
        [T("object"), f"{MOD}.Point", None, None, listn(1)],  # list items on a non-list
        [T("object"), f"{MOD}.MyDict", None, None, None, 5],
        [T("global")],
        [T("global"), f"{MOD}.square", "extra"],
        [T("global"), 7],
        [T("state"), f"{MOD}.Point", {"x": 1}],  # no __amber_from_state__
        [T("state"), f"{MOD}.Opted"],
    ]
    needs = [f"{MOD}.Point", f"{MOD}.Slotted", f"{MOD}.MyDict", f"{MOD}.Opted", f"{MOD}.square", "numpy.log1p"]
    for tree in cases:
        with pytest.raises(amber.FormatError):
            amber.loads(build(tree, needs=needs), trusted=[MOD])


# ---------------------------------------------------------------------------------------
# dump refuses what would need a denied name to load
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: m.Point(1, 2).__eq__, ["builtins.getattr", "never loads"]),  # a bound method
        (lambda: __import__("operator").attrgetter("x"), ["operator.attrgetter", "never loads"]),
        (lambda: m.EvalReduce(), ["builtins.eval", "never loads"]),
        (lambda: m.SystemReduce(), ["system", "never loads"]),
        (lambda: [1].append, ["no importable name"]),  # a bound builtin method
    ],
)
def test_dump_refuses_denied_reductions(make: Any, words: list[str]) -> None:
    obj = {"a": [1, {"b": make()}]}
    with pytest.raises(amber.UnsupportedTypeError) as ei:
        amber.dumps(obj)
    exc = ei.value
    assert exc.path == "root['a'][1]['b']"
    for w in words:
        assert w in str(exc)
    assert not amber.check(obj)
    with pytest.raises(amber.UnsupportedTypeError):
        amber.copy(obj)


def test_dump_refuses_a_state_setter() -> None:
    with pytest.raises(amber.UnsupportedTypeError, match="state setter") as ei:
        amber.dumps([m.StateSetterReduce()])
    assert ei.value.path == "root[0]"


def test_dump_refuses_names_that_do_not_import_back() -> None:
    def local() -> None:
        pass

    class Local:
        pass

    Fake = type("Point", (), {"__module__": MOD, "__qualname__": "Point"})  # not the real Point
    for obj, word in ((lambda: 1, "lambda"), (local, "inside another"), (Local(), "inside another"),
                      (Fake, "cannot be found again"), (Fake(), "cannot be found again")):
        with pytest.raises(amber.UnsupportedTypeError, match=word) as ei:
            amber.dumps({"k": obj})
        assert ei.value.path == "root['k']"


# ---------------------------------------------------------------------------------------
# inspect and the CLI show what a file needs
# ---------------------------------------------------------------------------------------


def test_inspect_and_untrusted_types(tmp_path: Path) -> None:
    p = tmp_path / "o.amber"
    amber.dump({"p": m.Point(1, 2), "e": m.Color.RED, "u": np.log1p}, p)
    for src in (p, str(p), p.read_bytes()):
        assert amber.untrusted_types(src) == [f"{MOD}.Color", f"{MOD}.Point"]
        info = amber.inspect(src)
        assert info.needs == [f"{MOD}.Color", f"{MOD}.Point", "numpy.log1p"]
        assert info.untrusted == [f"{MOD}.Color", f"{MOD}.Point"]
        assert "UNTRUSTED" in str(info) and f"{MOD}.Point" in str(info)
    clean = tmp_path / "clean.amber"
    amber.dump({"u": np.log1p, "x": [1, 2]}, clean)
    assert amber.untrusted_types(clean) == []
    info = amber.inspect(clean)
    assert info.needs == ["numpy.log1p"] and info.untrusted == [] and "UNTRUSTED" not in str(info)


def test_cli_inspect_shows_untrusted(tmp_path: Path) -> None:
    p = tmp_path / "o.amber"
    amber.dump({"p": m.Point(1, 2), "f": m.square}, p)
    res = subprocess.run(
        [sys.executable, "-m", "amber._cli", "inspect", str(p)], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
    lines = [ln for ln in res.stdout.splitlines() if "UNTRUSTED" in ln]
    assert len(lines) == 1
    assert f"{MOD}.Point" in lines[0] and f"{MOD}.square" in lines[0]
    # nothing named by the file was imported to say so
    assert MOD not in res.stderr


def test_allocating_constructors_are_refused_without_caller_trust() -> None:
    # ndarray.__new__(ndarray, shape), np.void(n) and bytes(n) allocate what the file asks for
    with pytest.raises(amber.CorruptFileError, match="does not pass arguments"):
        amber.loads(build([T("object"), "numpy.ndarray", [T("tuple"), [T("tuple"), 10**12]]], needs=["numpy.ndarray"]))
    with pytest.raises(amber.UntrustedTypeError):
        amber.loads(build([T("reduce"), "numpy.void", [T("tuple"), 10**12]], needs=["numpy.void"]))
    for name in ("builtins.bytes", "builtins.bytearray"):
        with pytest.raises(amber.CorruptFileError, match="refusing"):
            amber.loads(build([T("reduce"), name, [T("tuple"), 10**12]], needs=[name]))
    assert amber.loads(amber.dumps([np.float64, np.int8, np.dtype])) == [np.float64, np.int8, np.dtype]


def test_test_code_inside_trusted_packages_is_neither_trusted_nor_imported() -> None:
    import sys

    from amber.trust import is_trusted

    for name in ("sklearn.conftest.pyplot", "pandas.tests.frame.test_api.TestDataFrameMisc", "sklearn.utils.tests.test_x.F"):
        assert not is_trusted(name)
    assert "sklearn.conftest" not in sys.modules and "pandas.tests" not in sys.modules
    assert is_trusted("sklearn.linear_model._logistic.LogisticRegression")
