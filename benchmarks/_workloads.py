"""The objects measured: a large matrix, real image tiles (one list, or one file each), a dict,
a fitted random forest, a DataFrame, a PyTorch state dict and a list of small user objects.

Every workload has a ``kind``: adapters made for one kind of object (skops for scikit-learn
models, feather for frames, safetensors for tensors...) run only on workloads of their kinds
(``Adapter.kinds``), and :func:`verify` checks a load the way its kind needs. scikit-learn,
pandas and PyTorch are imported only when a workload of theirs is built or checked.
"""

from __future__ import annotations

import bisect
import math
import mmap
import os
import random
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["FULL", "GROUPS", "KINDS", "QUICK", "Sizes", "Workload", "build", "sample", "verify"]

#: What ``--only`` selects from.
GROUPS = ("matrix", "tiles", "dict", "forest", "frame", "torch", "objects", "scan", "jsonl")
#: Kinds of workload: NumPy arrays and plain Python data, a fitted scikit-learn forest, a
#: pandas DataFrame, a PyTorch state dict, instances of user classes.
KINDS = ("data", "forest", "frame", "torch", "objects")
TILE_SHAPE = (240, 320, 3)
FOREST_FEATURES = 20
#: Held-out rows whose predictions a loaded forest must reproduce.
FOREST_PROBE_ROWS = 2_000
TORCH_BLOCKS = 8


@dataclass(frozen=True)
class Sizes:
    """How big each workload is."""

    matrix_mb: float = 200.0
    tiles: int = 1000
    dict_keys: int = 300_000
    #: Training rows of the random forest (x 20 features).
    forest_rows: int = 20_000
    forest_trees: int = 100
    frame_rows: int = 1_000_000
    #: float32 parameters of the state dict (about: it is rounded to a layer width).
    torch_params: int = 50_000_000
    objects: int = 20_000


FULL = Sizes()
#: About 20x smaller than FULL, for a smoke run (the forest keeps its 100 trees).
QUICK = Sizes(
    matrix_mb=10.0, tiles=50, dict_keys=15_000, forest_rows=1_000, frame_rows=50_000,
    torch_params=2_500_000, objects=1_000,
)


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
    #: It holds arrays or tensors (a mapping load applies).
    has_arrays: bool = False
    #: One of KINDS: which adapters apply and how a load is verified.
    kind: str = "data"
    #: What an amber load of it must trust (the module of its classes).
    trusted: tuple[str, ...] = ()
    #: What verify() needs besides ``obj`` (the forest's probe rows, probabilities, predictions).
    expected: Any = None
    #: Bytes of the payload when it is not only NumPy arrays (frames, tensors, trees).
    nbytes: int | None = None

    @property
    def files(self) -> int:
        return len(self.obj) if self.split else 1

    @property
    def payload_bytes(self) -> int:
        if self.nbytes is not None:
            return self.nbytes
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


def make_forest(rows: int, trees: int, seed: int) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
    """A RandomForestClassifier of ``trees`` trees fitted on ``rows`` x 20 seeded synthetic
    rows (two classes, 10 informative features), plus held-out probe rows and the forest's
    ``predict_proba`` and ``predict`` on them. The saved forest has ``n_jobs=None`` (fitting
    used every core)."""
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    x, y = make_classification(
        n_samples=rows + FOREST_PROBE_ROWS, n_features=FOREST_FEATURES, n_informative=10,
        n_redundant=5, random_state=seed,
    )
    forest = RandomForestClassifier(n_estimators=trees, random_state=seed, n_jobs=-1)
    forest.fit(x[:rows], y[:rows])
    forest.set_params(n_jobs=None)
    probe = x[rows:]
    return forest, probe, forest.predict_proba(probe), forest.predict(probe)


def make_frame(rows: int, seed: int) -> Any:
    """A seeded DataFrame: int64 ids, int32 counts, float64 prices, a 12-category
    categorical, free strings of 3-12 characters and datetime64[ns] timestamps."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    alphabet = np.frombuffer((string.ascii_letters + string.digits).encode(), dtype=np.uint8)
    chars = alphabet[rng.integers(0, len(alphabet), (rows, 12))]
    chars[np.arange(12) >= rng.integers(3, 13, rows)[:, None]] = 0  # trailing NULs end the string
    text = np.char.decode(chars.view("S12").ravel(), "ascii")
    start = np.datetime64("2024-01-01T00:00:00", "ns")
    return pd.DataFrame(
        {
            "id": np.arange(rows, dtype=np.int64),
            "count": rng.integers(-1000, 1000, rows, dtype=np.int32),
            "price": rng.standard_normal(rows) * 100,
            "category": pd.Categorical.from_codes(rng.integers(0, 12, rows), [f"cat_{i:02d}" for i in range(12)]),
            "text": text,
            "when": start + (rng.integers(0, 365 * 86_400_000, rows) * 1_000_000).astype("timedelta64[ns]"),
        }
    )


def make_state_dict(params: int, seed: int) -> dict[str, Any]:
    """A transformer-like state dict of about ``params`` float32 parameters: an embedding
    (vocabulary 8·d), 8 blocks (two layer norms, attention qkv and output, a 4·d MLP) and a
    final norm, about 104·d² parameters with d a multiple of 32."""
    import torch

    d = 32 * max(1, round(math.sqrt(params / (8 + 12 * TORCH_BLOCKS)) / 32))
    gen = torch.Generator().manual_seed(seed)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen).mul_(0.02)

    def norm(prefix: str) -> None:
        sd[f"{prefix}.weight"] = torch.ones(d)
        sd[f"{prefix}.bias"] = torch.zeros(d)

    def linear(prefix: str, n_out: int, n_in: int) -> None:
        sd[f"{prefix}.weight"] = randn(n_out, n_in)
        sd[f"{prefix}.bias"] = randn(n_out)

    sd: dict[str, Any] = {"embed.weight": randn(8 * d, d)}
    for i in range(TORCH_BLOCKS):
        norm(f"blocks.{i}.norm1")
        linear(f"blocks.{i}.attn.qkv", 3 * d, d)
        linear(f"blocks.{i}.attn.out", d, d)
        norm(f"blocks.{i}.norm2")
        linear(f"blocks.{i}.mlp.fc1", 4 * d, d)
        linear(f"blocks.{i}.mlp.fc2", d, 4 * d)
    norm("norm")
    return sd


def _forest_nbytes(forest: Any) -> int:
    total = 0
    for est in forest.estimators_:
        state = est.tree_.__getstate__()
        total += state["nodes"].nbytes + state["values"].nbytes
    return total


def build(sizes: Sizes, groups: tuple[str, ...], seed: int, repeat: int | None) -> Iterator[Workload]:
    """The selected workloads, made one at a time. ``repeat=None``: 3 for the matrix, 5 for
    the state dict and the tiles and dict, and more for the quick ones, where one pause of
    this shared machine's other tenants costs a tool a whole round: 15 for the forest and
    the DataFrame (about 20 ms a load), 11 for the small objects."""
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
        del d
    if "forest" in groups:
        forest, probe, proba, pred = make_forest(sizes.forest_rows, sizes.forest_trees, seed)
        nodes = sum(est.tree_.node_count for est in forest.estimators_)
        title = (
            f"RandomForestClassifier ({len(forest.estimators_)} trees, fitted on {sizes.forest_rows:,} x "
            f"{FOREST_FEATURES}; {nodes:,} tree nodes)"
        )
        yield Workload(
            "forest", "forest", title, forest, repeat or 15, has_arrays=True, kind="forest",
            expected=(probe, proba, pred), nbytes=_forest_nbytes(forest),
        )
        del forest, probe, proba, pred
    if "frame" in groups:
        df = make_frame(sizes.frame_rows, seed)
        nbytes = int(df.memory_usage(deep=True, index=True).sum())
        dtypes = ", ".join(str(t) for t in df.dtypes)
        title = f"pandas DataFrame, {len(df):,} rows x {df.shape[1]} columns ({dtypes}; {nbytes / 1e6:.0f} MB in memory)"
        yield Workload("frame", "frame", title, df, repeat or 15, has_arrays=True, kind="frame", nbytes=nbytes)
        del df
    if "torch" in groups:
        sd = make_state_dict(sizes.torch_params, seed)
        n = sum(t.numel() for t in sd.values())
        nbytes = sum(t.nbytes for t in sd.values())
        title = (
            f"PyTorch state dict, {n / 1e6:.1f}M float32 parameters in {len(sd)} tensors "
            f"({nbytes / 1e6:.0f} MB; transformer-like, {TORCH_BLOCKS} blocks, d={sd['norm.weight'].numel()})"
        )
        yield Workload("torch", "torch", title, sd, repeat or 5, has_arrays=True, kind="torch", nbytes=nbytes)
        del sd
    if "objects" in groups:
        from benchmarks import _objects

        objs = _objects.make_objects(sizes.objects, seed)
        title = (
            f"list of {len(objs):,} small objects of user classes (a dataclass, a plain class and a "
            f"__slots__ class, in turn) from {_objects.__name__}"
        )
        yield Workload("objects", "objects", title, objs, repeat or 11, kind="objects", trusted=(_objects.__name__,))
        del objs


def sample(kind: str, single_array: bool, seed: int = 0) -> Any:
    """A tiny object of a workload kind, for warming an adapter up."""
    if kind == "forest":
        return make_forest(40, 2, seed)[0]
    if kind == "frame":
        return make_frame(100, seed)
    if kind == "torch":
        return make_state_dict(1, seed)
    if kind == "objects":
        from benchmarks._objects import make_objects

        return make_objects(9, seed)
    small = np.arange(1000.0)
    return small if single_array else [small, {"a": (1, 2.5, "x")}]


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


def _file_mappings() -> list[tuple[int, int]] | None:
    """The address ranges of this process mapped from files (sorted), or None if unknown."""
    ranges = []
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                parts = line.split(None, 5)
                path = parts[5].strip() if len(parts) > 5 else ""
                if path.startswith("/") and os.path.isfile(path):
                    lo, _, hi = parts[0].partition("-")
                    ranges.append((int(lo, 16), int(hi, 16)))
    except OSError:
        return None
    return sorted(ranges)


def _in_ranges(ranges: list[tuple[int, int]], address: int) -> bool:
    i = bisect.bisect_right(ranges, (address, math.inf)) - 1
    return i >= 0 and ranges[i][0] <= address < ranges[i][1]


def _verify_data(w: Workload, loaded: Any, mapped: bool) -> None:
    if not _same(w.obj, loaded):
        raise AssertionError("the loaded object differs from the saved one")
    for arr in _arrays(loaded):
        if _is_mapped(arr) != mapped:
            raise AssertionError(
                "an array was read into memory by a mapping load" if mapped
                else "an array is still mapped from the file after a plain load"
            )


def _verify_forest(w: Workload, loaded: Any, mapped: bool) -> None:
    probe, proba, pred = w.expected
    if type(loaded) is not type(w.obj):
        raise AssertionError(f"loaded a {type(loaded).__name__}, not a {type(w.obj).__name__}")
    if loaded.get_params(deep=False) != w.obj.get_params(deep=False):
        raise AssertionError("the loaded forest's parameters differ")
    if len(loaded.estimators_) != len(w.obj.estimators_):
        raise AssertionError("the loaded forest has another number of trees")
    if not np.array_equal(loaded.predict_proba(probe), proba):
        raise AssertionError("the loaded forest's predict_proba differs on the held-out rows")
    if not np.array_equal(loaded.predict(probe), pred):
        raise AssertionError("the loaded forest's predictions differ on the held-out rows")


def _verify_frame(w: Workload, loaded: Any, mapped: bool) -> None:
    import pandas as pd

    if type(loaded) is not pd.DataFrame:
        raise AssertionError(f"loaded a {type(loaded).__name__}, not a DataFrame")
    pd.testing.assert_frame_equal(loaded, w.obj, check_exact=True)


def _verify_torch(w: Workload, loaded: Any, mapped: bool) -> None:
    """Every tensor equal (torch.equal, same dtype and shape); a mapping load's tensors must
    live in a file mapping, a plain load's must not."""
    import torch

    if not isinstance(loaded, dict) or loaded.keys() != w.obj.keys():
        raise AssertionError("the loaded state dict has other keys")
    ranges = _file_mappings()
    for key, want in w.obj.items():
        got = loaded[key]
        if not isinstance(got, torch.Tensor) or got.dtype != want.dtype or got.shape != want.shape:
            raise AssertionError(f"{key}: not a {want.dtype} tensor of shape {tuple(want.shape)}")
        if not torch.equal(got, want):
            raise AssertionError(f"{key}: the loaded tensor differs from the saved one")
        if ranges is not None and got.numel() and _in_ranges(ranges, got.data_ptr()) != mapped:
            raise AssertionError(
                f"{key}: a mapping load read the tensor into memory" if mapped
                else f"{key}: the tensor is mapped from a file after a plain load"
            )


_VERIFY: dict[str, Callable[[Workload, Any, bool], None]] = {
    "data": _verify_data,
    "forest": _verify_forest,
    "frame": _verify_frame,
    "torch": _verify_torch,
    "objects": _verify_data,  # same classes, equal instances (their __eq__ compares attributes)
}


def verify(w: Workload, loaded: Any, mapped: bool) -> None:
    """Raise unless ``loaded`` equals the workload's object (as its kind defines equal) and
    its arrays or tensors are in memory (or, for a mapping load, all mapped from the file)."""
    _VERIFY[w.kind](w, loaded, mapped)
