"""A generic leakage and identifier detector: no column names in here, only statistics.

Before training, it flags columns a researcher should look at twice, each with the reason in
numbers, and lets them decide:

- identifiers: unique per row, name-like text, catalogue numbers such as 1234.01;
- bookkeeping: dates;
- a feature that alone separates one class from the rest almost perfectly;
- a categorical column that maps almost one-to-one onto the classes;
- a flag-like column one of whose values implies a single class over a sizeable share of rows;
- a column whose missingness alone predicts the class.

Thresholds were set on the real NASA tables: on KOI, `koi_score` alone reaches ROC-AUC 0.97
against FALSE POSITIVE while the best physical column reaches 0.79; a deep transit
(`koi_depth`) predicts an eclipsing binary (0.61) and that is signal, so it stays below.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

IDENTIFIER = "identifier"
BOOKKEEPING = "bookkeeping"
SEPARATES = "separates"
ONE_TO_ONE = "one_to_one"
FLAG = "flag"
MISSINGNESS = "missingness"
LEAKAGE_RULES = (SEPARATES, ONE_TO_ONE, FLAG, MISSINGNESS)

SEPARATION_AUC = 0.9  # one column alone, one class against the rest
MISSINGNESS_AUC = 0.85
CRAMERS_V = 0.9
FLAG_MAX_DISTINCT = 10
FLAG_MIN_SHARE = 0.05  # "a sizeable share of rows"
FLAG_PURITY = 0.97
UNIQUE_SHARE = 0.95
NAME_MIN_DISTINCT = 100
NAME_DISTINCT_SHARE = 0.1
_DATE = r"^\d{4}-\d{2}(-\d{2})?([ T]\d{2}:\d{2}(:\d{2})?)?"


@dataclass(frozen=True)
class Finding:
    column: str
    rule: str
    reason: str
    score: float  # the statistic behind the reason, for sorting

    @property
    def is_leakage(self) -> bool:
        return self.rule in LEAKAGE_RULES

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        return cls(str(data["column"]), str(data["rule"]), str(data["reason"]), float(data["score"]))


def detect(frame: pd.DataFrame, labels: pd.Series, columns: list[str] | None = None) -> list[Finding]:
    """Findings for ``columns`` (default: all) against ``labels`` (aligned with ``frame``,
    missing where a row is unlabelled). At most one finding per column: the strongest rule."""
    labelled = labels.notna().to_numpy()
    y = labels[labelled].astype(str).to_numpy()
    classes, y_codes = np.unique(y, return_inverse=True)
    onehot = np.eye(len(classes), dtype=bool)[y_codes]  # rows x classes
    findings = []
    for name in columns if columns is not None else list(frame.columns):
        column = frame[name]
        finding = _identifier(name, column) or _leakage(name, column[labelled], onehot, classes)
        if finding is not None:
            findings.append(finding)
    return findings


def _identifier(name: str, column: pd.Series) -> Finding | None:
    values = column.dropna()
    if len(values) < 20:
        return None
    distinct = values.nunique()
    numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
    if not numeric:
        text = values.astype(str)
        uniques = pd.Series(text.unique())
        if uniques.str.match(_DATE).mean() >= 0.9:
            return Finding(
                name,
                BOOKKEEPING,
                "holds dates: when a row was made or updated is bookkeeping, not physics",
                1.0,
            )
        if distinct >= UNIQUE_SHARE * len(values):
            return Finding(
                name,
                IDENTIFIER,
                f"unique per row ({distinct:,} distinct values): an identifier or name",
                distinct / len(values),
            )
        if distinct >= max(NAME_MIN_DISTINCT, NAME_DISTINCT_SHARE * len(values)):
            return Finding(
                name,
                IDENTIFIER,
                f"name-like text with {distinct:,} distinct values: too many to be a category",
                distinct / len(values),
            )
        return None
    floats = values.to_numpy(dtype=float)
    if distinct >= UNIQUE_SHARE * len(values):
        if np.all(floats == np.round(floats)):
            return Finding(
                name,
                IDENTIFIER,
                f"whole numbers unique per row ({distinct:,} distinct): an identifier",
                distinct / len(values),
            )
        hundredths = np.round(floats * 100)
        suffixes = np.unique(hundredths % 100)
        if np.allclose(hundredths, floats * 100) and len(suffixes) <= 20:
            return Finding(
                name,
                IDENTIFIER,
                f"unique per row and numbered like a catalogue "
                f"(NNN.{int(suffixes[0]):02d}, NNN.{int(suffixes[-1]):02d}, ...): an identifier",
                distinct / len(values),
            )
    return None


def _leakage(name: str, column: pd.Series, onehot: np.ndarray, classes: np.ndarray) -> Finding | None:
    present = column.notna().to_numpy()
    candidates = [
        _missingness(name, present, onehot, classes),
        _separation(name, column, present, onehot, classes),
    ]
    table = _class_table(column, present, onehot)
    if table is not None:
        distinct, counts = table
        if len(distinct) <= FLAG_MAX_DISTINCT:
            candidates.append(_flag(name, distinct, counts, onehot[present].mean(axis=0), classes))
        if not pd.api.types.is_numeric_dtype(column):
            candidates.append(_one_to_one(name, counts, classes))
    found = [f for f in candidates if f is not None]
    return max(found, key=lambda f: f.score) if found else None


def _class_table(
    column: pd.Series, present: np.ndarray, onehot: np.ndarray, max_distinct: int = 50
) -> tuple[np.ndarray, np.ndarray] | None:
    """Distinct values and a values x classes count table, for low-cardinality columns."""
    if not 2 <= column.nunique() <= max_distinct:
        return None
    values = column[present].astype(str).to_numpy()
    distinct, codes = np.unique(values, return_inverse=True)
    counts = np.zeros((len(distinct), onehot.shape[1]))
    np.add.at(counts, codes, onehot[present])
    return distinct, counts


def _class_aucs(scores: np.ndarray, onehot: np.ndarray) -> np.ndarray:
    """ROC-AUC of ``scores`` for each class against the rest (direction-free: max(a, 1-a))."""
    ranks = pd.Series(scores).rank().to_numpy()
    positives = onehot.sum(axis=0)
    negatives = len(scores) - positives
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = (ranks @ onehot - positives * (positives + 1) / 2) / (positives * negatives)
    return np.where(np.isnan(auc), 0.5, np.maximum(auc, 1 - auc))


def _missingness(name: str, present: np.ndarray, onehot: np.ndarray, classes: np.ndarray) -> Finding | None:
    share = 1 - present.mean()
    if share == 0 or share == 1:
        return None
    auc = _class_aucs((~present).astype(float), onehot)
    best = int(auc.argmax())
    if auc[best] < MISSINGNESS_AUC:
        return None
    in_class = 1 - present[onehot[:, best]].mean()
    elsewhere = 1 - present[~onehot[:, best]].mean()
    return Finding(
        name,
        MISSINGNESS,
        f"whether it is missing alone predicts {classes[best]!r} "
        f"(ROC-AUC {auc[best]:.2f}): missing in {in_class:.0%} of {classes[best]!r} rows "
        f"and {elsewhere:.0%} of the others",
        float(auc[best]),
    )


def _flag(
    name: str, distinct: np.ndarray, counts: np.ndarray, base: np.ndarray, classes: np.ndarray
) -> Finding | None:
    totals = counts.sum(axis=1)
    best: Finding | None = None
    for v, row in enumerate(counts):
        share = totals[v] / totals.sum()
        k = int(row.argmax())
        purity = row[k] / totals[v]
        # pure, sizeable, and far above the class's base rate (not just a dominant class)
        if share >= FLAG_MIN_SHARE and purity >= FLAG_PURITY and purity >= base[k] + 0.8 * (1 - base[k]):
            finding = Finding(
                name,
                FLAG,
                f"the value {distinct[v]} ({share:.0%} of rows) means {classes[k]!r} in {purity:.1%} of them",
                float(purity),
            )
            if best is None or finding.score > best.score:
                best = finding
    return best


def _one_to_one(name: str, counts: np.ndarray, classes: np.ndarray) -> Finding | None:
    """Cramér's V of a categorical column against the classes."""
    n = counts.sum()
    expected = counts.sum(axis=1, keepdims=True) * counts.sum(axis=0, keepdims=True) / n
    with np.errstate(divide="ignore", invalid="ignore"):
        chi2 = np.nansum((counts - expected) ** 2 / expected)
    dof = min(counts.shape[0] - 1, counts.shape[1] - 1)
    v = float(np.sqrt(chi2 / (n * dof))) if dof > 0 else 0.0
    if v < CRAMERS_V:
        return None
    return Finding(
        name, ONE_TO_ONE, f"its categories map almost one-to-one onto the classes (Cramér's V {v:.2f})", v
    )


def _separation(
    name: str, column: pd.Series, present: np.ndarray, onehot: np.ndarray, classes: np.ndarray
) -> Finding | None:
    if not pd.api.types.is_numeric_dtype(column) or present.sum() < 20:
        return None
    auc = _class_aucs(column[present].to_numpy(dtype=float), onehot[present])
    best = int(auc.argmax())
    if auc[best] < SEPARATION_AUC:
        return None
    return Finding(
        name,
        SEPARATES,
        f"on its own it separates {classes[best]!r} from the rest almost perfectly (ROC-AUC {auc[best]:.2f})",
        float(auc[best]),
    )
