"""The stream's fast paths draw and segment exactly what the reference functions do: resize
straight into the input buffer, colour at model size then resize once, paste a cached legend,
argmax on 8-bit channel planes; and pycoral's uint8 cast of an int8 output, which edgeseg avoids."""

from __future__ import annotations

import signal
import sys

import cv2
import numpy as np
import pytest

from edgeseg.core.processing import (
    _resize,
    class_map_from_output,
    class_map_to_frame,
    placement_for,
    prepare_image,
    prepare_image_into,
    to_model_channels,
)
from edgeseg.core.spec import ModelSpec
from edgeseg.runtime.outputs import Painter, render
from edgeseg.runtime.thread_trial import TRIAL_FRAMES, TRIAL_WARMUP, ThreadTrial

NAMES = ("water", "land_unpaved", "road", "building", "vegetation")


def _frames() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    color = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    big = rng.integers(0, 256, (900, 1200, 3), dtype=np.uint8)  # > 3x shrink: area resize
    same = color[:256, :256].copy()  # already model size: copied, not resized
    return [color, cv2.cvtColor(color, cv2.COLOR_BGR2GRAY), color[:100, :330], big, same]


def _reference_pixels(frame: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """The pixels as computed before the fast path: channels first, then resize, then pad."""
    img = to_model_channels(frame, spec)
    p = placement_for(frame.shape[:2], spec)
    content = _resize(img, (p.content_height, p.content_width), nearest=False)
    out = np.zeros((spec.input_height, spec.input_width, spec.channels), np.uint8)
    out[p.top : p.top + p.content_height, p.left : p.left + p.content_width] = content.reshape(
        p.content_height, p.content_width, spec.channels
    )
    return out


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("order", ["rgb", "bgr"])
@pytest.mark.parametrize("resize", ["stretch", "letterbox"])
def test_resize_into_buffer_equals_reference(channels: int, order: str, resize: str) -> None:
    spec = ModelSpec(256, 256, NAMES, channels=channels, color_order=order, resize=resize)
    buffer = np.full((1, 256, 256, channels), 77, np.uint8)  # stale pixels must not survive
    for frame in _frames():
        placement = prepare_image_into(frame, spec, buffer[0])
        np.testing.assert_array_equal(buffer[0], _reference_pixels(frame, spec))
        pixels, same = prepare_image(frame, spec)
        np.testing.assert_array_equal(pixels, buffer[0])
        assert same == placement


@pytest.mark.parametrize("view", ["overlay", "side", "mask"])
@pytest.mark.parametrize("resize", ["stretch", "letterbox"])
def test_painter_draws_the_same_picture_as_render(view: str, resize: str) -> None:
    spec = ModelSpec(256, 256, NAMES, resize=resize)
    painter = Painter(spec, view, 0.4)
    rng = np.random.default_rng(1)
    for frame in _frames():
        class_map = rng.integers(0, len(NAMES), (256, 256), dtype=np.uint8)
        placement = placement_for(frame.shape[:2], spec)
        hud = ["12.5 FPS  dropped 0", "wait 0.1 pre 0.3 inv 20.0 post 0.4 draw 0.9 ms"]
        fast = painter.draw(frame, class_map, placement, hud)
        full = class_map_to_frame(class_map, placement)
        expected = render(frame, full, spec, view, hud, 0.4)
        np.testing.assert_array_equal(fast, expected)
        own = frame.copy()  # what the stream does: draw over a frame it no longer needs
        np.testing.assert_array_equal(painter.draw(own, class_map, placement, hud, True), expected)
        np.testing.assert_array_equal(fast, expected)  # the painter's reused buffers: no aliasing


def test_painter_in_place_draws_over_the_frame_and_keeps_earlier_pictures() -> None:
    spec = ModelSpec(256, 256, NAMES)
    painter = Painter(spec)
    frames = [np.full((480, 640, 3), v, np.uint8) for v in (40, 200)]
    maps = [np.full((256, 256), c, np.uint8) for c in (1, 3)]
    placement = placement_for((480, 640), spec)
    first = painter.draw(frames[0], maps[0], placement, in_place=True)
    kept = first.copy()
    second = painter.draw(frames[1], maps[1], placement, in_place=True)
    assert first is frames[0] and second is frames[1]
    np.testing.assert_array_equal(first, kept)  # drawing frame 2 left frame 1's picture alone
    assert not np.array_equal(first, second)


@pytest.mark.parametrize("shape", [(40, 60), (150, 200)])
def test_a_long_class_name_on_a_small_frame_matches_render(shape: tuple[int, int]) -> None:
    """40x60: the key would hide the frame, so neither draws it; 150x200: the name runs to the
    frame's edge and the cached legend still equals drawing it."""
    spec = ModelSpec(64, 64, ("a_very_long_class_name_that_overflows", "b"))
    painter = Painter(spec)
    frame = np.full((*shape, 3), 90, np.uint8)
    class_map = np.zeros((64, 64), np.uint8)
    placement = placement_for(frame.shape[:2], spec)
    fast = painter.draw(frame, class_map, placement)
    full = class_map_to_frame(class_map, placement)
    np.testing.assert_array_equal(fast, render(frame, full, spec))
    plain = render(frame, full, spec, legend=False)
    assert np.array_equal(fast, plain) == (shape == (40, 60))


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
@pytest.mark.parametrize("classes", [3, 5, 12, 64, 255])
def test_8bit_argmax_over_the_full_integer_range(dtype: type, classes: int) -> None:
    info = np.iinfo(dtype)
    rng = np.random.default_rng(classes)
    out = rng.integers(info.min, info.max + 1, (1, 64, 48, classes), dtype=dtype)
    out[0, :8] = rng.integers(info.min, info.min + 2, (8, 48, classes), dtype=dtype)  # ties
    out[0, 8:16] = info.max
    cmap = class_map_from_output(out, "softmax", 0.1, 0)
    np.testing.assert_array_equal(cmap, np.argmax(out[0], axis=2))


def test_pycoral_uint8_cast_corrupts_the_argmax_and_edgeseg_does_not() -> None:
    """pycoral's segment.get_output casts the output to uint8: an int8 -1 becomes 255 and wins
    over +100. A confident int8 'road' pixel (high positive) loses to a weak negative class."""
    raw = np.full((1, 4, 4, 3), -100, np.int8)
    raw[0, :, :, 2] = 100  # class 2 clearly wins
    raw[0, :, :, 0] = -1  # class 0: just below zero, i.e. a low score
    pycoral = np.argmax(raw[0].astype(np.uint8), axis=-1)
    assert (pycoral == 0).all()  # -1 wrapped to 255: the wrong class everywhere
    edgeseg = class_map_from_output(raw, "softmax", 1 / 256, -128)
    assert (edgeseg == 2).all()


def test_thread_trial_keeps_the_shorter_stream_cycle() -> None:
    trial = ThreadTrial([2, 1])
    per = TRIAL_WARMUP + TRIAL_FRAMES
    cycle = {2: 0.030, 1: 0.025}  # all cores is slower on this stream: the pipeline starves
    for i in range(2 * per):
        threads = trial.threads_for(i)
        assert threads == (2 if i < per else 1)
        trial.record(i, threads, cycle[threads] if i % per >= TRIAL_WARMUP else 1.0)
    assert trial.chosen == 1 and trial.threads_for(10_000) == 1
    summary = trial.to_dict()
    assert summary["cycle_p50_ms"] == {"2": 30.0, "1": 25.0} and summary["trial_finished"]
    assert ThreadTrial([1]).chosen == 1  # one core: nothing to try


def test_a_stream_shorter_than_the_thread_trial_reports_what_was_timed() -> None:
    """A 30-frame video ends one cycle short of the trial: the faster of what was timed is
    reported (not the count that happened to run last), flagged as an unfinished trial."""
    per = TRIAL_WARMUP + TRIAL_FRAMES
    trial = ThreadTrial([2, 1])
    cycle = {2: 0.020, 1: 0.025}
    for i in range(2 * per - 1):  # the last candidate's last cycle never closes
        threads = trial.threads_for(i)
        trial.record(i, threads, cycle[threads])
    assert trial.chosen is None
    trial.end_early(current=1)
    summary = trial.to_dict()
    assert trial.chosen == 2 and not summary["trial_finished"]
    assert summary["timed_frames"] == 2 * TRIAL_FRAMES - 1
    short = ThreadTrial([2, 1])
    for i in range(per):  # only the first candidate timed: it is what the stream ran on
        short.record(i, 2, 0.020)
    short.end_early(current=1)  # a 16-frame stream reported 1, its last frame's, never timed
    assert short.chosen == 2 and not short.finished
    untimed = ThreadTrial([2, 1])
    untimed.end_early(current=2)  # nothing timed at all: the count in use
    assert untimed.chosen == 2


def test_cli_process_settings_are_scoped_to_the_run() -> None:
    from edgeseg.cli.run_cmd import GIL_SWITCH_INTERVAL, stream_process_settings

    class Runner:
        stopped: str | None = None

        def stop(self, reason: str = "stopped") -> None:
            self.stopped = reason

    runner = Runner()
    before = (signal.getsignal(signal.SIGTERM), sys.getswitchinterval())
    with stream_process_settings(runner):  # type: ignore[arg-type]
        assert sys.getswitchinterval() == pytest.approx(GIL_SWITCH_INTERVAL)
        signal.raise_signal(signal.SIGTERM)
        assert runner.stopped == "SIGTERM"
    assert (signal.getsignal(signal.SIGTERM), sys.getswitchinterval()) == before


def test_stream_module_has_no_process_wide_side_effects() -> None:
    import inspect

    import edgeseg.runtime.stream as stream

    source = inspect.getsource(stream)
    assert "setswitchinterval" not in source and "signal.signal" not in source


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_run_threads_must_be_auto_or_positive(value: str) -> None:
    from typer.testing import CliRunner

    from edgeseg.cli.main import app

    result = CliRunner().invoke(app, ["run", "missing.tflite", "--threads", value])
    assert result.exit_code == 2 and "'auto' or a number of threads" in result.output
