"""Score a trained model on held-out labelled CSV rows and write `evaluation.json`.

Runs as the training pipeline's "evaluate" processing step in our image (SageMaker replaces the
image's entrypoint with `python3 evaluate.py ...`). It loads the model with the loader `serve`
uses, so a model that evaluates is a model that serves.

    python3 evaluate.py MODEL_DIR TEST_DIR OUTPUT_DIR

MODEL_DIR holds the training job's `model.tar.gz`; TEST_DIR holds CSV files without a header,
label first (the training channels' format). OUTPUT_DIR gets `evaluation.json`:
`{"metrics": {"accuracy": {"value": ...}}, "rows": N}`, which the pipeline reads as a
PropertyFile (`metrics.accuracy.value`).
"""

from __future__ import annotations

import json
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import xgboost as xgb

# The image's program folder, so that the serving package imports.
sys.path.insert(0, "/opt/program")
from container.serving.model_loading import load_model
from container.settings import MODEL_FILENAME

EVALUATION_FILE = "evaluation.json"


def read_labelled_csv(test_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    files = sorted(path for path in test_dir.rglob("*") if path.is_file())
    if not files:
        raise SystemExit(f"No test files under {test_dir}: expected CSV files, label first.")
    rows = np.vstack([np.loadtxt(path, delimiter=",", ndmin=2) for path in files])
    return rows[:, 1:], rows[:, 0].astype(int)


def evaluate(model_dir: Path, test_dir: Path) -> dict:
    with tempfile.TemporaryDirectory() as unpacked:
        # Only the model file: nothing else in the archive is written anywhere.
        with tarfile.open(model_dir / "model.tar.gz") as archive:
            archive.extract(MODEL_FILENAME, unpacked)
        model = load_model(Path(unpacked))
    features, labels = read_labelled_csv(test_dir)
    scores = model.booster.predict(xgb.DMatrix(features))
    # multi:softmax predicts the class; multi:softprob one probability per class.
    predictions = (scores.argmax(axis=1) if scores.ndim == 2 else scores).astype(int)
    # Four decimals: the value is quoted as it is in the FailStep's sentence.
    accuracy = round(float(np.mean(predictions == labels)), 4)
    return {"metrics": {"accuracy": {"value": accuracy}}, "rows": len(labels)}


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    model_dir, test_dir, output_dir = (Path(arg) for arg in argv)
    report = evaluate(model_dir, test_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / EVALUATION_FILE).write_text(json.dumps(report))
    print(f"Accuracy {report['metrics']['accuracy']['value']:.4f} on {report['rows']} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
