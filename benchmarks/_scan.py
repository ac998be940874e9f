"""The scanner's benchmarks: ``amber.scan`` against picklescan on the files people download.

* a ~1 GB ``torch.save`` checkpoint and a ~200 MB ``joblib.dump`` file of arrays: scan
  speed in MB/s (the scanner must skip storages and array data, not read them);
* a folder of 100 small model files (pickle and joblib, scikit-learn models): amber against
  picklescan on the same folder.

Results are ordinary :class:`WorkloadResult` rows: "dump s" is the time the file(s) took to
write with their own tool (once), "load s" the scan time. Every scan must say "safe" (the
files are benign); a scan that does not is recorded as an error.
"""

from __future__ import annotations

import gc
import pickle
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._harness import Measurement, WorkloadResult

__all__ = ["run_scan"]


def _timed(fn: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    times, out = [], None
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return times, out


def _amber(path: Path, recursive: bool, repeat: int, written_s: float, size: int, files: int) -> Measurement:
    import amber

    m = Measurement("amber_scan", "amber.scan", False, dump_s=[written_s], size_bytes=size, files=files)
    try:
        m.load_s, report = _timed(lambda: amber.scan(path, recursive=recursive), repeat)
        if report.verdict != "safe":
            m.error = f"verdict {report.verdict}: " + "; ".join(
                f.reason for r in report.files for f in r.findings
            )[:300]
    except Exception as exc:  # recorded, not raised: the table shows it
        m.error = f"{type(exc).__name__}: {exc}"
    return m


def _picklescan(path: Path, folder: bool, repeat: int, written_s: float, size: int, files: int) -> Measurement:
    m = Measurement("picklescan", "picklescan", False, dump_s=[written_s], size_bytes=size, files=files)
    try:
        from picklescan.scanner import scan_directory_path, scan_file_path
    except ImportError as exc:
        m.error = f"picklescan is not installed ({exc})"
        return m
    fn = scan_directory_path if folder else scan_file_path
    try:
        m.load_s, _ = _timed(lambda: fn(str(path)), repeat)
    except Exception as exc:
        m.error = f"{type(exc).__name__}: {exc}"
    return m


def _models(n: int, seed: int) -> list[Any]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(200, 8))
    y = (X[:, 0] > 0).astype(int)
    kinds = [
        lambda: LogisticRegression().fit(X, y),
        lambda: DecisionTreeClassifier(max_depth=6).fit(X, y),
        lambda: make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y),
    ]
    return [kinds[i % len(kinds)]() for i in range(n)]


def run_scan(quick: bool, repeat: int | None, tmp_base: Path, seed: int, log: Callable[[str], None]) -> list[WorkloadResult]:
    """The three scan workloads, each file written once and scanned ``repeat`` times."""
    import os

    import joblib

    rep = repeat or 3
    out: list[WorkloadResult] = []
    work = Path(tempfile.mkdtemp(prefix="amber-scan-", dir=tmp_base))
    try:
        # 1. a big torch.save checkpoint; 2. a joblib file of arrays
        import torch

        params = (12_500_000 if quick else 250_000_000) // 10
        n = (10_000_000 if quick else 200_000_000) // 8 // 20
        rng = np.random.default_rng(seed)
        singles = (
            ("scan-torch", "checkpoint.pt", "torch.save checkpoint", "10 float32 tensors",
             lambda p: torch.save({f"layers.{i}.weight": torch.zeros(params) for i in range(10)}, p)),
            ("scan-joblib", "arrays.joblib", "joblib.dump file", "20 float64 arrays",
             lambda p: joblib.dump({f"a{i}": rng.standard_normal(n) for i in range(20)}, p)),
        )
        for name, filename, what, holds, write in singles:
            p = work / filename
            t = time.perf_counter()
            write(p)
            written = time.perf_counter() - t
            size = p.stat().st_size
            log(f"== {name}: {size / 1e6:.0f} MB {what} ({rep} repeats)")
            w = WorkloadResult(
                name, "scan", f"{what} of {size / 1e6:.0f} MB ({holds}), scanned", size, 1, rep, list(os.getloadavg())
            )
            w.measurements = [_amber(p, False, rep, written, size, 1), _picklescan(p, False, rep, written, size, 1)]
            out.append(w)
            p.unlink()

        # 3. a folder of small model files
        count = 20 if quick else 100
        folder = work / "models"
        folder.mkdir()
        t = time.perf_counter()
        for i, model in enumerate(_models(count, seed)):
            if i % 2:
                joblib.dump(model, folder / f"model{i}.joblib")
            else:
                with open(folder / f"model{i}.pkl", "wb") as fh:
                    pickle.dump(model, fh, protocol=4)
        written = time.perf_counter() - t
        size = sum(f.stat().st_size for f in folder.iterdir())
        log(f"== scan-folder: {count} small model files ({rep} repeats)")
        w = WorkloadResult(
            "scan-folder", "scan",
            f"folder of {count} small scikit-learn model files (.pkl and .joblib, {size / 1e6:.1f} MB), scanned",
            size, count, rep, list(os.getloadavg()),
        )
        w.measurements = [
            _amber(folder, True, rep, written, size, count),
            _picklescan(folder, True, rep, written, size, count),
        ]
        out.append(w)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out
