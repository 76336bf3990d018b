"""What the accuracy levers cost: full int8 vs int8 with the 1 / 2 worst layers kept in float vs
int16x8, for one untrained gray U-Net (depth 3) calibrated on real membrane images. Prints size and
median invoke latency (1 thread) as ratios to full int8, all measured in this one run on this
machine.

    python benchmarks/bench_quant_levers.py [--size 128] [--upsample resize] [--data DIR]

Run with the project's venv (conversion needs `.[train]`). --data defaults to isbi2012_membrane in
../shared/data, or in $EDGESEG_SHARED_DATA; any folder of images edgeseg calibrates from works.
Only the ratios carry over to other CPUs (16-bit kernels are reference code almost everywhere).
It prints numbers and has no targets: exit 0 when it measured, 2 for bad options or a --data
without usable images (checked before the model is built).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    DATA,
    input_size,
    parser,
    path_error,
    print_machine,
    require_folder,
    run_quietly,
)

from edgeseg.core.errors import EdgesegError
from edgeseg.core.fileio import scratch_dir

DEPTH = 3  # U-Net levels: the input side must be a multiple of 2**DEPTH


def main() -> int:
    """Convert the four variants, time them and print the table; 0 when it measured."""
    ap = parser(__doc__)
    ap.add_argument(
        "--size",
        type=input_size(2**DEPTH, f"the depth-{DEPTH} U-Net halves it {DEPTH} times"),
        default=128,
        metavar="N",
        help="input side in pixels (the model is NxNx1)",
    )
    ap.add_argument(
        "--upsample",
        choices=("transpose", "resize"),
        default="resize",
        help="decoder upsampling: transpose conv, or resize + conv",
    )
    ap.add_argument(
        "--data",
        type=Path,
        default=DATA / "isbi2012_membrane",
        metavar="DIR",
        help="calibration images: a data set or a folder of images",
    )
    args = ap.parse_args()
    require_folder(args.data, "--data", "pass a data set or a folder of images")
    from edgeseg.convert.calibration import find_calibration_images, representative_dataset

    try:  # no images in it: one line now, not a traceback after the model is built
        find_calibration_images(args.data)
    except EdgesegError as exc:
        path_error("--data", args.data, exc)
    print_machine()

    from edgeseg.convert.converter import calibrate, export
    from edgeseg.convert.diagnose import diagnose
    from edgeseg.convert.options import ConvertOptions, Quant
    from edgeseg.convert.repair import NO_ARITHMETIC, NOT_DENYLISTABLE
    from edgeseg.core.spec import ModelSpec
    from edgeseg.runtime.bench import invoke_latency_ms
    from edgeseg.train.model import build_unet

    spec = ModelSpec(args.size, args.size, ("membrane", "cell"), channels=1)
    model = build_unet((args.size, args.size, 1), 2, depth=DEPTH, upsample=args.upsample)
    rep = representative_dataset(args.data, spec, count=16)
    base = ConvertOptions()
    calibrated = calibrate(model, spec, base, rep)
    ranked = [
        e
        for e in diagnose(model, spec, rep, calibrated=calibrated).ranked()
        if e.op not in NO_ARITHMETIC | NOT_DENYLISTABLE
    ]
    variants = {
        "int8": base,
        "int8 + 1 float layer": replace(base, float_layers=(ranked[0].node,)),
        "int8 + 2 float layers": replace(base, float_layers=tuple(e.node for e in ranked[:2])),
        "int16x8": ConvertOptions(quant=Quant.INT16X8),
    }
    rows: list[tuple[str, int, float]] = []  # (variant, bytes, median ms)
    with scratch_dir("bench-quant-levers-") as tmp:
        for name, opts in variants.items():
            out = tmp / f"{len(rows)}.tflite"
            cal = calibrated if opts.quant == Quant.INT8 else None
            res = export(model, spec, opts, out, rep, calibrated=cal)
            rows.append(
                (name, res.size_bytes, invoke_latency_ms(out, runs=5 if "16" in name else 30))
            )
    size0, ms0 = rows[0][1], rows[0][2]
    print(f"U-Net depth {DEPTH}, {args.size}x{args.size}, upsample {args.upsample}; 1 thread")
    print(f"{'variant':24} {'KiB':>8} {'size x':>7} {'ms':>9} {'latency x':>10}")
    for name, size, ms in rows:
        print(f"{name:24} {size / 1024:8.1f} {size / size0:7.2f} {ms:9.2f} {ms / ms0:10.2f}")
    print(f"float layers: {', '.join(e.layer for e in ranked[:2])}")
    return 0


if __name__ == "__main__":
    run_quietly(main)
