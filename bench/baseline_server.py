"""The classic bring-your-own-container server, as the SageMaker BYOC samples write it.

Flask behind gunicorn sync workers; the model is loaded lazily in each worker; every request
goes through pandas `read_csv`, a `DMatrix` and `Booster.predict` with XGBoost's default
threads (all cores, in every worker); the answer is written with `DataFrame.to_csv`. It is the
reference the issue's "20× the classic baseline" goal is measured against, not code to copy.

Run: gunicorn -w N "bench.baseline_server:create_app('/path/to/xgboost-model')"
"""

from __future__ import annotations

import io

import flask
import pandas as pd
import xgboost as xgb


def create_app(model_path: str) -> flask.Flask:
    """A Flask app with /ping and /invocations serving the model at `model_path`."""
    app = flask.Flask(__name__)
    cache: dict[str, xgb.Booster] = {}

    def get_model() -> xgb.Booster:
        if "model" not in cache:
            booster = xgb.Booster()
            booster.load_model(model_path)
            cache["model"] = booster
        return cache["model"]

    @app.route("/ping", methods=["GET"])
    def ping() -> flask.Response:
        health = get_model() is not None
        return flask.Response(response="\n", status=200 if health else 404, mimetype="text/plain")

    @app.route("/invocations", methods=["POST"])
    def invocations() -> flask.Response:
        if flask.request.content_type != "text/csv":
            return flask.Response(response="This predictor only supports CSV data", status=415)
        data = pd.read_csv(io.StringIO(flask.request.data.decode("utf-8")), header=None)
        predictions = get_model().predict(xgb.DMatrix(data))
        out = io.StringIO()
        pd.DataFrame(predictions).to_csv(out, header=False, index=False)
        return flask.Response(response=out.getvalue(), status=200, mimetype="text/csv")

    return app
