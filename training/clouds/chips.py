"""The cross-sensor chips of ukis-csmask's tests: one Sentinel-2, one Landsat-7 and one Landsat-5 scene.

github dlr-eoc/ukis-csmask, `tests/testfiles/<sensor>.npz` (Apache-2.0): `img` (512, 512, 6) float32
reflectance in the order blue, green, red, NIR, SWIR1, SWIR2; `msk` (512, 512, 1) uint8, 0 cloud shadow,
1-3 clear (its finer ground classes), 4 cloud. Cloud is not split into thin and thick: it scores as thick
cloud, and the figures that matter (cloud IoU, cover) merge the two anyway. Never committed: the search
tool's `fetch` brings the repository; point --chips at the folder holding the .npz files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.clouds.data import CloudDataError

CHIP_BANDS = ("blue", "green", "red", "nir", "swir1", "swir2")
CHIP_SENSORS = {"sentinel2": "sentinel2-l1c", "landsat7": "landsat7", "landsat5": "landsat5", "landsat8": "landsat8"}
# chip label -> our class: shadow, clear x3, cloud (thick)
CHIP_TO_CLASS = np.array([3, 0, 0, 0, 2], np.uint8)


@dataclass(frozen=True)
class Chip:
    name: str  # sentinel2, landsat7, ...
    image: np.ndarray  # (H, W, 6) reflectance, CHIP_BANDS
    labels: np.ndarray  # (H, W) our classes


def read_chips(folder: Path) -> list[Chip]:
    """Every <sensor>.npz chip in `folder`, sorted by name; an error names what is missing or malformed."""
    paths = sorted(Path(folder).glob("*.npz"))
    if not paths:
        raise CloudDataError(f"no ukis-csmask chips (*.npz) in {folder}")
    chips = []
    for path in paths:
        with np.load(path) as data:
            if "img" not in data or "msk" not in data:
                raise CloudDataError(f"{path}: expected arrays img and msk, found {sorted(data)}")
            image, mask = data["img"].astype(np.float32), data["msk"].reshape(data["msk"].shape[:2])
        if image.shape[:2] != mask.shape or image.shape[-1] != len(CHIP_BANDS) or mask.max() >= len(CHIP_TO_CLASS):
            raise CloudDataError(f"{path}: img {image.shape}, msk {mask.shape} values up to {mask.max()}")
        chips.append(Chip(path.stem, image, CHIP_TO_CLASS[mask]))
    return chips


def evaluate_on_chips(predictor, chips: list[Chip], bands: tuple[str, ...]) -> dict:
    """The report of training.clouds.evaluate.score over the chips (each chip a "patch", its sensor the "biome");
    `predictor.probabilities` as in evaluate_predictor. A model needing bands the chips lack is an error."""
    from carmask.clouds.patches import select_bands
    from training.clouds.evaluate import score

    missing = [b for b in bands if b not in CHIP_BANDS]
    if missing:
        raise CloudDataError(f"the model needs {', '.join(missing)}; the chips have {', '.join(CHIP_BANDS)}")
    maps = [predictor.probabilities(select_bands(c.image, bands, CHIP_BANDS)[None])[0].argmax(-1) for c in chips]
    names = [c.name for c in chips]
    return score(np.stack(maps).astype(np.uint8), np.stack([c.labels for c in chips]), names, names)
