"""Segmentation losses that skip ignored pixels (label 255): masked sparse cross-entropy
(optionally class-weighted, for imbalanced classes) and cross-entropy + soft Dice. The model ends
in a softmax, so both take probabilities, not logits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from edgeseg.core.spec import IGNORE_INDEX

LOSSES = ("ce", "ce+dice")
_EPS = 1e-7


def _valid_labels(y_true: Any, num_classes: int, ignore_index: int) -> tuple[Any, Any]:
    """(labels with ignored pixels set to 0, float mask of scored pixels), both (B, H, W)."""
    y = ops.cast(y_true, "int32")
    if len(y.shape) == 4:
        y = ops.squeeze(y, -1)
    valid = ops.logical_and(ops.not_equal(y, ignore_index), ops.less(y, num_classes))
    return ops.where(valid, y, 0), ops.cast(valid, "float32")


def masked_cross_entropy(
    y_true: Any,
    y_pred: Any,
    ignore_index: int = IGNORE_INDEX,
    class_weights: Sequence[float] | None = None,
) -> Any:
    """Per-pixel cross-entropy averaged over pixels whose label is not `ignore_index`; with
    `class_weights`, each pixel counts its class's weight (the weighted mean, as in PyTorch)."""
    labels, valid = _valid_labels(y_true, y_pred.shape[-1], ignore_index)
    onehot = ops.one_hot(labels, y_pred.shape[-1])
    probs = ops.clip(ops.cast(y_pred, "float32"), _EPS, 1.0)
    picked = ops.sum(probs * onehot, axis=-1)
    if class_weights is not None:
        weights = ops.convert_to_tensor([float(w) for w in class_weights], "float32")
        valid = valid * ops.sum(onehot * weights, axis=-1)
    ce = -ops.log(ops.clip(picked, _EPS, 1.0)) * valid
    return ops.sum(ce) / ops.maximum(ops.sum(valid), _EPS)


def masked_dice(y_true: Any, y_pred: Any, ignore_index: int = IGNORE_INDEX) -> Any:
    """1 - soft Dice averaged over classes present in the batch; ignored pixels count nowhere."""
    labels, valid = _valid_labels(y_true, y_pred.shape[-1], ignore_index)
    onehot = ops.one_hot(labels, y_pred.shape[-1]) * valid[..., None]
    probs = ops.cast(y_pred, "float32") * valid[..., None]
    inter = ops.sum(onehot * probs, axis=(0, 1, 2))
    total = ops.sum(onehot, axis=(0, 1, 2)) + ops.sum(probs, axis=(0, 1, 2))
    dice = (2.0 * inter + 1.0) / (total + 1.0)
    present = ops.cast(ops.greater(ops.sum(onehot, axis=(0, 1, 2)), 0), "float32")
    return 1.0 - ops.sum(dice * present) / ops.maximum(ops.sum(present), 1.0)


@keras.saving.register_keras_serializable(package="edgeseg")
class SegmentationLoss(keras.losses.Loss):
    """'ce' or 'ce+dice' on softmax outputs, skipping `ignore_index` pixels; `class_weights`
    (one per class) weight the cross-entropy term (Dice already treats classes equally)."""

    def __init__(
        self,
        kind: str = "ce",
        ignore_index: int = IGNORE_INDEX,
        class_weights: Sequence[float] | None = None,
        **kwargs: Any,
    ) -> None:
        if kind not in LOSSES:
            raise ValueError(f"`kind` must be one of {LOSSES}. Received: {kind!r}")
        kwargs.setdefault("name", f"segmentation_{kind.replace('+', '_')}")
        super().__init__(**kwargs)
        self.kind = kind
        self.ignore_index = ignore_index
        self.class_weights = None if class_weights is None else [float(w) for w in class_weights]

    def call(self, y_true: Any, y_pred: Any) -> Any:
        loss = masked_cross_entropy(y_true, y_pred, self.ignore_index, self.class_weights)
        if self.kind == "ce+dice":
            loss = loss + masked_dice(y_true, y_pred, self.ignore_index)
        return loss

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "kind": self.kind,
            "ignore_index": self.ignore_index,
            "class_weights": self.class_weights,
        }
