#!/usr/bin/env python3
"""Scheduled batch inference as SageMaker Pipelines (SDK v2), locally or on AWS.

Two pipelines, both on our image:

- training: train -> evaluate (evaluation.json, a PropertyFile) -> check-accuracy: accuracy >=
  MinAccuracy creates the model, batch-transforms the scoring input and joins the predictions to
  their input rows; otherwise accuracy-too-low fails the execution with the accuracy.
- scoring (the nightly job): a model artefact and an input prefix -> create the model ->
  transform -> join, written under OUTPUT/scoring/RUN_ID/EXECUTION_ID/.

    .venv-sdk2/bin/python examples/pipeline.py --local                      # training pipeline
    .venv-sdk2/bin/python examples/pipeline.py --local --pipeline scoring \\
        --model-data file:///.../model.tar.gz --run-id 2026-12-03
    .venv-sdk2/bin/python examples/pipeline.py --aws --role ROLE_ARN --bucket BUCKET \\
        --image-uri ACCOUNT.dkr.ecr.REGION.amazonaws.com/sagemaker-xgboost-byoc:TAG \\
        --model-data s3://BUCKET/.../model.tar.gz --schedule "cron(0 3 * * ? *)"

docs/pipelines.md describes both, the join, and the IAM permissions.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import re
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from botocore.exceptions import WaiterError
from sagemaker.inputs import TrainingInput
from sagemaker.model import Model
from sagemaker.processing import ProcessingInput, ProcessingOutput, Processor
from sagemaker.s3 import S3Uploader
from sagemaker.transformer import Transformer
from sagemaker.workflow.condition_step import ConditionStep
from sagemaker.workflow.conditions import ConditionGreaterThanOrEqualTo
from sagemaker.workflow.execution_variables import ExecutionVariables
from sagemaker.workflow.fail_step import FailStep
from sagemaker.workflow.functions import Join, JsonGet
from sagemaker.workflow.model_step import ModelStep
from sagemaker.workflow.parameters import ParameterFloat, ParameterString
from sagemaker.workflow.pipeline import Pipeline
from sagemaker.workflow.pipeline_context import LocalPipelineSession, PipelineSession
from sagemaker.workflow.properties import PropertyFile
from sagemaker.workflow.steps import ProcessingStep, TrainingStep, TransformStep
from sagemaker.workflow.triggers import (
    PipelineSchedule,
    validate_default_parameters_for_schedules,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from digits_data import write_digits_csv
from sdk_setup import (
    DEFAULT_LOCAL_IMAGE,
    LOCAL_ROLE,
    aws_session,
    configure_local_mode,
    digits_estimator,
    quiet_sdk_logging,
    remove_local_containers,
)

TRAINING_PIPELINE = "xgboost-byoc-digits-training"
SCORING_PIPELINE = "xgboost-byoc-digits-scoring"
STEPS_CODE = Path(__file__).resolve().parent / "pipeline_steps"
SCHEDULED_RUN_ID = "scheduled"
"""RunId of scheduled executions: EventBridge Scheduler starts them with the defaults."""

# Where the processing steps see their inputs and outputs inside the container.
CODE_DIR = "/opt/ml/processing/input/code"
MODEL_DIR = "/opt/ml/processing/input/model"
TEST_DIR = "/opt/ml/processing/input/test"
FEATURES_DIR = "/opt/ml/processing/input/features"
PREDICTIONS_DIR = "/opt/ml/processing/input/predictions"
EVALUATION_DIR = "/opt/ml/processing/output/evaluation"
JOINED_DIR = "/opt/ml/processing/output/joined"

# A local bucket name for the one output that must have an s3:// URI locally (see FolderS3).
LOCAL_BUCKET = "local-pipeline-store"


class FolderS3LocalPipelineSession(LocalPipelineSession):
    """LocalPipelineSession whose S3 is a folder, for the evaluation report alone.

    Locally, a ConditionStep reads a PropertyFile by parsing its processing output's URI as an
    S3 URI (`parse_s3_url`, which refuses `file://`) and reading it with `read_s3_file`. So the
    evaluation output gets `s3://local-pipeline-store/...` in local mode, and local processing's
    `upload_data` of that output and the condition's `read_s3_file` go to this folder. Every
    other URI (data, model, transform, join) is `file://`.
    """

    def __init__(self, s3_root: Path, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.s3_root = s3_root

    def upload_data(self, path: str, bucket: str, key_prefix: str = "data", **_: object) -> str:
        target = self.s3_root / bucket / key_prefix.strip("/")
        if Path(path).is_dir():
            shutil.copytree(path, target, dirs_exist_ok=True)
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        return f"s3://{bucket}/{key_prefix.strip('/')}"

    def read_s3_file(self, bucket: str, key_prefix: str) -> str:
        return (self.s3_root / bucket / key_prefix.strip("/")).read_text()


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where a pipeline's jobs run and keep their files: local mode or SageMaker."""

    session: PipelineSession
    image_uri: str
    role: str
    instance_type: str
    output_uri: str
    """Root of everything the executions write (file:// locally, s3:// on AWS)."""
    evaluation_uri: str
    """Root of the evaluation reports (s3:// in both places; see FolderS3LocalPipelineSession)."""
    code_uri: str
    """The folder holding evaluate.py and join_predictions.py."""
    local: bool


@dataclasses.dataclass(frozen=True)
class DataUris:
    """The training pipeline's data: channels, labelled test rows and the rows to score."""

    train: str
    validation: str
    test: str
    scoring_input: str


def local_placement(image_uri: str, work_dir: Path) -> Placement:
    """Local mode: docker compose on this machine, file:// data, no credentials."""
    session = FolderS3LocalPipelineSession(s3_root=work_dir / "s3")
    configure_local_mode(session, work_dir / "containers")
    return Placement(
        session=session,
        image_uri=image_uri,
        role=LOCAL_ROLE,
        instance_type="local",
        output_uri=f"file://{work_dir / 'pipelines'}",
        evaluation_uri=f"s3://{LOCAL_BUCKET}/pipelines",
        code_uri=f"file://{STEPS_CODE}",
        local=True,
    )


def aws_placement(args: argparse.Namespace) -> Placement:
    """SageMaker: ml.* instances, everything under s3://BUCKET/PREFIX."""
    session = aws_session(PipelineSession, args.region)
    base = f"s3://{args.bucket}/{args.prefix}"
    return Placement(
        session=session,
        image_uri=args.image_uri,
        role=args.role,
        instance_type=args.instance_type,
        output_uri=f"{base}/pipelines",
        evaluation_uri=f"{base}/pipelines",
        code_uri=f"{base}/code/pipeline_steps",
        local=False,
    )


def _processor(place: Placement, instance_type: ParameterString, script: str, *args: str):
    """Our image running `python3 SCRIPT ARGS` (SageMaker replaces the image's entrypoint)."""
    return Processor(
        image_uri=place.image_uri,
        role=place.role,
        instance_count=1,
        instance_type=instance_type,
        entrypoint=["python3", f"{CODE_DIR}/{script}", *args],
        sagemaker_session=place.session,
        base_job_name=f"xgboost-byoc-{Path(script).stem.replace('_', '-')}",
    )


def _code_parameter(place: Placement) -> ParameterString:
    """The folder of step scripts, as a parameter: a plain `file://` processing input would be
    uploaded to the default S3 bucket when the step is built, even in local mode."""
    return ParameterString("StepsCodeUri", default_value=place.code_uri)


def _code_input(code_uri: ParameterString) -> ProcessingInput:
    return ProcessingInput(source=code_uri, destination=CODE_DIR, input_name="code")


def scoring_steps(
    place: Placement,
    code_uri: ParameterString,
    model_data: object,
    input_uri: object,
    output_prefix: Join,
    instance_type: ParameterString,
) -> list:
    """create the model -> transform the input -> join the predictions to their input rows.

    Both pipelines end with these steps. The transform sends many lines per request
    (MultiRecord, split by line) and writes one output line per input line to
    OUTPUT_PREFIX/predictions/NAME.out; `join` writes OUTPUT_PREFIX/joined/NAME, each input row
    followed by its prediction (local mode ignores join_source, so the join is a step of ours).
    """
    model = Model(
        image_uri=place.image_uri,
        model_data=model_data,
        role=place.role,
        sagemaker_session=place.session,
    )
    create_model = ModelStep(name="model", step_args=model.create(instance_type=instance_type))
    transformer = Transformer(
        model_name=create_model.properties.ModelName,
        instance_count=1,
        instance_type=instance_type,
        strategy="MultiRecord",
        # The image ends every output line with "\n" in batch mode; "Line" would add another.
        assemble_with=None,
        accept="text/csv",
        output_path=Join(on="/", values=[output_prefix, "predictions"]),
        sagemaker_session=place.session,
        base_transform_job_name="xgboost-byoc-transform",
    )
    transform = TransformStep(
        name="transform",
        step_args=transformer.transform(data=input_uri, content_type="text/csv", split_type="Line"),
    )
    joiner = _processor(
        place, instance_type, "join_predictions.py", FEATURES_DIR, PREDICTIONS_DIR, JOINED_DIR
    )
    join = ProcessingStep(
        name="join",
        step_args=joiner.run(
            inputs=[
                _code_input(code_uri),
                ProcessingInput(source=input_uri, destination=FEATURES_DIR, input_name="features"),
                ProcessingInput(
                    source=transform.properties.TransformOutput.S3OutputPath,
                    destination=PREDICTIONS_DIR,
                    input_name="predictions",
                ),
            ],
            outputs=[
                ProcessingOutput(
                    output_name="joined",
                    source=JOINED_DIR,
                    destination=Join(on="/", values=[output_prefix, "joined"]),
                )
            ],
        ),
    )
    return [create_model, transform, join]


def training_pipeline(place: Placement, data: DataUris, min_accuracy: float) -> Pipeline:
    """train -> evaluate -> accuracy >= MinAccuracy ? model, transform, join : fail."""
    train_uri = ParameterString("TrainUri", default_value=data.train)
    validation_uri = ParameterString("ValidationUri", default_value=data.validation)
    test_uri = ParameterString("TestUri", default_value=data.test)
    scoring_input = ParameterString("ScoringInputUri", default_value=data.scoring_input)
    threshold = ParameterFloat("MinAccuracy", default_value=min_accuracy)
    code_uri = _code_parameter(place)
    training_instance = ParameterString("TrainingInstanceType", default_value=place.instance_type)
    job_instance = ParameterString("JobInstanceType", default_value=place.instance_type)
    execution_prefix = Join(
        on="/", values=[place.output_uri, "training", ExecutionVariables.PIPELINE_EXECUTION_ID]
    )

    estimator = digits_estimator(
        place.session,
        place.image_uri,
        place.role,
        training_instance,
        Join(on="/", values=[execution_prefix, "model"]),
    )
    train = TrainingStep(
        name="train",
        step_args=estimator.fit(
            {
                "train": TrainingInput(train_uri, content_type="text/csv"),
                "validation": TrainingInput(validation_uri, content_type="text/csv"),
            }
        ),
    )
    model_data = train.properties.ModelArtifacts.S3ModelArtifacts

    evaluation = PropertyFile(name="evaluation", output_name="evaluation", path="evaluation.json")
    evaluator = _processor(place, job_instance, "evaluate.py", MODEL_DIR, TEST_DIR, EVALUATION_DIR)
    evaluate = ProcessingStep(
        name="evaluate",
        step_args=evaluator.run(
            inputs=[
                _code_input(code_uri),
                ProcessingInput(source=model_data, destination=MODEL_DIR, input_name="model"),
                ProcessingInput(source=test_uri, destination=TEST_DIR, input_name="test"),
            ],
            outputs=[
                ProcessingOutput(
                    output_name="evaluation",
                    source=EVALUATION_DIR,
                    destination=Join(
                        on="/",
                        values=[
                            place.evaluation_uri,
                            "training",
                            ExecutionVariables.PIPELINE_EXECUTION_ID,
                            "evaluation",
                        ],
                    ),
                )
            ],
        ),
        property_files=[evaluation],
    )
    accuracy = JsonGet(
        step_name=evaluate.name, property_file=evaluation, json_path="metrics.accuracy.value"
    )
    too_low = FailStep(
        name="accuracy-too-low",
        error_message=Join(
            on="",
            values=[
                "Held-out accuracy ",
                accuracy,
                " is below the required ",
                threshold,
                ": no model was created and nothing was scored.",
            ],
        ),
    )
    check = ConditionStep(
        name="check-accuracy",
        conditions=[ConditionGreaterThanOrEqualTo(left=accuracy, right=threshold)],
        if_steps=scoring_steps(
            place, code_uri, model_data, scoring_input, execution_prefix, job_instance
        ),
        else_steps=[too_low],
    )
    return Pipeline(
        name=TRAINING_PIPELINE,
        parameters=[
            train_uri,
            validation_uri,
            test_uri,
            scoring_input,
            threshold,
            training_instance,
            job_instance,
            code_uri,
        ],
        steps=[train, evaluate, check],
        sagemaker_session=place.session,
        pipeline_experiment_config=None,
    )


def scoring_pipeline(place: Placement, model_data: str, input_uri: str) -> Pipeline:
    """The nightly job: create the model from ModelDataUri, score InputUri, join."""
    model_uri = ParameterString("ModelDataUri", default_value=model_data)
    scoring_input = ParameterString("InputUri", default_value=input_uri)
    run_id = ParameterString("RunId", default_value=SCHEDULED_RUN_ID)
    job_instance = ParameterString("JobInstanceType", default_value=place.instance_type)
    code_uri = _code_parameter(place)
    output_prefix = Join(
        on="/",
        values=[place.output_uri, "scoring", run_id, ExecutionVariables.PIPELINE_EXECUTION_ID],
    )
    return Pipeline(
        name=SCORING_PIPELINE,
        parameters=[model_uri, scoring_input, run_id, job_instance, code_uri],
        steps=scoring_steps(place, code_uri, model_uri, scoring_input, output_prefix, job_instance),
        sagemaker_session=place.session,
        pipeline_experiment_config=None,
    )


def parse_schedule(expression: str) -> PipelineSchedule:
    """`cron(0 3 * * ? *)` or `rate(1 day)` as the SDK's PipelineSchedule."""
    cron = re.fullmatch(r"cron\((.+)\)", expression.strip())
    if cron:
        return PipelineSchedule(name=f"{SCORING_PIPELINE}-schedule", cron=cron.group(1))
    rate = re.fullmatch(r"rate\((\d+) (minutes?|hours?|days?)\)", expression.strip())
    if rate:
        return PipelineSchedule(
            name=f"{SCORING_PIPELINE}-schedule", rate=(int(rate.group(1)), rate.group(2))
        )
    raise ValueError(
        f"Schedule {expression!r} is not an EventBridge Scheduler expression this example "
        'accepts: use "cron(MIN HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK YEAR)" (e.g. '
        '"cron(0 3 * * ? *)", 03:00 UTC daily) or "rate(N minutes|hours|days)".'
    )


# --- Running locally -----------------------------------------------------------------------


def _job_name(step: dict, kind: str) -> str | None:
    """The job a step ran (`Metadata.TrainingJob.Arn`...); locally the ARN is the name."""
    job = step.get("Metadata", {}).get(kind)
    return job["Arn"].split("/")[-1] if job else None


def _output_uri(job: dict, name: str) -> str:
    """A processing job's output URI by name (local mode may hold the outputs as a mapping)."""
    outputs = job["ProcessingOutputConfig"]["Outputs"]
    if isinstance(outputs, dict):
        return outputs[name]["S3Output"]["S3Uri"]
    return next(o["S3Output"]["S3Uri"] for o in outputs if o["OutputName"] == name)


def execution_report(execution, place: Placement, parameters: dict, seconds: float) -> dict:
    """What an execution did, from the same API calls locally and on SageMaker: each step's
    status, the accuracy in evaluation.json, the model artefact and the output locations."""
    described = execution.describe()
    steps = execution.list_steps()
    if isinstance(steps, dict):  # local mode answers with the whole response
        steps = steps["PipelineExecutionSteps"]
    steps = sorted(steps, key=lambda step: (step.get("StartTime") is None, step.get("StartTime")))
    report: dict = {
        "pipeline": pipeline_name(described),
        "execution_id": described["PipelineExecutionArn"].split("/")[-1],
        "status": described["PipelineExecutionStatus"],
        "failure_reason": described.get("FailureReason"),
        "steps": {
            step["StepName"]: {
                "status": step["StepStatus"],
                **({"failure": step["FailureReason"]} if step.get("FailureReason") else {}),
            }
            for step in steps
        },
        "parameters": parameters,
        "seconds": seconds,
    }
    client = place.session.sagemaker_client
    for step in steps:
        if step["StepStatus"] != "Succeeded":
            continue
        if training_job := _job_name(step, "TrainingJob"):
            job = client.describe_training_job(TrainingJobName=training_job)
            report["model_data"] = job["ModelArtifacts"]["S3ModelArtifacts"]
        if transform_job := _job_name(step, "TransformJob"):
            job = client.describe_transform_job(TransformJobName=transform_job)
            report["predictions_uri"] = job["TransformOutput"]["S3OutputPath"]
        processing_job = _job_name(step, "ProcessingJob")
        if processing_job and step["StepName"] == "evaluate":
            job = client.describe_processing_job(ProcessingJobName=processing_job)
            uri = _output_uri(job, "evaluation").removeprefix("s3://")
            bucket, _, key = uri.partition("/")
            evaluation = place.session.read_s3_file(bucket, f"{key}/evaluation.json")
            report["evaluation"] = json.loads(evaluation)
            report["accuracy"] = report["evaluation"]["metrics"]["accuracy"]["value"]
        if processing_job and step["StepName"] == "join":
            job = client.describe_processing_job(ProcessingJobName=processing_job)
            report["joined_uri"] = _output_uri(job, "joined")
    return report


def pipeline_name(described: dict) -> str:
    """The pipeline's name from its ARN (locally the ARN is the name)."""
    return described["PipelineArn"].split("/")[-1]


def run_local(pipeline: Pipeline, place: Placement, parameters: dict) -> dict:
    """Execute `pipeline` with LocalPipelineSession (it runs to the end before returning)."""
    pipeline.upsert(role_arn=place.role)
    started = time.monotonic()
    execution = pipeline.start(parameters=parameters)
    return execution_report(execution, place, parameters, round(time.monotonic() - started, 1))


def print_report(report: dict) -> None:
    print(f"Pipeline {report['pipeline']} execution {report['execution_id']}: {report['status']}")
    for name, step in report["steps"].items():
        failure = f" ({step['failure']})" if "failure" in step else ""
        print(f"  {name}: {step['status']}{failure}")
    if "accuracy" in report:
        print(f"Held-out accuracy: {report['accuracy']:.4f} on {report['evaluation']['rows']} rows")
    if "model_data" in report:
        print(f"Model artefact: {report['model_data']}")
    if "joined_uri" in report:
        print(f"Predictions: {report['predictions_uri']}")
        print(f"Joined rows (features, then prediction): {report['joined_uri']}")
    if report["failure_reason"]:
        print(f"Failed: {report['failure_reason']}")
    print(f"The execution took {report['seconds']} s")


def local_main(args: argparse.Namespace, work_dir: Path) -> int:
    place = local_placement(args.image_uri or DEFAULT_LOCAL_IMAGE, work_dir)
    try:
        if args.pipeline == "training":
            digits = write_digits_csv(work_dir / "data")
            data = DataUris(
                train=f"file://{digits.train_dir}",
                validation=f"file://{digits.validation_dir}",
                test=f"file://{digits.test_dir}",
                scoring_input=args.input_uri or f"file://{digits.batch_dir}",
            )
            pipeline = training_pipeline(place, data, args.min_accuracy)
            parameters = {"MinAccuracy": args.min_accuracy}
        else:
            input_uri = args.input_uri or f"file://{write_digits_csv(work_dir / 'data').batch_dir}"
            pipeline = scoring_pipeline(place, args.model_data, input_uri)
            parameters = {"RunId": args.run_id}
        report = run_local(pipeline, place, parameters)
    finally:
        remove_local_containers(work_dir / "containers")
    print_report(report)
    if args.report:
        args.report.write_text(json.dumps(report, indent=2))
    return 0 if report["status"] == "Succeeded" else 1


# --- AWS -----------------------------------------------------------------------------------


def aws_data(base: str) -> DataUris:
    """Where --aws puts the digits data (the same keys every time)."""
    return DataUris(
        train=f"{base}/data/train",
        validation=f"{base}/data/validation",
        test=f"{base}/data/test",
        scoring_input=f"{base}/data/batch",
    )


def aws_pipelines(args: argparse.Namespace, place: Placement) -> list[Pipeline]:
    data = aws_data(f"s3://{args.bucket}/{args.prefix}")
    return [
        training_pipeline(place, data, args.min_accuracy),
        scoring_pipeline(place, args.model_data or "", args.input_uri or data.scoring_input),
    ]


def schedule_request(schedule: PipelineSchedule, pipeline: Pipeline, role: str) -> dict:
    """What `put_triggers` sends to EventBridge Scheduler (ARN aside), from the SDK's resolvers."""
    return {
        "Name": schedule.resolve_trigger_name(pipeline.name),
        "ScheduleExpression": schedule.resolve_schedule_expression(),
        "State": schedule.resolve_trigger_state(),
        "Pipeline": pipeline.name,
        "RoleArn": role,
    }


def write_definitions(args: argparse.Namespace, place: Placement) -> int:
    """Both definitions (and the schedule) as JSON files; no AWS call."""
    args.definitions_dir.mkdir(parents=True, exist_ok=True)
    training, scoring = aws_pipelines(args, place)
    for pipeline in (training, scoring):
        path = args.definitions_dir / f"{pipeline.name}.json"
        path.write_text(json.dumps(json.loads(pipeline.definition()), indent=2))
        print(f"Wrote {path}")
    if args.schedule:
        validate_default_parameters_for_schedules(scoring.parameters)
        request = schedule_request(
            parse_schedule(args.schedule), scoring, args.scheduler_role or args.role
        )
        path = args.definitions_dir / "schedule.json"
        path.write_text(json.dumps(request, indent=2))
        print(f"Wrote {path}")
    return 0


def how_to_run(training: Pipeline, scoring: Pipeline, place: Placement) -> str:
    return f"""
Start, list and inspect executions (AWS CLI, region {place.session.boto_region_name}):
  aws sagemaker start-pipeline-execution --pipeline-name {training.name} \\
      --pipeline-parameters Name=MinAccuracy,Value=0.9
  aws sagemaker start-pipeline-execution --pipeline-name {scoring.name} \\
      --pipeline-parameters Name=RunId,Value=$(date -u +%F) Name=ModelDataUri,Value=s3://.../model.tar.gz
  aws sagemaker list-pipeline-executions --pipeline-name {scoring.name}
  aws sagemaker describe-pipeline-execution --pipeline-execution-arn ARN
  aws sagemaker list-pipeline-execution-steps --pipeline-execution-arn ARN
  aws scheduler get-schedule --name {scoring.name}-schedule
Outputs: {place.output_uri}/training/EXECUTION_ID/{{model,predictions,joined}}/ and
         {place.output_uri}/scoring/RUN_ID/EXECUTION_ID/{{predictions,joined}}/"""


def aws_main(args: argparse.Namespace) -> int:
    place = aws_placement(args)
    if args.definitions_dir:
        return write_definitions(args, place)
    base = f"s3://{args.bucket}/{args.prefix}"
    with tempfile.TemporaryDirectory() as folder:
        digits = write_digits_csv(Path(folder))
        for local, uri in zip(
            (digits.train_dir, digits.validation_dir, digits.test_dir, digits.batch_dir),
            dataclasses.astuple(aws_data(base)),
            strict=True,
        ):
            S3Uploader.upload(str(local), uri, sagemaker_session=place.session)
    S3Uploader.upload(str(STEPS_CODE), place.code_uri, sagemaker_session=place.session)
    training, scoring = aws_pipelines(args, place)
    for pipeline in (training, scoring):
        arn = pipeline.upsert(role_arn=args.role)["PipelineArn"]
        print(f"Upserted {arn}")
    if args.schedule:
        schedule = parse_schedule(args.schedule)
        arns = scoring.put_triggers([schedule], role_arn=args.scheduler_role or args.role)
        print(f"Scheduled {scoring.name} ({schedule.resolve_schedule_expression()}): {arns}")
    print(how_to_run(training, scoring, place))
    if not args.start:
        return 0
    return start_on_aws(args, place, training if args.pipeline == "training" else scoring)


def start_on_aws(args: argparse.Namespace, place: Placement, pipeline: Pipeline) -> int:
    """Start one execution, wait for it, print its steps, accuracy and outputs."""
    if pipeline.name == SCORING_PIPELINE:
        parameters = {"RunId": args.run_id}
        if args.model_data:
            parameters["ModelDataUri"] = args.model_data
    else:
        parameters = {"MinAccuracy": args.min_accuracy}
    started = time.monotonic()
    execution = pipeline.start(parameters=parameters)
    print(f"Started {execution.arn}")
    with contextlib.suppress(WaiterError):  # raised for a failed execution too; reported below
        execution.wait(delay=30, max_attempts=240)
    report = execution_report(execution, place, parameters, round(time.monotonic() - started))
    print_report(report)
    if args.report:
        args.report.write_text(json.dumps(report, indent=2))
    return 0 if report["status"] == "Succeeded" else 1


# --- Command line --------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--local", action="store_true", help="run in local mode (Docker here)")
    where.add_argument("--aws", action="store_true", help="upsert both pipelines on SageMaker")
    parser.add_argument("--pipeline", choices=("training", "scoring"), default="training")
    parser.add_argument("--min-accuracy", type=float, default=0.9, help="training gate")
    parser.add_argument(
        "--run-id",
        default=datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"),
        help="scoring run ID, part of the output prefix (default: now, UTC)",
    )
    parser.add_argument("--model-data", help="scoring: the model.tar.gz URI to score with")
    parser.add_argument("--input-uri", help="the prefix to score (default: the digits test rows)")
    parser.add_argument("--work-dir", type=Path, help="local: keep the data and outputs here")
    parser.add_argument("--report", type=Path, help="write what was measured as JSON")
    parser.add_argument("--image-uri", help=f"image (local default {DEFAULT_LOCAL_IMAGE})")
    aws = parser.add_argument_group("on AWS")
    aws.add_argument("--role", help="SageMaker execution role ARN the pipelines run as")
    aws.add_argument("--bucket", help="S3 bucket for data, code and outputs")
    aws.add_argument("--prefix", default="xgboost-byoc-pipelines", help="S3 key prefix")
    aws.add_argument("--region", help="AWS region (default: your AWS configuration)")
    aws.add_argument("--instance-type", default="ml.m5.large", help="for every job")
    aws.add_argument("--schedule", help='attach to the scoring pipeline: "cron(0 3 * * ? *)"')
    aws.add_argument("--scheduler-role", help="role EventBridge Scheduler assumes (default --role)")
    aws.add_argument("--start", action="store_true", help="start --pipeline and wait for it")
    aws.add_argument(
        "--definitions-dir",
        type=Path,
        help="write the definitions (and schedule) as JSON here instead; makes no AWS call",
    )
    args = parser.parse_args(argv)
    if args.aws:
        needed = {"--role": args.role, "--bucket": args.bucket, "--image-uri": args.image_uri}
        missing = [flag for flag, value in needed.items() if not value]
        if missing:
            parser.error(
                f"--aws needs {', '.join(missing)} (the image URI build_and_push.sh printed)"
            )
        if args.schedule and not args.model_data:
            parser.error(
                "--schedule needs --model-data: scheduled executions run with the parameters' "
                "defaults, so the scoring pipeline's ModelDataUri must have one"
            )
        if args.schedule:
            try:
                parse_schedule(args.schedule)
            except ValueError as error:
                parser.error(str(error))
    elif args.pipeline == "scoring" and not args.model_data:
        parser.error(
            "--pipeline scoring needs --model-data file:///.../model.tar.gz (the training "
            "pipeline prints its model artefact)"
        )
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quiet_sdk_logging()
    if args.aws:
        return aws_main(args)
    with contextlib.ExitStack() as stack:
        if args.work_dir:
            work_dir = args.work_dir.resolve()
        else:
            # Containers write root-owned files here, which a non-root user may not delete.
            temporary = tempfile.TemporaryDirectory(ignore_cleanup_errors=True)
            work_dir = Path(stack.enter_context(temporary)).resolve()
            print("(outputs go to a temporary folder; pass --work-dir DIR to keep them)")
        work_dir.mkdir(parents=True, exist_ok=True)
        return local_main(args, work_dir)


if __name__ == "__main__":
    sys.exit(main())
