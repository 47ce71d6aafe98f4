"""Reader, split, cache and augmentation on generated Carvana-layout folders."""

import numpy as np
import pytest
from PIL import Image

from carmask.preprocess import Fit
from tests.conftest import REAL_DATA, needs_real_data
from tests.fixtures import make_carvana, red_box_photo
from training.data.augment import PRESETS, AugmentConfig, augment, preset
from training.data.cache import load_arrays
from training.data.reader import DatasetError, load_mask, read_carvana
from training.data.sources.base import IGNORE
from training.data.split import read_split, split_by_car, write_split


def test_reader_lists_samples_with_gif_masks(tmp_path):
    samples = read_carvana(make_carvana(tmp_path, cars=3, views=2))
    assert len(samples) == 6
    assert {s.car for s in samples} == {f"{i:012x}" for i in range(3)}
    assert all(s.mask_path is not None for s in samples)


def test_reader_falls_back_to_rle_csv_when_gifs_are_absent(tmp_path):
    root = make_carvana(tmp_path, cars=2, views=2, rle_only=True)
    samples = read_carvana(root)
    assert all(s.mask_path is None and s.rle for s in samples)
    image = np.asarray(Image.open(samples[0].image_path))
    red = (image[..., 0] > 150) & (image[..., 1] < 100)
    assert (load_mask(samples[0]).astype(bool) == red).mean() > 0.97


def test_reader_names_every_missing_mask_at_once(tmp_path):
    root = make_carvana(tmp_path, cars=2, views=2)
    (root / "train_masks.csv").unlink()
    for gif in sorted((root / "train_masks").iterdir())[:2]:
        gif.unlink()
    with pytest.raises(DatasetError) as err:
        read_carvana(root)
    assert "2 problem(s)" in str(err.value) and "000000000000_01.jpg: no mask" in str(err.value)


def test_reader_rejects_mask_of_another_size_and_unreadable_files(tmp_path):
    root = make_carvana(tmp_path, cars=2, views=2)
    Image.new("P", (10, 10)).save(root / "train_masks" / "000000000000_01_mask.gif")
    (root / "train" / "000000000001_02.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DatasetError) as err:
        read_carvana(root)
    text = str(err.value)
    assert "000000000000_01.jpg: mask 000000000000_01_mask.gif is 10x10, image is 64x48" in text
    assert "000000000001_02.jpg: unreadable image" in text


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="no 'train/' folder"):
        read_carvana(tmp_path)


def test_split_keeps_cars_whole_and_is_reproducible(tmp_path):
    samples = read_carvana(make_carvana(tmp_path, cars=10, views=3))
    train, val = split_by_car(samples, 0.3, seed=7)
    assert {s.car for s in train}.isdisjoint({s.car for s in val})
    assert len(val) == 9 and len(train) == 21
    again = split_by_car(samples, 0.3, seed=7)
    assert [s.name for s in again[1]] == [s.name for s in val]
    other = split_by_car(samples, 0.3, seed=8)
    assert {s.car for s in other[1]} != {s.car for s in val}
    write_split(tmp_path / "split.json", train, val, 7)
    assert [s.name for s in read_split(tmp_path / "split.json", samples)[1]] == [s.name for s in val]


def test_cache_decodes_once_and_reuses(tmp_path):
    samples = read_carvana(make_carvana(tmp_path / "data", cars=2, views=2))
    images, masks = load_arrays(samples, (32, 32), tmp_path / "cache", workers=1)
    assert images.shape == (4, 32, 32, 3) and images.dtype == np.uint8
    assert masks.shape == (4, 32, 32) and set(np.unique(masks)) <= {0, 1}
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2
    again, _ = load_arrays(samples, (32, 32), tmp_path / "cache", workers=1)
    assert np.array_equal(images, again)


def test_a_letterboxing_fit_pads_photos_and_ignores_the_padding_in_labels(tmp_path):
    samples = read_carvana(make_carvana(tmp_path / "data", cars=1, views=2))
    fit = Fit((32, 32), (0.5, 1.0), fill=(7, 8, 9))  # the 3:2 photos are wider than 1:1: padded above and below
    _, y, _, h = fit.box(Image.open(samples[0].image_path).size)
    assert h < 32
    images, masks = load_arrays(samples, fit, tmp_path / "cache", workers=1)
    assert (images[:, :y] == (7, 8, 9)).all() and (masks[:, :y] == IGNORE).all()
    assert set(np.unique(masks[:, y : y + h])) <= {0, 1}
    squashed, _ = load_arrays(samples, (32, 32), tmp_path / "cache", workers=1)
    assert not np.array_equal(images, squashed)  # its own cache entry


@pytest.mark.parametrize("name", ["original", "mild"])
def test_augmented_mask_still_covers_the_augmented_car(name):
    image, mask = red_box_photo(128, 128, box=(0.3, 0.3, 0.7, 0.65))
    image = np.asarray(image)
    rng = np.random.default_rng(3)
    for _ in range(10):
        aug_image, aug_mask = augment(rng, PRESETS[name], image, mask)
        assert aug_image.shape == image.shape and set(np.unique(aug_mask)) <= {0, 1}
        red = (aug_image[..., 0] > 185) & (aug_image[..., 1] < 85)  # the car as the photo now shows it
        inter = (red & (aug_mask > 0)).sum()
        iou = inter / ((red | (aug_mask > 0)).sum())
        assert iou > 0.95, iou  # edges differ only by interpolation


def test_augmentation_actually_moves_things_and_none_is_identity():
    image, mask = red_box_photo(64, 64)
    image = np.asarray(image)
    moved = [augment(np.random.default_rng(s), PRESETS["original"], image, mask)[1] for s in range(5)]
    assert any(not np.array_equal(m, mask) for m in moved)
    same_image, same_mask = augment(np.random.default_rng(0), PRESETS["none"], image, mask)
    assert np.array_equal(same_image, image) and np.array_equal(same_mask, mask)


def test_preset_overrides_and_unknown_preset():
    assert preset("original", rotation=10).rotation == 10
    assert preset("original", rotation=None).rotation == 90
    assert AugmentConfig().is_identity
    with pytest.raises(ValueError, match="unknown augmentation preset"):
        preset("heavy")


@needs_real_data
def test_real_carvana_folder_reads_and_splits_by_car():
    samples = read_carvana(REAL_DATA)
    assert len(samples) == 1136 and len({s.car for s in samples}) == 71
    train, val = split_by_car(samples, 0.2, seed=42)
    assert len({s.car for s in val}) == 14 and {s.car for s in train}.isdisjoint({s.car for s in val})
    mask = load_mask(samples[0])
    assert mask.shape == (1280, 1918) and 0.1 < mask.mean() < 0.5
