"""The pinned runtime closure (requirements.lock, what the image installs) against known
vulnerabilities, with pip-audit and PyPI's advisory data."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

from tests.support.paths import REPO


def test_locked_dependencies_have_no_known_vulnerabilities(tmp_path: Path) -> None:
    pip_audit = Path(sys.executable).parent / "pip-audit"
    report = tmp_path / "audit.json"
    result = subprocess.run(
        [
            str(pip_audit),
            "--requirement",
            str(REPO / "requirements.lock"),
            "--no-deps",
            "--disable-pip",
            "--format",
            "json",
            "--output",
            str(report),
            "--progress-spinner",
            "off",
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert report.exists(), result.stderr
    dependencies = json.loads(report.read_text())["dependencies"]

    vulnerable = {
        f"{d['name']}=={d['version']}": [v["id"] for v in d["vulns"]]
        for d in dependencies
        if d.get("vulns")
    }
    assert vulnerable == {}, f"known vulnerabilities: {vulnerable}"
    assert result.returncode == 0, result.stderr
    locked = [
        line for line in (REPO / "requirements.lock").read_text().splitlines() if "==" in line
    ]
    assert len(dependencies) == len(locked)
    skipped = [d["name"] for d in dependencies if "skip_reason" in d]
    if skipped:
        warnings.warn(
            f"pip-audit could audit {len(dependencies) - len(skipped)} of {len(dependencies)} "
            f"locked packages; PyPI's JSON API did not answer for: {', '.join(skipped)}",
            stacklevel=1,
        )
