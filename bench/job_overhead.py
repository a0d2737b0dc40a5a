"""A search and a final training through the job code against bare scikit-learn doing the same.

Run with `.venv/bin/python bench/job_overhead.py [--repeats 3]` (`make bench` runs it).

Both run in this process on the same cores, interleaved, on Kepler with its default binary
setup and features (HistGradientBoosting), through `shared.jobs.run_job` on a local storage
folder exactly as the worker runs them:

- search: 27 candidates, successive halving (a third kept per round), 5 grouped stratified
  folds. Bare: the same candidates, rounds and row subsets, each scored with
  `cross_val_score(make_estimator(...), cv=StratifiedGroupKFold(5), scoring="roc_auc")`, the
  splits computed once per round as scikit-learn's own halving search does.
- final training: the app fits on all rows, explains the model (SHAP summary) and writes the
  bundle and the model card. Bare: `fit` on the same rows plus `shap.TreeExplainer` on as many
  rows as the app explains.

bench/evaluation_overhead.py covers evaluation, through the web app.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.catalog import KEPLER  # noqa: E402
from shared.columns import default_features  # noqa: E402
from shared.evaluation import prepare  # noqa: E402
from shared.jobs import run_job  # noqa: E402
from shared.runs import FINAL, SEARCH, SUCCEEDED, new_run_id, request_job, save_spec  # noqa: E402
from shared.search import ETA, _subsample, sample_params  # noqa: E402
from shared.settings import Settings  # noqa: E402
from shared.sources import cached_advice, fetch_builtin, load_info, load_table  # noqa: E402
from shared.spec import RunSpec  # noqa: E402
from shared.storage import LocalStorage  # noqa: E402

CANDIDATES = 27


def kepler_spec(storage: LocalStorage) -> RunSpec:
    """The wizard's defaults for Kepler: its default label setup and the advised features."""
    setup = KEPLER.default_setup
    info = load_info(storage, KEPLER.id)
    advice = cached_advice(
        storage, info, KEPLER.target, setup.mapping, KEPLER.group_column, KEPLER.known_columns
    )
    return RunSpec.from_dict(
        {
            "dataset": KEPLER.id,
            "target": KEPLER.target,
            "features": default_features(advice),
            "label_setup": setup.key,
            "label_mapping": setup.mapping,
            "positive_class": setup.positive_class,
            "score_classes": list(setup.score_classes),
            "group_column": KEPLER.group_column,
            "model": {"family": "hist_gradient_boosting"},
        }
    )


def app_seconds(storage: LocalStorage, spec: RunSpec, mode: str, options: dict | None = None) -> float:
    run_id = new_run_id()
    save_spec(storage, run_id, spec.to_dict())
    request_job(storage, run_id, mode, spec, options=options)
    start = time.perf_counter()
    status = run_job(run_id, mode, storage, storage)
    if status.state != SUCCEEDED:
        raise RuntimeError(status.message)
    return time.perf_counter() - start


def bare_search_seconds(frame, spec: RunSpec) -> float:
    import numpy as np
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_score

    from shared.models import make_estimator

    full = prepare(frame, spec)
    start = time.perf_counter()
    pool = list(enumerate(sample_params(spec.model.family, CANDIDATES, spec.evaluation.seed)))
    rounds = max(1, math.ceil(math.log(len(pool), ETA)))
    for r in range(rounds):
        data = _subsample(full, ETA ** (r - rounds + 1), spec.evaluation.seed + r)
        y = (data.labels == full.positive_class).to_numpy()
        cv = StratifiedGroupKFold(spec.evaluation.folds, shuffle=True, random_state=spec.evaluation.seed)
        folds = list(cv.split(data.features, y, data.groups))
        scores = []
        for number, params in pool:
            model = make_estimator(spec.model.family, params, seed=spec.evaluation.seed, n_jobs=None)
            scores.append(
                (np.mean(cross_val_score(model, data.features, y, cv=folds, scoring="roc_auc")), number)
            )
        keep = {n for _, n in sorted(scores, reverse=True)[: max(1, math.ceil(len(pool) / ETA))]}
        pool = [(n, p) for n, p in pool if n in keep]
    return time.perf_counter() - start


def bare_final_seconds(frame, spec: RunSpec) -> float:
    import shap
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import make_pipeline

    from shared.explain import summary_rows

    data = prepare(frame, spec)
    start = time.perf_counter()
    model = HistGradientBoostingClassifier(random_state=spec.evaluation.seed).fit(data.features, data.labels)
    rows = data.features.sample(summary_rows(make_pipeline(model), len(data.features)), random_state=0)
    shap.TreeExplainer(model).shap_values(rows)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--jobs", default="search,final", help="which to time (comma-separated)")
    args = parser.parse_args()
    jobs = args.jobs.split(",")
    folder = Path(tempfile.mkdtemp(prefix="mission-job-bench-"))
    storage = LocalStorage(folder)
    fetch_builtin(KEPLER, Settings(storage_url=str(folder)), storage)
    spec = kepler_spec(storage)
    frame = load_table(storage, KEPLER.id)
    search_options = {"candidates": CANDIDATES, "minutes": 60}
    times: dict[str, list[float]] = {f"{job} {side}": [] for job in jobs for side in ("app", "bare")}
    app_seconds(storage, spec, FINAL)  # warm both sides: imports (shap, skops, matplotlib) are not
    bare_final_seconds(frame, spec)  # a job's work, and a function instance pays them once
    for _ in range(args.repeats):
        if "search" in jobs:
            times["search app"].append(app_seconds(storage, spec, SEARCH, search_options))
            times["search bare"].append(bare_search_seconds(frame, spec))
        if "final" in jobs:
            times["final app"].append(app_seconds(storage, spec, FINAL))
            times["final bare"].append(bare_final_seconds(frame, spec))
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"Kepler, {len(frame):,} rows, {len(spec.features)} features, HistGradientBoosting")
    for name, values in times.items():
        print(f"  {name:12} median {median[name]:6.2f} s   ({', '.join(f'{v:.2f}' for v in values)})")
    for job in jobs:
        print(f"{job}: app / bare {median[f'{job} app'] / median[f'{job} bare']:.2f}")


if __name__ == "__main__":
    main()
