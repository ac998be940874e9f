"""Where amber's C twins come from: one lookup for every pure-Python function that has one."""

from __future__ import annotations

import importlib
import os
from typing import Any

__all__ = ["compiled"]


def compiled(name: str, module: str = "amber._speedups") -> Any:
    """The C function ``name`` of ``module``; None when ``AMBER_PURE_PYTHON`` is set or the
    module was not built (no compiler at install time), and the Python twin is used."""
    if os.environ.get("AMBER_PURE_PYTHON"):
        return None
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None
