"""Model definitions."""

from training.model.unet import UNetConfig, build_unet, check_input_size

__all__ = ["UNetConfig", "build_unet", "check_input_size"]
