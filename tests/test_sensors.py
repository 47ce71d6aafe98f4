"""Sensor presets: band names by stack and by the sensor's own names, DN to reflectance, fill, range checks."""

from __future__ import annotations

import numpy as np
import pytest

from carmask.clouds.patches import PatchError
from carmask.clouds.sensors import SENSOR_NAMES, SENSORS, BandInput, check_range, get_sensor, sensors_for


def test_sentinel2_digital_numbers_become_reflectance_with_the_baseline_offset():
    dn = np.array([[[1000, 2000, 11000, 0]]], np.uint16)  # one pixel, four bands
    out = BandInput.parse("sentinel2-l2a").to_physical(dn)
    np.testing.assert_allclose(out[0, 0], [0.0, 0.1, 1.0, -0.1], atol=1e-6)  # (DN - 1000) / 10000
    before_04 = BandInput.parse("sentinel2-l1c", dn_add=0.0).to_physical(dn)  # processing baseline < 04.00
    np.testing.assert_allclose(before_04[0, 0], [0.1, 0.2, 1.1, 0.0], atol=1e-6)


def test_landsat_collection2_scale_and_fill():
    dn = np.array([[[7273, 10000, 20000, 30000], [0, 0, 0, 0]]], np.uint16)
    out = BandInput.parse("landsat8").to_physical(dn)
    np.testing.assert_allclose(out[0, 0], np.array([7273, 10000, 20000, 30000]) * 2.75e-5 - 0.2, atol=1e-6)
    assert np.isnan(out[0, 1]).all()  # every band 0: the product's fill -> no data
    custom = BandInput.parse("landsat7", dn_scale=2e-5, dn_add=-0.1).to_physical(dn)  # a Level-1 MTL's values
    np.testing.assert_allclose(custom[0, 0, 0], 7273 * 2e-5 - 0.1, atol=1e-6)


def test_floats_are_reflectance_whatever_the_preset_and_integers_need_one():
    reflectance = np.random.default_rng(0).random((4, 5, 4), dtype=np.float32)
    for name in SENSOR_NAMES:
        np.testing.assert_array_equal(BandInput.parse(name).to_physical(reflectance), reflectance)
    with pytest.raises(PatchError, match=r"integers .*name the sensor"):
        BandInput().to_physical(np.zeros((2, 2, 4), np.uint16))
    with pytest.raises(PatchError, match="integers"):
        BandInput.parse("reflectance").to_physical(np.zeros((2, 2, 4), np.uint16))
    with_fill = reflectance.copy()
    with_fill[0, 0] = -9999.0
    assert np.isnan(BandInput().to_physical(with_fill, nodata=-9999.0)[0, 0]).all()  # a GeoTIFF's own nodata


def test_band_names_by_stack_size_by_sensor_names_and_given():
    s2 = BandInput.parse("sentinel2-l2a")
    assert s2.names(4, ["x"]) == ["blue", "green", "red", "nir"]
    assert s2.names(12, ["x"])[:4] == ["coastal", "blue", "green", "red"]
    assert BandInput.parse("landsat7").names(6, ["x"])[4:] == ["swir1", "swir2"]
    assert BandInput.parse("sentinel2-l2a", bands="B08, B04,B03,b02").bands == ("nir", "red", "green", "blue")
    assert BandInput.parse("landsat8", bands="SR_B2,SR_B3,SR_B4,SR_B5").bands == ("blue", "green", "red", "nir")
    assert BandInput.parse(None, bands="NIR,red").bands == ("nir", "red")
    assert BandInput().names(3, ["a", "b", "c"]) == ["a", "b", "c"]  # no sensor, no names: the model's bands
    with pytest.raises(PatchError, match=r"with 5 bands is not a stack .*\(4: blue, green, red, nir;"):
        s2.names(5, ["x"])


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [({"sensor": "sentinel3"}, "unknown sensor 'sentinel3'; choose from sentinel2-l2a"),
     ({"dn_scale": 0.0}, "dn_scale must be a positive number"),
     ({"dn_add": float("nan")}, "dn_add must be a finite number")],
)  # fmt: skip
def test_bad_presets_and_conversions_are_refused(kwargs, words):
    with pytest.raises(PatchError, match=words):
        BandInput.parse(**kwargs)


def test_range_check_catches_unconverted_numbers_but_not_fill_or_kelvin():
    names, units = ["blue", "tir"], ["reflectance", "kelvin"]
    good = np.stack([np.full((40, 40), 0.2), np.full((40, 40), 290.0)], axis=-1).astype(np.float32)
    good[:20] = 0.0  # fill rows (every band 0): not judged
    check_range(good, names, units, nodata=0.0)
    dn_like = good.copy()
    dn_like[..., 0] = 2500.0
    with pytest.raises(PatchError, match=r"blue band runs 2500 to 2500 .* expects reflectance"):
        check_range(dn_like, names, units, nodata=0.0)
    hot = good.copy()
    hot[30, 30, 0] = 50.0  # one hot pixel passes (percentiles)
    check_range(hot, names, units, nodata=0.0)


def test_model_presets_follow_their_bands():
    assert sensors_for(["blue", "green", "red", "nir"]) == list(SENSOR_NAMES)
    assert sensors_for(["blue", "green", "red", "nir", "swir1", "swir2", "cirrus", "tir"]) == ["landsat8"]
    assert get_sensor(None) is None and get_sensor("Landsat5") is SENSORS["landsat5"]
