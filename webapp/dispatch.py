"""How the web app hands work to the compute side, per TRAIN_TRIGGER.

- embedded: a worker process on this machine runs the job code (shared.worker);
- http: POST to the train function (with a Google-signed ID token in cloud mode);
- storage: nothing to do; writing the job request fired the bucket's finalize event.

Single-row predictions go to the worker (embedded) or the predict function. The web app
itself never imports scikit-learn.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.request
from typing import Any

from shared import worker
from shared.predict import output_key
from shared.settings import CLOUD, Settings

log = logging.getLogger("webapp.dispatch")
PREDICT_TIMEOUT_S = 60
PREDICT_STORED_TIMEOUT_S = 600


class Dispatcher:
    def __init__(self, settings: Settings, storage_uri: Any = None) -> None:
        self.settings = settings
        self.storage_uri = storage_uri  # key -> URI in the data storage, for the predict function
        self._worker = worker.LocalWorker() if settings.train_trigger == "embedded" else None

    def start(self, run_id: str, mode: str) -> None:
        if self._worker is not None:
            s = self.settings
            # if the worker dies, the job is handed to a new one once: it runs if it was still
            # queued, and does nothing if it was running (its status then shows it stalled)
            self._worker.submit(
                worker.run, run_id, mode, s.storage_url, s.results_url, s.threads, resubmit_if_broken=True
            )
        elif self.settings.train_trigger == "http":
            # the function runs the job inside the request: wait for it off the event loop
            body = {"run_id": run_id, "mode": mode}
            threading.Thread(
                target=self._post, args=(self.settings.train_url, body, 3600), daemon=True
            ).start()

    def predict_rows(
        self, run_id: str, rows: list[dict[str, Any]], *, explain: bool = False
    ) -> list[dict[str, Any]]:
        if self._worker is not None:
            future = self._worker.submit(worker.predict, run_id, self.settings.results_url, rows, explain)
            return future.result(timeout=PREDICT_TIMEOUT_S)
        body = {"run_id": run_id, "rows": rows, "explain": explain}
        return self._post(self.settings.predict_url, body, PREDICT_TIMEOUT_S)

    def predict_stored(self, run_id: str, key: str) -> str:
        """Predict an uploaded CSV in the data storage; returns the output's key."""
        s = self.settings
        if self._worker is not None:
            return self._worker.submit(worker.predict_file, run_id, s.storage_url, s.results_url, key).result(
                timeout=PREDICT_STORED_TIMEOUT_S
            )
        self._post(s.predict_url, {"run_id": run_id, "uri": self.storage_uri(key)}, PREDICT_STORED_TIMEOUT_S)
        return output_key(key)

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
        if self._worker is not None:
            self._worker.shutdown()


def _id_token(audience: str | None) -> str:
    """A Google-signed ID token for the web app's service account (Cloud Run metadata server)."""
    import google.auth.transport.requests
    import google.oauth2.id_token

    return google.oauth2.id_token.fetch_id_token(google.auth.transport.requests.Request(), audience)
