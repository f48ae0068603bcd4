"""Static checks of README.md and docs/*.md: links and images exist, `radcnn` commands use real subcommands and
options, and Python examples import names that exist. Cheap, so they run on every page."""

from __future__ import annotations

import ast
import importlib
import re
import unicodedata
from pathlib import Path

from typer.main import get_command

ROOT = Path(__file__).resolve().parents[2]
# Pages another branch writes and the lead merges: linked from the README before they exist here.
PENDING_PAGES: set[Path] = set()

_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_SHELL_SPLIT = re.compile(r"\s*(?:&&|\|\||;|\|)\s*")
_ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def _prose(page: Path) -> str:
    """The page without fenced code blocks and inline code (links there are examples, not links)."""
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[*_`]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    kept = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN")
    return kept.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for line in re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M).splitlines():
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            slug = _slug(match.group(1))
            anchors.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
            seen[slug] = seen.get(slug, 0) + 1
    return anchors


def test_links_and_images_point_at_files_and_headings_that_exist(page):
    broken = []
    for target in _LINK.findall(_prose(page)):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path_part, _, anchor = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page
        if resolved in PENDING_PAGES:
            continue
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(f"{target}: no heading with anchor #{anchor} in {resolved.name}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_the_readme_links_every_page_of_the_guide():
    readme = _prose(ROOT / "README.md")
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in _LINK.findall(readme)}
    missing = [p.name for p in (ROOT / "docs").glob("*.md") if p.resolve() not in linked]
    assert not missing, f"README.md does not link {missing}"


def test_the_readme_stays_short():
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 300


# ----- radcnn commands shown on the pages


def _command_lines(guide, page: Path) -> list[tuple[str, str]]:
    """(where, command line) of every shell command the page shows: `$ ` lines of console blocks and every line
    of bash blocks (continuations joined)."""
    found = []
    for block in guide.code_blocks(page):
        if block.lang == "console":
            found += [(block.where, c.line) for c in guide.commands(block)]
        elif block.lang in ("bash", "sh", "shell"):
            joined = re.sub(r"\\\n\s*", " ", block.text)
            found += [(block.where, line.strip()) for line in joined.splitlines() if line.strip()]
    return found


def _radcnn_invocations(line: str) -> list[list[str]]:
    """The argument lists of the `radcnn` calls in one shell line (pipes, && and env assignments handled)."""
    calls = []
    for segment in _SHELL_SPLIT.split(line.split(" #")[0]):
        words = segment.replace(">", " > ").split()
        while words and _ENV_ASSIGNMENT.match(words[0]):
            words = words[1:]
        if words and words[0] == "radcnn":
            calls.append(words[1 : words.index(">")] if ">" in words else words[1:])
    return calls


def _resolve(root, args: list[str]):
    """(command, its arguments, the chain of groups down to it); Typer ships its own click, so groups are duck-typed."""
    command, chain = root, [root]
    rest = list(args)
    while hasattr(command, "commands") and rest and not rest[0].startswith("-"):
        sub = command.commands.get(rest[0])
        if sub is None:
            default = getattr(command, "default_command", None) or ("run" if "run" in command.commands else None)
            if default is None:
                raise AssertionError(f"unknown subcommand {rest[0]!r}")
            sub = command.commands[default]
        else:
            rest = rest[1:]
        command = sub
        chain.append(command)
    return command, rest, chain


def test_radcnn_commands_use_real_subcommands_and_options(guide, page):
    root = get_command(importlib.import_module("radcnn.cli.app").app)
    problems = []
    for where, line in _command_lines(guide, page):
        for args in _radcnn_invocations(line):
            if "…" in args or "..." in args:
                args = [a for a in args if a not in ("…", "...")]
            try:
                command, rest, chain = _resolve(root, args)
            except AssertionError as exc:
                problems.append(f"{where}: `{line}`: {exc}")
                continue
            known = {"--help"}
            for cmd in chain:
                for param in cmd.params:
                    known.update(getattr(param, "opts", ()))
                    known.update(getattr(param, "secondary_opts", ()))
            for word in rest:
                flag = word.split("=", 1)[0]
                is_flag = flag.startswith("-") and not re.match(r"^-\d", flag) and flag not in ("-", "--")
                if is_flag and flag not in known:
                    problems.append(f"{where}: `{line}`: {flag} is not an option of `{command.name}`")
    assert not problems, "\n".join(problems)


# ----- Python examples


def test_python_examples_parse_and_import_names_that_exist(guide, page):
    problems = []
    for block in guide.code_blocks(page):
        if block.lang != "python":
            continue
        try:
            tree = ast.parse(block.text)
        except SyntaxError as exc:
            problems.append(f"{block.where}: not valid Python: {exc}")
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "radcnn":
                try:
                    module = importlib.import_module(node.module)
                except ImportError as exc:
                    problems.append(f"{block.where}: from {node.module} import ...: {exc}")
                    continue
                for alias in node.names:
                    if not hasattr(module, alias.name):
                        try:
                            importlib.import_module(f"{node.module}.{alias.name}")
                        except ImportError:
                            problems.append(f"{block.where}: {node.module} has no {alias.name}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "radcnn":
                        try:
                            importlib.import_module(alias.name)
                        except ImportError as exc:
                            problems.append(f"{block.where}: import {alias.name}: {exc}")
    assert not problems, "\n".join(problems)


KNOWN_LANGUAGES = {"python", "console", "bash", "yaml", "toml", "text", "json"}


def test_every_code_block_names_a_language_the_checks_know(guide, page):
    # An untagged block would escape the command and import checks above without anyone noticing.
    odd = [f"{b.where} ({b.lang or 'no language'})" for b in guide.code_blocks(page) if b.lang not in KNOWN_LANGUAGES]
    assert not odd, f"code blocks with a missing or unknown language tag: {odd}"


def test_the_page_reader_finds_commands_outputs_refusals_and_marks(guide, tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "Text.\n\n<!-- test: run -->\n```console\n$ radcnn synth d \\\n    --patients 3\nwrote 7 images\n"
        "$ radcnn train --out r\nerror: no data\n```\n\n```bash\nradcnn models\n```\n",
        encoding="utf-8",
    )
    console, bash = guide.code_blocks(page)
    assert (console.lang, console.marked, console.line) == ("console", True, 4)
    assert (bash.lang, bash.marked) == ("bash", False)
    first, second = guide.commands(console)
    assert first.line == "radcnn synth d --patients 3" and first.shown == ("wrote 7 images",)
    assert not first.expects_error and second.expects_error
