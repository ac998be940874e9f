"""``python -m benchmarks [--quick] [--repeat N] [--only matrix,tiles,dict,forest,frame,torch,objects,scan,jsonl] [--out DIR]``."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from benchmarks._bars import compute_bars
from benchmarks._harness import BENCH_DIR, Config, run
from benchmarks._report import render, write
from benchmarks._workloads import FULL, GROUPS, QUICK


def _groups(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))
    bad = [n for n in names if n not in GROUPS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"choose from {','.join(GROUPS)} (got {text!r})")
    return names


def _positive(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark amber against pickle, joblib, NumPy, skops, feather, safetensors and torch.save.",
    )
    p.add_argument("--quick", action="store_true", help="~20x smaller workloads, for a smoke run")
    p.add_argument(
        "--repeat", type=_positive,
        help="timed runs per dump and load (default: 3 for the matrix and the state dict, 5 otherwise)",
    )
    p.add_argument("--only", type=_groups, default=GROUPS, help=f"comma-separated subset of {','.join(GROUPS)}")
    p.add_argument("--out", type=Path, default=BENCH_DIR / "results", help="where latest.md and latest.json go")
    p.add_argument("--tmpdir", type=Path, help="folder for temporary files (default: the system's, if on disk)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--matrix-mb", type=float, help=f"matrix size in MB (default {FULL.matrix_mb:g})")
    p.add_argument("--tiles", type=_positive, help=f"number of image tiles (default {FULL.tiles})")
    p.add_argument("--dict-keys", type=_positive, help=f"number of dict keys (default {FULL.dict_keys:,})")
    p.add_argument("--forest-rows", type=_positive, help=f"training rows of the forest (default {FULL.forest_rows:,})")
    p.add_argument("--frame-rows", type=_positive, help=f"rows of the DataFrame (default {FULL.frame_rows:,})")
    p.add_argument(
        "--torch-params", type=_positive, help=f"about this many state dict parameters (default {FULL.torch_params:,})"
    )
    p.add_argument("--objects", type=_positive, help=f"number of small objects (default {FULL.objects:,})")
    p.add_argument("--no-sync", action="store_true", help="do not flush dirty pages before each timed call")
    p.add_argument("--check", action="store_true", help="exit 1 when a bar fails")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = QUICK if args.quick else FULL
    overrides = {
        "matrix_mb": args.matrix_mb, "tiles": args.tiles, "dict_keys": args.dict_keys,
        "forest_rows": args.forest_rows, "frame_rows": args.frame_rows,
        "torch_params": args.torch_params, "objects": args.objects,
    }
    sizes = dataclasses.replace(sizes, **{k: v for k, v in overrides.items() if v is not None})
    config = Config(
        sizes=sizes, repeat=args.repeat, only=args.only, tmpdir=args.tmpdir,
        seed=args.seed, sync=not args.no_sync, quick=args.quick,
    )
    result = run(config)
    bars = compute_bars(result)
    markdown = render(result, bars)
    print(markdown)
    md, js = write(result, bars, markdown, args.out)
    print(f"wrote {md} and {js}", file=sys.stderr)
    errors = [m for w in result.workloads for m in w.measurements if m.error]
    if errors or (args.check and any(b.ok is not True for b in bars)):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
