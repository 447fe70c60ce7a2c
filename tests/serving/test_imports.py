"""Serving keeps heavy modules out of its processes (start-up and first-request latency)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import REPO

from .helpers import save_model_dir, train_booster

SCRIPT = """
import sys
sys.modules.setdefault("sklearn", None)  # as container/serving/__main__.py does
import numpy as np
from container.serving.wsgi import load_application
from container.settings import Settings

_, app = load_application(Settings.from_environ({"SAGEMAKER_BASE_DIR": sys.argv[1]}))
client = app.test_client()
rows = np.random.default_rng(0).random((3000, 4)).astype(np.float32)
rows[::3, 1] = np.nan
csv = "\\n".join(",".join("" if np.isnan(v) else str(v) for v in row) for row in rows)
for accept in ("text/csv", "application/json", "application/jsonlines"):
    for body in (csv.encode(), csv.splitlines()[0].encode()):
        response = client.post(
            "/invocations", data=body, headers={"Content-Type": "text/csv", "Accept": accept}
        )
        assert response.status_code == 200, response.data
others = {
    "application/json": b"[[0.1, 0.2, null, 0.4]]",
    "application/jsonlines": b'{"features": [0.1, 0.2, 0.3, 0.4]}',
    "text/libsvm": b"0:0.1 3:0.4",
}
for content_type, body in others.items():
    response = client.post("/invocations", data=body, headers={"Content-Type": content_type})
    assert response.status_code == 200, response.data
print(sorted(m for m in ("pandas", "sklearn", "sagemaker_training") if sys.modules.get(m)))
"""


@pytest.mark.slow
def test_requests_never_import_pandas_sklearn_or_sagemaker_training(tmp_path: Path) -> None:
    save_model_dir(tmp_path, train_booster("multi:softprob"))
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
