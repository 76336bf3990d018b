"""`--xla auto`: the probe times both training-step compilers on real steps and keeps the faster,
restoring the graph function already traced (no second trace) when XLA loses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import tensorflow as tf

from edgeseg.core.errors import EdgesegError
from edgeseg.train import xla
from edgeseg.train.config import TrainConfig
from edgeseg.train.xla import MIN_PROBE_BUDGET, PROBE_SKIP, PROBE_STEPS, XlaProbe, plan_xla


class StubModel:
    """What the probe touches of a Keras model: jit_compile, train_function and
    make_train_function, which builds a new function as Keras does; its steps return which
    function ran (an XLA one that cannot compile raises as TensorFlow does)."""

    def __init__(self, xla_compiles: bool = True) -> None:
        self.jit_compile = False
        self.xla_compiles = xla_compiles
        self.built: list[str] = []
        self.ran: list[str] = []
        self.train_function: Any = self._make()

    def _make(self) -> Any:
        kind = "xla" if self.jit_compile else "graph"
        self.built.append(kind)

        def step(iterator: Any) -> str:
            if kind == "xla" and not self.xla_compiles:
                raise tf.errors.UnimplementedError(None, None, "op Foo not supported by XLA\nmore")
            return kind

        return step

    def make_train_function(self, force: bool = False) -> None:
        assert force
        self.train_function = self._make()


def _drive(probe: XlaProbe, model: StubModel, clock: list[float], cost: dict[bool, float]) -> int:
    """Run steps until the probe decides; each step 'takes' cost[jit_compile] seconds, the first
    one after a (re)build 100 s (tracing, XLA compiling). Returns the steps run."""
    steps = 0
    fresh = True
    while probe.candidate is not None:
        function = model.train_function
        probe.on_train_batch_begin(steps)
        clock[0] += 100.0 if fresh else cost[model.jit_compile]
        model.ran.append(model.train_function(None))
        probe.on_train_batch_end(steps)
        fresh = model.train_function is not function
        steps += 1
        assert steps < 100, "the probe never decided"
    return steps


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [0.0]
    monkeypatch.setattr(xla.time, "perf_counter", lambda: now[0])
    return now


@pytest.mark.parametrize(("graph_s", "xla_s"), [(2.0, 1.5), (0.7, 1.6)])
def test_the_faster_compiler_is_kept(clock: list[float], graph_s: float, xla_s: float) -> None:
    model, probe = StubModel(), XlaProbe()
    probe.set_model(model)  # type: ignore[arg-type]
    first = model.train_function
    steps = _drive(probe, model, clock, {False: graph_s, True: xla_s})
    assert steps == 2 * (PROBE_SKIP + PROBE_STEPS)  # every probed step trains; none repeated
    assert model.ran == ["graph"] * (steps // 2) + ["xla"] * (steps // 2)
    use_xla = xla_s < graph_s
    assert probe.result is not None and probe.result["xla"] is use_xla
    # the tracing / compiling steps are not counted
    assert probe.result["seconds_per_step"] == {
        "graph": pytest.approx(graph_s),
        "xla": pytest.approx(xla_s),
    }
    assert model.jit_compile is use_xla
    assert model.built == ["graph", "xla"]  # the graph function is never traced twice
    if use_xla:
        assert model.train_function is not first
    else:
        assert model.train_function is first
    # after the decision nothing changes
    clock[0] += 1.0
    probe.on_train_batch_begin(99)
    probe.on_train_batch_end(99)
    assert model.built == ["graph", "xla"] and model.jit_compile is use_xla
    assert model.train_function(None) == ("xla" if use_xla else "graph")


def test_a_step_xla_cannot_compile_trains_without_it(
    clock: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    model, probe = StubModel(xla_compiles=False), XlaProbe()
    probe.set_model(model)  # type: ignore[arg-type]
    first = model.train_function
    steps = _drive(probe, model, clock, {False: 1.0, True: 0.5})
    assert steps == PROBE_SKIP + PROBE_STEPS + 1
    assert model.ran[-1] == "graph"  # the failed step was trained by the graph function
    assert model.train_function is first and model.jit_compile is False
    assert probe.result is not None and probe.result["xla"] is False
    assert probe.result["xla_error"] == "op Foo not supported by XLA"
    assert "XLA cannot compile the training step (op Foo not supported by XLA)" in caplog.text


def _config(**kw: Any) -> TrainConfig:
    return TrainConfig(data=Path("d"), out=Path("o"), **kw)


def test_plan_measures_only_long_single_device_runs() -> None:
    assert plan_xla(_config(), MIN_PROBE_BUDGET) is None  # auto: measure
    assert plan_xla(_config(), MIN_PROBE_BUDGET - 1) is False  # the compile would not pay off
    assert plan_xla(_config(strategy="mirrored"), 10_000) is False
    assert plan_xla(_config(xla="on"), 10) is True
    assert plan_xla(_config(xla="off"), 10_000) is False


def test_bad_xla_settings_are_refused() -> None:
    with pytest.raises(EdgesegError, match="--xla must be one of auto, on, off"):
        _config(xla="yes")
    with pytest.raises(EdgesegError, match="--xla on needs --strategy default"):
        _config(xla="on", strategy="mirrored")
