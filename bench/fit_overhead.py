"""Fitting through build_pipeline versus the same pipeline written by hand, on the KOI table.

Run with `make bench` (or `.venv/bin/python bench/fit_overhead.py [--repeat N]`). Prints the
median fit time of each and the ratio (goal: build_pipeline / hand-written <= 1.05), then the
effect of BLAS thread limits on a LogisticRegression fit, which is why shared.threads exists.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_info, threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.data import read_table  # noqa: E402
from shared.pipeline import build_pipeline, fit_pipeline  # noqa: E402
from shared.profile import column_kinds, profile_table  # noqa: E402
from shared.snapshot import read_snapshot  # noqa: E402
from shared.spec import RunSpec  # noqa: E402
from shared.threads import compute_threads  # noqa: E402

EXCLUDED = {
    "kepid", "kepoi_name", "kepler_name", "koi_disposition", "koi_pdisposition", "koi_score",
    "koi_fpflag_nt", "koi_fpflag_ss", "koi_fpflag_co", "koi_fpflag_ec", "koi_teq_err1", "koi_teq_err2",
}  # fmt: skip


def by_hand(family: str, numeric: list[str], categorical: list[str], cores: int) -> Pipeline:
    """What a researcher would write in a notebook for the same model."""
    numeric_steps = [("impute", SimpleImputer(strategy="median", keep_empty_features=True))]
    if family == "logistic_regression":
        numeric_steps.append(("scale", StandardScaler()))
    preprocess = ColumnTransformer([
        ("num", Pipeline(numeric_steps), numeric),
        ("cat", Pipeline([
            ("impute", SimpleImputer(strategy="most_frequent", keep_empty_features=True)),
            ("onehot", OneHotEncoder(handle_unknown="ignore", max_categories=50, sparse_output=False)),
        ]), categorical),
    ])  # fmt: skip
    model = {
        "hist_gradient_boosting": HistGradientBoostingClassifier(max_iter=200, random_state=42),
        "random_forest": RandomForestClassifier(n_estimators=300, random_state=42, n_jobs=cores),
        "logistic_regression": LogisticRegression(max_iter=2000, random_state=42),
    }[family]
    return Pipeline([("preprocess", preprocess), ("model", model)])


def timed(fit, *args) -> float:
    start = time.perf_counter()
    fit(*args)
    return time.perf_counter() - start


def fit_ours(spec, kinds, cores, x, y) -> None:
    fit_pipeline(build_pipeline(spec, kinds, n_jobs=cores), x, y)


def fit_by_hand(family, numeric, categorical, cores, x, y) -> None:
    by_hand(family, numeric, categorical, cores).fit(x, y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    frame = read_table(read_snapshot("kepler"))
    kinds = column_kinds(profile_table(frame))
    features = [c for c in frame.columns if c not in EXCLUDED]
    numeric = [f for f in features if kinds[f] == "numeric"]
    categorical = [f for f in features if kinds[f] != "numeric"]
    x, y = frame[features], frame["koi_disposition"]
    print(f"KOI: {len(frame):,} rows x {len(features)} features, 3 classes; median of {args.repeat} fits\n")
    print(f"{'model':<24}{'build_pipeline':>16}{'by hand':>12}{'ratio':>8}")
    for family in ("hist_gradient_boosting", "random_forest", "logistic_regression"):
        spec = RunSpec.from_dict(
            {
                "dataset": "kepler",
                "target": "koi_disposition",
                "features": features,
                "model": {"family": family},
            }
        )
        ours, theirs = [], []
        with compute_threads() as cores:
            for _ in range(args.repeat):  # alternate, so drift hits both sides alike
                ours.append(timed(fit_ours, spec, kinds, cores, x, y))
                theirs.append(timed(fit_by_hand, family, numeric, categorical, cores, x, y))
        a, b = statistics.median(ours), statistics.median(theirs)
        print(f"{family:<24}{a:>15.3f}s{b:>11.3f}s{a / b:>8.2f}")

    blas = [p for p in threadpool_info() if p["user_api"] == "blas"]
    default_threads = max((p["num_threads"] for p in blas), default=1)
    print(
        f"\nBLAS threads ({', '.join(p['internal_api'] for p in blas) or 'none'}): "
        f"LogisticRegression on the scaled KOI table"
    )
    scaled = StandardScaler().fit_transform(SimpleImputer(strategy="median").fit_transform(x[numeric]))
    lr = LogisticRegression(max_iter=2000)
    free = statistics.median(timed(lr.fit, scaled, y) for _ in range(args.repeat))
    with threadpool_limits(limits=1, user_api="blas"):
        one = statistics.median(timed(lr.fit, scaled, y) for _ in range(args.repeat))
    print(
        f"  default ({default_threads} threads): {free:.3f}s   one thread: {one:.3f}s   "
        f"ratio {free / one:.2f}"
    )


if __name__ == "__main__":
    main()
