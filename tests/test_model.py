"""The U-Net, losses and metrics."""

import keras
import numpy as np
import pytest

from carmask.metrics import per_image_scores
from training.losses import bce, bce_dice, bce_lovasz, boundary_bce_dice, dice_loss, lovasz_loss
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
    for fn in (bce, dice_loss, bce_dice, boundary_bce_dice, lovasz_loss, bce_lovasz):
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


def test_losses_ignore_pixels_labelled_255_on_known_values():
    y = np.array([[0.0, 1.0, 255.0, 255.0]], np.float32).reshape(1, 1, 4, 1)
    p = np.array([[0.5, 0.5, 0.999, 0.001]], np.float32).reshape(1, 1, 4, 1)
    # BCE over the two valid pixels: -(log 0.5 + log 0.5) / 2 = log 2, whatever the ignored ones say.
    assert float(keras.ops.convert_to_numpy(bce(y, p))) == pytest.approx(np.log(2), rel=1e-5)
    # Dice over valid pixels: intersection 0.5, |y| 1, |p| 1 -> 1 - (2 * 0.5 + 1) / (2 + 1).
    assert float(keras.ops.convert_to_numpy(dice_loss(y, p))) == pytest.approx(1 - 2 / 3, rel=1e-5)
    flipped = p.copy()
    flipped[0, 0, 2:] = 1 - flipped[0, 0, 2:]  # change only ignored pixels: the loss must not move
    for fn in (bce, dice_loss, bce_dice, boundary_bce_dice, lovasz_loss, bce_lovasz):
        a, b = (float(keras.ops.convert_to_numpy(fn(y, q))) for q in (p, flipped))
        assert a == pytest.approx(b, abs=1e-6)


def test_boundary_loss_weighs_the_pixels_near_the_edge_on_known_values():
    from training.losses import BOUNDARY_WEIGHT, boundary_band

    y = np.zeros((1, 1, 12, 1), np.float32)
    y[0, 0, 6:] = 1  # one edge between pixels 5 and 6: the band is pixels 4..7 (within 2 px)
    band = keras.ops.convert_to_numpy(boundary_band(keras.ops.convert_to_tensor(y)))[0, 0, :, 0]
    assert band.tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0]
    # One wrong pixel (p = 0.5 where y = 0) costs log 2 / total weight: more when it is on the band.
    p = np.where(y > 0, 1.0 - 1e-7, 1e-7).astype(np.float32)
    near, far = p.copy(), p.copy()
    near[0, 0, 5], far[0, 0, 0] = 0.5, 0.5
    total = 8 + 4 * BOUNDARY_WEIGHT
    bce_part = [float(keras.ops.convert_to_numpy(boundary_bce_dice(y, q) - dice_loss(y, q))) for q in (near, far)]
    assert bce_part[0] == pytest.approx(BOUNDARY_WEIGHT * np.log(2) / total, rel=1e-3)
    assert bce_part[1] == pytest.approx(np.log(2) / total, rel=1e-3)


def test_lovasz_loss_is_one_minus_iou_on_hard_predictions_and_leaves_ignored_pixels_out():
    y = np.array([1, 1, 0, 255, 255, 0], np.float32).reshape(1, 1, 6, 1)
    p = np.array([1, 0, 1, 1, 1, 0], np.float32).reshape(1, 1, 6, 1)  # TP 1, FN 1, FP 1 where valid
    assert float(keras.ops.convert_to_numpy(lovasz_loss(y, p))) == pytest.approx(1 - 1 / 3, rel=1e-6)
    # Soft: errors sorted (FP 1.0, then the car pixel's 1 - p) weigh the IoU's steps 1/3 and 1/3.
    for guess in (0.3, 0.6):
        soft = p.copy()
        soft[0, 0, 1] = guess
        expected = (1.0 + (1.0 - guess)) / 3
        assert float(keras.ops.convert_to_numpy(lovasz_loss(y, soft))) == pytest.approx(expected, rel=1e-5)
    # Two images: the mean of their losses; an empty truth with a clean prediction costs nothing.
    y2 = np.concatenate([y, np.zeros_like(y)])
    p2 = np.concatenate([p, np.zeros_like(p)])
    assert float(keras.ops.convert_to_numpy(lovasz_loss(y2, p2))) == pytest.approx((1 - 1 / 3) / 2, rel=1e-6)


def test_metrics_leave_ignored_pixels_out_on_known_values():
    truth = np.array([[[1, 1, 0, 0, 0, 0]]], np.uint8)
    pred = np.array([[[1, 0, 1, 1, 1, 0]]], np.uint8)
    valid = np.array([[[1, 1, 1, 0, 0, 1]]], bool)  # two false positives fall where the label is ignored
    scores = per_image_scores(pred, truth, valid)
    # Counted: TP 1, FN 1, FP 1, TN 1 -> Dice 2/4, IoU 1/3, accuracy 2/4.
    assert scores["dice"][0] == pytest.approx(0.5)
    assert scores["iou"][0] == pytest.approx(1 / 3)
    assert scores["accuracy"][0] == pytest.approx(0.5)
    assert per_image_scores(pred, truth)["iou"][0] == pytest.approx(1 / 5)  # without the ignore mask


@pytest.mark.parametrize(
    "h,w,options",
    [
        (64, 64, {}),
        (96, 160, {}),
        (96, 160, {"full_res_block": "conv"}),
        (96, 160, {"full_res_block": "conv", "half_res_block": "conv"}),
        (96, 160, {"full_res_block": "conv", "upsampling": "bilinear"}),
        (96, 160, {"full_res_block": "subpixel", "upsampling": "bilinear"}),
    ],
)
def test_pretrained_unet_is_fully_convolutional(h, w, options):
    from training.model.mobile_unet import MobileUNetConfig, build_mobile_unet

    cfg = MobileUNetConfig(**options)
    model = build_mobile_unet(cfg)  # random weights: shapes only
    out = keras.ops.convert_to_numpy(model(np.zeros((2, h, w, 3), np.float32)))
    assert out.shape == (2, h, w, 1) and out.min() >= 0 and out.max() <= 1


def test_subpixel_head_predicts_each_pixel_of_a_2x2_block_on_its_own():
    """The finest level runs at stride 2, yet the mask is full resolution, not a 2x-upsampled map."""
    from training.model.mobile_unet import MobileUNetConfig, build_mobile_unet

    keras.utils.set_random_seed(0)
    model = build_mobile_unet(MobileUNetConfig(full_res_block="subpixel", stem_width=16))
    assert model.get_layer("stem_s2_conv").strides == (2, 2) and model.get_layer("mask_s2").filters == 4
    x = np.random.default_rng(0).random((1, 64, 96, 3)).astype(np.float32)
    out = keras.ops.convert_to_numpy(model(x))[0, :, :, 0]
    blocks = out.reshape(32, 2, 48, 2)
    assert np.abs(blocks[:, 0] - blocks[:, 1]).max() > 1e-4  # rows of a block differ
    assert np.abs(blocks[:, :, :, 0] - blocks[:, :, :, 1]).max() > 1e-4  # and columns
    names = {layer.name for layer in model.layers}
    assert not {"stem_conv", "stem2_conv", "dec4_up"} & names  # nothing runs at full resolution but the output


def test_depth_to_space_puts_channel_2a_plus_b_at_pixel_a_b_of_each_block():
    from training.model.mobile_unet import DepthToSpace

    x = np.arange(2 * 3 * 5 * 8, dtype=np.float32).reshape(2, 3, 5, 8)  # 4 x 2 channels
    out = keras.ops.convert_to_numpy(DepthToSpace()(x))
    assert out.shape == (2, 6, 10, 2)
    for a in (0, 1):
        for b in (0, 1):
            np.testing.assert_array_equal(out[:, a::2, b::2], x[..., (2 * a + b) * 2 : (2 * a + b + 1) * 2])


def test_bilinear_smoothing_is_bilinear_upsampling_inside_the_map():
    from training.model.mobile_unet import _bilinear_smooth

    rng = np.random.default_rng(0)
    small = rng.random((1, 8, 10, 3)).astype(np.float32)
    inputs = keras.Input((8, 10, 3))
    up = keras.layers.UpSampling2D(2, interpolation="nearest")(inputs)
    model = keras.Model(inputs, _bilinear_smooth(up, "smooth"))
    ours = keras.ops.convert_to_numpy(model(small))
    reference = keras.ops.convert_to_numpy(keras.ops.image.resize(small, (16, 20), interpolation="bilinear"))
    np.testing.assert_allclose(ours[:, 1:-1, 1:-1], reference[:, 1:-1, 1:-1], atol=1e-5)
    assert not model.get_layer("smooth").trainable


def test_pretrained_unet_rejects_bad_inputs_and_missing_weights(tmp_path):
    from training.model.mobile_unet import MobileUNetConfig, build_mobile_unet

    with pytest.raises(ValueError, match="divisible by 32"):
        build_mobile_unet(MobileUNetConfig(), input_size=(100, 96))
    with pytest.raises(ValueError, match="3-channel"):
        build_mobile_unet(MobileUNetConfig(in_channels=8))
    with pytest.raises(ValueError, match="full_res_block"):
        build_mobile_unet(MobileUNetConfig(full_res_block="dense"))
    with pytest.raises(ValueError, match="half_res_block"):
        build_mobile_unet(MobileUNetConfig(full_res_block="conv", half_res_block="dense"))
    with pytest.raises(ValueError, match="needs full_res_block='conv'"):
        build_mobile_unet(MobileUNetConfig(full_res_block="separable", half_res_block="conv"))
    with pytest.raises(ValueError, match="upsampling"):
        build_mobile_unet(MobileUNetConfig(upsampling="bicubic"))
    with pytest.raises(FileNotFoundError, match="carmask-weights fetch mobilenet_v2"):
        build_mobile_unet(MobileUNetConfig(weights=tmp_path / "missing.npz"))


def test_pretrained_unet_refuses_partial_weights_and_states_its_normalisation(tmp_path):
    from training.model.encoders.mobilenet_v2 import MEAN, STD
    from training.model.mobile_unet import MobileUNetConfig, build_mobile_unet

    first = build_mobile_unet(MobileUNetConfig())
    conv = first.get_layer("features_0_0").get_weights()[0]
    state = {"features.0.0.weight": conv.transpose(3, 2, 0, 1) * 0 + 0.25}  # torch layout (out, in, kh, kw)
    np.savez(tmp_path / "w.npz", **state)
    with pytest.raises(KeyError):  # a partial state dict is an error, not a silent half-load
        build_mobile_unet(MobileUNetConfig(weights=tmp_path / "w.npz"))
    cfg = MobileUNetConfig()
    assert cfg.normalisation.mean == MEAN and cfg.normalisation.std == STD


def test_transfer_weights_copies_what_fits_and_reports_the_new_layers():
    from training.checkpoints import transfer_weights
    from training.model.mobile_unet import MobileUNetConfig, build_mobile_unet

    small = build_mobile_unet(MobileUNetConfig(decoder_widths=(64, 48, 32, 24, 8), full_res_block="conv"))
    grown = build_mobile_unet(
        MobileUNetConfig(decoder_widths=(64, 48, 32, 16, 8), full_res_block="conv", half_res_block="conv")
    )
    copied, fresh = transfer_weights(small, grown)
    assert {"half_a_conv", "half_b_conv", "dec3_a_conv", "dec3_b_conv", "dec3_up", "dec4_up"} <= set(fresh)
    assert "features_0_0" in copied and "dec0_pw" in copied and "stem_conv" in copied
    for name in ("features_0_0", "dec1_pw", "mask"):
        for a, b in zip(small.get_layer(name).get_weights(), grown.get_layer(name).get_weights(), strict=True):
            assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="no layer"):
        transfer_weights(keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="other")]), grown)
