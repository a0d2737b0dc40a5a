"""Across missions: train on one survey (or several), test and score on another, in the common
physical vocabulary (shared.vocabulary). The cost of the shift is one number: the test
mission's score under the transferred model against its own grouped cross-validation on the
same features, beside the training mission's own.

Honest by construction: both own cross-validations are grouped by host star, and a star seen
in training is never scored as a test row (stars are matched across missions by position,
within MATCH_ARCSEC; Kepler's and K2's fields do not overlap, TESS's all-sky survey covers
both)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from shared.catalog import BUILTINS, Builtin
from shared.errors import DataError
from shared.evaluation import Prepared, curves, evaluate, fold_metrics, train_final
from shared.labels import apply_mapping, labels_as_text
from shared.missions import NEGATIVE, POSITIVE, SETUP, quantities
from shared.spec import RunSpec
from shared.thresholds import predicted_classes
from shared.vocabulary import QUANTITIES, physical_frame

CLASSES = [NEGATIVE, POSITIVE]
MATCH_ARCSEC = 2.0
SHOWN = ("roc_auc", "pr_auc", "balanced_accuracy", "log_loss")
RELIABILITY_BINS = 10


def mission_rows(mission: Builtin, frame: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """A mission's rows in the common vocabulary, with the two classes (missing where the setup
    leaves a row out), whether the row is unsettled (a candidate), its host group, its key
    columns and its position."""
    raw = labels_as_text(frame[mission.target])
    out = physical_frame(frame, mission.physical, features)
    out["label"] = apply_mapping(raw, mission.setup(SETUP).mapping)
    out["unsettled"] = raw.isin(mission.setups[-1].score_classes).to_numpy()
    hosts = labels_as_text(frame[mission.group_column])
    out["group"] = mission.id + ":" + hosts.fillna(pd.Series(frame.index.astype(str), index=frame.index))
    out["mission"] = mission.id
    ra, dec = mission.position
    out["ra"] = pd.to_numeric(frame[ra], errors="coerce")
    out["dec"] = pd.to_numeric(frame[dec], errors="coerce")
    for key in mission.key_columns:
        out[f"key:{key}"] = frame[key].astype("string")
    return out.reset_index(drop=True)


def _unit_vectors(rows: pd.DataFrame) -> np.ndarray:
    ra, dec = np.radians(rows["ra"].to_numpy(float)), np.radians(rows["dec"].to_numpy(float))
    return np.column_stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])


def seen_stars(training: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    """Which test rows lie within MATCH_ARCSEC of a training row: the same star."""
    from scipy.spatial import cKDTree

    known = training.dropna(subset=["ra", "dec"])
    where = test[["ra", "dec"]].notna().all(axis=1).to_numpy()
    seen = np.zeros(len(test), dtype=bool)
    if known.empty or not where.any():
        return seen
    chord = 2 * np.sin(np.radians(MATCH_ARCSEC / 3600) / 2)
    distance, _ = cKDTree(_unit_vectors(known)).query(_unit_vectors(test[where]), distance_upper_bound=chord)
    seen[where] = np.isfinite(distance)
    return seen


def one_star_one_group(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows of several missions with the host groups of one star merged: a star two missions
    both observed (matched by position within MATCH_ARCSEC) is one group, so a grouped split
    never puts it on both sides."""
    missions = list(dict.fromkeys(rows["mission"]))
    if len(missions) < 2:
        return rows
    parent = {g: g for g in rows["group"].unique()}

    def root(g: str) -> str:
        while parent[g] != g:
            parent[g] = parent[parent[g]]
            g = parent[g]
        return g

    from scipy.spatial import cKDTree

    chord = 2 * np.sin(np.radians(MATCH_ARCSEC / 3600) / 2)
    placed = rows.dropna(subset=["ra", "dec"])
    for i, first in enumerate(missions):
        for second in missions[i + 1 :]:
            a, b = placed[placed["mission"] == first], placed[placed["mission"] == second]
            if a.empty or b.empty:
                continue
            distance, nearest = cKDTree(_unit_vectors(a)).query(_unit_vectors(b), distance_upper_bound=chord)
            for found, j in zip(np.isfinite(distance), range(len(b)), strict=True):
                if found:
                    parent[root(b["group"].iloc[j])] = root(a["group"].iloc[nearest[j]])
    return rows.assign(group=rows["group"].map(root))


def _spec(spec: RunSpec, dataset: str, features: list[str]) -> RunSpec:
    """The run's model and plan on the common vocabulary's columns."""
    return spec.replace(
        dataset=dataset, target="label", features=features, group_column="group", label_mapping=None,
        positive_class=POSITIVE, score_classes=[], class_roles=None, label_setup=SETUP, threshold=None,
        calibration="none", feature_selection={"method": "none", "strength": 1.0},
    )  # fmt: skip


def _scores(truth: np.ndarray, proba: np.ndarray) -> dict[str, Any]:
    predicted = predicted_classes(proba, CLASSES, POSITIVE)
    return {
        k: {"mean": v, "std": None}
        for k, v in fold_metrics(truth, predicted, proba, CLASSES, POSITIVE).items()
    }


def _reliability(truth: np.ndarray, scores: np.ndarray) -> dict[str, list[float]]:
    edges = np.linspace(0, 1, RELIABILITY_BINS + 1)
    which = np.clip(np.digitize(scores, edges[1:-1]), 0, RELIABILITY_BINS - 1)
    x, y = [], []
    for b in range(RELIABILITY_BINS):
        chosen = which == b
        if chosen.sum() >= 5:
            x.append(float(scores[chosen].mean()))
            y.append(float((truth[chosen] == POSITIVE).mean()))
    return {"x": x, "y": y}


def shift(training: pd.DataFrame, test: pd.DataFrame, features: list[str]) -> list[dict[str, Any]]:
    """Per feature: how far the test rows' distribution lies from the training rows' (the
    two-sample Kolmogorov-Smirnov statistic: 0 alike, 1 disjoint), with medians and missing shares."""
    from scipy.stats import ks_2samp

    rows = []
    for name in features:
        a, b = training[name].dropna().to_numpy(), test[name].dropna().to_numpy()
        statistic = float(ks_2samp(a, b).statistic) if len(a) and len(b) else float("nan")
        rows.append({
            "feature": name, "label": QUANTITIES[name].label, "unit": QUANTITIES[name].unit,
            "ks": statistic, "train_median": float(np.median(a)) if len(a) else None,
            "test_median": float(np.median(b)) if len(b) else None,
            "train_missing": float(training[name].isna().mean()),
            "test_missing": float(test[name].isna().mean()),
        })  # fmt: skip
    return sorted(rows, key=lambda r: -np.nan_to_num(r["ks"]))


def transfer(
    frames: Mapping[str, pd.DataFrame],
    train: Sequence[str],
    test: str,
    spec: RunSpec,
    *,
    n_jobs: int = 1,
    progress: Callable[[str, float], None] = lambda text, share: None,
) -> tuple[dict[str, Any], Any, pd.DataFrame, RunSpec, Prepared]:
    """The report; the model trained on all of ``train``'s labelled rows; the test mission's
    unsettled rows ranked by its planet probability; the spec and rows it was trained with."""
    features, missing = quantities(train, test)
    if not features:
        raise DataError("the missions share no physical quantity")
    parts = [mission_rows(BUILTINS[m], frames[m], features) for m in train]
    training = one_star_one_group(pd.concat(parts, ignore_index=True))
    testing = mission_rows(BUILTINS[test], frames[test], features)
    seen = seen_stars(training, testing)
    kinds = dict.fromkeys(features, "numeric")
    train_spec, test_spec = _spec(spec, "+".join(train), features), _spec(spec, test, features)

    progress(
        f"{' + '.join(train)}: its own grouped cross-validation on {len(features)} shared features", 0.05
    )
    own_train = evaluate(training, train_spec, kinds, n_jobs=n_jobs).to_dict()
    progress(f"{test}: its own grouped cross-validation on the same features", 0.35)
    own_test_result = evaluate(testing[~seen].reset_index(drop=True), test_spec, kinds, n_jobs=n_jobs)
    own_test = own_test_result.to_dict()
    progress(f"Training on every labelled row of {' + '.join(train)}, testing on {test}", 0.7)
    model, prepared, _ = train_final(training, train_spec, kinds, n_jobs=n_jobs)
    scored = testing[~seen & testing["label"].notna()]
    proba = pd.DataFrame(model.predict_proba(scored[features]), columns=list(model.classes_))[
        CLASSES
    ].to_numpy()
    truth = scored["label"].astype(str).to_numpy()
    transferred = _scores(truth, proba)
    oof = pd.DataFrame({"true": truth, **{f"proba_{c}": proba[:, i] for i, c in enumerate(CLASSES)}})
    own_oof = own_test_result.out_of_fold
    own_scores = own_oof[f"proba_{POSITIVE}"].to_numpy()
    report = {
        "train": list(train),
        "test": test,
        "features": features,
        "missing": missing,
        "units": {f: QUANTITIES[f].unit for f in features},
        "rows": {"train": int(prepared.labels.size), "test": len(scored), "seen_stars": int(seen.sum())},
        "model": {"family": spec.model.family, "params": dict(spec.model.params)},
        "transfer": transferred,
        "own_train": {k: own_train["metrics"][k] for k in SHOWN if k in own_train["metrics"]},
        "own_test": {k: own_test["metrics"][k] for k in SHOWN if k in own_test["metrics"]},
        "protocol": own_test["protocol"],
        "curves": {
            "transfer": {
                "roc": curves(oof, CLASSES, POSITIVE)["roc"][0],
                "reliability": _reliability(truth, proba[:, 1]),
            },
            "own_test": {
                "roc": own_test["curves"]["roc"][0],
                "reliability": _reliability(own_oof["true"].to_numpy(), own_scores),
            },
        },
        "shift": shift(training[training["label"].notna()], scored, features),
    }
    report["cost"] = report["own_test"]["roc_auc"]["mean"] - transferred["roc_auc"]["mean"]
    progress(f"Ranking {test}'s unsettled rows", 0.9)
    ranked = _ranked(model, testing[testing["unsettled"] & ~seen], features)
    report["candidates"] = len(ranked)
    return report, model, ranked, train_spec, prepared


def _ranked(model: Any, rows: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    keys = [c for c in rows.columns if c.startswith("key:")]
    out = rows[keys].rename(columns=lambda c: c.removeprefix("key:")).reset_index(drop=True)
    if len(rows):
        proba = model.predict_proba(rows[features])[:, list(model.classes_).index(POSITIVE)]
    else:
        proba = np.array([])
    out["planet_probability"] = proba
    out = out.sort_values("planet_probability", ascending=False, kind="stable").reset_index(drop=True)
    out.insert(0, "rank", range(1, len(out) + 1))
    return out
