"""Restricted unpicklers: pickle's own C (and Python) machinery, with globals resolved
only through amber's trust list.

A pickle can only reach code through its globals (``GLOBAL``, ``STACK_GLOBAL``, ``INST``
and extension codes all go through ``find_class``); every call it makes (``REDUCE``,
``NEWOBJ``, ``BUILD``'s ``__setstate__``) calls something a global produced. So resolving
each global through the trust list before it is returned is enough to keep a load from
reaching anything untrusted, at the C unpickler's full speed.

When a global is refused the load stops at once, and :func:`refusal` walks the whole stream
statically (nothing runs) to name *every* global the file needs that is not trusted, so
one error lists them all. Nothing from the partial load is returned.

A few helpers that pickles of ordinary data name are dangerous in general (they allocate
what they are told, or rebuild any class) and are denied for the native format; for
pickles they are replaced by guarded versions (:data:`SUBSTITUTES`) that accept only what
real pickles pass them.
"""

from __future__ import annotations

import _compat_pickle
import copy
import enum
import functools
import pickle
import sys
import types
from collections.abc import Callable, Iterable
from typing import Any

from amber.security._arrowcheck import validate_arrow
from amber.security._guards import arg_check_for, check_for, dtype_problem, find_checked, state_check_for
from amber.trust import _import, is_denied, is_trusted
from amber.errors import CorruptFileError, DecodeError, FormatError, UntrustedTypeError

__all__ = [
    "PICKLE_TRUSTED",
    "PickleTrust",
    "ObjectArraysAhead",
    "Refused",
    "SUBSTITUTES",
    "SafePyUnpickler",
    "SafeUnpickler",
    "refusal",
]


class Refused(UntrustedTypeError):
    """A global was refused while unpickling (the caller turns it into the full list)."""

    def __init__(self, name: str, denied: bool) -> None:
        self.name = name
        super().__init__([name], denied=[name] if denied else ())


#: Names that pickles of trusted data use to rebuild it, trusted for pickle-family loads
#: only (the native format rebuilds these types with its own handlers).
PICKLE_TRUSTED: frozenset[str] = frozenset(
    {"_codecs.encode"}  # protocol 0-2 bytes: _codecs.encode(str, "latin1")
    | {f"numpy.{m}.scalar" for m in ("core.multiarray", "_core.multiarray")}
    | {f"numpy.{m}._frombuffer" for m in ("core.numeric", "_core.numeric")}
    | {
        "numpy.random._pickle.__randomstate_ctor",
        "numpy.random._pickle.__generator_ctor",
        "numpy.random._pickle.__bit_generator_ctor",
        # StringDType's pickles make it with this (watched in the C unpickler as the dtype
        # classes are: its arrays hold references)
        "numpy._core._internal._convert_to_stringdtype_kwargs",
        # torch: sizes, devices and the rebuild helpers that check nothing themselves
        # allocates (tensors and storages come from the torch file reader's own checked
        # stand-ins: amber.formats._torchfile.pickle_overrides)
        "torch._utils._rebuild_device_tensor_from_numpy",
        "torch._utils._rebuild_meta_tensor_no_storage",
        "torch._utils._rebuild_wrapper_subclass",
        "torch._tensor._rebuild_from_type",
        "torch._tensor._rebuild_from_type_v2",
        "torch.Size",
        "torch.device",
        # the type argument of _rebuild_from_type_v2 (like numpy.ndarray, calling it with a
        # size reserves uninitialised memory; see docs/pickle-family.md, "Limits")
        "torch.Tensor",
        "torch.nn.parameter.Parameter",
    }
    | {
        # datetimes, time zones and other builtin value types that the native format
        # saves with its own handlers
        "datetime.datetime",
        "datetime.date",
        "datetime.time",
        "datetime.timedelta",
        "datetime.timezone",
        "decimal.Decimal",
        "fractions.Fraction",
        "uuid.UUID",
        "uuid.SafeUUID",
        "pathlib.PurePath",
        "pathlib.PurePosixPath",
        "pathlib.PureWindowsPath",
        "pathlib.Path",
        "pathlib.PosixPath",
        "pathlib.WindowsPath",
        "zoneinfo.ZoneInfo",
        "zoneinfo.ZoneInfo._unpickle",
        "pytz._p",
        "pytz._UTC",
        # pandas' singletons
        "pandas.NA",
        "pandas._libs.missing.NA",
        "pandas.NaT",
        "pandas._libs.tslibs.nattype.NaT",
    }
    | {
        # Arrow types and buffers (pandas' Arrow-backed columns); arrays are validated
        f"pyarrow.lib.{n}"
        for n in (
            "type_for_alias field schema list_ large_list list_view large_list_view map_ struct "
            "dictionary timestamp time32 time64 duration date32 date64 decimal32 decimal64 decimal128 "
            "decimal256 binary large_binary string large_string py_buffer"
        ).split()
    }
    | {
        f"torch.{d}"
        for d in (
            "float32 float float64 double float16 half bfloat16 complex64 cfloat complex128 cdouble "
            "uint8 int8 int16 short int32 int int64 long bool uint16 uint32 uint64 "
            "float8_e4m3fn float8_e5m2 strided sparse_coo sparse_csr contiguous_format channels_last "
            "preserve_format"
        ).split()
    }
)


def _np_reconstruct(subtype: Any, shape: Any, dtype: Any) -> Any:
    """``numpy.core.multiarray._reconstruct``, which array pickles call with an empty shape
    before ``__setstate__`` fills the array; refused for anything that would allocate."""
    import numpy as np

    from numpy._core.multiarray import _reconstruct  # type: ignore[import-not-found]

    subtype = _real_class(subtype)
    if not (isinstance(subtype, type) and issubclass(subtype, np.ndarray)):
        raise DecodeError(f"numpy's _reconstruct was asked to build {subtype!r}, which is not an array type")
    if not isinstance(shape, tuple) or any(not isinstance(s, int) or s < 0 or s > 1 for s in shape):
        raise DecodeError(f"numpy's _reconstruct was given shape {shape!r}; pickled arrays pass an empty one")
    return _reconstruct(subtype, shape, dtype)


def _np_scalar(*args: Any) -> Any:
    """``numpy.core.multiarray.scalar``: for a dtype that holds objects, only as NumPy's own
    pickles call it, with a 0-d array of that dtype (an empty array made the scalar read an
    item past it: a crash on first use; found in review)."""
    import numpy as np

    from numpy._core.multiarray import scalar  # type: ignore[import-not-found]

    if len(args) >= 2 and isinstance(args[0], np.dtype) and args[0].hasobject:
        obj = args[1]
        if not (type(obj) is np.ndarray and obj.shape == () and obj.dtype == args[0]):
            raise DecodeError(f"numpy's scalar was given {type(obj).__name__} data for the dtype {args[0]!r:.60}; "
                              "pickles give a 0-d array of it")
    return scalar(*args)


def check_ndarray_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Refuse ``numpy.ndarray(*args, **kwargs)`` (or its ``__new__``) with a ``buffer``:
    NumPy takes the array's items from those bytes, object pointers included (forged ones,
    for an object dtype). Array pickles never pass one."""
    if (len(args) >= 3 and args[2] is not None) or kwargs.get("buffer") is not None:
        raise DecodeError("the pickle calls numpy.ndarray with a buffer, whose bytes NumPy would take as the "
                          "array's items; refusing")


class _NdarrayWatch(type):
    """Metaclass of the stand-in for ``numpy.ndarray`` in a C-unpickler load: calling it
    (REDUCE) or its ``__new__`` (NEWOBJ) checks the arguments (:func:`check_ndarray_call`)."""

    _amber_real: type

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        check_ndarray_call(args, kwargs)
        return cls._amber_real(*args, **kwargs)


@functools.lru_cache(maxsize=1)
def _ndarray_watch(real: type) -> type:
    def __new__(cls: Any, *args: Any, **kwargs: Any) -> Any:
        check_ndarray_call(args, kwargs)
        return real.__new__(real, *args, **kwargs)

    return _NdarrayWatch("watched_ndarray", (), {"__new__": __new__, "_amber_real": real, "__module__": real.__module__,
                                                 "__qualname__": f"watched<{real.__qualname__}>"})


def _real_class(cls: Any) -> Any:
    """The class a stand-in stands for (``cls`` itself otherwise)."""
    return cls._amber_real if isinstance(cls, _NdarrayWatch) else cls


def _ma_reconstruct(subtype: Any, baseclass: Any, baseshape: Any, basetype: Any) -> Any:
    """``numpy.ma.core._mareconstruct`` given the real ndarray class for a stand-in."""
    from numpy.ma.core import _mareconstruct

    return _mareconstruct(_real_class(subtype), _real_class(baseclass), baseshape, basetype)


_RECONSTRUCTOR_BASES = (object, int, float, complex, str, tuple, list, dict, set, frozenset)


def _copyreg_reconstructor(cls: Any, base: Any, state: Any) -> Any:
    """``copyreg._reconstructor`` (protocol 0/1 objects): ``base.__new__(cls, state)`` only
    for the builtin bases Python's own pickling uses, never a class from the file."""
    if not isinstance(cls, type) or base not in _RECONSTRUCTOR_BASES or not issubclass(cls, base):
        raise DecodeError(f"copyreg._reconstructor({cls!r}, {base!r}, ...) is not how Python pickles objects")
    if base is object:
        return cls.__new__(cls) if isinstance(cls, _StandIn) else object.__new__(cls)
    obj = base.__new__(cls, state)
    if base.__init__ != object.__init__:
        base.__init__(obj, state)
    return obj


def _sized(kind: type) -> Callable[..., Any]:
    """``bytes``/``bytearray`` as a reduce callable: from data only, never from a size."""

    def build(*args: Any) -> Any:
        if args and isinstance(args[0], int):
            raise DecodeError(f"the pickle calls {kind.__name__}({args[0]!r}), allocating from a number; refusing")
        return kind(*args)

    build.__qualname__ = build.__name__ = f"safe_{kind.__name__}"
    return build


_TIME_UNITS = frozenset({"s", "ms", "us", "ns"})


def _new_datetimelike(module: str, name: str, kind: str, index: str) -> Callable[..., Any]:
    """pandas' ``_new_DatetimeIndex``/``_new_TimedeltaIndex`` (``name`` in ``module``),
    which old pickles call with a bare NumPy array as ``d["data"]``: pandas wraps it without
    looking at its dtype, and asking a non-datetime dtype for its unit read memory past it
    (a crash while the file was still loading). Such data must be a 1-d datetime64
    (``kind`` "M") or timedelta64 ("m") array in a unit pandas has, and ``cls`` the index
    class itself."""

    def new(cls: Any, d: Any) -> Any:
        import importlib

        import numpy as np

        mod = importlib.import_module(module)
        if not (isinstance(cls, type) and issubclass(cls, getattr(mod, index))) or type(d) is not dict:
            raise DecodeError(f"pandas' {name} was asked to build {cls!r:.60} from {type(d).__name__}; "
                              f"pickles pass a {index} class and a dict")
        data = d.get("data")
        if isinstance(data, np.ndarray) and not (
            data.dtype.kind == kind and data.ndim == 1 and data.dtype.isnative
            and np.datetime_data(data.dtype) in {(u, 1) for u in _TIME_UNITS}
        ):
            raise DecodeError(f"pandas' {name} was given data of dtype {data.dtype} and {data.ndim} dimension(s); "
                              f"it takes 1-d {'datetime64' if kind == 'M' else 'timedelta64'} data only")
        return getattr(mod, name)(cls, d)

    new.__qualname__ = new.__name__ = f"checked_{name}"
    return new


#: Functions common pickles call whose results are plain data or instances of a class the
#: stream names itself (an argument: ``_reconstruct(cls, ...)``).
#: Handing out any other function makes the load walk its result for checked objects
#: (:meth:`PickleTrust.check_built`): a function may build instances of a checked class
#: without the stream naming it (``__randomstate_ctor("MT19937")``). (``getattr`` sets
#: the walk off itself when it hands out anything but a class.)
_PLAIN_MAKERS: frozenset[str] = frozenset(
    {"_codecs.encode", "builtins.bytes", "builtins.bytearray", "builtins.getattr", "copyreg._reconstructor", "copyreg.__newobj__", "copyreg.__newobj_ex__",
     "numpy.ma.core._mareconstruct", "pyarrow.lib._restore_array", "pyarrow.lib.py_buffer",
     "pyarrow.lib.type_for_alias", "pandas._libs.arrays.__pyx_unpickle_NDArrayBacked"}
    | {f"numpy.{m}.{f}" for m in ("core.multiarray", "_core.multiarray") for f in ("scalar", "_reconstruct")}
    | {f"numpy.{m}._frombuffer" for m in ("core.numeric", "_core.numeric")}
)  # (not pandas' _new_* helpers: _new_DatetimeIndex builds a DatetimeArray, _new_Index a MultiIndex)


#: Guarded stand-ins for helpers that real pickles need but that are unsafe in general.
SUBSTITUTES: dict[str, Any] = {
    "numpy.core.multiarray._reconstruct": _np_reconstruct,
    "numpy._core.multiarray._reconstruct": _np_reconstruct,
    "copyreg._reconstructor": _copyreg_reconstructor,
    "numpy.ma.core._mareconstruct": _ma_reconstruct,
    "numpy.core.multiarray.scalar": _np_scalar,
    "numpy._core.multiarray.scalar": _np_scalar,
    "builtins.bytes": _sized(bytes),
    "builtins.bytearray": _sized(bytearray),
    "functools.partial": functools.partial,  # a partial of an already-trusted callable (checked after the load)
    "pandas.core.indexes.datetimes._new_DatetimeIndex": _new_datetimelike(
        "pandas.core.indexes.datetimes", "_new_DatetimeIndex", "M", "DatetimeIndex"),
    "pandas.core.indexes.timedeltas._new_TimedeltaIndex": _new_datetimelike(
        "pandas.core.indexes.timedeltas", "_new_TimedeltaIndex", "m", "TimedeltaIndex"),
}


_ARROW_MAX = 1 << 62


def _array_data_problem(pa: Any, data: Any, want: Any = None, depth: int = 0) -> str | None:
    """Why pickled Arrow array data ``(type, length, null_count, offset, buffers, children,
    dictionary)`` cannot be handed to ``pyarrow.lib._restore_array``, or None. Arrow builds
    the array before anything validates it, and its constructors index the buffer and child
    lists by the type's layout (an offset of -1 or a buffer list cut short crashed the
    process while the file was still loading). Lengths against buffer sizes are left to the
    full validation that follows."""
    if depth > 64:
        return "Arrow array data nested more than 64 levels deep"
    if type(data) is not tuple or len(data) != 7:
        return "Arrow array data is not a 7-tuple"
    typ, length, null_count, offset, buffers, children, dictionary = data
    if not isinstance(typ, pa.DataType):
        return "Arrow array data names no Arrow type"
    if want is not None and not typ.equals(want):
        return f"an Arrow child of type {typ} stands where its parent has {want}"
    for name, v, low in (("length", length, 0), ("offset", offset, 0), ("null count", null_count, -1)):
        if type(v) is not int or not low <= v < _ARROW_MAX:
            return f"an Arrow {name} of {v!r:.30}"
    layout = typ.storage_type if isinstance(typ, pa.BaseExtensionType) else typ
    n_buf = layout.num_buffers
    variadic = pa.types.is_binary_view(layout) or pa.types.is_string_view(layout)
    if not isinstance(buffers, list) or not (len(buffers) == n_buf or (variadic and len(buffers) >= n_buf)):
        return f"Arrow {typ} data with {len(buffers) if isinstance(buffers, list) else buffers!r:.20} buffers, not {n_buf}"
    if any(b is not None and not isinstance(b, pa.Buffer) for b in buffers):
        return "an Arrow buffer that is not a buffer"
    if not isinstance(children, list) or len(children) != layout.num_fields:
        return f"Arrow {typ} data with {len(children) if isinstance(children, list) else children!r:.20} children, not {layout.num_fields}"
    for i, child in enumerate(children):
        problem = _array_data_problem(pa, child, layout.field(i).type, depth + 1)
        if problem is not None:
            return problem
    if pa.types.is_dictionary(layout) != (dictionary is not None):
        return f"Arrow {typ} data {'without' if dictionary is None else 'with'} a dictionary"
    if dictionary is not None:
        return _array_data_problem(pa, dictionary, layout.value_type, depth + 1)
    return None


def _arrow_checked(fn: Any) -> Callable[..., Any]:
    """A pyarrow rebuild function whose arguments are checked first (for ``_restore_array``:
    :func:`_array_data_problem`) and whose result is fully validated (Arrow trusts the
    offsets and lengths it is given; a hostile pickle could make them point anywhere)."""
    restore = fn.__name__ == "_restore_array"

    def build(*args: Any) -> Any:
        if restore:
            import pyarrow as pa

            problem = _array_data_problem(pa, args[0]) if len(args) == 1 else "not one argument"
            if problem is not None:
                raise DecodeError(f"the pickle rebuilds an Arrow array from malformed data ({problem}); refusing")
        out = fn(*args)
        import pyarrow as pa

        if isinstance(out, pa.Array):
            validate_arrow(pa, out)
        else:
            out.validate(full=True)
        return out

    build.__qualname__ = build.__name__ = f"checked_{fn.__name__}"
    return build


#: Arrow's rebuilders, wrapped by :func:`_arrow_checked` when met (pyarrow is imported only then).
_ARROW_CHECKED = frozenset({"pyarrow.lib._restore_array", "pyarrow.lib._reconstruct_table", "pyarrow.lib.chunked_array"})


def _py3_name(module: str, name: str) -> tuple[str, str]:
    """Python 2 names (``__builtin__.set``, ``copy_reg._reconstructor``) as Python 3's."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def _modern_numpy(name: str) -> str:
    """``numpy.core.*`` (NumPy 1 pickles) as ``numpy._core.*`` on NumPy 2, which warns on the old path."""
    if name.startswith("numpy.core."):
        import numpy as np

        if int(np.__version__.split(".")[0]) >= 2:
            return "numpy._core." + name[len("numpy.core.") :]
    return name


class PickleTrust:
    """Resolves the globals of a pickle through the trust list (and the guarded substitutes).

    ``overrides`` map names to objects a format handles itself (joblib's array wrapper,
    torch's storages); they are used as they are, without a trust check. ``lazy`` maps a
    name prefix to a function giving more overrides, called the first time a name with
    that prefix is met (so torch is imported only for files that name torch).
    """

    def __init__(
        self,
        trusted: Iterable[str] = (),
        overrides: dict[str, Any] | None = None,
        lazy: dict[str, Callable[[], dict[str, Any]]] | None = None,
    ) -> None:
        self.trusted = tuple(trusted)
        self.overrides = dict(overrides or {})
        self._lazy = dict(lazy or {})
        self._cache: dict[tuple[str, str], Any] = {}
        #: id -> (name, object, snapshot of its attributes) of every global handed out
        self._watched: dict[int, tuple[str, Any, Any]] = {}
        #: did the load hand out a class whose instances are checked, or a function that
        #: might make some (see check_built)?
        self._checked_classes = False

    def _load_lazy(self, full: str) -> None:
        for prefix in [p for p in self._lazy if full.startswith(p)]:
            more = self._lazy.pop(prefix)()
            for k, v in more.items():
                self.overrides.setdefault(k, v)

    def name_of(self, module: str, name: str) -> str:
        module, name = _py3_name(module, name)
        return _modern_numpy(f"{module}.{name}")

    def is_trusted(self, full: str) -> bool:
        if self._lazy:
            self._load_lazy(full)
        if full in self.overrides or full in SUBSTITUTES or full in _ARROW_CHECKED or full in PICKLE_TRUSTED:
            return True
        if full == "builtins.getattr":  # only as _getattr allows it
            return True
        if is_trusted(full, self.trusted):
            return True
        # pandas' pickle helpers (_new_Index, _timedelta_unpickle, ...)
        last = full.rpartition(".")[2]
        return (
            full.startswith("pandas.")
            and (last.startswith("_new_") or last.endswith("_unpickle"))
            and not is_denied(full)
        )

    def _getattr(self, obj: Any, name: Any) -> Any:
        """``getattr`` as pickles of classmethods use it (``getattr(ZoneInfo, "_unpickle")``):
        only a trusted attribute of a class, never of an instance or a dunder."""
        if not isinstance(obj, type) or not isinstance(name, str):
            raise DecodeError(f"the pickle calls getattr({type(obj).__name__}, {name!r}); amber allows only class attributes")
        full = f"{obj.__module__}.{obj.__qualname__}.{name}"
        if is_denied(full) or not self.is_trusted(full) or full == "builtins.getattr":
            raise Refused(full, is_denied(full))
        out = self._checked(getattr(obj, name))
        if not isinstance(out, type):  # (a classmethod may make instances of a checked class)
            self._checked_classes = True
        if id(out) not in self._watched:  # (a class attribute may be a class: a BUILD on it must not last)
            self._watched[id(out)] = (full, out, _snapshot(out))
        return out

    def _checked(self, obj: Any) -> Any:
        """``obj``, noting a class whose instances are checked after the load
        (:func:`check_for`), or for a class whose constructor arguments or state are
        checked (:func:`arg_check_for`, :func:`state_check_for`) a stand-in (:func:`_stand_in`)."""
        if not isinstance(obj, type):
            return obj
        if check_for(obj) is not None:
            self._checked_classes = True
        args, state = arg_check_for(obj), state_check_for(obj)
        return obj if args is None and state is None else _stand_in(obj, args, state)

    def find(self, module: str, name: str) -> Any:
        key = (module, name)
        try:
            return self._cache[key]
        except KeyError:
            pass
        if not isinstance(module, str) or not isinstance(name, str):
            raise DecodeError(f"the pickle names a global with non-string parts {module!r}, {name!r}")
        full = self.name_of(module, name)
        if self._lazy:
            self._load_lazy(full)
        if full in self.overrides:
            obj = self.overrides[full]
        elif full in SUBSTITUTES:
            obj = SUBSTITUTES[full]
        elif full in _ARROW_CHECKED:
            obj = _arrow_checked(_import(full))
        elif full == "builtins.getattr":
            obj = self._getattr
        elif self.is_trusted(full):
            obj = _import(full)
        else:
            raise Refused(full, is_denied(full))
        obj = self._checked(obj)
        if not isinstance(obj, type) and full not in _PLAIN_MAKERS:
            self._checked_classes = True  # (a function may make instances of a class the stream never names)
        self._cache[key] = obj
        if id(obj) not in self._watched:
            self._watched[id(obj)] = (full, obj, _snapshot(obj))
        return obj

    def check_built(self, root: Any, extra: dict[type, Callable[[Any], None]] | None = None) -> None:
        """After a load that handed out a checked class or a function not in
        ``_PLAIN_MAKERS`` (or with ``extra`` checks by exact type): run the check of every
        instance of one reachable from ``root``
        (:func:`find_checked`, one walk); the first that fails raises, and nothing of the
        load is handed out."""
        if not self._checked_classes and not extra:  # (stays set: a later load may take the class from the cache)
            return
        for check, inst in find_checked(root, extra):
            check(inst)

    def check_untouched(self) -> None:
        """After a load: undo and refuse any change the pickle made to a class, function, table
        or array it imported, or to ``numpy.ma.masked``. (``BUILD`` on a global sets its
        attributes, SETITEM changes a module's dict: a file could otherwise patch
        ``LogisticRegression.predict``, a function's defaults or NumPy's fill values for the
        whole process.)"""
        for _full, obj, snap in self._watched.values():
            if isinstance(obj, enum.EnumMeta):
                _forget_new_members(obj, snap)
        changed = [full for full, obj, snap in self._watched.values() if _changed(obj, snap)]
        masked = _masked_constant_problem()  # (restores it)
        if masked is not None:
            changed.append(masked)
        if not changed:
            return
        for full, obj, snap in self._watched.values():
            _restore(obj, snap)
        raise FormatError(
            f"the pickle changes {', '.join(sorted(set(changed)))} (objects of this process it imports or a "
            "function hands it): amber undid the change and refuses the file, which is corrupt or hostile"
        )


class _StandIn(type):
    """Metaclass of the stand-ins for classes whose construction is checked (see
    :func:`_stand_in`): calling one (REDUCE) checks the arguments, then calls the real class."""

    _amber_real: type
    _amber_args: Callable[[tuple[Any, ...], dict[str, Any]], None] | None
    _amber_guarded: type | None

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if cls._amber_guarded is not None:  # its constructor would parse what it is given
            raise DecodeError(
                f"the pickle calls {cls._amber_real.__qualname__}(...), which its own pickling never does; refusing"
            )
        if cls._amber_args is not None:
            cls._amber_args(args, kwargs)
        return cls._amber_real(*args, **kwargs)


@functools.lru_cache(maxsize=None)
def _guarded(real: type, state_check: Callable[[Any], Any]) -> tuple[type, type]:
    """The subclasses of ``real`` that a load's instances of it belong to before their state
    comes (``unstated<...>``) and after (``stated<...>``). The ``__setstate__`` of both runs
    ``state_check`` on every state BUILD gives: an instance stays a ``stated<...>`` until the
    load ends (``_guards._settle_state`` then makes it a ``real``), so a second BUILD on it
    (the pickle may BUILD an object as often as it likes) is checked too, never handed to
    ``real.__setstate__`` unchecked."""

    def __setstate__(self: Any, state: Any) -> None:
        state = state_check(state)
        self.__class__ = stated
        real.__setstate__(self, state)

    def sub(kind: str, unstated: bool) -> type:
        return type(real)(f"{kind}_{real.__name__}", (real,), {
            "__setstate__": __setstate__, "_amber_real": real, "_amber_unstated": unstated,
            "__module__": real.__module__, "__qualname__": f"{kind}<{real.__qualname__}>",
        })

    stated = sub("stated", False)
    return sub("unstated", True), stated


def _stand_in(
    real: type,
    args_check: Callable[[tuple[Any, ...], dict[str, Any]], None] | None,
    state_check: Callable[[Any], Any] | None,
) -> type:
    """A class standing in for ``real`` in one load. Calling it (REDUCE) and its ``__new__``
    (NEWOBJ, ``copyreg._reconstructor``) check the arguments first (``args_check``). With a
    ``state_check``, ``__new__`` makes an instance of a subclass whose ``__setstate__``
    checks each state BUILD gives it (:func:`_guarded`; the load's end makes it a ``real``);
    calling the class is refused. (Only these few classes are replaced: a pickle that
    stores such a class itself gets the stand-in back.)"""
    guarded = _guarded(real, state_check)[0] if state_check is not None else None

    def __new__(cls: Any, *args: Any, **kwargs: Any) -> Any:
        if args_check is not None:
            args_check(args, kwargs)
        if guarded is not None:
            return real.__new__(guarded)
        return real.__new__(real, *args, **kwargs)

    ns = {"__new__": __new__, "_amber_real": real, "_amber_args": args_check, "_amber_guarded": guarded,
          "__module__": real.__module__, "__qualname__": f"checked<{real.__qualname__}>"}
    return _StandIn(f"checked_{real.__name__}", (), ns)


class _Restricted:
    """Globals through a :class:`PickleTrust`; after the load, imported globals untouched."""

    _trust: PickleTrust

    def __init__(self, file: Any, trust: PickleTrust, where: str = "", **kwargs: Any) -> None:
        super().__init__(file, **kwargs)  # type: ignore[call-arg]
        self._trust = trust
        self._where = where

    def find_class(self, module: str, name: str) -> Any:
        return self._trust.find(module, name)

    def _built_checks(self) -> dict[type, Callable[[Any], None]] | None:
        """Checks by exact type this unpickler adds to the after-load walk."""
        return None

    def load(self) -> Any:
        try:
            try:
                out = super().load()  # type: ignore[misc]
            finally:
                self._trust.check_untouched()
            self._trust.check_built(out, self._built_checks())
        except DecodeError as exc:  # say where (``where``: "file: "), unless the message does
            if self._where and type(exc) in (DecodeError, FormatError, CorruptFileError) and len(exc.args) == 1:
                msg = exc.args[0]
                if isinstance(msg, str) and not msg.startswith(self._where):
                    exc.args = (self._where + msg,)
            raise
        return out


class ObjectArraysAhead(Exception):
    """Raised by :class:`SafeUnpickler` when the stream makes a dtype: NumPy's BUILD of an
    array that holds references (object, ``StringDType``) trusts its state
    (:func:`array_state_problem`), its dtype ``__setstate__`` trusts fields and flags and
    crashes on some states (:func:`dtype_state_problem`), and the C unpickler's BUILD cannot
    be hooked. The caller reads the stream again: with the C unpickler when
    :func:`~amber.security._arraystates.array_states_proven` shows every BUILD harmless,
    else with :class:`SafePyUnpickler`, which checks every state first."""


class _DTypeWatch(type):
    """Metaclass of the stand-ins for NumPy's dtype classes in a C-unpickler load: calling
    one (REDUCE) stops the load (:class:`ObjectArraysAhead`) before any dtype is made."""

    _amber_real: type

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        # any dtype: NumPy's dtype __setstate__ crashes on some states (6 items, version 2
        # or more) and trusts the fields and flags of others, whatever the dtype holds
        raise ObjectArraysAhead


@functools.lru_cache(maxsize=64)
def _dtype_watch(real: type) -> type:
    return _DTypeWatch(f"watched_{real.__name__}", (), {
        "_amber_real": real, "__module__": real.__module__, "__qualname__": f"watched<{real.__qualname__}>"})


_NOT = object()


def _watched(value: Any) -> Any:
    """``value`` as a C-unpickler load may see it: every dtype class (``numpy.dtype`` and
    each of its subclasses, ``numpy.dtypes.*``: each call makes a dtype a BUILD can change,
    and ``StringDType`` arrays hold references as object arrays do) replaced by a stand-in
    that stops the load; a dtype met as a value stops it too."""
    np = sys.modules.get("numpy")
    if np is None:
        return value
    if value is np.ndarray:  # (called with a buffer, it takes object pointers from the file's bytes)
        return _ndarray_watch(value)
    if isinstance(value, type) and issubclass(value, np.dtype):
        return _dtype_watch(value)
    if value is getattr(getattr(getattr(np, "_core", None), "_internal", None), "_convert_to_stringdtype_kwargs", _NOT):
        return _dtype_watch(value)  # (a function that makes StringDType dtypes)
    if isinstance(value, np.dtype):  # (a dtype handed out as it is: a BUILD could change it too)
        raise ObjectArraysAhead
    return value


class SafeUnpickler(_Restricted, pickle.Unpickler):
    """The C unpickler with every global resolved through a :class:`PickleTrust`. A stream
    that makes a dtype raises :class:`ObjectArraysAhead` before any array of it is built
    (see there), unless ``proven``: in a stream whose every BUILD
    :func:`~amber.security._arraystates.array_states_proven` found harmless to NumPy,
    ``numpy.dtype`` itself is not watched (the proof followed every dtype made with it).
    ``proven`` is that verdict, or a function that gives it, called when the stream first
    names ``numpy.dtype`` (a stream without arrays is never proven: nothing to prove)."""

    _watch_out = False  # (set when a dtype stand-in was handed out)

    def __init__(self, *args: Any, proven: bool | Callable[[], bool] = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._proven = proven

    def find_class(self, module: str, name: str) -> Any:
        obj = self._trust.find(module, name)
        if obj is getattr(sys.modules.get("numpy"), "dtype", None):
            if callable(self._proven):  # (the proof covers the whole stream, the part already read too)
                self._proven = self._proven()
            if self._proven:
                return obj  # (the proof followed every dtype it made; any other dtype class stays watched)
        if type(obj) is types.MethodType and obj.__func__ is PickleTrust._getattr and obj.__self__ is self._trust:
            return self._getattr_watched  # a class attribute may be a dtype too
        return self._watch(obj)

    def _getattr_watched(self, obj: Any, name: Any) -> Any:
        return self._watch(self._trust._getattr(obj, name))

    def _watch(self, value: Any) -> Any:
        out = _watched(value)
        if out is not value:
            self._watch_out = True
        return out

    def _built_checks(self) -> dict[type, Callable[[Any], None]] | None:
        # a stand-in stored as a value (not called) would be handed out in the real class's
        # place: the pure-Python unpickler, which needs none, reads such a stream again
        return {_DTypeWatch: _stand_in_stored, _NdarrayWatch: _stand_in_stored} if self._watch_out else None


def _stand_in_stored(cls: Any) -> None:
    raise ObjectArraysAhead


def array_state_problem(arr: Any, state: Any) -> str | None:
    """Why ``arr.__setstate__(state)`` must not run, or None: NumPy fills an object array
    from the state's list by the state's shape without comparing the two (a list of 12
    items for a 12x12 array read past the list: a crash, or pointers from other memory
    taken as objects). ``state`` is an ndarray's (4 or 5 items) or a masked array's
    (7 items: ``numpy.ma`` hands items 1-4 on to the ndarray's ``__setstate__``).

    NumPy takes any sequence as the state (a list of 5 items crashed as a tuple does) and
    any list subclass as the items, read at the C level whatever its ``__len__`` says: an
    array whose ``__setstate__`` is NumPy's must get a tuple, and the items are counted
    with ``list.__len__``."""
    np = sys.modules.get("numpy")
    if np is None or not isinstance(arr, np.ndarray):
        return None
    if type(state) is not tuple:
        if _numpy_setstate(type(arr)):
            return f"an array's state is a {type(state).__name__}, not a tuple"
        return None
    if len(state) not in (4, 5, 7):
        return None
    shape, dtype, _fortran, raw = state[1:5] if len(state) == 7 else state[-4:]
    if not isinstance(dtype, np.dtype) or not dtype.hasobject or not isinstance(raw, list):
        return None  # (bytes: NumPy compares their length itself)
    if type(shape) is not tuple or not all(type(n) is int and 0 <= n < 1 << 62 for n in shape):
        return f"an object array's shape {shape!r:.40} is malformed"
    count = 1
    for n in shape:
        count = min(count * n, 1 << 62)
    items = list.__len__(raw)
    if items != count:
        return f"an object array of shape {shape} comes with {items} items"
    return None


def dtype_state_problem(dtype: Any, state: Any, fresh: bool = False) -> str | None:
    """Why ``dtype.__setstate__(state)`` must not run, or None. NumPy takes a dtype's fields
    and flags from its state as they are (:func:`dtype_problem`): the state is applied to a
    copy, which must pass. (A state that is not a tuple NumPy refuses.) Nor may it make the
    items larger (arrays already made of the dtype would be read past their end), but for a
    ``fresh`` dtype of no size, which nothing has used yet (NumPy pickles a record dtype as
    ``numpy.dtype(numpy.record)`` given its fields and size)."""
    np = sys.modules.get("numpy")
    if np is None or not isinstance(dtype, np.dtype) or type(state) is not tuple:
        return None
    if any(isinstance(part, dict) and type(part) is not dict for part in state):
        # (NumPy keeps a dict subclass as the fields, and an OrderedDict changed afterwards moved a field)
        return "a dtype state whose fields are no plain dict"
    if len(state) == 6 and not (type(state[0]) is int and 0 <= state[0] <= 1):
        # (a state of 6 items and version 2 or more: NumPy's __setstate__ reads past it, SIGSEGV)
        return f"a dtype state of 6 items with version {state[0]!r:.10}, which NumPy's __setstate__ crashes on"
    if dtype.kind in "mM" and len(state) != 9:
        # (a datetime or timedelta dtype's state without its unit: NumPy's __setstate__ crashes)
        return f"a {dtype.kind}8 dtype state of {len(state)} items, without its unit, which NumPy's __setstate__ crashes on"
    try:
        probe = copy.copy(dtype)  # (a new descriptor: np.dtype(d, copy=True) gives back d itself for
        # string, void, structured and datetime dtypes, and the state would change d before its check)
        probe.__setstate__(state)
    except Exception:  # noqa: BLE001 - NumPy refuses the state: so will the real BUILD
        return None
    if probe.itemsize > dtype.itemsize and not (fresh and dtype.itemsize == 0):
        return f"a dtype state that makes {dtype!r:.40}'s items {probe.itemsize} bytes, more than its {dtype.itemsize}"
    return dtype_problem(probe)


def build_problem(obj: Any, state: Any, fresh: bool = False) -> str | None:
    """Why pickle's BUILD of ``state`` on ``obj`` must not run (an array's or a dtype's
    state NumPy would trust, or any state for ``numpy.ma.masked``, the one masked constant
    the whole process shares), or None; ``fresh``: see :func:`dtype_state_problem`."""
    ma = sys.modules.get("numpy.ma")
    if ma is not None and obj is ma.masked:
        return "a state for numpy.ma.masked, the masked constant the whole process shares"
    return array_state_problem(obj, state) or dtype_state_problem(obj, state, fresh)


def _numpy_setstate(cls: type) -> bool:
    """Does ``cls`` restore its state with NumPy's own ``__setstate__`` (the ndarray's, or
    ``numpy.ma``'s, which hands part of it on)?"""
    setstate = getattr(cls, "__setstate__", None)
    np = sys.modules["numpy"]
    if setstate is np.ndarray.__setstate__:
        return True
    return getattr(setstate, "__module__", None) in ("numpy.ma.core", "numpy.ma.mrecords")


class SafePyUnpickler(_Restricted, pickle._Unpickler):  # type: ignore[name-defined,misc]
    """The pure-Python unpickler (for formats that hook opcodes, as joblib's does), restricted
    alike; its BUILD checks array states first (:func:`array_state_problem`)."""

    dispatch = pickle._Unpickler.dispatch.copy()  # type: ignore[attr-defined]
    #: ids of the dtypes numpy.dtype(typestr or scalar type) made by a REDUCE of the stream,
    #: not yet given a state, taken from the memo, duplicated or handed back by a call: only
    #: a dtype that went straight from its making to its BUILD can be unused by any array
    _fresh: dict[int, Any] | None = None

    #: ids of the dicts a dtype's state gave it as its fields: NumPy keeps the dict itself, so
    #: the stream may not change it afterwards (its SETITEM moved a field out of the items)
    _owned: dict[int, Any] | None = None

    def load_build(self) -> None:
        if len(self.stack) >= 2:
            target, state = self.stack[-2], self.stack[-1]
            fresh = self._fresh is not None and self._fresh.pop(id(target), None) is target
            problem = build_problem(target, state, fresh=fresh)
            if problem is not None:
                raise DecodeError(f"{problem}; NumPy would use memory it does not own, so the file is refused "
                                  "(it is damaged or hostile)")
            np = sys.modules.get("numpy")
            if np is not None and isinstance(target, np.dtype) and type(state) is tuple:
                for part in state:
                    if isinstance(part, dict):
                        if self._owned is None:
                            self._owned = {}
                        self._owned[id(part)] = part
                # (structured dtypes are checked again after the load: a call could change them)
                self._trust._checked_classes = True
        pickle._Unpickler.load_build(self)  # type: ignore[attr-defined]

    dispatch[pickle.BUILD[0]] = load_build

    def _not_owned(self, target: Any) -> None:
        if self._owned and self._owned.get(id(target)) is target:
            raise DecodeError("the pickle changes a dict a dtype holds as its fields; NumPy would use memory it does "
                              "not own, so the file is refused (it is damaged or hostile)")

    def load_setitem(self) -> None:
        if len(self.stack) >= 3:
            self._not_owned(self.stack[-3])
        pickle._Unpickler.load_setitem(self)  # type: ignore[attr-defined]

    def load_setitems(self) -> None:
        if self.metastack and self.metastack[-1]:
            self._not_owned(self.metastack[-1][-1])
        pickle._Unpickler.load_setitems(self)  # type: ignore[attr-defined]

    dispatch[pickle.SETITEM[0]] = load_setitem
    dispatch[pickle.SETITEMS[0]] = load_setitems

    @staticmethod
    def _check_ndarray_call(func: Any, args: Any, kwargs: Any) -> None:
        np = sys.modules.get("numpy")
        if np is not None and func is np.ndarray and type(args) is tuple:
            check_ndarray_call(args, kwargs if type(kwargs) is dict else {})

    def _pushed_again(self) -> None:
        """After an opcode that pushes an object the stream made before (a memo GET, DUP) or
        a call's result: a dtype among them is no longer fresh (``numpy.dtype(x)`` gives back
        the dtype of a Series or a scalar, which an array may already use)."""
        if self._fresh and self.stack:
            top = self.stack[-1]
            if self._fresh.get(id(top)) is top:
                del self._fresh[id(top)]

    def load_reduce(self) -> None:
        if len(self.stack) < 2:
            pickle._Unpickler.load_reduce(self)  # type: ignore[attr-defined]
            return
        func, args = self.stack[-2], self.stack[-1]
        self._check_ndarray_call(func, args, {})
        pickle._Unpickler.load_reduce(self)  # type: ignore[attr-defined]
        self._pushed_again()
        np = sys.modules.get("numpy")
        if np is not None and func is np.dtype and type(args) is tuple and args and isinstance(args[0], (str, type)):
            made = self.stack[-1]
            if isinstance(made, np.dtype):  # (a dtype this call made, from a type string or a scalar type)
                if self._fresh is None:
                    self._fresh = {}
                self._fresh[id(made)] = made

    def load_newobj(self) -> None:
        if len(self.stack) >= 2:
            self._check_ndarray_call(self.stack[-2], self.stack[-1], {})
        pickle._Unpickler.load_newobj(self)  # type: ignore[attr-defined]
        self._pushed_again()

    def load_newobj_ex(self) -> None:
        if len(self.stack) >= 3:
            self._check_ndarray_call(self.stack[-3], self.stack[-2], self.stack[-1])
        pickle._Unpickler.load_newobj_ex(self)  # type: ignore[attr-defined]
        self._pushed_again()

    def _instantiate(self, klass: Any, args: Any) -> None:  # (OBJ and INST)
        self._check_ndarray_call(klass, tuple(args), {})
        pickle._Unpickler._instantiate(self, klass, args)  # type: ignore[attr-defined]
        self._pushed_again()

    dispatch[pickle.REDUCE[0]] = load_reduce
    dispatch[pickle.NEWOBJ[0]] = load_newobj
    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex


def _pushing_again(op: bytes, name: str) -> None:
    """``SafePyUnpickler``'s ``op`` (GET, BINGET, LONG_BINGET, DUP): pickle's, then
    :meth:`SafePyUnpickler._pushed_again`."""
    base = getattr(pickle._Unpickler, name)  # type: ignore[attr-defined]

    def load(self: SafePyUnpickler) -> None:
        base(self)
        self._pushed_again()

    SafePyUnpickler.dispatch[op[0]] = load


for _op, _name in ((pickle.GET, "load_get"), (pickle.BINGET, "load_binget"),
                   (pickle.LONG_BINGET, "load_long_binget"), (pickle.DUP, "load_dup")):
    _pushing_again(_op, _name)


def _snapshot(obj: Any) -> Any:
    """What BUILD (or SETITEM, APPEND) could change on a global: a class's namespace (and an
    enum's members: a call of the class hands out the shared member, which a BUILD could
    change), a function's defaults, code and attributes, a dict's, list's or set's items, a
    NumPy array's data, dtype and flags (and those of the arrays it holds, a masked array's
    mask), another object's ``__dict__``."""
    if isinstance(obj, enum.EnumMeta):
        return dict(obj.__dict__), [(m, _snapshot(m)) for m in obj.__members__.values()], \
            dict(getattr(obj, "_value2member_map_", {}))
    if isinstance(obj, type):
        return dict(obj.__dict__)
    if isinstance(obj, types.FunctionType):
        return (obj.__defaults__, obj.__kwdefaults__, obj.__code__, dict(obj.__dict__))
    if type(obj) in (dict, list, set, bytearray):  # (a module's table: SETITEM would change it)
        return obj.copy()
    arrays = _array_parts(obj)
    if arrays:
        return [(a, _array_state(a)) for a in arrays], dict(getattr(obj, "__dict__", {}))
    d = getattr(obj, "__dict__", None)
    return dict(d) if isinstance(d, dict) else None


def _array_parts(obj: Any) -> list[Any]:
    """A watched NumPy array and the arrays it holds as attributes (a masked array's mask)."""
    np = sys.modules.get("numpy")
    if np is None or isinstance(obj, type) or not isinstance(obj, np.ndarray):
        return []
    return [obj] + [v for v in getattr(obj, "__dict__", {}).values() if type(v) is np.ndarray]


def _array_state(a: Any) -> Any:
    """(ndarray state, the dtype object, writeable): the dtype by identity (an equal dtype
    may carry other metadata), an object array's items as the objects themselves."""
    return sys.modules["numpy"].ndarray.__reduce__(a)[2], a.dtype, bool(a.flags.writeable)


def _same_array(a: Any, snap: Any) -> bool:
    state, dtype, writeable = snap
    now, now_dtype, now_writeable = _array_state(a)
    if now_dtype is not dtype or now_writeable != writeable or now[:4] != state[:4]:
        return False
    data, was = now[4], state[4]
    if type(was) is list:  # object items: compared by identity (no __eq__ of theirs runs)
        return type(data) is list and len(data) == len(was) and all(x is y for x, y in zip(data, was))
    return data == was


def _forget_new_members(cls: Any, snap: Any) -> None:
    """Drop from a flag enum's cache the members a load made (``MonotonicConstraint(3)`` makes
    and caches a combined member, which a BUILD could change): later calls make them again."""
    cache = getattr(cls, "_value2member_map_", None)
    if isinstance(cache, dict) and len(cache) != len(snap[2]):
        for value in [v for v in cache if v not in snap[2]]:
            del cache[value]


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.keys() == b.keys() and all(a[k] is b[k] for k in a)


def _changed(obj: Any, snap: Any) -> bool:
    if isinstance(obj, enum.EnumMeta):
        ns, members, _values = snap
        return not _same(dict(obj.__dict__), ns) or any(_changed(m, ms) for m, ms in members)
    if isinstance(obj, type):
        return not _same(dict(obj.__dict__), snap)
    if isinstance(obj, types.FunctionType):
        d, kw, code, attrs = snap
        return obj.__defaults__ is not d or obj.__kwdefaults__ is not kw or obj.__code__ is not code or not _same(
            obj.__dict__, attrs
        )
    if type(obj) is dict:
        return not _same(obj, snap)
    if type(obj) is list:
        return len(obj) != len(snap) or any(x is not y for x, y in zip(obj, snap))
    if type(obj) in (set, bytearray):
        return obj != snap
    if _array_parts(obj):
        states, attrs = snap
        return not _same(getattr(obj, "__dict__", {}), attrs) or not all(_same_array(a, st) for a, st in states)
    d = getattr(obj, "__dict__", None)
    return isinstance(d, dict) and snap is not None and not _same(d, snap)


def _restore(obj: Any, snap: Any) -> None:
    if isinstance(obj, enum.EnumMeta):
        snap, members, _values = snap
        for m, ms in members:
            _restore(m, ms)
    try:
        if isinstance(obj, type):
            now = dict(obj.__dict__)
            for k in now.keys() - snap.keys():
                delattr(obj, k)
            for k, v in snap.items():
                if now.get(k, _MISSING) is not v:
                    setattr(obj, k, v)
        elif isinstance(obj, types.FunctionType):
            obj.__defaults__, obj.__kwdefaults__, obj.__code__, attrs = snap
            obj.__dict__.clear()
            obj.__dict__.update(attrs)
        elif type(obj) in (dict, set):
            obj.clear()
            obj.update(snap)
        elif type(obj) in (list, bytearray):
            obj[:] = snap
        elif _array_parts(obj):
            states, attrs = snap
            if hasattr(obj, "__dict__"):
                obj.__dict__.clear()
                obj.__dict__.update(attrs)
            ndarray = sys.modules["numpy"].ndarray
            for a, (state, _dtype, writeable) in states:
                if a.flags.owndata:  # (a view's flag follows its base; __setstate__ needs neither)
                    ndarray.setflags(a, write=True)
                ndarray.__setstate__(a, state)
                if not writeable:
                    ndarray.setflags(a, write=False)
        elif snap is not None:
            d = obj.__dict__
            d.clear()
            d.update(snap)
    except (AttributeError, TypeError, ValueError):  # a read-only attribute the pickle could not change either
        pass


def _masked_constant_problem() -> str | None:
    """Restore ``numpy.ma.masked``, the one masked constant of the process, if a load changed
    it, and say so; None when it is as NumPy made it (0.0, float64, masked, read-only). A
    pickle reaches it through any trusted function that returns it (``numpy.ma.min`` of a
    fully masked array), not only through its class or its name, so it is compared with that
    snapshot after every load, not only when the stream names it."""
    ma = sys.modules.get("numpy.ma")
    if ma is None:
        return None
    np = sys.modules["numpy"]
    m = ma.masked
    made = ((np.dtype(np.float64), bytes(8)), (np.dtype(np.bool_), b"\x01"))  # (its data, its mask)
    parts = _array_parts(m)
    snap = [(a, ((1, (), dt, False, raw), dt, False)) for a, (dt, raw) in zip(parts, made)], dict(vars(m))
    if len(parts) == len(made) and not _changed(m, snap):
        return None
    _restore(m, snap)
    return "numpy.ma.masked"


_MISSING = object()


def untrusted_globals(names: Iterable[str], trust: PickleTrust) -> tuple[list[str], list[str]]:
    """(untrusted, denied) among the dotted ``names``, as a load with ``trust`` would judge them."""
    bad = sorted({n for n in names if not trust.is_trusted(_modern_numpy(n))})
    return bad, [n for n in bad if is_denied(n)]


def refusal(buf: Any, start: int, trust: PickleTrust, first: Refused, where: str) -> UntrustedTypeError:
    """The error for a refused load: every untrusted global of the pickles from ``start``
    in ``buf`` (found by a static walk; nothing runs), or at least the one refused."""
    names: set[str] = {first.name}
    if buf is not None:
        from amber.security._walk import pickle_globals

        names.update(pickle_globals(buf, start))
    bad, denied = untrusted_globals(names, trust)
    if first.name not in bad:
        bad.append(first.name)
        if first.denied:
            denied.append(first.name)
    return UntrustedTypeError(bad, where, denied)
