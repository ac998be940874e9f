"""amber: save and load machine-learning models and data — one dump/load, safe by default.

>>> import amber
>>> amber.dump({"w": [1.0, 2.0]}, "model.amber")        # doctest: +SKIP
>>> amber.load("model.amber")                          # doctest: +SKIP
"""

from amber._api import convert, dump, dumps, inspect, load, loads, open, scan, untrusted_types
from amber._explain import Problem, check, copy, explain
from amber.handlers._user import handler, register
from amber._version import __version__
from amber.errors import (
    AmberError,
    AmberWarning,
    CorruptFileError,
    DecodeError,
    EncodeError,
    FormatError,
    NestingError,
    PickleIslandError,
    SchemaError,
    StorageError,
    UnsupportedTypeError,
    UntrustedTypeError,
    VersionError,
    VersionMismatchWarning,
)
from amber.trust import trust


def __getattr__(name: str) -> object:
    """``amber.jsonl`` is imported on first use (it needs orjson), keeping ``import amber`` light."""
    if name == "jsonl":
        import importlib

        return importlib.import_module("amber.jsonl")
    raise AttributeError(f"module 'amber' has no attribute {name!r}")


__all__ = [
    "AmberError",
    "AmberWarning",
    "CorruptFileError",
    "DecodeError",
    "EncodeError",
    "FormatError",
    "NestingError",
    "PickleIslandError",
    "Problem",
    "SchemaError",
    "StorageError",
    "UnsupportedTypeError",
    "UntrustedTypeError",
    "VersionError",
    "VersionMismatchWarning",
    "__version__",
    "check",
    "convert",
    "copy",
    "dump",
    "dumps",
    "explain",
    "handler",
    "inspect",
    "jsonl",
    "load",
    "loads",
    "open",
    "register",
    "scan",
    "trust",
    "untrusted_types",
]
