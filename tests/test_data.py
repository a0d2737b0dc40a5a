"""Reading uploaded tables: the real NASA exports, format variants, and inputs that must be refused."""

from __future__ import annotations

import gzip
import pickle

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pandas.testing import assert_frame_equal

from shared.data import (
    MAX_COLUMNS,
    clean_numeric,
    parquet_to_table,
    read_table,
    read_table_path,
    table_sha256,
    table_to_parquet,
)
from shared.errors import DataError
from tests.nasa import DATA_DIR

KOI = DATA_DIR / "kepler_koi.csv"


@pytest.fixture(scope="module")
def koi_bytes() -> bytes:
    return KOI.read_bytes()


@pytest.fixture(scope="module")
def koi(koi_bytes: bytes) -> pd.DataFrame:
    return read_table(koi_bytes, filename=KOI.name)


def _preamble(raw: bytes) -> bytes:
    """The leading `#` comment block of a NASA export."""
    lines = raw.splitlines(keepends=True)
    return b"".join(line for line in lines[:200] if line.startswith(b"#"))


# --- the real NASA tables ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "rows", "columns"),
    [("kepler_koi.csv", 9564, 49), ("tess_toi.csv", 7703, 65), ("k2_pandc.csv", 4004, 94)],
)
def test_reads_nasa_tables(filename, rows, columns):
    df = read_table_path(DATA_DIR / filename)
    assert df.shape == (rows, columns)
    assert isinstance(df.index, pd.RangeIndex)


@pytest.mark.parametrize("filename", ["kepler_koi.csv", "tess_toi.csv"])
def test_matches_pandas_comment_reader_where_no_value_holds_a_hash(filename):
    path = DATA_DIR / filename
    assert_frame_equal(read_table_path(path), pd.read_csv(path, comment="#"))


def test_hash_inside_values_is_not_a_comment():
    # K2 references hold HTML entities such as "Yal&ccedil;&#x131;nkaya"; comment="#" would cut
    # those 23 rows short, so only leading lines may be comments.
    k2 = read_table_path(DATA_DIR / "k2_pandc.csv")
    assert k2["pl_refname"].str.contains("&#x131;", regex=False).sum() > 0
    assert k2["disposition"].value_counts().to_dict() == {
        "CONFIRMED": 2315,
        "CANDIDATE": 1374,
        "FALSE POSITIVE": 293,
        "REFUTED": 22,
    }
    assert k2["sy_snum"].dtype == np.int64


def test_koi_label_column(koi):
    labels = koi["koi_disposition"]
    assert isinstance(labels.dtype, pd.StringDtype)
    assert set(labels.unique()) == {"CONFIRMED", "CANDIDATE", "FALSE POSITIVE"}
    assert labels.isna().sum() == 0


def test_koi_numbers_stay_numeric(koi):
    assert koi["koi_period"].dtype == np.float64
    assert koi["kepid"].dtype == np.int64
    assert koi["koi_teq_err1"].isna().all()


# --- the same table in other shapes ---------------------------------------------------------


def test_utf8_bom_reads_identically(koi, koi_bytes):
    assert_frame_equal(read_table(b"\xef\xbb\xbf" + koi_bytes), koi)


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_other_delimiters_read_identically(koi, koi_bytes, delimiter):
    text = _preamble(koi_bytes) + koi.to_csv(sep=delimiter, index=False).encode()
    assert_frame_equal(read_table(text), koi)


def test_crlf_line_endings_read_identically(koi):
    text = koi.to_csv(index=False, lineterminator="\r\n").encode()
    assert_frame_equal(read_table(text), koi)


def test_parquet_reads_identically(koi):
    data = table_to_parquet(koi)
    assert data.startswith(b"PAR1")
    assert_frame_equal(read_table(data, filename="koi.csv"), koi)  # the name does not decide


def test_hash_is_the_same_however_the_table_was_read(koi, koi_bytes):
    variants = [
        read_table(b"\xef\xbb\xbf" + koi_bytes),
        read_table(koi.to_csv(sep=";", index=False).encode()),
        read_table(table_to_parquet(koi)),
    ]
    assert {table_sha256(df) for df in variants} == {table_sha256(koi)}


def test_hash_changes_with_content():
    df = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})
    base = table_sha256(df)
    assert len(base) == 64
    changed = df.copy()
    changed.loc[1, "a"] = 2.5
    assert table_sha256(changed) != base
    assert table_sha256(df.rename(columns={"b": "c"})) != base
    assert table_sha256(df[["b", "a"]]) != base
    assert table_sha256(df.iloc[:1]) != base
    assert table_sha256(pd.DataFrame({"a": [1.0, 2.0], "b": ["x", None]})) != base


# --- CSV details -----------------------------------------------------------------------------


def test_quoted_fields_with_newlines():
    df = read_table(b'name,note\nA,"line one\nline two"\nB,"say ""hi"", then go"\n')
    assert df["note"].tolist() == ["line one\nline two", 'say "hi", then go']
    assert df["name"].tolist() == ["A", "B"]


def test_only_leading_hash_lines_are_comments():
    df = read_table(b"# exported today\n#\n\nid,ref\n#5,a#b\n6,# c\n")
    assert df.columns.tolist() == ["id", "ref"]
    assert df["id"].tolist() == ["#5", "6"]
    assert df["ref"].tolist() == ["a#b", "# c"]


def test_delimiter_is_taken_from_the_header_outside_quotes():
    df = read_table(b'"a,b";c\n"1,5";2\n')
    assert df.columns.tolist() == ["a,b", "c"]
    assert df["a,b"].tolist() == ["1,5"]


def test_single_column_and_no_trailing_newline():
    df = read_table(b"value\n1\n2")
    assert df["value"].tolist() == [1, 2]


def test_short_rows_are_padded_with_missing_values():
    df = read_table(b"a,b,c\n1,2,3\n4,5\n")
    assert np.isnan(df.loc[1, "c"])


def test_exactly_max_columns_is_accepted():
    header = ",".join(f"c{i}" for i in range(MAX_COLUMNS))
    row = ",".join("1" for _ in range(MAX_COLUMNS))
    assert read_table(f"{header}\n{row}\n".encode()).shape == (1, MAX_COLUMNS)


def test_infinities_are_kept_until_cleaned():
    df = read_table(b"x,y,label\n1,inf,a\n2,-inf,b\n3,4.5,inf\n")
    assert np.isposinf(df.loc[0, "y"])
    cleaned, report = clean_numeric(df)
    assert report == {"y": 2}
    assert cleaned["y"].isna().tolist() == [True, True, False]
    assert cleaned["label"].tolist() == ["a", "b", "inf"]
    assert np.isinf(df["y"]).sum() == 2  # the input is left alone


def test_clean_numeric_without_infinities_reports_nothing(koi):
    cleaned, report = clean_numeric(koi)
    assert report == {}
    assert_frame_equal(cleaned, koi)


# --- Parquet -----------------------------------------------------------------------------------


def test_parquet_round_trip_keeps_dtypes_and_missing_values():
    df = pd.DataFrame(
        {
            "text": pd.Series(["a", None, "c"], dtype="str"),
            "none": pd.Series([None, None, None], dtype="str"),
            "real": [1.5, np.nan, -np.inf],
            "whole": [1, 2, 3],
            "flag": [True, False, True],
            "group": pd.Categorical(["x", "y", "x"]),
        }
    )
    back = parquet_to_table(table_to_parquet(df))
    assert_frame_equal(back, df)
    assert str(back["text"].dtype) == "str"


def test_parquet_named_index_becomes_a_column():
    df = pd.DataFrame({"id": [10, 20], "value": [1.0, 2.0]})
    data = _parquet_bytes(df.set_index("id"), index=True)
    assert_frame_equal(read_table(data), df)


def test_parquet_without_pandas_metadata_reads_strings_as_str():
    data = _arrow_parquet(pa.table({"name": ["a", None], "x": [1.0, 2.0]}))
    df = read_table(data)
    assert str(df["name"].dtype) == "str"
    assert df["name"].isna().tolist() == [False, True]


@pytest.mark.parametrize(
    ("table", "match"),
    [
        (pa.table({"a": pa.array([], pa.int64())}), "no data rows"),
        (pa.table({"a": [[1, 2], [3]]}), "'a'.*nested"),
        (pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["a", "a"]), "repeats.*'a'"),
    ],
    ids=["no-rows", "nested", "duplicate-columns"],
)
def test_unusable_parquet_tables(table, match):
    with pytest.raises(DataError, match=match):
        read_table(_arrow_parquet(table))


def test_parquet_to_table_rejects_garbage():
    with pytest.raises(DataError, match="not a readable Parquet file"):
        parquet_to_table(b"a,b\n1,2\n")


def _parquet_bytes(df: pd.DataFrame, *, index: bool) -> bytes:
    return _arrow_parquet(pa.Table.from_pandas(df, preserve_index=index))


def _arrow_parquet(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


# --- inputs that must be refused ------------------------------------------------------------------


def _truncated_parquet() -> bytes:
    data = table_to_parquet(pd.DataFrame({"a": range(100), "b": [f"row {i}" for i in range(100)]}))
    return data[: len(data) // 2]


def _corrupt_parquet() -> bytes:
    data = table_to_parquet(pd.DataFrame({"a": range(100)}))
    return data[:4] + b"\x00" * (len(data) - 8) + data[-4:]


def _wide_csv(columns: int) -> bytes:
    header = ",".join(f"c{i}" for i in range(columns))
    return f"{header}\n{','.join('1' for _ in range(columns))}\n".encode()


UNREADABLE = [
    ("empty", b"", "the file is empty"),
    ("whitespace-only", b"  \n\t\r\n\n", "the file is empty"),
    ("header-only", b"a,b,c\n", "header but no data rows"),
    ("header-then-blank-lines", b"a,b,c\n\n\n", "header but no data rows"),
    ("only-comments", b"# COLUMN a: first\n# COLUMN b: second\n", "only comment lines"),
    ("binary-nul", b"a,b\n1,\x00\x01\x02\n", "binary data.*NUL"),
    (
        "zip-xlsx",
        b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 40,
        "Excel workbook or zip archive.*export it as CSV",
    ),
    ("ole2-xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 40, r"old Excel \(\.xls\) workbook"),
    ("pickle-default", pickle.dumps(pd.DataFrame({"a": [1]})), "Python pickle.*never loaded"),
    ("pickle-protocol-2", pickle.dumps({"a": [1, 2]}, protocol=2), "Python pickle"),
    ("gzip", gzip.compress(b"a,b\n1,2\n"), "gzip"),
    ("utf16", "a,b\n1,2\n".encode("utf-16"), "UTF-16.*save it as UTF-8"),
    (
        "latin1",
        "name,city\nA,Orléans\n".encode("latin-1"),
        r"not valid UTF-8.*byte 15 .*line 2.*save it as UTF-8",
    ),
    ("truncated-parquet", _truncated_parquet(), "not a readable Parquet file"),
    ("corrupt-parquet", _corrupt_parquet(), "not a readable Parquet file"),
    ("duplicate-columns", b"a,b,a,c,c\n1,2,3,4,5\n", "repeats the column names 'a', 'c'"),
    ("blank-column-name", b"a,,c\n1,2,3\n", "column 2 of the header has a blank name"),
    ("whitespace-column-name", b"a,  ,c\n1,2,3\n", "column 2 of the header has a blank name"),
    ("trailing-delimiter", b"a,b,\n1,2,\n", "column 3 of the header has a blank name"),
    ("ragged-row", b"a,b\n1,2\n3,4\n5,6,7\n", "line 4 has more fields than the header"),
    ("ragged-first-row", b"a,b\n1,2,3\n4,5\n", "line 2 has more fields than the header"),
    ("ragged-after-comments", b"# note\n\na,b\n1,2\n3,4,5\n", "line 5 has more fields than the header"),
    ("ragged-after-quoted-newline", b'a,b\n"x\ny",2\n3,4,5\n', "line 4 has more fields than the header"),
    ("unclosed-quote", b'a,b\n1,"never closed\n', "could not parse the file as CSV"),
    ("too-many-columns", _wide_csv(5000), "has 5,000 columns; at most 2,000 are supported"),
]


@pytest.mark.parametrize(("data", "match"), [pytest.param(*case[1:], id=case[0]) for case in UNREADABLE])
def test_unreadable_inputs(data, match):
    with pytest.raises(DataError, match=match):
        read_table(data)


def test_errors_name_the_file():
    with pytest.raises(DataError, match=r"^upload\.xlsx: the file looks like an Excel workbook"):
        read_table(b"PK\x03\x04" + b"\x00" * 10, filename="upload.xlsx")


def test_missing_path_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="could not read"):
        read_table_path(tmp_path / "absent.csv")
