"""Keras training stage: U-Net model, tf.data input pipeline, fit loop. Needs the [train] extra."""

from edgeseg._callable import make_callable

make_callable(__name__, "train")  # edgeseg.train(...) is the API call (edgeseg.api.train)
