"""Run per-file work on a few threads, in order, stopping at the first failure."""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def run_parallel(items: Sequence[T], work: Callable[[T], R], jobs: int) -> list[R]:
    """``[work(item) for item in items]`` on up to ``jobs`` threads, results in order.

    Workers pull the next index from a shared counter (no future per item). The
    first failure stops the others after their current item and is raised; on
    Ctrl-C the workers stop the same way before the interrupt propagates.
    """
    if jobs <= 1 or len(items) < 2:
        return [work(item) for item in items]
    results: list[Any] = [None] * len(items)
    indices = itertools.count()  # next() on itertools.count is atomic in CPython
    stop = threading.Event()

    def worker() -> None:
        while not stop.is_set():
            index = next(indices)
            if index >= len(items):
                return
            try:
                results[index] = work(items[index])
            except BaseException:
                stop.set()
                raise

    pool = ThreadPoolExecutor(max_workers=min(jobs, len(items)))
    try:
        futures = [pool.submit(worker) for _ in range(min(jobs, len(items)))]
        for future in futures:
            future.result()
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
    return results


# Below this time per item the work is short system calls on cached metadata, where a second
# thread only adds GIL hand-offs; above it the disk or network is slow and threads overlap it.
SLOW_ITEM_S = 50e-6
_SAMPLE = 256


def run_adaptive(items: Sequence[T], work: Callable[[T], R], jobs: int) -> list[R]:
    """Like ``run_parallel``, but threads only when a serial sample shows slow items."""
    started = time.perf_counter()
    results = [work(item) for item in items[:_SAMPLE]]
    per_item = (time.perf_counter() - started) / max(1, len(results))
    rest = items[_SAMPLE:]
    results += run_parallel(rest, work, jobs if per_item > SLOW_ITEM_S and len(rest) >= 64 else 1)
    return results


def run_tuned(items: Sequence[T], work: Callable[[T], R], jobs: int, weight: Callable[[T], int]) -> list[R]:
    """Like ``run_parallel``, choosing between one thread and ``jobs`` threads by measuring both.

    Copying is I/O in the kernel plus hashing outside the GIL, so threads usually help; on
    some machines (VMs whose page-cache writes contend across CPUs) one thread is faster.
    A first slice runs on one thread, a second on ``jobs`` threads; the rest uses whichever
    moved more bytes per second.
    """
    slice_size = max(8, len(items) // 25)
    if jobs <= 1 or len(items) < 6 * slice_size:
        return run_parallel(items, work, jobs)

    def timed(chunk: Sequence[T], workers: int) -> tuple[list[R], float]:
        started = time.perf_counter()
        done = run_parallel(chunk, work, workers)
        seconds = max(time.perf_counter() - started, 1e-9)
        return done, sum(weight(item) for item in chunk) / seconds

    serial, serial_rate = timed(items[:slice_size], 1)
    parallel, parallel_rate = timed(items[slice_size : 3 * slice_size], jobs)
    rest = run_parallel(items[3 * slice_size :], work, jobs if parallel_rate >= serial_rate else 1)
    return [*serial, *parallel, *rest]


def default_jobs() -> int:
    """The CPUs this process may run on (affinity, cgroup-limited containers), not the host's count."""
    if hasattr(os, "process_cpu_count"):  # Python 3.13+
        return os.process_cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1
