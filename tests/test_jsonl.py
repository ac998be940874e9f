"""JSONL (``amber.jsonl`` and ``.jsonl`` files): typed records one line each, constant
memory, crash-torn last lines reported after the good records (never returned as data),
append refusing or repairing a torn tail, trust and schema per record."""

from __future__ import annotations

import collections
import datetime as dt
import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import amber
import amber.jsonl
from amber.formats._json import dump_jsonl, load_jsonl
from test_roundtrip import BUILTIN_CASES, assert_same

UTC = dt.timezone.utc

RECORDS: list[Any] = [
    {"id": 1, "name": "a", "score": 0.5, "ok": True, "none": None},
    {"id": 2, "tags": ("x", 2), "when": dt.datetime(2026, 1, 1, tzinfo=UTC), "raw": b"\x00\xff"},
    {"nested": {"a": [1, {"b": (1, 2)}], "s": {1, 2}}, "arr": np.arange(4, dtype=np.int16)},
    [1, 2, 3],
    "just a string",
    42,
    None,
    {"$dollar": "first key"},
    {1: "int key", (2, 3): "tuple key"},
    {"nan": float("nan"), "inf": float("-inf")},
    collections.OrderedDict(b=1, a=2),
    {"big": 2**100, "dec": __import__("decimal").Decimal("1.10")},
]


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def test_roundtrip_records(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    assert amber.jsonl.write(path, iter(RECORDS)) == len(RECORDS)
    out = list(amber.jsonl.read(path))
    assert_same(RECORDS, out)
    assert len(lines_of(path)) == len(RECORDS)
    for line in lines_of(path):
        assert line.endswith(b"\n") and b"\n" not in line[:-1]
        json.loads(line)


def test_builtin_cases_as_records(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    amber.jsonl.write(path, BUILTIN_CASES.values())
    assert_same(list(BUILTIN_CASES.values()), list(amber.jsonl.read(path)))


def test_plain_records_are_plain_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    recs = [{"id": i, "name": f"n{i}", "x": [i, {"y": None}]} for i in range(50)]
    amber.jsonl.write(path, recs)
    assert [orjson.loads(line) for line in lines_of(path)] == recs
    assert b"$" not in path.read_bytes()


def test_header_only_on_records_that_import(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    amber.jsonl.write(path, [{"t": (1, 2)}, collections.defaultdict(list, {"a": [1]})])
    first, second = (json.loads(x) for x in lines_of(path))
    assert first == {"t": {"$tuple": [1, 2]}}
    assert list(second) == ["$amber", "data"] and second["$amber"]["needs"] == ["builtins.list"]
    out = list(amber.jsonl.read(path))
    assert out[1].default_factory is list


_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)
_FLAT_VALUES = st.one_of(
    _SCALARS,
    st.tuples(_SCALARS, _SCALARS),
    st.lists(_SCALARS, max_size=3).map(tuple),
    st.datetimes(timezones=st.sampled_from([None, dt.timezone.utc, dt.timezone(dt.timedelta(hours=-3))])),
    st.dates(),
    st.decimals(allow_nan=False, places=3),
    st.uuids(),
    st.binary(max_size=4),
    st.lists(_SCALARS, max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.one_of(st.text(max_size=4), st.integers(0, 3)), _FLAT_VALUES, max_size=6))
def test_flat_record_lines_match_the_full_walk(rec: dict[Any, Any]) -> None:
    """The fast paths for flat records write what the full walk writes, byte for byte, and
    read back what the full walk reads."""
    from amber.formats import _json

    fast = _json.RecordWriter().line(rec)
    full = _json.RecordWriter()
    originals = _json._flat_record, _json._flat_in_place
    _json._flat_record = lambda r: None
    _json._flat_in_place = lambda d: False
    try:
        slow = full.line(rec)
        read_slow = load_jsonl(slow, name="<line>")[0]
    finally:
        _json._flat_record, _json._flat_in_place = originals
    assert fast == slow
    read_fast = load_jsonl(fast, name="<line>")[0]
    assert_same(read_fast, rec)
    assert_same(read_fast, read_slow)


def test_big_flat_record_with_tuples_takes_the_full_walk() -> None:
    """64 keys or more: the full walk writes one $tuples table; the fast path steps aside."""
    from amber.formats import _json

    rec = {f"k{i}": (i, "x") for i in range(70)}
    line = _json.RecordWriter().line(rec)
    assert b'"$tuples"' in line
    assert load_jsonl(line, name="<line>")[0] == rec


def test_dump_and_load_by_suffix(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    amber.dump(RECORDS, path)
    assert_same(RECORDS, amber.load(path))
    nd = tmp_path / "x.ndjson"
    amber.dump(RECORDS[:3], nd)
    assert_same(RECORDS[:3], amber.load(nd))
    with pytest.raises(amber.EncodeError, match="sequence of records"):
        dump_jsonl({"a": 1}, io.BytesIO())


def test_read_from_file_objects_and_bytes(tmp_path: Path) -> None:
    data = io.BytesIO()
    dump_jsonl(RECORDS[:4], data)
    raw = data.getvalue()
    assert_same(RECORDS[:4], list(amber.jsonl.read(io.BytesIO(raw))))
    assert_same(RECORDS[:4], list(amber.jsonl.read(raw)))
    assert_same(RECORDS[:4], list(amber.jsonl.read(io.StringIO(raw.decode()))))
    assert_same(RECORDS[:4], load_jsonl(raw))
    assert load_jsonl(b"\n1\n\n  \n2\n") == [1, 2]  # blank lines are skipped
    assert load_jsonl(b'{"a": 1}\r\n{"b": 2}\r\n') == [{"a": 1}, {"b": 2}]
    assert load_jsonl(b'{"a": 1}\n{"b": 2}') == [{"a": 1}, {"b": 2}]  # other tools' final line


def test_fsspec_memory_url() -> None:
    pytest.importorskip("fsspec")
    url = "memory://amber-jsonl-test/r.jsonl"
    assert amber.jsonl.write(url, RECORDS[:5]) == 5
    assert_same(RECORDS[:5], list(amber.jsonl.read(url)))
    assert amber.jsonl.append(url, RECORDS[5:7]) == 2
    assert_same(RECORDS[:7], list(amber.jsonl.read(url)))


def test_write_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    amber.jsonl.write(path, [{"old": 1}])

    def failing() -> Any:
        yield {"new": 1}
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        amber.jsonl.write(path, failing())
    assert list(amber.jsonl.read(path)) == [{"old": 1}]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jsonl"]
    with pytest.raises(amber.UnsupportedTypeError, match=r"record 1"):
        amber.jsonl.write(path, [{"ok": 1}, {"bad": lambda: 0}])
    assert list(amber.jsonl.read(path)) == [{"old": 1}]
    with pytest.raises(ValueError):
        amber.jsonl.write(path, [], compact=False)


def test_read_is_lazy(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    amber.jsonl.write(path, ({"i": i, "pad": "x" * 100} for i in range(100_000)))
    assert path.stat().st_size > 10_000_000

    class Counting(io.FileIO):
        nread = 0

        def readinto(self, b: Any) -> int:
            n = super().readinto(b)
            Counting.nread += n or 0
            return n

    with io.BufferedReader(Counting(str(path)), buffer_size=1 << 16) as fh:
        it = amber.jsonl.read(fh)
        assert next(it) == {"i": 0, "pad": "x" * 100}
        assert next(it)["i"] == 1
        assert Counting.nread <= 1 << 17
    it = amber.jsonl.read(path)
    assert next(it)["i"] == 0
    it.close()  # closes the file


MILLION = textwrap.dedent('''
    import resource, sys
    import amber.jsonl
    path, n = sys.argv[1], int(sys.argv[2])
    def records():
        for i in range(n):
            yield {"id": i, "name": f"user_{i:07d}", "score": i * 0.25, "pair": ("a", i % 7), "ok": i % 2 == 0}
    assert amber.jsonl.write(path, records()) == n
    count = 0
    for r, w in zip(amber.jsonl.read(path), records()):
        if count % 99_991 == 0:
            assert r == w, (r, w)
        count += 1
    assert count == n
    try:  # this process's own peak (ru_maxrss also counts the parent's, inherited through fork)
        with open("/proc/self/status") as fh:
            print(next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmHWM:")))
    except OSError:
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024))
''')


def test_a_million_records_in_constant_memory(tmp_path: Path) -> None:
    """1,000,000 records written and read back in a fresh process: peak RSS of the whole
    process (interpreter, NumPy, amber) stays under 100 MB."""
    path = tmp_path / "m.jsonl"
    proc = subprocess.run([sys.executable, "-c", MILLION, str(path), "1000000"], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    peak = int(proc.stdout.strip().splitlines()[-1])
    assert peak < 100 * 2**20, f"peak RSS {peak / 2**20:.0f} MiB"
    with path.open("rb") as fh:
        assert sum(1 for _ in fh) == 1_000_000


# ---------------------------------------------------------------------------------------
# torn lines, bad lines, append
# ---------------------------------------------------------------------------------------


def _torn_file(tmp_path: Path, n: int = 10) -> tuple[Path, int]:
    path = tmp_path / "t.jsonl"
    amber.jsonl.write(path, ({"i": i, "t": (i, "x")} for i in range(n)))
    size = path.stat().st_size
    last = lines_of(path)[-1]
    with path.open("r+b") as fh:  # a crash mid-line: the last record is cut short
        fh.truncate(size - len(last) // 2)
    return path, size - len(last)


def test_torn_last_line_reported_after_the_good_records(tmp_path: Path) -> None:
    path, start = _torn_file(tmp_path)
    it = amber.jsonl.read(path)
    got = [next(it) for _ in range(9)]
    assert [r["i"] for r in got] == list(range(9))
    with pytest.raises(amber.CorruptFileError) as ei:
        next(it)
    msg = str(ei.value)
    assert "line 10" in msg and f"byte offset {start}" in msg and "repair=True" in msg
    with pytest.warns(amber.AmberWarning, match="line 10"):
        assert [r["i"] for r in amber.jsonl.read(path, on_error="warn")] == list(range(9))
    with pytest.raises(amber.CorruptFileError, match="line 10"):
        amber.load(path)
    with pytest.raises(ValueError):
        amber.jsonl.read(path, on_error="ignore")


def test_torn_number_is_not_returned(tmp_path: Path) -> None:
    path = tmp_path / "n.jsonl"
    path.write_bytes(b"1\n2\n12")  # "1234" cut short is valid JSON, but unterminated
    with pytest.raises(amber.CorruptFileError, match="line 3"):
        list(amber.jsonl.read(path))
    path.write_bytes(b'1\n2\n{"a": 1}')  # an object cannot be cut into a valid one
    assert list(amber.jsonl.read(path)) == [1, 2, {"a": 1}]


def test_bad_line_in_the_middle(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": \n{"a": 3}\n')
    with pytest.raises(amber.CorruptFileError, match=r"line 2 \(byte offset 9\)"):
        list(amber.jsonl.read(path))
    with pytest.warns(amber.AmberWarning, match="line 2"):
        assert list(amber.jsonl.read(path, on_error="warn")) == [{"a": 1}, {"a": 3}]
    path.write_bytes(b'{"a": 1}\n{"$tuple": 5}\n')  # valid JSON that cannot be rebuilt: always raises
    with pytest.raises(amber.CorruptFileError, match="line 2"):
        list(amber.jsonl.read(path, on_error="warn"))


def test_append(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    assert amber.jsonl.append(path, [{"i": 0}]) == 1  # creates the file
    assert amber.jsonl.append(path, ({"i": i, "t": (i,)} for i in range(1, 4))) == 3
    assert [r["i"] for r in amber.jsonl.read(path)] == [0, 1, 2, 3]
    path.write_bytes(path.read_bytes().rstrip(b"\n"))  # another tool's file: no final newline
    amber.jsonl.append(path, [{"i": 4}])
    assert [r["i"] for r in amber.jsonl.read(path)] == [0, 1, 2, 3, 4]


def test_append_after_torn_line_refused_or_repaired(tmp_path: Path) -> None:
    path, start = _torn_file(tmp_path)
    before = path.read_bytes()
    with pytest.raises(amber.CorruptFileError, match=f"byte offset {start}"):
        amber.jsonl.append(path, [{"i": 99}])
    assert path.read_bytes() == before
    with pytest.warns(amber.AmberWarning, match=f"byte offset {start}"):
        assert amber.jsonl.append(path, [{"i": 99, "t": (1, "x")}], repair=True) == 1
    assert [r["i"] for r in amber.jsonl.read(path)] == [*range(9), 99]


def test_append_failure_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    amber.jsonl.write(path, [{"i": 0}])
    before = path.read_bytes()
    with pytest.raises(amber.EncodeError):
        amber.jsonl.append(path, [{"i": 1}, {"bad": lambda: 1}])
    assert path.read_bytes() == before


# ---------------------------------------------------------------------------------------
# trust and schema
# ---------------------------------------------------------------------------------------

MODULE_SRC = textwrap.dedent('''
    import pathlib
    pathlib.Path(__file__).with_suffix(".imported").write_text("imported")

    class Thing:
        def __init__(self, v):
            self.v = v
        def __eq__(self, other):
            return type(other) is Thing and self.v == other.v
''')


def test_untrusted_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("jsonlmod_a", "jsonlmod_b"):
        (tmp_path / f"{name}.py").write_text(MODULE_SRC)
    monkeypatch.syspath_prepend(str(tmp_path))
    import jsonlmod_a
    import jsonlmod_b

    path = tmp_path / "u.jsonl"
    amber.jsonl.write(path, [{"i": 0}, jsonlmod_a.Thing(1), {"x": jsonlmod_b.Thing(2)}])
    for name in ("jsonlmod_a", "jsonlmod_b"):
        sys.modules.pop(name)
        (tmp_path / f"{name}.imported").unlink()
    it = amber.jsonl.read(path)
    assert next(it) == {"i": 0}
    with pytest.raises(amber.UntrustedTypeError, match="line 2") as ei:
        next(it)
    assert ei.value.untrusted == ("jsonlmod_a.Thing",)
    with pytest.raises(amber.UntrustedTypeError) as ei:  # the whole file at once lists every name
        amber.load(path)
    assert ei.value.untrusted == ("jsonlmod_a.Thing", "jsonlmod_b.Thing")
    assert not list(tmp_path.glob("*.imported")) and "jsonlmod_a" not in sys.modules
    out = list(amber.jsonl.read(path, trusted=["jsonlmod_a", "jsonlmod_b"]))
    assert out[1].v == 1 and out[2]["x"].v == 2
    monkeypatch.delitem(sys.modules, "jsonlmod_a")
    monkeypatch.delitem(sys.modules, "jsonlmod_b")


def test_schema_per_record(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    amber.jsonl.write(path, [{"age": 1}, {"age": 2, "t": (1,)}, {"age": "three"}])
    schema = {"type": "object", "properties": {"age": {"type": "integer"}}, "required": ["age"]}
    it = amber.jsonl.read(path, schema=schema)
    assert next(it) == {"age": 1} and next(it)["age"] == 2
    with pytest.raises(amber.errors.SchemaError) as ei:
        next(it)
    assert ei.value.path == "$.age" and "line 3" in str(ei.value)
    with pytest.raises(amber.errors.SchemaError, match=r"line 3: \$\.age"):
        amber.load(path, schema=schema)


def test_inspect_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "i.jsonl"
    amber.jsonl.write(path, RECORDS)
    info = amber.inspect(path)
    assert info.format == "jsonl" and info.tree["len"] == len(RECORDS)
    assert {"tuple", "datetime.datetime", "set"} <= set(info.types)
    assert "records" in str(info)
