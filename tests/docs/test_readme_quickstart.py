"""The README's local quick start runs as written and prints what the README says it prints.

Its bash blocks (all but `make test`, which is this suite) run in order in one bash process,
so that variables carry from block to block as they do for a person at a terminal. Each
`text` block after a bash block lists lines that block must print, in that order; `...` in a
line stands for any text, and runs of whitespace compare equal. The run gets its own TMPDIR
(for `mktemp`), a free PORT, and the containers the blocks name are removed before and after.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.processes import free_port
from tests.support.paths import REPO

from .markdown_text import README, code_blocks, section

QUICK_START = "Quick start, local"
SKIPPED = "make test"
MARKER = "@@quick-start-block-{}-done@@"


@dataclass(frozen=True)
class Step:
    """A bash block and the lines the README shows for its output."""

    script: str
    expected: tuple[str, ...]


def quick_start_steps() -> list[Step]:
    steps: list[Step] = []
    after_step = False
    for block in code_blocks(section(README.read_text(), QUICK_START)):
        if block.language == "bash":
            after_step = SKIPPED not in block.text
            if after_step:
                steps.append(Step(block.text, ()))
        elif block.language == "text" and after_step:
            lines = tuple(line for line in block.text.splitlines() if line.strip())
            steps[-1] = Step(steps[-1].script, lines)
            after_step = False
    return steps


def _normal(line: str) -> str:
    return " ".join(line.split())


def _pattern(shown: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in _normal(shown).split("...")))


def missing_lines(shown: tuple[str, ...], output: str) -> list[str]:
    """The shown lines not found in `output`, matched in order, each against a whole line."""
    printed = [_normal(line) for line in output.splitlines()]
    position, missing = 0, []
    for line in shown:
        pattern = _pattern(line)
        for index in range(position, len(printed)):
            if pattern.fullmatch(printed[index]):
                position = index + 1
                break
        else:
            missing.append(line)
    return missing


@pytest.fixture
def container_names() -> Iterator[list[str]]:
    """The `--name`s the quick start gives its containers; none exists before or after."""
    names = sorted({n for s in quick_start_steps() for n in re.findall(r"--name (\S+)", s.script)})

    def remove() -> None:
        if names:
            subprocess.run(["docker", "rm", "-f", *names], capture_output=True, timeout=120)

    remove()
    yield names
    remove()


def test_quick_start_steps_are_found() -> None:
    steps = quick_start_steps()
    scripts = "\n".join(step.script for step in steps)
    for command in ("make demo", "make image", "docker run", "curl"):
        assert command in scripts, f"the README's quick start has no '{command}' block"
    assert SKIPPED not in scripts
    assert all(step.expected for step in steps), "every quick-start block shows its output"


def test_missing_lines_matches_in_order_with_wildcards() -> None:
    output = "a 1\nModel written to /tmp/x/model (12 bytes)\n6.0\n"
    assert missing_lines(("Model written to .../model (... bytes)", "6.0"), output) == []
    assert missing_lines(("6.0", "Model written to ..."), output) == ["Model written to ..."]
    assert missing_lines(("6",), output) == ["6"]


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_readme_quick_start_runs_as_written(tmp_path: Path, container_names: list[str]) -> None:
    steps = quick_start_steps()
    script = ["set -euo pipefail", "exec 2>&1"]
    for number, step in enumerate(steps):
        script += [step.script, f"echo {MARKER.format(number)}"]
    result = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        cwd=REPO,
        env={
            **os.environ,
            "TMPDIR": str(tmp_path),
            "PORT": str(free_port()),
        },
        capture_output=True,
        text=True,
        timeout=1100,
    )
    output = result.stdout
    finished = [n for n in range(len(steps)) if MARKER.format(n) in output]
    failed_at = len(finished)
    assert result.returncode == 0, (
        f"quick-start block {failed_at + 1} of {len(steps)} failed (exit {result.returncode}):\n"
        f"{steps[min(failed_at, len(steps) - 1)].script}\noutput:\n{output[-4000:]}"
    )
    rest = output
    for number, step in enumerate(steps):
        printed, _, rest = rest.partition(MARKER.format(number))
        missing = missing_lines(step.expected, printed)
        assert not missing, (
            f"quick-start block {number + 1} did not print what the README shows.\n"
            f"block:\n{step.script}\nmissing lines: {missing}\nprinted:\n{printed[-4000:]}"
        )
