"""`run_demo`: the whole pipeline on the embedded synthetic dataset — synthesise, train, evaluate, predict.

Everything is written under one folder (default `runs/demo/`)::

    data/            synthetic DICOM radiographs + labels.csv (+ lesion masks)
    run/             the trained run (config, split, best model, logs, metrics.json, predictions.csv,
                     report.html — self-contained, with Grad-CAM overlays in its gallery); trained on two scanner
                     sites with the third (site_c) held out, so metrics.json and the report set the internal test
                     AUC beside the held-out site's (the shift gap)
    explain/         Grad-CAM, Integrated Gradients, occlusion, LIME and Kernel SHAP on four test images:
                     gallery.html (methods side by side), per-image .npy maps and overlay PNGs
    demo_predictions.csv   `predict` on a few test images, as a user would call it
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from radcnn.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from radcnn.io import atomic_path
from radcnn.outputs import claim, mark, owner
from radcnn.runs import RunDir

log = logging.getLogger(__name__)

ProgressFactory = Callable[[str], object]  # returns a context manager that is also a progress(done, total) callable


@dataclass(frozen=True)
class DemoSettings:
    out_dir: Path = Path("runs/demo")
    n_patients: int = 200
    stored_size: int = 256
    model_size: int = 128
    epochs: int = 10
    seed: int = 0
    model: str = "seed_cnn"
    predict_count: int = 6
    explain_count: int = 4  # test images in the explanation gallery (0: none)
    # site-held-out validation: this scanner site is kept out of training and validation and scored as an
    # external cohort, so the report shows the shift gap (internal vs held-out-site AUC); "" trains on all sites
    hold_out_site: str = "site_c"
    overwrite: bool = False  # replace the contents of an out_dir that an earlier demo did not write


@dataclass
class DemoResult:
    out_dir: Path
    labels_csv: Path
    run_dir: Path
    metrics: dict
    predictions: list
    predictions_csv: Path
    report_html: Path
    explain_gallery: Path | None = None
    seconds: dict[str, float] = field(default_factory=dict)


def run_demo(settings: DemoSettings, *, progress: ProgressFactory | None = None) -> DemoResult:
    """Run the demo into ``settings.out_dir``: a folder that is new, empty, or written by an earlier demo (anything
    else only with ``settings.overwrite``)."""
    from radcnn.phantom.synth import synthesize_dataset
    from radcnn.reporting.evaluate_run import evaluate_run
    from radcnn.serve.predictor import Predictor
    from radcnn.training.fit import fit

    out = Path(settings.out_dir)
    claim(out, "demo", overwrite=settings.overwrite)
    out.mkdir(parents=True, exist_ok=True)
    mark(out, "demo")
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    with _progress(progress, "synthesising radiographs") as tick:
        synth = synthesize_dataset(
            out / "data",
            n_patients=settings.n_patients,
            size=settings.stored_size,
            fmt="dicom",
            seed=settings.seed,
            overwrite=settings.overwrite or owner(out / "data") == "synth",
            progress=tick,
        )
    seconds["synthesise"] = time.perf_counter() - start

    config = RunConfig(
        data=DataConfig(
            source=str(synth.csv_path),
            image_size=(settings.model_size, settings.model_size),
            hold_out_site=settings.hold_out_site,
        ),
        model=ModelConfig(name=settings.model),
        train=TrainConfig(epochs=settings.epochs, seed=settings.seed),
    )
    start = time.perf_counter()
    with _progress(progress, "decoding images into the cache") as tick:
        result = fit(config, out / "run", overwrite=True, cache_progress=tick)
    seconds["train"] = time.perf_counter() - start

    start = time.perf_counter()
    evaluation = evaluate_run(result.run_dir)
    seconds["evaluate"] = time.perf_counter() - start

    start = time.perf_counter()
    from radcnn.reporting.report import generate_report

    report = generate_report(result.run_dir)
    seconds["report"] = time.perf_counter() - start

    gallery = None
    if settings.explain_count > 0:
        from radcnn.explain.runs import explain_run_gallery

        start = time.perf_counter()
        with _progress(progress, "explaining test images") as tick:
            gallery = explain_run_gallery(
                result.run_dir,
                out / "explain",
                n_images=settings.explain_count,
                seed=settings.seed,
                progress=tick,
                overwrite=settings.overwrite,
            ).gallery
        seconds["explain"] = time.perf_counter() - start

    import pandas as pd

    test_rows = RunDir(result.run_dir).split_rows("test")
    picked = test_rows.sort_values("nodule", ascending=False).groupby("nodule").head(settings.predict_count // 2)
    predictor = Predictor.from_path(result.run_dir)
    predictions = predictor.predict_files(list(picked["path"]))
    table = pd.DataFrame(
        [
            {
                "path": p.path,
                "nodule_probability": p.probabilities["nodule"],
                "nodule_positive": p.decisions["nodule"],
            }
            for p in predictions
        ]
    )
    table["nodule_truth"] = picked["nodule"].to_numpy()
    predictions_csv = out / "demo_predictions.csv"
    with atomic_path(predictions_csv) as tmp:
        table.to_csv(tmp, index=False)
    return DemoResult(
        out,
        synth.csv_path,
        result.run_dir,
        evaluation.metrics,
        predictions,
        predictions_csv,
        report.html_path,
        gallery,
        seconds,
    )


class _NoProgress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def __call__(self, done: int, total: int) -> None:
        return None


def _progress(factory: ProgressFactory | None, description: str):
    return factory(description) if factory is not None else _NoProgress()
