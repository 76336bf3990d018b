"""Keras training stage: U-Net model, tf.data input pipeline, fit loop. Needs the [train] extra."""

from edgeseg._callable import make_callable

# what a quantisation-aware run keeps of the float network (model.keras is the rebuilt model);
# here, where the CLI can read it without loading Keras
FLOAT_MODEL = "model_float.keras"
CONFIG_NAME = "config.json"  # the run's ModelSpec and settings, beside model.keras
SYNTHETIC_FOLDER = "synthetic_data"  # where `train` without DATA generates its scenes, in OUT
# the Keras package of the quantisation-aware layers (qat_layers), as a saved model names them
QAT_PACKAGE = "edgeseg.qat"
QAT_LAYERS = ("FakeQuant", "QuantConv")  # what makes a model quantisation-aware (qat.is_quantized)

make_callable(__name__, "train")  # edgeseg.train(...) is the API call (edgeseg.api.train)
