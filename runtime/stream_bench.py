"""`edgeseg bench MODEL --stream VIDEO`: the whole pipeline on the user's own board and video.

Reports what `edgeseg run` achieves (FPS, per-stage milliseconds, the thread count it chose), the
isolated invoke ceiling (1 / invoke latency on the same frames, nothing else running), their ratio
(stream efficiency), and the CPU each non-invoke stage costs per frame, timed one stage at a time.
"""

from __future__ import annotations

import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeseg.core.errors import SourceError
from edgeseg.core.processing import IMAGE_EXTS
from edgeseg.runtime.outputs import Painter, VideoSink
from edgeseg.runtime.segmenter import Segmenter
from edgeseg.runtime.sources import VideoFileSource
from edgeseg.runtime.stream import StreamConfig, StreamRunner

NON_INVOKE = ("decode", "preprocess", "postprocess", "draw", "encode")
# Frames alive at once in a stream (queued, preprocessed, invoked, drawn): decoding while they
# are held, as `run` does, keeps the allocator's behaviour (and page faults) as in the stream.
IN_FLIGHT = 6


@dataclass
class StreamBench:
    """One measured stream: throughput, per-stage p50 ms, ceiling and efficiency."""

    model: str
    video: str
    frames: int
    threads: int
    auto: dict[str, Any] | None
    fps: float
    invoke_ms: float
    ceiling_fps: float
    efficiency: float
    stages_p50_ms: dict[str, float | None]  # None: a stage that never ran
    cpu_ms: dict[str, float] = field(default_factory=dict)
    stream_cpu_ms: dict[str, float] = field(default_factory=dict)  # per stage thread, per frame

    @property
    def non_invoke_cpu_ms(self) -> float:
        """CPU per frame outside invoke (decode, preprocess, postprocess, draw, encode)."""
        return round(sum(self.cpu_ms.values()), 3)

    @property
    def stream_non_invoke_cpu_ms(self) -> float:
        """The same, as the stream spent it: its capture, preprocess and output threads."""
        return round(sum(v for k, v in self.stream_cpu_ms.items() if k != "invoke"), 3)

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "non_invoke_cpu_ms": self.non_invoke_cpu_ms,
            "stream_non_invoke_cpu_ms": self.stream_non_invoke_cpu_ms,
        }


def read_frames(video: str | Path, count: int) -> list[np.ndarray]:
    """Up to `count` frames of a video, decoded as `edgeseg run` decodes them (for the ceiling
    and the per-stage CPU)."""
    frames: list[np.ndarray] = []
    with VideoFileSource(video) as source:
        while len(frames) < count and (frame := source.read()) is not None:
            frames.append(frame)
    if not frames:
        raise SourceError(f"{video}: no frames could be decoded")
    return frames


def invoke_seconds(seg: Segmenter, frames: list[np.ndarray], runs: int = 60) -> float:
    """Mean invoke latency alone, on real preprocessed frames after a warm-up (the ceiling)."""
    tensors = [seg.preprocess(f)[0] for f in frames[:8]]
    for t in tensors:
        seg.invoke(t)
    start = time.perf_counter()
    for i in range(runs):
        seg.invoke(tensors[i % len(tensors)])
    return (time.perf_counter() - start) / runs


def stage_cpu_ms(seg: Segmenter, video: str | Path, frames: int = 40) -> dict[str, float]:
    """CPU milliseconds per frame of each non-invoke stage as `edgeseg run --save` does them,
    one stage at a time on real frames (process CPU time, so noise from others counts less)."""
    decoded = read_frames(video, frames)
    buffer = seg.new_input_buffer()
    raws, placements = [], []
    for frame in decoded:
        placements.append(seg.preprocess_into(frame, buffer))
        raws.append(seg.invoke(buffer))
    maps = [seg.class_map(r) for r in raws]
    painter = Painter(seg.spec)
    hud = ["30.0 FPS  dropped 0", "wait 0.1 pre 0.3 inv 20.0 post 0.4 draw 0.9 ms"]
    images = [painter.draw(f, m, p, hud) for f, m, p in zip(decoded, maps, placements, strict=True)]
    with tempfile.TemporaryDirectory(prefix="edgeseg-bench-") as tmp:
        writer = VideoSink(Path(tmp) / "x.avi", fps=30.0)  # what `run --save x.avi` writes with
        source = VideoFileSource(video)
        source.open()
        source.read()  # the frame open() decoded: the timed reads each decode one
        in_flight: deque[np.ndarray | None] = deque(maxlen=IN_FLIGHT)
        steps: dict[str, Callable[[int], Any]] = {
            "decode": lambda i: in_flight.append(source.read()),
            "preprocess": lambda i: seg.preprocess_into(decoded[i], buffer),
            "postprocess": lambda i: seg.class_map(raws[i]),
            # as the stream draws: over the frame itself (the decoded frames are not used again)
            "draw": lambda i: painter.draw(decoded[i], maps[i], placements[i], hud, in_place=True),
            "encode": lambda i: writer.write(images[i]),
        }
        out = {}
        for name, step in steps.items():
            start = time.process_time()
            for i in range(len(decoded)):
                step(i)
            out[name] = round((time.process_time() - start) / len(decoded) * 1000.0, 3)
        writer.close()
        source.release()
    return out


def check_stream_video(video: str | Path) -> None:
    """--stream measures a video file (read twice: the stream, then each stage alone); a camera,
    URL, folder or image is refused with what to use instead."""
    text = str(video)
    path = Path(text)
    if "://" in text or text.isdigit():
        raise SourceError(
            f"--stream {text}: takes a video file (it is read again to time each stage); for a "
            "camera or stream URL use `edgeseg run ... --headless --stats stats.json`"
        )
    if path.is_dir():
        raise SourceError(f"--stream {text}: is a folder; --stream takes a video file")
    if path.suffix.lower() in IMAGE_EXTS:
        raise SourceError(
            f"--stream {text}: is an image; --stream takes a video file (time one image's path "
            "with plain `edgeseg bench`)"
        )
    if not path.is_file():
        raise SourceError(f"--stream {text}: video file not found")


def bench_stream(
    model: str | Path,
    video: str | Path,
    *,
    threads: int | None = None,
    delegate: str | None = None,
    fallback: str | None = None,
    max_frames: int | None = None,
    masks: bool = False,
    cpu: bool = True,
) -> StreamBench:
    """Run `edgeseg run --headless --save overlay.avi` on the video and measure it (with `masks`,
    `--save-masks DIR` alone: no overlay drawn, no video encoded); threads None = `--threads
    auto`. The caller sets process-wide knobs (the CLI's switch interval)."""
    check_stream_video(video)
    seg = Segmenter(model, threads=threads, delegate=delegate, fallback=fallback)
    with tempfile.TemporaryDirectory(prefix="edgeseg-stream-") as tmp:
        config = StreamConfig(
            max_frames=max_frames,
            save=None if masks else Path(tmp) / "overlay.avi",
            save_masks=Path(tmp) / "masks" if masks else None,
            auto_threads=threads is None,
        )
        runner = StreamRunner(seg, VideoFileSource(str(video)), config)
        result = runner.run()
    stats = result.stats
    frames = read_frames(video, 8)
    ceiling = invoke_seconds(seg, frames)
    return StreamBench(
        model=str(model),
        video=str(video),
        frames=stats.processed,
        threads=seg.threads,
        auto=runner.trial.to_dict() if runner.trial is not None else None,
        fps=round(stats.fps, 3),
        invoke_ms=round(ceiling * 1000.0, 3),
        ceiling_fps=round(1.0 / ceiling, 3),
        efficiency=round(stats.fps * ceiling, 3),
        stages_p50_ms={s: h.summary()["p50_ms"] for s, h in stats.stages.items()},
        cpu_ms=stage_cpu_ms(seg, video) if cpu else {},
        stream_cpu_ms=runner.cpu_per_frame(),
    )
