"""Rank the rows a run left out of training (e.g. KOI candidates) by their probability."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import pandas as pd

from shared.csv_safety import safe_frame
from shared.errors import DataError
from shared.labels import labels_as_text
from shared.spec import RunSpec


def score_rows(
    pipe: Any, frame: pd.DataFrame, spec: RunSpec, positive_class: str, key_columns: Sequence[str] = ()
) -> pd.DataFrame:
    """The rows whose raw class is in ``spec.score_classes``, most probable first.

    Columns: rank, the key columns present in ``frame``, the raw class, and the probability
    of ``positive_class``.
    """
    if not spec.score_classes:
        raise DataError("this run's label setup scores no rows")
    raw = labels_as_text(frame[spec.target])
    rows = frame[raw.isin(spec.score_classes).to_numpy()]
    column = f"probability_{positive_class}"
    proba = pipe.predict_proba(rows[list(spec.features)])[:, list(pipe.classes_).index(positive_class)]
    keys = [k for k in key_columns if k in frame.columns and k != spec.target]
    ranked = rows[keys].assign(**{spec.target: raw[rows.index], column: proba})
    ranked = ranked.sort_values(column, ascending=False, kind="stable").reset_index(drop=True)
    ranked.insert(0, "rank", range(1, len(ranked) + 1))
    return ranked


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """CSV with text cells a spreadsheet would run as formulas neutralised (shared.csv_safety)."""
    buffer = io.StringIO()
    safe_frame(frame).to_csv(buffer, index=False)
    return buffer.getvalue().encode()
