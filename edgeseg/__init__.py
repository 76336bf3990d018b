"""edgeseg: semantic segmentation from laptop to embedded hardware.

The public API (`edgeseg.Segmenter`, `train`, `convert`, `evaluate`, `check`, `overlay`) lives in
`edgeseg.api` and is loaded on first use, so `import edgeseg` imports neither TensorFlow nor OpenCV.
`edgeseg.train` and `edgeseg.convert` are also the stage packages; calling them runs the API call.
`help(edgeseg.api)` shows the whole API on one page.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_API = ("EdgesegError", "ModelSpec", "Segmenter", "check", "evaluate", "overlay")
_CALLABLE_PACKAGES = ("train", "convert")
__all__ = [
    "EdgesegError",
    "ModelSpec",
    "Segmenter",
    "__version__",
    "api",
    "check",
    "convert",
    "evaluate",
    "overlay",
    "train",
]

if TYPE_CHECKING:
    from edgeseg import api
    from edgeseg.api import (
        EdgesegError,
        ModelSpec,
        Segmenter,
        check,
        convert,
        evaluate,
        overlay,
        train,
    )


def __getattr__(name: str) -> Any:
    """Load the API on first use (PEP 562), keeping `import edgeseg` free of heavy imports."""
    if name in _API:
        return getattr(importlib.import_module("edgeseg.api"), name)
    if name == "api":  # help(edgeseg.api), as the README says, without `import edgeseg.api`
        return importlib.import_module("edgeseg.api")
    if name in _CALLABLE_PACKAGES:
        return importlib.import_module(f"edgeseg.{name}")
    raise AttributeError(f"module 'edgeseg' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public API only, so a REPL's tab completion offers what `__all__` promises."""
    return sorted(__all__)
