"""Input cleaning shared by every evaluation function."""

from __future__ import annotations

import numpy as np
import pytest

from radcnn.errors import DataError
from radcnn.evaluation.arrays import as_2d, clean_binary, encode_groups


def test_accepts_bool_int_float_labels_and_float32_probabilities():
    p = np.array([0.2, 0.7, 0.5], dtype=np.float32)
    for y in ([False, True, True], [0, 1, 1], np.array([0.0, 1.0, 1.0], dtype=np.float32)):
        data = clean_binary(y, p)
        assert data.y.tolist() == [0.0, 1.0, 1.0] and data.p.dtype == np.float64 and data.n_unknown == 0


def test_unknown_labels_are_dropped_with_their_groups_and_codes_stay_dense():
    data = clean_binary([np.nan, 1, 0, np.nan, 1], [0.1, 0.2, 0.3, 0.4, 0.5], ["a", "b", "c", "a", "b"])
    assert data.n == 3 and data.n_unknown == 2
    assert data.group_codes.tolist() == [0, 1, 0] and data.n_groups == 2  # "a" is gone entirely


def test_group_ids_of_mixed_types():
    codes, n = encode_groups([7, "7", 7, 3.5], 4)
    assert codes.tolist() == [0, 1, 0, 2] and n == 3  # the int 7 and the string "7" are different patients


@pytest.mark.parametrize(
    ("groups", "match"),
    [(["a", None], r"groups\[1\] is missing"), ([["a", "b"]], "1-D"), (["a"], "expected 2 group ids")],
)
def test_group_errors(groups, match):
    with pytest.raises(DataError, match=match):
        clean_binary([0, 1], [0.3, 0.6], groups)


def test_soft_labels_and_text_are_rejected():
    with pytest.raises(DataError, match=r"y_true\[0\] = 0.3"):
        clean_binary([0.3, 1], [0.1, 0.2])
    with pytest.raises(DataError, match="expected numbers"):
        clean_binary(["yes", "no"], [0.1, 0.2])


def test_as_2d():
    assert as_2d([0.1, 0.2], "y_prob").shape == (2, 1)
    with pytest.raises(DataError, match="expected 3 columns"):
        as_2d(np.zeros((2, 2)), "y_prob", 3)
    with pytest.raises(DataError, match=r"\(N, C\)"):
        as_2d(np.zeros((2, 2, 2)), "y_prob")
