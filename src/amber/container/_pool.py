"""Shared thread pools; hashing and (de)compression release the GIL.

``pool()`` has one worker per core for compression. ``hasher()`` has a single worker:
checksums run beside the thread that writes (one core each), which is faster than
spreading them over every core and starving that thread. ``read_helper()`` reads (and
hashes) parts of a large read beside the loading thread.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

__all__ = ["WORKERS", "hasher", "in_parts", "io_thread", "pool", "read_helper"]

WORKERS = max(2, min(8, os.cpu_count() or 2))


class _Pool(ThreadPoolExecutor):
    """A thread pool whose ``submit`` runs the job at once, on the calling thread, when the
    pool can take no more work (the interpreter is shutting down: a load or dump from an
    ``atexit`` handler still works, on one thread)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        try:
            return super().submit(fn, *args, **kwargs)
        except RuntimeError:  # "cannot schedule new futures after (interpreter) shutdown"
            fut: Future[Any] = Future()
            try:
                fut.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # noqa: BLE001 - the job's error is the future's
                fut.set_exception(exc)
            return fut


_pools: dict[str, ThreadPoolExecutor] = {}
_lock = threading.Lock()


def _forget_pools() -> None:
    """In a forked child: the pools' threads stayed in the parent, so work queued on the
    inherited pools would never run (and what it references never be freed); the child
    starts new pools when it first needs them."""
    global _lock
    _pools.clear()
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pools)


def _get(name: str, workers: int) -> ThreadPoolExecutor:
    ex = _pools.get(name)
    if ex is None:
        with _lock:
            ex = _pools.get(name)
            if ex is None:
                ex = _pools[name] = _Pool(workers, thread_name_prefix=f"amber-{name}")
    return ex


def pool() -> ThreadPoolExecutor:
    return _get("codec", WORKERS)


def hasher() -> ThreadPoolExecutor:
    return _get("hash", 1)


def io_thread() -> ThreadPoolExecutor:
    """One thread for file writes: jobs run one after another, in the order submitted."""
    return _get("io", 1)


def read_helper() -> ThreadPoolExecutor:
    """One thread that takes parts of every large read (see :func:`in_parts`)."""
    return _get("read", 1)


def in_parts(parts: Sequence[Callable[[], None]]) -> None:
    """Run ``parts`` (independent jobs: the pieces of a large read) on this thread and the
    read helper thread, each taking the next part nobody has taken yet: copying from the
    page cache is bound by one core's memory throughput, and two cores read a 45 MB file
    in 8-10 ms where one takes 13-16 ms. A helper that starts late (it serves another
    load) or gets no core (the machine is busy) takes fewer parts or none, instead of
    making this thread wait for a fixed half. Returns only once no part is running, even
    when interrupted (the parts read into the caller's buffers from the caller's file,
    which the caller closes as soon as this returns); after a failure no new part starts,
    and the error of the lowest failed part is raised."""
    n = len(parts)
    if n < 2:
        for part in parts:
            part()
        return
    taken = itertools.count()  # (next() on it is atomic: each part is taken once)
    errors: list[tuple[int, BaseException]] = []

    def work() -> None:
        for i in taken:
            if i >= n or errors:
                return
            try:
                parts[i]()
            except BaseException as exc:  # noqa: BLE001 - raised by in_parts, lowest part first
                errors.append((i, exc))
                return

    fut = read_helper().submit(work)
    try:
        work()
    finally:
        if not fut.cancel():
            _finish(fut)
    if errors:
        raise min(errors, key=lambda e: e[0])[1]


def _finish(fut: Future[Any]) -> None:
    """Wait until ``fut`` is done; an interruption meanwhile (KeyboardInterrupt) is raised
    once it is."""
    interrupted: BaseException | None = None
    while not fut.done():
        try:
            wait([fut])
        except BaseException as exc:  # noqa: BLE001 - re-raised below, after the wait
            interrupted = exc
    if interrupted is not None:
        raise interrupted
