"""Round-trip checks: validate a saved model before you deploy it.

``assert_equal`` is a deep equality that understands NumPy, pandas, SciPy sparse, PyTorch
and scikit-learn objects as well as Python's own; on a mismatch its ``AssertionError``
names where the two differ, in amber's path notation (``root[...]`` for items, ``.attr``
for attributes), e.g. ``root['model'].steps[0][1].coef_[3, 2]: 0.5 != 0.25``.
``assert_roundtrip`` saves an object, loads it back and checks the copy;
``assert_same_predictions`` checks that two models give the same outputs.

>>> import amber.testing
>>> loaded = amber.testing.assert_roundtrip(model, compress="zstd")     # doctest: +SKIP
>>> amber.testing.assert_same_predictions(model, loaded, X_test)        # doctest: +SKIP
['predict', 'predict_proba', 'decision_function']
>>> amber.testing.assert_equal({"w": [1.0, float("nan")]}, {"w": [1.0, float("nan")]})
>>> amber.testing.assert_equal({"w": [1.0, 2.0]}, {"w": [1.0, 2.5]})
Traceback (most recent call last):
    ...
AssertionError: root['w'][1]: 2.0 != 2.5

Importing this module imports neither pandas, SciPy, scikit-learn nor PyTorch: objects of
those libraries are recognised through ``sys.modules`` (if such an object exists, its
library is already imported).
"""

from __future__ import annotations

import contextlib
import copyreg
import dataclasses
import datetime as _dt
import decimal
import enum
import fractions
import functools
import inspect as _inspect
import math
import os
import pathlib
import sys
import tempfile
import types
import uuid
import weakref
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NoReturn

import numpy as np

from amber import _api

__all__ = ["assert_equal", "assert_roundtrip", "assert_same_predictions"]


# --------------------------------------------------------------------------------- paths


class _Path:
    """A path inside the compared objects, rendered only when a comparison fails.

    ``part`` is a string written as it is (``.name``, ``[3, 2]``), or, for items, the key
    itself, rendered as ``[repr(key)]`` (most paths are never rendered)."""

    __slots__ = ("parent", "part", "is_key")

    def __init__(self, parent: _Path | None, part: Any, is_key: bool = False) -> None:
        self.parent = parent
        self.part = part
        self.is_key = is_key

    def __str__(self) -> str:
        parts: list[str] = []
        node: _Path | None = self
        while node is not None:
            parts.append(f"[{_short(node.part, 80)}]" if node.is_key else node.part)
            node = node.parent
        return "".join(reversed(parts))

    def attr(self, name: str) -> _Path:
        return _Path(self, "." + name)

    def item(self, key: Any) -> _Path:
        return _Path(self, key, True)

    def index(self, idx: tuple[int, ...]) -> _Path:
        return _Path(self, "[" + ", ".join(str(int(i)) for i in idx) + "]") if idx else self


Triple = tuple[Any, Any, _Path]
Children = Iterator[Triple]

_MISSING = object()
_UNHANDLED = object()
_OBJECT_GETSTATE = getattr(object, "__getstate__", None)

#: Compared with ``==`` (after the type check), nothing inside them to walk.
_ATOMIC = frozenset(
    {
        type(None),
        bool,
        int,
        str,
        bytes,
        bytearray,
        range,
        type(Ellipsis),
        type(NotImplemented),
        fractions.Fraction,
        uuid.UUID,
        _dt.date,
        _dt.timedelta,
        _dt.timezone,
    }
)
#: The commonest leaves, compared first.
_EQ_TYPES = frozenset({type(None), bool, int, str, bytes})
_BUILTIN_CONTAINERS = frozenset({list, tuple, dict, set, frozenset, deque})
#: Dict keys of these types (and tuples/frozensets of them) are matched by hashing.
_SIMPLE_KEYS = frozenset({type(None), bool, int, float, complex, str, bytes, fractions.Fraction, uuid.UUID})
_CALLABLE_TYPES: tuple[type, ...] = (
    type,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.ModuleType,
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
    types.MethodWrapperType,
    types.ClassMethodDescriptorType,
    np.ufunc,
)
_SET_MATCH_LIMIT = 200  # unmatched set items paired by deep equality (quadratic) up to this many


def _short(x: Any, limit: int = 120) -> str:
    """A one-line repr of ``x``, at most ``limit`` characters."""
    if isinstance(x, np.generic) and x.dtype.kind in "biufcUS":
        x = x.item()
    try:
        r = repr(x)
    except Exception:  # a broken __repr__ must not hide the real difference
        r = object.__repr__(x)
    r = " ".join(r.split()) if "\n" in r else r
    return r if len(r) <= limit else r[: limit - 3] + "..."


def _tname(t: type) -> str:
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def _names(keys: Iterable[Any], limit: int = 10) -> str:
    ks = list(keys)
    shown = ", ".join(_short(k, 60) for k in ks[:limit])
    return shown + (f", ... ({len(ks)} in all)" if len(ks) > limit else "")


def _fail(path: _Path, detail: str) -> NoReturn:
    raise AssertionError(f"{path}: {detail}")


def _is_simple_key(k: Any) -> bool:
    t = type(k)
    if t in _SIMPLE_KEYS:
        return True
    if t is tuple or t is frozenset:
        return all(_is_simple_key(x) for x in k)
    return False


def _qualified(x: Any) -> str | None:
    """``module.qualname`` of a class, function or module, or None when it has none."""
    if isinstance(x, types.ModuleType):
        return x.__name__
    if isinstance(x, np.ufunc):
        return f"numpy.{x.__name__}"
    qual = getattr(x, "__qualname__", None) or getattr(x, "__name__", None)
    if not isinstance(qual, str):
        return None
    mod = getattr(x, "__module__", None)
    if mod is None and isinstance(getattr(x, "__objclass__", None), type):  # method descriptors
        owner = x.__objclass__
        return f"{owner.__module__}.{qual}"
    return f"{mod}.{qual}" if isinstance(mod, str) else qual


_SLOTS: weakref.WeakKeyDictionary[type, tuple[str, ...]] = weakref.WeakKeyDictionary()


def _slot_names(cls: type) -> tuple[str, ...]:
    """The names of the ``__slots__`` of ``cls`` and its bases (private ones mangled)."""
    try:
        return _SLOTS[cls]
    except (KeyError, TypeError):
        pass
    names: list[str] = []
    for klass in cls.__mro__:
        slots = klass.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if name in ("__dict__", "__weakref__"):
                continue
            if name.startswith("__") and not name.endswith("__"):
                name = f"_{klass.__name__.lstrip('_')}{name}"
            if name not in names:
                names.append(name)
    found = tuple(names)
    try:
        _SLOTS[cls] = found
    except TypeError:
        pass
    return found


def _plain_state(obj: Any) -> dict[str, Any]:
    """An object's attributes: its ``__dict__`` and its ``__slots__`` that are set."""
    state = dict(getattr(obj, "__dict__", None) or {})
    for name in _slot_names(type(obj)):
        value = getattr(obj, name, _MISSING)
        if value is not _MISSING:
            state[name] = value
    return state


# ----------------------------------------------------------------------------- compare


class _Comparer:
    """Walks two object graphs side by side, depth first, with an explicit stack (no
    recursion limit) and a set of object pairs already compared (cycles, sharing)."""

    def __init__(self, rtol: float, atol: float, check_type: bool) -> None:
        self.rtol = rtol
        self.atol = atol
        self.check_type = check_type
        self.exact = rtol == 0 and atol == 0
        self.signed_zero = check_type and self.exact  # -0.0 differs from 0.0
        self.seen: set[tuple[int, int]] = set()
        self.keep: list[tuple[Any, Any]] = []  # compared pairs stay alive, so their ids stay theirs

    def run(self, a: Any, b: Any, path: _Path) -> None:
        stack: list[Children] = [iter(((a, b, path),))]
        while stack:
            triple = next(stack[-1], None)
            if triple is None:
                stack.pop()
                continue
            children = self.compare(*triple)
            if children is not None:
                stack.append(children)

    def equal(self, a: Any, b: Any) -> bool:
        """Whether ``a`` and ``b`` are equal, in a fresh walk (used to pair set items)."""
        try:
            _Comparer(self.rtol, self.atol, self.check_type).run(a, b, _Path(None, "root"))
        except AssertionError:
            return False
        return True

    # ------------------------------------------------------------------ dispatch

    def compare(self, a: Any, b: Any, p: _Path) -> Children | None:
        if a is b:
            return None
        ta, tb = type(a), type(b)
        if ta is tb:
            if ta is float:  # the most common leaves first
                if a == b and (a != 0 or not self.signed_zero or math.copysign(1, a) == math.copysign(1, b)):
                    return None
                self._number(a, b, p)
                return None
            if ta in _EQ_TYPES:
                if a == b:
                    return None
                _fail(p, f"{_short(a)} != {_short(b)}")
            if ta is list or ta is dict or ta is tuple:
                if not self._seen_once(a, b):
                    return None
                return self._dict(a, b, p) if ta is dict else self._sequence(a, b, p)
        elif self.check_type:
            _fail(p, f"type {_tname(ta)} != {_tname(tb)}")

        # arrays, scalars and other values (compared whole, or element by element)
        if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
            return self._array(a, b, p) if self._seen_once(a, b) else None
        if isinstance(a, np.generic) or isinstance(b, np.generic):
            return self._array(np.asarray(a), np.asarray(b), p)
        if isinstance(a, enum.Enum):
            return self._enum(a, b, p)
        if isinstance(a, (int, float, complex)) and isinstance(b, (int, float, complex)):
            self._number(a, b, p)
            return None if ta in _ATOMIC or ta in (float, complex) else self._subclass_state(a, b, p)
        if ta in _ATOMIC and (self.check_type or tb in _ATOMIC):
            if not a == b:
                _fail(p, f"{_short(a)} != {_short(b)}")
            return None
        if isinstance(a, (str, bytes)):  # subclasses of str and bytes
            base = str if isinstance(a, str) else bytes
            if not (isinstance(b, base) and base.__eq__(a, b)):
                _fail(p, f"{_short(a)} != {_short(b)}")
            return self._subclass_state(a, b, p)
        if isinstance(a, (decimal.Decimal, _dt.datetime, _dt.time, pathlib.PurePath, np.dtype)) and not (
            ta.__module__.startswith("pandas")  # pd.Timestamp is a datetime: pandas compares it below
        ):
            self._value(a, b, p)
            return None
        if isinstance(a, _CALLABLE_TYPES):
            return self._callable(a, b, p)

        # containers and objects: each pair once (cycles, shared references)
        if not self._seen_once(a, b):
            return None
        framework = self._framework(a, b, p)
        if framework is not _UNHANDLED:
            return framework  # type: ignore[return-value]
        if isinstance(a, dict) and isinstance(b, dict):
            return self._dict(a, b, p)
        if isinstance(a, (list, tuple, deque)) and isinstance(b, (list, tuple, deque)):
            return self._sequence(a, b, p)
        if isinstance(a, (set, frozenset)) and isinstance(b, (set, frozenset)):
            return self._set(a, b, p)
        if ta is not tb:
            _fail(p, f"type {_tname(ta)} != {_tname(tb)}")
        if isinstance(a, functools.partial):
            return self._partial(a, b, p)
        if isinstance(a, np.random.Generator):
            return iter(((a.bit_generator.state, b.bit_generator.state, p.attr("bit_generator.state")),))
        if isinstance(a, np.random.RandomState):
            return iter(((a.get_state(legacy=False), b.get_state(legacy=False), p.attr("get_state()")),))
        if isinstance(a, np.random.BitGenerator):
            return iter(((a.state, b.state, p.attr("state")),))
        if dataclasses.is_dataclass(a):
            return self._dataclass(a, b, p)
        return self._object(a, b, p)

    def _seen_once(self, a: Any, b: Any) -> bool:
        key = (id(a), id(b))
        if key in self.seen:
            return False
        self.seen.add(key)
        self.keep.append((a, b))
        return True

    def _framework(self, a: Any, b: Any, p: _Path) -> Children | None | object:
        """pandas, SciPy sparse, PyTorch, scikit-learn objects (their modules are loaded);
        ``_UNHANDLED`` for anything else."""
        mods = sys.modules
        pd = mods.get("pandas")
        if pd is not None and (
            type(a).__module__.startswith("pandas") or isinstance(a, (pd.DataFrame, pd.Series, pd.Index))
        ):
            out = self._pandas(pd, a, b, p)
            if out is not _UNHANDLED:
                return out
        sparse = mods.get("scipy.sparse")
        if sparse is not None and sparse.issparse(a):
            return self._sparse(sparse, a, b, p)
        torch = mods.get("torch")
        if torch is not None:
            if isinstance(a, torch.Tensor):
                return self._tensor(torch, a, b, p)
            if isinstance(a, torch.nn.Module):
                return self._module(torch, a, b, p)
            if isinstance(a, (torch.dtype, torch.device, torch.layout, torch.memory_format)):
                self._value(a, b, p)
                return None
            if isinstance(a, torch.Generator):
                if a.device != b.device:
                    _fail(p, f"device {a.device} != {b.device}")
                return iter(((a.get_state(), b.get_state(), p.attr("get_state()")),))
        base = mods.get("sklearn.base")
        if base is not None and isinstance(a, base.BaseEstimator):
            return self._estimator(a, b, p)
        return _UNHANDLED

    # ---------------------------------------------------------------- scalars

    def _number(self, a: complex, b: complex, p: _Path) -> None:
        if isinstance(a, int) and isinstance(b, int):
            ok = a == b
        elif isinstance(a, complex) or isinstance(b, complex):
            ca, cb = complex(a), complex(b)
            ok = self._float_ok(ca.real, cb.real) and self._float_ok(ca.imag, cb.imag)
        else:
            ok = self._float_ok(float(a), float(b))
        if not ok:
            _fail(p, f"{_short(a)} != {_short(b)}")

    def _float_ok(self, x: float, y: float) -> bool:
        if x == y:
            # -0.0 and 0.0 differ when types are checked and no tolerance is given
            return not (x == 0 and self.signed_zero) or math.copysign(1, x) == math.copysign(1, y)
        if math.isnan(x) and math.isnan(y):
            return True
        if self.exact or not (math.isfinite(x) and math.isfinite(y)):
            return False
        return abs(x - y) <= self.atol + self.rtol * abs(y)

    def _value(self, a: Any, b: Any, p: _Path) -> None:
        """Decimal, datetime, time, paths, dtypes: ``==`` and what ``==`` leaves out."""
        ok = False
        try:
            if isinstance(a, decimal.Decimal) and isinstance(b, decimal.Decimal):
                if a.is_nan() or b.is_nan():
                    ok = a.is_nan() and b.is_nan() and a.is_snan() == b.is_snan()
                else:  # Decimal('1.0') == Decimal('1.00'), yet they print differently
                    ok = a == b and (not self.check_type or a.as_tuple() == b.as_tuple())
            elif isinstance(a, (_dt.datetime, _dt.time)):  # aware ones are equal across zones
                ok = a == b and (not self.check_type or (a.tzinfo == b.tzinfo and a.fold == b.fold))
            else:
                ok = bool(a == b)
        except Exception:
            ok = False
        if not ok:
            _fail(p, f"{_short(a)} != {_short(b)}")

    def _enum(self, a: enum.Enum, b: Any, p: _Path) -> None:
        try:
            ok = bool(a == b)
        except Exception:
            ok = False
        if not ok:
            _fail(p, f"{_short(a)} != {_short(b)}")

    def _callable(self, a: Any, b: Any, p: _Path) -> Children | None:
        """Classes, functions, modules, ufuncs: the same object, or the same qualified name.
        Bound methods: the same function, bound to equal objects."""
        if isinstance(a, types.MethodType) and isinstance(b, types.MethodType):
            return iter(((a.__func__, b.__func__, p.attr("__func__")), (a.__self__, b.__self__, p.attr("__self__"))))
        self_a, self_b = getattr(a, "__self__", None), getattr(b, "__self__", None)
        if isinstance(a, (types.BuiltinMethodType, types.MethodWrapperType)) and not (
            self_a is None or isinstance(self_a, (types.ModuleType, type))
        ):  # a builtin method bound to an object: rng.random, [].append
            if getattr(a, "__name__", None) != getattr(b, "__name__", _MISSING):
                _fail(p, f"{_short(a)} != {_short(b)}")
            return iter(((self_a, self_b, p.attr("__self__")),))
        qa, qb = _qualified(a), _qualified(b)
        if qa is None or qa != qb:
            kind = "class" if isinstance(a, type) else type(a).__name__
            _fail(p, f"{kind} {qa or _short(a)} != {qb or _short(b)}")
        if "<" in qa:  # a lambda or a local function or class: its name is not unique
            _fail(p, f"{qa} is not the same object (it has no importable name, so it is compared by identity)")
        return None

    # --------------------------------------------------------------- numpy

    def _array(self, a: Any, b: Any, p: _Path) -> Children:
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            if self.check_type:
                _fail(p, f"type {_tname(type(a))} != {_tname(type(b))}")
            a, b = np.asanyarray(a), np.asanyarray(b)
        if self.check_type and a.dtype != b.dtype:
            _fail(p, f"dtype {a.dtype} != {b.dtype}")
        if a.shape != b.shape:
            _fail(p, f"shape {a.shape} != {b.shape}")
        ignore = None
        if isinstance(a, np.ma.MaskedArray) or isinstance(b, np.ma.MaskedArray):
            ma, mb = np.ma.getmaskarray(a), np.ma.getmaskarray(b)
            if ma.dtype.names is None:
                self._report(np.asarray(ma == mb), ma, mb, p.attr("mask"), "mask elements")
                ignore = ma
            elif ma.tobytes() != mb.tobytes():
                _fail(p.attr("mask"), "masks differ")
            if self.check_type:  # both masked arrays
                yield a.fill_value, b.fill_value, p.attr("fill_value")
            a, b = np.ma.getdata(a), np.ma.getdata(b)
        if a.dtype.names is not None or b.dtype.names is not None:
            if a.dtype.names != b.dtype.names:
                _fail(p, f"fields {a.dtype.names} != {b.dtype.names}")
            for name in a.dtype.names:
                yield a[name], b[name], p.item(name)
            return
        if a.dtype.hasobject or b.dtype.hasobject:
            for idx in np.ndindex(a.shape):
                if ignore is None or not ignore[idx]:
                    yield a[idx], b[idx], p.index(idx)
            return
        eq = self._array_eq(a, b, p, signed=self.signed_zero)
        if ignore is not None:
            eq = eq | ignore
        self._report(eq, a, b, p, "elements")

    @staticmethod
    def _report(eq: np.ndarray, a: np.ndarray, b: np.ndarray, p: _Path, what: str) -> None:
        if eq.all():
            return
        bad = ~eq
        n = int(np.count_nonzero(bad))
        idx = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), bad.shape)) if bad.ndim else ()
        count = f" ({n} of {bad.size} {what} differ)" if bad.ndim else ""
        _fail(p.index(idx), f"{_short(a[idx])} != {_short(b[idx])}{count}")

    def _array_eq(self, a: np.ndarray, b: np.ndarray, p: _Path, signed: bool) -> np.ndarray:
        """Element by element: equal (NaN and NaT equal to themselves)?"""
        ka, kb = a.dtype.kind, b.dtype.kind
        with np.errstate(all="ignore"):
            try:
                if "c" in (ka, kb):
                    eq = self._float_eq(a.real, b.real, signed) & self._float_eq(a.imag, b.imag, signed)
                elif "f" in (ka, kb):
                    eq = self._float_eq(a, b, signed)
                else:
                    eq = np.asarray(a == b)
                    if ka in "mM" and kb in "mM":
                        eq = eq | (np.isnat(a) & np.isnat(b))
            except (TypeError, ValueError) as exc:
                _fail(p, f"dtype {a.dtype} and {b.dtype} cannot be compared ({exc})")
        eq = np.asarray(eq, dtype=bool)
        return eq if eq.shape == a.shape else np.broadcast_to(eq, a.shape).copy()

    def _float_eq(self, x: np.ndarray, y: np.ndarray, signed: bool) -> np.ndarray:
        if self.exact:
            eq = np.asarray(x == y)
            if signed:
                eq &= np.signbit(x) == np.signbit(y)
        else:
            eq = np.isclose(x, y, rtol=self.rtol, atol=self.atol, equal_nan=False)
        return eq | (np.isnan(x) & np.isnan(y))

    # ------------------------------------------------------------- containers

    def _keys(self, ka: list[Any], kb: list[Any], p: _Path, what: str, ordered: bool) -> bool:
        """Check two key lists; True when they are simple and equal (values pair by key),
        False when values must pair by position (keys compared deeply)."""
        if not all(map(_is_simple_key, ka)) or not all(map(_is_simple_key, kb)):
            if len(ka) != len(kb):
                _fail(p, f"{len(ka)} {what} != {len(kb)}")
            return False
        if ka != kb:
            sa, sb = set(ka), set(kb)
            only_a, only_b = [k for k in ka if k not in sb], [k for k in kb if k not in sa]
            if only_a or only_b:
                parts = [f"{_names(only_a)} only in actual" if only_a else "", f"{_names(only_b)} only in expected" if only_b else ""]
                _fail(p, f"{what} differ: " + "; ".join(x for x in parts if x))
            if ordered:
                _fail(p, f"the same {what} in a different order: {_names(ka)} != {_names(kb)}")
        if self.check_type:
            pairs = zip(ka, kb) if ka == kb else ((k, {k: k for k in kb}[k]) for k in ka)
            for k, k2 in pairs:
                if type(k) is not type(k2):
                    _fail(p, f"key {k!r} is {_tname(type(k))} != {_tname(type(k2))}")
        return True

    def _dict(self, a: dict[Any, Any], b: dict[Any, Any], p: _Path) -> Children:
        ka, kb = list(a), list(b)
        if self._keys(ka, kb, p, "keys", ordered=True):
            for k, v in a.items():
                yield v, b[k], p.item(k)
        else:
            for i, ((xa, va), (xb, vb)) in enumerate(zip(a.items(), b.items())):
                yield xa, xb, p.attr(f"keys()[{i}]")
                yield va, vb, p.attr(f"values()[{i}]")
        if hasattr(a, "default_factory"):
            yield a.default_factory, getattr(b, "default_factory", None), p.attr("default_factory")
        yield from self._subclass_state(a, b, p)

    def _sequence(self, a: Sequence[Any], b: Sequence[Any], p: _Path) -> Children:
        if len(a) != len(b):
            _fail(p, f"length {len(a)} != {len(b)}")
        if isinstance(a, deque) and isinstance(b, deque) and a.maxlen != b.maxlen:
            _fail(p.attr("maxlen"), f"{a.maxlen} != {b.maxlen}")
        fields = getattr(type(a), "_fields", None) if isinstance(a, tuple) else None  # named tuples
        if isinstance(fields, tuple) and len(fields) == len(a) and all(isinstance(f, str) for f in fields):
            for f, x, y in zip(fields, a, b):
                yield x, y, p.attr(f)
        else:
            for i, (x, y) in enumerate(zip(a, b)):
                yield x, y, _Path(p, i, True)
        yield from self._subclass_state(a, b, p)

    def _set(self, a: Any, b: Any, p: _Path) -> Children:
        only_a = [x for x in a if x not in b]
        only_b = [x for x in b if x not in a]
        if (only_a or only_b) and len(only_a) == len(only_b) <= _SET_MATCH_LIMIT:
            rest = list(only_b)  # items equal only deeply (NaN, objects hashed by identity)
            for x in list(only_a):
                for j, y in enumerate(rest):
                    if self.equal(x, y):
                        only_a.remove(x)
                        del rest[j]
                        break
            only_b = rest
        if only_a or only_b:
            parts = [f"{_names(only_a)} only in actual" if only_a else "", f"{_names(only_b)} only in expected" if only_b else ""]
            _fail(p, "items differ: " + "; ".join(x for x in parts if x))
        if len(a) != len(b):  # items equal to several of the other's
            _fail(p, f"length {len(a)} != {len(b)}")
        if self.check_type:
            ta = sorted(_tname(type(x)) for x in a)
            tb = sorted(_tname(type(x)) for x in b)
            if ta != tb:
                _fail(p, f"item types differ: {_names(ta)} != {_names(tb)}")
        yield from self._subclass_state(a, b, p)

    def _attrs(self, sa: dict[str, Any], sb: dict[str, Any], p: _Path, what: str = "attributes") -> Children:
        """Attribute maps: the same names (in any order), equal values; paths ``.name``."""
        ka, kb = list(sa), list(sb)
        if not (all(type(k) is str for k in ka) and all(type(k) is str for k in kb)):
            yield sa, sb, p.attr("__dict__")
            return
        self._keys(ka, kb, p, what, ordered=False)
        for k, v in sa.items():
            yield v, sb[k], p.attr(k)

    def _subclass_state(self, a: Any, b: Any, p: _Path) -> Children:
        """The attributes of an instance of a subclass of a builtin type (if any)."""
        if type(a) in _BUILTIN_CONTAINERS and type(b) in _BUILTIN_CONTAINERS:
            return
        sa, sb = _plain_state(a), _plain_state(b)
        if sa or sb:
            yield from self._attrs(sa, sb, p)

    def _partial(self, a: functools.partial[Any], b: Any, p: _Path) -> Children:
        yield a.func, b.func, p.attr("func")
        yield a.args, b.args, p.attr("args")
        yield a.keywords, b.keywords, p.attr("keywords")
        yield from self._subclass_state(a, b, p)

    # ------------------------------------------------------------------ objects

    def _dataclass(self, a: Any, b: Any, p: _Path) -> Children:
        names = [f.name for f in dataclasses.fields(a)]
        for name in names:
            va, vb = getattr(a, name, _MISSING), getattr(b, name, _MISSING)
            if (va is _MISSING) != (vb is _MISSING):
                _fail(p.attr(name), "set on only one of them")
            if va is not _MISSING:
                yield va, vb, p.attr(name)
        rest_a = {k: v for k, v in _plain_state(a).items() if k not in names}
        rest_b = {k: v for k, v in _plain_state(b).items() if k not in names}
        if rest_a or rest_b:
            yield from self._attrs(rest_a, rest_b, p)

    def _object(self, a: Any, b: Any, p: _Path) -> Children:
        cls = type(a)
        custom_reduce = cls.__reduce_ex__ is not object.__reduce_ex__ or cls.__reduce__ is not object.__reduce__
        getstate = getattr(cls, "__getstate__", None)
        custom_getstate = getstate is not None and getstate is not _OBJECT_GETSTATE
        if not custom_reduce and custom_getstate:
            yield from self._state(a.__getstate__(), b.__getstate__(), p, ".__getstate__()")
            return
        if not custom_reduce and (hasattr(a, "__dict__") or any("__slots__" in k.__dict__ for k in cls.__mro__[:-1])):
            yield from self._attrs(_plain_state(a), _plain_state(b), p)
            return
        # objects of C types (their state is not visible from Python): what __reduce_ex__ says
        try:
            reducer = copyreg.dispatch_table.get(cls)  # as pickle would (re.Pattern, complex...)
            ra, rb = (reducer(a), reducer(b)) if reducer is not None else (a.__reduce_ex__(4), b.__reduce_ex__(4))
        except Exception:  # cannot be reduced (a lock, a file): all we have is ==
            ra = rb = None
        if isinstance(ra, str) or isinstance(rb, str):  # a named singleton (np.mean)
            if ra != rb or _qualified(a) != _qualified(b):
                _fail(p, f"{_qualified(a) or _short(a)} != {_qualified(b) or _short(b)}")
            return
        if not (type(ra) is tuple and type(rb) is tuple and len(ra) == len(rb) >= 2):
            try:
                ok = bool(a == b)
            except Exception:
                ok = False
            if not ok:
                _fail(p, f"{_short(a)} != {_short(b)} (objects of type {_tname(cls)} are compared with ==)")
            return
        yield ra[0], rb[0], p.attr("__reduce__()[0]")
        yield ra[1], rb[1], p.attr("__reduce__()[1]")
        if len(ra) > 2:
            yield from self._state(ra[2], rb[2], p, ".__reduce__()[2]")
        for i in range(3, len(ra)):
            ia = ra[i] if ra[i] is None or i == 5 else list(ra[i])
            ib = rb[i] if rb[i] is None or i == 5 else list(rb[i])
            yield ia, ib, p.attr(f"__reduce__()[{i}]")

    def _state(self, sa: Any, sb: Any, p: _Path, name: str) -> Children:
        """A pickling state: attribute maps as ``.name``, anything else under ``name``."""
        if type(sa) is tuple and type(sb) is tuple and len(sa) == len(sb) == 2 and all(
            x is None or type(x) is dict for x in (*sa, *sb)
        ):  # (__dict__, slots), as object.__getstate__ gives for classes with __slots__
            sa = {**(sa[0] or {}), **(sa[1] or {})}
            sb = {**(sb[0] or {}), **(sb[1] or {})}
        if type(sa) is dict and type(sb) is dict and all(type(k) is str for k in (*sa, *sb)):
            yield from self._attrs(sa, sb, p)
        else:
            yield sa, sb, _Path(p, name)

    def _estimator(self, a: Any, b: Any, p: _Path) -> Children:
        """scikit-learn: the same parameters, then every attribute (fitted ones included)."""
        yield from self._attrs(a.get_params(deep=False), b.get_params(deep=False), p, "parameters")
        yield from self._attrs(_plain_state(a), _plain_state(b), p)

    # --------------------------------------------------------------- frameworks

    def _pandas(self, pd: Any, a: Any, b: Any, p: _Path) -> Children | None | object:
        """pandas objects through pandas.testing; ``_UNHANDLED``: compare it generically."""
        ct = self.check_type
        tol: dict[str, Any] = {"check_exact": True} if self.exact else {"check_exact": False, "rtol": self.rtol, "atol": self.atol}
        where = str(p)
        try:
            if isinstance(a, pd.DataFrame):
                pd.testing.assert_frame_equal(
                    a, b, check_dtype=ct, check_index_type=ct, check_column_type=ct, check_freq=ct, check_flags=ct, obj=where, **tol
                )
            elif isinstance(a, pd.Series):
                pd.testing.assert_series_equal(
                    a, b, check_dtype=ct, check_index_type=ct, check_series_type=ct, check_freq=ct, check_flags=ct, obj=where, **tol
                )
            elif isinstance(a, pd.Index):
                pd.testing.assert_index_equal(a, b, exact=ct or "equiv", obj=where, **tol)
            elif isinstance(a, pd.api.extensions.ExtensionArray):
                pd.testing.assert_extension_array_equal(a, b, check_dtype=ct, obj=where, **tol)
            elif isinstance(a, (pd.Timestamp, pd.Timedelta)):
                ok = bool(a == b)
                if ok and ct and isinstance(a, pd.Timestamp):
                    ok = str(a.tz) == str(b.tz)
                if ok and ct:
                    ok = getattr(a, "unit", None) == getattr(b, "unit", None)
                if not ok:
                    _fail(p, f"{_short(a)} != {_short(b)}")
            elif isinstance(a, (pd.Period, pd.Interval, pd.api.extensions.ExtensionDtype, pd.offsets.BaseOffset)):
                self._value(a, b, p)
            else:
                return _UNHANDLED
        except AssertionError as exc:
            if str(exc).startswith(where + ":"):
                raise
            raise AssertionError(f"{where}: {exc}") from None
        if isinstance(a, (pd.DataFrame, pd.Series)) and (a.attrs or b.attrs):
            return iter(((a.attrs, b.attrs, p.attr("attrs")),))
        return None

    def _sparse(self, sparse: Any, a: Any, b: Any, p: _Path) -> Children | None:
        """SciPy sparse matrices and arrays: format, shape, dtype and the values they hold
        (wherever either stores an entry; duplicates summed, order ignored)."""
        if not sparse.issparse(b):
            _fail(p, f"type {_tname(type(a))} != {_tname(type(b))}")
        if self.check_type and a.format != b.format:
            _fail(p, f"format {a.format} != {b.format}")
        if a.shape != b.shape:
            _fail(p, f"shape {a.shape} != {b.shape}")
        if self.check_type and a.dtype != b.dtype:
            _fail(p, f"dtype {a.dtype} != {b.dtype}")
        shape = a.shape
        if math.prod(shape) >= 2**62:  # linear positions would overflow: compare canonical entries
            ca, cb = self._coo(a), self._coo(b)
            coords_a, coords_b = self._coords(ca), self._coords(cb)
            if len(coords_a[0]) != len(coords_b[0]) or any((x != y).any() for x, y in zip(coords_a, coords_b)):
                _fail(p, "the positions of stored entries differ")
            self._report(self._array_eq(ca.data, cb.data, p, signed=False), ca.data, cb.data, p.attr("data"), "entries")
            return None
        la, va = self._linear(a)
        lb, vb = self._linear(b)
        union = np.union1d(la, lb)
        xa = np.zeros(union.size, dtype=va.dtype)
        xb = np.zeros(union.size, dtype=vb.dtype)
        xa[np.searchsorted(union, la)] = va
        xb[np.searchsorted(union, lb)] = vb
        eq = self._array_eq(xa, xb, p, signed=False)  # a stored -0.0 is no different from an absent 0
        if not eq.all():
            bad = ~eq
            i = int(np.argmax(bad))
            idx = tuple(int(j) for j in np.unravel_index(int(union[i]), shape))
            n = int(np.count_nonzero(bad))
            _fail(p.index(idx), f"{_short(xa[i])} != {_short(xb[i])} ({n} of {union.size} stored entries differ)")
        return None

    @staticmethod
    def _coo(m: Any) -> Any:
        c = m.tocoo(copy=True)
        c.sum_duplicates()
        return c

    @staticmethod
    def _coords(c: Any) -> tuple[np.ndarray, ...]:
        coords = getattr(c, "coords", None)
        return tuple(coords) if coords is not None else (c.row, c.col)

    def _linear(self, m: Any) -> tuple[np.ndarray, np.ndarray]:
        c = self._coo(m)
        coords = self._coords(c)
        lin = np.ravel_multi_index(tuple(np.asarray(x, dtype=np.int64) for x in coords), c.shape) if coords else np.zeros(0, np.int64)
        return np.asarray(lin, dtype=np.int64), np.asarray(c.data)

    def _tensor(self, torch: Any, a: Any, b: Any, p: _Path) -> Children:
        if not isinstance(b, torch.Tensor):
            _fail(p, f"type {_tname(type(a))} != {_tname(type(b))}")
        if self.check_type and a.dtype != b.dtype:
            _fail(p, f"dtype {a.dtype} != {b.dtype}")
        if a.shape != b.shape:
            _fail(p, f"shape {tuple(a.shape)} != {tuple(b.shape)}")
        if a.device != b.device:
            _fail(p, f"device {a.device} != {b.device}")
        if a.requires_grad != b.requires_grad:
            _fail(p, f"requires_grad {a.requires_grad} != {b.requires_grad}")
        if self.check_type and a.layout != b.layout:
            _fail(p, f"layout {a.layout} != {b.layout}")
        if a.is_meta or b.is_meta:  # no data to compare
            return
        na, nb = self._tensor_values(torch, a), self._tensor_values(torch, b)
        yield from self._array(na, nb, p)

    @staticmethod
    def _tensor_values(torch: Any, t: Any) -> np.ndarray:
        t = t.detach()
        if t.is_quantized:
            t = t.dequantize()
        if t.layout != torch.strided:
            t = t.to_dense()
        if t.dtype == torch.bfloat16 or "float8" in str(t.dtype):  # no NumPy dtype; exact in float32
            t = t.float()
        try:
            return t.numpy(force=True)
        except (TypeError, RuntimeError):  # a dtype NumPy lacks
            return t.to(torch.complex128 if t.is_complex() else torch.float64).numpy(force=True)

    def _module(self, torch: Any, a: Any, b: Any, p: _Path) -> Children:
        """nn.Module: the same class and state_dict; every submodule's class, training flag,
        parameter flags, non-persistent buffers and other (configuration) attributes."""
        if not isinstance(b, torch.nn.Module):
            _fail(p, f"type {_tname(type(a))} != {_tname(type(b))}")
        subs_a, subs_b = list(a.named_modules()), list(b.named_modules())
        names_a, names_b = [n for n, _ in subs_a], [n for n, _ in subs_b]
        if names_a != names_b:
            _fail(p, f"submodules differ: {_names(names_a)} != {_names(names_b)}")
        yield a.state_dict(), b.state_dict(), p.attr("state_dict()")
        tensors = ("_parameters", "_buffers", "_modules")
        for (name, ma), (_, mb) in zip(subs_a, subs_b):
            q = p
            for part in name.split(".") if name else ():
                q = _Path(q, f"[{part}]") if part.isdigit() else q.attr(part)
            if type(ma) is not type(mb):
                _fail(q, f"type {_tname(type(ma))} != {_tname(type(mb))}")
            for pname, pa in ma._parameters.items():
                pb = mb._parameters.get(pname)
                if pa is None or pb is None:
                    if (pa is None) != (pb is None):
                        _fail(q.attr(pname), f"{_short(pa, 40)} != {_short(pb, 40)}")
                    continue
                if type(pa) is not type(pb):
                    _fail(q.attr(pname), f"type {_tname(type(pa))} != {_tname(type(pb))}")
                if pa.requires_grad != pb.requires_grad:
                    _fail(q.attr(pname), f"requires_grad {pa.requires_grad} != {pb.requires_grad}")
            for bname in sorted(getattr(ma, "_non_persistent_buffers_set", ())):
                yield ma._buffers.get(bname), mb._buffers.get(bname), q.attr(bname)
            sa = {k: v for k, v in _plain_state(ma).items() if k not in tensors}
            sb = {k: v for k, v in _plain_state(mb).items() if k not in tensors}
            yield from self._attrs(sa, sb, q)


# ------------------------------------------------------------------------ public API


def assert_equal(
    actual: Any,
    expected: Any,
    *,
    path: str = "root",
    rtol: float = 0.0,
    atol: float = 0.0,
    check_type: bool = True,
) -> None:
    """Assert that ``actual`` deeply equals ``expected``; else raise ``AssertionError``
    naming where they differ, e.g. ``root['model'].steps[0][1].coef_[3, 2]: 0.5 != 0.25``
    (the actual value first).

    Understands:

    * NumPy arrays: dtype, shape and values (NaN equal to NaN, NaT to NaT, in the same
      places), element by element for object arrays, field by field for structured ones;
      masked arrays by mask, unmasked values and fill value. A mismatch names the first
      differing index and how many elements differ. NumPy scalars, dtypes and random
      generators (by state).
    * pandas ``DataFrame``/``Series``/``Index``/extension arrays through ``pandas.testing``
      (exact unless ``rtol``/``atol`` are given), and pandas scalars.
    * SciPy sparse matrices and arrays: format, shape, dtype and values.
    * PyTorch tensors (dtype, shape, device, ``requires_grad``, layout, values; NaNs
      equal) and ``nn.Module`` (same class, equal ``state_dict()``, and each submodule's
      class, training flag, parameter flags and other attributes).
    * scikit-learn estimators: same class, equal ``get_params(deep=False)`` and every
      attribute in ``vars(est)`` (fitted ones included), compared deeply.
    * Python values: ``float`` NaN equals NaN, ``-0.0`` differs from ``0.0`` when
      ``check_type`` (and no tolerance); dicts need the same keys in the same order; lists,
      tuples (named tuples by field), deques, sets, frozensets, dataclasses; any other
      object by its type and its ``__dict__``/``__slots__``, its ``__getstate__()`` or
      its ``__reduce_ex__`` parts; classes and functions by identity or qualified name.

    Cycles and shared references are followed once (pairs of objects already compared
    are not compared again).

    Args:
        path: the name of the root in messages.
        rtol, atol: tolerance for floating-point values (``|a - b| <= atol + rtol * |b|``,
            ``b`` the expected value); exact by default. Integers are always exact.
        check_type: require identical types (``int`` is not ``float``, ``list`` is not
            ``tuple``), dtypes, sparse formats and pandas index classes. ``False``
            compares values only.
    """
    for name, tol in (("rtol", rtol), ("atol", atol)):
        if not (isinstance(tol, (int, float)) and math.isfinite(tol) and tol >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, not {tol!r}")
    _Comparer(float(rtol), float(atol), bool(check_type)).run(actual, expected, _Path(None, path))


def _suffix(fmt: str) -> str:
    for suffix, name in _api.FORMATS_BY_SUFFIX.items():
        if name == fmt:
            return suffix
    return "." + fmt


def assert_roundtrip(
    obj: Any,
    format: str = "amber",
    *,
    trusted: Iterable[str] | None = None,
    compress: Any = None,
    tmp_path: str | os.PathLike[str] | None = None,
    **load_kwargs: Any,
) -> Any:
    """Save ``obj`` to a file, load it back, assert the copy equals ``obj``; return the copy.

    The file (named with the format's suffix, e.g. ``.amber``) goes into ``tmp_path`` if
    given (and stays there), else into a temporary directory removed afterwards (a
    memory-mapped copy stays valid on POSIX systems; on Windows pass ``tmp_path`` with
    ``mmap=True``). ``load_kwargs`` go to ``amber.load`` (``mmap=True``, ``map_location=``,
    ``verify=``, ``with_metadata=``...). For the native format, ``amber.dumps`` and
    ``amber.loads`` (with the ``load_kwargs`` it takes) are checked as well. Errors from
    amber propagate unchanged; a difference raises ``AssertionError`` naming its path,
    e.g. ``after amber.dump and amber.load: root['model'].coef_[0, 2]: 0.5 != 0.25``.
    """
    if trusted is not None and not isinstance(trusted, str):
        trusted = list(trusted)  # used twice
    with contextlib.ExitStack() as stack:
        if tmp_path is None:
            tmp_path = stack.enter_context(tempfile.TemporaryDirectory(prefix="amber-", ignore_cleanup_errors=True))
        fd, target = tempfile.mkstemp(suffix=_suffix(format), prefix="roundtrip-", dir=os.fspath(tmp_path))
        os.close(fd)
        _api.dump(obj, target, format=format, compress=compress)
        result = _api.load(target, format=format, trusted=trusted, **load_kwargs)
    try:
        assert_equal(result[0] if load_kwargs.get("with_metadata") else result, obj)
    except AssertionError as exc:
        raise AssertionError(f"after amber.dump and amber.load: {exc}") from None
    if format == "amber":
        accepted = _inspect.signature(_api.loads).parameters
        kwargs = {k: v for k, v in load_kwargs.items() if k in accepted}
        again = _api.loads(_api.dumps(obj, compress=compress), trusted=trusted, **kwargs)
        try:
            assert_equal(again[0] if kwargs.get("with_metadata") else again, obj)
        except AssertionError as exc:
            raise AssertionError(f"after amber.dumps and amber.loads: {exc}") from None
    return result


def assert_same_predictions(
    model_a: Any,
    model_b: Any,
    X: Any,
    *,
    methods: Sequence[str] = ("predict", "predict_proba", "decision_function", "transform", "score_samples"),
    rtol: float = 0.0,
    atol: float = 0.0,
) -> list[str]:
    """Assert that two models give the same outputs on ``X``; return the methods compared.

    Each of ``methods`` that ``model_a`` has, and that does not raise ``AttributeError``
    or ``NotImplementedError`` when called on ``X`` (scikit-learn's ``available_if``
    raises ``AttributeError``), is called on both models, and the outputs compared with
    :func:`assert_equal` (path ``predict(X)`` etc.; ``model_a``'s value first). A PyTorch
    ``nn.Module`` without ``predict`` is called on ``X`` instead, both in eval mode under
    ``torch.no_grad()`` (their training flags are restored afterwards): ``["forward"]``.
    Raises ``AssertionError`` when no method could be compared.
    """
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(model_a, torch.nn.Module) and not hasattr(model_a, "predict"):
        if not isinstance(model_b, torch.nn.Module):
            raise AssertionError(f"model_a is a torch module, model_b a {_tname(type(model_b))}")
        outputs = []
        for model in (model_a, model_b):
            modes = [(m, m.training) for m in model.modules()]
            try:
                model.eval()
                with torch.no_grad():
                    outputs.append(model(X))
            finally:
                for m, mode in modes:
                    m.training = mode
        assert_equal(outputs[0], outputs[1], path="forward(X)", rtol=rtol, atol=atol)
        return ["forward"]

    compared: list[str] = []
    for name in methods:
        if not hasattr(model_a, name):
            continue
        try:
            out_a = getattr(model_a, name)(X)
        except (AttributeError, NotImplementedError):
            continue
        where = f"{name}(X)"
        if not hasattr(model_b, name):
            raise AssertionError(f"{where}: model_b has no method {name!r}, model_a has")
        try:
            out_b = getattr(model_b, name)(X)
        except (AttributeError, NotImplementedError) as exc:
            raise AssertionError(f"{where}: model_b raised {type(exc).__name__}: {exc}, model_a did not") from exc
        assert_equal(out_a, out_b, path=where, rtol=rtol, atol=atol)
        compared.append(name)
    if not compared:
        raise AssertionError(
            f"none of {', '.join(methods)} could be called on model_a ({_tname(type(model_a))}): nothing compared"
        )
    return compared
