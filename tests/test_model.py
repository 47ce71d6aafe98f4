"""The U-Net, losses and metrics."""

import keras
import numpy as np
import pytest

from carmask.metrics import per_image_scores
from training.losses import bce, bce_dice, dice_loss
from training.model.unet import UNetConfig, build_unet, check_input_size


@pytest.mark.parametrize("h,w", [(32, 32), (64, 48), (128, 256)])
def test_output_matches_input_size(h, w):
    model = build_unet(UNetConfig(base_width=4, depth=3))
    out = model(np.zeros((2, h, w, 3), np.float32))
    assert tuple(out.shape) == (2, h, w, 1)
    prob = keras.ops.convert_to_numpy(out)
    assert prob.min() >= 0 and prob.max() <= 1


def test_fixed_size_model_and_multiclass_head():
    model = build_unet(UNetConfig(base_width=4, depth=2, in_channels=5, num_classes=3), input_size=(16, 20))
    assert tuple(model.output.shape) == (None, 16, 20, 3)
    out = keras.ops.convert_to_numpy(model(np.zeros((1, 16, 20, 5), np.float32)))
    assert np.allclose(out.sum(-1), 1.0, atol=1e-5)  # softmax over classes


@pytest.mark.parametrize("h,w", [(30, 32), (32, 50), (0, 32)])
def test_sizes_not_divisible_by_two_to_the_depth_are_refused(h, w):
    with pytest.raises(ValueError, match="divisible by 8"):
        check_input_size(h, w, depth=3)
    with pytest.raises(ValueError, match="divisible by 8"):
        build_unet(UNetConfig(base_width=4, depth=3), input_size=(h, w))


def test_width_and_depth_are_configurable():
    cfg = UNetConfig(base_width=8, depth=4)
    assert cfg.widths() == [8, 16, 32, 64, 128]
    small, large = build_unet(UNetConfig(base_width=4, depth=2)), build_unet(UNetConfig(base_width=8, depth=3))
    assert large.count_params() > 4 * small.count_params()


def test_losses_are_zero_for_perfect_and_large_for_wrong_predictions():
    y = np.zeros((2, 8, 8, 1), np.float32)
    y[:, 2:6, 2:6] = 1
    perfect, wrong = y.copy(), 1 - y
    for fn in (bce, dice_loss, bce_dice):
        good = float(keras.ops.convert_to_numpy(fn(y, perfect)))
        bad = float(keras.ops.convert_to_numpy(fn(y, wrong)))
        assert good < 0.05 and bad > 0.9


def test_metrics_per_image():
    truth = np.zeros((2, 4, 4), np.uint8)
    truth[0, :2] = 1  # 8 pixels
    pred = truth.copy()
    pred[0, 2, :] = 1  # 4 false positives
    scores = per_image_scores(pred, truth)
    assert scores["dice"][0] == pytest.approx(16 / 20)
    assert scores["iou"][0] == pytest.approx(8 / 12)
    assert scores["accuracy"][0] == pytest.approx(12 / 16)
    assert scores["dice"][1] == 1.0 and scores["iou"][1] == 1.0  # both empty: a perfect answer
