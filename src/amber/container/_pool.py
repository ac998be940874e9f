"""Shared thread pools; hashing and (de)compression release the GIL.

``pool()`` has one worker per core for compression. ``hasher()`` has a single worker:
checksums run beside the thread that reads or writes (one core each), which is faster than
spreading them over every core and starving that thread.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

__all__ = ["WORKERS", "hasher", "io_thread", "pool"]

WORKERS = max(2, min(8, os.cpu_count() or 2))
_pools: dict[str, ThreadPoolExecutor] = {}
_lock = threading.Lock()


def _get(name: str, workers: int) -> ThreadPoolExecutor:
    ex = _pools.get(name)
    if ex is None:
        with _lock:
            ex = _pools.get(name)
            if ex is None:
                ex = _pools[name] = ThreadPoolExecutor(workers, thread_name_prefix=f"amber-{name}")
    return ex


def pool() -> ThreadPoolExecutor:
    return _get("codec", WORKERS)


def hasher() -> ThreadPoolExecutor:
    return _get("hash", 1)


def io_thread() -> ThreadPoolExecutor:
    """One thread for file writes: jobs run one after another, in the order submitted."""
    return _get("io", 1)
