"""What a run learns from its validation split besides the weights: alternative operating points and a
calibration map, and how both are applied to any scored cohort (test, a held-out site, an external dataset).

`validation_reference` predicts the validation split once and, per label, chooses the candidate thresholds
(`radcnn.evaluation.operating_points.validation_thresholds`), fits a Platt calibration map and records the
validation prevalence. The calibration maps are stored in the run (``calibration.json`` through `RunDir`), so
every later evaluation applies the same map. `cohort_extras` then scores one cohort's label: reliability data
and ECE before and after calibration, the operating-point table, and Saerens' prior-shift estimate of the
cohort's prevalence from the calibrated probabilities (set beside the true prevalence when labels are known).
"""

from __future__ import annotations

import logging

import numpy as np

from radcnn.errors import DataError
from radcnn.evaluation.calibration import calibration_curve_data
from radcnn.evaluation.operating_points import operating_point_table, validation_thresholds
from radcnn.evaluation.recalibration import apply_calibrator, estimate_prior_shift, fit_calibrator
from radcnn.runs import CALIBRATION, RunDir

log = logging.getLogger(__name__)

CALIBRATION_METHOD = "platt"


def validation_reference(run: RunDir, data, model, spec) -> dict[str, dict]:
    """Per binary label: {"candidates", "calibrator" (or None), "prevalence"} from the validation split."""
    from radcnn.models.inference import predict_probabilities

    if spec.task == "multiclass" or "val" not in data.splits or len(data.splits["val"]) == 0:
        return {}
    part = data.splits["val"]
    probs = predict_probabilities(model, part.images, task=spec.task)
    out: dict[str, dict] = {}
    for j, name in enumerate(spec.label_names):
        y, p = part.labels[:, j].astype(np.float64), probs[:, j].astype(np.float64)
        known = ~np.isnan(y)
        y, p = y[known], p[known]
        try:
            calibrator = fit_calibrator(y, p, CALIBRATION_METHOD)
        except DataError as exc:
            log.warning("label %s: no calibration map (%s)", name, exc)
            calibrator = None
        out[name] = {
            "candidates": validation_thresholds(y, p),
            "calibrator": calibrator,
            "prevalence": float(y.mean()) if y.size else float("nan"),
        }
    run.write_json(CALIBRATION, {name: ref["calibrator"] for name, ref in out.items()})
    return out


def cohort_extras(y, p, reference: dict | None, *, threshold: float, source: str) -> dict:
    """Calibration (raw and calibrated), operating points and the prior-shift estimate of one label's cohort."""
    y, p = np.asarray(y, dtype=np.float64), np.asarray(p, dtype=np.float64)
    known = ~np.isnan(y)
    y, p = y[known], p[known]
    extras: dict = {"calibration": {"raw": calibration_curve_data(y, p)}}
    reference = reference or {}
    calibrator = reference.get("calibrator")
    calibrated = apply_calibrator(calibrator, p) if calibrator else None
    if calibrated is not None:
        extras["calibration"]["calibrated"] = calibration_curve_data(y, calibrated)
        extras["calibration"]["method"] = f"{calibrator['method']} scaling fitted on val ({calibrator['n']} images)"
        prior = reference.get("prevalence", float("nan"))
        if 0.0 < prior < 1.0 and p.size:
            shift, _ = estimate_prior_shift(calibrated, prior)
            extras["prior_shift"] = {
                "method": "Saerens EM on calibrated probabilities",
                "val_prevalence": prior,
                "estimated_prevalence": shift.estimated_prior,
                "true_prevalence": float(y.mean()) if y.size else None,
                "converged": shift.converged,
            }
    if p.size:
        extras["operating_points"] = operating_point_table(
            reference.get("candidates", []), y, p, run_threshold=threshold, run_source=source, calibrated=calibrated
        )
    return extras
