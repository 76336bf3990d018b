"""`--threads auto`: time the interpreter's thread-count candidates on the stream's first frames
and keep the one with the shortest stream cycle (for a paced source, the shortest invoke)."""

from __future__ import annotations

from typing import Any

import numpy as np

TRIAL_WARMUP, TRIAL_FRAMES = 3, 12  # per candidate: frames skipped, then timed


class ThreadTrial:
    """--threads auto: run the first frames on each candidate thread count and keep the one with
    the shortest stream cycle (time between frames reaching invoke), which counts what the other
    stages take from inference, unlike timing invoke alone."""

    def __init__(self, candidates: list[int]) -> None:
        self.candidates = candidates
        self.cycles: dict[int, list[float]] = {n: [] for n in candidates}
        self.finished = True  # False: the stream ended before every candidate was timed
        self.chosen: int | None = None if len(candidates) > 1 else candidates[0]

    def threads_for(self, frame_index: int) -> int:
        """The thread count to run frame `frame_index` (0-based count of frames invoked) on."""
        if self.chosen is not None:
            return self.chosen
        per = TRIAL_WARMUP + TRIAL_FRAMES
        return self.candidates[min(frame_index // per, len(self.candidates) - 1)]

    def record(self, frame_index: int, threads: int, cycle: float) -> None:
        """Note one cycle; once every candidate has its timed frames, choose."""
        if self.chosen is not None:
            return
        per = TRIAL_WARMUP + TRIAL_FRAMES
        if frame_index % per >= TRIAL_WARMUP:
            self.cycles[threads].append(cycle)
        if all(len(c) >= TRIAL_FRAMES for c in self.cycles.values()):
            self.chosen = min(self.candidates, key=lambda n: self.median_ms(n))

    def end_early(self, current: int) -> None:
        """The stream ended before every candidate had its timed frames: note it, and keep the
        faster of the candidates that were timed (what the stats and `bench --stream` report),
        else the thread count in use. (A 16-frame stream reported the count its last frame
        switched to, never timed, while 15 frames had run on the other.)"""
        if self.chosen is not None:
            return
        self.finished = False
        timed = [n for n in self.candidates if self.cycles[n]]
        self.chosen = min(timed, key=self.median_ms) if timed else current

    def frames_needed(self) -> int:
        """Frames a stream needs for the trial to finish: each candidate's warm-up and timed
        frames, and one more to close the last timed cycle."""
        return (TRIAL_WARMUP + TRIAL_FRAMES) * len(self.candidates) + 1

    def timed_frames(self) -> int:
        """Cycles timed so far over all candidates (a finished trial times TRIAL_FRAMES each)."""
        return sum(len(c) for c in self.cycles.values())

    def median_ms(self, threads: int) -> float:
        c = self.cycles[threads]
        return float(np.median(c)) * 1000.0 if c else float("inf")

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidates": self.candidates,
            "chosen": self.chosen,
            "trial_finished": self.finished,
            "timed_frames": self.timed_frames(),
            "frames_needed": self.frames_needed(),
            "cycle_p50_ms": {  # None: a candidate the stream ended before
                str(n): round(self.median_ms(n), 3) if self.cycles[n] else None
                for n in self.candidates
            },
        }
