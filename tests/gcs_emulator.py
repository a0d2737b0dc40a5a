"""A real fake-gcs-server for the tests, started once per session.

Plain helper, not a pytest plugin: ``tests/conftest.py`` imports the ``gcs_emulator`` fixture.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from functions.emulator import Emulator
from tests.processes import free_port


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


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GCSEmulator]:
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    server = Emulator(tmp_path_factory.mktemp("gcs") / "data", free_port()).start()
    os.environ["STORAGE_EMULATOR_HOST"] = server.url
    try:
        yield GCSEmulator(server.url)
    finally:
        server.stop()
        if previous is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = previous
