"""Pipeline FPS of `edgeseg run --serve` with one normal viewer, then with hostile clients added.

    python benchmarks/bench_serve.py [--frames 600] [--workdir DIR]

Both runs process the same looping real video through the same int8 model while one viewer
reads /stream.mjpg. The second run adds 8 viewers that open the stream and never read, and 300
connections that send half a request line and wait, for as long as the run lasts (the line
printed counts those that went out). Target: FPS with hostile clients / FPS
without >= 0.9 (the server answers 503 past its cap, times the rest out, drops non-readers; the
pipeline only hands frames over). Also printed: refused connections, the most served at once,
and open fds.

Run with the project's venv. Exit 0 when the target is met, 1 when it is missed (FAIL), 2 for bad
options or missing data (../shared/data, or $EDGESEG_SHARED_DATA), checked before any work.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_workdir, parser, positive_int, print_machine, run_quietly, work_folder
from _runtime_models import MEMBRANE, build_tflite, require_data, write_video
from bench_soak import LoopingVideo, Viewer, open_fds

from edgeseg.runtime.segmenter import Segmenter
from edgeseg.runtime.stream import StreamConfig, StreamRunner

NON_READERS, HALF_REQUESTS = 8, 300


def hostile(
    host: str, port: int, stop: threading.Event, held: list[socket.socket], sent: dict[str, int]
) -> None:
    """8 stream viewers that never read (small receive buffers), then 300 half requests, until
    `stop`; `sent` counts those whose request went out ("non-readers", "half requests") and the
    connections that failed ("failed")."""
    for _ in range(NON_READERS):
        try:
            sock = socket.socket()
            held.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect((host, port))
            sock.sendall(b"GET /stream.mjpg HTTP/1.0\r\n\r\n")
            sent["non-readers"] += 1
        except OSError:
            sent["failed"] += 1
    for _ in range(HALF_REQUESTS):
        if stop.is_set():
            return
        try:
            sock = socket.create_connection((host, port), timeout=5)
            held.append(sock)
            sock.sendall(b"GET /stream.mj")
            sent["half requests"] += 1
        except OSError:
            sent["failed"] += 1


def run(model: Path, video: Path, frames: int, attack: bool) -> tuple[float, str, dict[str, int]]:
    """One `run --serve` of `frames` frames with a viewer (and the hostile clients if `attack`):
    (pipeline FPS, what the server refused and served at most at once, the hostile clients
    whose requests went out before the run ended)."""
    runner = StreamRunner(
        Segmenter(model), LoopingVideo(video), StreamConfig(max_frames=frames, serve="127.0.0.1:0")
    )
    assert runner.server is not None
    server = runner.server
    host, port = server.address
    stop = threading.Event()
    held: list[socket.socket] = []
    sent = {"non-readers": 0, "half requests": 0, "failed": 0}
    viewer = Viewer((host, port))  # a well-behaved browser, as the soak's
    threads: list[threading.Thread] = []
    if attack:
        args = (host, port, stop, held, sent)
        threads.append(threading.Thread(target=hostile, args=args, daemon=True))
    viewer.start()
    for th in threads:
        th.start()
    time.sleep(0.3)  # the viewer is connected before the first frame
    result = runner.run()
    stop.set()
    for th in threads:
        th.join(timeout=10)
    for sock in held:  # after the attack stopped: none is added meanwhile
        sock.close()
    ended = viewer.join(timeout=10)  # the server ended the feed when the stream finished
    note = f"refused {server.refused}, most served at once {server.peak_clients}"
    note += f"; the viewer received {viewer.frames} of {result.stats.processed} frames"
    if viewer.error is not None or not ended:
        note += f" (cut off: {viewer.error or 'still reading'})"
    return result.stats.fps, note, dict(sent)


def main() -> int:
    ap = parser(__doc__)
    ap.add_argument(
        "--frames", type=positive_int, default=600, metavar="N", help="frames per run (two runs)"
    )
    add_workdir(ap)
    args = ap.parse_args()
    require_data(MEMBRANE)
    with work_folder(args.workdir, "edgeseg-serve-") as work:
        print_machine()
        model = build_tflite(
            work / "unet128_int8.tflite", 128, "transpose", "int8", depth=3, filters=8
        )
        video = write_video(work / "loop.avi", 48, 128)
        calm, calm_note, _ = run(model, video, args.frames, attack=False)
        fds = open_fds()
        busy, busy_note, sent = run(model, video, args.frames, attack=True)
    ratio = busy / calm if calm else 0.0
    fds_after = open_fds()
    attack = f"+ {sent['non-readers']} non-readers, {sent['half requests']} half requests:"
    print(f"{'one viewer:':<{len(attack)}} {calm:7.1f} FPS  ({calm_note})")
    print(f"{attack} {busy:7.1f} FPS  ({busy_note})")
    if sent["failed"]:
        print(f"  ({sent['failed']} hostile connection attempts failed: refused or reset)")
    if sent["non-readers"] + sent["half requests"] + sent["failed"] < NON_READERS + HALF_REQUESTS:
        print(f"  (the run ended before the attack had tried all {HALF_REQUESTS} half requests)")
    ok = ratio >= 0.9
    print(f"FPS ratio {ratio:.2f} (target >= 0.9) {'PASS' if ok else 'FAIL'}")
    print(f"open fds: {fds} after the calm run, {fds_after} after the hostile one")
    return 0 if ok else 1


if __name__ == "__main__":
    run_quietly(main)
