"""Header parsing: Content-Type parameters and Accept q-values."""

from __future__ import annotations

import pytest

from container.errors import NotAcceptable, UnsupportedMediaType
from container.serving.headers import choose_accept, parse_content_type

SUPPORTED_IN = ("text/csv", "application/json")
SUPPORTED_OUT = ("text/csv", "application/json", "application/jsonlines")


@pytest.mark.parametrize(
    ("header", "media_type"),
    [
        (None, "text/csv"),
        ("", "text/csv"),
        ("text/csv", "text/csv"),
        ("TEXT/CSV", "text/csv"),
        ("text/csv; charset=utf-8", "text/csv"),
        ('text/csv;charset="UTF-8"', "text/csv"),
        ("application/json; charset=us-ascii", "application/json"),
        ("text/csv; header=absent", "text/csv"),
    ],
    ids=[
        "none",
        "blank",
        "plain",
        "upper-case",
        "charset",
        "quoted-charset",
        "ascii",
        "other-param",
    ],
)
def test_parse_content_type(header: str | None, media_type: str) -> None:
    assert parse_content_type(header, SUPPORTED_IN) == media_type


def test_unsupported_content_type_lists_supported() -> None:
    with pytest.raises(UnsupportedMediaType) as error:
        parse_content_type("image/png", SUPPORTED_IN)
    assert error.value.message == (
        "Content-Type 'image/png' is not supported. Send one of: application/json, text/csv."
    )
    assert error.value.status == 415


@pytest.mark.parametrize(
    ("header", "chosen"),
    [
        (None, "text/csv"),
        ("*/*", "text/csv"),
        ("application/json", "application/json"),
        ("application/json;q=0.1, application/jsonlines;q=0.9", "application/jsonlines"),
        ("application/xml, application/json;q=0.5", "application/json"),
        ("text/*", "text/csv"),
        ("application/*", "application/json"),
        ("application/json;q=abc", "text/csv"),  # werkzeug drops a q that is no number
        ("image/png, */*;q=0.1", "text/csv"),
    ],
    ids=[
        "none",
        "any",
        "json",
        "q-values",
        "skip-unsupported",
        "text-wildcard",
        "app-wildcard",
        "bad-q",
        "fallback-any",
    ],
)
def test_choose_accept(header: str | None, chosen: str) -> None:
    assert choose_accept(header, SUPPORTED_OUT, "text/csv") == chosen


@pytest.mark.parametrize("header", ["image/png", "text/csv;q=0", "image/*"], ids=str)
def test_unacceptable(header: str) -> None:
    with pytest.raises(NotAcceptable) as error:
        choose_accept(header, SUPPORTED_OUT, "text/csv")
    assert error.value.status == 406
    assert (
        "Ask for one of: text/csv, application/json, application/jsonlines." in error.value.message
    )


@pytest.mark.parametrize(
    ("header", "chosen"),
    [
        ("application/jsonlines;q=0.9, application/json", "application/json"),
        ("text/*;q=0.5, application/jsonlines;q=0.6", "application/jsonlines"),
        ("application/json; charset=utf-8", "application/json"),
        ("APPLICATION/JSON", "application/json"),
    ],
    ids=str,
)
def test_accept_is_parsed_by_werkzeug_beyond_the_exact_match(header: str, chosen: str) -> None:
    assert choose_accept(header, SUPPORTED_OUT, "text/csv") == chosen


@pytest.mark.parametrize(
    "header",
    ['text/csv; label_size="2"', "text/csv; Label_Size=3", "text/csv; charset=latin-1"],
    ids=str,
)
def test_content_type_parameters_are_read_by_werkzeug(header: str) -> None:
    with pytest.raises(UnsupportedMediaType):
        parse_content_type(header, SUPPORTED_IN)
