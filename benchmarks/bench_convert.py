"""Conversion benchmark: train a 1-channel (gray) 256x256 U-Net (depth 4, 16 filters) briefly on
the real membrane set with the default recipe, convert it as `edgeseg convert MODEL --calib DATA`
does, and print convert time, the int8 / float32 size ratio and the int8 model's argmax agreement
with the .keras it was converted from on the real validation images, all measured in this one run.

    python benchmarks/bench_convert.py [--data ../shared/data/isbi2012_membrane] [--epochs 6]
                                       [--size 256]

The model measured is the one `edgeseg convert` writes: the same chooser and pipeline
(edgeseg.convert.source.choose_source, edgeseg.convert.pipeline.convert_model), so the softmax
is left out (logits out) and model.keras, the quantisation-aware model training ends with by
default, converts from its own learned int8 ranges, without calibration. The sizes and the ratio
are the conversion report's (float32: a float32 conversion of the same model). The agreement is
`edgeseg check`'s (edgeseg.eval.compare): int8 vs model.keras, pixel by pixel, on the val split.
Also printed: the float network's val mIoU as training recorded it (config.json's "qat" record),
model.keras's and the int8 model's.

Run with the project's venv (training needs `.[train]`). --data defaults to isbi2012_membrane in
../shared/data, or in $EDGESEG_SHARED_DATA; any data set edgeseg reads works (trained as gray).
Targets: size ratio <= 0.27, argmax agreement >= 99 %. Exit 0 when both are met, 1 when a target
fails, 2 for bad options or a --data that is no usable data set (checked before training).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    DATA,
    check_dataset,
    input_size,
    parser,
    positive_int,
    print_machine,
    run_quietly,
)

RATIO_TARGET = 0.27
AGREEMENT_TARGET = 0.99
MAX_DROP = 100.0  # compare() judges an mIoU drop; no target here, so none is judged
DEPTH = 4  # U-Net levels: the input side must be a multiple of 2**DEPTH


def main() -> int:
    """Train, convert and compare; 0 when both targets are met, 1 when one fails."""
    ap = parser(__doc__)
    ap.add_argument(
        "--data",
        type=Path,
        default=DATA / "isbi2012_membrane",
        metavar="DIR",
        help="data set to train on and compare on (its val split); it calibrates a float model",
    )
    ap.add_argument("--epochs", type=positive_int, default=6, metavar="N", help="training epochs")
    ap.add_argument(
        "--size",
        type=input_size(2**DEPTH, f"the depth-{DEPTH} U-Net halves it {DEPTH} times"),
        default=256,
        metavar="N",
        help="input side in pixels (the model is NxNx1)",
    )
    args = ap.parse_args()
    check_dataset(args.data, "--data")
    print_machine()

    from edgeseg.convert.options import ConvertOptions
    from edgeseg.convert.pipeline import convert_model
    from edgeseg.convert.source import choose_source
    from edgeseg.convert.target import default_io
    from edgeseg.core.fileio import scratch_dir
    from edgeseg.eval import compare
    from edgeseg.eval.evaluate import evaluate
    from edgeseg.train import FLOAT_MODEL
    from edgeseg.train.fit import TrainConfig, train

    with scratch_dir("bench-convert-") as work:
        t0 = time.perf_counter()
        trained = train(
            TrainConfig(
                data=args.data,
                out=work / "run",
                size=(args.size, args.size),
                epochs=args.epochs,
                batch=4,
                depth=DEPTH,
                filters=16,
                channels=1,
                seed=0,
                verbose=0,
            )
        )
        train_s = time.perf_counter() - t0

        # what `edgeseg convert MODEL --calib DATA` does: the same chooser and pipeline
        options = ConvertOptions(io=default_io(trained.model_path))
        chosen = choose_source(trained.model_path, options, args.data, None)
        t0 = time.perf_counter()
        outcome = convert_model(chosen.model, chosen.out, options, chosen.calib)
        convert_s = time.perf_counter() - t0
        # the int8 model against the .keras it was converted from, as `edgeseg check` compares
        check = compare(chosen.model, outcome.export.path, args.data, max_drop=MAX_DROP)
        float_path = chosen.model.with_name(FLOAT_MODEL)
        # the float network, scored on the same images as the rows beside it
        float_net = evaluate(float_path, args.data) if chosen.qat else None
    # what `edgeseg convert` and `edgeseg check` say of their work (a class absent from these
    # masks, a held-out split) changes what the figures mean: said, on stderr
    for line in (*chosen.notes, *chosen.warnings, *outcome.warnings, *check.notes):
        print(f"note: {line}", file=sys.stderr, flush=True)

    report = outcome.report
    ratio, agreement = report.size_ratio, check.agreement
    assert ratio is not None and agreement is not None  # float32 measured; a .keras compared
    assert check.float_eval is not None
    spec = check.float_eval.spec  # model.keras's, with the quantisation-aware run's record
    kind = "quantisation-aware" if chosen.qat else "float"
    rows = [
        (
            "model",
            f"U-Net {args.size}x{args.size}x{spec.channels} depth {DEPTH}, "
            f"{args.epochs} epochs ({train_s:.0f} s); {chosen.model.name}: {kind}",
        ),
    ]
    if float_net is not None:
        rows.append(("float network val mIoU", f"{float_net.miou:.3f}  ({FLOAT_MODEL})"))
    rows += [
        (f"{chosen.model.name} val mIoU", f"{check.float_miou:.3f}  (the model converted)"),
        ("int8 val mIoU", f"{check.int8.miou:.3f}"),
        (
            "calibration",
            f"{report.calibration['used']} images"
            if report.calibration
            else "none: int8 ranges learned in quantisation-aware training",
        ),
        (
            "convert time (int8)",
            f"{report.convert_seconds or 0.0:.1f} s  ({convert_s:.1f} s with loading, the "
            "float32 size and validation)",
        ),
        ("int8 size", f"{report.size_bytes / 1024:.0f} KiB"),
        ("float32 size", f"{(report.float32_size_bytes or 0) / 1024:.0f} KiB"),
    ]
    for name, value in rows:
        print(f"{name:<24} {value}")
    ok_ratio, ok_agree = ratio <= RATIO_TARGET, agreement >= AGREEMENT_TARGET
    print(
        f"{'size ratio int8/f32':<24} {ratio:.3f}  (target <= {RATIO_TARGET})  "
        f"{'PASS' if ok_ratio else 'FAIL'}"
    )
    print(
        f"{'argmax agreement':<24} {100 * agreement:.2f}% of the pixels of "
        f"{check.int8.images} val images, int8 vs {chosen.model.name}  "
        f"(target >= {100 * AGREEMENT_TARGET:.0f}%)  {'PASS' if ok_agree else 'FAIL'}"
    )
    return 0 if ok_ratio and ok_agree else 1


if __name__ == "__main__":
    run_quietly(main)
