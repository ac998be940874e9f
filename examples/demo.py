"""amber in two minutes: save, inspect, compress, memory-map and slice lazily.

Run with `make demo`.
"""

from __future__ import annotations

import collections
import datetime as dt
import os
import pickle
import tempfile
import time

import numpy as np

import amber


def title(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m")


class Experiment:
    """A class of your own: saved through its __dict__, loaded only when you trust it."""

    def __init__(self, name: str, lr: float) -> None:
        self.name, self.lr = name, lr

    def __repr__(self) -> str:
        return f"Experiment({self.name!r}, lr={self.lr})"


def models(work: str) -> None:
    import pandas as pd
    import torch
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

    rng = np.random.default_rng(1)
    n = 2000
    frame = pd.DataFrame({
        "income": rng.lognormal(10, 1, n),
        "age": rng.integers(18, 90, n),
        "city": pd.Categorical(rng.choice(["Oslo", "Lima", "Pune", "Kyiv"], n)),
        "joined": pd.date_range("2020-01-01", periods=n, freq="h", tz="Europe/Oslo"),
    })
    y = (frame["income"] > 22_000) ^ (frame["age"] > 50)
    model = make_pipeline(
        ColumnTransformer([("log", FunctionTransformer(np.log1p), ["income", "age"]),
                           ("city", OneHotEncoder(), ["city"])]),
        HistGradientBoostingClassifier(max_iter=50),
    ).fit(frame, y)
    for name, obj in (("pipeline", model), ("DataFrame", frame)):
        p = os.path.join(work, f"{name}.amber")
        amber.loads(amber.dumps(obj))  # warm up: the first use imports the handlers
        t = time.perf_counter()
        amber.dump(obj, p)
        t_dump = time.perf_counter() - t
        t = time.perf_counter()
        back = amber.load(p)  # no trusted=: scikit-learn and pandas types are on the default list
        t_load = time.perf_counter() - t
        if name == "pipeline":
            ok = bool((back.predict_proba(frame) == model.predict_proba(frame)).all())
        else:
            ok = back.equals(frame) and back.dtypes.equals(frame.dtypes)
        print(f"  {name:<10} {os.path.getsize(p):>10,} bytes (pickle: {len(pickle.dumps(obj, protocol=5)):>10,})"
              f"  dump {t_dump * 1000:5.1f} ms  load {t_load * 1000:5.1f} ms  identical: {ok}")
    net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
    p = os.path.join(work, "net.amber")
    amber.dump({"model": net, "state": net.state_dict()}, p)
    back = amber.load(p)
    x = torch.randn(4, 64)
    print(f"  torch      nn.Sequential and state_dict back: outputs identical: {torch.equal(back['model'](x), net(x))};"
          f" state shares storage with the module: "
          f"{back['state']['0.weight'].data_ptr() == back['model'][0].weight.data_ptr()}")
    print("\nwhat a file needs, before loading anything:")
    print("  ", amber.inspect(os.path.join(work, "pipeline.amber")).needs[:4], "...")


class Payload:
    """What a hostile pickle does: its __reduce__ names a function the load would call."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


def existing(work: str) -> None:
    import joblib
    from sklearn.ensemble import RandomForestClassifier

    X = np.random.default_rng(0).normal(size=(500, 8))
    forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, X[:, 0] > 0)
    pkl, jbl = os.path.join(work, "forest.pkl"), os.path.join(work, "forest.joblib")
    with open(pkl, "wb") as fh:
        pickle.dump(forest, fh)
    joblib.dump(forest, jbl, compress=3)
    for p in (pkl, jbl):
        model = amber.load(p)  # never pickle.load: globals go through the trust list
        print(f"{os.path.basename(p)}: {type(model).__name__}, same predictions: "
              f"{bool((model.predict(X) == forest.predict(X)).all())}")

    marker = os.path.join(work, "pwned")
    evil = os.path.join(work, "evil.pkl")
    with open(evil, "wb") as fh:  # what someone could send you: pickle.load would run `touch`
        pickle.dump({"weights": [0.1, 0.2], "x": Payload(marker)}, fh)
    try:
        amber.load(evil)
    except amber.UntrustedTypeError as exc:
        print("a hostile pickle is refused:", exc)
    print("payload ran:", os.path.exists(marker))

    # a file can also carry a model whose *data* is hostile: a tree whose child links point
    # outside it. pickle.load returns it, and its first predict reads outside the process's
    # memory (a segfault); amber checks the compiled models it rebuilds and refuses it
    from sklearn.tree._tree import Tree

    state = forest.estimators_[3].tree_.__getstate__()
    nodes = state["nodes"].copy()
    nodes["left_child"][0] = 10**9
    tampered = Tree(*forest.estimators_[3].tree_.__reduce__()[1])
    tampered.__setstate__({**state, "nodes": nodes})
    forest.estimators_[3].tree_ = tampered
    bad = os.path.join(work, "tampered.pkl")
    with open(bad, "wb") as fh:
        pickle.dump(forest, fh)
    try:
        amber.load(bad)
    except amber.CorruptFileError as exc:
        print("a tampered forest is refused:", str(exc).replace(work + os.sep, ""))

    out = os.path.join(work, "forest.amber")
    amber.convert(pkl, out)
    info = amber.inspect(out)
    print(f"converted {os.path.basename(pkl)} -> {os.path.basename(out)}: {info.size:,} bytes, "
          f"converted_from={info.converted_from['name']} ({info.converted_from['format']})")


def interop(work: str, rng: np.random.Generator) -> None:
    import h5py

    config = {"name": "baseline", "layers": (512, 256, 10), "lr": 3e-4, "classes": {"cat", "dog"},
              "started": dt.datetime(2026, 11, 22, 9, 30)}
    p = os.path.join(work, "config.json")
    amber.dump(config, p)
    import json

    doc = json.load(open(p))  # valid JSON for any tool; a "$amber" header says what made it
    print("tagged JSON, its data part:", json.dumps(doc["data"]))
    print("types kept:", amber.load(p) == config)
    plain = os.path.join(work, "plain.json")
    amber.dump({"lr": 3e-4, "layers": [512, 256, 10]}, plain)
    print("plain data stays plain JSON:", " ".join(open(plain).read().split()))

    log = os.path.join(work, "events.jsonl")
    n = amber.jsonl.write(log, ({"step": i, "loss": 1 / (i + 1), "at": (i, "s")} for i in range(100_000)))
    amber.jsonl.append(log, [{"step": n, "loss": 0.0, "at": (n, "s")}])
    with open(log, "ab") as fh:  # a crash in the middle of a line
        fh.write(b'{"step": 100001, "lo')
    count = 0
    try:
        for _ in amber.jsonl.read(log):
            count += 1
    except amber.CorruptFileError as exc:
        print(f"read {count:,} records lazily, then: {exc}")

    h5 = os.path.join(work, "weights.h5")
    weights = {"encoder": {"layer1": rng.standard_normal((256, 128), dtype=np.float32), "bias": np.zeros(128)},
               "epochs": 12, "tiles": [rng.integers(0, 255, (240, 320, 3), dtype=np.uint8) for _ in range(3)]}
    amber.dump(weights, h5, compress="gzip")
    with h5py.File(h5) as f:  # any HDF5 tool reads it with natural names
        print("plain h5py sees:", list(f), "->", f["encoder/layer1"].shape, f["encoder/layer1"].dtype)
    with amber.open(h5) as f:  # lazy: a slice reads only its chunks
        print("amber.open slice:", f["encoder"]["layer1"][0, :4])
    print(amber.inspect(h5))


def main() -> None:
    work = tempfile.mkdtemp(prefix="amber-demo-")
    rng = np.random.default_rng(0)

    title("1. Save and load nested data with arrays")
    run = {
        "model": {
            "weights": {"layer1": rng.standard_normal((512, 256), dtype=np.float32),
                        "layer2": rng.standard_normal((256, 10), dtype=np.float32)},
            "classes": ("cat", "dog", "bird"),
        },
        "history": {"loss": [0.9, 0.5, 0.31], "epochs": 3},
        "vocab": collections.Counter("the quick brown fox jumps over the lazy dog".split()),
        "finished": dt.datetime(2026, 11, 22, 9, 30, tzinfo=dt.timezone.utc),
        "seed_state": np.random.default_rng(42),
    }
    run["history"]["best"] = run["history"]["loss"]  # a shared reference
    path = os.path.join(work, "run.amber")
    amber.dump(run, path, metadata={"experiment": "demo", "lr": 3e-4, "tags": ["baseline"]})
    back = amber.load(path)
    same = all(np.array_equal(back["model"]["weights"][k], run["model"]["weights"][k]) for k in ("layer1", "layer2"))
    print(f"saved {os.path.getsize(path):,} bytes to {path}")
    print(f"arrays equal: {same}; tuple stays a tuple: {back['model']['classes']!r}")
    print(f"shared reference kept: {back['history']['best'] is back['history']['loss']}")
    print(f"RNG continues identically: {back['seed_state'].random() == np.random.default_rng(42).random()}")

    title("2. Inspect a file without loading or importing anything")
    print(amber.inspect(path))

    title("3. Compression: sizes across codecs (1000 x 1000 float64 of rounded prices)")
    prices = np.round(rng.lognormal(3, 1, (1000, 1000)), 2)
    pickle_size = len(pickle.dumps(prices, protocol=5))
    print(f"  {'pickle protocol 5':<22}{pickle_size:>12,} bytes")
    for codec in (None, "lz4", "zstd", "zstd:9", "zlib", "gzip", True):
        p = os.path.join(work, "prices.amber")
        t = time.perf_counter()
        amber.dump(prices, p, compress=codec)
        took = time.perf_counter() - t
        label = {None: "amber (uncompressed)", True: "amber compress=True"}.get(codec, f"amber {codec}")
        print(f"  {label:<22}{os.path.getsize(p):>12,} bytes  {took * 1000:6.1f} ms")

    title("4. Memory-mapped load: no copy, independent of size")
    big = rng.standard_normal((4000, 4000))  # 128 MB
    p = os.path.join(work, "big.amber")
    amber.dump(big, p)
    t = time.perf_counter()
    mapped = amber.load(p, mmap=True)
    took = (time.perf_counter() - t) * 1000
    print(f"mmap load of {big.nbytes / 1e6:.0f} MB took {took:.2f} ms; writeable={mapped.flags.writeable}; "
          f"equal={np.array_equal(mapped, big)}")
    del mapped

    title("5. Lazy access: read only what you index")
    with amber.open(path) as f:
        print("keys:", f.keys())
        print("metadata:", f.metadata)
        print("layer1 rows 10..12, first 4 columns:\n", f["model"]["weights"]["layer1"][10:12, :4])

    title("6. Models: scikit-learn, pandas, PyTorch - no pickle, no trusted= needed")
    models(work)

    title("7. Safe by default: nothing in a file can run code")
    try:
        amber.dump({"f": lambda x: x}, os.path.join(work, "bad.amber"))
    except amber.UnsupportedTypeError as exc:
        print("refused at save time:", exc)
    p = os.path.join(work, "experiment.amber")
    amber.dump({"config": Experiment("baseline", 3e-4)}, p)
    try:
        amber.load(p)
    except amber.UntrustedTypeError as exc:
        print("your own class needs your say-so:", exc)
    print("loaded with trusted=:", amber.load(p, trusted=[f"{__name__}.Experiment"])["config"])
    data = open(path, "rb").read()
    broken = data[:5000] + bytes([data[5000] ^ 1]) + data[5001:]
    try:
        amber.loads(broken)
    except amber.CorruptFileError as exc:
        print("a flipped bit is caught:", exc)

    title("8. Existing pickle and joblib files: loaded safely, converted in one call")
    existing(work)

    title("9. amber scan: check downloaded files without loading them")
    paths = [os.path.join(work, n) for n in ("forest.pkl", "forest.joblib", "evil.pkl", "forest.amber")]
    t0 = time.perf_counter()
    report = amber.scan(paths)
    took = time.perf_counter() - t0
    print(report)
    print("exit code for CI:", report.exit_code)
    t0 = time.perf_counter()
    amber.scan(paths)
    again = time.perf_counter() - t0
    mb = sum(os.path.getsize(p) for p in paths) / 1e6
    print(f"scanned {len(paths)} files ({mb:.1f} MB) in {took * 1e3:.1f} ms, {again * 1e3:.1f} ms the second time (the first "
          "scan imports the trusted packages the files name, to check each name); nothing from the files is run")

    title("10. JSON, JSONL and HDF5: readable by other tools, typed for amber")
    interop(work, rng)

    for name in os.listdir(work):
        os.remove(os.path.join(work, name))
    os.rmdir(work)
    print("\nDone. See README.md for the API.")


if __name__ == "__main__":
    main()
