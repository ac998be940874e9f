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

    title("6. Safe by default: nothing in a file can run code")
    try:
        amber.dump({"f": lambda x: x}, os.path.join(work, "bad.amber"))
    except amber.UnsupportedTypeError as exc:
        print("refused at save time:", exc)
    data = open(path, "rb").read()
    broken = data[:5000] + bytes([data[5000] ^ 1]) + data[5001:]
    try:
        amber.loads(broken)
    except amber.CorruptFileError as exc:
        print("a flipped bit is caught:", exc)

    for name in os.listdir(work):
        os.remove(os.path.join(work, name))
    os.rmdir(work)
    print("\nDone. See README.md for the API.")


if __name__ == "__main__":
    main()
