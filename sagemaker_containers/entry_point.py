"""`_wait_hostname_resolution()`: wait until every host of the job (`SM_HOSTS`) resolves."""

from __future__ import annotations

import json
import os

from sagemaker_xgboost_container.distributed import wait_hostname_resolution


def _wait_hostname_resolution() -> None:
    """Resolve each host sagemaker-training lists in `SM_HOSTS` (nothing to wait for alone)."""
    wait_hostname_resolution(json.loads(os.environ.get("SM_HOSTS", "[]")))
