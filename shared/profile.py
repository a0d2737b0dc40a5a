"""Column profiles: what each column of a table holds, and what it can be used for."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from shared.errors import DataError

NUMERIC = "numeric"
CATEGORICAL = "categorical"
IDENTIFIER = "identifier"
CONSTANT = "constant"
EMPTY = "empty"
KINDS = (NUMERIC, CATEGORICAL, IDENTIFIER, CONSTANT, EMPTY)

IDENTIFIER_DISTINCT_FRACTION = 0.95
IDENTIFIER_MIN_VALUES = 20  # an identifier needs more non-missing values than this
LOW_CARDINALITY = 20  # numeric columns with at most this many distinct values get top_values
MAX_EXAMPLES = 3
MAX_TOP_VALUES = 10


@dataclass(frozen=True)
class ColumnProfile:
    """A summary of one column. ``minimum``/``maximum`` cover finite values of numeric columns."""

    name: str
    kind: str
    dtype: str
    missing_fraction: float
    distinct: int
    examples: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    top_values: tuple[tuple[str, int], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "dtype": self.dtype,
            "missing_fraction": self.missing_fraction,
            "distinct": self.distinct,
            "examples": list(self.examples),
            "minimum": self.minimum,
            "maximum": self.maximum,
            "top_values": [[value, count] for value, count in self.top_values],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnProfile:
        """Rebuild a profile from :meth:`to_dict` output (for example after a JSON round trip)."""
        try:
            profile = cls(
                name=str(data["name"]),
                kind=str(data["kind"]),
                dtype=str(data["dtype"]),
                missing_fraction=float(data["missing_fraction"]),
                distinct=int(data["distinct"]),
                examples=tuple(str(value) for value in data.get("examples", ())),
                minimum=_optional_float(data.get("minimum")),
                maximum=_optional_float(data.get("maximum")),
                top_values=tuple((str(value), int(count)) for value, count in data.get("top_values", ())),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"malformed column profile: {exc!r}") from None
        if profile.kind not in KINDS:
            raise DataError(f"malformed column profile: unknown kind {profile.kind!r}")
        return profile


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def profile_table(df: pd.DataFrame) -> list[ColumnProfile]:
    """Profile every column of ``df``, in order."""
    return [_profile_column(str(name), df.iloc[:, position]) for position, name in enumerate(df.columns)]


def column_kinds(profiles: Iterable[ColumnProfile]) -> dict[str, str]:
    """Map each column to "numeric" or "categorical", the way a model would treat it.

    Identifier, constant and empty columns keep the nature of their dtype, so a user who opts
    one in can still train on it.
    """
    kinds: dict[str, str] = {}
    for profile in profiles:
        if profile.kind in (NUMERIC, CATEGORICAL):
            kinds[profile.name] = profile.kind
        else:
            kinds[profile.name] = NUMERIC if _is_numeric_dtype_name(profile.dtype) else CATEGORICAL
    return kinds


def _is_numeric_dtype_name(dtype: str) -> bool:
    try:
        return pd.api.types.is_numeric_dtype(pd.api.types.pandas_dtype(dtype))
    except TypeError:
        return False


# --- one column ----------------------------------------------------------------------------


def _profile_column(name: str, column: pd.Series) -> ColumnProfile:
    values = column.dropna()
    rows = len(column)
    missing_fraction = (rows - len(values)) / rows if rows else 1.0
    distinct = int(values.nunique())
    numeric = _is_numeric(column)
    kind = _kind(column, values, distinct, numeric)
    minimum, maximum = _finite_range(values) if numeric and len(values) else (None, None)
    wants_top = kind in (CATEGORICAL, CONSTANT) or (numeric and 0 < distinct <= LOW_CARDINALITY)
    return ColumnProfile(
        name=name,
        kind=kind,
        dtype=str(column.dtype),
        missing_fraction=missing_fraction,
        distinct=distinct,
        examples=_examples(values),
        minimum=minimum,
        maximum=maximum,
        top_values=_top_values(values) if wants_top else (),
    )


def _is_numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_complex_dtype(column.dtype)


def _kind(column: pd.Series, values: pd.Series, distinct: int, numeric: bool) -> str:
    if distinct == 0:
        return EMPTY
    if distinct == 1:
        return CONSTANT
    if pd.api.types.is_bool_dtype(column.dtype):
        return NUMERIC
    mostly_unique = _mostly_unique(len(values), distinct)
    if numeric:
        return IDENTIFIER if mostly_unique and _integer_valued(values) else NUMERIC
    return IDENTIFIER if mostly_unique else CATEGORICAL


def _mostly_unique(present: int, distinct: int) -> bool:
    return present > IDENTIFIER_MIN_VALUES and distinct >= IDENTIFIER_DISTINCT_FRACTION * present


def _integer_valued(values: pd.Series) -> bool:
    if pd.api.types.is_integer_dtype(values.dtype):
        return True
    array = values.to_numpy(dtype="float64")
    return bool(np.all(np.isfinite(array)) and np.all(array == np.floor(array)))


def _finite_range(values: pd.Series) -> tuple[float | None, float | None]:
    # Infinite values would make the range useless and are not valid JSON; clean_numeric() reports them.
    array = values.to_numpy(dtype="float64")
    array = array[np.isfinite(array)]
    if not array.size:
        return None, None
    return float(array.min()), float(array.max())


def _examples(values: pd.Series) -> tuple[str, ...]:
    return tuple(str(value) for value in values.drop_duplicates().head(MAX_EXAMPLES).tolist())


def _top_values(values: pd.Series) -> tuple[tuple[str, int], ...]:
    counts = values.value_counts()
    if len(counts) > MAX_TOP_VALUES:
        counts = counts[counts >= counts.iloc[MAX_TOP_VALUES - 1]]
    labels = [str(value) for value in counts.index.tolist()]
    # Sort by count, then label, so ties come out the same however the table was read.
    ranked = sorted(zip(labels, counts.tolist(), strict=True), key=lambda pair: (-pair[1], pair[0]))
    return tuple((label, int(count)) for label, count in ranked[:MAX_TOP_VALUES])
