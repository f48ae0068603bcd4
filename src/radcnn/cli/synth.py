"""`radcnn synth`: write the synthetic chest radiograph dataset (DICOM or 16-bit PNG plus labels.csv)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from radcnn.cli.render import ProgressCallback, console


def register(app: typer.Typer) -> None:
    @app.command()
    def synth(
        out_dir: Path = typer.Argument(..., help="Folder to create (must be empty or missing)."),
        patients: int = typer.Option(200, "--patients", "-n", help="Number of patients (about 2.5 studies each)."),
        size: int = typer.Option(256, help="Image side in pixels."),
        fmt: str = typer.Option("dicom", "--format", "-f", help="dicom | png (16-bit grayscale)."),
        sites: str = typer.Option(None, help="Comma-separated site names (default: all, e.g. site_a,site_b)."),
        seed: int = typer.Option(0, help="Seed: the same seed writes byte-identical files."),
        workers: int = typer.Option(1, help="Parallel rendering processes."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty OUT_DIR."),
    ) -> None:
        """Synthesise phantom chest radiographs with nodules and consolidation, several studies per patient.

        Example: radcnn synth data/phantom --patients 200 --size 256 --format dicom
        """
        from radcnn.phantom.synth import synthesize_dataset

        with ProgressCallback("rendering") as progress:
            result = synthesize_dataset(
                out_dir,
                n_patients=patients,
                size=size,
                fmt=fmt,
                sites=sites,
                seed=seed,
                overwrite=overwrite,
                progress=progress,
                workers=workers,
            )
        positives = ", ".join(
            f"{label} {count} images / {result.positive_patients[label]} patients"
            for label, count in result.positives.items()
        )
        console.print(
            f"wrote {result.n_images} images of {result.n_patients} patients to {escape(str(result.out_dir))}; "
            f"labels: {escape(str(result.csv_path))} (positive: {positives})",
            highlight=False,
            soft_wrap=True,
        )
