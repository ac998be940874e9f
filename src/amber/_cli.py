"""The ``amber`` command: a thin layer over the public API.

    amber inspect FILE [--json]      formats, versions, metadata, codecs, tree of types
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="amber", description="Save, load and inspect ML models and data.")
    p.add_argument("--version", action="version", version=f"amber {amber.__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    ins = sub.add_parser("inspect", help="show what a file holds, without loading or importing anything")
    ins.add_argument("files", nargs="+", metavar="FILE", help="a path or fsspec URL")
    ins.add_argument("--json", action="store_true", help="print JSON instead of text")
    ins.set_defaults(func=_inspect)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except BrokenPipeError:  # e.g. `amber inspect f | head`
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
