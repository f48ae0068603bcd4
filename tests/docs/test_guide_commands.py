"""The commands a docs page marks with ``<!-- test: run -->`` run as written, in order, in an empty folder.

Marked pages make their own tiny data first (a few dozen synthetic patients, 32-pixel models, one or two epochs),
so each page's examples stand on their own; see this folder's conftest.py for the conventions.
"""

from __future__ import annotations

from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
# The pages whose runnable examples are run; a page that gains a marked block must be listed (checked below).
MARKED_PAGES = ("data.md", "training.md", "evaluation.md", "explanations.md", "encryption.md", "deidentification.md")


def test_the_list_of_marked_pages_is_complete(guide):
    marked = sorted(p.name for p in guide.DOCS.glob("*.md") if any(b.marked for b in guide.code_blocks(p)))
    assert marked == sorted(MARKED_PAGES)
    for page in guide.DOCS.glob("*.md"):
        for block in guide.code_blocks(page):
            assert not block.marked or block.lang == "console", f"{block.where}: only console blocks are run"


@pytest.mark.slow
@pytest.mark.parametrize("name", MARKED_PAGES)
def test_the_marked_commands_of_a_page_run_as_written(guide, name, tmp_path):
    commands = [c for b in guide.code_blocks(DOCS / name) if b.marked for c in guide.commands(b)]
    assert commands, f"{name} has no marked commands"
    for command in commands:
        guide.run_command(command, tmp_path)
