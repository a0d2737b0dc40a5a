"""Web app latency and throughput under load: every wizard page served by one process, as the
container serves it, hit by wrk, against a bare Starlette app served the same way, in one run.

Run with `.venv/bin/python bench/web_latency.py [--seconds 8]` (`make bench` runs it with the
other scripts; it needs `wrk` on the PATH, e.g. `apt-get install wrk`).

What it does, step by step:

1. Starts the app as its container does, `python -m webapp` (one uvicorn process) on a free
   127.0.0.1 port, with a temporary STORAGE_URL and COMPUTE_THREADS=2 (Kepler from the snapshot
   the project carries). Then, as a browser would (one cookie jar, no mocks), it starts a run on
   Kepler, opens the features step, saves a HistGradientBoosting model with the schema's
   defaults and evaluates it (3 grouped, stratified folds), waiting until the job has finished,
   so every page below reads a complete run from storage and the training worker is idle.
2. Times `import webapp.app` in a fresh interpreter (median of 5, minus a bare `python -c
   pass`) against the 0.5 s goal, and checks that scikit-learn was not imported.
3. Runs `wrk -t2 -c50 -d<seconds>s --latency` with the session cookie on each page (htmx
   partials with `HX-Request: true`), then `wrk -t2 -c10` for the latency at a moderate load,
   and the same on a bare Starlette app with one PlainTextResponse route served by
   `python -m uvicorn` (one process). Prints req/s, p50 and p99 at 50 connections, p99 at 10,
   non-2xx answers and socket errors per page, the ratios to the bare app, and the goals:
   >= 2,000 req/s for htmx partials and the job fragment, >= 1,000 req/s for full pages, and
   p99 <= 25 ms at 10 connections for every page.

Every process it starts is stopped and its temporary folder removed, also on errors.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.params import family  # noqa: E402
from tests.processes import free_port, wait_until_answering  # noqa: E402

GOAL_PARTIAL_RPS = 2_000  # htmx partials and the job fragment every waiting browser polls
GOAL_PAGE_RPS = 1_000  # full pages
GOAL_P99_MS = 25.0  # at 10 connections
GOAL_IMPORT_S = 0.5
POLL_TIMEOUT_S = 600
HTMX = {"HX-Request": "true"}
WEBAPP = [sys.executable, "-m", "webapp"]  # as the container starts it: one uvicorn process
BARE = [sys.executable, "-m", "uvicorn", "bare_app:create_app", "--factory", "--host", "127.0.0.1"]
HEAVY_MODULES = ("sklearn", "scipy", "pandas", "numpy", "pyarrow", "matplotlib")
# pages to load: (label, path with {run} for the run id, sent as an htmx partial)
PAGES = (
    ("/healthz", "/healthz", False),
    ("/start", "/start", False),
    ("dataset", "/runs/{run}/dataset", False),
    ("features", "/runs/{run}/features", False),
    ("model", "/runs/{run}/model", False),
    ("evaluate", "/runs/{run}/evaluate", False),
    ("ship", "/runs/{run}/ship", False),
    ("jobs/evaluate (htmx)", "/runs/{run}/jobs/evaluate", True),
    ("features/list?q=koi (htmx)", "/runs/{run}/features/list?q=koi", True),
    ("model step (htmx)", "/runs/{run}/model", True),
    ("threshold 0.7 (htmx)", "/runs/{run}/threshold?threshold=0.7", True),
    ("/runs/ (history)", "/runs/", False),
)
BARE_APP = '''"""A bare Starlette app: one plain-text route, the baseline for bench/web_latency.py."""

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route


async def hello(request):
    return PlainTextResponse("ok")


def create_app():
    return Starlette(routes=[Route("/", hello)])
'''
# the environment variables that would send storage or jobs somewhere other than our temp dir
FOREIGN_SETTINGS = (
    "APP_MODE",
    "RESULTS_URL",
    "RESULTS_BUCKET",
    "MODEL_DIR",
    "GCS_BUCKET",
    "UPLOAD_DIR",
    "TRAIN_TRIGGER",
    "TRAIN_URL",
    "PREDICT_URL",
)


@dataclass
class Server:
    process: subprocess.Popen
    url: str
    log: Path


@dataclass
class Load:
    """One wrk run's figures."""

    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: int
    p99_at_10_ms: float = float("nan")


# --- processes ------------------------------------------------------------------------------


def stop(process: subprocess.Popen) -> None:
    """Stop uvicorn (it stops its workers), then anything left in its process group (the
    training worker a web worker spawned)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)  # the group we created with start_new_session
        except ProcessLookupError:
            return
        time.sleep(1)


@contextlib.contextmanager
def serve(command: list[str], cwd: Path, env: dict[str, str], log: Path) -> Iterator[Server]:
    """One server process on a free port (the command gets --port or PORT)."""
    port = free_port()
    env = {**env, "PORT": str(port), "HOST": "127.0.0.1"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--port", str(port)] if "uvicorn" in command else command,
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_answering(url + "/", process, log, timeout=60)
        yield Server(process, url, log)
    finally:
        stop(process)


def app_env(storage: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN_SETTINGS}
    env.update(STORAGE_URL=str(storage), COMPUTE_THREADS="2")
    return env


# --- preparing a run like a browser ---------------------------------------------------------


def check(response: httpx.Response, *expected: int) -> httpx.Response:
    if response.status_code not in expected:
        raise RuntimeError(
            f"{response.request.method} {response.request.url} answered {response.status_code}, "
            f"expected {expected}:\n{response.text[:2000]}"
        )
    return response


def poll(client: httpx.Client, path: str, headers: dict[str, str] | None = None) -> str:
    """GET a self-replacing fragment until it stops asking to be polled; returns its last body."""
    deadline = time.monotonic() + POLL_TIMEOUT_S
    while time.monotonic() < deadline:
        body = check(client.get(path, headers=headers), 200).text
        if "every 1s" not in body:
            return body
        time.sleep(0.5)
    raise RuntimeError(f"{path} still polling after {POLL_TIMEOUT_S} s")


def start_run(client: httpx.Client) -> str:
    response = check(client.post("/start", data={"dataset": "kepler"}, headers=HTMX), 204)
    path = response.headers["HX-Redirect"]
    match = re.fullmatch(r"/runs/(r[0-9a-f]{32})/features", path)
    if match is None:
        raise RuntimeError(f"unexpected HX-Redirect path {path!r}")
    return match.group(1)


def model_form() -> dict[str, str]:
    """HistGradientBoosting with every parameter at its default, as the form shows it."""
    params = family("hist_gradient_boosting").params
    shown = {p.name: "" if p.default is None else str(p.default) for p in params}
    return {"family": "hist_gradient_boosting", **shown, "selection": "none", "strength": "1"}


def evaluate(client: httpx.Client, run: str) -> None:
    plan = {
        "method": "kfold",
        "folds": "3",
        "test_size": "0.2",
        "stratified": "on",
        "group_column": "kepid",
        "seed": "42",
    }
    check(client.post(f"/runs/{run}/evaluate", data=plan), 200)
    status = poll(client, f"/runs/{run}/jobs/evaluate", HTMX)
    if 'data-state="succeeded"' not in status:
        raise RuntimeError(f"the evaluate job did not succeed:\n{status[:3000]}")


def prepare_run(base_url: str) -> tuple[str, str]:
    """Load Kepler, start a run, pick features, save a model, evaluate; (run id, cookie)."""
    with httpx.Client(base_url=base_url, timeout=60) as client:
        page = check(client.get("/"), 200).text  # the workspace cookie and its CSRF token
        client.headers["X-CSRF-Token"] = re.search(r'"X-CSRF-Token": "([0-9a-f]+)"', page).group(1)
        run = start_run(client)
        check(client.get(f"/runs/{run}/features"), 200)
        check(client.post(f"/runs/{run}/model", data=model_form()), 303)
        evaluate(client, run)
        cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
    return run, cookie


# --- import time ----------------------------------------------------------------------------


def python_seconds(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
    return time.perf_counter() - start


def import_report(repeat: int = 5) -> None:
    python_seconds("import webapp.app")  # warm the file cache: time imports, not disk reads
    bare = statistics.median(python_seconds("pass") for _ in range(repeat))
    full = statistics.median(python_seconds("import webapp.app") for _ in range(repeat))
    probe = f"import sys, webapp.app; print(' '.join(m for m in {HEAVY_MODULES!r} if m in sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.split()
    took = full - bare
    verdict = "ok" if took <= GOAL_IMPORT_S else "MISSED"
    print(f"import webapp.app: {took:.3f} s (median of {repeat}, minus {bare:.3f} s for `python -c pass`)")
    print(f"  goal <= {GOAL_IMPORT_S} s: {verdict}")
    print(f"  sklearn imported: {'YES (must not be)' if 'sklearn' in loaded else 'no'}")
    print(f"  heavy modules imported: {', '.join(loaded) or 'none'}")
    for line in heaviest_imports():
        print(f"    {line}")


def heaviest_imports(count: int = 4) -> list[str]:
    """The third-party packages that cost most, and which of our modules pulls each in, from
    `-X importtime` (children are listed before their parent, indented one step deeper)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import webapp.app"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    rows = []  # (cumulative µs, depth, module)
    for line in result.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \| ( *)(\S+)", line)
        if match:
            rows.append((int(match.group(1)), len(match.group(2)) // 2, match.group(3)))
    outermost: dict[str, int] = {}  # package -> index of its costliest (outermost) import
    for i, (micros, _, name) in enumerate(rows):
        package = name.split(".")[0]
        if package not in ("webapp", "shared") and micros > rows[outermost.get(package, i)][0]:
            outermost[package] = i
        outermost.setdefault(package, i)
    ours = {p: i for p, i in outermost.items() if p not in ("webapp", "shared")}
    heaviest = sorted(ours.items(), key=lambda item: rows[item[1]][0], reverse=True)[:count]
    return [f"{p:<12} {rows[i][0] / 1e6:.3f} s via {' <- '.join(importers(rows, i))}" for p, i in heaviest]


def importers(rows: list[tuple[int, int, str]], index: int) -> list[str]:
    """The chain of our modules whose import led to rows[index]."""
    chain, depth = [], rows[index][1]
    for _, row_depth, name in rows[index + 1 :]:
        if row_depth < depth:
            depth = row_depth
            if name.split(".")[0] in ("webapp", "shared"):
                chain.append(name)
    return chain


# --- wrk ------------------------------------------------------------------------------------

UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def millis(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)([a-z]+)", text).groups()
    return float(number) * UNITS_MS[unit]


def parse_wrk(output: str) -> Load:
    def find(pattern: str, default: str | None = None) -> str:
        match = re.search(pattern, output)
        if match is None:
            if default is None:
                raise RuntimeError(f"no {pattern!r} in wrk's output:\n{output}")
            return default
        return match.group(1)

    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return Load(
        rps=float(find(r"Requests/sec:\s+([\d.]+)")),
        p50_ms=millis(find(r"\s50%\s+([\d.]+[a-z]+)")),
        p99_ms=millis(find(r"\s99%\s+([\d.]+[a-z]+)")),
        non_2xx=int(find(r"Non-2xx or 3xx responses:\s+(\d+)", "0")),
        errors=sum(int(n) for n in errors.groups()) if errors else 0,
    )


def wrk(url: str, seconds: int, headers: dict[str, str], connections: int = 50) -> Load:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    result = subprocess.run([*command, url], check=True, capture_output=True, text=True, timeout=seconds + 60)
    return parse_wrk(result.stdout)


def bare_baseline(work: Path, seconds: int) -> tuple[Load, float]:
    """wrk on the bare app, and its sequential round trip on one keep-alive connection."""
    folder = work / "bare"
    folder.mkdir()
    (folder / "bare_app.py").write_text(BARE_APP)
    env = {**os.environ, "PYTHONPATH": str(folder)}
    with serve(BARE, folder, env, work / "bare.log") as server:
        load = wrk(server.url + "/", seconds, {})
        load.p99_at_10_ms = wrk(server.url + "/", seconds, {}, connections=10).p99_ms
        return load, keepalive_millis(server.url + "/", {})


def keepalive_millis(url: str, headers: dict[str, str], count: int = 20) -> float:
    """Median time of one request after another on a single kept-alive connection."""
    times = []
    with httpx.Client(headers=headers, timeout=10) as client:
        check(client.get(url), 200)
        for _ in range(count):
            start = time.perf_counter()
            check(client.get(url), 200)
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def idle_share(seconds: float = 2.0) -> float:
    """The machine's idle CPU share over a short window: other busy processes skew wrk."""

    def sample() -> tuple[int, int]:
        ticks = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return ticks[3] + ticks[4], sum(ticks)  # idle + iowait, all

    try:
        idle0, total0 = sample()
        time.sleep(seconds)
        idle1, total1 = sample()
    except OSError:
        return float("nan")
    return (idle1 - idle0) / max(total1 - total0, 1)


def load_pages(server: Server, run: str, cookie: str, seconds: int) -> dict[str, Load]:
    figures = {}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for label, path, partial in PAGES:
            headers = {"Cookie": cookie, **(HTMX if partial else {})}
            check(client.get(path.format(run=run), headers=headers), 200)  # visible, and warm
            figures[label] = wrk(server.url + path.format(run=run), seconds, headers)
            at_10 = wrk(server.url + path.format(run=run), seconds, headers, connections=10)
            figures[label].p99_at_10_ms = at_10.p99_ms
    return figures


# --- report ---------------------------------------------------------------------------------


def goal_rps(label: str) -> int:
    return GOAL_PARTIAL_RPS if "htmx" in label or label == "/healthz" else GOAL_PAGE_RPS


def print_table(figures: dict[str, Load], bare: Load, seconds: int) -> None:
    print()
    print(f"wrk -t2 -d{seconds}s --latency, one process (python -m webapp), {os.cpu_count()} cores")
    print(
        f"goals: >= {GOAL_PARTIAL_RPS:,} req/s (htmx partials, job fragment) or >= {GOAL_PAGE_RPS:,} "
        f"(full pages) at 50 connections; p99 <= {GOAL_P99_MS:.0f} ms at 10 connections"
    )
    header = (
        f"{'page':<28} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'p99@10':>7} {'non-2xx':>8} {'errors':>7}"
        f" {'req/s÷bare':>10}  goal"
    )
    print(header)
    print("-" * len(header))
    for label, load in {"bare Starlette (baseline)": bare, **figures}.items():
        met = (
            load.rps >= goal_rps(label)
            and load.p99_at_10_ms <= GOAL_P99_MS
            and not (load.non_2xx or load.errors)
        )
        print(
            f"{label:<28} {load.rps:>8,.0f} {load.p50_ms:>7.2f} {load.p99_ms:>7.2f} {load.p99_at_10_ms:>7.2f}"
            f" {load.non_2xx:>8,} {load.errors:>7,} {load.rps / bare.rps:>10.2f}"
            f"  {'ok' if met else 'MISSED'}"
        )


def print_conditions(idle_before: float, idle_after: float, bare_ms: float, healthz_ms: float) -> None:
    print(f"machine idle just before / after the load runs: {idle_before:.0%} / {idle_after:.0%}")
    if min(idle_before, idle_after) < 0.8:
        print("  other processes were busy: these figures understate the app")
    print(
        f"one keep-alive connection, requests in sequence: bare {bare_ms:.1f} ms, "
        f"/healthz {healthz_ms:.1f} ms"
    )
    if min(bare_ms, healthz_ms) > 30:
        print("  ~40 ms even for a bare app: Nagle's algorithm meets delayed ACKs (TCP_NODELAY unset)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8, help="how long wrk loads each page")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    # a plain `kill` of this script still runs the clean-up below
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    import_report()
    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
        work = Path(tmp)
        with serve(WEBAPP, ROOT, app_env(work / "storage"), work / "app.log") as app:
            started = time.perf_counter()
            run, cookie = prepare_run(app.url)
            print(f"\nrun {run} prepared (Kepler loaded, 3-fold evaluation done) in ", end="")
            print(f"{time.perf_counter() - started:.1f} s")
            idle_before = idle_share()
            bare, bare_ms = bare_baseline(work, args.seconds)
            figures = load_pages(app, run, cookie, args.seconds)
            healthz_ms = keepalive_millis(app.url + "/healthz", {})
            idle_after = idle_share()
    print_table(figures, bare, args.seconds)
    print_conditions(idle_before, idle_after, bare_ms, healthz_ms)


if __name__ == "__main__":
    main()
