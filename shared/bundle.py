"""The model bundle: one .zip a researcher downloads, and the safe reader the functions use.

Contents:
- ``model.joblib``: ``{"pipe", "features", "feature_types", "metadata"}``, as the original app
  documented, so its "make predictions outside the app" snippet works unchanged;
- ``model.skops``: the same pipeline for safe loading (no arbitrary code on load);
- ``metadata.json``, ``README.txt`` and ``template.csv`` (the feature headers).

The reader never touches the joblib file: it verifies checksums and loads ``model.skops``
with an explicit list of trusted types.
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from typing import TYPE_CHECKING, Any

from shared import __version__, model_card
from shared.csv_safety import header_line
from shared.errors import BundleError
from shared.spec import RunSpec

if TYPE_CHECKING:
    from shared.evaluation import Prepared

JOBLIB_NAME = "model.joblib"
SKOPS_NAME = "model.skops"
METADATA_NAME = "metadata.json"
README_NAME = "README.txt"
TEMPLATE_NAME = "template.csv"
CARD_NAME = "model_card.md"
FIGURES_DIR = "figures/"
MEMBERS = (JOBLIB_NAME, SKOPS_NAME, METADATA_NAME, README_NAME, TEMPLATE_NAME, CARD_NAME)
BUNDLE_FORMAT = 1
MAX_MEMBER_BYTES = 2 * 1024**3  # refuse zip bombs before inflating them

#: Types beyond skops' built-in scikit-learn defaults that our pipelines contain. Anything
#: else in a skops file is refused, by name. Keep in sync with tests/test_bundle.py, which
#: fits every family and selection method and checks they all load with exactly this list.
TRUSTED_TYPES: tuple[str, ...] = (
    "numpy.dtype",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.tree._tree.Tree",
)

_VERSIONED = ("scikit-learn", "pandas", "numpy", "scipy", "joblib", "skops", "pyarrow")


@dataclass(frozen=True)
class LoadedBundle:
    pipe: Any
    metadata: dict[str, Any]

    @property
    def features(self) -> list[str]:
        return list(self.metadata["features"])

    @property
    def classes(self) -> list[str]:
        return list(self.metadata["classes"])


# joblib and skops load on first use: skops builds its trusted-type tables by importing most
# of scikit-learn (over a second), which a function's cold start should not pay before it
# has a model to load.


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "mission-control": __version__}
    for name in _VERSIONED:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
    return versions


def build_metadata(
    pipe: Any,
    spec: RunSpec,
    data: Prepared,
    column_kinds: Mapping[str, str],
    *,
    run_id: str,
    data_sha256: str,
    metrics: Mapping[str, Any] | None = None,
    notes: list[str] | None = None,
) -> dict[str, Any]:
    from shared.pipeline import kept_features

    return {
        "bundle_format": BUNDLE_FORMAT,
        "run_id": run_id,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "dataset": spec.dataset,
        "target": spec.target,
        "classes": list(pipe.classes_),
        "positive_class": data.positive_class,
        "label_mapping": dict(spec.label_mapping) if spec.label_mapping is not None else None,
        "features": list(spec.features),
        "feature_types": {f: column_kinds[f] for f in spec.features},
        "kept_features": kept_features(pipe),
        "model": spec.to_dict()["model"],
        "feature_selection": spec.to_dict()["feature_selection"],
        "evaluation": dict(metrics) if metrics else None,
        "training_rows": len(data.labels),
        "dropped_rows": data.dropped_rows,
        "class_counts": {str(k): int(v) for k, v in data.labels.value_counts().sort_index().items()},
        "data_sha256": data_sha256,
        "notes": list(notes or []),
        "spec": spec.to_dict(),
        "versions": library_versions(),
    }


def write_bundle(pipe: Any, metadata: Mapping[str, Any], figures: Mapping[str, bytes] | None = None) -> bytes:
    """The bundle as zip bytes. ``metadata`` comes from :func:`build_metadata`; ``figures``
    (name to SVG bytes) become ``figures/<name>.svg``."""
    import joblib
    import skops.io as sio

    features = list(metadata["features"])
    artifact = {
        "pipe": pipe,
        "features": features,
        "feature_types": dict(metadata["feature_types"]),
        "metadata": dict(metadata),
    }
    joblib_buffer = io.BytesIO()
    joblib.dump(artifact, joblib_buffer, compress=3)
    files = {
        JOBLIB_NAME: joblib_buffer.getvalue(),
        SKOPS_NAME: sio.dumps(pipe),
        TEMPLATE_NAME: header_line([*metadata.get("key_columns", []), *features]).encode(),
        README_NAME: _readme(metadata).encode(),
        CARD_NAME: model_card.to_markdown(metadata).encode(),
    }
    files.update({f"{FIGURES_DIR}{name}.svg": svg for name, svg in sorted((figures or {}).items())})
    full_metadata = {**metadata, "files": {n: hashlib.sha256(b).hexdigest() for n, b in files.items()}}
    files[METADATA_NAME] = json.dumps(full_metadata, indent=2, sort_keys=True).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in (*MEMBERS, *sorted(n for n in files if n.startswith(FIGURES_DIR))):
            archive.writestr(name, files[name])
    return out.getvalue()


def read_bundle(data: bytes) -> LoadedBundle:
    """Verify a bundle and load its skops pipeline with the trusted-type list; never unpickles."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise BundleError("not a model bundle: the file is not a zip archive") from None
    try:
        return _read_members(archive)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError):
        raise BundleError("not a model bundle: the zip archive is damaged") from None


def _read_members(archive: zipfile.ZipFile) -> LoadedBundle:
    with archive:
        infos = {i.filename: i for i in archive.infolist()}
        missing = [m for m in (METADATA_NAME, SKOPS_NAME) if m not in infos]
        if missing:
            raise BundleError(f"not a model bundle: missing {', '.join(missing)}")
        for name in (METADATA_NAME, SKOPS_NAME):
            if infos[name].file_size > MAX_MEMBER_BYTES:
                raise BundleError(f"bundle member {name} is too large")
        try:
            metadata = json.loads(archive.read(METADATA_NAME))
        except (ValueError, UnicodeDecodeError):
            raise BundleError("bundle metadata.json is not valid JSON") from None
        skops_bytes = archive.read(SKOPS_NAME)
    if not isinstance(metadata, dict) or metadata.get("bundle_format") != BUNDLE_FORMAT:
        raise BundleError("bundle metadata has an unknown format")
    for key in ("features", "classes", "target", "files"):
        if key not in metadata:
            raise BundleError(f"bundle metadata lacks {key!r}")
    expected = metadata["files"].get(SKOPS_NAME) if isinstance(metadata["files"], dict) else None
    if expected != hashlib.sha256(skops_bytes).hexdigest():
        raise BundleError("bundle model.skops does not match its checksum in metadata.json")
    return LoadedBundle(load_skops(skops_bytes), metadata)


def load_skops(data: bytes) -> Any:
    """Load a skops file, refusing (by name) any type outside skops' defaults and TRUSTED_TYPES."""
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as error:  # skops raises a variety of errors on malformed files
        raise BundleError(f"model.skops is not a readable skops file ({type(error).__name__})") from None
    refused = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if refused:
        raise BundleError(f"model.skops holds untrusted types: {', '.join(refused)}")
    return sio.loads(data, trusted=list(TRUSTED_TYPES))


# what the README's snippets import, pinned to the versions the model was built with
_README_PACKAGES = ("scikit-learn", "pandas", "numpy", "scipy", "joblib", "skops")


def install_line(versions: Mapping[str, str]) -> str:
    """One ``pip install`` with the exact versions the model was built with (installable ones only)."""
    return "pip install " + " ".join(f"{n}=={versions[n]}" for n in _README_PACKAGES if n in versions)


def _readme(metadata: Mapping[str, Any]) -> str:
    features = ", ".join(metadata["features"])
    versions = metadata["versions"]
    built_with = ", ".join(f"{k} {v}" for k, v in versions.items())
    return f"""Mission Control for Exoplanets: model bundle
=============================================
Run {metadata["run_id"]}, created {metadata["created"]}.
Target: {metadata["target"]}; classes, in probability-column order: {", ".join(metadata["classes"])}
Features ({len(metadata["features"])}): {features}

Files
- model.skops   the fitted scikit-learn Pipeline, safe to load (recommended)
- model.joblib  the same Pipeline in the original app's joblib format (pickle: trusted sources only)
- metadata.json target, classes, label mapping, features, parameters, metrics, data hash, versions
- template.csv  the column headers a prediction file needs
- model_card.md intended use, data, evaluation protocol and metrics, threshold, limitations
- figures/*.svg ROC, precision-recall, confusion matrices, reliability, permutation importance
                (from the evaluation of this exact model) and the SHAP summary (tree models)

Install (Python {versions.get("python", "3.11")} or a close version), in a fresh virtual environment
    {install_line(versions)}

Predict (skops: safe to load), e.g. on the NASA Exoplanet Archive's own CSV export
    import itertools, pandas as pd, skops.io as sio

    def read_csv(path):  # the archive's exports start with '#' comment lines: skip them
        with open(path) as file:
            comments = sum(1 for _ in itertools.takewhile(lambda line: line.startswith("#"), file))
        return pd.read_csv(path, skiprows=comments)

    pipe = sio.load("model.skops", trusted=sio.get_untrusted_types(file="model.skops"))
    # review that list first: it should only name scikit-learn and numpy types
    df = read_csv("new_data.csv")
    proba = pipe.predict_proba(df)   # extra columns are ignored; missing ones raise
    print(pd.DataFrame(proba, columns=pipe.classes_).assign(prediction=pipe.predict(df)))

The original app's way (joblib; pickle: load only files you trust)
    import joblib
    art = joblib.load("model.joblib")
    pipe, features = art["pipe"], art["features"]
    pred = pipe.predict(read_csv("new_data.csv")[features])

Built with {built_with}. Load with the same scikit-learn version for identical results.
"""
