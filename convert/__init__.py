"""Conversion stage (import name edgeseg.convert): Keras U-Net -> int8 TFLite. Needs the [train] extra."""
