"""build_and_push.sh's ECR path, run against stand-ins for `aws` and `docker` first on PATH.

The stand-ins (tests/container/stand_ins/) record every call, so these tests read exactly what the
script asked the AWS CLI and Docker to do, and nothing reaches AWS. The script runs from a copy of
the checkout in a temp folder with a tiny offline wheel folder, so nothing is built. The real
build and push (to a local registry) is in test_build_and_push_registry.py.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.paths import REPO

STAND_INS = Path(__file__).resolve().parent / "stand_ins"
ACCOUNT = "123456789012"
NAME = "my-xgboost"
TAG = "v1"
# Tools the script runs besides aws and docker; the test PATH holds only these and the stand-ins.
TOOLS = ("dirname", "git", "realpath", "mkdir", "cp", "cat")


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    calls: list[str]

    @property
    def last_line(self) -> str:
        return self.stdout.strip().splitlines()[-1]

    @property
    def last_error(self) -> str:
        return self.stderr.strip().splitlines()[-1]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of the files build_and_push.sh needs, and an offline wheel folder."""
    root = tmp_path / "checkout"
    root.mkdir()
    shutil.copy2(REPO / "build_and_push.sh", root)
    shutil.copy2(REPO / "Dockerfile", root)
    wheels = tmp_path / "offline-wheels"
    wheels.mkdir()
    (wheels / "example-1.0-py3-none-any.whl").write_bytes(b"not used: docker is a stand-in")
    return root


@pytest.fixture
def run_script(tmp_path: Path, checkout: Path):
    """Run the copied build_and_push.sh with only the stand-ins and TOOLS on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found, f"{tool} is needed by build_and_push.sh"
        (bin_dir / tool).symlink_to(found)
    log = tmp_path / "calls.log"
    repos = tmp_path / "repos.txt"

    def run(
        *args: str,
        env: dict[str, str] | None = None,
        existing_repos: tuple[str, ...] = (),
        stand_ins: tuple[str, ...] = ("aws", "docker"),
    ) -> Run:
        for stand_in in ("aws", "docker"):
            (bin_dir / stand_in).unlink(missing_ok=True)
            if stand_in in stand_ins:
                (bin_dir / stand_in).symlink_to(STAND_INS / stand_in)
        log.write_text("")
        repos.write_text("".join(f"{r}\n" for r in existing_repos))
        environ = {
            "PATH": str(bin_dir),
            "HOME": str(tmp_path),
            "STANDIN_LOG": str(log),
            "STANDIN_AWS_REPOS": str(repos),
            "STANDIN_AWS_ACCOUNT": ACCOUNT,
            **(env or {}),
        }
        result = subprocess.run(
            [shutil.which("bash") or "/bin/bash", str(checkout / "build_and_push.sh"), *args],
            env=environ,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        calls = [line for line in log.read_text().splitlines() if line]
        return Run(result.returncode, result.stdout, result.stderr, calls)

    return run


def offline(*args: str) -> tuple[str, ...]:
    """Arguments for a run that takes its packages from the offline wheel folder."""
    return ("--tag", TAG, "--wheel-dir", "offline-wheels", *args, NAME)


def test_first_push_creates_the_repository_logs_in_tags_and_pushes(run_script) -> None:
    run = run_script(*offline("--region", "eu-west-1"))
    host = f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com"

    assert run.returncode == 0, run.stderr
    assert run.last_line == f"{host}/{NAME}:{TAG}"
    assert run.calls == [
        "docker info",
        "aws sts get-caller-identity --query Account --output text",
        f"docker build --network host --platform linux/amd64 --tag {NAME}:{TAG}"
        f" --tag {NAME}:latest .",
        f"aws ecr describe-repositories --region eu-west-1 --repository-names {NAME}",
        f"aws ecr create-repository --region eu-west-1 --repository-name {NAME}"
        " --image-scanning-configuration scanOnPush=true",
        "aws ecr get-login-password --region eu-west-1",
        f"docker login --username AWS --password-stdin {host} <<< stand-in-password",
        f"docker tag {NAME}:{TAG} {host}/{NAME}:{TAG}",
        f"docker push {host}/{NAME}:{TAG}",
        f"docker tag {NAME}:{TAG} {host}/{NAME}:latest",
        f"docker push {host}/{NAME}:latest",
    ]
    assert f'Estimator(image_uri="{host}/{NAME}:{TAG}")' in run.stderr


def test_an_existing_repository_is_not_created_again(run_script) -> None:
    run = run_script(*offline("--region", "us-east-1"), existing_repos=(NAME,))

    assert run.returncode == 0, run.stderr
    assert not [c for c in run.calls if "create-repository" in c]
    assert f"docker push {ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/{NAME}:{TAG}" in run.calls


@pytest.mark.parametrize(
    ("region", "domain"),
    [
        ("cn-north-1", "amazonaws.com.cn"),
        ("cn-northwest-1", "amazonaws.com.cn"),
        ("us-gov-west-1", "amazonaws.com"),
        ("ap-southeast-2", "amazonaws.com"),
    ],
    ids=["cn-north-1", "cn-northwest-1", "us-gov-west-1", "ap-southeast-2"],
)
def test_the_registry_domain_follows_the_partition(run_script, region: str, domain: str) -> None:
    run = run_script(*offline("--region", region))

    assert run.returncode == 0, run.stderr
    assert run.last_line == f"{ACCOUNT}.dkr.ecr.{region}.{domain}/{NAME}:{TAG}"


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (("--region", "eu-north-1"), {"AWS_REGION": "us-west-2"}, "eu-north-1"),
        ((), {"AWS_REGION": "us-west-2", "AWS_DEFAULT_REGION": "eu-west-3"}, "us-west-2"),
        (
            (),
            {"AWS_DEFAULT_REGION": "eu-west-3", "STANDIN_AWS_CONFIG_REGION": "sa-east-1"},
            "eu-west-3",
        ),
        ((), {"STANDIN_AWS_CONFIG_REGION": "sa-east-1"}, "sa-east-1"),
    ],
    ids=["flag-over-env", "AWS_REGION-over-default", "default-over-config", "cli-config"],
)
def test_region_precedence(run_script, args, env, expected: str) -> None:
    run = run_script(*offline(*args), env=env)

    assert run.returncode == 0, run.stderr
    assert run.last_line.startswith(f"{ACCOUNT}.dkr.ecr.{expected}.amazonaws.com/")
    assert f"aws ecr get-login-password --region {expected}" in run.calls


@pytest.mark.parametrize(
    ("args", "env", "stand_ins", "sentence"),
    [
        (
            (),
            {},
            ("aws", "docker"),
            "no AWS region is set; pass --region REGION, or set AWS_REGION, "
            "or run 'aws configure set region REGION'.",
        ),
        (
            ("--region", "us-east-1"),
            {"STANDIN_AWS_NO_CREDENTIALS": "1"},
            ("aws", "docker"),
            "no valid AWS credentials were found; run 'aws configure' (or 'aws sso login') "
            "and try again.",
        ),
        (
            ("--region", "us-east-1"),
            {},
            ("docker",),
            "the AWS CLI is not installed; install it (https://aws.amazon.com/cli/), "
            "or use --registry HOST:PORT or --no-push.",
        ),
        (
            ("--region", "us-east-1"),
            {},
            ("aws",),
            "docker is not installed; install Docker (on Debian: scripts/docker-engine.sh) "
            "and run this again.",
        ),
        (
            ("--region", "us-east-1"),
            {"STANDIN_DOCKER_DOWN": "1"},
            ("aws", "docker"),
            "the Docker engine does not answer; start it (on Debian: scripts/docker-engine.sh) "
            "and run this again.",
        ),
        (
            ("--region", "nowhere"),
            {},
            ("aws", "docker"),
            "'nowhere' is not an AWS region name; pass one like us-east-1 with --region.",
        ),
    ],
    ids=["no-region", "no-credentials", "no-aws-cli", "no-docker", "engine-down", "bad-region"],
)
def test_failures_before_the_build_end_with_one_sentence(
    run_script, args, env, stand_ins, sentence: str
) -> None:
    run = run_script(*offline(*args), env=env, stand_ins=stand_ins)

    assert run.returncode == 1
    assert run.last_error == f"build_and_push: {sentence}"
    assert not [c for c in run.calls if c.startswith("docker build")]
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize(
    ("env", "sentence"),
    [
        (
            {"STANDIN_DOCKER_PUSH_REFUSED": "1"},
            "the push to {host} was refused; check that you are logged in and may push to "
            "'my-xgboost' there.",
        ),
        (
            {"STANDIN_AWS_DESCRIBE_ERROR": "1"},
            "could not look up ECR repository 'my-xgboost' in us-east-1; check that your "
            "credentials allow ecr:DescribeRepositories.",
        ),
    ],
    ids=["push-refused", "describe-denied"],
)
def test_failures_after_the_build_end_with_one_sentence(run_script, env, sentence: str) -> None:
    run = run_script(*offline("--region", "us-east-1"), env=env)
    host = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com"

    assert run.returncode == 1
    assert run.last_error == "build_and_push: " + sentence.format(host=host)
    assert "AccessDeniedException" not in run.stderr


def test_no_push_builds_only(run_script) -> None:
    run = run_script(*offline("--no-push"))

    assert run.returncode == 0, run.stderr
    assert run.last_line == f"{NAME}:{TAG}"
    assert not [c for c in run.calls if c.startswith("aws") or c.startswith("docker push")]


def test_other_registry_skips_aws(run_script) -> None:
    run = run_script(*offline("--registry", "127.0.0.1:5999", "--platform", "linux/arm64"))

    assert run.returncode == 0, run.stderr
    assert run.last_line == f"127.0.0.1:5999/{NAME}:{TAG}"
    assert not [c for c in run.calls if c.startswith("aws")]
    assert any(
        c.startswith("docker build --network host --platform linux/arm64") for c in run.calls
    )


def test_base_image_is_passed_as_build_arg(run_script) -> None:
    run = run_script(*offline("--no-push", "--base-image", "local-debian:12"))

    assert run.returncode == 0, run.stderr
    assert any("--build-arg BASE_IMAGE=local-debian:12" in c for c in run.calls)


def test_default_tag_is_the_git_commit(run_script, checkout: Path) -> None:
    git = ["git", "-C", str(checkout), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "x"], check=True)
    commit = subprocess.run(
        [*git, "rev-parse", "--short=12", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()

    run = run_script("--no-push", "--wheel-dir", "offline-wheels", NAME)

    assert run.returncode == 0, run.stderr
    assert run.last_line == f"{NAME}:{commit}"
    assert f"docker build --network host --platform linux/amd64 --tag {NAME}:{commit}" in " ".join(
        run.calls
    )


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        (("--bogus",), "unknown option '--bogus'; see ./build_and_push.sh --help."),
        (("--tag",), "--tag needs a value; see ./build_and_push.sh --help."),
        (
            ("--tag", "a b", NAME),
            "tag 'a b' is not a valid Docker tag; use letters, digits, "
            "'_', '.' and '-' (at most 128).",
        ),
        (
            ("--tag", "v1", "My_Image"),
            "image name 'My_Image' is not a valid repository name; use "
            "lower-case letters, digits, '.', '_', '-' and '/'.",
        ),
    ],
    ids=["unknown-option", "missing-value", "bad-tag", "bad-name"],
)
def test_bad_arguments_end_with_one_sentence(run_script, args, sentence: str) -> None:
    run = run_script(*args)

    assert run.returncode == 1
    assert run.last_error == f"build_and_push: {sentence}"
    assert run.calls == []


def test_help_lists_the_options(run_script) -> None:
    run = run_script("--help")

    assert run.returncode == 0
    for option in (
        "--tag",
        "--region",
        "--platform",
        "--registry",
        "--no-push",
        "--wheel-dir",
        "--base-image",
    ):
        assert option in run.stdout
    assert run.calls == []
