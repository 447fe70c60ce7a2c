"""Serve the churn model with each prediction's SHAP contributions, from raw customer fields.

SageMaker's script-mode functions; the image's built-in `model_fn` loads `xgboost-model` as an
`xgboost.Booster`. Requests carry raw customer records (the same columns as the training
table), as JSON `{"customers": [{...}, ...]}` or CSV with a header row; the answer gives each
customer's churn probability and how much each feature pushed it up or down (log-odds; they
add up, with `bias`, to the model's margin).
"""

from __future__ import annotations

import io
import json

import pandas as pd
import xgboost as xgb
from features import ID, engineer, missing_columns

from container.errors import ClientError

JSON = "application/json"
CSV = "text/csv"


def input_fn(body: bytes, content_type: str) -> pd.DataFrame:
    """Raw customer records → a table of raw fields (the id, when sent, becomes the index)."""
    media_type = content_type.split(";")[0].strip().lower()
    if media_type == JSON:
        document = json.loads(body)
        records = document.get("customers") if isinstance(document, dict) else document
        if not isinstance(records, list) or not records:
            raise ClientError('Send {"customers": [{...}, ...]} with at least one customer.')
        frame = pd.DataFrame.from_records(records)
    elif media_type == CSV:
        frame = pd.read_csv(io.BytesIO(body))
    else:
        raise ClientError(
            f"Content-Type {content_type!r} is not accepted: send {JSON} customer records or "
            f"{CSV} with a header row.",
            status=415,
        )
    missing = missing_columns(frame)
    if missing:
        raise ClientError(f"Each customer needs the field(s): {', '.join(missing)}.")
    return frame.set_index(ID) if ID in frame.columns else frame


def predict_fn(data: pd.DataFrame, model: xgb.Booster) -> dict:
    """Churn probability and SHAP contributions (`pred_contribs`) for each customer."""
    features = engineer(data)[model.feature_names]
    matrix = xgb.DMatrix(features)
    contributions = model.predict(matrix, pred_contribs=True)
    return {
        "ids": [str(i) for i in data.index],
        "features": model.feature_names,
        "probability": model.predict(matrix),
        "contributions": contributions[:, :-1],
        "bias": contributions[:, -1],
    }


def output_fn(prediction: dict, accept: str) -> tuple[str, str]:
    """JSON with one object per customer, or CSV with a header (probability, then features)."""
    names = prediction["features"]
    if CSV in accept:
        table = pd.DataFrame(prediction["contributions"], columns=names)
        table.insert(0, "churn_probability", prediction["probability"])
        table.insert(0, ID, prediction["ids"])
        table["bias"] = prediction["bias"]
        return table.to_csv(index=False, float_format="%.6g"), CSV
    if JSON not in accept and "*/*" not in accept:
        raise ClientError(f"Accept {accept!r}: this model answers {JSON} or {CSV}.", status=406)
    rows = [
        {
            ID: customer,
            "churn_probability": round(float(p), 6),
            "churn": bool(p > 0.5),
            "contributions": {n: round(float(v), 6) for n, v in zip(names, c, strict=True)},
            "bias": round(float(b), 6),
        }
        for customer, p, c, b in zip(
            prediction["ids"],
            prediction["probability"],
            prediction["contributions"],
            prediction["bias"],
            strict=True,
        )
    ]
    return json.dumps({"predictions": rows}), JSON
