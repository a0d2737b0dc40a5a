"""The real NASA Exoplanet Archive exports, as the project carries them (shared/snapshots/).

Tests that need the raw export as a file (to upload it, to point KEPLER_URI at it, to serve it
as the archive would) get it from ``DATA_DIR``: the snapshots unpacked once into a folder
under the system's temporary directory, named by their checksums.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from shared.data import read_table_path
from shared.profile import column_kinds, profile_table
from shared.snapshot import EXPORT_FILES, provenance, read_snapshot


def _unpacked() -> Path:
    tag = "".join(provenance(d).sha256[:6] for d in sorted(EXPORT_FILES))
    folder = Path(tempfile.gettempdir()) / f"mission-control-exports-{tag}"
    folder.mkdir(exist_ok=True)
    for dataset_id, name in EXPORT_FILES.items():
        path = folder / name
        if not path.exists():
            partial = folder / f".{name}.{os.getpid()}"
            partial.write_bytes(read_snapshot(dataset_id))
            partial.replace(path)  # atomic: a parallel run sees the whole file or none
    return folder


DATA_DIR = _unpacked()
KOI_PATH = DATA_DIR / EXPORT_FILES["kepler"]
TESS_PATH = DATA_DIR / EXPORT_FILES["tess"]
K2_PATH = DATA_DIR / EXPORT_FILES["k2"]

# Identifiers, bookkeeping and the leakage columns named in shared/snapshots/README.md.
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
def tess() -> pd.DataFrame:
    return read_table_path(TESS_PATH)


@pytest.fixture(scope="session")
def k2() -> pd.DataFrame:
    return read_table_path(K2_PATH)


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
