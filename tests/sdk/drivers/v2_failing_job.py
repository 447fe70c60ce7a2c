"""A local-mode training job with a misspelt hyperparameter, run through the v2 SDK's Estimator.

Usage: v2_failing_job.py IMAGE DATA_DIR OUTPUT_DIR. Exits 0 when the SDK raised (the job failed,
as it must), 1 when the job succeeded. The job log goes to stdout, as the SDK prints it; the
first line says whether the SDK defaults config switched telemetry off.
"""

from __future__ import annotations

import sys

from sagemaker.config.config_schema import TELEMETRY_OPT_OUT_PATH
from sagemaker.estimator import Estimator
from sagemaker.inputs import TrainingInput
from sagemaker.local import LocalSession
from sagemaker.utils import resolve_value_from_config

ROLE = "arn:aws:iam::111111111111:role/local-mode-needs-no-role"


def main(image: str, data_dir: str, output_dir: str) -> int:
    session = LocalSession()
    opted_out = resolve_value_from_config(
        config_path=TELEMETRY_OPT_OUT_PATH, default_value=False, sagemaker_session=session
    )
    print(f"TELEMETRY OPT-OUT: {opted_out}", flush=True)
    estimator = Estimator(
        image_uri=image,
        role=ROLE,
        instance_count=1,
        instance_type="local",
        output_path=f"file://{output_dir}",
        sagemaker_session=session,
    )
    estimator.set_hyperparameters(max_dept=5, objective="multi:softmax", num_class=10, num_round=10)
    try:
        estimator.fit({"train": TrainingInput(f"file://{data_dir}", content_type="text/csv")})
    except Exception as error:
        print(f"SDK RAISED: {type(error).__name__}: {error}", flush=True)
        return 0
    print("SDK RAISED NOTHING: the job succeeded", flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
