"""scikit-learn's bundled digits set (10 classes, offline) written as SageMaker CSV channels.

The files follow the built-in XGBoost algorithm's CSV convention: no header, label in the first
column. The test rows are written twice: without their label, as a batch transform input would
be, and with it (label first) for an evaluation job to score.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

TRAIN_FILE = "train/digits-train.csv"
VALIDATION_FILE = "validation/digits-validation.csv"
TEST_FEATURES_FILE = "batch/digits-test.csv"
TEST_FILE = "test/digits-test.csv"


@dataclass(frozen=True)
class DigitsSplit:
    """Where each channel's folder is, plus the held-out rows kept in memory for scoring."""

    train_dir: Path
    validation_dir: Path
    batch_dir: Path
    test_dir: Path
    test_features: np.ndarray
    test_labels: np.ndarray

    @property
    def batch_file(self) -> Path:
        return self.batch_dir / Path(TEST_FEATURES_FILE).name


def _write_csv(path: Path, rows: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, rows, delimiter=",", fmt="%g")


def write_digits_csv(data_dir: Path, seed: int = 0) -> DigitsSplit:
    """Split digits 80/10/10 (stratified) into train, validation and unlabelled test CSV files.

    The example's 10 rounds at eta=0.2 leave XGBoost short of converged on 1,797 rows, so most of
    the rows go to training; held-out accuracy then lands near 0.91 (0.86 to 0.94 over seeds).
    """
    features, labels = load_digits(return_X_y=True)
    x_train, x_rest, y_train, y_rest = train_test_split(
        features, labels, test_size=0.2, random_state=seed, stratify=labels
    )
    x_valid, x_test, y_valid, y_test = train_test_split(
        x_rest, y_rest, test_size=0.5, random_state=seed, stratify=y_rest
    )
    _write_csv(data_dir / TRAIN_FILE, np.column_stack([y_train, x_train]))
    _write_csv(data_dir / VALIDATION_FILE, np.column_stack([y_valid, x_valid]))
    _write_csv(data_dir / TEST_FEATURES_FILE, x_test)
    _write_csv(data_dir / TEST_FILE, np.column_stack([y_test, x_test]))
    return DigitsSplit(
        train_dir=(data_dir / TRAIN_FILE).parent,
        validation_dir=(data_dir / VALIDATION_FILE).parent,
        batch_dir=(data_dir / TEST_FEATURES_FILE).parent,
        test_dir=(data_dir / TEST_FILE).parent,
        test_features=x_test,
        test_labels=y_test.astype(int),
    )
