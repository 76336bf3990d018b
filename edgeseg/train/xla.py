"""Whether the training step is compiled by XLA (`edgeseg train --xla auto|on|off`).

Keras leaves XLA off on CPU-only machines; which is faster depends on the layers and the CPU, so
`auto` measures both during the first steps of the run and trains on with the faster. Measured on
an AMD EPYC (AVX2, 2 cores, oneDNN off), batch 8: the U-Net's step took 1.79 s with XLA against
2.67 s without (256x256 gray), the MobileNetV2 encoder's 1.58 s against 0.71 s (XLA's depthwise
convolutions are slow on CPU); with oneDNN on, the U-Net's winner changed with the input size:
README, "Training speed".
"""

from __future__ import annotations

import logging
import statistics
import time
from typing import Any

import keras
import tensorflow as tf

from edgeseg.core.errors import first_line
from edgeseg.train.config import TrainConfig

log = logging.getLogger(__name__)

PROBE_SKIP = 2  # steps after a (re)trace or XLA compile that are not timed
PROBE_STEPS = 6  # timed steps per candidate (median)
MIN_PROBE_BUDGET = 200  # shorter runs train without XLA: its compile would not pay off


def plan_xla(config: TrainConfig, total_steps: int) -> bool | None:
    """XLA on (True) or off (False) for the whole run, or None: measure both (XlaProbe).
    Distributed strategies train without it (Keras does the same; --xla on is refused there)."""
    if config.xla == "on":
        return True
    if config.xla == "off" or config.strategy != "default" or total_steps < MIN_PROBE_BUDGET:
        return False
    return None


class XlaProbe(keras.callbacks.Callback):
    """Times PROBE_STEPS training steps as TensorFlow graphs, then as many compiled by XLA (the
    steps right after each trace or compile are skipped), and keeps the faster train function;
    every timed step is a real optimiser step of the run. `result` says what was chosen."""

    def __init__(self) -> None:
        super().__init__()
        self.times: dict[bool, list[float]] = {False: [], True: []}
        self.candidate: bool | None = False  # the one being timed; None once decided
        self.result: dict[str, Any] | None = None
        self._graph_function: Any = None
        self._xla_function: Any = None
        self._skip = PROBE_SKIP
        self._start = 0.0

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.candidate is None:
            return
        elapsed = time.perf_counter() - self._start
        if self._skip:
            self._skip -= 1
            return
        timed = self.times[self.candidate]
        timed.append(elapsed)
        if len(timed) < PROBE_STEPS:
            return
        if not self.candidate:  # graphs timed: compile the same step with XLA next
            self._graph_function = self.model.train_function
            self.model.jit_compile = True
            self.model.make_train_function(force=True)
            self._xla_function = self.model.train_function
            self.model.train_function = self._xla_or_graph
            self.candidate, self._skip = True, PROBE_SKIP
            return
        graph, xla = (statistics.median(self.times[c]) for c in (False, True))
        self._decide(xla < graph, {"graph": graph, "xla": xla})

    def _xla_or_graph(self, iterator: Any) -> Any:
        """The XLA step while it is being timed; a step XLA cannot compile falls back to the
        graph function for good (an error the graph step raises too still surfaces)."""
        try:
            return self._xla_function(iterator)
        except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as exc:
            log.warning(
                "XLA cannot compile the training step (%s); training without it", first_line(exc)
            )
            self._decide(False, {"graph": statistics.median(self.times[False])}, exc)
            return self.model.train_function(iterator)

    def _decide(
        self, use_xla: bool, seconds: dict[str, float], error: Exception | None = None
    ) -> None:
        """Train on with the XLA or the graph function; record and log why."""
        if use_xla:
            self.model.train_function = self._xla_function
        else:  # back to the graph function already traced: no second trace
            self.model.jit_compile = False
            self.model.train_function = self._graph_function
        self._graph_function = self._xla_function = None
        self.candidate = None
        self.result = {"xla": use_xla, "seconds_per_step": seconds}
        if error is not None:
            self.result["xla_error"] = first_line(error)
            return
        log.info(
            "training step: %s (%.3g s with XLA, %.3g s without; --xla on|off forces one)",
            "XLA-compiled" if use_xla else "TensorFlow graph",
            seconds["xla"],
            seconds["graph"],
        )
