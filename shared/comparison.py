"""Compare model families on a run's own splits: one job per family, each family's defaults (and
the run's class balancing), cross-validated on exactly the folds the run's evaluation uses, so
the leaderboard is fair. The parts run wherever jobs run (the embedded worker's processes, or
one train-function invocation each in the cloud) and the board is assembled from storage."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from shared.metric_info import poor_notes
from shared.params import BALANCE as BALANCE_PARAM
from shared.params import FAMILIES, family
from shared.spec import RunSpec

RANKED_BY = "roc_auc"
SHOWN = ("roc_auc", "pr_auc", "balanced_accuracy", "accuracy", "log_loss")
BALANCE = BALANCE_PARAM.name  # "Balance classes": every family has it


def family_spec(spec: RunSpec, key: str) -> RunSpec:
    """The run's spec with another family at its defaults, keeping the run's class balancing
    (when both families have the setting) and everything about data and splits."""
    chosen = family(key)
    params: dict[str, Any] = {}
    balance = spec.model.params.get(BALANCE)
    if balance is not None and any(p.name == BALANCE for p in chosen.params):
        params[BALANCE] = balance
    return spec.replace(model={"family": key, "params": params}, calibration="none", threshold=None)


def family_result(key: str, spec: RunSpec, evaluation: Mapping[str, Any], wall_s: float) -> dict[str, Any]:
    """One family's line on the board: its scores (mean ± std per metric), times and notes."""
    metrics = evaluation["metrics"]
    return {
        "family": key,
        "name": FAMILIES[key].name,
        "params": dict(spec.model.params),
        "metrics": {k: {"mean": v["mean"], "std": v["std"], "folds": v["folds"]} for k, v in metrics.items()},
        "timings": {**evaluation.get("timings", {}), "wall_s": wall_s},
        "notes": poor_notes(evaluation),
        "rows": evaluation["rows"],
        "splits": evaluation["protocol"]["splits"],
        "spec": spec.to_dict(),
    }


def ranked(results: Iterable[Mapping[str, Any]], metric: str = RANKED_BY) -> list[Mapping[str, Any]]:
    """Finished families, best first by ``metric`` (lower first for log loss)."""
    lower_better = metric == "log_loss"

    def key(result: Mapping[str, Any]) -> float:
        mean = result["metrics"].get(metric, {}).get("mean")
        if mean is None:
            return float("inf")
        return mean if lower_better else -mean

    return sorted(results, key=key)
