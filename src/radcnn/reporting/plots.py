"""Evaluation figures as PNG bytes: ROC, precision-recall, reliability diagram, confusion matrix, training curves.

Every figure is a `matplotlib.figure.Figure` rendered by the Agg canvas and returned as PNG bytes — never
pyplot's global state or rcParams — so plotting is thread-safe, leaves no open figures behind and does not
depend on (or change) the user's matplotlib configuration. The curves are computed by the pure functions of
`radcnn.evaluation` (`operating_points`, `binary_metrics`, `calibration_curve_data`); this module only draws.

Predicted positive means ``prob >= threshold`` everywhere, so the operating point marked on the ROC and PR
curves is exactly the sensitivity/specificity reported in the metrics table.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from radcnn.errors import DataError
from radcnn.evaluation.arrays import clean_binary
from radcnn.evaluation.calibration import calibration_curve_data
from radcnn.evaluation.metrics import binary_metrics
from radcnn.evaluation.thresholds import operating_points

# A colour-blind-safe palette (Okabe-Ito) and one size for every figure, so the report reads as one document.
BLUE, ORANGE, GREEN, VERMILION, GREY = "#0072B2", "#E69F00", "#009E73", "#D55E00", "#7F7F7F"
FIGSIZE = (4.6, 4.0)
DPI = 110


def figure_png(fig: Figure, *, dpi: int = DPI) -> bytes:
    """Render a Figure to PNG bytes with the Agg canvas (no pyplot, no display, no timestamp metadata)."""
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    # Software metadata off: the same figure gives the same bytes with any matplotlib patch release.
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()


def _figure(figsize: tuple[float, float] = FIGSIZE) -> Figure:
    return Figure(figsize=figsize, layout="constrained")


def _style(ax, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(title, fontsize=10, loc="left")
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(True, color="#e5e5e5", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _clean(y_true, y_prob, what: str):
    data = clean_binary(y_true, y_prob)
    n_pos = int(data.y.sum())
    if n_pos == 0 or n_pos == data.n:
        raise DataError(f"{what} needs both classes among the labelled rows; got {n_pos} positive of {data.n}")
    return data, n_pos, data.n - n_pos


def roc_points(y_true, y_prob) -> dict[str, list[float]]:
    """ROC curve vertices (false-positive rate, true-positive rate, threshold), from (0, 0) to (1, 1)."""
    data, n_pos, n_neg = _clean(y_true, y_prob, "a ROC curve")
    points = operating_points(data.y, data.p)
    return {
        "fpr": (points["fp"] / n_neg).tolist(),
        "tpr": (points["tp"] / n_pos).tolist(),
        "threshold": points["threshold"].tolist(),
    }


def pr_points(y_true, y_prob) -> dict[str, list[float]]:
    """Precision-recall vertices at each distinct threshold, highest threshold first (recall 0 omitted)."""
    data, n_pos, _ = _clean(y_true, y_prob, "a precision-recall curve")
    points = operating_points(data.y, data.p)
    # The first candidate predicts nothing positive: precision is undefined there, so it is left out.
    tp, fp = points["tp"][1:], points["fp"][1:]
    return {
        "recall": (tp / n_pos).tolist(),
        "precision": (tp / (tp + fp)).tolist(),
        "threshold": points["threshold"][1:].tolist(),
    }


def _ci_text(ci: dict | None) -> str:
    # metrics.json is strict JSON: an undefined bound is null (None), not NaN
    if not ci or ci.get("low") is None or ci.get("high") is None or not math.isfinite(ci["low"]):
        return ""
    return f" (95% CI {ci['low']:.3f}–{ci['high']:.3f})"


def roc_figure(y_true, y_prob, threshold: float, *, label: str = "", auc_ci: dict | None = None) -> bytes:
    """ROC curve with the chance diagonal and the operating point at ``threshold`` (chosen on validation)."""
    curve = roc_points(y_true, y_prob)
    at = binary_metrics(y_true, y_prob, threshold)
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color=GREY, linestyle="--", linewidth=0.8, label="chance")
    ax.plot(curve["fpr"], curve["tpr"], color=BLUE, linewidth=1.8, label=f"AUC {at['roc_auc']:.3f}{_ci_text(auc_ci)}")
    ax.plot(
        [1 - at["specificity"]],
        [at["sensitivity"]],
        marker="o",
        markersize=7,
        color=VERMILION,
        linestyle="none",
        label=f"threshold {threshold:.4g}: sens {at['sensitivity']:.2f}, spec {at['specificity']:.2f}",
    )
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    _style(ax, f"ROC — {label}" if label else "ROC", "1 − specificity (false-positive rate)", "sensitivity")
    ax.legend(loc="lower right", fontsize=7, frameon=False)
    return figure_png(fig)


def pr_figure(y_true, y_prob, threshold: float, *, label: str = "", ap_ci: dict | None = None) -> bytes:
    """Precision-recall curve (step-wise, as average precision is defined) with prevalence and operating point."""
    curve = pr_points(y_true, y_prob)
    at = binary_metrics(y_true, y_prob, threshold)
    fig = _figure()
    ax = fig.add_subplot()
    prevalence = at["prevalence"]
    ax.axhline(prevalence, color=GREY, linestyle="--", linewidth=0.8, label=f"prevalence {prevalence:.2f}")
    ax.step(
        [0.0, *curve["recall"]],
        [curve["precision"][0], *curve["precision"]],
        where="pre",
        color=BLUE,
        linewidth=1.8,
        label=f"AP {at['pr_auc']:.3f}{_ci_text(ap_ci)}",
    )
    if math.isfinite(at["precision"]):
        ax.plot(
            [at["sensitivity"]],
            [at["precision"]],
            marker="o",
            markersize=7,
            color=VERMILION,
            linestyle="none",
            label=f"threshold {threshold:.4g}: recall {at['sensitivity']:.2f}, precision {at['precision']:.2f}",
        )
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.05)
    _style(ax, f"Precision–recall — {label}" if label else "Precision–recall", "recall (sensitivity)", "precision")
    ax.legend(loc="lower left", fontsize=7, frameon=False)
    return figure_png(fig)


def calibration_figure(y_true, y_prob, *, label: str = "", n_bins: int = 10) -> bytes:
    """Reliability diagram (observed fraction vs mean predicted probability per bin) over a histogram of counts."""
    data = calibration_curve_data(y_true, y_prob, n_bins=n_bins)
    edges = np.asarray(data["bin_edges"])
    counts = np.asarray(data["counts"])
    filled = counts > 0
    predicted = np.asarray(data["mean_predicted"])[filled]
    observed = np.asarray(data["observed_fraction"])[filled]
    fig = _figure((FIGSIZE[0], FIGSIZE[1] + 0.9))
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    top.plot([0, 1], [0, 1], color=GREY, linestyle="--", linewidth=0.8, label="perfectly calibrated")
    # Marker area grows with the bin's share of images, so sparsely populated bins do not look as trustworthy.
    sizes = 12 + 140 * counts[filled] / max(int(counts.sum()), 1)
    top.plot(predicted, observed, color=BLUE, linewidth=1.2)
    top.scatter(predicted, observed, s=sizes, color=BLUE, zorder=3, label=f"model (ECE {data['ece']:.3f})")
    # A little margin so the markers of the first and last bins are not cut in half by the axes.
    top.set_xlim(-0.03, 1.03)
    top.set_ylim(-0.04, 1.04)
    _style(top, f"Calibration — {label}" if label else "Calibration", "", "observed fraction positive")
    top.legend(loc="upper left", fontsize=7, frameon=False)
    bottom.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color=BLUE, alpha=0.35, edgecolor=BLUE)
    _style(bottom, "", "predicted probability", "images")
    return figure_png(fig)


def confusion_figure(confusion: Sequence[Sequence[int]], *, label: str = "", threshold: float | None = None) -> bytes:
    """2×2 confusion matrix ``[[tn, fp], [fn, tp]]`` (rows = truth), counts with row percentages."""
    matrix = np.asarray(confusion, dtype=np.int64)
    if matrix.shape != (2, 2):
        raise DataError(f"confusion matrix: expected [[tn, fp], [fn, tp]] (2×2), got shape {matrix.shape}")
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
    fig = _figure()
    ax = fig.add_subplot()
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    names = [["TN", "FP"], ["FN", "TP"]]
    for i in range(2):
        for j in range(2):
            colour = "white" if share[i, j] > 0.6 else "black"
            text = f"{names[i][j]}\n{matrix[i, j]}\n{100 * share[i, j]:.1f}%"
            ax.text(j, i, text, ha="center", va="center", fontsize=10, color=colour)
    ax.set_xticks([0, 1], ["negative", "positive"], fontsize=8)
    ax.set_yticks([0, 1], ["negative", "positive"], fontsize=8)
    ax.set_xlabel("predicted", fontsize=9)
    ax.set_ylabel("true", fontsize=9)
    title = f"Confusion — {label}" if label else "Confusion matrix"
    if threshold is not None:
        title += f" @ {threshold:.4g}"
    ax.set_title(title, fontsize=10, loc="left")
    return figure_png(fig)


def epoch_table(metrics_csv) -> pd.DataFrame:
    """Lightning's CSVLogger table → one row per epoch: epoch (1-based), train_loss, val_loss, val_auc.

    The logger writes training and validation values on separate rows; they are gathered per epoch (the last
    logged value wins). ``-inf`` (how training logs an undefined AUC) becomes NaN.
    """
    table = metrics_csv if isinstance(metrics_csv, pd.DataFrame) else pd.read_csv(metrics_csv)
    if "epoch" not in table.columns:
        raise DataError(f"{metrics_csv}: expected an 'epoch' column (a Lightning CSVLogger metrics.csv)")
    aliases = {"train_loss": ("train_loss_epoch", "train_loss"), "val_loss": ("val_loss",), "val_auc": ("val_auc",)}
    out = pd.DataFrame({"epoch": sorted(table["epoch"].dropna().astype(int).unique())})
    for name, candidates in aliases.items():
        column = next((c for c in candidates if c in table.columns), None)
        if column is None:
            out[name] = np.nan
            continue
        per_epoch = table[["epoch", column]].dropna().groupby("epoch")[column].last()
        out[name] = out["epoch"].map(per_epoch).astype(float).replace([np.inf, -np.inf], np.nan)
    out["epoch"] = out["epoch"] + 1  # Lightning counts from 0; people (and best.json) count from 1
    return out


def training_curves_figure(epochs: pd.DataFrame, *, best_epoch: int | None = None) -> bytes:
    """Training and validation loss (left) and validation ROC AUC (right) per epoch; the kept epoch is marked."""
    if epochs.empty:
        raise DataError("training curves: the metrics log has no epochs")
    fig = _figure((8.2, 3.3))
    loss_ax, auc_ax = fig.subplots(1, 2)
    x = epochs["epoch"].to_numpy()
    for column, colour, name in (("train_loss", BLUE, "train"), ("val_loss", ORANGE, "validation")):
        values = epochs[column].to_numpy(dtype=float)
        if np.isfinite(values).any():
            loss_ax.plot(x, values, marker="o", markersize=3, color=colour, linewidth=1.5, label=name)
    _style(loss_ax, "Loss (binary cross-entropy)", "epoch", "loss")
    auc = epochs["val_auc"].to_numpy(dtype=float)
    auc_ax.plot(x, auc, marker="o", markersize=3, color=GREEN, linewidth=1.5, label="validation ROC AUC")
    _style(auc_ax, "Validation ROC AUC", "epoch", "AUC")
    for ax in (loss_ax, auc_ax):
        if best_epoch is not None:
            ax.axvline(best_epoch, color=VERMILION, linestyle=":", linewidth=1.2, label=f"kept (epoch {best_epoch})")
        # Whole epochs only; a long run gets about ten ticks.
        step = max(1, int(math.ceil(len(x) / 10)))
        ax.set_xticks(x[::step])
        ax.legend(fontsize=7, frameon=False)
    return figure_png(fig)
