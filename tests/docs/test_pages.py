"""The pages as a newcomer meets them: the README opens with the two commands, stays short and
points at every page; every relative link and anchor resolves; `mqim --version` answers."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.markdown import DOCS, REPO_ROOT, anchors, code_blocks, links, read

README = REPO_ROOT / "README.md"
PAGES = [README, REPO_ROOT / "CONTRIBUTING.md", *sorted(DOCS.glob("*.md"))]
FIRST_COMMANDS = [
    "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/mqim serve",
    "bash .ci/run",
]


def test_readme_opens_with_the_two_commands() -> None:
    blocks = code_blocks(read(README))
    assert [block.text.strip() for block in blocks[:2]] == FIRST_COMMANDS


def test_readme_stays_short() -> None:
    assert len(README.read_bytes()) <= 12 * 1024


def test_readme_links_every_page() -> None:
    targets = {link.split("#")[0] for link in links(read(README))}
    for page in DOCS.glob("*.md"):
        assert f"docs/{page.name}" in targets, f"README.md does not link docs/{page.name}"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(REPO_ROOT)))
def test_relative_links_and_anchors_resolve(page: Path) -> None:
    text = read(page)
    for link in links(text):
        if "://" in link or link.startswith("mailto:"):
            continue
        target, _, fragment = link.partition("#")
        path = (page.parent / target).resolve() if target else page
        assert path.exists(), f"{page.name}: {link} points at nothing"
        if fragment:
            assert path.suffix == ".md", f"{page.name}: {link} has an anchor into a non-page"
            assert fragment in anchors(read(path)), f"{page.name}: no heading for {link}"


TOP_LEVEL = {path.name for path in REPO_ROOT.iterdir() if not path.name.startswith(".")} | {".ci"}


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(REPO_ROOT)))
def test_named_repository_paths_exist(page: Path) -> None:
    """A `path/like/this` the page names, under one of the repository's top-level folders."""
    for name in re.findall(r"`([\w.-]+(?:/[\w.@-]+)+/?)`", read(page)):
        if name.split("/")[0] in TOP_LEVEL:
            assert (REPO_ROOT / name).exists(), f"{page.name} names {name}, which is gone"


def test_version_prints_the_installed_version(tmp_path: Path) -> None:
    result = subprocess.run(  # our own CLI with a fixed argument
        [sys.executable, "-m", "mqim", "--version"], cwd=tmp_path, capture_output=True,
        text=True, timeout=30, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"mqim {importlib.metadata.version('mqim')}"
