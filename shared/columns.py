"""Which columns to offer as features, which to leave out by default, and why.

Combines a dataset's known columns (built-in tables), the column profile and the generic
leakage detector into one piece of advice per column. The user can opt any column back in;
a leakage column in a run's features then puts a warning on every metric view.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from shared.catalog import KnownColumn
from shared.labels import apply_mapping, labels_as_text
from shared.leakage import IDENTIFIER as IDENTIFIER_RULE
from shared.leakage import detect
from shared.profile import CONSTANT, EMPTY, IDENTIFIER, ColumnProfile

MAX_KEY_COLUMNS = 3


@dataclass(frozen=True)
class ColumnAdvice:
    name: str
    kind: str
    excluded: bool  # left out of the features by default
    leakage: bool  # known or detected to give the label away
    reasons: tuple[str, ...]
    identifier: bool = False  # detected as an identifier or name (a key for outputs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "excluded": self.excluded,
            "leakage": self.leakage,
            "reasons": list(self.reasons),
            "identifier": self.identifier,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnAdvice:
        return cls(
            str(data["name"]),
            str(data["kind"]),
            bool(data["excluded"]),
            bool(data["leakage"]),
            tuple(str(r) for r in data["reasons"]),
            bool(data.get("identifier", False)),
        )


def advise(
    frame: pd.DataFrame,
    profiles: Sequence[ColumnProfile],
    target: str,
    labels: pd.Series,
    group_column: str | None = None,
    known: Mapping[str, KnownColumn] | None = None,
) -> list[ColumnAdvice]:
    """One piece of advice per column except the target, in the table's order.

    ``labels`` are the target after the label setup's mapping (missing where a row is left out).
    """
    known = known or {}
    candidates = [p.name for p in profiles if p.name != target]
    findings = {f.column: f for f in detect(frame, labels, candidates)}
    advice = []
    for profile in profiles:
        if profile.name == target:
            continue
        reasons, leakage = [], False
        if profile.name == group_column and profile.name not in known:
            reasons.append("the group column: it keeps related rows on one side of every split")
        if profile.name in known:
            reasons.append(known[profile.name].reason)
            leakage = known[profile.name].leakage
        finding = findings.get(profile.name)
        if finding is not None:
            reasons.append(f"detected: {finding.reason}")
            leakage = leakage or finding.is_leakage
        if profile.kind == EMPTY:
            reasons.append("entirely empty")
        elif profile.kind == CONSTANT:
            reasons.append("holds a single value")
        identifier = finding is not None and finding.rule == IDENTIFIER_RULE
        advice.append(
            ColumnAdvice(profile.name, profile.kind, bool(reasons), leakage, tuple(reasons), identifier)
        )
    return advice


def default_features(advice: Iterable[ColumnAdvice]) -> list[str]:
    return [a.name for a in advice if not a.excluded]


def key_columns(advice: Iterable[ColumnAdvice], known_keys: Sequence[str] = ()) -> list[str]:
    """Columns that identify a row in templates and outputs: a built-in's own, else an upload's
    identifier columns (unique per row first, then names the detector found)."""
    if known_keys:
        return list(known_keys)
    advice = list(advice)
    unique = [a.name for a in advice if a.kind == IDENTIFIER]
    named = [a.name for a in advice if a.identifier and a.name not in unique]
    return (unique + named)[:MAX_KEY_COLUMNS]


def leakage_warnings(features: Iterable[str], advice: Iterable[ColumnAdvice]) -> list[str]:
    """One line per chosen feature that is known or detected to leak the label."""
    by_name = {a.name: a for a in advice}
    return [
        f"{name}: {'; '.join(by_name[name].reasons)}"
        for name in features
        if name in by_name and by_name[name].leakage
    ]


def advise_setup(
    frame: pd.DataFrame,
    profiles: Sequence[ColumnProfile],
    target: str,
    mapping: Mapping[str, str | None] | None,
    group_column: str | None = None,
    known: Mapping[str, KnownColumn] | None = None,
) -> list[ColumnAdvice]:
    """:func:`advise` for a label setup: the target's classes after its mapping."""
    labels = apply_mapping(labels_as_text(frame[target]), mapping)
    return advise(frame, profiles, target, labels, group_column, known)
