"""Reading uploaded tables (CSV or Parquet) into pandas, and storing them as Parquet.

Every problem with an input raises :class:`~shared.errors.DataError` with a message a researcher
can act on. The format is sniffed from the content, never from the file name.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from shared.errors import DataError
from shared.spec import MAX_COLUMN_NAME

MAX_COLUMNS = 2000
#: The largest magnitude the models can use: tree models work in float32.
MAX_MAGNITUDE = float(np.finfo(np.float32).max)
DELIMITERS = (",", ";", "\t")  # in order of preference when the header is ambiguous

PARQUET_MAGIC = b"PAR1"
_ZIP_MAGIC = b"PK\x03\x04"
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0"
_GZIP_MAGIC = b"\x1f\x8b"
_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_SNIFF_BYTES = 8192

_REJECTED_MAGIC: tuple[tuple[bytes, str], ...] = (
    (
        _ZIP_MAGIC,
        "the file looks like an Excel workbook or zip archive, not CSV or Parquet; export it as CSV",
    ),
    (
        _OLE2_MAGIC,
        "the file looks like an old Excel (.xls) workbook or another Office document, "
        "not CSV or Parquet; export it as CSV",
    ),
    (
        _GZIP_MAGIC,
        "the file looks like a gzip-compressed archive, not CSV or Parquet; "
        "decompress it and upload the table inside",
    ),
)


# --- reading -------------------------------------------------------------------------------


def read_table(data: bytes, filename: str = "") -> pd.DataFrame:
    """Parse an uploaded CSV (comma, semicolon or tab separated, UTF-8) or Parquet file.

    ``filename`` is only used to prefix error messages.
    """
    try:
        return _read_table(data)
    except DataError as exc:
        if not filename:
            raise
        raise DataError(f"{filename}: {exc}") from exc


def read_table_path(path: str | Path) -> pd.DataFrame:
    """Read a table from a file on disk; see :func:`read_table`."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"could not read {path}: {exc.strerror or exc}") from exc
    return read_table(data, filename=path.name)


def _read_table(data: bytes) -> pd.DataFrame:
    if not data:
        raise DataError("the file is empty")
    if data.startswith(PARQUET_MAGIC):
        return _read_parquet_upload(data)
    reject_binary(data)
    text = _decode_utf8(data)
    if "\r" in text and "\n" not in text:  # Excel's "CSV (Macintosh)": lines end with CR alone
        text = text.replace("\r", "\n")
    return _read_csv_text(text)


def reject_binary(data: bytes) -> None:
    """Refuse bytes that are not CSV text (Excel, zip, gzip, pickle, UTF-16, NUL bytes) with a
    DataError naming what the file looks like. The first few KB of a file are enough."""
    for magic, message in _REJECTED_MAGIC:
        if data.startswith(magic):
            raise DataError(message)
    # Protocols 2-5 start with the PROTO opcode 0x80 followed by the protocol number.
    if len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5:
        raise DataError(
            "the file looks like a Python pickle, not CSV or Parquet; pickles are never loaded "
            "because unpickling can run arbitrary code. Export the table as CSV or Parquet"
        )
    if data.startswith(_UTF16_BOMS):
        raise DataError("the file looks like UTF-16 text; save it as UTF-8 (CSV UTF-8) and upload it again")
    if b"\x00" in data[:_SNIFF_BYTES]:
        raise DataError(
            "the file looks like binary data (it contains NUL bytes), not CSV or Parquet text; "
            "export the table as CSV (UTF-8) or Parquet"
        )


def _decode_utf8(data: bytes) -> str:
    bom = len(_UTF8_BOM) if data.startswith(_UTF8_BOM) else 0
    try:
        return data[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = bom + exc.start
        line = data[:offset].count(b"\n") + 1
        raise DataError(
            f"the file is not valid UTF-8 text: byte {offset:,} (0x{data[offset]:02x}, line {line:,}) "
            "cannot be decoded. It may be Latin-1 or Windows-1252; save it as UTF-8 and upload it again"
        ) from None


def _read_parquet_upload(data: bytes) -> pd.DataFrame:
    table = _parquet_arrow_table(data)
    try:  # e.g. text that is not UTF-8: caught here, not when a column is first looked at
        table.validate(full=True)
    except (pa.ArrowException, ValueError) as exc:
        raise DataError(f"the file is not a readable Parquet file: {exc}") from None
    check_header(table.column_names)
    _check_flat(table.schema)
    frame = _arrow_to_frame(table)
    if frame.empty:
        raise DataError("the Parquet file has columns but no data rows")
    return frame


# --- CSV -----------------------------------------------------------------------------------


def _read_csv_text(text: str) -> pd.DataFrame:
    start, skipped_lines, comment_lines = _skip_preamble(text)
    body = text[start:]
    if not body:
        if comment_lines:
            raise DataError("the file has only comment lines (starting with #) and no header or data")
        raise DataError("the file is empty (it holds only whitespace)")
    delimiter = detect_delimiter(body.partition("\n")[0])
    check_header(_header_fields(body, delimiter))
    frame = _parse_csv(body, delimiter, skipped_lines)
    if frame.empty:
        raise DataError("the file has a header but no data rows")
    return frame


def _skip_preamble(text: str) -> tuple[int, int, int]:
    """Find where the header starts, skipping leading blank and ``#`` lines.

    Returns (character offset of the header, lines skipped, comment lines among them).
    """
    position = skipped = comments = 0
    while position < len(text):
        newline = text.find("\n", position)
        end = len(text) if newline == -1 else newline
        line = text[position:end]
        if line.startswith("#"):
            comments += 1
        elif line.strip():
            return position, skipped, comments
        position = end + 1
        skipped += 1
    return len(text), skipped, comments


def detect_delimiter(header_line: str) -> str:
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for char in header_line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    return max(DELIMITERS, key=counts.__getitem__)  # max() keeps the first on ties: comma


def _header_fields(body: str, delimiter: str) -> list[str]:
    try:
        return next(csv.reader(io.StringIO(body), delimiter=delimiter))
    except csv.Error as exc:
        raise DataError(f"could not read the header row: {exc}") from None


def check_header(names: list[str]) -> None:
    if len(names) > MAX_COLUMNS:
        raise DataError(f"the table has {len(names):,} columns; at most {MAX_COLUMNS:,} are supported")
    too_long = [(number, name) for number, name in enumerate(names, start=1) if len(name) > MAX_COLUMN_NAME]
    if too_long:
        number, name = too_long[0]
        raise DataError(
            f"column {number}'s name is {len(name):,} characters long ({name[:40]!r}…); at most "
            f"{MAX_COLUMN_NAME} are supported: shorten it"
        )
    blank = [str(number) for number, name in enumerate(names, start=1) if not name.strip()]
    if blank:
        raise DataError(f"column {', '.join(blank)} of the header has a blank name; give every column a name")
    repeated = [name for name, count in Counter(names).items() if count > 1]
    if repeated:
        raise DataError(
            f"the header repeats the column names {', '.join(map(repr, repeated))}; "
            "rename them so every column name is unique"
        )


def _parse_csv(body: str, delimiter: str, skipped_lines: int) -> pd.DataFrame:
    try:
        with warnings.catch_warnings():
            # With index_col=False pandas only *warns* when a row has more fields than the
            # header, and drops the extra values; treat that as the ragged row it is.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(
                io.StringIO(body),
                sep=delimiter,
                index_col=False,
                low_memory=False,  # chunked type inference raises DtypeWarning on mixed columns
            )
    except (ValueError, pd.errors.ParserWarning) as exc:
        line = _first_long_row(body, delimiter)
        if line is not None:
            raise DataError(
                f"line {line + skipped_lines:,} has more fields than the header; "
                "check for an unquoted delimiter in a value or a missing column name"
            ) from None
        raise DataError(f"could not parse the file as CSV: {exc}") from None
    return _wide_integers_as_floats(frame)


def _wide_integers_as_floats(frame: pd.DataFrame) -> pd.DataFrame:
    """Whole numbers beyond 64 bits come back from pandas as Python ints in an object column,
    which neither Parquet nor the models take: make them floats (±inf past the float range)."""
    for position in range(frame.shape[1]):
        column = frame.iloc[:, position]
        if column.dtype != object:
            continue
        values = column.dropna()
        if len(values) and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            frame.isetitem(position, column.map(_int_to_float, na_action="ignore").astype("float64"))
    return frame


def _int_to_float(value: int) -> float:
    try:
        return float(value)
    except OverflowError:
        return np.inf if value > 0 else -np.inf


def _first_long_row(body: str, delimiter: str) -> int | None:
    """The 1-based line (within ``body``) where the first row longer than the header starts."""
    reader = csv.reader(io.StringIO(body), delimiter=delimiter)
    try:
        width = len(next(reader))
        row_start = reader.line_num + 1
        for row in reader:
            if len(row) > width:
                return row_start
            row_start = reader.line_num + 1
    except csv.Error:
        return None
    return None


# --- Parquet -------------------------------------------------------------------------------


def table_to_parquet(df: pd.DataFrame) -> bytes:
    """Serialise a table to Parquet bytes. The index is not stored."""
    buffer = io.BytesIO()
    try:
        df.to_parquet(buffer, engine="pyarrow", index=False)
    except (pa.ArrowException, ValueError, TypeError, OverflowError) as exc:
        raise DataError(f"could not store the table as Parquet: {exc}") from exc
    return buffer.getvalue()


def parquet_to_table(data: bytes) -> pd.DataFrame:
    """Read Parquet bytes written by :func:`table_to_parquet` (or any flat Parquet table)."""
    return _arrow_to_frame(_parquet_arrow_table(data))


def _parquet_arrow_table(data: bytes) -> pa.Table:
    if len(data) < 12 or not data.startswith(PARQUET_MAGIC) or not data.endswith(PARQUET_MAGIC):
        raise DataError("the file is not a readable Parquet file: it is truncated or corrupt")
    try:
        return pq.ParquetFile(io.BytesIO(data)).read()
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataError(f"the file is not a readable Parquet file: {exc}") from None


def _check_flat(schema: pa.Schema) -> None:
    nested = [field.name for field in schema if pa.types.is_nested(field.type)]
    if nested:
        raise DataError(
            f"the Parquet columns {', '.join(map(repr, nested))} hold nested values (lists or structs); "
            "only flat tables are supported"
        )


def _arrow_to_frame(table: pa.Table) -> pd.DataFrame:
    try:
        frame = table.to_pandas()
    except (pa.ArrowException, ValueError, TypeError, KeyError, IndexError):
        # The pandas metadata written beside the data may be damaged; the columns may not be.
        try:
            frame = table.to_pandas(ignore_metadata=True)
        except (pa.ArrowException, ValueError, TypeError) as exc:
            raise DataError(f"could not convert the Parquet table: {exc}") from None
    if isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0 and frame.index.step == 1:
        return frame
    # A stored index is data if it was named (pandas writes it as a column), noise otherwise.
    named = any(name is not None for name in frame.index.names)
    return frame.reset_index(drop=not named)


# --- values --------------------------------------------------------------------------------


def clean_numeric(df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Replace +/-inf in float columns with NaN.

    Returns a new frame and the number of infinite values replaced per affected column.
    """
    cleaned = df.copy()
    replaced: dict[str, int] = {}
    for position, name in enumerate(df.columns):
        column = df.iloc[:, position]
        if not pd.api.types.is_float_dtype(column.dtype):
            continue
        infinite = np.isinf(column.to_numpy(dtype="float64", na_value=np.nan))
        count = int(infinite.sum())
        if count:
            cleaned.iloc[infinite, position] = np.nan
            replaced[str(name)] = count
    return cleaned, replaced


def check_finite(df: pd.DataFrame) -> None:
    """Refuse a table whose numeric columns hold infinite values, or numbers too large for the
    models (beyond ±3.4e38, where float32 overflows): DataError names the column, value and row.

    Uploads are checked with this, as predictions are: a model cannot learn from ``inf``.
    """
    for position, name in enumerate(df.columns):
        column = df.iloc[:, position]
        if not pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_bool_dtype(column.dtype):
            continue
        if pd.api.types.is_complex_dtype(column.dtype):
            raise DataError(f"column {str(name)!r} holds complex numbers; only real numbers can be used")
        numbers = column.to_numpy(dtype="float64", na_value=np.nan)
        with np.errstate(invalid="ignore"):
            bad = np.isinf(numbers) | (np.abs(numbers) > MAX_MAGNITUDE)
        if bad.any():
            row, count = int(np.flatnonzero(bad)[0]), int(bad.sum())
            value = numbers[row]
            what = "an infinite number (inf, or beyond ±1.8e308)" if np.isinf(value) else "a number too large"
            raise DataError(
                f"column {str(name)!r} holds {what}: {value:g} in data row {row + 1:,} "
                f"({count:,} such value{'s' if count > 1 else ''} in all); numbers must be finite and "
                "within ±3.4e38. Replace them with real values, or leave the cells empty for missing"
            )


def table_sha256(df: pd.DataFrame) -> str:
    """A content hash of a table: same column names, order and values give the same hash."""
    digest = hashlib.sha256()
    digest.update(json.dumps([str(name) for name in df.columns]).encode())
    digest.update(f"\n{len(df)}\n".encode())
    if len(df.columns):
        try:
            rows = pd.util.hash_pandas_object(df, index=False)
        except TypeError as exc:
            raise DataError(f"the table holds values that cannot be hashed: {exc}") from exc
        digest.update(rows.to_numpy(dtype="<u8").tobytes())
    return digest.hexdigest()
