"""The training job: SageMaker's built-in XGBoost algorithm's contract, run by `./train`."""
