"""Reading the user guide as a test: code blocks, shell commands and links out of README.md and docs/*.md.

Conventions the pages follow (stated here, where they are enforced):

* In a ```console block, a line starting with ``$ `` is a command; the lines after it, up to the next ``$ ``, are
  what it printed. A trailing backslash continues a command on the next line.
* A command whose shown output starts with ``error:`` is an example of a refusal: it must exit with code 1 and
  print that line. Every other command must exit with code 0.
* Every ```console block of README.md is run, in order, in one empty folder, except ``make`` commands (``make
  test`` is CI itself; ``make demo`` is the long version of the README's tour). In docs pages, a ```console block is
  run when the line before its fence is ``<!-- test: run -->``; a page's marked blocks run in order in one empty
  folder of their own, so a page that runs commands starts by making its (tiny) data.
* ```python blocks of docs/python-api.md run in order in one namespace, in an empty folder.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
RUN_MARKER = "<!-- test: run -->"
_FENCE = re.compile(r"^```(\S*)\s*$")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    marked: bool  # preceded by RUN_MARKER

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


@dataclass(frozen=True)
class Command:
    block: Block
    line: str  # the command as a shell would read it (continuations joined)
    shown: tuple[str, ...]  # the output the page shows under it

    @property
    def expects_error(self) -> bool:
        return bool(self.shown) and self.shown[0].startswith("error:")


def code_blocks(page: Path) -> list[Block]:
    """Every fenced code block of a markdown page, with its language and whether it is marked to run."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        start, body = i, []
        i += 1
        while i < len(lines) and lines[i].rstrip() != "```":
            body.append(lines[i])
            i += 1
        previous = next((lines[j].strip() for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        blocks.append(Block(page, start + 1, match.group(1), "\n".join(body), previous == RUN_MARKER))
        i += 1  # the closing fence
    return blocks


def commands(block: Block) -> list[Command]:
    """The ``$ `` commands of a console block with the output shown under each."""
    found: list[Command] = []
    lines = block.text.splitlines()
    i = 0
    while i < len(lines):
        if not lines[i].startswith("$ "):
            i += 1
            continue
        command = lines[i][2:]
        while command.endswith("\\") and i + 1 < len(lines):
            i += 1
            command = command[:-1].rstrip() + " " + lines[i].strip()
        i += 1
        shown = []
        while i < len(lines) and not lines[i].startswith("$ "):
            shown.append(lines[i])
            i += 1
        found.append(Command(block, command.strip(), tuple(shown)))
    return found


def radcnn_environment() -> dict[str, str]:
    """The environment a reader has after `make install`: the project's virtual environment first on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["COLUMNS"] = "120"  # Rich tables wrap at the terminal width; a fixed width keeps messages on one line
    env.pop("RADCNN_KEY_FILE", None)
    return env


def flat(text: str) -> str:
    return " ".join(text.split())


def run_command(command: Command, cwd: Path, *, timeout: int = 300) -> None:
    """Run one documented command in `cwd` and check it behaved as the page says (see the module docstring)."""
    done = subprocess.run(
        ["bash", "-c", command.line],
        cwd=cwd,
        env=radcnn_environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    output = done.stdout + done.stderr
    where = f"{command.block.where}: `{command.line}`"
    if command.expects_error:
        assert done.returncode == 1, f"{where} should fail with exit code 1, got {done.returncode}:\n{output}"
        assert flat(command.shown[0]) in flat(output), f"{where} should print {command.shown[0]!r}, got:\n{output}"
    else:
        assert done.returncode == 0, f"{where} exited with {done.returncode}:\n{output[-3000:]}"


def shell_words(line: str) -> list[str]:
    return shlex.split(line, comments=True)


def pages() -> list[Path]:
    """README.md and every page of the user guide."""
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


@pytest.fixture
def guide() -> SimpleNamespace:
    """The helpers above, for the tests of this folder (conftest modules are not importable by name)."""
    names = ("ROOT", "DOCS", "code_blocks", "commands", "run_command", "shell_words", "pages", "flat")
    return SimpleNamespace(**{name: globals()[name] for name in names})


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests that take `page` run once per markdown page."""
    if "page" in metafunc.fixturenames:
        found = pages()
        metafunc.parametrize("page", found, ids=[str(p.relative_to(ROOT)) for p in found])
