"""One worker of a two-process MultiWorkerMirroredStrategy run on 127.0.0.1 (started by
test_multiworker.py with TF_CONFIG set): trains briefly and saves its final weights to an .npz.

Usage: python multiworker_worker.py DATA OUT WEIGHTS.npz [--unpatched]
`--unpatched` replaces edgeseg's Keras patch by a no-op, to find out whether Keras still needs it.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

import keras
import numpy as np


class SaveWeights(keras.callbacks.Callback):
    """Write the model's weights after the last epoch (every worker, chief or not)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        np.savez(self.path, *[np.asarray(w) for w in self.model.get_weights()])


def main(argv: list[str]) -> None:
    data, out, weights = (Path(a) for a in argv[:3])
    if "--unpatched" in argv:
        import edgeseg.train.loop as loop

        loop.keras_multiworker_patch = lambda *a, **k: contextlib.nullcontext()  # type: ignore[assignment]
    from edgeseg.train.fit import TrainConfig, train

    config = TrainConfig(
        data=data,
        out=out,
        size=(32, 32),
        depth=2,
        filters=4,
        batch=4,
        epochs=1,
        steps_per_epoch=2,
        strategy="multiworker",
        verbose=0,
        augment=False,
    )
    train(config, callbacks=[SaveWeights(weights)])


if __name__ == "__main__":
    main(sys.argv[1:])
