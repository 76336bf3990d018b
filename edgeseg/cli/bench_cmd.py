"""`edgeseg bench`: latency of a .tflite (invoke alone and the whole frame path), threads sweep."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from edgeseg.cli.common import console, fail, user_errors, warn
from edgeseg.cli.options import Fallback, parse_capture_size
from edgeseg.runtime.interpreter import MAX_THREADS

if TYPE_CHECKING:
    from edgeseg.runtime.bench import BenchResult
    from edgeseg.runtime.stream_bench import StreamBench


AUTO = "auto"


def _threads(text: str | None) -> list[int | None] | None:
    """--threads: a comma list of counts, where `auto` is the stream's own choice (--stream) or
    the two counts it chooses between (all cores, all but one); repeats are dropped."""
    if text is None:
        return None
    values: list[int | None] = []
    for item in (v.strip().lower() for v in text.split(",") if v.strip()):
        try:
            value = None if item == AUTO else int(item)
        except ValueError:
            raise fail(f"--threads {text!r}: expected a comma list such as 1,2,4 or auto") from None
        if value is not None and not 1 <= value <= MAX_THREADS:
            raise fail(f"--threads {text!r}: thread counts must be 1..{MAX_THREADS}")
        if value not in values:
            values.append(value)
    if not values:
        raise fail(f"--threads {text!r}: expected a comma list such as 1,2,4 or auto")
    return values


def _counts(values: list[int | None] | None) -> list[int] | None:
    """Thread counts to sweep: `auto` stands for the counts it chooses between."""
    from edgeseg.runtime.segmenter import auto_thread_candidates

    if values is None:
        return None
    counts: list[int] = []
    for value in values:
        for count in auto_thread_candidates() if value is None else [value]:
            if count not in counts:
                counts.append(count)
    return counts


def _header(r: BenchResult) -> str:
    ops = ", ".join(f"{k} {v}" for k, v in sorted(r.ops.items()))
    took = f"; delegated {r.delegated}" if r.delegated else ""
    return (
        f"[bold]{r.model}[/]: {r.interpreter} on {r.delegate}{took}\n"
        f"  input {r.input_shape} {r.input_dtype}, frame {r.frame_shape}, "
        f"{r.macs / 1e9:.3f} GMAC per inference\n  ops: {ops}"
    )


def _single_table(r: BenchResult) -> Table:
    t = Table(title="latency (ms, warm-up excluded)")
    for col in ("threads", "invoke p50", "p90", "p99", "frame p50", "p90", "p99", "GMAC/s"):
        t.add_column(col, justify="right")
    for x in r.results:
        t.add_row(
            str(x.threads),
            f"{x.invoke.p50_ms:.2f}",
            f"{x.invoke.p90_ms:.2f}",
            f"{x.invoke.p99_ms:.2f}",
            f"{x.frame.p50_ms:.2f}",
            f"{x.frame.p90_ms:.2f}",
            f"{x.frame.p99_ms:.2f}",
            f"{x.gmacs_per_s:.2f}",
        )
    return t


def _compare_table(a: BenchResult, b: BenchResult) -> Table:
    t = Table(title=f"p50 latency (ms): A = {Path(a.model).name}, B = {Path(b.model).name}")
    for col in ("threads", "A invoke", "B invoke", "B/A", "A frame", "B frame", "B/A"):
        t.add_column(col, justify="right")
    for x, y in zip(a.results, b.results, strict=False):
        t.add_row(
            str(x.threads),
            f"{x.invoke.p50_ms:.2f}",
            f"{y.invoke.p50_ms:.2f}",
            f"{y.invoke.p50_ms / x.invoke.p50_ms:.2f}x",
            f"{x.frame.p50_ms:.2f}",
            f"{y.frame.p50_ms:.2f}",
            f"{y.frame.p50_ms / x.frame.p50_ms:.2f}x",
        )
    return t


def _stream_table(r: StreamBench) -> Table:
    t = Table(title=f"edgeseg run --headless --save on {Path(r.video).name} (stage p50 ms)")
    short = {"capture_wait": "wait", "preprocess": "pre", "postprocess": "post", "output": "out"}
    for col in ("threads", "FPS", "ceiling", "eff.", *(short.get(s, s) for s in r.stages_p50_ms)):
        t.add_column(col, justify="right")
    choice = f"{r.threads} (auto)" if r.auto else str(r.threads)
    t.add_row(
        choice,
        f"{r.fps:.1f}",
        f"{r.ceiling_fps:.1f}",
        f"{r.efficiency:.2f}",
        *("-" if v is None else f"{v:.2f}" for v in r.stages_p50_ms.values()),
    )
    return t


def _stream_report(r: StreamBench) -> None:
    console.print(_stream_table(r))
    if r.auto:
        tried = ", ".join(
            f"{k} thread(s) " + (f"{v:.2f} ms/frame" if v is not None else "not reached")
            for k, v in r.auto["cycle_p50_ms"].items()
        )
        if r.auto["trial_finished"]:
            console.print(f"--threads auto tried {tried}; kept {r.threads}", highlight=False)
        else:
            warn(
                f"--threads auto: the stream ended before the thread trial did ({tried}; kept "
                f"{r.threads}): the trial reads {r.auto['frames_needed']} frames, warm-up "
                f"included, and this stream had {r.frames}; use a longer video or --threads N"
            )
    if r.cpu_ms:
        parts = ", ".join(f"{k} {v:.2f}" for k, v in r.cpu_ms.items())
        console.print(
            f"CPU per frame outside invoke: {r.non_invoke_cpu_ms:.2f} ms ({parts})",
            highlight=False,
        )
    if r.stream_cpu_ms:
        parts = ", ".join(f"{k} {v:.2f}" for k, v in r.stream_cpu_ms.items() if k != "invoke")
        console.print(
            f"  in the stream itself: {r.stream_non_invoke_cpu_ms:.2f} ms (per thread: {parts})",
            highlight=False,
        )


def bench_command(
    model: Annotated[Path, typer.Argument(help="The .tflite model to time.")],
    runs: Annotated[int, typer.Option("--runs", min=1, help="Timed runs per measurement.")] = 100,
    warmup: Annotated[int, typer.Option("--warmup", min=0, help="Untimed runs first.")] = 10,
    threads: Annotated[
        str | None,
        typer.Option(
            "--threads",
            help="Thread counts to sweep, e.g. 1,2,4; auto: what `edgeseg run` picks from (all "
            "cores, all but one), with --stream its own trial. \\[default: all cores; with "
            "--stream auto]",
        ),
    ] = None,
    delegate: Annotated[
        str | None,
        typer.Option("--delegate", help="As for `edgeseg run` (edgetpu, gpu, lib.so...)."),
    ] = None,
    fallback: Annotated[
        Fallback | None,
        typer.Option("--fallback", help="cpu: run on the CPU if the delegate fails."),
    ] = None,
    compare: Annotated[
        Path | None,
        typer.Option(
            "--compare", help="A second .tflite (e.g. the float32 one) timed the same way."
        ),
    ] = None,
    frame_size: Annotated[
        str,
        typer.Option("--frame-size", help="Camera frame WIDTHxHEIGHT for the whole-frame path."),
    ] = "640x480",
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the results as JSON here.")
    ] = None,
    stream: Annotated[
        str | None,
        typer.Option(
            "--stream",
            help="A video file: run the whole `edgeseg run --headless --save` pipeline on it and "
            "report FPS, per-stage ms, the invoke ceiling, efficiency and the thread choice "
            "(--threads N forces one count; default auto).",
        ),
    ] = None,
    max_frames: Annotated[
        int | None, typer.Option("--max-frames", min=1, help="With --stream: stop after N frames.")
    ] = None,
) -> None:
    """Time a .tflite: invoke alone and preprocess+invoke+postprocess on a camera-size frame.

    Reports p50/p90/p99 per thread count, the model's multiply-accumulates and achieved GMAC/s;
    --compare times a second model the same way and prints the ratio. --stream VIDEO measures
    the whole pipeline instead, on your own board and video.

    Examples:
      edgeseg bench m_int8.tflite --threads 1,2,4 --compare m_float32.tflite
      edgeseg bench m_int8.tflite --stream clip.mp4 --json stream.json
    """
    from edgeseg.core.fileio import check_json_output
    from edgeseg.runtime.bench import benchmark
    from edgeseg.runtime.bench import compare as compare_results
    from edgeseg.runtime.stats import write_json_atomic

    chosen = _threads(threads)
    if max_frames is not None and stream is None:
        raise fail("--max-frames applies to --stream VIDEO (the whole pipeline on a video)")
    if json_out is not None:
        with user_errors():
            check_json_output(json_out, label="--json")  # now, not after the benchmark
    if stream is not None:
        _bench_stream(model, stream, chosen, delegate, fallback, max_frames, json_out)
        return
    counts = _counts(chosen)
    shape = parse_capture_size(frame_size, "--frame-size")
    run = partial(
        benchmark,
        runs=runs,
        warmup=warmup,
        threads=counts,
        delegate=delegate,
        fallback=fallback,
        frame_shape=shape,
    )
    with user_errors():
        a = run(model)
        b = run(compare) if compare is not None else None
    console.print(_header(a), highlight=False)
    console.print(_single_table(a))
    payload: dict[str, Any] = {"model": a.to_dict()}
    if b is not None:
        console.print(_header(b), highlight=False)
        console.print(_single_table(b))
        console.print(_compare_table(a, b))
        payload.update(compare=b.to_dict(), ratios=compare_results(a, b))
    if json_out is not None:
        with user_errors():
            write_json_atomic(json_out, payload, label="--json")
        console.print(f"json: {json_out}", highlight=False)


def _bench_stream(
    model: Path,
    video: str,
    counts: list[int | None] | None,
    delegate: str | None,
    fallback: str | None,
    max_frames: int | None,
    json_out: Path | None,
) -> None:
    """`bench --stream`: one stream per forced thread count, or one with --threads auto."""
    from edgeseg.cli.run_cmd import stream_process_settings
    from edgeseg.runtime.stats import write_json_atomic
    from edgeseg.runtime.stream_bench import bench_stream

    results = []
    runs: list[int | None] = list(counts) if counts else [None]  # None: --threads auto
    with user_errors():
        for count in runs:
            with stream_process_settings(None):
                r = bench_stream(
                    model,
                    video,
                    threads=count,
                    delegate=delegate,
                    fallback=fallback,
                    max_frames=max_frames,
                )
            _stream_report(r)
            results.append(r.to_dict())
        if json_out is not None:
            write_json_atomic(json_out, {"stream": results}, label="--json")
            console.print(f"json: {json_out}", highlight=False)
