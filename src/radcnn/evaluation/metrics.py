"""Binary and multi-label classification metrics as pure numpy functions.

Conventions (the same in every radcnn report):

* **Predicted positive means ``prob >= threshold``** (a probability equal to the threshold counts as positive).
* Rows whose label is NaN (unknown) are excluded; the count is reported as ``n_unknown``.
* A value that is undefined on the data — AUC with one class, precision with no predicted positives,
  sensitivity with no positives — is ``float("nan")``, never an exception and never a made-up 0.
  (F1 = 2TP / (2TP + FP + FN) *is* defined, and 0, when there are positives but none is predicted.)
* ``pr_auc`` is average precision (scikit-learn's step-wise definition, no interpolation); ``brier`` is the
  mean squared error of the probabilities; ``ece`` is the 10-bin equal-width expected calibration error.

Every metric is computed by `weighted_binary_metrics`, which evaluates many *weight vectors* at once: a
bootstrap resample is a vector of how often each row was drawn, so the point estimate (all weights 1) and
1000 resamples go through the same code, vectorised, with no per-resample Python loop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from radcnn.errors import ConfigError, DataError, UnknownNameError
from radcnn.evaluation.arrays import as_2d, clean_binary
from radcnn.evaluation.calibration import weighted_ece

# Scalar metrics that have a confidence interval (counts, n and the threshold do not).
SCALAR_METRICS: tuple[str, ...] = (
    "prevalence",
    "accuracy",
    "sensitivity",
    "recall",
    "specificity",
    "precision",
    "ppv",
    "npv",
    "f1",
    "balanced_accuracy",
    "roc_auc",
    "pr_auc",
    "brier",
    "ece",
)
_RANKING = frozenset({"roc_auc", "pr_auc"})
MACRO_KEY = "macro"


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with NaN (undefined) where den == 0 — the one place "undefined" is decided."""
    out = np.full(np.shape(num), np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _check_threshold(threshold: float) -> float:
    try:
        value = float(threshold)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"threshold = {threshold!r}: expected a number") from exc
    if np.isnan(value):
        raise ConfigError("threshold is NaN: expected a number (usually in [0, 1])")
    return value


def _ranking_metrics(y: np.ndarray, p: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted ROC AUC and average precision for each row of ``weights`` (B, n)."""
    n_rows = weights.shape[0]
    if y.shape[0] == 0:
        return np.full(n_rows, np.nan), np.full(n_rows, np.nan)
    order = np.argsort(p, kind="stable")
    p_sorted, y_sorted = p[order], y[order]
    w = weights[:, order]
    # Tied scores form one block; `starts` are the first index of each distinct score (ascending).
    starts = np.flatnonzero(np.r_[True, p_sorted[1:] != p_sorted[:-1]])
    pos = np.add.reduceat(w * y_sorted, starts, axis=1)  # (B, K) positive weight at each distinct score
    neg = np.add.reduceat(w * (1.0 - y_sorted), starts, axis=1)
    n_pos, n_neg = pos.sum(axis=1), neg.sum(axis=1)
    # Mann-Whitney: a positive beats every negative scored lower and half of those tied with it.
    neg_below = np.cumsum(neg, axis=1) - neg
    auc = _ratio((pos * (neg_below + 0.5 * neg)).sum(axis=1), n_pos * n_neg)
    # Average precision: walk the distinct thresholds from the top; each step adds
    # (recall gained) * (precision there) = pos_k / n_pos * TP_k / (TP_k + FP_k).
    tp_cum = np.cumsum(pos[:, ::-1], axis=1)
    fp_cum = np.cumsum(neg[:, ::-1], axis=1)
    precision = np.zeros_like(tp_cum)
    np.divide(tp_cum, tp_cum + fp_cum, out=precision, where=(tp_cum + fp_cum) > 0)
    ap = _ratio((pos[:, ::-1] * precision).sum(axis=1), n_pos)
    return auc, ap


def weighted_binary_metrics(
    y: np.ndarray,
    p: np.ndarray,
    weights: np.ndarray,
    *,
    threshold: float = 0.5,
    n_bins: int = 10,
    names: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """Every metric for each row of ``weights`` (B, n); row b counts item i ``weights[b, i]`` times.

    ``y`` and ``p`` must already be clean (`radcnn.evaluation.arrays.clean_binary`). Returns arrays of shape
    (B,) keyed by ``n``, ``n_positive``, ``n_negative``, ``tp``, ``fp``, ``tn``, ``fn`` and each name in
    ``names`` (default: all of `SCALAR_METRICS`). Used by `binary_metrics` (one row of ones) and the
    bootstrap (one row per resample).
    """
    wanted = list(SCALAR_METRICS if names is None else names)
    unknown = [name for name in wanted if name not in SCALAR_METRICS]
    if unknown:
        raise UnknownNameError("metric", unknown[0], list(SCALAR_METRICS))
    threshold = _check_threshold(threshold)
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    pred = (p >= threshold).astype(np.float64)
    # One matrix product gives the four weighted confusion counts of every resample.
    cells = np.stack([y * pred, (1 - y) * pred, (1 - y) * (1 - pred), y * (1 - pred)], axis=1)
    tp, fp, tn, fn = (weights @ cells).T
    n_pos, n_neg = tp + fn, tn + fp
    n = n_pos + n_neg
    out: dict[str, np.ndarray] = {"n": n, "n_positive": n_pos, "n_negative": n_neg}
    out.update(tp=tp, fp=fp, tn=tn, fn=fn)
    sens, spec = _ratio(tp, n_pos), _ratio(tn, n_neg)
    values = {
        "prevalence": lambda: _ratio(n_pos, n),
        "accuracy": lambda: _ratio(tp + tn, n),
        "sensitivity": lambda: sens,
        "recall": lambda: sens,
        "specificity": lambda: spec,
        "precision": lambda: _ratio(tp, tp + fp),
        "ppv": lambda: _ratio(tp, tp + fp),
        "npv": lambda: _ratio(tn, tn + fn),
        "f1": lambda: _ratio(2 * tp, 2 * tp + fp + fn),
        "balanced_accuracy": lambda: (sens + spec) / 2,  # NaN if either is undefined
        "brier": lambda: _ratio(weights @ (p - y) ** 2, n),
        "ece": lambda: weighted_ece(y, p, weights, n_bins),
    }
    if _RANKING.intersection(wanted):
        auc, ap = _ranking_metrics(y, p, weights)
        values.update(roc_auc=lambda: auc, pr_auc=lambda: ap)
    for name in wanted:
        out[name] = values[name]()
    return out


def binary_metrics(y_true, y_prob, threshold: float = 0.5, *, n_bins: int = 10) -> dict[str, float | int | list]:
    """All binary metrics of one label column at one threshold (predicted positive: ``prob >= threshold``).

    Keys: ``n``, ``n_unknown`` (NaN labels excluded), ``n_positive``, ``n_negative``, ``prevalence``,
    ``threshold``, ``tp``, ``fp``, ``tn``, ``fn``, ``confusion_matrix`` (``[[tn, fp], [fn, tp]]``, rows = truth,
    as scikit-learn), ``accuracy``, ``sensitivity``, ``recall`` (== sensitivity), ``specificity``,
    ``precision``, ``ppv`` (== precision), ``npv``, ``f1``, ``balanced_accuracy``, ``roc_auc``, ``pr_auc``
    (average precision), ``brier``, ``ece``. Undefined values are NaN.
    """
    data = clean_binary(y_true, y_prob)
    raw = weighted_binary_metrics(data.y, data.p, np.ones((1, data.n)), threshold=threshold, n_bins=n_bins)
    counts = {key: int(round(float(raw[key][0]))) for key in ("n", "n_positive", "n_negative", "tp", "fp", "tn", "fn")}
    result: dict[str, float | int | list] = {
        "n": counts["n"],
        "n_unknown": data.n_unknown,
        "n_positive": counts["n_positive"],
        "n_negative": counts["n_negative"],
        "prevalence": float(raw["prevalence"][0]),
        "threshold": float(threshold),
        "tp": counts["tp"],
        "fp": counts["fp"],
        "tn": counts["tn"],
        "fn": counts["fn"],
        "confusion_matrix": [[counts["tn"], counts["fp"]], [counts["fn"], counts["tp"]]],
    }
    for name in SCALAR_METRICS:
        if name != "prevalence":
            result[name] = float(raw[name][0])
    return result


def roc_auc(y_true, y_prob) -> float:
    """ROC AUC (Mann-Whitney, ties count one half); NaN unless both classes are present."""
    data = clean_binary(y_true, y_prob)
    return float(_ranking_metrics(data.y, data.p, np.ones((1, data.n)))[0][0])


def average_precision(y_true, y_prob) -> float:
    """Average precision (area under the step-wise precision-recall curve); NaN without positives."""
    data = clean_binary(y_true, y_prob)
    return float(_ranking_metrics(data.y, data.p, np.ones((1, data.n)))[1][0])


def _thresholds_per_label(thresholds, label_names: list[str]) -> list[float]:
    if thresholds is None:
        return [0.5] * len(label_names)
    if isinstance(thresholds, Mapping):
        missing = [name for name in label_names if name not in thresholds]
        if missing:
            raise ConfigError(f"thresholds: no value for label(s) {missing}; expected one per label")
        return [_check_threshold(thresholds[name]) for name in label_names]
    if np.ndim(thresholds) == 0:
        return [_check_threshold(thresholds)] * len(label_names)
    values = [_check_threshold(t) for t in np.asarray(thresholds, dtype=object).ravel()]
    if len(values) != len(label_names):
        raise ConfigError(f"thresholds: expected {len(label_names)} values (one per label), got {len(values)}")
    return values


def multilabel_metrics(
    y_true, y_prob, label_names: Sequence[str], thresholds=None, *, n_bins: int = 10
) -> dict[str, dict]:
    """`binary_metrics` for each column of (N, C) arrays, plus ``"macro"``: the unweighted mean over labels.

    NaN labels are masked per column (each label keeps its own ``n`` and ``n_unknown``). ``thresholds`` is
    None (0.5 for all), one number, a sequence of C numbers or a mapping label name → threshold. A macro mean
    skips labels where the metric is undefined (NaN) and is NaN only if it is undefined for every label;
    ``macro["n_labels"]`` is C and ``macro["n_defined"][metric]`` says how many labels entered each mean.
    """
    names = [str(name) for name in label_names]
    if len(set(names)) != len(names) or MACRO_KEY in names:
        raise DataError(f"label_names {names}: expected unique names, none of them {MACRO_KEY!r}")
    truth = as_2d(y_true, "y_true", len(names))
    prob = as_2d(y_prob, "y_prob", len(names))
    if truth.shape[0] != prob.shape[0]:
        raise DataError(f"y_true has {truth.shape[0]} rows but y_prob has {prob.shape[0]}: expected the same")
    per_label: dict[str, dict] = {}
    for column, (name, threshold) in enumerate(zip(names, _thresholds_per_label(thresholds, names), strict=True)):
        try:
            per_label[name] = binary_metrics(truth[:, column], prob[:, column], threshold, n_bins=n_bins)
        except DataError as exc:
            raise DataError(f"label {name!r} (column {column}): {exc}") from exc
    macro: dict = {"n_labels": len(names), "n_defined": {}}
    for metric in SCALAR_METRICS:
        values = np.array([per_label[name][metric] for name in names], dtype=np.float64)
        defined = values[~np.isnan(values)]
        macro[metric] = float(defined.mean()) if defined.size else float("nan")
        macro["n_defined"][metric] = int(defined.size)
    return {**per_label, MACRO_KEY: macro}
