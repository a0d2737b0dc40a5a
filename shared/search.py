"""Lightweight hyperparameter search: successive halving over the schema's ranges.

Candidates are drawn from the same schema the form validates against (log scale where the
schema says so) plus the family's defaults. Each round scores the survivors with the run's
own splits (grouped and stratified as in evaluation) on a growing share of the rows, keeps
the best third, and reports a progress line; the last round uses every row, and the defaults
always reach it, so the search says honestly whether it beat them. A time budget is checked
between fits, so the search stops on time with what it has.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from shared.errors import DataError, MissionError
from shared.evaluation import Prepared, _aligned_proba, fit_model, prepare, splits
from shared.params import BOOL, CHOICE, FLOAT, INT, INT_LIST, Param, family
from shared.spec import EvaluationPlan, RunSpec

Progress = Callable[[str, float], None]
ETA = 3  # keep the best third each round


@dataclass
class Candidate:
    number: int
    params: dict[str, Any]
    scores: list[float] = field(default_factory=list)  # mean CV score per round reached
    rows: list[int] = field(default_factory=list)

    @property
    def score(self) -> float:
        return self.scores[-1] if self.scores else math.nan


def sample_params(family_key: str, count: int, seed: int) -> list[dict[str, Any]]:
    """The defaults first, then ``count - 1`` random draws from the schema's ranges."""
    rng = np.random.default_rng(seed)
    fam = family(family_key)
    draws = [fam.defaults()]
    for _ in range(count - 1):
        draws.append({p.name: _draw(p, rng) for p in fam.params})
    return draws


def _draw(p: Param, rng: np.random.Generator) -> Any:
    if p.kind == CHOICE:
        return str(rng.choice(p.choices))
    if p.kind == BOOL:
        return p.default  # a setting of intent (balancing), not a knob to search
    if p.kind == INT_LIST:
        return tuple(int(v) for v in rng.choice([16, 32, 64, 128], size=rng.integers(1, 3)))
    low, high = float(p.low), float(p.high)
    if p.optional and rng.random() < 0.3:
        return None
    if p.log_scale and low > 0:
        value = math.exp(rng.uniform(math.log(low), math.log(high)))
    else:
        high = min(high, low + _SPAN.get(p.name, high - low))
        value = rng.uniform(low, high)
    return round(value) if p.kind == INT else float(value) if p.kind == FLOAT else value


# Upper ends the search explores, narrower than what the form allows (which stays valid)
_SPAN = {
    "max_iter": 490,
    "n_estimators": 490,
    "max_leaf_nodes": 126,
    "max_depth": 15,
    "min_samples_leaf": 199,
    "min_samples_split": 48,
    "l2_regularization": 10.0,
}


class BudgetTooSmall(MissionError):
    """Not one candidate could be scored within the search's time budget."""


def _score(truth: np.ndarray, proba: np.ndarray, data: Prepared) -> float:
    from sklearn import metrics as skm

    if data.positive_class is not None:
        return float(
            skm.roc_auc_score(truth == data.positive_class, proba[:, data.classes.index(data.positive_class)])
        )
    return float(skm.balanced_accuracy_score(truth, np.asarray(data.classes)[proba.argmax(axis=1)]))


def _cross_validate(
    spec: RunSpec,
    kinds: Mapping[str, str],
    data: Prepared,
    folds: list[tuple[np.ndarray, np.ndarray]],
    n_jobs: int,
    deadline: float,
) -> float | None:
    y = data.labels.to_numpy()
    scores = []
    for train, test in folds:
        if time.monotonic() > deadline:
            return None
        model, _ = fit_model(spec, kinds, data.features.iloc[train], data.labels.iloc[train], n_jobs)
        scores.append(_score(y[test], _aligned_proba(model, data.features.iloc[test], data.classes), data))
    return float(np.mean(scores))


def _groups_needed(plan: EvaluationPlan) -> int:
    """How many groups the plan's splits ask for (as ``splits`` counts them)."""
    return plan.folds if plan.method == "kfold" else max(2, round(1 / plan.test_size))


def _subsample(data: Prepared, share: float, seed: int, need: int = 1) -> Prepared:
    """A share of the rows, taken by whole groups (or rows), so grouped splits stay grouped.

    At least ``need`` groups stay in (the folds the splits ask for), so a table with few groups
    still splits: when the share of the groups would be fewer, ``need`` groups are kept and
    thinned to about the share of the rows, within each group and class, so every row of a
    group still lands in that group's fold.
    """
    if share >= 1:
        return data
    rng = np.random.default_rng(seed)
    keys = data.groups if data.groups is not None else pd.Series(np.arange(len(data.labels)))
    unique = keys.unique()
    size = max(1, int(len(unique) * share))
    if size >= need:
        chosen = set(rng.choice(unique, size=size, replace=False))
        mask = keys.isin(chosen).to_numpy()
    else:
        chosen = set(rng.choice(unique, size=min(need, len(unique)), replace=False))
        mask = keys.isin(chosen).to_numpy()
        keep = min(1.0, share * len(keys) / max(1, int(mask.sum())))
        if keep < 1:
            mask = mask & _thinned(keys, data.labels, keep, rng)
    return replace(
        data,
        features=data.features[mask].reset_index(drop=True),
        labels=data.labels[mask].reset_index(drop=True),
        groups=None if data.groups is None else data.groups[mask].reset_index(drop=True),
    )


def _thinned(keys: pd.Series, labels: pd.Series, keep: float, rng: np.random.Generator) -> np.ndarray:
    """A mask keeping about ``keep`` of the rows of every (group, class), at least one of each."""
    mask = np.zeros(len(keys), dtype=bool)
    cells = pd.Series(np.arange(len(keys))).groupby([keys.to_numpy(), labels.to_numpy()], sort=False)
    for _, rows in cells:
        take = max(1, math.ceil(len(rows) * keep))
        mask[rng.choice(rows.to_numpy(), size=take, replace=False)] = True
    return mask


def _round_splits(
    full: Prepared, share: float, plan: EvaluationPlan, seed: int
) -> tuple[Prepared, list[tuple[np.ndarray, np.ndarray]]]:
    """A round's rows and folds: the subsample's own splits, or the full data's when it cannot split.

    A subsample can fall short of the plan (a rare class with fewer rows than folds); the full
    data then stands in for that round rather than stopping a search evaluation would allow.
    """
    data = _subsample(full, share, seed, _groups_needed(plan))
    if data is full:
        return full, splits(full, plan)
    try:
        return data, splits(data, plan)
    except DataError:
        return full, splits(full, plan)


def search(
    frame: pd.DataFrame,
    spec: RunSpec,
    kinds: Mapping[str, str],
    *,
    candidates: int,
    minutes: float,
    n_jobs: int = 1,
    progress: Progress = lambda text, fraction: None,
) -> dict[str, Any]:
    """Successive halving; returns the leaderboard, the best parameters and the defaults' score."""
    full = prepare(frame, spec)
    metric = "ROC-AUC" if full.positive_class is not None else "balanced accuracy"
    deadline = time.monotonic() + minutes * 60
    pool = [
        Candidate(i, p)
        for i, p in enumerate(sample_params(spec.model.family, candidates, spec.evaluation.seed))
    ]
    everyone = list(pool)
    rounds = max(1, math.ceil(math.log(len(pool), ETA)))
    progress(
        f"Searching {len(pool)} {family(spec.model.family).name} candidates in {rounds} rounds, "
        f"scored by grouped {metric}",
        0.02,
    )
    # the full data's splits, exactly as evaluation makes them: too few groups (or rows of a
    # class) for the plan stops the search with evaluation's own message, before any round
    full_folds = splits(full, spec.evaluation)
    stopped_early = False
    for r in range(rounds):
        share = ETA ** (r - rounds + 1)
        if share >= 1:
            data, folds = full, full_folds
        else:  # the same folds for every candidate of the round
            data, folds = _round_splits(full, share, spec.evaluation, spec.evaluation.seed + r)
        for candidate in pool:
            if time.monotonic() > deadline:
                stopped_early = True
                break
            score = _cross_validate(
                spec.replace(model={"family": spec.model.family, "params": candidate.params}),
                kinds,
                data,
                folds,
                n_jobs,
                deadline,
            )
            if score is None:
                stopped_early = True
                break
            candidate.scores.append(score)
            candidate.rows.append(len(data.labels))
        scored = sorted((c for c in pool if len(c.scores) == r + 1), key=lambda c: -c.score)
        if not scored:
            break
        progress(
            f"Round {r + 1}/{rounds}: {len(scored)} candidates on {len(data.labels):,} rows, "
            f"best {metric} {scored[0].score:.3f}",
            0.05 + 0.9 * (r + 1) / rounds,
        )
        if stopped_early or r == rounds - 1:
            break
        keep = scored[: max(1, math.ceil(len(scored) / ETA))]
        if everyone[0] not in keep and everyone[0] in scored:  # the defaults always reach the last round
            keep.append(everyone[0])
        pool = keep
    finalists = [c for c in everyone if c.scores and len(c.scores) == max(len(x.scores) for x in everyone)]
    if not finalists:
        raise BudgetTooSmall(
            f"the search's budget of {minutes:g} minutes ran out before any candidate finished its "
            f"{spec.evaluation.folds if spec.evaluation.method == 'kfold' else 1} fold(s); "
            "give it more minutes or fewer candidates"
        )
    best = max(finalists, key=lambda c: c.score)
    defaults = next((c for c in finalists if c.number == 0), None)
    return {
        "metric": metric,
        "rounds": rounds,
        "stopped_early": stopped_early,
        "family": spec.model.family,
        "best": {"number": best.number, "params": _json(best.params), "score": best.score},
        "defaults_score": defaults.score if defaults else None,
        "leaderboard": [
            {"number": c.number, "params": _json(c.params), "scores": c.scores, "rows": c.rows}
            for c in sorted(everyone, key=lambda c: (-len(c.scores), -(c.score if c.scores else -1)))
        ],
    }


def _json(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}
