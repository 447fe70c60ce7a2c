"""HTTP header parsing: `Content-Type` with parameters and `Accept` with q-values.

The view hands raw header strings here and gets back plain media types.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from container.errors import NotAcceptable, UnsupportedMediaType

DEFAULT_CONTENT_TYPE = "text/csv"
"""What a request without `Content-Type` is read as (the built-in algorithm's default)."""
CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"
OUTPUT_ATTRIBUTE = "inference_output"
"""Custom attribute that picks the output keys for one request: `inference_output=a,b`."""

_TEXT_CHARSETS = {"utf-8", "utf8", "us-ascii", "ascii"}


@dataclass(frozen=True)
class MediaRange:
    """One `Accept` entry: a media type (possibly with wildcards) and its q-value."""

    media_type: str
    quality: float


def _split_params(value: str) -> tuple[str, dict[str, str]]:
    media_type, *params = value.split(";")
    parsed: dict[str, str] = {}
    for param in params:
        name, sep, param_value = param.partition("=")
        if sep:
            parsed[name.strip().lower()] = param_value.strip().strip('"').lower()
    return media_type.strip().lower(), parsed


def parse_content_type(header: str | None, supported: Iterable[str]) -> str:
    """The request's media type, without parameters; 415 if it is not one of `supported`, or
    for a `label_size` other than 1 or a charset other than UTF-8 (as ASCII)."""
    supported = tuple(supported)
    if header is None or not header.strip():
        return DEFAULT_CONTENT_TYPE
    if header in supported:  # the usual case, a bare supported type: nothing to parse
        return header
    media_type, params = _split_params(header)
    if media_type not in supported:
        raise UnsupportedMediaType(
            f"Content-Type {media_type!r} is not supported. "
            f"Send one of: {', '.join(sorted(supported))}."
        )
    label_size = params.get("label_size")
    if label_size is not None and label_size != "1":
        raise UnsupportedMediaType(
            f"Content-Type {header.strip()!r} is not supported: label_size must be 1 "
            "(and requests hold no label column, so it may be left out)."
        )
    charset = params.get("charset")
    if charset is not None and charset not in _TEXT_CHARSETS:
        raise UnsupportedMediaType(
            f"charset {charset!r} is not supported in Content-Type {header.strip()!r}; "
            "send the body as UTF-8."
        )
    return media_type


def media_type_of(value: str) -> str:
    """The bare, lower-case media type of a header value (parameters dropped)."""
    return _split_params(value)[0]


def requested_output(attributes: str | None) -> str | None:
    """The `inference_output=...` value in a custom-attributes header (`;`-separated pairs)."""
    if not attributes:
        return None
    for pair in attributes.split(";"):
        name, sep, value = pair.partition("=")
        if sep and name.strip().lower() == OUTPUT_ATTRIBUTE:
            return value
    return None


def parse_accept(header: str | None) -> list[MediaRange]:
    """The `Accept` entries, best first (by q-value, then order); q=0 entries are dropped."""
    ranges: list[tuple[float, int, str]] = []
    for position, item in enumerate((header or "").split(",")):
        if not item.strip():
            continue
        media_type, params = _split_params(item)
        try:
            quality = float(params.get("q", "1"))
        except ValueError:
            quality = 1.0
        if quality > 0:
            ranges.append((-quality, position, media_type))
    ranges.sort()
    return [MediaRange(media_type, -neg_q) for neg_q, _, media_type in ranges]


def choose_accept(header: str | None, supported: Iterable[str], default: str) -> str:
    """The response media type: the best `Accept` entry we support; `default` for none or `*/*`.

    Raises `NotAcceptable` (406) naming what is supported when no entry matches.
    """
    supported = tuple(supported)
    if header is None or not header.strip():
        return default
    if header in supported:
        return header
    ranges = parse_accept(header)
    for media_range in ranges:
        wanted = media_range.media_type
        if wanted in ("*/*", "*"):
            return default
        if wanted in supported:
            return wanted
        if wanted.endswith("/*"):
            prefix = wanted[:-1]
            if default.startswith(prefix):
                return default
            for media_type in supported:
                if media_type.startswith(prefix):
                    return media_type
    raise NotAcceptable(
        f"Accept {(header or '').strip()!r} matches no response type this server writes. "
        f"Ask for one of: {', '.join(supported)}."
    )
