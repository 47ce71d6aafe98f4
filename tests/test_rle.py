import numpy as np
import pytest

from carmask import rle
from tests.conftest import REAL_DATA, needs_real_data


def test_known_encoding_is_row_major_and_one_indexed():
    mask = np.array([[0, 1, 1], [1, 0, 0]], np.uint8)
    assert rle.encode(mask) == "2 3"  # pixels 2,3,4 (1-indexed, row-major) are set
    assert rle.encode(np.zeros((2, 2))) == ""
    assert rle.encode(np.ones((2, 2))) == "1 4"


def test_round_trip_random_masks():
    rng = np.random.default_rng(1)
    for shape in [(1, 1), (7, 5), (64, 96)]:
        mask = (rng.random(shape) > 0.6).astype(np.uint8)
        assert np.array_equal(rle.decode(rle.encode(mask), *shape), mask)


@pytest.mark.parametrize("bad", ["1", "a 2", "0 3", "5 10", "3 2 1 2", "1 0"])
def test_malformed_rle_is_rejected(bad):
    with pytest.raises(rle.RLEError):
        rle.decode(bad, 3, 3)


@needs_real_data
def test_matches_kaggle_train_masks():
    from PIL import Image

    name, text = (REAL_DATA / "train_masks.csv").read_text().splitlines()[1].split(",")
    gif = REAL_DATA / "train_masks" / name.replace(".jpg", "_mask.gif")
    mask = (np.asarray(Image.open(gif).convert("L")) > 0).astype(np.uint8)
    assert rle.encode(mask) == text
    assert np.array_equal(rle.decode(text, *mask.shape), mask)
