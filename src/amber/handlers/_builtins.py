"""Handlers for the standard library's data types. None of them imports anything by name
except ``defaultdict``'s factory, which goes through the trust list. (``list``, ``dict`` and
``tuple`` are the format's own structural nodes, see :mod:`amber.formats._native`.)"""

from __future__ import annotations

import collections
import datetime as dt
import decimal
import fractions
import pathlib
import uuid
from abc import abstractmethod
from typing import Any

from amber.errors import CorruptFileError, UnsupportedTypeError
from amber.handlers._base import DecodeContext, EncodeContext, Handler
from amber.trust import is_denied

__all__ = ["BUILTIN_HANDLERS"]


def _need(cond: bool, what: str) -> None:
    if not cond:
        raise CorruptFileError(f"malformed {what} node")


class _MappingHandler(Handler):
    """Dict subclasses: a flat list of key, value, key, value... (plain dicts are the
    format's own ``map`` nodes)."""

    binds = True

    def encode(self, obj: dict[Any, Any], ctx: EncodeContext) -> list[Any]:
        out = [self.tag]
        enc = ctx.encode
        for k, v in obj.items():
            out.append(enc(k, f"<key {k!r:.40}>"))
            out.append(enc(v, k))
        return out

    def _fill(self, d: Any, node: list[Any], start: int, ctx: DecodeContext) -> Any:
        _need((len(node) - start) % 2 == 0, self.handler_id)
        dec = ctx.decode
        for i in range(start, len(node), 2):
            k = dec(node[i])
            try:
                d[k] = dec(node[i + 1])
            except TypeError:
                raise CorruptFileError(f"{self.handler_id} node has an unhashable key {type(k).__name__}") from None
        return d

class OrderedDictHandler(_MappingHandler):
    handler_id = "collections.OrderedDict"
    types = (collections.OrderedDict,)

    def encode(self, obj: Any, ctx: EncodeContext) -> list[Any]:
        if obj.__dict__:  # e.g. a PyTorch state dict's _metadata (module versions)
            return ORDERED_DICT_ATTRS.encode(obj, ctx)
        return super().encode(obj, ctx)

    def decode(self, node: list[Any], ctx: DecodeContext) -> Any:
        d: collections.OrderedDict[Any, Any] = collections.OrderedDict()
        ctx.bind(d)
        return self._fill(d, node, 1, ctx)


class OrderedDictAttrsHandler(_MappingHandler):
    """An OrderedDict with instance attributes: ``[tag, {name: node}, k, v, ...]``
    (chosen by OrderedDictHandler, which owns the type)."""

    handler_id = "collections.OrderedDict.attrs"

    def encode(self, obj: Any, ctx: EncodeContext) -> list[Any]:
        attrs = obj.__dict__
        if not all(type(k) is str for k in attrs):
            raise UnsupportedTypeError(type(obj), "", "an OrderedDict's attributes need str names")
        encoded = ctx.encode_attrs(attrs)  # before the items: decode reads them in this order
        node = super().encode(obj, ctx)
        node.insert(1, encoded)
        return node

    def decode(self, node: list[Any], ctx: DecodeContext) -> Any:
        _need(len(node) >= 2 and type(node[1]) is dict, self.handler_id)
        d: collections.OrderedDict[Any, Any] = collections.OrderedDict()
        ctx.bind(d)
        attrs = ctx.decode_attrs(node[1])
        _need(all(type(k) is str for k in attrs), self.handler_id)
        self._fill(d, node, 2, ctx)
        d.__dict__.update(attrs)
        return d


ORDERED_DICT_ATTRS = OrderedDictAttrsHandler()


class CounterHandler(_MappingHandler):
    handler_id = "collections.Counter"
    types = (collections.Counter,)

    def decode(self, node: list[Any], ctx: DecodeContext) -> Any:
        d: collections.Counter[Any] = collections.Counter()
        ctx.bind(d)
        return self._fill(d, node, 1, ctx)


class DefaultDictHandler(_MappingHandler):
    """``[tag, factory_name_or_None, k, v, ...]``; the factory must be trusted to load."""

    handler_id = "collections.defaultdict"
    types = (collections.defaultdict,)

    def encode(self, obj: Any, ctx: EncodeContext) -> list[Any]:
        f = obj.default_factory
        name = None
        if f is not None:
            mod, qual = getattr(f, "__module__", None), getattr(f, "__qualname__", None)
            if not mod or not qual or "<" in qual:
                raise UnsupportedTypeError(
                    type(f), "", "a defaultdict's default_factory must be importable by name (no lambda)"
                )
            name = f"{mod}.{qual}"
            if is_denied(name):
                raise UnsupportedTypeError(
                    type(f), "", f"a defaultdict's default_factory {name} is on amber's deny list and could never load"
                )
            ctx.need(name)
        out = super().encode(obj, ctx)
        out.insert(1, name)
        return out

    def decode(self, node: list[Any], ctx: DecodeContext) -> Any:
        _need(len(node) >= 2, self.handler_id)
        name = node[1]
        _need(name is None or type(name) is str, self.handler_id)
        factory = None if name is None else ctx.resolve(name)
        d: collections.defaultdict[Any, Any] = collections.defaultdict(factory)
        ctx.bind(d)
        return self._fill(d, node, 2, ctx)


class _SeqHandler(Handler):
    """Set-like and sequence-like containers stored as their items."""

    def encode(self, obj: Any, ctx: EncodeContext) -> list[Any]:
        enc = ctx.encode
        return [self.tag, *[enc(x, f"<item {j}>") for j, x in enumerate(obj)]]


class SetHandler(_SeqHandler):
    handler_id = "set"
    types = (set,)
    binds = True

    def encode(self, obj: Any, ctx: EncodeContext) -> list[Any]:
        if ctx.deterministic:
            obj = _stable_order(obj)
        return super().encode(obj, ctx)

    def decode(self, node: list[Any], ctx: DecodeContext) -> Any:
        s: set[Any] = set()
        ctx.bind(s)
        dec = ctx.decode
        try:
            for x in node[1:]:
                s.add(dec(x))
        except TypeError:
            raise CorruptFileError("set node holds an unhashable item") from None
        return s


class FrozenSetHandler(SetHandler):
    handler_id = "frozenset"
    types = (frozenset,)
    binds = False

    def decode(self, node: list[Any], ctx: DecodeContext) -> Any:
        dec = ctx.decode
        try:
            return frozenset([dec(x) for x in node[1:]])
        except TypeError:
            raise CorruptFileError("frozenset node holds an unhashable item") from None


def _canon(x: Any) -> Any:
    """A sort key that totally orders any mix of values, independent of hash seeds and
    memory addresses (``<`` alone only partially orders frozensets and nan)."""
    t = type(x)
    if t is float:
        return ("float", (0, 0.0) if x != x else (1, x))
    if t is int or t is bool or t is str or t is bytes:
        return (t.__name__, x)
    if x is None:
        return ("NoneType", 0)
    if t is tuple:
        return ("tuple", tuple(_canon(v) for v in x))
    if t is frozenset:
        return ("frozenset", tuple(sorted(_canon(v) for v in x)))
    return (f"{t.__module__}.{t.__qualname__}", repr(x))


def _stable_order(items: Any) -> list[Any]:
    """Items in an order that does not depend on hash seeds (for ``deterministic=True``)."""
    return sorted(items, key=_canon)


class DequeHandler(_SeqHandler):
    """``[tag, maxlen, items...]``."""

    handler_id = "collections.deque"
    types = (collections.deque,)
    binds = True

    def encode(self, obj: Any, ctx: EncodeContext) -> list[Any]:
        enc = ctx.encode
        return [self.tag, obj.maxlen, *[enc(x, j) for j, x in enumerate(obj)]]

    def decode(self, node: list[Any], ctx: DecodeContext) -> Any:
        _need(len(node) >= 2 and (node[1] is None or (type(node[1]) is int and node[1] >= 0)), self.handler_id)
        d: collections.deque[Any] = collections.deque(maxlen=node[1])
        ctx.bind(d)
        dec = ctx.decode
        for x in node[2:]:
            d.append(dec(x))
        return d


class IntHandler(Handler):
    """Integers beyond 64 bits, as signed little-endian bytes."""

    handler_id = "int"
    types = ()

    def encode(self, obj: int, ctx: EncodeContext) -> list[Any]:
        n = (obj.bit_length() + 8) // 8
        return [self.tag, int(obj).to_bytes(n, "little", signed=True)]

    def decode(self, node: list[Any], ctx: DecodeContext) -> Any:
        _need(len(node) == 2 and type(node[1]) is bytes, self.handler_id)
        return int.from_bytes(node[1], "little", signed=True)


class _AtomHandler(Handler):
    """A value rebuilt from a fixed list of plain fields."""

    @abstractmethod
    def fields(self, obj: Any) -> list[Any]:
        """The plain values that describe ``obj``."""

    @abstractmethod
    def build(self, *args: Any) -> Any:
        """The object described by ``fields``."""

    def encode(self, obj: Any, ctx: EncodeContext) -> list[Any]:
        return [self.tag, *self.fields(obj)]

    def decode(self, node: list[Any], ctx: DecodeContext) -> Any:
        try:
            return self.build(*node[1:])
        except (TypeError, ValueError, OverflowError, decimal.InvalidOperation, ZeroDivisionError) as exc:
            raise CorruptFileError(f"malformed {self.handler_id} node: {exc}") from None


class ComplexHandler(_AtomHandler):
    handler_id = "complex"
    types = (complex,)

    def fields(self, obj: complex) -> list[Any]:
        return [obj.real, obj.imag]

    def build(self, re: float, im: float) -> complex:
        if type(re) is not float or type(im) is not float:
            raise TypeError("complex parts must be floats")
        return complex(re, im)


class BytearrayHandler(_AtomHandler):
    handler_id = "bytearray"
    types = (bytearray,)
    binds = True

    def fields(self, obj: bytearray) -> list[Any]:
        return [bytes(obj)]

    def build(self, b: bytes) -> bytearray:
        if type(b) is not bytes:
            raise TypeError("bytearray payload must be bytes")
        return bytearray(b)

    def decode(self, node: list[Any], ctx: DecodeContext) -> Any:
        obj = super().decode(node, ctx)
        ctx.bind(obj)
        return obj


def _ints(*xs: Any) -> None:
    for x in xs:
        if x is not None and type(x) is not int:
            raise TypeError(f"expected an integer, got {type(x).__name__}")


class RangeHandler(Handler):
    handler_id = "range"
    types = (range,)

    def encode(self, obj: range, ctx: EncodeContext) -> list[Any]:
        return [self.tag, ctx.encode(obj.start), ctx.encode(obj.stop), ctx.encode(obj.step)]

    def decode(self, node: Any, ctx: DecodeContext) -> Any:
        _need(len(node) == 4, self.handler_id)
        a, b, c = ctx.decode(node[1]), ctx.decode(node[2]), ctx.decode(node[3])
        try:
            _ints(a, b, c)
            return range(a, b, c)
        except (TypeError, ValueError) as exc:
            raise CorruptFileError(f"malformed range node: {exc}") from None


class SliceHandler(Handler):
    handler_id = "slice"
    types = (slice,)

    def encode(self, obj: slice, ctx: EncodeContext) -> list[Any]:
        return [self.tag, ctx.encode(obj.start), ctx.encode(obj.stop), ctx.encode(obj.step)]

    def decode(self, node: list[Any], ctx: DecodeContext) -> Any:
        _need(len(node) == 4, self.handler_id)
        return slice(ctx.decode(node[1]), ctx.decode(node[2]), ctx.decode(node[3]))


class EllipsisHandler(_AtomHandler):
    handler_id = "ellipsis"
    types = (type(Ellipsis),)

    def fields(self, obj: Any) -> list[Any]:
        return []

    def build(self) -> Any:
        return Ellipsis


class TimezoneHandler(Handler):
    """``datetime.timezone``: offset seconds (with microseconds) and name."""

    handler_id = "datetime.timezone"
    types = (dt.timezone,)

    def encode(self, obj: dt.timezone, ctx: EncodeContext) -> list[Any]:
        off = obj.utcoffset(None)
        name = obj.tzname(None)
        default = dt.timezone(off).tzname(None)
        return [self.tag, off.days, off.seconds, off.microseconds, None if name == default else name]

    def decode(self, node: list[Any], ctx: DecodeContext) -> Any:
        try:
            _need(len(node) == 5, self.handler_id)
            _ints(node[1], node[2], node[3])
            off = dt.timedelta(node[1], node[2], node[3])
            if node[4] is None:
                return dt.timezone(off)
            if type(node[4]) is not str:
                raise TypeError("timezone name must be a string")
            return dt.timezone(off, node[4])
        except (TypeError, ValueError, OverflowError) as exc:
            raise CorruptFileError(f"malformed timezone node: {exc}") from None


def _tz_out(tz: Any, ctx: EncodeContext) -> Any:
    if tz is None:
        return None
    if type(tz) is not dt.timezone:
        # zoneinfo and pytz zones are kept by their key when they have one.
        key = getattr(tz, "key", None) or getattr(tz, "zone", None)
        if isinstance(key, str):
            return key
        raise UnsupportedTypeError(type(tz), "", "only datetime.timezone and named zoneinfo zones are supported")
    return ctx.encode(tz)


def _tz_in(node: Any, ctx: DecodeContext) -> Any:
    if node is None:
        return None
    if type(node) is str:
        import zoneinfo

        try:
            return zoneinfo.ZoneInfo(node)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError) as exc:
            raise CorruptFileError(f"unknown time zone {node!r}: {exc}") from None
    tz = ctx.decode(node)
    if type(tz) is not dt.timezone:
        raise CorruptFileError("a datetime's tzinfo node is not a timezone")
    return tz


class DateTimeHandler(Handler):
    """``[tag, year, month, day, hour, minute, second, microsecond, fold, tz]``."""

    handler_id = "datetime.datetime"
    types = (dt.datetime,)

    def encode(self, o: dt.datetime, ctx: EncodeContext) -> list[Any]:
        return [self.tag, o.year, o.month, o.day, o.hour, o.minute, o.second, o.microsecond, o.fold,
                _tz_out(o.tzinfo, ctx)]

    def decode(self, node: list[Any], ctx: DecodeContext) -> Any:
        _need(len(node) == 10, self.handler_id)
        try:
            _ints(*node[1:9])
            return dt.datetime(*node[1:8], fold=node[8], tzinfo=_tz_in(node[9], ctx))
        except (TypeError, ValueError, OverflowError) as exc:
            raise CorruptFileError(f"malformed datetime node: {exc}") from None


class DateHandler(_AtomHandler):
    handler_id = "datetime.date"
    types = (dt.date,)

    def fields(self, o: dt.date) -> list[Any]:
        return [o.year, o.month, o.day]

    def build(self, y: int, m: int, d: int) -> dt.date:
        _ints(y, m, d)
        return dt.date(y, m, d)


class TimeHandler(Handler):
    handler_id = "datetime.time"
    types = (dt.time,)

    def encode(self, o: dt.time, ctx: EncodeContext) -> list[Any]:
        return [self.tag, o.hour, o.minute, o.second, o.microsecond, o.fold, _tz_out(o.tzinfo, ctx)]

    def decode(self, node: list[Any], ctx: DecodeContext) -> Any:
        _need(len(node) == 7, self.handler_id)
        try:
            _ints(*node[1:6])
            return dt.time(*node[1:5], fold=node[5], tzinfo=_tz_in(node[6], ctx))
        except (TypeError, ValueError, OverflowError) as exc:
            raise CorruptFileError(f"malformed time node: {exc}") from None


class TimedeltaHandler(_AtomHandler):
    handler_id = "datetime.timedelta"
    types = (dt.timedelta,)

    def fields(self, o: dt.timedelta) -> list[Any]:
        return [o.days, o.seconds, o.microseconds]

    def build(self, d: int, s: int, us: int) -> dt.timedelta:
        _ints(d, s, us)
        return dt.timedelta(d, s, us)


class DecimalHandler(_AtomHandler):
    handler_id = "decimal.Decimal"
    types = (decimal.Decimal,)

    def fields(self, o: decimal.Decimal) -> list[Any]:
        return [str(o)]

    def build(self, s: str) -> decimal.Decimal:
        if type(s) is not str:
            raise TypeError("decimal payload must be a string")
        return decimal.Decimal(s)


class FractionHandler(Handler):
    handler_id = "fractions.Fraction"
    types = (fractions.Fraction,)

    def encode(self, o: fractions.Fraction, ctx: EncodeContext) -> list[Any]:
        return [self.tag, ctx.encode(o.numerator), ctx.encode(o.denominator)]

    def decode(self, node: list[Any], ctx: DecodeContext) -> Any:
        _need(len(node) == 3, self.handler_id)
        n, d = ctx.decode(node[1]), ctx.decode(node[2])
        if type(n) is not int or type(d) is not int or d == 0:
            raise CorruptFileError("malformed fraction node")
        return fractions.Fraction(n, d)


class UUIDHandler(_AtomHandler):
    handler_id = "uuid.UUID"
    types = (uuid.UUID,)

    def fields(self, o: uuid.UUID) -> list[Any]:
        return [o.bytes]

    def build(self, b: bytes) -> uuid.UUID:
        if type(b) is not bytes:
            raise TypeError("uuid payload must be 16 bytes")
        return uuid.UUID(bytes=b)


_PATHS: dict[str, type] = {
    "PurePath": pathlib.PurePath,
    "PurePosixPath": pathlib.PurePosixPath,
    "PureWindowsPath": pathlib.PureWindowsPath,
    "Path": pathlib.Path,
    "PosixPath": pathlib.PosixPath,
    "WindowsPath": pathlib.WindowsPath,
}


class PathHandler(Handler):
    """Pure and concrete paths: ``[tag, class name, str(path)]``."""

    handler_id = "pathlib.Path"
    types = tuple({pathlib.PurePosixPath, pathlib.PureWindowsPath, pathlib.PosixPath, pathlib.WindowsPath})

    def encode(self, o: pathlib.PurePath, ctx: EncodeContext) -> list[Any]:
        return [self.tag, type(o).__name__, str(o)]

    def decode(self, node: list[Any], ctx: DecodeContext) -> Any:
        _need(len(node) == 3 and node[1] in _PATHS and type(node[2]) is str, self.handler_id)
        cls = _PATHS[node[1]]
        if cls is pathlib.PosixPath or cls is pathlib.WindowsPath:
            cls = pathlib.Path  # a concrete path of the other OS cannot exist here
        return cls(node[2])


BUILTIN_HANDLERS: tuple[Handler | type[Handler], ...] = (
    OrderedDictHandler,
    ORDERED_DICT_ATTRS,
    CounterHandler,
    DefaultDictHandler,
    SetHandler,
    FrozenSetHandler,
    DequeHandler,
    IntHandler,
    ComplexHandler,
    BytearrayHandler,
    RangeHandler,
    SliceHandler,
    EllipsisHandler,
    TimezoneHandler,
    DateTimeHandler,
    DateHandler,
    TimeHandler,
    TimedeltaHandler,
    DecimalHandler,
    FractionHandler,
    UUIDHandler,
    PathHandler,
)
