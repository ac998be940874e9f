"""Smoke test of the benchmark harness on tiny sizes: structure only, never timings."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ is a top-level package beside src/, not installed
    sys.path.insert(0, str(ROOT))

from benchmarks import Config, Sizes, compute_bars, render, run, write  # noqa: E402

EXPECTED = {
    "matrix": {"pickle5", "joblib", "joblib_z3", "npy", "npy_mmap", "amber", "amber_z", "amber_z_nofilter", "amber_mmap"},
    "tiles-list": {"pickle5", "joblib", "joblib_z3", "amber", "amber_z", "amber_z_nofilter", "amber_mmap"},
    "tiles-files": {"pickle5", "joblib", "joblib_z3", "npy", "npy_mmap", "amber", "amber_z", "amber_z_nofilter", "amber_mmap"},
    "dict": {"pickle5", "joblib", "joblib_z3", "amber", "amber_z", "amber_z_nofilter"},
}
FILES = {"matrix": 1, "tiles-list": 1, "tiles-files": 20, "dict": 1}


def test_harness_runs_every_adapter_and_cleans_up(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    config = Config(sizes=Sizes(matrix_mb=1.0, tiles=20, dict_keys=2_000), repeat=1, tmpdir=work, sync=False)

    result = run(config, log=lambda _msg: None)

    assert [w.name for w in result.workloads] == list(EXPECTED)
    for w in result.workloads:
        assert {m.adapter for m in w.measurements} == EXPECTED[w.name]
        assert w.files == FILES[w.name]
        for m in w.measurements:
            assert m.error is None, (w.name, m.adapter, m.error)
            assert len(m.dump_s) == len(m.load_s) == 1
            assert all(t > 0 for t in m.dump_s + m.load_s)
            assert m.size_bytes > 0 and m.files == FILES[w.name]
            assert m.peak_dump_bytes >= 0
            if not m.mmap:  # a plain load holds at least the loaded payload
                assert m.peak_load_bytes >= w.payload_bytes
    assert list(work.iterdir()) == []  # every temporary file and folder was removed

    bars = compute_bars(result)
    assert len(bars) == 5 + 7 + 7 + 4
    assert all(b.value is not None and b.ok in (True, False) for b in bars)

    markdown = render(result, bars)
    md, js = write(result, bars, markdown, tmp_path / "out")
    assert "## Bars" in md.read_text() and "| amber mmap=True |" in markdown
    raw = json.loads(js.read_text())
    assert [w["name"] for w in raw["workloads"]] == list(EXPECTED)
    assert len(raw["bars"]) == len(bars)
