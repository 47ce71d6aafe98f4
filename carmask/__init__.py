"""carmask: car-photo segmentation shared core.

This package holds what training, offline prediction and the service all need
(image decoding, pre/post-processing, RLE, the model manifest and the ONNX
session). It depends on NumPy and Pillow (plus onnxruntime for inference) and
never on TensorFlow.
"""

__version__ = "0.1.0"
