"""The generic leakage detector, calibrated on the real NASA tables (no names hard-coded in it)."""

import numpy as np
import pandas as pd
import pytest

from shared.data import read_table_path
from shared.labels import labels_as_text
from shared.leakage import FLAG, IDENTIFIER, MISSINGNESS, ONE_TO_ONE, SEPARATES, detect
from tests.nasa import K2_PATH, TESS_PATH

KOI_FLAGGED = {
    "kepoi_name",
    "kepler_name",
    "koi_pdisposition",
    "koi_score",
    "koi_fpflag_nt",
    "koi_fpflag_ss",
    "koi_fpflag_co",
    "koi_fpflag_ec",
}
PHYSICAL = {"koi_period", "koi_prad", "koi_depth", "koi_model_snr", "koi_teq", "koi_duration", "koi_impact"}


def _flagged(frame, target, mapping=None):
    labels = labels_as_text(frame[target])
    if mapping:
        labels = labels.map(lambda v: mapping.get(v, v))
    return {f.column: f for f in detect(frame, labels, [c for c in frame.columns if c != target])}


@pytest.mark.parametrize("mapping", [None, {"CONFIRMED": "PLANET", "CANDIDATE": "PLANET"}])
def test_uploaded_koi_copy(koi, mapping):
    found = _flagged(koi, "koi_disposition", mapping)
    assert set(found) == KOI_FLAGGED  # and nothing else: physical columns are signal
    assert not PHYSICAL & set(found)
    assert found["koi_score"].rule == SEPARATES and "ROC-AUC 0.97" in found["koi_score"].reason
    assert found["koi_fpflag_co"].rule == FLAG
    assert "means 'FALSE POSITIVE' in 100.0%" in found["koi_fpflag_co"].reason
    assert found["kepoi_name"].rule == IDENTIFIER and not found["kepoi_name"].is_leakage


def test_deep_transits_are_signal_not_leakage(koi):
    """koi_depth really does point to eclipsing binaries; it must not be flagged."""
    labels = koi["koi_disposition"]
    assert "koi_depth" not in {f.column for f in detect(koi, labels, ["koi_depth"])}
    deep = koi["koi_depth"] > koi["koi_depth"].quantile(0.9)
    assert (labels[deep] == "FALSE POSITIVE").mean() > 0.8  # the physics is real


def test_uploaded_tess_copy_flags_identifiers_and_names():
    tess = read_table_path(TESS_PATH)
    found = _flagged(tess, "tfopwg_disp")
    assert {"toi", "tid", "rastr", "decstr"} <= set(found)
    assert {found[c].rule for c in ("toi", "tid")} == {IDENTIFIER}
    assert {"toi_created", "rowupdate"} <= set(found)
    assert not {"pl_orbper", "pl_trandep", "pl_rade", "st_teff"} & set(found)


def test_uploaded_k2_copy_flags_names_and_soltype():
    k2 = read_table_path(K2_PATH)
    found = _flagged(k2, "disposition")
    assert {"pl_name", "hostname"} <= set(found)
    assert found["pl_name"].rule == IDENTIFIER
    default_rows = k2[k2["default_flag"] == 1]
    confirmed_vs_fp = _flagged(default_rows, "disposition", {"CANDIDATE": None, "REFUTED": "FALSE POSITIVE"})
    assert confirmed_vs_fp["soltype"].is_leakage
    assert confirmed_vs_fp["soltype"].reason.startswith("the value Published Candidate")
    assert confirmed_vs_fp["sy_pnum"].rule == SEPARATES


def _synthetic(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    y = pd.Series(rng.choice(["A", "B"], size=n))
    return rng, y


def test_rare_pure_values_are_not_a_flag():
    rng, y = _synthetic()
    rare = pd.Series(np.where(rng.random(len(y)) < 0.02, 1, 0))  # 2% of rows
    rare[(rare == 1) & (y == "B")] = 0  # the rare value is pure "A"
    assert detect(pd.DataFrame({"rare": rare}), y) == []


def test_categorical_one_to_one_and_missingness_are_found():
    rng, y = _synthetic()
    # a 12-category column that spells the class out (too many values to be a flag)
    spelled = y.map({"A": "a", "B": "b"}) + pd.Series(rng.integers(0, 6, len(y))).astype(str)
    hint = pd.Series(rng.normal(size=len(y))).where(y == "A")  # missing whenever the class is B
    noise = pd.Series(rng.normal(size=len(y)))
    found = {f.column: f for f in detect(pd.DataFrame({"spelled": spelled, "hint": hint, "noise": noise}), y)}
    assert found["spelled"].rule == ONE_TO_ONE
    assert found["hint"].rule == MISSINGNESS
    assert "(ROC-AUC 1.00): missing in 0% of 'A' rows and 100% of the others" in found["hint"].reason
    assert "noise" not in found


def test_unlabelled_rows_are_ignored():
    rng, y = _synthetic()
    y[:100] = None
    frame = pd.DataFrame({"x": rng.normal(size=len(y))})
    assert detect(frame, y) == []
