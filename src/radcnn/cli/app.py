"""Entry point of the `radcnn` command: builds the Typer app and turns radcnn errors into one clear line."""

from __future__ import annotations

import importlib
import logging
import sys

import typer

from radcnn.cli.render import error_console
from radcnn.errors import RadcnnError

app = typer.Typer(
    name="radcnn",
    help="CNN-based chest radiograph classification: synthesise, train, evaluate, explain, protect.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Each module exposes `register(app)`. Add a subcommand by adding its module name here.
SUBCOMMAND_MODULES = (
    "synth",
    "train",
    "evaluate",
    "report",
    "compare",
    "predict",
    "demo",
    "models",
    "data",
    "deid",
    "crypto",
    "explain",
    "explain_eval",
)


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show debug logging."),
) -> None:
    level = logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # Third-party libraries are chatty at INFO; radcnn's own messages stay visible.
    for noisy in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning", "torch"):
        logging.getLogger(noisy).setLevel(logging.WARNING if not verbose else logging.INFO)


for _name in SUBCOMMAND_MODULES:
    importlib.import_module(f"radcnn.cli.{_name}").register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI. radcnn's own errors become one red line and exit code 1; no traceback for the user.

    Typer runs in standalone mode so that --help and usage errors behave as usual (exit code 2 with the usage
    line); only radcnn's exceptions pass through it and are rendered here.
    """
    try:
        app(args=argv, prog_name="radcnn", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except RadcnnError as exc:
        error_console.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False, soft_wrap=True)
        return 1
    except KeyboardInterrupt:
        error_console.print("[bold red]interrupted[/]")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
