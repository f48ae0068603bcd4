"""`radcnn compare RUN_A RUN_B`: ROC AUC difference of two runs on the same test images (DeLong, paired bootstrap)."""

from __future__ import annotations

from pathlib import Path

import typer

from radcnn.cli.render import console


def _p(value) -> str:
    if value is None:
        return "—"
    return "< 0.0001" if value < 1e-4 else f"{value:.4f}"


def _interval(test: dict) -> str:
    if test.get("ci_low") is None:
        return "—"
    return f"[{test['ci_low']:+.3f}, {test['ci_high']:+.3f}]"


def register(app: typer.Typer) -> None:
    @app.command()
    def compare(
        run_a: Path = typer.Argument(..., help="First run directory."),
        run_b: Path = typer.Argument(..., help="Second run directory (scored on the same images)."),
        out: Path = typer.Option(Path("comparison.json"), "--out", "-o", help="Where to write the comparison JSON."),
        split: str = typer.Option("test", help="Which split to compare on: test | val."),
        bootstrap: int = typer.Option(1000, help="Paired patient-bootstrap resamples."),
        seed: int = typer.Option(0, help="Bootstrap seed."),
    ) -> None:
        """Test whether RUN_A and RUN_B differ in ROC AUC on the same images (difference = A − B).

        Example: radcnn compare runs/seed runs/densenet -o comparison.json
        """
        from rich.table import Table

        from radcnn.reporting.comparison import compare_runs

        result = compare_runs(run_a, run_b, split=split, n_boot=bootstrap, seed=seed, out=out)
        data = result.comparison
        rows = data["same_rows"]
        table = Table(
            title=f"ROC AUC, A − B, on the same {rows['n_images']} {data['split']} images ({rows['n_patients']} patients)"
        )
        for column in ("label", "AUC A", "AUC B", "A − B", "test", "95% CI", "p"):
            table.add_column(column, justify="left" if column in ("label", "test") else "right", no_wrap=True)
        for name, entry in data["labels"].items():
            for key, title in (("delong", "DeLong"), ("paired_bootstrap", "bootstrap")):
                test = entry[key]
                first = key == "delong"
                table.add_row(
                    name if first else "",
                    f"{test['auc_a']:.3f}" if first and test["auc_a"] is not None else "",
                    f"{test['auc_b']:.3f}" if first and test["auc_b"] is not None else "",
                    f"{test['diff']:+.3f}" if first and test["diff"] is not None else "",
                    title,
                    _interval(test),
                    _p(test["p_value"]),
                )
        console.print(f"A: {data['run_a']['path']} ({data['run_a']['model']})")
        console.print(f"B: {data['run_b']['path']} ({data['run_b']['model']})")
        console.print(table)
        console.print(f"[dim]bootstrap: {data['n_boot']} paired resamples of patients. {data['note']}[/]")
        console.print(f"[bold]comparison:[/] {result.out_path}")
