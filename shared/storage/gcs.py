"""Storage in a Google Cloud Storage bucket, optionally under a prefix.

Generations are GCS object generations and preconditions go to the server. Set
``STORAGE_EMULATOR_HOST`` to talk to an emulator (fake-gcs-server) without Google credentials.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

import google.auth.exceptions
from google.api_core import exceptions as api_exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from google.cloud.storage.exceptions import DataCorruption, InvalidResponse

from shared.errors import ObjectNotFound, PreconditionFailed, StorageError
from shared.storage.base import ObjectInfo, validate_key, validate_prefix

_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")
# Resumable uploads buffer one chunk in memory; a multiple of 256 KiB as GCS requires.
_UPLOAD_CHUNK_SIZE = 8 * 1024 * 1024
_TRANSPORT_ERRORS = (
    api_exceptions.GoogleAPIError,
    google.auth.exceptions.GoogleAuthError,
    DataCorruption,
    InvalidResponse,
    OSError,  # requests' ConnectionError and Timeout are OSErrors
)


def is_bucket_name(name: str) -> bool:
    """Whether ``name`` follows GCS bucket naming rules (loosely: no length rule per dot part)."""
    return bool(_BUCKET.fullmatch(name)) and ".." not in name


def default_client() -> storage.Client:
    """A client for the emulator named by STORAGE_EMULATOR_HOST, else from Google's default credentials."""
    try:
        if os.environ.get("STORAGE_EMULATOR_HOST"):
            project = os.environ.get("GOOGLE_CLOUD_PROJECT", "local-emulator")
            return storage.Client(project=project, credentials=AnonymousCredentials())
        return storage.Client()
    except google.auth.exceptions.GoogleAuthError as exc:
        raise StorageError(
            "no Google Cloud credentials found: run `gcloud auth application-default login`, "
            f"or set STORAGE_EMULATOR_HOST to use an emulator ({exc})"
        ) from exc


class GCSStorage:
    """Objects ``<prefix>/<key>`` in one bucket."""

    def __init__(self, bucket: str, prefix: str = "", client: storage.Client | None = None) -> None:
        if not is_bucket_name(bucket):
            raise StorageError(f"invalid bucket name {bucket!r}")
        prefix = prefix.strip("/")
        if prefix:
            validate_key(prefix)
        self.url = f"gs://{bucket}/{prefix}" if prefix else f"gs://{bucket}"
        self._prefix = f"{prefix}/" if prefix else ""
        self._client = client if client is not None else default_client()
        self._bucket = self._client.bucket(bucket)

    # --- reading ---------------------------------------------------------------------------

    def read_bytes(self, key: str) -> bytes:
        return self.read_with_generation(key)[0]

    def read_with_generation(self, key: str) -> tuple[bytes, int]:
        blob = self._blob(key)
        with self._errors("read", key):
            data = blob.download_as_bytes()
        # The generation comes from the same response's x-goog-generation header, and the
        # library pins it on any retried range request, so content and generation match.
        if blob.generation is None:
            raise StorageError(f"reading {self.uri(key)}: the server did not report a generation")
        return data, blob.generation

    def download_to_file(self, key: str, target: BinaryIO) -> None:
        blob = self._blob(key)
        with self._errors("download", key):
            blob.download_to_file(target)

    def stat(self, key: str) -> ObjectInfo:
        name = self._name(key)
        with self._errors("stat", key):
            blob = self._bucket.get_blob(name)
        if blob is None:
            raise ObjectNotFound(f"no object at {self.uri(key)}")
        return ObjectInfo(key=key, size=blob.size or 0, generation=blob.generation)

    def exists(self, key: str) -> bool:
        blob = self._blob(key)
        with self._errors("check", key):
            return blob.exists()

    def uri(self, key: str) -> str:
        return f"gs://{self._bucket.name}/{self._name(key)}"

    # --- writing ---------------------------------------------------------------------------

    def write_bytes(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str = "application/octet-stream",
        if_generation_match: int | None = None,
    ) -> int:
        blob = self._blob(key)
        with self._errors("write", key, writing=True):
            blob.upload_from_string(data, content_type=content_type, if_generation_match=if_generation_match)
        return blob.generation

    def create(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> int:
        return self.write_bytes(key, data, content_type=content_type, if_generation_match=0)

    def upload_file(
        self, key: str, source: BinaryIO, *, content_type: str = "application/octet-stream"
    ) -> int:
        blob = self._bucket.blob(self._name(key), chunk_size=_UPLOAD_CHUNK_SIZE)
        with self._errors("upload", key, writing=True):
            blob.upload_from_file(source, content_type=content_type)
        return blob.generation

    def delete(self, key: str, *, if_generation_match: int | None = None) -> None:
        blob = self._blob(key)
        with self._errors("delete", key):
            if if_generation_match is not None:
                # GCS itself enforces the condition (passed on below); checking first as well makes
                # emulators that ignore delete preconditions (fake-gcs-server, issue #1282) honour
                # the contract too, at the cost of one metadata request.
                current = self._bucket.get_blob(blob.name)
                if current is None:
                    raise ObjectNotFound(f"no object at {self.uri(key)}")
                if current.generation != if_generation_match:
                    raise PreconditionFailed(
                        f"not deleting {self.uri(key)}: its generation is {current.generation}, "
                        f"not {if_generation_match}"
                    )
            blob.delete(if_generation_match=if_generation_match)

    def list(self, prefix: str = "") -> list[str]:
        validate_prefix(prefix)
        with self._errors("list", prefix):
            names = [
                blob.name for blob in self._client.list_blobs(self._bucket, prefix=self._prefix + prefix)
            ]
        start = len(self._prefix)
        # Skip what is not a key, such as the "folder/" placeholders the Cloud Console creates.
        return sorted(name[start:] for name in names if _is_key(name[start:]))

    # --- internals -------------------------------------------------------------------------

    def _name(self, key: str) -> str:
        return self._prefix + validate_key(key)

    def _blob(self, key: str) -> storage.Blob:
        return self._bucket.blob(self._name(key))

    @contextmanager
    def _errors(self, action: str, key: str, *, writing: bool = False) -> Iterator[None]:
        """Translate the client's exceptions into ours, with a message naming the object."""
        where = f"gs://{self._bucket.name}/{self._prefix}{key}"
        try:
            yield
        except api_exceptions.PreconditionFailed as exc:
            raise PreconditionFailed(
                f"cannot {action} {where}: generation precondition failed "
                "(the object exists already, or changed since its generation was read)"
            ) from exc
        except api_exceptions.NotFound as exc:
            if writing:  # an upload only finds nothing when the bucket is missing
                raise StorageError(
                    f"cannot {action} {where}: bucket {self._bucket.name!r} not found"
                ) from exc
            raise ObjectNotFound(f"no object at {where}") from exc
        except _TRANSPORT_ERRORS as exc:
            raise StorageError(f"cannot {action} {where}: {_describe(exc)}") from exc


def _describe(exc: BaseException) -> str:
    """One short line about a client exception (their str() can hold a whole response body)."""
    if isinstance(exc, api_exceptions.GoogleAPICallError) and exc.code is not None:
        text = f"HTTP {int(exc.code)} {_server_message(exc) or type(exc).__name__}"
    else:
        lines = str(exc).strip().splitlines()
        text = f"{type(exc).__name__}: {lines[0] if lines else 'no details'}"
    return text if len(text) <= 300 else text[:297] + "..."


def _server_message(exc: api_exceptions.GoogleAPICallError) -> str:
    """The message of a GCS JSON error body, if there is one."""
    if exc.errors and isinstance(exc.errors[0], dict) and exc.errors[0].get("message"):
        return str(exc.errors[0]["message"])
    try:  # upload errors carry the raw response only
        return str(exc.response.json()["error"]["message"])
    except (AttributeError, KeyError, TypeError, ValueError):
        return ""


def _is_key(name: str) -> bool:
    try:
        validate_key(name)
    except StorageError:
        return False
    return True
