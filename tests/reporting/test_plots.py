"""Evaluation figures: curves against scikit-learn, PNGs that decode, no pyplot state, the gallery choice."""

from __future__ import annotations

import io
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.metrics import precision_recall_curve, roc_curve

from radcnn.errors import DataError
from radcnn.reporting import plots
from radcnn.reporting.gallery import overlay_png, select_gallery, thumbnail_png


def _decode(png: bytes) -> Image.Image:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


@pytest.fixture
def scores():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200).astype(float)
    p = np.clip(0.3 * y + rng.uniform(0, 0.7, 200), 0, 1).round(2)  # rounding makes ties, as real scores have
    return y, p


def test_roc_points_match_scikit_learn(scores):
    y, p = scores
    fpr, tpr, _ = roc_curve(y, p, drop_intermediate=False)
    ours = plots.roc_points(y, p)
    np.testing.assert_allclose(ours["fpr"], fpr)
    np.testing.assert_allclose(ours["tpr"], tpr)
    assert ours["fpr"][0] == 0 and ours["tpr"][-1] == 1


def test_pr_points_match_scikit_learn(scores):
    y, p = scores
    precision, recall, thresholds = precision_recall_curve(y, p)
    ours = plots.pr_points(y, p)
    # scikit-learn lists thresholds ascending and appends the (recall 0, precision 1) end point.
    np.testing.assert_allclose(ours["precision"], precision[:-1][::-1])
    np.testing.assert_allclose(ours["recall"], recall[:-1][::-1])
    np.testing.assert_allclose(ours["threshold"], thresholds[::-1])


def test_roc_points_on_a_hand_computed_case():
    curve = plots.roc_points([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    assert curve["fpr"] == [0.0, 0.0, 0.5, 0.5, 1.0]
    assert curve["tpr"] == [0.0, 0.5, 0.5, 1.0, 1.0]


@pytest.mark.parametrize("name", ["roc", "pr", "calibration"])
def test_curve_figures_are_pngs(scores, name):
    y, p = scores
    if name == "roc":
        png = plots.roc_figure(y, p, 0.5, label="pneumonia", auc_ci={"low": 0.7, "high": 0.8})
    elif name == "pr":
        png = plots.pr_figure(y, p, 0.5, label="pneumonia")
    else:
        png = plots.calibration_figure(y, p, label="pneumonia")
    image = _decode(png)
    assert image.width > 300 and image.height > 300


def test_figures_need_both_classes():
    with pytest.raises(DataError, match="both classes"):
        plots.roc_figure([1, 1, 1], [0.2, 0.5, 0.9], 0.5)


def test_confusion_figure_checks_its_shape():
    assert _decode(plots.confusion_figure([[5, 1], [2, 7]], label="x", threshold=0.42)).width > 200
    with pytest.raises(DataError, match="2×2"):
        plots.confusion_figure([[1, 2, 3]])


def test_same_figure_gives_the_same_bytes(scores):
    y, p = scores
    assert plots.roc_figure(y, p, 0.5) == plots.roc_figure(y, p, 0.5)


def test_plotting_leaves_no_pyplot_figures_open(scores):
    y, p = scores
    plots.roc_figure(y, p, 0.5)
    plots.calibration_figure(y, p)
    if "matplotlib.pyplot" in sys.modules:  # imported by some other library: it must still hold no figures
        assert sys.modules["matplotlib.pyplot"].get_fignums() == []


def test_epoch_table_gathers_lightning_rows_per_epoch(tmp_path):
    # The layout Lightning's CSVLogger writes: validation and training values on separate rows.
    log = tmp_path / "metrics.csv"
    log.write_text(
        "epoch,step,train_loss,val_auc,val_loss\n"
        "0,5,,0.5,0.9\n0,5,0.8,,\n1,11,,-inf,0.7\n1,11,0.6,,\n2,17,,0.75,0.65\n2,17,0.5,,\n"
    )
    table = plots.epoch_table(log)
    assert table["epoch"].tolist() == [1, 2, 3]
    assert table["train_loss"].tolist() == [0.8, 0.6, 0.5]
    assert table["val_loss"].tolist() == [0.9, 0.7, 0.65]
    assert table["val_auc"].iloc[0] == 0.5 and np.isnan(table["val_auc"].iloc[1])  # -inf = undefined AUC
    assert _decode(plots.training_curves_figure(table, best_epoch=3)).width > 500


def test_epoch_table_refuses_a_table_without_epochs():
    with pytest.raises(DataError, match="epoch"):
        plots.epoch_table(pd.DataFrame({"step": [1]}))


def test_gallery_selection_on_a_hand_made_case():
    y = np.array([1, 1, 1, 0, 0, 0, np.nan, 1, 0])
    p = np.array([0.9, 0.6, 0.2, 0.7, 0.1, 0.3, 0.99, 0.05, 0.55])
    chosen = select_gallery(y, p, threshold=0.5, n_per_category=2)
    assert chosen == {
        "true_positive": [0, 1],  # most confident first
        "false_positive": [3, 8],  # highest probability first
        "false_negative": [7, 2],  # lowest probability first
        "true_negative": [4, 5],
    }
    assert 6 not in sum(chosen.values(), [])  # unknown label never shown


def test_thumbnails_are_enlarged_without_interpolation_and_overlays_are_rgb():
    image = np.zeros((1, 28, 28), dtype=np.float32)
    image[0, :14] = 1.0
    thumb = _decode(thumbnail_png(image, size=112))
    assert thumb.size == (112, 112) and thumb.mode == "L"
    pixels = np.asarray(thumb)
    assert set(np.unique(pixels)) == {0, 255}  # nearest neighbour: no grey invented at the edge
    heat = np.zeros((28, 28), dtype=np.float32)
    heat[20:, 20:] = 5.0
    overlay = np.asarray(_decode(overlay_png(image, heat, size=112)))
    assert overlay.shape == (112, 112, 3)
    assert overlay[0, 0].tolist() == [255, 255, 255] and overlay[111, 0].tolist() == [0, 0, 0]  # cold: untouched
    assert overlay[111, 111].any()  # hot: coloured
