"""Every relative link in README.md and docs/ reaches a file (and a heading, when it names one)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.paths import REPO

from .markdown_text import PAGES, README, anchors, code_blocks, link_targets


def _relative_links() -> list[tuple[Path, str]]:
    return [
        (page, target)
        for page in PAGES
        for target in link_targets(page.read_text())
        if not target.startswith(("http://", "https://", "mailto:"))
    ]


@pytest.mark.parametrize(
    ("page", "target"),
    _relative_links(),
    ids=lambda value: value.relative_to(REPO).as_posix() if isinstance(value, Path) else value,
)
def test_relative_link_resolves(page: Path, target: str) -> None:
    path, _, anchor = target.partition("#")
    destination = (page.parent / path).resolve() if path else page
    assert destination.exists(), f"{page.relative_to(REPO)} links to {target}: no such file"
    if anchor:
        assert destination.suffix == ".md", f"{target}: an anchor into a non-Markdown file"
        known = anchors(destination.read_text())
        assert anchor in known, (
            f"{page.relative_to(REPO)} links to {target}: no heading with that anchor in "
            f"{destination.relative_to(REPO)} (it has: {', '.join(sorted(known))})"
        )


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {
        (README.parent / t.partition("#")[0]).resolve() for t in link_targets(README.read_text())
    }
    missing = [p.name for p in PAGES[1:] if p.resolve() not in linked]
    assert not missing, f"docs pages not linked from README.md: {missing}"


def test_readme_json_blocks_parse() -> None:
    """The IAM policies are meant to be pasted as they are."""
    blocks = [b for b in code_blocks(README.read_text()) if b.language == "json"]
    assert len(blocks) >= 2
    for block in blocks:
        policy = json.loads(block.text)
        assert policy["Version"] == "2012-10-17"
        for statement in policy["Statement"]:
            assert statement["Effect"] == "Allow" and statement["Action"] and statement["Resource"]
