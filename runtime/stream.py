"""The streaming pipeline: capture -> preprocess -> invoke -> postprocess/draw/outputs, one thread
per stage so pre/post-processing and drawing hide behind inference (invoke releases the GIL).

Live sources hand over only the LATEST frame (stale ones dropped and counted); files are processed
frame by frame unless `realtime` paces them at their own FPS. Lost cameras reconnect with backoff.
No process-wide side effects: the CLI installs signal handlers (calling `StreamRunner.stop`) and
tunes the interpreter's switch interval around `run` (see edgeseg/cli/run_cmd.py).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from edgeseg.core.errors import EdgesegError, SourceError
from edgeseg.core.processing import IMAGE_EXTS, class_map_to_frame
from edgeseg.runtime.channel import Channel
from edgeseg.runtime.mjpeg import MjpegServer
from edgeseg.runtime.outputs import (
    VIEWS,
    ImageSink,
    MaskSink,
    OutputError,
    Painter,
    VideoSink,
    WindowSink,
    open_save_sink,
)
from edgeseg.runtime.segmenter import Segmenter
from edgeseg.runtime.sources import Source, SourceLost
from edgeseg.runtime.stats import StreamStats, write_json_atomic
from edgeseg.runtime.thread_trial import ThreadTrial

log = logging.getLogger("edgeseg.runtime")
F = TypeVar("F", bound=Callable[..., None])
_ENDED = {  # why the run stopped, as the live page words it
    "end": "the source has no more frames",
    "max-frames": "--max-frames reached",
    "error": "an error stopped the run (see its log)",
    "window": "the window was closed",
}


@dataclass
class StreamConfig:
    """How to run a stream and what to write; every output is optional."""

    realtime: bool = False
    max_frames: int | None = None
    max_retries: int = 5
    reconnect_delay: float = 0.5
    max_backoff: float = 8.0
    view: str = "overlay"
    hud: bool = True
    alpha: float = 0.5
    window: bool = False
    save: Path | None = None
    save_masks: Path | None = None
    serve: str | None = None
    stats_path: Path | None = None
    # --threads auto: time the segmenter's thread candidates on the first frames, keep the faster
    auto_threads: bool = False


@dataclass
class StreamResult:
    """What a finished run did and why it stopped ('end', 'max-frames', 'SIGTERM', ...)."""

    stats: StreamStats
    stopped_by: str
    video: Path | None = None
    masks: Path | None = None
    stats_path: Path | None = None
    error: EdgesegError | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        """What a user asks of a run: frames, frames per second, drops, why it stopped, and the
        files written; the per-stage latencies are in `stats.stages` and `stats.to_dict()`."""
        s = self.stats
        invoke = s.stages.get("invoke")
        parts = [
            f"frames={s.processed}",
            f"fps={s.fps:.2f}",
            f"dropped={s.dropped}",
            f"elapsed_s={s.elapsed:.2f}",
        ]
        if invoke is not None and invoke.count:
            parts.append(f"invoke_p50_ms={invoke.percentile(50) * 1000:.2f}")
        parts.append(f"stopped_by={self.stopped_by!r}")
        for name in ("video", "masks", "stats_path"):
            if (path := getattr(self, name)) is not None:
                parts.append(f"{name}={str(path)!r}")
        if self.error is not None:
            parts.append(f"error={str(self.error)!r}")
        return f"StreamResult({', '.join(parts)})"


def _stage(name: str) -> Callable[[F], F]:
    """Mark a stage-thread method: the CPU its thread spends in it (time.thread_time, so hand-overs
    and page faults count, unlike timing one stage alone) goes to `thread_cpu[name]`."""

    def wrap(method: F) -> F:
        @functools.wraps(method)
        def timed(self: StreamRunner, *args: Any) -> None:
            start = time.thread_time()
            try:
                method(self, *args)
            finally:
                self.thread_cpu[name] = time.thread_time() - start

        return timed  # type: ignore[return-value]

    return wrap


def _same(a: Path, b: Path) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def check_apart(read: tuple[Path, ...], config: StreamConfig) -> None:
    """Refuse outputs that would be written over what the stream reads, or over each other,
    before anything is opened: `--save-masks DIR` on the folder of photos replaced them with
    masks of the same names, `--save in.mp4` the input video, `--save x --stats x` the video."""
    outputs = [
        (label, path)
        for label, path in (
            ("--save", config.save),
            ("--save-masks", config.save_masks),
            ("--stats", config.stats_path),
        )
        if path is not None
    ]
    for label, path in outputs:
        # a mask folder on the image folder read is refused below, naming what it would do
        if any(_same(path, s) for s in read if label != "--save-masks" or not s.is_dir()):
            raise OutputError(
                f"{label} {path}: is the source the stream reads; choose another path"
            )
    for i, (label, path) in enumerate(outputs):
        for other, other_path in outputs[i + 1 :]:
            if _same(path, other_path):  # the mask folder made first, then a file refused
                raise OutputError(f"{label} and {other} both {path}: choose two paths")
    save, masks = config.save, config.save_masks
    if save is not None and masks is not None and save.suffix.lower() == ".png":
        # masks are named after the images read (their stems, or whole names where two share
        # one) or numbered for a video: a --save of such a name there would replace one
        names = {p.stem for p in read} | {p.name for p in read}
        if _same(save.parent, masks) and (save.stem in names or save.stem.isdigit()):
            raise OutputError(
                f"--save {save}: is the name of a mask --save-masks {masks} writes; save it "
                "under another name or outside that folder"
            )
    if config.save_masks is not None:
        # images (a folder of them, or one) give masks their names; a video's are numbered
        folders = [
            source if source.is_dir() else source.parent
            for source in read
            if source.is_dir() or source.suffix.lower() in IMAGE_EXTS
        ]
        if any(_same(config.save_masks, folder) for folder in folders):
            raise OutputError(
                f"--save-masks {config.save_masks}: is the folder the stream reads its images "
                "from, and masks of the same names would replace them; choose another folder"
            )


_LIVE_JOIN_S = 2.0  # how long a stop waits for a live source's read before leaving it


class _Stopped(Exception):
    """The stream was stopped before its source opened: nothing ran, outputs are finalised."""


class StreamRunner:
    """One source through one Segmenter into the configured outputs; `run` blocks until done."""

    def __init__(self, segmenter: Segmenter, source: Source, config: StreamConfig) -> None:
        if config.view not in VIEWS:
            raise OutputError(f"--view {config.view!r}: choose one of {', '.join(VIEWS)}")
        self.seg, self.source, self.config = segmenter, source, config
        self.stats = StreamStats()
        self.stop_event = threading.Event()
        self.stopped_by = "end"
        self.error: EdgesegError | None = None
        self.result: StreamResult | None = None  # once finalised, also when run() re-raises
        self._errors: list[BaseException] = []
        self.video: VideoSink | ImageSink | None = None
        self.masks: MaskSink | None = None
        self.masks_written: Path | None = None  # the --save-masks folder, once a mask is in it
        self.server: MjpegServer | None = None
        self.window: WindowSink | None = None
        self.paced = source.live or config.realtime
        self.painter = Painter(segmenter.spec, config.view, config.alpha)
        self.trial: ThreadTrial | None = None
        # CPU seconds each stage thread used (time.thread_time): what the stream really costs,
        # page faults and hand-overs included, unlike timing one stage at a time
        self.thread_cpu: dict[str, float] = {}
        # A thread inside the source (opening it, or the capture loop) while the stream stops
        # is not waited for; the source is then released by that thread when it comes out
        # (releasing a capture another thread reads crashed FFmpeg), under this lock.
        self._source_lock = threading.Lock()
        self._source_users = 0
        self._abandoned = False
        if config.auto_threads and (candidates := segmenter.thread_candidates()):
            self.trial = ThreadTrial(candidates)
        check_apart(source.files(), config)
        try:
            if config.save is not None:
                self.video = open_save_sink(config.save, None if self.paced else source.fps)
            if config.save_masks is not None:
                self.masks = MaskSink(config.save_masks, source.frame_name)
            if config.window:
                self.window = WindowSink()
            if config.serve is not None:
                spec = segmenter.spec
                self.server = MjpegServer(
                    config.serve,
                    model=segmenter.model_path.name,
                    class_names=spec.class_names,
                    palette=spec.palette,
                    stats=self.stats.live,
                )
        except BaseException:
            self._close_outputs(finalise=False)
            raise

    def stop(self, reason: str = "stopped") -> None:
        """Ask the pipeline to stop (thread-safe: the CLI's signal handlers call this)."""
        if not self.stop_event.is_set():
            self.stopped_by = reason
        self.stop_event.set()

    # === Stage threads ===

    def _fail(self, exc: BaseException) -> None:
        self._errors.append(exc)
        self.stop("error")

    @_stage("capture")
    def _capture(self, out: Channel) -> None:
        with self._using_source():
            self._capture_frames(out)

    def _capture_frames(self, out: Channel) -> None:
        cfg, stop = self.config, self.stop_event
        fps = self.source.fps if cfg.realtime and not self.source.live else None
        t0, n = time.perf_counter(), 0
        try:
            while not stop.is_set():
                if cfg.max_frames and not self.paced and n >= cfg.max_frames:
                    break
                frame = self._read_with_reconnect()
                if frame is None:
                    break
                if fps:  # --realtime on a file: deliver frames at the file's own rate
                    stop.wait(max(0.0, t0 + n / fps - time.perf_counter()))
                with self.stats.lock:
                    self.stats.frames_in += 1
                out.put((n, frame), stop)
                n += 1
        except SourceError as exc:
            # The source is gone for good, but frames already read are still processed and
            # written: record the error and close the channel (the stages drain it, then stop).
            self._errors.append(exc)
            if not stop.is_set():
                self.stopped_by = "error"
        except BaseException as exc:
            self._fail(exc)
        finally:
            self.stats.skipped = int(getattr(self.source, "skipped", 0))
            out.close()

    def _read_with_reconnect(self) -> np.ndarray | None:
        """The next frame; a lost live source is reopened up to --max-retries times (backing
        off), and a reopened source that fails again before a frame uses up the same attempts
        (it started them anew, recursively: 976 reopens in 8 minutes, then a RecursionError)."""
        cfg, stop = self.config, self.stop_event
        try:
            frame: np.ndarray | None = self.source.read()
            return frame
        except SourceLost as exc:
            lost = exc
        log.warning("%s; reconnecting (up to %d attempts)", lost, cfg.max_retries)
        for attempt in range(1, cfg.max_retries + 1):
            delay = min(cfg.max_backoff, cfg.reconnect_delay * 2 ** (attempt - 1))
            if stop.wait(delay):
                return None
            with self.stats.lock:
                self.stats.reconnect_attempts += 1
            try:
                self.source.release()
                self.source.open()
            except SourceError as exc:
                log.warning("reconnect %d/%d failed: %s", attempt, cfg.max_retries, exc)
                continue
            with self.stats.lock:
                self.stats.reconnects += 1
            log.warning("%s reconnected after %d attempt(s)", self.source.name, attempt)
            try:
                frame = self.source.read()
                return frame
            except SourceLost as exc:
                log.warning("%s; lost again at once", exc)
        why = str(lost).removeprefix(f"{self.source.name}: ")  # the name is said once
        raise SourceLost(
            f"{self.source.name}: lost and not back after {cfg.max_retries} reconnect attempts "
            f"({why}); check the cable / network, or raise --max-retries"
        ) from None

    @_stage("preprocess")
    def _preprocess(self, inp: Channel, out: Channel) -> None:
        # Three input buffers in turn: one waits in `out`, one is being copied into the
        # interpreter by the invoke stage, one is being written here; none is reused too early.
        buffers = [self.seg.new_input_buffer() for _ in range(3)]
        try:
            k = 0
            while True:
                t = time.perf_counter()
                item = inp.get(self.stop_event)
                if item is None:
                    break
                t1 = time.perf_counter()
                self.stats.record("capture_wait", t1 - t)
                tensor = buffers[k % 3]
                placement = self.seg.preprocess_into(item[1], tensor)
                k += 1
                self.stats.record("preprocess", time.perf_counter() - t1)
                out.put((*item, tensor, placement), self.stop_event)
        except BaseException as exc:
            self._fail(exc)
        finally:
            out.close()

    @_stage("invoke")  # the calling thread only, not the interpreter's own worker threads
    def _invoke(self, inp: Channel, out: Channel) -> None:
        trial, count, last = self.trial, 0, None
        try:
            while (item := inp.get(self.stop_event)) is not None:
                n, frame, tensor, placement = item
                t = time.perf_counter()
                if trial is not None and trial.chosen is None:
                    # unpaced: the cycle between frames, which counts what the other stages take
                    # from inference; paced (a camera, --realtime), every cycle is the source's
                    # frame interval whatever the threads, so invoke's own time decides
                    if not self.paced and last is not None:
                        trial.record(count - 1, self.seg.threads, t - last)
                    self._use_trial_threads(trial, count)
                    t = time.perf_counter()
                last = t
                raw = self.seg.invoke(tensor)
                done = time.perf_counter()
                if self.paced and trial is not None and trial.chosen is None:
                    trial.record(count, self.seg.threads, done - t)
                    if trial.chosen is not None:  # decided by this frame: the next runs on it
                        self._use_trial_threads(trial, count + 1)
                count += 1
                self.stats.record("invoke", done - t)
                out.put((n, frame, raw, placement), self.stop_event)
        except BaseException as exc:
            self._fail(exc)
        finally:
            out.close()

    def _use_trial_threads(self, trial: ThreadTrial, count: int) -> None:
        """The thread count frame COUNT runs on: the trial's candidate, or its choice once made
        (said once, with each candidate's time)."""
        threads = trial.threads_for(count)
        if trial.chosen is not None:
            log.info(
                "--threads auto: %s; keeping %d",
                ", ".join(
                    f"{c} thread(s) {trial.median_ms(c):.1f} ms/frame" for c in trial.candidates
                ),
                threads,
            )
        self.seg.use_threads(threads)

    def _output(self, n: int, frame: np.ndarray, raw: np.ndarray, placement: Any) -> None:
        t = time.perf_counter()
        small = self.seg.class_map(raw)  # model size: masks are resized only if they are saved
        full = class_map_to_frame(small, placement) if self.masks is not None else None
        t1 = time.perf_counter()
        self.stats.record("postprocess", t1 - t)
        image = served = None
        if self.video or self.window or self.server:
            # frame rate and stage times mean nothing on a single saved picture: no HUD there
            still = isinstance(self.video, ImageSink) and not (self.window or self.server)
            hud = self.stats.hud_lines() if self.config.hud and not still else None
            # The frame is ours (Source.read hands over a new array) and not needed after this:
            # the overlay is drawn over it, saving a frame-size allocation per frame.
            if self.server is None:
                image = self.painter.draw(frame, small, placement, hud, in_place=True)
            else:  # the live page shows legend and stats in HTML: serve clean pixels
                image = served = self.painter.draw(
                    frame, small, placement, None, legend=False, in_place=True
                )
                if self.video or self.window:
                    image = self.painter.annotate(served.copy(), hud)
        t2 = time.perf_counter()
        self.stats.record("draw", t2 - t1)
        if self.masks is not None and full is not None:
            self.masks.write(n, full)
        if image is not None:
            if self.video is not None:
                self.video.write(image)
            if served is not None and self.server is not None:
                self.server.publish(served)
            if self.window is not None and not self.window.show(image):
                self.stop("window")
        self.stats.record("output", time.perf_counter() - t2)
        self.stats.frame_done()
        if self.config.max_frames and self.stats.processed >= self.config.max_frames:
            self.stop("max-frames")

    # === Driver ===

    def run(self, on_open: Callable[[], None] | None = None) -> StreamResult:
        """Open the source, run until it ends / max-frames / a signal / an error, then finalise.
        `on_open` is called once the source has opened (the CLI then says where it serves)."""
        threads: list[threading.Thread] = []
        captured: Channel | None = None
        try:
            if not self._open_source():  # stopped while a live source was still opening
                raise _Stopped
            if on_open is not None:
                on_open()
            if self.video is not None and not self.paced:
                self.video.fps = self.source.fps  # a file's own rate (None: measured)
            latest = self.paced
            captured = Channel(capacity=1 if latest else 4, latest=latest)
            tensors, raws = Channel(1), Channel(1)
            threads = [
                threading.Thread(target=self._capture, args=(captured,), name="capture"),
                threading.Thread(target=self._preprocess, args=(captured, tensors), name="pre"),
                threading.Thread(target=self._invoke, args=(tensors, raws), name="invoke"),
            ]
            self.stats.started = time.perf_counter()
            with self._source_lock:
                self._source_users += 1  # the capture thread's, counted before it starts
            for th in threads:
                th.daemon = True
                th.start()
            self._drain(raws, captured)
        except _Stopped:
            pass
        except BaseException as exc:
            self._fail(exc)
        finally:
            self.stop_event.set()
            for th in threads:
                # a live source's read can block for the network's timeout (30 s): not waited
                # for beyond a moment, so a stop is prompt
                th.join(timeout=_LIVE_JOIN_S if th.name == "capture" and self.source.live else 10)
            if captured is not None:
                self.stats.dropped = captured.dropped
            self.stats.finished = time.perf_counter()
            with self._source_lock:
                if self._source_users:
                    self._abandoned = True  # the thread inside releases it when it returns
                else:
                    self.source.release()
            if self._abandoned:
                log.warning("%s: not answering; released once it returns", self.source.name)
            if self.trial is not None:  # a stream shorter than the trial ends it
                self.trial.end_early(self.seg.threads)
        return self._finalise()

    def _open_source(self) -> bool:
        """Open the source. A live one opens on a thread of its own, so a stop (Ctrl-C, SIGTERM)
        is not held for as long as a network takes to give up (30 s); False when the stream was
        stopped first (the opening is left to finish on its own)."""
        if not self.source.live:
            self.source.open()
            return True
        failure: list[BaseException] = []

        def opening() -> None:
            try:
                with self._using_source():
                    self.source.open()
            except BaseException as exc:
                failure.append(exc)

        thread = threading.Thread(target=opening, name="open", daemon=True)
        with self._source_lock:
            self._source_users += 1  # counted before it starts: a stop cannot miss it
        thread.start()
        while thread.is_alive():
            if self.stop_event.wait(0.05):
                return False
            thread.join(0.05)
        if failure:
            raise failure[0]
        return True

    @contextlib.contextmanager
    def _using_source(self) -> Iterator[None]:
        """Around a thread's use of the source (added to the users before the thread starts,
        so a stop cannot miss it): if the stream stopped meanwhile and gave up waiting, the
        source is released here, by the thread that was inside it."""
        try:
            yield
        finally:
            with self._source_lock:
                self._source_users -= 1
                if self._abandoned and self._source_users == 0:
                    self.source.release()

    @_stage("output")
    def _drain(self, raws: Channel, captured: Channel) -> None:
        """The output stage, on the caller's thread: each invoked frame to the outputs, in order."""
        while (item := raws.get(self.stop_event)) is not None:
            self.stats.dropped = captured.dropped
            self._output(*item)

    def _close_outputs(self, finalise: bool = True) -> Path | None:
        video = None
        try:
            if self.video is not None:
                video = self.video.close() if finalise else self.video.abort()
        finally:
            if self.server is not None:
                self.server.end(_ENDED.get(self.stopped_by, f"stopped by {self.stopped_by}"))
                self.server.close()
            if self.window is not None:
                self.window.close()
            if self.masks is not None:
                self.masks_written = self.masks.close()
        return video

    def _finalise(self) -> StreamResult:
        """Close outputs (video finalised even after an error), write stats, then re-raise."""
        first = self._errors[0] if self._errors else None
        if isinstance(first, EdgesegError):
            self.error = first
        try:
            video = self._close_outputs(finalise=True)
        except EdgesegError as exc:  # e.g. the video could not be written: still write the stats
            video, first = None, first or exc
            self.error = self.error or exc
        result = StreamResult(
            self.stats,
            self.stopped_by,
            video,
            self.masks_written,
            self.config.stats_path,
            self.error,
        )
        self.result = result
        if self.config.stats_path is not None:
            try:
                write_json_atomic(self.config.stats_path, self.summary(result))
            except EdgesegError as exc:  # report the first failure; this one only as a warning
                self.result = result = replace(result, stats_path=None)  # not written
                if first is None:
                    raise
                log.warning("%s", exc)
        if first is not None:
            raise first
        return result

    def cpu_per_frame(self) -> dict[str, float]:
        """CPU milliseconds per processed frame of each stage thread (invoke: the calling thread
        only, not the interpreter's own worker threads)."""
        n = max(1, self.stats.processed)
        return {k: round(v / n * 1000.0, 3) for k, v in self.thread_cpu.items()}

    def summary(self, result: StreamResult) -> dict[str, Any]:
        """The --stats JSON: counters, FPS, p50/p90/p99 per stage, and what ran where."""
        data: dict[str, Any] = self.stats.to_dict(
            model=str(self.seg.model_path),
            source=self.source.name,
            interpreter=self.seg.interpreter_package,
            threads=self.seg.threads,
            delegate=self.seg.delegate_name or "cpu",
            stopped_by=result.stopped_by,
            error=str(result.error) if result.error else None,
            threads_auto=self.trial.to_dict() if self.trial is not None else None,
            thread_cpu_ms_per_frame=self.cpu_per_frame(),
        )
        return data


def run_stream(segmenter: Segmenter, source: Source, config: StreamConfig) -> StreamResult:
    """Run a stream to completion (library entry point for `edgeseg run`)."""
    return StreamRunner(segmenter, source, config).run()
