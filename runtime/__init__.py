"""On-device runtime (import name edgeseg.runtime): numpy + OpenCV + a TFLite interpreter.

NEVER TensorFlow: this package must import and run on a Raspberry Pi with only ai-edge-litert.
"""

from edgeseg.runtime.interpreter import resolve_interpreter
from edgeseg.runtime.segmenter import Segmenter

__all__ = ["Segmenter", "resolve_interpreter"]
