"""The JSONL benchmark: a million typed records written with ``amber.jsonl.write`` and read
back with ``amber.jsonl.read``, each in a fresh process whose peak resident memory (the whole
process: interpreter, NumPy, amber, orjson) is the figure that must stay under 100 MB.

Plain ``orjson`` line by line (untyped: tuples come back as lists, datetimes as strings)
runs the same way beside it, as the reference for speed. Results are ordinary
:class:`WorkloadResult` rows; "peak" here is the peak RSS of the process, not tracemalloc.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from benchmarks._harness import Measurement, WorkloadResult

__all__ = ["CHILD", "run_jsonl"]

#: The child process: ``python -c CHILD tool mode path n`` prints one JSON line of figures.
CHILD = r"""
import datetime, json, resource, sys, time

tool, mode, path, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
import amber, amber.jsonl, orjson

base = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)


def records():
    for i in range(n):
        yield {"id": i, "user": f"user_{i:07d}", "score": i * 0.25, "tags": ("new", i % 7),
               "seen": base + datetime.timedelta(seconds=i)}


def rss():  # VmHWM: ru_maxrss would carry over the peak of the parent through fork+exec
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

before = rss()
t = time.perf_counter()
count = 0
if mode == "write":
    if tool == "amber":
        count = amber.jsonl.write(path, records())
    else:
        with open(path, "wb") as fh:
            for r in records():
                fh.write(orjson.dumps(r) + b"\n")
                count += 1
else:
    want = records()
    if tool == "amber":
        it = amber.jsonl.read(path)
    else:
        it = (orjson.loads(line) for line in open(path, "rb"))
    for r in it:
        w = next(want)
        if count % 100_003 == 0:  # spot checks: the records come back as written
            if tool == "amber" and r != w:
                raise SystemExit(f"record {count} differs: {r!r} != {w!r}")
            if tool != "amber" and r["id"] != w["id"]:
                raise SystemExit(f"record {count} differs")
        count += 1
seconds = time.perf_counter() - t
if count != n:
    raise SystemExit(f"{count} records, not {n}")
print(json.dumps({"seconds": seconds, "rss_before": before, "rss_peak": rss()}))
"""


def _child(tool: str, mode: str, path: Path, n: int) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, tool, mode, str(path), str(n)],
        capture_output=True, text=True, timeout=1800,
    )
    if proc.returncode != 0:
        raise RuntimeError((proc.stderr or proc.stdout).strip().splitlines()[-1][:300])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _measure(tool: str, label: str, path: Path, n: int, repeat: int) -> Measurement:
    m = Measurement(f"{tool}_jsonl", label, False, files=1)
    try:
        for _ in range(repeat):
            path.unlink(missing_ok=True)
            w = _child(tool, "write", path, n)
            r = _child(tool, "read", path, n)
            m.dump_s.append(w["seconds"])
            m.load_s.append(r["seconds"])
            m.peak_dump_bytes = max(m.peak_dump_bytes, int(w["rss_peak"]))
            m.peak_load_bytes = max(m.peak_load_bytes, int(r["rss_peak"]))
        m.size_bytes = path.stat().st_size
    except Exception as exc:  # recorded, not raised: the table shows it
        m.error = f"{type(exc).__name__}: {exc}"
    finally:
        path.unlink(missing_ok=True)
    return m


def run_jsonl(quick: bool, repeat: int | None, tmp_base: Path, log: Callable[[str], None]) -> list[WorkloadResult]:
    """One workload: ``n`` records (1,000,000; 50,000 with ``quick``) through amber and orjson."""
    n = 50_000 if quick else 1_000_000
    rep = repeat or 2
    work = Path(tempfile.mkdtemp(prefix="amber-jsonl-", dir=tmp_base))
    try:
        title = (f"{n:,} records (int, str, float, tuple, tz-aware datetime) streamed to one .jsonl file and "
                 "back, each in a fresh process; peak = the process's peak RSS")
        log(f"== jsonl: {title} ({rep} repeats)")
        w = WorkloadResult("jsonl", "jsonl", title, 0, 1, rep, list(os.getloadavg()))
        for tool, label in (("orjson", "orjson lines (untyped)"), ("amber", "amber.jsonl")):
            m = _measure(tool, label, work / f"{tool}.jsonl", n, rep)
            w.measurements.append(m)
            log(f"   {label:<22} " + (f"ERROR {m.error}" if m.error else
                f"write {m.best('dump'):.2f}s  read {m.best('load'):.2f}s  size {m.size_bytes / 1e6:.0f} MB  "
                f"peak RSS {m.peak_dump_bytes / 1e6:.0f}/{m.peak_load_bytes / 1e6:.0f} MB"))
        amber_m = w.get("amber_jsonl")
        w.payload_bytes = amber_m.size_bytes if amber_m else 0
        return [w]
    finally:
        for p in work.iterdir():
            p.unlink()
        work.rmdir()
