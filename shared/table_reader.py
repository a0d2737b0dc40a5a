"""Where a table to predict starts and how it is laid out, read the way uploads are read
(shared.data): CSV separated by commas, semicolons or tabs, UTF-8, leading '#' and blank lines
skipped, any line endings (Excel's "CSV (Macintosh)" ends lines with CR alone), quoted names
that hold delimiters, quotes or line breaks; or Parquet. Only the first lines are read here, so
a large file can then be streamed a chunk at a time from ``data_offset``.
"""

from __future__ import annotations

import csv
import tempfile
from dataclasses import dataclass
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from shared.csv_safety import unneutralised
from shared.data import PARQUET_MAGIC, check_header, detect_delimiter, reject_binary
from shared.errors import DataError

CSV, PARQUET = "csv", "parquet"
SNIFF_BYTES = 64 * 1024
MAX_HEADER_BYTES = 4 * 1024 * 1024  # a header of 2,000 names of 200 characters fits


@dataclass(frozen=True)
class TableLayout:
    kind: str  # CSV or PARQUET
    names: list[str]  # column names as the table means them (a template's "'=x" is "=x")
    delimiter: str = ","
    data_offset: int = 0  # CSV: the byte where the first data row starts
    multiline: bool = False  # CSV: the header has a quoted line break, so values may too


def with_line_feeds(source: BinaryIO) -> BinaryIO:
    """``source``, or a temporary copy with CR line endings turned into LF when the file uses CR
    alone; the caller closes a copy. Left at the start."""
    source.seek(0)
    head = source.read(SNIFF_BYTES)
    source.seek(0)
    if b"\r" not in head or b"\n" in head:
        return source
    copy = tempfile.TemporaryFile()  # noqa: SIM115 (returned open: the caller closes it)
    while block := source.read(1024 * 1024):
        copy.write(block.replace(b"\r", b"\n"))
    source.seek(0)
    copy.seek(0)
    return copy


def read_layout(source: BinaryIO) -> TableLayout:
    """The layout of a CSV (after :func:`with_line_feeds`) or Parquet file; DataError names what
    is wrong with its start. The file is left at its start."""
    source.seek(0)
    head = source.read(SNIFF_BYTES)
    source.seek(0)
    if not head.strip():
        raise DataError("the file is empty: no header row")
    if head.startswith(PARQUET_MAGIC):
        return _parquet_layout(source)
    reject_binary(head)  # an Excel file, archive or pickle named .csv says what it is
    layout = _csv_layout(source)
    source.seek(0)
    return layout


def _parquet_layout(source: BinaryIO) -> TableLayout:
    try:
        names = pq.ParquetFile(source).schema_arrow.names
    except (pa.ArrowException, OSError, ValueError) as error:
        raise DataError(f"the file is not a readable Parquet file: {error}") from None
    finally:
        source.seek(0)
    check_header(names)
    return TableLayout(PARQUET, names)


def _csv_layout(source: BinaryIO) -> TableLayout:
    skipped = 0
    while True:
        raw = source.readline(MAX_HEADER_BYTES)
        if not raw:
            raise DataError("the file is empty: no header row")
        text = _decoded(raw, skipped + 1, first=skipped == 0)
        if text.strip() and not text.startswith("#"):
            break
        skipped += 1
    header, lines = text, 1
    while header.count('"') % 2 and len(header) < MAX_HEADER_BYTES:  # a quoted line break
        more = source.readline(MAX_HEADER_BYTES)
        if not more:
            break
        header += _decoded(more, skipped + lines + 1, first=False)
        lines += 1
    delimiter = detect_delimiter(header.partition("\n")[0])
    try:
        names = next(csv.reader([header.rstrip("\r\n")], delimiter=delimiter, strict=True))
    except (csv.Error, StopIteration) as error:
        raise DataError(f"could not read the header row: {error}") from None
    names = [unneutralised(n) for n in names]
    check_header(names)
    offset = source.tell()
    if not any(line.strip() for line in iter(lambda: source.readline(MAX_HEADER_BYTES), b"")):
        raise DataError("the file has a header but no data rows")
    return TableLayout(CSV, names, delimiter, offset, multiline=lines > 1)


def _decoded(raw: bytes, line: int, *, first: bool) -> str:
    try:
        return raw.decode("utf-8-sig" if first else "utf-8")
    except UnicodeDecodeError as error:
        raise DataError(
            f"line {line} of the header is not valid UTF-8 text (byte {raw[error.start]:#04x}): "
            "save the file as UTF-8 CSV"
        ) from None
