"""The segmentation service: FastAPI over the shipped ONNX model (never TensorFlow)."""
