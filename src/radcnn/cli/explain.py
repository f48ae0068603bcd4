"""`radcnn explain`: attribution maps, overlays and an HTML gallery for image files; `--list` shows the methods."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from radcnn.cli.crypto import KEY_FILE, PASSPHRASE_ENV, optional_secret
from radcnn.cli.render import ProgressCallback, console, error_console


def methods_table() -> Table:
    from radcnn.explain.registry import explainer_infos

    table = Table(title="explanation methods (radcnn explain --method NAME[,NAME...] | all)")
    table.add_column("method", no_wrap=True)
    for column in ("explains", "needs conv layer", "random", "summary"):
        table.add_column(column)
    for info in explainer_infos():
        table.add_row(
            info.name,
            str(info.extra.get("output", "")),
            "yes" if info.extra.get("needs_conv") else "no",
            "yes (seeded)" if info.extra.get("stochastic") else "no",
            info.summary,
        )
    return table


def explanations_table(explanations) -> Table:
    methods = list(dict.fromkeys(m for e in explanations for m in e.maps))
    table = Table(title="explanations (seconds per image)")
    table.add_column("image")
    table.add_column("target")
    table.add_column("probability", justify="right")
    for method in methods:
        table.add_column(method, justify="right")
    for e in explanations:
        cells = [f"{e.seconds[m]:.2f}" if m in e.seconds else "" for m in methods]
        table.add_row(Path(e.source).name, e.target, f"{e.probability:.3f}", *cells)
    return table


def register(app: typer.Typer) -> None:
    @app.command()
    def explain(
        run: Path = typer.Argument(None, help="Run directory (uses its best model) or a .safetensors model file."),
        images: list[Path] = typer.Argument(None, help="Image files to explain (DICOM, PNG, JPEG, TIFF, NIfTI)."),
        method: str = typer.Option("all", "--method", "-m", help="Comma-separated methods, or 'all' (see --list)."),
        out: Path = typer.Option(Path("explanations"), "--out", "-o", help="Output folder (maps, overlays, gallery)."),
        target: str = typer.Option(None, help="Label to explain (default: the only label, else the top one)."),
        layer: str = typer.Option(None, help="Grad-CAM layer (module name); default: found automatically."),
        samples: int = typer.Option(None, help="Samples for LIME / Kernel SHAP (default 300) and Gradient SHAP (16)."),
        segments: int = typer.Option(100, help="SLIC superpixels for LIME / Kernel SHAP."),
        fill: str = typer.Option("blur", help="What hides a region: blur | mean | zero."),
        seed: int = typer.Option(0, help="Seed for the random methods; same seed, same maps."),
        on_error: str = typer.Option("fail", help="fail | skip unreadable image files."),
        list_methods: bool = typer.Option(False, "--list", help="List the explanation methods and exit."),
        overwrite: bool = typer.Option(False, help="Replace an --out folder that radcnn explain did not write."),
        key_file: Path = KEY_FILE,
        passphrase_env: str = PASSPHRASE_ENV,
    ) -> None:
        """Explain each image with each method: .npy maps, overlay PNGs and a self-contained gallery.html.

        --out is replaced as a whole (no maps of an earlier run are left behind). For a run trained on encrypted
        data every output file is written encrypted.

        Example: radcnn explain runs/seed scans/a.dcm --method gradcam,occlusion -o explanations
        """
        from radcnn.errors import ConfigError
        from radcnn.explain.registry import ExplainSettings, parse_methods
        from radcnn.explain.run import explain_files

        if list_methods:
            console.print(methods_table())
            return
        if run is None or not images:
            raise ConfigError("give a run directory (or model file) and at least one image; or --list")
        names = parse_methods(method)
        settings = ExplainSettings(layer=layer, n_samples=samples, n_segments=segments, fill=fill)
        with ProgressCallback("explaining") as progress:
            result = explain_files(
                run,
                images,
                names,
                out,
                target=target,
                seed=seed,
                settings=settings,
                progress=progress,
                on_error=on_error,
                key=optional_secret(key_file, passphrase_env),
                overwrite=overwrite,
            )
        console.print(explanations_table(result.explanations))
        for explanation in result.explanations:
            for warning in explanation.warnings:
                error_console.print(f"[yellow]warning:[/] {explanation.source}: {warning}", highlight=False)
        for path, reason in result.skipped:
            error_console.print(f"[yellow]skipped:[/] {path}: {reason}", highlight=False)
        console.print(f"gallery: {result.output.gallery}\nmaps and overlays: {result.output.out_dir}")
