"""NumPy arrays, scalars, dtypes and random generators. Never pickles.

An array is ``[tag, {"dtype": d, "shape": [...], "order": "C"|"F", "blob": i}]``: its raw
bytes go to one blob (in C or Fortran order, whichever the array already has, so a
contiguous array is written straight from its memory). A view saves only its own elements.
Object arrays are ``[tag, {"dtype": "O", "shape": [...], "items": [...]}]``, every element
going through amber's own reduction.
"""

from __future__ import annotations

import re
from typing import Any

import msgpack
import numpy as np

from amber.errors import CorruptFileError, UnsupportedTypeError
from amber.handlers._base import REGISTRY, DecodeContext, EncodeContext, Handler

__all__ = ["dtype_from_node", "dtype_to_node"]

#: The dtype strings a file may use: byte order, kind, size, optional datetime unit.
_DTYPE_STR = re.compile(r"[<>|=][?bBiufcmMSUV][0-9]{0,9}(\[[0-9]*[a-zA-Z]{1,3}\])?")
#: Validated simple dtype strings (bounded).
_DTYPES: dict[str, np.dtype] = {}
#: Arrays with more elements than this are refused as corrupt (even of zero-size items).
_MAX_ITEMS = 1 << 62
#: Arrays of at most this many bytes are stored inside their node instead of in a blob.
INLINE_MAX = 64
#: Arrays with more dimensions than this are refused as corrupt.
_MAX_NDIM = 64


#: id(dtype) -> (dtype, node) for structured and subarray dtypes (kept alive, so ids stay valid)
_NODES: dict[int, tuple[np.dtype, Any]] = {}
#: frozen node -> dtype, for structured and subarray descriptions already validated
_FROM_NODES: dict[Any, np.dtype] = {}


def dtype_to_node(dt: np.dtype) -> Any:
    """A JSON-able description of a dtype (the ``.str`` for simple ones)."""
    if dt.fields is None and dt.subdtype is None:
        return "O" if dt.hasobject else dt.str
    hit = _NODES.get(id(dt))
    if hit is not None and hit[0] is dt:
        return hit[1]
    node = _dtype_to_node(dt)
    if len(_NODES) >= 1024:
        _NODES.clear()
    _NODES[id(dt)] = (dt, node)
    return node


def _dtype_to_node(dt: np.dtype) -> Any:
    if dt.fields is not None:
        names = list(dt.names or ())
        out = {
            "names": names,
            "formats": [dtype_to_node(dt.fields[n][0]) for n in names],
            "offsets": [dt.fields[n][1] for n in names],
            "itemsize": dt.itemsize,
            "aligned": bool(dt.isalignedstruct),
        }
        titles = [dt.fields[n][2] if len(dt.fields[n]) > 2 else None for n in names]
        if any(t is not None for t in titles):
            out["titles"] = titles
        return out
    if dt.subdtype is not None:
        base, shape = dt.subdtype
        return {"base": dtype_to_node(base), "shape": list(shape)}
    if dt.hasobject:
        return "O"
    return dt.str


def dtype_from_node(node: Any, depth: int = 0) -> np.dtype:
    """Inverse of :func:`dtype_to_node`; refuses anything that is not a dtype description."""
    if depth == 0 and type(node) is dict:
        key: Any = tuple(node.items())
        try:
            hash(key)
        except TypeError:  # nested descriptions: their own bytes identify them
            try:
                key = msgpack.packb(node)
            except (ValueError, TypeError, OverflowError):
                raise CorruptFileError("malformed dtype in the file") from None
        dt = _FROM_NODES.get(key)
        if dt is None:
            dt = _dtype_from_node(node)
            if len(_FROM_NODES) >= 1024:
                _FROM_NODES.clear()
            _FROM_NODES[key] = dt
        return dt
    return _dtype_from_node(node, depth)


def _dtype_from_node(node: Any, depth: int = 0) -> np.dtype:
    if depth > 32:
        raise CorruptFileError("dtype description nested too deeply")
    if type(node) is str:
        dt = _DTYPES.get(node)
        if dt is not None:
            return dt
    try:
        if type(node) is str:
            if node == "O":
                return np.dtype(object)
            if not _DTYPE_STR.fullmatch(node):
                raise ValueError(f"{node!r} is not a dtype string")
            dt = np.dtype(node)
            if dt.hasobject:
                raise ValueError("object dtypes are not allowed here")
            if len(_DTYPES) < 1024:
                _DTYPES[node] = dt
            return dt
        if type(node) is dict and "names" in node:
            names, formats = node["names"], node["formats"]
            if not (type(names) in (list, tuple) and type(formats) in (list, tuple) and len(names) == len(formats)):
                raise ValueError("structured dtype fields are malformed")
            spec = {
                "names": list(names),
                "formats": [dtype_from_node(f, depth + 1) for f in formats],
                "offsets": list(node["offsets"]),
                "itemsize": node["itemsize"],
            }
            titles = node.get("titles")
            if titles is not None:
                if type(titles) not in (list, tuple) or len(titles) != len(names):
                    raise ValueError("structured dtype titles are malformed")
                spec["titles"] = list(titles)
            dt = np.dtype(spec, align=bool(node.get("aligned")))
            if dt.hasobject:
                raise ValueError("structured dtypes with object fields are not allowed")
            return dt
        if type(node) is dict and "base" in node:
            shape = node["shape"]
            if type(shape) not in (list, tuple) or not all(type(s) is int and 0 <= s < 2**31 for s in shape):
                raise ValueError("subarray shape is malformed")
            return np.dtype((dtype_from_node(node["base"], depth + 1), tuple(shape)))
    except CorruptFileError:
        raise
    except (TypeError, ValueError, KeyError) as exc:
        raise CorruptFileError(f"malformed dtype in the file: {exc}") from None
    raise CorruptFileError(f"malformed dtype in the file: {node!r:.80}")


def _shape(node: Any) -> tuple[int, ...]:
    if (type(node) is tuple or type(node) is list) and len(node) <= _MAX_NDIM:
        for s in node:  # (a loop: all() over a generator cost twice as much for these few items)
            if type(s) is not int or s < 0:
                break
        else:
            return tuple(node)
    raise CorruptFileError(f"malformed array shape {node!r:.80}")


def _count(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    if n > _MAX_ITEMS:
        raise CorruptFileError(f"array shape {shape} has more than 2**62 elements")
    return n


def _filter_for(arr: np.ndarray, order: str) -> tuple[str, int] | None:
    """The pre-compression filter that suits an array (chosen by measurement, see benchmarks)."""
    dt = arr.dtype
    if dt.kind in "iu" and dt.itemsize == 1 and arr.ndim >= 2 and order == "C":
        # image-like bytes: predict each row from the one above (PNG "Up")
        row = arr.shape[-1] * (arr.shape[-2] if arr.ndim >= 3 and arr.shape[-1] <= 4 else 1)
        return ("delta", row) if 0 < row <= (1 << 18) else None
    if dt.kind in "iufcmM" and dt.itemsize > 1:
        return ("shuffle", dt.itemsize // 2 if dt.kind == "c" else dt.itemsize)
    return None


class NDArrayHandler(Handler):
    handler_id = "numpy.ndarray"
    types = (np.ndarray,)
    binds = True  # object arrays

    def encode(self, arr: np.ndarray, ctx: EncodeContext) -> list[Any]:
        ctx.note_package("numpy")
        dt = arr.dtype
        if dt.hasobject:
            if dt != np.dtype(object):
                raise UnsupportedTypeError(type(arr), "", f"structured arrays holding objects ({dt}) are not supported")
            enc = ctx.encode
            if arr.ndim:
                items = [enc(x, idx) for idx, x in zip(np.ndindex(arr.shape), arr.ravel(order="C").tolist())]
            else:
                items = [enc(arr[()])]
            return [self.tag, {"dtype": "O", "shape": list(arr.shape), "items": items}]
        order = "C"
        if arr.flags.c_contiguous:
            flat = arr.reshape(-1)
        elif arr.flags.f_contiguous:
            order = "F"
            flat = arr.T.reshape(-1)
        else:  # a strided or broadcast view: copy out just its own elements
            flat = np.ascontiguousarray(arr).reshape(-1)
        raw = memoryview(flat.view(np.uint8)) if dt.itemsize else memoryview(b"")
        if raw.nbytes <= INLINE_MAX:  # tiny arrays live in the node: no blob entry, no padding
            return [self.tag, {"dtype": dtype_to_node(dt), "shape": list(arr.shape), "order": order, "data": raw.tobytes()}]
        ref = ctx.add_blob(raw, _filter_for(arr, order))
        return [self.tag, {"dtype": dtype_to_node(dt), "shape": list(arr.shape), "order": order, "blob": ref}]

    def decode(self, node: list[Any], ctx: DecodeContext) -> Any:
        if len(node) != 2 or type(node[1]) is not dict:
            raise CorruptFileError("malformed numpy.ndarray node")
        meta = node[1]
        shape = _shape(meta.get("shape"))
        dt = dtype_from_node(meta.get("dtype"))
        if dt.hasobject:
            items = meta.get("items")
            if type(items) not in (list, tuple) or len(items) != (_count(shape) if shape else 1):
                raise CorruptFileError(f"object array of shape {shape} holds {len(items or ())} items")
            out = np.empty(shape, dtype=object)
            ctx.bind(out)
            flat = out.reshape(-1)
            for i, x in enumerate(items):
                flat[i] = ctx.decode(x)
            return out
        order = meta.get("order", "C")
        if order not in ("C", "F"):
            raise CorruptFileError(f"array order {order!r} is neither 'C' nor 'F'")
        count = _count(shape)
        data = meta.get("data")
        if data is not None:
            if "blob" in meta or type(data) is not bytes or len(data) != count * dt.itemsize:
                raise CorruptFileError(
                    f"array of shape {shape} and dtype {dt} needs {count * dt.itemsize} bytes, its inline data is malformed"
                )
            return from_buffer(bytearray(data), dt, shape, order)
        if ctx.lazy:
            return ctx.lazy_array(meta.get("blob"), dt, shape, order)
        nbytes = ctx.blob_nbytes(meta.get("blob"))
        if nbytes != count * dt.itemsize:
            raise CorruptFileError(
                f"array of shape {shape} and dtype {dt} needs {count * dt.itemsize} bytes, its blob has {nbytes}"
            )
        buf = ctx.blob(meta.get("blob"), data_only=True)
        if len(buf) != count * dt.itemsize:
            raise CorruptFileError(
                f"array of shape {shape} and dtype {dt} needs {count * dt.itemsize} bytes, its blob has {len(buf)}"
            )
        return from_buffer(buf, dt, shape, order)


def from_buffer(buf: Any, dt: np.dtype, shape: tuple[int, ...], order: str) -> np.ndarray:
    if not dt.itemsize:
        return np.zeros(shape, dtype=dt)
    arr = buf.view(dt) if isinstance(buf, np.ndarray) else np.frombuffer(buf, dtype=dt)
    if order == "F":
        return arr.reshape(shape[::-1]).T
    return arr.reshape(shape)


class ScalarHandler(Handler):
    """NumPy scalars (``np.float32(1)``, ``np.datetime64(...)``): dtype and raw bytes."""

    handler_id = "numpy.scalar"
    types = tuple(
        {np.dtype(c).type for c in "?bhilqpBHILQPefdgFDGSUVMm"}
        | {np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
           np.float16, np.float32, np.float64, np.longdouble, np.complex64, np.complex128, np.clongdouble,
           np.datetime64, np.timedelta64, np.bytes_, np.str_, np.void}
    )

    def encode(self, obj: Any, ctx: EncodeContext) -> list[Any]:
        ctx.note_package("numpy")
        # Strings by value (an array item would drop trailing NULs), unless not UTF-8-able.
        if isinstance(obj, np.bytes_):
            return [self.tag, "S", bytes(obj)]
        if isinstance(obj, np.str_):
            text = str.__add__(obj, "")
            try:
                text.encode("utf-8")
                return [self.tag, "U", text]
            except UnicodeEncodeError:
                pass
        arr = np.asarray(obj)
        if arr.dtype.hasobject:
            raise UnsupportedTypeError(type(obj), "", "NumPy scalars holding objects are not supported")
        return [self.tag, dtype_to_node(arr.dtype), arr.tobytes()]

    def decode(self, node: list[Any], ctx: DecodeContext) -> Any:
        if len(node) == 3 and node[1] == "S" and type(node[2]) is bytes:
            return np.bytes_(node[2])
        if len(node) == 3 and node[1] == "U" and type(node[2]) is str:
            return np.str_(node[2])
        if len(node) != 3 or type(node[2]) is not bytes:
            raise CorruptFileError("malformed numpy.scalar node")
        dt = dtype_from_node(node[1])
        if len(node[2]) != dt.itemsize:
            raise CorruptFileError(f"numpy scalar of dtype {dt} needs {dt.itemsize} bytes, not {len(node[2])}")
        return np.frombuffer(node[2], dtype=dt).reshape(())[()]


class DTypeHandler(Handler):
    handler_id = "numpy.dtype"
    types = tuple({type(np.dtype(c)) for c in "?bhilqpBHILQPefdgFDGSUVMmO"} | {np.dtype})

    def encode(self, obj: np.dtype, ctx: EncodeContext) -> list[Any]:
        ctx.note_package("numpy")
        return [self.tag, dtype_to_node(obj)]

    def decode(self, node: list[Any], ctx: DecodeContext) -> Any:
        if len(node) != 2:
            raise CorruptFileError("malformed numpy.dtype node")
        return dtype_from_node(node[1])


_BITGENS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


def _checked(obj: Any) -> Any:
    """``obj`` once the check of its class (security._guards: a bit generator's position,
    key and flags, which numpy's state setter takes as given and its draws trust) passed."""
    from amber.security._guards import check_for

    check = check_for(type(obj))
    if check is not None:
        check(obj)
    return obj


class GeneratorHandler(Handler):
    """``np.random.Generator``: bit generator name and its state."""

    handler_id = "numpy.random.Generator"
    types = (np.random.Generator,)

    def encode(self, obj: Any, ctx: EncodeContext) -> list[Any]:
        ctx.note_package("numpy")
        bg = obj.bit_generator
        name = type(bg).__name__
        if name not in _BITGENS:
            raise UnsupportedTypeError(type(bg), "", f"bit generator {name} is not one of {_BITGENS}")
        ctx.need(f"numpy.random.{name}")
        return [self.tag, name, ctx.encode(bg.state)]

    def _bitgen(self, node: list[Any], ctx: DecodeContext) -> Any:
        if len(node) != 3 or node[1] not in _BITGENS:
            raise CorruptFileError(f"malformed {self.handler_id} node")
        bg = ctx.resolve(f"numpy.random.{node[1]}")()
        try:
            bg.state = ctx.decode(node[2])
        except (TypeError, ValueError, KeyError) as exc:
            raise CorruptFileError(f"malformed random state: {exc}") from None
        return _checked(bg)

    def decode(self, node: list[Any], ctx: DecodeContext) -> Any:
        return np.random.Generator(self._bitgen(node, ctx))


class RandomStateHandler(GeneratorHandler):
    handler_id = "numpy.random.RandomState"
    types = (np.random.RandomState,)

    def encode(self, obj: Any, ctx: EncodeContext) -> list[Any]:
        ctx.note_package("numpy")
        ctx.need("numpy.random.MT19937")
        return [self.tag, "MT19937", ctx.encode(obj.get_state(legacy=False))]

    def decode(self, node: list[Any], ctx: DecodeContext) -> Any:
        if len(node) != 3 or node[1] != "MT19937":
            raise CorruptFileError(f"malformed {self.handler_id} node")
        ctx.resolve("numpy.random.MT19937")
        rs = np.random.RandomState()
        try:
            rs.set_state(ctx.decode(node[2]))
        except (TypeError, ValueError, KeyError) as exc:
            raise CorruptFileError(f"malformed random state: {exc}") from None
        _checked(rs._bit_generator)
        return _checked(rs)


class MaskedConstantHandler(Handler):
    """``numpy.ma.masked``, the one masked constant (what indexing a masked array gives at
    a masked place): a tag without state, loaded as that very object, so ``x is
    np.ma.masked`` holds after a load. (Through the generic reducer it needed
    ``trusted=`` and could carry a state for the process-wide constant.)"""

    handler_id = "numpy.ma.masked"
    type_names = ("numpy.ma.core.MaskedConstant",)  # (numpy.ma is imported only when met)

    def encode(self, obj: Any, ctx: EncodeContext) -> list[Any]:
        # (there is no other: MaskedConstant() gives this one, and an ndarray.__new__ of the
        # class comes out a plain MaskedArray)
        ctx.note_package("numpy")
        return [self.tag]

    def decode(self, node: Any, ctx: DecodeContext) -> Any:
        if len(node) != 1:
            raise CorruptFileError("malformed numpy.ma.masked node: it holds no state")
        return np.ma.masked


for _h in (NDArrayHandler, ScalarHandler, DTypeHandler, GeneratorHandler, RandomStateHandler, MaskedConstantHandler):
    REGISTRY.register(_h)
