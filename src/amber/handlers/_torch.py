"""PyTorch tensors, parameters, storages and small torch value types. Never pickles.

Layout (``docs/handlers-torch.md`` has the full description):

* ``[torch.storage, {"nbytes": n, "device": "cpu", "blob": i}]``: the raw bytes of an
  ``UntypedStorage`` in one blob (no ``blob`` for a ``meta`` storage, which holds no data).
  Every tensor that views the same storage refers to the same storage node, so views that
  shared memory when saved share it again after loading.
* ``[torch.Tensor, {"dtype": "float32", "shape": [...], "stride": [...], "offset": k,
  "storage": <storage node or ref>, "requires_grad": true?, "attrs": {...}?}]``: a strided
  tensor is its storage plus the view into it. Sparse tensors carry ``"layout"`` and their
  component tensors instead (``indices``/``values`` for COO, ``compressed``/``plain``/``values``
  for CSR/CSC/BSR/BSC).
* ``[torch.nn.Parameter, <same map>]``: a Parameter (``requires_grad`` kept).
* ``torch.Size``, ``torch.dtype``, ``torch.device``, ``torch.layout``, ``torch.memory_format``
  by name; ``torch.Generator`` (CPU) as its state bytes.

What is not saved: ``.grad`` (gradients are training state; save ``{"w": p, "grad": p.grad}``
when you need them), autograd history (a saved non-leaf tensor loads as a leaf with its
``requires_grad``), conjugate/negative bits (resolved into a copy before saving, so such a view
no longer shares memory after loading). Quantized and nested tensors are refused.
A view saves its whole storage, as ``torch.save`` does: ``.clone()`` a small slice of a big
tensor to save only the slice.

Loading validates everything before torch sees it: dtypes come from a fixed table, shape,
stride and offset are checked with exact integer arithmetic to fit inside the storage, the
storage size must equal its blob's size, sparse tensors are built with invariant checks.

Devices follow ``torch.load``: a storage goes back to the device it was saved from unless
``amber.load(..., map_location=...)`` says otherwise (a device, a ``{saved: target}`` dict or
a ``(storage, location) -> storage`` callable). ``map_location="meta"`` reads no tensor bytes.
With ``mmap=True``, CPU storages of uncompressed blobs are copy-on-write views of the file
(like ``torch.load(mmap=True)``): nothing is read until touched, writes stay private to the
process and never reach the file. Otherwise every storage is read once into fresh memory.
Loaded CPU storages are not resizable (``Tensor.resize_`` beyond their size fails), like
those of ``torch.load(mmap=True)`` and safetensors.
"""

from __future__ import annotations

import contextlib
import re
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from amber.errors import CorruptFileError, DecodeError, UnsupportedTypeError
from amber.handlers._base import REGISTRY, DecodeContext, EncodeContext, Handler

__all__ = ["DTYPES"]

#: dtype name in the file -> torch dtype: the only dtypes a file may name.
DTYPES: dict[str, torch.dtype] = {
    name: getattr(torch, name)
    for name in (
        "bool uint8 int8 int16 int32 int64 uint16 uint32 uint64 float16 bfloat16 float32 float64 "
        "complex32 complex64 complex128 float8_e4m3fn float8_e4m3fnuz float8_e5m2 float8_e5m2fnuz "
        "float8_e8m0fnu float4_e2m1fn_x2"
    ).split()
    if isinstance(getattr(torch, name, None), torch.dtype)
}
_DTYPE_NAMES: dict[torch.dtype, str] = {d: n for n, d in DTYPES.items()}
_LAYOUTS: dict[str, torch.layout] = {
    "strided": torch.strided,
    "sparse_coo": torch.sparse_coo,
    "sparse_csr": torch.sparse_csr,
    "sparse_csc": torch.sparse_csc,
    "sparse_bsr": torch.sparse_bsr,
    "sparse_bsc": torch.sparse_bsc,
}
_LAYOUT_NAMES: dict[torch.layout, str] = {v: k for k, v in _LAYOUTS.items()}
_MEMORY_FORMATS: dict[str, torch.memory_format] = {
    "contiguous_format": torch.contiguous_format,
    "channels_last": torch.channels_last,
    "channels_last_3d": torch.channels_last_3d,
    "preserve_format": torch.preserve_format,
}
_MEMORY_FORMAT_NAMES: dict[torch.memory_format, str] = {v: k for k, v in _MEMORY_FORMATS.items()}
#: Compressed sparse layouts -> (compressed indices, plain indices) accessor names.
_COMPRESSED = {
    torch.sparse_csr: ("crow_indices", "col_indices"),
    torch.sparse_csc: ("ccol_indices", "row_indices"),
    torch.sparse_bsr: ("crow_indices", "col_indices"),
    torch.sparse_bsc: ("ccol_indices", "row_indices"),
}
_DEVICE = re.compile(r"[a-z][a-z0-9_]{0,31}(:[0-9]{1,4})?")
_MAX_NDIM = 64
_CPU = torch.device("cpu")
_PENDING = object()
_MAX_INT = 1 << 62
#: torch warnings that only say a feature is young; loading a file should not repeat them.
_QUIET = ("ComplexHalf support is experimental", "Sparse CSR tensor support is in beta", "Sparse invariant checks")


def _check_platform(obj: Any) -> None:
    if sys.byteorder != "little":  # pragma: no cover - no big-endian CI
        raise UnsupportedTypeError(type(obj), "", "amber stores tensor bytes little-endian; this machine is big-endian")


def _meta(node: Any, what: str) -> dict[str, Any]:
    if len(node) != 2 or type(node[1]) is not dict:
        raise CorruptFileError(f"malformed {what} node: expected [tag, map]")
    return node[1]


def _ints(value: Any, what: str) -> tuple[int, ...]:
    if type(value) in (tuple, list) and len(value) <= _MAX_NDIM:
        for v in value:
            if type(v) is not int or not 0 <= v <= _MAX_INT:
                break
        else:
            return tuple(value)
    raise CorruptFileError(f"tensor {what} {value!r:.80} is not a list of at most {_MAX_NDIM} integers in 0..2**62")


def _dtype(name: Any) -> torch.dtype:
    dt = DTYPES.get(name) if type(name) is str else None
    if dt is None:
        raise CorruptFileError(f"tensor dtype {name!r:.40} is not one amber knows ({', '.join(DTYPES)})")
    return dt


def _flag(meta: dict[str, Any], key: str) -> bool:
    value = meta.get(key, False)
    if type(value) is not bool:
        raise CorruptFileError(f"tensor field {key!r} must be true or false, not {value!r:.40}")
    return value


def _saved_device(value: Any) -> str:
    if type(value) is not str or not _DEVICE.fullmatch(value):
        raise CorruptFileError(f"storage device {value!r:.40} is not a device name such as 'cpu' or 'cuda:0'")
    return value


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence torch's notes that a feature is young (beta sparse formats, ComplexHalf)."""
    with warnings.catch_warnings():
        for text in _QUIET:
            warnings.filterwarnings("ignore", re.escape(text), UserWarning)
        yield


# -- storages ---------------------------------------------------------------------------


def _raw(st: torch.UntypedStorage) -> memoryview:
    """The bytes of a CPU storage, without copying."""
    if not st.nbytes():
        return memoryview(b"")
    return memoryview(torch.empty(0, dtype=torch.uint8).set_(st).numpy())


class StorageHandler(Handler):
    """``torch.UntypedStorage``: its bytes in one blob, its device by name."""

    handler_id = "torch.storage"
    types = (torch.UntypedStorage,)

    def encode(self, st: torch.UntypedStorage, ctx: EncodeContext) -> list[Any]:
        _check_platform(st)
        ctx.note_package("torch")
        dev = st.device
        meta: dict[str, Any] = {"nbytes": st.nbytes(), "device": str(dev)}
        if dev.type == "meta":
            return [self.tag, meta]
        if dev.type != "cpu":
            st = st.cpu()
            ctx.scratch.setdefault("torch.keep", []).append(st)  # alive until the file is written
        hint = ctx.scratch.pop("torch.hint", None)
        filt = ("shuffle", hint) if hint and hint > 1 and meta["nbytes"] % hint == 0 else None
        meta["blob"] = ctx.add_blob(_raw(st), filt)
        return [self.tag, meta]

    def decode(self, node: Any, ctx: DecodeContext) -> torch.UntypedStorage:
        meta = _meta(node, "torch.storage")
        n = meta.get("nbytes")
        if type(n) is not int or not 0 <= n <= _MAX_INT:
            raise CorruptFileError(f"storage size {n!r:.40} is not an integer in 0..2**62")
        saved = meta.get("device")
        placer = ctx.scratch.get("torch.placer") or _placer(ctx)
        target = placer.target(saved)
        if saved == "meta":
            if "blob" in meta:
                raise CorruptFileError("a meta storage holds no data, but its node names a blob")
            return torch.UntypedStorage(n, device="meta")
        ref = meta.get("blob")
        if type(ref) is not int:
            raise CorruptFileError(f"storage node names no blob (blob={ref!r:.40})")
        if target is not None and target.type == "meta":  # no bytes read
            have = ctx.blob_nbytes(ref)
            if have != n:
                raise CorruptFileError(f"storage of {n} bytes is backed by blob {ref} of {have} bytes")
            return torch.UntypedStorage(n, device="meta")
        st = _cpu_storage(ctx, ref, n)
        return st if target is _CPU else placer.place(st, saved, target)


def _torch_memory(n: int) -> np.ndarray:
    return torch.empty(n, dtype=torch.uint8).numpy()


def _cpu_storage(ctx: DecodeContext, ref: Any, n: int) -> torch.UntypedStorage:
    """The blob as a CPU storage: a copy-on-write file mapping with ``mmap``, else read once."""
    # torch cannot mark memory read-only (a write into a read-only mapping would crash the
    # process), so a mapped blob comes as a copy-on-write view: writes stay private.
    # also claims the blob: one blob backs one node. Read into torch's own memory: its
    # allocator reuses freed tensors' pages, as torch.load's storages do
    buf = ctx.blob(ref, writable=True, alloc=_torch_memory, data_only=True)
    if len(buf) != n:
        raise CorruptFileError(f"storage of {n} bytes is backed by blob {ref} of {len(buf)} bytes")
    if not n:
        return torch.UntypedStorage(0)
    if isinstance(buf, np.ndarray):  # fresh memory (or amber's own buffer of a small file)
        return torch.from_numpy(buf).untyped_storage()
    return torch.frombuffer(buf, dtype=torch.uint8).untyped_storage()


class _Placer:
    """Where storages go: ``map_location`` as ``torch.load`` reads it."""

    def __init__(self, ml: Any) -> None:
        #: saved device name -> target device (None: ask the callable)
        self.cache: dict[str, torch.device | None] = {}
        self.fn = None
        self.fixed: torch.device | None = None
        self.table: dict[str, torch.device] | None = None
        if ml is None:
            return
        if isinstance(ml, (str, torch.device)):
            self.fixed = self._device(ml)
        elif isinstance(ml, dict):
            self.table = {str(k): self._device(v) for k, v in ml.items()}
        elif callable(ml):
            self.fn = ml
        else:
            raise DecodeError(
                f"map_location must be a device ('cpu', torch.device('meta')), a {{saved: target}} dict "
                f"or a callable (storage, location) -> storage, not {type(ml).__name__}"
            )

    @staticmethod
    def _device(value: Any) -> torch.device:
        try:
            return torch.device(value)
        except (RuntimeError, TypeError, ValueError) as exc:
            raise DecodeError(f"map_location names no device: {value!r:.60} ({exc})") from None

    def target(self, saved: Any) -> torch.device | None:
        """The device a storage saved on ``saved`` goes to (None: ask the callable first)."""
        out = self.cache.get(saved, _PENDING) if type(saved) is str else _PENDING
        if out is _PENDING:
            try:
                out = torch.device(_saved_device(saved))
            except RuntimeError:
                raise CorruptFileError(f"storage device {saved!r} is not a device torch knows") from None
            if self.fixed is not None:
                out = self.fixed
            elif self.table is not None and saved in self.table:
                out = self.table[saved]
            elif self.fn is not None:
                out = None
            if out is not None and out.type == "cpu":
                out = _CPU
            if len(self.cache) < 64:
                self.cache[saved] = out
        return out

    def place(self, st: torch.UntypedStorage, saved: str, target: torch.device | None) -> torch.UntypedStorage:
        if target is None:  # a callable map_location
            out = self.fn(st, saved)  # type: ignore[misc]
            if out is None:
                target = torch.device(saved)
            else:
                out = getattr(out, "_untyped_storage", out)  # a TypedStorage
                if not isinstance(out, torch.UntypedStorage):
                    raise DecodeError(f"map_location returned a {type(out).__name__}, not a storage")
                return out
        if target.type == "cpu":
            return st
        try:
            return st.to(device=target)
        except Exception as exc:  # torch raises RuntimeError or AssertionError for absent devices
            raise DecodeError(
                f"a tensor was saved on {saved!r} and cannot go to {str(target)!r} here ({exc}); "
                "pass map_location='cpu' (or another available device) to load"
            ) from None


def _placer(ctx: DecodeContext) -> _Placer:
    placer = ctx.scratch.get("torch.placer")
    if placer is None:
        placer = ctx.scratch["torch.placer"] = _Placer(ctx.options.get("map_location"))
    return placer


# -- tensors ----------------------------------------------------------------------------


def _span(shape: tuple[int, ...], stride: tuple[int, ...], offset: int, itemsize: int) -> int:
    """Bytes of storage a strided view needs (exact integers, as ``computeStorageNbytes``)."""
    if 0 in shape:
        return offset * itemsize  # no element is read; the data pointer must still lie inside
    last = offset
    for n, s in zip(shape, stride):
        last += (n - 1) * s
    return (last + 1) * itemsize


class TensorHandler(Handler):
    """``torch.Tensor`` (strided and sparse), on any device; see the module docstring."""

    handler_id = "torch.Tensor"
    types = (torch.Tensor,)

    def encode(self, t: torch.Tensor, ctx: EncodeContext) -> list[Any]:
        return [self.tag, self.describe(t, ctx)]

    def describe(self, t: torch.Tensor, ctx: EncodeContext) -> dict[str, Any]:
        _check_platform(t)
        ctx.note_package("torch")
        attrs = t.__dict__
        rg = t.requires_grad
        layout = t.layout
        if t.is_quantized or t.is_nested or layout not in _LAYOUT_NAMES:
            kind = "quantized" if t.is_quantized else "nested" if t.is_nested else str(layout)
            raise UnsupportedTypeError(type(t), "", f"{kind} tensors are not supported; convert to a dense tensor")
        name = _DTYPE_NAMES.get(t.dtype)
        if name is None:
            raise UnsupportedTypeError(type(t), "", f"tensors of dtype {t.dtype} are not supported")
        t = t.detach()
        if layout is not torch.strided:
            meta = self._sparse(t, layout, ctx)
        else:
            if t.is_conj():
                t = t.resolve_conj()
            if t.is_neg():
                t = t.resolve_neg()
            st = t.untyped_storage()
            st = ctx.scratch.setdefault(("torch.storage", st._cdata), st)
            offset = t.storage_offset()
            if not t.numel():  # an empty view's offset is not observable: keep it inside
                offset = min(offset, st.nbytes() // t.element_size())
            meta = {"dtype": name, "shape": list(t.shape), "stride": list(t.stride()), "offset": offset}
            size = t.element_size()
            ctx.scratch["torch.hint"] = size // 2 if t.is_complex() else size
            try:
                meta["storage"] = ctx.encode(st, ".storage")
            finally:
                ctx.scratch.pop("torch.hint", None)
        if rg:
            meta["requires_grad"] = True
        if attrs:
            meta["attrs"] = ctx.encode(dict(attrs), ".__dict__")
        return meta

    def _sparse(self, t: torch.Tensor, layout: torch.layout, ctx: EncodeContext) -> dict[str, Any]:
        meta: dict[str, Any] = {"layout": _LAYOUT_NAMES[layout], "shape": list(t.shape)}
        if layout is torch.sparse_coo:
            meta["coalesced"] = t.is_coalesced()
            meta["indices"] = ctx.encode(t._indices(), ".indices")
        else:
            comp, plain = _COMPRESSED[layout]
            meta["compressed"] = ctx.encode(getattr(t, comp)(), f".{comp}")
            meta["plain"] = ctx.encode(getattr(t, plain)(), f".{plain}")
        meta["values"] = ctx.encode(t._values() if layout is torch.sparse_coo else t.values(), ".values")
        return meta

    def decode(self, node: Any, ctx: DecodeContext) -> torch.Tensor:
        meta = _meta(node, self.handler_id)
        t, rg = self.build(meta, ctx)
        if rg:
            t.requires_grad_(True)
        return self.finish(t, meta, ctx)

    def build(self, meta: dict[str, Any], ctx: DecodeContext) -> tuple[torch.Tensor, bool]:
        """The tensor (without ``requires_grad`` set) and whether it requires grad."""
        layout = meta.get("layout", "strided")
        if layout != "strided":
            t = self._build_sparse(meta, layout, ctx)
            rg = _flag(meta, "requires_grad")
            if rg and not (t.dtype.is_floating_point or t.dtype.is_complex):
                raise CorruptFileError(f"a {t.dtype} tensor cannot require gradients")
            return t, rg
        dtype = _dtype(meta.get("dtype"))
        shape = _ints(meta.get("shape"), "shape")
        stride = _ints(meta.get("stride"), "stride")
        if len(stride) != len(shape):
            raise CorruptFileError(f"tensor shape {shape} and stride {stride} differ in length")
        offset = meta.get("offset")
        if type(offset) is not int or not 0 <= offset <= _MAX_INT:
            raise CorruptFileError(f"tensor storage offset {offset!r:.40} is not an integer in 0..2**62")
        numel = 1
        for n in shape:
            numel *= n
        if numel > _MAX_INT:
            raise CorruptFileError(f"tensor shape {shape} has more than 2**62 elements")
        rg = _flag(meta, "requires_grad")
        if rg and not (dtype.is_floating_point or dtype.is_complex):
            raise CorruptFileError(f"a {dtype} tensor cannot require gradients")
        st = ctx.decode(meta.get("storage"))
        if type(st) is not torch.UntypedStorage:
            raise CorruptFileError(f"a tensor's storage is a {type(st).__name__}, not a torch.storage node")
        need, have = _span(shape, stride, offset, dtype.itemsize), st.nbytes()
        if need > have:
            raise CorruptFileError(
                f"a {dtype} tensor of shape {list(shape)}, stride {list(stride)} at offset {offset} needs "
                f"{need} bytes of storage; its storage has {have}"
            )
        try:
            if dtype is torch.complex32:
                with _quiet():
                    return torch.empty(0, dtype=dtype, device=st.device).set_(st, offset, shape, stride), rg
            return torch.empty(0, dtype=dtype, device=st.device).set_(st, offset, shape, stride), rg
        except RuntimeError as exc:  # checked above; torch's own checks are a second line
            raise CorruptFileError(f"malformed tensor: {exc}") from None

    def _build_sparse(self, meta: dict[str, Any], layout: Any, ctx: DecodeContext) -> torch.Tensor:
        lay = _LAYOUTS.get(layout) if type(layout) is str else None
        if lay is None:
            raise CorruptFileError(f"tensor layout {layout!r:.40} is not one of {', '.join(_LAYOUTS)}")
        shape = _ints(meta.get("shape"), "shape")
        if lay is torch.sparse_coo:
            parts = [ctx.decode(meta.get("indices")), ctx.decode(meta.get("values"))]
        else:
            parts = [ctx.decode(meta.get(k)) for k in ("compressed", "plain", "values")]
        for p in parts:
            if type(p) is not torch.Tensor or p.layout is not torch.strided:
                raise CorruptFileError(f"a {layout} tensor's parts must be dense tensors, not {type(p).__name__}")
        coalesced = _flag(meta, "coalesced")
        devices = {p.device for p in parts}
        if len(devices) != 1:
            raise CorruptFileError(f"a {layout} tensor's parts lie on different devices: {sorted(map(str, devices))}")
        check = devices.pop().type != "meta"  # meta parts hold no data to check (or misread)
        try:
            with _quiet():
                if lay is torch.sparse_coo:
                    return torch.sparse_coo_tensor(
                        parts[0], parts[1], shape, is_coalesced=coalesced, check_invariants=check
                    )
                return torch.sparse_compressed_tensor(*parts, shape, layout=lay, check_invariants=check)
        except RuntimeError as exc:
            raise CorruptFileError(f"malformed {layout} tensor: {exc}") from None

    def finish(self, t: torch.Tensor, meta: dict[str, Any], ctx: DecodeContext) -> torch.Tensor:
        if "attrs" in meta:
            attrs = ctx.decode(meta["attrs"])
            cls = type(t)
            if type(attrs) is not dict or not all(
                type(k) is str and k.isidentifier() and not k.startswith("__") and not hasattr(cls, k) for k in attrs
            ):
                raise CorruptFileError(
                    "a tensor's attributes must be a map of plain attribute names that do not shadow "
                    f"{cls.__name__} members"
                )
            t.__dict__.update(attrs)
        return t


class ParameterHandler(TensorHandler):
    """``torch.nn.Parameter``: a tensor map (``requires_grad`` kept) under its own tag."""

    handler_id = "torch.nn.Parameter"
    types = (torch.nn.Parameter,)

    def decode(self, node: Any, ctx: DecodeContext) -> torch.Tensor:
        meta = _meta(node, self.handler_id)
        t, rg = self.build(meta, ctx)
        return self.finish(torch.nn.Parameter(t, requires_grad=rg), meta, ctx)


# -- small torch value types ------------------------------------------------------------


class SizeHandler(Handler):
    handler_id = "torch.Size"
    types = (torch.Size,)

    def encode(self, obj: torch.Size, ctx: EncodeContext) -> list[Any]:
        ctx.note_package("torch")
        return [self.tag, *obj]

    def decode(self, node: Any, ctx: DecodeContext) -> torch.Size:
        dims = node[1:]
        if len(dims) > _MAX_NDIM or not all(type(d) is int and -_MAX_INT <= d <= _MAX_INT for d in dims):
            raise CorruptFileError(f"torch.Size {dims!r:.80} is not at most {_MAX_NDIM} integers")
        return torch.Size(dims)


class _NamedHandler(Handler):
    """A torch value known by name: ``[tag, name]`` with the name from a fixed table."""

    table: dict[str, Any] = {}
    names: dict[Any, str] = {}

    def encode(self, obj: Any, ctx: EncodeContext) -> list[Any]:
        ctx.note_package("torch")
        name = self.names.get(obj)
        if name is None:
            raise UnsupportedTypeError(type(obj), "", f"{obj} is not supported")
        return [self.tag, name]

    def decode(self, node: Any, ctx: DecodeContext) -> Any:
        value = self.table.get(node[1]) if len(node) == 2 and type(node[1]) is str else None
        if value is None:
            raise CorruptFileError(f"{node[1:]!r:.60} is not a known {self.handler_id}")
        return value


class DTypeHandler(_NamedHandler):
    handler_id = "torch.dtype"
    types = (torch.dtype,)
    table, names = DTYPES, _DTYPE_NAMES


class LayoutHandler(_NamedHandler):
    handler_id = "torch.layout"
    types = (torch.layout,)
    table, names = _LAYOUTS, _LAYOUT_NAMES


class MemoryFormatHandler(_NamedHandler):
    handler_id = "torch.memory_format"
    types = (torch.memory_format,)
    table, names = _MEMORY_FORMATS, _MEMORY_FORMAT_NAMES


class DeviceHandler(Handler):
    handler_id = "torch.device"
    types = (torch.device,)

    def encode(self, obj: torch.device, ctx: EncodeContext) -> list[Any]:
        ctx.note_package("torch")
        return [self.tag, str(obj)]

    def decode(self, node: Any, ctx: DecodeContext) -> torch.device:
        if len(node) != 2:
            raise CorruptFileError("malformed torch.device node")
        try:
            return torch.device(_saved_device(node[1]))
        except RuntimeError:
            raise CorruptFileError(f"device {node[1]!r} is not a device torch knows") from None


class GeneratorHandler(Handler):
    """A CPU ``torch.Generator``: ``[tag, "cpu", state bytes]``."""

    handler_id = "torch.Generator"
    types = (torch.Generator,)

    def encode(self, obj: torch.Generator, ctx: EncodeContext) -> list[Any]:
        ctx.note_package("torch")
        if obj.device.type != "cpu":
            raise UnsupportedTypeError(type(obj), "", f"only CPU generators are supported, not {obj.device}")
        return [self.tag, "cpu", obj.get_state().numpy().tobytes()]

    def decode(self, node: Any, ctx: DecodeContext) -> torch.Generator:
        if len(node) != 3 or node[1] != "cpu" or type(node[2]) is not bytes:
            raise CorruptFileError("malformed torch.Generator node")
        g = torch.Generator(device="cpu")
        try:
            g.set_state(torch.frombuffer(bytearray(node[2]), dtype=torch.uint8))
        except (RuntimeError, ValueError) as exc:
            raise CorruptFileError(f"malformed torch.Generator state: {exc}") from None
        return g


for _h in (
    StorageHandler,
    TensorHandler,
    ParameterHandler,
    SizeHandler,
    DTypeHandler,
    LayoutHandler,
    MemoryFormatHandler,
    DeviceHandler,
    GeneratorHandler,
):
    REGISTRY.register(_h)
