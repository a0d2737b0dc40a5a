"""Property tests: whatever comes in, CSV/Parquet ingest, the spec parser and the hyperparameter
validation either succeed or raise the project's own error for it (``DataError`` for tables,
``SpecError`` for specs and parameters; both ``MissionError``), never anything else.

The hypothesis profile (derandomized, so CI sees the same examples every time) is registered in
``tests/conftest.py``.
"""

from __future__ import annotations

import io
import json
import math
import warnings

import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from shared.data import check_finite, read_table, table_sha256, table_to_parquet
from shared.errors import DataError, SpecError
from shared.params import FAMILIES, SELECTION_STRENGTH, parse_value, validate_params
from shared.profile import column_kinds, profile_table
from shared.spec import RunSpec

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _ingest(data: bytes) -> pd.DataFrame | None:
    """The upload path: read, check the numbers, profile, hash, store as Parquet. None when refused."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a warning would be a message nobody sees
            frame = read_table(data, filename="upload.csv")
            check_finite(frame)
            profiles = profile_table(frame)
            column_kinds(profiles)
            table_sha256(frame)
            table_to_parquet(frame)
    except DataError:
        return None
    assert len(frame) > 0 and len(frame.columns) > 0
    assert len(set(frame.columns)) == len(frame.columns)
    assert [p.name for p in profiles] == [str(c) for c in frame.columns]
    return frame


# --- CSV and Parquet ingest ------------------------------------------------------------------

CELL = st.one_of(
    st.sampled_from(["", "NA", "nan", "inf", "-inf", "1e400", "-0", "TRUE", "x", " ", "1,5", '"', "#"]),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12),
)


@st.composite
def csv_texts(draw) -> bytes:
    """Text that looks like a CSV: a header and rows of cells, with the usual accidents."""
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    width = draw(st.integers(1, 6))
    header = draw(st.lists(CELL, min_size=width, max_size=width))
    rows = draw(st.lists(st.lists(CELL, min_size=0, max_size=width + 2), max_size=8))  # ragged on purpose
    quote = draw(st.booleans())

    def line(cells: list[str]) -> str:
        if quote:
            cells = ['"' + c.replace('"', '""') + '"' for c in cells]
        return delimiter.join(cells)

    text = "\n".join(line(r) for r in [header, *rows])
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    prefix = draw(st.sampled_from(["", "\ufeff", "# comment\n", "\n\n"]))
    return (prefix + text.replace("\n", newline)).encode("utf-8")


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


PARQUET = _parquet(pd.DataFrame({"a": [1.0, 2.0, None], "b": ["x", "y", "z"], "c": [1, 2, 3]}))


@st.composite
def damaged_parquet(draw) -> bytes:
    """A real Parquet file, cut short or with some bytes overwritten (magic kept at both ends)."""
    data = bytearray(PARQUET)
    if draw(st.booleans()):
        return bytes(data[: draw(st.integers(0, len(data) - 1))])
    for _ in range(draw(st.integers(1, 8))):
        position = draw(st.integers(4, len(data) - 5))
        data[position] = draw(st.integers(0, 255))
    return bytes(data)


@FAST
@given(st.binary(max_size=2048))
@example(b"")
@example(b"PAR1")
@example(b"PAR1" + b"\0" * 8 + b"PAR1")
@example(b"\x80\x04\x95")  # a pickle
@example(b"PK\x03\x04")  # xlsx
@example("a,b\ncafé,1\n".encode("latin-1"))
def test_random_bytes_are_read_or_refused_with_a_data_error(data):
    _ingest(data)


@FAST
@given(csv_texts())
@example(b"a,b\n")
@example(b"a,a\n1,2\n")
@example(b'a,b\n"x\ny",1\n')
@example(b"a,b\n1,2,3\n")
@example(b"a\n1e400\n-1e400\n")
@example(b"a;b\n1;2\n")
@example(b'a,b\n"unterminated,1\n')
def test_csv_like_text_is_read_or_refused_with_a_data_error(data):
    frame = _ingest(data)
    if frame is not None:
        assert all(str(c).strip() for c in frame.columns)


@settings(max_examples=150, deadline=None)
@given(damaged_parquet())
def test_damaged_parquet_is_refused_with_a_data_error(data):
    _ingest(data)


def test_an_intact_parquet_round_trips():
    frame = _ingest(PARQUET)
    assert frame is not None and list(frame.columns) == ["a", "b", "c"] and len(frame) == 3


# --- the spec parser -------------------------------------------------------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["", "none", "kepler", "koi_period", "kfold", "holdout", "l1", "sigmoid", "nan"]),
)
JSONISH = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
FAMILY_KEYS = st.one_of(st.sampled_from(sorted(FAMILIES)), JSONISH)
PARAM_NAMES = sorted({p.name for f in FAMILIES.values() for p in f.params})


def _param_dicts() -> st.SearchStrategy[dict]:
    names = st.one_of(st.sampled_from(PARAM_NAMES), st.text(max_size=12))
    return st.dictionaries(names, JSONISH, max_size=6)


OTHER_FIELDS = ("label_mapping", "positive_class", "group_column", "label_setup", "score_classes",
                "threshold", "calibration", "version", "unknown")  # fmt: skip


@st.composite
def spec_dicts(draw) -> dict:
    """Mostly well-formed specs with some fields replaced by anything JSON can hold."""
    spec = {
        "dataset": "kepler",
        "target": "koi_disposition",
        "features": ["koi_period", "koi_depth"],
        "model": {"family": draw(FAMILY_KEYS), "params": draw(_param_dicts())},
        "feature_selection": {"method": draw(st.sampled_from(["none", "l1", "l2"])), "strength": 1.0},
        "evaluation": {"method": "kfold", "folds": 5, "test_size": 0.2, "seed": 1},
    }
    fields = [*spec, *OTHER_FIELDS]
    for name in draw(st.lists(st.sampled_from(fields), max_size=5)):
        spec[name] = draw(JSONISH)
    evaluation = spec.get("evaluation")
    if isinstance(evaluation, dict) and draw(st.booleans()):
        field = draw(st.sampled_from(["method", "folds", "test_size", "stratified", "seed", "importance"]))
        evaluation[field] = draw(JSONISH)
    selection = spec.get("feature_selection")
    if isinstance(selection, dict) and draw(st.booleans()):
        selection[draw(st.sampled_from(["method", "strength"]))] = draw(JSONISH)
    return spec


def _problems(call, *args) -> tuple[object, list[str]]:
    """The call's result, or the problems its SpecError lists (each a non-empty line of text)."""
    try:
        return call(*args), []
    except SpecError as error:
        problems = error.problems
    assert problems and all(isinstance(p, str) and p for p in problems), problems
    return None, problems


def _parse(raw) -> RunSpec | None:
    spec, problems = _problems(RunSpec.from_dict, raw)
    if problems:
        return None
    again = RunSpec.from_dict(json.loads(json.dumps(spec.to_dict(), allow_nan=False)))
    assert again == spec  # an accepted spec is plain JSON and parses back to itself
    return spec


@FAST
@given(spec_dicts())
@example({"dataset": "kepler", "target": "t", "features": ["a"], "evaluation": {"test_size": 10**400}})
@example({"dataset": "kepler", "target": "t", "features": ["a"], "calibration": ["sigmoid"]})
@example({"dataset": "kepler", "target": "t", "features": ["a"], "model": {"family": ["mlp"]}})
@example({"dataset": "kepler", "target": "t", "features": ["a"], "feature_selection": {"method": {}}})
@example({"dataset": "kepler", "target": "t", "features": ["a"], "model": {"params": {"max_iter": 10**400}}})
def test_specs_parse_or_raise_spec_error(raw):
    _parse(raw)


@FAST
@given(JSONISH)
def test_anything_json_can_hold_parses_or_raises_spec_error(raw):
    _parse(raw)


@FAST
@given(st.text(max_size=200))
def test_any_text_as_a_json_spec_parses_or_raises_spec_error(text):
    try:
        raw = json.loads(text)
    except ValueError:
        return
    _parse(raw)


# --- the hyperparameter validation -------------------------------------------------------------


@FAST
@given(FAMILY_KEYS, _param_dicts())
@example("hist_gradient_boosting", {"max_iter": 10**400})
@example("mlp", {"hidden_layer_sizes": [10**400]})
@example("mlp", {"hidden_layer_sizes": "64, 1e999"})
@example("random_forest", {"max_depth": float("nan")})
@example(["mlp"], {})
@example({"a": 1}, {})
def test_params_validate_or_raise_spec_error(family_key, raw):
    values, problems = _problems(validate_params, family_key, raw)
    if problems:
        return
    family = FAMILIES[family_key]
    assert set(values) == {p.name for p in family.params}
    for param in family.params:
        value = values[param.name]
        if isinstance(value, int | float) and not isinstance(value, bool):
            assert math.isfinite(value)
            assert param.low is None or param.low <= value
            assert param.high is None or value <= param.high
    assert validate_params(family_key, values) == values  # validated values validate again


@FAST
@given(JSONISH)
@example(10**400)
@example(-(10**400))
@example("1e400")
@example([1, 2])
def test_one_value_parses_or_raises_spec_error(raw):
    try:
        value = parse_value(SELECTION_STRENGTH, raw)
    except SpecError:
        return
    assert SELECTION_STRENGTH.low <= value <= SELECTION_STRENGTH.high


@pytest.mark.parametrize("raw", [None, [], ["max_iter"], "max_iter=10", 5])
def test_params_that_are_not_a_mapping_raise_spec_error(raw):
    with pytest.raises(SpecError, match="parameters must be an object"):
        validate_params("hist_gradient_boosting", raw)
