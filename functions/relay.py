"""Eventarc's part in the local cloud stack (`make stack`).

In the cloud, each object finalized in the jobs bucket becomes one CloudEvent that Eventarc
POSTs to the train function's event entry point, at least once. Here a thread lists the jobs
bucket on the storage emulator a few times a second and does the same: one
google.cloud.storage.object.v1.finalized event per new object generation, in binary content
mode (as Eventarc delivers it), retried with backoff while the function answers an error or
cannot be reached. Only the jobs bucket is watched, as only it carries a trigger in the cloud.
Given several instances of the function, each event goes to an idle one, one event per
instance at a time (Cloud Functions' default concurrency of 1), so jobs fan out as they would
over instances the platform starts.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime

from shared.storage import GCSStorage

FINALIZED = "google.cloud.storage.object.v1.finalized"
log = logging.getLogger("relay")


def finalize_event(bucket: str, name: str, generation: int, size: int) -> tuple[dict[str, str], bytes]:
    """Headers and body of a storage-finalize CloudEvent, as Eventarc delivers it."""
    headers = {
        "ce-id": uuid.uuid4().hex,
        "ce-specversion": "1.0",
        "ce-type": FINALIZED,
        "ce-source": f"//storage.googleapis.com/projects/_/buckets/{bucket}",
        "ce-subject": f"objects/{name}",
        "ce-time": datetime.now(UTC).isoformat(),
        "Content-Type": "application/json",
    }
    body = {
        "bucket": bucket,
        "name": name,
        "generation": str(generation),
        "metageneration": "1",
        "contentType": "application/json",
        "size": str(size),
    }
    return headers, json.dumps(body).encode()


class EventRelay:
    def __init__(self, storage: GCSStorage, targets: str | list[str], *, interval_s: float = 0.25) -> None:
        self.storage = storage
        self.bucket, _, prefix = storage.url.removeprefix("gs://").partition("/")
        self.prefix = f"{prefix}/" if prefix else ""
        self.targets = [targets] if isinstance(targets, str) else list(targets)
        self._idle: queue.Queue[str] = queue.Queue()
        for target in self.targets:
            self._idle.put(target)
        self.interval_s = interval_s
        self.delivered = 0  # events the function accepted
        self._seen: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="event-relay", daemon=True)

    def start(self) -> EventRelay:
        self._seen = self.storage.generations()  # what was there before the stack started fires nothing
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _watch(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                current = self.storage.generations()
            except Exception as error:  # the emulator stopping under us, at shutdown
                log.warning("listing %s failed: %r", self.storage.url, error)
                continue
            for key, generation in sorted(current.items()):
                if self._seen.get(key) != generation:
                    self._seen[key] = generation
                    threading.Thread(target=self._deliver, args=(key, generation), daemon=True).start()

    def _deliver(self, key: str, generation: int) -> None:
        name = self.prefix + key
        headers, body = finalize_event(self.bucket, name, generation, self.storage.stat(key).size)
        delay = 1.0
        while not self._stop.is_set():
            try:
                target = self._idle.get(timeout=1.0)  # an instance that is not serving an event
            except queue.Empty:
                continue
            request = urllib.request.Request(target, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=3600):
                    self.delivered += 1
                    print(f"event   gs://{self.bucket}/{name} -> {target}", flush=True)
                    return
            except (urllib.error.URLError, OSError) as error:
                print(f"event   gs://{self.bucket}/{name}: {error}; again in {delay:.0f} s", flush=True)
            finally:
                self._idle.put(target)
            if self._stop.wait(delay):
                return
            delay = min(delay * 2, 60.0)
