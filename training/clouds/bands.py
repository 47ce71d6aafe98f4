"""The bands of the L8 Biome patches: their order in the files, units, and how that order was settled.

The patches' source repository (LK-Peng/CNN-based-Cloud-Detection-Methods) says the first three bands are
red, green, blue. The data say blue, green, red (`band_order_evidence`): over clear water, reflectance
falls with wavelength (Rayleigh scattering and water absorption), so the shortest visible band is the
brightest; over vegetation, red is the darkest visible band (chlorophyll absorbs it) and NIR jumps
(the red edge); over snow the visible bands are bright and SWIR1 is dark. In these files band 1 is the
brightest over water and band 3 the darkest over forest: blue, green, red. Bands 4-8 follow Landsat-8's
order (B5 NIR, B6 SWIR1, B7 SWIR2, B9 cirrus, B10 thermal): cirrus is near 0 except over high cloud and
ice, the thermal band is in kelvin (about 219-305 K).
"""

from __future__ import annotations

import numpy as np

# name -> (Landsat-8 band, unit, what it is)
BANDS: dict[str, tuple[str, str, str]] = {
    "blue": ("B2", "reflectance", "TOA reflectance, 0.45-0.51 um"),
    "green": ("B3", "reflectance", "TOA reflectance, 0.53-0.59 um"),
    "red": ("B4", "reflectance", "TOA reflectance, 0.64-0.67 um"),
    "nir": ("B5", "reflectance", "TOA reflectance, 0.85-0.88 um"),
    "swir1": ("B6", "reflectance", "TOA reflectance, 1.57-1.65 um"),
    "swir2": ("B7", "reflectance", "TOA reflectance, 2.11-2.29 um"),
    "cirrus": ("B9", "reflectance", "TOA reflectance, 1.36-1.38 um"),
    "tir": ("B10", "kelvin", "brightness temperature, 10.6-11.19 um"),
}
FILE_BANDS = tuple(BANDS)  # the order of the bands in the L8 Biome patch files
BAND_SETS = {"8": FILE_BANDS, "6": FILE_BANDS[:6], "4": FILE_BANDS[:4]}  # 4: what every optical satellite has


def parse_bands(text: str) -> tuple[str, ...]:
    """'4', '6', '8' or comma-separated names -> band names, checked against the files' bands."""
    names = BAND_SETS.get(text.strip()) or tuple(b.strip().lower() for b in text.split(",") if b.strip())
    unknown = [b for b in names if b not in BANDS]
    if unknown or not names:
        raise ValueError(f"unknown band(s) {unknown or text!r}; choose from {', '.join(FILE_BANDS)} (or 4, 6, 8)")
    return names


def describe(names: tuple[str, ...]) -> list[dict]:
    """The manifest's `input.bands`."""
    return [{"name": n, "landsat8": BANDS[n][0], "unit": BANDS[n][1], "description": BANDS[n][2]} for n in names]


def band_order_evidence(patches: list[tuple[str, np.ndarray, np.ndarray]]) -> dict:
    """Mean clear-pixel spectra of water and forest patches, and the checks that settle the visible order.

    `patches`: (biome, image (H, W, 8) in file order, class label (H, W), 0 = clear). Water: clear pixels
    with NIR < 0.05 (open water); forest: clear pixels whose NIR is over twice their darkest visible band (vegetation).
    """
    water, forest = [], []
    for biome, image, label in patches:
        clear = image[label == 0]
        if biome == "Water":
            water.append(clear[clear[:, 3] < 0.05])
        if biome == "Forest":
            forest.append(clear[clear[:, 3] > 2 * clear[:, :3].min(axis=1)])
    water_mean = np.concatenate(water).mean(axis=0) if water else None
    forest_mean = np.concatenate(forest).mean(axis=0) if forest else None
    checks = {}
    if water_mean is not None:
        checks["water: band 1 > band 2 > band 3 (blue brightest)"] = bool(water_mean[0] > water_mean[1] > water_mean[2])
    if forest_mean is not None:
        checks["vegetation: band 3 darkest visible (red)"] = bool(forest_mean[2] < min(forest_mean[0], forest_mean[1]))
        checks["vegetation: band 4 > 2 x band 3 (red edge)"] = bool(forest_mean[3] > 2 * forest_mean[2])
    return {
        "water_clear_spectrum": None if water_mean is None else np.round(water_mean, 4).tolist(),
        "forest_clear_spectrum": None if forest_mean is None else np.round(forest_mean, 4).tolist(),
        "checks": checks,
        "order": list(FILE_BANDS) if checks and all(checks.values()) else None,
    }
