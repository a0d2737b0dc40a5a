"""Many concurrent wizard sessions against the real app on 127.0.0.1, for a bounded time.

Run with `.venv/bin/python bench/load.py [--sessions 24] [--seconds 30]` (`make bench` runs it
with the other scripts).

What it does:

1. Starts the app as `make run` would (one uvicorn process) with the embedded training
   worker, on a free port with a temporary STORAGE_URL (the same launcher as
   bench/web_latency.py).
2. Runs N browser sessions at once, each with its own cookie jar and CSRF token. Each session
   loops until the time is up: upload a small CSV (300 rows, its own random numbers), choose
   the target, open the features and model steps, save a model, queue an evaluation (the
   first two loops only: one training worker serves them all), poll its status fragment once,
   open the history page. Every request's status and latency is kept.
3. Then checks, as each session: every run it created is listed on its history page and
   nobody else's is; another session's run answers 404; every run's spec is intact; every
   queued evaluation ends (succeeded) within the drain time, so none was lost.
4. Against the same client code, a bare Starlette app (one PlainTextResponse route, same
   uvicorn launcher) gives the baseline latency; the report prints both and their ratio.

Goal: zero 5xx answers, zero lost or mixed runs. Latency is reported, not judged: the
machine's cores are shared with the training worker on purpose.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx2 as httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from web_latency import BARE, WEBAPP, app_env, model_form, serve  # noqa: E402

HTMX = {"HX-Request": "true"}
CSRF = re.compile(r'"X-CSRF-Token": "([0-9a-f]{40})"')
RUN_ID = re.compile(r"/runs/(r[0-9a-f]{32})/")
DRAIN_S = 600
EVALUATIONS_PER_SESSION = 2
PLAN = {"method": "holdout", "test_size": "0.25", "stratified": "on", "group_column": "", "seed": "7"}
BARE_APP = """
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

async def hello(request):
    return PlainTextResponse("hello")

def create_app():
    return Starlette(routes=[Route("/", hello)])
"""


@dataclass
class Tally:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    async def request(self, client: httpx.AsyncClient, method: str, path: str, **kwargs) -> httpx.Response:
        started = time.perf_counter()
        response = await client.request(method, path, **kwargs)
        self.latencies_ms.append((time.perf_counter() - started) * 1000)
        self.statuses[response.status_code] += 1
        if response.status_code >= 500:
            self.failures.append(f"{method} {path}: {response.status_code} {response.text[:200]}")
        return response


def small_csv(seed: int) -> bytes:
    rng = random.Random(seed)
    lines = ["period,depth,duration,radius,temperature,label"]
    for _ in range(300):
        planet = rng.random() < 0.4
        period = rng.uniform(1, 50) * (1.5 if planet else 1)
        depth = rng.gauss(500 if planet else 2000, 300)
        lines.append(
            f"{period:.3f},{depth:.1f},{rng.uniform(1, 8):.2f},{rng.uniform(0.5, 3):.2f},"
            f"{rng.uniform(3000, 7000):.0f},{'planet' if planet else 'false positive'}"
        )
    return ("\n".join(lines) + "\n").encode()


async def session(
    number: int, base_url: str, deadline: float, tally: Tally
) -> tuple[httpx.AsyncClient, list[str]]:
    client = httpx.AsyncClient(base_url=base_url, timeout=60)
    page = await tally.request(client, "GET", "/")
    client.headers["X-CSRF-Token"] = CSRF.search(page.text).group(1)
    runs: list[str] = []
    evaluated: list[str] = []
    loop = 0
    while time.monotonic() < deadline:
        loop += 1
        files = {"file": (f"session{number}-{loop}.csv", small_csv(number * 1000 + loop), "text/csv")}
        uploaded = await tally.request(client, "POST", "/upload", files=files, headers=HTMX)
        if uploaded.status_code != 204:
            tally.failures.append(f"upload: {uploaded.status_code} {uploaded.text[:200]}")
            continue
        run = RUN_ID.search(json.loads(uploaded.headers["HX-Location"])["path"] + "/").group(1)
        runs.append(run)
        await tally.request(client, "GET", f"/runs/{run}/dataset")
        await tally.request(
            client, "POST", f"/runs/{run}/features/target", data={"target": "label"}, headers=HTMX
        )
        await tally.request(client, "GET", f"/runs/{run}/features", headers=HTMX)
        await tally.request(client, "GET", f"/runs/{run}/model")
        await tally.request(client, "POST", f"/runs/{run}/model", data=model_form(), headers=HTMX)
        if loop <= EVALUATIONS_PER_SESSION:  # the queue is one training worker: keep it drainable
            queued = await tally.request(client, "POST", f"/runs/{run}/evaluate", data=PLAN, headers=HTMX)
            if queued.status_code != 200:
                tally.failures.append(f"evaluate {run}: {queued.status_code} {queued.text[:200]}")
            evaluated.append(run)
            await tally.request(client, "GET", f"/runs/{run}/jobs/evaluate", headers=HTMX)
        await tally.request(client, "GET", "/runs/")
    return client, runs, evaluated


async def verify(clients: list[tuple[httpx.AsyncClient, list[str], list[str]]]) -> dict[str, int]:
    """Each session sees its own runs and nobody else's; every evaluation finishes."""
    mixed = lost = 0
    everyone = {run for _, runs, _ in clients for run in runs}
    for client, runs, _ in clients:
        history = (await client.get("/runs/")).text
        shown = set(re.findall(r"/runs/(r[0-9a-f]{32})/", history))
        lost += len(set(runs) - shown)
        mixed += len((shown & everyone) - set(runs))
    for (client, _, _), (_, others, _) in zip(clients, clients[1:] + clients[:1], strict=True):
        for run in others[:3]:
            if (await client.get(f"/runs/{run}/features")).status_code != 404:
                mixed += 1
    finished = Counter()
    drain_until = time.monotonic() + DRAIN_S
    for client, _, evaluated in clients:
        for run in evaluated:
            while True:
                fragment = (await client.get(f"/runs/{run}/jobs/evaluate", headers=HTMX)).text
                state = re.search(r'data-state="([a-z]+)"', fragment)
                state = state.group(1) if state else "missing"
                if state in ("succeeded", "failed", "missing") or time.monotonic() > drain_until:
                    break
                await asyncio.sleep(1)
            finished[state] += 1
    for client, _, _ in clients:
        await client.aclose()
    return {
        "runs": len(everyone),
        "lost": lost,
        "mixed": mixed,
        **{f"evaluations {k}": v for k, v in finished.items()},
    }


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    p = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return f"p50 {p(0.5):.1f} ms, p95 {p(0.95):.1f} ms, p99 {p(0.99):.1f} ms"


async def bare_baseline(base_url: str, sessions: int, seconds: float) -> Tally:
    tally = Tally()
    deadline = time.monotonic() + seconds

    async def one() -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
            while time.monotonic() < deadline:
                await tally.request(client, "GET", "/")

    await asyncio.gather(*(one() for _ in range(sessions)))
    return tally


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=24)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mission-load-") as folder:
        work = Path(folder)
        (work / "bare_app.py").write_text(BARE_APP)
        with serve(BARE, work, app_env(work / "bare"), work / "bare.log") as bare:
            baseline = asyncio.run(bare_baseline(bare.url, args.sessions, min(args.seconds, 10)))
        with serve(WEBAPP, ROOT, app_env(work / "storage"), work / "app.log") as server:
            tally = Tally()

            async def drive() -> dict[str, int]:
                deadline = time.monotonic() + args.seconds
                clients = await asyncio.gather(
                    *(session(i, server.url, deadline, tally) for i in range(args.sessions))
                )
                return await verify(list(clients))

            started = time.monotonic()
            outcome = asyncio.run(drive())
            elapsed = time.monotonic() - started
    fivexx = sum(n for code, n in tally.statuses.items() if code >= 500)
    print(f"{args.sessions} sessions for {args.seconds:.0f} s then drained: {elapsed:.0f} s")
    print(f"requests: {sum(tally.statuses.values()):,}; by status: {dict(sorted(tally.statuses.items()))}")
    print(f"wizard latency: {percentiles(tally.latencies_ms)}")
    print(f"bare Starlette, same client and sessions: {percentiles(baseline.latencies_ms)}")
    ratio = statistics.median(tally.latencies_ms) / statistics.median(baseline.latencies_ms)
    print(f"median latency ratio wizard / bare: {ratio:.1f}")
    print("runs: " + ", ".join(f"{k} {v}" for k, v in outcome.items()))
    for failure in tally.failures[:10]:
        print("failure:", failure)
    ok = fivexx == 0 and outcome["lost"] == 0 and outcome["mixed"] == 0 and not tally.failures
    print(f"goal (zero 5xx, no run lost or mixed): {'met' if ok else 'NOT met'} ({fivexx} 5xx)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
