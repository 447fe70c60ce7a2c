"""The script-mode example's answers (examples/script_mode/inference.py): churn probabilities
with SHAP contributions, checked the same way wherever the example serves."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import requests


def post_customers(url: str, customers: pd.DataFrame, timeout: float = 60) -> requests.Response:
    """POST `customers` (no label column) as the example's JSON, asking for JSON back."""
    records = json.loads(customers.to_json(orient="records"))
    return requests.post(
        f"{url}/invocations",
        json={"customers": records},
        headers={"Accept": "application/json"},
        timeout=timeout,
    )


def assert_shap_answers(predictions: list[dict], customers: pd.DataFrame) -> None:
    """One answer per customer, in order, whose SHAP contributions add up, with the bias, to
    the model's margin: the log-odds of its churn probability."""
    assert [p["customer_id"] for p in predictions] == list(customers.customer_id)
    for prediction in predictions:
        probability = prediction["churn_probability"]
        margin = sum(prediction["contributions"].values()) + prediction["bias"]
        assert margin == pytest.approx(np.log(probability / (1 - probability)), abs=1e-3)
