"""numpy + OpenCV core shared by every stage: spec, processing, metrics, metadata.

Never imports TensorFlow, so the on-device runtime can use all of it.
"""
