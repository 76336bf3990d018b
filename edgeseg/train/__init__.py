"""Keras training stage: U-Net model, tf.data input pipeline, fit loop. Needs the [train] extra."""
