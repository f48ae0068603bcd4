"""`radcnn explain-eval`: score every explanation method of a run — faithfulness, localisation, sanity check."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from radcnn.cli.render import ProgressCallback, console


def scores_table(evaluation) -> Table:
    table = Table(
        title=f"explanation scores — {evaluation.target}, {evaluation.n_images} true-positive image(s) with boxes"
    )
    columns = (
        ("method", "left"),
        ("deletion AUC ↓ (random)", "right"),
        ("beats random", "right"),
        ("insertion AUC ↑ (random)", "right"),
        ("pointing game (strict)", "right"),
        ("mass in boxes (area)", "right"),
        ("sanity ρ", "right"),
        ("sanity", "center"),
        ("s / image", "right"),
    )
    for name, justify in columns:
        table.add_column(name, justify=justify, no_wrap=name == "method")
    for s in evaluation.scores:
        table.add_row(
            s.method,
            f"{s.deletion_auc:.3f} ({s.deletion_auc_random:.3f})",
            f"{s.deletion_win_rate:.0%}",
            f"{s.insertion_auc:.3f} ({s.insertion_auc_random:.3f})",
            f"{s.pointing_game:.2f} ({s.pointing_game_strict:.2f})",
            f"{s.mass_in_boxes:.2f} ({s.box_area:.2f})",
            f"{s.sanity_correlation:+.2f}",
            "[green]pass[/]" if s.sanity_passed else "[red]FAIL[/]",
            f"{s.seconds_per_image:.2f}",
        )
    table.caption = (
        "deletion: lower is better; insertion: higher is better; random = same image, random pixel order. "
        f"pointing game: maximum within {evaluation.settings.get('pointing_tolerance_px', 0):.1f} px of a box "
        "(15 px at 224×224; strict: inside). "
        "sanity ρ: Spearman correlation with the trained model's maps once every layer is re-initialised "
        f"(fails at ≥ {evaluation.settings.get('sanity_threshold', 0.5)})."
    )
    return table


def register(app: typer.Typer) -> None:
    @app.command("explain-eval")
    def explain_eval(
        run: Path = typer.Argument(..., help="Run directory written by `radcnn train`."),
        method: str = typer.Option("all", "--method", "-m", help="Comma-separated methods, or 'all'."),
        split: str = typer.Option("test", help="Which split's images to use."),
        max_images: int = typer.Option(20, help="At most this many true-positive images with boxes."),
        target: str = typer.Option(None, help="Label to score (default: the run's first label)."),
        boxes: Path = typer.Option(None, help="NIH BBox_List_2017.csv with the lesion boxes (default: labels CSV)."),
        samples: int = typer.Option(None, help="Samples for LIME / Kernel SHAP (default 300)."),
        sanity_images: int = typer.Option(4, help="Images used by the layer-randomisation sanity check."),
        seed: int = typer.Option(0, help="Seed for image choice, random methods and random orderings."),
    ) -> None:
        """Print deletion/insertion AUC vs random, pointing game, mass in boxes and the sanity check per method.

        Example: radcnn explain-eval runs/seed --method gradcam,lime --max-images 20
        """
        from radcnn.explain.evaluate import evaluate_run_explanations
        from radcnn.explain.registry import ExplainSettings, parse_methods

        names = parse_methods(method)
        with ProgressCallback("scoring explanations") as progress:
            evaluation = evaluate_run_explanations(
                run,
                methods=names,
                split=split,
                max_images=max_images,
                target=target,
                boxes_csv=boxes,
                seed=seed,
                settings=ExplainSettings(n_samples=samples),
                sanity_images=sanity_images,
                progress=progress,
            )
        console.print(scores_table(evaluation))
        console.print(f"scores: {Path(run) / 'explain_eval.json'}")
