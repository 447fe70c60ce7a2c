"""The one LIBSVM grammar, read the way XGBoost's own reader (and so the built-in algorithm,
for training and for inference) reads it:

    line    = label [":" weight] ["qid:" N] {index ":" [value]}
    label, weight, value = a decimal number (nan, inf spelt as Python's float() takes them)
    index, N = ASCII digits (a column position, from 0, as written)

The first token of a line is always its label: `1:2.0 0:1.5` is label 1 with weight 2.0 and
feature 0 = 1.5. `index:` with no value is a missing value (the built-in algorithm's own test
data has such tokens), as is every index a line leaves out. Training
(`container/training/readers.py`, Arrow kernels over whole files) and serving
(`container/serving/codecs/libsvm_codec.py`, a request at a time) both follow it; serving reads
and ignores the label, weight and qid. `tests/test_libsvm_grammar.py` holds the one table both
are tested with.
"""

from __future__ import annotations

from dataclasses import dataclass, field

QID = "qid"
HELP = (
    "LIBSVM lines look like `label[:weight] [qid:N] index:value ...`: the first token is the "
    "label, indices are non-negative integers in ASCII digits, and `index:` with no value is a "
    "missing value."
)


class GrammarError(ValueError):
    """A token that breaks the grammar; `column` is its 1-based position on the line."""

    def __init__(self, column: int, token: str, reason: str) -> None:
        super().__init__(f"column {column}: {token[:40]!r} {reason}")
        self.column = column
        self.token = token
        self.reason = reason


@dataclass
class Line:
    """One line's parts, as text: label, weight, qid, and its (index, value) pairs."""

    label: str | None = None
    weight: str | None = None
    qid: str | None = None
    pairs: list[tuple[str, str]] = field(default_factory=list)


def is_index(text: str) -> bool:
    """A column position: ASCII digits only (`int()` would take `٣` and refuse `²`)."""
    return text.isascii() and text.isdigit()


def is_number(text: str) -> bool:
    """A label, weight or value: what `float()` reads, in ASCII and without `_` separators."""
    try:
        float(text)
    except ValueError:
        return False
    return text.isascii() and "_" not in text


def parse_line(line: str, check_values: bool = True) -> Line:
    """Split one line into its parts; raise `GrammarError` naming the first bad token.

    `check_values=False` leaves the feature values to the caller's own conversion (serving's
    numpy conversion of a whole ASCII body, then `is_number` to name a bad one)."""
    tokens = line.split()
    parsed = Line()
    if not tokens:
        return parsed
    label, colon, weight = tokens[0].partition(":")
    if not is_number(label) or (colon and not is_number(weight)):
        raise GrammarError(1, tokens[0], "is not a label; a line starts with 'label[:weight]'.")
    parsed.label, parsed.weight = label, weight if colon else None
    rest = tokens[1:]
    if rest and rest[0].startswith(QID + ":"):
        qid = rest[0][len(QID) + 1 :]
        if not is_index(qid):
            raise GrammarError(2, rest[0], "is not 'qid:N' with a non-negative integer N.")
        parsed.qid = qid
        rest = rest[1:]
    first = len(tokens) - len(rest) + 1
    for column, token in enumerate(rest, first):
        index, colon, value = token.partition(":")
        if not colon:
            raise GrammarError(column, token, "is not 'index:value'.")
        if not is_index(index):
            raise GrammarError(column, token, "has an index that is not a non-negative integer.")
        if check_values and value and not is_number(value):
            raise GrammarError(column, token, "has a value that is not a number.")
        parsed.pairs.append((index, value))
    return parsed
