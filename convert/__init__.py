"""Conversion stage (import name edgeseg.convert): Keras U-Net -> int8 TFLite (needs [train]).

Light to import: TensorFlow loads inside the functions that need it. Entry points:
`edgeseg.convert.pipeline.convert_model` (the whole `edgeseg convert`), and the split steps
`calibration.representative_dataset`, `converter.prepare_converter` / `run_converter` / `export`,
`validate.validate`, `edgetpu.compile_edgetpu`. Reading a .tflite needs no TensorFlow: that is
`edgeseg.runtime.inspect`.
"""

from edgeseg._callable import make_callable
from edgeseg.convert.options import ConvertOptions, IOType, Quant

make_callable(__name__, "convert")  # edgeseg.convert(...) is the API call (edgeseg.api.convert)

__all__ = ["ConvertOptions", "IOType", "Quant"]
