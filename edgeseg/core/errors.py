"""Typed errors: every expected failure is one of these.

The CLI turns them into one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path


class EdgesegError(ValueError):
    """Base of all expected, user-facing errors (bad input, missing files, unusable models)."""

    exit_code = 2


def shortlist(items: Sequence[object], limit: int = 4) -> str:
    """The first LIMIT items, comma-separated, and ' ...' when there are more: how a message
    names a few classes, values or colours without running to hundreds."""
    return ", ".join(str(item) for item in items[:limit]) + (" ..." if len(items) > limit else "")


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (its type name if it has none)."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__


class DatasetError(EdgesegError):
    """A dataset folder, image or mask cannot be used as given."""


class NotADatasetError(DatasetError):
    """A folder laid out as no dataset (no images/ + masks/, no pairs in it), as opposed to a
    dataset with a bad pair: a command taking models or datasets says what else it takes."""


class ModelError(EdgesegError):
    """A model file is missing, corrupt, or not a per-pixel class map."""


class FrameError(EdgesegError):
    """An image handed to the library is not an OpenCV frame (None, wrong dtype or shape)."""


class ConversionError(EdgesegError):
    """TFLite conversion or calibration failed."""


class DelegateError(EdgesegError):
    """A TFLite delegate could not be loaded."""


class UnknownDelegateError(DelegateError):
    """The --delegate value names no known delegate or has bad syntax (never falls back)."""


class SourceError(EdgesegError):
    """A camera, video file or stream cannot be opened or was lost for good."""


class MissingStackError(EdgesegError):
    """A command needs TensorFlow/Keras (`pip install 'edgeseg[train]'`) and they are absent."""


class SourceLost(SourceError):
    """A live source stopped delivering frames (unplugged camera, dropped stream); may come back."""

    exit_code = 3


class OutputError(EdgesegError):
    """An output (window, video, mask folder, server) cannot be created."""


class WriteError(EdgesegError):
    """An output file cannot be written (no space, read-only folder, permission): exit code 4.
    `path` and `cause`, when known, let a staging writer name the real output instead of its
    hidden temporary (core.fileio)."""

    exit_code = 4

    def __init__(self, message: str, path: Path | None = None, cause: str | None = None) -> None:
        super().__init__(message)
        self.path, self.cause = path, cause


def path_argument(value: object, name: str, expected: str) -> Path:
    """VALUE as a Path when it is one (a str or os.PathLike); else one EdgesegError naming the
    argument (NAME) and what belongs there, not pathlib's "expected str, bytes or os.PathLike
    object, not NoneType" from deep inside."""
    if isinstance(value, (str, os.PathLike)) and not isinstance(value, bytes):
        return Path(value)
    raise EdgesegError(f"{name} {type(value).__name__}: expected {expected}")


def check_model_file(path: Path, expected: str) -> None:
    """ModelError unless `path` is a regular file: a folder, a device or a missing path each
    said as such (`expected`: what belongs there, e.g. 'a .tflite file')."""
    if path.is_file():
        return
    if path.is_dir():
        raise ModelError(f"{path}: is a folder, expected {expected}")
    if path.exists():
        raise ModelError(f"{path}: not a regular file (a device or pipe), expected {expected}")
    raise ModelError(f"{path}: model file not found")


# edgeseg is installed from a wheel or a checkout as often as from an index: the hint says all
TRAIN_EXTRA_HINT = (
    "install edgeseg's [train] extra: pip install 'edgeseg[train]' (a wheel: pip install "
    "'edgeseg-*.whl[train]'; a checkout: pip install -e '.[train]')"
)
TRAINING_STACK = ("tensorflow", "keras")


def require_training_stack(what: str, modules: Sequence[str] = TRAINING_STACK) -> None:
    """Raise MissingStackError (exit 2) before `what` writes anything when a module of the
    training stack (TensorFlow, Keras; for training also Pillow and matplotlib) cannot be
    imported; the runtime alone (`pip install edgeseg`) does not ship them."""
    import importlib.util

    missing = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    if missing:
        raise MissingStackError(
            f"{what} needs the training stack ({' and '.join(missing)} not installed): "
            f"{TRAIN_EXTRA_HINT}"
        )
