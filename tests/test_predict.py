"""Offline prediction: masks at the photo's size, EXIF rotation, bad files skipped."""

import numpy as np
from PIL import Image

from carmask.inference import Segmenter
from carmask.predict import main, predict_paths
from tests.fixtures import red_box_photo
from tests.test_imaging import exif_rotated_jpeg


def test_predict_writes_masks_of_the_right_size_and_survives_a_corrupt_file(tmp_path, red_model):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, size in enumerate([(300, 200), (160, 240)]):
        red_box_photo(*size)[0].save(photos / f"car{i}.jpg", quality=95)
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    out = tmp_path / "out"
    code = main([str(photos), "--out", str(out), "--model", str(red_model), "--quiet"])
    assert code == 1  # something failed, and the exit status says so
    for i, size in enumerate([(300, 200), (160, 240)]):
        mask = np.asarray(Image.open(out / f"car{i}_mask.png"))
        assert mask.shape == size[::-1] and set(np.unique(mask)) <= {0, 255}
        truth = red_box_photo(*size)[1]
        assert ((mask > 0) == truth.astype(bool)).mean() > 0.97
    assert not (out / "broken_mask.png").exists()


def test_predict_honours_exif_orientation(tmp_path, red_model):
    image, truth = red_box_photo(240, 160, box=(0.1, 0.1, 0.45, 0.6))
    path = tmp_path / "rotated.jpg"
    path.write_bytes(exif_rotated_jpeg(image, 6))
    stats = predict_paths(Segmenter(red_model), [path], progress=False)
    mask = np.asarray(Image.open(stats.written[0]))
    assert mask.shape == (160, 240)
    assert ((mask > 0) == truth.astype(bool)).mean() > 0.97


def test_cutout_and_overlay_formats(tmp_path, red_model):
    image, truth = red_box_photo(200, 100)
    image.save(tmp_path / "car.png")
    assert main([str(tmp_path / "car.png"), "--format", "cutout", "--model", str(red_model), "--quiet"]) == 0
    cutout = Image.open(tmp_path / "car_cutout.png")
    assert cutout.mode == "RGBA" and cutout.size == (200, 100)
    alpha = np.asarray(cutout)[..., 3]
    assert ((alpha > 0) == truth.astype(bool)).mean() > 0.97
    assert main([str(tmp_path / "car.png"), "--format", "overlay", "--model", str(red_model), "--quiet"]) == 0
    assert Image.open(tmp_path / "car_overlay.jpg").size == (200, 100)


def test_cutout_options_and_windows(tmp_path):
    from tests.fixtures import glass_car_photo, make_glass_model

    model = make_glass_model(tmp_path / "model")
    image, car, window = glass_car_photo(240, 160)
    image.save(tmp_path / "car.png")
    args = [str(tmp_path / "car.png"), "--model", str(model), "--quiet"]
    assert main([*args, "--format", "windows"]) == 0
    glass = np.asarray(Image.open(tmp_path / "car_windows.png")) > 0
    assert (glass & (window > 0)).sum() / (glass | (window > 0)).sum() > 0.85
    cut = ["--format", "cutout", "--windows", "transparent", "--bg-color", "ffffff", "--output", "jpeg", "--crop"]
    assert main([*args, *cut]) == 0
    out = Image.open(tmp_path / "car_cutout.jpg")
    rows, cols = np.flatnonzero(car.any(1)), np.flatnonzero(car.any(0))
    assert out.format == "JPEG" and out.size == (round(1.1 * len(cols)), round(1.1 * len(rows)))


def test_cutout_options_are_checked_before_any_work(tmp_path, red_model, capsys):
    import pytest

    red_box_photo(120, 80)[0].save(tmp_path / "car.png")
    args = [str(tmp_path / "car.png"), "--model", str(red_model), "--quiet", "--format", "cutout"]
    for bad, words in ((["--output", "jpeg"], "opaque bg_color"), (["--windows", "tinted"], "marks no glass"),
                       (["--crop-margin", "0.7"], "between 0 and 0.5")):  # fmt: skip
        with pytest.raises(SystemExit) as stop:
            main([*args, *bad])
        assert stop.value.code == 2 and words in capsys.readouterr().err
    assert not list(tmp_path.glob("car_cutout*"))
