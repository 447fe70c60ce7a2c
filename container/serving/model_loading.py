"""Load `xgboost-model` (JSON or UBJSON) safely: pickles and XGBoost's old binary format are
recognised by their bytes and refused with a message saying how to re-save the model.

Only the one model file is read; other files in the model folder (the SDK's local mode leaves
`model.tar.gz` and `output.tar.gz` there) are ignored. A folder without `xgboost-model` but
with `xgboost-model-0 .. xgboost-model-N` (the models of a `_kfold` cross-validation job) is
loaded whole, and its predictions are the mean of every model's, as the built-in answers.
"""

from __future__ import annotations

import json
import logging
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import xgboost as xgb

from container.errors import ModelLoadError
from container.serving.nesting import MAX_MODEL_NESTING, json_depth, ubjson_depth
from container.settings import DEFAULT_MAX_COLUMNS, MODEL_FILENAME

log = logging.getLogger(__name__)

RESAVE_HINT = (
    "Re-save it with a current XGBoost as JSON or UBJSON: load it where it was made, then "
    "`booster.save_model('xgboost-model.json')` (or `.ubj`), and rename the file to "
    f"`{MODEL_FILENAME}`."
)
_UBJSON_MARKERS = frozenset(b"LlIiUdD$#SCTFZN}[")
_ZLIB_HEADERS = (b"\x78\x01", b"\x78\x5e", b"\x78\x9c", b"\x78\xda")
_LEGACY_PARAM_BYTES = 136
"""Size of the fixed `LearnerModelParam` block at the start of the old binary format."""


@dataclass(frozen=True)
class LoadedModel:
    """A booster and the facts about it that serving needs."""

    booster: xgb.Booster
    objective: str
    num_features: int
    num_class: int
    num_target: int
    ensemble: tuple[xgb.Booster, ...] = ()
    """Every model of a cross-validation folder, `booster` first; empty for a single model."""

    @property
    def boosters(self) -> tuple[xgb.Booster, ...]:
        """The boosters whose predictions are averaged: `booster` alone, or the ensemble."""
        return self.ensemble or (self.booster,)

    def set_threads(self, nthread: int) -> None:
        """Set how many OpenMP threads predictions use in this process.

        XGBoost caps a booster's `nthread` at its global setting, and `load_model` leaves that
        at 1 (leaving `config_context` does not bring back the default, 0): setting the booster
        alone kept every prediction on one thread. Both are set.
        """
        xgb.set_config(nthread=nthread)
        for booster in self.boosters:
            booster.set_param("nthread", nthread)


def sniff_format(data: bytes) -> str:
    """Name the format of a model file from its first bytes.

    Returns one of "json", "ubjson", "pickle", "compressed-pickle", "legacy-binary", "unknown".
    """
    head = data[:2]
    if data[:1] == b"\x80" and len(data) > 1 and 2 <= data[1] <= 5:
        return "pickle"
    if head in _ZLIB_HEADERS:
        return "compressed-pickle"
    stripped = data.lstrip()
    if stripped[:1] == b"{":
        if data[:1] == b"{" and len(data) > 1 and data[1] in _UBJSON_MARKERS:
            return "ubjson"
        return "json"
    if data[:4] in (b"binf", b"bs64") or _objective_in_legacy_header(data) is not None:
        return "legacy-binary"
    if data[:1] in (b"c", b"(") and b"\n" in data[:200] and b"Booster" in data[:200]:
        return "pickle"  # protocol 0/1 pickles start with a GLOBAL opcode
    return "unknown"


def _objective_in_legacy_header(data: bytes) -> str | None:
    """The objective name stored after the old binary header, if `data` has that layout."""
    offset = _LEGACY_PARAM_BYTES
    if len(data) < offset + 8:
        return None
    (length,) = struct.unpack_from("<Q", data, offset)
    if not 0 < length < 64 or len(data) < offset + 8 + length:
        return None
    name = data[offset + 8 : offset + 8 + length]
    text = name.decode("ascii", errors="replace")
    return text if ":" in text and text.replace(":", "").replace("_", "").isalnum() else None


def _refusal(path: Path, data: bytes, kind: str) -> ModelLoadError:
    if kind == "pickle":
        return ModelLoadError(
            f"{path} is a Python pickle. This server never loads pickles: unpickling runs "
            f"arbitrary code. {RESAVE_HINT}"
        )
    if kind == "compressed-pickle":
        return ModelLoadError(
            f"{path} is zlib-compressed (a joblib pickle, most likely). This server never loads "
            f"pickles: unpickling runs arbitrary code. {RESAVE_HINT}"
        )
    objective = _objective_in_legacy_header(data)
    detail = f" (objective {objective})" if objective else ""
    return ModelLoadError(
        f"{path} is in XGBoost's old binary model format{detail}, which XGBoost "
        f"{xgb.__version__} cannot read. Load it with XGBoost 1.x and save it as JSON or UBJSON: "
        f"`booster.save_model('xgboost-model.json')`, then rename the file to `{MODEL_FILENAME}`."
    )


_FOLD_MODEL = re.compile(re.escape(MODEL_FILENAME) + r"-(\d+)")


def fold_files(model_dir: Path) -> list[Path]:
    """`xgboost-model-0 .. -N` in order (a `_kfold` job's models); raise if one is missing."""
    if not model_dir.is_dir():
        return []
    found = {}
    for path in model_dir.iterdir():
        match = _FOLD_MODEL.fullmatch(path.name)
        if match and path.is_file():
            found[int(match.group(1))] = path
    missing = [i for i in range(len(found)) if i not in found]
    if missing:
        raise ModelLoadError(
            f"{model_dir} holds cross-validation models up to {MODEL_FILENAME}-{max(found)}, "
            f"but {MODEL_FILENAME}-{missing[0]} is missing: serving averages every fold's "
            f"model, so the folder needs {MODEL_FILENAME}-0 to -{max(found)}."
        )
    return [found[i] for i in sorted(found)]


def load_model(
    model_dir: Path, nthread: int = 1, max_features: int = DEFAULT_MAX_COLUMNS
) -> LoadedModel:
    """Load `model_dir/xgboost-model` with `nthread` OpenMP threads (1 before forking workers);
    without it, a cross-validation job's `xgboost-model-N` files as one averaged model.

    Raises `ModelLoadError` with a sentence for a missing, unsafe, old or broken model, one
    nested deeper than XGBoost's parser survives, or one declaring more than `max_features`
    features (`XGB_SERVER_MAX_COLUMNS`: each worker predicts a row that wide at start-up).
    """
    path = model_dir / MODEL_FILENAME
    folds = [] if path.is_file() else fold_files(model_dir)
    if folds:
        return _load_ensemble(folds, nthread, max_features)
    if not path.is_file():
        present = sorted(p.name for p in model_dir.iterdir()) if model_dir.is_dir() else []
        where = (
            f"the folder holds {', '.join(present)}"
            if present
            else f"{model_dir} is {'empty' if model_dir.is_dir() else 'missing'}"
        )
        raise ModelLoadError(
            f"No model file at {path} ({where}). `serve` loads `{MODEL_FILENAME}` as written by "
            "`train` or by SageMaker's built-in XGBoost algorithm (JSON or UBJSON), or the "
            f"`{MODEL_FILENAME}-0 .. -N` models of a `_kfold` job."
        )
    return _load_one(path, nthread, max_features)


def _load_ensemble(paths: list[Path], nthread: int, max_features: int) -> LoadedModel:
    """Load every fold's model; they must agree on what they predict."""
    models = [_load_one(path, nthread, max_features) for path in paths]
    first = models[0]
    for path, model in zip(paths[1:], models[1:], strict=True):
        facts = (model.objective, model.num_features, model.num_class, model.num_target)
        expected = (first.objective, first.num_features, first.num_class, first.num_target)
        if facts != expected:
            raise ModelLoadError(
                f"{path} (objective {model.objective}, {model.num_features} features) does not "
                f"match {paths[0]} (objective {first.objective}, {first.num_features} features): "
                "the models of one cross-validation folder are averaged, so they must come "
                "from the same job."
            )
    log.info("Serving the mean of %d cross-validation models.", len(models))
    return LoadedModel(
        booster=first.booster,
        objective=first.objective,
        num_features=first.num_features,
        num_class=first.num_class,
        num_target=first.num_target,
        ensemble=tuple(model.booster for model in models),
    )


def _check_nesting(path: Path, data: bytes, kind: str) -> None:
    """Refuse a document nested deeper than `MAX_MODEL_NESTING` before XGBoost parses it."""
    try:
        depth = json_depth(data) if kind == "json" else ubjson_depth(data)
    except ValueError:
        return  # malformed where the scan stopped, no deeper than the limit: XGBoost names it
    if depth > MAX_MODEL_NESTING:
        raise ModelLoadError(
            f"{path} nests its arrays and objects more than {MAX_MODEL_NESTING} levels deep; "
            "a model XGBoost writes nests under 10, and XGBoost's parser crashes on a file "
            f"nested tens of thousands deep, so it is not loaded. {RESAVE_HINT}"
        )


def _load_one(path: Path, nthread: int, max_features: int) -> LoadedModel:
    """Load one model file, refusing pickles and the old binary format by their bytes, and
    models too deeply nested or too wide to serve."""
    data = path.read_bytes()
    kind = sniff_format(data)
    if kind in ("pickle", "compressed-pickle", "legacy-binary"):
        raise _refusal(path, data, kind)
    if kind == "unknown":
        raise ModelLoadError(
            f"{path} ({len(data)} bytes) is neither an XGBoost JSON nor UBJSON model. {RESAVE_HINT}"
        )
    _check_nesting(path, data, kind)
    try:
        # XGBoost runs parallel regions while it builds the booster, with the global thread
        # count unless told otherwise; a multi-threaded OpenMP pool in the gunicorn master hangs
        # every prediction in the forked workers.
        with xgb.config_context(nthread=nthread):
            booster = xgb.Booster(params={"nthread": nthread})
            booster.load_model(bytearray(data))
            config = json.loads(booster.save_config())["learner"]
    except (xgb.core.XGBoostError, ValueError, KeyError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(
            f"{path} looks like {kind.upper()} but XGBoost {xgb.__version__} cannot load it: "
            f"{first_line}. Check that the file is complete; {RESAVE_HINT}"
        ) from exc
    booster.set_param("nthread", nthread)
    model = describe(booster, config, max_features, str(path))
    log.info(
        "Loaded %s (%s, objective %s, %d features, %d rounds)",
        path,
        kind.upper(),
        model.objective,
        model.num_features,
        booster.num_boosted_rounds(),
    )
    return model


def describe(
    booster: xgb.Booster,
    config: dict | None = None,
    max_features: int = DEFAULT_MAX_COLUMNS,
    source: str = "The model",
) -> LoadedModel:
    """The facts serving needs about a loaded `booster` (its `learner` config, when already
    read); a declared feature count over `max_features` is refused with a sentence."""
    if config is None:
        config = json.loads(booster.save_config())["learner"]
    params = config["learner_model_param"]
    num_features = booster.num_features()
    if num_features > max_features:
        declared = params.get("num_feature", num_features)
        raise ModelLoadError(
            f"{source} declares {declared} features (num_feature); serving allows at most "
            f"{max_features} (XGB_SERVER_MAX_COLUMNS). A negative num_feature reads as a number "
            "near 2^32. Re-save the model from the XGBoost that trained it, or raise "
            "XGB_SERVER_MAX_COLUMNS if the model really is that wide."
        )
    return LoadedModel(
        booster=booster,
        objective=config["objective"]["name"],
        num_features=num_features,
        num_class=int(params.get("num_class", "0") or 0),
        num_target=int(params.get("num_target", "1") or 1),
    )
