"""The embedded default's worker: a separate process on this machine running the job code.

Importing this module stays light (no scikit-learn): the web app imports it to hand jobs to
a process pool; the heavy modules load in the worker process only.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any


def run(run_id: str, mode: str, storage_url: str, results_url: str, threads: int = 0) -> str:
    """Entry point in the worker process; returns the job's final state."""
    from shared.jobs import run_job
    from shared.storage import open_storage

    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(levelname)s %(message)s")
    status = run_job(run_id, mode, open_storage(storage_url), open_storage(results_url), threads=threads)
    return status.state if status else "unknown"


def predict(
    run_id: str, results_url: str, rows: list[dict[str, Any]], explain: bool = False
) -> list[dict[str, Any]]:
    """Single-row (or few-row) prediction in the worker, where the model cache lives."""
    from shared.predict import load_model, predict_rows
    from shared.storage import open_storage

    bundle = load_model(open_storage(results_url), run_id)
    return predict_rows(bundle, rows, explain=explain).to_dict("records")


def predict_file(run_id: str, storage_url: str, results_url: str, key: str) -> str:
    """Batch prediction of an uploaded CSV in storage; returns the output's key."""
    from shared.predict import load_model, predict_stored
    from shared.storage import open_storage

    return predict_stored(load_model(open_storage(results_url), run_id), open_storage(storage_url), key)


class LocalWorker:
    """One worker process (fits use every core), recreated if it dies mid-job."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                spawn = multiprocessing.get_context("spawn")
                self._pool = ProcessPoolExecutor(max_workers=1, mp_context=spawn)
            return self._pool

    def submit(self, fn: Any, *args: Any) -> Future:
        try:
            return self._executor().submit(fn, *args)
        except BrokenProcessPool:  # the worker was killed: start a fresh one
            with self._lock:
                self._pool = None
            return self._executor().submit(fn, *args)

    def shutdown(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
