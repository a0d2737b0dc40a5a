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
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@contextmanager
def compute_threads(cores: int | None = None) -> Iterator[int]:
    """Limit BLAS to one thread and OpenMP to ``cores``; yields the core count to use for n_jobs."""
    cores = cores or available_cores()
    with threadpool_limits(limits=1, user_api="blas"), threadpool_limits(limits=cores, user_api="openmp"):
        yield cores
