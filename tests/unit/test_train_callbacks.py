"""The epoch's end in one piece: the best checkpoint, history.csv and the resume state are
written together, so a Ctrl-C or SIGTERM among them never leaves a model no one can resume."""

from __future__ import annotations

import json
import math
import types
from pathlib import Path
from typing import Any

import pytest

from edgeseg.train import callbacks
from edgeseg.train.callbacks import BestCheckpoint, EpochLog


def test_an_interrupt_during_the_epochs_writes_lets_them_all_finish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM between the checkpoint's save and the resume state's left model.keras with no
    resume/state.json: "terminated: ... (continue with --resume)", then --resume refused, and
    "0 epochs" said of a run that had kept an epoch's checkpoint."""
    saves: list[str] = []

    def save(model: Any, path: Path) -> None:
        path.write_text(f"epoch {model.epoch}")
        saves.append(path.name)
        if len(saves) == 1:  # the signal lands as the checkpoint is written
            raise KeyboardInterrupt

    monkeypatch.setattr(callbacks, "atomic_save_model", save)
    validation = types.SimpleNamespace(last=object())
    configs: list[int] = []
    checkpoint = BestCheckpoint(
        tmp_path / "model.keras",
        validation,  # type: ignore[arg-type]
        lambda scores, epoch: configs.append(epoch),
    )
    rows: list[dict[str, Any]] = []
    log = EpochLog(tmp_path / "history.csv", tmp_path / "resume", rows, checkpoint)
    model = types.SimpleNamespace(epoch=1, optimizer=types.SimpleNamespace(learning_rate=1e-3))
    log.set_model(model)  # type: ignore[arg-type]
    with pytest.raises(KeyboardInterrupt):
        log.on_epoch_end(0, {"loss": 0.5, "val_miou": 0.4})
    state = json.loads((tmp_path / "resume" / "state.json").read_text())
    assert state == {"epoch": 1, "best_miou": 0.4, "best_epoch": 1}
    assert (tmp_path / "resume" / "last.keras").read_text() == "epoch 1"
    assert configs == [0] and [r["epoch"] for r in rows] == [1]
    assert (tmp_path / "history.csv").read_text().splitlines()[1].startswith("1,0.5,")
    # a worse epoch: history and state move on, the checkpoint stays
    model.epoch = 2
    log.on_epoch_end(1, {"loss": 0.4, "val_miou": 0.3})
    assert (tmp_path / "model.keras").read_text() == "epoch 1" and configs == [0]
    state = json.loads((tmp_path / "resume" / "state.json").read_text())
    assert state == {"epoch": 2, "best_miou": 0.4, "best_epoch": 1}
    assert checkpoint.best == 0.4 and not math.isnan(checkpoint.best)


def test_the_curves_leave_the_processs_plotting_backend_alone(tmp_path: Path) -> None:
    """plot_curves called matplotlib.use("Agg"): after edgeseg.train() in a notebook, the
    caller's inline plots stopped showing."""
    import matplotlib

    from edgeseg.train.callbacks import plot_curves

    before = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        rows = [{"epoch": 1, "loss": 0.9, "val_loss": 1.0, "val_miou": 0.2}]
        rows.append({"epoch": 2, "loss": 0.5, "val_loss": 0.7, "val_miou": 0.4})
        path = plot_curves(rows, tmp_path / "curves.png")
        assert path is not None and path.read_bytes().startswith(b"\x89PNG")
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(before)


def test_a_signal_during_a_fit_step_stops_the_fit_at_that_steps_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Raised where it landed (inside TensorFlow's step, C code) a SIGTERM became a SystemError
    and train ended in a traceback; the batch now finishes and the stop is raised after it."""
    import io
    import os
    import signal

    import keras
    import numpy as np
    from rich.console import Console

    from edgeseg.cli import common
    from edgeseg.core.stops import safe_points
    from edgeseg.train.callbacks import StopPoints

    monkeypatch.setattr(common, "err_console", Console(file=io.StringIO(), width=300))
    ended: list[int] = []

    class SignalAtSecondBatch(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            if batch == 1:
                os.kill(os.getpid(), signal.SIGTERM)
                for _ in range(1000):  # where a handler that raises would raise
                    pass

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            ended.append(batch)

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x, y = np.zeros((8, 2), np.float32), np.zeros((8, 1), np.float32)
    with pytest.raises(Exception) as stopped, common.interrupts_kept():
        with safe_points(), pytest.raises(common.Terminated):
            steps = [SignalAtSecondBatch(), StopPoints()]
            model.fit(x, y, batch_size=2, callbacks=steps, verbose=0)
        raise common.stop_exit()
    assert ended == [0, 1]
    assert getattr(stopped.value, "exit_code", None) == 143
