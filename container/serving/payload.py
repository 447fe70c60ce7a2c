"""Read a request body without ever holding more than the payload limit (413 beyond it).

A body with a Content-Length is received straight into one preallocated buffer (`readinto`;
the worker's `DirectBody` takes it from the socket), so a 45 MB batch body costs 45 MB, not the
copies that `read()` makes on its way. A chunked body is read in chunks up to the limit.
"""

from __future__ import annotations

from typing import BinaryIO

from gunicorn.http.errors import NoMoreData, ParseException

from container.errors import BadRequest, PayloadTooLarge

_CHUNK = 1024 * 1024


def too_large_sentence(limit_bytes: int, got: str) -> str:
    """The 413's sentence; `got` says how large the body is ("7340032 bytes"). nginx, in
    front, answers with the same sentence (`front.py`)."""
    mb, rest = divmod(limit_bytes, 1024 * 1024)
    limit = f"{mb} MB" if not rest else f"{limit_bytes} bytes"
    return (
        f"The request body is {got}; the limit is {limit} (6 MB for a real-time endpoint, "
        "SAGEMAKER_MAX_PAYLOAD_IN_MB for batch transform, or MAX_CONTENT_LENGTH in bytes). "
        "Send fewer rows per request."
    )


def _too_large(limit_bytes: int, got: str) -> PayloadTooLarge:
    return PayloadTooLarge(too_large_sentence(limit_bytes, got))


def read_body(stream: BinaryIO, content_length: int | None, limit_bytes: int) -> bytearray:
    """The whole body; refused before reading when `Content-Length` is over the limit, and as
    soon as a body without one (chunked) passes it. Broken chunked framing is a 400."""
    try:
        return _read(stream, content_length, limit_bytes)
    except ParseException as exc:
        raise BadRequest(
            f"The request body's chunked encoding is broken ({exc}); send chunks as HTTP/1.1 "
            "defines them, or a Content-Length and the body as it is."
        ) from None
    except NoMoreData:
        raise BadRequest(
            "The chunked request body ended before its last (zero-length) chunk; send the "
            "whole body."
        ) from None


def _read(stream: BinaryIO, content_length: int | None, limit_bytes: int) -> bytearray:
    if content_length is not None:
        if content_length > limit_bytes:
            raise _too_large(limit_bytes, f"{content_length} bytes")
        body = bytearray(content_length)
        view = memoryview(body)
        got = 0
        while got < content_length:
            count = stream.readinto(view[got:])
            if not count:
                raise BadRequest(
                    f"The request body ended after {got} of the {content_length} bytes its "
                    "Content-Length announced."
                )
            got += count
        return body
    body = bytearray()
    while chunk := stream.read(_CHUNK):
        body += chunk
        if len(body) > limit_bytes:
            raise _too_large(limit_bytes, f"over {len(body)} bytes")
    return body
