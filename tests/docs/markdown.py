"""Reading the repository's Markdown the way the docs tests need: sections, table rows, fenced
code blocks, links and heading anchors. Deliberately small: the pages are ours, so this only
handles the Markdown they use (ATX headings, pipe tables, ``` fences)."""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCS = REPO_ROOT / "docs"

# Fences may be indented (a block inside a list item); the block's text is dedented.
_FENCE = re.compile(r"^( *)```([\w-]*)\n(.*?)^\1```", re.S | re.M)
_HEADING = re.compile(r"^(#{1,6}) +(.+?) *$", re.M)
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


@dataclass(frozen=True)
class CodeBlock:
    language: str
    text: str


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def code_blocks(text: str) -> list[CodeBlock]:
    """Every fenced block, in order, with its language tag ('' when there is none)."""
    return [CodeBlock(match.group(2), textwrap.dedent(match.group(3)))
            for match in _FENCE.finditer(text)]


def without_code(text: str) -> str:
    """The page with its fenced blocks blanked out (a `#` line in a shell block is no heading)."""
    return _FENCE.sub("", text)


def section(text: str, heading: str) -> str:
    """The body under the heading whose title is exactly `heading`, up to the next heading."""
    prose = without_code(text)
    headings = list(_HEADING.finditer(prose))
    for index, match in enumerate(headings):
        if match.group(2) == heading:
            end = headings[index + 1].start() if index + 1 < len(headings) else len(prose)
            return prose[match.end():end]
    raise AssertionError(f"no heading {heading!r}")


def table_rows(body: str) -> dict[str, str]:
    """The rows of the pipe table in `body` whose first cell is a `name`, by that name."""
    rows: dict[str, str] = {}
    lines = body.splitlines()
    for line, after in zip(lines, [*lines[1:], ""], strict=True):
        match = re.match(r"^\| *`([^`]+)` *\|(.*)$", line)
        if match and not re.match(r"^\| *:?-{3,}", after):  # a header row is no entry
            assert match.group(1) not in rows, f"{match.group(1)} is listed twice"
            rows[match.group(1)] = match.group(2)
    return rows


def backticked(text: str) -> set[str]:
    return set(re.findall(r"`([^`]+)`", text))


def anchor(title: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation but '_' and '-' dropped, spaces
    become '-'."""
    plain = re.sub(r"[`*]", "", title).strip().lower()
    return re.sub(r"[^\w\- ]", "", plain).replace(" ", "-")


def anchors(text: str) -> set[str]:
    seen: dict[str, int] = {}
    result: set[str] = set()
    for match in _HEADING.finditer(without_code(text)):
        base = anchor(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def links(text: str) -> list[str]:
    """Link targets outside code blocks."""
    return _LINK.findall(without_code(text))
