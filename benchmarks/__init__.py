"""amber's benchmark suite: amber against pickle, joblib, NumPy, skops, feather, safetensors
and torch.save, side by side.

Run ``python -m benchmarks --help`` (or ``make bench``).
"""

from benchmarks._adapters import ADAPTERS, Adapter
from benchmarks._bars import Bar, compute_bars
from benchmarks._harness import Config, Measurement, RunResult, WorkloadResult, run
from benchmarks._report import render, write
from benchmarks._workloads import FULL, GROUPS, QUICK, Sizes

__all__ = [
    "ADAPTERS",
    "Adapter",
    "Bar",
    "Config",
    "FULL",
    "GROUPS",
    "Measurement",
    "QUICK",
    "RunResult",
    "Sizes",
    "WorkloadResult",
    "compute_bars",
    "render",
    "run",
    "write",
]
