"""Uploads with a size limit enforced while the body streams in, not after it arrived."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request


class UploadTooLarge(Exception):
    def __init__(self, limit_mb: int) -> None:
        super().__init__(f"The file is larger than the {limit_mb} MB upload limit (MAX_UPLOAD_MB).")


def limited_request(request: Request, limit_bytes: int, limit_mb: int) -> Request:
    """The same request, whose body reading raises UploadTooLarge past ``limit_bytes``.

    A declared Content-Length over the limit is refused before a byte is read.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit_bytes + 64 * 1024:  # multipart framing
        raise UploadTooLarge(limit_mb)
    received = 0
    receive: Callable[[], Awaitable[dict[str, Any]]] = request.receive

    async def counting_receive() -> dict[str, Any]:
        nonlocal received
        # one chunk per turn of the loop: when many are already buffered, the form parser would
        # otherwise parse them all in one go and keep every other request waiting
        await asyncio.sleep(0)
        message = await receive()
        received += len(message.get("body", b""))
        if received > limit_bytes + 64 * 1024:
            raise UploadTooLarge(limit_mb)
        return message

    return Request(request.scope, counting_receive)
