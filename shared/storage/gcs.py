"""Storage in a Google Cloud Storage bucket, optionally under a prefix.

Generations are GCS object generations and preconditions go to the server. Set
``STORAGE_EMULATOR_HOST`` to talk to an emulator (fake-gcs-server) without Google credentials.

Every call retries what the client library deems transient (refused connections, timeouts,
429 and 5xx) for a few seconds only (``RETRY_DEADLINE_S``; the library's default is 120 s, which
would hang a page for two minutes), then raises StorageUnavailable.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

import google.auth.exceptions
import requests
import urllib3
from google.api_core import exceptions as api_exceptions
from google.api_core.retry import Retry
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from google.cloud.storage.exceptions import DataCorruption, InvalidResponse
from google.cloud.storage.retry import DEFAULT_RETRY

from shared.errors import ObjectNotFound, PreconditionFailed, StorageError, StorageUnavailable
from shared.settings import STORAGE_RETRY_S
from shared.storage.base import ObjectInfo, validate_key, validate_prefix

_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")
# Resumable uploads buffer one chunk in memory; a multiple of 256 KiB as GCS requires.
_UPLOAD_CHUNK_SIZE = 8 * 1024 * 1024


# How long one operation keeps retrying a server that refuses, times out or answers 429/5xx before
# StorageUnavailable (STORAGE_RETRY_S, read once in shared.settings).
RETRY_DEADLINE_S = STORAGE_RETRY_S
# Per HTTP request: connecting, and waiting for the next bytes of an answer (a server that accepts
# but never answers fails after READ_TIMEOUT_S, then is retried within the deadline).
CONNECT_TIMEOUT_S = 3.05
READ_TIMEOUT_S = 10.0
_UNAVAILABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_UNREACHABLE_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    urllib3.exceptions.HTTPError,
    ConnectionError,
    TimeoutError,
    google.auth.exceptions.TransportError,
)
_TRANSPORT_ERRORS = (
    api_exceptions.GoogleAPIError,
    google.auth.exceptions.GoogleAuthError,
    DataCorruption,
    InvalidResponse,
    urllib3.exceptions.HTTPError,
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


def retry_policy(deadline_s: float) -> Retry:
    """The library's retry rules (what is transient) within ``deadline_s`` seconds overall."""
    return DEFAULT_RETRY.with_timeout(deadline_s).with_delay(initial=0.2, maximum=1.0, multiplier=2.0)


class GCSStorage:
    """Objects ``<prefix>/<key>`` in one bucket."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        client: storage.Client | None = None,
        *,
        retry_deadline_s: float | None = None,
    ) -> None:
        if not is_bucket_name(bucket):
            raise StorageError(f"invalid bucket name {bucket!r}")
        prefix = prefix.strip("/")
        if prefix:
            validate_key(prefix)
        self.url = f"gs://{bucket}/{prefix}" if prefix else f"gs://{bucket}"
        self._prefix = f"{prefix}/" if prefix else ""
        self._client = client if client is not None else default_client()
        self._bucket = self._client.bucket(bucket)
        self._deadline_s = RETRY_DEADLINE_S if retry_deadline_s is None else retry_deadline_s
        # passed to every call: the retry policy, and the (connect, read) timeouts of each request
        self._call = {"retry": retry_policy(self._deadline_s), "timeout": (CONNECT_TIMEOUT_S, READ_TIMEOUT_S)}

    # --- reading ---------------------------------------------------------------------------

    def read_bytes(self, key: str) -> bytes:
        return self.read_with_generation(key)[0]

    def read_with_generation(self, key: str) -> tuple[bytes, int]:
        blob = self._blob(key)
        with self._errors("read", key):
            data = blob.download_as_bytes(**self._call)
        # The generation comes from the same response's x-goog-generation header, and the
        # library pins it on any retried range request, so content and generation match.
        if blob.generation is None:
            raise StorageError(f"reading {self.uri(key)}: the server did not report a generation")
        return data, blob.generation

    def download_to_file(self, key: str, target: BinaryIO) -> None:
        blob = self._blob(key)
        with self._errors("download", key):
            blob.download_to_file(target, **self._call)

    def stat(self, key: str) -> ObjectInfo:
        name = self._name(key)
        with self._errors("stat", key):
            blob = self._bucket.get_blob(name, **self._call)
        if blob is None:
            raise ObjectNotFound(f"no object at {self.uri(key)}")
        return ObjectInfo(key=key, size=blob.size or 0, generation=blob.generation)

    def exists(self, key: str) -> bool:
        blob = self._blob(key)
        with self._errors("check", key):
            return blob.exists(**self._call)

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
            blob.upload_from_string(
                data, content_type=content_type, if_generation_match=if_generation_match, **self._call
            )
        return blob.generation

    def create(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> int:
        return self.write_bytes(key, data, content_type=content_type, if_generation_match=0)

    def upload_file(
        self, key: str, source: BinaryIO, *, content_type: str = "application/octet-stream"
    ) -> int:
        blob = self._bucket.blob(self._name(key), chunk_size=_UPLOAD_CHUNK_SIZE)
        with self._errors("upload", key, writing=True):
            blob.upload_from_file(source, content_type=content_type, **self._call)
        return blob.generation

    def delete(self, key: str, *, if_generation_match: int | None = None) -> None:
        blob = self._blob(key)
        with self._errors("delete", key):
            if if_generation_match is not None:
                # GCS itself enforces the condition (passed on below); checking first as well makes
                # emulators that ignore delete preconditions (fake-gcs-server, issue #1282) honour
                # the contract too, at the cost of one metadata request.
                current = self._bucket.get_blob(blob.name, **self._call)
                if current is None:
                    raise ObjectNotFound(f"no object at {self.uri(key)}")
                if current.generation != if_generation_match:
                    raise PreconditionFailed(
                        f"not deleting {self.uri(key)}: its generation is {current.generation}, "
                        f"not {if_generation_match}"
                    )
            blob.delete(if_generation_match=if_generation_match, **self._call)

    def list(self, prefix: str = "") -> list[str]:
        return sorted(self.generations(prefix))

    def generations_of(self, keys: list[str]) -> dict[str, int]:
        folder = posixpath.commonpath([key.rpartition("/")[0] for key in keys]) if keys else ""
        listed = self.generations(f"{folder}/" if folder else "")
        return {key: listed[key] for key in keys if key in listed}

    def generations(self, prefix: str = "") -> dict[str, int]:
        validate_prefix(prefix)
        with self._errors("list", prefix):
            blobs = [
                (blob.name, blob.generation)
                for blob in self._client.list_blobs(
                    self._bucket,
                    prefix=self._prefix + prefix,
                    fields="items(name,generation),nextPageToken",
                    **self._call,
                )
            ]
        start = len(self._prefix)
        # Skip what is not a key, such as the "folder/" placeholders the Cloud Console creates.
        return {name[start:]: int(generation) for name, generation in blobs if _is_key(name[start:])}

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
        except api_exceptions.RetryError as exc:
            cause = f": {_describe(exc.cause)}" if exc.cause is not None else ""
            raise StorageUnavailable(
                f"cannot {action} {where}: storage is unreachable (retried for {self._deadline_s:g} s){cause}"
            ) from exc
        except _TRANSPORT_ERRORS as exc:
            error = StorageUnavailable if _unavailable(exc) else StorageError
            raise error(f"cannot {action} {where}: {_describe(exc)}") from exc


def _unavailable(exc: BaseException) -> bool:
    """Whether an error means the service cannot be reached or used right now (not a refusal)."""
    if isinstance(exc, api_exceptions.GoogleAPICallError):
        return exc.code is not None and int(exc.code) in _UNAVAILABLE_STATUS
    if isinstance(exc, InvalidResponse):
        return getattr(exc.response, "status_code", None) in _UNAVAILABLE_STATUS
    return isinstance(exc, _UNREACHABLE_ERRORS)


def _describe(exc: BaseException) -> str:
    """One short line about a client exception (their str() can hold a whole response body)."""
    if isinstance(exc, api_exceptions.GoogleAPICallError) and exc.code is not None:
        text = f"HTTP {int(exc.code)} {_server_message(exc) or type(exc).__name__}"
    elif isinstance(exc, InvalidResponse) and getattr(exc.response, "status_code", None):
        text = f"HTTP {int(exc.response.status_code)} {_server_message(exc) or 'error'}"
    else:
        lines = str(exc).strip().splitlines()
        text = f"{type(exc).__name__}: {lines[0] if lines else 'no details'}"
    return text if len(text) <= 300 else text[:297] + "..."


def _server_message(exc: api_exceptions.GoogleAPICallError | InvalidResponse) -> str:
    """The message of a GCS JSON error body, if there is one."""
    errors = getattr(exc, "errors", None)
    if errors and isinstance(errors[0], dict) and errors[0].get("message"):
        return str(errors[0]["message"])
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
