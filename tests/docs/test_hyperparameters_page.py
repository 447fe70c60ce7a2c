"""docs/hyperparameters.md is the page the generator writes from the hyperparameter table."""

from __future__ import annotations

from container.training import hyperparameters_doc
from container.training.hyperparameters import PARAMS


def test_committed_page_is_what_the_table_generates() -> None:
    committed = hyperparameters_doc.PAGE.read_text()
    assert committed == hyperparameters_doc.render(), (
        f"{hyperparameters_doc.PAGE} is out of date with container/training/hyperparameters.py: "
        f"run `{hyperparameters_doc.COMMAND}` and commit the page."
    )


def test_page_lists_every_hyperparameter_and_alias() -> None:
    page = hyperparameters_doc.render()
    for param in PARAMS:
        assert f"| `{param.name}` |" in page, param.name
        for alias in param.aliases:
            assert f"`{alias}`" in page, alias


def test_check_mode_reports_a_stale_page(tmp_path, monkeypatch, capsys) -> None:
    stale = tmp_path / "hyperparameters.md"
    stale.write_text(hyperparameters_doc.render().replace("num_round", "num_rounds", 1))
    monkeypatch.setattr(hyperparameters_doc, "PAGE", stale)
    assert hyperparameters_doc.main(["--check"]) == 1
    assert hyperparameters_doc.COMMAND in capsys.readouterr().err
    assert hyperparameters_doc.main([]) == 0
    assert hyperparameters_doc.main(["--check"]) == 0
