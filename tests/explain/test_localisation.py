from pathlib import Path

import numpy as np
import pytest

from radcnn.errors import ManifestError
from radcnn.explain.localisation import (
    Box,
    boxes_mask,
    mass_inside,
    parse_boxes,
    pointing_game,
    read_nih_bboxes,
    standard_tolerance,
)

SHARED = Path(__file__).parents[2] / ".." / "shared" / "data"


def test_boxes_are_half_open_pixel_ranges():
    mask = boxes_mask([Box(1, 2, 3, 4)], (5, 5))
    expected = np.zeros((5, 5), bool)
    expected[2:4, 1:3] = True
    np.testing.assert_array_equal(mask, expected)
    # Clipped at the border; several boxes are united.
    assert boxes_mask([Box(-3, -3, 1, 1), Box(4, 4, 9, 9)], (5, 5)).sum() == 2


def test_scaled_boxes_follow_a_plain_resize_and_tiny_ones_keep_their_centre_pixel():
    box = Box(100, 40, 120, 60, "nodule").scaled((256, 256), (64, 128))
    assert (box.x0, box.y0, box.x1, box.y1, box.label) == (50, 10, 60, 15, "nodule")
    tiny = Box(101, 101, 102, 102).scaled((256, 256), (64, 64))  # 0.25 px wide after scaling
    mask = boxes_mask([tiny], (64, 64))
    assert mask.sum() == 1 and mask[25, 25]


def test_pointing_game():
    mask = np.zeros((4, 4), bool)
    mask[0, 0] = True
    hot = np.zeros((4, 4))
    hot[0, 0] = 1
    assert pointing_game(hot, mask)
    hot_elsewhere = np.zeros((4, 4))
    hot_elsewhere[0, 2] = 1
    assert not pointing_game(hot_elsewhere, mask)
    assert pointing_game(hot_elsewhere, mask, tolerance=2.0)
    assert not pointing_game(np.ones((4, 4)), mask), "a constant map points nowhere"
    tie = np.zeros((4, 4))
    tie[0, 0] = tie[3, 3] = 1
    assert pointing_game(tie, mask)
    assert standard_tolerance((224, 224)) == 15.0 and standard_tolerance((128, 256)) == pytest.approx(15 * 128 / 224)


def test_mass_inside_counts_positive_evidence_only():
    attribution = np.array([[2.0, -5.0], [1.0, 1.0]])
    mask = np.array([[True, True], [False, False]])
    assert mass_inside(attribution, mask) == pytest.approx(2 / 4)
    assert np.isnan(mass_inside(-np.ones((2, 2)), mask))


def test_phantom_boxes_column():
    boxes = parse_boxes('[{"label":"nodule","x0":10,"y0":20,"x1":30,"y1":44}]')
    assert boxes == [Box(10, 20, 30, 44, "nodule")]
    assert parse_boxes("") == [] and parse_boxes("[]") == []
    with pytest.raises(ManifestError, match=r"labels.csv, row 7, column 'boxes'"):
        parse_boxes('[{"x0": 1}]', path="labels.csv", row=7)
    with pytest.raises(ManifestError, match="x1 <= x0"):
        parse_boxes('[{"x0":5,"y0":0,"x1":5,"y1":3}]')


def test_reads_the_real_nih_bbox_list():
    boxes = read_nih_bboxes(SHARED / "labels" / "nih_bbox_sample.csv")
    assert sum(len(b) for b in boxes.values()) == 60
    first = boxes["00013118_008.png"][0]
    assert first.label == "Atelectasis"
    assert (first.x0, first.y0) == pytest.approx((225.084745762712, 547.019216763771))
    assert (first.x1 - first.x0, first.y1 - first.y0) == pytest.approx((86.7796610169491, 79.1864406779661))


def test_bad_nih_bbox_files_name_the_problem(tmp_path):
    missing = tmp_path / "a.csv"
    missing.write_text("Image Index,Finding Label,x,y\n")
    with pytest.raises(ManifestError, match="column 'Bbox \\[x'"):
        read_nih_bboxes(missing)
    bad = tmp_path / "b.csv"
    bad.write_text("Image Index,Finding Label,Bbox [x,y,w,h]\nimg.png,Mass,1,two,3,4\n")
    with pytest.raises(ManifestError, match="row 2, column 'y'"):
        read_nih_bboxes(bad)
    with pytest.raises(ManifestError, match="not found"):
        read_nih_bboxes(tmp_path / "none.csv")
