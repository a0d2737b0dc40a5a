"""Hyperparameter schema: plain data per model family, one source for forms and validation.

Nothing here imports scikit-learn: the web app renders and validates forms from this
schema, and ``shared.models`` turns validated values into estimators.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.errors import SpecError

INT = "int"
FLOAT = "float"
CHOICE = "choice"
BOOL = "bool"
INT_LIST = "int_list"  # e.g. MLP hidden layer sizes "64, 32"


@dataclass(frozen=True)
class Param:
    name: str
    kind: str
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    optional: bool = False  # blank / "none" means "no limit" (None)
    log_scale: bool = False  # searched on a log scale (learning rates, penalties)
    label: str = ""
    max_items: int = 4  # INT_LIST only

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()

    def allowed(self) -> str:
        """The allowed values in words, for help text and error messages."""
        if self.kind == CHOICE:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.kind == BOOL:
            return "true or false"
        if self.kind == INT_LIST:
            return (
                f"1 to {self.max_items} whole numbers separated by commas, "
                f"each {_fmt(self.low)} to {_fmt(self.high)}"
            )
        kind = "a whole number" if self.kind == INT else "a number"
        text = f"{kind} from {_fmt(self.low)} to {_fmt(self.high)}"
        return text + (", or blank for no limit" if self.optional else "")


@dataclass(frozen=True)
class Family:
    key: str
    name: str
    summary: str
    pros: tuple[str, ...]
    cons: tuple[str, ...]
    params: tuple[Param, ...]
    needs_scaling: bool = False
    tags: tuple[str, ...] = field(default=())

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}


def _fmt(value: float | None) -> str:
    if value is None:
        return "?"
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:g}"


BALANCE = Param(
    "balance_classes",
    BOOL,
    False,
    "Weigh each class by the inverse of its share, so that a rare class (such as the false "
    "positives among K2's default rows) counts as much as a common one while training.",
    label="Balance classes",
)
_MAX_DEPTH_HELP = (
    "How many questions deep each tree may go. Deeper trees fit finer detail but overfit sooner."
)
_LEAF_HELP = "Fewest rows a leaf may hold. Larger values smooth the model and resist noise."

FAMILIES: dict[str, Family] = {
    f.key: f
    for f in (
        Family(
            key="hist_gradient_boosting",
            name="Histogram Gradient Boosting",
            summary="Boosted trees on binned features: the fast, strong default for tables.",
            pros=(
                "Usually the most accurate here",
                "Fast even on large tables",
                "Handles missing values natively",
            ),
            cons=("Less interpretable than a linear model", "Many knobs if you want to tune"),
            params=(
                Param(
                    "learning_rate",
                    FLOAT,
                    0.1,
                    "How big a step each new tree takes. "
                    "Smaller steps need more iterations but generalise better.",
                    low=0.001,
                    high=1.0,
                    log_scale=True,
                ),
                Param(
                    "max_iter",
                    INT,
                    200,
                    "Most boosting rounds (trees) to build; early stopping may use fewer.",
                    low=10,
                    high=2000,
                    label="Max iterations",
                ),
                Param(
                    "max_leaf_nodes",
                    INT,
                    31,
                    "Most leaves per tree. More leaves capture more interactions.",
                    low=2,
                    high=512,
                ),
                Param("max_depth", INT, None, _MAX_DEPTH_HELP, low=1, high=64, optional=True),
                Param("min_samples_leaf", INT, 20, _LEAF_HELP, low=1, high=1000),
                Param(
                    "l2_regularization",
                    FLOAT,
                    0.0,
                    "Penalty on large leaf values; raise it to calm an overfitting model.",
                    low=0.0,
                    high=100.0,
                ),
                Param(
                    "early_stopping",
                    CHOICE,
                    "auto",
                    "Stop adding trees once a held-back 10% of "
                    "the training rows stops improving. 'auto' does so above 10,000 rows.",
                    choices=("auto", "on", "off"),
                ),
                BALANCE,
            ),
            tags=("tree",),
        ),
        Family(
            key="random_forest",
            name="Random Forest",
            summary="Many decorrelated decision trees voting together.",
            pros=("Robust with little tuning", "Hard to overfit badly", "Feature importances"),
            cons=("Large model files", "Slower to predict than boosting", "Probabilities less sharp"),
            params=(
                Param(
                    "n_estimators",
                    INT,
                    300,
                    "How many trees vote. More trees give steadier results and cost more time.",
                    low=1,
                    high=2000,
                    label="Number of trees",
                ),
                Param("max_depth", INT, None, _MAX_DEPTH_HELP, low=1, high=100, optional=True),
                Param(
                    "min_samples_split",
                    INT,
                    2,
                    "Fewest rows a node needs before it may split.",
                    low=2,
                    high=1000,
                ),
                Param("min_samples_leaf", INT, 1, _LEAF_HELP, low=1, high=1000),
                Param(
                    "max_features",
                    CHOICE,
                    "sqrt",
                    "How many features each split may look at: "
                    "fewer makes trees more different from each other.",
                    choices=("sqrt", "log2", "all"),
                ),
                BALANCE,
            ),
            tags=("tree",),
        ),
        Family(
            key="gradient_boosting",
            name="Gradient Boosting",
            summary="Classic boosted trees, each correcting the last one's mistakes.",
            pros=("Accurate on small and medium tables", "Subsampling adds robustness"),
            cons=("Slow on large tables (builds one tree per class per round)", "Sequential: no parallelism"),
            params=(
                Param(
                    "n_estimators",
                    INT,
                    100,
                    "How many boosting rounds (trees).",
                    low=1,
                    high=2000,
                    label="Number of trees",
                ),
                Param(
                    "learning_rate",
                    FLOAT,
                    0.1,
                    "How big a step each new tree takes.",
                    low=0.001,
                    high=1.0,
                    log_scale=True,
                ),
                Param("max_depth", INT, 3, _MAX_DEPTH_HELP, low=1, high=20),
                Param(
                    "subsample",
                    FLOAT,
                    1.0,
                    "Share of rows each tree sees; below 1 adds randomness that often helps.",
                    low=0.1,
                    high=1.0,
                ),
                Param("min_samples_leaf", INT, 1, _LEAF_HELP, low=1, high=1000),
                BALANCE,
            ),
            tags=("tree",),
        ),
        Family(
            key="adaboost",
            name="AdaBoost",
            summary="Boosts shallow trees by re-weighting the rows earlier trees got wrong.",
            pros=("Simple and quick", "Few parameters"),
            cons=("Sensitive to noisy labels and outliers", "Usually beaten by gradient boosting"),
            params=(
                Param(
                    "n_estimators",
                    INT,
                    100,
                    "How many weak trees to combine.",
                    low=1,
                    high=2000,
                    label="Number of trees",
                ),
                Param(
                    "learning_rate",
                    FLOAT,
                    0.5,
                    "How much each tree's vote counts; lower values need more trees.",
                    low=0.001,
                    high=10.0,
                    log_scale=True,
                ),
                Param("max_depth", INT, 2, "Depth of each weak tree (1 is a 'stump').", low=1, high=10),
                BALANCE,
            ),
            tags=("tree",),
        ),
        Family(
            key="mlp",
            name="Neural network (MLP)",
            summary="A small fully connected neural network on standardised features.",
            pros=("Learns smooth non-linear boundaries", "Compact model"),
            cons=("Needs scaling and some tuning", "Results vary with the random seed", "Opaque"),
            params=(
                Param(
                    "hidden_layer_sizes",
                    INT_LIST,
                    (64, 32),
                    "Neurons in each hidden layer, e.g. '64, 32' for two layers.",
                    low=1,
                    high=1024,
                    label="Hidden layers",
                ),
                Param(
                    "activation",
                    CHOICE,
                    "relu",
                    "The neurons' response curve.",
                    choices=("relu", "tanh", "logistic"),
                ),
                Param(
                    "alpha",
                    FLOAT,
                    0.001,
                    "L2 penalty on the weights; raise it if the network overfits.",
                    low=0.0,
                    high=10.0,
                    label="Weight penalty (alpha)",
                ),
                Param(
                    "learning_rate_init",
                    FLOAT,
                    0.001,
                    "Step size of the optimiser.",
                    low=0.00001,
                    high=1.0,
                    log_scale=True,
                    label="Learning rate",
                ),
                Param(
                    "max_iter",
                    INT,
                    500,
                    "Most passes over the data; training stops earlier when a held-back 10% stops improving.",
                    low=10,
                    high=5000,
                    label="Max epochs",
                ),
                BALANCE,
            ),
            needs_scaling=True,
        ),
        Family(
            key="logistic_regression",
            name="Logistic Regression",
            summary="A linear model of the log-odds: the transparent baseline.",
            pros=("Fast and interpretable", "Well-calibrated probabilities", "A baseline to beat"),
            cons=("Only linear boundaries", "Needs scaled features (done for you)"),
            params=(
                Param(
                    "C",
                    FLOAT,
                    1.0,
                    "Inverse regularisation strength: smaller values shrink coefficients harder.",
                    low=0.0001,
                    high=10000.0,
                    log_scale=True,
                    label="C (inverse penalty)",
                ),
                Param(
                    "penalty",
                    CHOICE,
                    "l2",
                    "Which penalty shrinks the coefficients: l2 shrinks "
                    "all, l1 zeroes some, elasticnet mixes both, none fits freely.",
                    choices=("l2", "l1", "elasticnet", "none"),
                ),
                Param(
                    "l1_ratio",
                    FLOAT,
                    0.5,
                    "For elasticnet only: the share of the L1 penalty (0 = pure l2, 1 = pure l1).",
                    low=0.0,
                    high=1.0,
                    label="L1 ratio",
                ),
                Param(
                    "max_iter",
                    INT,
                    2000,
                    "Most solver iterations.",
                    low=10,
                    high=20000,
                    label="Max iterations",
                ),
                BALANCE,
            ),
            needs_scaling=True,
        ),
    )
}

DEFAULT_FAMILY = "hist_gradient_boosting"

#: Feature selection before the model: plain data like the families.
SELECTION_METHODS: dict[str, str] = {
    "none": "Use every chosen feature.",
    "l1": "An L1-penalised logistic regression keeps only the features whose coefficient it does "
    "not push to zero. Strength is the penalty: higher strength keeps fewer features.",
    "l2": "An L2-penalised logistic regression ranks the features by the size of their "
    "standardised coefficient and keeps those at least strength × the average size: strength 1 "
    "keeps the above-average ones, higher strength keeps fewer.",
}
SELECTION_STRENGTH = Param(
    "strength",
    FLOAT,
    1.0,
    "How strict feature selection is: higher keeps fewer features.",
    low=0.0001,
    high=10000.0,
    log_scale=True,
)


def family(key: str) -> Family:
    fam = FAMILIES.get(key) if isinstance(key, str) else None
    if fam is None:
        raise SpecError(
            f"model.family: unknown model family {quoted(key)}; choose one of " + ", ".join(FAMILIES)
        )
    return fam


def model_name(spec: Mapping[str, Any] | None) -> str:
    """A spec's model as a researcher reads it: the family's display name (the default family's if none)."""
    key = ((spec or {}).get("model") or {}).get("family") or DEFAULT_FAMILY
    found = FAMILIES.get(key) if isinstance(key, str) else None
    return found.name if found else str(key)


def results_label(evaluated: Mapping[str, Any] | None, current: Mapping[str, Any] | None) -> str:
    """Whose results these are when the run's model has changed since they were made."""
    before = model_name(evaluated)
    if model_name(current) != before:
        return f"for {before}, before your change"
    return f"for {before} with its earlier settings, before your change"


def quoted(value: Any, limit: int = 60) -> str:
    """A value as an error message quotes it: its repr, cut short if long."""
    try:
        text = repr(value)
    except ValueError:  # an int with more digits than Python will print
        text = f"<a {type(value).__name__} too long to show>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


# A number as a person types it in ASCII: sign, digits, one decimal point, an exponent.
PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)


def parse_value(param: Param, raw: Any) -> Any:
    """Parse one value (a form string or a JSON value) and check it; SpecError names the problem."""
    where = f"{param.name}: {quoted(raw)} is not allowed; expected {param.allowed()}"
    if isinstance(raw, str):
        raw = raw.strip()
    if param.optional and (raw is None or (isinstance(raw, str) and raw.lower() in ("", "none"))):
        return None
    if param.kind == CHOICE:
        if raw not in param.choices:
            raise SpecError(where)
        return raw
    if param.kind == BOOL:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in ("true", "on", "1", "yes", "false", "off", "0", "no"):
            return raw.lower() in ("true", "on", "1", "yes")
        raise SpecError(where)
    if param.kind == INT_LIST:
        return _parse_int_list(param, raw, where)
    number = _parse_number(param, raw, where)
    if (param.low is not None and number < param.low) or (param.high is not None and number > param.high):
        raise SpecError(_out_of_range(param, raw))
    return number


def _out_of_range(param: Param, raw: Any) -> str:
    return f"{param.name}: {quoted(raw)} is out of range; expected {param.allowed()}"


def _parse_number(param: Param, raw: Any, where: str) -> int | float:
    if isinstance(raw, bool) or raw is None:
        raise SpecError(where)
    if isinstance(raw, str):
        # float() would also take full-width and Arabic-Indic digits, "1_0" and "nan"
        if not PLAIN_NUMBER.fullmatch(raw):
            raise SpecError(where)
        value = float(raw)
    elif isinstance(raw, int | float):
        try:
            value = float(raw)
        except OverflowError:  # an int beyond any float: out of every range
            raise SpecError(_out_of_range(param, raw)) from None
    else:
        raise SpecError(where)
    if not math.isfinite(value):
        raise SpecError(where)
    if param.kind == INT:
        if not value.is_integer():
            raise SpecError(where)
        return int(value)
    return value


def _parse_int_list(param: Param, raw: Any, where: str) -> tuple[int, ...]:
    if isinstance(raw, str):
        parts = [p.strip() for p in raw.split(",")]
        if parts and not parts[-1]:
            parts.pop()  # "100, 50," reads as "100, 50"
    elif isinstance(raw, list | tuple):
        parts = list(raw)
    else:
        raise SpecError(where)
    if not 1 <= len(parts) <= param.max_items:
        raise SpecError(where)
    element = Param(param.name, INT, None, "", low=param.low, high=param.high)
    try:
        return tuple(int(parse_value(element, part)) for part in parts)
    except SpecError:
        raise SpecError(where) from None


def validate_params(family_key: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Check every value for a family; unknown names and bad values are all reported at once.

    Missing parameters take their defaults. Accepts form strings and JSON values alike.
    """
    fam = family(family_key)
    if not isinstance(raw, Mapping):
        raise SpecError(
            f"{fam.name} parameters must be an object of parameter names to values, not {type(raw).__name__}"
        )
    known = {p.name for p in fam.params}
    problems = [
        f"{name}: unknown parameter for {fam.name}; known: {', '.join(sorted(known))}"
        for name in raw
        if name not in known
    ]
    values: dict[str, Any] = {}
    for p in fam.params:
        if p.name not in raw:
            values[p.name] = p.default
            continue
        try:
            values[p.name] = parse_value(p, raw[p.name])
        except SpecError as error:
            problems.extend(error.problems)
    if problems:
        raise SpecError(problems)
    return values


def to_json_value(value: Any) -> Any:
    """JSON form of a parsed value (tuples become lists)."""
    return list(value) if isinstance(value, tuple) else value
