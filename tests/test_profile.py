"""Column profiles on the KOI table and on small synthetic columns."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from shared.data import read_table_path
from shared.errors import DataError
from shared.profile import (
    CATEGORICAL,
    CONSTANT,
    EMPTY,
    IDENTIFIER,
    NUMERIC,
    ColumnProfile,
    column_kinds,
    profile_table,
)
from tests.nasa import KOI_PATH as KOI


@pytest.fixture(scope="module")
def koi_profiles() -> dict[str, ColumnProfile]:
    profiles = profile_table(read_table_path(KOI))
    return {profile.name: profile for profile in profiles}


def _profile(values, dtype=None) -> ColumnProfile:
    (profile,) = profile_table(pd.DataFrame({"col": pd.Series(values, dtype=dtype)}))
    return profile


# --- KOI ------------------------------------------------------------------------------------


def test_koi_has_one_profile_per_column_in_order(koi_profiles):
    names = list(koi_profiles)
    assert len(names) == 49
    assert names[:4] == ["kepid", "kepoi_name", "kepler_name", "koi_disposition"]


def test_koi_identifier(koi_profiles):
    profile = koi_profiles["kepoi_name"]
    assert profile.kind == IDENTIFIER
    assert profile.distinct == 9564
    assert profile.dtype == "str"
    assert profile.top_values == ()


def test_koi_empty_column(koi_profiles):
    profile = koi_profiles["koi_teq_err1"]
    assert profile.kind == EMPTY
    assert profile.missing_fraction == 1.0
    assert (profile.distinct, profile.examples, profile.minimum, profile.maximum) == (0, (), None, None)


def test_koi_numeric_column(koi_profiles):
    profile = koi_profiles["koi_period"]
    assert profile.kind == NUMERIC
    assert profile.dtype == "float64"
    assert profile.missing_fraction == 0.0
    assert 0 < profile.minimum < 1 < profile.maximum
    assert len(profile.examples) == 3


def test_koi_label_column(koi_profiles):
    profile = koi_profiles["koi_disposition"]
    assert profile.kind == CATEGORICAL
    assert profile.distinct == 3
    assert profile.top_values == (("FALSE POSITIVE", 4839), ("CONFIRMED", 2746), ("CANDIDATE", 1979))
    assert profile.minimum is None


def test_koi_missing_fraction(koi_profiles):
    assert koi_profiles["koi_tce_delivname"].missing_fraction == 346 / 9564
    assert koi_profiles["koi_tce_delivname"].kind == CATEGORICAL


def test_koi_low_cardinality_numeric_has_top_values(koi_profiles):
    profile = koi_profiles["koi_fpflag_ss"]
    assert profile.kind == NUMERIC
    assert profile.top_values == (("0", 7338), ("1", 2226))


def test_profiles_survive_json(koi_profiles):
    for profile in koi_profiles.values():
        stored = json.loads(json.dumps(profile.to_dict(), allow_nan=False))
        assert ColumnProfile.from_dict(stored) == profile


def test_column_kinds_keep_the_underlying_nature(koi_profiles):
    kinds = column_kinds(koi_profiles.values())
    assert len(kinds) == 49
    assert kinds["koi_period"] == "numeric"
    assert kinds["koi_disposition"] == "categorical"
    assert kinds["kepoi_name"] == "categorical"  # identifier, text
    assert kinds["koi_teq_err1"] == "numeric"  # empty, float
    assert set(kinds.values()) == {"numeric", "categorical"}


# --- synthetic columns ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "dtype", "kind"),
    [
        ([1.5, 2.25, np.nan, 1.5], None, NUMERIC),
        (list(range(30)), None, IDENTIFIER),
        ([float(i) for i in range(30)] + [np.nan], None, IDENTIFIER),  # integers widened by NaN
        ([i + 0.5 for i in range(30)], None, NUMERIC),  # unique but not integer-valued
        (list(range(20)), None, NUMERIC),  # unique, but too few rows to call an identifier
        ([f"K{i:05d}" for i in range(30)], "str", IDENTIFIER),
        ([f"K{i:05d}" for i in range(20)], "str", CATEGORICAL),
        (["a", "b", None, "a"], "str", CATEGORICAL),
        (["same", None, "same"], "str", CONSTANT),
        ([7, 7, 7], None, CONSTANT),
        ([np.nan, np.nan], "float64", EMPTY),
        ([None, None], "str", EMPTY),
        ([None, None], "object", EMPTY),
        ([True, False, True], "bool", NUMERIC),
        ([True, None, False], "boolean", NUMERIC),
        ([True] * 25 + [False] * 25, "bool", NUMERIC),
        (["x", 1, None], "object", CATEGORICAL),
        ([*range(25), None], "Int64", IDENTIFIER),
        ([0.5, None, 1.5], "Float64", NUMERIC),
    ],
)
def test_kinds(values, dtype, kind):
    assert _profile(values, dtype).kind == kind


def test_boolean_column():
    profile = _profile([True, False, True, True], "bool")
    assert (profile.minimum, profile.maximum) == (0.0, 1.0)
    assert profile.top_values == (("True", 3), ("False", 1))
    assert column_kinds([profile]) == {"col": "numeric"}


def test_all_nan_column():
    profile = _profile([np.nan] * 5, "float64")
    assert profile == ColumnProfile(name="col", kind=EMPTY, dtype="float64", missing_fraction=1.0, distinct=0)
    assert column_kinds([profile]) == {"col": "numeric"}


def test_constant_text_column():
    profile = _profile(["only", "only", None, None], "str")
    assert profile.missing_fraction == 0.5
    assert profile.examples == ("only",)
    assert profile.top_values == (("only", 2),)
    assert column_kinds([profile]) == {"col": "categorical"}


def test_examples_are_the_first_distinct_values():
    assert _profile([None, "b", "a", "b", "c", "d"], "str").examples == ("b", "a", "c")
    assert _profile([3, 1, 3, 2, 5], None).examples == ("3", "1", "2")


def test_top_values_are_capped_and_ties_ordered_by_label():
    values = ["z"] * 5 + [f"v{i:02d}" for i in range(15) for _ in range(2)]
    profile = _profile(values, "str")
    assert len(profile.top_values) == 10
    assert profile.top_values[0] == ("z", 5)
    assert profile.top_values[1:3] == (("v00", 2), ("v01", 2))


def test_high_cardinality_numeric_has_no_top_values():
    assert _profile([i / 7 for i in range(50)]).top_values == ()


def test_range_ignores_infinities():
    profile = _profile([1.0, np.inf, -np.inf, 3.0])
    assert (profile.kind, profile.minimum, profile.maximum) == (NUMERIC, 1.0, 3.0)
    json.dumps(profile.to_dict(), allow_nan=False)


def test_no_rows():
    (profile,) = profile_table(pd.DataFrame({"col": pd.Series([], dtype="float64")}))
    assert (profile.kind, profile.missing_fraction) == (EMPTY, 1.0)


def test_duplicate_column_names_are_profiled_separately():
    df = pd.DataFrame([[1, "a"], [2, "b"]], columns=["x", "x"])
    assert [profile.dtype for profile in profile_table(df)] == ["int64", "str"]


def test_column_kinds_for_identifier_and_constant_columns():
    profiles = profile_table(
        pd.DataFrame({"id": range(30), "name": [f"n{i}" for i in range(30)], "one": [1.0] * 30})
    )
    assert [profile.kind for profile in profiles] == [IDENTIFIER, IDENTIFIER, CONSTANT]
    assert column_kinds(profiles) == {"id": "numeric", "name": "categorical", "one": "numeric"}


@pytest.mark.parametrize(
    "data",
    [
        {"kind": "numeric"},
        {"name": "a", "kind": "mystery", "dtype": "int64", "missing_fraction": 0, "distinct": 1},
        {"name": "a", "kind": "numeric", "dtype": "int64", "missing_fraction": "lots", "distinct": 1},
    ],
    ids=["missing-keys", "unknown-kind", "bad-number"],
)
def test_from_dict_rejects_malformed_profiles(data):
    with pytest.raises(DataError, match="malformed column profile"):
        ColumnProfile.from_dict(data)
