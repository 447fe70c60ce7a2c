"""The warning when the validation channel holds the train channel's files, in the real job."""

from __future__ import annotations

from pathlib import Path

import pytest

from container.training.channel_overlap import shared_files
from tests.support.opt_ml import make_job

from .helpers import binary_rows, csv_text, write_tree

ROWS = binary_rows(120)
TRAIN = csv_text(ROWS[:80])
VALIDATION = csv_text(ROWS[80:])
WARNING = "Channel 'validation' holds"


def run_job(job_root: Path, train: dict[str, str], validation: dict[str, str]) -> str:
    job = make_job(
        job_root,
        {"num_round": 2, "objective": "binary:logistic"},
        {
            "train": {"content_type": "text/csv", "files": train},
            "validation": {"content_type": "text/csv", "files": validation},
        },
    )
    result = job.run()
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.parametrize(
    ("train", "validation", "expected"),
    [
        (
            {"a.csv": TRAIN},
            {"a.csv": TRAIN},
            "Channel 'validation' holds 1 file(s) that look identical to files of channel "
            "'train' (same size, same first and last 64 KiB): a.csv = train/a.csv. The "
            "validation score is then computed on training rows; use separate data for "
            "validation.",
        ),
        (
            {"part/x.csv": TRAIN, "b.csv": VALIDATION},
            {"copy.csv": TRAIN},
            "holds 1 file(s) that look identical to files of channel 'train' (same size, same "
            "first and last 64 KiB): copy.csv = train/part/x.csv.",
        ),
    ],
    ids=["same-name", "renamed-copy"],
)
def test_identical_files_are_a_warning_and_training_goes_on(
    job_root: Path, train: dict, validation: dict, expected: str
) -> None:
    output = run_job(job_root, train, validation)
    line = next(line for line in output.splitlines() if WARNING in line)
    assert " WARNING container.training.channel_overlap: " in line
    assert expected in line


def test_distinct_files_of_one_name_and_size_are_not_flagged(job_root: Path) -> None:
    other = TRAIN.replace("1,", "0,", 1)  # one label changed: same size, different rows
    assert len(other) == len(TRAIN) and other != TRAIN
    output = run_job(job_root, {"a.csv": TRAIN}, {"a.csv": other})
    assert WARNING not in output


def test_the_same_folder_for_both_channels_is_a_warning(job_root: Path) -> None:
    job = make_job(
        job_root,
        {"num_round": 2, "objective": "binary:logistic"},
        {
            "train": {"content_type": "text/csv", "files": {"a.csv": TRAIN}},
            "validation": {"content_type": "text/csv"},
        },
    )
    validation = job.channel_dir("validation")
    validation.rmdir()
    validation.symlink_to(job.channel_dir("train"), target_is_directory=True)
    result = job.run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Channels 'train' and 'validation' are the same folder" in result.stdout


def test_large_files_differing_only_in_the_middle_are_compared_by_their_ends(
    tmp_path: Path,
) -> None:
    body = "1,2,3\n" * 40000  # 240 KB: the middle is not read
    middle = body[:120000] + "9" + body[120001:]
    write_tree(tmp_path / "train", {"a.csv": body, "b.csv": "0,1\n" * 10})
    write_tree(tmp_path / "validation", {"v.csv": middle, "w.csv": "1,0\n" * 10})
    pairs = shared_files(tmp_path / "train", tmp_path / "validation")
    assert [(t.name, v.name) for t, v in pairs] == [("a.csv", "v.csv")]
