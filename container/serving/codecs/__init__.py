"""One codec per content type, registered in one mapping each.

A decoder turns a request body into a feature matrix (`decode(body, limits)`), an encoder turns
predictions into a response body (`encode(output, batch)`). Adding a type is one module and one
line here.
"""

from __future__ import annotations

from collections.abc import Callable

from container.errors import BadRequest
from container.serving.codecs import (
    csv_codec,
    json_codec,
    jsonlines_codec,
    libsvm_codec,
    npy_codec,
    recordio_codec,
)
from container.serving.codecs.limits import Limits
from container.serving.predictions import Features, Output

Decoder = Callable[[bytes | bytearray, Limits], Features]
Encoder = Callable[[Output, bool], bytes]

DECODERS: dict[str, Decoder] = {
    "text/csv": csv_codec.decode,
    "application/json": json_codec.decode,
    "application/jsonlines": jsonlines_codec.decode,
    "text/libsvm": libsvm_codec.decode,
    "text/x-libsvm": libsvm_codec.decode,
    "application/x-npy": npy_codec.decode,
    "application/x-recordio-protobuf": recordio_codec.decode,
    # The short names training's ContentType accepts, as the built-in algorithm's server does.
    "csv": csv_codec.decode,
    "libsvm": libsvm_codec.decode,
}

ENCODERS: dict[str, Encoder] = {
    "text/csv": csv_codec.encode,
    "application/json": json_codec.encode,
    "application/jsonlines": jsonlines_codec.encode,
    "application/x-recordio-protobuf": recordio_codec.encode,
}


def decode_rows(media_type: str, body: bytes | bytearray, limits: Limits) -> Features:
    """The feature rows of a request body of `media_type` (one of `DECODERS`); an empty or
    blank body is a 400."""
    if not body or body.isspace():
        raise BadRequest("The request body is empty; send at least one row of features.")
    return DECODERS[media_type](body, limits)


__all__ = ["DECODERS", "ENCODERS", "Limits", "decode_rows"]
