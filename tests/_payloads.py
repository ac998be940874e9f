"""Hostile pickles with a harmless payload: each would create a marker file if run.

Every technique builds the bytes of a pickle stream (by hand or with ``pickle.dumps`` of
an object whose ``__reduce__`` names the payload). Nothing here is ever unpickled by the
tests with ``pickle.load``: they check that amber refuses these streams and that the
marker file stays absent. Kept apart so the scanner's tests can reuse the same corpus.
"""

from __future__ import annotations

import pickle
import random
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["TECHNIQUES", "Reduce", "hostile_pickle", "mutate"]


class Reduce:
    """An object that pickles as ``func(*args)``."""

    def __init__(self, func: Any, *args: Any) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> Any:
        return self.func, self.args


def _str4(s: str) -> bytes:
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b  # SHORT_BINUNICODE


def _cmd(marker: Path) -> str:
    return f"touch {marker}"


def _py(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').close()"


def _reduce_system(marker: Path, proto: int) -> bytes:
    import os

    return pickle.dumps(Reduce(os.system, _cmd(marker)), protocol=proto)


def _reduce_popen(marker: Path, proto: int) -> bytes:
    import subprocess

    return pickle.dumps(Reduce(subprocess.Popen, ["touch", str(marker)]), protocol=proto)


def _reduce_eval(marker: Path, proto: int) -> bytes:
    return pickle.dumps(Reduce(eval, _py(marker)), protocol=proto)


def _reduce_exec(marker: Path, proto: int) -> bytes:
    return pickle.dumps(Reduce(exec, _py(marker)), protocol=proto)


def _nested_loads(marker: Path, proto: int) -> bytes:
    inner = _reduce_system(marker, proto)
    return pickle.dumps(Reduce(pickle.loads, inner), protocol=proto)


def _inside_data(marker: Path, proto: int) -> bytes:
    """The payload deep inside ordinary data (a dict of lists)."""
    import os

    return pickle.dumps({"weights": [1.0, 2.0], "meta": {"x": [Reduce(os.system, _cmd(marker))]}}, protocol=proto)


def _global_opcode(marker: Path, proto: int) -> bytes:
    """Protocol 0 by hand: ``cos\\nsystem\\n(S'...'\\ntR.``"""
    return b"cos\nsystem\n(S'" + _cmd(marker).encode() + b"'\ntR."


def _python2_names(marker: Path, proto: int) -> bytes:
    """``__builtin__.eval``: a Python 2 name that unpickling maps to builtins.eval."""
    return b"c__builtin__\neval\n(S'" + _py(marker).encode() + b"'\ntR."


def _inst_opcode(marker: Path, proto: int) -> bytes:
    """INST: ``(S'cmd'\\nios\\nsystem\\n.`` calls os.system without REDUCE."""
    return b"(S'" + _cmd(marker).encode() + b"'\nios\nsystem\n."


def _obj_opcode(marker: Path, proto: int) -> bytes:
    """OBJ: mark, class (os.system via GLOBAL), args, OBJ."""
    return b"\x80\x02(cos\nsystem\nX" + struct.pack("<I", len(_cmd(marker))) + _cmd(marker).encode() + b"o."


def _stack_global_memo(marker: Path, proto: int) -> bytes:
    """STACK_GLOBAL with module and name fetched from the memo (protocol 4)."""
    body = (
        _str4("os") + b"\x94"  # MEMOIZE -> 0
        + _str4("system") + b"\x94"  # MEMOIZE -> 1
        + b"0"  # POP
        + b"0"  # POP
        + b"h\x00h\x01\x93"  # BINGET 0, BINGET 1, STACK_GLOBAL
        + _str4(_cmd(marker)) + b"\x85R."  # TUPLE1, REDUCE, STOP
    )
    return b"\x80\x04" + body


def _getattr_chain(marker: Path, proto: int) -> bytes:
    """``getattr(<module builtins via __import__>, 'eval')(...)``."""
    return (
        b"\x80\x04"
        + _str4("builtins") + _str4("getattr") + b"\x93"
        + _str4("builtins") + _str4("__import__") + b"\x93"
        + _str4("os") + b"\x85R"
        + _str4("system") + b"\x86R"
        + _str4(_cmd(marker)) + b"\x85R."
    )


def _getattr_trusted_class(marker: Path, proto: int) -> bytes:
    """getattr on a trusted class to reach a method that writes files."""
    return (
        b"\x80\x04"
        + _str4("builtins") + _str4("getattr") + b"\x93"
        + _str4("pandas") + _str4("DataFrame") + b"\x93"
        + _str4("to_pickle") + b"\x86R"  # getattr(DataFrame, "to_pickle")
        + b"(" + _str4("pandas") + _str4("DataFrame") + b"\x93)R"  # MARK, DataFrame()
        + _str4(str(marker)) + b"tR."  # (df, marker) -> to_pickle(df, marker)
    )


#: name -> builder(marker, protocol) of a pickle stream whose payload creates ``marker``.
TECHNIQUES: dict[str, Callable[[Path, int], bytes]] = {
    "reduce-os.system": _reduce_system,
    "reduce-subprocess.Popen": _reduce_popen,
    "reduce-eval": _reduce_eval,
    "reduce-exec": _reduce_exec,
    "nested-pickle.loads": _nested_loads,
    "inside-data": _inside_data,
    "GLOBAL-opcode": _global_opcode,
    "python2-names": _python2_names,
    "INST-opcode": _inst_opcode,
    "OBJ-opcode": _obj_opcode,
    "STACK_GLOBAL-memo": _stack_global_memo,
    "getattr-chain": _getattr_chain,
    "getattr-trusted-class": _getattr_trusted_class,
}


def hostile_pickle(technique: str, marker: Path, protocol: int = 4) -> bytes:
    return TECHNIQUES[technique](marker, protocol)


def _npy_with(stream: bytes) -> bytes:
    """A ``.npy`` file of a 1-element object array whose pickle is ``stream``."""
    import io

    import numpy as np
    from numpy.lib import format as npformat

    buf = io.BytesIO()
    npformat.write_array_header_1_0(buf, {"descr": "|O", "fortran_order": False, "shape": (1,)})
    return buf.getvalue() + stream


def _zip(members: dict[str, bytes]) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def containers(stream: bytes) -> dict[str, bytes]:
    """The pickle ``stream`` inside every kind of file amber loads: raw, whole-stream
    compressed as joblib and others write it, a ``.npy`` object array, a ``.npz``, a
    ``torch.save`` zip archive (as its ``data.pkl``) and torch's legacy format."""
    import bz2
    import gzip
    import lzma
    import sys
    import zlib

    import lz4.frame
    import zstandard

    legacy_head = b"".join(
        pickle.dumps(x, protocol=2)
        for x in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": sys.byteorder == "little",
                                                   "type_sizes": {"short": 2, "int": 4, "long": 4}})
    )
    return {
        "raw": stream,
        "zlib (joblib compress=True)": zlib.compress(stream, 3),
        "gzip": gzip.compress(stream),
        "bz2": bz2.compress(stream),
        "lzma-alone (joblib 'lzma')": lzma.compress(stream, format=lzma.FORMAT_ALONE),
        "xz": lzma.compress(stream),
        "lz4": lz4.frame.compress(stream),
        "zstd": zstandard.ZstdCompressor().compress(stream),
        "npy-object": _npy_with(stream),
        "npz": _zip({"a.npy": _npy_with(stream)}),
        "torch-zip": _zip({"archive/data.pkl": stream, "archive/byteorder": b"little", "archive/version": b"3\n"}),
        "torch-legacy": legacy_head + stream + pickle.dumps([], protocol=2),
    }


def mutate(rng: random.Random, data: bytes, edits: tuple[int, int] = (1, 4)) -> bytes:
    """``data`` with a few random edits (a byte changed, bytes inserted or deleted, the
    end cut off): how the fuzz tests make broken streams from good ones."""
    s = bytearray(data)
    for _ in range(rng.randint(*edits)):
        op, i = rng.random(), rng.randrange(len(s) + 1)
        if op < 0.4 and s:
            s[min(i, len(s) - 1)] = rng.randrange(256)
        elif op < 0.6:
            s[i:i] = rng.randbytes(rng.randint(1, 8))
        elif op < 0.8:
            del s[i : i + rng.randint(1, 8)]
        else:
            del s[i:]
    return bytes(s)
