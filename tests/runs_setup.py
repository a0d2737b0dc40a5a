"""Helpers that put a dataset and a run into storage the way the web app does."""

from __future__ import annotations

from shared.catalog import KEPLER
from shared.runs import new_run_id, request_job, save_spec
from shared.settings import Settings
from shared.sources import fetch_builtin
from shared.spec import RunSpec
from shared.storage import Storage
from tests.nasa import KOI_EXCLUDED, KOI_PATH

# What a KOI model's predictions hold: the key columns, the class, one probability per class.
KOI_PREDICTION_COLUMNS = [
    "kepoi_name", "kepid", "kepler_name", "prediction", "probability_FALSE POSITIVE", "probability_PLANET",
]  # fmt: skip


# A forest that fits and explains in a second or two: for tests about plumbing, not scores.
SMALL_FOREST = {"family": "random_forest", "params": {"n_estimators": 30, "max_depth": 10}}


def load_koi(storage: Storage) -> None:
    fetch_builtin(KEPLER, Settings(dataset_uris={"kepler": str(KOI_PATH)}), storage)


def koi_run_spec(features: list[str] | None = None, **fields: object) -> RunSpec:
    from shared.data import read_table_path

    columns = read_table_path(KOI_PATH).columns
    setup = KEPLER.default_setup
    spec = {
        "dataset": "kepler", "target": "koi_disposition",
        "features": features or [c for c in columns if c not in KOI_EXCLUDED],
        "label_mapping": setup.mapping, "positive_class": setup.positive_class, "label_setup": setup.key,
        "group_column": "kepid", "evaluation": {"method": "kfold", "folds": 3},
        **fields,
    }  # fmt: skip
    return RunSpec.from_dict(spec)


def start_run(results: Storage, spec: RunSpec, mode: str) -> str:
    run_id = new_run_id()
    save_spec(results, run_id, spec.to_dict())
    request_job(results, run_id, mode, spec)
    return run_id
