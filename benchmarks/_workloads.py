"""The objects measured: a large matrix, real image tiles (one list, or one file each) and a dict."""

from __future__ import annotations

import math
import mmap
import random
import string
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["FULL", "GROUPS", "QUICK", "Sizes", "Workload", "build", "verify"]

#: What ``--only`` selects from.
GROUPS = ("matrix", "tiles", "dict")
TILE_SHAPE = (240, 320, 3)


@dataclass(frozen=True)
class Sizes:
    """How big each workload is."""

    matrix_mb: float = 200.0
    tiles: int = 1000
    dict_keys: int = 300_000


FULL = Sizes()
#: About 20x smaller than FULL, for a smoke run.
QUICK = Sizes(matrix_mb=10.0, tiles=50, dict_keys=15_000)


@dataclass
class Workload:
    """An object to save; with ``split`` it is a list whose items go to one file each."""

    name: str
    group: str
    title: str
    obj: Any
    repeat: int
    split: bool = False
    #: Every file holds one ndarray (np.save applies).
    single_array: bool = False
    has_arrays: bool = False

    @property
    def files(self) -> int:
        return len(self.obj) if self.split else 1

    @property
    def payload_bytes(self) -> int:
        return sum(a.nbytes for a in _arrays(self.obj))


def make_matrix(mb: float, seed: int) -> np.ndarray:
    """A square float64 matrix of about ``mb`` MB (10^6 bytes) of uniform random numbers."""
    side = max(1, round(math.sqrt(mb * 1e6 / 8)))
    return np.random.default_rng(seed).random((side, side))


def make_tiles(n: int, seed: int) -> list[np.ndarray]:
    """``n`` 240x320x3 uint8 tiles cut at seeded random places from scikit-learn's sample photos."""
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images
    rng = np.random.default_rng(seed)
    h, w, _ = TILE_SHAPE
    tiles = []
    for _ in range(n):
        photo = photos[int(rng.integers(len(photos)))]
        y = int(rng.integers(0, photo.shape[0] - h + 1))
        x = int(rng.integers(0, photo.shape[1] - w + 1))
        tiles.append(photo[y : y + h, x : x + w].copy())
    return tiles


def make_dict(n: int, seed: int) -> dict[str, Any]:
    """``n`` string keys to a seeded mix of ints, floats, short strings and short tuples."""
    rnd = random.Random(seed)
    letters = string.ascii_letters + string.digits

    def word() -> str:
        return "".join(rnd.choices(letters, k=rnd.randint(3, 12)))

    def scalar(kind: int) -> Any:
        if kind == 0:
            return rnd.randint(-(10**9), 10**9)
        if kind == 1:
            return rnd.uniform(-1e6, 1e6)
        return word()

    out: dict[str, Any] = {}
    for i in range(n):
        kind = rnd.randrange(4)
        key = f"{word()}_{i}"
        if kind < 3:
            out[key] = scalar(kind)
        else:
            out[key] = tuple(scalar(rnd.randrange(3)) for _ in range(rnd.randint(2, 3)))
    return out


def build(sizes: Sizes, groups: tuple[str, ...], seed: int, repeat: int | None) -> Iterator[Workload]:
    """The selected workloads, made one at a time. ``repeat=None``: 3 for the matrix, else 5."""
    if "matrix" in groups:
        m = make_matrix(sizes.matrix_mb, seed)
        title = f"{m.nbytes / 1e6:.0f} MB float64 matrix ({m.shape[0]} x {m.shape[1]}, uniform random)"
        yield Workload("matrix", "matrix", title, m, repeat or 3, single_array=True, has_arrays=True)
        del m
    if "tiles" in groups:
        tiles = make_tiles(sizes.tiles, seed)
        mb = len(tiles) * math.prod(TILE_SHAPE) / 1e6
        what = f"{len(tiles)} image tiles {'x'.join(map(str, TILE_SHAPE))} uint8 ({mb:.0f} MB)"
        yield Workload(
            "tiles-list", "tiles", f"{what} as one list in one file", tiles, repeat or 5, has_arrays=True
        )
        yield Workload(
            "tiles-files", "tiles", f"{what}, one file per tile (dump all / load all)", tiles, repeat or 5,
            split=True, single_array=True, has_arrays=True,
        )
        del tiles
    if "dict" in groups:
        d = make_dict(sizes.dict_keys, seed)
        title = f"dict of {len(d):,} str keys to ints, floats, short strings and short tuples"
        yield Workload("dict", "dict", title, d, repeat or 5)


def _arrays(obj: Any) -> Iterator[np.ndarray]:
    if isinstance(obj, np.ndarray):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for x in obj:
            yield from _arrays(x)
    elif isinstance(obj, dict):
        for x in obj.values():
            yield from _arrays(x)


def _is_mapped(arr: np.ndarray) -> bool:
    """True when the array's memory is a memory map of a file."""
    base: Any = arr
    while base is not None:
        if isinstance(base, (np.memmap, mmap.mmap)):
            return True
        base = base.obj if isinstance(base, memoryview) else getattr(base, "base", None)
    return False


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray):
        return (
            isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
        )
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(v, b[k]) for k, v in a.items())
    return bool(a == b)


def verify(w: Workload, loaded: Any, mapped: bool) -> None:
    """Raise unless ``loaded`` equals the workload's object and its arrays are in memory
    (or, for a mapping load, all mapped from the file)."""
    if not _same(w.obj, loaded):
        raise AssertionError("the loaded object differs from the saved one")
    for arr in _arrays(loaded):
        if _is_mapped(arr) != mapped:
            raise AssertionError(
                "an array was read into memory by a mapping load" if mapped
                else "an array is still mapped from the file after a plain load"
            )
