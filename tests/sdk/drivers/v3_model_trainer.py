"""Local-container training through the v3 SDK's ModelTrainer, which runs the image bare.

The SDK passes no command, so the image's own CMD must mean train. Usage:
v3_model_trainer.py IMAGE TRAIN_DIR VALIDATION_DIR CONTAINER_ROOT. After training it prints the
docker compose services the SDK ran (as JSON) and where the model artifacts are.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml
from sagemaker.core.training.configs import Compute, InputData
from sagemaker.train import ModelTrainer
from sagemaker.train.model_trainer import Mode

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "examples"))
from example_hyperparameters import HYPERPARAMETERS


def main(image: str, train_dir: str, validation_dir: str, container_root: str) -> int:
    trainer = ModelTrainer(
        training_image=image,
        training_mode=Mode.LOCAL_CONTAINER,
        local_container_root=container_root,
        compute=Compute(instance_type="local_cpu", instance_count=1),
        hyperparameters=HYPERPARAMETERS,
        input_data_config=[
            InputData(channel_name="train", data_source=train_dir, content_type="text/csv"),
            InputData(
                channel_name="validation", data_source=validation_dir, content_type="text/csv"
            ),
        ],
        base_job_name="xgboost-byoc-v3",
    )
    trainer.train(wait=True, logs=True)
    compose = yaml.safe_load((Path(container_root) / "docker-compose.yaml").read_text())
    print(f"COMPOSE SERVICES: {json.dumps(compose['services'])}", flush=True)
    print(f"MODEL ARTIFACTS: {container_root}/compressed_artifacts/model.tar.gz", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
