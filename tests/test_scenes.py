"""Whole scenes: GeoTIFFs of any size tiled through a patch model, georeferencing kept, seams invisible, fill kept,
presets applied, bad files refused without leaving a half-written output; and the carmask-predict path."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
from rasterio.transform import from_origin  # noqa: E402

from carmask.clouds.cover import FILL, scene_summary  # noqa: E402
from carmask.clouds.patches import PatchError  # noqa: E402
from carmask.clouds.scene import Tiling, blend_weights, segment_scene, tile_starts  # noqa: E402
from carmask.clouds.segmenter import PatchSegmenter  # noqa: E402
from carmask.clouds.sensors import BandInput  # noqa: E402
from tests.fixtures import CLOUD_CLASSES, make_cloud_model  # noqa: E402

UTM = "EPSG:32633"
TRANSFORM = from_origin(399960.0, 5300040.0, 10.0, 10.0)  # a Sentinel-2 tile's corner, 10 m pixels


@pytest.fixture(scope="module")
def seg(tmp_path_factory):
    return PatchSegmenter(make_cloud_model(tmp_path_factory.mktemp("m")), providers=["CPUExecutionProvider"])


def blocky_classes(h: int, w: int, seed: int = 0, block: int = 7) -> np.ndarray:
    """Random classes in small blocks: class edges fall everywhere, across every tile seam."""
    rng = np.random.default_rng(seed)
    grid = rng.integers(0, len(CLOUD_CLASSES), (h // block + 1, w // block + 1))
    return grid.repeat(block, 0).repeat(block, 1)[:h, :w].astype(np.uint8)


def sentinel2_dn(classes: np.ndarray) -> np.ndarray:
    """uint16 L2A digital numbers whose reflectance ((DN - 1000) / 10000) is largest in each pixel's class band."""
    dn = np.full((*classes.shape, 4), 2000, np.uint16)  # reflectance 0.1
    np.put_along_axis(dn, classes[..., None].astype(np.int64), 8000, axis=-1)  # 0.7
    return dn


def write_geotiff(path, array: np.ndarray, nodata=None, descriptions=None, crs=UTM) -> None:
    h, w, bands = array.shape
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=bands, dtype=array.dtype.name,
                       crs=crs, transform=TRANSFORM, nodata=nodata, tiled=True) as dst:  # fmt: skip
        dst.write(np.moveaxis(array, -1, 0))
        for i, text in enumerate(descriptions or []):
            dst.set_band_description(i + 1, text)


def test_tiles_cover_every_pixel_and_blend_weights_fall_to_the_edges():
    assert tile_starts(100, 128, 16) == [0]
    assert tile_starts(300, 128, 16) == [0, 112, 172]  # the last flush with the end
    for length in (129, 240, 241, 1000):
        starts = tile_starts(length, 128, 16)
        covered = np.zeros(length, bool)
        for s in starts:
            covered[s : s + 128] = True
        assert covered.all() and all(b - a <= 112 for a, b in itertools.pairwise(starts))
    w = blend_weights(64, 64, 8)
    assert w.min() > 0 and w[32, 32] == 1.0 and w[0, 32] < w[4, 32] < w[8, 32]
    with pytest.raises(ValueError, match="under half the tile"):
        Tiling(64, 32).for_model(256)
    with pytest.raises(ValueError, match="over the model's largest side"):
        Tiling(512).for_model(256)


def test_a_scene_larger_than_any_tile_comes_back_exact_with_its_georeferencing(seg, tmp_path):
    classes = blocky_classes(333, 250)
    dn = sentinel2_dn(classes)
    dn[:9] = 0  # the tile's edge outside the swath: fill
    classes[:9] = FILL
    write_geotiff(tmp_path / "scene.tif", dn, nodata=0)
    calls = []
    original = seg.probabilities
    seg.probabilities = lambda tiles: calls.append(tiles.shape) or original(tiles)
    try:
        summary = segment_scene(seg, tmp_path / "scene.tif", tmp_path / "out.tif", BandInput.parse("sentinel2-l2a"),
                                Tiling(64, 8, batch=3))  # fmt: skip
    finally:
        del seg.probabilities
    with rasterio.open(tmp_path / "out.tif") as out:
        assert out.crs.to_string() == UTM and out.transform == TRANSFORM and out.shape == (333, 250)
        assert out.nodata == FILL and out.dtypes == ("uint8",) and out.tags()["class_2"] == "thick_cloud"
        assert out.colormap(1)[3][:3] == (180, 180, 255)  # the manifest's colour of class 3
        np.testing.assert_array_equal(out.read(1), classes)  # every seam, edge and corner
    assert summary == scene_summary(classes, list(CLOUD_CLASSES), seg.manifest.output.groups)
    assert max(n for n, *_ in calls) <= 3 and all(s[1:3] == (64, 64) for s in calls)  # tile by tile, never more
    assert not list(tmp_path.glob("*.partial"))


def test_float_reflectance_with_its_nodata_and_named_bands_in_another_order(seg, tmp_path):
    classes = blocky_classes(90, 140, seed=1)
    reflectance = ((sentinel2_dn(classes).astype(np.float32) - 1000) / 10000)[..., ::-1].copy()  # nir, red, ...
    reflectance[-5:] = -9999.0
    classes[-5:] = FILL
    write_geotiff(tmp_path / "f.tif", reflectance, nodata=-9999.0, descriptions=["B08", "B04", "B03", "B02"])
    segment_scene(seg, tmp_path / "f.tif", tmp_path / "f_out.tif", BandInput.parse("sentinel2-l2a"), Tiling(64))
    with rasterio.open(tmp_path / "f_out.tif") as out:
        np.testing.assert_array_equal(out.read(1), classes)


@pytest.mark.parametrize(
    ("array", "band_input", "words"),
    [
        (np.full((40, 40, 4), 3000, np.uint16), BandInput(), "integers .*name the sensor"),
        (np.full((40, 40, 5), 3000, np.uint16), BandInput.parse("sentinel2-l2a"), "with 5 bands is not a stack"),
        (np.full((40, 40, 4), 3000.0, np.float32), BandInput(), "blue band runs 3000 .* expects reflectance"),
        (np.full((40, 40, 3), 0.1, np.float32), BandInput.parse(bands="blue,green,red"), "lacks nir"),
    ],
)
def test_scenes_that_do_not_fit_are_refused_without_output(seg, tmp_path, array, band_input, words):
    write_geotiff(tmp_path / "bad.tif", array)
    with pytest.raises(PatchError, match=words):
        segment_scene(seg, tmp_path / "bad.tif", tmp_path / "bad_out.tif", band_input)
    assert not (tmp_path / "bad_out.tif").exists() and not list(tmp_path.glob("*.partial"))
    (tmp_path / "junk.tif").write_bytes(b"II*\x00 not really")
    with pytest.raises(PatchError, match="not a readable GeoTIFF"):
        segment_scene(seg, tmp_path / "junk.tif", tmp_path / "junk_out.tif")


def test_carmask_predict_writes_a_geotiff_per_scene_and_cover_csv(seg, tmp_path, capsys):
    from carmask.predict import main as predict_main

    classes = blocky_classes(300, 270, seed=2)
    (tmp_path / "in").mkdir()
    write_geotiff(tmp_path / "in" / "T33UVP.tif", sentinel2_dn(classes), nodata=0)
    write_geotiff(tmp_path / "in" / "six.tif", sentinel2_dn(classes[:40, :50]).repeat(2, axis=-1)[..., :6])
    write_geotiff(tmp_path / "in" / "five.tif", np.full((30, 30, 5), 2000, np.uint16))
    code = predict_main([str(tmp_path / "in"), "--model", str(seg.manifest.path), "--out", str(tmp_path / "out"),
                         "--sensor", "sentinel2-l2a", "--tile", "128", "--quiet"])  # fmt: skip
    assert code == 1  # five.tif failed, the run went on
    err = capsys.readouterr().err
    assert "2 written, 1 failed" in err and "five.tif: a sentinel2-l2a file with 5 bands" in err and "peak RSS" in err
    assert (tmp_path / "out" / "six_classes.tif").is_file()  # six bands: S2's blue..nir + swir, four of them used
    with rasterio.open(tmp_path / "out" / "T33UVP_classes.tif") as out:
        assert out.crs.to_string() == UTM
        np.testing.assert_array_equal(out.read(1), classes)
    rows = (tmp_path / "out" / "cover.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[1].split(",")[0].endswith("T33UVP.tif")


@pytest.mark.slow
def test_carmask_bulk_classifies_a_folder_of_scenes_on_ray_and_resumes(seg, tmp_path, capsys):
    pytest.importorskip("ray")
    import pyarrow.dataset as pads

    from carmask.bulk import main as bulk_main

    (tmp_path / "in" / "tile2").mkdir(parents=True)
    scenes = {"a": blocky_classes(150, 200, seed=3), "tile2/b": blocky_classes(90, 70, seed=4)}
    for name, classes in scenes.items():
        write_geotiff(tmp_path / "in" / f"{name}.tif", sentinel2_dn(classes), nodata=0)
    (tmp_path / "in" / "broken.tif").write_bytes(b"II*\x00 not a scene")
    argv = [str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--model", str(seg.manifest.path),
            "--sensor", "sentinel2-l2a", "--num-cpus", "2", "--tile", "64"]  # fmt: skip
    assert bulk_main(argv) == 1  # broken.tif failed; the others were written
    for name, classes in scenes.items():
        with rasterio.open(tmp_path / "out" / f"{name}_classes.tif") as out:
            assert out.crs.to_string() == UTM
            np.testing.assert_array_equal(out.read(1), classes)
    rows = (tmp_path / "out" / "cover.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[0].startswith("patch,cloud_cover_pct,shadow_pct,valid_pixels")
    table = pads.dataset(str(tmp_path / "out" / "table"), format="parquet").to_table().to_pylist()
    assert sorted(r["id"] for r in table if r["error"]) == ["broken.tif"]
    (tmp_path / "in" / "broken.tif").unlink()
    assert bulk_main(argv) == 0  # a rerun: nothing left to do
    assert "0 written, 0 failed, 2 already done" in capsys.readouterr().err
