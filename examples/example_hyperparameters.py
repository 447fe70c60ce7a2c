"""The hyperparameters of SageMaker's own XGBoost digits/MNIST examples, unchanged.

Shared by `sdk_workflow.py`, the v3 SDK driver in `tests/sdk/drivers/` and the hyperparameter
tests, so all three check the same dictionary an analyst would copy from those examples.
"""

HYPERPARAMETERS = {
    "max_depth": 5,
    "eta": 0.2,
    "gamma": 4,
    "min_child_weight": 6,
    "silent": 0,
    "objective": "multi:softmax",
    "num_class": 10,
    "num_round": 10,
}
