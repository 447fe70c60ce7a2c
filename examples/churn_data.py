"""A synthetic customer-churn table, as an analyst would export it: a header, raw columns, gaps.

Used by the script-mode example (`examples/script_mode/`) and its tests. Churn follows a known
logistic rule (short tenure, month-to-month contracts, electronic checks, support calls and
rising charges raise it), so a model trained on it has a held-out AUC well above chance.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

CONTRACTS = ("month-to-month", "one-year", "two-year")
PAYMENT_METHODS = ("electronic-check", "credit-card", "bank-transfer", "mailed-check")
INTERNET = ("fiber", "dsl", "none")


def churn_table(rows: int, seed: int = 0) -> pd.DataFrame:
    """`rows` customers with raw fields and the label column `churned` (0 or 1)."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 72, rows)
    contract = rng.choice(CONTRACTS, rows, p=[0.55, 0.25, 0.20])
    payment = rng.choice(PAYMENT_METHODS, rows)
    internet = rng.choice(INTERNET, rows, p=[0.45, 0.35, 0.20])
    monthly = np.round(
        20 + 50 * (internet == "fiber") + 25 * (internet == "dsl") + rng.normal(0, 8, rows), 2
    )
    drift = rng.normal(0, 6, rows)  # this month's charge against the customer's average
    total = np.round(np.maximum(tenure, 1) * (monthly - drift), 2)
    support_calls = rng.poisson(1.2, rows)
    logit = (
        -1.2
        - 0.05 * tenure
        + 1.4 * (contract == "month-to-month")
        - 0.8 * (contract == "two-year")
        + 0.7 * (payment == "electronic-check")
        + 0.45 * support_calls
        + 0.08 * drift
        + 0.5 * (internet == "fiber")
    )
    churned = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = pd.DataFrame(
        {
            "customer_id": [f"C{seed:02d}{i:06d}" for i in range(rows)],
            "tenure_months": tenure,
            "monthly_charges": monthly,
            "total_charges": total,
            "contract": contract,
            "payment_method": payment,
            "internet_service": internet,
            "support_calls": support_calls,
            "churned": churned,
        }
    )
    frame.loc[frame.tenure_months == 0, "total_charges"] = np.nan  # new customers: no bill yet
    return frame


def write_churn_csv(directory: Path, rows: int, seed: int = 0, name: str = "churn.csv") -> Path:
    """Write `churn_table(rows, seed)` as a CSV with a header into `directory`; return the file."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    churn_table(rows, seed).to_csv(path, index=False)
    return path
