"""The one place serving reads the model from disk: model folder → loaded model → Flask app.

`gunicorn 'container.serving.wsgi:application()'` works too; `./serve` uses `server.py`.
"""

from __future__ import annotations

from flask import Flask

from container.serving.app import create_app
from container.serving.model_loading import LoadedModel, load_model
from container.serving.multi_model_routes import refuse_user_code
from container.serving.user_code import load_user_code, load_user_model
from container.serving.user_hooks import UserHooks
from container.settings import Settings


def load_application(settings: Settings) -> tuple[LoadedModel | None, Flask]:
    """Load `settings.paths.model_dir` with one thread (safe to fork) and build the app; with
    the user's inference code (`code/inference.py`), around that code's hooks. In multi-model
    mode nothing is loaded here: the app loads models when SageMaker asks."""
    if settings.serving.multi_model:
        refuse_user_code(settings)
        return None, create_app(None, settings)
    code = load_user_code(settings)
    if code is not None:
        user_model, loaded = load_user_model(code, settings)
        return loaded, create_app(loaded, settings, UserHooks(code, user_model))
    model = load_model(
        settings.paths.model_dir, nthread=1, max_features=settings.serving.max_columns
    )
    return model, create_app(model, settings)


def application() -> Flask:
    """App factory for gunicorn's `module:factory()` syntax."""
    return load_application(Settings.from_environ())[1]
