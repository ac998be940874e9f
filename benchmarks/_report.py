"""Markdown tables, the Bars section and the raw JSON of a run."""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

from benchmarks._bars import Bar
from benchmarks._harness import Measurement, RunResult, WorkloadResult

__all__ = ["render", "write"]

MB = 1e6


def _secs(x: float) -> str:
    return f"{x:.3f}" if x >= 0.001 else f"{x:.6f}"


def _times(m: Measurement, op: str) -> str:
    return f"{_secs(m.best(op))} ({_secs(m.median(op))})"


def _row(m: Measurement) -> str:
    if m.error is not None:
        return f"| {m.label} | error: {m.error.replace('|', '/')[:120]} | | | | |"
    cells = [
        m.label,
        _times(m, "dump"),
        _times(m, "load"),
        f"{m.size_bytes / MB:.1f}",
        f"{m.peak_dump_bytes / MB:.1f}",
        f"{m.peak_load_bytes / MB:.1f}",
    ]
    return "| " + " | ".join(cells) + " |"


def _table(w: WorkloadResult) -> list[str]:
    files = f", {w.files} files" if w.files > 1 else ""
    return [
        f"## {w.name}: {w.title}",
        "",
        f"{w.repeat} repeats{files}; load average at start {', '.join(map(str, w.loadavg))}.",
        "",
        "| tool | dump s | load s | size MB | peak dump MB | peak load MB |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        *(_row(m) for m in w.measurements),
        "",
    ]


def _value(b: Bar) -> str:
    if b.value is None:
        return "n/a"
    if b.unit == "x":
        return f"{b.value:.2f}x"
    if b.unit == "bytes":
        return f"{b.value:+,.0f} bytes"
    return f"{b.value:.3g} {b.unit}"


def _limit(b: Bar) -> str:
    if b.unit == "x":
        return f"{b.op} {b.limit:g}x"
    if b.unit == "bytes":
        return f"{b.op} {b.limit:+,.0f} bytes"
    return f"{b.op} {b.limit:g} {b.unit}"


def _verdict(b: Bar) -> str:
    return "n/a" if b.ok is None else ("PASS" if b.ok else "FAIL")


def render(run: RunResult, bars: list[Bar]) -> str:
    """The whole report as markdown."""
    env = run.env
    sync = " and os.sync()" if run.config.get("sync") else ""
    git = f" ({env['amber_git']})" if env.get("amber_git") else ""
    others = "".join(
        f", {dist} {env[dist]}" for dist in ("scikit-learn", "pandas", "pyarrow", "torch", "safetensors", "skops")
        if env.get(dist)
    )
    lines = [
        "# amber benchmarks",
        "",
        f"- {_dt.datetime.now().isoformat(timespec='seconds')}; Python {env['python']}, "
        f"amber {env['amber']}{git}, "
        f"numpy {env['numpy']}, joblib {env['joblib']}{others}; {env['cpus']} CPUs; {env['platform']}",
        f"- files in {env['tmpdir']} ({env['tmpdir_fs']}), removed afterwards; run took {run.seconds:.0f} s",
        "- times in seconds: best (median) of the repeats; loads read files still in the page cache, "
        f"dumps are not fsynced; before each timed call: gc.collect(){sync}; objects that exist "
        "before a workload starts (modules, the workload itself) are frozen out of the cyclic GC; "
        "each timed call ends with a new container inside the timing, so the collection a call left due "
        "(amber's dumps and loads pause the collector) is counted in its time",
        "- peak MB: tracemalloc peak of memory allocated during one extra dump or load beyond what existed "
        "before it (a load counts the object it returns; mapped pages and private buffers of C libraries, "
        "such as PyTorch tensors and Arrow columns, are not seen)",
        "- MB = 10^6 bytes; the first load of every tool is checked: equal to the saved object (forest: "
        "same parameters, predict_proba and predict on held-out rows; DataFrame: pd.testing.assert_frame_equal "
        "with check_exact=True; tensors: torch.equal, dtype and shape), arrays and tensors mapped from "
        "the file for mmap/lazy loads and fully in memory for every other load",
    ]
    if run.config.get("quick"):
        lines.append("- **quick run**: sizes are ~20x smaller than the ones the bars are defined for")
    lines.append("")
    for w in run.workloads:
        lines += _table(w)
    if bars:
        passed = sum(b.ok is True for b in bars)
        lines += [
            "## Bars",
            "",
            f"Ratios use best-of-N times. {passed} of {len(bars)} pass.",
            "",
            "| result | workload | bar | value | limit |",
            "| --- | --- | --- | ---: | --- |",
            *(f"| {_verdict(b)} | {b.workload} | {b.what} | {_value(b)} | {_limit(b)} |" for b in bars),
            "",
        ]
    return "\n".join(lines)


def write(run: RunResult, bars: list[Bar], markdown: str, out: Path) -> tuple[Path, Path]:
    """Write ``latest.md`` and ``latest.json`` to ``out``; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    md, js = out / "latest.md", out / "latest.json"
    md.write_text(markdown + "\n", encoding="utf-8")
    raw = {
        "config": run.config,
        "env": run.env,
        "seconds": run.seconds,
        "workloads": [w.to_json() for w in run.workloads],
        "bars": [b.to_json() for b in bars],
    }
    js.write_text(json.dumps(raw, indent=1) + "\n", encoding="utf-8")
    return md, js
