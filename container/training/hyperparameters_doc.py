"""Writes docs/hyperparameters.md from the hyperparameter table, so the page never drifts from it.

    python -m container.training.hyperparameters_doc           # rewrite the page
    python -m container.training.hyperparameters_doc --check   # exit 1 when the page is stale

Only the table (`PARAMS`, `OBJECTIVES`, `METRIC_NAMES`) is read; nothing here validates values.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

from container.training.hyperparameters import (
    IGNORED_PREFIX,
    METRIC_NAMES,
    OBJECTIVES,
    PARAMS,
    Kind,
    Param,
)

PAGE = Path(__file__).resolve().parents[2] / "docs" / "hyperparameters.md"
COMMAND = "python -m container.training.hyperparameters_doc"

_INTRO = f"""\
# Hyperparameters

<!-- Generated from container/training/hyperparameters.py by `{COMMAND}`.
     Do not edit: change the table and run the command again. -->

Every hyperparameter `train` accepts, as declared in `container/training/hyperparameters.py`.
Values may be plain strings (`"10"`) or JSON-encoded (`"\\"multi:softmax\\""`), as the SageMaker
Python SDK sends them; keys starting with `{IGNORED_PREFIX}` are the SDK's own and are ignored.
A name that is not listed, a value of the wrong type or outside its range fails the job before
training starts, with a sentence naming the key, the value and what is allowed (all problems at
once). Rules that involve several hyperparameters (`num_class` with `multi:*`, `lambdarank_*`
with `rank:*`, ...) are described in [training.md](training.md#hyperparameters).
"""


def _code(values: Iterable[object]) -> str:
    return ", ".join(f"`{value}`" for value in values)


def _allowed(param: Param) -> str:
    if param.choices == OBJECTIVES:
        return "see [objectives](#objectives)"
    if param.choices:
        return _code(param.choices)
    if param.name == "eval_metric":
        return "see [evaluation metrics](#evaluation-metrics)"
    if param.range is not None:
        return f"`{param.range.describe(param.name)}`"
    return ""


def _default(param: Param, unset: str) -> str:
    if param.required:
        return "**required**"
    if param.default is None:
        return unset
    if isinstance(param.default, bool):
        return f"`{str(param.default).lower()}`"
    return f"`{param.default}`"


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def render() -> str:
    """The whole page, as it should be committed."""
    own = [p for p in PARAMS if not p.to_xgboost and not p.deprecated]
    xgboost = [p for p in PARAMS if p.to_xgboost]
    deprecated = [p for p in PARAMS if p.deprecated]
    sections = [
        _INTRO,
        "## The container's own settings\n\n"
        "Read by the training job itself, not passed to XGBoost.\n\n"
        + _table(
            ("name", "type", "allowed", "default"),
            [(f"`{p.name}`", p.kind.value, _allowed(p), _default(p, "unset")) for p in own],
        ),
        "## XGBoost parameters\n\n"
        "Passed to `xgboost.train` under their own name (an alias is read as that name); unset "
        "ones take XGBoost's default.\n\n"
        + _table(
            ("name", "aliases", "type", "allowed", "default"),
            [
                (
                    f"`{p.name}`",
                    _code(p.aliases),
                    p.kind.value,
                    _allowed(p),
                    _default(p, "XGBoost's"),
                )
                for p in xgboost
            ],
        ),
        "## Accepted for compatibility, not used\n\n"
        "The built-in algorithm accepts these; XGBoost 2 and later no longer use them. They are "
        "checked like the others, logged with a warning and not passed on.\n\n"
        + _table(
            ("name", "type", "advice"),
            [(f"`{p.name}`", p.kind.value, str(p.deprecated)) for p in deprecated],
        ),
        "## Objectives\n\n" + _code(OBJECTIVES) + ".",
        "## Evaluation metrics\n\n"
        f"`eval_metric` is {Kind.STRING_LIST.value} from: "
        + _code(METRIC_NAMES)
        + ", with XGBoost's suffixes: `@N` for a threshold or a cut-off (`error@0.7`, `ndcg@5`) "
        "and a trailing `-` (`map@3-`).",
    ]
    return "\n\n".join(section.rstrip("\n") for section in sections) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the page is stale")
    args = parser.parse_args(argv)
    page = render()
    if args.check:
        if not PAGE.exists() or PAGE.read_text() != page:
            print(f"{PAGE} is out of date: run `{COMMAND}` and commit it.", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(page)
    print(f"Wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
