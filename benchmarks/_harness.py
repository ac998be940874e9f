"""Measure every applicable adapter on every selected workload.

Times come from runs without tracing (tracemalloc slows allocation-heavy code down);
peak memory comes from one extra dump and one extra load traced with tracemalloc.
Each workload runs with the objects that existed before it frozen out of the cyclic GC,
so a collection does not rescan imported modules and the workload on every call; every
timed call ends with the collection it left due (:func:`_gc_due`).
"""

from __future__ import annotations

import gc
import importlib.metadata
import itertools
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._adapters import ADAPTERS, Adapter
from benchmarks._workloads import FULL, GROUPS, Sizes, Workload, build, sample, verify

__all__ = ["Config", "Measurement", "RunResult", "WorkloadResult", "run"]

BENCH_DIR = Path(__file__).resolve().parent
RAM_FILESYSTEMS = frozenset({"tmpfs", "ramfs", "devtmpfs", "hugetlbfs"})
Log = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Config:
    """What to run. ``repeat=None`` means 3 for the matrix and the state dict, 5 for the rest."""

    sizes: Sizes = FULL
    repeat: int | None = None
    only: tuple[str, ...] = GROUPS
    #: Folder for the temporary files; None: the system's, unless that lives in RAM.
    tmpdir: Path | None = None
    seed: int = 0
    #: Flush dirty pages (os.sync) before each timed call, so earlier writes don't interfere.
    sync: bool = True
    quick: bool = False


@dataclass
class Measurement:
    """The numbers of one adapter on one workload (times in seconds, sizes in bytes)."""

    adapter: str
    label: str
    mmap: bool
    dump_s: list[float] = field(default_factory=list)
    load_s: list[float] = field(default_factory=list)
    size_bytes: int = 0
    files: int = 0
    peak_dump_bytes: int = 0
    peak_load_bytes: int = 0
    error: str | None = None

    def best(self, op: str) -> float:
        return min(self.dump_s if op == "dump" else self.load_s)

    def median(self, op: str) -> float:
        return statistics.median(self.dump_s if op == "dump" else self.load_s)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        if self.error is None:
            for op in ("dump", "load"):
                out[f"{op}_best_s"] = self.best(op)
                out[f"{op}_median_s"] = self.median(op)
        return out


@dataclass
class WorkloadResult:
    name: str
    group: str
    title: str
    payload_bytes: int
    files: int
    repeat: int
    loadavg: list[float]
    measurements: list[Measurement] = field(default_factory=list)

    def get(self, adapter: str) -> Measurement | None:
        """The measurement of ``adapter`` if it ran without error."""
        for m in self.measurements:
            if m.adapter == adapter and m.error is None:
                return m
        return None

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "measurements"}
        out["measurements"] = [m.to_json() for m in self.measurements]
        return out


@dataclass
class RunResult:
    config: dict[str, Any]
    env: dict[str, Any]
    workloads: list[WorkloadResult] = field(default_factory=list)
    seconds: float = 0.0

    def get(self, name: str) -> WorkloadResult | None:
        return next((w for w in self.workloads if w.name == name), None)


def fs_type(path: Path) -> str:
    """The filesystem type holding ``path`` (from /proc/self/mounts), or "unknown"."""
    real = os.path.realpath(path)
    best, kind = "", "unknown"
    try:
        with open("/proc/self/mounts", encoding="utf-8") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) < 3:
                    continue
                mnt = parts[1].replace("\\040", " ")
                inside = real == mnt or real.startswith(mnt.rstrip("/") + "/")
                if inside and len(mnt) >= len(best):
                    best, kind = mnt, parts[2]
    except OSError:
        pass
    return kind


def default_tmp_base() -> Path:
    """The system temp folder, or benchmarks/.data when that one lives in RAM."""
    base = Path(tempfile.gettempdir())
    return BENCH_DIR / ".data" if fs_type(base) in RAM_FILESYSTEMS else base


def _git_state(folder: Path) -> str | None:
    """``<short commit>`` of the checkout holding ``folder``, ``+dirty`` if it has local edits."""
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=30, check=True
        ).stdout.strip()

    try:
        dirty = git("status", "--porcelain", "--", ".")
        return git("rev-parse", "--short", "HEAD") + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


#: Packages of the framework workloads and their tools, reported when installed.
_OPTIONAL = ("pandas", "pyarrow", "torch", "safetensors", "skops")


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _environment(tmp: Path) -> dict[str, Any]:
    import joblib

    import amber

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "amber": amber.__version__,
        "amber_source": str(Path(amber.__file__).resolve().parent),
        "amber_git": _git_state(Path(amber.__file__).resolve().parent),
        "numpy": np.__version__,
        "joblib": joblib.__version__,
        "scikit-learn": importlib.metadata.version("scikit-learn"),
        **{dist: _version(dist) for dist in _OPTIONAL},
        "tmpdir": str(tmp),
        "tmpdir_fs": fs_type(tmp),
    }


def _loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not POSIX
        return []


def _settle(sync: bool) -> None:
    """Drop garbage and (optionally) flush dirty pages, outside any timed region."""
    gc.collect()
    if sync and hasattr(os, "sync"):
        os.sync()


def _peak(fn: Callable[[], Any]) -> int:
    """Peak bytes traced by tracemalloc while ``fn`` runs, beyond what was traced before.

    The result of ``fn`` is held until the peak is read, so a load counts what it loaded.
    """
    outer = tracemalloc.is_tracing()
    if not outer:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        if not outer:
            tracemalloc.stop()
    del result
    return max(0, peak - before)


def _dump(adapter: Adapter, w: Workload, paths: list[Path]) -> None:
    if w.split:
        for item, path in zip(w.obj, paths, strict=True):
            adapter.dump(item, path)
    else:
        adapter.dump(w.obj, paths[0])


def _gc_due() -> list[Any]:
    """A new container, inside the timing: it runs the cyclic collection a call left due, as
    the caller's next allocation would (a call that pauses the collector while it builds
    objects, as amber's loads do, leaves one due; without this it would run after the clock
    stopped, in nobody's time)."""
    return []


def _load(adapter: Adapter, w: Workload, paths: list[Path]) -> Any:
    if w.split:
        return [adapter.load(p) for p in paths]
    return adapter.load(paths[0])


def _clear(folder: Path) -> None:
    for p in folder.iterdir():
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink()


def _paths(w: Workload, adapter: Adapter, work: Path) -> list[Path]:
    return [work / f"{w.name}.{adapter.key}.{i:05d}{adapter.suffix}" for i in range(w.files)]


def _turn(live: list[Adapter], r: int) -> list[Adapter]:
    """The adapters in round ``r``'s order: the round starts with adapter ``r`` (cyclically)."""
    j = r % len(live) if live else 0
    return live[j:] + live[:j]


def measure_all(w: Workload, adapters: list[Adapter], work: Path, sync: bool = True) -> list[Measurement]:
    """Time ``w.repeat`` dumps and loads of every adapter, then trace one of each.

    The adapters take turns (round robin: repeat 1 of each, then repeat 2 of each...), and
    each round starts with a different adapter, so that no tool is always measured first or
    last: on this kind of machine the state of the filesystem (journal, discards, page
    cache) drifts over a run, and a fixed order would hand one tool the best conditions
    every time. Every dump goes into a new, empty folder: a folder that has held thousands
    of files keeps its grown directory index after they are deleted, and creating files in
    it gets slower with every round. ``work`` must be empty.
    """
    ms = {a.key: Measurement(a.key, a.label, a.mmap) for a in adapters}
    live = list(adapters)
    clock = time.perf_counter
    folders = itertools.count()

    def fresh() -> Path:
        """A new empty folder in ``work`` (the earlier ones are removed)."""
        _clear(work)
        folder = work / f"run{next(folders)}"
        folder.mkdir()
        return folder

    def attempt(a: Adapter, step: Callable[[], None], folder: Path | None = None) -> None:
        try:
            step()
        except Exception as exc:  # one broken tool must not stop the others
            ms[a.key].error = f"{type(exc).__name__}: {exc}"
            live.remove(a)
            if folder is not None:
                for p in _paths(w, a, folder):
                    p.unlink(missing_ok=True)

    for r in range(w.repeat):  # dumps: each into a new, empty folder
        for a in _turn(live, r):
            def dump(a: Adapter = a) -> None:
                folder = fresh()
                _settle(sync)
                t0 = clock()
                _dump(a, w, _paths(w, a, folder))
                _gc_due()
                ms[a.key].dump_s.append(clock() - t0)
            attempt(a, dump)
    keep = fresh()
    for a in list(live):  # one copy of every tool's files, for the loads
        def kept(a: Adapter = a) -> None:
            paths = _paths(w, a, keep)
            _dump(a, w, paths)
            ms[a.key].size_bytes = sum(p.stat().st_size for p in paths)
            ms[a.key].files = len(paths)
        attempt(a, kept, keep)
    written = sorted(keep.iterdir())
    expected = sorted(p for a in live for p in _paths(w, a, keep))
    if written != expected:
        extra = sorted(set(written) - set(expected))[:3]
        raise AssertionError(f"the dumps left {len(written)} files, not {len(expected)}: {extra}")
    for i in range(w.repeat):
        for a in _turn(live, i):
            def load(a: Adapter = a, first: bool = i == 0) -> None:
                _settle(sync)
                t0 = clock()
                out = _load(a, w, _paths(w, a, keep))
                _gc_due()
                ms[a.key].load_s.append(clock() - t0)
                if first:
                    verify(w, a.check(w, out), a.mmap)
                del out
            attempt(a, load, keep)
    for a in list(live):
        def trace(a: Adapter = a) -> None:
            paths = _paths(w, a, keep)
            _settle(sync)
            ms[a.key].peak_load_bytes = _peak(lambda: _load(a, w, paths))
            for p in paths:
                p.unlink()
            _settle(sync)
            ms[a.key].peak_dump_bytes = _peak(lambda: _dump(a, w, paths))
        attempt(a, trace, keep)
    _clear(work)
    gc.collect()
    return [ms[a.key] for a in adapters]


def _warm_up(adapters: list[Adapter], w: Workload, work: Path, warmed: set[tuple[str, str]]) -> None:
    """One dump and load of a tiny object of ``w``'s kind per adapter, the first time that
    adapter meets that kind, so first-call costs (imports, lazily loaded handlers, thread
    pools) go untimed."""
    for adapter in adapters:
        if (adapter.key, w.kind) in warmed:
            continue
        warmed.add((adapter.key, w.kind))
        path = work / f"warm-up{adapter.suffix}"
        try:
            adapter.dump(sample(w.kind, adapter.single_array_only), path)
            adapter.load(path)
        except Exception:  # a broken adapter is reported by measure_all()
            pass
    _clear(work)


def _describe(m: Measurement) -> str:
    if m.error:
        return f"ERROR {m.error}"
    return (
        f"dump {m.best('dump'):.4f}s  load {m.best('load'):.4f}s  size {m.size_bytes / 1e6:.1f} MB  "
        f"peak {m.peak_dump_bytes / 1e6:.1f}/{m.peak_load_bytes / 1e6:.1f} MB"
    )


def run(config: Config, log: Log = _stderr) -> RunResult:
    """Run the selected workloads; temporary files are removed whatever happens."""
    base = config.tmpdir or default_tmp_base()
    made_base = not base.exists()
    base.mkdir(parents=True, exist_ok=True)
    if fs_type(base) in RAM_FILESYSTEMS:
        log(f"warning: {base} is a RAM filesystem ({fs_type(base)}); disk numbers will be flattering")
    work = Path(tempfile.mkdtemp(prefix="amber-bench-", dir=base))
    cfg = asdict(config)
    cfg["tmpdir"] = str(config.tmpdir) if config.tmpdir else None
    result = RunResult(config=cfg, env=_environment(work))
    started = time.perf_counter()
    warmed: set[tuple[str, str]] = set()
    try:
        for w in build(config.sizes, config.only, config.seed, config.repeat):
            adapters = [a.for_workload(w) for a in ADAPTERS if a.applies(w)]
            _warm_up(adapters, w, work, warmed)
            wr = WorkloadResult(w.name, w.group, w.title, w.payload_bytes, w.files, w.repeat, _loadavg())
            log(f"== {w.name}: {w.title} ({w.repeat} repeats)")
            gc.collect()
            gc.freeze()  # what exists now (modules, the workload) is not rescanned by every collection
            try:
                for m in measure_all(w, adapters, work, config.sync):
                    wr.measurements.append(m)
                    log(f"   {m.label:<22} {_describe(m)}")
            finally:
                gc.unfreeze()
            result.workloads.append(wr)
            del w
        if "scan" in config.only:
            from benchmarks._scan import run_scan

            result.workloads.extend(run_scan(config.quick, config.repeat, work, config.seed, log))
        if "jsonl" in config.only:
            from benchmarks._jsonl import run_jsonl

            result.workloads.extend(run_jsonl(config.quick, config.repeat, work, log))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if made_base:
            try:
                base.rmdir()
            except OSError:
                pass
    result.seconds = time.perf_counter() - started
    return result
