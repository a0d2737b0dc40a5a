"""Catching any handler that holds the event loop: asyncio's debug mode reports every callback that
runs longer than ``slow_callback_duration`` ("Executing <Task ...> took 0.120 seconds"); here that
report becomes a test failure.

- ``LoopWatch(app)`` wraps an ASGI app; a test client made with ``backend_options=BACKEND``
  runs it on a loop in debug mode from its first callback, and callbacks over the limit land in
  ``watch.reports``.
- ``python -m tests.loop_watch`` serves the web app as ``python -m webapp`` does, with the same
  watch, writing the reports to its log (the probe test reads them).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import time

LIMIT_S = 0.05
_run_handle = asyncio.events.Handle._run


def _runqueue_s() -> float | None:
    """Seconds this thread has spent ready to run but waiting for a CPU (Linux schedstat)."""
    try:
        with open("/proc/thread-self/schedstat") as stat:
            return int(stat.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


def _run_noting_usage(handle: asyncio.Handle) -> None:
    """Each callback starts by noting how long its thread has waited for a CPU so far, so a slow
    report can subtract the time the callback was ready but not running (a busy machine)."""
    loop = handle._loop
    if loop is not None and loop.get_debug():
        loop._watch_waited = _runqueue_s()
    _run_handle(handle)


asyncio.events.Handle._run = _run_noting_usage


def debug_loop() -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    loop.set_debug(True)
    loop.slow_callback_duration = LIMIT_S
    return loop


BACKEND = {"loop_factory": debug_loop}  # for TestClient(..., backend_options=BACKEND)


class LoopWatch:
    """A garbage collection that happens to run on the loop's thread (any allocation may start
    one) pauses every thread and is not a handler's doing: callbacks that were slow only by the
    collector's time are not reported."""

    def __init__(self, app, limit: float = LIMIT_S) -> None:
        self.app, self.limit = app, limit
        self.reports: list[str] = []
        self.collections: list[tuple[float, float]] = []  # (ended, seconds)
        self._collecting = 0.0
        handler = logging.Handler(logging.WARNING)
        handler.emit = lambda record: self._note(record.getMessage())
        logging.getLogger("asyncio").addHandler(handler)
        gc.callbacks.append(self._gc)

    def _gc(self, phase: str, info: dict) -> None:
        now = time.monotonic()
        if phase == "start":
            self._collecting = now
        elif self._collecting:
            self.collections = [c for c in self.collections[-50:] if now - c[0] < 5] + [
                (now, now - self._collecting)
            ]

    def _note(self, message: str) -> None:
        took = re.search(r" took ([0-9.]+) seconds", message)
        if not message.startswith("Executing") or took is None:
            return
        seconds, now = float(took.group(1)), time.monotonic()
        collecting = sum(spent for ended, spent in self.collections if now - ended <= seconds + 0.01)
        if seconds - collecting - self._waited_for_a_cpu() > self.limit:
            self.reports.append(f"{message} (while answering {self.last!r})")

    def _waited_for_a_cpu(self) -> float:
        """Seconds the slow callback (it just ended, on this thread) was ready to run but had no
        CPU: a busy machine, not a held loop. A sleep or blocking I/O is not waiting for a CPU, and
        neither is CPU-bound work, so both are still reported."""
        try:
            start = asyncio.get_running_loop()._watch_waited
        except (RuntimeError, AttributeError):
            return 0.0
        end = _runqueue_s()
        return max(0.0, end - start) if start is not None and end is not None else 0.0

    last = None

    async def __call__(self, scope, receive, send) -> None:
        self.last = (scope.get("method"), scope.get("path"))
        # a served app: the lifespan's start-up switches the loop to debug mode before any request
        loop = asyncio.get_running_loop()
        if not loop.get_debug() or loop.slow_callback_duration != self.limit:
            loop.set_debug(True)
            loop.slow_callback_duration = self.limit
        await self.app(scope, receive, send)

    def check(self) -> None:
        """Fail (and forget them) if any callback held the loop for longer than the limit."""
        reports, self.reports = self.reports, []
        assert reports == [], "the event loop was held:\n" + "\n".join(reports)


class _LogInstead(list):
    """A served watch logs what it would report (the probe test reads the log)."""

    def __init__(self, log: logging.Logger) -> None:
        super().__init__()
        self.log = log

    def append(self, report: str) -> None:
        self.log.warning("HELD THE LOOP: %s", report)


def serve() -> None:
    import uvicorn

    from webapp.app import create_app
    from webapp.settings import SETTINGS

    app = create_app(SETTINGS)
    watch = LoopWatch(app)
    held = logging.getLogger("loop-watch")
    watch.reports = _LogInstead(held)
    # the stock asyncio loop: its debug mode is what reports slow callbacks
    uvicorn.run(watch, host=SETTINGS.host, port=SETTINGS.port, loop="asyncio", access_log=False)


if __name__ == "__main__":
    serve()
