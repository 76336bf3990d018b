"""`edgeseg demo`: the whole chain on the built-in synthetic data, one library call per stage.

generate data -> train -> convert (int8 + float32 reference) -> check -> write a video of held-out
frames -> run the int8 model on it headless -> bench float32 vs int8 -> summary. Each step calls
the same function its own command calls, so the demo proves the real commands work together.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2

from edgeseg.core.errors import EdgesegError
from edgeseg.core.fileio import output_dir, write_json

if TYPE_CHECKING:
    from edgeseg.convert.pipeline import ConvertOutcome
    from edgeseg.runtime.stream import StreamResult
    from edgeseg.train.fit import TrainResult

Step = Callable[[str], None]

DEMO_MAX_DROP = 2.0  # mIoU points the demo's int8 gate allows (as `edgeseg check --max-drop`)


@dataclass(frozen=True)
class DemoSettings:
    """Sizes and lengths of each stage; `quick` trades accuracy for about a minute of CPU time."""

    out: Path
    quick: bool = False
    seed: int = 0

    @property
    def size(self) -> tuple[int, int]:
        return (96, 96) if self.quick else (128, 128)

    @property
    def data_counts(self) -> tuple[int, int]:
        return (48, 12) if self.quick else (96, 24)

    @property
    def epochs(self) -> int:
        return 6 if self.quick else 25

    @property
    def depth(self) -> int:
        return 3

    @property
    def video_frames(self) -> int:
        return 60 if self.quick else 150

    @property
    def bench_runs(self) -> int:
        return 20 if self.quick else 100


@dataclass
class DemoSummary:
    """Headline numbers and every file the demo wrote."""

    model_miou: float  # model.keras's, what `check` compares the int8 model with
    int8_miou: float
    drop_points: float
    check_passed: bool
    float32_size_bytes: int
    int8_size_bytes: int
    invoke_ms_float32: float
    invoke_ms_int8: float
    stream_fps: float
    frames_processed: int
    seconds: float
    files: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def find_calib_data(out: Path, seed: int) -> Path:
    """The repo's calib_data/ when run from a checkout, else the same synthetic frames generated."""
    from edgeseg.data.synthetic import write_calibration_frames

    for candidate in (
        Path.cwd() / "calib_data",
        Path(__file__).resolve().parents[1] / "calib_data",
    ):
        if candidate.is_dir() and any(candidate.glob("*.jpg")):
            return candidate
    calib = out / "calib_data"
    write_calibration_frames(calib)
    return calib


def write_demo_video(path: Path, count: int, seed: int) -> Path:
    """Held-out synthetic camera frames as a real video file (atomic: temp name, then rename)."""
    from edgeseg.data.synthetic import generate_frames

    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    writer = None
    try:
        for frame, _ in generate_frames(count, (240, 320), seed=seed + 1000):
            if writer is None:
                h, w = frame.shape[:2]
                writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter.fourcc(*"mp4v"), 15.0, (w, h))
                if not writer.isOpened():
                    raise EdgesegError(f"{path}: OpenCV cannot write mp4 video here")
            writer.write(frame)
    finally:
        if writer is not None:
            writer.release()
    tmp.replace(path)
    return path


def _make_data(settings: DemoSettings, step: Step) -> Path:
    from edgeseg.data.synthetic import generate_synthetic_dataset

    n_train, n_val = settings.data_counts
    step(f"1/7 generating synthetic data ({n_train} train / {n_val} val scenes)")
    return generate_synthetic_dataset(
        settings.out / "data",
        count_train=n_train,
        count_val=n_val,
        size=(160, 160),
        seed=settings.seed,
        overwrite=True,
    )


def _train(settings: DemoSettings, data: Path, step: Step) -> TrainResult:
    from edgeseg.train.fit import TrainConfig, train

    h, w = settings.size
    step(f"2/7 training a U-Net at {h}x{w} for up to {settings.epochs} epochs")
    result = train(
        TrainConfig(
            data=data,
            out=settings.out / "run",
            size=settings.size,
            epochs=settings.epochs,
            batch=8,
            lr=2e-3,
            depth=settings.depth,
            filters=16,
            seed=settings.seed,
            verbose=2,
            patience=settings.epochs,
            overwrite=True,
        )
    )
    if result.interrupted:  # train keeps the best checkpoint on Ctrl-C; the demo stops there
        raise KeyboardInterrupt
    return result


def _convert(
    settings: DemoSettings, trained: TrainResult, step: Step
) -> tuple[ConvertOutcome, ConvertOutcome]:
    """(int8 with uint8 input, float32 reference) beside the trained model; the reference is
    converted from the float model a quantisation-aware run keeps beside it."""
    from edgeseg.convert.options import ConvertOptions, IOType, Quant
    from edgeseg.convert.pipeline import convert_model
    from edgeseg.convert.source import choose_source
    from edgeseg.core.errors import ConversionError

    step("3/7 converting to int8 and float32 (reference)")
    run_dir = trained.model_path.parent
    outcomes = []
    for options, name in (
        (ConvertOptions(io=IOType.UINT8), "model_int8.tflite"),
        (ConvertOptions(quant=Quant.FLOAT32), "model_float32.tflite"),
    ):
        # what `edgeseg convert` reads: a quantisation-aware model (train's default) carries
        # its int8 ranges, float32 comes from the float network beside it, and a float model
        # calibrates where convert looks (the scenes the run trained on)
        try:
            chosen = choose_source(trained.model_path, options, None, run_dir / name)
        except ConversionError:  # nowhere to calibrate: the demo's own frames
            calib = find_calib_data(settings.out, settings.seed)
            chosen = choose_source(trained.model_path, options, calib, run_dir / name)
        outcomes.append(
            convert_model(
                chosen.model,
                chosen.out,
                options,
                chosen.calib,
                measure_float32=options.quant != Quant.FLOAT32,
            )
        )
    return outcomes[0], outcomes[1]


def _stream(model: Path, video: Path, out: Path, step: Step) -> StreamResult:
    from edgeseg.runtime.segmenter import Segmenter
    from edgeseg.runtime.sources import open_source
    from edgeseg.runtime.stream import StreamConfig, run_stream

    step("6/7 streaming the video through the int8 model (headless)")
    stream = run_stream(
        Segmenter(model),
        open_source(source=str(video)),
        StreamConfig(
            save=out / "demo_overlay.mp4", save_masks=None, stats_path=out / "stream_stats.json"
        ),
    )
    if stream.error is not None:
        raise stream.error
    return stream


def run_demo(settings: DemoSettings, step: Step = lambda _msg: None) -> DemoSummary:
    """Run every stage under settings.out and return the summary (also written as summary.json)."""
    start = time.perf_counter()
    with output_dir(settings.out, label="--out"):  # a demo failing at once leaves no empty --out
        return _run_stages(settings, step, start)


def _run_stages(settings: DemoSettings, step: Step, start: float) -> DemoSummary:
    """The demo's seven stages, in settings.out (which exists)."""
    from edgeseg.eval import compare
    from edgeseg.runtime.bench import benchmark
    from edgeseg.train import FLOAT_MODEL

    out = settings.out
    data = _make_data(settings, step)
    trained = _train(settings, data, step)
    int8, f32 = _convert(settings, trained, step)
    float_model = trained.model_path.parent / FLOAT_MODEL

    step("4/7 checking the int8 accuracy drop against model.keras")
    check = compare(
        trained.model_path,
        int8.export.path,
        data / "val",
        max_drop=DEMO_MAX_DROP,
        out_dir=out / "check",
    )

    step(f"5/7 writing a {settings.video_frames}-frame video of held-out scenes")
    video = write_demo_video(out / "demo_input.mp4", settings.video_frames, settings.seed)
    stream = _stream(int8.export.path, video, out, step)

    step("7/7 timing invoke: float32 vs int8")
    b_int8 = benchmark(int8.export.path, runs=settings.bench_runs, warmup=3)
    b_f32 = benchmark(f32.export.path, runs=settings.bench_runs, warmup=3)

    model_miou = check.float_miou if check.float_miou is not None else float("nan")
    files = {
        "data": data,
        "model_keras": trained.model_path,
        "config": trained.config_path,
        "curves": trained.curves_path,
        "history": trained.history_path,
        **({"model_float_keras": float_model} if float_model.is_file() else {}),
        "model_int8": int8.export.path,
        "model_float32": f32.export.path,
        "convert_report": int8.report_path,
        "convert_report_float32": f32.report_path,
        **{f"check_{k}": v for k, v in check.outputs.items()},
        "input_video": video,
        "overlay_video": stream.video,
        "stream_stats": stream.stats_path,
    }
    summary = DemoSummary(
        model_miou=model_miou,
        int8_miou=check.int8.miou,
        drop_points=check.miou_drop,
        check_passed=check.passed,
        float32_size_bytes=f32.export.path.stat().st_size,
        int8_size_bytes=int8.export.path.stat().st_size,
        invoke_ms_float32=b_f32.best.invoke.p50_ms,
        invoke_ms_int8=b_int8.best.invoke.p50_ms,
        stream_fps=stream.stats.fps,
        frames_processed=stream.stats.processed,
        seconds=time.perf_counter() - start,
        files={k: str(v) for k, v in files.items() if v is not None},
    )
    path = out / "summary.json"
    write_json(path, summary.to_dict())
    summary.files["summary"] = str(path)
    return summary
