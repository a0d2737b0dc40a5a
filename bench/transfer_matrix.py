"""The missions' transfer matrix: ROC-AUC of a model trained on one mission (rows) and tested on
another (columns), on the physical quantities both share; the diagonal is each mission's own
grouped cross-validation. HistGradientBoosting defaults, 5 grouped folds, planet-like vs false
positive everywhere (shared/transfer.py). docs/science.md shows the output.

Run with `.venv/bin/python bench/transfer_matrix.py`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.catalog import BUILTINS  # noqa: E402
from shared.data import read_table  # noqa: E402
from shared.snapshot import read_snapshot  # noqa: E402
from shared.spec import RunSpec  # noqa: E402
from shared.transfer import transfer  # noqa: E402

MISSIONS = ("kepler", "k2", "tess")


def main() -> None:
    frames = {}
    for mission in MISSIONS:
        frame = read_table(read_snapshot(mission))
        if BUILTINS[mission].default_rows_only:
            frame = frame[frame["default_flag"] == 1]
        frames[mission] = frame
    spec = RunSpec.from_dict({"dataset": "kepler", "target": "label", "features": ["x"]})
    cells: dict[tuple[str, str], str] = {}
    started = time.monotonic()
    for train in MISSIONS:
        for test in MISSIONS:
            if train == test:
                continue
            report, *_ = transfer(frames, [train], test, spec, n_jobs=2)
            cells[train, test] = f"{report['transfer']['roc_auc']['mean']:.3f}"
            cells[test, test] = cells.get((test, test)) or f"{report['own_test']['roc_auc']['mean']:.3f}*"
            print(
                f"{train} -> {test}: {cells[train, test]} on {len(report['features'])} shared features "
                f"(own: {report['own_test']['roc_auc']['mean']:.3f}; cost {report['cost']:.3f}; "
                f"{report['rows']['seen_stars']} test rows on training stars left out)",
                flush=True,
            )
    print()
    print("| trained on \\ tested on | " + " | ".join(BUILTINS[m].name for m in MISSIONS) + " |")
    print("|---|" + "---|" * len(MISSIONS))
    for train in MISSIONS:
        print(f"| {BUILTINS[train].name} | " + " | ".join(cells[train, test] for test in MISSIONS) + " |")
    took = time.monotonic() - started
    print(f"\n* own grouped cross-validation, on the features it shares with the last pair; {took:.0f} s")


if __name__ == "__main__":
    main()
