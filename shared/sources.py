"""Where a built-in dataset's rows come from, and its cache in storage.

Order: the dataset's environment variable (``KEPLER_URI``, ``K2_URI``, ``TESS_URI``: a local
path or ``gs://`` URI, CSV or Parquet); otherwise the snapshot the project carries
(``shared.snapshot``), so a built-in works offline from the first start; "Refresh from the
archive" downloads the current table from the NASA Exoplanet Archive's TAP service instead.
Whichever it is, the table is cached in storage as Parquet with a small info document (source,
date, rows, columns, class counts, column profile). URIs never leave the server: the info
names the variable, the snapshot or the archive, not the address.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from shared import snapshot
from shared.cache import MEMO
from shared.catalog import Builtin, KnownColumn
from shared.columns import ColumnAdvice, advise_setup
from shared.data import check_finite, parquet_to_table, read_table, table_sha256, table_to_parquet
from shared.errors import DataError, ObjectNotFound, PreconditionFailed, StorageError
from shared.grouping import GroupSuggestion, suggest_group
from shared.labels import labels_as_text
from shared.profile import ColumnProfile, profile_table
from shared.settings import Settings
from shared.storage import Storage

ARCHIVE_NAME = "NASA Exoplanet Archive"
SNAPSHOT, ENVIRONMENT, ARCHIVE = "snapshot", "environment", "archive"  # where a built-in came from
log = logging.getLogger(__name__)
DOWNLOAD_TIMEOUT_S = 60
MAX_DOWNLOAD_BYTES = 1024**3
FETCH_STALE_S = 120  # a "running" fetch not updated for this long is presumed dead
UPLOAD_PREFIX = "u"  # uploaded datasets' ids: "u" and 24 hex digits, made once per upload
ADVICE_VERSION = 2  # bump when the advice rules change, so cached advice is recomputed
Progress = Callable[[int, int | None], None]  # bytes so far, total if known


def _no_progress(done: int, total: int | None) -> None:
    pass


def table_key(dataset_id: str) -> str:
    return f"datasets/{dataset_id}/table.parquet"


def info_key(dataset_id: str) -> str:
    return f"datasets/{dataset_id}/info.json"


def fetch_key(dataset_id: str) -> str:
    return f"datasets/{dataset_id}/fetch.json"


def tap_url(base: str, dataset: Builtin) -> str:
    """The archive query for the same columns the snapshot has (a refresh keeps the table's shape,
    so the known leakage columns stay the known ones)."""
    return f"{base}?query={urllib.parse.quote_plus(snapshot.provenance(dataset.id).query)}&format=csv"


@dataclass(frozen=True)
class DatasetInfo:
    id: str
    name: str
    source: str  # SNAPSHOT, ENVIRONMENT, ARCHIVE or "upload"
    source_label: str  # shown to users: "KEPLER_URI", "NASA Exoplanet Archive (TAP)", a file name
    fetched_at: str
    rows: int
    columns: int
    target: str | None
    class_counts: dict[str, int]
    table_sha256: str
    profile: list[dict[str, Any]] = field(default_factory=list)
    as_of: str = ""  # the date the rows reflect: a snapshot's date, else the day they were read
    source_key: str = ""  # which snapshot or URI the rows came from (a hash: URIs stay server-side)

    def profiles(self) -> list[ColumnProfile]:
        """The column profiles, parsed once per info object (pages ask for them often)."""
        parsed = self.__dict__.get("_profiles")
        if parsed is None:
            parsed = [ColumnProfile.from_dict(p) for p in self.profile]
            object.__setattr__(self, "_profiles", parsed)  # a frozen dataclass: set once, here
        return parsed

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes) -> DatasetInfo:
        return cls(**json.loads(data))


def describe(
    frame: pd.DataFrame,
    *,
    dataset_id: str,
    name: str,
    source: str,
    source_label: str,
    target: str | None,
    as_of: str = "",
    source_key: str = "",
) -> DatasetInfo:
    counts = {}
    if target is not None and target in frame.columns:
        counts = {str(k): int(v) for k, v in frame[target].value_counts().sort_index().items()}
    now = datetime.now(UTC)
    return DatasetInfo(
        id=dataset_id,
        name=name,
        source=source,
        source_label=source_label,
        fetched_at=now.isoformat(timespec="seconds"),
        as_of=as_of or now.date().isoformat(),
        source_key=source_key,
        rows=len(frame),
        columns=frame.shape[1],
        target=target,
        class_counts=counts,
        table_sha256=table_sha256(frame),
        profile=[p.to_dict() for p in profile_table(frame)],
    )


def store_table(storage: Storage, frame: pd.DataFrame, info: DatasetInfo) -> None:
    """Table first, then its info: a reader that finds the info finds the matching table."""
    storage.write_bytes(
        table_key(info.id), table_to_parquet(frame), content_type="application/vnd.apache.parquet"
    )
    storage.write_bytes(info_key(info.id), info.to_json(), content_type="application/json")


def ingest_upload(storage: Storage, data: bytes, name: str) -> DatasetInfo:
    """An uploaded file read, checked and stored as a new dataset under a fresh id; DataError
    (prefixed with the file's name) if it cannot be used, and then nothing is stored."""
    frame = read_table(data, filename=name)
    dataset_id = UPLOAD_PREFIX + secrets.token_hex(12)
    try:
        check_finite(frame)
        info = describe(
            frame, dataset_id=dataset_id, name=name, source="upload", source_label=name, target=None
        )
        # the table is serialised before anything is written: a refusal leaves nothing behind
        store_table(storage, frame, info)
    except DataError as error:
        raise DataError(f"{name}: {error}") from error
    return info


IMPORTS_PREFIX = "imports/"
IMPORT_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,199}")


def imports_location(storage: Storage) -> str:
    """Where a user copies a big table to import it: gs://bucket/prefix/imports/ or a folder path."""
    uri = storage.uri(IMPORTS_PREFIX + "_")[:-1]
    return urllib.parse.unquote(uri.removeprefix("file://")) if uri.startswith("file://") else uri


def import_key(name: object) -> str:
    """The storage key of a table a user copied into imports/ (too big to upload through a
    request); DataError naming the problem for anything but a plain file name."""
    text = str(name or "").strip()
    if not text:
        raise DataError("Give the name of a file you copied into imports/, like koi.csv.")
    if not IMPORT_NAME.fullmatch(text) or ".." in text:
        raise DataError(
            f"{text[:80]!r} is not a file name in imports/: use letters, digits, '.', '_' and '-', "
            "no spaces or folders"
        )
    return IMPORTS_PREFIX + text


def ingest_stored(storage: Storage, name: str, max_bytes: int) -> DatasetInfo:
    """A table copied into imports/ read, checked and stored as a new dataset (the original stays)."""
    key = import_key(name)
    try:
        size = storage.stat(key).size
    except ObjectNotFound:
        raise DataError(f"There is no {name} in {imports_location(storage)}: copy it there first.") from None
    if size > max_bytes:
        raise DataError(
            f"{name} is {size / 2**20:.0f} MB, more than the {max_bytes // 2**20} MB import limit "
            "(MAX_IMPORT_MB)."
        )
    return ingest_upload(storage, storage.read_bytes(key), name)


def load_info(storage: Storage, dataset_id: str) -> DatasetInfo | None:
    try:
        return DatasetInfo.from_json(storage.read_bytes(info_key(dataset_id)))
    except ObjectNotFound:
        return None


def cached_info(storage: Storage, dataset_id: str) -> DatasetInfo | None:
    """``load_info``, parsed once per version: an upload's info is written once under a fresh id;
    a built-in's is looked up by its generation (a refresh writes a new one)."""
    if dataset_id.startswith(UPLOAD_PREFIX):
        return MEMO.get(("info", storage.url, dataset_id), lambda: load_info(storage, dataset_id))
    try:
        generation = storage.stat(info_key(dataset_id)).generation
    except ObjectNotFound:
        return None

    def load() -> DatasetInfo | None:
        data, read = storage.read_with_generation(info_key(dataset_id))
        return DatasetInfo.from_json(data) if read == generation else None  # changed meanwhile

    return MEMO.get(("info", storage.url, dataset_id, generation), load) or load_info(storage, dataset_id)


def load_table(storage: Storage, dataset_id: str) -> pd.DataFrame:
    try:
        return parquet_to_table(storage.read_bytes(table_key(dataset_id)))
    except ObjectNotFound:
        raise DataError(f"dataset {dataset_id!r} has not been loaded yet") from None


# --- built-in datasets ------------------------------------------------------------------------


def refresh_source(dataset: Builtin, settings: Settings) -> str:
    """Where "Refresh" reads the dataset from: its environment variable if set, else the archive."""
    return ENVIRONMENT if dataset.id in settings.dataset_uris else ARCHIVE


def current_info(storage: Storage, dataset: Builtin, settings: Settings) -> DatasetInfo | None:
    """The cached table's info, if it still comes from where this deployment reads the dataset:
    the environment variable's URI when one is set; otherwise a refresh from the archive or the
    snapshot this version of the project carries. None when the dataset must be (re)read."""
    info = cached_info(storage, dataset.id)
    if info is None:
        return None
    uri = settings.dataset_uris.get(dataset.id)
    if uri is not None:
        return info if info.source == ENVIRONMENT and info.source_key == _uri_key(uri) else None
    if info.source == ARCHIVE:
        return info
    return (
        info
        if info.source == SNAPSHOT and info.source_key == snapshot.provenance(dataset.id).sha256
        else None
    )


def ensure_builtin(dataset: Builtin, settings: Settings, storage: Storage) -> DatasetInfo:
    """The dataset, ready to use: the current cache, else read from its environment variable or
    its snapshot (no network either way). Reading the same source twice at once is harmless."""
    return current_info(storage, dataset, settings) or fetch_builtin(dataset, settings, storage)


def fetch_builtin(
    dataset: Builtin,
    settings: Settings,
    storage: Storage,
    progress: Progress = _no_progress,
    *,
    from_archive: bool = False,
) -> DatasetInfo:
    """Read the dataset (environment variable, else the archive when asked, else the snapshot),
    keep the rows it uses, and cache it in storage."""
    uri = settings.dataset_uris.get(dataset.id)
    if uri:
        raw, source, label, key = _read_uri(uri, dataset), ENVIRONMENT, dataset.env_var, _uri_key(uri)
        as_of = ""
    elif from_archive:
        raw = download_table(dataset, settings, progress)
        source, label, key, as_of = ARCHIVE, f"{ARCHIVE_NAME} (TAP)", "", ""
    else:
        record = snapshot.provenance(dataset.id)
        raw, source, key, as_of = snapshot.read_snapshot(dataset.id), SNAPSHOT, record.sha256, record.taken
        label = f"Snapshot of {record.taken} from the {ARCHIVE_NAME}"
    frame = read_table(raw, filename=label)
    if dataset.target not in frame.columns:
        raise DataError(
            f"the table from {label} has no {dataset.target!r} column; is it the "
            f"{dataset.name} table ({dataset.table})?"
        )
    if dataset.default_rows_only and "default_flag" in frame.columns:
        frame = frame[frame["default_flag"] == 1].reset_index(drop=True)
    info = describe(
        frame,
        dataset_id=dataset.id,
        name=dataset.name,
        source=source,
        source_label=label,
        target=dataset.target,
        as_of=as_of,
        source_key=key,
    )
    store_table(storage, frame, info)
    return info


def _uri_key(uri: str) -> str:
    return hashlib.sha256(uri.encode()).hexdigest()[:16]


def download_table(dataset: Builtin, settings: Settings, progress: Progress = _no_progress) -> bytes:
    """Today's table from the archive's TAP service, with the snapshot's columns."""
    return _download(tap_url(settings.archive_tap_url, dataset), dataset, progress)


def _read_uri(uri: str, dataset: Builtin) -> bytes:
    """A server-configured URI (never one from a client): a local path or gs://bucket/object."""
    if uri.startswith("gs://"):
        from shared.storage import GCSStorage

        bucket, _, name = uri[len("gs://") :].partition("/")
        try:
            return GCSStorage(bucket).read_bytes(name)
        except StorageError as error:
            raise DataError(f"{dataset.env_var} could not be read: {error}") from None
    try:
        return Path(uri.removeprefix("file://")).read_bytes()
    except OSError as error:
        raise DataError(f"{dataset.env_var} could not be read: {error.strerror or error}") from None


def _download(url: str, dataset: Builtin, progress: Progress) -> bytes:
    unreachable = (
        f"The {ARCHIVE_NAME} could not be reached ({{why}}). Upload the table yourself, or set "
        f"{dataset.env_var} to a local copy or a gs:// URI of it. The snapshot that ships with "
        "the project stays in use."
    )
    request = urllib.request.Request(url, headers={"User-Agent": "mission-control-exoplanets"})
    try:
        with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            chunks, done = [], 0
            progress(0, total)
            while chunk := response.read(256 * 1024):
                chunks.append(chunk)
                done += len(chunk)
                if done > MAX_DOWNLOAD_BYTES:
                    raise DataError(f"the archive sent more than {MAX_DOWNLOAD_BYTES:,} bytes; stopped")
                progress(done, total)
    except urllib.error.HTTPError as error:
        raise DataError(unreachable.format(why=f"it answered HTTP {error.code}")) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        reason = getattr(error, "reason", error)
        why = reason.strerror if isinstance(reason, OSError) and reason.strerror else str(reason)
        raise DataError(unreachable.format(why=why)) from None
    return b"".join(chunks)


# --- fetch status, so any web instance can show a download's progress ------------------------


@dataclass(frozen=True)
class FetchStatus:
    state: str  # running | done | failed
    done_bytes: int = 0
    total_bytes: int | None = None
    message: str = ""
    updated: float = 0.0
    source: str = ""  # ARCHIVE or ENVIRONMENT: what this refresh reads

    @property
    def stale(self) -> bool:
        return self.state == "running" and time.time() - self.updated > FETCH_STALE_S

    def shown_beside(self, info: DatasetInfo | None, source: str) -> bool:
        """Whether a card shows this status: only a refresh of the source it would read now, and
        a failure only if nothing was loaded since (never an old error beside a working table)."""
        if self.source != source:
            return False
        if self.state != "failed" or info is None:
            return True
        return self.updated > datetime.fromisoformat(info.fetched_at).timestamp()

    def to_json(self) -> bytes:
        return json.dumps(asdict(self)).encode()


def read_fetch_status(storage: Storage, dataset_id: str) -> tuple[FetchStatus | None, int]:
    """The status and its generation (0 when there is none)."""
    try:
        data, generation = storage.read_with_generation(fetch_key(dataset_id))
    except ObjectNotFound:
        return None, 0
    return FetchStatus(**json.loads(data)), generation


def claim_fetch(storage: Storage, dataset_id: str, source: str) -> int | None:
    """Mark a refresh as running unless one already is; the generation on success, else None.

    A compare-and-swap on the status object, so two web instances never download at once.
    """
    status, generation = read_fetch_status(storage, dataset_id)
    if status is not None and status.state == "running" and not status.stale:
        return None
    running = FetchStatus("running", message="Starting", updated=time.time(), source=source)
    try:
        return storage.write_bytes(fetch_key(dataset_id), running.to_json(), if_generation_match=generation)
    except PreconditionFailed:
        return None


def run_fetch(dataset: Builtin, settings: Settings, storage: Storage) -> FetchStatus:
    """Refresh a claimed dataset from its environment variable or the archive, reporting progress
    in its status object (at most twice a second)."""
    last = [0.0]
    source = refresh_source(dataset, settings)

    def report(done: int, total: int | None) -> None:
        now = time.time()
        if now - last[0] >= 0.5 or (total is not None and done >= total):
            last[0] = now
            status = FetchStatus("running", done, total, "Downloading", now, source)
            storage.write_bytes(fetch_key(dataset.id), status.to_json())

    try:
        info = fetch_builtin(dataset, settings, storage, report, from_archive=True)
        final = FetchStatus(
            "done",
            message=f"Loaded {info.rows:,} rows × {info.columns} columns",
            updated=time.time(),
            source=source,
        )
    except DataError as error:
        final = FetchStatus("failed", message=str(error), updated=time.time(), source=source)
    except Exception:  # the status must not stay "running"; the traceback goes to the log
        log.exception("fetching %s failed", dataset.id)
        final = FetchStatus(
            "failed",
            message="Loading failed unexpectedly; the server log has the details.",
            updated=time.time(),
            source=source,
        )
    storage.write_bytes(fetch_key(dataset.id), final.to_json())
    return final


def cached_advice(
    storage: Storage,
    info: DatasetInfo,
    target: str,
    mapping: Mapping[str, str | None] | None,
    group_column: str | None,
    known: Mapping[str, KnownColumn] | None = None,
) -> list[ColumnAdvice]:
    """Column advice for a dataset, target and label mapping, computed once per table version."""
    question = json.dumps([ADVICE_VERSION, info.table_sha256, target, mapping, group_column], sort_keys=True)
    key = f"datasets/{info.id}/advice-{hashlib.sha256(question.encode()).hexdigest()[:16]}.json"
    try:
        return [ColumnAdvice.from_dict(a) for a in json.loads(storage.read_bytes(key))]
    except ObjectNotFound:
        pass
    frame = load_table(storage, info.id)
    advice = advise_setup(frame, info.profiles(), target, mapping, group_column, known)
    storage.write_bytes(
        key, json.dumps([a.to_dict() for a in advice]).encode(), content_type="application/json"
    )
    return advice


def cached_group_suggestion(storage: Storage, info: DatasetInfo, target: str) -> GroupSuggestion | None:
    """A host-star-like column to group an uploaded table's splits by (shared.grouping), found once
    per table version and target."""
    question = json.dumps([ADVICE_VERSION, info.table_sha256, target])
    key = f"datasets/{info.id}/group-{hashlib.sha256(question.encode()).hexdigest()[:16]}.json"
    try:
        stored = json.loads(storage.read_bytes(key))
        return None if stored is None else GroupSuggestion.from_dict(stored)
    except ObjectNotFound:
        pass
    frame = load_table(storage, info.id)
    suggestion = suggest_group(frame, labels_as_text(frame[target]), target=target)
    document = None if suggestion is None else suggestion.to_dict()
    storage.write_bytes(key, json.dumps(document).encode(), content_type="application/json")
    return suggestion
