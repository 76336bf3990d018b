"""numpy + OpenCV core shared by every stage: spec, processing, metrics, metadata. Never TensorFlow."""
