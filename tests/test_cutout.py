"""Cutouts on generated photos: glass alpha, background colour, contact shadow, framing, formats, edges."""

import io

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from carmask.cutout import CutoutOptions, OptionError, render
from carmask.cutout.alpha import TINTED_ALPHA, TRANSPARENT_ALPHA
from carmask.cutout.decontaminate import decontaminate
from carmask.cutout.frame import car_box
from carmask.outputs import cutout_png
from tests.fixtures import glass_car_photo


def decoded(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


@pytest.fixture(scope="module")
def photo():
    image, car, window = glass_car_photo()
    glass = (window * 255).astype(np.uint8)  # a certain glass output
    return image, car, window, glass


def inside(mask: np.ndarray, margin: int = 2) -> np.ndarray:
    """The mask's pixels at least `margin` from its edge (no edge effects)."""
    return ndimage.binary_erosion(mask > 0, iterations=margin)


def test_no_option_is_todays_cutout(photo):
    image, car, _, glass = photo
    assert render(image, car, CutoutOptions(), glass) == cutout_png(image, car)


@pytest.mark.parametrize(("windows", "expected"), [("transparent", TRANSPARENT_ALPHA), ("tinted", TINTED_ALPHA)])
def test_glass_alpha_well_below_one_and_body_opaque(photo, windows, expected):
    image, car, window, glass = photo
    out = decoded(render(image, car, CutoutOptions(windows=windows), glass))
    alpha = out[..., 3] / 255.0
    assert np.allclose(alpha[inside(window)], expected, atol=0.01)
    body = inside(car) & ~ndimage.binary_dilation(window > 0, iterations=2)
    assert (alpha[body] == 1.0).all()
    assert (alpha[car == 0] == 0).all()
    if windows == "tinted":  # darker than the photo's glass
        assert out[..., :3][inside(window)].mean() < np.asarray(image)[inside(window)].mean() * 0.6


def test_see_through_glass_needs_the_glass_output(photo):
    image, car, _, _ = photo
    with pytest.raises(ValueError, match="glass output"):
        render(image, car, CutoutOptions(windows="transparent"), None)


def test_opaque_background_colour_fills_outside_and_shows_through_glass(photo):
    image, car, window, glass = photo
    out = decoded(render(image, car, CutoutOptions(windows="transparent", bg_color="00ff00"), glass))
    assert out.shape[2] == 3  # nothing transparent left: RGB
    assert (out[car == 0] == (0, 255, 0)).all()
    seen = out[inside(window)].astype(float)
    expected = TRANSPARENT_ALPHA * np.array([30, 40, 220]) + (1 - TRANSPARENT_ALPHA) * np.array([0, 255, 0])
    assert np.abs(seen - expected).max() <= 2
    assert (np.abs(out[inside(car) & (window == 0)].astype(int) - (220, 20, 30)) <= 1).all()


def test_translucent_background_colour_keeps_its_alpha(photo):
    image, car, _, glass = photo
    out = decoded(render(image, car, CutoutOptions(bg_color="FFFFFF80"), glass))
    assert out.shape[2] == 4
    assert (out[car == 0] == (255, 255, 255, 128)).all()
    assert (out[car > 0][:, 3] == 255).all()


def test_contact_shadow_lies_below_the_car_and_nowhere_above(photo):
    image, car, _, glass = photo
    out = decoded(render(image, car, CutoutOptions(shadow="contact"), glass))
    x0, y0, x1, y1 = car_box(car)
    alpha = out[..., 3].astype(int)
    below = alpha[y1 : y1 + 3, x0 + 10 : x1 - 10]
    assert below.min() > 20  # a visible shadow just under the car
    assert (out[y1 : y1 + 3, x0 + 10 : x1 - 10, :3] < 10).all()  # and it is dark
    assert (alpha[: y0 - 1] == 0).all()  # nothing above the car
    assert (alpha[:, : x0 - 20] == 0).all() and (alpha[:, x1 + 20 :] == 0).all()
    assert (alpha[car > 0] == 255).all()  # the car stays on top


def test_crop_frames_the_car_with_its_margin(photo):
    image, car, _, glass = photo
    x0, y0, x1, y1 = car_box(car)
    out = decoded(render(image, car, CutoutOptions(crop=True, crop_margin=0.1), glass))
    w, h = x1 - x0, y1 - y0
    assert out.shape[:2] == (h + 2 * round(0.1 * h), w + 2 * round(0.1 * w))
    assert out[round(0.1 * h) + 2, round(0.1 * w) + 2, 3] == 255  # the car's corner, just inside the margin
    tight = decoded(render(image, car, CutoutOptions(crop=True, crop_margin=0.0), glass))
    assert tight.shape[:2] == (h, w) and (tight[..., 3] == 255).all()


def test_crop_with_a_shadow_leaves_room_for_it(photo):
    image, car, _, _ = photo
    x0, y0, x1, y1 = car_box(car)
    out = decoded(render(image, car, CutoutOptions(crop=True, crop_margin=0.0, shadow="contact")))
    assert out.shape[1] == x1 - x0 and out.shape[0] > y1 - y0 + 5
    assert out[y1 - y0 :, :, 3].max() > 0 and out[-1, :, 3].max() <= 2  # the shadow fades out inside the frame


def test_crop_past_the_photo_grows_the_canvas(photo):
    image, car, _, _ = photo
    edge = np.zeros_like(car)
    edge[100:200, :150] = 1  # a car cut by the left side
    out = decoded(render(image, edge, CutoutOptions(crop=True, crop_margin=0.2)))
    assert out.shape[:2] == (100 + 2 * 20, 150 + 2 * 30)
    assert (out[:, :30, 3] == 0).all()  # past the photo: transparent, not smeared


@pytest.mark.parametrize(("output", "fmt"), [("png", "PNG"), ("webp", "WEBP"), ("jpeg", "JPEG")])
def test_outputs(photo, output, fmt):
    image, car, _, glass = photo
    options = CutoutOptions(output=output, bg_color="ffffff" if output == "jpeg" else None)
    data = render(image, car, options, glass)
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == fmt and img.size == image.size
        assert img.mode == ("RGB" if output == "jpeg" else "RGBA")
    assert options.media_type == f"image/{output}"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"output": "jpeg"}, "opaque bg_color"),
        ({"output": "jpeg", "bg_color": "ffffff80"}, "opaque bg_color"),
        ({"bg_color": "white"}, "RRGGBB"),
        ({"bg_color": "fffff"}, "RRGGBB"),
        ({"crop_margin": 0.6}, "between 0 and 0.5"),
        ({"crop_margin": -0.1}, "between 0 and 0.5"),
        ({"windows": "clear"}, "opaque, transparent, tinted"),
        ({"shadow": "drop"}, "none, contact"),
        ({"output": "gif"}, "png, webp, jpeg"),
    ],
)
def test_bad_options_say_what_is_allowed(options, message):
    with pytest.raises(OptionError, match=message):
        CutoutOptions(**options)


def test_decontamination_gives_the_edge_the_cars_colour():
    car = np.zeros((120, 200), np.uint8)
    car[30:90, 40:160] = 1
    rgb = np.zeros((120, 200, 3), np.float32)
    rgb[:] = (40, 200, 60)  # grass
    rgb[car > 0] = (220, 20, 30)  # paint
    ring = (car > 0) & ~inside(car, 1)
    rgb[ring] = (130, 110, 45)  # the mask's edge: half paint, half grass
    clean = decontaminate(rgb, car)
    assert np.abs(clean[ring] - (220, 20, 30)).max() < 1
    assert (clean[car == 0] == rgb[car == 0]).all() and (clean[inside(car, 3)] == rgb[inside(car, 3)]).all()
