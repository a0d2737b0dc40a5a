"""How the web app hands work to the compute side, per TRAIN_TRIGGER.

- embedded: worker processes on this machine run the job code (shared.worker): one for jobs,
  one for single-row predictions, so a prediction never waits behind a training job;
- storage: a ticket written to the jobs bucket (JOBS_URL), whose finalize event invokes the
  train function once per job; a search too long for an event-driven function (540 s) goes to
  the HTTP function instead when TRAIN_URL is set;
- http: POST to the train function (batch prediction jobs to the predict function), with a
  Google-signed ID token in cloud mode, from a background thread: no request waits for a job.

A function's refusal (4xx) comes back as FunctionRefused with its own message and status; a
function that is down, fails or does not answer as FunctionUnavailable. A job whose function
never took it is marked failed with that message, rather than left queued.

Single-row predictions go to the prediction worker (embedded) or the predict function. The web
app itself never imports scikit-learn. Every call here blocks: endpoints call it from the thread
pool, never from the event loop.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import urllib.error
import urllib.request
from concurrent.futures import Future
from typing import Any

from shared import worker
from shared.errors import FunctionRefused, FunctionUnavailable, MissionError
from shared.runs import BATCH, FAMILY_MODES, SEARCH, JobRequest, fail_unclaimed, ticket_key
from shared.settings import CLOUD, EVENT_FUNCTION_LIMIT_S, SEARCH_RESERVE_S, Settings, SettingsError
from shared.storage import Storage, open_storage

log = logging.getLogger("webapp.dispatch")
PREDICT_TIMEOUT_S = 60
JOB_TIMEOUT_S = 3600


class Dispatcher:
    def __init__(self, settings: Settings, results: Storage) -> None:
        self.settings = settings
        self.results = results
        embedded = settings.train_trigger == "embedded"
        self._jobs = worker.LocalWorker() if embedded else None
        self._predictions = worker.LocalWorker() if embedded else None
        # a comparison's families, side by side: one single-threaded process per core
        self._families = (
            worker.WorkerGroup(settings.compare_workers or len(os.sched_getaffinity(0))) if embedded else None
        )
        self._family_futures: dict[tuple[str, str], Future] = {}
        self._waiting: dict[tuple[str, str], Future] = {}  # the embedded worker's queue, in order
        self._waiting_lock = threading.Lock()
        self._tickets = None
        if settings.train_trigger == "storage":
            if not settings.jobs_url:
                raise SettingsError(
                    "TRAIN_TRIGGER=storage needs JOBS_URL, a bucket of its own for job tickets "
                    "(e.g. gs://my-mission-control-jobs), watched by the train function's trigger"
                )
            self._tickets = open_storage(settings.jobs_url)

    def start(self, job: JobRequest) -> None:
        s = self.settings
        if self._families is not None and job.mode in FAMILY_MODES:
            future = self._families.submit(
                worker.run, job.run_id, job.mode, s.storage_url, s.results_url, 1, resubmit_if_broken=True
            )
            with self._waiting_lock:
                self._family_futures[(job.run_id, job.mode)] = future
        elif self._jobs is not None:
            # if the worker dies, the job is handed to a new one once: it runs if it was still
            # queued, and does nothing if it was running (its status then shows it stalled)
            future = self._jobs.submit(
                worker.run,
                job.run_id,
                job.mode,
                s.storage_url,
                s.results_url,
                s.threads,
                resubmit_if_broken=True,
            )
            with self._waiting_lock:
                self._waiting.pop((job.run_id, job.mode), None)
                self._waiting[(job.run_id, job.mode)] = future
        elif self._tickets is not None and not self._too_long_for_an_event(job):
            ticket = {"run_id": job.run_id, "mode": job.mode, "attempt": job.attempt}
            self._tickets.write_bytes(
                ticket_key(job.run_id, job.mode, job.attempt),
                json.dumps(ticket).encode(),
                content_type="application/json",
            )
        else:
            # the function runs the job inside its request: that request is waited for by a
            # background thread, never by a request of the web app
            url = s.predict_url if job.mode == BATCH else s.train_url
            thread = threading.Thread(target=self._run_remotely, args=(url, job), daemon=True)
            thread.start()

    def warm_families(self) -> None:
        """Get the embedded worker group ready for a comparison (nothing elsewhere: functions
        start their own instances)."""
        if self._families is not None:
            self._families.warm()

    def jobs_ahead(self, run_id: str, mode: str) -> int | None:
        """How many jobs the embedded worker runs before this one (the one it is running counts);
        None when this process did not queue it or it is done (or jobs run elsewhere, where each
        gets an instance of its own and nothing waits)."""
        with self._waiting_lock:
            for key in [k for k, f in self._waiting.items() if f.done()]:
                del self._waiting[key]
            order = list(self._waiting)
            family = self._family_futures.get((run_id, mode))
        if family is not None and self._families is not None:
            return self._families.ahead_of(family)
        return order.index((run_id, mode)) if (run_id, mode) in order else None

    def _too_long_for_an_event(self, job: JobRequest) -> bool:
        """A search whose budget would not end before an event-driven function is stopped."""
        if job.mode != SEARCH or not self.settings.train_url:
            return False
        minutes = job.options.get("minutes", 10)
        return isinstance(minutes, int | float) and minutes * 60 + SEARCH_RESERVE_S > EVENT_FUNCTION_LIMIT_S

    def _run_remotely(self, url: str | None, job: JobRequest) -> None:
        try:
            self._post(url, {"run_id": job.run_id, "mode": job.mode}, JOB_TIMEOUT_S)
        except MissionError as error:
            fail_unclaimed(self.results, job.run_id, job.mode, job.attempt, str(error))

    def predict_rows(
        self, run_id: str, rows: list[dict[str, Any]], *, explain: bool = False
    ) -> list[dict[str, Any]]:
        if self._predictions is not None:
            results = self.settings.results_url
            return self._predictions.submit(worker.predict, run_id, results, rows, explain).result(
                timeout=PREDICT_TIMEOUT_S
            )
        body = {"run_id": run_id, "rows": rows, "explain": explain}
        return self._post(self.settings.predict_url, body, PREDICT_TIMEOUT_S)

    def _post(self, url: str | None, body: dict[str, Any], timeout: float) -> Any:
        """POST JSON to a function; FunctionRefused for its 4xx, FunctionUnavailable otherwise."""
        name = "the predict function" if url == self.settings.predict_url else "the train function"
        if not url:
            raise FunctionUnavailable(f"{name} is not configured (its URL is not set); tell the operator")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        try:
            if self.settings.mode == CLOUD:
                headers["Authorization"] = f"Bearer {_id_token(url)}"
            request = urllib.request.Request(
                url, data=json.dumps(body).encode(), headers=headers, method="POST"
            )
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            message = _error_message(error)
            if 400 <= error.code < 500 and error.code not in (408, 429):
                raise FunctionRefused(error.code, message) from None
            log.warning("%s answered %s: %s", url, error.code, message)
            raise FunctionUnavailable(f"{name} failed (HTTP {error.code}); try again in a minute") from None
        except (OSError, ValueError) as error:  # refused, unreachable, timed out, not JSON
            log.warning("calling %s failed: %r", url, error)
            raise FunctionUnavailable(f"{name} did not answer; try again in a minute") from None
        except Exception as error:  # e.g. no credentials for an ID token
            log.exception("calling %s failed", url)
            raise FunctionUnavailable(f"{name} could not be called ({type(error).__name__})") from None

    def shutdown(self) -> None:
        for pool in (self._jobs, self._predictions, self._families):
            if pool is not None:
                pool.shutdown()


def _error_message(error: urllib.error.HTTPError) -> str:
    """The function's own message ({"error": ...}), else its status line."""
    try:
        body = json.loads(error.read(64 * 1024))
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            return body["error"]
    except (OSError, ValueError):
        pass
    return f"HTTP {error.code} {error.reason}"


def _id_token(audience: str) -> str:
    """A Google-signed ID token for the web app's service account (Cloud Run metadata server)."""
    import google.auth.transport.requests
    import google.oauth2.id_token

    return google.oauth2.id_token.fetch_id_token(google.auth.transport.requests.Request(), audience)
