"""The bars amber must meet, computed from a run. Ratios use best-of-N times."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from benchmarks._harness import Measurement, RunResult, WorkloadResult

__all__ = ["Bar", "compute_bars"]

_OPS: dict[str, Callable[[float, float], bool]] = {"<=": operator.le, "<": operator.lt, ">=": operator.ge}


@dataclass(frozen=True)
class Bar:
    """``value op limit``; ``ok`` is None when a number it needs is missing."""

    workload: str
    what: str
    value: float | None
    op: str
    limit: float
    unit: str
    ok: bool | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _bar(workload: str, what: str, value: float | None, op: str, limit: float, unit: str) -> Bar:
    ok = None if value is None else _OPS[op](value, limit)
    return Bar(workload, what, value, op, limit, unit, ok)


def _ratio(w: WorkloadResult, num: str, den: str, fn: Callable[[Measurement], float]) -> float | None:
    a, b = w.get(num), w.get(den)
    if a is None or b is None:
        return None
    x, y = fn(a), fn(b)
    return x / y if y > 0 else None


def _time_ratio(w: WorkloadResult, num: str, den: str, op: str) -> float | None:
    return _ratio(w, num, den, lambda m: m.best(op))


def _matrix(w: WorkloadResult) -> list[Bar]:
    n = w.name
    amber, npy, mm = w.get("amber"), w.get("npy"), w.get("amber_mmap")
    mmap_ms = mm.best("load") * 1e3 if mm else None
    peak_pct = 100 * amber.peak_dump_bytes / w.payload_bytes if amber else None
    extra_bytes = float(amber.size_bytes - npy.size_bytes) if amber and npy else None
    return [
        _bar(n, "amber dump / np.save dump", _time_ratio(w, "amber", "npy", "dump"), "<=", 1.15, "x"),
        _bar(n, "amber load / np.load load", _time_ratio(w, "amber", "npy", "load"), "<=", 1.15, "x"),
        _bar(n, "amber mmap=True load time", mmap_ms, "<", 10.0, "ms"),
        _bar(n, "amber dump peak extra memory / array size", peak_pct, "<=", 10.0, "%"),
        _bar(n, "amber file size - .npy file size", extra_bytes, "<=", 4096.0, "bytes"),
    ]


def _tiles(w: WorkloadResult) -> list[Bar]:
    n = w.name
    bars = [
        _bar(n, f"amber {op} / {label} {op}", _time_ratio(w, "amber", other, op), "<=", 1.0, "x")
        for op in ("dump", "load")
        for other, label in (("pickle5", "pickle p5"), ("joblib", "joblib"))
    ]
    bars.append(_bar(n, "amber compress=True size / joblib compress=3 size",
                     _ratio(w, "amber_z", "joblib_z3", lambda m: m.size_bytes), "<", 1.0, "x"))
    for op in ("dump", "load"):
        bars.append(_bar(n, f"joblib compress=3 {op} / amber compress=True {op} (speed-up)",
                         _time_ratio(w, "joblib_z3", "amber_z", op), ">=", 2.0, "x"))
    if w.get("amber_hdf5") is not None:  # one HDF5 file: against hickle and the hand-written loop
        for other, label in (("hickle", "hickle"), ("h5py_loop", "h5py loop")):
            bars += _within(w, other, label, 1.0, amber="amber_hdf5", amber_label="amber .h5")
    return bars


def _dict(w: WorkloadResult) -> list[Bar]:
    n = w.name
    return [
        _bar(n, "amber dump / pickle p5 dump", _time_ratio(w, "amber", "pickle5", "dump"), "<=", 2.0, "x"),
        _bar(n, "amber load / pickle p5 load", _time_ratio(w, "amber", "pickle5", "load"), "<=", 2.0, "x"),
        _bar(n, "amber dump / joblib dump", _time_ratio(w, "amber", "joblib", "dump"), "<", 1.0, "x"),
        _bar(n, "amber load / joblib load", _time_ratio(w, "amber", "joblib", "load"), "<", 1.0, "x"),
        *_existing_files(w),
        *_within(w, "orjson", "orjson (untyped)", 2.5, amber="amber_json", amber_label="amber .json compact"),
        *(
            _bar(n, f"jsonpickle {op} / amber .json {op} (speed-up)", _time_ratio(w, "jsonpickle", "amber_json_pretty", op),
                 ">=", 3.0, "x")
            for op in ("dump", "load")
        ),
    ]


def _within(w: WorkloadResult, other: str, label: str, limit: float, ops: tuple[str, ...] = ("dump", "load"),
            amber: str = "amber", amber_label: str = "amber") -> list[Bar]:
    """``amber <op> / <other> <op> <= limit`` for each op."""
    return [
        _bar(w.name, f"{amber_label} {op} / {label} {op}", _time_ratio(w, amber, other, op), "<=", limit, "x")
        for op in ops
    ]


def _safe_load_cost(w: WorkloadResult) -> Bar:
    return _bar(w.name, "amber load / amber load with trust checks off (cost of safe loading)",
                _time_ratio(w, "amber", "amber_trust_off", "load"), "<=", 1.2, "x")


def _existing_files(w: WorkloadResult) -> list[Bar]:
    """Safe loading of files other tools wrote, against those tools' own loads."""
    pairs = (
        ("amber_reads_pickle", "pickle5", "pickle.load"),
        ("amber_reads_joblib", "joblib", "joblib.load"),
        ("amber_reads_torch", "torch_save", "torch.load(weights_only=True)"),
    )
    return [
        _bar(w.name, f"amber.load / {label}, same file", _time_ratio(w, mine, theirs, "load"), "<=", 1.3, "x")
        for mine, theirs, label in pairs
        if w.get(mine) is not None
    ]


def _forest(w: WorkloadResult) -> list[Bar]:
    n = w.name
    amber, pkl = w.get("amber"), w.get("pickle5")
    extra_bytes = float(amber.size_bytes - pkl.size_bytes) if amber and pkl else None
    return [
        *_within(w, "pickle5", "pickle p5", 1.5),
        *(
            _bar(n, f"skops.io {op} / amber {op} (speed-up)", _time_ratio(w, "skops", "amber", op), ">=", 5.0, "x")
            for op in ("dump", "load")
        ),
        _bar(n, "amber file size - pickle p5 file size", extra_bytes, "<=", 0.0, "bytes"),
        _safe_load_cost(w),
        *_existing_files(w),
    ]


def _frame(w: WorkloadResult) -> list[Bar]:
    return [
        *_within(w, "pickle5", "pickle p5", 1.5),
        *(
            _bar(w.name, f"amber {op} / feather {op}", _time_ratio(w, "amber", "feather", op), "<", 1.0, "x")
            for op in ("dump", "load")
        ),
    ]


def _torch(w: WorkloadResult) -> list[Bar]:
    return [
        *_within(w, "safetensors", "safetensors save_file", 1.15, ("dump",)),
        *_within(w, "safetensors", "safetensors load_file (lazy)", 1.15, ("load",), "amber_mmap", "amber mmap=True"),
        *_within(w, "torch_save", "torch.load(weights_only=True)", 1.15, ("load",)),
        *_existing_files(w),
    ]


def _objects(w: WorkloadResult) -> list[Bar]:
    return [_safe_load_cost(w)]


def _scan_speed(w: WorkloadResult) -> list[Bar]:
    m = w.get("amber_scan")
    mbps = w.payload_bytes / 1e6 / m.best("load") if m else None
    return [_bar(w.name, "amber.scan speed", mbps, ">=", 200.0, "MB/s")]


def _scan_folder(w: WorkloadResult) -> list[Bar]:
    return [_bar(w.name, "picklescan time / amber.scan time (speed-up)",
                 _time_ratio(w, "picklescan", "amber_scan", "load"), ">=", 5.0, "x")]


def _jsonl(w: WorkloadResult) -> list[Bar]:
    m = w.get("amber_jsonl")
    return [
        _bar(w.name, f"amber.jsonl.{verb} peak RSS of the whole process", peak / 1e6 if m else None, "<", 100.0, "MB")
        for verb, peak in (("write", m.peak_dump_bytes if m else 0), ("read", m.peak_load_bytes if m else 0))
    ]


_RULES: dict[str, Callable[[WorkloadResult], list[Bar]]] = {
    "jsonl": _jsonl,
    "scan-torch": _scan_speed,
    "scan-joblib": _scan_speed,
    "scan-folder": _scan_folder,
    "matrix": _matrix,
    "tiles-list": _tiles,
    "tiles-files": _tiles,
    "dict": _dict,
    "forest": _forest,
    "frame": _frame,
    "torch": _torch,
    "objects": _objects,
}


def compute_bars(run: RunResult) -> list[Bar]:
    """Every bar of every workload in the run, in run order."""
    return [bar for w in run.workloads if w.name in _RULES for bar in _RULES[w.name](w)]
