"""Evaluation stage: score a .keras or .tflite model on labelled images (`evaluate`) and gate the
accuracy an int8 model lost against its float model (`compare`). Imports TensorFlow only to run a
.keras model, inside `keras_predictor`."""

from edgeseg.eval.check_result import CheckResult
from edgeseg.eval.compare import compare
from edgeseg.eval.evaluate import EvalResult, evaluate
from edgeseg.eval.predictor import Predictor, open_predictor

__all__ = ["CheckResult", "EvalResult", "Predictor", "compare", "evaluate", "open_predictor"]
