"""Pretrained encoders for the U-Net decoder: each returns its skip features, finest first."""
