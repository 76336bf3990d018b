"""Segmentation metrics against hand-computed confusion matrices."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgeseg.core.metrics import MetricAccumulator, confusion_matrix, scores_from_confusion

# (truth, prediction) pairs: (0,0) (0,1) (1,1) (1,1) (2,2) (2,0)
TARGET = np.array([[0, 0, 1], [1, 2, 2]], np.uint8)
PRED = np.array([[0, 1, 1], [1, 2, 0]], np.uint8)
CM = [[1, 1, 0], [0, 2, 0], [1, 0, 1]]


def test_confusion_matrix_by_hand() -> None:
    cm = confusion_matrix(TARGET, PRED, 3)
    assert cm.tolist() == CM


def test_scores_by_hand() -> None:
    s = scores_from_confusion(np.array(CM))
    # IoU = tp / (row + col - tp): 1/(2+2-1), 2/(2+3-2), 1/(2+1-1)
    assert np.allclose(s.per_class_iou, [1 / 3, 2 / 3, 1 / 2])
    assert s.miou == pytest.approx(0.5)
    assert s.pixel_accuracy == pytest.approx(4 / 6)
    assert s.fw_iou == pytest.approx((2 / 6) * (1 / 3 + 2 / 3 + 1 / 2))
    assert s.pixels == 6


def test_ignore_index_is_excluded() -> None:
    target = np.concatenate([TARGET, np.full((1, 3), 255, np.uint8)])
    pred = np.concatenate([PRED, np.array([[0, 1, 2]], np.uint8)])
    assert confusion_matrix(target, pred, 3, ignore_index=255).tolist() == CM
    assert confusion_matrix(target, pred, 3, ignore_index=7).sum() == 6  # 255 >= classes: dropped


def test_class_absent_from_truth_and_prediction_is_nan_and_left_out_of_miou() -> None:
    s = scores_from_confusion(confusion_matrix(TARGET, PRED, 4))
    assert math.isnan(s.per_class_iou[3])
    assert s.miou == pytest.approx(0.5)
    assert s.as_dict(["a", "b", "c", "d"])["per_class_iou"]["d"] is None  # type: ignore[index]


def test_class_only_predicted_counts_as_zero_iou() -> None:
    s = scores_from_confusion(confusion_matrix(np.array([0, 0]), np.array([0, 1]), 2))
    assert s.per_class_iou.tolist() == [0.5, 0.0]
    assert s.miou == pytest.approx(0.25)


def test_all_ignored_gives_nan_scores() -> None:
    s = scores_from_confusion(confusion_matrix(np.full(4, 255), np.zeros(4), 3))
    assert s.pixels == 0 and math.isnan(s.miou) and math.isnan(s.pixel_accuracy)


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="differ in size"):
        confusion_matrix(np.zeros(4), np.zeros(5), 2)


def test_streaming_accumulation_equals_one_shot() -> None:
    rng = np.random.default_rng(0)
    targets = [rng.integers(0, 4, (8, 9)) for _ in range(5)]
    preds = [rng.integers(0, 4, (8, 9)) for _ in range(5)]
    targets[2][0, :] = 255
    acc = MetricAccumulator(4)
    for t, p in zip(targets, preds, strict=True):
        acc.update(t, p)
    one_shot = confusion_matrix(np.stack(targets), np.stack(preds), 4)
    assert np.array_equal(acc.matrix, one_shot)
    assert acc.scores().miou == pytest.approx(scores_from_confusion(one_shot).miou)
    assert acc.matrix.sum() == 5 * 72 - 9


def test_two_models_are_compared_over_the_classes_the_masks_hold() -> None:
    """A class absent from the masks counted 0 for the model with one stray pixel of it and
    nothing for the other: 1 pixel in 10,000 made 100 against 67 mIoU, a 33-point 'drop'."""
    truth = np.zeros((100, 100), np.uint8)
    truth[:, 50:] = 1  # classes 0 and 1; class 2 absent
    clean, stray = truth.copy(), truth.copy()
    stray[0, 0] = 2
    scores = {}
    for name, pred in (("clean", clean), ("stray", stray)):
        acc = MetricAccumulator(3)
        acc.update(truth, pred)
        scores[name] = (acc.scores(), acc.scores(truth_classes=True))
    assert scores["clean"][0].miou == 1.0 and scores["stray"][0].miou < 0.67  # standard
    assert scores["stray"][1].miou == pytest.approx(1.0, abs=1e-3)  # over the masks' classes
    assert np.isnan(scores["stray"][1].per_class_iou[2])
