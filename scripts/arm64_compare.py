"""Helpers for scripts/check_arm64.sh, run on the x86 host and inside the arm64 chroot alike.

Only numpy, OpenCV and the runtime-only edgeseg install are used (no TensorFlow), so the same file
runs on both sides. Subcommands:

  inputs MODEL IMAGES OUT.npy        preprocess every image with the model's spec -> input tensors
  video IMAGES OUT.avi               an MJPG video of the images (for `edgeseg run --source`)
  classes MODEL INPUTS.npy OUT.npy   invoke the model on each saved tensor -> class maps
  agree A.npy B.npy --min 0.999      share of equal classes; exit 1 below --min
  masks DIR_A DIR_B                  share of equal pixels between two `run --save-masks` folders
  eval HOST.json ARM.json --tol T    the two `edgeseg eval --out` mIoUs; exit 1 if |diff| > T
  wheels VENV                        exit 1 if TensorFlow is installed or any wheel is not
                                     aarch64 / pure Python (reads every *.dist-info/WHEEL)
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}


def _images(folder: Path) -> list[Path]:
    """The image files of a folder, sorted by name so both sides see the same order."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise SystemExit(f"no images in {folder}")
    return files


def _save_npy(path: Path, array: np.ndarray) -> None:
    """np.save through the project's atomic writer."""
    from edgeseg.core.fileio import write_bytes

    buf = io.BytesIO()
    np.save(buf, array)
    write_bytes(path, buf.getvalue(), mkdir=True)


def cmd_inputs(args: argparse.Namespace) -> int:
    """Preprocess images exactly as the runtime does and save the batch of input tensors."""
    from edgeseg.core.processing import read_image
    from edgeseg.runtime.segmenter import Segmenter

    seg = Segmenter(args.model, threads=1)
    tensors = [seg.preprocess(read_image(p))[0] for p in _images(args.images)]
    _save_npy(args.out, np.stack(tensors))
    print(f"inputs: {len(tensors)} tensors {tensors[0].shape} {tensors[0].dtype} -> {args.out}")
    return 0


def cmd_video(args: argparse.Namespace) -> int:
    """Write the images as an MJPG AVI (3-channel frames at the first image's size)."""
    import cv2

    from edgeseg.core.fileio import atomic_path
    from edgeseg.core.processing import read_image

    frames = []
    for p in _images(args.images):
        img = read_image(p)
        frames.append(cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) if img.ndim == 2 else img)
    h, w = frames[0].shape[:2]
    with atomic_path(args.out, mkdir=True) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter.fourcc(*"MJPG"), 10.0, (w, h))
        for f in frames:
            writer.write(cv2.resize(f, (w, h)))
        writer.release()
    print(f"video: {len(frames)} frames {w}x{h} -> {args.out}")
    return 0


def cmd_classes(args: argparse.Namespace) -> int:
    """Invoke the model on each saved input tensor and save the model-size class maps."""
    from edgeseg.core.processing import class_map_from_output
    from edgeseg.runtime.segmenter import Segmenter

    seg = Segmenter(args.model, threads=1)
    raw = np.stack([seg.invoke(t) for t in np.load(args.inputs)])
    maps = [
        class_map_from_output(r, seg.spec.output_kind, seg.out_scale, seg.out_zero) for r in raw
    ]
    _save_npy(args.out, np.stack(maps))
    _save_npy(_raw_path(args.out), raw)
    print(f"classes: {len(maps)} maps via {seg.interpreter_package} -> {args.out}")
    return 0


def _raw_path(classes: Path) -> Path:
    """Where `classes` keeps the raw output tensors beside the class maps."""
    return classes.with_name(classes.stem + "_raw.npy")


def cmd_agree(args: argparse.Namespace) -> int:
    """Share of identical classes between two saved class-map stacks; fail below --min."""
    a, b = np.load(args.a), np.load(args.b)
    raw_a, raw_b = _raw_path(args.a), _raw_path(args.b)
    if raw_a.is_file() and raw_b.is_file():  # informational: how close the int8 kernels are
        ra, rb = np.load(raw_a).astype(np.int64), np.load(raw_b).astype(np.int64)
        if ra.shape == rb.shape:
            print(
                f"raw output tensors: {np.mean(ra == rb):.4%} of values identical, "
                f"max |diff| {int(np.max(np.abs(ra - rb)))} quantisation step(s); "
                f"classes present: {sorted(int(c) for c in np.unique(a))}"
            )
    if a.shape != b.shape:
        print(f"FAIL: class maps differ in shape: {a.shape} vs {b.shape}")
        return 1
    share = float(np.mean(a == b))
    ok = share >= args.min
    print(
        f"{'ok' if ok else 'FAIL'}: class agreement on identical input tensors "
        f"{share:.4%} ({int(np.sum(a != b))} of {a.size} pixels differ; need >= {args.min:.1%})"
    )
    return 0 if ok else 1


def cmd_masks(args: argparse.Namespace) -> int:
    """Share of equal pixels between two folders of index-PNG masks (informational)."""
    import cv2

    a_files = sorted(args.a.glob("*.png"))
    b_files = sorted(args.b.glob("*.png"))
    if not a_files or [p.name for p in a_files] != [p.name for p in b_files]:
        print(f"FAIL: mask folders differ: {len(a_files)} vs {len(b_files)} files")
        return 1
    equal = total = 0
    for pa, pb in zip(a_files, b_files, strict=True):
        ma = cv2.imread(str(pa), cv2.IMREAD_UNCHANGED)
        mb = cv2.imread(str(pb), cv2.IMREAD_UNCHANGED)
        if ma is None or mb is None or ma.shape != mb.shape:
            print(f"FAIL: {pa.name}: unreadable or different sizes")
            return 1
        equal += int(np.sum(ma == mb))
        total += ma.size
    print(
        f"ok: `run --save-masks`: {len(a_files)} masks on each side, {equal / total:.4%} of pixels "
        "equal (informational: the x86 and aarch64 OpenCV builds may decode and resize frames "
        "differently)"
    )
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Compare the mIoU of two `edgeseg eval --out` JSON files; fail if they differ by > --tol."""
    host = json.loads(args.host.read_text())["miou"]
    arm = json.loads(args.arm.read_text())["miou"]
    ok = abs(host - arm) <= args.tol
    print(
        f"{'ok' if ok else 'FAIL'}: eval mIoU x86 {host:.6f} vs arm64 {arm:.6f} "
        f"(|diff| {abs(host - arm):.6f}, need <= {args.tol})"
    )
    return 0 if ok else 1


def _wheel_tags(dist_info: Path) -> list[str]:
    """The Tag: lines of one installed distribution's WHEEL file."""
    wheel = dist_info / "WHEEL"
    if not wheel.is_file():
        return []
    return [
        line.split(":", 1)[1].strip()
        for line in wheel.read_text().splitlines()
        if line.startswith("Tag:")
    ]


def cmd_wheels(args: argparse.Namespace) -> int:
    """Every installed distribution must be pure Python or aarch64, and TensorFlow absent."""
    dist_infos = sorted(args.venv.glob("lib/python3*/site-packages/*.dist-info"))
    if not dist_infos:
        print(f"FAIL: no installed distributions under {args.venv}")
        return 1
    bad = []
    for d in dist_infos:
        name = d.name.removesuffix(".dist-info")
        tags = _wheel_tags(d)
        platforms = {t.rsplit("-", 1)[-1] for t in tags}
        fine = bool(tags) and all(p == "any" or "aarch64" in p for p in platforms)
        print(f"  {'ok  ' if fine else 'BAD '} {name:45s} {', '.join(sorted(platforms)) or '?'}")
        if not fine:
            bad.append(name)
        if name.lower().replace("_", "-").startswith(("tensorflow", "tf-nightly", "keras-")):
            bad.append(f"{name} (TensorFlow/Keras must not be installed)")
    if (dist_infos[0].parent / "tensorflow").exists():  # installed without metadata
        bad.append("a tensorflow package is in site-packages")
    if bad:
        print("FAIL: " + "; ".join(bad))
        return 1
    print(f"ok: {len(dist_infos)} distributions, all aarch64 or pure Python; no TensorFlow")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the subcommand and run it; the exit status is the check's result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("inputs")
    p.add_argument("model", type=Path)
    p.add_argument("images", type=Path)
    p.add_argument("out", type=Path)
    p.set_defaults(fn=cmd_inputs)
    p = sub.add_parser("video")
    p.add_argument("images", type=Path)
    p.add_argument("out", type=Path)
    p.set_defaults(fn=cmd_video)
    p = sub.add_parser("classes")
    p.add_argument("model", type=Path)
    p.add_argument("inputs", type=Path)
    p.add_argument("out", type=Path)
    p.set_defaults(fn=cmd_classes)
    p = sub.add_parser("agree")
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    p.add_argument("--min", type=float, default=0.999)
    p.set_defaults(fn=cmd_agree)
    p = sub.add_parser("masks")
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    p.set_defaults(fn=cmd_masks)
    p = sub.add_parser("eval")
    p.add_argument("host", type=Path)
    p.add_argument("arm", type=Path)
    p.add_argument("--tol", type=float, default=0.005)
    p.set_defaults(fn=cmd_eval)
    p = sub.add_parser("wheels")
    p.add_argument("venv", type=Path)
    p.set_defaults(fn=cmd_wheels)
    args = parser.parse_args(argv)
    result: int = args.fn(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
