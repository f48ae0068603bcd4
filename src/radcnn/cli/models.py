"""`radcnn models`: list the registered architectures."""

from __future__ import annotations

import typer
from rich.table import Table

from radcnn.cli.render import console


def register(app: typer.Typer) -> None:
    @app.command("models")
    def list_models() -> None:
        """List registered model names.

        Example: radcnn models
        """
        from radcnn.models.registry import model_infos

        table = Table(title="registered models")
        table.add_column("name")
        table.add_column("description")
        table.add_column("family")
        for info in model_infos():
            table.add_row(info.name, info.summary, ", ".join(info.tags) or "radcnn")
        console.print(table)
