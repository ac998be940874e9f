"""Property-based round trips: nested builtins, NumPy arrays of every dtype and layout,
shared references, lazy slices and strings UTF-8 cannot encode."""

from __future__ import annotations

import collections
import datetime as dt
import struct
from typing import Any

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import numpy as np
from hypothesis import HealthCheck, given, settings

import amber
from test_roundtrip import assert_same, fingerprint, payload_bytes

SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

# ---------------------------------------------------------------------------------------
# builtins
# ---------------------------------------------------------------------------------------

EDGE_INTS = [0, -1, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, -(2**64)]
ints = st.integers() | st.integers(min_value=-(2**300), max_value=2**300) | st.sampled_from(EDGE_INTS)
# every bit pattern: negative nans, signalling nans, payloads, denormals
any_float_bits = st.integers(0, 2**64 - 1).map(lambda n: struct.unpack("<d", struct.pack("<Q", n))[0])
floats = st.floats() | any_float_bits | st.sampled_from([-0.0, 0.0, float("nan"), float("inf"), float("-inf")])
atoms = (
    st.none()
    | st.booleans()
    | ints
    | floats
    | st.text()
    | st.binary()
    | st.builds(complex, floats, floats)
)
hashables = st.recursive(
    atoms,
    lambda inner: st.lists(inner, max_size=4).map(tuple) | st.frozensets(inner, max_size=4),
    max_leaves=10,
)
fixed_offsets = st.timedeltas(min_value=dt.timedelta(hours=-23, minutes=-59), max_value=dt.timedelta(hours=23, minutes=59))
tzinfos = st.none() | st.builds(dt.timezone, fixed_offsets) | st.timezones()
datetimes = st.builds(
    lambda d, fold: d.replace(fold=fold), st.datetimes(timezones=tzinfos), st.integers(0, 1)
)
other_atoms = (
    st.builds(bytearray, st.binary())
    | st.decimals(allow_nan=True, allow_infinity=True)
    | st.fractions()
    | st.uuids()
    | datetimes
    | st.dates()
    | st.times(timezones=st.none() | st.builds(dt.timezone, fixed_offsets))
    | st.timedeltas()
)


def containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return (
        st.lists(inner, max_size=5)
        | st.lists(inner, max_size=5).map(tuple)
        | st.dictionaries(st.text(max_size=8), inner, max_size=5)
        | st.dictionaries(hashables, inner, max_size=5)
        | st.sets(hashables, max_size=5)
        | st.frozensets(hashables, max_size=5)
        # lists whose first item is bytes look like amber's tagged nodes
        | st.builds(lambda b, rest: [b, *rest], st.sampled_from([b"ref", b"tuple", b"list", b"seg", b"x", b""]),
                    st.lists(inner, max_size=3))
        | st.dictionaries(hashables, inner, max_size=4).map(collections.OrderedDict)
        | st.builds(collections.deque, st.lists(inner, max_size=4), st.none() | st.integers(4, 6))
        | st.dictionaries(hashables, st.integers(), max_size=4).map(collections.Counter)
        | st.builds(collections.defaultdict, st.sampled_from([None, list, int, set, dict]),
                    st.dictionaries(hashables, inner, max_size=4))
    )


nested = st.recursive(atoms | other_atoms, containers, max_leaves=15)


def roundtrip(obj: Any, **kw: Any) -> Any:
    return amber.loads(amber.dumps(obj, **kw))


@SETTINGS
@given(nested)
def test_nested_builtins_roundtrip(obj: Any) -> None:
    assert_same(obj, roundtrip(obj))


@SETTINGS
@given(st.dictionaries(hashables, atoms | st.lists(atoms, max_size=3), max_size=8))
def test_dict_keys_and_order_roundtrip(d: dict[Any, Any]) -> None:
    out = roundtrip(d)
    assert type(out) is dict
    assert [fingerprint(k) for k in out] == [fingerprint(k) for k in d]
    assert_same(d, out)


@SETTINGS
@given(st.lists(floats, max_size=20), ints)
def test_floats_bitwise_and_ints_exact(xs: list[float], n: int) -> None:
    out = roundtrip([xs, n, tuple(xs), {"n": n}])
    assert [struct.pack("<d", x) for x in out[0]] == [struct.pack("<d", x) for x in xs]
    assert type(out[1]) is int and out[1] == n and out[3]["n"] == n


@SETTINGS
@given(nested)
def test_deterministic_dumps_are_stable(obj: Any) -> None:
    a = amber.dumps(obj, deterministic=True)
    assert a == amber.dumps(obj, deterministic=True)
    assert_same(obj, amber.loads(a))


# ---------------------------------------------------------------------------------------
# NumPy arrays of every dtype
# ---------------------------------------------------------------------------------------

LONGDOUBLE = np.dtype(np.longdouble)
CLONGDOUBLE = np.dtype(np.clongdouble)
typed_dtypes = (
    hnp.boolean_dtypes()
    | hnp.integer_dtypes(endianness="?")
    | hnp.unsigned_integer_dtypes(endianness="?")
    | hnp.floating_dtypes(endianness="?", sizes=(16, 32, 64))
    | hnp.complex_number_dtypes(endianness="?", sizes=(64, 128))
    | st.sampled_from([LONGDOUBLE, LONGDOUBLE.newbyteorder(), CLONGDOUBLE, CLONGDOUBLE.newbyteorder()])
    | hnp.datetime64_dtypes(endianness="?")
    | hnp.timedelta64_dtypes(endianness="?")
    | hnp.byte_string_dtypes(min_len=1, max_len=8)
    | hnp.unicode_string_dtypes(endianness="?", min_len=1, max_len=5)
)
simple_dtypes = typed_dtypes | st.integers(1, 16).map(lambda n: np.dtype(f"V{n}"))


def _untitled(d: np.dtype) -> np.dtype:
    """``d`` without field titles."""
    if d.names is None:
        if d.subdtype is not None:
            return np.dtype((_untitled(d.subdtype[0]), d.subdtype[1]))
        return d
    return np.dtype(
        {
            "names": list(d.names),
            "formats": [_untitled(d.fields[n][0]) for n in d.names],
            "offsets": [d.fields[n][1] for n in d.names],
            "itemsize": d.itemsize,
        },
        align=d.isalignedstruct,
    )


def _aligned(d: np.dtype) -> np.dtype:
    return np.dtype([(n, d.fields[n][0]) for n in d.names], align=True)


titled_dtypes = (
    hnp.array_dtypes(simple_dtypes, min_size=1, max_size=4, allow_subarrays=True)
    | hnp.nested_dtypes(simple_dtypes, max_leaves=5).filter(lambda d: d.names is not None)
)
structured_dtypes = titled_dtypes | titled_dtypes.map(_untitled)
all_dtypes = simple_dtypes | structured_dtypes | structured_dtypes.map(_aligned)
shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5)


@st.composite
def raw_arrays(draw: Any, dtype: Any = all_dtypes) -> np.ndarray:
    """Arrays holding arbitrary bytes: every bit pattern of every dtype."""
    d = draw(dtype)
    shape = draw(shapes)
    n = int(np.prod(shape, dtype=np.int64))
    raw = draw(st.binary(min_size=n * d.itemsize, max_size=n * d.itemsize))
    if d.kind == "b":
        return (np.frombuffer(raw, dtype=np.uint8) % 2).astype(bool).reshape(shape)
    if d.kind == "U":  # only valid code points, or reading an item as str fails in NumPy itself
        code = (np.frombuffer(raw, dtype=np.uint32) % 0x110000).astype(d.str[0] + "u4")
        return code.view(d).reshape(shape)
    return np.frombuffer(raw, dtype=d).reshape(shape).copy()


typed_arrays = typed_dtypes.flatmap(lambda d: hnp.arrays(d, shapes))
any_arrays = raw_arrays() | typed_arrays


@st.composite
def views(draw: Any, arrays: st.SearchStrategy[np.ndarray] = any_arrays) -> np.ndarray:
    """The array itself, or a transposed, strided, reversed, Fortran or broadcast view."""
    a = draw(arrays)
    how = draw(st.sampled_from(["same", "T", "step", "reverse", "fortran", "broadcast"]))
    if how == "T":
        return a.T
    if how == "step" and a.ndim:
        return a[::2]
    if how == "reverse" and a.ndim:
        return a[::-1]
    if how == "fortran":
        return np.asfortranarray(a)
    if how == "broadcast":
        return np.broadcast_to(a, (2, *a.shape))
    return a


@SETTINGS
@given(views(), st.sampled_from([None, None, "zstd", "lz4", "zlib"]))
def test_arrays_roundtrip(a: np.ndarray, compress: Any) -> None:
    out = amber.loads(amber.dumps(a, compress=compress))
    assert_same(a, out)
    assert out.flags.writeable
    if a.flags.f_contiguous and not a.flags.c_contiguous:
        assert out.flags.f_contiguous


@SETTINGS
@given(views(), st.sampled_from([None, "zstd"]))
def test_arrays_roundtrip_mmap(tmp_path_factory: Any, a: np.ndarray, compress: Any) -> None:
    p = tmp_path_factory.mktemp("mm") / "a.amber"
    amber.dump({"a": a, "b": [a]}, p, compress=compress)
    out = amber.load(p, mmap=True)
    assert_same(a, out["a"])
    assert out["a"] is out["b"][0]
    if compress is None and out["a"].nbytes > 64:  # smaller arrays are inline, in memory
        assert not out["a"].flags.writeable


@SETTINGS
@given(raw_arrays())
def test_numpy_scalars_and_dtypes_roundtrip(a: np.ndarray) -> None:
    scalar = a.reshape(-1)[0] if a.size else np.zeros((), a.dtype)[()]
    out = roundtrip([scalar, a.dtype])
    assert type(out[0]) is type(scalar)
    assert_same(scalar, out[0])
    assert_same(a.dtype, out[1])


@st.composite
def object_arrays(draw: Any) -> np.ndarray:
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3))
    elements = nested | any_arrays | st.none()
    out = np.empty(shape, dtype=object)
    flat = out.reshape(-1)
    for i in range(flat.size):
        flat[i] = draw(elements)
    return out


@SETTINGS
@given(object_arrays())
def test_object_arrays_roundtrip(a: np.ndarray) -> None:
    assert_same(a, roundtrip(a))


@SETTINGS
@given(st.recursive(atoms | any_arrays | hnp.from_dtype(np.dtype("f8")).map(np.float64), containers, max_leaves=12))
def test_arrays_inside_containers_roundtrip(obj: Any) -> None:
    assert_same(obj, roundtrip(obj))


# ---------------------------------------------------------------------------------------
# shared references
# ---------------------------------------------------------------------------------------

shareables = st.one_of(
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=3),
    st.dictionaries(st.integers(), st.integers(), max_size=3),
    st.sets(st.integers(), max_size=3),
    st.builds(bytearray, st.binary(max_size=3)),
    st.lists(st.integers(), max_size=3).map(collections.deque),
    hnp.arrays(np.int16, hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3)),
)


@SETTINGS
@given(st.lists(shareables, min_size=1, max_size=5), st.data())
def test_shared_references_keep_identity(pool: list[Any], data: Any) -> None:
    picks = data.draw(st.lists(st.integers(0, len(pool) - 1), min_size=1, max_size=12))
    wrap = data.draw(st.sampled_from(["list", "dict", "tuple", "nested"]))
    items = [pool[i] for i in picks]
    if wrap == "dict":
        obj: Any = {f"k{j}": x for j, x in enumerate(items)}
        get = lambda o: [o[f"k{j}"] for j in range(len(items))]  # noqa: E731
    elif wrap == "tuple":
        obj = tuple(items)
        get = list
    elif wrap == "nested":
        obj = [[x, {"again": x}] for x in items]
        get = lambda o: [y for pair in o for y in (pair[0], pair[1]["again"])]  # noqa: E731
        picks = [p for p in picks for _ in (0, 1)]
    else:
        obj = items
        get = list
    out = get(roundtrip(obj))
    for j, pj in enumerate(picks):
        for k, pk in enumerate(picks):
            assert (out[j] is out[k]) == (pj == pk), (j, k)
    for j, pj in enumerate(picks):
        assert_same(pool[pj], out[j])


# ---------------------------------------------------------------------------------------
# lazy slices
# ---------------------------------------------------------------------------------------


@st.composite
def first_axis_keys(draw: Any, n: int) -> Any:
    kind = draw(st.sampled_from(["int", "slice", "stepped"]))
    if kind == "int" and n:
        return draw(st.integers(-n, n - 1))
    start = draw(st.none() | st.integers(-n - 2, n + 2))
    stop = draw(st.none() | st.integers(-n - 2, n + 2))
    step = draw(st.sampled_from([None, 1])) if kind != "stepped" else draw(st.sampled_from([2, 3, -1]))
    return slice(start, stop, step)


@SETTINGS
@given(views(raw_arrays() | typed_arrays).filter(lambda a: a.ndim > 0), st.data(),
       st.sampled_from([None, "zstd"]), st.booleans())
def test_lazy_first_axis_slices_match_numpy(a: np.ndarray, data: Any, compress: Any, shared: bool) -> None:
    key = data.draw(first_axis_keys(a.shape[0]))
    s = [0]
    obj: dict[str, Any] = {"a": a}
    if shared:  # with shared references amber.open hands out LazyArrays
        obj.update(s1=s, s2=s)
    with amber.open(amber.dumps(obj, compress=compress)) as f:
        got = np.asarray(f["a"][key])
    want = np.asarray(a[key])
    assert got.shape == want.shape
    assert got.dtype == want.dtype
    assert payload_bytes(got) == payload_bytes(want)


# ---------------------------------------------------------------------------------------
# text that UTF-8 cannot encode
# ---------------------------------------------------------------------------------------

any_text = st.text(st.characters() | st.integers(0xD800, 0xDFFF).map(chr), max_size=10)


@SETTINGS
@given(any_text, st.integers(0, 60), st.sampled_from(["list", "dict_value", "dict_key", "tuple", "set", "intdict"]))
def test_any_text_roundtrips_or_raises_encode_error(s: str, depth: int, where: str) -> None:
    obj: Any = s
    for _ in range(depth):
        obj = [obj]
    obj = {"list": [obj], "dict_value": {"k": obj}, "dict_key": {s: obj}, "tuple": (obj,),
           "set": [{s}, obj], "intdict": {1: obj}}[where]
    try:
        data = amber.dumps(obj)
    except amber.AmberError as exc:
        assert isinstance(exc, amber.EncodeError)
        assert any(0xD800 <= ord(c) <= 0xDFFF for c in s)
        return
    assert_same(obj, amber.loads(data))
