"""The leakage detector on the KOI table versus a notebook's scikit-learn loop, in one run;
then the detector plus the group-column suggestion on each of the three NASA tables.

Run with `.venv/bin/python bench/leakage_detector.py`. The detector checks every column
against every class (identifiers, provenance, time, default-row markers, single-feature
ROC-AUC, flags, categorical association, missingness); the baseline only computes
scikit-learn's roc_auc_score per numeric column and class, a fraction of that work. Goals: the
detector well under a second; detector and suggestion together under 0.5 s on every table.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.data import read_table  # noqa: E402
from shared.grouping import suggest_group  # noqa: E402
from shared.labels import labels_as_text  # noqa: E402
from shared.leakage import detect  # noqa: E402
from shared.snapshot import read_snapshot  # noqa: E402

TARGETS = {"kepler": "koi_disposition", "tess": "tfopwg_disp", "k2": "disposition"}


def baseline(frame, labels) -> None:
    for column in frame.select_dtypes("number").columns:
        present = frame[column].notna().to_numpy()
        if present.sum() < 2:
            continue
        for cls in np.unique(labels):
            truth = labels[present] == cls
            if 0 < truth.sum() < len(truth):
                roc_auc_score(truth, frame[column].to_numpy()[present])


def main() -> None:
    frame = read_table(read_snapshot("kepler"))
    labels = frame["koi_disposition"]
    columns = [c for c in frame.columns if c != "koi_disposition"]
    ours, theirs = [], []
    for _ in range(7):
        start = time.perf_counter()
        findings = detect(frame, labels, columns)
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        baseline(frame[columns], labels.to_numpy())
        theirs.append(time.perf_counter() - start)
    a, b = statistics.median(ours), statistics.median(theirs)
    print(f"KOI: {len(frame):,} rows x {len(columns)} columns, 3 classes; median of 7")
    print(f"detector (all rules):            {a * 1000:7.1f} ms  ({len(findings)} findings)")
    print(f"baseline (roc_auc_score loop):   {b * 1000:7.1f} ms")
    print(f"ratio detector / baseline:       {a / b:7.2f}")
    print()
    print("detector + group suggestion, whole table (median of 7):")
    for dataset_id, target in TARGETS.items():
        frame = read_table(read_snapshot(dataset_id))
        labels = labels_as_text(frame[target])
        columns = [c for c in frame.columns if c != target]
        times = []
        for _ in range(7):
            start = time.perf_counter()
            findings = detect(frame, labels, columns)
            suggestion = suggest_group(frame, labels, findings)
            times.append(time.perf_counter() - start)
        group = f"{suggestion.column} (kappa {suggestion.kappa:.2f})" if suggestion else "none"
        print(
            f"  {dataset_id:7s} {len(frame):>6,} rows x {len(columns):>3} columns: "
            f"{statistics.median(times) * 1000:6.1f} ms  ({len(findings)} findings; group by {group})"
        )


if __name__ == "__main__":
    main()
