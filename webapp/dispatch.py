"""How the web app hands work to the compute side, per TRAIN_TRIGGER.

- embedded: worker processes on this machine run the job code (shared.worker): one for jobs,
  one for single-row predictions, so a prediction never waits behind a training job;
- http: POST to the train function (batch prediction jobs to the predict function), with a
  Google-signed ID token in cloud mode, from a background thread: no request waits for a job;
- storage: nothing to do; writing the job request fired the bucket's finalize event.

Single-row predictions go to the prediction worker (embedded) or the predict function. The web
app itself never imports scikit-learn. Every call here blocks: endpoints call it from the thread
pool, never from the event loop.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.request
from typing import Any

from shared import worker
from shared.runs import BATCH
from shared.settings import CLOUD, Settings

log = logging.getLogger("webapp.dispatch")
PREDICT_TIMEOUT_S = 60
JOB_TIMEOUT_S = 3600


class Dispatcher:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        embedded = settings.train_trigger == "embedded"
        self._jobs = worker.LocalWorker() if embedded else None
        self._predictions = worker.LocalWorker() if embedded else None

    def start(self, run_id: str, mode: str) -> None:
        s = self.settings
        if self._jobs is not None:
            # if the worker dies, the job is handed to a new one once: it runs if it was still
            # queued, and does nothing if it was running (its status then shows it stalled)
            self._jobs.submit(
                worker.run, run_id, mode, s.storage_url, s.results_url, s.threads, resubmit_if_broken=True
            )
        elif s.train_trigger == "http":
            # the function runs the job inside its request: that request is waited for by a
            # background thread, never by a request of the web app
            url = s.predict_url if mode == BATCH else s.train_url
            body = {"run_id": run_id, "mode": mode}
            threading.Thread(target=self._post, args=(url, body, JOB_TIMEOUT_S), daemon=True).start()

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
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.settings.mode == CLOUD:
            headers["Authorization"] = f"Bearer {_id_token(url)}"
        request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return json.loads(response.read())
        except Exception:
            log.exception("calling %s failed", url)
            raise

    def shutdown(self) -> None:
        for pool in (self._jobs, self._predictions):
            if pool is not None:
                pool.shutdown()


def _id_token(audience: str | None) -> str:
    """A Google-signed ID token for the web app's service account (Cloud Run metadata server)."""
    import google.auth.transport.requests
    import google.oauth2.id_token

    return google.oauth2.id_token.fetch_id_token(google.auth.transport.requests.Request(), audience)
