"""Conversion benchmark: train a 1-channel (gray) 256x256 U-Net (depth 4, 16 filters) briefly on
the real membrane set, convert it to int8, and print convert time, the int8 / float32 size ratio
and the int8-vs-Keras argmax agreement on the real validation images, all measured in this one run.

    python benchmarks/bench_convert.py [--data ../shared/data/isbi2012_membrane] [--epochs 6]
                                       [--size 256]

Run with the project's venv (training needs `.[train]`). --data defaults to isbi2012_membrane in
../shared/data, or in $EDGESEG_SHARED_DATA; any data set edgeseg reads works (trained as gray).
Targets: size ratio <= 0.27, argmax agreement >= 99 %. Exit 0 when both are met, 1 when a target
fails, 2 for bad options or a --data that is no usable data set (checked before training).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

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
DEPTH = 4  # U-Net levels: the input side must be a multiple of 2**DEPTH


def main() -> int:
    """Train, convert and compare; 0 when both targets are met, 1 when one fails."""
    ap = parser(__doc__)
    ap.add_argument(
        "--data",
        type=Path,
        default=DATA / "isbi2012_membrane",
        metavar="DIR",
        help="data set to train on, calibrate with and compare on (its val split)",
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

    from ai_edge_litert.interpreter import Interpreter

    from edgeseg.convert.calibration import representative_dataset
    from edgeseg.convert.converter import export, float32_size, write_saved_model
    from edgeseg.convert.options import ConvertOptions
    from edgeseg.core.processing import class_map_from_output, prepare_image, to_input_tensor
    from edgeseg.data.dataset import open_dataset
    from edgeseg.runtime.interpreter import usable_cpus
    from edgeseg.train.fit import TrainConfig, train
    from edgeseg.train.model_io import load_keras_model

    with tempfile.TemporaryDirectory(prefix="bench-convert-") as tmp:
        work = Path(tmp)
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
        model, spec = load_keras_model(trained.model_path)

        t0 = time.perf_counter()
        rep = representative_dataset(args.data, spec, count=200, seed=0)
        saved = write_saved_model(model, spec, work / "saved")
        result = export(saved, spec, ConvertOptions(), work / "model_int8.tflite", rep)
        convert_s = time.perf_counter() - t0
        f32 = float32_size(saved, spec)
        ratio = result.size_bytes / f32

        ds = open_dataset(args.data)
        interp = Interpreter(model_path=str(result.path), num_threads=usable_cpus())
        interp.allocate_tensors()
        inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
        agree = total = 0
        for _, image, _ in ds.iter_split("val"):
            pixels, _ = prepare_image(image, spec)
            keras_map = np.argmax(model.predict(pixels[None].astype(np.float32), verbose=0)[0], -1)
            interp.set_tensor(
                inp["index"], to_input_tensor(pixels, inp["dtype"], *inp["quantization"])
            )
            interp.invoke()
            lite_map = class_map_from_output(
                interp.get_tensor(out["index"]), spec.output_kind, *out["quantization"]
            )
            agree += int((lite_map == keras_map).sum())
            total += keras_map.size
        agreement = agree / total

    rows = [
        (
            "model",
            f"U-Net {args.size}x{args.size}x{spec.channels} depth {DEPTH}, "
            f"{args.epochs} epochs ({train_s:.0f} s), float val mIoU {trained.best_miou:.3f}",
        ),
        ("calibration", f"{rep.stats.used} images"),
        ("convert time (int8)", f"{convert_s:.1f} s"),
        ("int8 size", f"{result.size_bytes / 1024:.0f} KiB"),
        ("float32 size", f"{f32 / 1024:.0f} KiB"),
    ]
    for name, value in rows:
        print(f"{name:<22} {value}")
    ok_ratio, ok_agree = ratio <= RATIO_TARGET, agreement >= AGREEMENT_TARGET
    print(
        f"{'size ratio int8/f32':<22} {ratio:.3f}  (target <= {RATIO_TARGET})  "
        f"{'PASS' if ok_ratio else 'FAIL'}"
    )
    print(
        f"{'argmax agreement':<22} {100 * agreement:.2f}% of {total} val pixels  "
        f"(target >= {100 * AGREEMENT_TARGET:.0f}%)  {'PASS' if ok_agree else 'FAIL'}"
    )
    return 0 if ok_ratio and ok_agree else 1


if __name__ == "__main__":
    run_quietly(main)
