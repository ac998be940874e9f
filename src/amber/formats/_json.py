"""Tagged JSON and JSONL: the node tree of :mod:`amber.formats._native` written as JSON.

The encoder is the native :class:`~amber.formats._native.Encoder` (handlers, numbering of
shared objects, ``needs`` and ``types`` work unchanged) with a JSON walk on top:

* *JSON context* (the top of the tree and the plain structure reached from it): ``None``,
  bools, strings, 64-bit ints and finite floats are themselves; a list is an array; a dict
  whose keys are all strings and whose first key does not start with ``$`` is an object.
  Everything else is a *tag*: a JSON object whose first key starts with ``$``
  (``{"$tuple": [...]}``, ``{"$bytes": "..."}``, ``{"$set": [1, 2]}``).
* Dates and times, durations, Decimals, UUIDs and Fractions are readable tags
  (``{"$date": "2024-02-29"}``, :mod:`amber.formats._json_readable`), in both contexts.
* An object with a handler is reduced by it exactly as the native format does (its children
  are native nodes), and the native node ``[tag, *payload]`` is written through one generic
  mapping as ``{"$<tag>": [payload...]}``. Small numeric arrays become nested lists
  (``$ndarray``); other binary buffers are inline base64 (``$blob``).

Rule for readers: **a JSON object whose first key starts with ``$`` is a tag; anything else
is data.** docs/json.md is the full specification.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import json as _stdjson
import os
import re
import struct
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO

import numpy as np
import orjson

from amber._node import tag
from amber._version import __version__
from amber._compiled import compiled
from amber.errors import (
    AmberError,
    CorruptFileError,
    DecodeError,
    EncodeError,
    FormatError,
    SchemaError,
    VersionError,
)
from amber.formats import _json_readable as _readable
from amber.formats._native import (
    _INT_MAX,
    _INT_MIN,
    MAX_DEPTH,
    TAG_REF,
    Decoder,
    Encoder,
    _add_part,
    _deep_recursion,
    _environment,
    _finish_path,
    _json_safe,
    check_trust,
    check_versions,
    cycle_error,
)
from amber.handlers import REGISTRY, Handler
from amber.handlers._base import DecodeContext, EncodeContext
from amber.handlers._numpy import INLINE_MAX, _count
from amber.handlers._object import _need as _need_name
from amber.handlers._object import global_name

__all__ = [
    "FORMAT",
    "VERSION",
    "JsonObjectHandler",
    "describe_json",
    "dump_json",
    "dump_jsonl",
    "dumps_json",
    "load_json",
    "load_jsonl",
    "looks_like_json",
]

#: The ``format`` field of the ``$amber`` header, and the newest version this amber reads.
FORMAT = "amber-json"
VERSION = 1
#: Deepest JSON nesting read (a structure ``MAX_DEPTH`` levels deep can take up to a few
#: JSON levels per level: ``{"$dict": [[key, value]]}``).
MAX_JSON_DEPTH = 4 * MAX_DEPTH + 64
#: Tag names the JSON format itself uses; no handler may be named like them.
RESERVED = frozenset({"amber", "array", "blob", "bytes", "dict", "float", "ndarray", "ref", "str", "tuple", "tuples", "seg"}
                     | _readable.NAMES)
#: What a native tag must look like to be written as a ``$name`` key (handler ids do).
_TAG_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*(@[1-9][0-9]{0,4})?")
#: Tags whose value is one plain scalar (a tuple holding only these and JSON scalars is
#: plain: not numbered).
_SCALAR_TAGS = frozenset({"$bytes", "$float", "$str"})
TAG_NDARRAY = tag("numpy.ndarray")

_CANON_NAN = 0x7FF8000000000000
_PENDING = object()
_OPT_NL = orjson.OPT_APPEND_NEWLINE
#: Nesting at which a deep document is serialised piecewise (orjson stops at 254 levels).
_FRAGMENT_DEPTH = 128
#: Lists and dicts of at least this many items holding plain tuples are written in the
#: ``$tuples`` form (one list of where the tuples are) rather than one tag per tuple.
_TUPLES_FORM = 64
#: Types whose values JSON holds as they are (ints beyond 64 bits and lone surrogates are
#: refused by orjson, and then the strict walk, which checks them, runs).
_PLAIN_ANY = frozenset({str, int, bool, type(None)})
_PLAIN_STRICT = frozenset({bool, type(None)})

#: What the nested lists of a ``$ndarray`` may hold, by dtype kind.
_LIST_VALUE_TYPES = {"b": frozenset({bool}), "i": frozenset({int}), "u": frozenset({int}), "f": frozenset({int, float})}
#: dtype.str -> how ``$ndarray`` names it; the little-endian forms by name.
_LIST_DTYPES: dict[str, str] = {}
#: ``$ndarray`` dtype text -> dtype
_LIST_DTYPES_IN: dict[str, np.dtype] = {}
for _name in ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
              "float16", "float32", "float64"):
    _le = np.dtype(_name).newbyteorder("<")
    _be = np.dtype(_name).newbyteorder(">")
    _LIST_DTYPES[_le.str] = _name
    _LIST_DTYPES_IN[_name] = _le
    _LIST_DTYPES_IN[_le.str] = _le
    if _be.str != _le.str:
        _LIST_DTYPES[_be.str] = _be.str
        _LIST_DTYPES_IN[_be.str] = _be
del _name, _le, _be


# ----------------------------------------------------------------------------- scalars


def _b64(data: Any) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any, what: str) -> bytes:
    if type(text) is not str:
        raise CorruptFileError(f"{what} must hold a base64 string, not {type(text).__name__}")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CorruptFileError(f"{what} holds malformed base64 ({exc}): the file is damaged") from None


def _float_text(x: float) -> str:
    if x == float("inf"):
        return "inf"
    if x == float("-inf"):
        return "-inf"
    bits = struct.unpack("<Q", struct.pack("<d", x))[0]
    return "nan" if bits == _CANON_NAN else f"0x{bits:016x}"


_NAN_BITS = re.compile(r"0x[0-9a-f]{16}")


def _float_from(text: Any) -> float:
    if text == "nan":
        return struct.unpack("<d", struct.pack("<Q", _CANON_NAN))[0]
    if text == "inf":
        return float("inf")
    if text == "-inf":
        return float("-inf")
    if type(text) is str and _NAN_BITS.fullmatch(text):
        x = struct.unpack("<d", struct.pack("<Q", int(text, 16)))[0]
        if x != x:
            return x
    raise CorruptFileError(
        f'malformed {{"$float": {text!r:.40}}}: expected "nan", "inf", "-inf" or the 16 hex digits of a NaN ("0x7ff8...")'
    )


def _bad_str(s: str) -> bool:
    """Does ``s`` hold a lone surrogate (no UTF-8 form)?"""
    if s.isascii():
        return False
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _str_from(text: Any) -> str:
    raw = _unb64(text, '{"$str": ...}')
    try:
        return raw.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError as exc:
        raise CorruptFileError(f'{{"$str": ...}} does not hold WTF-8 text: {exc}') from None


# ----------------------------------------------------------------------------- encoding


_INF = float("inf")


def _plain_scan_py(
    it: Iterator[tuple[Any, Any]],
    tuples: list[Any],
    str: type = str,
    int: type = int,
    float: type = float,
    tuple: type = tuple,
    bool: type = bool,
    type: type = type,
    lo: float = -_INF,
    hi: float = _INF,
) -> tuple[Any, Any] | None:
    """Consume the (key, value) pairs of ``it`` while each value is plain: a str, an int,
    a bool, None, a finite float, or a tuple of those (whose key is appended to
    ``tuples``). Returns the first pair that is not plain, or None at the end.

    The hot loop of a big container (measured on 300,000 values: the walk took as long as
    orjson writing the whole dict): identity tests on locals, finiteness by comparison (no
    float is allocated), nothing stored for a plain value. Ints beyond 64 bits and lone
    surrogates pass here and are refused by orjson (then the strict walk runs)."""
    add = tuples.append
    for k, v in it:
        t = type(v)
        if t is str or t is int:
            continue
        if t is float:
            if lo < v < hi:
                continue
            return k, v
        if t is tuple:
            for x in v:
                t = type(x)
                if t is str or t is int:
                    continue
                if t is float:
                    if lo < x < hi:
                        continue
                    return k, v
                if t is bool or x is None:
                    continue
                return k, v
            add(k)
            continue
        if t is bool or v is None:
            continue
        return k, v
    return None


#: the C twin of :func:`_plain_scan_py` (``amber._speedups``), else the Python one
_plain_scan: Callable[[Iterator[tuple[Any, Any]], list[Any]], tuple[Any, Any] | None] = (
    compiled("plain_scan") or _plain_scan_py
)


def _strict_scan(it: Iterator[tuple[Any, Any]], tuples: list[Any]) -> tuple[Any, Any] | None:
    """:func:`_plain_scan` for the strict walk: a str must have a UTF-8 form and an int fit
    in 64 bits; a tuple counts as plain only when its items are bools, None or finite
    floats (any other tuple goes to :meth:`JsonEncoder.value`, which checks it exactly)."""
    ok = _PLAIN_STRICT
    add = tuples.append
    for k, v in it:
        t = type(v)
        if t in ok or (t is float and v - v == 0.0):
            continue
        if t is tuple:
            for x in v:
                tx = type(x)
                if not (tx in ok or (tx is float and x - x == 0.0)):
                    return k, v
            add(k)
            continue
        if t is str and not _bad_str(v):
            continue
        if t is int and _INT_MIN <= v <= _INT_MAX:
            continue
        return k, v
    return None


class _Unserializable(Exception):
    """orjson refused the tree (a non-str key, a lone surrogate, a too-deep tree)."""


class _Blob:
    """A binary buffer a handler stored (``ctx.add_blob``); written inline as base64."""

    __slots__ = ("data",)

    def __init__(self, data: memoryview) -> None:
        self.data = data


class _Readable:
    """A value in its readable JSON form (``{"$datetime": ...}``), standing where the native
    walk would have put its handler node."""

    __slots__ = ("value",)

    def __init__(self, value: dict[str, Any]) -> None:
        self.value = value


_READABLE_OUT = _readable.WRITERS
_native_node = Encoder._node
_READABLE_IDS = _readable.HANDLER_IDS


#: native tag bytes -> its JSON key ("$name")
_TAG_KEYS: dict[bytes, str] = {}


def _tag_key(raw: bytes) -> str | None:
    """The JSON key ``"$name"`` for a native tag, or None when the bytes are no tag name
    (then the array is written as ``{"$array": [...]}``)."""
    key = _TAG_KEYS.get(raw)
    if key is None:
        try:
            name = raw.decode("ascii")
        except UnicodeDecodeError:
            return None
        if not _TAG_NAME.fullmatch(name) or (name in RESERVED and name != "tuple"):
            return None  # (a native tuple node means what $tuple means)
        key = "$" + name
        if len(_TAG_KEYS) < 4096:
            _TAG_KEYS[raw] = key
    return key


def _json_methods(t: type) -> bool:
    return callable(getattr(t, "to_json", None)) and callable(getattr(t, "from_json", None))


class JsonObjectHandler(Handler):
    """Classes with a ``to_json(self)`` method and a ``from_json`` classmethod:
    ``[json.object, "mod.Class", node of to_json()]``. The class is imported on load only
    when trusted, like any other name a file needs."""

    handler_id = "json.object"
    types = ()

    def encode(self, obj: Any, ctx: EncodeContext) -> list[Any]:
        name = global_name(type(obj), "class")
        _need_name(ctx, name, "its class", obj)
        return [self.tag, name, ctx.encode(obj.to_json(), ".to_json()")]

    def decode(self, node: Any, ctx: DecodeContext) -> Any:
        if len(node) != 3 or type(node[1]) is not str:
            raise CorruptFileError("malformed json.object node")
        return _from_json(ctx.resolve(node[1]), node[1], lambda: ctx.decode(node[2]))


def _from_json(cls: Any, name: str, data: Any) -> Any:
    rebuild = getattr(cls, "from_json", None) if isinstance(cls, type) else None
    if not callable(rebuild):
        raise CorruptFileError(f"{name} has no from_json classmethod to rebuild it with")
    return rebuild(data())


JSON_OBJECT = REGISTRY.register(JsonObjectHandler)


class JsonEncoder(Encoder):
    """The native encoder with a JSON walk on top (see the module docstring).

    ``strict``: check every dict key and string exactly (keys other than the first are
    otherwise left to orjson, which refuses a non-str key; a failed fast attempt is redone
    strictly).
    """

    def __init__(self, deterministic: bool = True, array_lists: int | None = 1000, strict: bool = False) -> None:
        super().__init__(None, deterministic)
        self.array_lists = array_lists
        self.strict = strict
        #: a tag was written (so the document needs its ``$amber`` header)
        self.tagged = False

    def reset(self) -> None:
        """Forget the last walk (for one encoder per JSONL stream)."""
        self.memo.clear()
        self.keep.clear()
        self.building.clear()
        self.scratch.clear()
        self.count = self.refs = self.depth = 0
        self.needs = set()
        self.types = set()
        self.packages = set()
        self.tagged = False

    # -- the native side ----------------------------------------------------------------
    def add_blob(self, data: memoryview, filt: Any = None) -> Any:
        return _Blob(memoryview(data))

    def _leave(self, node: Any) -> Any:
        self.depth -= 1  # no msgpack segments in JSON
        return node

    def _node(self, obj: Any, t: type) -> Any:
        """The native walk (inside handler payloads): the value types with a readable form
        are that form (not numbered), everything else a native node."""
        w = _READABLE_OUT.get(t)
        if w is not None:
            r = w(obj)
            if r is not None:
                self.tagged = True
                self.types.add(_READABLE_IDS[t])
                return _Readable(r)
        return _native_node(self, obj, t)

    def _handled(self, obj: Any, t: type, i: int, h: Handler | None = None) -> Any:
        if h is None and t is not int:
            h = self.registry.for_type(t)
            if h is None and _json_methods(t):
                h = JSON_OBJECT
        return super()._handled(obj, t, i, h)

    # -- the JSON context ---------------------------------------------------------------
    def value(self, v: Any, at: Any = None) -> Any:
        """``v`` as a JSON-ready value (JSON context)."""
        t = type(v)
        if t is str:
            return self._str_tag(v) if self.strict and _bad_str(v) else v
        if t is bool or v is None:
            return v
        if t is int and _INT_MIN <= v <= _INT_MAX:
            return v
        if t is float:
            return v if v - v == 0.0 else self._float_tag(v)
        if t is bytes:
            return self._bytes_tag(v)
        try:
            if t is tuple:
                return self._jtuple(v)
            if t is not list and t is not dict:
                w = _READABLE_OUT.get(t)
                if w is not None:
                    r = w(v)
                    if r is not None:
                        self.tagged = True
                        self.types.add(_READABLE_IDS[t])
                        return r
            return self._jnode(v, t)
        except AmberError as exc:
            if at is not None:
                _add_part(exc, at)
            raise

    def _float_tag(self, v: float) -> dict[str, Any]:
        self.tagged = True
        return {"$float": _float_text(v)}

    def _bytes_tag(self, v: bytes) -> dict[str, Any]:
        self.tagged = True
        return {"$bytes": _b64(v)}

    def _str_tag(self, v: str) -> dict[str, Any]:
        self.tagged = True
        return {"$str": _b64(v.encode("utf-8", "surrogatepass"))}

    def _scalars(self, items: Any) -> Any:
        """Items known to be plain scalars, with the ones JSON cannot hold tagged."""
        out = None
        strict = self.strict
        for j, v in enumerate(items):
            t = type(v)
            if t is float:
                if v - v == 0.0:
                    continue
                ev = self._float_tag(v)
            elif t is bytes:
                ev = self._bytes_tag(v)
            elif t is str and strict and _bad_str(v):
                ev = self._str_tag(v)
            else:
                continue
            if out is None:
                out = list(items)
            out[j] = ev
        return items if out is None else out

    def _jtuple(self, obj: tuple[Any, ...]) -> Any:
        """A tuple of plain scalars is ``{"$tuple": [...]}``, not numbered (as in the native
        format); any other tuple is a numbered ``$tuple``."""
        for v in obj:
            t = type(v)
            if t is str or t is float or t is bool or v is None or t is bytes:
                continue
            if t is int and _INT_MIN <= v <= _INT_MAX:
                continue
            return self._jnode(obj, tuple)
        self.tagged = True
        return {"$tuple": self._scalars(obj)}

    def _jitems(self, items: Any, tuples_form: bool = True) -> Any:
        """The items as JSON-ready values: ``items`` itself when all are plain. Plain
        tuples among them are ``{"$tuple": [...]}``, or, in a long list (``tuples_form``),
        the whole list is ``{"$tuples": [list, [their indices]]}`` (see :meth:`_jdict`)."""
        return self._values(items, enumerate(items), list, tuples_form)

    def _values(self, obj: Any, pairs: Iterator[tuple[Any, Any]], copy: Any, tuples_form: bool) -> Any:
        """``obj`` (a list or dict, ``pairs`` its (index or key, value) pairs) with its values
        JSON-ready: plain runs are skipped by one tight scan, each value that stops it is
        turned by :meth:`value` into a copy ``copy(obj)``, and the scan resumes."""
        scan = _strict_scan if self.strict else _plain_scan
        tuples: list[Any] = []
        out = None
        while (stop := scan(pairs, tuples)) is not None:
            k, v = stop
            ev = self.value(v, k)
            if out is None:
                out = copy(obj)
            out[k] = ev
        return self._with_tuples(obj, out, tuples, tuples_form, copy)

    def _with_tuples(self, obj: Any, out: Any, where: list[Any], tuples_form: bool, copy: Any) -> Any:
        """``obj`` (or its changed copy ``out``) with the plain tuples at ``where``: one
        ``$tuples`` around a big container, else a ``$tuple`` tag each."""
        if where:
            self.tagged = True
            if tuples_form and len(obj) >= _TUPLES_FORM:
                return {"$tuples": [obj if out is None else out, where]}
            if out is None:
                out = copy(obj)
            for j in where:
                out[j] = {"$tuple": out[j]}
        return obj if out is None else out

    def _jnode(self, obj: Any, t: type) -> Any:
        """A numbered object: list, dict, non-plain tuple or handled type (or ``$ref``)."""
        i = id(obj)
        m = self.memo.get(i)
        if m is not None:
            if i in self.building:
                raise cycle_error(t)
            self.refs += 1
            self.tagged = True
            return {"$ref": m}
        self.memo[i] = self.count
        self.count += 1
        self.keep.append(obj)
        self._enter()
        try:
            if t is list:
                return self._jitems(obj)
            if t is dict:
                return self._jdict(obj)
            if t is tuple:
                self.building.add(i)
                try:
                    items = self._jitems(obj, False)
                finally:
                    self.building.discard(i)
                self.types.add("tuple")
                self.tagged = True
                return {"$tuple": items}
            return self._jhandled(obj, t, i)
        finally:
            self.depth -= 1

    def _jdict(self, obj: dict[Any, Any]) -> Any:
        """A dict of str keys (the first without ``$``) as a JSON object; plain tuples
        among its values are ``{"$tuple": [...]}``, or in a big dict the object is written
        as it is inside ``{"$tuples": [object, [keys of the tuple values]]}`` (measured:
        building one wrapper per tuple costs several times what orjson takes to write the
        whole dict). Keys after the first are left to orjson, which refuses a non-str key
        (then the strict walk checks every key)."""
        if not obj:
            return obj
        for first in obj:
            break
        if type(first) is not str or first[:1] == "$" or (self.strict and not self._plain_keys(obj)):
            return self._jpairs(obj)
        return self._values(obj, iter(obj.items()), dict, True)

    @staticmethod
    def _plain_keys(obj: dict[Any, Any]) -> bool:
        for k in obj:
            if type(k) is not str or _bad_str(k):
                return False
        return True

    def _jpairs(self, obj: dict[Any, Any]) -> dict[str, Any]:
        """``{"$dict": [[key, value], ...]}``: keys of any type, or a first key with ``$``."""
        self.tagged = True
        value = self.value
        pairs = []
        for k, v in obj.items():
            pairs.append([value(k, f"<key {k!r:.40}>"), value(v, k)])
        return {"$dict": pairs}

    def _jhandled(self, obj: Any, t: type, i: int) -> Any:
        self.tagged = True
        h = self.registry.for_type(t) if t is not int else None
        if h is None and t is not int and _json_methods(t):
            # to_json()/from_json(): the value stays readable JSON (JSON context)
            name = global_name(t, "class")
            _need_name(self, name, "its class", obj)
            self.types.add(JSON_OBJECT.handler_id)
            self.building.add(i)
            try:
                data = self.value(obj.to_json(), ".to_json()")
            finally:
                self.building.discard(i)
            return {"$json.object": [name, data]}
        if h is None:
            return self.conv(self._handled(obj, t, i))
        # the native Encoder._handled, inline (the hot path of typed JSONL records)
        self.types.add(h.handler_id)
        if h.binds:
            node = h.encode(obj, self)
            if node[0] is not h.tag:
                self.types.add(node[0].decode("utf-8", "replace").partition("@")[0])
        else:
            self.building.add(i)
            try:
                node = h.encode(obj, self)
            finally:
                self.building.discard(i)
        if type(node) is list and node and type(node[0]) is bytes:
            return self._conv_tagged(node)
        return self.conv(node)

    # -- native node -> JSON ------------------------------------------------------------
    def conv(self, x: Any) -> Any:
        """A native node (or payload value) as JSON: tagged node -> ``{"$tag": [...]}``,
        other arrays -> arrays, maps -> objects, bytes -> ``$bytes``, blobs -> ``$blob``."""
        t = type(x)
        if t is str:
            return self._str_tag(x) if self.strict and _bad_str(x) else x
        if t is int or t is bool or x is None:
            return x
        if t is float:
            return x if x - x == 0.0 else self._float_tag(x)
        if t is bytes:
            return self._bytes_tag(x)
        if t is list or t is tuple:
            if x and type(x[0]) is bytes:
                return self._conv_tagged(x)
            conv = self.conv
            return [conv(v) for v in x]
        if t is dict:
            conv = self.conv
            if x:
                for first in x:
                    break
                if type(first) is not str or first[:1] == "$" or not all(
                    type(k) is str and not (self.strict and _bad_str(k)) for k in x
                ):
                    return {"$dict": [[conv(k), conv(v)] for k, v in x.items()]}
            return {k: conv(v) for k, v in x.items()}
        if t is _Blob:
            return {"$blob": _b64(x.data)}
        if t is _Readable:
            return x.value
        raise EncodeError(f"a handler put a {t.__name__} into its node, which JSON cannot hold")

    def _conv_tagged(self, x: Any) -> Any:
        """An array whose first item is bytes (a tagged node, or a plain array that looks
        like one: both are the same msgpack value) as ``{"$name": [rest]}``, exactly."""
        raw = x[0]
        if raw == TAG_REF and len(x) == 2 and type(x[1]) is int:
            return {"$ref": x[1]}
        if raw == TAG_NDARRAY:
            lists = self._ndarray_lists(x)
            if lists is not None:
                return lists
        conv = self.conv
        ok = _PLAIN_ANY if not self.strict else _PLAIN_STRICT
        key = _tag_key(raw)
        if key is None:
            return {"$array": [conv(v) for v in x]}
        return {key: [v if type(v) in ok else conv(v) for v in x[1:]]}

    def _ndarray_lists(self, x: Any) -> Any:
        """A small numeric array as ``{"$ndarray": {"dtype", "shape", "data": nested lists}}``,
        or None when it stays a blob."""
        lim = self.array_lists
        if lim == 0 or len(x) != 2 or type(x[1]) is not dict:
            return None
        meta = x[1]
        dts = meta.get("dtype")
        name = _LIST_DTYPES.get(dts) if type(dts) is str else None
        shape = meta.get("shape")
        if name is None or type(shape) is not list or not all(type(s) is int and s >= 0 for s in shape):
            return None
        if set(meta) not in ({"dtype", "shape", "order", "blob"}, {"dtype", "shape", "order", "data"}):
            return None
        shape = tuple(shape)
        n = 1
        for s in shape:
            n *= s
        if lim is not None and n > lim:
            return None
        blob = meta.get("blob")
        raw = blob.data if type(blob) is _Blob else meta.get("data")
        order = meta.get("order")
        if type(raw) not in (bytes, memoryview) or order not in ("C", "F") or len(raw) != n * np.dtype(dts).itemsize:
            return None
        flat = np.frombuffer(raw, dtype=np.dtype(dts))
        if flat.dtype.kind == "f" and n and not np.isfinite(flat).all():
            return None
        arr = flat.reshape(shape[::-1]).T if order == "F" else flat.reshape(shape)
        out: dict[str, Any] = {"dtype": name, "shape": list(shape), "data": arr.tolist()}
        if order == "F":
            out["order"] = "F"
        return {"$ndarray": out}


def _serialize_deep(doc: Any, option: int) -> bytes:
    """Serialise a document nested deeper than orjson goes (254 levels): every subtree
    ``_FRAGMENT_DEPTH`` levels high is serialised on its own (compact) and left in the
    tree as a placeholder string, which is then replaced by those bytes. (Not
    ``orjson.Fragment``: orjson 3.13 corrupts memory writing fragments nested in
    fragments at this depth.)"""
    nonce = os.urandom(6).hex()
    parts: list[bytes] = []

    def visit(x: Any) -> tuple[Any, int]:
        t = type(x)
        if t is dict:
            pairs = x.items()
        elif t is list or t is tuple:
            pairs = enumerate(x)
        else:
            return x, 0
        out = None
        h = 0
        for k, v in pairs:
            tv = type(v)
            if tv is dict or tv is list or tv is tuple:
                nv, hv = visit(v)
                if hv > h:
                    h = hv
                if nv is not v:
                    if out is None:
                        out = dict(x) if t is dict else list(x)
                    out[k] = nv
        new = x if out is None else out
        h += 1
        if h >= _FRAGMENT_DEPTH:
            parts.append(orjson.dumps(new))
            return f"\x00amber:{len(parts) - 1}:{nonce}\x00", 0
        return new, h

    top = orjson.dumps(visit(doc)[0], option=option)
    hole = re.compile(rb'"\\u0000amber:([0-9]+):' + nonce.encode() + rb'\\u0000"')

    def fill(raw: bytes) -> bytes:
        return hole.sub(lambda m: fill(parts[int(m.group(1))]), raw)

    return fill(top)


def _serialize(doc: Any, option: int) -> bytes:
    try:
        return orjson.dumps(doc, option=option)
    except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
        if "Recursion limit" not in str(exc):
            raise _Unserializable(str(exc)) from None
    try:
        with _deep_recursion():
            return _serialize_deep(doc, option)
    except TypeError as exc:
        raise _Unserializable(str(exc)) from None


def _check_array_lists(array_lists: Any) -> None:
    if array_lists is not None and (type(array_lists) is not int or array_lists < 0):
        raise ValueError(f"array_lists must be an int >= 0 or None, not {array_lists!r}")


def _header(enc: JsonEncoder, metadata: Any, deterministic: bool) -> dict[str, Any]:
    head: dict[str, Any] = {"format": FORMAT, "version": VERSION, "amber": __version__}
    if not deterministic:
        head["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    head["env"] = _environment(enc.packages)
    head["types"] = sorted(enc.types)
    head["needs"] = sorted(enc.needs)
    head["metadata"] = metadata
    return head


def _metadata_json(metadata: Any, strict: bool) -> Any:
    """Metadata as JSON: plain JSON stays as it is; NaN, a ``$`` first key or a lone
    surrogate are tagged like data (and read back the same way)."""
    if metadata is None:
        return None
    _json_safe(metadata, "metadata")
    enc = JsonEncoder(strict=strict)
    try:
        with _deep_recursion():
            return enc.value(metadata)
    except AmberError as exc:
        _finish_path(exc)
        raise


def dumps_json(
    obj: Any,
    *,
    compact: bool = False,
    metadata: Any = None,
    array_lists: int | None = 1000,
    deterministic: bool = True,
) -> bytes:
    """``obj`` as tagged JSON (UTF-8 bytes ending in a newline); see :func:`dump_json`."""
    _check_array_lists(array_lists)
    option = _OPT_NL if compact else _OPT_NL | orjson.OPT_INDENT_2
    failure = ""
    for strict in (False, True):
        enc = JsonEncoder(deterministic, array_lists, strict)
        try:
            with _deep_recursion():
                tree = enc.value(obj)
            doc = tree
            if enc.tagged or metadata is not None:
                doc = {"$amber": _header(enc, _metadata_json(metadata, strict), deterministic), "data": tree}
            return _serialize(doc, option)
        except _Unserializable as exc:
            failure = str(exc)
        except AmberError as exc:
            _finish_path(exc)
            raise
    raise EncodeError(f"the data cannot be written as JSON: {failure}")


def dump_json(
    obj: Any,
    fh: BinaryIO,
    *,
    compact: bool = False,
    metadata: Any = None,
    array_lists: int | None = 1000,
    deterministic: bool = True,
) -> None:
    """Write ``obj`` as tagged JSON to the binary file object ``fh``.

    ``compact``: no indentation. ``metadata``: any JSON-like value, stored in the header.
    ``array_lists``: numeric arrays of at most this many elements are written as nested
    lists, larger ones (and other dtypes) as base64 (0: never lists, None: always).
    ``deterministic``: no timestamp (the same object always gives the same bytes).
    """
    fh.write(dumps_json(obj, compact=compact, metadata=metadata, array_lists=array_lists,
                        deterministic=deterministic))


# ----------------------------------------------------------------------------- parsing


_WS = " \t\n\r"
_TOKEN = re.compile(
    r"[ \t\n\r]*(?:([\[\]{},:\"])|(-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)|(true|false|null))"
)
_LITERALS = {"true": True, "false": False, "null": None}


def _where(text: str, pos: int) -> str:
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return f"line {line} column {col} (char {pos})"


def _parse_deep(text: str, name: str) -> Any:
    """A JSON parser without recursion (for what orjson refuses: documents nested deeper
    than 1024 levels, and escaped lone surrogates). Nesting is bounded by MAX_JSON_DEPTH."""
    from json.decoder import scanstring

    def bad(pos: int, what: str) -> CorruptFileError:
        return CorruptFileError(f"{name}: not valid JSON at {_where(text, pos)}: {what}")

    stack: list[Any] = []  # containers being filled
    keys: list[Any] = []  # per open object: the key whose value comes next
    pos, n = 0, len(text)
    # states: 0 a value, 1 a value or "]", 2 a key or "}", 3 a key, 4 ":", 5 "," or a close
    state = 0
    root: Any = _PENDING
    match = _TOKEN.match
    while True:
        m = match(text, pos)
        if m is None:
            while pos < n and text[pos] in _WS:
                pos += 1
            if pos == n and root is not _PENDING:
                return root
            raise bad(pos, "unexpected end of data" if pos == n else f"unexpected character {text[pos]!r}")
        start = m.start(m.lastindex)
        pos = m.end()
        punct, number, literal = m.group(1), m.group(2), m.group(3)
        if root is not _PENDING:
            raise bad(start, "extra data after the JSON value")
        value: Any = _PENDING
        if state in (0, 1):
            if punct == "]" and state == 1:
                value = stack.pop()
            elif punct == "[" or punct == "{":
                if len(stack) >= MAX_JSON_DEPTH:
                    raise CorruptFileError(f"{name}: JSON nested more than {MAX_JSON_DEPTH} levels deep")
                if punct == "[":
                    stack.append([])
                    state = 1
                else:
                    stack.append({})
                    keys.append(None)
                    state = 2
                continue
            elif punct == '"':
                try:
                    value, pos = scanstring(text, pos, True)
                except ValueError as exc:
                    raise bad(start, str(exc)) from None
            elif number is not None:
                if "." in number or "e" in number or "E" in number:
                    value = float(number)
                    if value - value != 0.0:
                        raise bad(start, f"number {number[:40]} is out of range")
                else:
                    try:
                        value = int(number)
                    except ValueError as exc:
                        raise bad(start, str(exc)) from None
            elif literal is not None:
                value = _LITERALS[literal]
            else:
                raise bad(start, f"expected a value, found {punct!r}")
        elif state in (2, 3):
            if punct == "}" and state == 2:
                keys.pop()
                value = stack.pop()
            elif punct == '"':
                try:
                    keys[-1], pos = scanstring(text, pos, True)
                except ValueError as exc:
                    raise bad(start, str(exc)) from None
                state = 4
                continue
            else:
                raise bad(start, "expected a string key")
        elif state == 4:
            if punct != ":":
                raise bad(start, "expected ':'")
            state = 0
            continue
        else:  # state 5
            top = stack[-1]
            if punct == ",":
                state = 0 if type(top) is list else 3
                continue
            if punct == "]" and type(top) is list:
                value = stack.pop()
            elif punct == "}" and type(top) is dict:
                keys.pop()
                value = stack.pop()
            else:
                raise bad(start, "expected ',' or the end of the array or object")
        # a complete value: put it in its container
        if not stack:
            root = value
            continue
        top = stack[-1]
        if type(top) is list:
            top.append(value)
        else:
            top[keys[-1]] = value
        state = 5


_DIGIT_TABLE = bytes(1 if 48 <= i <= 57 else 0 for i in range(256))
_LONG_RUN = b"\x01" * 20


def _headed(doc: Any) -> bool:
    if type(doc) is dict and doc:
        for first in doc:
            return first == "$amber"
    return False


def _long_digits(raw: Any) -> bool:
    """Does the text hold a run of 20+ digits (maybe an integer beyond 64 bits, which
    orjson would read as a float)?"""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    elif not isinstance(raw, (bytes, bytearray)):
        raw = bytes(raw)
    return _LONG_RUN in raw.translate(_DIGIT_TABLE)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse_exact(view: Any, name: str) -> Any:
    """The stdlib parser, for plain JSON whose big integers must stay exact (orjson has
    already parsed it, so it is at most 1024 levels deep)."""
    text = view if isinstance(view, str) else bytes(view).decode("utf-8")
    try:
        with _deep_recursion():
            return _stdjson.loads(text, parse_constant=_refuse_constant)
    except ValueError as exc:  # JSONDecodeError, and integers past Python's digit limit
        raise CorruptFileError(f"{name}: not valid JSON: {exc}") from None


def parse(data: Any, name: str = "<bytes>") -> Any:
    """Parse one JSON text (bytes-like) with orjson; documents orjson refuses only for
    their depth or escaped lone surrogates go through :func:`_parse_deep`, and plain JSON
    (no ``$amber`` header: amber tags its big integers) with 20-digit numbers through the
    stdlib parser, so that integers beyond 64 bits stay exact."""
    view = data if isinstance(data, (bytes, bytearray, memoryview, str)) else memoryview(data)
    if isinstance(view, str):
        if view.startswith("\ufeff"):
            view = view[1:]
    elif view[:3] == b"\xef\xbb\xbf":
        view = memoryview(view)[3:]
    try:
        doc = orjson.loads(view)
    except orjson.JSONDecodeError as exc:
        msg = str(exc)
        if "depth limit" not in msg and "surrogate" not in msg:
            raise CorruptFileError(f"{name}: not valid JSON: {msg}") from None
    else:
        if _headed(doc) or not _long_digits(view):
            return doc
        return _parse_exact(view, name)
    if isinstance(view, str):
        text = view
    else:
        try:
            text = bytes(view).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CorruptFileError(f"{name}: not UTF-8 text: {exc}") from None
    return _parse_deep(text, name)


# ----------------------------------------------------------------------------- decoding


def _plain_items(items: list[Any]) -> bool:
    """Are all ``items`` (of a parsed JSON array) plain scalars: str, int, float, bool, None?"""
    for y in items:
        ty = type(y)
        if ty is str or ty is int or ty is float or ty is bool or y is None:
            continue
        return False
    return True


_NOT_INLINE = object()


def _inline_value(x: dict[str, Any]) -> Any:
    """The value of a JSON object that is never numbered, decoded on the spot: a plain
    tuple (``{"$tuple": [scalars]}``) or a readable value (``{"$datetime": ...}``); else
    ``_NOT_INLINE`` (the decoder's walk takes it)."""
    for key in x:
        break
    else:
        return _NOT_INLINE
    if key == "$tuple":
        p = x[key]
        if len(x) == 1 and type(p) is list and _plain_items(p):
            return tuple(p)
        return _NOT_INLINE
    if key in _READABLE_KEYS:
        return _readable.read(key, x)
    return _NOT_INLINE


class _BlobInfo:
    __slots__ = ("index", "nbytes")

    def __init__(self, index: int, nbytes: int) -> None:
        self.index = index
        self.nbytes = nbytes


class _BlobTable:
    """The inline blobs of a JSON document, standing in for a ContainerReader."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.data: list[Any] = []

    def add(self, raw: bytes) -> int:
        self.data.append(raw)
        return len(self.data) - 1

    def blob(self, index: Any) -> _BlobInfo:
        if type(index) is not int or not 0 <= index < len(self.data):
            raise CorruptFileError(f"a node refers to blob {index!r:.40}, which does not exist")
        raw = self.data[index]
        return _BlobInfo(index, -1 if raw is None else len(raw))

    def mapped(self, index: int, private: bool = False) -> None:
        return None

    def read(self, index: int, alloc: Any = None, late_check: bool = False) -> np.ndarray:
        """The blob's bytes (decoded from the document, so there is no checksum to check)."""
        raw = self.data[index]
        self.data[index] = None  # a blob backs one node: let it go
        n = len(raw)
        out = np.empty(n, dtype=np.uint8) if alloc is None or not n else alloc(n)
        out[:] = np.frombuffer(raw, dtype=np.uint8)
        return out


#: "$name" -> the native tag bytes
_TAG_BYTES: dict[str, bytes] = {}
_READABLE_KEYS = _readable.KEYS


def _tag_bytes(key: str) -> bytes:
    raw = _TAG_BYTES.get(key)
    if raw is None:
        try:
            raw = key[1:].encode("utf-8")
        except UnicodeEncodeError:
            raise CorruptFileError(f"the tag {key!r:.60} is not valid text") from None
        if len(_TAG_BYTES) < 4096:
            _TAG_BYTES[key] = raw
    return raw


def _shape(node: Any) -> tuple[int, ...]:
    if type(node) is not list or len(node) > 64 or not all(type(s) is int and s >= 0 for s in node):
        raise CorruptFileError(f'malformed "shape" {node!r:.80} in $ndarray: expected a list of sizes')
    return tuple(node)


def _empty_fits(data: Any, shape: tuple[int, ...]) -> bool:
    """Do the nested lists ``data`` have ``shape`` (which has a zero)? (Walks ``data``
    only, so a hostile shape cannot make it loop.)"""
    if type(data) is not list or not shape or len(data) != shape[0]:
        return False
    return shape[0] == 0 or all(_empty_fits(x, shape[1:]) for x in data)


class JsonDecoder(Decoder):
    """Rebuild objects from a parsed tagged-JSON tree: JSON context walked here (numbering
    objects in the order the encoder met them), handler payloads converted back to native
    nodes and rebuilt by the native decoder."""

    def __init__(
        self,
        name: str,
        trusted: Iterable[str] = (),
        needs: Iterable[str] = (),
        declared: bool = True,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.table = _BlobTable(name)
        super().__init__(self.table, trusted, needs, refs=True, options=options)  # type: ignore[arg-type]
        if ("json.object", 1) not in self.registry.by_tag:  # (a test may have reset the registry)
            self.registry.register(JSON_OBJECT)
        self.declared = declared
        self.jdepth = 0

    def reset(self, needs: Iterable[str], declared: bool) -> None:
        """Ready for the next record of a stream (numbering starts again)."""
        self.memo.clear()
        if self.used_blobs:
            self.used_blobs.clear()
            self.table.data.clear()
        if self.scratch:
            self.scratch.clear()
        if self._resolved:
            self._resolved.clear()
        self.depth = self.jdepth = self._handlers = self._segs = 0
        self._slot = -1
        self.needs = needs if type(needs) is frozenset else frozenset(needs)
        self.declared = declared

    def resolve(self, name: str) -> Any:
        if name not in self.needs:
            if not self.declared:
                raise CorruptFileError(
                    f"the data imports {name!r} but has no $amber header declaring what it imports; refusing "
                    "(amber writes a header that lists every name a file imports)"
                )
            raise CorruptFileError(f"the data imports {name!r}, which its $amber header does not declare; refusing")
        return super().resolve(name)

    # -- JSON context -------------------------------------------------------------------
    def walk(self, v: Any) -> Any:
        """The object for the JSON value ``v`` (``v``'s lists and dicts are reused)."""
        t = type(v)
        if t is dict:
            if v:
                for k in v:
                    break
                if k[:1] == "$":
                    return self._jtag(k, v)
            self.memo.append(v)
            self._dict_in_place(v)
            return v
        if t is list:
            self.memo.append(v)
            self._items_in_place(v)
            return v
        return v

    def _dict_in_place(self, v: dict[str, Any]) -> None:
        self.jdepth += 1
        if self.jdepth > MAX_JSON_DEPTH:
            raise CorruptFileError(f"the data is nested more than {MAX_JSON_DEPTH} levels deep")
        walk = self.walk
        k = None
        try:
            for k, x in v.items():
                tx = type(x)
                if tx is dict:
                    r = _inline_value(x)
                    v[k] = walk(x) if r is _NOT_INLINE else r
                elif tx is list:
                    v[k] = walk(x)
        except AmberError as exc:
            _add_part(exc, k)
            raise
        finally:
            self.jdepth -= 1

    def _items_in_place(self, v: list[Any]) -> None:
        self.jdepth += 1
        if self.jdepth > MAX_JSON_DEPTH:
            raise CorruptFileError(f"the data is nested more than {MAX_JSON_DEPTH} levels deep")
        walk = self.walk
        j = 0
        try:
            for j, x in enumerate(v):
                tx = type(x)
                if tx is dict or tx is list:
                    v[j] = walk(x)
        except AmberError as exc:
            _add_part(exc, j)
            raise
        finally:
            self.jdepth -= 1

    def _jtag(self, key: str, v: dict[str, Any]) -> Any:
        if key in _READABLE_KEYS:  # a value: not numbered
            return _readable.read(key, v)
        if len(v) != 1:
            raise CorruptFileError(
                f"the tag object {key!r:.60} has other keys too ({', '.join(repr(k) for k in list(v)[1:4])}): "
                "an object whose first key starts with '$' is a tag with that one key"
            )
        p = v[key]
        name = key[1:]
        if name == "tuple":
            return self._jtuple(p)
        if name == "tuples":
            return self._jtuples(p)
        if name == "dict":
            return self._jdict(p)
        if name == "ref":
            return self._jref(p)
        if name == "bytes":
            return _unb64(p, '{"$bytes": ...}')
        if name == "float":
            return _float_from(p)
        if name == "str":
            return _str_from(p)
        if name == "ndarray":
            return self.decode(self.native_ndarray(p))
        if name == "json.object":
            return self._jobject(p)
        if name == "array":  # a native node whose tag is no tag name
            node = self.native(v)
            if not node or type(node[0]) is not bytes:
                raise CorruptFileError('"$array" stands where a value belongs: it must start with a {"$bytes": ...} tag')
            return self.decode(node)
        if name in RESERVED or not name:
            raise CorruptFileError(f"the tag {key!r} does not belong here")
        if type(p) is not list:
            raise CorruptFileError(f"the payload of {key!r:.60} must be an array, not {type(p).__name__}")
        raw = _tag_bytes(key)
        native = self.native
        return self.decode((raw, *[native(x) if type(x) is list or type(x) is dict else x for x in p]))

    def _jtuple(self, p: Any) -> tuple[Any, ...]:
        if type(p) is not list:
            raise CorruptFileError(f'the payload of "$tuple" must be an array, not {type(p).__name__}')
        for x in p:
            tx = type(x)
            if tx is dict:
                if len(x) == 1:
                    for k in x:
                        break
                    if k in _SCALAR_TAGS:
                        continue
                break
            if tx is list:
                break
        else:  # plain: not numbered
            return tuple(self.walk(x) if type(x) is dict else x for x in p)
        slot = len(self.memo)
        self.memo.append(_PENDING)
        self._items_in_place(p)
        obj = tuple(p)
        self.memo[slot] = obj
        return obj

    def _plain_tuple(self, x: Any, where: Any) -> tuple[Any, ...]:
        if type(x) is not list:
            raise CorruptFileError(f'"$tuples" lists {where!r:.60}, which is not an array (or is listed twice)')
        for y in x:
            ty = type(y)
            if ty is dict and len(y) == 1:
                for k in y:
                    break
                if k in _SCALAR_TAGS:
                    continue
            elif ty is not list and ty is not dict:
                continue
            raise CorruptFileError(f'"$tuples" lists {where!r:.60}, whose items are not all plain values')
        return tuple([self.walk(y) if type(y) is dict else y for y in x])

    def _jtuples(self, p: Any) -> Any:
        """``{"$tuples": [object or array, [keys or indices of its plain tuples]]}``."""
        if type(p) is not list or len(p) != 2 or type(p[1]) is not list:
            raise CorruptFileError('malformed "$tuples": expected [object or array, [where its tuples are]]')
        c, where = p
        if type(c) is dict:
            if c:
                for k in c:
                    break
                if k[:1] == "$":
                    raise CorruptFileError('the object inside "$tuples" starts with a "$" key')
            self.memo.append(c)
            for k in where:
                if type(k) is not str or k not in c:
                    raise CorruptFileError(f'"$tuples" lists {k!r:.60}, which is not a key of its object')
                x = c[k]
                # the common case without a call per tuple: an array of plain scalars
                c[k] = tuple(x) if type(x) is list and _plain_items(x) else self._plain_tuple(x, k)
            self._dict_in_place(c)
            return c
        if type(c) is list:
            self.memo.append(c)
            n = len(c)
            for j in where:
                if type(j) is not int or not 0 <= j < n:
                    raise CorruptFileError(f'"$tuples" lists {j!r:.60}, which is not an index of its array')
                c[j] = self._plain_tuple(c[j], j)
            self._items_in_place(c)
            return c
        raise CorruptFileError(f'"$tuples" holds a {type(c).__name__}, not an object or an array')

    def _jdict(self, p: Any) -> dict[Any, Any]:
        if type(p) is not list:
            raise CorruptFileError(f'the payload of "$dict" must be an array of [key, value] pairs, not {type(p).__name__}')
        d: dict[Any, Any] = {}
        self.memo.append(d)
        self.jdepth += 1
        walk = self.walk
        j = 0
        try:
            for j, pair in enumerate(p):
                if type(pair) is not list or len(pair) != 2:
                    raise CorruptFileError(f'"$dict" item {j} is not a [key, value] pair')
                k, x = pair
                k = walk(k) if type(k) is dict or type(k) is list else k
                x = walk(x) if type(x) is dict or type(x) is list else x
                try:
                    d[k] = x
                except TypeError:
                    raise CorruptFileError(f'"$dict" item {j} has an unhashable key ({type(k).__name__})') from None
        except AmberError as exc:
            _add_part(exc, f"<item {j}>")
            raise
        finally:
            self.jdepth -= 1
        return d

    def _jref(self, p: Any) -> Any:
        if type(p) is not int or not 0 <= p < len(self.memo):
            raise CorruptFileError(f'reference {{"$ref": {p!r:.40}}} points at no earlier object')
        obj = self.memo[p]
        if obj is _PENDING:
            raise CorruptFileError("a reference points into an object that is still being built")
        return obj

    def _jobject(self, p: Any) -> Any:
        if type(p) is not list or len(p) != 2 or type(p[0]) is not str:
            raise CorruptFileError('malformed "$json.object": expected ["module.Class", value]')
        slot = len(self.memo)
        self.memo.append(_PENDING)
        cls = self.resolve(p[0])
        try:
            obj = _from_json(cls, p[0], lambda: self.walk(p[1]))
        except AmberError:
            raise
        except (IndexError, KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise CorruptFileError(f"{p[0]}.from_json failed on the stored value: {type(exc).__name__}: {exc}") from None
        self.memo[slot] = obj
        return obj

    # -- payloads: JSON -> native node --------------------------------------------------
    def native(self, x: Any) -> Any:
        """A handler payload value back as the native node it was written from."""
        t = type(x)
        if t is list:
            native = self.native
            return tuple([native(v) if type(v) is list or type(v) is dict else v for v in x])
        if t is not dict:
            return x
        if not x:
            return x
        for k in x:
            break
        if k[:1] != "$":
            native = self.native
            for kk, v in x.items():
                if type(v) is list or type(v) is dict:
                    x[kk] = native(v)
            return x
        if k in _READABLE_KEYS:  # the value itself: the native decoder takes it as it is
            return _readable.read(k, x)
        if len(x) != 1:
            raise CorruptFileError(f"the tag object {k!r:.60} has other keys too: a tag holds one key")
        p = x[k]
        name = k[1:]
        if name == "bytes":
            return _unb64(p, '{"$bytes": ...}')
        if name == "float":
            return _float_from(p)
        if name == "str":
            return _str_from(p)
        if name == "blob":
            return self.table.add(_unb64(p, '{"$blob": ...}'))
        if name == "ref":
            if type(p) is not int:
                raise CorruptFileError(f'reference {{"$ref": {p!r:.40}}} is not an object number')
            return (TAG_REF, p)
        if name == "dict":
            if type(p) is not list or not all(type(i) is list and len(i) == 2 for i in p):
                raise CorruptFileError('the payload of "$dict" must be an array of [key, value] pairs')
            out = {}
            for pk, pv in p:
                pk = self.native(pk)
                if type(pk) is not str and type(pk) is not bytes:
                    raise CorruptFileError(f"a node map has a key of type {type(pk).__name__}")
                out[pk] = self.native(pv)
            return out
        if name == "ndarray":
            return self.native_ndarray(p)
        if name == "array":
            if type(p) is not list:
                raise CorruptFileError(f'the payload of "$array" must be an array, not {type(p).__name__}')
            native = self.native
            return tuple([native(v) if type(v) is list or type(v) is dict else v for v in p])
        if name in ("amber", "seg", "tuples") or not name:
            raise CorruptFileError(f"the tag {k!r} does not belong here")
        if type(p) is not list:
            raise CorruptFileError(f"the payload of {k!r:.60} must be an array, not {type(p).__name__}")
        raw = _tag_bytes(k)
        native = self.native
        return (raw, *[native(v) if type(v) is list or type(v) is dict else v for v in p])

    def native_ndarray(self, p: Any) -> tuple[Any, ...]:
        """``{"$ndarray": {...}}`` back as the native array node (its bytes as a blob)."""
        if type(p) is not dict or not {"dtype", "shape", "data"} <= set(p) or not set(p) <= {"dtype", "shape", "data", "order"}:
            raise CorruptFileError('malformed "$ndarray": expected an object with dtype, shape, data (and order)')
        dt = _LIST_DTYPES_IN.get(p["dtype"]) if type(p["dtype"]) is str else None
        if dt is None:
            raise CorruptFileError(f'"$ndarray" dtype {p["dtype"]!r:.40} is not a bool, int, uint or float type')
        shape = _shape(p["shape"])
        order = p.get("order", "C")
        if order not in ("C", "F"):
            raise CorruptFileError(f'"$ndarray" order {order!r:.20} is neither "C" nor "F"')
        count = _count(shape)
        data = p["data"]
        if count == 0:
            if not _empty_fits(data, shape):
                raise CorruptFileError(f'"$ndarray" data does not have the declared shape {list(shape)}')
            raw = b""
        else:
            try:
                a = np.array(data, dtype=object)
            except (ValueError, TypeError, OverflowError, RecursionError) as exc:
                raise CorruptFileError(f'"$ndarray" data is not a regular array of numbers: {exc}') from None
            if a.shape != shape:
                raise CorruptFileError(
                    f'"$ndarray" data has shape {list(a.shape)} ({a.size} elements), not the declared {list(shape)}'
                )
            flat = a.reshape(-1).tolist()
            kinds = set(map(type, flat))
            if not kinds <= _LIST_VALUE_TYPES[dt.kind]:
                found = ", ".join(sorted(k.__name__ for k in kinds - _LIST_VALUE_TYPES[dt.kind]))
                raise CorruptFileError(f'"$ndarray" of dtype {dt} holds values of type {found}')
            try:
                b = np.array(flat, dtype=dt).reshape(shape)
            except (OverflowError, ValueError) as exc:
                raise CorruptFileError(f'"$ndarray" values do not fit its dtype {dt}: {exc}') from None
            raw = b.tobytes(order=order)
        meta: dict[str, Any] = {"dtype": dt.str, "shape": shape, "order": order}
        if len(raw) <= INLINE_MAX:
            meta["data"] = raw
        else:
            meta["blob"] = self.table.add(raw)
        return (TAG_NDARRAY, meta)


# ----------------------------------------------------------------------------- documents


def _split(doc: Any, name: str) -> tuple[dict[str, Any] | None, Any]:
    """(header, data) of a parsed document; (None, doc) for plain JSON."""
    if type(doc) is dict and doc:
        for first in doc:
            break
        if first == "$amber":
            if len(doc) != 2 or "data" not in doc:
                raise FormatError(
                    f"{name}: a document that starts with \"$amber\" must hold exactly two keys, \"$amber\" and "
                    f"\"data\" (it holds {', '.join(repr(k) for k in list(doc)[:5])})"
                )
            head = doc["$amber"]
            if type(head) is not dict:
                raise FormatError(f"{name}: the $amber header must be an object, not {type(head).__name__}")
            return head, doc["data"]
    return None, doc


def check_version(head: dict[str, Any], name: str) -> list[str]:
    """Check an ``$amber`` header's format and version; return the names it declares the
    data imports (not yet checked against the trust list)."""
    fmt = head.get("format", FORMAT)
    if fmt != FORMAT:
        raise FormatError(f"{name}: the $amber header names format {fmt!r:.40}, not {FORMAT!r}")
    ver = head.get("version", VERSION)
    if type(ver) is not int or ver < 1:
        raise FormatError(f"{name}: the $amber header's version {ver!r:.40} is not a positive integer")
    if ver > VERSION:
        raise VersionError((ver, 0), (VERSION, 0), where=f"{name}: ")
    needs = head.get("needs") or []
    if not isinstance(needs, list) or not all(type(n) is str for n in needs):
        raise FormatError(f"{name}: the $amber header's list of needed names is malformed")
    return needs


def check_header(head: dict[str, Any], trusted: Iterable[str], name: str) -> list[str]:
    """Check an ``$amber`` header: format, version, then every needed name against the
    trust list (UntrustedTypeError lists them all; nothing is imported)."""
    check_version(head, name)
    return check_trust(head, trusted, name)


def _walk_doc(tree: Any, name: str, trusted: tuple[str, ...], needs: Iterable[str], declared: bool,
              options: dict[str, Any] | None, dec: JsonDecoder | None = None) -> Any:
    t = type(tree)
    if t is not dict and t is not list:
        return tree
    if dec is None:
        dec = JsonDecoder(name, trusted, needs, declared, options)
    else:
        dec.reset(needs, declared)
    try:
        with _deep_recursion():
            return dec.walk(tree)
    except AmberError as exc:
        _finish_path(exc)
        if isinstance(exc, DecodeError) and name not in str(exc):
            exc.args = (f"{name}: {exc.args[0] if exc.args else exc}",)
        raise
    except RecursionError:
        raise CorruptFileError(f"{name}: the data is nested too deeply to rebuild") from None


def _metadata_from(head: dict[str, Any] | None, name: str) -> Any:
    if head is None:
        return None
    meta = head.get("metadata")
    if type(meta) is dict or type(meta) is list:
        meta = _walk_doc(meta, f"{name} (metadata)", (), (), True, None)
    return meta


def _load_doc(doc: Any, *, name: str, trusted: tuple[str, ...], validator: Any, options: dict[str, Any] | None,
              checked: bool = False, dec: JsonDecoder | None = None) -> tuple[Any, Any]:
    head, tree = _split(doc, name)
    needs: Iterable[str] = ()
    if head is not None:
        if checked:  # the caller checked the trust of every record's needs at once
            needs = check_version(head, name)
        else:
            needs = check_header(head, trusted, name)
            check_versions(head, name)
    if validator is not None:
        validate(validator, tree, name)
    obj = _walk_doc(tree, name, trusted, needs, head is not None, options, dec)
    return obj, _metadata_from(head, name)


def load_json(
    data: bytes | bytearray | memoryview,
    *,
    name: str = "<bytes>",
    trusted: tuple[str, ...] = (),
    schema: Any = None,
    options: dict[str, Any] | None = None,
) -> tuple[Any, Any]:
    """(object, metadata) of a tagged-JSON document (any JSON: plain JSON has no tags).

    The ``$amber`` header is checked first: format version, then every name the data needs
    against the trust list (``UntrustedTypeError`` lists them all before anything is
    imported). ``schema``: a JSON Schema (dict, or the path of a JSON file) the data part
    must match, checked as plain JSON before any tag is decoded (``SchemaError``)."""
    validator = make_validator(schema) if schema is not None else None
    doc = parse(data, name)
    return _load_doc(doc, name=name, trusted=tuple(trusted), validator=validator, options=options)


# ----------------------------------------------------------------------------- schema


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def json_path(parts: Iterable[Any]) -> str:
    """``$.users[3].age`` for the path parts ``["users", 3, "age"]``."""
    out = ["$"]
    for p in parts:
        if isinstance(p, int):
            out.append(f"[{p}]")
        elif isinstance(p, str) and _IDENT.fullmatch(p):
            out.append(f".{p}")
        else:
            out.append("[" + _stdjson.dumps(str(p)) + "]")
    return "".join(out)


def make_validator(schema: Any) -> Any:
    """A jsonschema validator for ``schema`` (a dict, a bool, or the path of a JSON file)."""
    try:
        import jsonschema
        from jsonschema.validators import validator_for
    except ImportError:
        raise AmberError("schema= needs the jsonschema package: pip install 'amber[json]'") from None
    if isinstance(schema, (str, os.PathLike)):
        path = os.fspath(schema)
        try:
            with open(path, "rb") as fh:
                schema = parse(fh.read(), path)
        except OSError as exc:
            raise AmberError(f"cannot read the schema {path}: {exc.strerror or exc}") from None
    if not isinstance(schema, (dict, bool)):
        raise TypeError(f"schema= takes a JSON Schema (a dict) or the path of one, not {type(schema).__name__}")
    cls = validator_for(schema)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise AmberError(f"the schema itself is invalid at {json_path(exc.absolute_path)}: {exc.message}") from None
    return cls(schema)


def validate(validator: Any, data: Any, name: str, where: str = "") -> None:
    """Raise SchemaError (quoting the failing path) when ``data`` does not match."""
    from jsonschema.exceptions import best_match

    try:
        err = best_match(validator.iter_errors(data))
    except RecursionError:
        raise SchemaError(f"{name}: {where}the data is nested too deeply to validate", "$", "too deeply nested") from None
    if err is None:
        return
    path = json_path(err.absolute_path)
    raise SchemaError(f"{name}: {where}{path} does not match the schema: {err.message}", path, err.message)


# ----------------------------------------------------------------------------- JSONL


def _flat_record(rec: dict[Any, Any]) -> dict[Any, Any] | None:
    """The JSON-ready form of a flat record, or None when it needs the full walk.

    The hot path of JSONL (measured: the walk cost 4x orjson per record): a dict whose
    first key is a str without ``$`` and whose values are plain JSON scalars, tuples of
    them (``{"$tuple": [...]}``) or values with a readable form (``{"$datetime": ...}``),
    which is what the full walk writes for such a record, byte for byte. Keys after the
    first, lone surrogates and ints beyond 64 bits are left to orjson, which refuses them
    (then the full walk runs)."""
    for first in rec:
        break
    if type(first) is not str or first[:1] == "$":
        return None
    tuples: list[Any] = []
    it = iter(rec.items())
    out = None
    while (stop := _plain_scan(it, tuples)) is not None:  # the encoder's own scan
        k, v = stop
        w = _READABLE_OUT.get(type(v))
        r = None if w is None else w(v)
        if r is None:
            return None
        if out is None:
            out = dict(rec)
        out[k] = r
    if tuples:
        if len(rec) >= _TUPLES_FORM:  # the full walk writes one $tuples table instead
            return None
        if out is None:
            out = dict(rec)
        for k in tuples:
            out[k] = {"$tuple": rec[k]}
    return rec if out is None else out


class RecordWriter:
    """Encodes records one JSON line each (an ``$amber`` header per record only when the
    record imports names), reusing one encoder."""

    def __init__(self, array_lists: int | None = 1000, deterministic: bool = True) -> None:
        _check_array_lists(array_lists)
        self.array_lists = array_lists
        self.deterministic = deterministic
        self._enc = JsonEncoder(deterministic, array_lists, False)
        self.count = 0

    def line(self, rec: Any) -> bytes:
        """One record as a JSON line (with its newline)."""
        where = self.count
        self.count += 1
        if type(rec) is dict and rec:
            flat = _flat_record(rec)
            if flat is not None:
                try:
                    return orjson.dumps(flat, option=_OPT_NL)
                except TypeError:  # a non-str key, a lone surrogate, an int beyond 64 bits
                    pass
        failure = ""
        for strict in (False, True):
            enc = self._enc
            enc.reset()
            enc.strict = strict
            try:
                with _deep_recursion():
                    tree = enc.value(rec)
                doc = tree
                if enc.needs:
                    doc = {"$amber": {"format": FORMAT, "version": VERSION, "needs": sorted(enc.needs)}, "data": tree}
                return _serialize(doc, _OPT_NL)
            except _Unserializable as exc:
                failure = str(exc)
            except AmberError as exc:
                _finish_path(exc)
                if isinstance(exc, EncodeError):
                    exc.path = f"record {where}: {exc.path}"
                raise
            finally:
                enc.keep.clear()
                enc.memo.clear()
        raise EncodeError(f"record {where} cannot be written as JSON: {failure}")


def _records_of(records: Any) -> Iterable[Any]:
    if isinstance(records, (dict, str, bytes, bytearray)) or not isinstance(records, Iterable):
        raise EncodeError(
            f"a JSONL file holds a sequence of records; got a {type(records).__name__}: pass a list (or any "
            "iterable) of records, or save it as .json"
        )
    return records


def write_lines(records: Any, fh: BinaryIO, array_lists: int | None = 1000, deterministic: bool = True) -> int:
    """Write each record as one line to ``fh`` (batched writes); return the count."""
    w = RecordWriter(array_lists, deterministic)
    # Lines are copied into one buffer at once: every orjson.dumps result holds orjson's
    # whole initial buffer (4 KiB) however short the line, so keeping them costs ~50x.
    batch = bytearray()
    line = w.line
    for rec in _records_of(records):
        batch += line(rec)
        if len(batch) >= 1 << 20:
            fh.write(batch)  # a new buffer follows: the sink may keep this one until written
            batch = bytearray()
    if batch:
        fh.write(batch)
    return w.count


def dump_jsonl(records: Any, fh: BinaryIO, *, array_lists: int | None = 1000, deterministic: bool = True) -> None:
    """Write ``records`` (a list or any iterable) to ``fh``, one compact JSON line each."""
    write_lines(records, fh, array_lists, deterministic)


def _line_error(name: str, lineno: int, offset: int, exc: AmberError) -> AmberError:
    where = f"{name}, line {lineno} (byte offset {offset})"
    msg = exc.args[0] if exc.args else str(exc)
    if isinstance(msg, str) and msg.startswith(name + ": "):
        msg = msg[len(name) + 2 :]
    if isinstance(exc, EncodeError):
        return exc
    exc.args = (f"{where}: {msg}",)
    return exc


class LineDecoder:
    """Decodes the lines of a JSONL text one at a time."""

    def __init__(self, name: str, trusted: Iterable[str] = (), schema: Any = None,
                 options: dict[str, Any] | None = None) -> None:
        self.name = name
        self.trusted = tuple(trusted)
        self.validator = make_validator(schema) if schema is not None else None
        self.options = options
        self._dec = JsonDecoder(name, self.trusted, (), True, options)

    def parse(self, line: Any, lineno: int, offset: int) -> Any:
        """The parsed JSON of one line (CorruptFileError naming line and offset)."""
        if lineno > 1:
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError:
                pass  # the slow path says why (or parses what orjson cannot)
            else:
                if _headed(doc) or not _long_digits(line):
                    return doc
        try:
            return parse(line, self.name)
        except CorruptFileError as exc:
            msg = str(exc)
            if msg.startswith(self.name + ": "):
                msg = msg[len(self.name) + 2 :]
            raise CorruptFileError(f"{self.name}, line {lineno} (byte offset {offset}): {msg}") from None

    def record(self, doc: Any, lineno: int, offset: int, checked: bool = False) -> Any:
        """The record of a parsed line."""
        t = type(doc)
        if t is not dict and t is not list:
            if self.validator is not None:
                validate(self.validator, doc, self.name, f"line {lineno}: ")
            return doc
        if t is dict and doc:
            for first in doc:
                break
            if first[:1] == "$":  # a tag, or a header: the whole way
                try:
                    return _load_doc(doc, name=f"{self.name}, line {lineno} (byte offset {offset})",
                                     trusted=self.trusted, validator=self.validator, options=self.options,
                                     checked=checked, dec=self._dec)[0]
                except SchemaError:
                    raise
                except AmberError as exc:
                    raise _line_error(self.name, lineno, offset, exc) from None
        if self.validator is not None:
            validate(self.validator, doc, self.name, f"line {lineno}: ")
        if t is dict:
            try:
                if _flat_in_place(doc):
                    return doc
            except AmberError as exc:
                _finish_path(exc)
                raise _line_error(self.name, lineno, offset, exc) from None
        dec = self._dec
        dec.reset(_NO_NEEDS, False)
        try:
            with _deep_recursion():
                dec.memo.append(doc)
                if t is dict:
                    dec._dict_in_place(doc)
                else:
                    dec._items_in_place(doc)
            return doc
        except AmberError as exc:
            _finish_path(exc)
            raise _line_error(self.name, lineno, offset, exc) from None
        except RecursionError:
            raise CorruptFileError(
                f"{self.name}, line {lineno} (byte offset {offset}): the record is nested too deeply to rebuild"
            ) from None


def _flat_in_place(doc: dict[str, Any]) -> bool:
    """Turn the values of a record that :func:`_inline_value` handles into their objects, in
    place; True when nothing else is left to decode.

    The hot path of reading JSONL (the reverse of :func:`_flat_record`): no decoder is set
    up. It stops at the first value it does not handle (a list, another tag, a nested
    object); what it turned is not numbered by the full walk either, so the full walk then
    goes on correctly."""
    for k, x in doc.items():
        tx = type(x)
        if tx is dict:
            try:
                r = _inline_value(x)
            except AmberError as exc:
                _add_part(exc, k)
                raise
            if r is _NOT_INLINE:
                return False
            doc[k] = r
        elif tx is list:
            return False
    return True


_NO_NEEDS: frozenset[str] = frozenset()


def _torn_number(doc: Any) -> bool:
    """A final line without its newline that parses as a number may be a longer number cut
    short (``12`` of ``1234``): it is reported as torn, never returned."""
    return type(doc) in (int, float)


def iter_lines(data: Any) -> Iterator[tuple[Any, int, int, bool]]:
    """(line, line number, byte offset, ends with a newline) for each line of a buffer."""
    buf = data if isinstance(data, (bytes, bytearray)) or hasattr(data, "find") else bytes(memoryview(data).cast("B"))
    find = buf.find
    pos, lineno, n = 0, 0, len(buf)
    while pos < n:
        lineno += 1
        end = find(b"\n", pos)
        if end < 0:
            yield buf[pos:], lineno, pos, False
            return
        yield buf[pos : end + 1], lineno, pos, True
        pos = end + 1


def load_jsonl(
    data: Any,
    *,
    name: str = "<bytes>",
    trusted: tuple[str, ...] = (),
    schema: Any = None,
    options: dict[str, Any] | None = None,
) -> list[Any]:
    """The records of a JSONL text, as a list. Every line's needs are checked against the
    trust list before any record is rebuilt; a torn last line raises CorruptFileError."""
    dec = LineDecoder(name, trusted, schema, options)
    parsed: list[tuple[Any, int, int]] = []
    needs: set[str] = set()
    for line, lineno, offset, complete in iter_lines(data):
        if not line.strip():
            continue
        try:
            doc = dec.parse(line, lineno, offset)
        except CorruptFileError:
            if not complete:
                raise _torn(name, lineno, offset, len(line)) from None
            raise
        if not complete and _torn_number(doc):
            raise _torn(name, lineno, offset, len(line))
        if type(doc) is dict and doc:
            head, _ = _split(doc, f"{name}, line {lineno}")
            if head is not None:
                needs.update(check_version(head, f"{name}, line {lineno}"))
        parsed.append((doc, lineno, offset))
    if needs:
        check_trust({"needs": sorted(needs)}, dec.trusted, name)
    return [dec.record(doc, lineno, offset, checked=True) for doc, lineno, offset in parsed]


def _torn(name: str, lineno: int, offset: int, size: int) -> CorruptFileError:
    return CorruptFileError(
        f"{name}: the last line (line {lineno}, byte offset {offset}, {size} bytes, no final newline) is "
        "incomplete: a write was interrupted. The records before it are intact; amber.jsonl.append(..., "
        "repair=True) cuts the torn line off"
    )


# ----------------------------------------------------------------------------- inspect


def looks_like_json(head: bytes) -> bool:
    """Could ``head`` (a file's first bytes) start a JSON text? (after a BOM and white space)"""
    text = bytes(head)
    if text.startswith(b"\xef\xbb\xbf"):
        text = text[3:]
    text = text.lstrip(b" \t\r\n")
    return bool(text) and text[:1] in (b"{", b"[", b'"', b"-", b"t", b"f", b"n") or text[:1].isdigit()


class _DescBlob:
    __slots__ = ("index", "nbytes", "stored", "codec", "filter")

    def __init__(self, index: int, nbytes: int, stored: int) -> None:
        self.index, self.nbytes, self.stored = index, nbytes, stored
        self.codec = None
        self.filter = None


class _DescReader:
    """What ``_inspect._Describer`` asks of a reader: the blobs' sizes."""

    def __init__(self) -> None:
        self.blobs: list[_DescBlob] = []

    def add(self, nbytes: int, stored: int) -> int:
        self.blobs.append(_DescBlob(len(self.blobs), nbytes, stored))
        return len(self.blobs) - 1


def _b64_size(text: Any) -> int:
    if type(text) is not str:
        raise CorruptFileError("a $blob must hold a base64 string")
    n = len(text) // 4 * 3
    return n - text[-2:].count("=") if text else 0


class _Describe:
    """A parsed JSON document as a native node tree, for the native describer."""

    def __init__(self) -> None:
        self.reader = _DescReader()
        #: the tags met (for ``types``: JSONL records carry no list of their own)
        self.seen: set[str] = set()

    def json(self, x: Any) -> Any:
        t = type(x)
        if t is list:
            return (b"list", *[self.json(v) for v in x])
        if t is not dict:
            return x
        if x:
            for k in x:
                break
            if k[:1] == "$" and (len(x) == 1 or k in _READABLE_KEYS):
                return self.tagged(k[1:], x[k], self.json)
        keys = tuple(x)
        return (b"map", keys, tuple(self.json(v) for v in x.values()))

    def payload(self, x: Any) -> Any:
        t = type(x)
        if t is list:
            return tuple(self.payload(v) for v in x)
        if t is not dict:
            return x
        if x:
            for k in x:
                break
            if k[:1] == "$" and (len(x) == 1 or k in _READABLE_KEYS):
                return self.tagged(k[1:], x[k], self.payload)
        return {k: self.payload(v) for k, v in x.items()}

    def tagged(self, name: str, p: Any, inner: Any) -> Any:
        if name in _readable.NAMES:  # shown as its type, like the handler node it replaces
            kind = _readable.TYPE_OF[name]
            self.seen.add(kind)
            return (kind.encode(),)
        if name not in ("bytes", "float", "str", "blob", "ref", "dict", "tuples", "amber") and len(self.seen) < 1000:
            self.seen.add("numpy.ndarray" if name == "ndarray" else name)
        if name == "tuple" and type(p) is list:
            return (b"tuple", *[inner(v) for v in p])
        if name == "tuples" and type(p) is list and len(p) == 2:
            return self.json(p[0]) if inner is self.json else self.payload(p[0])
        if name == "dict" and type(p) is list:
            pairs = [i for i in p if type(i) is list and len(i) == 2]
            return (b"map", tuple(inner(i[0]) for i in pairs), tuple(inner(i[1]) for i in pairs))
        if name == "ref":
            return (TAG_REF, p)
        if name == "bytes":
            return _unb64(p, '{"$bytes": ...}')
        if name == "float":
            return _float_from(p)
        if name == "str":
            return _str_from(p)
        if name == "blob":
            n = _b64_size(p)
            return self.reader.add(n, len(p))
        if name == "ndarray" and type(p) is dict:
            dt = _LIST_DTYPES_IN.get(p.get("dtype")) if type(p.get("dtype")) is str else None
            shape = p.get("shape") if type(p.get("shape")) is list else []
            n = 1
            for s in shape:
                n *= s if type(s) is int else 0
            ref = self.reader.add(n * (dt.itemsize if dt is not None else 0), 0)
            return (TAG_NDARRAY, {"dtype": dt.str if dt is not None else repr(p.get("dtype")), "shape": shape, "blob": ref})
        if name == "json.object" and type(p) is list and p and type(p[0]) is str:
            return (b"state", p[0])  # rendered as its class, like the native opt-in objects
        try:
            raw = name.encode("utf-8")
        except UnicodeEncodeError:
            raw = b"?"
        return (raw or b"?", *[self.payload(v) for v in (p if type(p) is list else [p])])


def _describe_tree(data: Any, seen: set[str]) -> tuple[Any, _DescReader]:
    from amber._inspect import _Describer

    d = _Describe()
    d.seen = seen
    with _deep_recursion():
        node = d.json(data)
        return _Describer(d.reader).node(node), d.reader  # type: ignore[arg-type]


def describe_json(data: Any, *, name: str, size: int) -> Any:
    """``amber inspect`` of a JSON or JSONL file: header, types, needs (and which of them
    are untrusted), metadata and the tree of types and shapes. Nothing is imported."""
    from amber._inspect import Info
    from amber.trust import untrusted

    jsonl = name.lower().endswith((".jsonl", ".ndjson"))
    docs: list[Any] = []
    if not jsonl:
        try:
            docs = [parse(data, name)]
        except CorruptFileError as exc:
            if "line 1" in str(exc) or b"\n" not in bytes(memoryview(data)[: 1 << 20]):
                raise
            jsonl = True
    if jsonl:
        for line, lineno, _off, complete in iter_lines(data):
            if line.strip():
                try:
                    docs.append(parse(line, f"{name}, line {lineno}"))
                except CorruptFileError:
                    if complete:
                        raise
    heads: list[dict[str, Any]] = []
    trees: list[Any] = []
    for i, doc in enumerate(docs):
        head, tree = _split(doc, name if not jsonl else f"{name}, line {i + 1}")
        if head is not None:
            heads.append(head)
        trees.append(tree)
    needs = sorted({n for h in heads for n in (h.get("needs") or []) if isinstance(n, str)})
    seen = {n for h in heads for n in (h.get("types") or []) if isinstance(n, str)}
    first = heads[0] if heads and not jsonl else {}
    try:
        if jsonl:
            items = []
            blobs = []
            for i, tree in enumerate(trees):
                rendered, reader = _describe_tree(tree, seen)
                blobs.extend(reader.blobs)
                if i < 12:
                    items.append(rendered)
            tree_info: dict[str, Any] = {"type": "records", "len": len(trees), "items": items}
        else:
            tree_info, reader = _describe_tree(trees[0] if trees else None, seen)
            blobs = reader.blobs
    except CorruptFileError as exc:
        raise CorruptFileError(f"{name}: {exc}") from None
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
        raise CorruptFileError(f"{name}: malformed tagged JSON: {exc}") from None
    version = first.get("version", VERSION) if first else (VERSION if heads or jsonl else None)
    return Info(
        path=name,
        size=size,
        format="jsonl" if jsonl else "json",
        format_version=str(version) if version is not None else "plain JSON",
        amber_version=first.get("amber") if first else None,
        created=first.get("created") if first else None,
        env=first.get("env") if first else None,
        metadata=first.get("metadata") if first else None,
        types=sorted(seen),
        needs=needs,
        untrusted=untrusted(needs, imports=False),
        codecs=[],
        blobs=len(blobs),
        data_bytes=sum(b.nbytes for b in blobs),
        stored_bytes=sum(b.stored for b in blobs),
        tree=tree_info,
    )
