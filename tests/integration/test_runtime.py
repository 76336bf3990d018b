"""`edgeseg run` / `edgeseg bench` end to end: a model trained and converted here, real video files
written from ../shared/data, headless runs whose saved masks must equal `Segmenter.predict` (the
eval path), reconnects, SIGTERM, MJPEG, and a run with TensorFlow made unimportable."""

from __future__ import annotations

import http.client
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner
from videos import write_video

from edgeseg.cli.main import app
from edgeseg.core.errors import DelegateError, ModelError, OutputError, SourceError, SourceLost
from edgeseg.core.processing import read_image
from edgeseg.runtime.bench import benchmark
from edgeseg.runtime.segmenter import Segmenter
from edgeseg.runtime.sources import FOLDER_FPS, Source, VideoFileSource
from edgeseg.runtime.stream import StreamConfig, StreamResult, StreamRunner, run_stream
from edgeseg.runtime.thread_trial import TRIAL_FRAMES, TRIAL_WARMUP

pytestmark = pytest.mark.slow
runner = CliRunner()
EDGESEG = [str(Path(sys.executable).with_name("edgeseg"))]  # the installed console script


def cli(*args: str | Path) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def decoded_frames(video: Path) -> list[np.ndarray]:
    """The frames as `edgeseg run` decodes them (an MJPG video from its JPEG packets)."""
    with VideoFileSource(video) as source:
        frames = []
        while (frame := source.read()) is not None:
            frames.append(frame)
    return frames


@pytest.fixture(scope="module")
def model(membrane_int8: Path) -> Path:
    """The session's trained membrane U-Net, converted to int8 by `edgeseg.convert`."""
    return membrane_int8


@pytest.fixture(scope="module")
def clip(membrane_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 real frames (val then train images), 256x256, MJPG AVI at 10 FPS."""
    images = sorted((membrane_data / "val" / "images").iterdir())
    images += sorted((membrane_data / "train" / "images").iterdir())[:6]
    return write_video(tmp_path_factory.mktemp("clip") / "clip.avi", images, 256)


# === The headless run is the eval path ===


def reference_mask(seg: Segmenter, frame: np.ndarray) -> np.ndarray:
    """The mask by the plain path, written out here: convert channels, resize, set_tensor,
    invoke, np.argmax at model size, nearest resize to the frame (no fast path involved)."""
    from edgeseg.core.processing import _resize, to_input_tensor, to_model_channels

    spec = seg.spec
    pixels = _resize(to_model_channels(frame, spec), spec.input_size, nearest=False)
    tensor = to_input_tensor(
        pixels.reshape(*spec.input_size, spec.channels),
        seg.input["dtype"],
        seg.in_scale,
        seg.in_zero,
    )
    raw = seg.invoke(tensor)[0]
    if raw.shape[2] == 1:  # sigmoid: 0.5 on the quantised scale
        small = raw[:, :, 0] > 0.5 / seg.out_scale + seg.out_zero
    else:
        small = np.argmax(raw, axis=2)
    size = (frame.shape[1], frame.shape[0])
    return cv2.resize(small.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)


def test_headless_run_saves_video_masks_and_stats(model: Path, clip: Path, tmp_path: Path) -> None:
    out, masks, stats = tmp_path / "out.mp4", tmp_path / "masks", tmp_path / "stats.json"
    code, output = cli(
        "run",
        model,
        "--source",
        clip,
        "--headless",
        "--save",
        out,
        "--save-masks",
        masks,
        "--stats",
        stats,
        "--verbose",
    )
    assert code == 0, output
    assert "ai-edge-litert" in output or "tflite-runtime" in output  # --verbose names it
    frames = decoded_frames(clip)
    assert len(frames) == 12
    names = sorted(p.name for p in masks.iterdir())
    assert names == [f"{i:06d}.png" for i in range(12)]
    seg = Segmenter(model)
    for i, frame in enumerate(frames):
        saved = cv2.imread(str(masks / names[i]), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(saved, seg.predict(frame))
        np.testing.assert_array_equal(saved, reference_mask(seg, frame))
    assert len(decoded_frames(out)) == 12
    assert not list(tmp_path.glob(".*.tmp*"))
    data = json.loads(stats.read_text())
    auto = data["threads_auto"]  # --threads auto is the default; the choice is reported
    assert auto["candidates"] == Segmenter(model).thread_candidates()
    assert auto["chosen"] in auto["candidates"] and data["threads"] == auto["chosen"]
    assert "--threads auto" in output or len(auto["candidates"]) == 1 or not auto["trial_finished"]
    assert (data["frames_in"], data["processed"], data["dropped"]) == (12, 12, 0)
    assert data["stopped_by"] == "end" and data["fps"] > 0
    for stage in ("capture_wait", "preprocess", "invoke", "postprocess", "draw"):
        assert data["stages"][stage]["count"] == 12
        assert 0 <= data["stages"][stage]["p50_ms"] <= data["stages"][stage]["p99_ms"]
    cpu = data["thread_cpu_ms_per_frame"]  # what each stage thread cost per frame
    assert set(cpu) == {"capture", "preprocess", "invoke", "output"} and cpu["invoke"] > 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="DISPLAY decides on Linux only")
def test_without_a_display_saving_runs_headless_and_showing_is_an_error(
    model: Path, clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Pi over SSH: `--save-masks` alone writes the masks (a note says no window opened);
    with nothing to write, the run stops before it starts and says to add --headless."""
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    masks = tmp_path / "masks"
    code, output = cli("run", model, "--source", clip, "--save-masks", masks)
    assert code == 0, output
    assert "no window:" in output and "running as with --headless" in output
    assert len(list(masks.iterdir())) == 12
    code, output = cli("run", model, "--source", clip, "--max-frames", "2")
    assert code == 2 and "--headless" in output and "12 frame" not in output


def test_segmenter_repr_says_what_and_where(model: Path) -> None:
    seg = Segmenter(model, threads=1)
    h, w, c = seg.spec.input_height, seg.spec.input_width, seg.spec.channels
    assert repr(seg) == (
        f"Segmenter({str(model)!r}, input {h}x{w}x{c} int8, 2 classes, 1 thread(s), cpu)"
    )


def test_membrane_model_segments_membranes(model: Path, membrane_data: Path) -> None:
    """Fails if pre/post-processing is wrong: most pixels agree with the label."""
    from edgeseg.data.dataset import open_dataset

    seg = Segmenter(model)
    ds = open_dataset(membrane_data / "val", val_fraction=1.0)
    image, mask = ds.load(ds.val[0])
    pred = seg.predict(image)
    assert pred.shape == mask.shape
    assert (pred == mask).mean() > 0.7


def test_folder_of_aerial_images_and_max_frames(
    model: Path, aerial_data: Path, tmp_path: Path
) -> None:
    folder = aerial_data / "val" / "images"
    code, output = cli(
        "run",
        model,
        "--source",
        folder,
        "--headless",
        "--view",
        "side",
        "--save",
        tmp_path / "side.avi",
        "--save-masks",
        tmp_path / "m",
        "--max-frames",
        "3",
    )
    assert code == 0, output
    masks = sorted((tmp_path / "m").iterdir())
    assert len(masks) == 3
    first = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})[0]
    assert cv2.imread(str(masks[0]), cv2.IMREAD_UNCHANGED).shape == read_image(first).shape[:2]
    # a folder has no frame rate of its own: its video plays at FOLDER_FPS on every machine,
    # not at however fast this one processed it
    cap = cv2.VideoCapture(str(tmp_path / "side.avi"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(FOLDER_FPS)
    cap.release()


def test_realtime_file_drops_stale_frames_like_a_camera(
    model: Path, membrane_data: Path, tmp_path: Path
) -> None:
    images = sorted((membrane_data / "train" / "images").iterdir())[:24]
    fast = write_video(tmp_path / "fast.avi", images * 2, 256, fps=1000.0)
    seg = Segmenter(model, threads=1)
    result = run_stream(seg, VideoFileSource(fast), StreamConfig(realtime=True))
    s = result.stats
    assert s.frames_in == 48
    assert s.dropped > 0 and s.processed + s.dropped == s.frames_in


# === Lost sources ===


class FlakyVideo(VideoFileSource):
    """A real video that 'unplugs' after `lose_at` frames; reopening fails `bad_opens` times.

    Not `live`, so its end is the end (a live source would treat EOF as another loss)."""

    def __init__(self, path: Path, lose_at: int, bad_opens: int) -> None:
        super().__init__(path)
        self.lose_at, self.bad_opens = lose_at, bad_opens
        self.reads, self.lost, self.opens = 0, False, 0

    def open(self) -> None:
        self.opens += 1
        if self.lost:
            if self.bad_opens > 0:
                self.bad_opens -= 1
                raise SourceError(f"{self.name}: device busy")
            self.lost = False  # back: continue where the stream was
            return
        super().open()

    def release(self) -> None:
        if not self.lost:
            super().release()

    def read(self) -> np.ndarray | None:
        if self.reads == self.lose_at and not self.lost and self.opens == 1:
            self.lost = True
            raise SourceLost(f"{self.name}: no frame from the device")
        frame = super().read()
        self.reads += frame is not None
        return frame


def test_reconnects_with_backoff_and_keeps_running(model: Path, clip: Path, tmp_path: Path) -> None:
    source = FlakyVideo(clip, lose_at=5, bad_opens=2)
    config = StreamConfig(
        reconnect_delay=0.01,
        max_retries=4,
        save_masks=tmp_path / "m",
        stats_path=tmp_path / "s.json",
    )
    result = StreamRunner(Segmenter(model), source, config).run()
    assert result.stats.reconnects == 1 and source.opens == 4  # first + 2 failed + 1 good
    assert result.stats.reconnect_attempts == 3
    assert result.stats.frames_in == result.stats.processed == 12 and result.stopped_by == "end"
    assert len(list((tmp_path / "m").iterdir())) == 12
    assert json.loads((tmp_path / "s.json").read_text())["reconnects"] == 1


def test_gives_up_after_max_retries_with_exit_code_3(
    model: Path, clip: Path, tmp_path: Path
) -> None:
    source = FlakyVideo(clip, lose_at=4, bad_opens=99)
    config = StreamConfig(
        reconnect_delay=0.01, max_retries=2, save=tmp_path / "o.avi", stats_path=tmp_path / "s.json"
    )
    with pytest.raises(SourceLost, match="not back after 2 reconnect attempts") as info:
        StreamRunner(Segmenter(model), source, config).run()
    assert info.value.exit_code == 3
    assert len(decoded_frames(tmp_path / "o.avi")) == 4  # what came before the loss is kept
    assert str(info.value).count(source.name) == 1  # named once, not again in the cause
    stats = json.loads((tmp_path / "s.json").read_text())
    assert stats["processed"] == 4 and "not back" in stats["error"]
    assert stats["reconnects"] == 0 and stats["reconnect_attempts"] == 2


class BrokenCamera(Source):
    """A live camera that opens (or blocks opening) and then fails, or blocks, reading: a bad
    ribbon cable, an IP camera that stops sending."""

    live = True
    name = "camera 9"

    def __init__(self, frames: int = 0, block_open: bool = False) -> None:
        self.frames, self.block_open = frames, block_open
        self.opens = self.released = self.reads = 0
        self.unblock = threading.Event()

    def open(self) -> None:
        self.opens += 1
        if self.block_open:
            self.unblock.wait(30)

    def read(self) -> np.ndarray | None:
        self.reads += 1
        if self.reads <= self.frames:
            return np.full((256, 256), 128, np.uint8)
        if self.frames:  # sent its frames, then nothing more: a read that never returns
            self.unblock.wait(30)
            return None
        raise SourceLost(f"{self.name}: no frame from the device")

    def release(self) -> None:
        self.released += 1


def test_a_camera_that_reopens_but_never_delivers_gives_up_after_max_retries(
    model: Path, tmp_path: Path
) -> None:
    """Each reopen that failed again before a frame started the attempts anew, recursively:
    976 'reconnected' lines in 8 minutes, then a RecursionError traceback (exit 1)."""
    camera = BrokenCamera()
    config = StreamConfig(reconnect_delay=0.001, max_retries=3, stats_path=tmp_path / "s.json")
    with pytest.raises(SourceLost, match="not back after 3 reconnect attempts") as info:
        StreamRunner(Segmenter(model), camera, config).run()
    assert info.value.exit_code == 3 and camera.opens == 1 + 3


def test_stopping_a_stream_that_stopped_answering_is_prompt_and_leaves_it_open(
    model: Path, tmp_path: Path
) -> None:
    """Stopping a run whose network camera had gone silent (a read blocked for FFmpeg's 30 s
    timeout) waited 10 s and then released the capture under the read: a segfault in libavutil
    one run in three. A stop while the camera was still opening waited for its timeout too."""
    for camera in (BrokenCamera(frames=3), BrokenCamera(block_open=True)):
        runner = StreamRunner(
            Segmenter(model), camera, StreamConfig(stats_path=tmp_path / "s.json")
        )
        timer = threading.Timer(1.0, runner.stop_event.set)
        timer.start()
        start = time.monotonic()
        result = runner.run()
        took = time.monotonic() - start
        assert took < 6, took
        assert camera.released == 0  # never freed under a thread still inside it...
        camera.unblock.set()  # ...but by that thread once it comes out (a camera stays busy)
        deadline = time.monotonic() + 5
        while camera.released == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert camera.released == 1
        assert json.loads((tmp_path / "s.json").read_text())["processed"] == result.stats.processed
    assert result.stats.processed == 0


def test_a_lost_stream_still_says_what_it_kept_before_its_error(
    model: Path, clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exit 3 (the source lost for good) prints the frame count and the files written, as a run
    that ended does, and the error stays the last line."""
    from edgeseg.runtime import sources

    monkeypatch.setattr(sources, "open_source", lambda **_: FlakyVideo(clip, 4, bad_opens=99))
    code, output = cli(
        "run", model, "--source", clip, "--headless", "--max-retries", "1",
        "--save", tmp_path / "o.avi", "--stats", tmp_path / "s.json",
    )  # fmt: skip
    lines = output.strip().splitlines()
    assert code == 3, output
    assert "4 frame(s) processed" in output and f"video: {tmp_path / 'o.avi'}" in output
    assert lines[-1].startswith("error: ") and "not back after 1 reconnect attempts" in lines[-1]


# === Models and delegates ===


def test_bad_models_are_one_line_errors(tmp_path: Path, clip: Path) -> None:
    junk = tmp_path / "junk.tflite"
    junk.write_text("definitely not a flatbuffer\n")
    with pytest.raises(ModelError, match="not a TFLite model"):
        Segmenter(junk)
    code, output = cli("run", junk, "--source", clip, "--headless")
    assert (
        code == 2 and output.strip().startswith("error:") and len(output.strip().splitlines()) == 1
    )


def test_headless_with_nothing_to_write_says_so(model: Path, clip: Path, tmp_path: Path) -> None:
    code, output = cli("run", model, "--source", clip, "--headless", "--max-frames", "2")
    assert code == 0 and "2 frame(s) processed" in output
    assert "warning: --headless with nothing to write" in output
    code, output = cli("run", model, "--source", clip, "--headless", "--max-frames", "2",
                       "--stats", tmp_path / "s.json")  # fmt: skip
    assert code == 0 and "nothing to write" not in output


def test_classifier_is_not_a_class_map(tmp_path: Path) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    inp = keras.Input((32, 32, 3))
    out = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(inp))
    conv = tf.lite.TFLiteConverter.from_keras_model(keras.Model(inp, out))
    path = tmp_path / "classifier.tflite"
    path.write_bytes(conv.convert())
    with pytest.raises(ModelError, match="not a per-pixel class map"):
        Segmenter(path)


def test_delegate_errors_and_cpu_fallback(
    model: Path,
    clip: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, output = cli("run", model, "--source", clip, "--headless", "--delegate", "tpu")
    assert code == 2 and "valid choices" in output
    if sys.platform == "linux":
        code, output = cli("run", model, "--source", clip, "--headless", "--delegate", "nnapi")
        assert code == 2 and "only on Android" in output
    missing = tmp_path / "libmissing_delegate.so"
    with pytest.raises(DelegateError, match="not found"):
        Segmenter(model, delegate=str(missing))
    seg = Segmenter(model, delegate=str(missing), fallback="cpu")  # warns, runs on the CPU
    assert seg.delegate_name is None
    frame = decoded_frames(clip)[0]
    np.testing.assert_array_equal(seg.predict(frame), Segmenter(model).predict(frame))
    bogus = tmp_path / "libbogus_delegate.so"
    bogus.write_bytes(b"not a shared library")
    monkeypatch.setattr(logging.getLogger("edgeseg.runtime"), "propagate", True)  # CLI's
    with caplog.at_level("WARNING"):
        Segmenter(model, delegate=str(bogus), fallback="cpu")
    # it said "...; or pass --fallback cpu; continuing on the CPU (--fallback cpu)"
    assert "continuing on the CPU" in caplog.text and "or pass --fallback" not in caplog.text
    code, output = cli(
        "run",
        model,
        "--source",
        clip,
        "--headless",
        "--max-frames",
        "2",
        "--delegate",
        "edgetpu",
        "--fallback",
        "cpu",
    )
    assert code == 0 and "not compiled for the Edge TPU" in output


# === MJPEG, signals, and no TensorFlow ===


def test_serve_streams_the_overlay(model: Path, membrane_data: Path, tmp_path: Path) -> None:
    images = sorted((membrane_data / "train" / "images").iterdir())
    video = write_video(tmp_path / "slow.avi", images, 128, fps=20.0)
    run = StreamRunner(
        Segmenter(model), VideoFileSource(video), StreamConfig(realtime=True, serve="127.0.0.1:0")
    )
    assert run.server is not None
    host, port = run.server.address
    worker = threading.Thread(target=run.run)
    worker.start()
    try:
        conn = http.client.HTTPConnection(host, port, timeout=10)
        conn.request("GET", "/stream.mjpg")
        body = b""
        resp = conn.getresponse()
        while body.count(b"--edgesegframe") < 2:  # one whole part between two boundaries
            chunk = resp.read1(65536)
            assert chunk, f"the stream ended before a whole frame: {body[:200]!r}"
            body += chunk
        conn.close()
        jpeg = body[body.index(b"\xff\xd8") : body.index(b"\xff\xd9") + 2]
        image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == (128, 128, 3)
    finally:
        run.stop("test")
        worker.join(timeout=20)
    assert not worker.is_alive()


def test_sigterm_finalises_video_and_stats(
    model: Path, membrane_data: Path, tmp_path: Path
) -> None:
    images = sorted((membrane_data / "train" / "images").iterdir())
    video = write_video(tmp_path / "long.avi", images * 4, 128, fps=15.0)  # ~6 s in real time
    out, stats = tmp_path / "out.avi", tmp_path / "stats.json"
    proc = subprocess.Popen(
        [
            *EDGESEG,
            "run",
            str(model),
            "--source",
            str(video),
            "--realtime",
            "--headless",
            "--save",
            str(out),
            "--stats",
            str(stats),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60

    def partial() -> list[Path]:  # the atomic writer's hidden temp file beside out.avi
        return list(tmp_path.glob(".out.*.tmp.avi"))

    while not partial() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.5)  # let it write a few frames
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    data = json.loads(stats.read_text())
    assert data["stopped_by"] == "SIGTERM" and 0 < data["processed"] < 96
    assert len(decoded_frames(out)) == data["processed"]
    assert not partial()


NO_TF_HOOK = textwrap.dedent("""
    import importlib.abc, sys
    class _NoTensorFlow(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("tensorflow", "keras"):
                raise ImportError(f"{name} is blocked for this test")
            return None
    sys.meta_path.insert(0, _NoTensorFlow())
""")


def test_runtime_runs_with_tensorflow_unimportable(model: Path, clip: Path, tmp_path: Path) -> None:
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(NO_TF_HOOK)
    script = textwrap.dedent(f"""
        import sys
        try:
            import tensorflow
            raise SystemExit("hook did not block tensorflow")
        except ImportError:
            pass
        import edgeseg.runtime, edgeseg.runtime.stream, edgeseg.runtime.bench
        from edgeseg.runtime.inspect import count_macs, inspect_tflite
        info = inspect_tflite({str(model)!r})
        assert info.ops and info.metadata is not None, info
        from edgeseg.runtime.bench import invoke_latency_ms
        assert invoke_latency_ms({str(model)!r}, runs=2, warmup=1) > 0
        from edgeseg.cli.main import app
        for args in (["run", "--help"], ["info", {str(model)!r}],
                     ["run", {str(model)!r}, "--source", {str(clip)!r}, "--headless",
                      "--max-frames", "3", "--save-masks", {str(tmp_path / "m")!r}]):
            try:
                app(args, prog_name="edgeseg")
            except SystemExit as exc:
                assert exc.code in (0, None), exc.code
        bad = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
        print("LOADED", bad)
    """)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]),
    }
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "LOADED []" in out.stdout
    assert len(list((tmp_path / "m").iterdir())) == 3


# === bench ===


def _unet_macs(size: int, channels: int, classes: int, depth: int, filters: int) -> int:
    """Multiply-accumulates of build_unet(..., upsample='transpose') by hand."""
    macs, cin, skips = 0, channels, []
    for level in range(depth + 1):
        s, f = size // 2**level, filters * 2**level
        macs += s * s * f * 9 * cin + s * s * f * 9 * f
        skips.append(f)
        cin = f
    for level in reversed(range(depth)):
        s, f = size // 2**level, filters * 2**level
        macs += (s // 2) ** 2 * cin * 4 * f  # 2x2 stride-2 transpose conv
        macs += s * s * f * 9 * (f + skips[level]) + s * s * f * 9 * f
        cin = f
    return macs + size * size * classes * cin


def test_bench_counts_macs_and_sweeps_threads(model: Path, tmp_path: Path) -> None:
    result = benchmark(model, runs=5, warmup=1, threads=[1, 2], frame_shape=(240, 320))
    channels = Segmenter(model).spec.channels  # the trainer decides gray vs RGB input
    assert result.macs == _unet_macs(128, channels, 2, depth=3, filters=16)
    assert [r.threads for r in result.results] == [1, 2]
    for r in result.results:
        assert 0 < r.invoke.p50_ms <= r.invoke.p99_ms and r.frame.p50_ms > 0
        assert r.gmacs_per_s == pytest.approx(result.macs / r.invoke.p50_ms / 1e6, rel=0.01)
    out = tmp_path / "bench.json"
    code, output = cli(
        "bench",
        model,
        "--runs",
        "3",
        "--warmup",
        "1",
        "--threads",
        "1",
        "--compare",
        model,
        "--json",
        out,
    )
    assert code == 0, output
    assert "B/A" in output and "GMAC" in output
    data = json.loads(out.read_text())
    assert data["model"]["macs"] == result.macs and data["ratios"][0]["threads"] == 1


def test_bench_stream_reports_the_pipeline(model: Path, clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "stream.json"
    code, output = cli("bench", model, "--stream", clip, "--threads", "1", "--json", out)
    assert code == 0, output
    assert "FPS" in output and "eff." in output and "CPU per frame outside invoke" in output
    (r,) = json.loads(out.read_text())["stream"]
    assert r["frames"] == 12 and r["threads"] == 1 and r["auto"] is None
    assert 0 < r["fps"] and 0 < r["ceiling_fps"]
    assert r["efficiency"] == pytest.approx(r["fps"] / r["ceiling_fps"], rel=0.01)
    assert set(r["cpu_ms"]) == {"decode", "preprocess", "postprocess", "draw", "encode"}
    assert set(r["stream_cpu_ms"]) == {"capture", "preprocess", "invoke", "output"}
    assert r["stream_non_invoke_cpu_ms"] > 0 and "in the stream itself" in output
    assert r["stages_p50_ms"]["invoke"] > 0
    code, output = cli("bench", model, "--stream", clip)  # auto: 12 frames end the trial early
    assert code == 0 and "the stream ended before the thread trial did" in output, output
    last = Segmenter(model).thread_candidates()[-1]  # 1 on CI's 2 cores; N-1 on a bigger machine
    assert f"{last} thread(s) not reached" in output and "the trial reads 31 frames" in output


def test_bench_stream_masks_only_writes_masks_and_no_video(
    model: Path, clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bench_peers' "masks only" row ran `--save overlay.avi` AND `--save-masks`: the overlay was
    drawn and the video encoded as in the row above it, plus a PNG per frame."""
    import edgeseg.runtime.stream_bench as stream_bench

    configs: list[StreamConfig] = []
    written: list[list[str]] = []  # what each run left in its scratch folder

    class Recording(StreamRunner):
        def __init__(self, seg: Segmenter, source: Source, config: StreamConfig) -> None:
            configs.append(config)
            super().__init__(seg, source, config)

        def run(self, on_open: Callable[[], None] | None = None) -> StreamResult:
            result = super().run(on_open)
            out = self.config.save or self.config.save_masks
            assert out is not None
            written.append(sorted(str(p.relative_to(out.parent)) for p in out.parent.rglob("*")))
            return result

    monkeypatch.setattr(stream_bench, "StreamRunner", Recording)
    r = stream_bench.bench_stream(model, clip, threads=1, masks=True, cpu=False)
    video = stream_bench.bench_stream(model, clip, threads=1, cpu=False)
    assert r.frames == video.frames == 12
    assert configs[0].save is None and configs[0].save_masks is not None
    assert configs[1].save is not None and configs[1].save_masks is None
    pngs = [p for p in written[0] if p.startswith("masks/") and p.endswith(".png")]
    assert len(pngs) == 12 and written[0] == ["masks", *pngs]  # no video beside them
    assert written[1] == ["overlay.avi"]


def test_outputs_over_the_source_or_each_other_are_refused_before_anything_is_written(
    model: Path, clip: Path, membrane_data: Path, tmp_path: Path
) -> None:
    """--save-masks on the folder of photos replaced them with masks of the same names (exit
    0); --save over the input video replaced it; --save x --stats x left a JSON named .mp4."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for image in sorted((membrane_data / "val" / "images").iterdir())[:2]:
        shutil.copy(image, photos / image.name)
    before = {p.name: p.read_bytes() for p in photos.iterdir()}
    code, out = cli("run", model, "--source", photos, "--headless", "--save-masks", photos / ".")
    assert code == 2 and "is the folder the stream reads its images from" in out, out
    video = tmp_path / "in.avi"
    shutil.copy(clip, video)
    code, out = cli("run", model, "--source", video, "--headless", "--save", video)
    assert code == 2 and "--save" in out and "is the source the stream reads" in out, out
    same = tmp_path / "same.mp4"
    code, out = cli("run", model, "--source", video, "--headless", "--save", same, "--stats", same)
    assert code == 2 and "--stats" in out and "writes JSON" in out, out  # by its name, first
    with pytest.raises(OutputError, match="--save and --stats both"):  # from Python too
        StreamRunner(
            Segmenter(model), VideoFileSource(video), StreamConfig(save=same, stats_path=same)
        )
    # the mask folder against the other outputs: it was made and filled (a PNG left in a
    # folder named like the video; every frame run before --stats failed, exit 4)
    for first, second, path in (
        ("--save-masks", "--stats", tmp_path / "y.json"),
        ("--save", "--save-masks", tmp_path / "z.mp4"),
    ):
        code, out = cli("run", model, "--source", video, "--headless", first, path, second, path)
        assert code == 2 and f"{first} and {second} both {path}: choose two paths" in out, out
        assert not path.exists()
    # one picture: its overlay saved as the mask's own name in the mask folder replaced it
    picture = sorted(photos.iterdir())[0]
    masks = tmp_path / "m4"
    code, out = cli(
        "run", model, "--source", picture, "--save-masks", masks,
        "--save", masks / f"{picture.stem}.png",
    )  # fmt: skip
    assert code == 2 and "is the name of a mask --save-masks" in out and not masks.exists(), out
    # another name there is no collision: both are written
    code, out = cli(
        "run", model, "--source", picture, "--save-masks", masks, "--save", masks / "overlay.png",
    )  # fmt: skip
    assert code == 0, out
    assert sorted(p.name for p in masks.iterdir()) == sorted([f"{picture.stem}.png", "overlay.png"])
    assert {p.name: p.read_bytes() for p in photos.iterdir()} == before
    assert video.read_bytes() == clip.read_bytes() and not same.exists()
    # a video's masks are numbered and replace nothing: beside it is fine
    code, out = cli(
        "run", model, "--source", video, "--headless", "--max-frames", "2",
        "--save-masks", tmp_path,
    )  # fmt: skip
    assert code == 0 and (tmp_path / "000000.png").is_file(), out


def test_a_single_saved_picture_carries_no_frame_rate_overlay(
    model: Path, membrane_data: Path, tmp_path: Path
) -> None:
    """`run --source street.jpg --save street_seg.png` (the README's first example) burned
    '0.0 FPS dropped 0 / wait 0.0 pre 0.6 inv 1.4 ...' into the picture."""
    from edgeseg.runtime.sources import ImageFolderSource

    image = sorted((membrane_data / "val" / "images").iterdir())[0]
    saved = {}
    for hud in (True, False):
        out = tmp_path / f"hud_{hud}.png"
        run_stream(Segmenter(model), ImageFolderSource(image), StreamConfig(save=out, hud=hud))
        saved[hud] = cv2.imread(str(out))
    np.testing.assert_array_equal(saved[True], saved[False])


class PacedCamera(Source):
    """A live camera delivering FRAMES frames at a fixed interval, slower than invoke."""

    live = True
    name = "paced camera"

    def __init__(self, frames: int, interval: float) -> None:
        self.frames, self.interval, self.sent = frames, interval, 0

    def open(self) -> None:
        self.sent = 0

    def read(self) -> np.ndarray | None:
        if self.sent >= self.frames:
            raise SourceLost(f"{self.name}: unplugged")
        time.sleep(self.interval)
        self.sent += 1
        return np.full((256, 256), 100 + self.sent % 50, np.uint8)

    def release(self) -> None:
        pass


def test_threads_auto_on_a_paced_camera_times_invoke_not_the_cameras_pace(
    model: Path, tmp_path: Path
) -> None:
    """On a camera slower than invoke every cycle is the camera's frame interval, so the trial
    picked a thread count by noise (cycles 99.9 against 100.9 ms at a 100 ms interval)."""
    seg = Segmenter(model)
    if len(seg.thread_candidates()) < 2:
        pytest.skip("one core: nothing to choose between")
    trial_frames = 2 * (TRIAL_WARMUP + TRIAL_FRAMES) + 2
    config = StreamConfig(auto_threads=True, max_retries=0, stats_path=tmp_path / "s.json")
    with pytest.raises(SourceLost):
        StreamRunner(seg, PacedCamera(trial_frames, 0.12), config).run()
    stats = json.loads((tmp_path / "s.json").read_text())
    auto = stats["threads_auto"]
    assert auto["trial_finished"], auto
    assert all(ms < 100 for ms in auto["cycle_p50_ms"].values()), auto  # not the 120 ms pace
    assert stats["threads"] == auto["chosen"] == seg.threads  # and the stream runs on it
