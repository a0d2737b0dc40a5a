"""The storage contract every backend honours (local folder, Google Cloud Storage).

Keys are relative, slash-separated names such as ``runs/<id>/spec.json``. Every object has
a *generation*: a positive integer that changes on every write, used for compare-and-swap
(``if_generation_match``): ``0`` means "only if the object does not exist yet".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from shared.errors import InvalidKey

_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._=-]{0,199}")


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative key, else raise InvalidKey naming it."""
    if not isinstance(key, str) or not key or len(key) > 1000:
        raise InvalidKey(f"invalid storage key {key!r}")
    for segment in key.split("/"):
        if not _SEGMENT.fullmatch(segment) or segment.strip(".") == "":
            raise InvalidKey(f"invalid storage key {key!r}: bad segment {segment!r}")
        if ".." in segment:
            raise InvalidKey(f"invalid storage key {key!r}: '..' is not allowed")
    return key


def validate_prefix(prefix: str) -> str:
    """A listing prefix: empty, or a valid key optionally ending in '/'."""
    if prefix == "":
        return prefix
    validate_key(prefix.rstrip("/"))
    return prefix


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    generation: int


class Storage(Protocol):
    """What the pipeline, the web app and the functions need from storage."""

    url: str

    def read_bytes(self, key: str) -> bytes:
        """The object's content; ObjectNotFound if absent."""
        ...

    def read_with_generation(self, key: str) -> tuple[bytes, int]:
        """Content and generation read together (consistent pair)."""
        ...

    def write_bytes(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str = "application/octet-stream",
        if_generation_match: int | None = None,
    ) -> int:
        """Write atomically (readers see the old or the new object, never a part).

        Returns the new generation. With ``if_generation_match`` the write happens only if
        the current generation equals it (0: only if absent); otherwise PreconditionFailed.
        """
        ...

    def create(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> int:
        """Write only if the object does not exist yet; PreconditionFailed if it does."""
        ...

    def upload_file(
        self, key: str, source: BinaryIO, *, content_type: str = "application/octet-stream"
    ) -> int:
        """Stream a file object into storage (for large uploads); atomic like write_bytes."""
        ...

    def download_to_file(self, key: str, target: BinaryIO) -> None:
        """Stream an object into an open binary file; ObjectNotFound if absent."""
        ...

    def stat(self, key: str) -> ObjectInfo:
        """Size and generation; ObjectNotFound if absent."""
        ...

    def exists(self, key: str) -> bool: ...

    def list(self, prefix: str = "") -> list[str]:
        """Keys under ``prefix``, sorted."""
        ...

    def generations(self, prefix: str = "") -> dict[str, int]:
        """Every key under ``prefix`` with its generation, in one listing (one request on GCS)."""
        ...

    def generations_of(self, keys: list[str]) -> dict[str, int]:
        """The generations of those of ``keys`` that exist, as cheaply as the backend allows
        (a look at each file locally; one listing of their common folder on GCS): what a page
        depends on, without reading any of it."""
        ...

    def delete(self, key: str, *, if_generation_match: int | None = None) -> None:
        """Remove the object; ObjectNotFound if absent."""
        ...

    def uri(self, key: str) -> str:
        """A URI naming the object for logs and for the functions (never shown to browsers)."""
        ...
