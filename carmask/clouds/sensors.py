"""Sensor presets: which band of a file is which, and how its digital numbers become reflectance.

A cloud model takes bands by name in physical units (reflectance 0-1). Users send what their products
hold: Sentinel-2 L1C / L2A as uint16 digital numbers, reflectance = (DN + offset) / 10000 with the offset
-1000 since processing baseline 04.00 (0 before: `dn_add=0`); Landsat Collection 2 Level-2 surface
reflectance as uint16, DN x 0.0000275 - 0.2 (Level-1 top-of-atmosphere: pass the REFLECTANCE_MULT / ADD of
its MTL file as `dn_scale` / `dn_add`); or reflectance already, as floats. A preset names the bands of
its sensor's usual stacks by their count (or by the sensor's own band names, B02 or SR_B2) and converts
integers; floating-point input is reflectance as it stands, whatever the preset (nothing is scaled twice).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from carmask.clouds.patches import PatchError

# Plausible ranges of valid pixels, by unit: a file outside them was not converted (or converted twice).
UNIT_RANGES = {"reflectance": (-0.5, 2.0), "kelvin": (150.0, 350.0)}

_S2_IDS = {
    "B01": "coastal", "B02": "blue", "B03": "green", "B04": "red", "B05": "rededge1", "B06": "rededge2",
    "B07": "rededge3", "B08": "nir", "B8A": "nir_narrow", "B09": "water_vapour", "B10": "cirrus",
    "B11": "swir1", "B12": "swir2",
}  # fmt: skip
_OLI_IDS = {"B1": "coastal", "B2": "blue", "B3": "green", "B4": "red", "B5": "nir", "B6": "swir1", "B7": "swir2",
            "B9": "cirrus", "B10": "tir"}  # fmt: skip
_TM_IDS = {"B1": "blue", "B2": "green", "B3": "red", "B4": "nir", "B5": "swir1", "B6": "tir", "B7": "swir2"}
_BGRN = ("blue", "green", "red", "nir")
_SIX = (*_BGRN, "swir1", "swir2")


def _with_sr(ids: Mapping[str, str]) -> dict[str, str]:
    """Landsat Collection 2 names its Level-2 bands SR_B2 and its Level-1 bands B2: accept both."""
    return {**ids, **{f"SR_{k}": v for k, v in ids.items()}}


@dataclass(frozen=True)
class Sensor:
    name: str
    description: str
    layouts: Mapping[int, tuple[str, ...]]  # band count -> the usual stack's bands, in file order
    band_ids: Mapping[str, str] = field(default_factory=dict)  # the sensor's band names -> ours
    scale: float | None = None  # integer input: reflectance = DN x scale + add (None: integers refused)
    add: float = 0.0
    dn_nodata: int | None = 0  # the products' fill value (every band equal to it: no data)

    def band_names(self, count: int) -> tuple[str, ...]:
        if count not in self.layouts:
            stacks = "; ".join(f"{n}: {', '.join(b)}" for n, b in sorted(self.layouts.items()))
            raise PatchError(
                f"a {self.name} file with {count} bands is not a stack this preset knows ({stacks}); "
                "name the file's bands with bands="
            )
        return self.layouts[count]

    def canonical(self, name: str) -> str:
        """'B02', 'sr_b2' or 'blue' -> 'blue'."""
        return self.band_ids.get(name.upper(), name.lower())


SENSORS: dict[str, Sensor] = {
    s.name: s
    for s in (
        Sensor("sentinel2-l2a", "Sentinel-2 MSI Level-2A surface reflectance, DN (baseline >= 04.00)",
               {4: ("blue", "green", "red", "nir"), 6: _SIX,
                10: ("blue", "green", "red", "rededge1", "rededge2", "rededge3", "nir", "nir_narrow", "swir1", "swir2"),
                12: ("coastal", "blue", "green", "red", "rededge1", "rededge2", "rededge3", "nir", "nir_narrow",
                     "water_vapour", "swir1", "swir2")},
               _S2_IDS, 1e-4, -0.1),
        Sensor("sentinel2-l1c", "Sentinel-2 MSI Level-1C top-of-atmosphere reflectance, DN (baseline >= 04.00)",
               {4: ("blue", "green", "red", "nir"), 6: _SIX,
                13: ("coastal", "blue", "green", "red", "rededge1", "rededge2", "rededge3", "nir", "nir_narrow",
                     "water_vapour", "cirrus", "swir1", "swir2")},
               _S2_IDS, 1e-4, -0.1),
        Sensor("landsat8", "Landsat 8 OLI/TIRS, Collection 2 Level-2 DN or reflectance (8 bands: the L8 Biome order)",
               {4: _BGRN, 6: _SIX, 7: ("coastal", *_SIX), 8: (*_SIX, "cirrus", "tir")},
               _with_sr(_OLI_IDS), 2.75e-5, -0.2),
        Sensor("landsat9", "Landsat 9 OLI-2/TIRS-2, Collection 2 Level-2 DN or reflectance",
               {4: _BGRN, 6: _SIX, 7: ("coastal", *_SIX)}, _with_sr(_OLI_IDS), 2.75e-5, -0.2),
        Sensor("landsat7", "Landsat 7 ETM+, Collection 2 Level-2 DN or reflectance (bands 1-5, 7)",
               {4: _BGRN, 6: _SIX}, _with_sr(_TM_IDS), 2.75e-5, -0.2),
        Sensor("landsat5", "Landsat 5 TM, Collection 2 Level-2 DN or reflectance (bands 1-5, 7)",
               {4: _BGRN, 6: _SIX}, _with_sr(_TM_IDS), 2.75e-5, -0.2),
        Sensor("reflectance", "any sensor, reflectance 0-1 as floats: blue, green, red, NIR (+ SWIR1, SWIR2)",
               {4: _BGRN, 6: _SIX}, {}, None, 0.0, None),
    )
}  # fmt: skip
SENSOR_NAMES = tuple(SENSORS)


def get_sensor(name: str | None) -> Sensor | None:
    if not name:
        return None
    key = name.strip().lower()
    if key not in SENSORS:
        raise PatchError(f"unknown sensor {name!r}; choose from {', '.join(SENSOR_NAMES)}")
    return SENSORS[key]


def sensors_for(bands: Sequence[str]) -> list[str]:
    """The presets with a stack that holds every one of `bands` (a model's manifest lists them)."""
    return [s.name for s in SENSORS.values() if any(set(bands) <= set(b) for b in s.layouts.values())]


@dataclass(frozen=True)
class BandInput:
    """How one request's file becomes a model's bands: its sensor, its band names, DN conversion overrides.

    Band names: `bands` if given (ours or the sensor's), else the preset's stack of that many bands, else the
    model's own bands in its order. Integers: x `dn_scale` + `dn_add` (default: the preset's).
    """

    sensor: Sensor | None = None
    bands: tuple[str, ...] | None = None
    dn_scale: float | None = None
    dn_add: float | None = None

    @classmethod
    def parse(cls, sensor: str | None = None, bands: str | Sequence[str] | None = None,
              dn_scale: float | None = None, dn_add: float | None = None) -> BandInput:  # fmt: skip
        preset = get_sensor(sensor)
        if isinstance(bands, str):
            bands = [b for b in (x.strip() for x in bands.split(",")) if b]
        names = tuple(preset.canonical(b) if preset else b.lower() for b in bands) if bands else None
        if dn_scale is not None and not (np.isfinite(dn_scale) and dn_scale > 0):
            raise PatchError(f"dn_scale must be a positive number, got {dn_scale}")
        if dn_add is not None and not np.isfinite(dn_add):
            raise PatchError(f"dn_add must be a finite number, got {dn_add}")
        return cls(preset, names, dn_scale, dn_add)

    @classmethod
    def of(cls, value: BandInput | Sequence[str] | None) -> BandInput:
        """A BandInput as given, or one naming the file's bands (a plain list), or none (None)."""
        return value if isinstance(value, BandInput) else cls(bands=tuple(value) if value else None)

    def names(self, count: int, model_bands: Sequence[str]) -> list[str]:
        """The file's bands, in its order."""
        if self.bands is not None:
            return list(self.bands)
        if self.sensor is not None:
            return list(self.sensor.band_names(count))
        return list(model_bands)

    @property
    def radiometry(self) -> tuple[float, float] | None:
        """(scale, add) for integer input; None: integers are refused."""
        scale = self.dn_scale if self.dn_scale is not None else (self.sensor.scale if self.sensor else None)
        if scale is None:
            return None
        add = self.dn_add if self.dn_add is not None else (self.sensor.add if self.sensor else 0.0)
        return scale, add

    def to_physical(self, array: np.ndarray, nodata: float | None = None) -> np.ndarray:
        """(H, W, bands) file values -> float32 physical values; no-data pixels become NaN (fill).

        `nodata`: the file's own fill value (a GeoTIFF's); integer files default to the preset's.
        """
        if array.dtype.kind == "f":
            out = np.asarray(array, dtype=np.float32)
            if nodata is not None and np.isfinite(nodata):
                out = out.copy()
                out[(array == nodata).all(axis=-1)] = np.nan
            return out
        if array.dtype.kind not in "ui":
            raise PatchError(f"the patch is {array.dtype}; expected integers (digital numbers) or floats (reflectance)")
        radiometry = self.radiometry
        if radiometry is None:
            raise PatchError(
                f"the patch holds integers ({array.dtype}): name the sensor (sensor=, one of "
                f"{', '.join(n for n in SENSOR_NAMES if SENSORS[n].scale)}) or give dn_scale and dn_add so its "
                "digital numbers become reflectance; floats are taken as reflectance"
            )
        scale, add = radiometry
        out = array.astype(np.float32) * np.float32(scale) + np.float32(add)
        fill = nodata if nodata is not None else (self.sensor.dn_nodata if self.sensor else None)
        if fill is not None:
            out[(array == fill).all(axis=-1)] = np.nan
        return out


def check_range(
    patch: np.ndarray, names: Sequence[str], units: Sequence[str], nodata: float | None = None, where: str = "the patch"
) -> None:
    """Refuse values no sensor's reflectance (or temperature) takes: unconverted DN, percent, a double scale.

    Looks at a strided sample of the valid pixels (1st and 99th percentile per band), so a few hot pixels pass.
    """
    step = max(1, int(np.sqrt(patch.shape[0] * patch.shape[1] / 65536)))
    sample = patch[::step, ::step].reshape(-1, patch.shape[-1])
    keep = np.isfinite(sample).all(axis=1)
    if nodata is not None:
        keep &= ~(sample == np.float32(nodata)).all(axis=1)
    sample = sample[keep]
    if not len(sample):
        return
    low, high = np.percentile(sample, [1, 99], axis=0)
    for i, (name, unit) in enumerate(zip(names, units, strict=True)):
        lo, hi = UNIT_RANGES.get(unit, (-np.inf, np.inf))
        if low[i] < lo or high[i] > hi:
            raise PatchError(
                f"{where}'s {name} band runs {low[i]:.4g} to {high[i]:.4g} (1st-99th percentile); the model "
                f"expects {unit} ({lo:g} to {hi:g}). Integer digital numbers are converted with sensor= (or "
                "dn_scale / dn_add); floats are taken as already converted"
            )
