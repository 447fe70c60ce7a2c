"""Fixtures for serving tests: tiny real XGBoost models and Flask apps built around them."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator

import pytest
import xgboost as xgb
from flask.testing import FlaskClient

from container.serving.app import create_app
from container.serving.model_loading import LoadedModel, load_model
from container.settings import Settings

from .helpers import OBJECTIVES, save_model_dir, train_booster


@pytest.fixture(scope="session")
def boosters() -> dict[str, xgb.Booster]:
    return {objective: train_booster(objective) for objective in OBJECTIVES}


@pytest.fixture(scope="session")
def loaded_models(
    boosters: dict[str, xgb.Booster], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, LoadedModel]:
    models = {}
    for objective, booster in boosters.items():
        root = tmp_path_factory.mktemp(objective.replace(":", "-"))
        models[objective] = load_model(save_model_dir(root, booster))
    return models


ClientFactory = Callable[..., FlaskClient]


@pytest.fixture
def make_client(loaded_models: dict[str, LoadedModel]) -> ClientFactory:
    """`make_client(objective, **env)`: a Flask test client around that model."""

    def make(objective: str = "binary:logistic", **env: str) -> FlaskClient:
        settings = Settings.from_environ({"SAGEMAKER_BASE_DIR": "/nonexistent", **env})
        app = create_app(loaded_models[objective], settings)
        return app.test_client()

    return make


@pytest.fixture(autouse=True)
def forget_user_modules() -> Iterator[None]:
    """A test that serves inference code imports its own `inference` module: drop it (and its
    folder on the path) afterwards, so that the next test imports its own."""
    path = list(sys.path)
    yield
    sys.modules.pop("inference", None)
    sys.modules.pop("features", None)
    sys.path[:] = path
