"""edgeseg run against the loops users would otherwise write, measured side by side in one run.

    python benchmarks/bench_peers.py [--quick] [--frames 300] [--rounds 3] [--workdir DIR]

Same int8 256x256 RGB U-Net with uint8 input (5 classes, real converter), same 640x480 video of
real aerial tiles, same interpreter threads (1 and 2), runs interleaved, best of N (the machine is
shared: the least-disturbed round is the one that measures the code). Loops:

- edgeseg: `edgeseg run --headless --save overlay.avi` (the pipeline, in-process, with the CLI's
  switch interval), at --threads 1, 2 and auto (its row names the count auto chose in the round
  whose FPS it shows); plus `--save-masks` only (no overlay, no video) at 2 threads.
- TF example: our own re-implementation of TensorFlow's Raspberry Pi example
  (lite/examples/image_segmentation/raspberry_pi/segment.py + utils.py), with the LiteRT
  interpreter in place of the Task library's ImageSegmenter (bilinear resize to the input, argmax
  to a category mask): read -> flip -> BGR->RGB -> resize -> invoke -> colour map through
  np.unique's inverse -> nearest resize -> addWeighted -> FPS text -> legend border -> write.
- pycoral: our own re-implementation of pycoral's examples/semantic_segmentation.py made into a
  frame loop: PIL resize (ANTIALIAS = LANCZOS) -> input tensor view -> invoke ->
  segment.get_output (output cast to uint8) -> argmax -> PASCAL colormap -> side-by-side -> write.

Prints FPS, edgeseg / TF-loop ratios, the isolated invoke ceiling (1 / invoke latency alone) and
stream efficiency (FPS / ceiling). Targets: edgeseg >= 1.25x the TF loop at 1 AND 2 threads with
overlay + video, and >= 0.85 of the ceiling at edgeseg's best thread count.

Run with the project's venv. --quick is 100 frames and 2 rounds (--frames / --rounds given with it
win, and the run says so). Exit 0 when every target is met, 1 when one is missed (FAIL), 2 for bad
options or missing data (../shared/data, or $EDGESEG_SHARED_DATA), checked before any work.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    add_workdir,
    parser,
    positive_int,
    print_machine,
    run_outputs,
    run_quietly,
    work_folder,
)
from _runtime_models import AERIAL, build_tflite, require_data, write_camera_video

from edgeseg.cli.run_cmd import stream_process_settings
from edgeseg.core.model_metadata import read_spec, strip_metadata
from edgeseg.runtime.interpreter import resolve_interpreter
from edgeseg.runtime.segmenter import Segmenter
from edgeseg.runtime.stream_bench import bench_stream, invoke_seconds, read_frames

SIZE = 256
FRAMES, ROUNDS = 300, 3  # the full run
QUICK_FRAMES, QUICK_ROUNDS = 100, 2  # --quick


def _interpreter(model: Path, threads: int) -> Any:
    """A LiteRT interpreter on the model (metadata stripped, as a hand-written loop would load
    it), tensors allocated."""
    Interpreter, _, _ = resolve_interpreter()
    it = Interpreter(model_content=strip_metadata(model.read_bytes()), num_threads=threads)
    it.allocate_tensors()
    return it


def tf_example_loop(model: Path, video: Path, out: Path, threads: int) -> float:
    """TensorFlow's Raspberry Pi segment.py as a sequential loop over a video; returns FPS."""
    spec = read_spec(model.read_bytes())
    assert spec is not None
    names, colours = spec.class_names, np.asarray(spec.palette, np.uint8)  # RGB, like ColoredLabel
    it = _interpreter(model, threads)
    inp, outp = it.get_input_details()[0], it.get_output_details()[0]
    h, w = (int(v) for v in inp["shape"][1:3])
    cap = cv2.VideoCapture(str(video))
    writer = None
    counter, fps, start = 0, 0.0, time.time()
    began, frames = time.perf_counter(), 0
    while True:
        ok, image = cap.read()
        if not ok:
            break
        counter += 1
        image = cv2.flip(image, 1)
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        # ImageSegmenter.segment: bilinear resize to the model input, invoke, argmax per pixel
        it.set_tensor(inp["index"], cv2.resize(rgb, (w, h), interpolation=cv2.INTER_LINEAR)[None])
        it.invoke()
        category = np.argmax(it.get_tensor(outp["index"])[0], axis=-1).astype(np.uint8)
        # utils.segmentation_map_to_image: colours through np.unique's inverse map
        found, inverse, counts = np.unique(category, return_inverse=True, return_counts=True)
        by_count = sorted(found, key=lambda k: dict(zip(found, counts, strict=True))[k])[::-1]
        seg_map = colours[found][inverse.reshape(-1)].reshape(h, w, 3).astype(np.uint8)
        seg_map = cv2.resize(
            seg_map, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_NEAREST
        )
        # visualize(): overlay, FPS text, legend on a white border
        overlay = cv2.addWeighted(image, 0.5, seg_map, 0.5, 0)
        cv2.putText(
            overlay, f"FPS = {int(fps)}", (24, 20), cv2.FONT_HERSHEY_PLAIN, 1, (0, 0, 255), 1
        )
        x, y = overlay.shape[1] + 10, overlay.shape[0] // 20 + 10
        overlay = cv2.copyMakeBorder(
            overlay, 0, 0, 0, 150, cv2.BORDER_CONSTANT, None, (255, 255, 255)
        )
        for k in by_count:
            r, g, b = (int(c) for c in colours[k])
            cv2.rectangle(overlay, (x, y), (x + 16, y + 16), (r, g, b), -1)
            cv2.putText(
                overlay, names[k], (x + 26, y + 10), cv2.FONT_HERSHEY_PLAIN, 1, (0, 0, 255), 1
            )
            y += 26
        if counter % 10 == 0:
            fps, start = 10 / (time.time() - start), time.time()
        if writer is None:
            size = (overlay.shape[1], overlay.shape[0])
            writer = cv2.VideoWriter(str(out), cv2.VideoWriter.fourcc(*"MJPG"), 30.0, size)
        writer.write(overlay)
        frames += 1
    elapsed = time.perf_counter() - began
    cap.release()
    if writer is not None:
        writer.release()
    return frames / elapsed


def _pascal_colormap() -> np.ndarray:
    """PASCAL VOC colormap (256x3), built per frame as the example's label_to_color_image does."""
    colormap = np.zeros((256, 3), dtype=int)
    ids = np.arange(256, dtype=int)
    for shift in reversed(range(8)):
        for channel in range(3):
            colormap[:, channel] |= ((ids >> channel) & 1) << shift
        ids >>= 3
    return colormap


def pycoral_get_output(raw: np.ndarray) -> np.ndarray:
    """pycoral segment.get_output: the output tensor cast to uint8 (int8 negatives wrap)."""
    return raw[0].astype(np.uint8)


def pycoral_loop(model: Path, video: Path, out: Path, threads: int) -> float:
    """pycoral's semantic_segmentation.py (no aspect ratio) as a loop over a video; returns FPS."""
    it = _interpreter(model, threads)
    inp, outp = it.get_input_details()[0], it.get_output_details()[0]
    height, width = (int(v) for v in inp["shape"][1:3])
    cap = cv2.VideoCapture(str(video))
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter.fourcc(*"MJPG"), 30.0, (2 * width, height))
    began, frames = time.perf_counter(), 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        img = Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        resized = img.resize((width, height), Image.Resampling.LANCZOS)
        it.tensor(inp["index"])()[0][:, :] = np.asarray(resized)  # common.set_input
        it.invoke()
        result = pycoral_get_output(it.get_tensor(outp["index"]))
        if result.ndim == 3:
            result = np.argmax(result, axis=-1)
        mask = Image.fromarray(_pascal_colormap()[result].astype(np.uint8))
        output = Image.new("RGB", (2 * width, height))
        output.paste(resized, (0, 0))
        output.paste(mask, (width, 0))
        writer.write(cv2.cvtColor(np.asarray(output), cv2.COLOR_RGB2BGR))
        frames += 1
    elapsed = time.perf_counter() - began
    cap.release()
    writer.release()
    return frames / elapsed


def edgeseg_loop(
    model: Path, video: Path, threads: int | None, masks_only: bool = False
) -> tuple[float, int]:
    """The edgeseg loop as a peer: `edgeseg run --headless --save` in-process (`--save-masks`
    only with `masks_only`), at `threads` (None: auto); (FPS, the thread count it ran with)."""
    with stream_process_settings(None):
        r = bench_stream(model, video, threads=threads, masks=masks_only, cpu=False)
    return r.fps, r.threads


def edgeseg_fps(model: Path, video: Path, threads: int, masks_only: bool = False) -> float:
    """`edgeseg_loop`'s FPS at a fixed thread count."""
    return edgeseg_loop(model, video, threads, masks_only)[0]


def main() -> int:
    """Check the options and the data, then measure in the work folder."""
    ap = parser(__doc__)
    ap.add_argument(
        "--frames",
        type=positive_int,
        default=None,
        metavar="N",
        help=f"frames of the 640x480 video (default: {FRAMES}; {QUICK_FRAMES} with --quick)",
    )
    ap.add_argument(
        "--rounds",
        type=positive_int,
        default=None,
        metavar="N",
        help=f"best of N interleaved rounds (default: {ROUNDS}; {QUICK_ROUNDS} with --quick)",
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_FRAMES} frames, {QUICK_ROUNDS} rounds (a --frames / --rounds given wins)",
    )
    add_workdir(ap)
    args = ap.parse_args()
    given = [f"--{k} {v}" for k, v in (("frames", args.frames), ("rounds", args.rounds)) if v]
    args.frames = args.frames or (QUICK_FRAMES if args.quick else FRAMES)
    args.rounds = args.rounds or (QUICK_ROUNDS if args.quick else ROUNDS)
    require_data(AERIAL)
    with work_folder(args.workdir, "edgeseg-peers-") as work:
        print_machine()
        if args.quick and given:
            print(f"--quick with {' and '.join(given)}: the value given wins over --quick's")
        return measure(args, work)


def measure(args: argparse.Namespace, work: Path) -> int:
    """Build (or reuse, in --workdir) the model and the video in WORK, then run the rounds."""
    kept = "" if args.workdir else " (temporary)"
    print(f"model and video in {work}{kept} (untrained U-Net, real converter, real aerial tiles)")
    model = build_tflite(
        work / f"unet{SIZE}_rgb_uint8.tflite", SIZE, "transpose", "int8", rgb=True, io="uint8"
    )
    video = write_camera_video(work / f"aerial_640x480_{args.frames}.avi", args.frames)
    frames = read_frames(video, 8)
    best: dict[tuple[str, int | str], float] = {}
    ceiling: dict[int, float] = {}
    auto_choice = 0  # the thread count --threads auto chose in the round whose FPS is shown
    with run_outputs(work) as out:  # the peers' videos: removed once measured
        for rnd in range(args.rounds):
            for threads in (1, 2):
                seg = Segmenter(model, threads=threads)
                ceiling[threads] = max(ceiling.get(threads, 0.0), 1.0 / invoke_seconds(seg, frames))
                peer = out / "peer.avi"
                runs: list[tuple[str, Callable[[], float]]] = [
                    ("edgeseg", partial(edgeseg_fps, model, video, threads)),
                    ("TF example", partial(tf_example_loop, model, video, peer, threads)),
                    ("pycoral", partial(pycoral_loop, model, video, peer, threads)),
                ]
                if threads == 2:
                    masks = partial(edgeseg_fps, model, video, threads, masks_only=True)
                    runs.append(("edgeseg masks only", masks))
                for name, fn in runs:
                    fps = fn()
                    best[(name, threads)] = max(best.get((name, threads), 0.0), fps)
            fps, chose = edgeseg_loop(model, video, None)
            if fps > best.get(("edgeseg", "auto"), 0.0):  # the choice of the round shown
                best[("edgeseg", "auto")], auto_choice = fps, chose
            print(f"round {rnd + 1}/{args.rounds} done", flush=True)

    print(
        f"\n{args.frames} frames 640x480, int8 {SIZE}x{SIZE} U-Net (uint8 input), "
        f"best of {args.rounds} interleaved rounds"
    )
    print("| threads | work | edgeseg run | TF example loop | pycoral loop | invoke ceiling |")
    print("|---|---|---|---|---|---|")
    ok = True
    for threads in (1, 2):
        e, tf, pc = (best[(n, threads)] for n in ("edgeseg", "TF example", "pycoral"))
        ratio = e / tf
        ok &= ratio >= 1.25
        print(
            f"| {threads} | overlay + video | {e:.1f} FPS | {tf:.1f} (edgeseg {ratio:.2f}x) "
            f"| {pc:.1f} | {ceiling[threads]:.1f} |"
        )
    print(
        f"| 2 | masks only (`--save-masks`, a PNG per frame) "
        f"| {best[('edgeseg masks only', 2)]:.1f} FPS | | | {ceiling[2]:.1f} |"
    )
    auto = best[("edgeseg", "auto")]
    print(f"| auto (chose {auto_choice}) | overlay + video | {auto:.1f} FPS | | | |")
    top = max((1, 2), key=lambda n: best[("edgeseg", n)])
    eff = best[("edgeseg", top)] / ceiling[top]
    ok &= eff >= 0.85
    for threads in (1, 2):
        e = best[("edgeseg", threads)]
        print(
            f"edgeseg/TF loop at {threads} thread(s): {e / best[('TF example', threads)]:.2f}x "
            f"(target >= 1.25); efficiency {e / ceiling[threads]:.2f}"
        )
    print(f"stream efficiency at edgeseg's best thread count ({top}): {eff:.2f} (target >= 0.85)")
    print("OVERALL", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    run_quietly(main)
