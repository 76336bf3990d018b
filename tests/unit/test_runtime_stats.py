"""Constant-memory latency percentiles agree with numpy on real-looking samples."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgeseg.runtime.stats import LatencyHistogram, StreamStats, write_json_atomic


def test_histogram_percentiles_match_numpy_within_two_percent() -> None:
    rng = np.random.default_rng(0)
    samples = rng.lognormal(mean=np.log(0.02), sigma=0.5, size=5000)  # ~20 ms, long tail
    hist = LatencyHistogram()
    for s in samples:
        hist.add(float(s))
    for q in (50, 90, 99):
        assert hist.percentile(q) == pytest.approx(np.percentile(samples, q), rel=0.02)
    summary = hist.summary()
    assert summary["count"] == 5000
    assert summary["max_ms"] == pytest.approx(samples.max() * 1000, rel=1e-3)
    assert summary["mean_ms"] == pytest.approx(samples.mean() * 1000, rel=1e-3)


def test_empty_histogram_and_stats_json(tmp_path: Path) -> None:
    assert LatencyHistogram().percentile(50) == 0.0
    stats = StreamStats()
    stats.frames_in, stats.dropped = 3, 1
    stats.frame_done()
    stats.frame_done()
    stats.record("invoke", 0.01)
    out = tmp_path / "sub" / "stats.json"
    write_json_atomic(out, stats.to_dict(model="m.tflite"))
    data = json.loads(out.read_text())
    assert data["processed"] == 2 and data["frames_in"] == 3 and data["dropped"] == 1
    assert data["stages"]["invoke"]["p50_ms"] == pytest.approx(10, rel=0.02)
    assert set(data["stages"]) >= {"capture_wait", "preprocess", "invoke", "postprocess", "draw"}
    # a stage that never ran has no latency: null, not a measured-looking 0.0
    assert data["stages"]["draw"] == {
        "p50_ms": None,
        "p90_ms": None,
        "p99_ms": None,
        "mean_ms": None,
        "max_ms": None,
        "count": 0,
    }
    assert list(out.parent.iterdir()) == [out]  # no temp file left behind
