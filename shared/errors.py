"""The project's own error types. Every message is written for a researcher to act on."""

from __future__ import annotations


class MissionError(Exception):
    """Base of every error this package raises on purpose."""


class SpecError(MissionError, ValueError):
    """A run spec or a set of hyperparameters is invalid. Lists every problem found."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))


class DataError(MissionError, ValueError):
    """A table could not be read, or does not fit what a run needs."""


class BundleError(MissionError, ValueError):
    """A model bundle is malformed, tampered with, or holds untrusted types."""


class StorageError(MissionError):
    """Storage failed or refused an operation."""


class InvalidKey(StorageError, ValueError):
    """A storage key is malformed or would escape the storage root."""


class ObjectNotFound(StorageError, KeyError):
    """No object exists under the key."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "object not found"


class PreconditionFailed(StorageError):
    """A conditional write lost: the object exists, or changed since it was read."""


class StorageUnavailable(StorageError):
    """Storage cannot be reached or used right now (server down, timeouts, 5xx after retries,
    a missing storage folder, a full disk). Trying again later may succeed."""


class CorruptObject(StorageError, ValueError):
    """A stored object is not what it should be (a truncated or otherwise unreadable document)."""


class FunctionRefused(MissionError):
    """A function answered 4xx: the request was wrong, and its message says how."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class FunctionUnavailable(MissionError):
    """A function could not be reached, failed (5xx) or did not answer in time: trying again later
    may succeed."""
