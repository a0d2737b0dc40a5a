"""Child processes that never outlive what started them.

Dev tools and tests start servers with :func:`spawn`: each in a session (process group) of its
own, so :func:`stop` reaches its children too (gunicorn's workers, the web app's training
worker), and on Linux with a parent-death signal, so a server goes even when whatever started
it is killed outright (SIGKILL, a crashed test run). The signal is tied to the thread that
called :func:`spawn`: call it from a thread that lives as long as the child should.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1
# looked up here, not in the child: between fork and exec only the call itself may run
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def _die_with(parent: int) -> Callable[[], None]:
    def arm() -> None:  # runs in the child, before exec
        if _prctl is not None:
            _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return arm


def spawn(
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    log: Path | None = None,
) -> subprocess.Popen:
    """Start ``command`` in a process group of its own that dies with this process; its output
    goes to ``log`` (appended) or, without one, where this process's goes."""
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(log.open("ab")) if log is not None else None
        return subprocess.Popen(
            list(command),
            env=dict(env) if env is not None else None,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT if log is not None else None,
            start_new_session=True,
            preexec_fn=_die_with(os.getpid()),
        )


def stop(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM to the process's group, then SIGKILL to whatever of the group is left."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=timeout)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def group_alive(pgid: int) -> bool:
    """Whether any process is left in the process group ``pgid`` (zombies aside)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if fields[0] != "Z" and int(fields[2]) == pgid:
                    return True
    return False


def exit_with_parent(parent: int, interval: float = 0.5) -> None:
    """For a process that cannot be spawned with a parent-death signal (a process pool's worker):
    a thread that ends this process once ``parent`` is gone."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(0)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()
