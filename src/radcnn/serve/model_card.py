"""The model card served at ``GET /v1/model``: what the model is, its thresholds, and the run's own evidence.

Built from the Predictor (name, version digest, input, labels, thresholds) plus whatever the run directory
holds: the training data summary, the test metrics with their intervals (``metrics.json`` from
``radcnn evaluate``) and the full model card of ``radcnn report`` (``report.json``). Missing files are said to
be missing rather than papered over.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from radcnn.errors import RadcnnError
from radcnn.reporting.model_card import RESEARCH_ONLY
from radcnn.runs import DATA_SUMMARY, REPORT_JSON, RunDir, metrics_name
from radcnn.serve.heatmap import HEATMAP_METHODS
from radcnn.serve.predictor import Predictor

log = logging.getLogger(__name__)

_HEADLINE_METRICS = ("roc_auc", "sensitivity", "specificity", "accuracy", "ppv", "npv")


def _read(run: RunDir, name: str) -> dict | None:
    if not run.has(name):
        return None
    try:
        return run.read_json(name)
    except (RadcnnError, OSError) as exc:
        log.warning("%s: unreadable, left out of the model card (%s)", run.path / name, exc)
        return None


def build_model_card(predictor: Predictor, run_dir: Path | None) -> dict[str, Any]:
    spec = predictor.spec
    card: dict[str, Any] = {
        "model": predictor.info.as_dict(),
        "backend": predictor.backend,
        "task": spec.task,
        "input": {
            "channels": spec.in_channels,
            "height": int(spec.input_size[0]),
            "width": int(spec.input_size[1]),
            "intensity": spec.intensity,
            "window": spec.window,
            "formats": ["dicom", "png", "jpeg"],
        },
        "labels": list(spec.label_names),
        "thresholds": predictor.thresholds(),
        "threshold_method": spec.threshold_method,
        "heatmap_methods": list(HEATMAP_METHODS),
        "intended_use": RESEARCH_ONLY,
    }
    if run_dir is None:
        card["evidence"] = "a bare model file was served: no training data summary or test metrics available"
        return card
    run = RunDir(run_dir, key=predictor.key)
    summary = _read(run, DATA_SUMMARY)
    if summary is not None:
        card["training_data"] = {k: summary[k] for k in ("splits", "leakage_check") if k in summary}
    metrics = _read(run, metrics_name())
    if metrics is None:
        card["test_metrics"] = f"not evaluated yet (run `radcnn evaluate {run_dir.name}`)"
    else:
        card["test_metrics"] = {
            "split": metrics.get("split"),
            "n_images": metrics.get("n_images"),
            "labels": {
                name: {
                    "metrics": {k: entry.get("metrics", {}).get(k) for k in _HEADLINE_METRICS},
                    "ci95": {k: v for k, v in entry.get("ci95", {}).items() if k in _HEADLINE_METRICS},
                }
                for name, entry in metrics.get("labels", {}).items()
            },
        }
    report = _read(run, REPORT_JSON)
    if report is not None and "model_card" in report:
        card["report_model_card"] = report["model_card"]
    return card
