"""Deliberate thread limits for fitting and predicting.

On a small machine, OpenBLAS's own threads fight the process for cores: a LogisticRegression
fit on the KOI table took ten times longer with default BLAS threading than with one thread.
BLAS gets one thread; OpenMP (used by HistGradientBoosting) and joblib get the cores.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from threadpoolctl import threadpool_limits


def available_cores() -> int:
    """The cores this process may use: its CPU affinity, capped by OMP_NUM_THREADS when set (the
    usual way to tell a process to leave room for others, e.g. several test workers at once)."""
    try:
        cores = max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        cores = max(1, os.cpu_count() or 1)
    cap = os.environ.get("OMP_NUM_THREADS", "").strip()
    return min(cores, int(cap)) if cap.isdigit() and int(cap) > 0 else cores


@contextmanager
def compute_threads(cores: int | None = None) -> Iterator[int]:
    """Limit BLAS to one thread and OpenMP to ``cores`` (at most the available cores); yields the
    core count to use for n_jobs."""
    cores = min(cores or available_cores(), available_cores())
    with threadpool_limits(limits=1, user_api="blas"), threadpool_limits(limits=cores, user_api="openmp"):
        yield cores
