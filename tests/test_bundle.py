"""Model bundles: the original app's joblib snippet and the safe skops reader agree."""

import io
import json
import shutil
import subprocess
import textwrap
import zipfile
from operator import neg

import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.preprocessing import FunctionTransformer

from shared.bundle import MEMBERS, TRUSTED_TYPES, build_metadata, load_skops, read_bundle, write_bundle
from shared.data import read_table_path, table_sha256
from shared.errors import BundleError
from shared.evaluation import train_final
from shared.params import FAMILIES
from shared.spec import RunSpec
from tests.nasa import KOI_PATH, koi_spec
from tests.venvs import fresh_venv


@pytest.fixture(scope="module")
def bundle(koi, koi_kinds, koi_features):
    spec = RunSpec.from_dict(
        koi_spec(koi_features, model={"family": "random_forest", "params": {"n_estimators": 40}})
    )
    pipe, data, notes = train_final(koi, spec, koi_kinds, n_jobs=2)
    metadata = build_metadata(
        pipe, spec, data, koi_kinds, run_id="r-test", notes=notes, data_sha256=table_sha256(koi)
    )
    return write_bundle(pipe, metadata), pipe


def test_bundle_has_every_member_and_metadata(bundle, koi, koi_features):
    data, _ = bundle
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert sorted(archive.namelist()) == sorted(MEMBERS)
        metadata = json.loads(archive.read("metadata.json"))
        template = archive.read("template.csv").decode()
        readme = archive.read("README.txt").decode()
        card = archive.read("model_card.md").decode()
    assert metadata["target"] == "koi_disposition"
    assert metadata["classes"] == ["FALSE POSITIVE", "PLANET"]
    assert metadata["label_mapping"] == {"CONFIRMED": "PLANET", "CANDIDATE": "PLANET"}
    assert metadata["features"] == koi_features
    assert metadata["feature_types"]["koi_period"] == "numeric"
    assert metadata["kept_features"] == koi_features  # no selection: all kept, all numeric
    assert metadata["model"]["params"]["n_estimators"] == 40
    assert metadata["training_rows"] == 9564
    assert metadata["class_counts"] == {"FALSE POSITIVE": 4839, "PLANET": 4725}
    assert metadata["data_sha256"] == table_sha256(koi)
    assert metadata["versions"]["scikit-learn"].startswith("1.9")
    assert template.strip().split(",") == koi_features
    assert "joblib.load" in readme and "skops" in readme
    for heading in ("Intended use", "Data", "Evaluation", "Decision", "Model", "Limitations", "Versions"):
        assert f"\n## {heading}\n" in card
    assert "Trained on 9,564 rows (FALSE POSITIVE 4,839, PLANET 4,725)" in card
    assert "Mission shift" in card and "Not evaluated before training on all data" in card


def test_original_snippet_and_skops_reader_predict_identically(bundle, koi, tmp_path):
    data, pipe = bundle
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(tmp_path)
    koi.sample(500, random_state=3).to_csv(tmp_path / "new_data.csv", index=False)

    # The original app's README snippet, unchanged but for file names.
    art = joblib.load(tmp_path / "model.joblib")
    pipe_joblib = art["pipe"]
    features = art["features"]
    df = pd.read_csv(tmp_path / "new_data.csv")
    missing = [c for c in features if c not in df.columns]
    assert not missing
    pred = pipe_joblib.predict(df[features])
    proba = pipe_joblib.predict_proba(df[features])[:, 1]

    loaded = read_bundle(data)
    assert loaded.features == features
    np.testing.assert_array_equal(loaded.pipe.predict(df), pred)
    np.testing.assert_allclose(loaded.pipe.predict_proba(df)[:, 1], proba)
    np.testing.assert_allclose(pipe.predict_proba(df[features])[:, 1], proba)


def _block_after(readme: str, heading: str) -> str:
    """The indented code block that follows the line starting with ``heading``, dedented."""
    lines = readme.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading)) + 1
    block = []
    for line in lines[start:]:
        if line and not line.startswith("    "):
            break
        block.append(line[4:])
    return textwrap.dedent("\n".join(block)).strip() + "\n"


@pytest.mark.slow
def test_readme_commands_run_as_written_in_a_fresh_virtualenv(bundle, tmp_path):
    """The bundle README's install line and snippets, on the archive's raw export (comments and
    all), in a virtual environment holding nothing but that install line."""
    data, pipe = bundle
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(tmp_path)
    readme = (tmp_path / "README.txt").read_text()
    install = _block_after(readme, "Install").strip()
    assert install.startswith("pip install ") and "mission-control" not in install
    assert all("==" in requirement for requirement in install.split()[2:])
    python = fresh_venv(tmp_path / "venv", *install.split()[2:])
    shutil.copy(KOI_PATH, tmp_path / "new_data.csv")
    assert (tmp_path / "new_data.csv").read_text().startswith("# This file was produced")
    script = _block_after(readme, "Predict") + _block_after(readme, "The original app's way")
    script += "print('joblib agrees:', (pred == pipe.predict(read_csv('new_data.csv'))).all())\n"
    result = subprocess.run([python, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    koi = read_table_path(KOI_PATH)
    assert f"[{len(koi)} rows x 3 columns]" in result.stdout
    assert "FALSE POSITIVE" in result.stdout and "prediction" in result.stdout
    assert "joblib agrees: True" in result.stdout
    expected = pipe.predict(koi)
    assert f"{expected[0]}" in result.stdout.splitlines()[1]  # the first row's prediction


def _rezip(data: bytes, replace: dict[str, bytes | None]) -> bytes:
    """A copy of a bundle with members replaced (None: left out)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            content = replace.get(name, src.read(name))
            if content is not None:
                dst.writestr(name, content)
    return out.getvalue()


def test_tampered_skops_is_refused(bundle):
    data, _ = bundle
    evil = sio.dumps(FunctionTransformer(func=neg))
    with pytest.raises(BundleError, match=r"model.skops does not match its checksum"):
        read_bundle(_rezip(data, {"model.skops": evil}))


def test_untrusted_types_are_refused_by_name():
    with pytest.raises(BundleError, match=r"untrusted types: _operator.neg"):
        load_skops(sio.dumps(FunctionTransformer(func=neg)))


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"not a zip", r"not a model bundle: the file is not a zip archive"),
        (b"", r"not a model bundle: the file is not a zip archive"),
    ],
)
def test_not_a_bundle(data, match):
    with pytest.raises(BundleError, match=match):
        read_bundle(data)


def test_missing_members_and_bad_metadata(bundle):
    data, _ = bundle
    with pytest.raises(BundleError, match=r"missing model.skops"):
        read_bundle(_rezip(data, {"model.skops": None}))
    with pytest.raises(BundleError, match=r"metadata.json is not valid JSON"):
        read_bundle(_rezip(data, {"metadata.json": b"{"}))
    with pytest.raises(BundleError, match=r"unknown format"):
        read_bundle(_rezip(data, {"metadata.json": b'{"bundle_format": 99}'}))
    with pytest.raises(BundleError, match=r"not a readable skops file"):
        load_skops(b"PK\x03\x04 garbage")


@pytest.mark.parametrize(
    ("selection", "calibration"), [("none", "none"), ("l1", "sigmoid"), ("l2", "isotonic")]
)
@pytest.mark.parametrize("family", list(FAMILIES))
def test_trusted_type_list_covers_every_family(koi, koi_kinds, family, selection, calibration):
    """TRUSTED_TYPES is explicit and complete: every pipeline we build loads with it."""
    rows = koi.sample(600, random_state=0)
    # small ensembles: the types in a pipeline do not depend on how many trees it has
    params = {"max_iter": 20} if family in ("mlp", "hist_gradient_boosting") else {}
    if family in ("random_forest", "gradient_boosting", "adaboost"):
        params = {"n_estimators": 10}
    spec = RunSpec.from_dict(
        koi_spec(
            ["koi_period", "koi_depth", "koi_model_snr", "koi_tce_delivname"],
            label_mapping=None,
            model={"family": family, "params": params},
            feature_selection={"method": selection, "strength": 0.5},
            calibration=calibration,
        )
    )
    pipe, _, _ = train_final(rows, spec, koi_kinds)
    loaded = load_skops(sio.dumps(pipe))
    np.testing.assert_allclose(loaded.predict_proba(rows), pipe.predict_proba(rows))
    assert set(sio.get_untrusted_types(data=sio.dumps(pipe))) <= set(TRUSTED_TYPES)


def test_model_card_gives_scores_at_the_threshold_it_ships_with():
    from shared.model_card import to_markdown

    metadata = {
        "run_id": "r1", "created": "2026-12-06T12:00:00", "target": "label", "classes": ["FP", "PLANET"],
        "positive_class": "PLANET", "training_rows": 100, "dropped_rows": 0, "features": ["a"],
        "data_sha256": "0" * 64, "feature_selection": {"method": "none"}, "kept_features": ["a"],
        "model": {"family": "random_forest", "params": {}}, "threshold": 0.683,
        "at_threshold": {"threshold": 0.683, "tp": 40, "fp": 3, "fn": 10, "tn": 47, "precision": 0.930,
                         "recall": 0.8, "f1": 0.86, "accuracy": 0.87, "balanced_accuracy": 0.87},
        "evaluation": {
            "protocol": {"method": "kfold", "splits": 5, "seed": 0}, "positive_class": "PLANET",
            "metrics": {"precision": {"mean": 0.812, "std": 0.01}, "roc_auc": {"mean": 0.93, "std": 0.01}},
            "baselines": {"majority": {"roc_auc": {"mean": 0.5}}},
        },
    }  # fmt: skip
    card = to_markdown(metadata)
    assert "Predicts PLANET when its probability is at least 0.683" in card
    assert "At the decision threshold 0.683 the model ships with" in card and "precision 0.930" in card
    assert "Precision at the 0.5 cut-off, mean over splits: 0.812" in card
    assert "ROC-AUC, mean over splits: 0.930 ± 0.010 (always the commonest class: 0.500)" in card
    untuned = to_markdown({**metadata, "threshold": None, "at_threshold": None})
    assert "Predicts PLANET when its probability is at least 0.500 (not tuned)" in untuned
