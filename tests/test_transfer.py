"""Across missions: the common vocabulary's columns and units, checked on rows read by hand
from the archive's exports, and Kepler → TESS against a bare scikit-learn script."""

import math

import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold, cross_val_score

from shared.catalog import BUILTINS
from shared.data import read_table_path
from shared.missions import POSITIVE, mission_names, quantities
from shared.spec import RunSpec
from shared.transfer import mission_rows, seen_stars, transfer
from shared.vocabulary import QUANTITIES
from tests.nasa import K2_PATH, TESS_PATH

pytestmark = pytest.mark.slow

# Values copied from the exports' own rows (shared/snapshots, 2025-10-04), in the units each
# table's `# COLUMN` header states: days, hours, ppm, Earth radii, K, Earth flux, K, log10(cgs), solar radii.
BY_HAND = {
    "kepler": ("kepoi_name", "K00752.01", {
        "period": 9.488035570, "duration": 2.95750, "depth": 615.80, "planet_radius": 2.26,
        "equilibrium_temperature": 793.0, "insolation": 93.59, "stellar_teff": 5455.0,
        "stellar_logg": 4.467, "stellar_radius": 0.9270, "magnitude": 15.347,
    }),
    "tess": ("toi", "1000.01", {
        "period": 2.1713484, "duration": 2.0172196, "depth": 656.8860989, "planet_radius": 5.8181633,
        "equilibrium_temperature": 3127.2040524, "insolation": 22601.9485814, "stellar_teff": 10249.0,
        "stellar_logg": 4.19, "stellar_radius": 2.16986, "magnitude": 9.604,
    }),
    "k2": ("pl_name", "K2-18 b", {
        "period": 32.939623, "planet_radius": 2.37, "equilibrium_temperature": 284.0,
        "insolation": math.nan, "stellar_teff": 3457.0, "stellar_logg": math.nan, "stellar_radius": 0.411,
        "magnitude": 13.477,
    }),
}  # fmt: skip


@pytest.fixture(scope="module")
def tables(koi):
    k2 = read_table_path(K2_PATH)
    return {"kepler": koi, "tess": read_table_path(TESS_PATH), "k2": k2[k2["default_flag"] == 1]}


@pytest.mark.parametrize("mission", list(BY_HAND))
def test_each_missions_columns_read_as_the_archive_states_them(tables, mission):
    key, value, expected = BY_HAND[mission]
    frame = tables[mission]
    rows = mission_rows(BUILTINS[mission], frame, list(expected))
    found = rows[rows[f"key:{key}"] == value]
    assert len(found) == 1
    for quantity, number in expected.items():
        got = found[quantity].iloc[0]
        assert (math.isnan(number) and math.isnan(got)) or got == pytest.approx(number, rel=1e-9), quantity
    assert set(expected) == set(BUILTINS[mission].physical)  # nothing mapped that is not checked here


def test_the_vocabulary_says_what_is_shared_and_why_not():
    shared, missing = quantities(["kepler"], "tess")
    assert shared == [q for q in QUANTITIES if q != "magnitude"]  # nine quantities
    assert missing == {"magnitude": "brightness: bands differ (Kepler, TESS)"}
    shared, missing = quantities(["kepler", "tess"], "k2")
    assert "duration" not in shared and missing["duration"] == "transit duration: not in k2"
    assert missing["depth"] == "transit depth: not in k2"
    with pytest.raises(Exception, match="also a training mission"):
        mission_names(["tess"], "tess")


def test_the_same_star_is_found_across_missions(tables):
    """TESS's all-sky survey covers the Kepler field: its TOIs on Kepler stars are matched by
    position (2″) and kept out of the test; Kepler and K2 never overlap."""
    features, _ = quantities(["kepler"], "tess")
    kepler = mission_rows(BUILTINS["kepler"], tables["kepler"], features)
    tess = mission_rows(BUILTINS["tess"], tables["tess"], features)
    seen = seen_stars(kepler, tess)
    assert 20 < seen.sum() < 500
    assert (tess.loc[seen, "dec"] > 35).all()  # the Kepler field lies around dec +44°
    k2 = mission_rows(BUILTINS["k2"], tables["k2"], quantities(["kepler"], "k2")[0])
    assert seen_stars(kepler, k2).sum() == 0


def test_kepler_to_tess_matches_a_bare_scikit_learn_script(tables):
    """The acceptance: HistGradientBoosting defaults, grouped folds: the transfer ROC-AUC,
    TESS's own and Kepler's own cross-validation within ±0.03 of the bare script's."""
    plan = {"method": "kfold", "folds": 3}
    spec = RunSpec.from_dict({"dataset": "kepler", "target": "label", "features": ["x"], "evaluation": plan})
    report, _model, ranked, _spec, _rows = transfer(tables, ["kepler"], "tess", spec, n_jobs=2)
    features = report["features"]

    def labelled(mission):
        rows = mission_rows(BUILTINS[mission], tables[mission], features)
        return rows[rows["label"].notna()]

    kepler, tess = labelled("kepler"), labelled("tess")
    bare = HistGradientBoostingClassifier(random_state=0)

    def own(rows):
        cv = StratifiedGroupKFold(3, shuffle=True, random_state=0)
        y = rows["label"] == POSITIVE
        return cross_val_score(bare, rows[features], y, groups=rows["group"], cv=cv, scoring="roc_auc").mean()

    fitted = bare.fit(kepler[features], kepler["label"] == POSITIVE)
    transferred = roc_auc_score(tess["label"] == POSITIVE, fitted.predict_proba(tess[features])[:, 1])
    assert report["transfer"]["roc_auc"]["mean"] == pytest.approx(transferred, abs=0.03)
    assert report["own_test"]["roc_auc"]["mean"] == pytest.approx(own(tess), abs=0.03)
    assert report["own_train"]["roc_auc"]["mean"] == pytest.approx(own(kepler), abs=0.03)
    assert report["cost"] > 0.03  # the shift is real
    unsettled = tables["tess"]["tfopwg_disp"].isin(["PC", "APC"]).sum()
    assert unsettled - 500 < len(ranked) <= unsettled and ranked["planet_probability"].is_monotonic_decreasing
    assert list(ranked.columns) == ["rank", "toi", "tid", "planet_probability"]
    assert {s["feature"] for s in report["shift"]} == set(features) and 0 <= report["shift"][0]["ks"] <= 1


def test_training_on_several_missions_keeps_each_star_in_one_group(tables):
    """Kepler and TESS together: a TESS signal on a Kepler star joins that star's group, so a
    grouped split of the combined rows never puts the star on both sides."""
    from shared.transfer import one_star_one_group

    features, _ = quantities(["kepler", "tess"], "k2")
    parts = [mission_rows(BUILTINS[m], tables[m], features) for m in ("kepler", "tess")]
    rows = pd.concat(parts, ignore_index=True)
    merged = one_star_one_group(rows)
    tess, kepler = rows[rows["mission"] == "tess"], rows[rows["mission"] == "kepler"]
    seen = seen_stars(kepler, tess)
    joined = merged.loc[tess.index[seen], "group"]
    assert joined.str.startswith("kepler:").all() and len(joined) == seen.sum() > 20
    assert merged["group"].nunique() < rows["group"].nunique()
    assert merged.loc[tess.index[~seen], "group"].str.startswith("tess:").all()  # the rest untouched
