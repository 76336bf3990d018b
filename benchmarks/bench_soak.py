"""Soak: 10,000 frames of a looping real video through the headless `edgeseg run` path.

    python benchmarks/bench_soak.py [--frames 10000] [--workdir DIR]

Writes the overlay video, mask PNGs and stats, and serves MJPEG (`--serve`) to one viewer, an
HTTP client in a thread reading /stream.mjpg for the whole soak, so the server's JPEG encoding and
per-client serving run all along, as in a long deployment someone watches (the server encodes only
while a viewer is connected). The outputs are removed once measured; --workdir keeps the model and
the video it reads. Targets: RSS growth after warm-up < 10 MB (psutil), and no file-handle leak
(/proc/self/fd, the viewer's and the server's sockets included); a viewer that received no frame,
was cut off (nothing for 2 minutes, or an error) or still reads after the feed ended is a FAIL
too (the soak did not exercise what it claims).

Run with the project's venv. Exit 0 when every target is met, 1 when one is missed (FAIL), 2 for
bad options or missing data (../shared/data, or $EDGESEG_SHARED_DATA), checked before any work.
--frames is at least 1000: 500 warm-up frames, then at least as many measured.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    add_workdir,
    int_at_least,
    parser,
    print_machine,
    run_outputs,
    run_quietly,
    work_folder,
)
from _runtime_models import MEMBRANE, build_tflite, require_data, write_video

from edgeseg.runtime.mjpeg import BOUNDARY
from edgeseg.runtime.segmenter import Segmenter
from edgeseg.runtime.sources import VideoFileSource
from edgeseg.runtime.stream import StreamConfig, StreamRunner

WARMUP = 500
MIN_FRAMES = 2 * WARMUP  # as many measured frames as warm-up ones, at least


class LoopingVideo(VideoFileSource):
    """A real video played again from the start whenever it ends (a camera that never stops)."""

    def read(self) -> np.ndarray | None:
        frame = super().read()
        if frame is None:
            self.open()
            frame = super().read()
        return frame


READ_TIMEOUT_S = 120.0  # the viewer waits this long for more bytes; a longer stall is a FAIL


class Viewer:
    """One browser watching /stream.mjpg: reads the feed as fast as it comes until the server
    ends it, counting the JPEG frames and bytes received (in a thread: `start`, then `join`)."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self.frames = self.bytes = 0
        self.error: OSError | None = None
        self._thread = threading.Thread(target=self._read, name="soak-viewer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float = 30.0) -> bool:
        """Wait for the feed to end; False when the viewer is still reading (then its socket
        is still open, which the file-handle count would take for a leak)."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _read(self) -> None:
        part = f"--{BOUNDARY}\r\nContent-Type: image/jpeg".encode()
        tail = b""  # a part header split between two reads is counted once
        try:
            with socket.create_connection(self.address, timeout=10) as sock:
                # a stalled pipeline sends nothing for a while (a slow first frame, a slow SD
                # card): a browser waits, so the viewer waits too, up to a bound
                sock.settimeout(READ_TIMEOUT_S)
                sock.sendall(b"GET /stream.mjpg HTTP/1.0\r\n\r\n")
                while chunk := sock.recv(65536):
                    self.bytes += len(chunk)
                    data = tail + chunk
                    self.frames += data.count(part)
                    tail = data[-(len(part) - 1) :]
        except OSError as exc:  # shown with the counts: a viewer cut off mid-soak is news
            self.error = exc


def open_fds() -> int:
    """Open file descriptors of this process (-1 where the platform cannot say)."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except FileNotFoundError:  # not Linux
        return psutil.Process().num_fds() if hasattr(psutil.Process(), "num_fds") else -1


def main() -> int:
    """Check the options and the data, then soak in the work folder."""
    ap = parser(__doc__)
    ap.add_argument(
        "--frames",
        type=int_at_least(MIN_FRAMES),
        default=10_000,
        metavar="N",
        help=f"frames to process, at least {MIN_FRAMES} ({WARMUP} of them warm-up)",
    )
    add_workdir(ap)
    args = ap.parse_args()
    require_data(MEMBRANE)
    with work_folder(args.workdir, "edgeseg-soak-") as work:
        print_machine()
        model = build_tflite(
            work / "unet128_int8.tflite", 128, "transpose", "int8", depth=3, filters=8
        )
        video = write_video(work / "loop.avi", 48, 128)
        with run_outputs(work) as out:  # the overlay video and masks: removed once measured
            return soak(args, model, video, out)


def soak(args: argparse.Namespace, model: Path, video: Path, out: Path) -> int:
    """Run the stream for --frames frames writing into OUT, sampling RSS; print the verdicts."""
    proc = psutil.Process()
    fds_before = open_fds()

    runner = StreamRunner(
        Segmenter(model),
        LoopingVideo(video),
        StreamConfig(
            max_frames=args.frames,
            save=out / "overlay.avi",
            save_masks=out / "masks",
            stats_path=out / "stats.json",
            serve="127.0.0.1:0",
        ),
    )
    assert runner.server is not None
    viewer = Viewer(runner.server.address)
    viewer.start()
    time.sleep(0.3)  # connected before the first frame, as a page opened first would be
    samples: list[tuple[int, int]] = []  # (processed, rss)
    done = threading.Event()

    def monitor() -> None:
        while not done.wait(0.25):
            samples.append((runner.stats.processed, proc.memory_info().rss))

    mon = threading.Thread(target=monitor, daemon=True)
    mon.start()
    t = time.perf_counter()
    result = runner.run()
    done.set()
    mon.join()
    elapsed = time.perf_counter() - t
    samples.append((result.stats.processed, proc.memory_info().rss))
    ended = viewer.join()  # the server ended the feed when the stream finished
    fds_after = open_fds()

    after_warmup = [rss for n, rss in samples if n >= WARMUP]
    measured = len(after_warmup) > 1  # else no growth was measured: that is no PASS
    growth = (after_warmup[-1] - after_warmup[0]) / 2**20 if measured else 0.0
    peak = (max(after_warmup) - after_warmup[0]) / 2**20 if after_warmup else 0.0
    s = result.stats
    video_mb = result.video.stat().st_size / 2**20 if result.video is not None else 0.0
    print(
        f"{s.processed} frames in {elapsed:.1f} s ({s.fps:.1f} FPS), dropped {s.dropped}, "
        f"{len(list((out / 'masks').iterdir()))} masks and a {video_mb:.1f} MB overlay video "
        "written (removed now they are measured)"
    )
    # served all along: no frame at all, a viewer cut off, or one still reading after the feed
    # ended means the soak did not exercise what it claims
    viewed = viewer.frames > 0 and viewer.error is None and ended
    why = (
        "" if viewed
        else " FAIL (the soak served no viewer)" if viewer.frames == 0
        else f" FAIL (cut off: {viewer.error})" if viewer.error is not None
        else " FAIL (still reading after the feed ended; its socket counts as open below)"
    )  # fmt: skip
    print(
        f"MJPEG viewer: {viewer.frames} of {s.processed} frames "
        f"({viewer.bytes / 2**20:.1f} MB) received{why}"
    )
    mem_ok = measured and s.processed == args.frames and growth < 10.0
    if not measured:
        print(f"RSS not measured: fewer than 2 samples after the {WARMUP} warm-up frames")
    fd_ok = fds_after <= fds_before
    print(
        f"RSS after warm-up ({WARMUP} frames): growth {growth:+.2f} MB, peak {peak:+.2f} MB "
        f"(target < 10 MB) {'PASS' if mem_ok else 'FAIL'}"
    )
    print(
        f"open files: {fds_before} before, {fds_after} after (target: no growth) "
        f"{'PASS' if fd_ok else 'FAIL'}"
    )
    ok = mem_ok and fd_ok and viewed
    print("OVERALL", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    run_quietly(main)
