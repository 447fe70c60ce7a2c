"""Model loading: JSON and UBJSON load; pickles, the old binary format and junk are refused."""

from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from container.errors import ModelLoadError
from container.serving.model_loading import load_model, sniff_format
from tests.support.paths import PEER_DATA

from .helpers import ROWS, save_model_dir, train_booster

PEER_MODELS = PEER_DATA / "models"
needs_peer_models = pytest.mark.skipif(
    not PEER_MODELS.is_dir(), reason=f"peer model files not present at {PEER_MODELS}"
)


@pytest.mark.parametrize("fmt", ["json", "ubj"], ids=["json", "ubjson"])
def test_loads_json_and_ubjson_and_predicts_like_the_booster(tmp_path: Path, fmt: str) -> None:
    booster = train_booster("multi:softprob")
    model_dir = save_model_dir(tmp_path, booster, fmt)
    (model_dir / "model.tar.gz").write_bytes(b"\x1f\x8b not a model, ignored")
    (model_dir / "output.tar.gz").write_bytes(b"\x1f\x8b ignored too")
    model = load_model(model_dir)
    assert (model.objective, model.num_features, model.num_class) == ("multi:softprob", 4, 3)
    np.testing.assert_array_equal(
        model.booster.inplace_predict(ROWS), booster.inplace_predict(ROWS)
    )


def test_set_threads_takes_effect_after_a_one_thread_load(tmp_path: Path) -> None:
    """A model loaded with one thread (as in gunicorn's master) predicts on the threads that
    `set_threads` asks for (XGBoost caps them at the cores this process may use): OpenMP starts
    that many less one pool threads. Run in a fresh process, whose threads nothing else made."""
    model_dir = save_model_dir(tmp_path, train_booster("binary:logistic"), "ubj")
    program = textwrap.dedent(
        f"""
        import os, numpy as np
        from pathlib import Path
        from container.serving.model_loading import load_model
        rows = np.random.default_rng(0).random((20_000, 4), dtype=np.float32)
        model = load_model(Path({str(model_dir)!r}), nthread=1)
        model.booster.inplace_predict(rows)
        before = len(os.listdir("/proc/self/task"))
        model.set_threads(2)
        model.booster.inplace_predict(rows)
        print(before, len(os.listdir("/proc/self/task")))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120, check=True
    )
    before, after = (int(n) for n in result.stdout.split())
    pool_threads = min(2, len(os.sched_getaffinity(0))) - 1
    assert after - before == pool_threads, (
        f"threads before and after set_threads(2): {before}, {after}"
    )


def test_missing_model_names_what_is_there(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.tar.gz").write_bytes(b"x")
    with pytest.raises(ModelLoadError) as error:
        load_model(tmp_path / "model")
    assert str(error.value) == (
        f"No model file at {tmp_path}/model/xgboost-model (the folder holds model.tar.gz). "
        "`serve` loads `xgboost-model` as written by `train` or by SageMaker's built-in XGBoost "
        "algorithm (JSON or UBJSON), or the `xgboost-model-0 .. -N` models of a `_kfold` job."
    )


def test_missing_model_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"model is missing\)"):
        load_model(tmp_path / "model")


def test_our_own_pickle_is_refused_without_being_loaded(tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "xgboost-model").write_bytes(pickle.dumps(train_booster("binary:logistic")))
    with pytest.raises(
        ModelLoadError, match=re.escape("is a Python pickle. This server never loads pickles")
    ):
        load_model(model_dir)


@needs_peer_models
def test_peer_pickle_is_refused_with_how_to_resave() -> None:
    with pytest.raises(ModelLoadError) as error:
        load_model(PEER_MODELS / "pickled_model")
    assert "is a Python pickle" in str(error.value)
    assert "booster.save_model('xgboost-model.json')" in str(error.value)


@needs_peer_models
def test_peer_old_binary_format_is_explained() -> None:
    with pytest.raises(ModelLoadError) as error:
        load_model(PEER_MODELS / "saved_booster")
    message = str(error.value)
    assert "is in XGBoost's old binary model format (objective multi:softprob)" in message
    assert "Load it with XGBoost 1.x and save it as JSON or UBJSON" in message


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is neither an XGBoost JSON nor UBJSON model"),
        (b"hello world", "is neither an XGBoost JSON nor UBJSON model"),
        (b"\x78\x9c compressed", "is zlib-compressed (a joblib pickle, most likely)"),
        (b'{"learner": {"truncated', "looks like JSON but XGBoost"),
        (b"binf" + b"\x00" * 200, "old binary model format"),
    ],
    ids=["empty", "text", "zlib", "truncated-json", "binf-header"],
)
def test_unloadable_files_are_refused(tmp_path: Path, content: bytes, message: str) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "xgboost-model").write_bytes(content)
    with pytest.raises(ModelLoadError, match=re.escape(message)):
        load_model(model_dir)


def test_truncated_ubjson_is_a_load_error(tmp_path: Path) -> None:
    model_dir = save_model_dir(tmp_path, train_booster("binary:logistic"), "ubj")
    path = model_dir / "xgboost-model"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ModelLoadError, match="looks like UBJSON but XGBoost"):
        load_model(model_dir)


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b'{"learner":', "json"),
        (b'  \n{"learner":', "json"),
        (b"{L\x00\x00\x00\x00\x00\x00\x00\x07learner", "ubjson"),
        (b"\x80\x04\x95", "pickle"),
        (b"cxgboost.core\nBooster\n", "pickle"),
        (b"\x78\xda", "compressed-pickle"),
        (b"binf", "legacy-binary"),
        (b"GIF89a", "unknown"),
    ],
    ids=["json", "json-leading-space", "ubjson", "pickle-4", "pickle-0", "zlib", "binf", "other"],
)
def test_sniff_format(head: bytes, kind: str) -> None:
    assert sniff_format(head) == kind
