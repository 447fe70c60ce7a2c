"""One LIBSVM grammar (`container/libsvm.py`): one table, read by `train`'s reader from a real
file and by the serving decoder from a request body; both must read every line the same way
(serving ignores the label, weight and qid) or refuse it with the same reason."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from container.errors import ClientError
from container.serving.codecs import DECODERS, Limits
from container.training.readers import read_libsvm

NAN = math.nan
LIMITS = Limits(max_rows=100, max_columns=1000)

READ = {
    # id: (line, (label, weight, qid, {index: value}))
    "label-and-features": ("1 0:0.5 3:2", (1.0, None, None, {0: 0.5, 3: 2.0})),
    "label-with-weight": ("1:2.0 0:1.5", (1.0, 2.0, None, {0: 1.5})),
    "index-without-value-is-missing": ("1 3:", (1.0, None, None, {3: NAN})),
    "qid": ("2 qid:7 1:0.5", (2.0, None, 7, {1: 0.5})),
    "negative-label": ("-1 0:1", (-1.0, None, None, {0: 1.0})),
    "float-label-and-weight": ("0.5:3 2:1e3", (0.5, 3.0, None, {2: 1000.0})),
    "label-alone": ("1", (1.0, None, None, {})),
    "nan-value": ("0 1:nan", (0.0, None, None, {1: NAN})),
    "unordered-indices": ("0 4:1 0:2", (0.0, None, None, {4: 1.0, 0: 2.0})),
    "tabs-and-spaces": ("1\t0:1  2:3 ", (1.0, None, None, {0: 1.0, 2: 3.0})),
}
REFUSED = {
    # id: (line, what both sides say)
    "label-not-a-number": ("yes 0:1", "'yes' is not a label"),
    "weight-not-a-number": ("1:w 0:1", "'1:w' is not a label"),
    "index-not-a-number": ("1 x:3", "'x:3' has an index that is not a non-negative integer"),
    "negative-index": ("1 -1:3", "'-1:3' has an index that is not a non-negative integer"),
    "non-ascii-index": ("1 \u0663:3", "has an index that is not a non-negative integer"),
    "superscript-index": ("1 \u00b2:3", "has an index that is not a non-negative integer"),
    "token-without-colon": ("1 0:1 7", "'7' is not 'index:value'"),
    "value-not-a-number": ("1 0:abc", "not a number"),
    "non-ascii-value": ("1 0:\u0663", "not a number"),
    "underscore-in-value": ("1 0:1_0", "not a number"),
    "qid-not-a-number": ("1 qid:x 0:1", "'qid:x' is not 'qid:N'"),
}


def _train_read(tmp_path: Path, line: str) -> tuple[float, float | None, int | None, dict]:
    path = tmp_path / "data.libsvm"
    path.write_text(line + "\n", encoding="utf-8")
    batch = read_libsvm(path)
    assert batch.num_rows == 1
    weight = None if batch.weight is None else float(batch.weight[0])
    qid = None if batch.qid is None else int(batch.qid[0])
    return float(batch.label[0]), weight, qid, _pairs(batch.features)


def _serve_read(line: str) -> dict:
    matrix = DECODERS["text/libsvm"](line.encode(), LIMITS)
    assert matrix.shape[0] == 1
    return _pairs(matrix)


def _pairs(matrix: sp.csr_matrix) -> dict:
    row = matrix.getrow(0)
    return {int(i): float(v) for i, v in zip(row.indices, row.data, strict=True)}


def _same(got: dict, expected: dict) -> bool:
    return got.keys() == expected.keys() and all(
        (math.isnan(v) and math.isnan(got[k])) or np.isclose(got[k], v) for k, v in expected.items()
    )


@pytest.mark.parametrize("name", list(READ))
def test_train_reads_each_line_by_the_grammar(tmp_path: Path, name: str) -> None:
    line, (label, weight, qid, features) = READ[name]
    got_label, got_weight, got_qid, got_features = _train_read(tmp_path, line)
    assert (got_label, got_weight, got_qid) == (label, weight, qid)
    assert _same(got_features, features), got_features


@pytest.mark.parametrize("name", list(READ))
def test_serve_reads_the_same_features_and_ignores_label_weight_and_qid(name: str) -> None:
    line, (_, _, _, features) = READ[name]
    got = _serve_read(line)
    assert _same(got, features), got


@pytest.mark.parametrize("name", list(REFUSED))
def test_train_refuses_each_broken_line_with_the_reason(tmp_path: Path, name: str) -> None:
    line, reason = REFUSED[name]
    path = tmp_path / "data.libsvm"
    path.write_text("0 0:1\n" + line + "\n", encoding="utf-8")
    with pytest.raises(ClientError) as raised:
        read_libsvm(path)
    assert "line 2" in raised.value.message and reason in raised.value.message, raised.value


@pytest.mark.parametrize("name", list(REFUSED))
def test_serve_refuses_each_broken_line_with_the_same_reason(name: str) -> None:
    line, reason = REFUSED[name]
    with pytest.raises(ClientError) as raised:
        DECODERS["text/libsvm"](("0 0:1\n" + line).encode(), LIMITS)
    assert raised.value.status == 400
    assert "row 2" in raised.value.message and reason in raised.value.message, raised.value
