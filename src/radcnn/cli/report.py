"""`radcnn report RUN`: write a self-contained report.html and report.json into a trained run."""

from __future__ import annotations

from pathlib import Path

import typer

from radcnn.cli.crypto import KEY_FILE, PASSPHRASE_ENV, optional_secret
from radcnn.cli.render import ProgressCallback, console, format_value


def _ci(row: dict) -> str:
    return f"{row['low']:.3f} – {row['high']:.3f}" if row.get("low") is not None else ""


def register(app: typer.Typer) -> None:
    @app.command()
    def report(
        run: Path = typer.Argument(..., help="Run directory written by `radcnn train`."),
        gallery: int = typer.Option(4, help="Images per gallery category (TP, FP, FN, TN) and label."),
        bootstrap: int = typer.Option(1000, help="Patient bootstrap resamples for the 95% CIs (0 = none)."),
        seed: int = typer.Option(0, help="Bootstrap seed."),
        min_subgroup: int = typer.Option(30, help="Subgroups with fewer labelled images get counts only."),
        explain: bool = typer.Option(
            True, "--explain/--no-explain", help="Grad-CAM overlays in the gallery (needs the explain extra)."
        ),
        key_file: Path = KEY_FILE,
        passphrase_env: str = PASSPHRASE_ENV,
    ) -> None:
        """Evaluate RUN if needed, then write RUN/report.html (opens offline) and RUN/report.json.

        A run trained on encrypted data is read with its key (given, or the one its config names), and its report
        is written encrypted (report.html.rcenc): `radcnn decrypt` opens it.

        Example: radcnn report runs/seed
        """
        from rich.table import Table

        from radcnn.reporting.report import generate_report
        from radcnn.runs import RunDir

        with ProgressCallback("building the report") as progress:
            result = generate_report(
                RunDir.open(run, key=optional_secret(key_file, passphrase_env)),
                n_gallery=gallery,
                n_boot=bootstrap,
                seed=seed,
                subgroup_min_size=min_subgroup,
                explanations=explain,
                progress=progress,
            )
        evaluation = result.report["evaluation"]
        for name, section in evaluation["labels"].items():
            table = Table(
                title=f"{name} — {evaluation['split']} split, {evaluation['n_images']} images, "
                f"{evaluation['n_patients']} patients, threshold {section['threshold']['value']:.4g} "
                f"({section['threshold']['source']})"
            )
            table.add_column("metric")
            table.add_column("estimate", justify="right")
            table.add_column("95% CI (patients)", justify="right")
            for row in section["metrics"]:
                table.add_row(row["name"], format_value(row["estimate"]), _ci(row))
            console.print(table)
        if result.report["synthetic_data"]:
            console.print("[yellow]synthetic data:[/] the model card carries the phantom caveat")
        console.print(f"[dim]{result.report['explanations']['note']}[/]")
        console.print(f"[bold]report:[/] {result.html_path}\n[bold]data:[/]   {result.json_path}")
