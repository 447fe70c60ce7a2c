"""The first line of `output/failure` is what SageMaker shows as `FailureReason` (1,024
characters): it stays one line of at most that length whatever the input holds."""

from __future__ import annotations

import json

import pytest

from container.errors import ClientError
from container.training.hyperparameters import MAX_NUM_ROUND, parse_hyperparameters
from container.training.job import FAILURE_REASON_CHARACTERS, failure_reason
from tests.support.opt_ml import make_job

from .helpers import binary_rows, csv_text

GOOD_CSV = csv_text(binary_rows(n=60))


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        ("Bad key 'a\nb'.", "Bad key 'a\\nb'."),
        ("Tab\there, NUL\x00, DEL\x7f.", "Tab\\there, NUL\\x00, DEL\\x7f."),
        ("Line\u2028separator.", "Line\\u2028separator."),
        ("Ünïcode stays as it is.", "Ünïcode stays as it is."),
        ("  padded sentence.\n", "padded sentence."),
    ],
    ids=["newline", "controls", "line-separator", "unicode", "outer-whitespace"],
)
def test_failure_reason_escapes_what_would_break_the_line(sentence: str, expected: str) -> None:
    assert failure_reason(sentence) == expected


def test_failure_reason_is_cut_to_what_sagemaker_shows() -> None:
    reason = failure_reason("x" * 10_000_000)
    assert len(reason) == FAILURE_REASON_CHARACTERS
    assert reason.endswith("... (cut to 1,024 characters)")
    escaped = failure_reason("a" + "\x00" * 2000 + "b")  # each escape is 4 characters
    assert len(escaped) == FAILURE_REASON_CHARACTERS
    assert escaped.startswith("a\\x00\\x00")


def test_num_round_has_an_upper_bound() -> None:
    assert parse_hyperparameters({"num_round": MAX_NUM_ROUND}).num_round == MAX_NUM_ROUND
    for too_many in (MAX_NUM_ROUND + 1, "1e30"):
        with pytest.raises(ClientError) as caught:
            parse_hyperparameters({"num_round": too_many})
        assert "it must satisfy 1 <= num_round <= 1000000." in caught.value.message


def test_long_keys_and_values_are_quoted_short() -> None:
    with pytest.raises(ClientError) as caught:
        parse_hyperparameters({"num_round": 2, "k" * 1_000_000: 1, "eta": "v" * 1_000_000})
    message = caught.value.message
    assert len(message) < 600, message[:600]
    assert "Unknown hyperparameter 'kkkk" in message
    assert "(1,000,002 characters)" in message  # the key, quotes included
    assert "Hyperparameter 'eta'='vvvv" in message


def _first_line_of_failure(job_root, hyperparameters_json: str) -> str:
    job = make_job(job_root, {"num_round": 1}, {"train": {"files": {"a.csv": GOOD_CSV}}})
    (job.base / "input" / "config" / "hyperparameters.json").write_text(hyperparameters_json)
    result = job.run()
    assert result.returncode == 1, result.stdout
    failure = job.failure
    assert failure is not None
    first_line = failure.splitlines()[0]
    assert len(first_line) <= FAILURE_REASON_CHARACTERS
    assert "Traceback" not in first_line
    return first_line


@pytest.mark.slow
def test_a_10_mb_key_makes_a_short_first_line(job_root) -> None:
    huge = json.dumps({"num_round": "2", "x" * 10_000_000: "1"})
    first_line = _first_line_of_failure(job_root, huge)
    assert first_line.startswith("Unknown hyperparameter 'xxxx")
    assert "(10,000,002 characters)" in first_line


@pytest.mark.slow
def test_a_key_holding_a_newline_stays_on_the_first_line(job_root) -> None:
    first_line = _first_line_of_failure(job_root, json.dumps({"num_round": "2", "a\nb": "1"}))
    assert first_line.startswith("Unknown hyperparameter 'a\\nb'.")


@pytest.mark.slow
@pytest.mark.parametrize("content", ["[1, 2]", '"num_round"', "null", "7"])
def test_hyperparameters_that_are_not_an_object_get_a_sentence(job_root, content: str) -> None:
    first_line = _first_line_of_failure(job_root, content)
    assert first_line.endswith(
        "must hold a JSON object of names and values, such as "
        '{"num_round": "100"}; it holds another kind of JSON value.'
    )


@pytest.mark.slow
def test_an_unreadable_resource_config_is_a_sentence_naming_it(job_root) -> None:
    job = make_job(job_root, {"num_round": 1}, {"train": {"files": {"a.csv": GOOD_CSV}}})
    (job.base / "input" / "config" / "resourceconfig.json").write_text("{not json")
    result = job.run()
    assert result.returncode == 1, result.stdout
    first_line = (job.failure or "").splitlines()[0]
    assert "resourceconfig.json is not valid JSON" in first_line
