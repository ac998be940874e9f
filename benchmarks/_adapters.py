"""One adapter per tool, all with the same verbs: ``dump(obj, path)``, ``load(path)``, ``suffix``."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, ClassVar

import joblib
import numpy as np

import amber

__all__ = ["ADAPTERS", "Adapter"]


class Adapter:
    """A way to save and load an object. ``key`` names it in the JSON, ``label`` in tables."""

    key: ClassVar[str]
    label: ClassVar[str]
    suffix: ClassVar[str]
    #: The load maps the file instead of reading it (arrays stay on disk).
    mmap: ClassVar[bool] = False
    #: Only for files that hold one ndarray.
    single_array_only: ClassVar[bool] = False

    def applies(self, single_array: bool, has_arrays: bool) -> bool:
        """Whether this adapter is measured on a workload of this kind."""
        if self.single_array_only and not single_array:
            return False
        return has_arrays or not self.mmap  # a map of a file without arrays is a plain load

    def dump(self, obj: Any, path: Path) -> None:
        raise NotImplementedError

    def load(self, path: Path) -> Any:
        raise NotImplementedError


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

    def dump(self, obj: Any, path: Path) -> None:
        joblib.dump(obj, path, compress=3)


class Npy(Adapter):
    key, label, suffix = "npy", "np.save/np.load", ".npy"
    single_array_only = True

    def dump(self, obj: Any, path: Path) -> None:
        np.save(path, obj, allow_pickle=False)

    def load(self, path: Path) -> Any:
        return np.load(path, allow_pickle=False)


class NpyMmap(Npy):
    key, label = "npy_mmap", "np.load mmap_mode=r"
    mmap = True

    def load(self, path: Path) -> Any:
        return np.load(path, mmap_mode="r", allow_pickle=False)


class Amber(Adapter):
    key, label, suffix = "amber", "amber", ".amber"

    def dump(self, obj: Any, path: Path) -> None:
        amber.dump(obj, path)

    def load(self, path: Path) -> Any:
        return amber.load(path)


class AmberZ(Amber):
    key, label = "amber_z", "amber compress=True"

    def dump(self, obj: Any, path: Path) -> None:
        amber.dump(obj, path, compress=True)


class AmberZRaw(Amber):
    """compress=True without the shuffle/delta pre-filters: shows what the filters buy."""

    key, label = "amber_z_nofilter", "amber compress=True filters=False"

    def dump(self, obj: Any, path: Path) -> None:
        amber.dump(obj, path, compress=True, filters=False)


class AmberMmap(Amber):
    key, label = "amber_mmap", "amber mmap=True"
    mmap = True

    def load(self, path: Path) -> Any:
        return amber.load(path, mmap=True)


#: Every adapter, in table order.
ADAPTERS: tuple[Adapter, ...] = (
    Pickle5(),
    Joblib(),
    JoblibZ3(),
    Npy(),
    NpyMmap(),
    Amber(),
    AmberZ(),
    AmberZRaw(),
    AmberMmap(),
)
