"""Prediction with a run's bundle: one row, JSON rows, or a large CSV streamed in chunks.

Models load only from the run's own ``bundle.zip`` through the skops reader (never joblib),
and are cached per process. Output columns: the input's key columns, ``prediction``, and one
``probability_<class>`` column per class, in the bundle's class order.
"""

from __future__ import annotations

import io
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from shared.bundle import LoadedBundle, read_bundle
from shared.csv_safety import safe_frame
from shared.errors import DataError, MissionError, ObjectNotFound
from shared.params import quoted
from shared.runs import BUNDLE, FINAL, SUCCEEDED, job_key, read_status, run_key
from shared.storage import Storage
from shared.table_reader import PARQUET, TableLayout, read_layout, with_line_feeds
from shared.thresholds import predicted_classes

CHUNK_BYTES = 8 * 1024 * 1024
PARQUET_BATCH_ROWS = 25_000  # about 25,000 KOI-like rows per chunk: memory stays bounded
MAX_JSON_ROWS = 100_000
MAX_EXPLAINED_ROWS = 20
TOP_CONTRIBUTIONS = 8
NUMERIC = "numeric"
Progress = Callable[[int, float], None]  # rows done, share of the file read


class ModelNotReady(MissionError):
    """The run does not exist (``found`` False), or has no trained model yet."""

    def __init__(self, message: str, *, found: bool) -> None:
        super().__init__(message)
        self.found = found


class _ModelCache:
    """A few recently used bundles per process, keyed by run id (bundles never change)."""

    def __init__(self, size: int = 4) -> None:
        self._items: OrderedDict[str, LoadedBundle] = OrderedDict()
        self._lock = threading.Lock()
        self.size = size

    def get(self, results: Storage, run_id: str) -> LoadedBundle:
        with self._lock:
            if run_id in self._items:
                self._items.move_to_end(run_id)
                return self._items[run_id]
        bundle = _load(results, run_id)
        with self._lock:
            self._items[run_id] = bundle
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return bundle


def _load(results: Storage, run_id: str) -> LoadedBundle:
    status, _ = read_status(results, run_id, FINAL)
    if status is None:
        found = results.exists(run_key(run_id, "spec.json"))
        what = "has not been trained on all data yet" if found else "does not exist"
        raise ModelNotReady(f"run {run_id} {what}", found=found)
    if status.state != SUCCEEDED:
        message = f"run {run_id} is not trained yet: its final training is {status.state}"
        raise ModelNotReady(message, found=True)
    try:
        return read_bundle(results.read_bytes(job_key(run_id, FINAL, BUNDLE)))
    except ObjectNotFound:
        raise ModelNotReady(f"run {run_id} has no model bundle", found=True) from None


MODELS = _ModelCache()


def load_model(results: Storage, run_id: str) -> LoadedBundle:
    return MODELS.get(results, run_id)


# --- checking input -------------------------------------------------------------------------


def _check_missing(columns: Iterable[str], bundle: LoadedBundle) -> None:
    present = set(columns)
    missing = [f for f in bundle.features if f not in present]
    if missing:
        raise DataError(f"missing feature columns: {', '.join(missing)}")


def _coerce(frame: pd.DataFrame, bundle: LoadedBundle, first_row: int) -> pd.DataFrame:
    """Numeric features as floats; a value that is not a finite number is named with its row."""
    types = bundle.metadata["feature_types"]
    columns = {}
    for name in bundle.features:
        column = frame[name]
        if types.get(name) != NUMERIC:
            columns[name] = (
                column if pd.api.types.is_string_dtype(column) else column.astype("str").where(column.notna())
            )
            continue
        if column.dtype.kind in "biuf":  # parsed as numbers already: only infinities can be wrong
            numbers = column.to_numpy(dtype=float)
            bad = np.isinf(numbers)
        else:
            numbers = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
            unparsed = np.isnan(numbers) & column.notna().to_numpy()
            if unparsed.any():  # blank text is a missing value, anything else is an error
                unparsed[unparsed] = column[unparsed].astype(str).str.strip().to_numpy() != ""
            bad = unparsed | np.isinf(numbers)
        if bad.any():
            position = int(np.flatnonzero(bad)[0])
            value = column.iloc[position]
            shown = repr(value) if isinstance(value, str) else str(value)
            row = first_row + position
            raise DataError(f"column {name!r} has a value that is not a finite number: {shown} in row {row}")
        columns[name] = numbers
    return pd.DataFrame(columns, index=frame.index)


def predict_frame(bundle: LoadedBundle, frame: pd.DataFrame, *, first_row: int = 1) -> pd.DataFrame:
    """Key columns, the predicted class and every class's probability for each row."""
    _check_missing(frame.columns, bundle)
    features = _coerce(frame[bundle.features], bundle, first_row)
    proba = bundle.pipe.predict_proba(features)
    classes = [str(c) for c in bundle.pipe.classes_]
    keys = [k for k in bundle.metadata.get("key_columns", []) if k in frame.columns]
    out = frame[keys].reset_index(drop=True).copy()
    out["prediction"] = _decide(proba, classes, bundle.metadata)
    for i, name in enumerate(classes):
        out[f"probability_{name}"] = proba[:, i]
    return out


def _decide(proba: np.ndarray, classes: list[str], metadata: Mapping[str, Any]) -> np.ndarray:
    """The class each row gets: one tie rule with the evaluation (shared.thresholds)."""
    positive = metadata.get("positive_class") if len(classes) == 2 else None
    return predicted_classes(proba, classes, positive, metadata.get("threshold"))


def predict_rows(bundle: LoadedBundle, rows: Any, *, explain: bool = False) -> pd.DataFrame:
    """JSON rows: a list of objects, column name to value. With ``explain``, an ``explanation``
    column holds each row's top feature contributions to its predicted class."""
    if not isinstance(rows, list) or not rows or not all(isinstance(r, Mapping) for r in rows):
        raise DataError("rows must be a non-empty list of objects mapping column names to values")
    if len(rows) > MAX_JSON_ROWS:
        raise DataError(f"{len(rows):,} rows sent as JSON; at most {MAX_JSON_ROWS:,}: upload a CSV instead")
    if explain and len(rows) > MAX_EXPLAINED_ROWS:
        raise DataError(f"{len(rows):,} rows to explain; at most {MAX_EXPLAINED_ROWS} at a time")
    for number, row in enumerate(rows, start=1):
        for name, value in row.items():
            _check_json_value(name, value, number)
    frame = pd.DataFrame.from_records(rows)
    out = predict_frame(bundle, frame)
    if explain:
        out["explanation"] = _explanations(bundle, frame, list(out["prediction"]))
    return out


def _check_json_value(name: object, value: object, row: int) -> None:
    """A JSON row holds text, numbers, booleans or null; numbers fit a float."""
    where = f"row {row}, column {quoted(name)}"
    if isinstance(value, dict | list):
        raise DataError(f"{where}: a {type(value).__name__} is not a value; send text or a number")
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            float(value)
        except OverflowError:
            magnitude = int(value.bit_length() * 0.30103)  # str() of a huge int is refused or slow
            raise DataError(
                f"{where}: a number of about 10^{magnitude:,} is beyond any float (at most 1.8e308)"
            ) from None


def _explanations(bundle: LoadedBundle, frame: pd.DataFrame, predicted: list[str]) -> list[dict[str, Any]]:
    from shared.explain import contributions, unavailable_reason

    stored = bundle.metadata.get("explanation")
    if stored is None:
        reason = unavailable_reason(bundle.pipe) or "this bundle was trained before explanations existed"
        return [{"unavailable": reason} for _ in predicted]
    features = _coerce(frame[bundle.features], bundle, 1)
    classes = [str(c) for c in bundle.pipe.classes_]
    try:
        explained, units = contributions(bundle.pipe, features, classes, predicted, stored.get("background"))
    except ValueError as reason:
        return [{"unavailable": str(reason)} for _ in predicted]
    for row in explained:
        row["units"], row["method"] = units, stored["method"]
        row["contributions"] = row["contributions"][:TOP_CONTRIBUTIONS]
    return explained


# --- large CSV or Parquet files, in chunks ----------------------------------------------------


def check_csv_start(source: BinaryIO, features: list[str]) -> TableLayout:
    """What can be told from a file's first lines, cheaply, before predicting it: CSV or Parquet
    as uploads are read (shared.table_reader), unique names that include every feature, at
    least one data row. The file is left at its start."""
    readable = with_line_feeds(source)
    try:
        layout = read_layout(readable)
    finally:
        if readable is not source:
            readable.close()
    missing = [f for f in features if f not in set(layout.names)]
    if missing:
        raise DataError(f"missing feature columns: {', '.join(missing)}")
    return layout


def predict_csv(
    bundle: LoadedBundle, source: BinaryIO, sink: BinaryIO, progress: Progress = lambda rows, share: None
) -> int:
    """Stream a CSV or Parquet file (seekable, binary) through the model into ``sink`` as CSV;
    returns the row count. Memory stays bounded: a chunk at a time; ``progress(rows done, share
    of the file read)`` is called after each chunk."""
    readable = with_line_feeds(source)
    try:
        size = readable.seek(0, 2) or 1
        layout = check_csv_start(readable, bundle.features)
        if layout.kind == PARQUET:
            return _write(bundle, _parquet_batches(readable, layout, bundle), sink, progress, readable, size)
        try:
            return _write(bundle, _csv_batches(readable, layout, bundle), sink, progress, readable, size)
        except pa.ArrowInvalid as error:
            if not layout.multiline:  # a quoted line break in a value: read again, slower
                sink.seek(0)
                sink.truncate()
                again = replace(layout, multiline=True)
                try:
                    return _write(
                        bundle, _csv_batches(readable, again, bundle), sink, progress, readable, size
                    )
                except pa.ArrowInvalid:
                    pass
            raise _explain(error, readable, layout, bundle) from None
    finally:
        if readable is not source:
            readable.close()


def _wanted(layout: TableLayout, bundle: LoadedBundle) -> tuple[list[str], list[str]]:
    keys = [k for k in bundle.metadata.get("key_columns", []) if k in layout.names]
    return keys, list(dict.fromkeys([*keys, *bundle.features]))


def _csv_batches(source: BinaryIO, layout: TableLayout, bundle: LoadedBundle) -> Iterator[pd.DataFrame]:
    types = bundle.metadata["feature_types"]
    keys, wanted = _wanted(layout, bundle)
    column_types = {n: (pa.float64() if types.get(n) == NUMERIC else pa.string()) for n in bundle.features}
    column_types.update({k: pa.string() for k in keys})
    source.seek(layout.data_offset)
    reader = pacsv.open_csv(
        source,
        read_options=pacsv.ReadOptions(column_names=layout.names, block_size=CHUNK_BYTES),
        parse_options=pacsv.ParseOptions(delimiter=layout.delimiter, newlines_in_values=layout.multiline),
        convert_options=pacsv.ConvertOptions(
            column_types=column_types, include_columns=wanted, strings_can_be_null=True
        ),
    )
    for batch in reader:
        yield batch.to_pandas()


def _parquet_batches(source: BinaryIO, layout: TableLayout, bundle: LoadedBundle) -> Iterator[pd.DataFrame]:
    _, wanted = _wanted(layout, bundle)
    try:
        for batch in pq.ParquetFile(source).iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=wanted):
            yield batch.to_pandas()
    except (pa.ArrowException, OSError) as error:
        raise DataError(f"the Parquet file could not be read: {error}") from None


def _write(
    bundle: LoadedBundle,
    batches: Iterator[pd.DataFrame],
    sink: BinaryIO,
    progress: Progress,
    source: BinaryIO,
    size: int,
) -> int:
    rows, writer = 0, None
    for frame in batches:
        out = safe_frame(predict_frame(bundle, frame, first_row=rows + 1))
        table = pa.Table.from_pandas(out, preserve_index=False)
        if writer is None:
            writer = pacsv.CSVWriter(sink, table.schema)
        writer.write_table(table)
        rows += len(out)
        progress(rows, min(1.0, source.tell() / size))
    if writer is None:
        raise DataError("the file has a header but no data rows")
    writer.close()
    return rows


def _explain(
    error: pa.ArrowInvalid, source: BinaryIO, layout: TableLayout, bundle: LoadedBundle
) -> DataError:
    """Turn Arrow's conversion error into one naming the column and a sample row (slow path)."""
    source.seek(layout.data_offset)
    try:
        for number, chunk in enumerate(
            pd.read_csv(
                source,
                names=layout.names,
                header=None,
                sep=layout.delimiter,
                dtype=str,
                chunksize=50_000,
                usecols=lambda c: c in bundle.features,
            )
        ):
            _coerce(chunk, bundle, first_row=number * 50_000 + 1)
    except DataError as named:
        return named
    except (ValueError, pd.errors.ParserError):
        pass
    return DataError(f"the CSV could not be parsed: {str(error).splitlines()[0]}")


def output_key(key: str) -> str:
    """Where the predictions for an uploaded CSV go: next to it."""
    return f"{key.removesuffix('.csv')}.predictions.csv"


def predict_stored(
    bundle: LoadedBundle, data: Storage, key: str, progress: Progress = lambda rows, share: None
) -> tuple[str, int]:
    """Predict an uploaded CSV already in storage (``uploads/...``); returns the output's key and
    the number of rows predicted."""
    if not key.startswith("uploads/"):
        raise DataError("only files under uploads/ can be predicted")
    with tempfile.TemporaryFile() as upload, tempfile.TemporaryFile() as output:
        try:
            data.download_to_file(key, upload)
        except ObjectNotFound:
            raise DataError("the uploaded file is gone; upload it again") from None
        upload.seek(0)
        rows = predict_csv(bundle, upload, output, progress)
        output.seek(0)
        data.upload_file(output_key(key), output, content_type="text/csv")
    return output_key(key), rows


def csv_bytes(frame: pd.DataFrame) -> bytes:
    sink = io.BytesIO()
    pacsv.write_csv(pa.Table.from_pandas(safe_frame(frame), preserve_index=False), sink)
    return sink.getvalue()
