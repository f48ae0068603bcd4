import json

import numpy as np
import pandas as pd
import pytest

from radcnn.errors import DataError
from radcnn.explain import evaluate_run_explanations, score_explanations
from radcnn.explain.localisation import Box
from radcnn.explain.registry import ExplainSettings
from radcnn.explain.runs import boxes_by_path, read_run_images
from radcnn.runs import RunDir


def test_score_table_on_the_trained_model(trained, true_positives):
    model, spec = trained
    images, masks = true_positives
    calls = []
    result = score_explanations(
        model,
        spec,
        images[:4],
        masks[:4],
        "gradcam,integrated_gradients",
        steps=8,
        n_random=2,
        sanity_images=2,
        progress=lambda d, t: calls.append((d, t)),
    )
    assert result.target == "nodule" and result.n_images == 4 and calls[-1] == (18, 18)
    by_method = {s.method: s for s in result.scores}
    for s in by_method.values():
        assert s.deletion_beats_random and s.insertion_auc > s.insertion_auc_random
        assert s.pointing_game >= 0.8
        assert s.mass_in_boxes > 5 * s.box_area
        assert s.box_area == pytest.approx(masks[:4].mean())
        assert len(s.sanity_curve) == 5 and s.sanity_curve[-1][0] == "features.0"
    assert by_method["gradcam"].sanity_passed
    table = result.to_dict()
    assert set(table["methods"]) == {"gradcam", "integrated_gradients"}
    json.dumps(table)  # serialisable


def test_one_mask_per_image_is_required(trained, true_positives):
    model, spec = trained
    with pytest.raises(DataError, match="one lesion mask per image"):
        score_explanations(model, spec, true_positives[0][:2], true_positives[1][:1], "gradcam")


def test_run_boxes_are_scaled_from_stored_pixels_to_the_model_input(run_dir, trained, held_out):
    _, spec = trained
    rows = RunDir.open(run_dir).split_rows("test")
    images = read_run_images(rows, spec, "nodule", boxes_by_path(run_dir.parent / "data" / "labels.csv"))
    assert len(images) == 20
    for i, (image, box, label) in enumerate(zip(images, held_out.boxes[:20], held_out.labels[:20], strict=True)):
        # Stored at 2× (16-bit PNG) and shrunk back by area averaging: the original pixels, up to quantisation.
        np.testing.assert_allclose(image.array, held_out.images[i], atol=1e-4)
        assert image.truth == label
        if box is None:
            assert image.boxes == ()
        else:
            (scaled,) = image.boxes
            assert (scaled.x0, scaled.y0, scaled.x1, scaled.y1) == pytest.approx(box)
    with pytest.raises(DataError, match="no 'val' split; the run has: test"):
        RunDir.open(run_dir).split_rows("val")


def test_explain_eval_on_a_run(run_dir):
    result = evaluate_run_explanations(
        run_dir, methods="gradcam", max_images=4, sanity_images=1, settings=ExplainSettings()
    )
    assert result.n_images == 4 and all(path.endswith(".png") for path in result.sources)
    truth = pd.read_csv(run_dir / "split.csv").set_index("path")["nodule"]
    assert all(truth[path] == 1 for path in result.sources), "only positive images with boxes"
    saved = json.loads((run_dir / "explain_eval.json").read_text())
    assert saved["settings"]["true_positives_with_boxes"] == 4
    assert saved["methods"]["gradcam"]["pointing_game"] >= 0.75


def test_nih_box_lists_are_matched_by_file_name(tmp_path):
    csv = tmp_path / "BBox_List_2017.csv"
    csv.write_text("Image Index,Finding Label,Bbox [x,y,w,h],,,\nimg001.png,Nodule,10,20,30,40,,,\n")
    boxes = boxes_by_path("ignored.csv", boxes_csv=csv)
    assert boxes == {"img001.png": [Box(10, 20, 40, 60, "Nodule")]}


def test_explain_eval_says_why_there_is_nothing_to_score(trained, held_out, blob_task, tmp_path):
    model, _ = trained
    subset = blob_task.BlobSet(held_out.images[:6], held_out.labels[:6], held_out.boxes[:6])
    run = blob_task.write_run(tmp_path, model, subset, stored_scale=1)
    labels = pd.read_csv(tmp_path / "data" / "labels.csv")
    labels["boxes"] = "[]"
    labels.to_csv(tmp_path / "data" / "labels.csv", index=False)
    with pytest.raises(DataError, match="no positive 'nodule' image of the test split has lesion boxes"):
        evaluate_run_explanations(run, methods="gradcam")
