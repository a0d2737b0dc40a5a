"""Fresh virtual environments for the tests: what a user or a deploy installs, and nothing else."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def fresh_venv(folder: Path, *install: str, timeout: float = 600, cwd: Path | None = None) -> Path:
    """A new virtual environment (not a copy of the dev one) with only ``pip install <install>``;
    returns its python. Failures show pip's own output."""
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, capture_output=True)
    python = folder / "bin" / "python"
    if install:
        # --no-compile: byte-compiling scikit-learn, scipy and pandas is a third of pip's time here
        command = [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--no-compile",
            "--disable-pip-version-check",
            *install,
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=cwd)
        assert result.returncode == 0, f"{' '.join(command)}\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
    return python
