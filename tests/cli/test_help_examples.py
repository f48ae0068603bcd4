"""Every subcommand's --help shows an example (issue 10): walk the whole command tree, not a hand-kept list."""

import click
import typer

from radcnn.cli.app import app


def _leaves(command: click.Command, path: tuple[str, ...] = ()):
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _leaves(sub, (*path, name))
    else:
        yield " ".join(path), command


def test_every_subcommand_help_has_an_example():
    root = typer.main.get_command(app)
    leaves = dict(_leaves(root))
    assert {"train", "deid run", "deid check", "federated simulate", "evaluate"} <= set(leaves)
    missing = [name for name, command in leaves.items() if "Example: radcnn " not in (command.help or "")]
    assert missing == []
