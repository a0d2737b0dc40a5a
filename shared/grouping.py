"""Suggest a column to group cross-validation splits by: no column names in here, only statistics.

Rows that share a host star share most of what a model sees (the star's temperature, radius,
magnitude...) and usually the class too. Split them across training and test folds and the
scores measure recognising the star, not judging the signal. A host-star-like column is text
or whole numbers whose values repeat on a few rows each, and rows with the same value agree on
the class far more often than chance.

Pair agreement, among labelled rows: of all pairs of rows with the same value, the share whose
classes agree, Σ_groups Σ_classes n_gc(n_gc-1) / Σ_groups n_g(n_g-1); chance is Σ_c p_c², the
agreement of two rows drawn at random. Kappa = (agreement - chance) / (1 - chance). Measured
on the real NASA tables: K2 pl_name 1.0, hostname 0.98; TESS tid 0.70; KOI kepid 0.57; a
physical column of whole numbers (KOI koi_teq) 0.01.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from shared.leakage import IDENTIFIER, Finding, detect

MIN_PRESENT = 0.95  # non-missing in this share of rows
MIN_DISTINCT = 20
MIN_DISTINCT_SHARE = 0.1  # small groups: distinct values at least this share of the rows
MIN_REPEATED_SHARE = 0.01  # rows sharing their value with another row
MIN_KAPPA = 0.5
COARSEST_TOLERANCE = 0.01  # within 1% of the fewest distinct values: the earliest column wins
ALLOWED_RULES = frozenset({IDENTIFIER})  # a host id is an identifier; any other finding rules it out


@dataclass(frozen=True)
class GroupSuggestion:
    column: str
    reason: str
    distinct: int  # distinct values of the column
    repeated_share: float  # share of its rows that share their value with another row
    agreement: float  # pair agreement of the class within a value
    chance: float  # pair agreement of the class for two rows drawn at random

    @property
    def kappa(self) -> float:
        return (self.agreement - self.chance) / (1 - self.chance)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GroupSuggestion:
        return cls(
            str(data["column"]),
            str(data["reason"]),
            int(data["distinct"]),
            float(data["repeated_share"]),
            float(data["agreement"]),
            float(data["chance"]),
        )


def suggest_group(
    frame: pd.DataFrame,
    labels: pd.Series,
    findings: list[Finding] | None = None,
    *,
    target: str | None = None,
) -> GroupSuggestion | None:
    """A column to group splits by, or None. ``labels`` are aligned with ``frame`` (missing
    where a row is unlabelled); ``target`` (default: the labels' name) is never suggested.
    ``findings`` are the detector's for the frame; computed here when not given."""
    target = target if target is not None else labels.name
    if findings is None:
        findings = detect(frame, labels, [c for c in frame.columns if c != target])
    ruled_out = {f.column for f in findings if f.rule not in ALLOWED_RULES}
    y, classes = pd.factorize(pd.Series(labels).reset_index(drop=True))
    labelled = y >= 0
    if len(classes) < 2:
        return None
    candidates = []
    for name in frame.columns:
        if name == target or name in ruled_out:
            continue
        suggestion = _measure(name, frame[name], y, labelled, len(classes))
        if suggestion is not None:
            candidates.append(suggestion)
    if not candidates:
        return None
    fewest = min(s.distinct for s in candidates)
    return next(s for s in candidates if s.distinct <= fewest * (1 + COARSEST_TOLERANCE))


def _measure(
    name: str, column: pd.Series, y: np.ndarray, labelled: np.ndarray, n_classes: int
) -> GroupSuggestion | None:
    if pd.api.types.is_bool_dtype(column):
        return None
    codes, uniques = pd.factorize(column)
    present = codes >= 0
    n_present = int(present.sum())
    distinct = len(uniques)
    if n_present < MIN_PRESENT * len(codes) or distinct < max(MIN_DISTINCT, MIN_DISTINCT_SHARE * n_present):
        return None
    if pd.api.types.is_numeric_dtype(column):
        values = np.asarray(uniques, dtype=float)
        if not np.all(values == np.round(values)):
            return None
    sizes = np.bincount(codes[present], minlength=distinct)
    repeated_share = float(sizes[sizes > 1].sum() / n_present)
    if repeated_share < MIN_REPEATED_SHARE:
        return None
    rows = present & labelled
    groups, classes = codes[rows], y[rows]
    per_group = np.bincount(groups, minlength=distinct).astype(float)
    per_cell = np.bincount(groups * n_classes + classes, minlength=distinct * n_classes).astype(float)
    pairs = float((per_group * (per_group - 1)).sum())
    if pairs == 0:
        return None
    agreement = float((per_cell * (per_cell - 1)).sum()) / pairs
    shares = np.bincount(classes, minlength=n_classes) / len(classes)
    chance = float((shares**2).sum())
    if chance >= 1 or (agreement - chance) / (1 - chance) < MIN_KAPPA:
        return None
    return GroupSuggestion(
        name,
        f"its {distinct:,} values repeat ({repeated_share:.0%} of rows share one with another row) "
        f"and rows with the same value have the same class {agreement:.0%} of the time "
        f"({chance:.0%} by chance), like planets of one host star: splitting by it keeps them "
        "on one side",
        distinct,
        repeated_share,
        agreement,
        chance,
    )
