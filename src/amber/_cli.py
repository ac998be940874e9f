"""The ``amber`` command: a thin layer over the public API.

    amber inspect FILE [--json]      formats, versions, metadata, codecs, tree of types
                                     (amber, JSON, JSONL and HDF5 files)
    amber convert SRC DST [--format F] [--compress C] [--trusted T ...]
                                     any file amber loads (safely) to any format it writes
    amber scan PATH... [--json|--sarif] [--recursive] [--trusted T ...]
                                     static safety check of pickle-based and amber files;
                                     exit 0 all safe, 1 dangerous or unknown, 2 unreadable
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import amber

__all__ = ["main"]


def _inspect(args: argparse.Namespace) -> int:
    status = 0
    for path in args.files:
        try:
            info = amber.inspect(path)
        except (amber.AmberError, OSError) as exc:
            print(f"amber inspect: {path}: {exc}", file=sys.stderr)
            status = 2
            continue
        print(info.to_json() if args.json else info)
    return status


def _convert(args: argparse.Namespace) -> int:
    try:
        fmt_in = amber.convert(
            args.source,
            args.target,
            format=args.format,
            compress=_compress_arg(args.compress),
            trusted=args.trusted or None,
            protocol=args.protocol,
            unsafe=args.unsafe,
            allow_pickle=args.allow_pickle,
        )
    except amber.UntrustedTypeError as exc:
        print(f"amber convert: {exc}", file=sys.stderr)
        allowable = [n for n in exc.untrusted if n not in exc.denied]
        if allowable:
            print("  to trust them: " + " ".join(f"--trusted {n}" for n in allowable), file=sys.stderr)
        return 1
    except (amber.AmberError, OSError, ValueError) as exc:
        print(f"amber convert: {exc}", file=sys.stderr)
        return 1
    print(f"{args.source} ({fmt_in}) -> {args.target}")
    return 0


def _scan(args: argparse.Namespace) -> int:
    import json

    report = amber.scan(args.paths, recursive=args.recursive, trusted=args.trusted or None)
    if args.sarif:
        print(json.dumps(report.to_sarif(), indent=2))
    elif args.json:
        print(report.to_json())
    else:
        print(report)
    return int(report.exit_code)


def _compress_arg(value: str | None) -> object:
    if value is None:
        return None
    if value.lower() in ("true", "yes", "default"):
        return True
    if value.isdigit():  # joblib's levels
        return int(value)
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="amber", description="Save, load and inspect ML models and data.")
    p.add_argument("--version", action="version", version=f"amber {amber.__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    ins = sub.add_parser("inspect", help="show what a file holds, without loading or importing anything")
    ins.add_argument("files", nargs="+", metavar="FILE", help="a path or fsspec URL")
    ins.add_argument("--json", action="store_true", help="print JSON instead of text")
    ins.set_defaults(func=_inspect)
    conv = sub.add_parser(
        "convert",
        help="load a file safely (amber, JSON, HDF5, pickle, joblib, PyTorch, NumPy) and save it in another format",
        description="Load SRC under the trust list (nothing untrusted is imported or run) and save it as DST; "
        "the output format comes from --format or DST's suffix (.amber by default).",
    )
    conv.add_argument("source", metavar="SRC", help="a path or fsspec URL")
    conv.add_argument("target", metavar="DST", help="a path or fsspec URL")
    conv.add_argument("--format", choices=["amber", "json", "jsonl", "hdf5", "pickle", "joblib", "cloudpickle"],
                      help="output format (default: from DST's suffix, else amber)")
    conv.add_argument("--compress", metavar="C", help="codec ('zstd', 'zstd:9', 'true'; joblib: 0-9 or a name)")
    conv.add_argument("--trusted", metavar="T", action="append", help="extra name or module to trust (repeatable)")
    conv.add_argument("--protocol", type=int, help="pickle protocol for pickle-family output (0-5)")
    conv.add_argument("--allow-pickle", action="store_true", help="load/keep an amber file's pickle islands")
    conv.add_argument(
        "--unsafe", action="store_true", help="load SRC with plain pickle: RUNS ANY CODE IN IT; only for your own files"
    )
    conv.set_defaults(func=_convert)
    sc = sub.add_parser(
        "scan",
        help="check pickle, joblib, PyTorch, NumPy and amber files for code they would run, without loading them",
        description="Walk every pickle in the files (also inside archives, compressed streams and other "
        "pickles) without running anything, and report which globals they would import or call. "
        "Exit code: 0 all safe, 1 something dangerous or unknown, 2 a file could not be read.",
    )
    sc.add_argument("paths", nargs="+", metavar="PATH", help="files (folders with --recursive)")
    out = sc.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the report as JSON")
    out.add_argument("--sarif", action="store_true", help="print the report as SARIF 2.1.0 (for code scanning)")
    sc.add_argument("--recursive", "-r", action="store_true", help="scan every file below folders")
    sc.add_argument("--trusted", metavar="T", action="append", help="extra name or module to trust (repeatable)")
    sc.set_defaults(func=_scan)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except BrokenPipeError:  # e.g. `amber inspect f | head`
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
