"""Feature engineering shared by training (`train.py`) and serving (`inference.py`).

Raw customer fields in, model features out. Categories are spelled out, so a request with a
single customer gets the same columns as the training table.
"""

from __future__ import annotations

import pandas as pd

LABEL = "churned"
ID = "customer_id"
RAW_COLUMNS = (
    "tenure_months",
    "monthly_charges",
    "total_charges",
    "contract",
    "payment_method",
    "internet_service",
    "support_calls",
)
CONTRACTS = ("month-to-month", "one-year", "two-year")


def missing_columns(frame: pd.DataFrame) -> list[str]:
    return [column for column in RAW_COLUMNS if column not in frame.columns]


def engineer(frame: pd.DataFrame) -> pd.DataFrame:
    """The model's features from the raw columns (numbers as float, categories one-hot)."""
    tenure = pd.to_numeric(frame["tenure_months"], errors="coerce")
    monthly = pd.to_numeric(frame["monthly_charges"], errors="coerce")
    total = pd.to_numeric(frame["total_charges"], errors="coerce")
    calls = pd.to_numeric(frame["support_calls"], errors="coerce")
    average = total / tenure.clip(lower=1)
    features = pd.DataFrame(
        {
            "tenure_months": tenure,
            "monthly_charges": monthly,
            "avg_monthly_spend": average,
            "charge_increase": monthly - average,
            "support_calls": calls,
            "calls_per_year": calls / (tenure / 12).clip(lower=1 / 12),
            "electronic_check": (frame["payment_method"] == "electronic-check").astype(float),
            "fiber": (frame["internet_service"] == "fiber").astype(float),
        },
        index=frame.index,
    )
    for contract in CONTRACTS:
        features[f"contract_{contract.replace('-', '_')}"] = (frame["contract"] == contract).astype(
            float
        )
    return features.astype("float32")
