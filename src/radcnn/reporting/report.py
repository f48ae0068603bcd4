"""`generate_report`: a self-contained ``report.html`` and a machine-readable ``report.json`` for a trained run.

The HTML opens offline and can be mailed or attached to a paper's supplement as one file: every figure and
thumbnail is an inline base64 PNG, the CSS is inline, and there are no scripts, fonts or links to anything
outside the file. ``report.json`` holds the same content as data (curves, tables, gallery choices, model card)
for anyone who wants to re-plot or compare runs.

What it contains: the configuration; the data summary (images, patients and class balance per split, the
leakage check, skipped files); test metrics with 95% patient-bootstrap intervals; the decision threshold and
how it was chosen (on validation, with its operating point there); ROC, precision-recall, calibration and
confusion-matrix plots; training curves; subgroup tables (sex, age band, view, site when recorded); a gallery
of true/false positives/negatives; and a model card.

The test split is evaluated first when ``metrics.json`` is missing, and the validation split (without
bootstrap) when ``metrics_val.json`` is missing, to show the threshold's operating point where it was chosen;
both leave their usual files in the run directory.

A run trained on encrypted data gets its report encrypted too (``report.html.rcenc``, ``report.json.rcenc``): the
gallery shows patients' radiographs and the tables list their files. `radcnn decrypt` opens it.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path

import yaml

from radcnn.errors import DataError
from radcnn.evaluation.calibration import calibration_curve_data
from radcnn.io import json_text
from radcnn.reporting import plots
from radcnn.reporting.evaluate_run import evaluate_run
from radcnn.reporting.gallery import CATEGORY_TITLES, GalleryImages, gallery_entries
from radcnn.reporting.model_card import build_model_card
from radcnn.reporting.report_data import (
    data_section,
    is_synthetic,
    json_safe,
    metric_rows,
    read_predictions,
    subgroup_rows,
    threshold_section,
    training_section,
)
from radcnn.reporting.report_explain import find_explainer
from radcnn.reporting.report_external import external_section, operating_section
from radcnn.reporting.report_federated import federated_section
from radcnn.runs import REPORT_HTML, REPORT_JSON, RunDir, metrics_name, predictions_name

log = logging.getLogger(__name__)

REPORT_VERSION = 1
TEMPLATE = "report.html.j2"
STEPS = ("evaluating the test split", "evaluating the validation split", "plots", "subgroups", "gallery", "writing")

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ReportResult:
    html_path: Path
    json_path: Path
    report: dict = field(default_factory=dict, repr=False, compare=False)  # the content of report.json


class _RunData:
    """The run's rebuilt data, made at most once and only if something needs it (evaluation, gallery)."""

    def __init__(self, run: RunDir):
        self.run, self._data = run, None

    def get(self):
        if self._data is None:
            self._data = self.run.rebuild_data()
        return self._data


def _metrics(run: RunDir, split: str, n_boot: int, seed: int, data: _RunData) -> dict:
    metrics = run.metrics(split)
    if metrics is not None and run.has(predictions_name(split)):
        return metrics
    log.info("%s: no %s; evaluating the %s split first", run.path, metrics_name(split), split)
    return evaluate_run(run, split=split, n_boot=n_boot, seed=seed, data=data.get()).metrics


def generate_report(
    run_dir: str | Path | RunDir,
    *,
    n_gallery: int = 4,
    n_boot: int = 1000,
    seed: int = 0,
    subgroup_min_size: int = 30,
    explanations: bool = True,
    progress: Progress | None = None,
) -> ReportResult:
    """Write ``report.html`` and ``report.json`` into ``run_dir`` (see the module docstring).

    ``n_gallery`` images per gallery category and label; ``n_boot`` patient-bootstrap resamples for the
    intervals (test metrics when they are computed here, and the subgroup tables); subgroups with fewer
    than ``subgroup_min_size`` labelled images get counts but no metrics. ``explanations`` adds Grad-CAM
    overlays to the gallery when the ``explain`` extra is installed. ``progress(done, total)`` is called
    after each step.
    """
    run = run_dir if isinstance(run_dir, RunDir) else RunDir.open(run_dir)
    done = 0

    def step() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, len(STEPS))

    data = _RunData(run)
    metrics = _metrics(run, "test", n_boot, seed, data)
    step()
    val_metrics = _metrics(run, "val", 0, seed, data)
    step()

    config = run.config_dict()
    summary = run.data_summary()
    split_table = run.split_table()
    labels = list(metrics["labels"])
    predictions = read_predictions(run, metrics["split"], labels)
    synthetic = is_synthetic(summary, config)
    training, epochs = training_section(run)

    figures: dict[str, bytes] = {}
    sections: dict[str, dict] = {}
    for name, entry in metrics["labels"].items():
        sections[name] = _label_section(name, entry, config, val_metrics, predictions, figures)
    if epochs is not None and not epochs.empty:
        figures["training"] = plots.training_curves_figure(epochs, best_epoch=training["best_epoch"])
    step()

    subgroups = {
        name: subgroup_rows(predictions, name, entry["threshold"], n_boot=n_boot, seed=seed, min_size=subgroup_min_size)
        for name, entry in metrics["labels"].items()
    }
    step()

    model, spec = run.load_model()
    explainer, explanation_note = find_explainer(model, spec) if explanations else (None, "not requested")
    images = GalleryImages(
        spec, run.key, predictions["path"].astype(str).tolist(), lambda: _split_images(data, metrics)
    )
    pictures: dict[str, bytes] = {}
    for index, (name, entry) in enumerate(metrics["labels"].items()):
        records, thumbs = gallery_entries(
            predictions, name, index, entry["threshold"], n_gallery, images, explainer=explainer
        )
        sections[name]["gallery"] = records
        pictures.update(thumbs)
    step()

    report = {
        "report_version": REPORT_VERSION,
        "generated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "radcnn_version": _version(),
        "run": {
            "path": str(run.path),
            "name": run.path.name,
            "model": metrics["model"],
            "input_size": metrics["input_size"],
            "labels": labels,
        },
        "config": config,
        "data": data_section(summary, split_table),
        "evaluation": {
            "split": metrics["split"],
            "n_images": metrics["n_images"],
            "n_patients": metrics["n_patients"],
            "ci_method": metrics["ci_method"],
            "labels": sections,
        },
        "external": external_section(metrics, figures),
        "operating_points": operating_section(metrics),
        "subgroups": subgroups,
        "training": training,
        "privacy": run.privacy(),  # DP-SGD runs: target and spent (ε, δ), ε per epoch; None otherwise
        "federated": federated_section(run),
        "explanations": {"method": "Grad-CAM", "included": explainer is not None, "note": explanation_note},
        "synthetic_data": synthetic,
        "figures": sorted(figures),
    }
    report["model_card"] = build_model_card(
        spec=spec,
        config=config,
        data=report["data"],
        evaluation={**report["evaluation"], "labels": metrics["labels"], "external": metrics.get("external", {})},
        subgroups=subgroups,
        synthetic=synthetic,
        best={"epoch": training["best_epoch"], "val_auc": training["best_val_auc"]},
        privacy=report["privacy"],
    )
    report = json_safe(report)
    json_path = run.write_protected(REPORT_JSON, json_text(report).encode("utf-8"))
    html_path = run.write_protected(REPORT_HTML, render_html(report, figures, pictures).encode("utf-8"))
    step()
    log.info("report written: %s", html_path)
    return ReportResult(html_path, json_path, report)


def _label_section(name: str, entry: dict, config: dict, val_metrics: dict, predictions, figures: dict) -> dict:
    """Metrics table, threshold, curves (as data) and the four per-label figures of one label."""
    y = predictions[f"{name}_true"].to_numpy(dtype=float)
    p = predictions[f"{name}_probability"].to_numpy(dtype=float)
    cut = float(entry["threshold"])
    section = {
        "threshold": threshold_section(entry, config, val_metrics.get("labels", {}).get(name)),
        "metrics": metric_rows(entry),
        "counts": {k: entry["metrics"][k] for k in ("n", "n_positive", "n_negative", "tp", "fp", "tn", "fn")},
        "unknown_labels": entry.get("unknown_labels", 0),
        "curves": {},
        "figures": [],
        "figure_note": "",
    }
    ci = entry.get("ci95", {})
    figures[f"confusion_{name}"] = plots.confusion_figure(
        entry["metrics"]["confusion_matrix"], label=name, threshold=cut
    )
    section["figures"].append(f"confusion_{name}")
    try:
        section["curves"] = {
            "roc": plots.roc_points(y, p),
            "pr": plots.pr_points(y, p),
            "calibration": calibration_curve_data(y, p),
        }
        figures[f"roc_{name}"] = plots.roc_figure(y, p, cut, label=name, auc_ci=ci.get("roc_auc"))
        figures[f"pr_{name}"] = plots.pr_figure(y, p, cut, label=name, ap_ci=ci.get("pr_auc"))
        figures[f"calibration_{name}"] = plots.calibration_figure(y, p, label=name)
        section["figures"] = [f"roc_{name}", f"pr_{name}", f"calibration_{name}", f"confusion_{name}"]
    except DataError as exc:
        # One class only in the test labels: no ROC/PR curve exists; say so rather than draw nonsense.
        section["figure_note"] = f"ROC, precision-recall and calibration plots not drawn: {exc}"
        log.warning("%s: %s", name, section["figure_note"])
    return section


def _split_images(data: _RunData, metrics: dict):
    return data.get().splits[metrics["split"]].images


def _version() -> str:
    try:
        return metadata.version("radcnn")
    except metadata.PackageNotFoundError:
        return "unknown"


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def render_html(report: dict, figures: dict[str, bytes], pictures: dict[str, bytes]) -> str:
    """The report as one HTML document with every image inline (``report`` is the JSON-safe content)."""
    import jinja2

    source = resources.files("radcnn.reporting").joinpath("templates", TEMPLATE).read_text(encoding="utf-8")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = _num
    env.filters["pct"] = _pct
    env.filters["thr"] = _threshold
    env.filters["prob"] = _probability
    template = env.from_string(source)
    return template.render(
        report=report,
        figures={name: data_uri(png) for name, png in figures.items()},
        pictures={key: data_uri(png) for key, png in pictures.items()},
        category_titles=CATEGORY_TITLES,
        config_yaml=yaml.safe_dump(report["config"], sort_keys=False),
    )


def _num(value, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return f"{float(value):.{digits}f}"


def _threshold(value) -> str:
    # Thresholds are often probabilities near 0 or 1 (e.g. 0.99973): keep four significant digits.
    return "—" if value is None else f"{float(value):.4g}"


def _probability(value) -> str:
    # "p = 1.000" for 0.99991 would claim a certainty the model did not express.
    value = float(value)
    if value < 0.001:
        return "p < 0.001"
    if value > 0.999:
        return "p > 0.999"
    return f"p = {value:.3f}"


def _pct(value, digits: int = 1) -> str:
    return "—" if value is None else f"{100 * float(value):.{digits}f}%"
