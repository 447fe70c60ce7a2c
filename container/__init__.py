"""SageMaker bring-your-own-container XGBoost: training and serving code that runs in the image."""
