"""Objects without a handler of their own: classes and functions by name, instances by
their pickling protocol (``__reduce_ex__``, ``__getstate__``/``__setstate__``, ``__dict__``,
``__slots__``), and classes that opt in with ``__amber_state__``/``__amber_from_state__``.

Nothing here pickles. A class, function or reduce callable is stored by its dotted name
and declared in the manifest's ``needs``; on load it is imported only when the trust list
allows it (the decoder's ``ctx.resolve``), after the whole file's needs were audited.

Nodes:

* ``[global, "mod.qualname"]`` — a class or function, e.g. ``numpy.log1p``.
* ``[object, "mod.Class", args, state, listitems, dictitems, kwargs]`` — ``Class.__new__(Class,
  *args, **kwargs)``, then the state applied as pickle's BUILD does (trailing empty fields
  are left out). ``state`` is a msgpack map of attribute name -> node when the state is a
  dict of str keys (``obj.__dict__``), else any node.
* ``[reduce, "mod.callable", args, state, listitems, dictitems]`` — ``callable(*args)``, then
  the same state steps.
* ``[state, "mod.Class", node]`` — ``Class.__amber_from_state__(value)`` for classes that
  define ``__amber_state__(self)`` and the classmethod ``__amber_from_state__(cls, state)``.
"""

from __future__ import annotations

import copyreg
import functools
import sys
import types
from abc import abstractmethod
from typing import Any

from amber.errors import CorruptFileError, UnsupportedTypeError
from amber.handlers._base import DecodeContext, EncodeContext, Handler
from amber.security._guards import arg_check_for, check_for, state_check_for
from amber.security._unpickler import build_problem, check_ndarray_call
from amber.trust import is_denied

__all__ = ["GLOBAL", "OBJECT", "PARTIAL", "REDUCE", "STATE", "fallback_for", "global_name"]

#: Pickle protocol whose reductions amber follows (``__newobj__``/``__newobj_ex__``).
PROTOCOL = 4

_FUNCTION_TYPES: frozenset[type] = frozenset(
    {types.FunctionType, types.BuiltinFunctionType, types.BuiltinMethodType}
)
#: Types of named callables from extension modules (matched by name, so that their
#: packages need not be imported): NumPy ufuncs, Cython functions.
_FUNCTION_TYPE_NAMES = frozenset({"ufunc", "cython_function_or_method", "fused_cython_function", "cyfunction"})

_names: dict[Any, str] = {}


def _qualname(obj: Any) -> tuple[str | None, str | None]:
    module = getattr(obj, "__module__", None)
    qual = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    if module is None and type(obj).__name__ == "ufunc":  # NumPy ufuncs live in numpy
        module = "numpy"
    return module, qual


def _find(module: str, qual: str) -> Any:
    """What ``module.qual`` names in the (already imported) module, or None."""
    found: Any = sys.modules.get(module)
    for part in qual.split("."):
        found = getattr(found, part, None)
    return found


def global_name(obj: Any, what: str = "object") -> str:
    """The dotted name that imports ``obj`` back (checked, as pickle does)."""
    try:
        cached = _names.get(obj)
    except TypeError:  # unhashable
        cached = None
    if cached is not None:
        return cached
    module, qual = _qualname(obj)
    if not isinstance(module, str) or not isinstance(qual, str):
        raise UnsupportedTypeError(type(obj), "", f"this {what} has no importable name")
    name = f"{module}.{qual}"
    if "<lambda>" in qual or "<locals>" in qual:
        kind = "a lambda" if "<lambda>" in qual else "a function or class defined inside another function"
        raise UnsupportedTypeError(
            type(obj),
            "",
            f"{name} is {kind}, which cannot be saved by name: define it at module level "
            "(and pass its name in trusted=[...] when loading), or dump with allow_pickle=True "
            "to keep it as a quarantined pickle island",
        )
    if _find(module, qual) is not obj:
        raise UnsupportedTypeError(
            type(obj),
            "",
            f"{name} cannot be found again by its name (it is not the object importing "
            f"{module} gives); save an object whose class and functions are importable",
        )
    try:
        if len(_names) < 65536:
            _names[obj] = name
    except TypeError:
        pass
    return name


#: name -> the package to note for it ("" for none), for names already checked
_checked: dict[str, str] = {}


def _need(ctx: EncodeContext, name: str, what: str, obj: Any) -> None:
    pkg = _checked.get(name)
    if pkg is None:
        if is_denied(name):
            raise UnsupportedTypeError(
                type(obj),
                "",
                f"it needs {name} to load ({what}), which amber never loads because it can run "
                "arbitrary code; save the data it holds instead",
            )
        top = name.partition(".")[0]
        std = top in ("builtins", "__main__") or top not in sys.modules or top in sys.stdlib_module_names
        pkg = "" if std else top
        if len(_checked) < 65536:
            _checked[name] = pkg
    ctx.need(name)
    if pkg:
        ctx.note_package(pkg)


class GlobalHandler(Handler):
    """A class or function, stored by name and imported on load if trusted."""

    handler_id = "global"

    def encode(self, obj: Any, ctx: EncodeContext) -> list[Any]:
        name = global_name(obj, "class" if isinstance(obj, type) else "function")
        _need(ctx, name, "a class or function", obj)
        return [self.tag, name]

    def decode(self, node: Any, ctx: DecodeContext) -> Any:
        if len(node) != 2 or type(node[1]) is not str:
            raise CorruptFileError("malformed global node")
        return ctx.resolve(node[1])


def _trim(node: list[Any]) -> list[Any]:
    while len(node) > 3 and node[-1] is None:
        node.pop()
    return node


def _encode_state(state: Any, ctx: EncodeContext) -> Any:
    if state is None:
        return None
    if type(state) is dict and all(type(k) is str for k in state):
        return ctx.encode_attrs(state)
    return ctx.encode(state, ".__getstate__()")


class _ReduceBase(Handler):
    binds = True  # the object exists before its state is decoded: cycles through it work

    def _reduce(self, obj: Any) -> Any:
        t = type(obj)
        reducer = copyreg.dispatch_table.get(t)
        try:
            rv = reducer(obj) if reducer is not None else obj.__reduce_ex__(PROTOCOL)
        except Exception as exc:
            raise UnsupportedTypeError(t, "", f"it cannot be reduced to plain state ({exc})") from None
        return rv

    def encode(self, obj: Any, ctx: EncodeContext) -> list[Any]:
        rv = self._reduce(obj)
        if isinstance(rv, str):  # "the object is the global of that name" (e.g. singletons)
            module = getattr(obj, "__module__", None)
            if not isinstance(module, str):
                raise UnsupportedTypeError(type(obj), "", "it reduces to a name without a module")
            name = f"{module}.{rv}"
            if _find(module, rv) is not obj:  # as pickle checks: the name must give this object back
                raise UnsupportedTypeError(
                    type(obj), "", f"it reduces to the name {name}, which does not give it back on import"
                )
            _need(ctx, name, "a named object", obj)
            return [GLOBAL.tag, name]
        if not isinstance(rv, tuple) or not 2 <= len(rv) <= 6:
            raise UnsupportedTypeError(type(obj), "", f"its __reduce_ex__ returned {type(rv).__name__}, not a tuple")
        func, args, state, listitems, dictitems = (tuple(rv) + (None,) * 5)[:5]
        if len(rv) == 6 and rv[5] is not None:
            raise UnsupportedTypeError(type(obj), "", "it needs a state setter function, which amber does not call")
        if not isinstance(args, tuple):
            raise UnsupportedTypeError(type(obj), "", "its reduction arguments are not a tuple")
        kwargs = None
        if func is copyreg.__newobj__ or func is copyreg.__newobj_ex__:
            if func is copyreg.__newobj_ex__:
                cls, args, kwargs = args
                args = tuple(args)
                kwargs = dict(kwargs) or None
            else:
                cls, args = args[0], args[1:]
            if not isinstance(cls, type):
                raise UnsupportedTypeError(type(obj), "", "its reduction creates an instance of a non-class")
            name = global_name(cls, "class")
            _need(ctx, name, "its class", obj)
            tag = OBJECT.tag
        elif func is copyreg._reconstructor and len(args) == 3 and args[1] is object and args[2] is None:
            name = global_name(args[0], "class")
            _need(ctx, name, "its class", obj)
            tag, args = OBJECT.tag, ()
        else:
            name = global_name(func, "reduce function")
            _need(ctx, name, "the function that rebuilds it", obj)
            tag = REDUCE.tag
        enc_args = ctx.encode_before(obj, args, ".__reduce__()[1]") if args else None
        enc_kwargs = ctx.encode_before(obj, kwargs, ".__reduce__()[1]") if kwargs else None
        node = [
            tag,
            name,
            enc_args,
            _encode_state(state, ctx),
            ctx.encode(list(listitems), ".__reduce__()[3]") if listitems is not None else None,
            ctx.encode(dict(dictitems), ".__reduce__()[4]") if dictitems is not None else None,
            enc_kwargs,
        ]
        return _trim(node)

    def decode(self, node: Any, ctx: DecodeContext) -> Any:
        if not 3 <= len(node) <= 7 or type(node[1]) is not str:
            raise CorruptFileError(f"malformed {self.handler_id} node")
        node = tuple(node) + (None,) * (7 - len(node))
        _, name, args, state, listitems, dictitems, kwargs = node
        func = ctx.resolve(name)
        args = ctx.decode(args) if args is not None else ()
        kwargs = ctx.decode(kwargs) if kwargs is not None else {}
        if type(args) is not tuple or type(kwargs) is not dict:
            raise CorruptFileError(f"the arguments of {name} are malformed")
        if isinstance(func, type):
            arg_check = arg_check_for(func)
            if arg_check is not None:  # compiled code that trusts its constructor's arguments
                arg_check(args, kwargs)
            np = sys.modules.get("numpy")
            if np is not None and func is np.ndarray:  # (a buffer's bytes as items: forged object pointers)
                check_ndarray_call(args, kwargs)
        obj = self._create(name, func, args, kwargs, ctx)
        ctx.bind(obj)
        if state is not None:
            if type(state) is dict:
                state = ctx.decode_attrs(state)
            else:
                state = ctx.decode(state)
        if listitems is not None:
            items = ctx.decode(listitems)
            if type(items) is not list:
                raise CorruptFileError(f"the list items of a {name} are malformed")
            extend = getattr(obj, "extend", None)
            if extend is not None:
                extend(items)
            else:
                for item in items:
                    obj.append(item)
        if dictitems is not None:
            items = ctx.decode(dictitems)
            if type(items) is not dict:
                raise CorruptFileError(f"the dict items of a {name} are malformed")
            for k, v in items.items():
                obj[k] = v
        if state is not None:
            state_check = state_check_for(type(obj))
            if state_check is not None:  # its __setstate__ hands the state to a native parser
                state = state_check(state)
            _apply_state(obj, state, name)
        check = check_for(type(obj))
        if check is not None:  # compiled code that trusts its state (a tree's child links)
            check(obj)
        return obj

    @abstractmethod
    def _create(self, name: str, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], ctx: DecodeContext) -> Any:
        """The new object: ``func`` (trusted, resolved from ``name``) applied to the arguments."""


class ObjectHandler(_ReduceBase):
    """An instance made by ``cls.__new__(cls, *args)`` (pickle's ``__newobj__``)."""

    handler_id = "object"

    def decode(self, node: Any, ctx: DecodeContext) -> Any:
        # the common case, most of the nodes of a file of many small objects: no arguments,
        # a map of attributes, and a class with nothing to check or call (its plan is
        # worked out once per load): the same steps as the general way, without asking again
        if len(node) == 4 and node[2] is None and type(node[3]) is dict and type(node[1]) is str:
            plans = ctx.scratch.get(_PLANS)
            if plans is None:
                plans = ctx.scratch[_PLANS] = {}
            cls = plans.get(node[1], _UNPLANNED)
            if cls is _UNPLANNED:
                cls = plans[node[1]] = _plain_class(ctx.resolve(node[1]))
            if cls is not None:
                obj = object.__new__(cls)
                ctx.bind(obj)
                inst = obj.__dict__
                intern = sys.intern
                for k, v in ctx.decode_attrs(node[3]).items():
                    inst[intern(k) if type(k) is str else k] = v
                return obj
        return super().decode(node, ctx)

    def _create(self, name: str, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], ctx: DecodeContext) -> Any:
        if not isinstance(func, type):
            raise CorruptFileError(f"{name} is not a class, but an object node creates an instance of it")
        # Arguments to __new__ only for classes whose own pickling passes them (or that the
        # caller trusts): ndarray.__new__(ndarray, (10**12,)) would allocate what a file asks.
        if (args or kwargs) and not ctx.caller_trusts(name) and not _takes_new_args(func):
            raise CorruptFileError(f"{name} does not pass arguments to __new__ when pickled, but the file does; refusing")
        return func.__new__(func, *args, **kwargs)


class ReduceHandler(_ReduceBase):
    """An object made by calling a named (trusted) callable with arguments."""

    handler_id = "reduce"

    def _create(self, name: str, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], ctx: DecodeContext) -> Any:
        if kwargs or not callable(func):
            raise CorruptFileError(f"malformed reduce node for {name}")
        # A class trusted only as a class of a well-known package (not named by the caller)
        # may be called only if its own pickling calls it: torch.nn.Linear(10**5, 10**5) in
        # a file would otherwise allocate whatever the file asks for.
        if isinstance(func, type) and not ctx.caller_trusts(name) and not _rebuilt_by_calling(func):
            raise CorruptFileError(
                f"{name} is not rebuilt by calling it (its instances pickle through __new__ and their "
                "state), but the file calls it with arguments; refusing"
            )
        if func is bytearray and args and type(args[0]) is int:  # bytearray(n) allocates n
            raise CorruptFileError(f"{name} called with a size; refusing")
        return func(*args)


_PLANS = object()  # (the key of the per-load plans in ctx.scratch)
_UNPLANNED = object()


def _plain_class(func: Any) -> type | None:
    """``func`` when the general way would rebuild an instance of it with no arguments and a
    map of attributes as ``object.__new__(func)`` and a ``__dict__`` update, checking and
    calling nothing else (no ``__new__`` or ``__setstate__`` of its own, no check of its
    arguments, state or result); else None."""
    if (
        not isinstance(func, type)
        or func.__new__ is not object.__new__
        or getattr(func, "__setstate__", None) is not None
        or not getattr(func, "__dictoffset__", 0)  # (instances without a __dict__: the general way)
        or arg_check_for(func) is not None
        or state_check_for(func) is not None
        or check_for(func) is not None
    ):
        return None
    return func


def _mro_defines(cls: type, names: tuple[str, ...]) -> bool:
    return any(n in k.__dict__ for k in cls.__mro__ if k is not object for n in names)


@functools.lru_cache(maxsize=4096)
def _takes_new_args(cls: type) -> bool:
    return cls.__new__ is object.__new__ or _mro_defines(cls, ("__getnewargs__", "__getnewargs_ex__"))


@functools.lru_cache(maxsize=4096)
def _rebuilt_by_calling(cls: type) -> bool:
    return cls in copyreg.dispatch_table or _mro_defines(cls, ("__reduce__", "__reduce_ex__"))


def _apply_state(obj: Any, state: Any, name: str) -> None:
    """pickle's BUILD: ``__setstate__`` if the class has one, else ``__dict__``/slots."""
    setstate = getattr(type(obj), "__setstate__", None)
    if setstate is not None:
        np = sys.modules.get("numpy")
        problem = build_problem(obj, state) if np is not None and isinstance(obj, (np.ndarray, np.dtype)) else None
        if problem is not None:
            raise CorruptFileError(f"the state of a {name}: {problem}; NumPy would use memory it does not own, so the "
                                   "file is refused (it is damaged or hostile)")
        obj.__setstate__(state)
        return
    slots = None
    if type(state) is tuple and len(state) == 2:
        state, slots = state
    if state:
        if type(state) is not dict:
            raise CorruptFileError(f"the state of a {name} is not a dict of attributes")
        inst = obj.__dict__
        intern = sys.intern
        for k, v in state.items():
            inst[intern(k) if type(k) is str else k] = v
    if slots:
        if type(slots) is not dict:
            raise CorruptFileError(f"the slot state of a {name} is not a dict")
        for k, v in slots.items():
            setattr(obj, k, v)


class StateHandler(Handler):
    """Classes that opt in: ``__amber_state__(self)`` and ``__amber_from_state__(cls, state)``."""

    handler_id = "state"

    def encode(self, obj: Any, ctx: EncodeContext) -> list[Any]:
        cls = type(obj)
        name = global_name(cls, "class")
        _need(ctx, name, "its class", obj)
        return [self.tag, name, ctx.encode(obj.__amber_state__(), ".__amber_state__()")]

    def decode(self, node: Any, ctx: DecodeContext) -> Any:
        if len(node) != 3 or type(node[1]) is not str:
            raise CorruptFileError("malformed state node")
        cls = ctx.resolve(node[1])
        rebuild = getattr(cls, "__amber_from_state__", None) if isinstance(cls, type) else None
        if rebuild is None:
            raise CorruptFileError(f"{node[1]} has no __amber_from_state__ classmethod to rebuild it with")
        return rebuild(ctx.decode(node[2]))


class PartialHandler(Handler):
    """``functools.partial``: the function goes through its own node (so through the trust
    list on load); making the partial calls nothing."""

    handler_id = "functools.partial"
    types = (functools.partial,)

    def encode(self, obj: Any, ctx: EncodeContext) -> list[Any]:
        if obj.__reduce__()[2][3]:  # (reading obj.__dict__ would create one)
            raise UnsupportedTypeError(type(obj), "", "a partial with attributes of its own is not supported")
        return [
            self.tag,
            ctx.encode(obj.func, ".func"),
            ctx.encode(obj.args, ".args") if obj.args else None,
            ctx.encode(dict(obj.keywords), ".keywords") if obj.keywords else None,
        ]

    def decode(self, node: Any, ctx: DecodeContext) -> Any:
        if len(node) != 4:
            raise CorruptFileError("malformed functools.partial node")
        func = ctx.decode(node[1])
        args = ctx.decode(node[2]) if node[2] is not None else ()
        kwargs = ctx.decode(node[3]) if node[3] is not None else {}
        if not callable(func) or type(args) is not tuple or type(kwargs) is not dict:
            raise CorruptFileError("malformed functools.partial node")
        if not all(type(k) is str for k in kwargs):
            raise CorruptFileError("a functools.partial node has non-str keyword names")
        out = functools.partial(func, *args, **kwargs)
        check = check_for(functools.partial)
        if check is not None:  # (a partial of a class whose instances are checked: refused)
            check(out)
        return out


GLOBAL = GlobalHandler()
PARTIAL = PartialHandler()
OBJECT = ObjectHandler()
REDUCE = ReduceHandler()
STATE = StateHandler()


def fallback_for(t: type) -> Handler:
    """The handler for a type no registered handler saves."""
    if isinstance(t, type) and issubclass(t, type) or t in _FUNCTION_TYPES or t.__name__ in _FUNCTION_TYPE_NAMES:
        return GLOBAL
    if callable(getattr(t, "__amber_state__", None)) and callable(getattr(t, "__amber_from_state__", None)):
        return STATE
    return OBJECT
