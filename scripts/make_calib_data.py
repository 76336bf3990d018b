"""Regenerate calib_data/: synthetic frames for int8 calibration (seed distinct from training data).

    python scripts/make_calib_data.py            # 32 JPEGs, 256x256, seed 1234 -> calib_data/

Replace them with 100-300 frames from your own camera for real use (see calib_data/README.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgeseg.data.synthetic import CALIB_SEED, write_calibration_frames

REPO = Path(__file__).resolve().parents[1]


def main(
    out: Annotated[Path, typer.Option(help="Folder to write calib_NNN.jpg into.")] = REPO
    / "calib_data",
    count: Annotated[int, typer.Option(help="Number of frames.")] = 32,
    size: Annotated[int, typer.Option(help="Square frame size in pixels.")] = 256,
    seed: Annotated[int, typer.Option(help="Scene seed (training data uses 0).")] = CALIB_SEED,
    quality: Annotated[int, typer.Option(help="JPEG quality.")] = 85,
) -> None:
    """Write synthetic calibration frames and print their total size."""
    paths = write_calibration_frames(
        out, count=count, size=(size, size), seed=seed, quality=quality
    )
    total = sum(p.stat().st_size for p in paths)
    typer.echo(f"wrote {len(paths)} frames to {out} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    typer.run(main)
