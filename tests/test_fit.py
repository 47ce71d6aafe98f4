"""Fitting photos of any aspect into a fixed model input: squash within the manifest's range, letterbox outside."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from carmask.inference import Segmenter
from carmask.manifest import InputSpec, ManifestError, load_manifest
from carmask.preprocess import Fit
from tests.fixtures import make_red_model

LETTERBOX = Fit((320, 320), (1.0, 1.8), fill=(124, 116, 104))


@pytest.mark.parametrize(
    ("photo", "box"),
    [
        ((1918, 1280), (0, 0, 320, 320)),  # Carvana's 3:2: squashed, as trained
        ((1000, 1000), (0, 0, 320, 320)),  # the range's ends are inside it
        ((1800, 1000), (0, 0, 320, 320)),
        ((3024, 4032), (40, 0, 240, 320)),  # 3:4 portrait: padded to 1:1 at the sides
        ((1080, 1920), (70, 0, 180, 320)),  # 9:16
        ((2400, 1000), (0, 40, 320, 240)),  # 2.4:1 panorama: padded to 1.8:1 above and below
        ((20, 5000), (159, 0, 1, 320)),  # a sliver still gets a pixel
    ],
)
def test_box_squashes_inside_the_range_and_letterboxes_outside(photo, box):
    assert LETTERBOX.box(photo) == box
    assert Fit((320, 320)).box(photo) == (0, 0, 320, 320)  # no range: every photo squashed


def test_letterbox_pads_with_the_fill_and_content_crops_it_off():
    photo = Image.new("RGB", (300, 400), (255, 0, 0))
    pixels = LETTERBOX.pixels(photo)
    assert pixels.shape == (320, 320, 3)
    assert (pixels[:, :40] == (124, 116, 104)).all() and (pixels[:, 280:] == (124, 116, 104)).all()
    assert (pixels[:, 40:280] == (255, 0, 0)).all()
    assert (LETTERBOX.content(pixels, photo.size) == (255, 0, 0)).all()
    assert LETTERBOX.content(pixels, photo.size).shape == (320, 240, 3)


def test_manifest_fill_is_the_colour_its_normalisation_maps_to_zero():
    spec = InputSpec(
        height=320, width=320, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), aspect_range=[1, 1.8]
    )
    fill = np.array(spec.fit.fill, np.uint8)
    assert np.abs(spec.normalisation.apply(fill)).max() < 0.01  # within half a level of zero
    assert spec.fit.aspect_range == (1, 1.8)
    assert InputSpec().fit == Fit((256, 256))  # manifests without a range squash, as before


@pytest.mark.parametrize("bad", [[1.8, 1.0], [0, 1], [1.0], "wide"])
def test_a_bad_aspect_range_is_a_clear_manifest_error(tmp_path, bad):
    path = make_red_model(tmp_path)
    data = json.loads(path.read_text())
    data["input"]["aspect_range"] = bad
    path.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="malformed manifest"):
        load_manifest(path)


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG")  # lossless, so the red model's answer is exact
    return buf.getvalue()


@pytest.mark.parametrize("size", [(90, 160), (200, 90), (200, 40)])
def test_letterboxed_masks_line_up_with_the_photo(tmp_path, size):
    """A red block in a portrait or panorama comes back where it is, at the photo's size."""
    photo = np.zeros((size[1], size[0], 3), np.uint8)
    w, h = size
    photo[h // 4 : h // 2, w // 3 : 2 * w // 3] = (255, 0, 0)
    truth = photo[..., 0] > 0
    seg = Segmenter(make_red_model(tmp_path, size=128, aspect_range=[1.0, 1.8]), providers=["CPUExecutionProvider"])
    assert seg.fit.box(size) != (0, 0, 128, 128)  # letterboxed
    mask = seg.predict_masks([_png(Image.fromarray(photo))])[0].astype(bool)
    assert mask.shape == truth.shape
    iou = (mask & truth).sum() / (mask | truth).sum()
    assert iou > 0.9
    assert not mask[:, : w // 3 - 3].any() and not mask[: h // 4 - 3].any()  # nothing leaks from the padding


def test_evaluation_letterboxes_as_the_manifest_says_at_the_size_asked_for(tmp_path):
    """carmask-evaluate --image-size scores an exported model at another input size, still letterboxed."""
    from tests.fixtures import make_carvana
    from training.data.reader import read_carvana
    from training.data.sources.base import IGNORE
    from training.evaluate import EvalConfig, evaluate

    samples = read_carvana(make_carvana(tmp_path / "data", cars=1, views=2, size=(64, 48)))
    seg = Segmenter(make_red_model(tmp_path, size=64, aspect_range=[0.5, 1.0]), providers=["CPUExecutionProvider"])
    _, extras = evaluate(seg, samples, EvalConfig(image_size=32), tmp_path / "cache")
    assert extras["images"].shape[1:3] == (32, 32)  # the size asked for, not the manifest's 64
    assert (extras["masks"][:, :4] == IGNORE).all()  # 4:3 photos padded above and below (box height 24)
