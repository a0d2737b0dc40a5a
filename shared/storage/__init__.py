"""Object storage: a local folder or a Google Cloud Storage bucket, behind one contract.

``GCSStorage`` is imported on first use so that importing this package does not load the
Google client libraries.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from shared.errors import StorageError
from shared.storage.base import ObjectInfo, Storage, validate_key
from shared.storage.local import LocalStorage

if TYPE_CHECKING:
    from shared.storage.gcs import GCSStorage

__all__ = ["GCSStorage", "LocalStorage", "ObjectInfo", "Storage", "open_storage", "validate_key"]


def __getattr__(name: str) -> Any:
    if name == "GCSStorage":
        from shared.storage.gcs import GCSStorage

        return GCSStorage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_storage(url: str) -> Storage:
    """The storage a URL names: ``gs://bucket[/prefix]``, ``file:///path`` or a plain path."""
    if not isinstance(url, str) or not url.strip():
        raise StorageError(
            f"malformed storage URL {url!r}: expected gs://bucket[/prefix], file:///path or a path"
        )
    if "://" not in url:
        return LocalStorage(url)
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        raise StorageError(f"malformed storage URL {url!r}: no query or fragment allowed")
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise StorageError(f"malformed storage URL {url!r}: expected file:///absolute/path")
        return LocalStorage(Path(unquote(parts.path)))
    if parts.scheme == "gs":
        from shared.storage.gcs import GCSStorage, is_bucket_name

        if not is_bucket_name(parts.netloc):
            raise StorageError(f"malformed storage URL {url!r}: {parts.netloc!r} is not a bucket name")
        prefix = parts.path.removeprefix("/").removesuffix("/")
        if prefix:
            try:
                validate_key(prefix)
            except StorageError as exc:
                raise StorageError(f"malformed storage URL {url!r}: bad prefix {prefix!r}") from exc
        return GCSStorage(parts.netloc, prefix)
    raise StorageError(
        f"malformed storage URL {url!r}: expected gs://bucket[/prefix], file:///path or a path"
    )
