"""Safe reading of files written by ``torch.save``: the zip archive (the default since
PyTorch 1.6) and the legacy stream (``_use_new_zipfile_serialization=False``).

Nothing here calls ``torch.load`` or ``pickle.load`` on the file (except ``unsafe=True``).
The pickle inside runs on :class:`~amber.security._unpickler.SafeUnpickler`, so it reaches
only trusted globals; torch's storage classes and the rebuild helpers whose arguments need
checking are replaced (through ``overrides``) by this module's own versions:

* storages come from ``persistent_load`` only, never from a call the pickle makes: their
  bytes are read from the archive member (zip) or the stream (legacy) after checking that
  the declared size matches the bytes there, so no storage is larger than the file holds;
* tensors are built only after checking, with exact integer arithmetic, that their shape,
  stride and offset fit inside their storage (``Tensor.set_`` would grow the storage);
* sparse tensors are validated (their invariants) once their data is in place; nested
  tensors must fit inside their buffer;
* ``torch.serialization._get_layout`` (how a layout pickles) answers only layout names.

Zip archives: the pickle is the one ``<prefix>/data.pkl`` member; storage ``k`` is member
``<prefix>/data/k``. torch writes those uncompressed and 64-byte aligned, so a storage is
read with one copy straight into its memory, or (``mmap=True``) mapped copy-on-write from
the file with no copy at all; as with ``torch.load``, loaded storages are not resizable.
Duplicate member names, members that overlap or run past the end of the file, and local
headers that disagree with the central directory are refused. A big-endian archive
(``<prefix>/byteorder``) is byte-swapped.

Legacy stream: pickles of the magic number, the protocol version (1001) and a ``sys_info``
dict, then the object pickle (persistent ids ``('storage', type, key, location, numel,
view)``, and ``('module', cls, file, source)`` for whole modules: the class is resolved
through the trust list like any global, the source text is ignored), then the list of
storage keys, then per key an 8-byte little-endian element count and the raw
(little-endian) bytes. The older tar-based format is recognised and refused.

Devices: storages are built on the CPU. ``map_location`` ``None``/``"cpu"`` keeps them there
(files saved from a GPU load onto the CPU); a device moves every storage there; a
``{saved: wanted}`` dict moves those it names (others stay on the CPU); a callable
``(storage, location) -> storage | None`` is called with each CPU storage, as torch does.
"""

from __future__ import annotations

import io
import mmap as _mmap
import os
import pickle
import struct
import sys
import tarfile
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from amber.errors import AmberError, CorruptFileError, DecodeError, FormatError, StorageError, UntrustedTypeError
from amber.security._arraystates import array_states_proven
from amber.security._unpickler import ObjectArraysAhead, PickleTrust, Refused, SafePyUnpickler, SafeUnpickler, refusal

__all__ = ["MAGIC_NUMBER", "PROTOCOL_VERSION", "is_torch_legacy", "is_torch_zip", "load_torch"]

#: The legacy format's first pickle (torch.serialization.MAGIC_NUMBER) and its version.
MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

#: The magic number as every pickle protocol writes it (torch uses protocol 2 by default).
_MAGIC_PICKLES = tuple({pickle.dumps(MAGIC_NUMBER, protocol=p) for p in range(pickle.HIGHEST_PROTOCOL + 1)})

#: Deflate expands at most ~1032x; no compressed member may claim to expand more.
_MAX_RATIO = 1032
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")
_ADVICE = "the file is truncated or corrupt, or was not written by torch.save"

#: torch's pickled storage class names (torch/storage.py ``_dtype_to_storage_type_map``).
_STORAGE_DTYPES = {
    "DoubleStorage": "float64",
    "FloatStorage": "float32",
    "HalfStorage": "float16",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
    "BFloat16Storage": "bfloat16",
    "ComplexDoubleStorage": "complex128",
    "ComplexFloatStorage": "complex64",
    "QInt8Storage": "qint8",
    "QInt32Storage": "qint32",
    "QUInt8Storage": "quint8",
    "QUInt4x2Storage": "quint4x2",
    "QUInt2x4Storage": "quint2x4",
}


def _pickle_members(names: Iterable[str]) -> list[str]:
    return [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1 and len(n) > len("/data.pkl")]


def is_torch_zip(names: list[str]) -> bool:
    """Do these zip member names look like a ``torch.save`` archive (a ``<prefix>/data.pkl``)?"""
    return bool(_pickle_members(names))


def is_torch_legacy(head: bytes) -> bool:
    """Does ``head`` start with the pickled magic number of torch's legacy format?"""
    head = bytes(head[:64])
    return any(head.startswith(m) for m in _MAGIC_PICKLES)


# ---------------------------------------------------------------------------------------
# stand-ins for torch's storage classes and the rebuild helpers that need checked arguments


class _StorageType:
    """What a pickled ``torch.FloatStorage`` & co. resolve to: a dtype marker, not callable
    (storages come from persistent ids only, never from a call the pickle makes)."""

    __slots__ = ("dtype", "name")

    def __init__(self, name: str, dtype: Any) -> None:
        self.name = name
        self.dtype = dtype

    def __repr__(self) -> str:
        return f"<torch storage type {self.name}>"


_base_overrides: dict[str, Any] | None = None


def _storage_overrides() -> dict[str, Any]:
    global _base_overrides
    if _base_overrides is None:
        import torch

        out: dict[str, Any] = {}
        for sname, dname in _STORAGE_DTYPES.items():
            dtype = getattr(torch, dname, None)
            if dtype is None:
                continue
            marker = _StorageType(sname, dtype)
            out[f"torch.{sname}"] = out[f"torch.cuda.{sname}"] = marker
        untyped = _StorageType("UntypedStorage", torch.uint8)
        out["torch.UntypedStorage"] = out["torch.storage.UntypedStorage"] = untyped
        typed = _StorageType("TypedStorage", None)
        out["torch.TypedStorage"] = out["torch.storage.TypedStorage"] = typed
        layouts = {str(v): v for v in vars(torch).values() if isinstance(v, torch.layout)}

        def _get_layout(name: Any) -> Any:
            if not isinstance(name, str) or name not in layouts:
                raise _Bad(f"torch.serialization._get_layout({name!r}) names no layout")
            return layouts[name]

        out["torch.serialization._get_layout"] = _get_layout
        # torch < 1.8 pickled these from the module torch.tensor (torch.load maps it too)
        out["torch.tensor._rebuild_from_type"] = torch._tensor._rebuild_from_type
        out["torch.tensor._rebuild_from_type_v2"] = torch._tensor._rebuild_from_type_v2
        _base_overrides = out
    return _base_overrides


def pickle_overrides(trusted: Iterable[str] = ()) -> dict[str, Any]:
    """Stand-ins for the torch names a *plain* pickle of tensors uses (``pickle.dump`` of a
    dict of tensors or of a module): storages arrive as ``torch.storage._load_from_bytes(b)``,
    whose bytes are a legacy ``torch.save`` file (read here, never by ``torch.load``), and
    tensors are rebuilt with the checked helpers."""
    trusted = tuple(trusted)

    def _load_from_bytes(data: Any) -> Any:
        if not isinstance(data, (bytes, bytearray)):
            raise _Bad(f"torch.storage._load_from_bytes was given {type(data).__name__}, not bytes")
        return load_torch(io.BytesIO(data), name="<a storage pickled inside the file>", trusted=trusted)

    out = dict(_storage_overrides())
    out.update(
        {
            "torch.storage._load_from_bytes": _load_from_bytes,
            "torch._utils._rebuild_tensor": _rebuild_tensor,
            "torch._utils._rebuild_tensor_v2": _rebuild_tensor_v2,
            "torch._utils._rebuild_tensor_v3": _rebuild_tensor_v3,
            "torch._utils._rebuild_parameter": _rebuild_parameter,
            "torch._utils._rebuild_parameter_with_state": _rebuild_parameter_with_state,
        }
    )
    return out


_E = TypeVar("_E", bound=AmberError)


def _located(exc: _E) -> _E:
    """Mark an error whose message already says where it happened."""
    exc._located = True  # type: ignore[attr-defined]
    return exc


class _Bad(Exception):
    """Raised inside the unpickler by this module's checks; becomes a CorruptFileError
    with the member name and byte position."""


def _int(value: Any, what: str, minimum: int = 0) -> int:
    if type(value) is not int or value < minimum:  # not bool, not a float
        raise _Bad(f"{what} is {value!r}, not an integer >= {minimum}")
    return value


def _ints(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)):  # torch.Size is a tuple
        raise _Bad(f"{what} is {type(value).__name__}, not a tuple of integers")
    return tuple(_int(v, what) for v in value)


def _extent(size: tuple[int, ...], stride: tuple[int, ...], offset: int) -> int:
    """Elements of storage a strided view needs (0 when it is empty)."""
    if len(size) != len(stride):
        raise _Bad(f"size {size} and stride {stride} differ in length")
    if 0 in size:
        return 0
    return offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1


def _no_hooks(hooks: Any) -> None:
    # torch.save always writes an empty OrderedDict (hooks are not saved); anything else
    # would install callables from the file on the tensor
    if hooks is not None and not (isinstance(hooks, dict) and not hooks):
        raise _Bad("a tensor carries backward hooks; torch.save never writes them")


def _checked_view(storage: Any, offset: Any, size: Any, stride: Any, dtype: Any) -> None:
    import torch

    if not isinstance(storage, torch.storage.TypedStorage):
        raise _Bad(f"a tensor's storage is {type(storage).__name__}, not a storage from the file")
    if not isinstance(dtype, torch.dtype):
        raise _Bad(f"a tensor's dtype is {dtype!r}")
    size_t, stride_t = _ints(size, "a tensor's size"), _ints(stride, "a tensor's stride")
    need = _extent(size_t, stride_t, _int(offset, "a tensor's storage offset")) * dtype.itemsize
    have = storage._untyped_storage.nbytes()
    if need > have:
        raise _Bad(
            f"a tensor of size {list(size_t)}, stride {list(stride_t)} and offset {offset} ({dtype}) "
            f"needs {need} bytes of storage, but its storage holds {have}"
        )


def _rebuild_tensor(storage: Any, storage_offset: Any, size: Any, stride: Any) -> Any:
    import torch

    _checked_view(storage, storage_offset, size, stride, getattr(storage, "dtype", None))
    return torch._utils._rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_tensor_v2(
    storage: Any,
    storage_offset: Any,
    size: Any,
    stride: Any,
    requires_grad: Any,
    backward_hooks: Any,
    metadata: Any = None,
) -> Any:
    import torch

    _checked_view(storage, storage_offset, size, stride, getattr(storage, "dtype", None))
    _no_hooks(backward_hooks)
    return torch._utils._rebuild_tensor_v2(
        storage, storage_offset, size, stride, requires_grad, backward_hooks, metadata
    )


def _rebuild_tensor_v3(
    storage: Any,
    storage_offset: Any,
    size: Any,
    stride: Any,
    requires_grad: Any,
    backward_hooks: Any,
    dtype: Any,
    metadata: Any = None,
) -> Any:
    import torch

    _checked_view(storage, storage_offset, size, stride, dtype)
    _no_hooks(backward_hooks)
    return torch._utils._rebuild_tensor_v3(
        storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype, metadata
    )


def _rebuild_parameter(data: Any, requires_grad: Any, backward_hooks: Any) -> Any:
    import torch

    _no_hooks(backward_hooks)
    return torch._utils._rebuild_parameter(data, requires_grad, backward_hooks)


def _rebuild_parameter_with_state(data: Any, requires_grad: Any, backward_hooks: Any, state: Any) -> Any:
    import torch

    _no_hooks(backward_hooks)
    return torch._utils._rebuild_parameter_with_state(data, requires_grad, backward_hooks, state)


def _validate_sparse(t: Any) -> None:
    """torch's invariant checks (indices in range, compressed indices ordered), which
    ``torch.load`` runs only when the process opted in."""
    import torch

    if t.layout is torch.sparse_coo:
        args = (t._indices(), t._values(), t.size(), t.is_coalesced())
        check: Callable[..., Any] = torch._validate_sparse_coo_tensor_args
    else:
        if t.layout in (torch.sparse_csr, torch.sparse_bsr):
            compressed, plain = t.crow_indices(), t.col_indices()
        else:
            compressed, plain = t.ccol_indices(), t.row_indices()
        args = (compressed, plain, t.values(), t.size(), t.layout)
        check = torch._validate_sparse_compressed_tensor_args
    try:
        check(*args, check_pinning=False)
    except TypeError:  # torch before check_pinning
        check(*args)


# ---------------------------------------------------------------------------------------
# devices


def _relocator(map_location: Any) -> Callable[[Any, str], Any] | None:
    """``(cpu_storage, saved_location) -> storage`` for ``map_location``; None keeps the CPU."""
    import torch

    def move(storage: Any, device: Any) -> Any:
        dev = torch.device(device)
        if dev.type == "cpu":
            return storage
        return torch.serialization.default_restore_location(storage, str(dev))

    if map_location is None:
        return None
    if isinstance(map_location, bytes):
        map_location = map_location.decode("ascii")
    if isinstance(map_location, (str, torch.device)):
        if torch.device(map_location).type == "cpu":
            return None
        return lambda storage, location: move(storage, map_location)
    if isinstance(map_location, dict):
        table = dict(map_location)
        return lambda storage, location: move(storage, table[location]) if location in table else storage

    if callable(map_location):

        def call(storage: Any, location: str) -> Any:
            out = map_location(storage, location)
            if out is None:
                return storage
            if isinstance(out, torch.storage.TypedStorage):
                out = out._untyped_storage
            if not isinstance(out, torch.UntypedStorage):
                raise TypeError(f"map_location returned {type(out).__name__}, not a storage")
            return out

        return call
    raise TypeError(
        f"map_location must be None, a device (string or torch.device), a {{saved: wanted}} dict "
        f"or a callable, not {type(map_location).__name__}"
    )


# ---------------------------------------------------------------------------------------
# the unpickler


class _Persistent:
    """Storages come through ``persistent_load`` from the loader's ``persistent``."""

    def __init__(self, file: Any, trust: PickleTrust, persistent: Callable[[Any], Any], **kwargs: Any) -> None:
        super().__init__(file, trust, **kwargs)  # type: ignore[call-arg]
        self._persistent = persistent

    def persistent_load(self, pid: Any) -> Any:
        return self._persistent(pid)


class _TorchUnpickler(_Persistent, SafeUnpickler):
    pass


class _TorchPyUnpickler(_Persistent, SafePyUnpickler):
    """The pure-Python twin, for the pickles that hold object arrays (it checks their states)."""


def _ascii(value: Any, what: str) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("ascii")
        except UnicodeDecodeError:
            raise _Bad(f"{what} {value!r} is not ASCII") from None
    if not isinstance(value, str):
        raise _Bad(f"{what} is {type(value).__name__}, not a string")
    return value


class _Loader:
    """What one load shares: the file, the trust, the storages read so far, the checks."""

    def __init__(self, fh: Any, size: int, name: str, trusted: Iterable[str], map_location: Any) -> None:
        self.fh = fh
        self.size = size
        self.name = name
        self.relocate = _relocator(map_location)
        self.sparse: list[Any] = []
        self.member = ""  # where the pickle being read lives (for messages)
        self.stream: Any = None  # the pickle's file object (its position, for messages)
        overrides = dict(_storage_overrides())
        overrides.update(
            {
                "torch._utils._rebuild_tensor": _rebuild_tensor,
                "torch._utils._rebuild_tensor_v2": _rebuild_tensor_v2,
                "torch._utils._rebuild_tensor_v3": _rebuild_tensor_v3,
                "torch._utils._rebuild_parameter": _rebuild_parameter,
                "torch._utils._rebuild_parameter_with_state": _rebuild_parameter_with_state,
                "torch._utils._rebuild_sparse_tensor": self._rebuild_sparse,
                "torch._utils._rebuild_nested_tensor": self._rebuild_nested,
            }
        )
        self.trust = PickleTrust(trusted, overrides=overrides)

    # -- messages ---------------------------------------------------------------------

    def where(self, member: str | None = None) -> str:
        member = self.member if member is None else member
        return f"{self.name}: {member}" if member else f"{self.name}"

    def corrupt(self, msg: str, member: str | None = None) -> CorruptFileError:
        return _located(CorruptFileError(f"{self.where(member)}: {msg}; {_ADVICE}"))

    def at(self) -> str:
        """The pickle being read and roughly where in it (the unpickler reads ahead a little)."""
        try:
            return f"{self.member} (near byte {self.stream.tell()})"
        except Exception:
            return self.member

    # -- rebuild helpers that need this load's state -----------------------------------

    def _rebuild_sparse(self, layout: Any, data: Any) -> Any:
        import torch

        if not isinstance(data, tuple):
            raise _Bad(f"a sparse tensor's data is {type(data).__name__}, not a tuple")
        if layout is torch.sparse_coo:
            if len(data) == 3:
                (indices, values, size), coalesced = data, None
            elif len(data) == 4:
                indices, values, size, coalesced = data
            else:
                raise _Bad(f"a sparse COO tensor's data has {len(data)} items")
            if coalesced is not None and type(coalesced) is not bool:
                raise _Bad(f"a sparse tensor's is_coalesced is {coalesced!r}")
            t = torch.sparse_coo_tensor(indices, values, size, check_invariants=False, is_coalesced=coalesced)
        elif layout in (torch.sparse_csr, torch.sparse_csc, torch.sparse_bsr, torch.sparse_bsc):
            if len(data) != 4:
                raise _Bad(f"a compressed sparse tensor's data has {len(data)} items")
            compressed, plain, values, size = data
            t = torch.sparse_compressed_tensor(compressed, plain, values, size, layout=layout, check_invariants=False)
        else:
            raise _Bad(f"a sparse tensor has layout {layout!r}")
        self.sparse.append(t)
        return t

    def _rebuild_nested(self, buffer: Any, sizes: Any, strides: Any, offsets: Any) -> Any:
        import torch

        if not self.data_ready:
            raise _Bad("nested tensors in the legacy format are not supported (their sizes are read before their data)")
        if not all(isinstance(t, torch.Tensor) for t in (buffer, sizes, strides, offsets)):
            raise _Bad("a nested tensor's parts are not tensors")
        if buffer.dim() != 1 or not buffer.is_contiguous() or buffer.layout is not torch.strided:
            raise _Bad("a nested tensor's buffer is not a flat tensor")
        if sizes.dim() != 2 or strides.shape != sizes.shape or offsets.shape != sizes.shape[:1]:
            raise _Bad(f"a nested tensor's sizes {tuple(sizes.shape)}, strides and offsets do not match")
        for row_size, row_stride, off in zip(sizes.tolist(), strides.tolist(), offsets.tolist()):
            shape, steps = _ints(row_size, "a nested size"), _ints(row_stride, "a nested stride")
            need = _extent(shape, steps, _int(off, "a nested offset"))
            if need > buffer.numel():
                raise _Bad(f"a nested tensor's component needs {need} elements of a {buffer.numel()}-element buffer")
        return torch._utils._rebuild_nested_tensor(buffer, sizes, strides, offsets)

    data_ready = True

    # -- running a pickle --------------------------------------------------------------

    def unpickle(
        self, stream: Any, member: str, persistent: Callable[[Any], Any], pickle_bytes: Callable[[], Any]
    ) -> Any:
        """Unpickle one pickle from ``stream``; ``pickle_bytes()`` gives its bytes for the
        full list of untrusted globals if one is refused.

        When the first reading stops for arrays ahead, the pickle is read again from a copy
        of its bytes; ``stream`` is then left just past the pickle, as a reading of
        ``stream`` itself leaves it: in the legacy format the storage key list and the
        storages follow in the same stream."""
        self.member, self.stream = member, stream
        try:
            start = stream.tell()
        except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
            start = None
        try:
            try:
                return _TorchUnpickler(stream, self.trust, persistent).load()
            except ObjectArraysAhead:
                data = pickle_bytes()
                result = self._read_again(data, persistent)
                if start is not None:
                    stream.seek(start + len(data))
                return result
        except Refused as exc:
            try:
                buf = pickle_bytes()
            except Exception:
                buf = None
            raise refusal(buf, 0, self.trust, exc, f"{self.where()}: ") from None
        except _Bad as exc:
            raise self.corrupt(str(exc), self.at()) from None
        except AmberError as exc:
            if isinstance(exc, UntrustedTypeError) or getattr(exc, "_located", False):
                raise
            # from the trust list (a name not importable here) or a guarded substitute
            kind = CorruptFileError if isinstance(exc, CorruptFileError) else FormatError if isinstance(exc, FormatError) else DecodeError
            raise _located(kind(f"{self.where(self.at())}: {exc}")) from None
        except MemoryError:
            raise
        except Exception as exc:  # pickle, torch and Python errors from what the pickle built
            raise self.corrupt(f"cannot unpickle it ({type(exc).__name__}: {exc})", self.at()) from None

    def _read_again(self, data: bytes, persistent: Callable[[Any], Any]) -> Any:
        """Read the pickle ``data`` again: at C speed when its array states are proven,
        else with the checked pure-Python reading."""
        if array_states_proven(data, 0):
            try:
                return _TorchUnpickler(io.BytesIO(data), self.trust, persistent, proven=True).load()
            except ObjectArraysAhead:  # (a dtype made another way: the checked reading)
                pass
        return _TorchPyUnpickler(io.BytesIO(data), self.trust, persistent).load()

    def finish(self) -> None:
        for t in self.sparse:
            try:
                _validate_sparse(t)
            except Exception as exc:
                raise self.corrupt(f"a sparse tensor is invalid: {exc}") from None
        self.sparse.clear()

    def place(self, untyped: Any, location: str, what: str) -> Any:
        if self.relocate is None:
            return untyped
        try:
            return self.relocate(untyped, location)
        except AmberError:
            raise
        except Exception as exc:
            raise _located(DecodeError(
                f"{self.where(what)}: cannot place the storage saved on {location!r} as map_location says: "
                f"{type(exc).__name__}: {exc}"
            )) from None


# ---------------------------------------------------------------------------------------
# zip archives


class _ZipLoader(_Loader):
    def __init__(self, fh: Any, size: int, name: str, trusted: Iterable[str], map_location: Any, mapped: Any) -> None:
        super().__init__(fh, size, name, trusted, map_location)
        self.mapped = mapped
        self.storages: dict[str, Any] = {}
        self.stored_total = 0
        self.swap = False

    def open(self) -> None:
        try:
            self.fh.seek(0)
            self.zf = zipfile.ZipFile(self.fh)
            infos = self.zf.infolist()
        except Exception as exc:
            raise _located(
                CorruptFileError(f"{self.name}: not a readable zip archive ({type(exc).__name__}: {exc}); {_ADVICE}")
            ) from None
        names = [i.filename for i in infos]
        if len(set(names)) != len(names):
            dup = sorted(n for n, k in Counter(names).items() if k > 1)
            raise FormatError(
                f"{self.name}: the zip archive holds several members named {', '.join(map(repr, dup[:5]))}; "
                "refusing an ambiguous archive"
            )
        self.infos = {i.filename: i for i in infos}
        pkls = _pickle_members(names)
        if len(pkls) != 1:
            if not pkls:
                raise FormatError(
                    f"{self.name}: a zip archive without a '<name>/data.pkl' member is not a torch.save file"
                )
            raise FormatError(
                f"{self.name}: the zip archive holds several pickles ({', '.join(pkls[:5])}); torch.save writes one"
            )
        self.pkl = pkls[0]
        self.prefix = self.pkl[: -len("data.pkl")]
        if self.prefix + "constants.pkl" in self.infos or any(n.startswith(self.prefix + "code/") for n in names):
            raise FormatError(
                f"{self.name}: a TorchScript archive (torch.jit.save): loading one runs the code inside it, "
                "which amber never does. Load it with torch.jit.load only if you trust it"
            )
        order = self.infos.get(self.prefix + "byteorder")
        if order is not None:
            value = self.read_small(order, 16)
            if value not in (b"little", b"big"):
                raise self.corrupt(f"byte order {value[:16]!r} is neither 'little' nor 'big'", order.filename)
            self.swap = value.decode() != sys.byteorder
        elif sys.byteorder != "little":
            self.swap = True  # torch's default for files without the record

    def read_small(self, info: zipfile.ZipInfo, limit: int) -> bytes:
        """A whole (non-storage) member through zipfile, which checks its CRC."""
        if info.compress_type == zipfile.ZIP_STORED:
            limit = min(limit, self.size)
        else:
            limit = min(limit, _MAX_RATIO * info.compress_size + 1024)
        if info.file_size > limit:
            raise self.corrupt(f"declares {info.file_size} bytes, more than it can hold", info.filename)
        try:
            return self.zf.read(info)
        except Exception as exc:
            raise self.corrupt(f"cannot be read ({type(exc).__name__}: {exc})", info.filename) from None

    def data_offset(self, info: zipfile.ZipInfo) -> int:
        """Where a member's bytes start, from its local header (checked against the central directory)."""
        self.fh.seek(info.header_offset)
        head = self.fh.read(_LOCAL_HEADER.size)
        if len(head) != _LOCAL_HEADER.size:
            raise self.corrupt(f"its local header (byte {info.header_offset}) is past the end", info.filename)
        fields = _LOCAL_HEADER.unpack(head)
        if fields[0] != b"PK\x03\x04":
            raise self.corrupt(f"no local header at byte {info.header_offset}", info.filename)
        nlen, xlen = fields[10], fields[11]
        raw = self.fh.read(nlen)
        enc = "utf-8" if info.flag_bits & 0x800 else "cp437"
        if raw.decode(enc, "replace") != info.filename:
            raise self.corrupt(f"its local header names another member, {raw[:80]!r}", info.filename)
        return info.header_offset + _LOCAL_HEADER.size + nlen + xlen

    def read_storage(self, info: zipfile.ZipInfo, nbytes: int) -> Any:
        import torch

        member = info.filename
        if info.file_size != nbytes:
            raise self.corrupt(f"holds {info.file_size} bytes, but the pickle declares a storage of {nbytes}", member)
        if info.flag_bits & 0x1:
            raise self.corrupt("is encrypted; torch.save never encrypts", member)
        if nbytes == 0:
            return _alloc(0)[1]
        if info.compress_type != zipfile.ZIP_STORED:
            if nbytes > _MAX_RATIO * info.compress_size + 1024:
                raise self.corrupt(f"claims {nbytes} bytes from {info.compress_size} compressed ones", member)
            view, storage = _alloc(nbytes)
            try:
                with self.zf.open(info) as src:
                    got = 0
                    while got < nbytes:
                        n = src.readinto(view[got:])
                        if not n:
                            break
                        got += n
                    extra = src.read(1)  # reaches the end: zipfile checks the CRC there
            except Exception as exc:
                raise self.corrupt(f"cannot be decompressed ({type(exc).__name__}: {exc})", member) from None
            if got != nbytes or extra:
                raise self.corrupt(f"decompresses to other than the {nbytes} bytes it declares", member)
            return storage
        if info.compress_size != nbytes:
            raise self.corrupt(f"is stored uncompressed in {info.compress_size} bytes but declares {nbytes}", member)
        start = self.data_offset(info)
        if start + nbytes > self.size:
            raise self.corrupt(f"runs from byte {start} to {start + nbytes}, past the end ({self.size})", member)
        self.stored_total += nbytes
        if self.stored_total > self.size:
            raise self.corrupt("storage members overlap (together they are larger than the file)", member)
        if self.mapped is not None and start % 64 == 0:
            return torch.frombuffer(self.mapped, dtype=torch.uint8, count=nbytes, offset=start).untyped_storage()
        view, storage = _alloc(nbytes)
        _readinto(self.fh, start, view, lambda got: self.corrupt(f"ends after {got} of its {nbytes} bytes", member))
        return storage

    def persistent(self, pid: Any) -> Any:
        import torch

        if not isinstance(pid, tuple) or not pid:
            raise _Bad(f"a persistent id is {type(pid).__name__}, not a tuple")
        kind = _ascii(pid[0], "a persistent id's kind")
        if kind != "storage":
            raise _Bad(f"a persistent id of kind {kind!r} (torch.save's archives hold only storages)")
        if len(pid) != 5:
            raise _Bad(f"a storage persistent id has {len(pid)} items, not 5")
        _, storage_type, key, location, numel = pid
        if not isinstance(storage_type, _StorageType) or storage_type.dtype is None:
            raise _Bad(f"a storage's type is {storage_type!r}, not one of torch's storage types")
        key = _ascii(key, "a storage key")
        location = _ascii(location, "a storage location")
        numel = _int(numel, f"storage {key!r}'s element count")
        cached = self.storages.get(key)
        if cached is not None:
            return cached
        dtype = storage_type.dtype
        member = f"{self.prefix}data/{key}"
        info = self.infos.get(member)
        if info is None:
            raise self.corrupt(f"member {member!r}, which {self.pkl!r} refers to, is missing", member=self.pkl)
        untyped = self.read_storage(info, numel * dtype.itemsize)
        if self.swap and dtype.itemsize > 1:
            untyped.byteswap(dtype)
        untyped = self.place(untyped, location, member)
        typed = torch.storage.TypedStorage(wrap_storage=untyped, dtype=dtype, _internal=True)
        self.storages[key] = typed
        return typed

    def load(self) -> Any:
        self.open()
        info = self.infos[self.pkl]
        data = self.read_small(info, self.size * _MAX_RATIO + 1024)
        result = self.unpickle(io.BytesIO(data), self.pkl, self.persistent, lambda: data)
        self.finish()
        return result


def _alloc(nbytes: int) -> tuple[memoryview, Any]:
    """Fresh memory for a storage: (a writable view to read into, the UntypedStorage over it).
    The storage is not resizable, so no ``Tensor.set_`` can grow it."""
    import torch

    if not nbytes:  # frombuffer refuses empty buffers
        return memoryview(b""), torch.frombuffer(bytearray(1), dtype=torch.uint8).untyped_storage()[:0]
    # torch's allocator (as torch.load's storages: freed tensor memory is reused without page
    # faults), wrapped so that the storage is not resizable
    arr = torch.empty(nbytes, dtype=torch.uint8).numpy()
    return memoryview(arr), torch.frombuffer(arr, dtype=torch.uint8).untyped_storage()


def _readinto(fh: Any, offset: int, view: memoryview, short: Callable[[int], Exception]) -> None:
    """Fill ``view`` from ``fh`` at ``offset`` (one copy, straight into the storage's memory)."""
    fh.seek(offset)
    got, n = 0, len(view)
    readinto = getattr(fh, "readinto", None)
    while got < n:
        if readinto is not None:
            k = readinto(view[got:])
        else:
            chunk = fh.read(min(n - got, 1 << 24))
            k = len(chunk)
            view[got : got + k] = chunk
        if not k:
            raise short(got)
        got += k


# ---------------------------------------------------------------------------------------
# the legacy stream


class _LegacyLoader(_Loader):
    data_ready = False

    def __init__(self, fh: Any, size: int, name: str, trusted: Iterable[str], map_location: Any) -> None:
        super().__init__(fh, size, name, trusted, map_location)
        self.roots: dict[Any, Any] = {}  # root key -> TypedStorage (CPU)
        self.views: dict[Any, Any] = {}
        self.allocated = 0
        self.budget = 0
        self.buffers: dict[Any, memoryview] = {}  # root key -> its storage's memory, to read into
        self.locations: dict[Any, str] = {}
        self.final: dict[Any, Any] | None = None  # placed storages, for the second pass

    def header(self, what: str) -> Any:
        start = self.fh.tell()
        return self.unpickle(self.fh, what, self.no_persistent, lambda: _one_pickle(self.fh, start))

    @staticmethod
    def no_persistent(pid: Any) -> Any:
        raise _Bad("a persistent id where the format has none")

    def persistent(self, pid: Any) -> Any:
        import torch

        if not isinstance(pid, tuple) or not pid:
            raise _Bad(f"a persistent id is {type(pid).__name__}, not a tuple")
        kind = _ascii(pid[0], "a persistent id's kind")
        if kind == "module":
            # ('module', cls, source_file, source): the class came through find_class (the
            # trust list); torch only compares the source text with the current one
            if len(pid) != 4 or not (isinstance(pid[1], type) and issubclass(pid[1], torch.nn.Module)):
                raise _Bad(f"a 'module' persistent id does not hold a torch.nn.Module class: {pid[1:2]!r}")
            return pid[1]
        if kind != "storage":
            raise _Bad(f"a persistent id of unknown kind {kind!r}")
        if len(pid) != 6:
            raise _Bad(f"a storage persistent id has {len(pid)} items, not 6")
        _, storage_type, root_key, location, numel, view = pid
        if not isinstance(storage_type, _StorageType) or storage_type.dtype is None:
            raise _Bad(f"a storage's type is {storage_type!r}, not one of torch's storage types")
        if not isinstance(root_key, (str, bytes, int)):
            raise _Bad(f"a storage key is {type(root_key).__name__}")
        location = _ascii(location, "a storage location")
        dtype = storage_type.dtype
        nbytes = _int(numel, f"storage {root_key!r}'s element count") * dtype.itemsize
        if self.final is not None:
            typed = self.final[root_key]
        else:
            typed = self.roots.get(root_key)
            if typed is None:
                # every storage is followed by its 8-byte count in the rest of the file
                self.allocated += nbytes + 8
                if self.allocated > self.budget:
                    raise _Bad(f"storage {root_key!r} declares {nbytes} bytes: more than the file holds")
                memory, untyped = _alloc(nbytes)
                typed = torch.storage.TypedStorage(wrap_storage=untyped, dtype=dtype, _internal=True)
                self.roots[root_key] = typed
                self.buffers[root_key] = memory
                self.locations[root_key] = location
        if view is None:
            return typed
        if not isinstance(view, tuple) or len(view) != 3:
            raise _Bad(f"a storage view is {view!r}")
        view_key, offset, vsize = view
        if not isinstance(view_key, (str, bytes, int)):
            raise _Bad(f"a storage view key is {type(view_key).__name__}")
        found = self.views.get(view_key)
        if found is None:
            item, root = typed.dtype.itemsize, typed._untyped_storage
            start = _int(offset, "a storage view's offset") * item
            stop = start + _int(vsize, "a storage view's size") * item
            if stop > root.nbytes():
                raise _Bad(f"a storage view of bytes {start}:{stop} runs past its {root.nbytes()}-byte storage")
            found = torch.storage.TypedStorage(wrap_storage=root[start:stop], dtype=typed.dtype, _internal=True)
            self.views[view_key] = found
        return found

    def load(self) -> Any:
        import torch

        if self.header("the magic number pickle") != MAGIC_NUMBER:
            raise self.corrupt("the magic number is not torch's", "the magic number pickle")
        version = self.header("the protocol version pickle")
        if version != PROTOCOL_VERSION:
            raise FormatError(
                f"{self.name}: torch's legacy format with protocol version {version!r}; only {PROTOCOL_VERSION} exists"
            )
        info = self.header("the sys_info pickle")
        if not isinstance(info, dict) or info.get("protocol_version") != PROTOCOL_VERSION:
            raise self.corrupt(f"sys_info is {str(info)[:200]}, not torch's dict", "the sys_info pickle")
        # the storages' bytes are little-endian whatever the writer's byte order (torch
        # swaps while writing), so sys_info['little_endian'] needs no action
        main = self.fh.tell()
        self.budget = self.size - main
        result = self.unpickle(self.fh, "the object pickle", self.persistent, lambda: _one_pickle(self.fh, main))
        keys = self.header("the storage key list")
        label = "the storage key list"
        if (
            not isinstance(keys, list)
            or not all(isinstance(k, (str, bytes, int)) for k in keys)
            or len(set(keys)) != len(keys)
        ):
            raise self.corrupt("it is not a list of distinct keys", label)
        if set(keys) != set(self.roots):
            missing = sorted(map(repr, set(self.roots) - set(keys)))[:5]
            extra = sorted(map(repr, set(keys) - set(self.roots)))[:5]
            msg = f"it differs from the storages the object pickle uses ({missing} left out, {extra} unknown)"
            raise self.corrupt(msg, label)
        for key in keys:
            typed = self.roots[key]
            nbytes = typed._untyped_storage.nbytes()
            where = f"storage {key!r}"
            at = self.fh.tell()
            head = self.fh.read(8)
            if len(head) != 8:
                raise self.corrupt(f"the file ends at byte {at + len(head)}, before the storage's size", where)
            (count,) = struct.unpack("<q", head)
            item = typed.dtype.itemsize
            if count < 0 or count * item != nbytes:
                msg = f"{count} elements of {item} bytes at byte {at}; the pickle declares {nbytes} bytes"
                raise self.corrupt(msg, where)
            if nbytes:
                def short(got: int, at: int = at, nbytes: int = nbytes, where: str = where) -> AmberError:
                    return self.corrupt(f"the file ends {got} bytes into its {nbytes} (from byte {at + 8})", where)

                _readinto(self.fh, at + 8, self.buffers[key], short)
        self.data_ready = True
        self.finish()
        if self.relocate is not None:
            # the tensors were built over the CPU storages before their bytes were read:
            # build them again over the placed storages
            self.final = {}
            for k, t in self.roots.items():
                placed = self.place(t._untyped_storage, self.locations[k], f"storage {k!r}")
                self.final[k] = torch.storage.TypedStorage(wrap_storage=placed, dtype=t.dtype, _internal=True)
            self.views.clear()
            end = self.fh.tell()
            self.fh.seek(main)
            result = self.unpickle(self.fh, "the object pickle", self.persistent, lambda: _one_pickle(self.fh, main))
            self.finish()
            self.fh.seek(end)
        return result


def _one_pickle(fh: Any, start: int) -> bytes:
    """The bytes of the pickle at ``start`` (its end found by the static walker; nothing runs)."""
    from amber.security._walk import walk

    try:
        buf: Any = _mmap.mmap(fh.fileno(), 0, access=_mmap.ACCESS_READ)
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        fh.seek(0)
        buf = fh.read()
    end = walk(buf, start).end
    return bytes(buf[start:end])


# ---------------------------------------------------------------------------------------
# entry point


def _tar_names(fh: Any) -> list[str] | None:
    try:
        with tarfile.open(fileobj=fh, mode="r:") as tar:
            return tar.getnames()
    except Exception:
        return None


def load_torch(
    path_or_fileobj: Any,
    *,
    name: str,
    trusted: Iterable[str] = (),
    mmap: bool = False,
    map_location: Any = None,
    unsafe: bool = False,
) -> Any:
    """Load what ``torch.save`` wrote, without running anything the trust list does not allow.

    ``name`` is how messages refer to the file. ``mmap=True`` maps the storages of a zip
    archive on disk copy-on-write instead of reading them (tensors stay writable; writes
    never reach the file). ``unsafe=True`` hands the file to ``torch.load(weights_only=False)``,
    which runs whatever the file says: only for files you made yourself.
    """
    import torch

    if unsafe:
        return torch.load(path_or_fileobj, weights_only=False, map_location=map_location, mmap=mmap or None)
    _relocator(map_location)  # wrong types fail before the file is opened
    trusted = (trusted,) if isinstance(trusted, str) else tuple(trusted)
    if not all(isinstance(t, str) and t for t in trusted):
        raise TypeError(f"trusted= takes dotted names as strings, not {trusted!r}")
    owned = isinstance(path_or_fileobj, (str, bytes, os.PathLike))
    try:
        fh = open(path_or_fileobj, "rb") if owned else path_or_fileobj
    except OSError as exc:
        raise StorageError(f"{name}: cannot open: {exc}") from exc
    mapped = None
    try:
        try:
            start = fh.tell()
            fh.seek(0, io.SEEK_END)
            size = fh.tell()
            fh.seek(start)
            head = fh.read(512)
            fh.seek(start)
        except (OSError, ValueError, AttributeError) as exc:
            raise StorageError(
                f"{name}: cannot read the file ({type(exc).__name__}: {exc}); pass a path or a seekable binary file"
            ) from exc
        if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
            if mmap:
                try:
                    mapped = _mmap.mmap(fh.fileno(), 0, access=_mmap.ACCESS_COPY)
                except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
                    mapped = None  # not a file on disk: read instead
            return _ZipLoader(fh, size, name, trusted, map_location, mapped).load()
        if is_torch_legacy(head):
            return _LegacyLoader(fh, size, name, trusted, map_location).load()
        if head[257:262] == b"ustar":
            names = _tar_names(fh) or []
            if {"pickle", "storages", "tensors"} <= set(names):
                raise FormatError(
                    f"{name}: PyTorch's tar-based format (torch before 0.4) is not supported; "
                    "load it with that old torch and save it again with a current one"
                )
            raise FormatError(f"{name}: a tar archive, not a PyTorch file")
        raise FormatError(
            f"{name}: not a PyTorch file (neither a torch.save zip archive nor torch's legacy format: "
            f"it starts with {head[:8]!r})"
        )
    finally:
        if owned:
            fh.close()
