"""``amber scan``: a static safety scanner for pickle-based model files. It runs nothing.

:func:`scan_file` and :func:`scan` tell, without importing or calling anything a file names,
whether loading the file with the tools people use (``pickle.load``, ``joblib.load``,
``torch.load(weights_only=False)``, ``numpy.load(allow_pickle=True)``, ``amber.load``) can
run code that the file chose.

Verdicts (per file; a scan's verdict is the worst of its files: dangerous > unknown >
error > safe):

* ``safe``: every global every pickle in the file imports is on amber's trust list (the
  defaults, plus ``trusted=``), every stream parsed cleanly, and every layout was followed
  exactly as the loaders follow it. A file holding no pickle at all (text, an image,
  safetensors, a ``.npy`` without objects) is safe: no loader above runs code from it.
* ``unknown``: nothing known to be dangerous, but something outside the trust list, or
  something the scanner cannot follow with certainty: a global that is not trusted, a
  malformed or truncated stream, data after a pickle's STOP, persistent ids outside torch
  files, extension codes, a joblib array whose size it cannot work out, zip archives whose
  layout readers disagree on, a compressed stream that breaks, anything over a limit.
  Treat it as unsafe until you know what it is (``trusted=`` names what you trust).
* ``dangerous``: a global on the deny list (``os.system``, ``subprocess.*``,
  ``builtins.eval/exec/getattr/__import__``, ``runpy``, ``importlib``, ``pickle.loads``,
  ``torch.load``, ``numpy.load``, network and file-writing callables, ...), a global whose
  name is hidden (a ``STACK_GLOBAL`` of strings the walk cannot know), ``getattr`` used other
  than as amber's loader allows (only ``getattr(<trusted class>, "<trusted attribute>")``),
  ``torch.storage._load_from_bytes`` on bytes that are not a literal the scanner scanned,
  duplicate zip member names, pickle islands in amber files.
* ``error``: the file could not be read (missing, a directory without ``recursive``,
  unreadable, a compressed stream or an amber file that cannot be decoded at all); nothing
  in it can have been loaded, but nothing was checked either.

What it reads. Pickle streams (protocols 0-5, several concatenated, compressed with gzip,
bz2, xz, lzma-alone, zlib, zstd or lz4), joblib files (arrays skipped by their size, object
arrays' nested pickles walked), PyTorch zip archives (every member that is not a storage,
whatever its name, is sniffed; storages are never read), torch's legacy stream and tar
formats, ``.npy``/``.npz`` (object arrays' pickles), any zip or tar (every member), pickles
nested in byte payloads (``pickle.loads(b"...")``, a plain pickle of tensors whose storages
are ``torch.save`` files), files that are two formats at once (a zip directory at the end
of a pickle, a tar header on a pickle), and amber files (the types the manifest says they
need, and their pickle islands). Every opcode is walked (:mod:`amber.security._walk`);
payloads, array bytes and storages are skipped by their declared length, never copied.

What it cannot see. What trusted code does with the data it is given (a trusted class's
``__setstate__``; the trust list is the boundary); formats that run code by other means
(Keras Lambda layers, TorchScript code, which it only reports as unknown, ONNX custom ops);
bytes of torch storage members (never unpickled by torch); what a loader's own
``persistent_load`` or extension registry makes of ids; payloads built at load time from
pieces (only literal payloads are scanned, and a loader call on anything else is
dangerous anyway). It imports the trusted packages a file names (scikit-learn, pandas,
torch, ...) to check that a name is a class, as amber's loader does; never anything else.

Limits: nesting depth :data:`MAX_DEPTH`, :data:`MAX_DECOMPRESSED` bytes decompressed per
file (spilled to a temporary file beyond :data:`SPILL_AT`), :data:`MAX_NESTED` nested
payloads per file; going over any of them is an ``unknown`` finding, never ``safe``.
"""

from __future__ import annotations

import dataclasses
import io
import json
import mmap as _mmap
import os
import re
import stat
import struct
import tarfile
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any, Callable, Union

from amber.container._streams import compressed_reader, sniff_compression
from amber.security import _walk as W
from amber.security._archives import (
    JOBLIB_OLD_WRAPPERS,
    JOBLIB_WRAPPER,
    JoblibLayout,
    PreadFile,
    ZipMember,
    joblib_layout,
    member_chunks,
    read_zip,
    small_int_pickle,
)
from amber.security._unpickler import PickleTrust, _modern_numpy
from amber.trust import is_denied, is_trusted

__all__ = [
    "MAX_DECOMPRESSED",
    "MAX_DEPTH",
    "RULES",
    "FileReport",
    "Finding",
    "ScanReport",
    "scan",
    "scan_file",
]

#: Containers inside containers (zip in a pickle payload in a gzip ...) followed this deep.
MAX_DEPTH = 8
#: Bytes decompressed per file, all streams together.
MAX_DECOMPRESSED = 8 << 30
#: Decompressed streams larger than this go to a temporary file (memory-mapped).
SPILL_AT = 256 << 20
#: Nested payloads scanned per file.
MAX_NESTED = 10_000
#: Consecutive pickles walked per stream.
MAX_PICKLES = 10_000
#: String payloads (protocols 0-2 write bytes as latin-1 strings) converted up to this size.
MAX_CONVERT = 256 << 20

SEVERITIES = ("dangerous", "unknown", "error")
_RANK = {"safe": 0, "error": 1, "unknown": 2, "dangerous": 3}
_GRANK = {"trusted": 0, "untrusted": 1, "denied": 2}

#: rule id -> (severity, what it means)
RULES: dict[str, tuple[str, str]] = {
    "denied-global": ("dangerous", "The pickle imports a callable on amber's deny list."),
    "denied-call": ("dangerous", "The pickle calls a callable on amber's deny list."),
    "unresolved-global": ("dangerous", "The pickle imports a global whose name is hidden from a static walk."),
    "getattr": ("dangerous", "builtins.getattr used other than on a trusted class attribute."),
    "load-from-bytes": ("dangerous", "torch.storage._load_from_bytes (torch.load) on bytes the scanner cannot see."),
    "untrusted-global": ("unknown", "The pickle imports a global that is not on the trust list."),
    "ext-code": ("unknown", "An extension code (EXT opcode): the loader's copyreg registry decides the global."),
    "persistent-id": ("unknown", "Persistent ids outside a torch file: the loader's persistent_load decides."),
    "malformed-stream": ("unknown", "A pickle stream is malformed, truncated, or read differently by different loaders."),
    "data-after-stop": ("unknown", "Bytes after the last pickle that no layout accounts for."),
    "nested-pickle": ("unknown", "A nested payload that could not be scanned."),
    "nesting-limit": ("unknown", "Containers nested deeper than the scanner follows."),
    "joblib-layout": ("unknown", "A joblib array whose size or position could not be determined exactly."),
    "joblib-old-format": ("unknown", "A joblib < 0.10 file: arrays in separate files, loaded with numpy.load."),
    "torch-layout": ("unknown", "A torch legacy (stream or tar) file whose layout could not be followed."),
    "torchscript": ("unknown", "A TorchScript archive: torch.jit.load runs the code inside it."),
    "zip-duplicate-name": ("dangerous", "Several zip members with one name: readers pick different ones."),
    "zip-prefix-data": ("unknown", "Data before the first zip member (the file may be read as another format)."),
    "zip-gap-data": ("unknown", "Data between zip members that the central directory does not list."),
    "zip-overlap": ("unknown", "Zip members that overlap."),
    "zip-header-mismatch": ("unknown", "A local header that disagrees with the central directory."),
    "zip-name-mismatch": ("unknown", "A member name with a NUL byte: readers cut it differently."),
    "zip-flags": ("unknown", "A member flagged encrypted that some readers read as plain."),
    "zip-truncated": ("unknown", "A zip member that runs past the end of the archive."),
    "zip-bad-directory": ("unknown", "A zip archive whose central directory Python cannot read."),
    "zip-too-many": ("unknown", "More zip members than the scanner reads."),
    "zip-polyglot": ("unknown", "A zip directory at the end of a file that is something else at its start."),
    "tar-polyglot": ("unknown", "A valid tar header on a file that is also another format."),
    "unsupported-archive": ("unknown", "An archive format whose members amber cannot read (7z, rar): not scanned."),
    "unreadable-member": ("unknown", "An archive member that could not be read."),
    "malformed-compression": ("unknown", "A compressed stream that breaks; the part before the break was scanned."),
    "decompression-limit": ("unknown", "More decompressed data than the scanner reads."),
    "untrusted-type": ("unknown", "An amber file needs a type that is not on the trust list."),
    "denied-type": ("dangerous", "An amber file needs a type on the deny list."),
    "pickle-island": ("dangerous", "An amber file holds a pickle island (code that only runs with allow_pickle=True)."),
    "unreadable": ("error", "The file (or a part of it) could not be read."),
    "directory": ("error", "A directory, scanned only with recursive=True."),
}

#: Names only a per-call analysis can trust.
_GETATTR = "builtins.getattr"
_LFB = "torch.storage._load_from_bytes"
_WATCH = frozenset({_GETATTR, _LFB})

#: torch's storage classes (element sizes), as pickled (mirrors amber.formats._torchfile).
_STORAGE_SIZES = {
    "DoubleStorage": 8,
    "FloatStorage": 4,
    "HalfStorage": 2,
    "LongStorage": 8,
    "IntStorage": 4,
    "ShortStorage": 2,
    "CharStorage": 1,
    "ByteStorage": 1,
    "BoolStorage": 1,
    "BFloat16Storage": 2,
    "ComplexDoubleStorage": 16,
    "ComplexFloatStorage": 8,
    "QInt8Storage": 1,
    "QInt32Storage": 4,
    "QUInt8Storage": 1,
    "QUInt4x2Storage": 1,
    "QUInt2x4Storage": 1,
}
_STORAGE_ELEM = {f"torch.{k}": v for k, v in _STORAGE_SIZES.items()} | {
    f"torch.cuda.{k}": v for k, v in _STORAGE_SIZES.items()
}
#: Names amber's torch reader handles with its own checked stand-ins (amber.formats._torchfile
#: pickle_overrides and its loader's overrides); torch's own deserialization helpers.
_TORCH_NAMES = frozenset(_STORAGE_ELEM) | frozenset(
    {
        "torch.UntypedStorage",
        "torch.storage.UntypedStorage",
        "torch.TypedStorage",
        "torch.storage.TypedStorage",
        "torch.serialization._get_layout",
        "torch.tensor._rebuild_from_type",
        "torch.tensor._rebuild_from_type_v2",
        "torch._utils._rebuild_tensor",
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_tensor_v3",
        "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state",
        "torch._utils._rebuild_sparse_tensor",
        "torch._utils._rebuild_nested_tensor",
    }
)

_BYTES_OPS = frozenset({0x42, 0x43, 0x8E, 0x96})
_UNI_OPS = frozenset({0x8C, 0x58, 0x8D})
_AMBER_MAGIC: bytes | None = None


def _amber_magic() -> bytes:
    global _AMBER_MAGIC
    if _AMBER_MAGIC is None:
        from amber.container._spec import MAGIC

        _AMBER_MAGIC = bytes(MAGIC)
    return _AMBER_MAGIC


# ---------------------------------------------------------------------------- reports
@dataclass(frozen=True)
class Finding:
    """One thing the scanner found.

    ``member`` says where in the file: ``""`` for the file itself, ``"archive/data.pkl"``
    for a zip member, ``"|gzip"`` after a decompression, ``"@1234"`` for a payload whose
    bytes start at offset 1234 of the stream before it (``"archive/data.pkl@1234"``).
    ``offset`` is the byte offset of the opcode in that member's (decompressed) stream.
    """

    severity: str
    rule: str
    name: str | None
    member: str
    offset: int | None
    reason: str
    #: How many times the same rule met the same name in the same member.
    count: int = 1

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class FileReport:
    """What the scanner found in one file."""

    path: str
    #: "pickle", "joblib", "torch-zip", "torch-legacy", "torch-tar", "npy", "npz", "zip",
    #: "tar", "amber", "other", "empty", "directory", "unreadable"; "<format>+<codec>" when
    #: the whole file is compressed (``"joblib+zlib"``).
    format: str
    #: "safe" | "unknown" | "dangerous" | "error"
    verdict: str
    findings: list[Finding] = field(default_factory=list)
    #: Every global the file's pickles import (and GETATTR-fetched attributes, amber types)
    #: -> "trusted" | "untrusted" | "denied".
    globals: dict[str, str] = field(default_factory=dict)
    #: Bytes read from the file plus bytes decompressed.
    scanned_bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": self.format,
            "verdict": self.verdict,
            "findings": [f.to_dict() for f in self.findings],
            "globals": dict(sorted(self.globals.items())),
            "scanned_bytes": self.scanned_bytes,
        }


@dataclass
class ScanReport:
    """The reports of every file scanned."""

    files: list[FileReport] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """"dangerous" if any file is, else "unknown" if any is, else "error" if any file
        could not be read, else "safe" (also for no files)."""
        worst = "safe"
        for f in self.files:
            if _RANK[f.verdict] > _RANK[worst]:
                worst = f.verdict
        return worst

    @property
    def exit_code(self) -> int:
        """0 when every file is safe, 1 when something is dangerous or unknown, else 2 when
        a file could not be read."""
        v = self.verdict
        return 1 if v in ("dangerous", "unknown") else 2 if v == "error" else 0

    def to_dict(self) -> dict[str, Any]:
        from amber import __version__

        counts = {v: 0 for v in ("safe", "unknown", "dangerous", "error")}
        for f in self.files:
            counts[f.verdict] += 1
        return {
            "tool": "amber scan",
            "version": __version__,
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "summary": counts,
            "files": [f.to_dict() for f in self.files],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def to_sarif(self) -> dict[str, Any]:
        """The report as SARIF 2.1.0 (one run; a result per finding)."""
        from amber import __version__

        used = sorted({f.rule for r in self.files for f in r.findings})
        index = {rule: i for i, rule in enumerate(used)}
        rules = []
        for rule in used:
            sev, text = RULES.get(rule, ("unknown", rule))
            rules.append(
                {
                    "id": rule,
                    "name": rule,
                    "shortDescription": {"text": text},
                    "defaultConfiguration": {"level": _level(sev)},
                }
            )
        results = []
        for r in self.files:
            for f in r.findings:
                loc: dict[str, Any] = {"physicalLocation": {"artifactLocation": {"uri": _uri(r.path)}}}
                if f.offset is not None and not f.member:
                    loc["physicalLocation"]["region"] = {"byteOffset": f.offset}
                if f.member:
                    loc["logicalLocations"] = [{"fullyQualifiedName": f.member, "kind": "member"}]
                props: dict[str, Any] = {"severity": f.severity, "format": r.format, "verdict": r.verdict}
                if f.name is not None:
                    props["global"] = f.name
                if f.offset is not None:
                    props["offset"] = f.offset
                if f.member:
                    props["member"] = f.member
                if f.count > 1:
                    props["count"] = f.count
                results.append(
                    {
                        "ruleId": f.rule,
                        "ruleIndex": index[f.rule],
                        "level": _level(f.severity),
                        "message": {"text": f.reason},
                        "locations": [loc],
                        "properties": props,
                    }
                )
        return {
            "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
            "version": "2.1.0",
            "runs": [
                {
                    "tool": {
                        "driver": {
                            "name": "amber scan",
                            "version": __version__,
                            "rules": rules,
                        }
                    },
                    "results": results,
                }
            ],
        }

    def __str__(self) -> str:
        if not self.files:
            return "no files scanned"
        rows = [("VERDICT", "FORMAT", "FINDINGS", "PATH")]
        for f in self.files:
            counts = {s: sum(1 for x in f.findings if x.severity == s) for s in SEVERITIES}
            text = " ".join(f"{n} {s}" for s, n in counts.items() if n) or "-"
            rows.append((f.verdict, f.format, text, f.path))
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        lines = [f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip() for r in rows]
        bad = [f for f in self.files if f.verdict != "safe"]
        if bad:
            lines.append("")
            for f in bad:
                lines.append(f"{f.path} ({f.verdict}):")
                order = sorted(f.findings, key=lambda x: -_RANK[x.severity])
                for x in order:
                    where = x.member or ""
                    if x.offset is not None:
                        where = f"{where} (offset {x.offset})" if where else f"offset {x.offset}"
                    times = f" [x{x.count}]" if x.count > 1 else ""
                    lines.append(f"  {x.severity:<9} {x.rule:<19} {where + ': ' if where else ''}{x.reason}{times}")
        counts = {v: sum(1 for f in self.files if f.verdict == v) for v in ("dangerous", "unknown", "error", "safe")}
        summary = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
        lines.append("")
        lines.append(f"{len(self.files)} file{'s' if len(self.files) != 1 else ''}: {summary}")
        return "\n".join(lines)


def _level(severity: str) -> str:
    return "error" if severity == "dangerous" else "warning"


def _uri(path: str) -> str:
    return path.replace(os.sep, "/") if os.sep != "/" else path


# ---------------------------------------------------------------------------- sources
class _Budget:
    """What one file's scan has used (shared by nested scans)."""

    __slots__ = ("scanned", "decompressed", "nested", "closers")

    def __init__(self) -> None:
        self.scanned = 0
        self.decompressed = 0
        self.nested = 0
        self.closers: list[Callable[[], None]] = []


class _Src(ABC):
    """Random-access bytes: ``pread`` copies a (small) range, ``view`` gives one without
    copying when it can."""

    size: int

    @abstractmethod
    def pread(self, off: int, n: int) -> bytes:
        """The bytes at ``off``, at most ``n`` of them."""

    def view(self, off: int, n: int) -> Any:
        return self.pread(off, n)

    def sub(self, off: int, n: int) -> _Src:
        off = max(0, min(off, self.size))
        return _Window(self, off, max(0, min(n, self.size - off)))


class _BufSrc(_Src):
    def __init__(self, buf: Any, budget: _Budget | None) -> None:
        self.obj = buf
        mv = memoryview(buf)
        if mv.format != "B" or mv.ndim != 1:
            mv = mv.cast("B")
        self.mv = mv
        self.size = len(mv)
        self.budget = budget

    def pread(self, off: int, n: int) -> bytes:
        n = max(0, min(n, self.size - off))
        if self.budget is not None:
            self.budget.scanned += n
        return bytes(self.mv[off : off + n])

    def view(self, off: int, n: int) -> Any:
        n = max(0, min(n, self.size - off))
        if self.budget is not None:
            self.budget.scanned += n
        if off == 0 and n == self.size and isinstance(self.obj, bytes):
            return self.obj
        return self.mv[off : off + n]


class _FileSrc(_Src):
    def __init__(self, fh: IO[bytes], size: int, budget: _Budget) -> None:
        self.fh = fh
        self.size = size
        self.budget = budget

    def pread(self, off: int, n: int) -> bytes:
        n = max(0, min(n, self.size - off))
        if n <= 0:
            return b""
        self.fh.seek(off)
        parts = []
        got = 0
        while got < n:
            chunk = self.fh.read(n - got)
            if not chunk:
                break
            parts.append(chunk)
            got += len(chunk)
        self.budget.scanned += got
        return parts[0] if len(parts) == 1 else b"".join(parts)


class _Window(_Src):
    def __init__(self, parent: _Src, off: int, n: int) -> None:
        self.parent = parent
        self.off = off
        self.size = n

    def pread(self, off: int, n: int) -> bytes:
        return self.parent.pread(self.off + off, max(0, min(n, self.size - off)))

    def view(self, off: int, n: int) -> Any:
        return self.parent.view(self.off + off, max(0, min(n, self.size - off)))


# ---------------------------------------------------------------------------- context
class _Ctx:
    """One file's scan: its findings, globals and budgets; ``child()`` for payloads whose
    findings count only if they turn out to hold a pickle."""

    def __init__(self, trust: PickleTrust | None, trusted: tuple[str, ...], cache: dict[str, str], budget: _Budget) -> None:
        self._trust = trust  # made when a name is not in the cache (most scans never need it)
        self.trusted = trusted
        self.cache = cache
        self.budget = budget
        self.found: dict[tuple[str, str | None, str], Finding] = {}
        self.globals: dict[str, str] = {}
        #: a well-formed pickle (ending with STOP) that imports or calls something was walked
        self.clean = False

    @property
    def trust(self) -> PickleTrust:
        if self._trust is None:
            self._trust = PickleTrust(self.trusted)
        return self._trust

    def child(self) -> _Ctx:
        return _Ctx(self.trust, self.trusted, self.cache, self.budget)

    def merge(self, other: _Ctx) -> None:
        for f in other.found.values():
            self._put(f)
        for k, v in other.globals.items():
            self.glob(k, v)
        self.clean = self.clean or other.clean

    @property
    def meaningful(self) -> bool:
        """For payloads that only look like streams: did one hold a real pickle? (Bytes of
        an array or an image can start like a pickle and parse a few opcodes.)"""
        return self.clean

    def add(self, severity: str, rule: str, member: str, offset: int | None, reason: str, name: str | None = None) -> None:
        self._put(Finding(severity, rule, name, member, offset, reason))

    def _put(self, f: Finding) -> None:
        key = (f.rule, f.name, f.member)
        old = self.found.get(key)
        if old is None:
            self.found[key] = f
        else:
            sev = f.severity if _RANK[f.severity] > _RANK[old.severity] else old.severity
            self.found[key] = dataclasses.replace(old, severity=sev, count=old.count + f.count)

    def glob(self, name: str, status: str) -> None:
        old = self.globals.get(name)
        if old is None or _GRANK[status] > _GRANK[old]:
            self.globals[name] = status

    def status(self, name: str) -> str:
        """"trusted" / "untrusted" / "denied" for a global, as amber's loader judges it."""
        st = self.cache.get(name)
        if st is None:
            full = _modern_numpy(name) if name.startswith("numpy.") else name
            try:
                ok = not _test_code(full) and self.trust.is_trusted(full) and full not in _WATCH
            except Exception:
                ok = False
            st = "trusted" if ok else ("denied" if is_denied(name) or is_denied(full) else "untrusted")
            if len(self.cache) < 100_000:
                self.cache[name] = st
        return st

    def report(self, path: str, fmt: str) -> FileReport:
        if not self.found:
            return FileReport(path, fmt, "safe", [], dict(sorted(self.globals.items())), self.budget.scanned)
        findings = sorted(self.found.values(), key=lambda f: (-_RANK[f.severity], f.member, f.offset or 0, f.rule))
        verdict = "safe"
        for f in findings:
            if _RANK[f.severity] > _RANK[verdict]:
                verdict = f.severity
        return FileReport(path, fmt, verdict, findings, dict(sorted(self.globals.items())), self.budget.scanned)


def _join(parent: str, child: str) -> str:
    return f"{parent}/{child}" if parent else child


# ---------------------------------------------------------------------------- sniffing
#: What tarfile.nti can read as an octal checksum field, up to its first NUL: octal digits,
#: the whitespace str.strip and int() drop, signs, underscores and "0o" (int(s, 8) takes
#: them all). A field with anything else before its NUL is not a tar header's (nti raises).
_TAR_CHKSUM_CHARS = re.compile(rb"[0-7 \t\n\r\x0b\x0c\x1c-\x1f_+\-oO]*(?:\x00|\Z)")


def _is_tar_header(head: bytes) -> bool:
    if len(head) < 512:
        return False
    if head[148] not in (0o200, 0o377) and _TAR_CHKSUM_CHARS.match(head, 148, 156) is None:
        return False  # (the checks below, cheaply: most files that are not tar fail here)
    if not any(head[:512]):
        return False
    try:
        # TarInfo.frombuf's own first check, on its own: most files that are not tar
        # archives fail it, and skip the full parse
        if tarfile.nti(head[148:156]) not in tarfile.calc_chksums(head[:512]):  # type: ignore[attr-defined]
            return False
        tarfile.TarInfo.frombuf(head[:512], "utf-8", "surrogateescape")
    except Exception:
        return False
    return True


_LEGACY_MAGICS: tuple[bytes, ...] | None = None


def _is_torch_legacy(head: bytes) -> bool:
    """Does ``head`` start with the pickled magic number of torch's legacy stream (any protocol)?"""
    global _LEGACY_MAGICS
    if _LEGACY_MAGICS is None:
        import pickle

        _LEGACY_MAGICS = tuple({pickle.dumps(0x1950A86A20F9469CFC6C, protocol=p) for p in range(6)})
    return head.startswith(_LEGACY_MAGICS)


#: Archives whose members the scanner cannot list: never called safe.
_OPAQUE_ARCHIVES = ((b"7z\xbc\xaf\x27\x1c", "7z"), (b"Rar!\x1a\x07", "rar"))


def _first_bytes() -> frozenset[int]:
    """The first bytes of every magic number _scan_src looks for (amber, .npy, zip, 7z,
    rar, joblib's ZF) and of every stream sniff_compression names (zlib's first byte is
    always 0x78)."""
    from amber.container._streams import _MAGIC

    magics = [_amber_magic(), b"\x93NUMPY", b"PK\x03\x04", b"PK\x05\x06", b"ZF0x", b"\x78"]
    magics += [m for m, _ in _OPAQUE_ARCHIVES] + [m for m, _ in _MAGIC]
    return frozenset(m[0] for m in magics)


_FIRST_BYTES = _first_bytes()


def _stream_head(head: bytes) -> bool:
    """Could a payload starting with ``head`` be a stream a loader reads (precise check)?"""
    if len(head) >= 2 and head[0] == 0x80 and head[1] <= 5:
        return True
    if head.startswith((b"\x93NUMPY", b"PK\x03\x04", b"PK\x05\x06")):
        return True
    if head.startswith(b"ZF0x"):
        return True
    return sniff_compression(head) is not None


# ---------------------------------------------------------------------------- scanning
def _scan_src(ctx: _Ctx, src: _Src, member: str, depth: int, role: str, torch: bool = False) -> str:
    """Scan ``src`` (a file, member or payload); return its format.

    ``role``: "file" and "member" (everything reported), "arg" (a payload a loader call
    takes: everything reported), "payload" (a payload that only looks like a stream: the
    caller keeps the findings only if a pickle turns up)."""
    size = src.size
    if size == 0:
        return "empty"
    if depth > MAX_DEPTH:
        ctx.add("unknown", "nesting-limit", member, None, f"containers nested more than {MAX_DEPTH} deep; not scanned further")
        return "nested"
    head = src.pread(0, min(size, 1024))
    # (the magic numbers below and sniff_compression's all start with a byte of _FIRST_BYTES:
    # a head starting with another one, a pickle's PROTO for one, skips them)
    magic = head[0] in _FIRST_BYTES
    if magic and head.startswith(_amber_magic()):
        return _scan_amber(ctx, src, member, depth)
    if magic and head.startswith(b"\x93NUMPY"):
        return _scan_npy(ctx, src, member, depth, role)
    if magic and head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _scan_zip(ctx, src, member, depth, role)
    for magic_bytes, kind in _OPAQUE_ARCHIVES if magic else ():
        if head.startswith(magic_bytes):
            ctx.add(
                "unknown",
                "unsupported-archive",
                member,
                0,
                f"a {kind} archive: amber cannot read its members, so they are not scanned (model files have been "
                "hidden this way); extract it and scan the files",
            )
            return kind
    fmt = "other"
    tar = _is_tar_header(head)
    if tar:
        fmt = _scan_tar(ctx, src, member, depth) or "other"
    if _is_torch_legacy(head):
        if tar:
            ctx.add("unknown", "tar-polyglot", member, 0, "a tar header on a torch legacy file: torch.load reads it as a tar archive")
        fmt = _scan_torch_legacy(ctx, src, member, depth)
    else:
        codec = sniff_compression(head) if magic else None
        if codec is not None and not tar:
            fmt = _scan_compressed(ctx, src, codec, member, depth, role, torch)
        elif magic and head.startswith(b"ZF0x") and not tar:
            start = 21 if head[21:22] != b" " else 22  # joblib < 0.10's zfile: "ZF" + hex length + zlib
            inner = _scan_compressed(ctx, src.sub(start, size - start), "zlib", member, depth, role, torch)
            fmt = "joblib-zfile" if not inner.startswith("other") else inner
        elif W.is_opcode(head[0]):
            got = _scan_pickle(ctx, src, member, depth, role, torch, strict=head[0] == 0x80 or role == "arg")
            if got is not None:
                if tar:
                    ctx.add("unknown", "tar-polyglot", member, 0, "a valid tar header on a pickle: torch.load reads it as a tar archive, pickle.load as a pickle")
                fmt = got
    if role in ("file", "member") and size >= 22 and fmt not in ("tar", "torch-tar"):
        _polyglot_zip(ctx, src, member, depth)  # (a tar's members are scanned one by one)
    return fmt


def _polyglot_zip(ctx: _Ctx, src: _Src, member: str, depth: int) -> None:
    """A zip directory at the end of something that is not a zip at its start."""
    tail_n = min(src.size, 65536 + 22)
    if type(src) is _BufSrc and type(src.obj) is bytes:  # (the file in memory: searched in place)
        if src.budget is not None:
            src.budget.scanned += tail_n  # (as pread counts it)
        if src.obj.find(b"PK\x05\x06", src.size - tail_n) < 0:
            return
    elif b"PK\x05\x06" not in src.pread(src.size - tail_n, tail_n):
        return
    listing = read_zip(src.pread, src.size)
    if not listing.directory or not listing.members:
        return
    ctx.add(
        "unknown",
        "zip-polyglot",
        member,
        None,
        f"a zip archive ({len(listing.members)} members) ends this file, which starts as another format: "
        "zip readers see the archive, other loaders the start",
    )
    _scan_zip_listing(ctx, src, member, depth, listing, polyglot=True)


class _Collector:
    """Decompressed bytes, counted against the budget: in memory up to :data:`SPILL_AT`,
    then in a temporary file that is mapped at the end."""

    def __init__(self, budget: _Budget) -> None:
        self.budget = budget
        self.out = bytearray()
        self.spill: Any = None
        self.total = 0

    def add(self, chunk: bytes) -> None:
        b = self.budget
        b.decompressed += len(chunk)
        b.scanned += len(chunk)
        self.total += len(chunk)
        if self.spill is None and self.total > SPILL_AT:
            self.spill = tempfile.TemporaryFile()
            b.closers.append(self.spill.close)
            self.spill.write(self.out)
            self.out = bytearray()
        if self.spill is not None:
            self.spill.write(chunk)
        else:
            self.out.extend(chunk)

    def source(self) -> _BufSrc:
        if self.spill is None:
            return _BufSrc(self.out, None)  # the bytearray itself: no copy
        self.spill.flush()
        mm = _mmap.mmap(self.spill.fileno(), 0, access=_mmap.ACCESS_READ)
        self.budget.closers.append(lambda: _close_quietly(mm))
        return _BufSrc(mm, None)


def _decompress(ctx: _Ctx, src: _Src, codec: str) -> tuple[_Src | None, str | None, bool]:
    """(the decompressed bytes, why decompression stopped early or None, limit reached)."""
    b = ctx.budget
    error = None
    limited = False
    try:
        fh = compressed_reader(PreadFile(src.pread, src.size), codec)  # type: ignore[arg-type]
    except Exception as exc:
        return None, f"{type(exc).__name__}: {exc}", False
    got = _Collector(b)
    try:
        while True:
            room = MAX_DECOMPRESSED - b.decompressed
            if room <= 0:
                limited = True
                break
            try:
                chunk = fh.read(min(1 << 20, room))
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                break
            if not chunk:
                break
            got.add(chunk)
    finally:
        try:
            fh.close()
        except Exception:
            pass
    return got.source(), error, limited


def _close_quietly(mm: Any) -> None:
    try:
        mm.close()
    except Exception:  # views still exported: the GC closes it
        pass


_STRONG_MAGIC = ("gzip", "xz", "zstd", "lz4", "bz2")


def _scan_compressed(ctx: _Ctx, src: _Src, codec: str, member: str, depth: int, role: str, torch: bool) -> str:
    inner, error, limited = _decompress(ctx, src, codec)
    if inner is None or (inner.size == 0 and error is not None):
        if codec in _STRONG_MAGIC:
            sev = "error" if role == "file" else "unknown"
            ctx.add(sev, "unreadable" if role == "file" else "malformed-compression", member, 0,
                    f"it starts like a {codec} stream but cannot be decompressed ({error})")
            return codec
        return "other"  # two or three bytes that happen to look like zlib / lzma: not a stream
    if error is not None:
        ctx.add("unknown", "malformed-compression", member, None,
                f"the {codec} stream breaks after {inner.size} decompressed bytes ({error}); the part before the break was scanned")
    if limited:
        ctx.add("unknown", "decompression-limit", member, None,
                f"decompression stopped at {MAX_DECOMPRESSED} bytes (the scanner's limit); the rest was not scanned")
    fmt = _scan_src(ctx, inner, f"{member}|{codec}", depth + 1, role, torch)
    return f"{fmt}+{codec}"


# ------------------------------------------------------------------------------ pickles
def _importable(g: W.GlobalRef) -> bool:
    """Could any loader import this global? (A module named "mport torch", which a Python
    file starting with "import torch" gives as INST, cannot be imported.)"""
    if not g.resolved or g.module is None:
        return True
    return all(p.isidentifier() for p in g.module.split(".")) and all(p.isidentifier() for p in (g.qualname or "?").split("."))


def _seen(walks: list[W.Walk]) -> bool:
    """Did the walks meet anything a loader would import or call, or a whole pickle? (A
    persistent id alone is not enough: loaders without a persistent_load refuse it, and
    text and binary data often start with "P", PERSID, and a line.)"""
    return any(
        w.stopped or w.calls or w.ext_codes or any(_importable(g) for g in w.globals) for w in walks
    )


def _scan_pickle(
    ctx: _Ctx, src: _Src, member: str, depth: int, role: str, torch: bool, strict: bool, start: int = 0,
    trailing_ok: bool = False,
) -> str | None:
    """Walk the pickles of ``src`` from ``start``; None when (not ``strict``) they are not
    pickles at all (the walk breaks before anything a loader would import or call)."""
    buf = src.view(0, src.size)
    root = src
    while isinstance(root, _Window):
        root = root.parent
    obj = root.obj if isinstance(root, _BufSrc) and not isinstance(src, _Window) and src.size <= 1 << 24 else None
    if obj is not None and hasattr(obj, "find") and obj.find(b"NumpyArrayWrapper", start) >= 0:
        walks = []  # joblib's wrapper is named: follow the array layout from the start
    else:
        walks = W.walk_all(buf, start, limit=MAX_PICKLES, payloads=True, watch=_WATCH)
        if not strict and not _seen(walks):
            return None
    fmt = "pickle"
    layout = None
    if not walks or any(g.name == JOBLIB_WRAPPER for w in walks for g in w.globals):
        fmt = "joblib"
        layout = joblib_layout(buf, start)
        walks = W.walk_all(buf, start, limit=MAX_PICKLES, payloads=True, watch=_WATCH, jumps=layout.jumps)
        if not any(g.name == JOBLIB_WRAPPER for w in walks for g in w.globals):
            fmt, layout = "pickle", None  # the name was only in some data
        elif isinstance(root, _BufSrc) and root.budget is not None:
            # mapped or in memory, and counted whole: the arrays were skipped, not read
            ctx.budget.scanned -= min(layout.array_bytes, ctx.budget.scanned)
    if not strict and not _seen(walks):
        return None
    _judge(ctx, buf, walks, member, depth, fmt, torch, trailing_ok)
    if layout is not None:
        _check_joblib(ctx, buf, walks, layout, member, depth)
    return fmt


def _why(name: str) -> str:
    """What a denied name does, in a few words."""
    top = name.split(".", 1)[0]
    if name in ("builtins.eval", "builtins.exec", "builtins.compile") or top in ("code", "codeop", "runpy"):
        return "runs Python code"
    if top in ("os", "posix", "nt", "subprocess", "pty"):
        return "runs commands or changes the system"
    if name == "builtins.__import__" or top == "importlib":
        return "imports modules"
    if name in ("builtins.getattr", "builtins.setattr", "builtins.delattr", "builtins.globals", "builtins.locals", "builtins.vars"):
        return "reaches arbitrary attributes"
    if top in ("pickle", "_pickle", "dill", "cloudpickle", "joblib", "marshal") or name in (
        "torch.load", "numpy.load", "pandas.read_pickle", "torch.storage._load_from_bytes"
    ) or name.startswith(("torch.serialization.", "torch.jit.", "torch.package.", "numpy.lib.", "pandas.io.pickle.")):
        return "loads another payload (possibly a pickle that runs code)"
    if top in ("socket", "urllib", "http", "ftplib", "smtplib", "webbrowser", "asyncio") or name.startswith("torch.hub"):
        return "opens network connections"
    if name == "builtins.open" or top in ("io", "_io", "shutil", "tempfile") or name in (
        "numpy.save", "numpy.savez", "numpy.savetxt", "numpy.ndarray.tofile", "numpy.ndarray.dump", "numpy.fromfile",
        "numpy.loadtxt", "numpy.genfromtxt", "numpy.fromregex", "numpy.memmap", "numpy.DataSource", "torch.save",
    ):
        return "reads or writes files"
    if top == "pip":
        return "installs packages"
    if top == "ctypes":
        return "calls native code"
    if top in ("sys",):
        return "changes the interpreter"
    if top in ("threading", "multiprocessing", "signal"):
        return "starts threads or processes"
    if any(p.startswith("__") and p.endswith("__") for p in name.split(".")[1:]):
        return "reaches a dunder attribute"
    return "on amber's deny list"


def _payload(buf: Any, op_off: int, head_only: bool = False) -> tuple[int, Any] | tuple[int, None, str] | None:
    """(data start, the payload as bytes) of the string or bytes opcode at ``op_off``;
    (start, None, why) when it cannot be had; None when it is not such an opcode. With
    ``head_only``, only the payload's first 64 bytes (as bytes) are decoded."""
    data, n, find = W._as_buffer(buf)
    mv = data if isinstance(data, memoryview) else memoryview(data)  # type: ignore[arg-type]
    op = mv[op_off]
    if op in (0x43, 0x8C, 0x55):
        ln, a = mv[op_off + 1], op_off + 2
    elif op in (0x42, 0x58, 0x54):
        ln, a = struct.unpack_from("<I", mv, op_off + 1)[0], op_off + 5
    elif op in (0x8E, 0x96, 0x8D):
        ln, a = struct.unpack_from("<Q", mv, op_off + 1)[0], op_off + 9
    elif op == 0x56 or op == 0x53:
        a = op_off + 1
        e = find(b"\n", a)  # type: ignore[operator]
        if e < 0:
            return None
        ln = e - a
    else:
        return None
    if a + ln > n:
        return None
    if op in _BYTES_OPS or op in (0x55, 0x54):
        return a, mv[a : a + (min(ln, 64) if head_only else ln)]
    if head_only:
        raw = bytes(mv[a : a + min(ln, 256)])
        if op == 0x56:
            return a, raw.decode("latin-1").encode("latin-1")[:64]  # raw-unicode-escape keeps latin-1 bytes
        return a, raw.decode("utf-8", "ignore").encode("latin-1", "ignore")[:64]
    if ln > MAX_CONVERT:
        return (a, None, f"a {ln}-byte string payload, too long to decode")
    try:
        if op in _UNI_OPS:
            text = bytes(mv[a : a + ln]).decode("utf-8", "surrogatepass")
        elif op == 0x56:
            text = bytes(mv[a : a + ln]).decode("raw-unicode-escape")
        else:
            s = W._string_at(data, n, op_off, find)
            if s is None:
                return (a, None, "a string the scanner cannot decode")
            text = s
        return a, text.encode("latin-1")
    except (UnicodeDecodeError, UnicodeEncodeError):
        return (a, None, "a string that is not latin-1 text (not bytes a loader could read)")


def _scan_payloads(ctx: _Ctx, buf: Any, walks: list[W.Walk], member: str, depth: int) -> set[int]:
    """Scan the payloads of ``walks`` that may be streams (and every payload passed to a
    call of something not trusted); the opcode offsets of the call arguments scanned."""
    # "arg": passed to a call of something not trusted (a loader): scanned whatever it
    # looks like; "payload": only looks like a stream (kept only if a pickle turns up)
    cands: dict[int, str] = {}
    for w in walks:
        for op_off, _a, _ln in w.payloads:
            cands.setdefault(op_off, "payload")
        for c in w.calls:
            if c.arg is not None:
                t = c.target
                if t is None or t in _WATCH or ctx.status(t) != "trusted":
                    cands[c.arg] = "arg"
    if any(len(w.payloads) >= W.MAX_PAYLOADS for w in walks):
        ctx.add("unknown", "nested-pickle", member, None, f"more than {W.MAX_PAYLOADS} payloads that look like streams; not all were scanned")
    done: set[int] = set()
    b = ctx.budget
    for op_off in sorted(cands):
        kind = cands[op_off]
        if kind == "payload":
            head = _payload(buf, op_off, head_only=True)
            if head is None or head[1] is None or not _stream_head(bytes(head[1])):
                continue
        got = _payload(buf, op_off)
        if got is None:
            continue
        a = got[0]
        nm = f"{member}@{a}"
        if got[1] is None:
            if kind == "arg":
                ctx.add("unknown", "nested-pickle", nm, None, f"a payload passed to a call could not be scanned: {got[2]}")  # type: ignore[misc]
            continue
        if b.nested >= MAX_NESTED:
            ctx.add("unknown", "nested-pickle", member, None, f"more than {MAX_NESTED} nested payloads; the rest were not scanned")
            break
        b.nested += 1
        sub = _BufSrc(got[1], None)
        if kind == "arg":
            _scan_src(ctx, sub, nm, depth + 1, "arg")
            done.add(op_off)
        else:
            child = ctx.child()
            _scan_src(child, sub, nm, depth + 1, "payload")
            if child.meaningful:
                ctx.merge(child)
    return done


#: Judge the common benign case without the general pass (tests switch it off to compare).
_FAST_JUDGE = True
#: _cwalk.plain_walk (the per-walk checks of _judge_plain in C), None in pure Python
_PLAIN_WALK = getattr(W._C, "plain_walk", None)
_NO_CALLS: dict[str, W.CallSite] = {}


def _judge_plain(ctx: _Ctx, walks: list[W.Walk], n: int, fmt: str, trailing_ok: bool) -> bool:
    """The common case of a benign stream: every walk parsed cleanly to its STOP, with no
    extension code, persistent id, payload, call argument or watched name, every global
    resolved and trusted, and nothing after the last STOP. There the general pass of
    :func:`_judge` adds no finding and records every global as trusted, which is what this
    does, without building its tables. Returns False, having recorded nothing, otherwise."""
    if not walks:
        return False
    last = walks[-1]
    if not last.stopped or (last.end < n and not trailing_ok):
        return False
    # names already judged trusted for this format with no call (_status is a function of
    # the name, the format and the trust decisions the cache is for): kept in the cache
    ok = ctx.cache.get(("plain", fmt))  # type: ignore[call-overload]
    if ok is None:
        ok = ctx.cache[("plain", fmt)] = set()  # type: ignore[index]
    names: list[str] = []
    rest = []
    for w in walks:
        if _PLAIN_WALK is not None:  # the checks below, in C: the names, False, or None (decide here)
            got = _PLAIN_WALK(w, _WATCH, ok)
            if got is False:
                return False
            if got is not None:
                names += got
                continue
        if w.error is not None or w.ext_codes or w.persistent_ids or w.escapes or w.payloads:
            return False
        for c in w.calls:
            if c.arg is not None or c.target in _WATCH:
                return False
        rest.append(w)
    for w in rest:
        for g in w.globals:
            name = g.name
            if not g.resolved or g.opcode in ("GETATTR", "EXT"):
                return False
            if name not in ok:
                if name in _WATCH or name == "numpy.memmap" or _status(ctx, name, fmt, _NO_CALLS) != "trusted":
                    return False
                if len(ok) < 100_000:
                    ok.add(name)
            names.append(name)
    if any(w.stopped and (w.globals or w.calls) for w in walks):  # (w.ok: no walk has an error here)
        ctx.clean = True
    seen = ctx.globals
    for name in names:  # ctx.glob(name, "trusted"): "trusted" is the lowest rank
        if name not in seen:
            seen[name] = "trusted"
    return True


def _judge(ctx: _Ctx, buf: Any, walks: list[W.Walk], member: str, depth: int, fmt: str, torch: bool, trailing_ok: bool) -> None:  # noqa: C901
    """Findings for the walks of one stream."""
    n = len(buf)
    if _FAST_JUDGE and _judge_plain(ctx, walks, n, fmt, trailing_ok):
        return
    if any(w.ok and (w.globals or w.calls) for w in walks):
        ctx.clean = True
    calls = [c for w in walks for c in w.calls]
    called: dict[str, W.CallSite] = {}
    for c in calls:
        if c.target is not None and c.target not in called:
            called[c.target] = c
    getattrs = {g.offset: g for w in walks for g in w.globals if g.opcode == "GETATTR"}
    args_scanned = _scan_payloads(ctx, buf, walks, member, depth)
    names_seen: set[str] = set()
    for w in walks:
        for g in w.globals:
            if g.opcode == "GETATTR":
                continue
            names_seen.add(g.name)
            if g.opcode == "EXT":
                code = g.name.rpartition(".ext")[2] if not g.resolved else "?"
                ctx.add("unknown", "ext-code", member, g.offset,
                        f"an extension code (EXT opcode{'' if g.resolved else ', code ' + code}): the loading process's "
                        "copyreg registry decides which global it is", name=g.name)
                if not g.resolved:
                    ctx.glob(g.name, "untrusted")
                    continue
            elif not g.resolved:
                ctx.glob(g.name, "denied")
                ctx.add("dangerous", "unresolved-global", member, g.offset,
                        f"{g.opcode} at offset {g.offset} imports a global whose name a static walk cannot work out "
                        f"({g.name}): an obfuscation", name=g.name)
                continue
            name = g.name
            if name in _WATCH:
                continue
            st = _status(ctx, name, fmt, called)
            ctx.glob(name, st)
            if st == "denied":
                c = called.get(name)
                if c is not None:
                    ctx.add("dangerous", "denied-call", member, c.offset, f"calls {name} ({_why(name)}), {c.opcode} at offset {c.offset}", name=name)
                else:
                    ctx.add("dangerous", "denied-global", member, g.offset, f"imports {name} ({_why(name)})", name=name)
            elif st == "untrusted":
                if name in JOBLIB_OLD_WRAPPERS:
                    ctx.add("unknown", "joblib-old-format", member, g.offset,
                            f"{name}: a joblib < 0.10 file, whose arrays joblib loads from other files with numpy.load", name=name)
                else:
                    ctx.add("unknown", "untrusted-global", member, g.offset,
                            f"imports {name}, which is not on the trust list (trusted=[{name!r}] if you trust it)", name=name)
    escapes: dict[str, int] = {}
    for w in walks:
        for nm, off in w.escapes:
            escapes.setdefault(nm, off)
    # builtins.getattr: only getattr(<class>, "<trusted attribute>"), as amber's loader allows
    if _GETATTR in names_seen or _GETATTR in called:
        worst = "trusted"
        if _GETATTR in escapes:
            worst = "denied"
            ctx.add("dangerous", "getattr", member, escapes[_GETATTR],
                    f"builtins.getattr is passed on as a value (offset {escapes[_GETATTR]}): what it is called with cannot be followed",
                    name=_GETATTR)
        for c in calls:
            if c.target != _GETATTR:
                continue
            g = getattrs.get(c.offset) if c.opcode == "REDUCE" else None
            if g is None:
                worst = "denied"
                ctx.add("dangerous", "getattr", member, c.offset,
                        f"calls builtins.getattr ({c.opcode} at offset {c.offset}) on something a static walk cannot name", name=_GETATTR)
                continue
            if not g.resolved or g.raw is not None:
                st = "denied"
                what = f"an attribute of {g.raw}" if g.raw else f"an attribute it cannot name ({g.name})"
                ctx.add("dangerous", "getattr", member, c.offset, f"getattr fetches {what}: {g.name}", name=g.name)
            else:
                st = _strict_status(ctx, g.name)
                owner = g.name.rpartition(".")[0]
                if st == "denied":
                    ctx.add("dangerous", "getattr", member, c.offset, f"getattr fetches {g.name} ({_why(g.name)})", name=g.name)
                elif st == "untrusted" and _status(ctx, owner, fmt, called) == "trusted":
                    st = "denied"  # a method of a trusted class the trust list does not cover
                    ctx.add("dangerous", "getattr", member, c.offset,
                            f"getattr fetches {g.name}, an attribute of a trusted class that the trust list does not "
                            "cover (methods of trusted classes write files or evaluate code: DataFrame.to_pickle, "
                            "DataFrame.eval)", name=g.name)
                elif st == "untrusted":
                    ctx.add("unknown", "untrusted-global", member, c.offset,
                            f"getattr fetches {g.name}, which is not on the trust list (trusted=[{g.name!r}] if you trust it)",
                            name=g.name)
            ctx.glob(g.name, st)
            if _GRANK[st] > _GRANK[worst]:
                worst = st
        ctx.glob(_GETATTR, worst)
    # torch.storage._load_from_bytes: torch.load on the literal bytes given, which were scanned
    if _LFB in names_seen or _LFB in called:
        bad = False
        if _LFB in escapes:
            bad = True
            ctx.add("dangerous", "load-from-bytes", member, escapes[_LFB],
                    f"{_LFB} is passed on as a value (offset {escapes[_LFB]}): what it loads cannot be followed", name=_LFB)
        for c in calls:
            if c.target == _LFB and not (c.opcode == "REDUCE" and c.arg is not None and c.arg in args_scanned):
                bad = True
                ctx.add("dangerous", "load-from-bytes", member, c.offset,
                        f"calls {_LFB} (torch.load) at offset {c.offset} on bytes that are not a literal the scanner could scan",
                        name=_LFB)
        ctx.glob(_LFB, "denied" if bad else "trusted")
    pers = sum(w.persistent_ids for w in walks)
    if pers and not torch:
        ctx.add("unknown", "persistent-id", member, None,
                f"{pers} persistent id{'s' if pers > 1 else ''}: pickle.load refuses them; what they become is up to "
                "the loader's persistent_load")
    for w in walks:
        if w.error is not None:
            names = w.global_names
            if names:
                shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
                seen = f"up to the break it imports {len(names)} global{'s' if len(names) > 1 else ''} ({shown}) and makes {len(w.calls)} call{'s' if len(w.calls) != 1 else ''}"
            else:
                seen = f"nothing is imported before the break ({len(w.calls)} calls)"
            ctx.add("unknown", "malformed-stream", member, w.error_offset,
                    f"{w.error}; {seen}. Loaders run what comes before a break")
    last = walks[-1] if walks else None
    if last is not None and last.stopped and last.end < n and not trailing_ok:
        more = f" (after {len(walks)} pickles, the scanner's limit)" if len(walks) >= MAX_PICKLES else ""
        ctx.add("unknown", "data-after-stop", member, last.end,
                f"{n - last.end} bytes after the last pickle's STOP (offset {last.end}) that are not a pickle{more}: "
                "loaders ignore them, but files made to be read two ways hide things there")


def _status(ctx: _Ctx, name: str, fmt: str, called: dict[str, W.CallSite]) -> str:
    if name in _TORCH_NAMES:
        return "trusted"
    if name == JOBLIB_WRAPPER:
        return "trusted" if fmt == "joblib" else "untrusted"
    if name in JOBLIB_OLD_WRAPPERS:
        return "untrusted"
    if name == "numpy.memmap" and fmt == "joblib" and name not in called:
        return "untrusted"  # joblib records a memmap's class; amber's loader never calls it
    return ctx.status(name)


def _test_code(name: str) -> bool:
    """Test suites and pytest configuration shipped inside trusted packages
    (``sklearn/conftest.py``, ``pandas/tests/...``): never trusted, and never imported to
    find out (checking a name under a trusted package imports its module)."""
    for part in name.split(".")[1:]:
        if part in ("tests", "test", "testing", "conftest", "_testing") or part.startswith(("test_", "conftest")):
            return True
    return False


def _strict_status(ctx: _Ctx, name: str) -> str:
    """A getattr-fetched attribute: trusted only by the trust list itself (no format's names)."""
    full = _modern_numpy(name) if name.startswith("numpy.") else name
    if full in _WATCH or is_denied(full) or is_denied(name):
        return "denied"
    try:
        ok = not _test_code(full) and ctx.trust.is_trusted(full)
    except Exception:
        ok = False
    return "trusted" if ok else "untrusted"


def _check_joblib(ctx: _Ctx, buf: Any, walks: list[W.Walk], layout: JoblibLayout, member: str, depth: int) -> None:
    if layout.refused is not None:
        ctx.add("unknown", "joblib-layout", member, layout.refused_offset,
                f"the scanner cannot work out where joblib's arrays lie from offset {layout.refused_offset} on: "
                f"{layout.refused}; what follows was not walked the way joblib reads it")
    jumped = {o for w in walks for o in w.jumped}
    builds = {c.offset: c for w in walks for c in w.calls if c.opcode == "BUILD"}
    for o in sorted(jumped):
        c = builds.get(o)
        if c is None or c.target not in (JOBLIB_WRAPPER, "copyreg._reconstructor"):
            ctx.add("unknown", "joblib-layout", member, o, f"the walk and the array layout disagree at offset {o}")
    for o in sorted(set(layout.jumps) - jumped):
        ctx.add("unknown", "joblib-layout", member, o, f"an array at offset {o} was not skipped by the walk")
    for c in builds.values():
        if c.target == JOBLIB_WRAPPER and c.offset not in jumped:
            ctx.add("unknown", "joblib-layout", member, c.offset,
                    f"an array (BUILD at offset {c.offset}) whose size the scanner could not work out: the bytes after it "
                    "were walked as opcodes")
    for s in layout.object_pickles:
        w = W.walk(buf, s, payloads=True, watch=_WATCH)
        _judge(ctx, buf, [w], member, depth, "joblib-object", False, True)


# ------------------------------------------------------------------------------ formats
def _scan_torch_legacy(ctx: _Ctx, src: _Src, member: str, depth: int) -> str:
    """torch.save's legacy stream: five pickles (magic number, protocol version, sys_info,
    the object, the storage keys), then raw storages that torch reads as bytes."""
    buf = src.view(0, src.size)
    pos = 0
    walks = []
    for label in ("magic number", "protocol version", "sys_info", "object", "storage key list"):
        if pos >= len(buf):
            ctx.add("unknown", "torch-layout", member, pos, f"the file ends before torch's {label} pickle")
            break
        w = W.walk(buf, pos, payloads=True, watch=_WATCH)
        walks.append(w)
        if not w.ok:
            break
        pos = w.end
    _judge(ctx, buf, walks, member, depth, "torch-legacy", True, True)
    return "torch-legacy"


def _scan_tar(ctx: _Ctx, src: _Src, member: str, depth: int) -> str | None:
    try:
        with tarfile.open(fileobj=PreadFile(src.pread, src.size), mode="r:") as tf:  # type: ignore[arg-type]
            infos = []
            for info in tf:
                infos.append(info)
                if len(infos) >= 100_000:
                    ctx.add("unknown", "unreadable-member", member, None, "more than 100000 tar members; the rest were not scanned")
                    break
    except Exception:
        return None
    files = [i for i in infos if i.isfile()]
    names = {i.name for i in files}
    torch = {"pickle", "storages", "tensors"} <= names
    for info in files:
        sub = src.sub(info.offset_data, info.size)
        nm = _join(member, info.name)
        if torch and info.name == "storages":
            _torch_tar_records(ctx, sub, nm, depth, storages=True)
        elif torch and info.name == "tensors":
            _torch_tar_records(ctx, sub, nm, depth, storages=False)
        elif torch and info.name == "pickle":
            _scan_pickle(ctx, sub, nm, depth + 1, "member", True, strict=True)
        else:
            _scan_src(ctx, sub, nm, depth + 1, "member", torch)
    return "torch-tar" if torch else "tar"


def _torch_tar_records(ctx: _Ctx, src: _Src, member: str, depth: int, storages: bool) -> None:
    """torch's tar format: 'storages' = count, then per storage a pickle (key, location,
    storage type) and its raw bytes (8-byte count + data), then a pickle of views;
    'tensors' = count, then per tensor a pickle and raw sizes (ndim, strides, offset)."""
    buf = src.view(0, src.size)
    n = len(buf)
    head = small_int_pickle(buf, 0)
    if head is None or not 0 <= head[0] <= 10_000_000:
        ctx.add("unknown", "torch-layout", member, 0, "does not start with the record count torch's tar format writes")
        _judge(ctx, buf, W.walk_all(buf, 0, payloads=True, watch=_WATCH), member, depth, "torch-tar", True, True)
        return
    count, pos = head
    walks = []
    for _ in range(count):
        w = W.walk(buf, pos, payloads=True, watch=_WATCH)
        walks.append(w)
        if not w.ok:
            break
        pos = w.end
        try:
            if storages:
                sizes = [_STORAGE_ELEM[g.name] for g in w.globals if g.name in _STORAGE_ELEM]
                if len(sizes) != 1:
                    raise ValueError("a storage record without one storage type")
                (k,) = struct.unpack_from("<q", buf, pos)
                if k < 0:
                    raise ValueError("a negative storage size")
                pos += 8 + k * sizes[0]
            else:
                (ndim,) = struct.unpack_from("<i", buf, pos)
                if not 0 <= ndim <= 64:
                    raise ValueError(f"a tensor of {ndim} dimensions")
                pos += 8 + 16 * ndim + 8
            if pos > n:
                raise ValueError("a record runs past the end of the member")
        except (ValueError, struct.error) as exc:
            ctx.add("unknown", "torch-layout", member, pos, f"torch's tar format could not be followed: {exc}")
            break
    else:
        if storages and pos < n:
            walks.append(W.walk(buf, pos, payloads=True, watch=_WATCH))
    _judge(ctx, buf, walks, member, depth, "torch-tar", True, True)


def _scan_npy(ctx: _Ctx, src: _Src, member: str, depth: int, role: str) -> str:
    from numpy.lib import format as npformat

    fh = PreadFile(src.pread, src.size)
    try:
        version = npformat.read_magic(fh)  # type: ignore[arg-type]
        if version == (1, 0):
            _shape, _fortran, dtype = npformat.read_array_header_1_0(fh, max_header_size=1 << 24)  # type: ignore[arg-type]
        elif version in ((2, 0), (3, 0)):
            _shape, _fortran, dtype = npformat.read_array_header_2_0(fh, max_header_size=1 << 24)  # type: ignore[arg-type]
        else:
            raise ValueError(f"unknown .npy version {version}")
    except Exception as exc:
        ctx.add("error" if role == "file" else "unknown", "unreadable", member, 0,
                f"a .npy header numpy cannot read ({type(exc).__name__}: {exc}); numpy.load refuses it")
        return "npy"
    if dtype.hasobject:
        _scan_pickle(ctx, src, member, depth, "member", False, strict=True, start=fh.tell())
    return "npy"


def _is_storage(name: str, prefixes: set[str]) -> bool:
    for p in prefixes:
        if name.startswith(p + "data/") and "/" not in name[len(p) + 5 :]:
            return True
    return False


def _scan_zip(ctx: _Ctx, src: _Src, member: str, depth: int, role: str) -> str:
    listing = read_zip(src.pread, src.size)
    return _scan_zip_listing(ctx, src, member, depth, listing, polyglot=False)


def _scan_zip_listing(ctx: _Ctx, src: _Src, member: str, depth: int, listing: Any, polyglot: bool) -> str:
    for sev, rule, mem, off, reason in listing.problems:
        if polyglot and rule == "zip-prefix-data":
            continue  # the start of the file: scanned as the file itself
        ctx.add(sev, rule, _join(member, mem) if mem else member, off, reason)
    names = [m.name for m in listing.members]
    prefixes = {n[: -len("data.pkl")] for n in names if n.endswith("/data.pkl") and n.count("/") == 1}
    if prefixes:
        kind = "torch-zip"
        for p in sorted(prefixes):
            if any(n == p + "constants.pkl" or n.startswith(p + "code/") for n in names):
                ctx.add("unknown", "torchscript", _join(member, p.rstrip("/")), None,
                        "a TorchScript archive (torch.jit.save): torch.jit.load runs the TorchScript code inside it")
    elif names and all(n.endswith(".npy") for n in names):
        kind = "npz"
    else:
        kind = "zip"
    torch = kind == "torch-zip"
    for m in listing.members:
        if m.name.endswith("/") and m.usize == 0:
            continue
        if torch and _is_storage(m.name, prefixes):
            _scan_storage(ctx, src, m, _join(member, m.name), depth)
            continue
        nm = _join(member, m.name)
        content = _member_src(ctx, src, m, nm)
        if content is not None:
            _scan_src(ctx, content, nm, depth + 1, "member", torch)
    for off, ln in listing.gaps:
        if polyglot and off == 0:
            continue
        child = ctx.child()
        _scan_src(child, src.sub(off, ln), _join(member, f"<bytes at {off}>"), depth + 1, "payload")
        if child.meaningful:
            ctx.merge(child)
    return kind


def _scan_storage(ctx: _Ctx, src: _Src, m: ZipMember, nm: str, depth: int) -> None:
    """A torch storage member: raw tensor bytes, which torch never unpickles. Only its first
    two bytes are read; one that is a complete, well-formed pickle is reported (tensor
    bytes that merely start like one are not)."""
    if m.method != 0 or m.data_offset is None or m.csize < 4:
        return
    head = src.pread(m.data_offset, 2)
    if len(head) < 2 or head[0] != 0x80 or head[1] > 5:
        return
    sub = src.sub(m.data_offset, m.csize)
    buf = sub.view(0, sub.size)
    walks = W.walk_all(buf, 0, limit=MAX_PICKLES, payloads=True, watch=_WATCH)
    if not (walks[0].ok and (walks[0].globals or walks[0].calls)):
        return
    ctx.add("unknown", "nested-pickle", nm, 0,
            "a torch storage member that is a pickle: torch reads storages as raw bytes, but nothing else belongs there")
    _judge(ctx, buf, walks, nm, depth + 1, "pickle", False, False)


def _member_src(ctx: _Ctx, src: _Src, m: ZipMember, nm: str) -> _Src | None:
    """A member's bytes: a window of the archive when stored, else decompressed (bounded)."""
    if m.data_offset is None:
        return None
    if m.method == 0:
        return src.sub(m.data_offset, m.csize)
    b = ctx.budget
    try:
        gen = member_chunks(src.pread, src.size, m, 1024)
        head = b"".join(gen)
    except Exception as exc:
        ctx.add("unknown", "unreadable-member", nm, None, f"cannot decompress it ({type(exc).__name__}: {exc})")
        return None
    if not head or (not W.is_opcode(head[0]) and not _stream_head(head) and not _is_tar_header(head)
                    and not head.startswith(_amber_magic())):
        return None  # not anything a loader reads as a pickle or container
    got = _Collector(b)
    try:
        room = MAX_DECOMPRESSED - b.decompressed
        for chunk in member_chunks(src.pread, src.size, m, max(0, room)):
            got.add(chunk)
        if b.decompressed >= MAX_DECOMPRESSED:
            ctx.add("unknown", "decompression-limit", nm, None, f"decompression stopped at the scanner's limit ({MAX_DECOMPRESSED} bytes)")
    except Exception as exc:
        ctx.add("unknown", "unreadable-member", nm, None,
                f"it breaks after {got.total} decompressed bytes ({type(exc).__name__}: {exc}); the part before was scanned")
    return got.source()


def _scan_amber(ctx: _Ctx, src: _Src, member: str, depth: int) -> str:
    """An amber file: the types its manifest says it needs, and its pickle islands (whose
    cloudpickle bytes are scanned like any pickle). The node tree is not decoded."""
    from amber.container._io import Source
    from amber.container._reader import ContainerReader
    from amber.errors import StorageError

    class _AmberSource(Source):
        def __init__(self) -> None:
            self.size = src.size
            self.name = member or "<amber file>"

        def readinto(self, offset: int, buf: memoryview) -> None:
            data = src.pread(offset, len(buf))
            if len(data) != len(buf):
                raise StorageError(f"unexpected end of data at byte {offset + len(data)}")
            buf[:] = data

    try:
        reader = ContainerReader(_AmberSource(), verify=True)
        manifest = reader.manifest
        needs = manifest.get("needs") or []
        islands = manifest.get("islands") or []
        if not isinstance(needs, list) or not all(type(x) is str for x in needs):
            raise ValueError("the manifest's list of needed names is malformed")
        if not isinstance(islands, list) or not all(isinstance(i, dict) for i in islands):
            raise ValueError("the manifest's list of pickle islands is malformed")
    except Exception as exc:
        ctx.add("error", "unreadable", member, None, f"an amber file that cannot be read ({type(exc).__name__}: {exc}); amber.load refuses it")
        return "amber"
    for name in needs:
        if is_denied(name):
            ctx.glob(name, "denied")
            ctx.add("dangerous", "denied-type", member, None, f"needs {name} ({_why(name)})", name=name)
        else:
            try:
                ok = is_trusted(name, ctx.trusted)
            except Exception:
                ok = False
            ctx.glob(name, "trusted" if ok else "untrusted")
            if not ok:
                ctx.add("unknown", "untrusted-type", member, None,
                        f"needs {name}, which is not on the trust list (trusted=[{name!r}] if you trust it)", name=name)
    for isl in islands:
        path, typ = str(isl.get("path", "?")), str(isl.get("type", "?"))
        ctx.add("dangerous", "pickle-island", _join(member, path) if member else path, None,
                f"a pickle island ({typ}) at {path}: cloudpickle bytes that amber.load(allow_pickle=True) unpickles, "
                "running the code they carry", name=typ)
    if islands:
        _scan_island_blobs(ctx, reader, member, depth)
    return "amber"


def _scan_island_blobs(ctx: _Ctx, reader: Any, member: str, depth: int) -> None:
    import msgpack

    raw = reader.manifest.get("tree")
    if type(raw) is not bytes:
        return
    try:
        tree = msgpack.unpackb(raw, raw=False, use_list=False, strict_map_key=False)
    except Exception as exc:
        ctx.add("unknown", "unreadable-member", member, None, f"the node tree cannot be unpacked to find the pickle islands ({exc})")
        return
    blobs: list[int] = []
    todo = [tree]
    seen = 0
    while todo and seen < 10_000_000:
        node = todo.pop()
        seen += 1
        if type(node) is tuple:
            if len(node) == 3 and type(node[0]) is bytes and node[0].split(b"@")[0] == b"pickle" and type(node[1]) is int:
                blobs.append(node[1])
            todo.extend(node)
        elif type(node) is dict:
            todo.extend(node.values())
    for idx in blobs:
        nm = f"{member}#blob{idx}" if member else f"#blob{idx}"
        try:
            data = reader.read(idx)
        except Exception as exc:
            ctx.add("unknown", "unreadable-member", nm, None, f"the pickle island's blob cannot be read ({exc})")
            continue
        _scan_src(ctx, _BufSrc(memoryview(data).cast("B"), None), nm, depth + 1, "arg")


# ---------------------------------------------------------------------------- the API
_Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes]]


def _check_trusted(trusted: Iterable[str]) -> tuple[str, ...]:
    if isinstance(trusted, str):
        trusted = (trusted,)
    try:
        out = tuple(trusted)
    except TypeError:
        raise TypeError(f"trusted= takes dotted names as strings, not {type(trusted).__name__}") from None
    if not all(isinstance(t, str) and t for t in out):
        raise TypeError(f"trusted= takes dotted names as strings, not {out!r}")
    return out


def _error_report(path: str, fmt: str, rule: str, reason: str) -> FileReport:
    return FileReport(path, fmt, "error", [Finding("error", rule, None, "", None, reason)], {}, 0)


_STATUS_CACHES: dict[tuple[tuple[str, ...], frozenset[str]], dict[str, str]] = {}


def _status_cache(trusted: tuple[str, ...]) -> dict[str, str]:
    """Trust decisions for ``trusted`` and the process's current amber.trust() additions."""
    from amber.trust import trusted_names

    key = (trusted, trusted_names())
    cache = _STATUS_CACHES.get(key)
    if cache is None:
        if len(_STATUS_CACHES) >= 32:
            _STATUS_CACHES.clear()
        cache = _STATUS_CACHES[key] = {}
    return cache


def scan_file(source: _Source, *, trusted: Iterable[str] = (), name: str | None = None) -> FileReport:
    """Scan one file: a path, a binary file object (seekable) or its bytes.

    ``trusted`` adds names (exact, or module prefixes) to the trust list, as ``amber.load``
    takes them; ``name`` is how the report names the file. Never raises for what the file
    holds (an unreadable file is a report with verdict "error"); raises TypeError for
    arguments of the wrong type.
    """
    t = _check_trusted(trusted)
    return _scan_one(source, t, name, _status_cache(t))


#: Files up to this size are read into memory; larger ones are mapped (a map and its
#: unmapping cost more than reading a small file).
_READ_WHOLE = 1 << 18
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)


def _read_fd(fd: int, size: int) -> bytes:
    """The first ``size`` bytes of the open file ``fd`` (fewer if it ends sooner)."""
    data = os.read(fd, size)
    while len(data) < size:
        more = os.read(fd, size - len(data))
        if not more:
            break
        data += more
    return data


#: ``st`` of _scan_one for a path its directory entry says is a regular file (not a link)
_REGULAR: Any = object()
_OPEN_NONBLOCK = _OPEN_FLAGS | getattr(os, "O_NONBLOCK", 0)


def _scan_one(source: Any, trusted: tuple[str, ...], name: str | None, cache: dict[str, str],
              st: Any = None) -> FileReport:
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a str, not {type(name).__name__}")
    budget = _Budget()
    fh: Any = None
    mm: Any = None
    if type(source) is str or isinstance(source, (str, os.PathLike)):
        path = source if type(source) is str else os.fsdecode(os.fspath(source))
        display = name or path
        try:
            if st is _REGULAR:
                # opened without a stat first (non-blocking: had it become a FIFO since the
                # directory was listed, the open would not wait); the fstat below decides
                fd = os.open(path, _OPEN_NONBLOCK)
            else:
                if st is None:
                    st = os.stat(path)
                if stat.S_ISDIR(st.st_mode):
                    return _error_report(display, "directory", "directory",
                                         "a directory: scan(path, recursive=True) scans the files in it")
                if not stat.S_ISREG(st.st_mode):
                    return _error_report(display, "unreadable", "unreadable", "not a regular file")
                fd = os.open(path, _OPEN_FLAGS)
        except OSError as exc:
            return _error_report(display, "unreadable", "unreadable", f"cannot open it: {exc.strerror or exc}")
        whole = None
        try:
            fst = os.fstat(fd)
            size = fst.st_size
            regular = stat.S_ISREG(fst.st_mode)
            if 0 < size <= _READ_WHOLE and regular:  # (no file object: its buffers cost more than the read)
                whole = os.read(fd, size)
                if len(whole) < size:
                    whole += _read_fd(fd, size - len(whole))
        except OSError as exc:
            os.close(fd)
            return _error_report(display, "unreadable", "unreadable", f"cannot read it: {exc.strerror or exc}")
        if not regular:  # (st was _REGULAR: it changed since its directory was listed)
            os.close(fd)
            if stat.S_ISDIR(fst.st_mode):
                return _error_report(display, "directory", "directory",
                                     "a directory: scan(path, recursive=True) scans the files in it")
            return _error_report(display, "unreadable", "unreadable", "not a regular file")
        if whole is not None:
            os.close(fd)
            src: _Src = _BufSrc(whole, budget)
        else:
            if st is _REGULAR:
                try:
                    os.set_blocking(fd, True)
                except OSError:
                    pass
            fh = os.fdopen(fd, "rb")
            if size > 0:
                try:
                    mm = _mmap.mmap(fd, 0, access=_mmap.ACCESS_READ)
                except (OSError, ValueError):
                    mm = None
            src = _BufSrc(mm, budget) if mm is not None else _FileSrc(fh, size, budget)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        display = name or "<bytes>"
        try:
            src = _BufSrc(source, budget)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"cannot scan this buffer: {exc}") from None
    elif hasattr(source, "read") and hasattr(source, "seek"):
        nm = getattr(source, "name", None)
        display = name or (nm if isinstance(nm, str) else "<file>")
        try:
            source.seek(0, io.SEEK_END)
            size = source.tell()
        except Exception as exc:
            return _error_report(display, "unreadable", "unreadable", f"cannot seek in the file object ({type(exc).__name__}: {exc})")
        src = _FileSrc(source, size, budget)
    else:
        raise TypeError(f"scan_file takes a path, a binary file object or bytes, not {type(source).__name__}")
    ctx = _Ctx(None, trusted, cache, budget)
    try:
        try:
            fmt = _scan_src(ctx, src, "", 0, "file")
        except Exception as exc:  # a bug or a resource limit: never "safe"
            fmt = "unreadable"
            ctx.add("error", "unreadable", "", None, f"the scan failed ({type(exc).__name__}: {exc})")
        return ctx.report(display, fmt)
    finally:
        for close in reversed(budget.closers):
            try:
                close()
            except Exception:
                pass
        del src
        if mm is not None:
            _close_quietly(mm)
        if fh is not None:
            fh.close()


def _files_below(top: str, errors: list[OSError]) -> Iterable[tuple[str, bool]]:
    """The files below the directory ``top`` as ``os.walk(top)`` lists them (symbolic links
    to directories not followed), with the names of each directory sorted: (path, True
    when the directory entry says it is a regular file, not a link), the directories'
    files before their subdirectories'. ``errors`` gets what ``os.walk``'s onerror gets."""
    try:
        it = os.scandir(top)
    except OSError as exc:
        errors.append(exc)
        return
    dirs: list[tuple[str, str]] = []
    files: list[tuple[str, str, bool]] = []
    with it:
        while True:
            try:
                entry = next(it)
            except StopIteration:
                break
            except OSError as exc:
                errors.append(exc)
                return
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                dirs.append((entry.name, entry.path))
            else:
                try:
                    regular = entry.is_file(follow_symlinks=False)
                except OSError:
                    regular = False
                files.append((entry.name, entry.path, regular))
    files.sort()
    for _name, fp, regular in files:
        yield fp, regular
    dirs.sort()
    for _name, dp in dirs:
        if not os.path.islink(dp):
            yield from _files_below(dp, errors)


def scan(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    recursive: bool = False,
    trusted: Iterable[str] = (),
) -> ScanReport:
    """Scan files (and, with ``recursive=True``, every regular file below directories,
    whatever its name: scanners have been bypassed by odd extensions). A directory without
    ``recursive`` is an "error" report saying so; files that are not regular (FIFOs,
    sockets) are skipped in directories. Nothing is imported from or run for any file."""
    trusted_t = _check_trusted(trusted)
    if isinstance(paths, (str, os.PathLike)):
        items: list[Any] = [paths]
    elif isinstance(paths, (bytes, bytearray, memoryview)):
        raise TypeError("scan() takes paths; use scan_file() for bytes")
    else:
        try:
            items = list(paths)
        except TypeError:
            raise TypeError(f"scan() takes a path or an iterable of paths, not {type(paths).__name__}") from None
    for p in items:
        if not isinstance(p, (str, os.PathLike)):
            raise TypeError(f"scan() takes paths (str or os.PathLike), not {type(p).__name__}")
    cache = _status_cache(trusted_t)
    out = ScanReport()
    for p in items:
        path = os.fsdecode(os.fspath(p))
        if os.path.isdir(path):
            if not recursive:
                out.files.append(_error_report(path, "directory", "directory",
                                               "a directory: pass recursive=True (--recursive) to scan the files in it"))
                continue
            errors: list[OSError] = []
            for fp, regular in _files_below(path, errors):
                if regular:  # (the directory entry says so: no stat before the open)
                    out.files.append(_scan_one(fp, trusted_t, None, cache, _REGULAR))
                    continue
                try:
                    st = os.stat(fp)
                except OSError as exc:
                    out.files.append(_error_report(fp, "unreadable", "unreadable", f"cannot open it: {exc.strerror or exc}"))
                    continue
                if stat.S_ISREG(st.st_mode):
                    out.files.append(_scan_one(fp, trusted_t, None, cache, st))
            for exc in errors:
                out.files.append(_error_report(getattr(exc, "filename", None) or path, "unreadable", "unreadable",
                                               f"cannot list it: {exc.strerror or exc}"))
        else:
            out.files.append(_scan_one(path, trusted_t, None, cache))
    return out
