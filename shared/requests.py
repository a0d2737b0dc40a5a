"""Reading an HTTP request's body safely, for the functions (no web framework in here)."""

from __future__ import annotations

import json
import sys
from typing import Any, BinaryIO

from shared.errors import DataError


def parse_json(data: bytes) -> Any:
    """A JSON document; DataError when it is not one, or is nested too deeply to parse (the
    standard parser recurses, and a RecursionError is no answer to give a client)."""
    try:
        return json.loads(data)
    except RecursionError:
        raise DataError(
            f"the JSON is nested too deeply (more than {sys.getrecursionlimit()} levels)"
        ) from None
    except (ValueError, UnicodeDecodeError) as error:
        raise DataError(f"the body is not valid JSON: {error}") from None


def drop(stream: BinaryIO | None, chunk: int = 1024 * 1024) -> None:
    """Read a refused body to its end a chunk at a time, keeping none of it."""
    while stream is not None and stream.read(chunk):
        pass
