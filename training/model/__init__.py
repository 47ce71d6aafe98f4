"""Model definitions. Each architecture's config has the same small interface: `build(input_size)`,
`normalisation` (what its input expects, written into the manifest), `depth` (input sides divide by
2**depth), `is_encoder(layer_name)` (a pretrained encoder's layer) and `to_dict()`."""

from training.model.mobile_unet import MobileUNetConfig, build_mobile_unet
from training.model.unet import UNetConfig, build_unet, check_input_size

ARCHITECTURES = {"unet": UNetConfig, "mobile_unet": MobileUNetConfig}

__all__ = ["ARCHITECTURES", "MobileUNetConfig", "UNetConfig", "build_mobile_unet", "build_unet", "check_input_size"]
