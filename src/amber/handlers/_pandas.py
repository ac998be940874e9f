"""pandas frames, series, indexes, extension arrays and scalars. Never pickles.

A DataFrame keeps its block layout: each block of the frame's BlockManager becomes one entry
of ``blocks``, so a consolidated float block of 100 columns is one blob, written straight
from memory and loaded (or memory-mapped) as one array. Every column array is described by
an *array spec*, a map whose ``kind`` says how it is stored:

=========  ==============================================================================
kind       payload
=========  ==============================================================================
np         a non-object NumPy array: ``dtype``, ``shape``, ``order`` and its ``blob``
strs       an object array of ``str`` (missing: None, NaN, pd.NA): UTF-8 text joined with
           NUL, plus uint8 missing-value codes when there are any
obj        any other object array: ``items``, the node of the array (element-wise)
cat        Categorical: ``codes`` (np), ``cats`` (Index node), ``ordered``
dt / td    DatetimeArray (``a``: M8 array, ``tz``) / TimedeltaArray (``a``: m8 array)
period     PeriodArray: ``freq`` string and ``a``, the int64 ordinals
interval   IntervalArray: ``closed``, ``left`` and ``right`` specs
masked     Integer/Floating/BooleanArray: ``data`` and ``mask`` (np)
pystr      StringArray (python storage): ``na`` ("NA" or "nan") and ``v`` (strs or obj)
arrow      Arrow-backed arrays: ``pd`` ("arrow", "string" or "str"), then for flat types
           ``type`` (a serialized schema) and ``chunks`` (each chunk's buffers, written from
           Arrow's memory), for others ``ipc``: one Arrow IPC stream (validated in full)
npx        NumpyExtensionArray: ``v``, the spec of the NumPy array it wraps
=========  ==============================================================================

A buffer reference (``blob``, ``text``, ``miss``, Arrow buffers) is a blob number, or the
bytes themselves when there are at most 64 of them (no blob entry, no padding).
docs/handlers-pandas.md describes the nodes. Everything read from a node is checked (types,
lengths against the row count, dtypes, placements that cover every column exactly once)
before pandas sees it, and pandas' own validation (category codes, MultiIndex codes,
frequencies, interval bounds) runs on everything else; any failure is a CorruptFileError.
pyarrow is imported only for Arrow-backed arrays.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any, Callable

import numpy as np
import pandas as pd

from amber.errors import AmberError, CorruptFileError, DecodeError, UnsupportedTypeError
from amber.handlers._base import REGISTRY, DecodeContext, EncodeContext, Handler
from amber.security._arrowcheck import validate_arrow
from amber.handlers._builtins import _tz_in, _tz_out
from amber.handlers._numpy import _count, _filter_for, _shape, dtype_from_node, dtype_to_node, from_buffer

__all__: list[str] = []

_arrays = pd.arrays
#: ``PandasArray`` before pandas 2.1
_NumpyEA: type = getattr(_arrays, "NumpyExtensionArray", None) or _arrays.PandasArray
_NAType = type(pd.NA)
_NaTType = type(pd.NaT)
#: datetime64/timedelta64 units pandas holds in arrays
_UNITS = frozenset({"s", "ms", "us", "ns"})
#: dtype kinds a NumPy block or array may have (object arrays go through ``strs``/``obj``)
_BLOCK_KINDS = "biufcmM"
#: Buffers of at most this many bytes are kept inside the node instead of in a blob.
_INLINE = 64
#: missing-value codes of a ``strs`` array
_MISSING: tuple[Any, ...] = (None, None, float("nan"), pd.NA)

try:  # pandas >= 3 (the public way to build a frame from its blocks)
    from pandas.api.internals import create_dataframe_from_blocks as _from_blocks
except ImportError:  # pragma: no cover - older pandas
    _from_blocks = None


def _corrupt(what: str) -> CorruptFileError:
    return CorruptFileError(f"malformed pandas node: {what}")


def _guard(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn any error pandas or pyarrow raise on bad input into a CorruptFileError."""

    def wrapper(self: Any, node: Any, ctx: DecodeContext) -> Any:
        try:
            return fn(self, node, ctx)
        except AmberError:
            raise
        except RecursionError:
            raise
        except Exception as exc:
            raise CorruptFileError(
                f"malformed {self.handler_id} node: {type(exc).__name__}: {exc}"[:500]
            ) from None

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


def _spec(x: Any, *keys: str) -> dict[str, Any]:
    if type(x) is not dict:
        raise _corrupt(f"an array description is a {type(x).__name__}, not a map")
    for k in keys:
        if k not in x:
            raise _corrupt(f"array description of kind {x.get('kind')!r} lacks {k!r}")
    return x


def _int(x: Any, what: str, lo: int = 0) -> int:
    if type(x) is not int or x < lo:
        raise _corrupt(f"{what} is {x!r:.40}, not an integer >= {lo}")
    return x


def _buf_out(raw: memoryview, ctx: EncodeContext, filt: Any = None) -> int | bytes:
    """A buffer reference: the bytes themselves when tiny, else a blob number."""
    if raw.nbytes <= _INLINE:
        return raw.tobytes()
    return ctx.add_blob(raw, filt)


def _buf_nbytes(ref: Any, ctx: DecodeContext) -> int:
    return len(ref) if type(ref) is bytes else ctx.blob_nbytes(ref)


def _buf_in(ref: Any, ctx: DecodeContext, data_only: bool = False) -> Any:
    """The bytes behind a buffer reference (writable when inline); ``data_only``: see
    ``DecodeContext.blob``."""
    return bytearray(ref) if type(ref) is bytes else ctx.blob(ref, data_only=data_only)


# ---------------------------------------------------------------------------------------
# NumPy arrays inside a spec
# ---------------------------------------------------------------------------------------


def _np_out(a: np.ndarray, ctx: EncodeContext) -> dict[str, Any]:
    """A non-object array as ``{dtype, shape, order, blob}``, written from its own memory."""
    order = "C"
    if a.flags.c_contiguous:
        flat = a.reshape(-1)
    elif a.flags.f_contiguous:
        order, flat = "F", a.T.reshape(-1)
    else:
        flat = np.ascontiguousarray(a).reshape(-1)
    raw = memoryview(flat.view(np.uint8)) if a.dtype.itemsize else memoryview(b"")
    ref = _buf_out(raw, ctx, _filter_for(a, order))
    return {"dtype": dtype_to_node(a.dtype), "shape": list(a.shape), "order": order, "blob": ref}


def _np_in(x: Any, ctx: DecodeContext, kinds: str, ndim: int, n: int | None) -> np.ndarray:
    """The array of an np description: ``ndim`` dimensions, ``n`` items along the last one
    (when given), a dtype of one of ``kinds``; native byte order for datetimes."""
    x = _spec(x, "dtype", "shape", "blob")
    dt = dtype_from_node(x["dtype"])
    if dt.kind not in kinds or dt.fields is not None or dt.subdtype is not None:
        raise _corrupt(f"array dtype {dt} is not allowed here (kinds {kinds!r})")
    if dt.kind in "mM":
        unit, step = np.datetime_data(dt)
        if unit not in _UNITS or step != 1 or not dt.isnative:
            raise _corrupt(f"pandas holds no {dt} arrays")
    shape = _shape(x["shape"])
    if len(shape) != ndim or (n is not None and shape[-1] != n):
        raise _corrupt(f"array of shape {shape} where {ndim} dimension(s) of {n} rows belong")
    order = x.get("order", "C")
    if order not in ("C", "F"):
        raise _corrupt(f"array order {order!r} is neither 'C' nor 'F'")
    need = _count(shape) * dt.itemsize
    ref = x["blob"]
    if _buf_nbytes(ref, ctx) != need:
        raise _corrupt(f"array of shape {shape} and dtype {dt} needs {need} bytes, its blob has {_buf_nbytes(ref, ctx)}")
    buf = _buf_in(ref, ctx, data_only=True)  # array values: checked by their users, never parsed
    if len(buf) != need:
        raise _corrupt(f"array of shape {shape} and dtype {dt} needs {need} bytes, got {len(buf)}")
    return from_buffer(buf, dt, shape, order)


# ---------------------------------------------------------------------------------------
# object arrays: strings in one blob, anything else element by element
# ---------------------------------------------------------------------------------------


def _strs_out(a: np.ndarray, ctx: EncodeContext) -> dict[str, Any] | None:
    """An object array of exact ``str`` (missing: None, float NaN, pd.NA) as NUL-joined
    UTF-8 text, or None when it holds anything else (or a string with a NUL)."""
    items = a.tolist()
    n = len(items)
    kinds = set(map(type, items))
    if not kinds <= {str, type(None), float, _NAType}:
        return None
    codes = None
    if kinds - {str}:
        codes = np.zeros(n, dtype=np.uint8)
        for i in np.flatnonzero(pd.isna(a)).tolist():
            v = items[i]
            if v is None:
                codes[i] = 1
            elif type(v) is float:
                codes[i] = 2
            elif v is pd.NA:
                codes[i] = 3
            else:
                return None
            items[i] = ""
    try:
        text = "\0".join(items)
    except TypeError:  # a float that is not NaN
        return None
    if n and text.count("\0") != n - 1:
        return None
    data = text.encode("utf-8", "surrogatepass")
    return {
        "kind": "strs",
        "n": n,
        "text": _buf_out(memoryview(data), ctx),
        "miss": None if codes is None else _buf_out(memoryview(codes), ctx),
    }


def _strs_in(x: dict[str, Any], ctx: DecodeContext, n: int | None) -> np.ndarray:
    x = _spec(x, "n", "text", "miss")
    count = _int(x["n"], "string count")
    if n is not None and count != n:
        raise _corrupt(f"{count} strings where {n} rows belong")
    if count == 0 and _buf_nbytes(x["text"], ctx):
        raise _corrupt("text for an empty string array")
    text = str(_buf_in(x["text"], ctx), "utf-8", "surrogatepass")
    parts = text.split("\0") if count else []
    if len(parts) != count:
        raise _corrupt(f"string array of {count} items holds {len(parts)}")
    out = np.empty(count, dtype=object)
    out[:] = parts
    if x["miss"] is not None:
        codes = _np_in(
            {"dtype": "|u1", "shape": [count], "blob": x["miss"]}, ctx, "u", 1, count
        )
        if count and int(codes.max()) > 3:
            raise _corrupt("missing-value code out of range")
        for code in (1, 2, 3):
            where = codes == code
            if where.any():
                out[where] = _MISSING[code]
    return out


def _obj_out(a: np.ndarray, ctx: EncodeContext) -> dict[str, Any]:
    if a.ndim != 1:
        raise UnsupportedTypeError(type(a), "", f"{a.ndim}-D object arrays inside pandas objects are not supported")
    spec = _strs_out(a, ctx)
    if spec is not None:
        return spec
    # element by element; a fresh array, so it is never taken for a shared one
    return {"kind": "obj", "items": ctx.encode(np.array(a, dtype=object, copy=True))}


def _obj_in(x: dict[str, Any], ctx: DecodeContext, n: int | None) -> np.ndarray:
    kind = x.get("kind")
    if kind == "strs":
        return _strs_in(x, ctx, n)
    if kind != "obj":
        raise _corrupt(f"array kind {kind!r} where an object array belongs")
    a = ctx.decode(_spec(x, "items")["items"])
    if type(a) is not np.ndarray or a.dtype != object or a.ndim != 1 or (n is not None and len(a) != n):
        raise _corrupt(f"an object column is not a 1-D object array of {n} items")
    return a


# ---------------------------------------------------------------------------------------
# Arrow-backed arrays: one IPC stream per array
# ---------------------------------------------------------------------------------------


def _pyarrow() -> Any:
    try:
        import pyarrow as pa
        import pyarrow.ipc  # noqa: F401
    except ImportError:
        raise DecodeError(
            "this file holds Arrow-backed pandas arrays, which need pyarrow: pip install pyarrow"
        ) from None
    return pa


def _flat(pa: Any, t: Any) -> bool:
    """Arrow types whose arrays are just their own buffers (no children, dictionaries,
    extension metadata or variadic buffers): these are written buffer by buffer."""
    return (
        t.num_fields == 0
        and not isinstance(t, pa.ExtensionType)
        and not pa.types.is_dictionary(t)
        and not pa.types.is_string_view(t)
        and not pa.types.is_binary_view(t)
    )


def _arrow_out(chunked: Any, ctx: EncodeContext) -> dict[str, Any]:
    """``{"type": schema bytes, "chunks": [{"n", "bufs": [blob or None]}]}`` when every
    chunk of a flat type owns its buffers (written straight from Arrow's memory), else
    ``{"ipc": blob}``: one Arrow IPC stream, one record batch per chunk."""
    pa = _pyarrow()
    ctx.note_package("pyarrow")
    schema = pa.schema([pa.field("v", chunked.type)])
    if _flat(pa, chunked.type) and all(
        c.offset == 0 and c.get_total_buffer_size() <= c.nbytes + 64 for c in chunked.chunks
    ):
        chunks = []
        for c in chunked.chunks:
            bufs = [None if b is None else _buf_out(memoryview(b), ctx) for b in c.buffers()]
            chunks.append({"n": len(c), "bufs": bufs})
        return {"type": schema.serialize().to_pybytes(), "chunks": chunks}
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as w:
        for chunk in chunked.chunks:
            w.write_batch(pa.record_batch([chunk], schema=schema))
    return {"ipc": ctx.add_blob(memoryview(sink.getvalue()))}


def _fb_field(md: memoryview, table: int, i: int) -> int | None:
    """Position of field ``i`` of the flatbuffer table at ``table`` (None when absent)."""
    vtable = table - int.from_bytes(md[table : table + 4], "little", signed=True)
    if not 0 <= vtable <= len(md) - 4:
        raise _corrupt("an Arrow message's metadata is malformed")
    vt_size = int.from_bytes(md[vtable : vtable + 2], "little")
    if 4 + 2 * i + 2 > vt_size or vtable + 4 + 2 * i + 2 > len(md):
        return None
    off = int.from_bytes(md[vtable + 4 + 2 * i : vtable + 6 + 2 * i], "little")
    return table + off if off else None


def _fb_table(md: memoryview, pos: int) -> int:
    """The table an offset field at ``pos`` points to."""
    out = pos + int.from_bytes(md[pos : pos + 4], "little")
    if not 0 <= out <= len(md) - 4:
        raise _corrupt("an Arrow message's metadata is malformed")
    return out


def _refuse_compressed(pa: Any, buf: Any) -> None:
    """Refuse IPC streams with compressed bodies (amber never writes them): a compressed
    buffer declares its own decompressed size, which nothing in the file bounds."""
    for msg in pa.ipc.MessageReader.open_stream(buf):
        if msg.type not in ("record batch", "dictionary"):
            continue
        md = memoryview(msg.metadata).cast("B")
        # Message {version, header_type, header, bodyLength, custom_metadata}
        header = _fb_field(md, int.from_bytes(md[0:4], "little"), 2)
        if header is None:
            raise _corrupt("an Arrow message has no header")
        batch: int | None = _fb_table(md, header)
        if msg.type == "dictionary":  # DictionaryBatch {id, data: RecordBatch, isDelta}
            data = _fb_field(md, batch, 1)
            batch = None if data is None else _fb_table(md, data)
        # RecordBatch {length, nodes, buffers, compression, ...}
        if batch is not None and _fb_field(md, batch, 3) is not None:
            raise _corrupt("an Arrow stream has compressed buffers, which amber does not write")


def _arrow_in(x: dict[str, Any], ctx: DecodeContext, n: int | None) -> Any:
    """The ChunkedArray of an ``arrow`` spec, every chunk validated in full."""
    pa = _pyarrow()
    if "ipc" in x:
        buf = pa.py_buffer(ctx.blob(x["ipc"]))
        _refuse_compressed(pa, buf)
        reader = pa.ipc.open_stream(buf)
        schema = reader.schema
        batches = list(reader)
        if any(b.num_columns != 1 for b in batches):
            raise _corrupt("an Arrow batch holds more than one column")
        chunks = [b.column(0) for b in batches]
    else:
        x = _spec(x, "type", "chunks")
        if type(x["type"]) is not bytes or type(x["chunks"]) is not tuple:
            raise _corrupt("malformed Arrow array description")
        schema = pa.ipc.read_schema(pa.py_buffer(x["type"]))
        if len(schema) == 1 and not _flat(pa, schema.field(0).type):
            raise _corrupt(f"Arrow type {schema.field(0).type} cannot be stored buffer by buffer")
        chunks = []
        for c in x["chunks"]:
            c = _spec(c, "n", "bufs")
            typ = schema.field(0).type if len(schema) == 1 else None
            if typ is None or type(c["bufs"]) is not tuple or len(c["bufs"]) != typ.num_buffers:
                raise _corrupt("an Arrow chunk has the wrong number of buffers")
            bufs = [None if b is None else pa.py_buffer(_buf_in(b, ctx)) for b in c["bufs"]]
            chunks.append(pa.Array.from_buffers(typ, _int(c["n"], "Arrow chunk length"), bufs, null_count=-1))
    if len(schema) != 1:
        raise _corrupt("an Arrow stream holds more than one column")
    rows = 0
    for col in chunks:
        validate_arrow(pa, col)
        rows += len(col)
    if n is not None and rows != n:
        raise _corrupt(f"Arrow array of {rows} rows where {n} belong")
    return pa.chunked_array(chunks, type=schema.field(0).type)


# ---------------------------------------------------------------------------------------
# any 1-D array of a pandas object
# ---------------------------------------------------------------------------------------


def _interval_side(arr: Any, side: str) -> Any:
    v = getattr(arr, "_" + side, None)
    return getattr(arr, side)._values if v is None else v


def _arr_out(v: Any, ctx: EncodeContext) -> dict[str, Any]:
    """The spec of a 1-D array (NumPy or extension) of a Series, Index or column."""
    if isinstance(v, np.ndarray):
        if v.dtype == object:
            return _obj_out(v, ctx)
        if v.dtype.kind not in _BLOCK_KINDS:
            raise UnsupportedTypeError(type(v), "", f"pandas arrays of dtype {v.dtype} are not supported")
        return {"kind": "np", **_np_out(v, ctx)}
    if getattr(v, "ndim", 1) != 1:
        raise UnsupportedTypeError(type(v), "", "2-D pandas extension arrays are not supported")
    t = type(v)
    if t is _arrays.Categorical:
        codes = _np_out(np.asarray(v.codes), ctx)
        return {"kind": "cat", "codes": codes, "cats": ctx.encode(v.categories), "ordered": bool(v.ordered)}
    if t is _arrays.DatetimeArray:
        return {"kind": "dt", "a": _np_out(v._ndarray, ctx), "tz": _tz_out(v.tz, ctx)}
    if t is _arrays.TimedeltaArray:
        return {"kind": "td", "a": _np_out(v._ndarray, ctx)}
    if t is _arrays.PeriodArray:
        freq = v.freqstr
        if pd.PeriodDtype(freq) != v.dtype:
            raise UnsupportedTypeError(t, "", f"period dtype {v.dtype} does not round-trip through {freq!r}")
        return {"kind": "period", "freq": freq, "a": _np_out(v.asi8, ctx)}
    if t is _arrays.IntervalArray:
        left, right = _interval_side(v, "left"), _interval_side(v, "right")
        return {"kind": "interval", "closed": v.closed, "left": _arr_out(left, ctx), "right": _arr_out(right, ctx)}
    if t in (_arrays.IntegerArray, _arrays.FloatingArray, _arrays.BooleanArray):
        return {"kind": "masked", "data": _np_out(v._data, ctx), "mask": _np_out(v._mask, ctx)}
    if t is _arrays.StringArray:
        na = "NA" if v.dtype.na_value is pd.NA else "nan"
        return {"kind": "pystr", "na": na, "v": _obj_out(v._ndarray, ctx)}
    if t in _ARROW_TYPES:
        dtype = v.dtype
        if isinstance(dtype, pd.StringDtype):
            kind = "string" if dtype.na_value is pd.NA else "str"
        elif isinstance(dtype, pd.ArrowDtype):
            kind = "arrow"
        else:
            raise UnsupportedTypeError(t, "", f"Arrow-backed dtype {dtype} is not supported")
        chunked = getattr(v, "_pa_array", None)
        if chunked is None:
            chunked = v.__arrow_array__()
        return {"kind": "arrow", "pd": kind, **_arrow_out(chunked, ctx)}
    if t is _NumpyEA:
        return {"kind": "npx", "v": _arr_out(v._ndarray, ctx)}
    raise UnsupportedTypeError(t, "", f"pandas arrays of dtype {getattr(v, 'dtype', '?')} are not supported")


def _ea_in(x: Any, ctx: DecodeContext, n: int | None) -> Any:
    """Inverse of :func:`_arr_out`: a NumPy array or an ExtensionArray of ``n`` items."""
    x = _spec(x, "kind")
    kind = x["kind"]
    if kind == "np":
        return _np_in(x, ctx, _BLOCK_KINDS, 1, n)
    if kind in ("strs", "obj"):
        return _obj_in(x, ctx, n)
    if kind == "cat":
        x = _spec(x, "codes", "cats", "ordered")
        codes = _np_in(x["codes"], ctx, "i", 1, n)
        cats = ctx.decode(x["cats"])
        if not isinstance(cats, pd.Index) or type(x["ordered"]) is not bool:
            raise _corrupt("categories are not an Index, or 'ordered' is not a bool")
        dtype = pd.CategoricalDtype(cats, ordered=x["ordered"])
        return pd.Categorical.from_codes(codes, dtype=dtype, validate=True)
    if kind == "dt":
        x = _spec(x, "a", "tz")
        a = _np_in(x["a"], ctx, "M", 1, n)
        tz = _tz_in(x["tz"], ctx)
        if tz is not None and not isinstance(tz, _dt.tzinfo):
            raise _corrupt("a time zone is not a tzinfo")
        unit = np.datetime_data(a.dtype)[0]
        dtype = a.dtype if tz is None else pd.DatetimeTZDtype(unit=unit, tz=tz)
        return _arrays.DatetimeArray._simple_new(a, dtype=dtype)
    if kind == "td":
        a = _np_in(_spec(x, "a")["a"], ctx, "m", 1, n)
        return _arrays.TimedeltaArray._simple_new(a, dtype=a.dtype)
    if kind == "period":
        x = _spec(x, "freq", "a")
        if type(x["freq"]) is not str or len(x["freq"]) > 64:
            raise _corrupt("period frequency is not a short string")
        a = _np_in(x["a"], ctx, "i", 1, n)
        if a.dtype != np.int64:
            raise _corrupt(f"period ordinals are {a.dtype}, not int64")
        return _arrays.PeriodArray(a, dtype=pd.PeriodDtype(x["freq"]))
    if kind == "interval":
        x = _spec(x, "closed", "left", "right")
        if x["closed"] not in ("left", "right", "both", "neither"):
            raise _corrupt(f"interval closed={x['closed']!r:.40}")
        left = _ea_in(x["left"], ctx, n)
        right = _ea_in(x["right"], ctx, n)
        if left.dtype != right.dtype:
            raise _corrupt("interval bounds differ in dtype")
        dtype = pd.IntervalDtype(left.dtype, closed=x["closed"])
        return _arrays.IntervalArray.from_arrays(left, right, closed=x["closed"], dtype=dtype, copy=False)
    if kind == "masked":
        x = _spec(x, "data", "mask")
        data = _np_in(x["data"], ctx, "biuf", 1, n)
        mask = _np_in(x["mask"], ctx, "b", 1, len(data))
        cls = {"b": _arrays.BooleanArray, "f": _arrays.FloatingArray}.get(data.dtype.kind, _arrays.IntegerArray)
        return cls(data, mask)
    if kind == "pystr":
        x = _spec(x, "na", "v")
        if x["na"] not in ("NA", "nan"):
            raise _corrupt(f"string na_value {x['na']!r:.40}")
        values = _obj_in(_spec(x["v"], "kind"), ctx, n)
        dtype = pd.StringDtype("python", na_value=pd.NA if x["na"] == "NA" else np.nan)
        return _arrays.StringArray(values, dtype=dtype)
    if kind == "arrow":
        chunked = _arrow_in(_spec(x, "pd"), ctx, n)
        if x["pd"] == "arrow":
            return _arrays.ArrowExtensionArray(chunked)
        if x["pd"] in ("str", "string"):
            dtype = pd.StringDtype("pyarrow", na_value=np.nan if x["pd"] == "str" else pd.NA)
            return _arrays.ArrowStringArray(chunked, dtype=dtype)
        raise _corrupt(f"Arrow array of pandas kind {x['pd']!r:.40}")
    if kind == "npx":
        inner = _ea_in(_spec(x, "v")["v"], ctx, n)
        if not isinstance(inner, np.ndarray):
            raise _corrupt("a NumpyExtensionArray wraps no NumPy array")
        return _NumpyEA(inner)
    raise _corrupt(f"unknown array kind {kind!r:.40}")


def _arrow_types() -> tuple[type, ...]:
    out = [_arrays.ArrowExtensionArray, _arrays.ArrowStringArray]
    try:  # pandas 2.x: the NaN-semantics string array
        from pandas.core.arrays.string_arrow import ArrowStringArrayNumpySemantics

        out.append(ArrowStringArrayNumpySemantics)
    except ImportError:
        pass
    return tuple(out)


_ARROW_TYPES = _arrow_types()


# ---------------------------------------------------------------------------------------
# handlers
# ---------------------------------------------------------------------------------------


def _attrs_out(obj: Any, ctx: EncodeContext) -> dict[str, Any]:
    out: dict[str, Any] = {"attrs": ctx.encode(obj.attrs, ".attrs") if obj.attrs else None}
    if not obj.flags.allows_duplicate_labels:
        out["dups"] = False
    return out


def _attrs_in(obj: Any, meta: dict[str, Any], ctx: DecodeContext) -> Any:
    if meta.get("attrs") is not None:
        attrs = ctx.decode(meta["attrs"])
        if type(attrs) is not dict:
            raise _corrupt("attrs is not a dict")
        obj.attrs = attrs
    dups = meta.get("dups", True)
    if type(dups) is not bool:
        raise _corrupt("allows_duplicate_labels is not a bool")
    if not dups:
        obj.flags.allows_duplicate_labels = False  # checks the labels
    return obj


def _meta(node: Any, handler: Handler) -> dict[str, Any]:
    if len(node) != 2 or type(node[1]) is not dict:
        raise CorruptFileError(f"malformed {handler.handler_id} node")
    return node[1]


def _index_in(node: Any, ctx: DecodeContext, what: str) -> pd.Index:
    idx = ctx.decode(node)
    if not isinstance(idx, pd.Index):
        raise _corrupt(f"the {what} is a {type(idx).__name__}, not an Index")
    return idx


class DataFrameHandler(Handler):
    """``[tag, {index, columns, blocks, attrs[, dups]}]``: one entry per block of the frame:
    ``{"at": [column positions], "np": spec}`` for a 2-D NumPy block (numbers, naive
    datetimes), ``{"at": [...], "obj": [spec per column]}`` for an object block and
    ``{"at": [position], "ea": spec}`` for an extension array column."""

    handler_id = "pandas.DataFrame"
    types = (pd.DataFrame,)

    def encode(self, df: pd.DataFrame, ctx: EncodeContext) -> list[Any]:
        ctx.note_package("pandas")
        index = ctx.encode(df.index, ".index")
        columns = ctx.encode(df.columns, ".columns")
        blocks: list[dict[str, Any]] = []
        names = df.columns
        for blk in df._mgr.blocks:
            locs = blk.mgr_locs.as_array.tolist()
            v = blk.values
            try:
                if isinstance(v, np.ndarray) and v.dtype == object:
                    blocks.append({"at": locs, "obj": [_obj_out(v[i], ctx) for i in range(len(locs))]})
                elif isinstance(v, np.ndarray) or (isinstance(v.dtype, np.dtype) and v.dtype.kind in "mM"):
                    a = v if isinstance(v, np.ndarray) else v._ndarray
                    if a.dtype.kind not in _BLOCK_KINDS or a.ndim != 2:
                        raise UnsupportedTypeError(type(v), "", f"pandas blocks of dtype {a.dtype} are not supported")
                    blocks.append({"at": locs, "np": _np_out(a, ctx)})
                elif v.ndim == 2:  # tz-aware datetimes, periods: one column at a time
                    blocks.extend({"at": [loc], "ea": _arr_out(v[i], ctx)} for i, loc in enumerate(locs))
                else:
                    blocks.append({"at": locs, "ea": _arr_out(v, ctx)})
            except AmberError as exc:
                exc.__dict__.setdefault("_parts", []).append(f"[{names[locs[0]]!r}]")
                raise
        return [self.tag, {"index": index, "columns": columns, "blocks": blocks, **_attrs_out(df, ctx)}]

    @_guard
    def decode(self, node: Any, ctx: DecodeContext) -> Any:
        meta = _meta(node, self)
        index = _index_in(meta["index"], ctx, "row index")
        columns = _index_in(meta["columns"], ctx, "column index")
        blocks = meta["blocks"]
        if type(blocks) is not tuple:
            raise _corrupt("blocks is not a list")
        nrows, ncols = len(index), len(columns)
        seen = np.zeros(ncols, dtype=bool)
        built: list[tuple[Any, np.ndarray]] = []
        for b in blocks:
            if type(b) is not dict or type(b.get("at")) is not tuple or not b["at"]:
                raise _corrupt("a block has no column positions")
            at = b["at"]
            if not all(type(i) is int and 0 <= i < ncols for i in at):
                raise _corrupt(f"block positions {at!r:.80} fall outside the {ncols} columns")
            place = np.array(at, dtype=np.intp)
            if seen[place].any() or len(np.unique(place)) != len(place):
                raise _corrupt("two blocks hold the same column")
            seen[place] = True
            k = len(at)
            if "np" in b:
                a = _np_in(b["np"], ctx, _BLOCK_KINDS, 2, nrows)
                if a.shape[0] != k:
                    raise _corrupt(f"a block of {a.shape[0]} columns is placed at {k} positions")
            elif "obj" in b:
                cols = b["obj"]
                if type(cols) is not tuple or len(cols) != k:
                    raise _corrupt("an object block's columns do not match its positions")
                a = np.empty((k, nrows), dtype=object)
                for i, c in enumerate(cols):
                    a[i] = _obj_in(_spec(c, "kind"), ctx, nrows)
            elif "ea" in b:
                if k != 1:
                    raise _corrupt("an extension array block spans more than one column")
                a = _ea_in(b["ea"], ctx, nrows)
                if isinstance(a, np.ndarray):
                    a = a.reshape(1, nrows)
            else:
                raise _corrupt("a block has no values")
            built.append((a, place))
        if not seen.all():
            raise _corrupt(f"columns {np.flatnonzero(~seen)[:10].tolist()} are in no block")
        df = _frame(built, index, columns)
        return _attrs_in(df, meta, ctx)


def _frame(blocks: list[tuple[Any, np.ndarray]], index: pd.Index, columns: pd.Index) -> pd.DataFrame:
    if _from_blocks is not None:
        return _from_blocks(blocks, index=index, columns=columns)
    cols: dict[int, Any] = {}  # pragma: no cover - pandas < 3
    for a, place in blocks:
        for i, p in enumerate(place.tolist()):
            cols[p] = a[i] if isinstance(a, np.ndarray) else a
    df = pd.DataFrame({p: cols[p] for p in range(len(columns))}, index=index, copy=False)
    df.columns = columns
    return df


class SeriesHandler(Handler):
    """``[tag, {index, name, v, attrs[, dups]}]``: ``v`` is the spec of the values."""

    handler_id = "pandas.Series"
    types = (pd.Series,)

    def encode(self, s: pd.Series, ctx: EncodeContext) -> list[Any]:
        ctx.note_package("pandas")
        index = ctx.encode(s.index, ".index")
        name = ctx.encode(s.name, ".name")
        return [self.tag, {"index": index, "name": name, "v": _arr_out(s._values, ctx), **_attrs_out(s, ctx)}]

    @_guard
    def decode(self, node: Any, ctx: DecodeContext) -> Any:
        meta = _meta(node, self)
        index = _index_in(meta["index"], ctx, "index")
        name = ctx.decode(meta["name"])
        values = _ea_in(meta["v"], ctx, len(index))
        dtype = values.dtype if isinstance(values, np.ndarray) else None
        s = pd.Series(values, index=index, name=name, dtype=dtype, copy=False)
        return _attrs_in(s, meta, ctx)


_INDEX_TYPES = (pd.Index, pd.DatetimeIndex, pd.TimedeltaIndex, pd.PeriodIndex, pd.IntervalIndex, pd.CategoricalIndex)


class IndexHandler(Handler):
    """``[tag, {v, name[, freq]}]`` for Index and its array-backed subclasses (the class
    follows from the values: datetimes give a DatetimeIndex, categoricals a
    CategoricalIndex...); ``freq`` is the frequency string of a DatetimeIndex or
    TimedeltaIndex that has one."""

    handler_id = "pandas.Index"
    types = _INDEX_TYPES

    def encode(self, idx: pd.Index, ctx: EncodeContext) -> list[Any]:
        ctx.note_package("pandas")
        meta: dict[str, Any] = {"v": _arr_out(idx._values, ctx), "name": ctx.encode(idx.name, ".name")}
        freq = getattr(idx, "freq", None) if isinstance(idx, (pd.DatetimeIndex, pd.TimedeltaIndex)) else None
        if freq is not None:
            text = freq.freqstr
            if pd.tseries.frequencies.to_offset(text) != freq:
                raise UnsupportedTypeError(
                    type(idx), "", f"its frequency {freq!r} does not round-trip through {text!r}: set .freq = None"
                )
            meta["freq"] = text
        return [self.tag, meta]

    @_guard
    def decode(self, node: Any, ctx: DecodeContext) -> Any:
        meta = _meta(node, self)
        values = _ea_in(meta["v"], ctx, None)
        name = ctx.decode(meta["name"])
        freq = meta.get("freq")
        if freq is not None:
            if type(freq) is not str or len(freq) > 64:
                raise _corrupt("index frequency is not a short string")
            if isinstance(values, _arrays.DatetimeArray) or (isinstance(values, np.ndarray) and values.dtype.kind == "M"):
                return pd.DatetimeIndex(values, freq=freq, name=name, copy=False)
            if isinstance(values, _arrays.TimedeltaArray) or (isinstance(values, np.ndarray) and values.dtype.kind == "m"):
                return pd.TimedeltaIndex(values, freq=freq, name=name, copy=False)
            raise _corrupt("a frequency on an index that holds no datetimes or timedeltas")
        dtype = values.dtype if isinstance(values, np.ndarray) else None
        return pd.Index(values, dtype=dtype, name=name, copy=False)


class RangeIndexHandler(Handler):
    """``[tag, start, stop, step, name]``."""

    handler_id = "pandas.RangeIndex"
    types = (pd.RangeIndex,)

    def encode(self, idx: pd.RangeIndex, ctx: EncodeContext) -> list[Any]:
        ctx.note_package("pandas")
        return [self.tag, int(idx.start), int(idx.stop), int(idx.step), ctx.encode(idx.name, ".name")]

    @_guard
    def decode(self, node: Any, ctx: DecodeContext) -> Any:
        if len(node) != 5 or not all(type(v) is int for v in node[1:4]) or node[3] == 0:
            raise CorruptFileError("malformed pandas.RangeIndex node")
        return pd.RangeIndex(node[1], node[2], node[3], name=ctx.decode(node[4]))


class MultiIndexHandler(Handler):
    """``[tag, {levels: [Index nodes], codes: [np specs], names, sortorder}]``."""

    handler_id = "pandas.MultiIndex"
    types = (pd.MultiIndex,)

    def encode(self, mi: pd.MultiIndex, ctx: EncodeContext) -> list[Any]:
        ctx.note_package("pandas")
        levels = [ctx.encode(lev, f".levels[{i}]") for i, lev in enumerate(mi.levels)]
        codes = [_np_out(np.asarray(c), ctx) for c in mi.codes]
        names = ctx.encode(list(mi.names), ".names")
        return [self.tag, {"levels": levels, "codes": codes, "names": names, "sortorder": mi.sortorder}]

    @_guard
    def decode(self, node: Any, ctx: DecodeContext) -> Any:
        meta = _meta(node, self)
        levels, codes = meta["levels"], meta["codes"]
        if type(levels) is not tuple or type(codes) is not tuple or len(levels) != len(codes) or not levels:
            raise _corrupt("MultiIndex levels and codes differ in number")
        levs = [_index_in(lev, ctx, "MultiIndex level") for lev in levels]
        cods: list[np.ndarray] = []
        for c in codes:
            cods.append(_np_in(c, ctx, "i", 1, len(cods[0]) if cods else None))
        names = ctx.decode(meta["names"])
        if type(names) is not list or len(names) != len(levs):
            raise _corrupt("MultiIndex names do not match its levels")
        sortorder = meta.get("sortorder")
        if sortorder is not None:
            _int(sortorder, "sortorder")
        return pd.MultiIndex(levels=levs, codes=cods, names=names, sortorder=sortorder, verify_integrity=True)


class ArrayHandler(Handler):
    """``[tag, spec]`` for a pandas extension array saved on its own."""

    handler_id = "pandas.array"
    types = tuple(
        {
            _arrays.Categorical, _arrays.DatetimeArray, _arrays.TimedeltaArray, _arrays.PeriodArray,
            _arrays.IntervalArray, _arrays.IntegerArray, _arrays.FloatingArray, _arrays.BooleanArray,
            _arrays.StringArray, _NumpyEA, *_ARROW_TYPES,
        }
    )

    def encode(self, arr: Any, ctx: EncodeContext) -> list[Any]:
        ctx.note_package("pandas")
        return [self.tag, _arr_out(arr, ctx)]

    @_guard
    def decode(self, node: Any, ctx: DecodeContext) -> Any:
        if len(node) != 2:
            raise CorruptFileError("malformed pandas.array node")
        out = _ea_in(node[1], ctx, None)
        if isinstance(out, np.ndarray):
            raise _corrupt("a pandas array node holds a bare NumPy array")
        return out


# ---------------------------------------------------------------------------------------
# scalars (they turn up in object columns)
# ---------------------------------------------------------------------------------------


def _unit_value(x: Any) -> tuple[int, str]:
    """The integer value and unit of a Timestamp or Timedelta."""
    a = x.asm8
    unit = np.datetime_data(a.dtype)[0]
    return int(a.view(np.int64)), unit


class TimestampHandler(Handler):
    """``[tag, value, unit, tz, fold]``: ``value`` in ``unit`` since the epoch (UTC)."""

    handler_id = "pandas.Timestamp"
    types = (pd.Timestamp,)

    def encode(self, ts: pd.Timestamp, ctx: EncodeContext) -> list[Any]:
        ctx.note_package("pandas")
        value, unit = _unit_value(ts)
        return [self.tag, value, unit, _tz_out(ts.tz, ctx), ts.fold]

    @_guard
    def decode(self, node: Any, ctx: DecodeContext) -> Any:
        if len(node) != 5 or type(node[1]) is not int or node[2] not in _UNITS or node[4] not in (0, 1):
            raise CorruptFileError("malformed pandas.Timestamp node")
        tz = _tz_in(node[3], ctx)
        ts = pd.Timestamp(np.datetime64(node[1], node[2]))
        if ts is pd.NaT:
            raise _corrupt("a Timestamp holds NaT")
        if tz is not None:
            return ts.tz_localize("UTC").tz_convert(tz)
        return ts.replace(fold=node[4]) if node[4] else ts


class TimedeltaHandler(Handler):
    """``[tag, value, unit]``."""

    handler_id = "pandas.Timedelta"
    types = (pd.Timedelta,)

    def encode(self, td: pd.Timedelta, ctx: EncodeContext) -> list[Any]:
        ctx.note_package("pandas")
        return [self.tag, *_unit_value(td)]

    @_guard
    def decode(self, node: Any, ctx: DecodeContext) -> Any:
        if len(node) != 3 or type(node[1]) is not int or node[2] not in _UNITS:
            raise CorruptFileError("malformed pandas.Timedelta node")
        td = pd.Timedelta(np.timedelta64(node[1], node[2]))
        if td is pd.NaT:
            raise _corrupt("a Timedelta holds NaT")
        return td


class PeriodHandler(Handler):
    """``[tag, ordinal, freq]``."""

    handler_id = "pandas.Period"
    types = (pd.Period,)

    def encode(self, p: pd.Period, ctx: EncodeContext) -> list[Any]:
        ctx.note_package("pandas")
        return [self.tag, int(p.ordinal), p.freqstr]

    @_guard
    def decode(self, node: Any, ctx: DecodeContext) -> Any:
        if len(node) != 3 or type(node[1]) is not int or type(node[2]) is not str or len(node[2]) > 64:
            raise CorruptFileError("malformed pandas.Period node")
        return pd.Period(ordinal=node[1], freq=node[2])


class IntervalHandler(Handler):
    """``[tag, left, right, closed]``."""

    handler_id = "pandas.Interval"
    types = (pd.Interval,)

    def encode(self, iv: pd.Interval, ctx: EncodeContext) -> list[Any]:
        ctx.note_package("pandas")
        return [self.tag, ctx.encode(iv.left, ".left"), ctx.encode(iv.right, ".right"), iv.closed]

    @_guard
    def decode(self, node: Any, ctx: DecodeContext) -> Any:
        if len(node) != 4 or node[3] not in ("left", "right", "both", "neither"):
            raise CorruptFileError("malformed pandas.Interval node")
        left = ctx.decode(node[1])
        right = ctx.decode(node[2])
        return pd.Interval(left, right, closed=node[3])


class NaTHandler(Handler):
    """``[tag]``: the ``pd.NaT`` singleton."""

    handler_id = "pandas.NaT"
    types = (_NaTType,)

    def encode(self, obj: Any, ctx: EncodeContext) -> list[Any]:
        ctx.note_package("pandas")
        return [self.tag]

    def decode(self, node: Any, ctx: DecodeContext) -> Any:
        if len(node) != 1:
            raise CorruptFileError("malformed pandas.NaT node")
        return pd.NaT


class NAHandler(NaTHandler):
    """``[tag]``: the ``pd.NA`` singleton."""

    handler_id = "pandas.NA"
    types = (_NAType,)

    def decode(self, node: Any, ctx: DecodeContext) -> Any:
        if len(node) != 1:
            raise CorruptFileError("malformed pandas.NA node")
        return pd.NA


for _h in (
    DataFrameHandler, SeriesHandler, IndexHandler, RangeIndexHandler, MultiIndexHandler, ArrayHandler,
    TimestampHandler, TimedeltaHandler, PeriodHandler, IntervalHandler, NaTHandler, NAHandler,
):
    REGISTRY.register(_h)
