"""On-device runtime (import name edgeseg.runtime): numpy + OpenCV + a TFLite interpreter.

NEVER TensorFlow: this package must import and run on a Raspberry Pi with only ai-edge-litert.
`Segmenter` and `resolve_interpreter` load on first use (PEP 562), so a light module of the
package (the CLI reads `interpreter.MAX_THREADS` for every --help) does not bring numpy and
OpenCV with it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgeseg.runtime.interpreter import resolve_interpreter
    from edgeseg.runtime.segmenter import Segmenter

__all__ = ["Segmenter", "resolve_interpreter"]
_HOMES = {
    "Segmenter": "edgeseg.runtime.segmenter",
    "resolve_interpreter": "edgeseg.runtime.interpreter",
}


def __getattr__(name: str) -> Any:
    """Load Segmenter / resolve_interpreter on first use."""
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'edgeseg.runtime' has no attribute {name!r}")
