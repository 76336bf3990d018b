"""Distribution strategies for training: which one, who is chief (TensorFlow imported lazily)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from edgeseg.core.errors import EdgesegError
from edgeseg.train.config import STRATEGIES


def make_strategy(name: str) -> Any:
    """default: one device; mirrored: all local GPUs, else logical CPUs; multiworker: TF_CONFIG."""
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
        if gpus:
            return tf.distribute.MirroredStrategy(gpus)
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(
            cpus, cross_device_ops=tf.distribute.ReductionToOneDevice()
        )
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise EdgesegError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {name!r}")


def is_chief(strategy: Any) -> bool:
    """True on the worker that writes the run folder (single-process runs: always)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


@contextmanager
def keras_multiworker_patch(
    model: Any, strategy: Any, batch_shapes: tuple[tuple[int, ...], tuple[int, ...]]
) -> Iterator[None]:
    """Work around keras-team/keras#20585 for the duration of one `fit` under
    MultiWorkerMirroredStrategy, and undo it afterwards (the one place edgeseg patches Keras).

    Keras 3 builds optimizer/loss state by all-reducing the first batch eagerly, which fails across
    workers: build it from zero tensors of `batch_shapes` (image, mask) instead and skip Keras'
    build. Its per-step logs reduce scalars along axis 0 across workers, which fails for the loss:
    report each worker's own mean instead (gradients are still all-reduced by the optimizer).
    """
    import tensorflow as tf
    from keras.src.backend.tensorflow import trainer as tf_trainer

    with strategy.scope():
        x = tf.zeros(batch_shapes[0], tf.float32)
        y = tf.zeros(batch_shapes[1], tf.uint8)
        model._symbolic_build(data_batch=(x, y))
    original = tf_trainer._collective_all_reduce_multi_worker
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
    tf_trainer._collective_all_reduce_multi_worker = lambda strategy: False
    try:
        yield
    finally:
        tf_trainer._collective_all_reduce_multi_worker = original
        del model._maybe_symbolic_build  # the instance attribute; the class method shows again
