"""The L8 Biome patches: finding them, their labels as classes, and splits by biome.

Folder layout: `<root>/<split>/{images,masks}/<Biome>_<nn>_<id>.tif` (split: train, val, test). Images
are (256, 256, 8) float32 in FILE_BANDS order; masks uint8: 0 fill, 64 shadow, 128 clear, 192 thin
cloud, 255 cloud. Labels become class indices 0 clear, 1 thin cloud, 2 thick cloud, 3 shadow, and
IGNORE for fill (the loss and every metric leave it out). A patch's scene is `<Biome>_<nn>`; splits and
folds never cut a scene.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from carmask.clouds.patches import PatchError, read_patch, select_bands
from training.clouds.bands import FILE_BANDS

IGNORE = 255
# mask value -> class index
LABEL_VALUES = {128: 0, 192: 1, 255: 2, 64: 3, 0: IGNORE}
CLASSES = [
    {"index": 0, "name": "clear", "colour": [40, 120, 60]},
    {"index": 1, "name": "thin_cloud", "colour": [170, 200, 255]},
    {"index": 2, "name": "thick_cloud", "colour": [255, 255, 255]},
    {"index": 3, "name": "shadow", "colour": [90, 60, 120]},
]
CLASS_NAMES = [c["name"] for c in CLASSES]
GROUPS = {"cloud_cover": ["thin_cloud", "thick_cloud"], "shadow": ["shadow"]}
CLOUD = [1, 2]  # class indices counted as cloud (cloud IoU, cover)
SHADOW = [3]
SPLITS = ("train", "val", "test")
_NAME = re.compile(r"^(?P<biome>[A-Za-z]+)_(?P<scene>\d+)_(?P<id>\w+)$")


class CloudDataError(RuntimeError):
    """The cloud folder is missing, empty, or a patch/mask does not fit."""


@dataclass(frozen=True)
class CloudPatch:
    name: str
    biome: str
    scene: str  # <Biome>_<nn>: patches of one scene stay together
    split: str
    image_path: Path
    mask_path: Path


def labels_from_mask(mask: np.ndarray, where: str = "mask") -> np.ndarray:
    """L8 Biome mask values to class indices (IGNORE for fill); an unknown value is an error."""
    lookup = np.full(256, -1, dtype=np.int16)
    for value, index in LABEL_VALUES.items():
        lookup[value] = index
    labels = lookup[mask.astype(np.uint8)]
    if (labels < 0).any():
        bad = sorted(set(np.unique(mask[labels < 0]).tolist()))
        raise CloudDataError(f"{where}: values {bad} are not L8 Biome classes {sorted(LABEL_VALUES)}")
    return labels.astype(np.uint8)


def read_l8_biome(root: Path, splits: tuple[str, ...] = SPLITS) -> list[CloudPatch]:
    """Every image with its mask under `root`/<split>, sorted; errors name what is missing."""
    root = Path(root)
    if not root.is_dir():
        raise CloudDataError(f"cloud data folder not found: {root} (expected <split>/images and <split>/masks)")
    patches = []
    for split in splits:
        images = root / split / "images"
        for path in sorted(images.glob("*.tif")) if images.is_dir() else []:
            match = _NAME.match(path.stem)
            if not match:
                raise CloudDataError(f"{path}: name is not <Biome>_<nn>_<id>.tif")
            mask = root / split / "masks" / path.name
            if not mask.is_file():
                raise CloudDataError(f"{path}: no mask {mask}")
            biome = match["biome"]
            patches.append(CloudPatch(path.stem, biome, f"{biome}_{match['scene']}", split, path, mask))
    if not patches:
        raise CloudDataError(f"no patches in {root}/{{{','.join(splits)}}}/images/*.tif")
    return patches


def load_patch(patch: CloudPatch, bands: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(image (H, W, len(bands)) float32, labels (H, W) uint8), checked to fit together."""
    try:
        image = select_bands(read_patch(patch.image_path), bands, FILE_BANDS)
    except PatchError as exc:
        raise CloudDataError(f"{patch.image_path}: {exc}") from None
    import tifffile

    labels = labels_from_mask(tifffile.imread(patch.mask_path), str(patch.mask_path))
    if labels.shape != image.shape[:2]:
        raise CloudDataError(f"{patch.name}: image is {image.shape[:2]}, mask {labels.shape}")
    return image, labels


def load_all(patches: list[CloudPatch], bands: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    pairs = [load_patch(p, bands) for p in patches]
    return np.stack([i for i, _ in pairs]), np.stack([m for _, m in pairs])


def biome_folds(patches: list[CloudPatch], count: int = 0) -> dict[str, list[CloudPatch]]:
    """Folds of whole biomes: {name: held-out patches}. count 0: one fold per biome (leave one biome out);
    else `count` folds, the sorted biomes dealt round-robin (fold names join their biomes with +)."""
    by_biome: dict[str, list[CloudPatch]] = {}
    for p in patches:
        by_biome.setdefault(p.biome, []).append(p)
    biomes = sorted(by_biome)
    if not count or count >= len(biomes):
        return {b: by_biome[b] for b in biomes}
    groups = [biomes[i::count] for i in range(count)]
    return {"+".join(g): [p for b in g for p in by_biome[b]] for g in groups}


def band_statistics(images: np.ndarray, labels: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-band mean and std over the labelled (non-fill) pixels: the model's input normalisation."""
    pixels = images[labels != IGNORE]
    return pixels.mean(axis=0).astype(float).tolist(), np.maximum(pixels.std(axis=0), 1e-6).astype(float).tolist()
