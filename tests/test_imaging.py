import io

import numpy as np
import pytest
from PIL import Image

from carmask.imaging import ImageDecodeError, ImageTooLargeError, UnsupportedImageError, open_photo
from tests.fixtures import encode, red_box_photo


def exif_rotated_jpeg(image: Image.Image, orientation: int) -> bytes:
    """Store `image` rotated so that EXIF `orientation` turns it back upright."""
    stored = {
        6: image.transpose(Image.Transpose.ROTATE_90),
        8: image.transpose(Image.Transpose.ROTATE_270),
        3: image.transpose(Image.Transpose.ROTATE_180),
    }[orientation]
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(stored, "JPEG", exif=exif, quality=95)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_is_honoured(orientation):
    image, mask = red_box_photo(120, 80, box=(0.1, 0.1, 0.4, 0.5))
    photo = open_photo(exif_rotated_jpeg(image, orientation))
    assert photo.size == (120, 80)
    red = np.asarray(photo.image)[..., 0] > 180
    assert (red == mask.astype(bool)).mean() > 0.98


def test_draft_decoding_keeps_the_full_size():
    image, _ = red_box_photo(1024, 768)
    photo = open_photo(exif_rotated_jpeg(image, 6), draft_size=(256, 256))
    assert photo.size == (1024, 768)
    assert photo.image.size[0] < 1024 and photo.image.size[0] >= 256


@pytest.mark.parametrize(
    "mode,fmt,kwargs",
    [
        ("CMYK", "JPEG", {}),
        ("RGB", "JPEG", {"progressive": True}),
        ("RGBA", "PNG", {}),
        ("L", "PNG", {}),
        ("P", "PNG", {}),
        ("I;16", "PNG", {}),
        ("RGB", "WEBP", {}),
        ("RGB", "BMP", {}),
        ("LA", "PNG", {}),
    ],
)
def test_colour_modes_decode_to_rgb(mode, fmt, kwargs):
    image, _ = red_box_photo(64, 48)
    if mode == "I;16":
        converted = Image.fromarray(np.asarray(image.convert("L")).astype(np.uint16) * 257).convert("I;16")
    else:
        converted = image.convert(mode)
    photo = open_photo(encode(converted, fmt, **kwargs))
    assert photo.image.mode == "RGB" and photo.size == (64, 48)
    if mode == "I;16":  # 16-bit grey maps to the full 8-bit range, not clipped to white
        grey = np.asarray(image.convert("L")).astype(int)
        assert np.abs(np.asarray(photo.image)[..., 0].astype(int) - grey).max() <= 1


def test_garbage_and_truncated_files_raise_clear_errors():
    with pytest.raises(UnsupportedImageError):
        open_photo(b"this is not an image")
    data = encode(red_box_photo(256, 256)[0])
    with pytest.raises(ImageDecodeError):
        open_photo(data[: len(data) // 3])


def test_pixel_limit_stops_decompression_bombs():
    big = Image.new("L", (4000, 4000))
    buf = io.BytesIO()
    big.save(buf, "PNG")
    with pytest.raises(ImageTooLargeError):
        open_photo(buf.getvalue(), max_pixels=1_000_000)


def _eps() -> bytes:
    return b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nnewpath 0 0 moveto 10 10 lineto stroke\nshowpage\n"


@pytest.mark.parametrize("fmt", ["TGA", "PCX", "SGI", "PPM", "TIFF", "GIF", "ICO", "QOI", "DDS", "IM", "EPS"])
def test_formats_outside_the_allow_list_are_refused_before_their_decoder_runs(fmt, monkeypatch):
    from PIL import EpsImagePlugin

    def never(*args, **kwargs):  # an EPS must not get near Ghostscript
        raise AssertionError("the EPS decoder ran")

    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", never)
    if fmt == "EPS":
        data = _eps()
        assert EpsImagePlugin._accept(data)  # Pillow, unrestricted, would hand it to the EPS decoder
    else:
        image = red_box_photo(32, 32)[0]
        data = encode(image.convert("RGBA") if fmt in ("ICO", "QOI") else image, fmt)
        assert Image.open(io.BytesIO(data)).format == fmt  # Pillow, unrestricted, would read it
    with pytest.raises(UnsupportedImageError, match="not an accepted image format"):
        open_photo(data)


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_phone_formats_decode_with_their_orientation(fmt):
    image, mask = red_box_photo(120, 80, box=(0.1, 0.1, 0.4, 0.5))
    stored = image.transpose(Image.Transpose.ROTATE_90)  # as a phone held sideways stores it
    exif = Image.Exif()
    exif[0x0112] = 6
    photo = open_photo(encode(stored, fmt, exif=exif.tobytes(), quality=95))
    assert photo.size == (120, 80)
    red = np.asarray(photo.image)[..., 0] > 150
    assert (red == mask.astype(bool)).mean() > 0.95


@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 127 / 255, 0.999, 1.0, -0.1])
def test_threshold_u8_is_prob_greater_than_threshold(threshold):
    from carmask.preprocess import threshold_u8

    prob = np.arange(256, dtype=np.uint8).reshape(16, 16)
    mask = threshold_u8(prob, threshold)
    assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 1}
    assert np.array_equal(mask, (prob.astype(np.float64) > threshold * 255.0).astype(np.uint8))


@pytest.mark.parametrize("size", [(1918, 1280), (64, 64), (40, 30), (200, 20), (64, 48)])
def test_upsample_probabilities_is_bilinear_like_pillows(size):
    from PIL import Image

    from carmask.preprocess import upsample_probabilities

    rng = np.random.default_rng(0)
    prob = rng.random((48, 64)).astype(np.float32)
    prob[10:30, 20:50] = 1.0  # a car-like block: its edges are where interpolation matters
    out = upsample_probabilities(prob, size)
    reference = Image.fromarray((prob * 255.0 + 0.5).astype(np.uint8), "L").resize(size, Image.Resampling.BILINEAR)
    assert out.dtype == np.uint8 and out.shape == (size[1], size[0])
    assert np.abs(out.astype(int) - np.asarray(reference).astype(int)).max() <= 1
