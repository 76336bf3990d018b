"""`edgeseg run`: stream a camera, video, image folder or network stream through a .tflite model."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from edgeseg.cli.common import console, fail, route_logs, user_errors, warn, warn_if_stale
from edgeseg.cli.options import (
    Fallback,
    View,
    is_image_file,
    parse_capture_size,
    parse_threads,
    saves_image,
)
from edgeseg.core.errors import EdgesegError

if TYPE_CHECKING:
    from edgeseg.runtime.sources import Source
    from edgeseg.runtime.stream import StreamResult, StreamRunner

# When invoke returns it must win the GIL back from the Python glue of the other stages; at the
# default 5 ms switch interval that wait alone cost ~25% of a 20 ms invoke.
GIL_SWITCH_INTERVAL = 0.0005  # seconds, during a run (Python's default is 0.005)


@contextmanager
def stream_process_settings(runner: StreamRunner | None) -> Iterator[None]:
    """Process-wide settings a CLI stream needs, restored on exit: SIGINT/SIGTERM stop the runner
    cleanly (video finalised, stats written) and a short GIL switch interval keeps invoke fed.
    runner=None (`bench --stream`): the switch interval only."""
    previous: dict[signal.Signals, object] = {}
    if runner is not None and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.getsignal(sig)
            signal.signal(sig, lambda num, _frame: runner.stop(signal.Signals(num).name))
    switch = sys.getswitchinterval()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    try:
        yield
    finally:
        sys.setswitchinterval(switch)
        for sig, handler in previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]


def run_command(
    model: Annotated[Path, typer.Argument(help="The .tflite model (int8 or float32).")],
    camera: Annotated[
        int | None, typer.Option("--camera", help="Camera index (V4L2 /dev/videoN).")
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(
            "--source",
            help="Image, folder of images, video file, rtsp:// / http:// URL, or a camera "
            "index (0 = camera 0).",
        ),
    ] = None,
    picamera: Annotated[
        bool, typer.Option("--picamera", help="Raspberry Pi camera module via picamera2.")
    ] = False,
    capture_size: Annotated[
        str | None,
        typer.Option(
            "--capture-size",
            help="Camera resolution WIDTHxHEIGHT as V4L2 and picamera2 write it, e.g. 640x480 "
            "(640,480 works too).",
        ),
    ] = None,
    threads: Annotated[
        str,
        typer.Option(
            "--threads",
            help="Interpreter threads: N, or 'auto' (time all cores vs all but one on the first "
            "frames of the stream and keep the faster; --verbose and --stats say which).",
        ),
    ] = "auto",
    delegate: Annotated[
        str | None,
        typer.Option(
            "--delegate",
            help="edgetpu[:usb|:usb:N|:pci|:pci:N|:N], nnapi, gpu, /path/lib.so[:key=value,...]",
        ),
    ] = None,
    fallback: Annotated[
        Fallback | None,
        typer.Option(
            "--fallback",
            help="cpu: if the --delegate fails, warn and run on the CPU (default: the failure "
            "is an error).",
        ),
    ] = None,
    view: Annotated[
        View, typer.Option("--view", help="overlay, side (frame beside mask) or mask.")
    ] = "overlay",
    alpha: Annotated[
        float, typer.Option("--alpha", min=0.0, max=1.0, help="Overlay opacity.")
    ] = 0.5,
    hud: Annotated[bool, typer.Option("--hud/--no-hud", help="Draw FPS and stage latency.")] = True,
    headless: Annotated[
        bool, typer.Option("--headless", help="No window (servers, SSH, opencv-python-headless).")
    ] = False,
    save: Annotated[
        Path | None,
        typer.Option(
            "--save",
            help="Write the drawn view: a video (.mp4, .m4v, .mov: MPEG-4; .avi, .mkv: MJPEG) or, "
            "for one image, .png / .jpg.",
        ),
    ] = None,
    save_masks: Annotated[
        Path | None,
        typer.Option(
            "--save-masks",
            help="Write one class-index PNG per frame here: named after the source image "
            "(street_01.png), or by frame number for video and cameras (000123.png).",
        ),
    ] = None,
    serve: Annotated[
        str | None,
        typer.Option(
            "--serve",
            help="Live page at http://HOST:PORT/ (MJPEG, legend, stats; /stats is JSON), e.g. "
            "127.0.0.1:8080; 0.0.0.0:8080 for the LAN.",
        ),
    ] = None,
    max_frames: Annotated[
        int | None, typer.Option("--max-frames", min=1, help="Stop after N processed frames.")
    ] = None,
    realtime: Annotated[
        bool,
        typer.Option(
            "--realtime", help="Pace a video file at its own FPS, dropping like a camera."
        ),
    ] = False,
    max_retries: Annotated[
        int,
        typer.Option("--max-retries", min=0, help="Reconnect attempts before giving up (exit 3)."),
    ] = 5,
    stats: Annotated[
        Path | None,
        typer.Option("--stats", help="Write frames in/processed/dropped, FPS, p50/p90/p99 JSON."),
    ] = None,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="Show native library logs and more detail: which interpreter and delegate run.",
        ),
    ] = False,
) -> None:
    """Run a .tflite segmentation model on a live or recorded stream.

    Shows a window by default; --headless (or --serve) runs without one, and so does --save or
    --save-masks where no window can open (no display, opencv-python-headless).

    Ctrl-C or SIGTERM stops cleanly: the video is finalised and the stats written.

    Examples:
      edgeseg run model_int8.tflite --camera 0 --capture-size 640x480
      edgeseg run model_int8.tflite --source street.jpg --save street_seg.png
      edgeseg run model_int8.tflite --source clip.mp4 --headless --save out.mp4
    """
    from edgeseg.core.fileio import check_json_output, check_output
    from edgeseg.runtime.outputs import no_window_reason
    from edgeseg.runtime.segmenter import Segmenter
    from edgeseg.runtime.sources import open_source
    from edgeseg.runtime.stream import StreamConfig, StreamRunner

    route_logs("edgeseg.runtime", logging.INFO if verbose else logging.WARNING)
    if saves_image(save) and not is_image_file(source):
        raise fail(
            f"--save {save}: an image file holds one frame; give --source IMAGE, or save a "
            "video (.mp4, .avi) or --save-masks DIR"
        )
    size = parse_capture_size(capture_size) if capture_size else None
    forced = parse_threads(threads)
    window = not headless and serve is None and not saves_image(save)
    if window and (save is not None or save_masks is not None):
        reason = no_window_reason()
        if reason is not None:  # files were asked for: write them rather than stop for a window
            console.print(f"no window: {reason}; running as with --headless", highlight=False)
            window = False
    with user_errors():
        for path, option in ((stats, "--stats"), (save, "--save")):
            if path is not None:  # now, not after a stream of minutes
                (check_json_output if option == "--stats" else check_output)(path, label=option)
        src = open_source(camera=camera, source=source, picamera=picamera, size=size)
        _warn_unused(src, size is not None, realtime, forced, fallback is not None and not delegate)
        seg = Segmenter(model, threads=forced, delegate=delegate, fallback=fallback)
        warn_if_stale(model)
        if verbose:
            console.print(f"model {model}: {seg.describe()}", highlight=False)
        config = StreamConfig(
            realtime=realtime,
            max_frames=max_frames,
            max_retries=max_retries,
            view=view,
            hud=hud,
            alpha=alpha,
            window=window,
            save=save,
            save_masks=save_masks,
            serve=serve,
            stats_path=stats,
            auto_threads=forced is None,
        )
        runner = StreamRunner(seg, src, config)
        if not window and serve is None and not (save or save_masks or stats):
            warn(
                "--headless with nothing to write: the masks are computed and dropped (only "
                "the summary line is shown); add --save, --save-masks, --serve or --stats"
            )
        with stream_process_settings(runner):
            try:
                result = runner.run(on_open=partial(_say_where_it_serves, runner))
            except EdgesegError:
                if runner.result is not None and runner.result.stats.processed:
                    _print_summary(runner, runner.result, save)  # what was kept, then the error
                raise
    _print_summary(runner, result, save)
    if result.stopped_by == "SIGINT":
        raise typer.Exit(130)
    if result.stats.processed == 0 and result.stopped_by == "end":
        raise fail(f"{src.name}: no frames were processed")


def _print_summary(runner: StreamRunner, result: StreamResult, save: Path | None) -> None:
    """The run's closing lines: frames, FPS, invoke time, why it stopped, and what was written."""
    s = result.stats
    invoke = s.stages["invoke"].summary()
    auto = " (auto)" if runner.trial is not None else ""  # --stats says if the trial finished
    threads = runner.trial.chosen if runner.trial and runner.trial.chosen else runner.seg.threads
    # a stop leaves the frames already read but not yet through the model: said, so that the
    # counts add up ('46 processed of 47 read (0 dropped)' left one unaccounted for)
    unfinished = s.frames_in - s.processed - s.dropped
    console.print(
        f"{s.processed} frame(s) processed of {s.frames_in} read ({s.dropped} dropped"
        f"{f', {unfinished} in flight when it stopped' if unfinished > 0 else ''}"
        f"{f', {s.skipped} unreadable skipped' if s.skipped else ''}) at "
        f"{s.fps:.1f} FPS; invoke p50 {invoke['p50_ms'] if s.processed else '-'} ms on "
        f"{threads} thread(s){auto}; stopped by {result.stopped_by}",
        highlight=False,
    )
    saved = "image" if saves_image(save) else "video"
    written = ((saved, result.video), ("masks", result.masks), ("stats", result.stats_path))
    for label, path in written:
        if path is not None:
            console.print(f"{label}: {path}", highlight=False)


def _say_where_it_serves(runner: StreamRunner) -> None:
    """Once the source has opened (a missing camera is the only message, not after this)."""
    server = runner.server
    if server is None:
        return
    where = "on every interface: open " if server.everywhere else "on "
    console.print(f"serving {where}{server.url}  (stream: /stream.mjpg)", highlight=False)


def _warn_unused(
    source: Source,
    capture_size: bool,
    realtime: bool,
    threads: int | None,
    fallback_alone: bool = False,
) -> None:
    """Options this source or machine does nothing with are said once, not silently dropped."""
    if fallback_alone:
        warn("--fallback cpu applies when a --delegate fails; without one it changes nothing")
    from edgeseg.runtime.interpreter import default_threads
    from edgeseg.runtime.sources import CameraSource, PicameraSource, VideoFileSource

    if capture_size and not isinstance(source, CameraSource | PicameraSource):
        warn(f"--capture-size applies to cameras; {source.name} is read at its own size")
    if realtime and (source.live or not isinstance(source, VideoFileSource)):
        kind = "a live source paces itself" if source.live else "images have no frame rate"
        warn(f"--realtime paces a video file at its own FPS; {kind}, so it changes nothing here")
    cores = default_threads()
    if threads is not None and threads > cores:
        warn(
            f"--threads {threads} on {cores} core(s): threads beyond the cores only take turns; "
            "--threads auto measures what is fastest"
        )
