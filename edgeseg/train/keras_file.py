"""Whether a path holds a `.keras` model archive, told without loading Keras: the checks every
reader of a trained model makes first (convert before choosing its calibration frames, loading
before Keras reads the archive), worded once."""

from __future__ import annotations

import zipfile
from pathlib import Path

from edgeseg.core.errors import ModelError, check_model_file


def check_keras_file(path: Path) -> None:
    """ModelError unless PATH is a `.keras` zip archive: missing, a folder, an archive cut short
    (an interrupted copy), or another kind of file, each said as such."""
    check_model_file(path, "a .keras model file")
    if path.suffix == ".keras" and not zipfile.is_zipfile(path) and _starts_as_zip(path):
        raise ModelError(
            f"{path}: a .keras archive cut short or corrupt (an interrupted copy?); copy it "
            "again, or train it again"
        )
    if path.suffix != ".keras" or not zipfile.is_zipfile(path):
        raise ModelError(
            f"{path}: not a Keras model file (expected a .keras file written by `edgeseg train`)"
        )


def _starts_as_zip(path: Path) -> bool:
    """A zip's local-file magic at the start: a .keras archive, whatever became of its end."""
    try:
        with path.open("rb") as fh:
            return fh.read(4) == b"PK\x03\x04"
    except OSError:
        return False
