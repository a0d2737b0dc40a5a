"""An example row of a run's training table, to fill the single-row predict form with."""

from __future__ import annotations

import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from shared.errors import DataError


@dataclass(frozen=True)
class Example:
    values: dict[str, str]  # feature -> the text the form shows ("" for missing)
    described_as: str  # which row it is, e.g. "kepoi_name K00752.01 (row 1)"
    label: str | None  # its class in the table, as the table has it


def _as_text(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    if isinstance(value, float):
        return repr(float(value))  # the shortest text that reads back as the same number
    return str(value)


def example_row(
    frame: pd.DataFrame, features: Sequence[str], target: str, keys: Sequence[str], wanted: str = ""
) -> Example:
    """The row whose first key column holds ``wanted`` (any key column if the first has none),
    or a random row when ``wanted`` is empty."""
    wanted = wanted.strip()
    if not wanted:
        position = secrets.randbelow(len(frame))
    else:
        position = None
        for key in keys:
            hits = (frame[key].astype(str).str.strip() == wanted).to_numpy().nonzero()[0]
            if len(hits):
                position = int(hits[0])
                break
        if position is None:
            named = " or ".join(keys) if keys else "a key column"
            raise DataError(f"no row has {named} equal to {wanted!r}")
    row = frame.iloc[position]
    shown = ", ".join(f"{k} {_as_text(row[k])}" for k in keys if _as_text(row[k]))
    label = _as_text(row[target]) if target in frame.columns else ""
    return Example(
        {f: _as_text(row[f]) for f in features if f in frame.columns},
        f"{shown} (row {position + 1:,})" if shown else f"row {position + 1:,}",
        label or None,
    )
