"""Storage in a local folder: atomic writes, nanosecond generations, cross-process compare-and-swap.

An object is a regular file under the root. Its generation is the file's ``st_mtime_ns``, which
every write sets explicitly (under the root's lock) to a value larger than any generation issued
before, so generations are unique and increasing even for writes within one clock tick.
Names beginning with '.' are never keys: the lock file and temporary files live among them.

A missing storage folder (unmounted, renamed away), a full disk and other failures of the folder
itself raise StorageUnavailable; the folder is created once, at start, never again by a write.
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import shutil
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, BinaryIO

from shared.errors import InvalidKey, ObjectNotFound, PreconditionFailed, StorageError, StorageUnavailable
from shared.storage.base import ObjectInfo, validate_key, validate_prefix

_LOCK_NAME = ".lock"
_TMP_PREFIX = ".tmp-"
# The lock file also records the last generation issued (fixed width, rewritten in place), so
# generations never repeat, even when an object is deleted and re-created or the clock steps back.
_GEN_WIDTH = 20
# Failures of the folder or the disk under it rather than of one object: a later try may succeed.
_UNAVAILABLE_ERRNOS = frozenset(
    getattr(errno, name)
    for name in (
        "ENOSPC", "EDQUOT", "EIO", "EROFS", "ESTALE", "ENOTCONN", "ETIMEDOUT", "EHOSTDOWN",
        "ENODEV", "ENXIO", "EACCES", "EPERM", "ENOMEM",
    )
    if hasattr(errno, name)
)  # fmt: skip


RESOLVED_KEYS = 20_000  # resolved paths kept per storage (a few MB at most)


class LocalStorage:
    """A folder on local disk (created if missing) holding one file per object."""

    def __init__(self, root: str | Path) -> None:
        self.url = str(root)
        path = Path(root).expanduser()
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create storage folder {self.url!r}: {exc.strerror or exc}") from exc
        self._root = path.resolve()
        self._resolved: dict[str, Path] = {}

    # --- reading ---------------------------------------------------------------------------

    def read_bytes(self, key: str) -> bytes:
        return self.read_with_generation(key)[0]

    def read_with_generation(self, key: str) -> tuple[bytes, int]:
        # Writes publish a new inode via rename and never modify one in place, so the mtime and
        # the content of one open file always belong together.
        with self._open_object(key) as f:
            generation = os.fstat(f.fileno()).st_mtime_ns
            return f.read(), generation

    def download_to_file(self, key: str, target: BinaryIO) -> None:
        with self._open_object(key) as f:
            shutil.copyfileobj(f, target)

    def stat(self, key: str) -> ObjectInfo:
        path = self._path(key)
        st = self._stat_object(path)
        if st is None:
            raise ObjectNotFound(f"no object at {path.as_uri()}")
        return ObjectInfo(key=key, size=st.st_size, generation=st.st_mtime_ns)

    def exists(self, key: str) -> bool:
        return self._stat_object(self._path(key)) is not None

    def uri(self, key: str) -> str:
        return self._path(key).as_uri()

    # --- writing ---------------------------------------------------------------------------

    def write_bytes(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str = "application/octet-stream",
        if_generation_match: int | None = None,
    ) -> int:
        return self._write(key, lambda f: f.write(data), if_generation_match)

    def create(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> int:
        return self.write_bytes(key, data, content_type=content_type, if_generation_match=0)

    def upload_file(
        self, key: str, source: BinaryIO, *, content_type: str = "application/octet-stream"
    ) -> int:
        return self._write(key, lambda f: shutil.copyfileobj(source, f), None)

    def delete(self, key: str, *, if_generation_match: int | None = None) -> None:
        path = self._path(key)
        with self._locked():
            current = self._generation(path)
            if current == 0:
                raise ObjectNotFound(f"no object at {path.as_uri()}")
            if if_generation_match is not None and current != if_generation_match:
                raise PreconditionFailed(
                    f"not deleting {path.as_uri()}: {_mismatch(current, if_generation_match)}"
                )
            try:
                path.unlink()
            except OSError as exc:
                raise self._failure(f"cannot delete {path.as_uri()}", exc) from exc

    def list(self, prefix: str = "") -> list[str]:
        return sorted(self.generations(prefix))

    def generations_of(self, keys: list[str]) -> dict[str, int]:
        found = {}
        for key in keys:
            try:
                st = os.stat(self._path(key))
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as exc:
                raise self._failure(f"cannot stat {key!r} in {self.url!r}", exc) from exc
            if stat.S_ISREG(st.st_mode):
                found[key] = st.st_mtime_ns
        if not found:
            self._check_root(f"cannot stat objects in {self.url!r}")
        return found

    def generations(self, prefix: str = "") -> dict[str, int]:
        validate_prefix(prefix)
        # Walk only the deepest folder the prefix names; a partial last segment filters below.
        folder = prefix if prefix.endswith("/") else prefix.rpartition("/")[0]
        base = (self._root / folder).resolve()
        if not base.is_relative_to(self._root):
            raise InvalidKey(f"listing prefix {prefix!r} leads outside the storage root")
        self._check_root(f"cannot list {prefix!r} in {self.url!r}")

        def failed(exc: OSError) -> None:  # a folder that does not exist (yet) holds no keys
            if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
                raise self._failure(f"cannot list {prefix!r} in {self.url!r}", exc) from exc

        found: dict[str, int] = {}
        # Links are never followed (the walk stays inside the root); hidden names are the
        # temporary files of writes in progress.
        folders = [(base, base.relative_to(self._root).as_posix())]
        while folders:
            folder, rel = folders.pop()
            try:
                entries = list(os.scandir(folder))
            except OSError as exc:
                failed(exc)
                continue
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                key = entry.name if rel == "." else f"{rel}/{entry.name}"
                if entry.is_dir(follow_symlinks=False):
                    folders.append((Path(entry.path), key))
                elif entry.is_file(follow_symlinks=False) and key.startswith(prefix) and _is_key(key):
                    found[key] = entry.stat(follow_symlinks=False).st_mtime_ns
        return found

    # --- internals -------------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        path = self._resolved.get(key)
        if path is not None:
            return path
        validate_key(key)
        try:
            path = (self._root / key).resolve()
        except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python 3.11)
            raise InvalidKey(f"storage key {key!r} cannot be resolved under {self.url!r}: {exc}") from exc
        if not path.is_relative_to(self._root) or path == self._root:
            raise InvalidKey(f"storage key {key!r} resolves outside the storage root {self.url!r}")
        if len(self._resolved) > RESOLVED_KEYS:
            self._resolved.clear()
        self._resolved[key] = path  # resolving walks every folder of the path: once per key
        return path

    @contextmanager
    def _open_object(self, key: str) -> Iterator[IO[bytes]]:
        path = self._path(key)
        try:
            f = path.open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            self._check_root(f"cannot read {path.as_uri()}")
            raise ObjectNotFound(f"no object at {path.as_uri()}") from exc
        except OSError as exc:
            raise self._failure(f"cannot read {path.as_uri()}", exc) from exc
        with f:
            try:
                yield f
            except OSError as exc:
                raise self._failure(f"cannot read {path.as_uri()}", exc) from exc

    def _stat_object(self, path: Path) -> os.stat_result | None:
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            self._check_root(f"cannot stat {path.as_uri()}")
            return None
        except OSError as exc:
            raise self._failure(f"cannot stat {path.as_uri()}", exc) from exc
        return st if stat.S_ISREG(st.st_mode) else None

    def _check_root(self, what: str) -> None:
        """StorageUnavailable if the storage folder itself is gone (unmounted, renamed away):
        then a missing object means nothing, and a write must not quietly start a new folder."""
        if not self._root.is_dir():
            raise StorageUnavailable(f"{what}: the storage folder {self.url!r} is missing")

    def _failure(self, what: str, exc: OSError) -> StorageError:
        """The error for a failed file operation: StorageUnavailable when the folder or its disk
        failed (missing folder, full disk, I/O error, no permission), else StorageError."""
        reason = exc.strerror or str(exc)
        if exc.errno in _UNAVAILABLE_ERRNOS:
            return StorageUnavailable(f"{what}: {reason}")
        if not self._root.is_dir():
            return StorageUnavailable(f"{what}: the storage folder {self.url!r} is missing")
        return StorageError(f"{what}: {reason}")

    def _generation(self, path: Path) -> int:
        """The object's current generation, 0 when absent."""
        st = self._stat_object(path)
        return 0 if st is None else st.st_mtime_ns

    def _write(self, key: str, fill: Callable[[IO[bytes]], object], if_generation_match: int | None) -> int:
        path = self._path(key)
        tmp = path.with_name(f"{_TMP_PREFIX}{path.name}.{secrets.token_hex(8)}")
        self._check_root(f"cannot write {path.as_uri()}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Not tempfile.mkstemp: its files are private (0600); this one honours the umask.
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except (FileExistsError, NotADirectoryError) as exc:
            raise StorageError(f"cannot write {path.as_uri()}: part of the key is already an object") from exc
        except OSError as exc:
            raise self._failure(f"cannot write {path.as_uri()}", exc) from exc
        published = False
        try:
            with os.fdopen(fd, "wb") as f:
                # The slow part (copying, fsync) happens before taking the lock.
                fill(f)
                f.flush()
                os.fsync(f.fileno())
                with self._locked() as lock_fd:
                    current = self._generation(path)
                    if if_generation_match is not None and current != if_generation_match:
                        raise PreconditionFailed(
                            f"not writing {path.as_uri()}: {_mismatch(current, if_generation_match)}"
                        )
                    generation = _issue_generation(lock_fd, current)
                    os.utime(f.fileno(), ns=(generation, generation))
                    if os.fstat(f.fileno()).st_mtime_ns != generation:
                        raise StorageError(
                            f"the filesystem under {self.url!r} does not keep nanosecond timestamps, "
                            "which local storage needs for its generations"
                        )
                    os.fsync(f.fileno())
                    os.replace(tmp, path)
                    published = True
            _fsync_dir(path.parent)
            return generation
        except OSError as exc:
            raise self._failure(f"cannot write {path.as_uri()}", exc) from exc
        finally:
            if not published:
                with suppress(FileNotFoundError):
                    tmp.unlink()

    @contextmanager
    def _locked(self) -> Iterator[int]:
        """Exclusive lock over the whole root, across threads and processes."""
        # A new open file description per call: flock excludes other descriptions, including
        # those of other threads in this process.
        try:
            fd = os.open(self._root / _LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise self._failure(f"cannot lock {self.url!r}", exc) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield fd
        finally:
            os.close(fd)  # closing releases the lock


def _issue_generation(lock_fd: int, current: int) -> int:
    """A generation above the object's current one and any issued before; call under the lock."""
    try:
        last = int(os.pread(lock_fd, _GEN_WIDTH, 0) or b"0")
    except ValueError:
        last = 0
    generation = max(time.time_ns(), current + 1, last + 1)
    os.pwrite(lock_fd, str(generation).zfill(_GEN_WIDTH).encode(), 0)
    return generation


def _fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _mismatch(current: int, expected: int) -> str:
    if current == 0:
        return f"it does not exist (expected generation {expected})"
    if expected == 0:
        return f"it exists already (generation {current})"
    return f"its generation is {current}, not {expected}"


def _is_key(name: str) -> bool:
    try:
        validate_key(name)
    except InvalidKey:
        return False
    return True
