"""The real NASA Exoplanet Archive exports beside the checkout (never copied into the repo)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from shared.data import read_table_path
from shared.profile import column_kinds, profile_table

# ../shared/data beside the checkout; NASA_DATA_DIR points elsewhere (e.g. for a clone in /tmp).
DATA_DIR = Path(os.environ.get("NASA_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data")
KOI_PATH = DATA_DIR / "kepler_koi.csv"
TESS_PATH = DATA_DIR / "tess_toi.csv"
K2_PATH = DATA_DIR / "k2_pandc.csv"

# Identifiers, bookkeeping and the leakage columns named in ../shared/data/README.md.
KOI_EXCLUDED = {
    "kepid",
    "kepoi_name",
    "kepler_name",
    "koi_disposition",
    "koi_pdisposition",
    "koi_score",
    "koi_fpflag_nt",
    "koi_fpflag_ss",
    "koi_fpflag_co",
    "koi_fpflag_ec",
    "koi_tce_delivname",
    "koi_teq_err1",
    "koi_teq_err2",
}
KOI_BINARY = {"CONFIRMED": "PLANET", "CANDIDATE": "PLANET"}


@pytest.fixture(scope="session")
def koi() -> pd.DataFrame:
    return read_table_path(KOI_PATH)


@pytest.fixture(scope="session")
def koi_kinds(koi: pd.DataFrame) -> dict[str, str]:
    return column_kinds(profile_table(koi))


@pytest.fixture(scope="session")
def koi_features(koi: pd.DataFrame) -> list[str]:
    return [c for c in koi.columns if c not in KOI_EXCLUDED]


def koi_spec(features: list[str], **fields: object) -> dict[str, object]:
    """A KOI run spec as a dict: binary setup, grouped by host star, unless overridden."""
    spec: dict[str, object] = {
        "dataset": "kepler",
        "target": "koi_disposition",
        "features": features,
        "label_mapping": KOI_BINARY,
        "group_column": "kepid",
    }
    spec.update(fields)
    return spec
