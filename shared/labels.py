"""Class labels as text, and a label setup's mapping applied to them (no scikit-learn here)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd


def labels_as_text(column: pd.Series) -> pd.Series:
    """Labels as strings with missing values kept missing; 1.0 and 1 both become '1'."""
    if pd.api.types.is_float_dtype(column):
        values = column.to_numpy(dtype=float, na_value=np.nan)
        if np.all(np.isnan(values) | (values == np.round(values))):
            return column.map(lambda v: None if pd.isna(v) else str(int(v)), na_action=None)
    return column.map(lambda v: None if pd.isna(v) else str(v).strip() or None)


def apply_mapping(labels: pd.Series, mapping: Mapping[str, str | None] | None) -> pd.Series:
    """Rename (merge) classes; a class mapped to None is dropped (becomes missing)."""
    if mapping is None:
        return labels
    return labels.map(lambda v: mapping.get(v, v) if isinstance(v, str) else v)
