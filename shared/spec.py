"""The run spec: a plain, versioned, JSON-serialisable description of one training run.

``RunSpec.from_dict`` validates everything and raises one ``SpecError`` listing each bad
field with its value. Nothing here touches data or scikit-learn.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from shared.errors import SpecError
from shared.job_options import FOLDS, SEED, TEST_SIZE
from shared.label_roles import ROLES
from shared.params import (
    DEFAULT_FAMILY,
    FAMILIES,
    SELECTION_METHODS,
    SELECTION_STRENGTH,
    parse_value,
    quoted,
    validate_params,
)
from shared.params import to_json_value as _json

SPEC_VERSION = 1
DATASET_ID = re.compile(r"[a-z0-9][a-z0-9_-]{1,63}")
#: Probability calibration, explained in plain words for the model step.
CALIBRATION_METHODS = {
    "none": "Use the model's own probabilities.",
    "sigmoid": "Fit a logistic curve from scores to probabilities (Platt scaling): robust with few rows.",
    "isotonic": "Fit a free-form increasing mapping: more flexible, needs more rows (thousands).",
}
LABEL_SETUP = re.compile(r"[a-z0-9_]{1,40}")
MAX_COLUMN_NAME = 200  # uploads refuse longer names (shared.data)


@dataclass(frozen=True)
class ModelChoice:
    family: str = DEFAULT_FAMILY
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FeatureSelection:
    method: str = "none"  # none | l1 | l2
    strength: float = 1.0


@dataclass(frozen=True)
class EvaluationPlan:
    method: str = "kfold"  # holdout | kfold
    folds: int = int(FOLDS.default)
    test_size: float = TEST_SIZE.default
    stratified: bool = True
    seed: int = int(SEED.default)
    importance: bool = False  # permutation importance on every held-out split (about 3x slower)


@dataclass(frozen=True)
class RunSpec:
    dataset: str
    target: str
    features: tuple[str, ...]
    model: ModelChoice = field(default_factory=ModelChoice)
    label_mapping: Mapping[str, str | None] | None = None
    positive_class: str | None = None
    group_column: str | None = None
    label_setup: str | None = None  # the preset's key, for display and the model card
    score_classes: tuple[str, ...] = ()  # raw classes left out of training, then ranked
    class_roles: Mapping[str, str] | None = None  # a setup built class by class: each raw class's role
    threshold: float | None = None  # binary only: predict the positive class at this probability
    calibration: str = "none"  # none | sigmoid | isotonic (CalibratedClassifierCV)
    feature_selection: FeatureSelection = field(default_factory=FeatureSelection)
    evaluation: EvaluationPlan = field(default_factory=EvaluationPlan)
    version: int = SPEC_VERSION

    @classmethod
    def from_dict(cls, raw: Any) -> RunSpec:
        return _Parser(raw).parse()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["features"] = list(self.features)
        data["score_classes"] = list(self.score_classes)
        data["model"] = {
            "family": self.model.family,
            "params": {k: _json(v) for k, v in self.model.params.items()},
        }
        data["label_mapping"] = dict(self.label_mapping) if self.label_mapping is not None else None
        data["class_roles"] = dict(self.class_roles) if self.class_roles is not None else None
        return data

    def replace(self, **changes: Any) -> RunSpec:
        """A new, re-validated spec with some fields changed."""
        data = self.to_dict()
        data.update(changes)
        return RunSpec.from_dict(data)


_TOP_LEVEL = {
    "version",
    "dataset",
    "target",
    "features",
    "model",
    "label_mapping",
    "positive_class",
    "group_column",
    "label_setup",
    "score_classes",
    "class_roles",
    "threshold",
    "calibration",
    "feature_selection",
    "evaluation",
}


class _Parser:
    """Collects every problem instead of stopping at the first."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.problems: list[str] = []

    def bad(self, where: str, value: Any, why: str) -> None:
        self.problems.append(f"{where}: {quoted(value, 200)} {why}")

    def parse(self) -> RunSpec:
        if not isinstance(self.raw, Mapping):
            raise SpecError(f"spec: expected a JSON object, got {type(self.raw).__name__}")
        raw = self.raw
        for name in raw:
            if name not in _TOP_LEVEL:
                self.bad(name, raw[name], "is not a spec field")
        version = raw.get("version", SPEC_VERSION)
        if version != SPEC_VERSION:
            self.bad("version", version, f"is not supported; this build reads version {SPEC_VERSION}")
        dataset = raw.get("dataset")
        if not isinstance(dataset, str) or not DATASET_ID.fullmatch(dataset):
            self.bad("dataset", dataset, "is not a dataset id (lowercase letters, digits, '-' or '_')")
        target = self.column("target", raw.get("target"))
        features = self.features(raw.get("features"), target)
        group = None if raw.get("group_column") is None else self.column("group_column", raw["group_column"])
        if group is not None and group == target:
            self.bad("group_column", group, "is the target; groups must be a different column")
        mapping = self.label_mapping(raw.get("label_mapping"))
        positive = raw.get("positive_class")
        if positive is not None and (not isinstance(positive, str) or not positive):
            self.bad("positive_class", positive, "must be a class name")
            positive = None
        if (
            positive is not None
            and mapping is not None
            and positive in mapping
            and (mapping[positive] is None or mapping[positive] != positive)
        ):
            self.bad(
                "positive_class",
                positive,
                "is renamed or dropped by label_mapping; name the class after mapping",
            )
        setup = raw.get("label_setup")
        if setup is not None and (not isinstance(setup, str) or not LABEL_SETUP.fullmatch(setup)):
            self.bad("label_setup", setup, "is not a label setup name")
        score_classes = self.score_classes(raw.get("score_classes", []), mapping)
        class_roles = self.class_roles(raw.get("class_roles"))
        threshold = raw.get("threshold")
        if threshold is not None and (
            isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 < threshold < 1
        ):
            self.bad("threshold", threshold, "must be a probability between 0 and 1 (exclusive), or null")
        calibration = raw.get("calibration", "none")
        if not isinstance(calibration, str) or calibration not in CALIBRATION_METHODS:
            self.bad("calibration", calibration, "must be one of " + ", ".join(CALIBRATION_METHODS))
        model = self.model(raw.get("model", {}))
        selection = self.selection(raw.get("feature_selection", {}))
        evaluation = self.evaluation(raw.get("evaluation", {}))
        if self.problems:
            raise SpecError(self.problems)
        return RunSpec(
            dataset=dataset,
            target=target,
            features=features,
            model=model,
            label_mapping=mapping,
            positive_class=positive,
            group_column=group,
            label_setup=setup,
            score_classes=score_classes,
            class_roles=class_roles,
            threshold=None if threshold is None else float(threshold),
            calibration=calibration,
            feature_selection=selection,
            evaluation=evaluation,
        )

    def column(self, where: str, value: Any) -> str:
        if not isinstance(value, str) or not value.strip() or len(value) > MAX_COLUMN_NAME:
            self.bad(where, value, "is not a column name")
            return ""
        return value

    def features(self, value: Any, target: str) -> tuple[str, ...]:
        if not isinstance(value, list | tuple) or not value:
            self.bad("features", value, "must be a non-empty list of column names")
            return ()
        names = [self.column("features", v) for v in value]
        if target and target in names:
            self.bad("features", target, "is the target; the target can never be a feature")
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            self.bad("features", duplicates, "are listed more than once")
        return tuple(names)

    def label_mapping(self, value: Any) -> dict[str, str | None] | None:
        if value is None:
            return None
        if not isinstance(value, Mapping) or not value:
            self.bad("label_mapping", value, "must map class names to new names (or null to drop)")
            return None
        mapping: dict[str, str | None] = {}
        for source, dest in value.items():
            if not isinstance(source, str) or not source:
                self.bad("label_mapping", source, "is not a class name")
            elif dest is not None and (not isinstance(dest, str) or not dest.strip()):
                self.bad(f"label_mapping[{source!r}]", dest, "must be a class name or null (drop)")
            else:
                mapping[source] = dest
        return mapping

    def class_roles(self, value: Any) -> dict[str, str] | None:
        if value is None:
            return None
        if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and k and v in ROLES for k, v in value.items()
        ):
            self.bad("class_roles", value, "must map class names to one of " + ", ".join(ROLES))
            return None
        return dict(value)

    def score_classes(self, value: Any, mapping: Mapping[str, str | None] | None) -> tuple[str, ...]:
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
            self.bad("score_classes", value, "must be a list of class names")
            return ()
        for name in value:
            if mapping is None or name not in mapping or mapping[name] is not None:
                self.bad(
                    "score_classes",
                    name,
                    "must be a class the label_mapping leaves out (null); "
                    "only rows not trained on can be scored",
                )
        return tuple(value)

    def model(self, value: Any) -> ModelChoice:
        if not isinstance(value, Mapping):
            self.bad("model", value, "must be an object with 'family' and 'params'")
            return ModelChoice()
        unknown = set(value) - {"family", "params"}
        if unknown:
            self.bad("model", sorted(unknown, key=str), "are not model fields")
        key = value.get("family", DEFAULT_FAMILY)
        if not isinstance(key, str) or key not in FAMILIES:
            self.bad("model.family", key, "is not a model family; choose one of " + ", ".join(FAMILIES))
            return ModelChoice()
        params = value.get("params", {})
        if not isinstance(params, Mapping):
            self.bad("model.params", params, "must be an object of parameter values")
            return ModelChoice(key)
        try:
            return ModelChoice(key, validate_params(key, params))
        except SpecError as error:
            self.problems.extend(f"model.params.{p}" for p in error.problems)
            return ModelChoice(key)

    def selection(self, value: Any) -> FeatureSelection:
        if not isinstance(value, Mapping):
            self.bad("feature_selection", value, "must be an object with 'method' and 'strength'")
            return FeatureSelection()
        method = value.get("method", "none")
        if not isinstance(method, str) or method not in SELECTION_METHODS:
            self.bad("feature_selection.method", method, "is not one of " + ", ".join(SELECTION_METHODS))
            method = "none"
        strength = SELECTION_STRENGTH.default
        if "strength" in value:
            try:
                strength = parse_value(SELECTION_STRENGTH, value["strength"])
            except SpecError as error:
                self.problems.extend(f"feature_selection.{p}" for p in error.problems)
        return FeatureSelection(method, strength)

    def evaluation(self, value: Any) -> EvaluationPlan:
        if not isinstance(value, Mapping):
            self.bad("evaluation", value, "must be an object")
            return EvaluationPlan()
        plan = EvaluationPlan()
        method = value.get("method", plan.method)
        if not isinstance(method, str) or method not in ("holdout", "kfold"):
            self.bad("evaluation.method", method, "must be 'holdout' or 'kfold'")
        folds = value.get("folds", plan.folds)
        if not FOLDS.allows(folds):
            self.bad("evaluation.folds", folds, f"must be a whole number from {FOLDS.range_text}")
        test_size = value.get("test_size", plan.test_size)
        if not TEST_SIZE.allows(test_size):
            self.bad("evaluation.test_size", test_size, f"must be a share from {TEST_SIZE.range_text}")
        stratified = value.get("stratified", plan.stratified)
        if not isinstance(stratified, bool):
            self.bad("evaluation.stratified", stratified, "must be true or false")
        importance = value.get("importance", plan.importance)
        if not isinstance(importance, bool):
            self.bad("evaluation.importance", importance, "must be true or false")
        seed = value.get("seed", plan.seed)
        if not SEED.allows(seed):
            self.bad("evaluation.seed", seed, f"must be a whole number from {SEED.range_text}")
        unknown = set(value) - {"method", "folds", "test_size", "stratified", "seed", "importance"}
        if unknown:
            self.bad("evaluation", sorted(unknown, key=str), "are not evaluation fields")
        if len(self.problems) and any(p.startswith("evaluation") for p in self.problems):
            return plan
        return EvaluationPlan(method, folds, float(test_size), stratified, seed, importance)
