"""`radcnn demo`: synthesise → train → evaluate → predict on the embedded synthetic dataset."""

from __future__ import annotations

from pathlib import Path

import typer

from radcnn.cli.render import ProgressCallback, console, metrics_table


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        out: Path = typer.Option(Path("runs/demo"), "--out", "-o", help="Folder for everything the demo writes."),
        patients: int = typer.Option(200, help="Synthetic patients (about 2.5 radiographs each)."),
        epochs: int = typer.Option(10, help="Training epochs (the seed's default is 10)."),
        size: int = typer.Option(128, help="Model input side in pixels."),
        seed: int = typer.Option(0, help="Seed for the data, split and training."),
        hold_out_site: str = typer.Option(
            "site_c", help="Scanner site kept out of training and scored as an external cohort ('' for none)."
        ),
        overwrite: bool = typer.Option(
            False, help="Replace the contents of an OUT that an earlier demo did not write."
        ),
    ) -> None:
        """Run the whole pipeline on synthetic chest radiographs; results go under OUT.

        OUT must be new, empty or written by an earlier demo; anything else is left alone unless --overwrite.

        Example: radcnn demo --out runs/demo --patients 200 --epochs 10
        """
        import radcnn.training.fit  # noqa: F401  (imports Lightning, whose INFO chatter quiet_lightning mutes)
        from radcnn.cli.app import quiet_lightning
        from radcnn.demo import DemoSettings, run_demo
        from radcnn.reporting.evaluate_run import headline

        quiet_lightning()

        settings = DemoSettings(
            out_dir=out,
            n_patients=patients,
            epochs=epochs,
            model_size=size,
            seed=seed,
            overwrite=overwrite,
            hold_out_site=hold_out_site,
        )
        result = run_demo(settings, progress=ProgressCallback)
        console.print(metrics_table(result.metrics))
        from radcnn.cli.evaluate import external_tables

        for table in external_tables(result.metrics):
            console.print(table)
        from radcnn.cli.predict import render_predictions

        console.print(render_predictions(result.predictions, "table"))
        numbers = headline(result.metrics)
        timing = ", ".join(f"{k} {v:.0f} s" for k, v in result.seconds.items())
        console.print(f"[bold]time:[/] {timing}")
        console.print(f"[bold]results:[/] {result.out_dir.resolve()}")
        console.print(f"  report {result.report_html}")
        if result.explain_gallery is not None:
            console.print(f"  explanations {result.explain_gallery}")
        console.print(f"  data {result.labels_csv} | run {result.run_dir} | metrics {result.run_dir / 'metrics.json'}")
        console.print(
            "[bold]headline (test split, synthetic nodule task):[/] "
            + ", ".join(f"{k} {v:.3f}" for k, v in numbers.items())
        )
