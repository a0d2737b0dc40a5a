"""Check every gcloud command in cloudbuild.yaml and docs/deploy.md against the installed gcloud's
own reference (`gcloud <command> --help`): the command exists and has every flag used.

    make check-gcloud        # needs the Google Cloud SDK (no account, no network)

Prints each command with its flags and the SDK version; exits 1 naming anything unknown.
"""

from __future__ import annotations

import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def commands_in_text(text: str) -> list[list[str]]:
    """gcloud invocations in shell text: continuation lines joined, `$(...)` opened up."""
    text = text.replace("\\\n", " ")
    found = []
    for line in text.splitlines():
        for part in re.findall(r"gcloud [^;|&`#]+", line):
            found.append(part.split()[1:])  # flag names are all that is checked: no quoting needed
    return found


def commands_in_build(config: dict) -> list[list[str]]:
    found = []
    for step in config["steps"]:
        if step.get("entrypoint") == "gcloud":
            found.append([str(a) for a in step["args"]])
        elif step.get("entrypoint") == "bash":
            found += commands_in_text(step["args"][-1])
    return found


@cache
def help_text(path: tuple[str, ...]) -> str | None:
    result = subprocess.run(
        ["gcloud", *path, "--help"],
        capture_output=True,
        text=True,
        env={"PAGER": "cat", "PATH": "/usr/bin:/bin"},
    )
    text = ANSI.sub("", result.stdout)
    return text if result.returncode == 0 and f"gcloud {' '.join(path)} -" in text else None


def check(args: list[str]) -> list[str]:
    words = []
    for token in args:
        if token.startswith("-") or not re.fullmatch(r"[a-z][a-z0-9-]*", token):
            break
        words.append(token)
    for length in range(len(words), 0, -1):
        reference = help_text(tuple(words[:length]))
        if reference is not None:
            break
    else:
        return [f"no such command: gcloud {' '.join(words)}"]
    problems = []
    for flag in (a.split("=", 1)[0] for a in args if a.startswith("--")):
        name = flag[2:]
        positive = name.removeprefix("no-")
        if not re.search(rf"--(\[no-\])?{re.escape(name)}\b|--\[no-\]{re.escape(positive)}\b", reference):
            problems.append(f"gcloud {' '.join(words[:length])}: unknown flag {flag}")
    used = " ".join(sorted({a.split("=", 1)[0] for a in args if a.startswith("--")}))
    print(f"{'BAD' if problems else 'ok '} gcloud {' '.join(words[:length])} {used}")
    return problems


def main() -> None:
    version = subprocess.run(["gcloud", "version"], capture_output=True, text=True).stdout.splitlines()[0]
    commands = commands_in_build(yaml.safe_load((ROOT / "cloudbuild.yaml").read_text()))
    commands += commands_in_text((ROOT / "docs" / "deploy.md").read_text())
    problems = [problem for command in commands for problem in check(command)]
    print(f"{len(commands)} gcloud commands checked against {version}")
    for problem in problems:
        print(problem)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
