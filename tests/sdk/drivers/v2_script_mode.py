"""Script mode through the v2 SDK in local mode, as an analyst writes it: `entry_point=` and
`source_dir=` for training, then a `Model` with the inference script, deployed and called.

Usage: v2_script_mode.py IMAGE SOURCE_DIR BROKEN_SOURCE_DIR DATA_DIR WORK_DIR REPORT. The
source folder holds `wheels/` for its requirements.txt (pip in the container cannot reach
PyPI). Writes REPORT (JSON): the customers sent, the endpoint's answer, the model artifact and
the exception the SDK raised for the broken script. The job logs go to stdout.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from sagemaker.deserializers import JSONDeserializer
from sagemaker.estimator import Estimator
from sagemaker.inputs import TrainingInput
from sagemaker.local import LocalSession
from sagemaker.model import Model
from sagemaker.predictor import Predictor
from sagemaker.serializers import JSONSerializer

ROLE = "arn:aws:iam::111111111111:role/local-mode-needs-no-role"
WHEELS = {"XGB_WHEEL_DIR": "/opt/ml/code/wheels"}


def estimator(image: str, session: LocalSession, source: str, output: str, **extra) -> Estimator:
    return Estimator(
        image_uri=image,
        role=ROLE,
        instance_count=1,
        instance_type="local",
        entry_point="train.py",
        source_dir=source,
        hyperparameters={"max_depth": 3, "n_estimators": 120},
        output_path=f"file://{output}",
        sagemaker_session=session,
        **extra,
    )


def main(image: str, source: str, broken: str, data: str, work: str, report_file: str) -> int:
    session = LocalSession()
    channels = {
        name: TrainingInput(f"file://{data}/{name}", content_type="text/csv")
        for name in ("train", "validation")
    }
    trained = estimator(image, session, source, f"{work}/output", environment=WHEELS)
    trained.fit(channels)
    print(f"MODEL DATA: {trained.model_data}", flush=True)

    customers = json.loads(Path(data, "customers.json").read_text())
    model = Model(
        image_uri=image,
        model_data=trained.model_data,
        role=ROLE,
        entry_point="inference.py",
        source_dir=source,
        # Local mode repacks the local model.tar.gz in place; naming a bucket only keeps the
        # SDK from looking up a default one with AWS credentials this machine does not have.
        code_location="s3://local-mode-no-upload/code",
        predictor_cls=Predictor,
        sagemaker_session=session,
    )
    predictor = model.deploy(
        initial_instance_count=1,
        instance_type="local",
        serializer=JSONSerializer(),
        deserializer=JSONDeserializer(),
    )
    try:
        answer = predictor.predict({"customers": customers})
    finally:
        predictor.delete_endpoint()

    failing = estimator(image, session, broken, f"{work}/broken-output")
    try:
        failing.fit(channels)
        raised = None
    except Exception as error:
        raised = f"{type(error).__name__}: {error}"
    report = {
        "customers": customers,
        "answer": answer,
        "model_data": trained.model_data,
        "broken_raised": raised,
    }
    with open(report_file, "w") as handle:
        json.dump(report, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
