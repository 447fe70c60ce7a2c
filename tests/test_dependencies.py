"""pyproject.toml declares every third-party package the code imports directly, at the pins of
requirements.lock (the closure the image installs)."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
FIRST_PARTY = {
    "container",
    "sagemaker_xgboost_container",
    "sagemaker_containers",
    "bench",
    "tests",
} | {path.stem for path in (REPO / "examples").rglob("*.py")}
"""Our own packages, and the examples' modules (imported from `examples/` on the path)."""
OTHER_VENVS = [
    REPO / "tests" / "sdk" / "drivers",
    REPO / "tests" / "serving" / "sdk_recordio_driver.py",
    REPO / "examples" / "sdk_workflow.py",
    REPO / "examples" / "sdk_setup.py",
    REPO / "examples" / "pipeline.py",
]
"""Code that runs in the SDK venvs of scripts/sdk-venvs.sh, not in this project's."""


def _name(requirement: str) -> str:
    """The normalised distribution name of a requirement such as `Flask==3.1.3`."""
    return re.split(r"[=<>!~;\[ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _pins(requirements: list[str]) -> dict[str, str]:
    return {_name(r): r.split("==", 1)[1].strip() for r in requirements if "==" in r}


RUNTIME = _pins(PROJECT["dependencies"])
TEST = _pins(PROJECT["optional-dependencies"]["test"])


def _imported_distributions(folders: list[str]) -> dict[str, set[str]]:
    """Each third-party distribution imported at top level by the code in `folders`, with the
    files that import it."""
    distributions = packages_distributions()
    found: dict[str, set[str]] = {}
    for folder in folders:
        for path in (REPO / folder).rglob("*.py"):
            if any(path.is_relative_to(other) for other in OTHER_VENVS):
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules = [node.module]
                else:
                    continue
                for module in modules:
                    top = module.split(".")[0]
                    if top in sys.stdlib_module_names or top in FIRST_PARTY:
                        continue
                    for distribution in distributions.get(top, [top]):
                        found.setdefault(_name(distribution), set()).add(
                            str(path.relative_to(REPO))
                        )
    return found


RUNTIME_CODE = ["container", "sagemaker_xgboost_container", "sagemaker_containers"]
"""What the image runs: our package and the framework container's names for scripts."""


def test_the_runtime_code_imports_only_runtime_dependencies() -> None:
    undeclared = {
        name: sorted(files)
        for name, files in _imported_distributions(RUNTIME_CODE).items()
        if name not in RUNTIME
    }
    assert undeclared == {}, "imported by container/ but not in [project] dependencies"


def test_tests_bench_and_examples_import_only_declared_packages() -> None:
    undeclared = {
        name: sorted(files)
        for name, files in _imported_distributions(["tests", "bench", "examples"]).items()
        if name not in RUNTIME and name not in TEST
    }
    assert undeclared == {}, "imported but in neither [project] dependencies nor the test extra"


@pytest.mark.parametrize("name", sorted(RUNTIME))
def test_runtime_pins_are_the_locked_versions(name: str) -> None:
    locked = _pins((REPO / "requirements.lock").read_text().splitlines())
    assert locked.get(name) == RUNTIME[name], f"requirements.lock has {name}=={locked.get(name)}"
