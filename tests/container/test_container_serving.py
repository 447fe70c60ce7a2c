"""`IMAGE serve` in the container: /ping and /invocations with curl, the port setting, a clean
stop, and a non-root user with a read-only model folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.docker import run

from .docker_helpers import curl, predictions_accuracy, serving, status_and_body

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1200)]

ROWS = 270  # local_test/payload/digits-test.csv


def invoke(port: int, payload: Path) -> tuple[int, str]:
    return status_and_body(
        curl(
            "--data-binary",
            f"@{payload}",
            "-H",
            "Content-Type: text/csv",
            f"http://127.0.0.1:{port}/invocations",
        )
    )


def test_serve_answers_ping_and_invocations_on_the_bind_port(
    image: str, trained_opt_ml: Path, payload: Path, container_name
) -> None:
    """SAGEMAKER_BIND_TO_PORT moves the server off 8080 (the port is a free one)."""
    with serving(image, container_name("serve"), trained_opt_ml / "model") as port:
        assert port != 8080
        ping_status, _ = status_and_body(curl(f"http://127.0.0.1:{port}/ping"))
        status, body = invoke(port, payload)

    assert ping_status == 200
    assert status == 200, body
    count, accuracy = predictions_accuracy(body)
    assert count == ROWS
    assert accuracy > 0.8, "the served model should predict the held-out digits"


def test_bad_request_gets_a_4xx_sentence(image: str, trained_opt_ml: Path, container_name) -> None:
    with serving(image, container_name("bad"), trained_opt_ml / "model") as port:
        status, body = status_and_body(
            curl(
                "--data-binary",
                "1,2,3",
                "-H",
                "Content-Type: application/x-unknown",
                f"http://127.0.0.1:{port}/invocations",
            )
        )

    assert status == 415
    assert "application/x-unknown" in body
    assert "Traceback" not in body


def test_docker_stop_ends_the_server_cleanly(
    image: str, trained_opt_ml: Path, container_name
) -> None:
    """SageMaker sends SIGTERM and kills after 30 s: the server must exit 0 on the SIGTERM."""
    name = container_name("stop")
    with serving(image, name, trained_opt_ml / "model"):
        run(["docker", "stop", "--time", "30", name], timeout=90)

    state = run(["docker", "inspect", "-f", "{{.State.ExitCode}} {{.State.OOMKilled}}", name])
    assert state.stdout.split() == ["0", "false"], "137 would mean it ignored SIGTERM"


def test_serves_as_non_root_with_a_read_only_model(
    image: str, trained_opt_ml: Path, payload: Path, container_name
) -> None:
    name = container_name("user")
    with serving(image, name, trained_opt_ml / "model", "--user", "1000:1000") as port:
        status, body = invoke(port, payload)
        user = run(["docker", "exec", name, "id", "-u"]).stdout.strip()

    assert user == "1000"
    assert status == 200, body
    assert predictions_accuracy(body)[0] == ROWS
