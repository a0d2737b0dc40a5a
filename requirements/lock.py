"""Write requirements/lock.txt from the environment that runs it (`make lock` runs it in a fresh
venv with requirements/dev.in installed): every installed distribution pinned, each followed by
what needs it (`# via ...`, markers evaluated here, on Linux and Python 3.11 like the deploys).

The `# via` lines let functions/assemble.py work out a deployable's pins from this file alone,
with nothing installed (it runs in a bare python image in Cloud Build).

    python requirements/lock.py > requirements/lock.txt
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

HERE = Path(__file__).resolve().parent
HEADER = """\
# Pinned versions of every package any part of the project installs (dev.in resolved).
# Used as a constraints file (-c) for every install, so each deployable gets exactly these.
# Regenerate with 'make lock' after changing a requirements/*.in file; '# via' lines name what
# needs each package (functions/assemble.py reads them).
"""


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def direct(path: Path) -> dict[str, str]:
    """Canonical name -> the .in file that names it, following -r includes."""
    names: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r "):
            for name, source in direct(path.parent / line[3:].strip()).items():
                names.setdefault(name, source)
        elif line:
            names.setdefault(canonical(Requirement(line).name), path.name)
    return names


def main() -> None:
    installed = {canonical(d.metadata["Name"]): d for d in metadata.distributions()}
    for tool in ("pip", "setuptools", "wheel", "distribute"):  # as pip freeze leaves them out
        installed.pop(tool, None)
    via: dict[str, set[str]] = {name: set() for name in installed}
    for name, dist in installed.items():
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                child = canonical(requirement.name)
                if child in via:
                    via[child].add(name)
    roots = direct(HERE / "dev.in")
    lines = [HEADER.rstrip("\n")]
    for name in sorted(installed):
        dist = installed[name]
        parents = sorted(via[name]) + ([f"-r {roots[name]}"] if name in roots else [])
        lines.append(f"{dist.metadata['Name']}=={dist.version}")
        if parents:
            lines.append(f"    # via {', '.join(parents)}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
