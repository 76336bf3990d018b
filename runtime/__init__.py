"""On-device runtime (import name edgeseg.runtime): numpy + OpenCV + a TFLite interpreter, NEVER TensorFlow."""
