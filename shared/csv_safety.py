"""CSV cells a spreadsheet would run: text that starts with =, +, -, @, a tab or a carriage
return is read as a formula by Excel, LibreOffice and Google Sheets (CSV injection). Cells we
write from text a user or a table supplied (key columns, class names, column names in a
template) get a leading apostrophe, as OWASP advises; numbers stay numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralised(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def unneutralised(name: str) -> str:
    """A header name as it was before :func:`neutralised` (a filled template reads back)."""
    return name[1:] if name.startswith("'") and name[1:].startswith(FORMULA_STARTS) else name


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with every text cell and column name neutralised (numeric columns untouched)."""
    out = frame.copy()
    for position in range(out.shape[1]):
        column = out.iloc[:, position]
        if pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column):
            out.isetitem(position, column.map(lambda v: neutralised(v) if isinstance(v, str) else v))
    out.columns = [neutralised(str(c)) for c in out.columns]
    return out


def header_line(names: Iterable[str]) -> str:
    """One CSV header row, quoted where needed (names with commas, quotes or line breaks) and
    neutralised, ending with a newline."""
    sink = io.StringIO()
    csv.writer(sink, lineterminator="\n").writerow([neutralised(n) for n in names])
    return sink.getvalue()
