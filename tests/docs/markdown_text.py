"""Reading the project's Markdown: fenced code blocks, links, headings and their anchors."""

from __future__ import annotations

import re
from dataclasses import dataclass

from tests.support.paths import REPO

README = REPO / "README.md"
PAGES = (README, *sorted((REPO / "docs").glob("*.md")))

_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


@dataclass(frozen=True)
class Block:
    """A fenced code block: its language tag and its text."""

    language: str
    text: str


def code_blocks(markdown: str) -> list[Block]:
    return [Block(m.group(1), m.group(2)) for m in _FENCE.finditer(markdown)]


def prose(markdown: str) -> str:
    """The text without fenced blocks and inline code, where a link is really a link."""
    return _INLINE_CODE.sub("", _FENCE.sub("", markdown))


def link_targets(markdown: str) -> list[str]:
    return _LINK.findall(prose(markdown))


def section(markdown: str, heading: str) -> str:
    """The text under `## heading`, up to the next heading of the same level."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", markdown, re.M | re.S)
    if match is None:
        raise LookupError(f"no '## {heading}' section")
    return match.group(1)


def anchors(markdown: str) -> set[str]:
    """GitHub's anchors for the headings: lower case, punctuation dropped, spaces as '-'."""
    found: set[str] = set()
    for line in _FENCE.sub("", markdown).splitlines():
        match = re.match(r"^#{1,6} (.+)$", line)
        if not match:
            continue
        slug = re.sub(r"[^\w\- ]", "", match.group(1).replace("`", "").lower()).replace(" ", "-")
        candidate, n = slug, 0
        while candidate in found:
            n += 1
            candidate = f"{slug}-{n}"
        found.add(candidate)
    return found
