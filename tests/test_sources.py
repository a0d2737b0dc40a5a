"""Built-in datasets: the snapshot the project carries, an environment variable, or a refresh
from the archive; cached in storage either way."""

import gzip
import hashlib
import shutil
import socket
import time

import pandas as pd
import pytest

from shared import snapshot
from shared.catalog import BUILTINS, K2, KEPLER, TESS
from shared.data import read_table, table_to_parquet
from shared.errors import DataError
from shared.settings import Settings
from shared.sources import (
    FetchStatus,
    cached_advice,
    claim_fetch,
    current_info,
    ensure_builtin,
    fetch_builtin,
    fetch_key,
    load_info,
    load_table,
    read_fetch_status,
    run_fetch,
    table_key,
)
from shared.storage import GCSStorage, LocalStorage
from tests.archive_server import archive_server
from tests.nasa import K2_PATH, KOI_PATH, TESS_PATH

__all__ = ["archive_server"]


@pytest.fixture
def storage(tmp_path):
    return LocalStorage(tmp_path / "storage")


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/TAP/sync"


OFFLINE = Settings(archive_tap_url=_closed_port_url())  # nothing may be downloaded
TABLES = [
    (KEPLER, KOI_PATH, 9564, {"CANDIDATE": 1979, "CONFIRMED": 2746, "FALSE POSITIVE": 4839}),
    (TESS, TESS_PATH, 7703, {"APC": 462, "CP": 684, "FA": 98, "FP": 1197, "KP": 583, "PC": 4679}),
    # K2 keeps one row per object: the archive's default parameter set
    (K2, K2_PATH, 1806, {"CANDIDATE": 976, "CONFIRMED": 580, "FALSE POSITIVE": 242, "REFUTED": 8}),
]


@pytest.mark.parametrize(("dataset", "path", "rows", "classes"), TABLES)
def test_snapshot_is_ready_offline_and_read_once(storage, dataset, path, rows, classes, monkeypatch):
    info = ensure_builtin(dataset, OFFLINE, storage)
    assert (info.rows, info.source, info.as_of) == (rows, "snapshot", "2025-10-04")
    assert info.source_label == "Snapshot of 2025-10-04 from the NASA Exoplanet Archive"
    assert info.class_counts == classes
    assert len(load_table(storage, dataset.id)) == rows
    monkeypatch.setattr(snapshot, "read_snapshot", lambda _: pytest.fail("read the snapshot twice"))
    assert ensure_builtin(dataset, OFFLINE, storage) == info  # from the cache


@pytest.mark.parametrize(("dataset", "path", "rows", "classes"), TABLES)
def test_snapshot_matches_its_provenance(dataset, path, rows, classes):
    """Each snapshot is the archive's own export; its provenance file says what it holds."""
    record = snapshot.provenance(dataset.id)
    packed = (snapshot.FOLDER / record.file).read_bytes()
    raw = gzip.decompress(packed)
    assert hashlib.sha256(packed).hexdigest() == record.file_sha256
    assert hashlib.sha256(raw).hexdigest() == record.sha256 and raw == path.read_bytes()
    assert raw.startswith(b"# This file was produced by the NASA Exoplanet Archive")
    table = read_table(raw)
    assert (len(table), table.shape[1]) == (record.rows, record.columns)
    assert record.query == f"select {','.join(table.columns)} from {dataset.table}"
    used = table[table["default_flag"] == 1] if dataset.default_rows_only else table
    assert record.used_rows == rows == len(used)
    assert record.class_counts == classes == used[dataset.target].value_counts().to_dict()
    assert (record.taken, record.archive_table) == ("2025-10-04", dataset.table)


def test_damaged_snapshot_is_refused_by_name(storage, tmp_path, monkeypatch):
    folder = tmp_path / "snapshots"
    shutil.copytree(snapshot.FOLDER, folder)
    data = bytearray(gzip.decompress((folder / "tess.csv.gz").read_bytes()))
    data[-10] ^= 1
    (folder / "tess.csv.gz").write_bytes(gzip.compress(bytes(data)))
    monkeypatch.setattr(snapshot, "FOLDER", folder)
    with pytest.raises(DataError, match=r"the snapshot tess\.csv\.gz does not match its sha256"):
        ensure_builtin(TESS, OFFLINE, storage)
    assert load_info(storage, "tess") is None


@pytest.mark.parametrize(("dataset", "path", "rows", "classes"), TABLES)
def test_environment_variable_source(storage, dataset, path, rows, classes):
    settings = Settings(dataset_uris={dataset.id: str(path)}, archive_tap_url=_closed_port_url())
    info = fetch_builtin(dataset, settings, storage)
    assert (info.rows, info.source, info.source_label) == (rows, "environment", dataset.env_var)
    assert info.class_counts == classes
    assert str(path) not in info.to_json().decode()  # the URI never leaves the server
    table = load_table(storage, dataset.id)
    assert len(table) == rows and info.columns == table.shape[1]
    assert load_info(storage, dataset.id) == info


def test_environment_variable_overrides_the_cache_and_its_removal_restores_the_snapshot(storage, tmp_path):
    assert ensure_builtin(TESS, OFFLINE, storage).source == "snapshot"
    settings = Settings(dataset_uris={"tess": str(TESS_PATH)})
    assert current_info(storage, TESS, settings) is None  # the cached snapshot is not what TESS_URI names
    assert ensure_builtin(TESS, settings, storage).source == "environment"
    fewer = tmp_path / "fewer.csv"
    fewer.write_text(read_table(TESS_PATH.read_bytes()).head(100).to_csv(index=False))
    other = Settings(dataset_uris={"tess": str(fewer)})  # TESS_URI now names another file
    assert ensure_builtin(TESS, other, storage).rows == 100
    assert ensure_builtin(TESS, other, storage).rows == 100
    assert ensure_builtin(TESS, OFFLINE, storage).source == "snapshot"  # the variable was removed


def test_environment_variable_parquet(storage, tmp_path, koi):
    parquet = tmp_path / "kepler.parquet"
    parquet.write_bytes(table_to_parquet(koi))
    info = fetch_builtin(KEPLER, Settings(dataset_uris={"kepler": str(parquet)}), storage)
    pd.testing.assert_frame_equal(load_table(storage, "kepler"), koi)
    assert info.rows == 9564


def test_environment_variable_gs_uri(gcs_emulator, storage):
    bucket = GCSStorage("mission-data-source")
    bucket._client.create_bucket("mission-data-source")
    bucket.write_bytes("nasa/tess.csv", TESS_PATH.read_bytes())
    info = fetch_builtin(
        TESS, Settings(dataset_uris={"tess": "gs://mission-data-source/nasa/tess.csv"}), storage
    )
    assert info.rows == 7703


def test_missing_environment_file_is_named(storage, tmp_path):
    settings = Settings(dataset_uris={"k2": str(tmp_path / "nope.csv")})
    with pytest.raises(DataError, match=r"K2_URI could not be read: No such file"):
        fetch_builtin(K2, settings, storage)
    assert load_info(storage, "k2") is None


def test_refresh_from_the_archive_asks_for_the_snapshots_columns_and_is_kept(storage, archive_server):
    settings = Settings(archive_tap_url=archive_server.tap_url)
    progress = []
    info = fetch_builtin(
        KEPLER, settings, storage, lambda done, total: progress.append((done, total)), from_archive=True
    )
    assert (info.rows, info.source, info.source_label) == (9564, "archive", "NASA Exoplanet Archive (TAP)")
    assert archive_server.queries == [snapshot.provenance("kepler").query.split()[1]]
    assert progress[0][0] == 0 and progress[-1][0] == progress[-1][1] > 3_000_000
    assert [done for done, _ in progress] == sorted(done for done, _ in progress)
    again = ensure_builtin(KEPLER, settings, storage)
    assert again == info and archive_server.hits["cumulative"] == 1  # the refreshed copy stays in use
    time.sleep(1.1)
    refreshed = fetch_builtin(KEPLER, settings, storage, from_archive=True)
    assert archive_server.hits["cumulative"] == 2 and refreshed.fetched_at > info.fetched_at
    assert refreshed.table_sha256 == info.table_sha256


def test_archive_tables_match_the_snapshots(storage, archive_server, koi):
    settings = Settings(archive_tap_url=archive_server.tap_url)
    fetch_builtin(KEPLER, settings, storage, from_archive=True)
    pd.testing.assert_frame_equal(load_table(storage, "kepler"), koi)
    shipped = ensure_builtin(K2, OFFLINE, LocalStorage(storage.url + "-snapshot"))
    assert fetch_builtin(K2, settings, storage, from_archive=True).table_sha256 == shipped.table_sha256


@pytest.mark.parametrize("failure", ["closed port", "HTTP 503"])
def test_unreachable_archive_says_so_and_keeps_the_cache(storage, archive_server, failure):
    working = Settings(archive_tap_url=archive_server.tap_url)
    cached = ensure_builtin(TESS, working, storage)
    if failure == "closed port":
        settings, why = Settings(archive_tap_url=_closed_port_url()), "Connection refused"
    else:
        settings, why = working, "it answered HTTP 503"
        archive_server.fail_with = 503
    with pytest.raises(
        DataError,
        match=rf"The NASA Exoplanet Archive could not be reached \(.*{why}.*\)\. "
        r"Upload the table yourself, or set TESS_URI .* The snapshot that ships with the project stays in use",
    ):
        fetch_builtin(TESS, settings, storage, from_archive=True)
    assert load_info(storage, "tess") == cached  # nothing already stored is lost
    assert len(load_table(storage, "tess")) == 7703


def test_wrong_table_is_explained(storage, tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n3,4\n")
    with pytest.raises(DataError, match=r"has no 'koi_disposition' column; is it the Kepler Objects"):
        fetch_builtin(KEPLER, Settings(dataset_uris={"kepler": str(path)}), storage)


def test_fetch_claim_is_exclusive_and_reports(storage, archive_server):
    settings = Settings(archive_tap_url=archive_server.tap_url)
    assert claim_fetch(storage, "k2", "archive") is not None
    assert claim_fetch(storage, "k2", "archive") is None  # one download at a time, across instances
    final = run_fetch(BUILTINS["k2"], settings, storage)
    assert final.state == "done" and final.message == "Loaded 1,806 rows × 94 columns"
    assert read_fetch_status(storage, "k2")[0] == final and archive_server.hits["k2pandc"] == 1
    assert load_info(storage, "k2").source == "archive"
    assert claim_fetch(storage, "k2", "archive") is not None  # a refresh may start again


def test_stale_running_fetch_can_be_taken_over(storage):
    storage.write_bytes(fetch_key("tess"), FetchStatus("running", updated=time.time() - 3600).to_json())
    assert claim_fetch(storage, "tess", "archive") is not None


def test_failed_fetch_records_the_message(storage):
    claim_fetch(storage, "tess", "archive")
    final = run_fetch(TESS, OFFLINE, storage)
    assert final.state == "failed" and "could not be reached" in final.message
    assert final.source == "archive" and load_info(storage, "tess") is None


def test_a_failure_is_shown_only_beside_the_source_it_was_about(storage):
    failed = FetchStatus("failed", message="unreachable", updated=time.time(), source="archive")
    assert failed.shown_beside(None, "archive")
    assert not failed.shown_beside(None, "environment")  # an archive error once TESS_URI is set
    time.sleep(1.1)
    info = ensure_builtin(TESS, OFFLINE, storage)
    assert not failed.shown_beside(info, "archive")  # a table was loaded since the failure
    later = FetchStatus("failed", message="unreachable", updated=time.time() + 1, source="archive")
    assert later.shown_beside(info, "archive")  # a refresh that failed after it


def test_column_advice_is_cached_per_table_version(storage):
    info = ensure_builtin(KEPLER, OFFLINE, storage)
    setup = KEPLER.default_setup
    advice = cached_advice(
        storage, info, KEPLER.target, setup.mapping, KEPLER.group_column, KEPLER.known_columns
    )
    assert {a.name for a in advice if a.leakage} >= {"koi_score", "koi_pdisposition", "kepler_name"}
    cached = [k for k in storage.list("datasets/kepler/") if "advice-" in k]
    assert len(cached) == 1
    storage.write_bytes(table_key("kepler"), b"corrupt")  # a second call must not read the table again
    again = cached_advice(
        storage, info, KEPLER.target, setup.mapping, KEPLER.group_column, KEPLER.known_columns
    )
    assert again == advice
