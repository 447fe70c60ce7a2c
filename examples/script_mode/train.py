"""Train a customer-churn classifier: pandas feature engineering and XGBoost's XGBClassifier.

An analyst's script as it runs in a notebook, unchanged in SageMaker script mode: the
hyperparameters arrive as `--name value` arguments, the data folders and the model folder as
`SM_CHANNEL_*` and `SM_MODEL_DIR`. Locally: `python train.py --train data/ --model-dir model/`.

It writes the model as XGBoost JSON `xgboost-model` (what `serve` loads) and copies its
inference code into `model/code/`, so the endpoint answers with SHAP contributions.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import pandas as pd
import xgboost as xgb
from features import ID, LABEL, engineer, missing_columns
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split

HERE = Path(__file__).resolve().parent
INFERENCE_CODE = ("inference.py", "features.py")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n_estimators", type=int, default=300)
    parser.add_argument("--max_depth", type=int, default=4)
    parser.add_argument("--learning_rate", type=float, default=0.1)
    parser.add_argument("--subsample", type=float, default=0.9)
    parser.add_argument("--early_stopping_rounds", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN", "data/train"))
    parser.add_argument("--validation", default=os.environ.get("SM_CHANNEL_VALIDATION"))
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR", "model"))
    parser.add_argument("--output-dir", default=os.environ.get("SM_OUTPUT_DATA_DIR", "output"))
    return parser.parse_args()


def read_table(folder: str) -> pd.DataFrame:
    files = sorted(Path(folder).glob("**/*.csv"))
    if not files:
        raise SystemExit(f"No .csv files in {folder}")
    frame = pd.concat((pd.read_csv(path) for path in files), ignore_index=True)
    missing = missing_columns(frame) + ([LABEL] if LABEL not in frame.columns else [])
    if missing:
        raise ValueError(f"{folder} lacks the column(s) {', '.join(missing)}")
    return frame.drop_duplicates(subset=ID) if ID in frame.columns else frame


def main() -> None:
    args = parse_args()
    table = read_table(args.train)
    if args.validation:
        train, valid = table, read_table(args.validation)
    else:
        train, valid = train_test_split(
            table, test_size=0.2, random_state=args.seed, stratify=table[LABEL]
        )
    x_train, y_train = engineer(train), train[LABEL]
    x_valid, y_valid = engineer(valid), valid[LABEL]
    print(f"Training on {len(x_train)} rows x {x_train.shape[1]} features: {list(x_train)}")

    model = xgb.XGBClassifier(
        n_estimators=args.n_estimators,
        max_depth=args.max_depth,
        learning_rate=args.learning_rate,
        subsample=args.subsample,
        early_stopping_rounds=args.early_stopping_rounds,
        eval_metric="auc",
        random_state=args.seed,
    )
    model.fit(x_train, y_train, eval_set=[(x_valid, y_valid)], verbose=False)

    probability = model.predict_proba(x_valid)[:, 1]
    metrics = {
        "validation_auc": float(roc_auc_score(y_valid, probability)),
        "validation_accuracy": float(accuracy_score(y_valid, probability > 0.5)),
        "best_iteration": int(model.best_iteration),
        "rows": len(x_train),
    }
    print(f"validation-auc: {metrics['validation_auc']:.4f}")
    print(f"validation-accuracy: {metrics['validation_accuracy']:.4f}")

    model_dir = Path(args.model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    booster = model.get_booster()[: model.best_iteration + 1]  # keep the best round only
    (model_dir / "xgboost-model").write_bytes(booster.save_raw("json"))
    code_dir = model_dir / "code"
    code_dir.mkdir(exist_ok=True)
    for name in INFERENCE_CODE:
        shutil.copy2(HERE / name, code_dir / name)
    Path(args.output_dir).mkdir(parents=True, exist_ok=True)
    (Path(args.output_dir) / "metrics.json").write_text(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
