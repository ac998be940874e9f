"""Classes and functions for tests/test_objects.py and tests/test_trust.py.

They live in a module of their own so that they have importable names
(``_objects_mod.Point``): amber stores classes and functions by name and, on load,
imports them only when the caller trusts that name. Nothing here has a handler of its
own, so amber saves every instance through the generic reducer.
"""

from __future__ import annotations

import enum
from collections import namedtuple
from dataclasses import dataclass, field
from typing import Any, NamedTuple

MODULE = __name__


def _fields(obj: Any) -> dict[str, Any]:
    """Every attribute value, from ``__dict__`` and all ``__slots__`` up the MRO."""
    out = dict(getattr(obj, "__dict__", {}))
    for klass in type(obj).__mro__:
        slots = klass.__dict__.get("__slots__", ())
        for s in (slots,) if isinstance(slots, str) else slots:
            if s not in ("__dict__", "__weakref__") and hasattr(obj, s):
                out[s] = getattr(obj, s)
    return out


class Eq:
    """Equal when the type and every attribute are equal."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and _fields(self) == _fields(other)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({_fields(self)!r})"

    __hash__ = None  # type: ignore[assignment]


# -- plain attributes ---------------------------------------------------------------------


class Point(Eq):
    def __init__(self, x: Any, y: Any) -> None:
        self.x = x
        self.y = y


class Slotted(Eq):
    __slots__ = ("a", "b")

    def __init__(self, a: Any, b: Any) -> None:
        self.a = a
        self.b = b


class SlotsAndDict(Eq):
    __slots__ = ("a", "__dict__")

    def __init__(self, a: Any, extra: Any) -> None:
        self.a = a
        self.extra = extra


class InheritedSlots(Slotted):
    __slots__ = ("c",)

    def __init__(self, a: Any, b: Any, c: Any) -> None:
        super().__init__(a, b)
        self.c = c


class PartlySet(Eq):
    """A slot left unset must stay unset."""

    __slots__ = ("a", "b")

    def __init__(self, a: Any) -> None:
        self.a = a


# -- pickling protocol ------------------------------------------------------------------


class WithState(Eq):
    """``__getstate__`` leaves the cache out; ``__setstate__`` rebuilds it."""

    def __init__(self, values: list[int]) -> None:
        self.values = values
        self.cache = sum(values)

    def __getstate__(self) -> dict[str, Any]:
        return {"values": self.values, "version": 2}

    def __setstate__(self, state: dict[str, Any]) -> None:
        assert state["version"] == 2
        self.values = state["values"]
        self.cache = sum(self.values)
        self.restored = True


class TupleState(Eq):
    """State that is not a dict: a tuple handed to ``__setstate__``."""

    def __init__(self, a: int, b: str) -> None:
        self.a, self.b = a, b

    def __getstate__(self) -> tuple[int, str]:
        return (self.a, self.b)

    def __setstate__(self, state: tuple[int, str]) -> None:
        self.a, self.b = state


class Reduced(Eq):
    """``__reduce__``: the class called with arguments, then a state dict."""

    def __init__(self, a: Any, b: Any = None) -> None:
        self.a = a
        self.b = b
        self.calls = 1

    def __reduce__(self) -> Any:
        return (type(self), (self.a,), {"b": self.b, "calls": self.calls})


def make_widget(name: str, size: int) -> Widget:
    return Widget(name, size, via_factory=True)


class Widget(Eq):
    """``__reduce_ex__`` returning a module-level factory function and its arguments."""

    def __init__(self, name: str, size: int, via_factory: bool = False) -> None:
        self.name = name
        self.size = size
        self.via_factory = via_factory

    def __reduce_ex__(self, protocol: Any) -> Any:
        return (make_widget, (self.name, self.size))


class ReducedList(list):  # type: ignore[type-arg]
    """A list subclass whose ``__reduce_ex__`` returns args, state and list items."""

    def __init__(self, items: Any = (), label: str = "") -> None:
        super().__init__(items)
        self.label = label

    def __reduce_ex__(self, protocol: Any) -> Any:
        return (type(self), (), {"label": self.label}, iter(self), None)

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and list(self) == list(other) and self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]


class ReducedDict(dict):  # type: ignore[type-arg]
    """A dict subclass whose ``__reduce__`` returns state and dict items."""

    def __init__(self, items: Any = (), label: str = "") -> None:
        super().__init__(items)
        self.label = label

    def __reduce__(self) -> Any:
        return (type(self), (), {"label": self.label}, None, iter(self.items()))

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and dict(self) == dict(other) and self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]


class NewArgs(Eq):
    """``__new__`` needs an argument: ``__getnewargs__`` supplies it."""

    def __new__(cls, key: str) -> NewArgs:
        self = super().__new__(cls)
        self.key = key
        self.made_by_new = True
        return self

    def __init__(self, key: str) -> None:
        self.extra = [key] * 2

    def __getnewargs__(self) -> tuple[str]:
        return (self.key,)


class NewArgsEx(Eq):
    """``__new__`` with a keyword-only argument: ``__getnewargs_ex__`` supplies both."""

    def __new__(cls, key: str, *, scale: float) -> NewArgsEx:
        self = super().__new__(cls)
        self.key = key
        self.scale = scale
        return self

    def __init__(self, key: str, *, scale: float) -> None:
        pass

    def __getnewargs_ex__(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (self.key,), {"scale": self.scale}


# -- dataclasses, enums, named tuples -----------------------------------------------------


@dataclass
class DC:
    name: str
    values: list[int] = field(default_factory=list)
    child: Any = None


@dataclass(frozen=True)
class FrozenDC:
    a: int
    b: tuple[int, ...] = ()


@dataclass(slots=True)
class SlotsDC:
    a: int
    b: Any = None


@dataclass(frozen=True, slots=True)
class FrozenSlotsDC:
    a: int
    b: str = "x"


@dataclass
class TreeNode:
    """Node of the random object graphs in the hypothesis test."""

    value: Any = None
    items: list[Any] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)


class Color(enum.Enum):
    RED = 1
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 10


class Perm(enum.Flag):
    R = 4
    W = 2
    X = 1


Pair = namedtuple("Pair", "a b")


class Typed(NamedTuple):
    x: int
    y: str = "y"


# -- subclasses of builtins ---------------------------------------------------------------


class MyList(list):  # type: ignore[type-arg]
    pass


class MyDict(dict):  # type: ignore[type-arg]
    pass


class MySet(set):  # type: ignore[type-arg]
    pass


class MyInt(int):
    pass


class MyStr(str):
    pass


# -- functions ----------------------------------------------------------------------------


def square(x: float) -> float:
    return x * x


class Outer:
    class Inner(Eq):
        def __init__(self, v: Any) -> None:
            self.v = v


# -- opt-in state -------------------------------------------------------------------------


class Opted:
    """Saves only what ``__amber_state__`` returns; ``__amber_from_state__`` rebuilds it."""

    def __init__(self, weights: list[float], name: str) -> None:
        self.weights = weights
        self.name = name
        self.cache = object()  # not savable: __amber_state__ leaves it out

    def __amber_state__(self) -> dict[str, Any]:
        return {"w": self.weights, "n": self.name}

    @classmethod
    def __amber_from_state__(cls, state: dict[str, Any]) -> Opted:
        return cls(state["w"], state["n"])


# -- types for @amber.handler tests (each test registers its own) -------------------------


class HPoint:
    def __init__(self, x: float, y: float) -> None:
        self.x, self.y = x, y


class HPoint2(HPoint):
    pass


class HVersioned:
    def __init__(self, value: int, unit: str = "m") -> None:
        self.value, self.unit = value, unit


class HOther:
    def __init__(self, v: Any) -> None:
        self.v = v


class HalfOpted(Eq):
    """Only ``__amber_state__``, no ``__amber_from_state__``: saved generically instead."""

    def __init__(self, v: Any) -> None:
        self.v = v

    def __amber_state__(self) -> Any:
        raise AssertionError("not used without __amber_from_state__")


# -- more reductions --------------------------------------------------------------------


class Empty(Eq):
    pass


class _Sentinel:
    """A singleton whose ``__reduce__`` names the module attribute holding it."""

    def __reduce__(self) -> str:
        return "SENTINEL"


SENTINEL = _Sentinel()


class EvalReduce:
    """Reduces to ``eval``: dump must refuse it (and nothing here is ever called)."""

    def __reduce__(self) -> Any:
        return (eval, ("1 + 1",))


class SystemReduce:
    """Reduces to ``os.system``: dump must refuse it."""

    def __reduce__(self) -> Any:
        import os

        return (os.system, ("true",))


class StateSetterReduce(Eq):
    """A 6-tuple reduction with a state setter function, which amber does not call."""

    def __init__(self) -> None:
        self.a = 1

    def __reduce__(self) -> Any:
        return (type(self), (), {"a": self.a}, None, None, _set_state)


def _set_state(obj: Any, state: Any) -> None:  # pragma: no cover - never called
    obj.__dict__.update(state)


class _Stray:
    """``__reduce__`` names a module attribute that does not exist."""

    def __reduce__(self) -> str:
        return "NOT_THERE"


class _Impostor:
    """``__reduce__`` names a module attribute that holds another object."""

    def __reduce__(self) -> str:
        return "SENTINEL"
