"""One contract suite for every storage backend: a local folder and GCS (a real fake-gcs-server)."""

from __future__ import annotations

import errno
import gc
import http.server
import io
import json
import multiprocessing
import os
import re
import socket
import subprocess
import sys
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from functools import partial
from pathlib import Path

import pytest

import shared.storage
from shared.errors import InvalidKey, ObjectNotFound, PreconditionFailed, StorageError, StorageUnavailable
from shared.storage import LocalStorage, ObjectInfo, open_storage
from tests.processes import free_port

WORKERS = 4
INCREMENTS = 10  # per worker


@pytest.fixture(params=["local", "gcs"])
def storage(request, tmp_path):
    if request.param == "local":
        return LocalStorage(tmp_path / "store")
    from shared.storage import GCSStorage

    emulator = request.getfixturevalue("gcs_emulator")
    return GCSStorage(emulator.new_bucket(), prefix="tenant/a")


@pytest.fixture(scope="module")
def spawn_pool():
    with multiprocessing.get_context("spawn").Pool(WORKERS) as pool:
        yield pool


def everything_stored(storage) -> list[str]:
    """Every name physically stored: all files under the root (but the lock), or all blobs in the bucket."""
    if isinstance(storage, LocalStorage):
        root = Path(storage.url)
        names = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink()]
        return sorted(n for n in names if n != ".lock")
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage as gcs

    bucket = storage.url.removeprefix("gs://").partition("/")[0]
    client = gcs.Client(project="test-project", credentials=AnonymousCredentials())
    return sorted(blob.name for blob in client.list_blobs(bucket))


# --- the contract ------------------------------------------------------------------------------


def test_round_trip(storage):
    data = b'{"target": "disposition"}'
    gen = storage.write_bytes("runs/r1/spec.json", data, content_type="application/json")
    assert isinstance(gen, int)
    assert gen > 0
    assert storage.read_bytes("runs/r1/spec.json") == data
    assert storage.read_with_generation("runs/r1/spec.json") == (data, gen)
    assert storage.stat("runs/r1/spec.json") == ObjectInfo("runs/r1/spec.json", len(data), gen)
    storage.write_bytes("empty", b"")
    assert storage.read_bytes("empty") == b""
    assert storage.stat("empty").size == 0


def test_overwrite_gives_new_larger_generation(storage):
    gens = [storage.write_bytes("k", f"v{i}".encode()) for i in range(5)]
    assert gens == sorted(set(gens)), "generations must strictly increase"
    assert storage.read_with_generation("k") == (b"v4", gens[-1])
    assert storage.stat("k").generation == gens[-1]


def test_recreated_object_gets_new_generation(storage):
    first = storage.create("k", b"one")
    storage.delete("k")
    second = storage.create("k", b"two")
    assert second > first
    with pytest.raises(PreconditionFailed):
        storage.write_bytes("k", b"stale", if_generation_match=first)
    assert storage.read_bytes("k") == b"two"


def test_create_only_fails_when_object_exists(storage):
    gen = storage.create("runs/r1/claim", b"original")
    with pytest.raises(PreconditionFailed):
        storage.create("runs/r1/claim", b"intruder")
    with pytest.raises(PreconditionFailed):
        storage.write_bytes("runs/r1/claim", b"intruder", if_generation_match=0)
    assert storage.read_with_generation("runs/r1/claim") == (b"original", gen)


def test_stale_generation_fails_and_matching_one_succeeds(storage):
    g1 = storage.write_bytes("k", b"v1")
    g2 = storage.write_bytes("k", b"v2")
    for stale in (g1, g2 + 1, 0):
        with pytest.raises(PreconditionFailed):
            storage.write_bytes("k", b"lost", if_generation_match=stale)
    assert storage.read_with_generation("k") == (b"v2", g2)
    g3 = storage.write_bytes("k", b"v3", if_generation_match=g2)
    assert g3 > g2
    assert storage.read_with_generation("k") == (b"v3", g3)


def test_generation_match_on_missing_object(storage):
    with pytest.raises(PreconditionFailed):
        storage.write_bytes("k", b"x", if_generation_match=12345)
    assert not storage.exists("k")
    gen = storage.write_bytes("k", b"x", if_generation_match=0)
    assert storage.stat("k").generation == gen


def test_conditional_delete(storage):
    g1 = storage.write_bytes("k", b"v1")
    g2 = storage.write_bytes("k", b"v2")
    for wrong in (g1, 0):
        with pytest.raises(PreconditionFailed):
            storage.delete("k", if_generation_match=wrong)
    assert storage.read_with_generation("k") == (b"v2", g2)
    storage.delete("k", if_generation_match=g2)
    assert not storage.exists("k")
    with pytest.raises(ObjectNotFound):
        storage.delete("k", if_generation_match=g2)


def test_missing_keys_raise_object_not_found(storage):
    storage.write_bytes("present", b"x")
    operations = {
        "read_bytes": lambda key: storage.read_bytes(key),
        "read_with_generation": lambda key: storage.read_with_generation(key),
        "stat": lambda key: storage.stat(key),
        "delete": lambda key: storage.delete(key),
        "download_to_file": lambda key: storage.download_to_file(key, io.BytesIO()),
    }
    for name, operation in operations.items():
        for key in ("absent", "present/below", "dir/absent"):
            with pytest.raises(ObjectNotFound, match=re.escape(storage.uri(key))):
                operation(key)
            assert not storage.exists(key), name
    assert storage.read_bytes("present") == b"x"


def test_missing_key_error_is_a_key_error_with_a_plain_message(storage):
    with pytest.raises(KeyError) as caught:
        storage.read_bytes("absent")
    assert str(caught.value) == f"no object at {storage.uri('absent')}"


def test_generations_list_every_key_with_its_current_generation(storage):
    for key in ("runs/r1/spec.json", "runs/r1/evaluate/status.json", "runs/r2/spec.json"):
        storage.write_bytes(key, b"{}")
    listed = storage.generations("runs/r1/")
    assert listed == {
        key: storage.stat(key).generation for key in ("runs/r1/spec.json", "runs/r1/evaluate/status.json")
    }
    rewritten = storage.write_bytes("runs/r1/spec.json", b'{"a": 1}')
    assert storage.generations("runs/r1/")["runs/r1/spec.json"] == rewritten != listed["runs/r1/spec.json"]
    assert storage.generations("nothing/") == {}
    wanted = ["runs/r1/spec.json", "runs/r1/evaluate/status.json", "runs/r1/final/status.json"]
    assert storage.generations_of(wanted) == storage.generations("runs/r1/")  # the missing one left out
    assert storage.generations_of(["runs/r2/spec.json"]) == {
        "runs/r2/spec.json": storage.stat("runs/r2/spec.json").generation
    }


def test_list_with_prefixes(storage):
    keys = ["b", "ab", "a/c/e", "a/b", "a/c/d", "a/cx", "z/y/x/w"]
    for key in keys:
        storage.write_bytes(key, b"1")
    assert storage.list() == sorted(keys)
    assert storage.list("") == sorted(keys)
    assert storage.list("a/") == ["a/b", "a/c/d", "a/c/e", "a/cx"]
    assert storage.list("a") == ["a/b", "a/c/d", "a/c/e", "a/cx", "ab"]
    assert storage.list("a/c/") == ["a/c/d", "a/c/e"]
    assert storage.list("a/c") == ["a/c/d", "a/c/e", "a/cx"]
    assert storage.list("a/c/d") == ["a/c/d"]
    assert storage.list("z/y/") == ["z/y/x/w"]
    assert storage.list("nothing/") == []
    assert storage.list("nothing") == []
    assert storage.list("b/") == []
    with pytest.raises(InvalidKey):
        storage.list("../")


def test_exists_and_stat_size(storage):
    assert not storage.exists("k")
    storage.write_bytes("k", b"x" * 1234)
    assert storage.exists("k")
    assert not storage.exists("k/below")
    assert storage.stat("k").size == 1234
    assert storage.stat("k").key == "k"


def test_upload_and_download_a_few_megabytes(storage, tmp_path):
    data = os.urandom(9 * 1024 * 1024 + 7)  # above one GCS upload chunk
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    with source.open("rb") as f:
        gen = storage.upload_file("models/m1/bundle.bin", f)
    assert storage.stat("models/m1/bundle.bin") == ObjectInfo("models/m1/bundle.bin", len(data), gen)
    target = tmp_path / "target.bin"
    with target.open("wb") as f:
        storage.download_to_file("models/m1/bundle.bin", f)
    assert target.read_bytes() == data


def test_read_with_generation_is_consistent_during_writes(storage):
    written = {storage.write_bytes("k", b"version 0"): b"version 0"}
    observed = []
    done = threading.Event()

    def writer():
        try:
            for i in range(1, 25):
                data = f"version {i}".encode()
                written[storage.write_bytes("k", data)] = data
        finally:
            done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    while True:
        finished = done.is_set()
        observed.append(storage.read_with_generation("k"))
        if finished:
            break
    thread.join()
    for data, gen in observed:
        assert written[gen] == data


BAD_KEYS = [
    ("../x", r"bad segment '\.\.'"),
    ("a/../b", r"bad segment '\.\.'"),
    ("a/..", r"bad segment '\.\.'"),
    ("/abs", r"bad segment ''"),
    ("a//b", r"bad segment ''"),
    ("trailing/", r"bad segment ''"),
    ("", r"^invalid storage key ''$"),
    (".hidden", r"bad segment '\.hidden'"),
    ("a/.hidden", r"bad segment '\.hidden'"),
    ("a/./b", r"bad segment '\.'"),
    ("a..b", r"'\.\.' is not allowed"),
    ("a\\b", re.escape(repr("a\\b"))),
    ("..\\x", re.escape(repr("..\\x"))),
    ("a\x00b", re.escape(repr("a\x00b"))),
    ("sp ace", r"bad segment 'sp ace'"),
    ("x" * 201, r"bad segment 'x{201}'"),
    ("a/" * 500 + "b", r"^invalid storage key 'a/a/"),
]


@pytest.mark.parametrize(
    ("key", "match"), BAD_KEYS, ids=[repr(k) if len(k) < 20 else f"long-{len(k)}" for k, _ in BAD_KEYS]
)
def test_bad_keys_are_refused(storage, key, match):
    operations = [
        lambda: storage.write_bytes(key, b"x"),
        lambda: storage.write_bytes(key, b"x", if_generation_match=0),
        lambda: storage.create(key, b"x"),
        lambda: storage.upload_file(key, io.BytesIO(b"x")),
        lambda: storage.read_bytes(key),
        lambda: storage.read_with_generation(key),
        lambda: storage.download_to_file(key, io.BytesIO()),
        lambda: storage.stat(key),
        lambda: storage.exists(key),
        lambda: storage.delete(key),
        lambda: storage.delete(key, if_generation_match=0),
        lambda: storage.uri(key),
    ]
    for operation in operations:
        with pytest.raises(InvalidKey, match=match):
            operation()
    assert everything_stored(storage) == []


def _try_create(storage, worker: int, start_at: float) -> bool:
    time.sleep(max(0.0, start_at - time.time()))
    try:
        storage.create("claim", f"worker {worker}".encode())
    except PreconditionFailed:
        return False
    return True


def _increment(storage, times: int) -> int:
    """Add 1 to the counter ``times`` times by compare-and-swap; returns how many attempts lost."""
    lost = 0
    for _ in range(times):
        while True:
            data, gen = storage.read_with_generation("counter")
            try:
                storage.write_bytes("counter", str(int(data) + 1).encode(), if_generation_match=gen)
                break
            except PreconditionFailed:
                lost += 1
    return lost


# Spawned processes rebuild the storage from its root: a LocalStorage holds nothing but paths.
def _create_in_process(root: str, worker: int, start_at: float) -> bool:
    return _try_create(LocalStorage(root), worker, start_at)


def _increment_in_process(root: str, worker: int, start_at: float) -> int:
    time.sleep(max(0.0, start_at - time.time()))
    return _increment(LocalStorage(root), INCREMENTS)


def _race(storage, request, in_threads, in_processes):
    """Run a race in threads (every backend), then in spawned processes (local storage only).

    Yields each round's results, so the caller can check and reset between rounds.
    """
    start_at = time.time() + 0.2
    with ThreadPoolExecutor(WORKERS) as executor:
        yield list(executor.map(lambda worker: in_threads(worker, start_at), range(WORKERS)))
    if isinstance(storage, LocalStorage):
        pool = request.getfixturevalue("spawn_pool")
        start_at = time.time() + 0.5  # spawned workers may still be importing
        yield pool.starmap(in_processes, [(storage.url, worker, start_at) for worker in range(WORKERS)])


def test_create_race_has_exactly_one_winner(storage, request):
    rounds = 0
    for results in _race(storage, request, partial(_try_create, storage), _create_in_process):
        rounds += 1
        assert results.count(True) == 1, results
        assert storage.read_bytes("claim") == f"worker {results.index(True)}".encode()
        storage.delete("claim")
    assert rounds == (2 if isinstance(storage, LocalStorage) else 1)


def test_compare_and_swap_counter_race(storage, request):
    def in_threads(worker, start_at):
        time.sleep(max(0.0, start_at - time.time()))
        return _increment(storage, INCREMENTS)

    storage.create("counter", b"0")
    expected = 0
    for _lost in _race(storage, request, in_threads, _increment_in_process):
        expected += WORKERS * INCREMENTS
        assert int(storage.read_bytes("counter")) == expected
    assert expected == WORKERS * INCREMENTS * (2 if isinstance(storage, LocalStorage) else 1)


def test_read_modify_write_under_preconditions_loses_no_update(storage):
    """Every thread reads the counter before any writes (a barrier), so all but one conditional
    write must fail and retry: the final count is still exact. Without preconditions the same
    schedule loses every update but one."""
    storage.create("counter", b"0")
    barrier = threading.Barrier(WORKERS, timeout=30)

    def add_one(conditional: bool) -> int:
        data, generation = storage.read_with_generation("counter")
        barrier.wait()  # everyone has read the same value
        refused = 0
        while True:
            try:
                storage.write_bytes(
                    "counter",
                    str(int(data) + 1).encode(),
                    if_generation_match=generation if conditional else None,
                )
                return refused
            except PreconditionFailed:
                refused += 1
                data, generation = storage.read_with_generation("counter")

    with ThreadPoolExecutor(WORKERS) as executor:
        refused = list(executor.map(add_one, [True] * WORKERS))
    assert int(storage.read_bytes("counter")) == WORKERS
    assert refused.count(0) == 1 and sum(refused) >= WORKERS - 1  # one won at once, the others retried
    with ThreadPoolExecutor(WORKERS) as executor:
        assert list(executor.map(add_one, [False] * WORKERS)) == [0] * WORKERS
    assert int(storage.read_bytes("counter")) == WORKERS + 1  # the lost updates preconditions prevent


# --- local folder specifics ---------------------------------------------------------------------


def test_local_url_and_uri(tmp_path):
    store = LocalStorage(tmp_path / "new" / "store")
    assert store.url == str(tmp_path / "new" / "store")
    assert (tmp_path / "new" / "store").is_dir()
    assert store.uri("runs/r1/spec.json") == (tmp_path / "new/store/runs/r1/spec.json").resolve().as_uri()


def test_local_symlink_pointing_outside_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    store = LocalStorage(tmp_path / "store")
    (tmp_path / "store" / "link").symlink_to(outside, target_is_directory=True)
    (tmp_path / "store" / "leak").symlink_to(outside / "secret")
    operations = [
        lambda key: store.write_bytes(key, b"x"),
        lambda key: store.read_bytes(key),
        lambda key: store.stat(key),
        lambda key: store.exists(key),
        lambda key: store.delete(key),
        lambda key: store.uri(key),
    ]
    for key in ("link/secret", "link/new", "link/deeper/new", "leak"):
        for operation in operations:
            with pytest.raises(InvalidKey, match="outside the storage root"):
                operation(key)
    with pytest.raises(InvalidKey, match="outside the storage root"):
        store.list("link/")
    assert store.list() == []
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]
    assert (outside / "secret").read_bytes() == b"secret"


def test_local_symlink_inside_root_is_followed(tmp_path):
    store = LocalStorage(tmp_path / "store")
    store.write_bytes("real/k", b"x")
    (tmp_path / "store" / "alias").symlink_to(tmp_path / "store" / "real", target_is_directory=True)
    assert store.read_bytes("alias/k") == b"x"


class _FailingReader(io.RawIOBase):
    """A source that breaks after the first chunk, like a dropped upload."""

    def __init__(self) -> None:
        self.calls = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        self.calls += 1
        if self.calls > 1:
            raise OSError("connection reset")
        buffer[:4] = b"part"
        return 4


def test_local_writes_leave_no_temporary_files(tmp_path):
    store = LocalStorage(tmp_path / "store")
    store.write_bytes("a", b"1")
    gen = store.write_bytes("b/c", b"2")
    store.write_bytes("b/c", b"3", if_generation_match=gen)
    store.upload_file("d/e/f", io.BytesIO(b"4" * 100_000))
    with pytest.raises(PreconditionFailed):
        store.write_bytes("b/c", b"lost", if_generation_match=gen)
    with pytest.raises(PreconditionFailed):
        store.create("a", b"lost")
    with pytest.raises(StorageError, match="connection reset"):
        store.upload_file("a", _FailingReader())
    with pytest.raises(StorageError, match="already an object"):
        store.write_bytes("a/below", b"x")
    assert everything_stored(store) == ["a", "b/c", "d/e/f"]
    assert store.read_bytes("a") == b"1"
    assert store.read_bytes("b/c") == b"3"


def test_local_folder_gone_is_unavailable_and_never_recreated(tmp_path):
    root = tmp_path / "store"
    store = LocalStorage(root)
    gen = store.write_bytes("runs/r1/spec.json", b"{}")
    root.rename(tmp_path / "away")  # an unmounted volume, a folder moved by mistake
    operations = {
        "read_bytes": lambda: store.read_bytes("runs/r1/spec.json"),
        "read_absent": lambda: store.read_bytes("absent"),
        "stat": lambda: store.stat("runs/r1/spec.json"),
        "exists": lambda: store.exists("runs/r1/spec.json"),
        "list": lambda: store.list("runs/"),
        "write_bytes": lambda: store.write_bytes("runs/r1/spec.json", b"[]", if_generation_match=gen),
        "create": lambda: store.create("runs/r2/meta.json", b"{}"),
        "upload_file": lambda: store.upload_file("uploads/u1.csv", io.BytesIO(b"a\n1\n")),
        "download_to_file": lambda: store.download_to_file("runs/r1/spec.json", io.BytesIO()),
        "delete": lambda: store.delete("runs/r1/spec.json"),
    }
    for name, operation in operations.items():
        with pytest.raises(
            StorageUnavailable, match=re.escape(f"the storage folder {str(root)!r} is missing")
        ):
            operation()
        assert not root.exists(), f"{name} recreated the storage folder"
    (tmp_path / "away").rename(root)
    assert store.read_with_generation("runs/r1/spec.json") == (b"{}", gen)
    assert store.list() == ["runs/r1/spec.json"]


def test_local_disk_full_half_way_keeps_the_old_object(tmp_path, monkeypatch):
    """The disk fills up after half of the new content is written: the write fails as
    StorageUnavailable, readers still get the old object, and no partial file is left."""
    store = LocalStorage(tmp_path / "store")
    gen = store.write_bytes("runs/r1/spec.json", b'{"old": true}')
    real_fdopen = os.fdopen

    class HalfThenFull:
        def __init__(self, fd: int, mode: str) -> None:
            self._file = real_fdopen(fd, mode)

        def write(self, data: bytes) -> int:
            self._file.write(data[: len(data) // 2])
            self._file.flush()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __getattr__(self, name):
            return getattr(self._file, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc_info) -> None:
            self._file.close()

    monkeypatch.setattr(os, "fdopen", HalfThenFull)
    new = b'{"new": true, "padding": "' + b"x" * 100_000 + b'"}'
    for write in (
        lambda: store.write_bytes("runs/r1/spec.json", new),
        lambda: store.write_bytes("runs/r1/spec.json", new, if_generation_match=gen),
        lambda: store.create("runs/r2/spec.json", new),
    ):
        with pytest.raises(StorageUnavailable, match="No space left on device"):
            write()
    monkeypatch.undo()
    assert store.read_with_generation("runs/r1/spec.json") == (b'{"old": true}', gen)
    assert not store.exists("runs/r2/spec.json")
    assert everything_stored(store) == ["runs/r1/spec.json"]  # no temporary file left behind


def test_local_hidden_and_foreign_files_are_not_listed(tmp_path):
    store = LocalStorage(tmp_path / "store")
    store.write_bytes("k", b"1")
    root = tmp_path / "store"
    (root / ".tmp-k.abc").write_bytes(b"partial")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_bytes(b"")
    (root / "not a key").write_bytes(b"")
    (root / "folder").mkdir()
    assert store.list() == ["k"]
    assert not store.exists("folder")
    with pytest.raises(ObjectNotFound):
        store.read_bytes("folder")


def test_local_files_are_created_with_the_umask(tmp_path):
    store = LocalStorage(tmp_path / "store")
    store.write_bytes("k", b"1")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "store" / "k").stat().st_mode & 0o777 == 0o666 & ~umask


# --- GCS specifics ------------------------------------------------------------------------------


def test_gcs_url_uri_and_prefix(gcs_emulator):
    from shared.storage import GCSStorage

    bucket = gcs_emulator.new_bucket()
    store = GCSStorage(bucket, prefix="/tenant/a/")
    assert store.url == f"gs://{bucket}/tenant/a"
    assert store.uri("runs/r1") == f"gs://{bucket}/tenant/a/runs/r1"
    store.write_bytes("runs/r1", b"{}", content_type="application/json")
    blob = gcs_emulator.client().bucket(bucket).get_blob("tenant/a/runs/r1")
    assert blob.content_type == "application/json"
    assert GCSStorage(bucket, prefix="tenant/b").list() == []
    assert GCSStorage(bucket, prefix="tenant").list() == ["a/runs/r1"]
    whole = GCSStorage(bucket)
    assert whole.url == f"gs://{bucket}"
    assert whole.list() == ["tenant/a/runs/r1"]


def test_gcs_missing_bucket_is_a_storage_error(gcs_emulator):
    from shared.storage import GCSStorage

    store = GCSStorage("no-such-bucket-here")
    with pytest.raises(StorageError, match="bucket 'no-such-bucket-here' not found") as caught:
        store.write_bytes("k", b"x")
    assert not isinstance(caught.value, ObjectNotFound | PreconditionFailed)


class _ForbiddingHandler(http.server.BaseHTTPRequestHandler):
    """Answers every request as GCS does when the credentials lack permission."""

    def _forbid(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        message = "anonymous caller does not have storage.objects.create access"
        body = json.dumps({"error": {"code": 403, "message": message, "errors": [{"message": message}]}})
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    do_GET = do_POST = do_PUT = do_DELETE = _forbid

    def log_message(self, format, *args):
        pass


def test_gcs_server_errors_become_a_clear_storage_error():
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage as gcs

    from shared.storage import GCSStorage

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ForbiddingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = gcs.Client(
            project="test-project",
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": f"http://127.0.0.1:{server.server_address[1]}"},
        )
        store = GCSStorage("bucket", client=client)
        for operation in (lambda: store.write_bytes("k", b"x"), lambda: store.read_bytes("k")):
            with pytest.raises(StorageError) as caught:
                operation()
            assert type(caught.value) is StorageError
            assert re.fullmatch(
                r"cannot (write|read) gs://bucket/k: HTTP 403 anonymous caller does not have "
                r"storage\.objects\.create access",
                str(caught.value),
            )
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _UnavailableHandler(http.server.BaseHTTPRequestHandler):
    """Answers every request with 503, as an overloaded or failing server does."""

    def _fail(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps({"error": {"code": 503, "message": "Service Unavailable"}}).encode()
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _fail

    def log_message(self, format, *args):
        pass


def _gcs_at(url: str, deadline: float):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage as gcs

    from shared.storage import GCSStorage

    client = gcs.Client(
        project="test-project", credentials=AnonymousCredentials(), client_options={"api_endpoint": url}
    )
    return GCSStorage("bucket", client=client, retry_deadline_s=deadline)


def _every_operation(store) -> dict:
    return {
        "read": lambda: store.read_bytes("k"),
        "write": lambda: store.write_bytes("k", b"x"),
        "compare-and-swap": lambda: store.write_bytes("k", b"x", if_generation_match=0),
        "upload": lambda: store.upload_file("k", io.BytesIO(b"x" * 1000)),
        "download": lambda: store.download_to_file("k", io.BytesIO()),
        "stat": lambda: store.stat("k"),
        "exists": lambda: store.exists("k"),
        "list": lambda: store.list("runs/"),
        "delete": lambda: store.delete("k", if_generation_match=1),
    }


def test_gcs_unreachable_is_unavailable_within_the_short_deadline():
    """A refused connection is retried for the storage's deadline (not the library's 120 s)."""
    store = _gcs_at(f"http://127.0.0.1:{free_port()}", deadline=0.5)
    for name, operation in _every_operation(store).items():
        started = time.monotonic()
        with pytest.raises(
            StorageUnavailable, match=r"storage is unreachable \(retried for 0\.5 s\): ConnectionError"
        ):
            operation()
        assert time.monotonic() - started < 6, name


@contextmanager
def _unclosed_library_sockets_ignored():
    """google-cloud-storage drops the connection of a failed download without closing it (the
    garbage collector closes it, with a ResourceWarning): not ours to fix."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            yield
        finally:
            gc.collect()


def test_gcs_server_failing_with_5xx_is_unavailable():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _UnavailableHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        store = _gcs_at(f"http://127.0.0.1:{server.server_address[1]}", deadline=0.5)
        for operation in _every_operation(store).values():
            with (
                _unclosed_library_sockets_ignored(),
                pytest.raises(
                    StorageUnavailable,
                    match=r"storage is unreachable \(retried for 0\.5 s\): HTTP 503 Service Unavailable$",
                ),
            ):
                operation()
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_gcs_server_that_never_answers_is_unavailable(monkeypatch):
    """A server that accepts connections and then says nothing: each request times out."""
    from shared.storage import gcs

    monkeypatch.setattr(gcs, "READ_TIMEOUT_S", 0.3)
    listener = socket.create_server(("127.0.0.1", 0))
    held, stop = [], threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            with suppress(TimeoutError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        store = _gcs_at(f"http://127.0.0.1:{listener.getsockname()[1]}", deadline=0.5)
        for name, operation in _every_operation(store).items():
            started = time.monotonic()
            with (
                _unclosed_library_sockets_ignored(),
                pytest.raises(StorageUnavailable, match=r"storage is unreachable \(retried for 0\.5 s\): "),
            ):
                operation()
            assert time.monotonic() - started < 5, name
    finally:
        stop.set()
        thread.join()
        for connection in held:
            connection.close()
        listener.close()


def test_gcs_invalid_bucket_or_prefix_is_refused():
    from shared.storage import GCSStorage

    with pytest.raises(StorageError, match="invalid bucket name 'Bad_Bucket'"):
        GCSStorage("Bad_Bucket")
    with pytest.raises(InvalidKey):
        GCSStorage("bucket", prefix="a/../b")


# --- open_storage -------------------------------------------------------------------------------


def test_open_storage_gs_url(gcs_emulator):
    from shared.storage import GCSStorage

    bucket = gcs_emulator.new_bucket()
    store = open_storage(f"gs://{bucket}/some/prefix/")
    assert isinstance(store, GCSStorage)
    assert store.url == f"gs://{bucket}/some/prefix"
    store.write_bytes("k", b"x")
    assert gcs_emulator.client().bucket(bucket).blob("some/prefix/k").download_as_bytes() == b"x"
    assert open_storage(f"gs://{bucket}").url == f"gs://{bucket}"
    assert open_storage(f"gs://{bucket}").list() == ["some/prefix/k"]


def test_open_storage_plain_path(tmp_path):
    store = open_storage(str(tmp_path / "store"))
    assert isinstance(store, LocalStorage)
    assert store.url == str(tmp_path / "store")
    store.write_bytes("k", b"x")
    assert (tmp_path / "store" / "k").read_bytes() == b"x"


def test_open_storage_file_url(tmp_path):
    root = tmp_path / "with space"
    store = open_storage(root.as_uri())
    assert isinstance(store, LocalStorage)
    store.write_bytes("k", b"x")
    assert (root / "k").read_bytes() == b"x"
    assert store.uri("k") == (root / "k").resolve().as_uri()
    assert isinstance(open_storage(f"file://localhost{root}"), LocalStorage)


@pytest.mark.parametrize(
    "url",
    [
        "",
        "   ",
        "gs://",
        "gs:///prefix",
        "gs://Bad_Bucket/x",
        "gs://b/x",
        "gs://bucket/../x",
        "gs://bucket//x",
        "gs://bucket/x?generation=1",
        "gs://bucket/x#frag",
        "s3://bucket/x",
        "https://storage.googleapis.com/bucket",
        "file://host/path",
        "file://relative/path",
    ],
)
def test_open_storage_malformed_url(url):
    with pytest.raises(StorageError, match=re.escape(f"malformed storage URL {url!r}")):
        open_storage(url)


def test_importing_storage_does_not_load_google():
    # (a namespace-package .pth file may already have imported "google" and "google.cloud")
    code = (
        "import sys; before = set(sys.modules); import shared.storage; "
        "print(sorted(m for m in set(sys.modules) - before if m.startswith('google')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert out.stdout.strip() == "[]"
    assert shared.storage.GCSStorage.__name__ == "GCSStorage"
