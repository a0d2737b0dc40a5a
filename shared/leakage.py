"""A generic leakage and identifier detector: no column names in here, only statistics.

Before training, it flags columns a researcher should look at twice, each with the reason in
numbers, and lets them decide:

- identifiers: unique per row, name-like text, catalogue numbers such as 1234.01;
- bookkeeping: dates; a two-valued marker of one "default" row per value of another column;
- provenance: repeated text that names the paper or source a row came from;
- time: years, or an epoch counted from a distant zero (a Julian date, a Unix time stamp);
- a feature that alone separates one class from the rest almost perfectly;
- a categorical column that maps almost one-to-one onto the classes;
- a flag-like column one of whose values implies a single class over a sizeable share of rows;
- a column whose missingness alone predicts the class.

Thresholds were set on the real NASA tables: on KOI, `koi_score` alone reaches ROC-AUC 0.97
against FALSE POSITIVE while the best physical column reaches 0.79; a deep transit
(`koi_depth`) predicts an eclipsing binary (0.61) and that is signal, so it stays below.
On K2, a row per (planet, reference) carries the reference's name and a marker of each
planet's default row; on TESS the transit epoch is a Julian date. When a row was observed or
published, and by whom, tracks how far its vetting has got rather than what the object is.
"""

from __future__ import annotations

import html
import re
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
PROVENANCE = "provenance"
TIME = "time"
DEFAULT_ROW = "default_row"
LEAKAGE_RULES = (SEPARATES, ONE_TO_ONE, FLAG, MISSINGNESS, PROVENANCE, TIME)

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
# provenance: repeated text (distinct values at most this share of its rows) whose distinct
# values mostly read like citations. No bare year: host names such as "HD 2039" hold one.
PROVENANCE_MAX_DISTINCT_SHARE = 0.5
PROVENANCE_CITATION_SHARE = 0.5
_CITATION = re.compile(
    r"\bet\.?\s+al\b"  # Mayo et al. 2018
    r"|<a\s|\bhref\s*="  # an HTML link
    r"|\bhttps?://"  # a URL
    r"|\bdoi\s*:|\b10\.\d{4,9}/\S"  # a DOI
    r"|\barxiv\b|\b(?:astro-ph|gr-qc)/\d{7}\b",  # an arXiv id
    re.IGNORECASE,
)
# a looser pattern for lower-cased text, without the word boundaries that make a scan slow:
# one scan of all of a column's values rules most columns out
_CITATION_HINT = re.compile(r"et\.?\s+al|<a\s|href|https?://|doi|10\.\d{4,9}/|arxiv|astro-ph/|gr-qc/")
_TAG = re.compile(r"<[^>]*>")
# time: years, or an epoch counted from a distant zero (values far from 0, spread narrow)
YEAR_RANGE = (1900, 2100)
EPOCH_MIN = 10_000
EPOCH_MAX_SPREAD = 0.01  # (max - min) / max
EPOCH_MIN_DISTINCT_SHARE = 0.1
# default row: a two-valued marker occurring exactly once per value of a repeating key column
KEY_MIN_PRESENT = 0.95
KEY_DISTINCT_SHARE = (0.05, 0.95)
KEY_MIN_REPEATED_ROWS = 0.1
DEFAULT_ROW_SHARE = 0.95


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
    names = columns if columns is not None else list(frame.columns)
    markers = default_rows(frame, names)
    findings = []
    for name in names:
        column = frame[name]
        # a marker that also gives the class away keeps its leakage finding (and warning)
        finding = (
            _identifier(name, column)
            or _leakage(name, column[labelled], onehot, classes)
            or markers.get(name)
        )
        if finding is not None:
            findings.append(finding)
    return findings


def default_rows(frame: pd.DataFrame, columns: list[str] | None = None) -> dict[str, Finding]:
    """DEFAULT_ROW findings for the two-valued columns among ``columns`` (default: all): a
    column one of whose values occurs exactly once within (nearly) every value of some
    repeating key column of ``frame``, as a flag marking each planet's default row does."""
    n = len(frame)
    if n < 20:
        return {}
    factorized = {name: pd.factorize(frame[name]) for name in frame.columns}
    flags = [
        (name, *_sorted_pair(*factorized[name]))
        for name in (columns if columns is not None else list(frame.columns))
        if len(factorized[name][1]) == 2
    ]
    if not flags:
        return {}
    keys = [key for key in (_key(name, frame[name], *factorized[name]) for name in frame.columns) if key]
    found: dict[str, Finding] = {}
    for name, codes, uniques in flags:
        best: Finding | None = None
        for key_name, key_codes, distinct, repeated in keys:
            if key_name == name:
                continue
            for marker in (1, 0):  # the larger value first: 1 of 0/1, True of False
                once = np.bincount(key_codes[(codes == marker) & (key_codes >= 0)], minlength=distinct) == 1
                share = float(once.mean())
                # nearly every value, and nearly every value that repeats: a key whose values
                # are mostly single rows would otherwise pass with any near-constant column
                if share < DEFAULT_ROW_SHARE or once[repeated].mean() < DEFAULT_ROW_SHARE:
                    continue
                if best is None or share > best.score:
                    best = Finding(
                        name,
                        DEFAULT_ROW,
                        f"marks one row per value of {key_name!r} (the value {uniques[marker]} "
                        f"occurs exactly once in {_share(share)} of its {distinct:,} values): "
                        "bookkeeping of which row is the default, not physics",
                        share,
                    )
        if best is not None:
            found[name] = best
    return found


def _sorted_pair(codes: np.ndarray, uniques: Any) -> tuple[np.ndarray, Any]:
    """A two-valued column's codes with its smaller value as 0, when its values compare."""
    try:
        swap = bool(uniques[1] < uniques[0])
    except TypeError:
        swap = False
    if swap:
        return np.where(codes >= 0, 1 - codes, codes), uniques[::-1]
    return codes, uniques


def _key(
    name: str, column: pd.Series, codes: np.ndarray, uniques: Any
) -> tuple[str, np.ndarray, int, np.ndarray] | None:
    """A column that could have one default row per value: text or whole numbers, nearly
    always present, repeating but not a category. Its codes, distinct count and a mask of its
    values that occur on more than one row."""
    present = codes >= 0
    n_present = int(present.sum())
    low, high = KEY_DISTINCT_SHARE
    if n_present < KEY_MIN_PRESENT * len(codes) or not low * n_present <= len(uniques) <= high * n_present:
        return None
    if pd.api.types.is_bool_dtype(column):
        return None
    if pd.api.types.is_numeric_dtype(column) and not _whole_numbers(np.asarray(uniques, dtype=float)):
        return None
    sizes = np.bincount(codes[present], minlength=len(uniques))
    repeated = sizes > 1
    if sizes[repeated].sum() < KEY_MIN_REPEATED_ROWS * n_present:
        return None
    return name, codes, len(uniques), repeated


def _whole_numbers(values: np.ndarray) -> bool:
    return bool(np.all(values == np.round(values)))


def _share(share: float) -> str:
    """A share as a percentage that never rounds a near-miss up to 100% (or down to 0%)."""
    text = f"{share:.0%}"
    if (text == "100%" and share < 1) or (text == "0%" and share > 0):
        text = f"{share:.1%}"
    return text


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
        provenance = _provenance(name, text, uniques)
        if provenance is not None:
            return provenance
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
    time = _time(name, floats, distinct)
    if time is not None:
        return time
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


def _provenance(name: str, text: pd.Series, uniques: pd.Series) -> Finding | None:
    """Repeated text whose values mostly read like citations: et al., links, URLs, DOIs, arXiv."""
    if len(uniques) > PROVENANCE_MAX_DISTINCT_SHARE * len(text):
        return None
    values = uniques.tolist()
    if not _CITATION_HINT.search("\n".join(values).lower()):
        return None
    share = sum(1 for v in values if _CITATION.search(v)) / len(values)
    if share < PROVENANCE_CITATION_SHARE:
        return None
    counts = text.value_counts()
    example = next(v for v in counts.index if _CITATION.search(v))
    example = " ".join(html.unescape(_TAG.sub(" ", example)).split()) or example
    return Finding(
        name,
        PROVENANCE,
        f"names the sources or references rows came from ({len(uniques):,} distinct, "
        f"{_share(share)} of them citations, e.g. {example!r}): which paper published a row "
        "tells how far it was vetted, not what it is",
        share,
    )


def _time(name: str, floats: np.ndarray, distinct: int) -> Finding | None:
    """Years, or a time counted from a distant zero: all values far above 0 within a spread of
    under 1% of the largest (a Julian date, a Unix time stamp)."""
    low, high = float(floats.min()), float(floats.max())
    if low <= 0:
        return None
    why = "when a signal was observed or found tracks how far its vetting has got, not what it is"
    if YEAR_RANGE[0] <= low and high <= YEAR_RANGE[1] and distinct >= 2 and _whole_numbers(floats):
        return Finding(
            name, TIME, f"holds years ({low:.0f} to {high:.0f}, {distinct:,} distinct): {why}", 1.0
        )
    spread = (high - low) / high
    many = max(20, EPOCH_MIN_DISTINCT_SHARE * len(floats))
    if low < EPOCH_MIN or spread >= EPOCH_MAX_SPREAD or distinct < many:
        return None
    if low >= 2.4e6 and high <= 2.5e6:  # Julian days 1858 to 2132
        like = "a Julian date"
    elif (low >= 3e8 and high <= 4.2e9) or (low >= 3e11 and high <= 4.2e12):  # 1979 to 2103, s or ms
        like = "a Unix time stamp"
    else:
        like = "a time counted from a distant zero"
    return Finding(
        name,
        TIME,
        f"time-like: values from {low:,.1f} to {high:,.1f} vary by {spread:.1%} around a large "
        f"offset, like {like}; {why}",
        1.0 - spread,
    )


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
    codes, distinct = pd.factorize(values, sort=True)  # as np.unique, without sorting every row
    classes = onehot.shape[1]
    y = onehot[present].argmax(axis=1)
    counts = np.bincount(codes * classes + y, minlength=len(distinct) * classes)
    return distinct, counts.reshape(len(distinct), classes).astype(float)


def _class_aucs(scores: np.ndarray, onehot: np.ndarray) -> np.ndarray:
    """ROC-AUC of ``scores`` for each class against the rest (direction-free: max(a, 1-a))."""
    ranks = _average_ranks(scores)
    positives = onehot.sum(axis=0)
    negatives = len(scores) - positives
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = (ranks @ onehot - positives * (positives + 1) / 2) / (positives * negatives)
    return np.where(np.isnan(auc), 0.5, np.maximum(auc, 1 - auc))


def _missingness(name: str, present: np.ndarray, onehot: np.ndarray, classes: np.ndarray) -> Finding | None:
    share = 1 - present.mean()
    if share == 0 or share == 1:
        return None
    # the ROC-AUC of a 0/1 score in closed form: 0.5 + (share missing in the class - elsewhere) / 2
    missing = (~present).astype(float)
    missing_in = missing @ onehot  # per class
    positives = onehot.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        share_in = missing_in / positives
        share_out = (missing.sum() - missing_in) / (len(missing) - positives)
        auc = 0.5 + (share_in - share_out) / 2
    auc = np.where(np.isnan(auc), 0.5, np.maximum(auc, 1 - auc))
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
    values = column.to_numpy(dtype=float, na_value=np.nan)[present]
    auc = _class_aucs(values, onehot[present])
    best = int(auc.argmax())
    if auc[best] < SEPARATION_AUC:
        return None
    return Finding(
        name,
        SEPARATES,
        f"on its own it separates {classes[best]!r} from the rest almost perfectly (ROC-AUC {auc[best]:.2f})",
        float(auc[best]),
    )


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average rank (as scipy's rankdata, which the web image
    does not install: the web tier has no scikit-learn or scipy)."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    edges = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1], True])
    shared = (edges[:-1] + edges[1:] + 1) / 2.0  # the mean of positions start+1 .. end
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(shared, np.diff(edges))
    return ranks
