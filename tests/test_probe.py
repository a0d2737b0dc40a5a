"""Nothing waits for anything heavy: while a 50 MB upload, a 40 MB batch prediction and 20
browsers polling job fragments all hit one real web app process at once, a health probe from
another process keeps being answered at once, no answer is a 5xx, and nothing stored is lost.

Timing is the point here, so this runs alone (marker ``solo``: `make test` runs it after the
parallel run), on the app served by `python -m tests.loop_watch` (the web app as `python -m webapp`
serves it, with asyncio's report of any callback holding the loop over 50 ms written to its log).
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
import textwrap
import threading
import time

import httpx2 as httpx
import pytest

from shared.processes import spawn, stop
from shared.runs import load_spec
from shared.storage import LocalStorage
from tests.browser import app_env, wait_healthy
from tests.nasa import KOI_PATH
from tests.processes import ROOT, free_port

pytestmark = [pytest.mark.solo, pytest.mark.slow]
HX = {"HX-Request": "true"}
PROBE = textwrap.dedent(
    """
    import sys, time, http.client
    port, seconds, out = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    times, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        start = time.perf_counter()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/healthz")
        status = connection.getresponse().status
        connection.close()
        times.append((time.perf_counter() - start, status))
        time.sleep(0.02)
    open(out, "w").write("\\n".join(f"{t} {s}" for t, s in times))
    """
)


def _koi_body() -> bytes:
    return b"".join(
        line for line in KOI_PATH.read_bytes().splitlines(keepends=True) if not line.startswith(b"#")
    )


def _repeated(body: bytes, size: int) -> bytes:
    header, _, rows = body.partition(b"\n")
    copies = size // len(rows) + 1
    return header + b"\n" + rows * copies


class Statuses:
    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []
        self.lock = threading.Lock()

    def note(self, what: str, response: httpx.Response) -> httpx.Response:
        with self.lock:
            self.seen.append((what, response.status_code))
        return response


def _client(url: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=300)
    page = client.get("/").text
    client.headers["X-CSRF-Token"] = re.search(r'"X-CSRF-Token": "([0-9a-f]+)"', page).group(1)
    return client


def _follow(client: httpx.Client, path: str, timeout: float = 300) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = client.get(path, headers=HX).text
        if 'hx-trigger="every 1s"' not in text:
            return text
        assert time.monotonic() < deadline, f"{path} still running"
        time.sleep(0.3)


def test_health_stays_instant_under_a_big_upload_a_big_batch_and_pollers(tmp_path):
    port, storage = free_port(), tmp_path / "storage"
    env = {**app_env(port, storage, max_upload_mb=64)}
    app = spawn([sys.executable, "-m", "tests.loop_watch"], cwd=ROOT, env=env, log=tmp_path / "app.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url + "/", app, tmp_path / "app.log")
        client = _client(url)
        started = client.post("/start", data={"dataset": "kepler"})
        run_id = re.search(r"/runs/(r[0-9a-f]{32})/", started.headers["location"]).group(1)
        model = {"family": "logistic_regression", "C": "1.0", "penalty": "l2", "l1_ratio": "0.5", "max_iter": "2000",
                 "selection": "none", "strength": "1"}  # fmt: skip
        assert client.post(f"/runs/{run_id}/model", data=model).status_code == 303
        assert client.post(f"/runs/{run_id}/jobs/final", headers=HX).status_code == 200
        assert 'data-state="succeeded"' in _follow(client, f"/runs/{run_id}/jobs/final")
        spec_before = load_spec(LocalStorage(storage), run_id)

        koi = _koi_body()
        upload, batch = _repeated(koi, 50 * 1024 * 1024), _repeated(koi, 40 * 1024 * 1024)
        statuses, stopping = Statuses(), threading.Event()
        probe_out = tmp_path / "probe.txt"
        probe = subprocess.Popen([sys.executable, "-c", PROBE, str(port), "25", str(probe_out)])

        def send_upload() -> None:
            own = _client(url)
            try:
                statuses.note("upload", own.post("/upload", files={"file": ("big.csv", upload, "text/csv")}))
            finally:
                own.close()

        def send_batch() -> None:
            files = {"file": ("batch.csv", batch, "text/csv")}
            statuses.note("batch", client.post(f"/runs/{run_id}/predict/batch", files=files, headers=HX))

        def poll() -> None:
            own = _client(url)  # a browser of its own, waiting on its own run's job and on the batch
            try:
                made = own.post("/start", data={"dataset": "kepler"}).headers["location"]
                mine = re.search(r"/runs/(r[0-9a-f]{32})/", made).group(1)
                while not stopping.is_set():
                    statuses.note("fragment", own.get(f"/runs/{mine}/jobs/evaluate", headers=HX))
                    statuses.note("fragment", client.get(f"/runs/{run_id}/jobs/batch", headers=HX))
                    time.sleep(1.0)  # as htmx polls
            finally:
                own.close()

        workers = [threading.Thread(target=send_upload), threading.Thread(target=send_batch)]
        pollers = [threading.Thread(target=poll) for _ in range(20)]
        for thread in workers:
            thread.start()
        for thread in pollers:  # browsers arriving over a few seconds, as people do
            thread.start()
            time.sleep(0.1)
        for thread in workers:
            thread.join(timeout=240)
        done = _follow(client, f"/runs/{run_id}/jobs/batch")
        stopping.set()
        for thread in pollers:
            thread.join(timeout=60)
        probe.wait(timeout=120)

        probes = [line.split() for line in probe_out.read_text().splitlines()]
        latencies = sorted(float(seconds) for seconds, _ in probes)
        assert {status for _, status in probes} == {"200"}
        p99 = latencies[int(0.99 * (len(latencies) - 1))]
        print(f"\n/healthz: {len(latencies)} probes, median {1000 * statistics.median(latencies):.1f} ms, "
              f"p99 {1000 * p99:.1f} ms, max {1000 * latencies[-1]:.1f} ms")  # fmt: skip
        assert latencies[-1] < 0.100 and p99 < 0.050, latencies[-10:]
        assert not [s for s in statuses.seen if s[1] >= 500], statuses.seen
        assert ("upload", 303) in statuses.seen and ("batch", 200) in statuses.seen  # stored, and started
        assert len([s for s in statuses.seen if s[0] == "fragment"]) > 100
        rows = len(batch.splitlines()) - 1
        assert 'data-state="succeeded"' in done and f"Predicted {rows:,} rows" in done
        assert load_spec(LocalStorage(storage), run_id) == spec_before  # nothing stored was lost
        held = [line for line in (tmp_path / "app.log").read_text().splitlines() if "HELD THE LOOP" in line]
        assert held == []
        client.close()
    finally:
        stop(app)
