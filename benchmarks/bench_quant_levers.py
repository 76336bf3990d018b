"""What the accuracy levers cost: full int8 vs int8 with the 1 / 2 worst layers kept in float vs
int16x8, for one U-Net calibrated on real membrane images. Prints size and median invoke latency
(1 thread) as ratios to full int8, all measured in this one run on this machine.

    /work/venv/bin/python benchmarks/bench_quant_levers.py [--size 128] [--upsample resize]

Only the ratios carry over to other CPUs (16-bit kernels are reference code almost everywhere).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from dataclasses import replace
from pathlib import Path

from edgeseg.cli.common import quiet_tensorflow

quiet_tensorflow()  # as the CLI: TensorFlow's and absl's C++ start-up lines hidden

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("EDGESEG_SHARED_DATA", REPO.parent / "shared" / "data"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--upsample", choices=("transpose", "resize"), default="resize")
    parser.add_argument("--data", type=Path, default=DATA / "isbi2012_membrane")
    args = parser.parse_args()

    from edgeseg.convert.calibration import representative_dataset
    from edgeseg.convert.converter import calibrate, export
    from edgeseg.convert.diagnose import diagnose
    from edgeseg.convert.options import ConvertOptions, Quant
    from edgeseg.convert.repair import NO_ARITHMETIC, NOT_DENYLISTABLE
    from edgeseg.core.spec import ModelSpec
    from edgeseg.runtime.bench import invoke_latency_ms
    from edgeseg.train.model import build_unet

    spec = ModelSpec(args.size, args.size, ("membrane", "cell"), channels=1)
    model = build_unet((args.size, args.size, 1), 2, depth=3, upsample=args.upsample)
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
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, opts in variants.items():
            out = Path(tmp) / f"{len(rows)}.tflite"
            cal = calibrated if opts.quant == Quant.INT8 else None
            res = export(model, spec, opts, out, rep, calibrated=cal)
            rows.append(
                (name, res.size_bytes, invoke_latency_ms(out, runs=5 if "16" in name else 30))
            )
    size0, ms0 = rows[0][1], rows[0][2]
    print(f"U-Net depth 3, {args.size}x{args.size}, upsample {args.upsample}; 1 thread")
    print(f"{'variant':24} {'KiB':>8} {'size x':>7} {'ms':>9} {'latency x':>10}")
    for name, size, ms in rows:
        print(f"{name:24} {size / 1024:8.1f} {size / size0:7.2f} {ms:9.2f} {ms / ms0:10.2f}")
    print(f"float layers: {', '.join(e.layer for e in ranked[:2])}")


if __name__ == "__main__":
    main()
