"""A channel's ContentType, parsed by werkzeug's `parse_options_header` as serving parses its
Content-Type: case, spacing, quoting and parameter order do not matter; label_size must be 1."""

from __future__ import annotations

import pytest

from container.errors import ClientError
from container.training.data_loading import normalize_content_type


@pytest.mark.parametrize(
    ("raw", "media_type"),
    [
        ("text/csv", "text/csv"),
        ("csv", "text/csv"),
        ("Text/CSV; label_size=1", "text/csv"),
        ('text/csv;charset="utf-8"; LABEL_SIZE="1"', "text/csv"),
        ("libsvm", "text/libsvm"),
        ("text/x-libsvm", "text/libsvm"),
        ("application/x-parquet; label_size=1", "application/x-parquet"),
    ],
    ids=str,
)
def test_content_types_with_parameters_name_their_reader(raw: str, media_type: str) -> None:
    assert normalize_content_type(raw, "train") == media_type


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("text/csv; label_size=2", "only label_size=1 is supported"),
        ('text/csv; label_size="0"', "only label_size=1 is supported"),
        ("image/png", "which is not supported; use one of"),
        ("; label_size=1", "which is not supported; use one of"),
    ],
    ids=str,
)
def test_other_content_types_are_refused_with_a_sentence(raw: str, message: str) -> None:
    with pytest.raises(ClientError, match=message):
        normalize_content_type(raw, "train")
