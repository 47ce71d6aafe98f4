"""carmask training: from a Carvana folder to a trained, evaluated, exported U-Net.

The model, losses and input pipeline are backend-neutral Keras 3 (keras.ops,
NumPy/Pillow decoding), so a run can train on TensorFlow, JAX or PyTorch.
Only the ONNX export (training/export.py) needs TensorFlow.
"""
