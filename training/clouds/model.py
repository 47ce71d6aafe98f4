"""The cloud model: the classic U-Net, optionally fed normalised-difference indices computed inside the graph.

With so few scenes the network has little chance to learn ratios such as snow's NDSI by itself; the
indices are what cloud-masking algorithms (Fmask) test directly: NDSI = (green - SWIR1) / (green + SWIR1)
(snow bright, cloud near 0), NDVI = (NIR - red) / (NIR + red), NDWI = (green - NIR) / (green + NIR). The
layer takes the model's normalised input, undoes the normalisation, and appends the indices, so the ONNX
graph still takes the manifest's bands and nothing else changes for its consumers.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from carmask.preprocess import Normalisation
from training.model import UNetConfig

INDICES = {"ndsi": ("green", "swir1"), "ndvi": ("nir", "red"), "ndwi": ("green", "nir")}


@keras.saving.register_keras_serializable(package="carmask")
class SpectralIndices(layers.Layer):
    """(N, H, W, bands) normalised -> (N, H, W, bands + indices): each index (a - b) / (a + b) of raw values."""

    def __init__(self, pairs: list[list[int]], mean: list[float], std: list[float], **kwargs):
        super().__init__(**kwargs)
        self.pairs, self.mean, self.std = [list(p) for p in pairs], list(mean), list(std)

    def call(self, x):
        raw = x * ops.convert_to_tensor(self.std, x.dtype) + ops.convert_to_tensor(self.mean, x.dtype)
        out = [x]
        for a, b in self.pairs:
            top, bottom = raw[..., a] - raw[..., b], raw[..., a] + raw[..., b]
            out.append((top / ops.maximum(ops.abs(bottom), 1e-3))[..., None])
        return ops.concatenate(out, axis=-1)

    def get_config(self) -> dict:
        return {**super().get_config(), "pairs": self.pairs, "mean": self.mean, "std": self.std}


def index_pairs(bands: tuple[str, ...], names: tuple[str, ...]) -> list[list[int]]:
    """Band positions of each named index; an index whose bands the model lacks is an error."""
    pairs = []
    for name in names:
        if name not in INDICES:
            raise ValueError(f"unknown index {name!r}; choose from {sorted(INDICES)}")
        missing = [b for b in INDICES[name] if b not in bands]
        if missing:
            raise ValueError(f"index {name} needs bands {missing}, which the model does not take")
        pairs.append([bands.index(b) for b in INDICES[name]])
    return pairs


def build_cloud_model(
    unet: UNetConfig, bands: tuple[str, ...], normalisation: Normalisation, indices: tuple[str, ...] = ()
) -> keras.Model:
    """The U-Net over the bands, with the named indices appended inside the graph."""
    if not indices:
        return unet.build()
    pairs = index_pairs(bands, indices)
    inputs = keras.Input(shape=(None, None, len(bands)), name="image")
    x = SpectralIndices(pairs, list(normalisation.mean), list(normalisation.std), name="indices")(inputs)
    body = UNetConfig(**{**unet.__dict__, "in_channels": len(bands) + len(pairs)}).build()
    return keras.Model(inputs, body(x), name="cloud_unet")
