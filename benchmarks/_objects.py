"""Small user-defined classes for the ``objects`` workload: what a project's own code saves.

They live in a module of the benchmarks package (importable by name), as a user's classes
would, so that an amber load has to trust them: ``trusted=["benchmarks._objects"]``.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Reading", "Record", "Span", "make_objects"]


@dataclass
class Reading:
    """A dataclass: a sensor reading."""

    sensor: str
    t: float
    value: float
    ok: bool = True
    tags: list[str] = field(default_factory=list)


class Record:
    """A plain class whose instances keep their attributes in ``__dict__``."""

    def __init__(self, ident: int, name: str, score: float, dims: tuple[int, ...], parent: int | None) -> None:
        self.ident = ident
        self.name = name
        self.score = score
        self.dims = dims
        self.parent = parent

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(self) == vars(other)

    __hash__ = None  # type: ignore[assignment]


class Span:
    """A class with ``__slots__`` (no ``__dict__``)."""

    __slots__ = ("start", "stop", "label")

    def __init__(self, start: int, stop: int, label: str) -> None:
        self.start = start
        self.stop = stop
        self.label = label

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and all(getattr(self, s) == getattr(other, s) for s in self.__slots__)

    __hash__ = None  # type: ignore[assignment]


def make_objects(n: int, seed: int) -> list[Any]:
    """``n`` seeded instances, in turn a Reading, a Record and a Span."""
    rnd = random.Random(seed)
    letters = string.ascii_lowercase + string.digits

    def word() -> str:
        return "".join(rnd.choices(letters, k=rnd.randint(4, 10)))

    out: list[Any] = []
    for i in range(n):
        kind = i % 3
        if kind == 0:
            tags = [word() for _ in range(rnd.randint(0, 2))]
            out.append(Reading(word(), rnd.uniform(0, 1e6), rnd.gauss(0, 1), rnd.random() < 0.9, tags))
        elif kind == 1:
            dims = tuple(rnd.randint(1, 512) for _ in range(rnd.randint(1, 3)))
            parent = rnd.randrange(i) if i and rnd.random() < 0.5 else None
            out.append(Record(i, word(), rnd.uniform(-1, 1), dims, parent))
        else:
            start = rnd.randrange(10**6)
            out.append(Span(start, start + rnd.randint(1, 1000), word()))
    return out
