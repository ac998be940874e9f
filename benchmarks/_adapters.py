"""One adapter per tool, all with the same verbs: ``dump(obj, path)``, ``load(path)``, ``suffix``.

An adapter runs on the workloads it ``applies`` to: the generic ones (pickle, joblib, amber)
on every kind of workload, the others only on their ``kinds`` (skops on the forest, feather
on the DataFrame, safetensors and ``torch.save`` on the state dict, NumPy on single arrays).
The libraries of those tools are imported on first use, so ``--only dict`` needs no torch.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, ClassVar

import joblib
import numpy as np

import amber
from benchmarks._workloads import Workload

__all__ = ["ADAPTERS", "Adapter"]

#: The kinds of workload of the first benchmarks (arrays and plain data).
DATA = frozenset({"data"})


class Adapter:
    """A way to save and load an object. ``key`` names it in the JSON, ``label`` in tables."""

    key: ClassVar[str]
    label: ClassVar[str]
    suffix: ClassVar[str]
    #: The load maps the file instead of reading it (arrays stay on disk).
    mmap: ClassVar[bool] = False
    #: Only for files that hold one ndarray.
    single_array_only: ClassVar[bool] = False
    #: The workload kinds (``Workload.kind``) it is measured on; None: every kind.
    kinds: ClassVar[frozenset[str] | None] = None
    #: The workloads (``Workload.name``) it is measured on; None: every one of its kinds.
    workloads: ClassVar[frozenset[str] | None] = None

    def applies(self, w: Workload) -> bool:
        """Whether this adapter is measured on the workload ``w``."""
        if self.kinds is not None and w.kind not in self.kinds:
            return False
        if self.workloads is not None and w.name not in self.workloads:
            return False
        if self.single_array_only and not w.single_array:
            return False
        return w.has_arrays or not self.mmap  # a map of a file without arrays is a plain load

    def for_workload(self, w: Workload) -> Adapter:
        """The adapter to measure on ``w`` (one that knows what ``w`` needs, e.g. a trust list)."""
        return self

    def dump(self, obj: Any, path: Path) -> None:
        raise NotImplementedError

    def load(self, path: Path) -> Any:
        raise NotImplementedError

    def check(self, w: Workload, loaded: Any) -> Any:
        """What the first load is verified as (a lossy tool's result, made comparable)."""
        return loaded


class Pickle5(Adapter):
    key, label, suffix = "pickle5", "pickle p5", ".pkl"

    def dump(self, obj: Any, path: Path) -> None:
        with open(path, "wb") as fh:
            pickle.dump(obj, fh, protocol=5)

    def load(self, path: Path) -> Any:
        with open(path, "rb") as fh:
            return pickle.load(fh)


class Joblib(Adapter):
    key, label, suffix = "joblib", "joblib", ".joblib"

    def dump(self, obj: Any, path: Path) -> None:
        joblib.dump(obj, path)

    def load(self, path: Path) -> Any:
        return joblib.load(path)


class JoblibZ3(Joblib):
    key, label = "joblib_z3", "joblib compress=3"
    kinds = DATA  # seconds per dump on the big framework workloads, and no bar there

    def dump(self, obj: Any, path: Path) -> None:
        joblib.dump(obj, path, compress=3)


class Npy(Adapter):
    key, label, suffix = "npy", "np.save/np.load", ".npy"
    single_array_only = True
    kinds = DATA

    def dump(self, obj: Any, path: Path) -> None:
        np.save(path, obj, allow_pickle=False)

    def load(self, path: Path) -> Any:
        return np.load(path, allow_pickle=False)


class NpyMmap(Npy):
    key, label = "npy_mmap", "np.load mmap_mode=r"
    mmap = True

    def load(self, path: Path) -> Any:
        return np.load(path, mmap_mode="r", allow_pickle=False)


class Skops(Adapter):
    """``skops.io``, trusting exactly the types the file says it needs (as a user who
    checked them would)."""

    key, label, suffix = "skops", "skops.io", ".skops"
    kinds = frozenset({"forest"})

    def dump(self, obj: Any, path: Path) -> None:
        import skops.io

        skops.io.dump(obj, path)

    def load(self, path: Path) -> Any:
        import skops.io

        return skops.io.load(path, trusted=skops.io.get_untrusted_types(file=path))


class Feather(Adapter):
    """``df.to_feather`` / ``pd.read_feather`` with their defaults (Arrow IPC, LZ4 when available)."""

    key, label, suffix = "feather", "feather (lz4, its default)", ".feather"
    kinds = frozenset({"frame"})

    def dump(self, obj: Any, path: Path) -> None:
        obj.to_feather(path)

    def load(self, path: Path) -> Any:
        import pandas as pd

        return pd.read_feather(path)


class Safetensors(Adapter):
    """``safetensors.torch.save_file`` / ``load_file``, whose tensors map the file (lazy)."""

    key, label, suffix = "safetensors", "safetensors (lazy load)", ".safetensors"
    kinds = frozenset({"torch"})
    mmap = True

    def dump(self, obj: Any, path: Path) -> None:
        from safetensors.torch import save_file

        save_file(obj, path)

    def load(self, path: Path) -> Any:
        from safetensors.torch import load_file

        return load_file(path)


class TorchSave(Adapter):
    key, label, suffix = "torch_save", "torch.save/load weights_only", ".pt"
    kinds = frozenset({"torch"})

    def dump(self, obj: Any, path: Path) -> None:
        import torch

        torch.save(obj, path)

    def load(self, path: Path) -> Any:
        import torch

        return torch.load(path, weights_only=True)


class Orjson(Adapter):
    """Plain ``orjson.dumps``/``loads``: the speed of untyped JSON (tuples come back as lists,
    which the check forgives)."""

    key, label, suffix = "orjson", "orjson (untyped)", ".json"
    workloads = frozenset({"dict"})

    def dump(self, obj: Any, path: Path) -> None:
        import orjson

        with open(path, "wb") as fh:
            fh.write(orjson.dumps(obj))

    def load(self, path: Path) -> Any:
        import orjson

        with open(path, "rb") as fh:
            return orjson.loads(fh.read())

    def check(self, w: Workload, loaded: Any) -> Any:
        return {k: tuple(v) if type(v) is list else v for k, v in loaded.items()}


class Jsonpickle(Adapter):
    """``jsonpickle.encode``/``decode``: typed JSON the way many users do it (it keeps tuples)."""

    key, label, suffix = "jsonpickle", "jsonpickle", ".json"
    workloads = frozenset({"dict"})

    def dump(self, obj: Any, path: Path) -> None:
        import jsonpickle

        with open(path, "w", encoding="utf-8") as fh:
            fh.write(jsonpickle.encode(obj, keys=True))

    def load(self, path: Path) -> Any:
        import jsonpickle

        with open(path, encoding="utf-8") as fh:
            return jsonpickle.decode(fh.read(), keys=True)


class Hickle(Adapter):
    """``hickle.dump``/``hickle.load``: Python objects in HDF5."""

    key, label, suffix = "hickle", "hickle", ".h5"
    workloads = frozenset({"tiles-list"})

    def dump(self, obj: Any, path: Path) -> None:
        import hickle

        hickle.dump(obj, str(path), mode="w")

    def load(self, path: Path) -> Any:
        import hickle

        return hickle.load(str(path))


class H5pyLoop(Adapter):
    """The loop users write by hand: one h5py dataset per item, named by its index."""

    key, label, suffix = "h5py_loop", "h5py loop", ".h5"
    workloads = frozenset({"tiles-list"})

    def dump(self, obj: Any, path: Path) -> None:
        import h5py

        with h5py.File(path, "w") as f:
            for i, a in enumerate(obj):
                f.create_dataset(str(i), data=a)

    def load(self, path: Path) -> Any:
        import h5py

        with h5py.File(path, "r") as f:
            return [f[str(i)][()] for i in range(len(f))]


class Amber(Adapter):
    key, label, suffix = "amber", "amber", ".amber"

    def __init__(self, trusted: tuple[str, ...] = ()) -> None:
        #: Extra names its loads trust (``trusted=``): those the workload's classes need.
        self.trusted = trusted

    def for_workload(self, w: Workload) -> Adapter:
        return self if w.trusted == self.trusted else type(self)(w.trusted)

    def dump(self, obj: Any, path: Path) -> None:
        amber.dump(obj, path)

    def load(self, path: Path) -> Any:
        return amber.load(path, trusted=self.trusted)


class AmberZ(Amber):
    key, label = "amber_z", "amber compress=True"

    def dump(self, obj: Any, path: Path) -> None:
        amber.dump(obj, path, compress=True)


class AmberZRaw(Amber):
    """compress=True without the shuffle/delta pre-filters: shows what the filters buy."""

    key, label = "amber_z_nofilter", "amber compress=True filters=False"
    kinds = DATA

    def dump(self, obj: Any, path: Path) -> None:
        amber.dump(obj, path, compress=True, filters=False)


class AmberMmap(Amber):
    key, label = "amber_mmap", "amber mmap=True"
    mmap = True
    kinds = frozenset({"data", "torch"})  # what maps: arrays and tensors as they are

    def load(self, path: Path) -> Any:
        return amber.load(path, mmap=True, trusted=self.trusted)


class AmberJson(Amber):
    """Tagged JSON without indentation, like the orjson file it is measured against (the
    bar is the cost of the tags; the default pretty layout also pays for 70% more bytes)."""

    key, label, suffix = "amber_json", "amber .json compact=True", ".json"
    workloads = frozenset({"dict"})

    def dump(self, obj: Any, path: Path) -> None:
        amber.dump(obj, path, compact=True)


class AmberJsonPretty(AmberJson):
    key, label = "amber_json_pretty", "amber .json (pretty, the default)"

    def dump(self, obj: Any, path: Path) -> None:
        amber.dump(obj, path)


class AmberHdf5(Amber):
    key, label, suffix = "amber_hdf5", "amber .h5", ".h5"
    workloads = frozenset({"tiles-list"})


def _needs_as_is(manifest: dict[str, Any], trusted: Any, name: str) -> list[str]:
    """``check_trust`` without the audit: the manifest's needs, none refused."""
    return list(manifest.get("needs") or [])


def _import_unchecked(name: str, extra: Any = ()) -> Any:
    """``trust.resolve`` without the trust check: the import alone."""
    from amber.trust import _import

    return _import(name)


class AmberTrustOff(Amber):
    """amber's load with its trust checks switched off, to measure what safe loading costs.

    During the load, ``amber.formats._native.check_trust`` (the audit of the manifest's
    needed names against the trust list) returns the needs as they are, and ``_resolve``
    (``amber.trust.resolve``: the per-name trust check, then the import) only imports.
    Those are the only two places where a load consults the trust list; both are restored
    afterwards. Never a way to load a file: a benchmark of the checks' cost.
    """

    key, label = "amber_trust_off", "amber, trust checks off"
    kinds = frozenset({"forest", "objects"})

    def load(self, path: Path) -> Any:
        from amber.formats import _native

        saved = _native.check_trust, _native._resolve
        _native.check_trust, _native._resolve = _needs_as_is, _import_unchecked
        try:
            return amber.load(path, trusted=self.trusted)
        finally:
            _native.check_trust, _native._resolve = saved


class AmberNoVerify(Amber):
    """amber's load with the blob checksums skipped (``verify=False``, never the default):
    what the integrity check costs, side by side with the tools that check nothing."""

    key, label = "amber_noverify", "amber, checksums off (verify=False)"
    workloads = frozenset({"matrix", "tiles-list", "forest", "frame"})

    def load(self, path: Path) -> Any:
        return amber.load(path, verify=False, trusted=self.trusted)


class _ReadsOthers(Adapter):
    """amber loading (safely) a file another tool wrote: the issue's "existing files" bars.
    Measured on the workloads that carry those bars only."""

    workloads = frozenset({"dict", "forest"})

    def load(self, path: Path) -> Any:
        return amber.load(path)


class AmberReadsPickle(_ReadsOthers, Pickle5):
    key, label = "amber_reads_pickle", "amber.load of the pickle p5 file"


class AmberReadsJoblib(_ReadsOthers, Joblib):
    key, label = "amber_reads_joblib", "amber.load of the joblib file"


class AmberReadsTorch(_ReadsOthers, TorchSave):
    key, label = "amber_reads_torch", "amber.load of the torch.save file"
    workloads = frozenset({"torch"})


#: Every adapter, in table order.
ADAPTERS: tuple[Adapter, ...] = (
    Pickle5(),
    AmberReadsPickle(),  # amber loading each tool's file, right after that tool's own load
    Joblib(),
    AmberReadsJoblib(),
    JoblibZ3(),
    Npy(),
    NpyMmap(),
    Skops(),
    Feather(),
    Safetensors(),
    TorchSave(),
    AmberReadsTorch(),
    Orjson(),
    Jsonpickle(),
    Hickle(),
    H5pyLoop(),
    Amber(),
    AmberJson(),
    AmberJsonPretty(),
    AmberHdf5(),
    AmberZ(),
    AmberZRaw(),
    AmberMmap(),
    AmberTrustOff(),
    AmberNoVerify(),
)
