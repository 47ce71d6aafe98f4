"""Multi-band patches: the reader (TIFF layouts, .npy, refusals), band selection, sizes, fill, cover."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import tifffile

from carmask.clouds.cover import FILL, class_percentages, class_png, class_rles, group_percentages, scene_summary
from carmask.clouds.patches import (
    PatchError,
    PatchTooLargeError,
    UnsupportedPatchError,
    check_size,
    read_patch,
    select_bands,
    valid_pixels,
)
from carmask.clouds.segmenter import PatchSegmenter, pad_to_multiple
from carmask.clouds.sensors import BandInput
from carmask.metrics import class_iou, confusion_matrix, merged_iou
from carmask.rle import decode
from tests.fixtures import CLOUD_BANDS, CLOUD_CLASSES, cloud_patch, make_cloud_model


def tiff_bytes(array: np.ndarray, **kwargs) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, array, **kwargs)
    return buf.getvalue()


def npy_bytes(array: np.ndarray, **kwargs) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, **kwargs)
    return buf.getvalue()


@pytest.fixture(scope="module")
def cloud_model(tmp_path_factory):
    return make_cloud_model(tmp_path_factory.mktemp("cloud-model"))


def test_tiff_layouts_read_to_height_width_bands():
    patch = np.random.default_rng(0).random((20, 30, 5), dtype=np.float32)
    interleaved = tiff_bytes(patch, photometric="minisblack", planarconfig="contig")
    planar = tiff_bytes(np.moveaxis(patch, -1, 0), photometric="minisblack", planarconfig="separate")
    deflated = tiff_bytes(patch, photometric="minisblack", planarconfig="contig", compression="zlib")
    page_per_band = tiff_bytes(np.moveaxis(patch, -1, 0), photometric="minisblack")  # 5 pages of 20x30
    for data in (interleaved, planar, deflated, page_per_band):
        np.testing.assert_array_equal(read_patch(data), patch)


def test_npy_and_paths_read(tmp_path):
    patch = np.random.default_rng(1).random((8, 9, 3)).astype(np.float64)
    path = tmp_path / "p.npy"
    path.write_bytes(npy_bytes(patch))
    out = read_patch(path)
    assert out.dtype == np.float32 and out.shape == (8, 9, 3)
    np.testing.assert_allclose(out, patch, rtol=1e-6)
    assert read_patch(npy_bytes(patch[..., 0])).shape == (8, 9, 1)  # one band


@pytest.mark.parametrize(
    ("data", "error", "words"),
    [
        (b"\xff\xd8\xff\xe0 a jpeg", UnsupportedPatchError, "not a multi-band patch"),
        (b"II*\x00" + b"\x00" * 20, PatchError, "corrupt or unreadable TIFF"),
        (tiff_bytes(np.zeros((8, 8, 4), np.uint16), planarconfig="contig"), PatchError, "uint16"),
        (npy_bytes(np.zeros((2, 8, 8, 4), np.float32)), PatchError, "(height, width, bands)"),
        (npy_bytes(np.array([{"a": 1}], dtype=object), allow_pickle=True), PatchError, "unreadable .npy"),
    ],
)
def test_bad_patches_are_refused_with_what_was_wrong(data, error, words):
    with pytest.raises(error, match=None) as info:
        read_patch(data)
    assert words in str(info.value)


def test_too_many_values_are_refused_before_decoding():
    data = tiff_bytes(np.zeros((64, 64, 8), np.float32), planarconfig="contig", compression="zlib")
    with pytest.raises(PatchError, match="over the limit"):
        read_patch(data, max_values=64 * 64 * 4)


def test_bands_are_picked_by_name_and_mismatches_say_what_was_expected():
    patch = np.stack([np.full((2, 2), i, np.float32) for i in range(8)], axis=-1)
    have = ["blue", "green", "red", "nir", "swir1", "swir2", "cirrus", "tir"]
    picked = select_bands(patch, ["nir", "red", "green", "blue"], have)
    assert picked[0, 0].tolist() == [3, 2, 1, 0]
    with pytest.raises(PatchError, match="has 8 bands; expected 4: blue, green, red, nir"):
        select_bands(patch, CLOUD_BANDS)
    with pytest.raises(PatchError, match="lacks nir"):
        select_bands(patch[..., :3], CLOUD_BANDS, ["blue", "green", "red"])
    with pytest.raises(PatchError, match="repeat"):
        select_bands(patch[..., :2], ["blue"], ["blue", "blue"])
    assert BandInput.parse(bands=" Blue, NIR ,").bands == ("blue", "nir")


def test_sizes_and_fill():
    check_size(np.zeros((32, 64, 4)), 16, 64)
    with pytest.raises(PatchError, match="is 8x32 pixels; this model takes sides of 16 to 64"):
        check_size(np.zeros((32, 8, 4)), 16, 64)
    patch = np.ones((2, 3, 2), np.float32)
    patch[0, 0] = 0.0
    patch[1, 2, 1] = np.nan
    assert valid_pixels(patch, 0.0).tolist() == [[False, True, True], [True, True, False]]
    assert valid_pixels(patch, None).tolist() == [[True, True, True], [True, True, False]]


def test_cover_counts_only_valid_pixels():
    class_map = np.array([[FILL, FILL, 0, 0], [1, 2, 2, 3]], np.uint8)
    percent = class_percentages(class_map, CLOUD_CLASSES)
    assert percent == {"clear": 100 / 3, "thin_cloud": 100 / 6, "thick_cloud": 100 / 3, "shadow": 100 / 6}
    groups = group_percentages(percent, {"cloud_cover": ["thin_cloud", "thick_cloud"], "shadow": ["shadow"]})
    assert groups["cloud_cover_pct"] == pytest.approx(50.0) and groups["shadow_pct"] == pytest.approx(100 / 6)
    summary = scene_summary(class_map, CLOUD_CLASSES, {"cloud_cover": ["thin_cloud", "thick_cloud"]})
    assert (summary["valid_pixels"], summary["fill_pixels"], summary["cloud_cover_pct"]) == (6, 2, 50.0)
    assert scene_summary(np.full((2, 2), FILL, np.uint8), CLOUD_CLASSES, {"c": ["clear"]})["c_pct"] == 0.0
    rles = class_rles(class_map, CLOUD_CLASSES)
    assert (decode(rles["thick_cloud"], 2, 4) == (class_map == 2)).all()


def test_class_png_holds_the_class_indices():
    from PIL import Image

    class_map = np.array([[0, 1], [3, FILL]], np.uint8)
    image = Image.open(io.BytesIO(class_png(class_map, [[0, 0, 0], [9, 9, 9], [200, 0, 0], [1, 2, 3]])))
    assert image.mode == "P"
    np.testing.assert_array_equal(np.asarray(image), class_map)
    assert image.getpalette()[9:12] == [1, 2, 3]


def test_confusion_matrix_and_class_iou_on_known_values():
    truth = np.array([0, 0, 1, 1, 2, 3, 255])
    pred = np.array([0, 1, 1, 1, 1, 3, 0])
    conf = confusion_matrix(pred, truth, 4)  # 255 (fill) left out
    assert conf.tolist() == [[1, 1, 0, 0], [0, 2, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1]]
    iou = class_iou(conf)
    assert iou[0] == pytest.approx(0.5) and iou[1] == pytest.approx(0.5) and iou[2] == 0 and iou[3] == 1
    assert merged_iou(conf, [1, 2]) == pytest.approx(3 / 4)  # thin + thick as one: 3 agree of 4 in the union
    assert np.isnan(class_iou(confusion_matrix(np.zeros(3), np.zeros(3), 2))[1])
    valid = np.array([1, 1, 1, 1, 0, 0, 0], bool)
    assert confusion_matrix(pred, truth, 4, valid).sum() == 4


def test_patch_segmenter_classifies_pads_and_marks_fill(cloud_model):
    seg = PatchSegmenter(cloud_model, providers=["CPUExecutionProvider"])
    patch, expected = cloud_patch(50, 70, fill_rows=3)  # 50x70: padded to 64x80 inside, cropped back
    result = seg.classify(patch)
    assert result.class_map.shape == (50, 70) and result.probabilities.shape == (50, 70, 4)
    np.testing.assert_array_equal(result.class_map, expected)
    reversed_bands = tiff_bytes(patch[..., ::-1].copy(), planarconfig="contig")
    from_file = seg.segment(reversed_bands, ["nir", "red", "green", "blue"])
    np.testing.assert_array_equal(from_file.class_map, expected)
    with pytest.raises(PatchError, match="this model takes sides of 16 to 256"):
        seg.read(tiff_bytes(np.ones((8, 200, 4), np.float32), planarconfig="contig"))
    with pytest.raises(PatchTooLargeError, match=r"largest side of 256; whole scenes .*carmask-predict"):
        seg.read(tiff_bytes(np.ones((20, 300, 4), np.float32), planarconfig="contig"))


def test_pad_to_multiple_mirrors_and_keeps_small_sides():
    x = np.arange(2 * 3 * 5, dtype=np.float32).reshape(1, 2, 3, 5)[..., :1]
    padded = pad_to_multiple(x, 4)
    assert padded.shape == (1, 4, 4, 1)
    np.testing.assert_array_equal(padded[:, :2, :3], x)


def test_predict_writes_class_maps_and_cover_and_reports_bad_patches(cloud_model, tmp_path):
    from PIL import Image

    from carmask.predict import main as predict_main

    patch, classes = cloud_patch()
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "good.npy").write_bytes(npy_bytes(patch))
    (tmp_path / "in" / "eight.tif").write_bytes(tiff_bytes(np.zeros((64, 64, 8), np.float32), planarconfig="contig"))
    (tmp_path / "in" / "photo.jpg").write_bytes(b"not scanned: not a patch suffix")
    out = tmp_path / "out"
    code = predict_main([str(tmp_path / "in"), "--model", str(cloud_model), "--out", str(out), "--quiet"])
    assert code == 1  # one patch failed; the run went on
    np.testing.assert_array_equal(np.asarray(Image.open(out / "good_classes.png")), classes)
    rows = (out / "cover.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].split(",")[0].endswith("good.npy")
    assert not (out / "eight_classes.png").exists()
    code = predict_main([str(tmp_path / "in" / "good.npy"), "--model", str(cloud_model), "--out", str(out),
                         "--format", "rle", "--quiet"])  # fmt: skip
    assert code == 0 and json.loads((out / "good_classes.json").read_text())["valid_pixels"] == 64 * 64
