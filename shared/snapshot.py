"""The built-in tables as they ship with the project: snapshots in ``shared/snapshots/``.

Each snapshot is the NASA Exoplanet Archive's own CSV export (its ``#`` comment block
included), gzip-compressed byte for byte, with a provenance file beside it: archive table,
the query that gives the same columns, when it was taken, row and column counts, and the
sha256 of the CSV. A built-in dataset is ready offline from its snapshot; "Refresh from the
archive" downloads the current table instead (``shared.sources``).

Re-take the snapshots (maintainers only; the app never writes here)::

    python -m shared.snapshot --from-dir <folder with the exports>  # kepler_koi.csv, ...
    python -m shared.snapshot --from-archive                        # today's tables, via TAP
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import re
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from shared.errors import DataError

if TYPE_CHECKING:
    from shared.catalog import Builtin

FOLDER = Path(__file__).resolve().parent / "snapshots"
ARCHIVE_URL = "https://exoplanetarchive.ipac.caltech.edu"
EXPORT_TIME = re.compile(rb"^# (\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4})\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Provenance:
    dataset: str
    archive_table: str
    query: str  # a TAP query giving the same columns (select <columns> from <table>)
    taken: str  # the date the export was made (YYYY-MM-DD)
    exported_at: str  # the export's own time stamp line, as the archive wrote it
    rows: int
    columns: int
    used_rows: int  # rows the built-in keeps (K2: one per object, default_flag = 1)
    class_counts: dict[str, int]  # of the target, over the rows kept
    sha256: str  # of the uncompressed CSV
    file: str
    file_sha256: str
    obtained_from: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Provenance:
        return cls(**json.loads(text))


@cache
def provenance(dataset_id: str) -> Provenance:
    path = FOLDER / f"{dataset_id}.json"
    try:
        return Provenance.from_json(path.read_text())
    except FileNotFoundError:
        raise DataError(f"there is no snapshot of {dataset_id!r} in {FOLDER.name}/") from None


def read_snapshot(dataset_id: str) -> bytes:
    """The snapshot's CSV bytes, checked against the sha256 in its provenance file."""
    record = provenance(dataset_id)
    data = gzip.decompress((FOLDER / record.file).read_bytes())
    if hashlib.sha256(data).hexdigest() != record.sha256:
        raise DataError(f"the snapshot {record.file} does not match its sha256: the file is damaged")
    return data


def columns_query(table: str, columns: tuple[str, ...]) -> str:
    return f"select {','.join(columns)} from {table}"


def describe_export(dataset: Builtin, data: bytes, *, obtained_from: str) -> Provenance:
    """The provenance of one export (CSV bytes, comment block optional)."""
    text = data.decode("utf-8")
    body = "".join(line for line in text.splitlines(keepends=True) if not line.startswith("#"))
    rows = list(csv.reader(io.StringIO(body)))
    header, records = rows[0], [r for r in rows[1:] if r]
    if dataset.default_rows_only and "default_flag" in header:
        flag = header.index("default_flag")
        used = [r for r in records if r[flag] == "1"]
    else:
        used = records
    target = header.index(dataset.target)
    counts = Counter(r[target] for r in used if r[target])
    stamp = EXPORT_TIME.search(data)
    exported_at = stamp.group(1).decode() if stamp else ""
    when = datetime.strptime(exported_at, "%a %b %d %H:%M:%S %Y") if stamp else datetime.now(UTC)
    return Provenance(
        dataset=dataset.id,
        archive_table=dataset.table,
        query=columns_query(dataset.table, tuple(header)),
        taken=when.date().isoformat(),
        exported_at=exported_at,
        rows=len(records),
        columns=len(header),
        used_rows=len(used),
        class_counts=dict(sorted(counts.items())),
        sha256=hashlib.sha256(data).hexdigest(),
        file=f"{dataset.id}.csv.gz",
        file_sha256="",
        obtained_from=obtained_from,
    )


def write_snapshot(record: Provenance, data: bytes, folder: Path = FOLDER) -> Provenance:
    packed = gzip.compress(data, compresslevel=9, mtime=0)  # mtime 0: same bytes every time
    (folder / record.file).write_bytes(packed)
    record = Provenance(**{**asdict(record), "file_sha256": hashlib.sha256(packed).hexdigest()})
    (folder / f"{record.dataset}.json").write_text(record.to_json())
    return record


# the file names of the archive's "Download Table" exports, per built-in dataset
EXPORT_FILES = {"kepler": "kepler_koi.csv", "tess": "tess_toi.csv", "k2": "k2_pandc.csv"}


def main(argv: list[str] | None = None) -> None:
    from shared.catalog import BUILTINS

    parser = argparse.ArgumentParser(description="Re-take the built-in tables' snapshots.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--from-dir", type=Path, help="a folder holding the archive's CSV exports")
    source.add_argument("--from-archive", action="store_true", help="download today's tables via TAP")
    args = parser.parse_args(argv)
    for dataset in BUILTINS.values():
        if args.from_dir:
            data = (args.from_dir / EXPORT_FILES[dataset.id]).read_bytes()
            origin = f"{ARCHIVE_URL}: Download Table (default columns), CSV"
        else:
            from shared.settings import Settings
            from shared.sources import download_table

            data = download_table(dataset, Settings.from_env())
            origin = f"{ARCHIVE_URL}: TAP sync, {provenance(dataset.id).query}"
        record = write_snapshot(describe_export(dataset, data, obtained_from=origin), data)
        print(f"{record.file}: {record.rows:,} rows × {record.columns} columns, taken {record.taken}")


if __name__ == "__main__":
    main()
