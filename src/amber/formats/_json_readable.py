"""The readable JSON forms of the standard library's value types (docs/json.md §3.1).

``datetime``, ``date``, ``time``, ``timedelta``, ``Decimal``, ``UUID`` and ``Fraction``
(exact types only, not subclasses) are written as text people read at a glance, in both
JSON contexts, instead of their handler's positional payload:

* ``{"$datetime": "2026-11-22T09:30:00-05:00", "tz": "America/New_York"}`` (ISO 8601; a
  named zone keeps its key, a fixed-offset zone its own name in ``tzname``, and ``fold=1``
  is ``"fold": 1``), ``{"$date": "2024-02-29"}``, ``{"$time": "09:30:00.000001+01:00"}``;
* ``{"$timedelta": "-P1DT2H3M4.5S"}`` (an ISO 8601 duration with a sign);
* ``{"$decimal": "-0.00"}`` (``str(d)``: exponent, sign, NaN payloads and infinities kept);
* ``{"$uuid": "12345678-1234-5678-1234-567812345678"}``, ``{"$fraction": "-3/4"}``.

These tags stand for the value itself: they are not numbered, and a value written twice
is written in full twice (as a plain tuple is). The forms written before them (the generic
``{"$datetime.datetime": [2026, 11, 22, ...]}``) are handler tags and still read as such.
"""

from __future__ import annotations

import datetime as dt
import decimal
import fractions
import re
import uuid
from collections.abc import Callable
from typing import Any

from amber.errors import CorruptFileError

__all__ = ["HANDLER_IDS", "KEYS", "NAMES", "WRITERS", "read"]

_US = 1_000_000
#: Fractions whose parts have at most this many bits are written as "n/d" (about 3000
#: digits: within Python's default limit of 4300 digits for int <-> str); bigger ones keep
#: the generic form (their parts as $int nodes).
_FRACTION_BITS = 10_000

_OFFSET = r"(Z|([+-])(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?"
_DATE_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_TIME_RE = re.compile(r"(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?" + _OFFSET)
_DATETIME_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?" + _OFFSET)
_DURATION_RE = re.compile(
    r"(-)?P(?:(\d{1,10})D)?(?:T(?=\d)(?:(\d{1,12})H)?(?:(\d{1,14})M)?(?:(\d{1,16})(?:\.(\d{1,6}))?S)?)?"
)
_DECIMAL_RE = re.compile(
    r"[+-]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?|inf(?:inity)?|s?nan\d*)", re.IGNORECASE
)
_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_FRACTION_RE = re.compile(r"(-?\d{1,4000})/(\d{1,4000})")


# ----------------------------------------------------------------------------- writing


def _zone(tz: Any, out: dict[str, Any]) -> bool:
    """Put what names ``tz`` (beyond the offset in the text) into ``out``; False for a
    tzinfo amber cannot keep (the generic path then says why)."""
    if type(tz) is dt.timezone:
        name = tz.tzname(None)
        if name != dt.timezone(tz.utcoffset(None)).tzname(None):
            out["tzname"] = name
        return True
    # zoneinfo and pytz zones are kept by their key (as the native handlers do)
    key = getattr(tz, "key", None) or getattr(tz, "zone", None)
    if isinstance(key, str):
        out["tz"] = str(key)
        return True
    return False


def _w_datetime(o: dt.datetime | dt.time, key: str = "$datetime") -> dict[str, Any] | None:
    tz = o.tzinfo
    if tz is None:
        out: dict[str, Any] = {key: o.isoformat()}
    else:
        try:  # (a zone of another library may fail to give an offset: then the generic form)
            out = {key: o.isoformat()}
        except Exception:  # noqa: BLE001
            return None
        if not _zone(tz, out):
            return None
    if o.fold:
        out["fold"] = 1
    return out


def _w_time(o: dt.time) -> dict[str, Any] | None:
    return _w_datetime(o, "$time")


def _w_date(o: dt.date) -> dict[str, Any]:
    return {"$date": o.isoformat()}


def _w_timedelta(o: dt.timedelta) -> dict[str, Any]:
    us = (o.days * 86400 + o.seconds) * _US + o.microseconds
    sign = "-" if us < 0 else ""
    s, f = divmod(abs(us), _US)
    m, s = divmod(s, 60)
    h, m = divmod(m, 60)
    d, h = divmod(h, 24)
    t = (f"{h}H" if h else "") + (f"{m}M" if m else "")
    if s or f:
        t += f"{s}.{f:06d}".rstrip("0").rstrip(".") + "S"
    text = "P" + (f"{d}D" if d else "") + ("T" + t if t else "")
    return {"$timedelta": sign + (text if text != "P" else "PT0S")}


def _w_decimal(o: decimal.Decimal) -> dict[str, Any]:
    return {"$decimal": str(o)}


def _w_uuid(o: uuid.UUID) -> dict[str, Any]:
    return {"$uuid": str(o)}


def _w_fraction(o: fractions.Fraction) -> dict[str, Any] | None:
    n, d = o.numerator, o.denominator
    if type(n) is not int or type(d) is not int or max(n.bit_length(), d.bit_length()) > _FRACTION_BITS:
        return None
    try:
        return {"$fraction": f"{n}/{d}"}
    except ValueError:  # a lowered sys.set_int_max_str_digits
        return None


#: exact type -> the readable form of a value (None: the generic handler form instead)
WRITERS: dict[type, Callable[[Any], dict[str, Any] | None]] = {
    dt.datetime: _w_datetime,
    dt.date: _w_date,
    dt.time: _w_time,
    dt.timedelta: _w_timedelta,
    decimal.Decimal: _w_decimal,
    uuid.UUID: _w_uuid,
    fractions.Fraction: _w_fraction,
}
#: exact type -> its handler's id (for the header's informational ``types``)
HANDLER_IDS: dict[type, str] = {
    dt.datetime: "datetime.datetime",
    dt.date: "datetime.date",
    dt.time: "datetime.time",
    dt.timedelta: "datetime.timedelta",
    decimal.Decimal: "decimal.Decimal",
    uuid.UUID: "uuid.UUID",
    fractions.Fraction: "fractions.Fraction",
}


# ----------------------------------------------------------------------------- reading


def _text(p: Any, name: str) -> str:
    if type(p) is not str:
        raise CorruptFileError(f'the payload of "${name}" must be a string, not {type(p).__name__}')
    return p


def _micro(text: str | None) -> int:
    return int(text.ljust(6, "0")) if text else 0


def _offset(m: re.Match[str], at: int) -> dt.timedelta | None:
    """The UTC offset matched by ``_OFFSET`` from group ``at`` on (None: no offset)."""
    whole = m.group(at)
    if whole is None:
        return None
    if whole == "Z":
        return dt.timedelta(0)
    sign, hh, mm, ss, us = m.group(at + 1, at + 2, at + 3, at + 4, at + 5)
    off = dt.timedelta(hours=int(hh), minutes=int(mm), seconds=int(ss or 0), microseconds=_micro(us))
    return -off if sign == "-" else off


def _tzinfo(name: str, off: dt.timedelta | None, extra: dict[str, Any]) -> Any:
    """The tzinfo of a ``$datetime``/``$time``: a named zone (``tz``), else the fixed
    offset of the text (with ``tzname``), else None (naive)."""
    key = extra.get("tz")
    tzname = extra.get("tzname")
    if key is not None:
        if type(key) is not str or tzname is not None:
            raise CorruptFileError(f'"${name}": "tz" must be a zone key (a string), without "tzname"')
        import zoneinfo

        try:
            return zoneinfo.ZoneInfo(key)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError) as exc:
            raise CorruptFileError(f"unknown time zone {key!r:.60}: {exc}") from None
    if off is None:
        if tzname is not None:
            raise CorruptFileError(f'"${name}" has a "tzname" but its text has no UTC offset')
        return None
    if tzname is None:
        return dt.timezone(off)
    if type(tzname) is not str:
        raise CorruptFileError(f'"${name}": "tzname" must be a string')
    return dt.timezone(off, tzname)


def _extra(name: str, tagobj: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The keys after the tag's own (``tz``, ``tzname``, ``fold``), and the fold."""
    extra = {k: v for k, v in tagobj.items() if k != "$" + name}
    bad = set(extra) - {"tz", "tzname", "fold"}
    if bad:
        raise CorruptFileError(f'"${name}" has unknown keys ({", ".join(repr(k) for k in sorted(bad)[:4])})')
    fold = extra.get("fold", 0)
    if type(fold) is not int or fold not in (0, 1):
        raise CorruptFileError(f'"${name}": "fold" must be 0 or 1, not {fold!r:.20}')
    return extra, fold


def _canonical(parse: Callable[[str], Any], text: str) -> Any:
    """``parse(text)`` when ``text`` is exactly the ``isoformat()`` of the result (what amber
    writes: the C parser, fast), else None (the strict parser then reads it, or says why)."""
    try:
        v = parse(text)
    except ValueError:
        return None
    return v if v.isoformat() == text else None


def _zoned(name: str, parse: Callable[[str], Any], p: Any, tagobj: dict[str, Any]) -> Any:
    """A ``$datetime``/``$time`` in the form amber writes, with its ``tz``/``tzname``/``fold``
    keys applied; None when the text is not in that form."""
    v = _canonical(parse, _text(p, name))
    if v is None or len(tagobj) == 1:
        return v
    extra, fold = _extra(name, tagobj)
    return v.replace(tzinfo=_tzinfo(name, v.utcoffset(), extra), fold=fold)


def _r_datetime(p: Any, tagobj: dict[str, Any]) -> dt.datetime:
    v = _zoned("datetime", dt.datetime.fromisoformat, p, tagobj)
    if v is not None:
        return v
    m = _DATETIME_RE.fullmatch(p)
    if m is None:
        raise CorruptFileError(f'"$datetime" {p!r:.60} is not an ISO 8601 date and time (2026-11-22T09:30:00)')
    extra, fold = _extra("datetime", tagobj)
    y, mo, d, h, mi, s = (int(x) for x in m.group(1, 2, 3, 4, 5, 6))
    return dt.datetime(y, mo, d, h, mi, s, _micro(m.group(7)), tzinfo=_tzinfo("datetime", _offset(m, 8), extra),
                       fold=fold)


def _r_time(p: Any, tagobj: dict[str, Any]) -> dt.time:
    v = _zoned("time", dt.time.fromisoformat, p, tagobj)
    if v is not None:
        return v
    m = _TIME_RE.fullmatch(p)
    if m is None:
        raise CorruptFileError(f'"$time" {p!r:.60} is not an ISO 8601 time (09:30:00)')
    extra, fold = _extra("time", tagobj)
    h, mi, s = (int(x) for x in m.group(1, 2, 3))
    return dt.time(h, mi, s, _micro(m.group(4)), tzinfo=_tzinfo("time", _offset(m, 5), extra), fold=fold)


def _r_date(p: Any, tagobj: dict[str, Any]) -> dt.date:
    v = _canonical(dt.date.fromisoformat, _text(p, "date"))
    if v is not None:
        return v
    m = _DATE_RE.fullmatch(p)
    if m is None:
        raise CorruptFileError(f'"$date" {p!r:.60} is not an ISO 8601 date (2024-02-29)')
    return dt.date(*(int(x) for x in m.groups()))


def _r_timedelta(p: Any, tagobj: dict[str, Any]) -> dt.timedelta:
    text = _text(p, "timedelta")
    m = _DURATION_RE.fullmatch(text)
    if m is None or text.endswith(("P", "T")):
        raise CorruptFileError(f'"$timedelta" {p!r:.60} is not an ISO 8601 duration (P1DT2H3M4.5S, -PT1S)')
    sign, d, h, mi, s, f = m.groups()
    us = (((int(d or 0) * 24 + int(h or 0)) * 60 + int(mi or 0)) * 60 + int(s or 0)) * _US + _micro(f)
    return dt.timedelta(microseconds=-us if sign else us)


def _r_decimal(p: Any, tagobj: dict[str, Any]) -> decimal.Decimal:
    text = _text(p, "decimal")
    try:
        v = decimal.Decimal(text)
    except (ValueError, decimal.InvalidOperation):
        v = None
    if v is not None and str(v) == text:  # as amber writes it
        return v
    if not _DECIMAL_RE.fullmatch(text):
        raise CorruptFileError(f'"$decimal" {p!r:.60} is not a decimal number')
    return decimal.Decimal(text)


def _r_uuid(p: Any, tagobj: dict[str, Any]) -> uuid.UUID:
    text = _text(p, "uuid")
    if not _UUID_RE.fullmatch(text):
        raise CorruptFileError(f'"$uuid" {p!r:.60} is not a UUID (8-4-4-4-12 hex digits)')
    return uuid.UUID(text)


def _r_fraction(p: Any, tagobj: dict[str, Any]) -> fractions.Fraction:
    m = _FRACTION_RE.fullmatch(_text(p, "fraction"))
    if m is None:
        raise CorruptFileError(f'"$fraction" {p!r:.60} is not a fraction "numerator/denominator"')
    n, d = int(m.group(1)), int(m.group(2))
    if d == 0:
        raise CorruptFileError(f'"$fraction" {p!r:.60} has a zero denominator')
    return fractions.Fraction(n, d)


_READERS: dict[str, Callable[[Any, dict[str, Any]], Any]] = {
    "$datetime": _r_datetime,
    "$date": _r_date,
    "$time": _r_time,
    "$timedelta": _r_timedelta,
    "$decimal": _r_decimal,
    "$uuid": _r_uuid,
    "$fraction": _r_fraction,
}
#: the JSON keys of the readable forms ("$datetime", ...)
KEYS = frozenset(_READERS)
#: their tag names
NAMES = frozenset(k[1:] for k in _READERS)
#: readable tag name -> the handler id of the type it holds (for ``inspect``)
TYPE_OF = {"datetime": "datetime.datetime", "date": "datetime.date", "time": "datetime.time",
           "timedelta": "datetime.timedelta", "decimal": "decimal.Decimal", "uuid": "uuid.UUID",
           "fraction": "fractions.Fraction"}
#: the tags that may carry keys after their own
_WITH_EXTRA = frozenset({"$datetime", "$time"})


def read(key: str, tagobj: dict[str, Any]) -> Any:
    """The value of the readable tag object ``tagobj``, whose first key is ``key``."""
    if len(tagobj) != 1 and key not in _WITH_EXTRA:
        raise CorruptFileError(f"the tag object {key!r} has other keys too: it holds one key")
    try:
        return _READERS[key](tagobj[key], tagobj)
    except (ValueError, OverflowError, decimal.InvalidOperation) as exc:
        raise CorruptFileError(f"malformed {key!r} {tagobj[key]!r:.60}: {exc}") from None
