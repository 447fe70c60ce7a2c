"""The shared model registry: two registries on one folder stand for two gunicorn workers
(each maps the generation counter itself, as a forked worker does)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from container.errors import BadRequest
from container.serving.multi_model import (
    InsufficientMemory,
    ModelAlreadyLoaded,
    ModelNotLoaded,
    ModelRegistry,
    SharedState,
)
from container.settings import Settings

from .helpers import ROWS, save_model_dir, train_booster


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Settings, xgb.Booster]:
    booster = train_booster("binary:logistic")
    save_model_dir(tmp_path / "models" / "a", booster)
    save_model_dir(tmp_path / "models" / "b", train_booster("reg:squarederror"))
    env = {"SAGEMAKER_BASE_DIR": str(tmp_path), "SAGEMAKER_MODEL_SERVER_WORKERS": "2"}
    return Settings.from_environ(env), booster


def workers(settings: Settings) -> tuple[ModelRegistry, ModelRegistry]:
    first = ModelRegistry(settings, "text/csv")
    return first, ModelRegistry(settings, "text/csv", shared=SharedState(first.shared.folder))


def test_a_load_in_one_worker_is_served_by_the_other(tree: tuple[Settings, xgb.Booster]) -> None:
    settings, booster = tree
    one, two = workers(settings)
    url = str(settings.paths.models_dir / "a" / "model")
    one.load("a", url)
    invocations, first = two.invocations("a")
    assert first and not two.invocations("a")[1]
    served = invocations.predictor.predict(ROWS)
    np.testing.assert_allclose(served, booster.predict(xgb.DMatrix(ROWS)), rtol=1e-6)
    with pytest.raises(ModelAlreadyLoaded):
        two.load("a", url)


def test_an_unload_frees_the_model_in_every_worker(tree: tuple[Settings, xgb.Booster]) -> None:
    settings, _ = tree
    one, two = workers(settings)
    one.load("a", str(settings.paths.models_dir / "a" / "model"))
    first_copy = two.invocations("a")[0]
    assert two.held() == ["a"]
    one.unload("a")
    two.sync()
    assert two.held() == []  # the other worker's copy is dropped at its next request
    with pytest.raises(ModelNotLoaded):
        two.invocations("a")
    # A reload under the same name is a new model to every worker, never the stale copy.
    one.load("a", str(settings.paths.models_dir / "b" / "model"))
    second_copy, first = two.invocations("a")
    assert first and second_copy is not first_copy
    assert second_copy.objective == "reg:squarederror"


def test_a_refused_load_changes_nothing(tree: tuple[Settings, xgb.Booster]) -> None:
    settings, _ = tree
    one = ModelRegistry(settings, "text/csv")
    one.budget = 1  # a byte: smaller than any model, so every load is refused
    generation = one.shared.generation()
    with pytest.raises(InsufficientMemory, match=r"needs .* MB .* unload a model first\.$"):
        one.load("a", str(settings.paths.models_dir / "a" / "model"))
    assert one.shared.generation() == generation
    assert one.page(None) == ([], None)


def test_output_keys_a_model_cannot_answer_refuse_its_load(
    tree: tuple[Settings, xgb.Booster],
) -> None:
    settings, _ = tree
    env = {
        "SAGEMAKER_BASE_DIR": str(settings.paths.base_dir),
        "SAGEMAKER_INFERENCE_OUTPUT": "probabilities",
    }
    registry = ModelRegistry(Settings.from_environ(env), "text/csv")
    generation = registry.shared.generation()
    with pytest.raises(BadRequest, match="probabilities cannot be computed for a model with obj"):
        registry.load("b", str(settings.paths.models_dir / "b" / "model"))
    assert registry.shared.generation() == generation
    registry.load("a", str(settings.paths.models_dir / "a" / "model"))
    assert [entry.name for entry in registry.page(None)[0]] == ["a"]
