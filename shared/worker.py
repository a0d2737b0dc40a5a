"""The embedded default's worker: a separate process on this machine running the job code.

Importing this module stays light (no scikit-learn): the web app imports it to hand jobs to
a process pool; the heavy modules load in the worker process only.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from shared.processes import exit_with_parent

log = logging.getLogger(__name__)


def run(run_id: str, mode: str, storage_url: str, results_url: str, threads: int = 0) -> str:
    """Entry point in the worker process; returns the job's final state."""
    from shared.jobs import run_job
    from shared.storage import open_storage

    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(levelname)s %(message)s")
    status = run_job(run_id, mode, open_storage(storage_url), open_storage(results_url), threads=threads)
    return status.state if status else "unknown"


def warm() -> None:
    """Load the job code (scikit-learn and the rest) in a worker process before its first job."""
    import shared.jobs  # noqa: F401


def ingest(storage_url: str, path: str, name: str) -> tuple[str, str]:
    """An upload (a file the web app spooled to disk) read and stored as a dataset, in a process
    of its own: parsing a large CSV holds its interpreter's lock for long stretches, which in the
    web app's process would stall every request. Returns (dataset id, name); DataError if unusable."""
    from pathlib import Path

    from shared.sources import ingest_upload
    from shared.storage import open_storage

    info = ingest_upload(open_storage(storage_url), Path(path).read_bytes(), name)
    return info.id, info.name


def ingest_stored(storage_url: str, name: str, max_bytes: int) -> tuple[str, str]:
    """A table the user copied into storage's imports/ folder, read and stored as a dataset in
    this process (see ``ingest``). Returns (dataset id, name); DataError if unusable."""
    from shared.sources import ingest_stored as ingest_from_storage
    from shared.storage import open_storage

    info = ingest_from_storage(open_storage(storage_url), name, max_bytes)
    return info.id, info.name


def predict(
    run_id: str, results_url: str, rows: list[dict[str, Any]], explain: bool = False
) -> list[dict[str, Any]]:
    """Single-row (or few-row) prediction in the worker, where the model cache lives."""
    from shared.predict import load_model, predict_rows
    from shared.storage import open_storage

    bundle = load_model(open_storage(results_url), run_id)
    return predict_rows(bundle, rows, explain=explain).to_dict("records")


WORKER_NICENESS = 10


def _worker_process(parent: int) -> None:
    """In each worker process: end with the web app, and leave it the CPU when both want it (the
    pages stay quick while a model trains on the same machine)."""
    exit_with_parent(parent)
    os.nice(WORKER_NICENESS)


class LocalWorker:
    """One worker process (fits use every core), recreated if it dies mid-job.

    When the process dies (killed, out of memory), the pool is broken for good: every pending
    future fails with BrokenProcessPool and ``submit`` would raise it. The broken pool is dropped
    as soon as one of its futures reports it, and ``submit`` starts a fresh one if it still meets
    it; ``resubmit_if_broken`` hands a call whose pool broke under it to the fresh pool once
    (safe for jobs: a job that was running claims nothing a second time).
    """

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                spawn = multiprocessing.get_context("spawn")
                self._pool = ProcessPoolExecutor(
                    max_workers=1, mp_context=spawn, initializer=_worker_process, initargs=(os.getpid(),)
                )
                self._closed = False
            return self._pool

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        """Forget a broken ``pool`` if it is still the current one (another thread may have replaced
        it already). A broken pool has cleaned up after itself: its manager thread ends it."""
        with self._lock:
            if self._pool is pool:
                self._pool = None

    def submit(self, fn: Any, *args: Any, resubmit_if_broken: bool = False) -> Future:
        pool = self._executor()
        try:
            future = pool.submit(fn, *args)
        except BrokenProcessPool:  # the worker was killed: start a fresh one
            log.warning("the worker process died; starting a new one")
            self._discard(pool)
            pool = self._executor()
            future = pool.submit(fn, *args)
        future.add_done_callback(functools.partial(self._done, pool, fn, args, resubmit_if_broken))
        return future

    def _done(self, pool: ProcessPoolExecutor, fn: Any, args: tuple, resubmit: bool, future: Future) -> None:
        if future.cancelled() or not isinstance(future.exception(), BrokenProcessPool):
            return
        log.warning("the worker process died while running %s%r", getattr(fn, "__name__", fn), args)
        self._discard(pool)
        if resubmit and not self._closed:  # (not after shutdown)
            # Not from this callback's thread (the dying pool's manager): from a thread of its own.
            threading.Thread(target=self.submit, args=(fn, *args), daemon=True, name="resubmit").start()

    def shutdown(self) -> None:
        """Stop the worker process now, even mid-job: a job it was running shows as stalled and
        can be restarted. (The pool itself would let a running job finish after the app is gone.)"""
        with self._lock:
            pool, self._pool, self._closed = self._pool, None, True
        if pool is None:
            return
        processes = list((pool._processes or {}).values())  # the executor has no public handle on them
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join()


class WorkerGroup:
    """Several one-process workers side by side, for jobs that fan out (a comparison's families,
    one single-threaded process each). Each worker is its own pool, so a worker that dies loses
    only the job it was running; a job goes to the worker with the fewest unfinished jobs."""

    def __init__(self, size: int) -> None:
        self.workers = [LocalWorker() for _ in range(max(1, size))]
        self._queues: list[list[Future]] = [[] for _ in self.workers]  # each worker's, in order
        self._lock = threading.Lock()
        self._cold = True

    def _prune(self) -> None:
        for queue in self._queues:
            queue[:] = [f for f in queue if not f.done()]

    def submit(self, fn: Any, *args: Any, resubmit_if_broken: bool = False) -> Future:
        with self._lock:
            self._prune()
            index = min(range(len(self.workers)), key=lambda i: len(self._queues[i]))
            future = self.workers[index].submit(fn, *args, resubmit_if_broken=resubmit_if_broken)
            self._queues[index].append(future)
        return future

    def warm(self) -> None:
        """Start every worker and load the job code in it, once, ahead of the first fan-out (a
        person on the model step is about to compare)."""
        with self._lock:
            cold, self._cold = self._cold, False
        if cold:
            for worker in self.workers:
                worker.submit(warm)

    def ahead_of(self, future: Future) -> int | None:
        """How many jobs its worker runs before this one (the one running counts); None once done."""
        with self._lock:
            self._prune()
            for queue in self._queues:
                if future in queue:
                    return queue.index(future)
        return None

    def shutdown(self) -> None:
        for worker in self.workers:
            worker.shutdown()
