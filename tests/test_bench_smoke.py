"""Smoke test of the benchmark harness on tiny sizes: structure only, never timings."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ is a top-level package beside src/, not installed
    sys.path.insert(0, str(ROOT))

from benchmarks import Config, Sizes, compute_bars, render, run, write  # noqa: E402
from benchmarks.__main__ import main  # noqa: E402

EXPECTED = {
    "matrix": {"pickle5", "joblib", "joblib_z3", "npy", "npy_mmap", "amber", "amber_z", "amber_z_nofilter", "amber_mmap",
               "amber_noverify"},
    "tiles-list": {"pickle5", "joblib", "joblib_z3", "amber", "amber_z", "amber_z_nofilter", "amber_mmap", "hickle",
                   "h5py_loop", "amber_hdf5", "amber_noverify"},
    "tiles-files": {"pickle5", "joblib", "joblib_z3", "npy", "npy_mmap", "amber", "amber_z", "amber_z_nofilter", "amber_mmap"},
    "dict": {"pickle5", "joblib", "joblib_z3", "amber", "amber_z", "amber_z_nofilter", "amber_reads_pickle",
             "amber_reads_joblib", "orjson", "jsonpickle", "amber_json", "amber_json_pretty"},
}
FILES = {"matrix": 1, "tiles-list": 1, "tiles-files": 20, "dict": 1}
#: The workloads of the type handlers (scikit-learn, pandas, PyTorch, user classes): each
#: runs the generic tools and its own, and no other.
GENERIC = {"pickle5", "joblib", "amber", "amber_z"}
EXPECTED_TYPES = {
    "forest": GENERIC | {"skops", "amber_trust_off", "amber_reads_pickle", "amber_reads_joblib", "amber_noverify"},
    "frame": GENERIC | {"feather", "amber_noverify"},
    "torch": GENERIC | {"safetensors", "torch_save", "amber_mmap", "amber_reads_torch"},
    "objects": GENERIC | {"amber_trust_off"},
}
BARS_TYPES = {"forest": 8, "frame": 4, "torch": 4, "objects": 1}


def test_harness_runs_every_adapter_and_cleans_up(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    config = Config(
        sizes=Sizes(matrix_mb=1.0, tiles=20, dict_keys=2_000), repeat=1, only=("matrix", "tiles", "dict"), tmpdir=work, sync=False
    )

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
    # tiles-list: + amber .h5 against hickle and the h5py loop; dict: + loading the pickle and
    # joblib files, + amber .json against orjson and jsonpickle
    assert len(bars) == 5 + (7 + 4) + 7 + (4 + 2 + 4)
    assert all(b.value is not None and b.ok in (True, False) for b in bars)

    markdown = render(result, bars)
    md, js = write(result, bars, markdown, tmp_path / "out")
    assert "## Bars" in md.read_text() and "| amber mmap=True |" in markdown
    raw = json.loads(js.read_text())
    assert [w["name"] for w in raw["workloads"]] == list(EXPECTED)
    assert len(raw["bars"]) == len(bars)


def test_quick_run_of_the_type_handler_groups(tmp_path: Path, capsys: Any) -> None:
    """``python -m benchmarks --quick`` on the forest, DataFrame, state dict and objects:
    every tool loads back what it saved (the harness verifies it), the bars are computed."""
    work, out = tmp_path / "work", tmp_path / "out"
    work.mkdir()
    argv = ["--quick", "--repeat", "1", "--no-sync", "--only", ",".join(EXPECTED_TYPES)]
    code = main([*argv, "--tmpdir", str(work), "--out", str(out)])

    raw = json.loads((out / "latest.json").read_text())
    errors = [(w["name"], m["adapter"], m["error"]) for w in raw["workloads"] for m in w["measurements"] if m["error"]]
    assert errors == [] and code == 0
    assert raw["config"]["quick"] is True
    assert [w["name"] for w in raw["workloads"]] == list(EXPECTED_TYPES)
    for w in raw["workloads"]:
        assert {m["adapter"] for m in w["measurements"]} == EXPECTED_TYPES[w["name"]]
        assert w["payload_bytes"] > 0 or w["name"] == "objects"
        for m in w["measurements"]:
            assert len(m["dump_s"]) == len(m["load_s"]) == 1 and m["size_bytes"] > 0 and m["files"] == 1
    assert list(work.iterdir()) == []

    bars = raw["bars"]
    assert {name: sum(b["workload"] == name for b in bars) for name in BARS_TYPES} == BARS_TYPES
    assert all(b["value"] is not None and b["ok"] in (True, False) for b in bars)
    markdown = (out / "latest.md").read_text()
    assert "**quick run**" in markdown and "| skops.io |" in markdown and "| amber, trust checks off |" in markdown
    assert markdown in capsys.readouterr().out


def test_jsonl_group_measures_peak_memory_of_fresh_processes(tmp_path: Path) -> None:
    """``--only jsonl --quick``: amber.jsonl and orjson lines each write and read back the
    records in child processes; the bars are the peak RSS of amber's."""
    from benchmarks._jsonl import run_jsonl

    (w,) = run_jsonl(True, 1, tmp_path, lambda _msg: None)
    assert {m.adapter: m.error for m in w.measurements} == {"orjson_jsonl": None, "amber_jsonl": None}
    for m in w.measurements:
        assert m.size_bytes > 0 and m.peak_dump_bytes > 0 and m.peak_load_bytes > 0
    bars = [b for b in compute_bars(type("R", (), {"workloads": [w]})()) if b.workload == "jsonl"]
    assert len(bars) == 2 and all(b.unit == "MB" and b.value and b.value > 0 for b in bars)
    assert list(tmp_path.iterdir()) == []
