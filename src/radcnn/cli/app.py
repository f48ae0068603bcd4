"""Entry point of the `radcnn` command: builds the Typer app and turns radcnn errors into one clear line."""

from __future__ import annotations

import importlib
import logging
import signal
import sys
import threading
import warnings

import typer
from rich.markup import escape

from radcnn.cli.render import error_console
from radcnn.errors import Interrupted, RadcnnError

app = typer.Typer(
    name="radcnn",
    help="CNN-based chest radiograph classification: synthesise, train, evaluate, explain, protect.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # docstring paragraphs are reflowed to the terminal; `code` is shown as code
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
    "serve",
    "dicom_node",
    "export",
    "federated",
)


class _OwnInfoFilter(logging.Filter):
    """radcnn's INFO messages are for the user; third-party libraries only get through with warnings."""

    def __init__(self, verbose: bool):
        super().__init__()
        self.verbose = verbose

    def filter(self, record: logging.LogRecord) -> bool:
        return self.verbose or record.name.startswith("radcnn") or record.levelno >= logging.WARNING


def quiet_lightning() -> None:
    """Lightning installs its own INFO handler when imported; call after importing anything that imports it."""
    for name in ("lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING and not logging.getLogger("radcnn").isEnabledFor(logging.DEBUG):
            logger.setLevel(logging.WARNING)


def _print_version(value: bool) -> None:
    if value:
        from radcnn import __version__

        typer.echo(f"radcnn {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show debug logging."),
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_OwnInfoFilter(verbose))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    if not verbose:
        # Deprecation notices from inside third-party packages are for their developers, not radcnn's users.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=r".*(LeafSpec|does not have many workers).*")


for _name in SUBCOMMAND_MODULES:
    importlib.import_module(f"radcnn.cli.{_name}").register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI. radcnn's own errors become one red line and exit code 1; no traceback for the user.

    Typer runs in standalone mode so that --help and usage errors behave as usual (exit code 2 with the usage
    line); only radcnn's exceptions pass through it and are rendered here.
    """
    previous = None
    if threading.current_thread() is threading.main_thread():
        # radcnn answers Ctrl-C (or `kill -INT`) even when a shell started it with SIGINT ignored (background jobs),
        # and with its own exception: click would turn a KeyboardInterrupt into a silent exit 130.
        previous = signal.signal(signal.SIGINT, _stop)
    # The root logging handler and the warning filters set by `_root` belong to this call only: a caller that runs
    # main() in-process (tests, notebooks) gets its own logging and warnings back afterwards.
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        with warnings.catch_warnings():
            app(args=argv, prog_name="radcnn", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except Interrupted as exc:
        error_console.print(f"[bold red]interrupted:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return 130
    except RadcnnError as exc:
        error_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return 1
    except (_Stop, KeyboardInterrupt):
        # Outputs are written under temporary names and renamed when complete, so nothing half-written remains;
        # the decode cache keeps the images finished so far.
        error_console.print(
            "[bold red]interrupted:[/] stopped before finishing; nothing half-written was left behind "
            "(images decoded so far stay in the cache) — run the same command again to continue",
            soft_wrap=True,
        )
        return 130
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    return 0


class _Stop(BaseException):
    """Ctrl-C inside a radcnn command (a BaseException, so that no `except Exception` on the way swallows it)."""


def _stop(signum, frame) -> None:
    raise _Stop()


if __name__ == "__main__":
    sys.exit(main())
