"""Latency and throughput bookkeeping in constant memory (a camera may run for weeks)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeseg.core.fileio import write_json

# Log-spaced bins from 1 microsecond to 100 s: ~0.9% wide, so percentiles are good to ~1%.
_EDGES = np.geomspace(1e-6, 100.0, 2001)
STAGES = ("capture_wait", "preprocess", "invoke", "postprocess", "draw", "output")


_SUMMARY_MS = ("p50_ms", "p90_ms", "p99_ms", "mean_ms", "max_ms")


class LatencyHistogram:
    """Streaming latency record: count, mean, max and percentiles from a fixed log histogram."""

    def __init__(self) -> None:
        self.counts = np.zeros(len(_EDGES) + 1, np.int64)
        self.count = 0
        self.total = 0.0
        self.max = 0.0
        self.recent = 0.0  # exponential moving average for the HUD

    def __repr__(self) -> str:
        """The sample count and its headline milliseconds, not the 2002 bins."""
        if self.count == 0:
            return "LatencyHistogram(count=0)"
        ms = 1000.0
        return (
            f"LatencyHistogram(count={self.count}, mean_ms={self.total / self.count * ms:.3f}, "
            f"p50_ms={self.percentile(50) * ms:.3f}, p99_ms={self.percentile(99) * ms:.3f}, "
            f"max_ms={self.max * ms:.3f})"
        )

    def add(self, seconds: float) -> None:
        self.counts[int(np.searchsorted(_EDGES, seconds))] += 1
        self.count += 1
        self.total += seconds
        self.max = max(self.max, seconds)
        self.recent = seconds if self.count == 1 else 0.9 * self.recent + 0.1 * seconds

    def percentile(self, q: float) -> float:
        """Approximate q-th percentile in seconds (bin geometric centre); 0 when empty."""
        if self.count == 0:
            return 0.0
        rank = int(np.searchsorted(np.cumsum(self.counts), q / 100 * self.count))
        lo = _EDGES[max(rank - 1, 0)]
        hi = _EDGES[min(rank, len(_EDGES) - 1)]
        return float(min(np.sqrt(lo * hi), self.max))

    def summary(self) -> dict[str, float | int | None]:
        """Milliseconds: p50/p90/p99, mean, max and the sample count; None (JSON null) for a
        stage that never ran, where a 0.0 would read as a measured zero."""
        if self.count == 0:
            return {
                **dict.fromkeys(("p50_ms", "p90_ms", "p99_ms", "mean_ms", "max_ms")),
                "count": 0,
            }
        ms = 1000.0
        return {
            "p50_ms": round(self.percentile(50) * ms, 3),
            "p90_ms": round(self.percentile(90) * ms, 3),
            "p99_ms": round(self.percentile(99) * ms, 3),
            "mean_ms": round(self.total / self.count * ms, 3),
            "max_ms": round(self.max * ms, 3),
            "count": self.count,
        }


@dataclass
class StreamStats:
    """Counters and per-stage latencies of one `edgeseg run`, shared by the pipeline threads."""

    frames_in: int = 0
    processed: int = 0
    dropped: int = 0
    reconnects: int = 0  # times a lost live source came back
    reconnect_attempts: int = 0  # tries to reopen it, failed ones included
    skipped: int = 0  # unreadable files a folder source passed over
    started: float = field(default_factory=time.perf_counter)
    finished: float | None = None
    stages: dict[str, LatencyHistogram] = field(
        default_factory=lambda: {s: LatencyHistogram() for s in STAGES}
    )
    _last: float | None = None
    _interval: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, stage: str, seconds: float) -> None:
        with self.lock:
            self.stages[stage].add(seconds)

    def frame_done(self) -> None:
        """Count a processed frame and update the moving FPS for the HUD."""
        now = time.perf_counter()
        with self.lock:
            self.processed += 1
            if self._last is not None:
                dt = now - self._last
                self._interval = dt if self._interval == 0 else 0.9 * self._interval + 0.1 * dt
            self._last = now

    @property
    def elapsed(self) -> float:
        return (self.finished or time.perf_counter()) - self.started

    @property
    def fps(self) -> float:
        """Processed frames per second of wall time over the whole run."""
        return self.processed / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def recent_fps(self) -> float:
        return 1.0 / self._interval if self._interval > 0 else 0.0

    def hud_lines(self) -> list[str]:
        """Short text for the on-screen HUD: FPS and recent per-stage milliseconds."""
        ms = {s: h.recent * 1000 for s, h in self.stages.items()}
        return [
            f"{self.recent_fps:5.1f} FPS  dropped {self.dropped}",
            f"wait {ms['capture_wait']:.1f} pre {ms['preprocess']:.1f} "
            f"inv {ms['invoke']:.1f} post {ms['postprocess']:.1f} draw {ms['draw']:.1f} ms",
        ]

    def live(self) -> dict[str, Any]:
        """The live page's numbers: recent FPS, counters, recent milliseconds per stage."""
        with self.lock:
            return {
                "fps": round(self.recent_fps, 2),
                "frames": self.processed,
                "frames_in": self.frames_in,
                "dropped": self.dropped,
                "stages": {s: round(h.recent * 1000, 3) for s, h in self.stages.items()},
            }

    def to_dict(self, **extra: Any) -> dict[str, Any]:
        return {
            **extra,
            "frames_in": self.frames_in,
            "processed": self.processed,
            "dropped": self.dropped,
            "reconnects": self.reconnects,
            "reconnect_attempts": self.reconnect_attempts,
            "skipped": self.skipped,
            "elapsed_s": round(self.elapsed, 3),
            "fps": round(self.fps, 3),
            "stages": {s: h.summary() for s, h in self.stages.items()},
        }


def write_json_atomic(path: str | Path, payload: dict[str, Any], label: str = "--stats") -> None:
    """Write JSON through a temp file in the same folder, so readers never see half a file."""
    write_json(path, payload, label=label, mkdir=True)
