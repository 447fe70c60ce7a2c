"""Join each batch-transform output line to its input line: CSV with the features, then the
prediction, which is what SageMaker's `join_source="Input"` gives and local mode ignores.

Runs as the pipelines' "join" processing step (in our image; standard library only) and is
imported by `sdk_workflow.py`. For every input file `NAME` under the features folder the
transform wrote `NAME.out`; the joined file keeps the input's name and relative path.

    python3 join_predictions.py FEATURES_DIR PREDICTIONS_DIR JOINED_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path


class JoinError(Exception):
    """The transform's output does not line up with its input."""


def join_lines(input_text: str, output_text: str) -> list[str]:
    """Each input line with its prediction appended; one output line per input line."""
    inputs = input_text.splitlines()
    outputs = output_text.splitlines()
    if len(inputs) != len(outputs):
        raise JoinError(
            f"The batch transform returned {len(outputs)} lines for {len(inputs)} input lines; "
            "each input line must give exactly one output line."
        )
    return [f"{row},{prediction}" for row, prediction in zip(inputs, outputs, strict=True)]


def join_folders(features_dir: Path, predictions_dir: Path, joined_dir: Path) -> list[Path]:
    """Join every input file to its `.out` file; returns the joined files written."""
    inputs = sorted(path for path in features_dir.rglob("*") if path.is_file())
    if not inputs:
        raise JoinError(f"No input files under {features_dir}.")
    written = []
    for source in inputs:
        relative = source.relative_to(features_dir)
        predictions = predictions_dir / relative.with_name(relative.name + ".out")
        if not predictions.is_file():
            raise JoinError(
                f"No transform output {predictions} for input {relative}; the transform writes "
                "NAME.out for every input file NAME."
            )
        try:
            joined = join_lines(source.read_text(), predictions.read_text())
        except JoinError as error:
            raise JoinError(f"{relative}: {error}") from None
        target = joined_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("".join(f"{line}\n" for line in joined))
        written.append(target)
    return written


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    features_dir, predictions_dir, joined_dir = (Path(arg) for arg in argv)
    try:
        written = join_folders(features_dir, predictions_dir, joined_dir)
    except JoinError as error:
        print(f"Join failed: {error}", file=sys.stderr)
        return 1
    for path in written:
        print(f"Joined {path.relative_to(joined_dir)}: {len(path.read_text().splitlines())} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
