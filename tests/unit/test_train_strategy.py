"""The Keras multi-worker patch is scoped: applied inside the `with`, undone after, on error too."""

from __future__ import annotations

from contextlib import nullcontext

import keras
import pytest
import tensorflow as tf
from keras.src.backend.tensorflow import trainer as tf_trainer

from edgeseg.train.model import build_unet
from edgeseg.train.strategy import is_chief, keras_multiworker_patch

SHAPES = ((2, 16, 16, 3), (2, 16, 16))


def _model() -> keras.Model:
    model = build_unet((16, 16, 3), 2, depth=1, base_filters=2)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


@pytest.mark.parametrize("fail", [False, True])
def test_patch_is_applied_inside_and_restored_after(fail: bool) -> None:
    model, strategy = _model(), tf.distribute.get_strategy()
    original = tf_trainer._collective_all_reduce_multi_worker
    with pytest.raises(RuntimeError) if fail else nullcontext():
        with keras_multiworker_patch(model, strategy, SHAPES):
            assert tf_trainer._collective_all_reduce_multi_worker is not original
            assert "_maybe_symbolic_build" in vars(model)  # the instance is patched, not the class
            assert model.optimizer.built  # state built from shapes, not from an all-reduced batch
            if fail:
                raise RuntimeError("training failed")
    assert tf_trainer._collective_all_reduce_multi_worker is original
    assert "_maybe_symbolic_build" not in vars(model)
    assert model._maybe_symbolic_build.__func__ is type(model)._maybe_symbolic_build


def test_a_single_process_is_its_own_chief() -> None:
    assert is_chief(tf.distribute.get_strategy())
