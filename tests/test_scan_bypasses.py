"""The published scanner bypasses of 2024-2026 (tests/_bypasses.py) against amber.

For every bypass: the scanner never calls the file safe (``dangerous`` or ``unknown``),
``amber.load`` refuses it, and neither creates the payload's marker file. Then
``test_each_bypass_is_real`` loads every file whose gadget exists here the way its victims
did (``pickle.loads``, ``torch.load(weights_only=False)``, zipfile and pickle, ``numpy.load``,
``joblib.load``, ...) in a child process, and checks that the marker appears: the corpus is
made of working exploits, not of files that would fail anyway.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import amber
from tests._bypasses import BYPASSES

NAMES = sorted(BYPASSES)


def _write(name: str, where: Path) -> tuple[Path, Path]:
    """Build bypass ``name`` in ``where``: (the file, the marker its payload would create)."""
    marker = where / "marker"
    filename, data = BYPASSES[name].build(marker)
    path = where / filename
    path.write_bytes(data)
    return path, marker


@pytest.fixture(scope="module")
def scan_file():
    scan = pytest.importorskip("amber.security._scan", reason="the scanner (amber.security._scan) has not landed")
    return scan.scan_file


@pytest.mark.parametrize("name", NAMES)
def test_scanner_never_calls_a_bypass_safe(name: str, tmp_path: Path, scan_file) -> None:
    path, marker = _write(name, tmp_path)
    report = scan_file(path)
    assert report.verdict in ("dangerous", "unknown"), (
        f"{name} ({BYPASSES[name].source}): verdict {report.verdict!r}, findings {report.findings!r}"
    )
    assert not marker.exists()


#: Bypasses amber.load does not refuse, though it runs nothing of them (strict: fix, then drop).
LOAD_GAPS: dict[str, str] = {}


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=LOAD_GAPS[n])) if n in LOAD_GAPS else n
             for n in NAMES]
)
def test_load_refuses_a_bypass(name: str, tmp_path: Path) -> None:
    path, marker = _write(name, tmp_path)
    with pytest.raises(amber.AmberError) as info:
        amber.load(path)
    assert isinstance(info.value, (amber.UntrustedTypeError, amber.FormatError)), (
        f"{name}: {type(info.value).__name__}: {info.value}"
    )
    assert not marker.exists()


# --------------------------------------------------------------------------- the corpus is real

_CHILD = r"""
import gzip, json, os, pickle, shutil, subprocess, sys, tempfile, time, traceback, zipfile

jobs = json.load(open(sys.argv[1]))
if any(j["loader"] == "torch" or "torch" in j["name"] for j in jobs):
    import torch
import numpy

def load_7z(path):
    out = tempfile.mkdtemp()
    if shutil.which("7z"):
        subprocess.run(["7z", "x", "-y", "-o" + out, path], check=True, capture_output=True)
    else:
        import py7zr
        with py7zr.SevenZipFile(path) as z:
            z.extractall(out)
    for root, _, files in os.walk(out):
        for f in files:
            if f.endswith(".pkl"):
                pickle.loads(open(os.path.join(root, f), "rb").read())

def load_stream(path):
    with open(path, "rb") as f:
        while True:
            pickle.load(f)

def load_zip(path):
    with zipfile.ZipFile(path) as z:
        for n in z.namelist():
            try:
                pickle.loads(z.read(n))
            except Exception:
                traceback.print_exc()

def load_npz(path):
    with numpy.load(path, allow_pickle=True) as d:
        for k in d.files:
            d[k]

LOADERS = {
    "pickle": lambda p: pickle.loads(open(p, "rb").read()),
    "pickle-stream": load_stream,
    "torch": lambda p: __import__("torch").load(p, weights_only=False),
    "zip": load_zip,
    "numpy": lambda p: numpy.load(p, allow_pickle=True),
    "npz": load_npz,
    "joblib": lambda p: __import__("joblib").load(p),
    "gzip": lambda p: pickle.loads(gzip.decompress(open(p, "rb").read())),
    "7z": load_7z,
}

def run(job):
    os.chdir(job["workdir"])
    fd = os.open(job["stdin"] or os.devnull, os.O_RDONLY)
    os.dup2(fd, 0)
    log = os.open("log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    try:
        LOADERS[job["loader"]](job["path"])
    except ModuleNotFoundError as e:  # the gadget's module is not part of this Python or environment
        open("missing", "w").write(str(e))
    except BaseException:
        traceback.print_exc()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)

pending, running = list(jobs), {}
while pending or running:
    while pending and len(running) < 8:
        job = pending.pop()
        pid = os.fork()
        if pid == 0:
            run(job)
        running[pid] = time.monotonic()
    for pid, started in list(running.items()):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            del running[pid]
        elif time.monotonic() - started > 30:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            del running[pid]
    time.sleep(0.01)
"""


def _can_load(loader: str) -> bool:
    if loader == "7z":
        return bool(shutil.which("7z")) or importlib.util.find_spec("py7zr") is not None
    return True


@pytest.fixture(scope="module")
def ran_in_child(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Load every bypass that can run here in one child process (forking per file), return
    name -> marker."""
    base = tmp_path_factory.mktemp("real")
    jobs, markers = [], {}
    for i, name in enumerate(NAMES):
        b = BYPASSES[name]
        if b.not_real or not _can_load(b.loader):
            continue
        where = base / str(i)
        where.mkdir()
        path, marker = _write(name, where)
        stdin = ""
        if b.stdin is not None:
            (where / "stdin").write_bytes(b.stdin(marker))
            stdin = str(where / "stdin")
        jobs.append({"name": name, "loader": b.loader, "path": str(path), "workdir": str(where), "stdin": stdin})
        markers[name] = marker
    (base / "jobs.json").write_text(json.dumps(jobs))
    # (a home of their own, where gadgets such as idlelib's write config folders; idlelib's
    # made ready: two idlelib gadgets of this run making it at the same moment made one exit)
    (base / ".idlerc").mkdir(exist_ok=True)
    subprocess.run(
        [sys.executable, "-c", _CHILD, str(base / "jobs.json")],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=60, check=True, cwd=base,
        env={**os.environ, "HOME": str(base)},
    )
    deadline = time.monotonic() + 10  # some gadgets start a shell and return before it is done
    while time.monotonic() < deadline and not all(m.exists() for m in markers.values()):
        time.sleep(0.05)
    return markers


@pytest.mark.parametrize("name", NAMES)
def test_each_bypass_is_real(name: str, ran_in_child: dict[str, Path]) -> None:
    b = BYPASSES[name]
    if b.not_real:
        pytest.skip(b.not_real)
    if name not in ran_in_child:
        pytest.skip(f"no {b.loader} extractor here (7z or py7zr)")
    marker = ran_in_child[name]
    log, missing = marker.parent / "log", marker.parent / "missing"
    if not marker.exists() and missing.exists():
        pytest.skip(f"the gadget is not importable here: {missing.read_text()}")
    assert marker.exists(), f"{name} did not run under {b.loader}:\n{log.read_text() if log.exists() else ''}"


def test_corpus_is_described() -> None:
    for name, b in BYPASSES.items():
        assert b.source and b.technique, name
        assert b.loader in ("pickle", "pickle-stream", "torch", "zip", "numpy", "npz", "joblib", "gzip", "7z"), name
