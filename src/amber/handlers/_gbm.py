"""LightGBM and XGBoost boosters, stored in their libraries' own model formats. Never pickles.

* ``lightgbm.Booster`` is ``[tag, {"model": blob}, state]``: the blob holds the UTF-8 text
  of ``model_to_string(num_iteration=-1)`` (every iteration), ``state`` a map of the Python
  attributes that matter once the training data is gone (``best_iteration``,
  ``best_score``, ``params``, ``pandas_categorical``, the data-set names).
* ``xgboost.Booster`` is ``[tag, {"model": blob, "format": "ubj"}, attributes]``: the blob
  holds ``save_raw("ubj")`` (trees, booster attributes such as ``best_iteration``, feature
  names and types), ``attributes`` any Python attributes set on the booster object.

Neither library's model parser is safe against hostile input (both crash the process on
malformed models), so loading never hands them the stored bytes. The model is parsed here,
in Python, and checked (array lengths, node indices forming a tree, feature indices,
categorical split tables, class counts against the objective...); the library then gets a
canonical rendering of exactly what was checked: LightGBM text rebuilt line by line from
the checked fields (every number in the form LightGBM itself writes, unknown lines refused),
XGBoost UBJSON re-encoded from the checked tree. For models the libraries wrote, both
renderings are byte-identical to the stored model. (Pickle-family files hold the boosters'
own pickled state, which reaches the same parsers: ``amber.security._guards`` checks it with
:func:`check_lightgbm_model` and :func:`check_xgboost_serialized` first.) A model that
fails the checks raises :class:`~amber.CorruptFileError`; saving runs the same checks, so a
model amber cannot check is refused when it is saved, not when it is loaded.

The scikit-learn wrappers (``LGBMClassifier``, ``XGBRegressor``...) are ordinary objects
holding such a booster; the generic object reducer saves them and reaches these handlers for
the booster. Each library is imported only if installed; a file that needs a missing one
says so.
"""

from __future__ import annotations

import json
import math
import re
import struct
from typing import Any, NoReturn

import numpy as np

from amber.errors import CorruptFileError, DecodeError, EncodeError
from amber.handlers._base import REGISTRY, DecodeContext, EncodeContext, Handler

__all__ = [
    "LightGBMBoosterHandler",
    "XGBoostBoosterHandler",
    "check_lightgbm_model",
    "check_xgboost_model",
    "check_xgboost_serialized",
]

try:
    import lightgbm as _lgb
except Exception as exc:  # noqa: BLE001 - any failure to import means "not available"
    _lgb = None
    _LGB_ERROR = f"{type(exc).__name__}: {exc}"

try:
    import xgboost as _xgb
except Exception as exc:  # noqa: BLE001
    _xgb = None
    _XGB_ERROR = f"{type(exc).__name__}: {exc}"

_I32 = 2**31 - 1


class ModelError(ValueError):
    """A model text/bytes that fails amber's checks (turned into Corrupt/EncodeError)."""


def _bad(what: str) -> NoReturn:
    raise ModelError(what)


# ======================================================================================
# LightGBM: parse, check and re-render the model text
# ======================================================================================

#: Number lines exactly as LightGBM writes them (integers; %.17g-style decimals): every
#: token is one LightGBM's own parsers read (a token they cannot read aborts the process).
_INT_LINE = re.compile(r"(?:-?[0-9]{1,10}(?: -?[0-9]{1,10})*)?")
_FLOAT = r"-?[0-9]+(?:\.[0-9]+)?(?:e[-+][0-9]{1,3})?"
_FLOAT_LINE = re.compile(rf"(?:{_FLOAT}(?: {_FLOAT})*)?")
_NAME = re.compile(r"[^\s]+")
_FEATURE_INFO = re.compile(r"none|\[[-+0-9.eEinfINF]+:[-+0-9.eEinfINF]+\]|-?[0-9]{1,10}(?::-?[0-9]{1,10})*")
_PARAM_LINE = re.compile(r"\[[A-Za-z0-9_]{1,100}: [^\x00-\x1f\x7f]*\]")
_OBJECTIVES = frozenset(
    "regression regression_l1 quantile huber fair poisson binary lambdarank rank_xendcg multiclass multiclassova "
    "cross_entropy xentropy cross_entropy_lambda xentlambda mape mean_absolute_percentage_error gamma tweedie "
    "custom none null na".split()
)
#: Tree fields in the order LightGBM writes them.
_TREE_KEYS = (
    "num_leaves num_cat split_feature split_gain threshold decision_type left_child right_child leaf_value "
    "leaf_weight leaf_count internal_value internal_weight internal_count cat_boundaries cat_threshold is_linear "
    "leaf_const num_features leaf_features leaf_coeff shrinkage"
).split()
_HEADER_KEYS = (
    "version num_class num_tree_per_iteration label_index max_feature_idx objective average_output "
    "feature_names monotone_constraints feature_infos tree_sizes"
).split()


def _count(toks: int, n: int | None, what: str) -> None:
    if n is not None and toks != n:
        _bad(f"{what} has {toks} values, not {n}")


def _lgb_ints(value: str, n: int | None, what: str, lo: int = -_I32 - 1, hi: int = _I32) -> np.ndarray:
    if not _INT_LINE.fullmatch(value):
        _bad(f"{what} is not a list of integers")
    toks = value.split(" ") if value else []
    _count(len(toks), n, what)
    arr = np.array(toks, dtype=np.int64) if toks else np.zeros(0, np.int64)
    if arr.size and (int(arr.min()) < lo or int(arr.max()) > hi):
        _bad(f"{what} has values outside {lo}..{hi}")
    return arr


def _lgb_floats(value: str, n: int | None, what: str, parse: bool = False) -> np.ndarray | None:
    """Check a line of decimals; their values only when ``parse`` (reading is the slow part)."""
    if not _FLOAT_LINE.fullmatch(value):
        _bad(f"{what} is not a list of decimal numbers")
    toks = value.split(" ") if value else []
    _count(len(toks), n, what)
    return np.array(toks, dtype=np.float64) if parse and toks else np.zeros(0) if parse else None


def _lgb_int(value: str, what: str, lo: int, hi: int) -> int:
    return int(_lgb_ints(value, 1, what, lo, hi)[0])


def _lgb_tree(idx: int, fields: dict[str, str], n_features: int) -> str:
    """Check one tree's fields and return its canonical text block (without ``Tree=``)."""
    where = f"tree {idx}"
    for req in ("num_leaves", "num_cat", "leaf_value"):
        if req not in fields:
            _bad(f"{where} has no {req}")
    n = _lgb_int(fields["num_leaves"], f"{where} num_leaves", 1, _I32)
    num_cat = _lgb_int(fields["num_cat"], f"{where} num_cat", 0, _I32)
    linear = _lgb_int(fields["is_linear"], f"{where} is_linear", 0, 1) if "is_linear" in fields else 0
    out: dict[str, str] = {"num_leaves": str(n), "num_cat": str(num_cat)}
    inner = n - 1

    def ints(key: str, count: int, lo: int = -_I32 - 1, hi: int = _I32) -> np.ndarray | None:
        if key not in fields:
            return None
        arr = _lgb_ints(fields[key], count, f"{where} {key}", lo, hi)
        out[key] = fields[key]
        return arr

    def floats(key: str, count: int, parse: bool = False) -> np.ndarray | None:
        if key not in fields:
            return None
        if key == "leaf_weight" and n == 1 and not linear and fields[key] == "":
            count = 0  # LightGBM writes no weight for a single-leaf tree (and reads none)
        arr = _lgb_floats(fields[key], count, f"{where} {key}", parse)
        out[key] = fields[key]
        return arr

    needs_structure = n > 1 or linear
    for key in ("left_child", "right_child", "split_feature", "threshold"):
        if needs_structure and key not in fields:
            _bad(f"{where} has {n} leaves but no {key}")
    split_feature = ints("split_feature", inner, 0, n_features - 1)
    floats("split_gain", inner)
    decision = ints("decision_type", inner, 0, 15)
    categorical = ((decision if decision is not None else np.zeros(inner, np.int64)) & 1).astype(bool)
    threshold = floats("threshold", inner, parse=bool(categorical.any()))
    left = ints("left_child", inner, -n, max(inner - 1, 0))
    right = ints("right_child", inner, -n, max(inner - 1, 0))
    floats("leaf_value", n)
    floats("leaf_weight", n)
    ints("leaf_count", n)
    floats("internal_value", inner)
    floats("internal_weight", inner)
    ints("internal_count", inner)
    if needs_structure:
        assert left is not None and right is not None
        children = np.concatenate([left, right])
        nodes = children[children >= 0]
        leaves = ~children[children < 0]
        # every leaf reached exactly once, every node but the root exactly once, and always
        # from a node created before it: the arrays describe one tree, no cycles
        if len(np.unique(leaves)) != n or len(leaves) != n:
            _bad(f"{where}: its children do not reach each of its {n} leaves exactly once")
        if inner > 1 and (len(np.unique(nodes)) != inner - 1 or len(nodes) != inner - 1 or int(nodes.min()) < 1):
            _bad(f"{where}: its children do not reach each internal node exactly once")
        parent_of = np.concatenate([np.arange(inner), np.arange(inner)])[children >= 0]
        if nodes.size and not bool((nodes > parent_of).all()):
            _bad(f"{where}: a node's child comes before it")
    if decision is not None and ((decision >> 2) & 3 == 3).any():
        _bad(f"{where} decision_type has an unknown missing-value type")
    if num_cat > 0:
        if "cat_boundaries" not in fields or "cat_threshold" not in fields:
            _bad(f"{where} has categorical splits but no cat_boundaries/cat_threshold")
        bounds = ints("cat_boundaries", num_cat + 1, 0, _I32)
        assert bounds is not None
        if bounds[0] != 0 or not bool((np.diff(bounds) >= 0).all()):
            _bad(f"{where} cat_boundaries is not a non-decreasing list from 0")
        ints("cat_threshold", int(bounds[-1]), 0, 2**32 - 1)
    elif "cat_boundaries" in fields or "cat_threshold" in fields:
        _bad(f"{where} has category tables but num_cat=0")
    if categorical.any():
        assert threshold is not None
        cat_idx = threshold[categorical]
        if not bool(((cat_idx >= 0) & (cat_idx < num_cat) & (cat_idx == np.floor(cat_idx))).all()):
            _bad(f"{where}: a categorical split points at no category table (of {num_cat})")
    if "is_linear" in fields:
        out["is_linear"] = str(linear)
    if linear:
        floats("leaf_const", n)
        counts = ints("num_features", n, 0, n_features)
        if counts is not None:
            total = int(counts.sum())
            for key in ("leaf_features", "leaf_coeff"):
                if key not in fields:
                    continue
                toks = fields[key].split()
                parts, pos = [], 0
                for k in counts.tolist():  # LightGBM's own layout: "a b  c  " (two spaces per leaf)
                    parts.append((" ".join(toks[pos : pos + k]) + " " if k else "") + " ")
                    pos += k
                if "".join(parts) != fields[key]:
                    _bad(f"{where} {key} is not laid out as LightGBM writes it")
                flat = " ".join(toks)
                if key == "leaf_features":
                    _lgb_ints(flat, total, f"{where} {key}", 0, n_features - 1)
                else:
                    _lgb_floats(flat, total, f"{where} {key}")
                out[key] = fields[key]
        elif "leaf_features" in fields or "leaf_coeff" in fields:
            _bad(f"{where} has leaf features but no num_features")
    else:
        for key in ("leaf_const", "num_features", "leaf_features", "leaf_coeff"):
            if key in fields:
                _bad(f"{where} has {key} but is not linear")
    if "shrinkage" in fields:
        floats("shrinkage", 1)
    return "".join(f"{k}={out[k]}\n" for k in _TREE_KEYS if k in out) + "\n"


def check_lightgbm_model(text: str) -> str:
    """Check a LightGBM model text (as ``Booster.model_to_string`` makes it) and return the
    canonical text to give LightGBM; raises :class:`ModelError` naming what is wrong."""
    if "\r" in text or "\0" in text:
        _bad("the model text holds carriage returns or NUL characters")
    lines = text.split("\n")
    if not lines or lines[0] != "tree":
        _bad("the model text does not start with 'tree'")
    pos = 1
    header: dict[str, str] = {}
    while pos < len(lines) and lines[pos] != "":
        key, eq, value = lines[pos].partition("=")
        if key not in _HEADER_KEYS or key in header or (key == "average_output") == bool(eq):
            _bad(f"unexpected header line {lines[pos][:60]!r}")
        header[key] = value
        pos += 1
    for req in ("num_class", "label_index", "max_feature_idx", "feature_names", "feature_infos", "tree_sizes"):
        if req not in header:
            _bad(f"the header has no {req}")
    num_class = _lgb_int(header["num_class"], "num_class", 1, 1 << 20)
    per_iter = _lgb_int(header.get("num_tree_per_iteration", str(num_class)), "num_tree_per_iteration", 1, 1 << 20)
    if per_iter != num_class:
        _bad(f"num_tree_per_iteration={per_iter} differs from num_class={num_class}")
    _lgb_int(header["label_index"], "label_index", 0, _I32)
    n_features = _lgb_int(header["max_feature_idx"], "max_feature_idx", 0, _I32 - 1) + 1
    if "version" in header and not re.fullmatch(r"v[0-9]{1,3}", header["version"]):
        _bad(f"unknown model version {header['version'][:20]!r}")
    if "objective" in header:
        toks = header["objective"].split(" ")
        if toks[0] not in _OBJECTIVES:
            _bad(f"unknown objective {toks[0][:40]!r}")
        params = {}
        for t in toks[1:]:
            name, colon, val = t.partition(":")
            if not re.fullmatch(r"[a-z_]{1,40}", name) or (colon and not re.fullmatch(r"-?[0-9.eE+-]{1,30}", val)):
                _bad(f"malformed objective parameter {t[:40]!r}")
            params[name] = val
        if toks[0] in ("multiclass", "multiclassova"):
            if params.get("num_class") != str(num_class):
                _bad(f"the objective's num_class differs from the model's ({num_class})")
        elif num_class != 1 and toks[0] not in ("custom", "none", "null", "na"):
            _bad(f"objective {toks[0]} with num_class={num_class}")
        if "num_class" in params and toks[0] not in ("multiclass", "multiclassova"):
            _bad("num_class given to an objective that has no classes")
    names = header["feature_names"].split(" ")
    if len(names) != n_features or not all(_NAME.fullmatch(x) and x.isprintable() for x in names):
        _bad(f"feature_names does not hold {n_features} names")
    if "monotone_constraints" in header:
        _lgb_ints(header["monotone_constraints"], n_features, "monotone_constraints", -1, 1)
    infos = header["feature_infos"].split(" ")
    if len(infos) != n_features or not all(_FEATURE_INFO.fullmatch(x) for x in infos):
        _bad(f"feature_infos does not hold {n_features} feature descriptions")
    sizes = _lgb_ints(header["tree_sizes"], None, "tree_sizes", 0, 2**62)

    pos += 1
    blocks: list[str] = []
    while pos < len(lines) and lines[pos].startswith("Tree="):
        if lines[pos] != f"Tree={len(blocks)}":
            _bad(f"tree {len(blocks)} is labelled {lines[pos][:30]!r}")
        pos += 1
        fields: dict[str, str] = {}
        while pos < len(lines) and lines[pos] != "":
            key, eq, value = lines[pos].partition("=")
            if not eq or key not in _TREE_KEYS or key in fields:
                _bad(f"tree {len(blocks)}: unexpected line {lines[pos][:60]!r}")
            fields[key] = value
            pos += 1
        if lines[pos : pos + 2] != ["", ""]:
            _bad(f"tree {len(blocks)} is not followed by blank lines")
        pos += 2
        blocks.append(f"Tree={len(blocks)}\n" + _lgb_tree(len(blocks), fields, n_features) + "\n")
    if len(blocks) % per_iter:
        _bad(f"{len(blocks)} trees is not a whole number of iterations of {per_iter}")
    if sizes.tolist() != [len(b.encode("utf-8")) for b in blocks]:
        _bad(f"tree_sizes does not give the sizes of the {len(blocks)} trees")
    if pos >= len(lines) or lines[pos] != "end of trees":
        _bad("the trees are not followed by 'end of trees'")
    pos += 1

    def expect(line: str) -> None:
        nonlocal pos
        if pos >= len(lines) or lines[pos] != line:
            _bad(f"expected {line!r} after the trees, found {(lines[pos] if pos < len(lines) else '<end>')[:40]!r}")
        pos += 1

    tail: list[str] = []
    expect("")
    expect("feature_importances:")
    tail += ["", "feature_importances:"]
    while pos < len(lines) and lines[pos] != "":
        name, eq, count = lines[pos].rpartition("=")
        if not eq or not _NAME.fullmatch(name) or not name.isprintable() or not re.fullmatch(r"[0-9]{1,19}", count):
            _bad(f"malformed feature importance line {lines[pos][:60]!r}")
        tail.append(f"{name}={int(count)}")
        pos += 1
    for section, end in (("parameters:", "end of parameters"), ("parser:", "end of parser")):
        if lines[pos + 1 : pos + 2] != [section]:
            continue
        expect("")
        expect(section)
        body = []
        while pos < len(lines) and lines[pos] != "":
            line = lines[pos]
            if section == "parameters:" and not _PARAM_LINE.fullmatch(line):
                _bad(f"malformed parameter line {line[:60]!r}")
            if not line.isprintable():
                _bad(f"unprintable line in the {section[:-1]} section")
            if line.startswith("[linear_tree: ") and line not in ("[linear_tree: 0]", "[linear_tree: 1]"):
                _bad("linear_tree is neither 0 nor 1")
            body.append(line)
            pos += 1
        expect("")
        expect(end)
        tail += ["", section, *body, "", end]
    expect("")
    if pos >= len(lines) or not lines[pos].startswith("pandas_categorical:"):
        _bad("the model text does not end with its pandas_categorical line")
    cats = lines[pos][len("pandas_categorical:") :]
    try:
        parsed = json.loads(cats)
    except ValueError:
        _bad("pandas_categorical is not JSON")
    if parsed is not None and type(parsed) is not list:
        _bad("pandas_categorical is neither null nor a list")
    tail += ["", lines[pos], ""]
    if lines[pos + 1 :] != [""]:
        _bad("the model text goes on after its pandas_categorical line")

    head = ["tree"]
    header["tree_sizes"] = " ".join(str(len(b.encode("utf-8"))) for b in blocks)
    header["num_class"] = str(num_class)
    header["num_tree_per_iteration"] = str(per_iter)
    header["label_index"] = str(int(header["label_index"]))
    header["max_feature_idx"] = str(n_features - 1)
    for k in _HEADER_KEYS:
        if k in header:
            head.append(k if k == "average_output" else f"{k}={header[k]}")
    return "\n".join(head) + "\n\n" + "".join(blocks) + "end of trees\n" + "\n".join(tail)


# ======================================================================================
# XGBoost: UBJSON (the subset XGBoost writes), then a check of the model schema
# ======================================================================================

_UBJ_INTS = {ord("i"): ">i1", ord("U"): "u1", ord("I"): ">i2", ord("l"): ">i4", ord("L"): ">i8"}
_UBJ_FLOATS = {ord("d"): ">f4", ord("D"): ">f8"}
_UBJ_NUMS = {**_UBJ_INTS, **_UBJ_FLOATS}
_UBJ_DEPTH = 64


_UBJ_STRUCT = {m: struct.Struct(dt.replace("u1", ">B").replace(">i1", ">b").replace(">i2", ">h").replace(">i4", ">i")
                               .replace(">i8", ">q").replace(">f4", ">f").replace(">f8", ">d"))
               for m, dt in _UBJ_NUMS.items()}


class _UNum:
    """A UBJSON number with its type marker; floats keep their raw bytes (exact)."""

    __slots__ = ("m", "v", "raw")

    def __init__(self, m: int, v: Any, raw: bytes | None = None) -> None:
        self.m, self.v, self.raw = m, v, raw


class _UArr:
    """A typed UBJSON array: marker and big-endian values."""

    __slots__ = ("m", "a")

    def __init__(self, m: int, a: np.ndarray) -> None:
        self.m, self.a = m, a


class _UList(list):  # type: ignore[type-arg]
    """An untyped UBJSON array; ``counted``: written with a ``#`` count (else ``]``)."""

    counted = True


class _UBJReader:
    def __init__(self, data: bytes) -> None:
        self.d, self.p, self.n = data, 0, len(data)

    def truncated(self) -> NoReturn:
        _bad("the UBJSON model is truncated")

    def marker(self) -> int:
        if self.p >= self.n:
            self.truncated()
        m = self.d[self.p]
        self.p += 1
        return m

    def number(self, m: int) -> Any:
        st = _UBJ_STRUCT[m]
        if self.p + st.size > self.n:
            self.truncated()
        v = st.unpack_from(self.d, self.p)[0]
        self.p += st.size
        return v

    def length(self) -> int:
        m = self.marker()
        if m not in _UBJ_INTS:
            _bad(f"a UBJSON length has marker {chr(m)!r}")
        v = self.number(m)
        if v < 0 or v > self.n - self.p:
            _bad(f"a UBJSON length of {v} is negative or exceeds the model")
        return v

    def text(self) -> str:
        k = self.length()
        try:
            out = self.d[self.p : self.p + k].decode("utf-8")
        except UnicodeDecodeError:
            _bad("a UBJSON string is not UTF-8")
        self.p += k
        return out

    def value(self, depth: int) -> Any:
        m = self.marker()
        if m in _UBJ_INTS:
            return _UNum(m, self.number(m))
        if m in _UBJ_FLOATS:
            raw = self.d[self.p : self.p + _UBJ_STRUCT[m].size]
            return _UNum(m, self.number(m), raw)
        if m == 83:  # S
            return self.text()
        if m == 84:  # T
            return True
        if m == 70:  # F
            return False
        if m == 90:  # Z
            return None
        if depth >= _UBJ_DEPTH:
            _bad("the UBJSON model is nested too deeply")
        if m == 123:  # {
            obj: dict[str, Any] = {}
            while True:
                if self.p >= self.n:
                    self.truncated()
                if self.d[self.p] == 125:  # }
                    self.p += 1
                    return obj
                key = self.text()
                if key in obj:
                    _bad(f"the UBJSON model repeats the key {key[:40]!r}")
                obj[key] = self.value(depth + 1)
        if m == 91:  # [
            if self.p >= self.n:
                self.truncated()
            if self.d[self.p] == 36:  # $
                self.p += 1
                t = self.marker()
                if t not in _UBJ_NUMS or self.marker() != 35:
                    _bad("unsupported typed UBJSON array")
                count = self.length()
                dt = np.dtype(_UBJ_NUMS[t])
                if count * dt.itemsize > self.n - self.p:
                    self.truncated()
                arr = np.frombuffer(self.d, dtype=dt, count=count, offset=self.p)
                self.p += count * dt.itemsize
                return _UArr(t, arr)
            items = _UList()
            if self.d[self.p] == 35:  # #
                self.p += 1
                for _ in range(self.length()):
                    items.append(self.value(depth + 1))
            else:
                items.counted = False
                while True:
                    if self.p >= self.n:
                        self.truncated()
                    if self.d[self.p] == 93:  # ]
                        self.p += 1
                        break
                    items.append(self.value(depth + 1))
            return items
        _bad(f"unsupported UBJSON marker {chr(m)!r}")


def _ubj_read(data: bytes) -> Any:
    r = _UBJReader(data)
    out = r.value(0)
    if r.p != r.n:
        _bad("the UBJSON model has trailing bytes")
    return out


_Q = struct.Struct(">q")


def _ubj_write(v: Any, out: bytearray) -> None:
    if isinstance(v, _UNum):
        out.append(v.m)
        out += v.raw if v.raw is not None and v.m in _UBJ_FLOATS else _UBJ_STRUCT[v.m].pack(v.v)
    elif isinstance(v, str):
        raw = v.encode("utf-8")
        out += b"SL"
        out += _Q.pack(len(raw))
        out += raw
    elif v is True:
        out += b"T"
    elif v is False:
        out += b"F"
    elif v is None:
        out += b"Z"
    elif isinstance(v, dict):
        out += b"{"
        for k, x in v.items():
            raw = k.encode("utf-8")
            out += b"L"
            out += _Q.pack(len(raw))
            out += raw
            _ubj_write(x, out)
        out += b"}"
    elif isinstance(v, _UArr):
        out += b"[$"
        out.append(v.m)
        out += b"#L"
        out += _Q.pack(len(v.a))
        out += v.a.astype(_UBJ_NUMS[v.m], copy=False).tobytes()
    elif isinstance(v, _UList):
        if v.counted:
            out += b"[#L"
            out += _Q.pack(len(v))
        else:
            out += b"["
        for x in v:
            _ubj_write(x, out)
        if not v.counted:
            out += b"]"
    else:  # pragma: no cover - the reader makes nothing else
        raise TypeError(type(v))


# -- schema helpers -------------------------------------------------------------------


def _obj(v: Any, where: str, required: set[str], optional: frozenset[str] | set[str] = frozenset()) -> dict[str, Any]:
    if type(v) is not dict:
        _bad(f"{where} is not an object")
    missing = required - v.keys()
    extra = v.keys() - required - optional
    if missing:
        _bad(f"{where} lacks {sorted(missing)}")
    if extra:
        _bad(f"{where} has unexpected fields {sorted(extra)[:5]}")
    return v


def _s(v: Any, where: str) -> str:
    if type(v) is not str:
        _bad(f"{where} is not a string")
    return v


def _num_str(v: Any, where: str, lo: int, hi: int) -> int:
    s = _s(v, where)
    if not re.fullmatch(r"-?[0-9]{1,19}", s) or not lo <= int(s) <= hi:
        _bad(f"{where} is {s[:30]!r}, not an integer in {lo}..{hi}")
    return int(s)


def _int(v: Any, where: str, lo: int, hi: int) -> int:
    if not isinstance(v, _UNum) or v.m not in _UBJ_INTS or not lo <= v.v <= hi:
        _bad(f"{where} is not an integer in {lo}..{hi}")
    return int(v.v)


def _ints(v: Any, where: str, n: int | None = None) -> np.ndarray:
    if isinstance(v, _UArr) and v.m in _UBJ_INTS:
        arr = v.a.astype(np.int64)
    elif isinstance(v, _UList) and all(isinstance(x, _UNum) and x.m in _UBJ_INTS for x in v):
        arr = np.array([x.v for x in v], dtype=np.int64)
    else:
        _bad(f"{where} is not an array of integers")
    if n is not None and len(arr) != n:
        _bad(f"{where} has {len(arr)} entries, not {n}")
    return arr


def _floats(v: Any, where: str, n: int | None = None) -> int:
    """Check an array of numbers (of ``n`` entries) and return its length."""
    if isinstance(v, _UArr):
        count = len(v.a)
    elif isinstance(v, _UList) and all(isinstance(x, _UNum) for x in v):
        count = len(v)
    else:
        _bad(f"{where} is not an array of numbers")
    if n is not None and count != n:
        _bad(f"{where} has {count} entries, not {n}")
    return count


def _strs(v: Any, where: str) -> list[str]:
    if not isinstance(v, _UList) or not all(type(x) is str for x in v):
        _bad(f"{where} is not an array of strings")
    return list(v)


def _monotone_from(arr: np.ndarray, start: int, end: int, where: str) -> None:
    if len(arr) < 1 or arr[0] != start or arr[-1] != end or not bool((np.diff(arr) >= 0).all()):
        _bad(f"{where} does not run from {start} to {end} without decreasing")


_XGB_OBJECTIVES = frozenset(
    "reg:squarederror reg:squaredlogerror reg:logistic reg:pseudohubererror reg:absoluteerror reg:quantileerror "
    "reg:linear reg:gamma reg:tweedie binary:logistic binary:logitraw binary:hinge count:poisson survival:cox "
    "survival:aft multi:softmax multi:softprob rank:ndcg rank:map rank:pairwise".split()
)
_FEATURE_TYPES = frozenset({"float", "int", "i", "q", "c"})
#: cats.enc "type" codes and the typed-array marker their values must have
_CAT_TYPES = {9: ord("i"), 10: ord("U"), 11: ord("I"), 13: ord("l"), 15: ord("L")}
_SAFE_PARAM = re.compile(r"[-+0-9A-Za-z_.,:\[\] ]{0,4096}")
_MAX_CATEGORY = 1 << 24


def _xgb_tree(t: Any, idx: int, n_features: int, n_targets: int) -> None:
    where = f"tree {idx}"
    base = {"base_weights", "default_left", "id", "left_children", "loss_changes", "parents", "right_children",
            "split_conditions", "split_indices", "sum_hessian", "tree_param"}
    cat_keys = {"categories", "categories_nodes", "categories_segments", "categories_sizes", "split_type"}
    t = _obj(t, where, base, cat_keys | {"leaf_weights"})
    tp = _obj(t["tree_param"], f"{where} tree_param", {"num_deleted", "num_feature", "num_nodes", "size_leaf_vector"})
    n = _num_str(tp["num_nodes"], f"{where} num_nodes", 1, _I32)
    _num_str(tp["num_feature"], f"{where} num_feature", 0, n_features)
    k = _num_str(tp["size_leaf_vector"], f"{where} size_leaf_vector", 0, 1 << 20)
    n_deleted = _num_str(tp["num_deleted"], f"{where} num_deleted", 0, n - 1)
    if _int(t["id"], f"{where} id", 0, _I32) != idx:
        _bad(f"{where} has id {t['id'].v}")
    left = _ints(t["left_children"], f"{where} left_children", n)
    right = _ints(t["right_children"], f"{where} right_children", n)
    parents = _ints(t["parents"], f"{where} parents", n)
    split_idx = _ints(t["split_indices"], f"{where} split_indices", n)
    dl = _ints(t["default_left"], f"{where} default_left", n)
    for key in ("loss_changes", "sum_hessian", "split_conditions"):
        _floats(t[key], f"{where} {key}", n)
    if not bool(((dl == 0) | (dl == 1)).all()):
        _bad(f"{where} default_left is not 0/1")
    internal = left != -1
    multi = k > 1
    if multi:
        if k != n_targets:
            _bad(f"{where} has leaf vectors of {k}, the model has {n_targets} targets")
        if "leaf_weights" not in t:
            _bad(f"{where} has vector leaves but no leaf_weights")
        _floats(t["base_weights"], f"{where} base_weights", n * k)
        lw = _floats(t["leaf_weights"], f"{where} leaf_weights")
        if lw % k:
            _bad(f"{where} leaf_weights is not a whole number of leaf vectors")
        n_leaves = lw // k
        leaf_ids = right[~internal]
        if len(leaf_ids) != n_leaves or (n_leaves and (int(leaf_ids.min()) < 0 or int(leaf_ids.max()) >= n_leaves)) \
                or len(np.unique(leaf_ids)) != len(leaf_ids):
            _bad(f"{where}: its leaves do not each own one of its {n_leaves} leaf vectors")
        root_parent = -1
    else:
        if "leaf_weights" in t:
            _bad(f"{where} has leaf_weights but scalar leaves")
        _floats(t["base_weights"], f"{where} base_weights", n)
        if bool((right[~internal] != -1).any()):
            _bad(f"{where}: a leaf has a right child")
        root_parent = _I32
    lc, rc = left[internal], right[internal]
    children = np.concatenate([lc, rc])
    if children.size and (int(children.min()) < 1 or int(children.max()) >= n):
        _bad(f"{where}: a child index lies outside 1..{n - 1}")
    if children.size and int(np.bincount(children).max()) > 1:
        _bad(f"{where}: a node has two parents")
    if int(parents[0]) != root_parent:
        _bad(f"{where}: the root's parent is {int(parents[0])}")
    if n > 1 and not bool(((parents[1:] >= 0) & (parents[1:] < np.arange(1, n))).all()):
        _bad(f"{where}: a node's parent does not come before it")
    owners = np.concatenate([np.flatnonzero(internal), np.flatnonzero(internal)])
    if children.size and not bool((parents[children] == owners).all()):
        _bad(f"{where}: parents does not match the children")
    if bool(((split_idx[internal] < 0) | (split_idx[internal] >= n_features)).any()):
        _bad(f"{where}: a split uses a feature outside 0..{n_features - 1}")
    # unreachable (deleted) nodes: leaves carrying the deleted marker, never referenced
    if int((~internal & (split_idx == _I32)).sum()) < n_deleted and not multi:
        _bad(f"{where} claims {n_deleted} deleted nodes")
    if "split_type" in t:
        st = _ints(t["split_type"], f"{where} split_type", n)
        if not bool(((st == 0) | (st == 1)).all()):
            _bad(f"{where} split_type is not 0/1")
        cat_nodes_expected = np.flatnonzero(internal & (st == 1))
    else:
        cat_nodes_expected = np.zeros(0, np.int64)
    present = cat_keys - {"split_type"} & t.keys()
    if present and present != cat_keys - {"split_type"}:
        _bad(f"{where} has only some of the categorical split tables")
    if present:
        cats = _ints(t["categories"], f"{where} categories")
        nodes = _ints(t["categories_nodes"], f"{where} categories_nodes")
        segs = _ints(t["categories_segments"], f"{where} categories_segments", len(nodes))
        sizes = _ints(t["categories_sizes"], f"{where} categories_sizes", len(nodes))
        if not np.array_equal(np.sort(nodes), cat_nodes_expected) or len(np.unique(nodes)) != len(nodes):
            _bad(f"{where}: categories_nodes are not its categorical splits")
        if bool(((segs < 0) | (sizes < 0) | (segs + sizes > len(cats))).any()):
            _bad(f"{where}: a category segment lies outside the category list")
        if cats.size and (int(cats.min()) < 0 or int(cats.max()) >= _MAX_CATEGORY):
            _bad(f"{where}: a category lies outside 0..{_MAX_CATEGORY - 1}")
    elif cat_nodes_expected.size:
        _bad(f"{where} has categorical splits but no category tables")


def _xgb_gbtree(m: Any, where: str, n_features: int, n_groups: int, n_targets: int) -> int:
    m = _obj(m, where, {"gbtree_model_param", "iteration_indptr", "tree_info", "trees"}, {"cats"})
    p = _obj(m["gbtree_model_param"], f"{where} gbtree_model_param", {"num_parallel_tree", "num_trees"})
    _num_str(p["num_parallel_tree"], "num_parallel_tree", 1, 1 << 20)
    n_trees = _num_str(p["num_trees"], "num_trees", 0, _I32)
    trees = m["trees"]
    if not isinstance(trees, _UList) or len(trees) != n_trees:
        _bad(f"{where} does not hold num_trees={n_trees} trees")
    info = _ints(m["tree_info"], "tree_info", n_trees)
    if info.size and (int(info.min()) < 0 or int(info.max()) >= n_groups):
        _bad(f"tree_info names an output group outside 0..{n_groups - 1}")
    _monotone_from(_ints(m["iteration_indptr"], "iteration_indptr"), 0, n_trees, "iteration_indptr")
    for i, t in enumerate(trees):
        _xgb_tree(t, i, n_features, n_targets)
    if "cats" in m:
        c = _obj(m["cats"], "cats", {"enc", "feature_segments", "sorted_idx"})
        enc = c["enc"]
        if not isinstance(enc, _UList) or len(enc) not in (0, n_features):
            _bad("cats.enc does not describe every feature")
        sorted_idx = _ints(c["sorted_idx"], "cats.sorted_idx")
        segs = _ints(c["feature_segments"], "cats.feature_segments")
        if len(enc) or len(segs):
            if len(segs) != n_features + 1:
                _bad("cats.feature_segments does not describe every feature")
            _monotone_from(segs, 0, len(sorted_idx), "cats.feature_segments")
        for f, e in enumerate(enc):
            if type(e) is dict and "type" in e:
                e = _obj(e, f"cats.enc[{f}]", {"type", "values"})
                code = _int(e["type"], f"cats.enc[{f}].type", 0, 255)
                v = e["values"]
                if code not in _CAT_TYPES or not isinstance(v, _UArr) or v.m != _CAT_TYPES[code]:
                    _bad(f"cats.enc[{f}] values do not have the type it declares")
                count = len(v.a)
            else:
                e = _obj(e, f"cats.enc[{f}]", {"offsets", "values"})
                off = _ints(e["offsets"], f"cats.enc[{f}].offsets")
                vals = e["values"]
                if not isinstance(vals, _UArr) or vals.m not in (ord("i"), ord("U")):
                    _bad(f"cats.enc[{f}] string values are not bytes")
                if len(off):
                    _monotone_from(off, 0, len(vals.a), f"cats.enc[{f}].offsets")
                elif len(vals.a):
                    _bad(f"cats.enc[{f}] has string bytes but no offsets")
                count = max(len(off) - 1, 0)
            if int(segs[f + 1] - segs[f]) != count:
                _bad(f"cats.enc[{f}] holds {count} categories, its segment {int(segs[f + 1] - segs[f])}")
            seg = sorted_idx[int(segs[f]) : int(segs[f + 1])]
            if seg.size and (int(seg.min()) < 0 or int(seg.max()) >= count):
                _bad(f"cats.sorted_idx of feature {f} lies outside its categories")
    return n_trees


def check_xgboost_model(raw: bytes) -> bytes:
    """Check an XGBoost UBJSON model (as ``Booster.save_raw("ubj")`` makes it) and return the
    canonical bytes to give XGBoost; raises :class:`ModelError` naming what is wrong."""
    top = _ubj_read(raw)
    _xgb_model(top)
    return _ubj(top)


def _ubj(v: Any) -> bytes:
    out = bytearray()
    _ubj_write(v, out)
    return bytes(out)


#: What a string of XGBoost's training configuration may hold (parameter values, updater
#: and metric names, constraint lists): printable ASCII, bounded.
_CONFIG_STR = re.compile(r"[\x20-\x7e]{0,65536}")


def _xgb_plain_config(v: Any, where: str) -> None:
    """Training parameters: objects and arrays of strings (and flags), nothing else."""
    if type(v) is dict:
        for k, x in v.items():
            _xgb_plain_config(x, f"{where}.{k[:40]}")
    elif isinstance(v, _UList):
        for i, x in enumerate(v):
            _xgb_plain_config(x, f"{where}[{i}]")
    elif type(v) is str:
        if not _CONFIG_STR.fullmatch(v):
            _bad(f"{where} is not a short printable string")
    elif v is not True and v is not False:
        _bad(f"{where} is not a string")


def _xgb_config(cfg: Any, model: dict[str, Any]) -> None:
    """The ``Config`` part of a serialized booster: XGBoost's training configuration. What
    it says about the model (version, objective, model parameters, booster kind and tree
    counts) must be what the checked model says; the rest must be plain parameters, which
    XGBoost parses and validates itself (unknown updaters, metrics, values out of range:
    clean errors)."""
    cfg = _obj(cfg, "Config", {"learner", "version"})
    if _ubj(cfg["version"]) != _ubj(model["version"]):
        _bad("the Config's version differs from the model's")
    lr = _obj(cfg["learner"], "Config learner", {"generic_param", "gradient_booster", "learner_model_param",
                                                "learner_train_param", "metrics", "objective"})
    ml = model["learner"]
    for key in ("learner_model_param", "objective"):
        if _ubj(lr[key]) != _ubj(ml[key]):
            _bad(f"the Config's {key} differs from the model's")
    gb, mgb = lr["gradient_booster"], ml["gradient_booster"]
    name = mgb["name"]
    if type(gb) is not dict or gb.get("name") != name:
        _bad(f"the Config's gradient booster is not the model's {name!r}")
    tp = lr["learner_train_param"]
    if type(tp) is not dict or tp.get("booster") != name or tp.get("objective") != ml["objective"]["name"]:
        _bad("the Config's learner_train_param names another booster or objective than the model")
    if name in ("gbtree", "dart"):
        inner, minner = (gb.get("gbtree"), mgb["gbtree"]) if name == "dart" else (gb, mgb)
        if type(inner) is not dict or _ubj(inner.get("gbtree_model_param")) != _ubj(minner["model"]["gbtree_model_param"]):
            _bad("the Config's gbtree_model_param differs from the model's")
    for key in ("generic_param", "gradient_booster", "learner_train_param", "metrics"):
        _xgb_plain_config(lr[key], f"Config {key}")


def check_xgboost_serialized(raw: bytes) -> bytes:
    """Check a serialized XGBoost booster (what ``Booster.__getstate__`` pickles: XGBoost's
    memory snapshot, UBJSON ``{"Config": training configuration, "Model": the model}``) and
    return the canonical bytes to give XGBoost; raises :class:`ModelError` naming what is
    wrong. The model is checked as :func:`check_xgboost_model` checks it."""
    if raw[:2] == b'{"':
        _bad("it is in an older XGBoost's JSON text serialization, which amber does not check")
    top = _obj(_ubj_read(raw), "the serialized booster", {"Config", "Model"})
    _xgb_model(top["Model"])
    _xgb_config(top["Config"], top["Model"])
    return _ubj(top)


def _xgb_model(top: Any) -> None:
    """Check a parsed XGBoost model (see :func:`check_xgboost_model`)."""
    top = _obj(top, "the model", {"learner", "version"})
    ver = _ints(top["version"], "version", 3)
    if bool(((ver < 0) | (ver > 10000)).any()):
        _bad("the model's version is malformed")
    lr = _obj(top["learner"], "learner", {"attributes", "feature_names", "feature_types", "gradient_booster",
                                         "learner_model_param", "objective"})
    lmp = _obj(lr["learner_model_param"], "learner_model_param",
               {"base_score", "boost_from_average", "num_class", "num_feature", "num_target"})
    num_class = _num_str(lmp["num_class"], "num_class", 0, 1 << 20)
    n_features = _num_str(lmp["num_feature"], "num_feature", 0, _I32 - 1)
    n_targets = _num_str(lmp["num_target"], "num_target", 1, 1 << 20)
    _num_str(lmp["boost_from_average"], "boost_from_average", 0, 1)
    if num_class > 1 and n_targets > 1:
        _bad("the model has both classes and several targets")
    n_groups = max(num_class, n_targets, 1)
    base = _s(lmp["base_score"], "base_score")
    f = r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]{1,3})?"
    if re.fullmatch(rf"\[(?:{f})(?:,{f}){{0,{min(n_groups, 1 << 16)}}}\]", base):
        if base.count(",") + 1 not in (1, n_groups):
            _bad(f"base_score holds {base.count(',') + 1} values for {n_groups} outputs")
    elif not re.fullmatch(f, base):
        _bad(f"base_score {base[:40]!r} is malformed")
    attrs = lr["attributes"]
    if type(attrs) is not dict or not all(type(v) is str for v in attrs.values()):
        _bad("the booster attributes are not strings")
    if "best_iteration" in attrs and not re.fullmatch(r"[0-9]{1,10}", attrs["best_iteration"]):
        _bad("the best_iteration attribute is not an integer")
    for key, allowed in (("feature_names", None), ("feature_types", _FEATURE_TYPES)):
        vals = _strs(lr[key], key)
        if len(vals) not in (0, n_features):
            _bad(f"{key} has {len(vals)} entries for {n_features} features")
        if allowed is not None and not set(vals) <= allowed:
            _bad(f"feature_types holds an unknown type among {sorted(set(vals) - allowed)[:3]}")
    obj = lr["objective"]
    if type(obj) is not dict or _s(obj.get("name"), "objective name") not in _XGB_OBJECTIVES:
        _bad(f"unknown objective {str(obj.get('name') if type(obj) is dict else obj)[:40]!r}")
    for key, group in obj.items():
        if key == "name":
            continue
        if type(group) is not dict or not all(type(v) is str and _SAFE_PARAM.fullmatch(v) for v in group.values()):
            _bad(f"objective parameters {key[:40]!r} are malformed")
    if obj["name"].startswith("multi:"):
        smp = obj.get("softmax_multiclass_param")
        if type(smp) is not dict or _num_str(smp.get("num_class"), "objective num_class", 1, 1 << 20) != num_class:
            _bad(f"the objective's num_class differs from the model's ({num_class})")
    if obj["name"] == "reg:quantileerror":
        qp = obj.get("quantile_loss_param")
        alpha = qp.get("quantile_alpha") if type(qp) is dict else None
        if type(alpha) is not str or (alpha.count(",") + 1 if alpha.startswith("[") else 1) != n_targets:
            _bad(f"the quantiles do not match the model's {n_targets} targets")
    gb = lr["gradient_booster"]
    name = gb.get("name") if type(gb) is dict else None
    if name == "gbtree":
        gb = _obj(gb, "gradient_booster", {"model", "name"})
        _xgb_gbtree(gb["model"], "gbtree model", n_features, n_groups, n_targets)
    elif name == "dart":
        gb = _obj(gb, "gradient_booster", {"gbtree", "name", "weight_drop"})
        inner = _obj(gb["gbtree"], "dart gbtree", {"model", "name"})
        if inner["name"] != "gbtree":
            _bad("dart does not wrap a gbtree")
        n_trees = _xgb_gbtree(inner["model"], "dart model", n_features, n_groups, n_targets)
        _floats(gb["weight_drop"], "weight_drop", n_trees)
    elif name == "gblinear":
        gb = _obj(gb, "gradient_booster", {"model", "name"})
        lm = _obj(gb["model"], "gblinear model", {"boosted_rounds", "weights"})
        _int(lm["boosted_rounds"], "boosted_rounds", 0, 2**62)
        _floats(lm["weights"], "gblinear weights", (n_features + 1) * n_groups)
    else:
        _bad(f"unknown gradient booster {str(name)[:40]!r}")


# ======================================================================================
# handlers
# ======================================================================================


def _corrupt(handler_id: str, what: str) -> CorruptFileError:
    return CorruptFileError(f"{handler_id} node: {what}; the file is damaged or was not written by amber")


def _blob_bytes(handler_id: str, meta: dict[str, Any], ctx: DecodeContext) -> bytes:
    ref = meta.get("model")
    if type(ref) is not int:
        raise _corrupt(handler_id, f"model blob reference {ref!r:.40} is not an int")
    if ctx.blob_nbytes(ref) == 0:
        raise _corrupt(handler_id, "the model is empty")
    return bytes(ctx.blob(ref))


#: The LightGBM Booster attributes saved besides the model text, with the types a file may
#: give them. (Training internals -- datasets, prediction buffers, evaluation bookkeeping --
#: are not: they are meaningless without the training data, and native code trusts some.)
_LGB_STATE: dict[str, tuple[type, ...]] = {
    "best_iteration": (int,),
    "best_score": (dict,),
    "params": (dict,),
    "pandas_categorical": (list, type(None)),
    "_train_data_name": (str,),
    "name_valid_sets": (list,),
}


class LightGBMBoosterHandler(Handler):
    """``lightgbm.Booster``: model text plus the plain-data attributes."""

    handler_id = "lightgbm.Booster"
    types = (_lgb.Booster,) if _lgb is not None else ()

    def encode(self, obj: Any, ctx: EncodeContext) -> list[Any]:
        ctx.note_package("lightgbm")
        try:
            text = obj.model_to_string(num_iteration=-1)
        except Exception as exc:  # noqa: BLE001 - LightGBMError, or a booster without a model
            raise EncodeError(f"LightGBM could not write the booster's model: {exc}") from None
        try:
            check_lightgbm_model(text)
        except ModelError as exc:
            raise EncodeError(
                f"amber cannot verify this LightGBM model ({exc}), so it could not load it back safely; "
                f"it may come from a LightGBM newer than amber supports (this is {_lgb.__version__})"
            ) from None
        ref = ctx.add_blob(memoryview(text.encode("utf-8")))
        attrs = vars(obj)
        state = {k: attrs[k] for k in _LGB_STATE if k in attrs}
        return [self.tag, {"model": ref}, ctx.encode(state, "state")]

    def decode(self, node: Any, ctx: DecodeContext) -> Any:
        hid = self.handler_id
        if len(node) != 3 or type(node[1]) is not dict:
            raise _corrupt(hid, "malformed node (expected [tag, meta, state])")
        if _lgb is None:
            raise DecodeError(
                f"the file holds a lightgbm.Booster, but lightgbm cannot be imported here ({_LGB_ERROR}): "
                "install it (pip install lightgbm) to load this file"
            )
        raw = _blob_bytes(hid, node[1], ctx)
        state = ctx.decode(node[2], "state")
        if type(state) is not dict:
            raise _corrupt(hid, f"its state is a {type(state).__name__}, not a dict")
        for k, v in state.items():
            allowed = _LGB_STATE.get(k) if type(k) is str else None
            if allowed is None:
                raise _corrupt(hid, f"unexpected booster attribute {k!r:.60}")
            if not isinstance(v, allowed) or type(v) is bool:
                raise _corrupt(hid, f"booster attribute {k!r} is a {type(v).__name__}")
        if not all(type(n) is str for n in state.get("name_valid_sets", ())):
            raise _corrupt(hid, "name_valid_sets holds something other than strings")
        if not all(type(k) is str for k in state.get("params", {})):
            raise _corrupt(hid, "params has a key that is not a string")
        try:
            text = check_lightgbm_model(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise _corrupt(hid, f"the model text is not UTF-8 ({exc})") from None
        except ModelError as exc:
            raise _corrupt(hid, f"the LightGBM model fails amber's checks: {exc}") from None
        try:
            booster = _lgb.Booster(model_str=text)
        except Exception as exc:  # noqa: BLE001 - LightGBMError and whatever its parser raises
            raise _corrupt(hid, f"LightGBM refused the model text: {exc}") from None
        booster.__dict__.update(state)
        return booster


class XGBoostBoosterHandler(Handler):
    """``xgboost.Booster``: UBJSON model bytes plus any extra Python attributes."""

    handler_id = "xgboost.Booster"
    types = (_xgb.Booster,) if _xgb is not None else ()

    def encode(self, obj: Any, ctx: EncodeContext) -> list[Any]:
        ctx.note_package("xgboost")
        try:
            raw = bytes(obj.save_raw(raw_format="ubj"))
        except Exception as exc:  # noqa: BLE001 - XGBoostError, or a freed booster
            raise EncodeError(f"XGBoost could not write the booster's model: {exc}") from None
        try:
            check_xgboost_model(raw)
        except ModelError as exc:
            raise EncodeError(
                f"amber cannot verify this XGBoost model ({exc}), so it could not load it back safely; "
                f"it may come from an XGBoost newer than amber supports (this is {_xgb.__version__})"
            ) from None
        ref = ctx.add_blob(memoryview(raw))
        extra = {k: v for k, v in vars(obj).items() if k != "handle"}
        return [self.tag, {"model": ref, "format": "ubj"}, ctx.encode(extra, "attributes")]

    def decode(self, node: Any, ctx: DecodeContext) -> Any:
        hid = self.handler_id
        if len(node) != 3 or type(node[1]) is not dict:
            raise _corrupt(hid, "malformed node (expected [tag, meta, attributes])")
        meta = node[1]
        if _xgb is None:
            raise DecodeError(
                f"the file holds an xgboost.Booster, but xgboost cannot be imported here ({_XGB_ERROR}): "
                "install it (pip install xgboost) to load this file"
            )
        if meta.get("format") != "ubj":
            raise _corrupt(hid, f"unknown model format {meta.get('format')!r:.40}")
        raw = _blob_bytes(hid, meta, ctx)
        extra = ctx.decode(node[2], "attributes")
        if type(extra) is not dict or not all(
            type(k) is str and k.isidentifier() and k != "handle" and not k.startswith("__") for k in extra
        ):
            raise _corrupt(hid, "its attributes are not a map of attribute names")
        try:
            model = check_xgboost_model(raw)
        except ModelError as exc:
            raise _corrupt(hid, f"the XGBoost model fails amber's checks: {exc}") from None
        booster = _xgb.Booster()
        try:
            booster.load_model(bytearray(model))
        except Exception as exc:  # noqa: BLE001 - XGBoostError and whatever its parser raises
            raise _corrupt(hid, f"XGBoost refused the model: {exc}") from None
        booster.__dict__.update(extra)
        return booster


REGISTRY.register(LightGBMBoosterHandler)
REGISTRY.register(XGBoostBoosterHandler)
