"""Crafted model files: `serve` refuses them at start-up with a sentence, never a crash.

A declared feature count that is absurd (negative, or over `XGB_SERVER_MAX_COLUMNS`) would make
every worker allocate a warm-up row that wide; a file nested tens of thousands of levels deep
overflows the stack of XGBoost's recursive parser (a segfault).
"""

from __future__ import annotations

import json
import resource
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from container.errors import ModelLoadError
from container.serving import wsgi
from container.serving.model_loading import load_model
from container.serving.nesting import MAX_MODEL_NESTING, json_depth, ubjson_depth
from container.settings import MODEL_FILENAME, Settings
from tests.support.server import serve_until_exit

from .helpers import ROWS, save_model_dir, train_booster

DEEP = 100_000
"""Levels of nesting: XGBoost 3's parser crashes from about 50,000 on an 8 MB stack."""


def _write(tmp_path: Path, data: bytes) -> Path:
    model_dir = tmp_path / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / MODEL_FILENAME).write_bytes(data)
    return model_dir


def _with_num_feature(value: str, fmt: str) -> bytes:
    """A real model whose `num_feature` says `value`, saved by XGBoost in `fmt`."""
    document = json.loads(train_booster("binary:logistic").save_raw("json"))
    document["learner"]["learner_model_param"]["num_feature"] = value
    if fmt == "json":
        return json.dumps(document).encode()
    booster = xgb.Booster()
    booster.load_model(bytearray(json.dumps(document).encode()))
    return bytes(booster.save_raw("ubj"))


def _deep(fmt: str, levels: int, opener: bytes) -> bytes:
    closer = b"]" if opener == b"[" else b"}"
    if fmt == "json":
        inner = opener * levels if opener == b"[" else b'{"a":' * levels
        tail = b"1" if opener == b"{" else b""
        return b'{"learner":' + inner + tail + closer * levels + b"}"
    key = b"L" + struct.pack(">q", 1) + b"a"
    inner = opener * levels if opener == b"[" else (b"{" + key) * levels
    tail = b"i\x01" if opener == b"{" else b""
    return b"{L" + struct.pack(">q", 7) + b"learner" + inner + tail + closer * levels + b"}"


MODEL_KINDS = {
    "binary": ({"objective": "binary:logistic"}, None),
    "multiclass": ({"objective": "multi:softprob", "num_class": 3}, None),
    "dart": ({"objective": "reg:squarederror", "booster": "dart"}, None),
    "gblinear": ({"objective": "reg:squarederror", "booster": "gblinear"}, None),
    "categorical": ({"objective": "reg:squarederror"}, "categorical"),
    "multi-target-vector-leaf": (
        {"objective": "reg:squarederror", "multi_strategy": "multi_output_tree"},
        "two-targets",
    ),
}


def _trained(params: dict, variant: str | None) -> xgb.Booster:
    rows = ROWS.copy()
    label: np.ndarray = np.nan_to_num(rows[:, 0])
    if params["objective"].startswith("binary"):
        label = (label > 0.5).astype(np.float32)
    elif params["objective"].startswith("multi"):
        label = np.digitize(label, [0.3, 0.6]).astype(np.float32)
    if variant == "two-targets":
        label = np.stack([label, label * 2], axis=1)
    if variant == "categorical":
        import pandas as pd

        frame = pd.DataFrame(rows, columns=list("abcd"))
        frame["d"] = pd.Categorical((np.nan_to_num(rows[:, 3]) * 5).astype(int))
        matrix = xgb.DMatrix(frame, label, enable_categorical=True)
    else:
        matrix = xgb.DMatrix(rows, label)
    return xgb.train({"nthread": 1, "tree_method": "hist", **params}, matrix, 4)


@pytest.mark.parametrize("kind", list(MODEL_KINDS))
@pytest.mark.parametrize("fmt", ["json", "ubj"])
def test_models_xgboost_writes_nest_shallow_and_load(tmp_path: Path, kind: str, fmt: str) -> None:
    booster = _trained(*MODEL_KINDS[kind])
    data = bytes(booster.save_raw(fmt))
    depth = (json_depth if fmt == "json" else ubjson_depth)(data)
    assert 3 <= depth < 10 < MAX_MODEL_NESTING
    loaded = load_model(_write(tmp_path, data))
    assert loaded.num_features == booster.num_features()


@pytest.mark.parametrize("opener", [b"[", b"{"], ids=["arrays", "objects"])
@pytest.mark.parametrize("fmt", ["json", "ubj"])
def test_a_model_nested_deeper_than_xgboost_parses_is_refused(
    tmp_path: Path, fmt: str, opener: bytes
) -> None:
    model_dir = _write(tmp_path, _deep(fmt, DEEP, opener))
    with pytest.raises(ModelLoadError, match=rf"more than {MAX_MODEL_NESTING} levels deep"):
        load_model(model_dir)


def test_brackets_inside_names_do_not_count_and_cannot_hide_depth() -> None:
    hiding = b'{"x": "]]]]\\"]]]]", "learner": ' + b"[" * 500 + b"]" * 500 + b"}"
    assert json_depth(hiding) > MAX_MODEL_NESTING
    assert json_depth(b'{"names": ["[[[[", "{{{{"], "a": [1]}') == 2
    assert json_depth(b'"unterminated \\' + b'\\"' * 100_000) == 0  # linear, no backtracking


@pytest.mark.parametrize("fmt", ["json", "ubj"])
@pytest.mark.parametrize("declared", ["-5", "4000000000", "100001"])
def test_an_absurd_feature_count_is_refused_before_any_row_is_built(
    tmp_path: Path, fmt: str, declared: str
) -> None:
    model_dir = _write(tmp_path, _with_num_feature(declared, fmt))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ModelLoadError, match=r"features \(num_feature\); serving allows at most"):
        load_model(model_dir)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 100


def test_the_feature_limit_follows_xgb_server_max_columns(tmp_path: Path) -> None:
    model_dir = save_model_dir(tmp_path, train_booster("binary:logistic"))
    with pytest.raises(ModelLoadError, match="declares 4 features"):
        load_model(model_dir, max_features=3)
    assert load_model(model_dir, max_features=4).num_features == 4


HOSTILE_FILES = {
    "nested-json": (lambda: _deep("json", DEEP, b"["), "levels deep"),
    "nested-ubjson": (lambda: _deep("ubj", DEEP, b"{"), "levels deep"),
    "negative-num-feature": (lambda: _with_num_feature("-5", "json"), "declares 4294967291"),
    "num-feature-over-the-limit": (lambda: _with_num_feature("200000", "ubj"), "at most 100000"),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(HOSTILE_FILES))
def test_serve_refuses_a_hostile_model_at_start_up_without_crashing(
    tmp_path: Path, name: str
) -> None:
    make, expected = HOSTILE_FILES[name]
    _write(tmp_path, make())
    result = serve_until_exit(tmp_path)
    code, output = result.returncode, result.stdout + result.stderr
    assert code > 0, output  # an exit status, not a signal (a segfault is -11)
    assert expected in output, output
    assert "Segmentation fault" not in output and "Traceback" not in output, output


def test_a_model_fn_returning_an_absurdly_wide_booster_is_refused(tmp_path: Path) -> None:
    model_dir = _write(tmp_path, _with_num_feature("4000000000", "json"))
    (model_dir / "code").mkdir()
    (model_dir / "code" / "inference.py").write_text(
        "import xgboost as xgb\n\n"
        "def model_fn(model_dir):\n"
        "    booster = xgb.Booster()\n"
        f"    booster.load_model(model_dir + '/{MODEL_FILENAME}')\n"
        "    return booster\n"
    )
    settings = Settings.from_environ({"SAGEMAKER_BASE_DIR": str(tmp_path)})
    try:
        with pytest.raises(ModelLoadError, match=r"model_fn in .* declares 4000000000 features"):
            wsgi.load_application(settings)
    finally:
        sys.modules.pop("inference", None)
