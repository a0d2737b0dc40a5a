"""The generic leakage detector, calibrated on the real NASA tables (no names hard-coded in it)."""

import numpy as np
import pandas as pd
import pytest

from shared.labels import labels_as_text
from shared.leakage import (
    DEFAULT_ROW,
    FLAG,
    IDENTIFIER,
    MISSINGNESS,
    ONE_TO_ONE,
    PROVENANCE,
    SEPARATES,
    TIME,
    default_rows,
    detect,
)

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


def test_uploaded_tess_copy_flags_identifiers_and_names(tess):
    found = _flagged(tess, "tfopwg_disp")
    assert {"toi", "tid", "rastr", "decstr"} <= set(found)
    assert {found[c].rule for c in ("toi", "tid")} == {IDENTIFIER}
    assert {"toi_created", "rowupdate"} <= set(found)
    assert not {"pl_orbper", "pl_trandep", "pl_rade", "st_teff"} & set(found)


def test_uploaded_k2_copy_flags_names_and_soltype(k2):
    found = _flagged(k2, "disposition")
    assert {"pl_name", "hostname"} <= set(found)
    assert found["pl_name"].rule == IDENTIFIER
    default_rows = k2[k2["default_flag"] == 1]
    confirmed_vs_fp = _flagged(default_rows, "disposition", {"CANDIDATE": None, "REFUTED": "FALSE POSITIVE"})
    assert confirmed_vs_fp["soltype"].is_leakage
    assert confirmed_vs_fp["soltype"].reason.startswith("the value Published Candidate")
    assert confirmed_vs_fp["sy_pnum"].rule == SEPARATES


def test_uploaded_k2_copy_flags_references_default_rows_and_years(k2):
    """One row per (planet, reference): which paper a row came from, and which row is the
    planet's default, describe the archive's bookkeeping, not the planet."""
    found = _flagged(k2, "disposition")
    for name in ("disp_refname", "pl_refname", "st_refname", "sy_refname"):
        assert found[name].rule == PROVENANCE and found[name].is_leakage, found.get(name)
    assert "(135 distinct, 99% of them citations, e.g. '" in found["disp_refname"].reason
    assert "<a " not in found["pl_refname"].reason  # the link's text, not its HTML
    assert found["default_flag"].rule == DEFAULT_ROW and not found["default_flag"].is_leakage
    assert "one row per value of 'pl_name'" in found["default_flag"].reason
    assert "exactly once in 100% of its 1,806 values" in found["default_flag"].reason
    assert found["disc_year"].rule == TIME and "holds years (2011 to 2025" in found["disc_year"].reason
    assert not {"pl_orbper", "pl_rade", "pl_trandep", "st_teff", "sy_dist", "ra", "dec"} & set(found)


def test_uploaded_tess_copy_flags_the_transit_epoch_as_time(tess):
    finding = _flagged(tess, "tfopwg_disp")["pl_tranmid"]
    assert finding.rule == TIME and finding.is_leakage
    assert "values from 2,457,925.9 to 2,460,863.1 vary by 0.1%" in finding.reason
    assert "Julian date" in finding.reason


@pytest.mark.parametrize("table", ["koi", "tess"])
def test_no_default_row_markers_in_koi_or_tess(request, table):
    """KOI's koi_fpflag_* are two-valued and kepid repeats, but no flag marks one row per star."""
    assert default_rows(request.getfixturevalue(table)) == {}


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


_SURNAMES = [f"Author{i}" for i in range(60)]


@pytest.mark.parametrize(
    "cite",
    [
        lambda i: f"{_SURNAMES[i]} et al. {2010 + i % 12}",
        lambda i: f"<a refstr=REF_{i} href=https://example.org/abs/{i} target=ref>{_SURNAMES[i]} 2018</a>",
        lambda i: f"https://doi.org/10.3847/1538-3881/ab{i:04d}",
        lambda i: f"arXiv:1802.{i:05d}",
    ],
    ids=["et-al", "html-link", "doi", "arxiv"],
)
def test_a_column_naming_references_is_provenance(cite):
    rng, y = _synthetic()
    refs = pd.Series([cite(i) for i in rng.integers(0, 60, len(y))])
    [finding] = detect(pd.DataFrame({"refs": refs}), y)
    assert finding.rule == PROVENANCE and finding.is_leakage
    assert "(60 distinct, 100% of them citations, e.g. '" in finding.reason


def _keyed(rng, hosts=600):
    """A key column whose values repeat on 1 to 6 rows each, shuffled."""
    sizes = rng.integers(1, 7, hosts)
    return pd.Series(rng.permutation(np.repeat([f"host {i}" for i in range(hosts)], sizes)))


@pytest.mark.parametrize(
    ("on", "off"),
    [(1, 0), (True, False), ("default", "other")],
    ids=["int", "bool", "text-marker-sorts-first"],
)
def test_a_marker_of_one_row_per_key_is_a_default_row(on, off):
    rng = np.random.default_rng(1)
    key = _keyed(rng)
    first = ~key.duplicated(keep="first").to_numpy()  # one row per key value
    frame = pd.DataFrame({"key": key, "marker": np.where(first, on, off).astype(type(on))})
    y = pd.Series(rng.choice(["A", "B"], size=len(frame)))
    found = {f.column: f for f in detect(frame, y)}
    assert found["key"].rule == IDENTIFIER  # 600 names
    assert found["marker"].rule == DEFAULT_ROW and not found["marker"].is_leakage
    assert f"one row per value of 'key' (the value {on} occurs exactly once in 100% of its 600 values)" in (
        found["marker"].reason
    )


def test_random_and_near_constant_flags_over_a_key_are_not_default_rows():
    rng = np.random.default_rng(2)
    key = _keyed(rng)
    coin = pd.DataFrame({"key": key, "coin": rng.integers(0, 2, len(key))})
    assert default_rows(coin) == {}
    # a key of mostly single rows (900 once, 10 on ten rows each): a flag that is nearly always
    # 0 has exactly one 0 on each single row, but not on the values that repeat
    single = pd.DataFrame(
        {
            "key": np.r_[np.arange(900), np.repeat(np.arange(900, 910), 10)],
            "rare": (np.arange(1000) % 100 == 0).astype(int),
        }
    )
    assert default_rows(single) == {}
    marked = single.assign(first=(~single["key"].duplicated()).astype(int))  # the control
    assert set(default_rows(marked)) == {"first"}


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda rng, n: 1_700_000_000 + rng.integers(0, 90 * 86_400, n), "like a Unix time stamp"),
        (lambda rng, n: 2_459_000.5 + rng.random(n) * 1_500, "like a Julian date"),
        (lambda rng, n: rng.integers(2009, 2024, n), "holds years (2009 to 2023, 15 distinct)"),
    ],
    ids=["unix", "julian", "year"],
)
def test_time_columns_are_flagged(make, expected):
    rng, y = _synthetic()
    [finding] = detect(pd.DataFrame({"t": make(rng, len(y))}), y)
    assert finding.rule == TIME and finding.is_leakage
    assert expected in finding.reason


@pytest.mark.parametrize(
    "make",
    [
        lambda rng, n: rng.uniform(279, 302, n),  # like KOI's right ascension: a 7% spread
        lambda rng, n: rng.integers(2_500, 7_000, n).astype(float),  # temperatures, whole numbers
        lambda rng, n: np.array([f"HD {v}" for v in rng.choice([2039, 1999, 2010, 2100, 47, 189733], n)]),
        lambda rng, n: pd.Series([f"HD {v}" for v in rng.integers(1_900, 2_100, n)]),  # 200 names
        lambda rng, n: rng.integers(0, 2, n),  # a coin
    ],
    ids=["ra-like", "temperatures", "few-host-names", "host-names-with-years", "coin"],
)
def test_physical_columns_and_host_names_are_not_time_or_provenance(make):
    rng, y = _synthetic()
    assert not {f.rule for f in detect(pd.DataFrame({"x": make(rng, len(y))}), y)} & {TIME, PROVENANCE}


def test_unlabelled_rows_are_ignored():
    rng, y = _synthetic()
    y[:100] = None
    frame = pd.DataFrame({"x": rng.normal(size=len(y))})
    assert detect(frame, y) == []


def test_average_ranks_match_scipy():
    """The detector ranks without scipy (the web image has none); ties share their mean rank."""
    from scipy.stats import rankdata

    from shared.leakage import _average_ranks

    rng = np.random.default_rng(1)
    for size in (1, 2, 17, 500):
        values = rng.integers(0, 7, size=size).astype(float)
        assert np.array_equal(_average_ranks(values), rankdata(values))
