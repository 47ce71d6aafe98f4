"""The cloud task's training side: labels, the folder reader, augmentation, losses, scores, band order, and a
tiny end-to-end run (train, export, serve-side segmenter, evaluate, predict) on TIFFs the test writes."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
import rasterio
import tifffile

from training.clouds.augment import PatchAugment, augment_patch
from training.clouds.bands import FILE_BANDS, band_order_evidence, parse_bands
from training.clouds.config import CloudTrainConfig
from training.clouds.data import IGNORE, CloudDataError, biome_folds, labels_from_mask, load_patch, read_l8_biome
from training.clouds.evaluate import score
from training.losses import WeightedCEDice, categorical_ce, categorical_ce_dice, get_loss, multiclass_dice_loss

CLOUD_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "clouds" / "l8-biome"


def write_folder(root: Path, names: dict[str, list[str]], size: int = 32, seed: int = 0) -> None:
    """An L8 Biome-like folder: bright (cloud) top half, dark-NIR shadow strip, clear rest; 8 bands."""
    rng = np.random.default_rng(seed)
    for split, stems in names.items():
        (root / split / "images").mkdir(parents=True)
        (root / split / "masks").mkdir(parents=True)
        for stem in stems:
            mask = np.full((size, size), 128, np.uint8)
            cut = int(rng.integers(size // 4, 3 * size // 4))
            mask[:cut] = 255
            mask[cut : cut + 4] = 64
            image = np.zeros((size, size, 8), np.float32)
            image[..., :7] = 0.08 + 0.02 * rng.random((size, size, 7))
            image[..., 3] = 0.3
            image[mask == 255, :6] = 0.7
            image[mask == 64, 3] = 0.05
            image[..., 7] = np.where(mask == 255, 250.0, 290.0)
            tifffile.imwrite(root / split / "images" / f"{stem}.tif", image, planarconfig="contig")
            tifffile.imwrite(root / split / "masks" / f"{stem}.tif", mask)


def test_labels_map_to_classes_and_fill_is_ignored():
    mask = np.array([[0, 64, 128, 192, 255]], np.uint8)
    assert labels_from_mask(mask).tolist() == [[IGNORE, 3, 0, 1, 2]]
    with pytest.raises(CloudDataError, match=r"values \[7\]"):
        labels_from_mask(np.array([[7, 128]], np.uint8))


def test_reader_finds_patches_by_scene_and_says_what_is_missing(tmp_path):
    with pytest.raises(CloudDataError, match="not found"):
        read_l8_biome(tmp_path / "nowhere")
    write_folder(tmp_path, {"train": ["Water_01_0001", "Forest_02_0002"], "test": ["Water_03_0003"]})
    patches = read_l8_biome(tmp_path)
    assert [(p.split, p.biome, p.scene) for p in patches] == [
        ("train", "Forest", "Forest_02"),
        ("train", "Water", "Water_01"),
        ("test", "Water", "Water_03"),
    ]
    assert {b: len(f) for b, f in biome_folds(patches).items()} == {"Forest": 1, "Water": 2}
    assert {b: len(f) for b, f in biome_folds(patches, 1).items()} == {"Forest+Water": 3}
    image, labels = load_patch(patches[0], ("nir", "blue"))
    assert image.shape == (32, 32, 2) and labels.dtype == np.uint8
    (tmp_path / "train" / "masks" / "Water_01_0001.tif").unlink()
    with pytest.raises(CloudDataError, match="no mask"):
        read_l8_biome(tmp_path)
    (tmp_path / "val" / "images").mkdir(parents=True)
    tifffile.imwrite(tmp_path / "val" / "images" / "odd.tif", np.zeros((4, 4, 8), np.float32))
    with pytest.raises(CloudDataError, match="<Biome>_<nn>_<id>"):
        read_l8_biome(tmp_path, ("val",))


def test_band_sets_by_count_or_name():
    assert parse_bands("4") == ("blue", "green", "red", "nir")
    assert parse_bands("8") == FILE_BANDS
    assert parse_bands("NIR, swir1") == ("nir", "swir1")
    with pytest.raises(ValueError, match="unknown band"):
        parse_bands("blue,uv")


def test_augmentation_keeps_image_and_labels_aligned():
    rng = np.random.default_rng(3)
    image = rng.random((48, 40, 8)).astype(np.float32)
    labels = (image[..., 0] > 0.5).astype(np.uint8)
    cfg = PatchAugment(crop=24, gain=0.0, offset=0.0, kelvin_offset=0.0)
    for _ in range(20):
        out, lab = augment_patch(image, labels, FILE_BANDS, cfg, rng)
        assert out.shape == (24, 24, 8) and lab.shape == (24, 24)
        np.testing.assert_array_equal(lab, (out[..., 0] > 0.5).astype(np.uint8))
    jitter = PatchAugment(crop=0, dihedral=False, gain=0.1, offset=0.0, kelvin_offset=5.0)
    out, _ = augment_patch(image, labels, FILE_BANDS, jitter, rng)
    ratio = out[..., :7] / image[..., :7]
    assert np.allclose(ratio, ratio[0, 0]) and np.all(np.abs(ratio[0, 0] - 1) <= 0.1)  # one gain per band
    assert np.allclose(out[..., 7] - image[..., 7], (out[..., 7] - image[..., 7])[0, 0])  # one offset


def test_zoomed_crops_and_haze_keep_alignment_and_fall_with_wavelength():
    rng = np.random.default_rng(4)
    image = np.zeros((96, 96, 4), np.float32)
    image[::8] = 0.5  # stripes every 8 rows
    labels = (image[..., 0] > 0.25).astype(np.uint8)
    cfg = PatchAugment(crop=32, gain=0.0, offset=0.0, zoom=1.0)
    stripes = set()
    for _ in range(30):
        out, lab = augment_patch(image, labels, FILE_BANDS[:4], cfg, rng)
        assert out.shape == (32, 32, 4)
        np.testing.assert_array_equal(lab, (out[..., 0] > 0.25).astype(np.uint8))
        across = lab.any(axis=1) if not lab.any(axis=1).all() else lab.any(axis=0)  # rows or columns (rotations)
        stripes.add(int(np.count_nonzero(np.diff(across.astype(np.int8)) == 1)))
    assert len(stripes) > 2  # 32 px crops holding 2 to 8 of the 8-px stripes: several scales
    hazy = PatchAugment(crop=0, dihedral=False, gain=0.0, offset=0.0, haze=(0.05, 0.05))
    out, _ = augment_patch(np.zeros((8, 8, 4), np.float32), np.zeros((8, 8), np.uint8), FILE_BANDS[:4], hazy, rng)
    added = out[0, 0]
    assert added[0] == pytest.approx(0.05) and added[0] > added[1] > added[2] > added[3] > 0  # blue most, NIR least


def test_synthetic_clouds_are_bright_where_labelled_and_shadows_dark():
    from training.clouds.synthetic import SHADOW, THICK, THIN, SyntheticClouds, draw_clouds

    rng = np.random.default_rng(5)
    ground = np.full((128, 128, 4), 0.05, np.float32)
    labels = np.zeros((128, 128), np.uint8)
    labels[:10] = 255  # fill stays fill
    seen = set()
    for _ in range(10):
        cfg = SyntheticClouds(probability=1.0, shadow_probability=1.0)
        out, lab = draw_clouds(ground, labels, ["reflectance"] * 4, cfg, rng)
        assert (lab[:10] == 255).all()
        if (lab == THICK).any():
            assert out[lab == THICK].mean() > 0.15 > out[lab == 0].mean()
        if (lab == SHADOW).any():
            assert out[lab == SHADOW].mean() < 0.05 * 0.8  # darker than the ground it falls on
        seen |= set(np.unique(lab[10:]).tolist())
    assert {0, THIN, THICK, SHADOW} <= seen


def test_multiclass_losses_on_known_values():
    labels = np.array([[0, 1], [2, IGNORE]], np.float32).reshape(1, 2, 2, 1)
    perfect = np.eye(4, dtype=np.float32)[[[0, 1], [2, 3]]][None]
    uniform = np.full((1, 2, 2, 4), 0.25, np.float32)
    assert float(categorical_ce(labels, perfect)) == pytest.approx(0.0, abs=1e-5)
    assert float(categorical_ce(labels, uniform)) == pytest.approx(np.log(4), rel=1e-5)
    # The ignored pixel's prediction changes nothing.
    other = perfect.copy()
    other[0, 1, 1] = [1, 0, 0, 0]
    assert float(categorical_ce_dice(labels, other)) == pytest.approx(float(categorical_ce_dice(labels, perfect)))
    assert float(multiclass_dice_loss(labels, perfect)) == pytest.approx(0.0, abs=0.01)
    # Uniform over the 3 valid pixels: classes 0-2 have intersection 0.25 and total 1 + 0.75; shadow, absent
    # from the labels, is present in the prediction (0.75) and scores (0 + 1) / (0.75 + 1). Mean over the 4.
    seen = 1 - (2 * 0.25 + 1) / (1 + 0.75 + 1)
    expected = (3 * seen + (1 - 1 / 1.75)) / 4
    assert float(multiclass_dice_loss(labels, uniform)) == pytest.approx(expected, rel=1e-5)


def test_class_weights_favour_the_rare_class_and_default_to_the_plain_loss():
    labels = np.array([[0, 0], [0, 3]], np.float32).reshape(1, 2, 2, 1)
    pred = np.full((1, 2, 2, 4), 0.1, np.float32)
    pred[..., 0] = 0.7  # clear everywhere: right on 3 pixels, wrong on the shadow pixel
    plain = float(categorical_ce_dice(labels, pred))
    assert float(WeightedCEDice([1, 1, 1, 1])(labels, pred)) == pytest.approx(plain, rel=1e-5)
    dice = float(multiclass_dice_loss(labels, pred))
    # Weighted mean: (3 x 1 x -log 0.7 + 10 x -log 0.1) / (3 + 10)
    expected = (3 * -np.log(0.7) + 10 * -np.log(0.1)) / 13 + dice
    assert float(WeightedCEDice([1, 1, 1, 10])(labels, pred)) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="ce_dice"):
        get_loss("bce", [1, 1, 1, 1])
    counts = np.array([0] * 90 + [1] * 9 + [3] * 1 + [IGNORE] * 50, np.uint8)
    weights = CloudTrainConfig(class_weights="auto").weights(counts)
    assert weights[3] > weights[1] > weights[0] and np.mean(weights) == pytest.approx(1.0, abs=1e-3)
    milder = CloudTrainConfig(class_weights="auto:0.25").weights(counts)
    assert weights[3] / weights[0] == pytest.approx((milder[3] / milder[0]) ** 2, rel=5e-3)  # rounded weights
    assert CloudTrainConfig(class_weights="none").weights(counts) is None
    with pytest.raises(ValueError, match="4 numbers"):
        CloudTrainConfig(class_weights="1,2").weights(counts)


def test_spectral_indices_are_computed_from_the_raw_bands_inside_the_model():
    from carmask.preprocess import Normalisation
    from training.clouds.model import SpectralIndices, build_cloud_model, index_pairs
    from training.model import UNetConfig

    bands = ("blue", "green", "red", "nir", "swir1")
    norm = Normalisation(1.0, (0.1, 0.2, 0.3, 0.4, 0.5), (0.5, 0.5, 0.5, 0.5, 0.5))
    raw = np.array([0.10, 0.60, 0.05, 0.40, 0.10], np.float32)  # snow-like: green bright, SWIR1 dark
    x = norm.apply(raw.reshape(1, 1, 1, 5))
    pairs = index_pairs(bands, ("ndsi", "ndvi"))
    out = keras.ops.convert_to_numpy(SpectralIndices(pairs, list(norm.mean), list(norm.std))(x))[0, 0, 0]
    np.testing.assert_allclose(out[:5], x[0, 0, 0])  # the bands pass through
    np.testing.assert_allclose(out[5:], [(0.6 - 0.1) / 0.7, (0.4 - 0.05) / 0.45], rtol=1e-5)
    with pytest.raises(ValueError, match="needs bands"):
        index_pairs(("blue", "green"), ("ndsi",))
    model = build_cloud_model(UNetConfig(base_width=2, depth=2, in_channels=5, num_classes=4), bands, norm, ("ndsi",))
    assert model.inputs[0].shape[-1] == 5 and model(np.zeros((1, 8, 8, 5), np.float32)).shape == (1, 8, 8, 4)


def test_scores_cloud_iou_and_cover_error():
    labels = np.zeros((2, 4, 4), np.uint8)
    labels[0, :2] = 2  # half thick cloud
    labels[1, 0, 0] = IGNORE
    pred = labels.copy()
    pred[0, 2] = 1  # a row of thin cloud too many: cover 75 % for 50 %
    pred[1, 0, 0] = 3  # on the ignored pixel: counts nowhere
    report = score(pred, labels, ["a", "b"], ["Water", "Water"])
    assert report["cloud_iou"] == pytest.approx(8 / 12, abs=1e-4)  # reports round to 4 places
    rows = {r["patch"]: r for r in report["per_patch"]}
    assert rows["a"]["cloud_cover_error_pct"] == pytest.approx(25.0) and rows["b"]["cloud_iou"] is None
    assert report["cloud_cover_mae_pct"] == pytest.approx(12.5)
    assert report["accuracy_3class"] == pytest.approx(27 / 31, abs=1e-4)
    assert report["confusion"]["pixels"][2][2] == 8


def test_band_order_evidence_tells_blue_first_from_red_first():
    def patches(order):
        water = np.array([0.12, 0.06, 0.04, 0.02, 0.003, 0.001, 0.002, 280.0], np.float32)
        forest = np.array([0.10, 0.08, 0.05, 0.35, 0.15, 0.06, 0.001, 290.0], np.float32)
        return [
            (biome, np.broadcast_to(s[order], (8, 8, 8)).copy(), np.zeros((8, 8), np.uint8))
            for biome, s in (("Water", water), ("Forest", forest))
        ]

    assert band_order_evidence(patches([0, 1, 2, 3, 4, 5, 6, 7]))["order"] == list(FILE_BANDS)
    swapped = band_order_evidence(patches([2, 1, 0, 3, 4, 5, 6, 7]))  # a red, green, blue file
    assert swapped["order"] is None and not all(swapped["checks"].values())


@pytest.mark.skipif(not CLOUD_DATA.is_dir(), reason="needs ../shared/data/clouds")
@pytest.mark.real_data
def test_the_l8_biome_files_are_blue_green_red_first():
    patches = read_l8_biome(CLOUD_DATA)
    loaded = [(p.biome, *load_patch(p, FILE_BANDS)) for p in patches]
    evidence = band_order_evidence(loaded)
    assert evidence["order"] == list(FILE_BANDS), evidence


@pytest.mark.slow
def test_train_export_serve_evaluate_and_predict_end_to_end(tmp_path, capsys):
    from carmask.clouds.segmenter import PatchSegmenter
    from carmask.predict import main as predict_main
    from training.cli import evaluate_main, export_main, train_main

    data = tmp_path / "l8"
    write_folder(data, {"train": ["Water_01_0001", "Forest_02_0002", "Urban_03_0003"], "test": ["Barren_04_0004"]})
    run = tmp_path / "run"
    keras.utils.set_random_seed(0)
    train_main(["--task", "clouds", "--data-dir", str(data), "--run-dir", str(run), "--train-splits", "train",
                "--bands", "4", "--epochs", "3", "--crops-per-patch", "4", "--crop", "16", "--base-width", "4",
                "--depth", "2", "--batch-size", "4"])  # fmt: skip
    config = json.loads((run / "config.json").read_text())
    assert config["band_names"] == ["blue", "green", "red", "nir"] and len(config["normalisation"]["mean"]) == 4
    assert (run / "last.keras").is_file() and not (run / "best.keras").exists()  # no validation: last is kept

    export_main(["--task", "clouds", str(run / "last.keras"), "--out-dir", str(tmp_path / "models"),
                 "--name", "clouds-test", "--max-side", "64"])  # fmt: skip
    manifest_path = tmp_path / "models" / "clouds-test.json"
    manifest = json.loads(manifest_path.read_text())
    assert manifest["task"] == "multiclass-segmentation"
    assert [b["name"] for b in manifest["input"]["bands"]] == ["blue", "green", "red", "nir"]
    assert [c["name"] for c in manifest["output"]["classes"]] == ["clear", "thin_cloud", "thick_cloud", "shadow"]
    assert manifest["input"]["multiple_of"] == 4 and manifest["input"]["max_side"] == 64
    assert "sentinel2-l2a" in manifest["input"]["sensors"] and "landsat5" in manifest["input"]["sensors"]

    seg = PatchSegmenter(manifest_path, providers=["CPUExecutionProvider"])
    patch = tifffile.imread(data / "test" / "images" / "Barren_04_0004.tif")[..., :4]
    result = seg.classify(patch[:30, :30])  # not a multiple of 4: padded and cropped back
    assert result.class_map.shape == (30, 30)

    twin = tmp_path / "twin"  # a second member: the same checkpoint in its own run folder
    twin.mkdir()
    for name in ("last.keras", "config.json", "state.json"):
        (twin / name).write_bytes((run / name).read_bytes())
    export_main(["--task", "clouds", str(run / "last.keras"), str(twin / "last.keras"), "--out-dir",
                 str(tmp_path / "models"), "--name", "ensemble", "--max-side", "64"])  # fmt: skip
    ensemble = PatchSegmenter(tmp_path / "models" / "ensemble.json", providers=["CPUExecutionProvider"])
    alone, averaged = (s.classify(patch[:32, :32]).probabilities for s in (seg, ensemble))
    np.testing.assert_allclose(averaged, alone, atol=1e-5)  # the mean of two equal members
    assert len(ensemble.manifest.training["members"]) == 2 and ensemble.manifest.architecture["ensemble_of"] == 2

    evaluate_main(["--task", "clouds", str(manifest_path), "--data-dir", str(data), "--splits", "test",
                   "--out", str(tmp_path / "eval"), "--record"])  # fmt: skip
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert report["patches"] == 1 and 0.0 <= report["cloud_iou"] <= 1.0
    assert "test" in json.loads(manifest_path.read_text())["metrics"]

    out = tmp_path / "predicted"
    code = predict_main([str(data / "test" / "images"), "--model", str(manifest_path), "--out", str(out), "--quiet",
                         "--bands", ",".join(FILE_BANDS)])  # fmt: skip
    assert code == 0
    with rasterio.open(out / "Barren_04_0004_classes.tif") as written:  # a TIFF in: a GeoTIFF class map out
        assert written.shape == patch.shape[:2] and written.dtypes[0] == "uint8"
    rows = (out / "cover.csv").read_text().splitlines()
    assert rows[0].startswith("patch,cloud_cover_pct,shadow_pct") and len(rows) == 2


def test_cross_sensor_chips_are_read_with_their_labels_and_scored(tmp_path):
    from training.clouds.chips import CHIP_BANDS, evaluate_on_chips, read_chips
    from training.clouds.data import CloudDataError

    rng = np.random.default_rng(6)
    mask = rng.integers(0, 5, (32, 32, 1)).astype(np.uint8)  # 0 shadow, 1-3 clear, 4 cloud
    image = rng.random((32, 32, 6)).astype(np.float32)
    np.savez(tmp_path / "sentinel2.npz", img=image, msk=mask)
    chips = read_chips(tmp_path)
    assert [c.name for c in chips] == ["sentinel2"] and chips[0].image.shape == (32, 32, len(CHIP_BANDS))
    expected = np.choose(mask[..., 0], [3, 0, 0, 0, 2])
    np.testing.assert_array_equal(chips[0].labels, expected)

    class Oracle:  # answers the truth: the score must be perfect
        def probabilities(self, images):
            return np.eye(4, dtype=np.float32)[expected][None]

    report = evaluate_on_chips(Oracle(), chips, ("blue", "green", "red", "nir"))
    assert report["cloud_iou"] == 1.0 and report["cloud_cover_mae_pct"] == 0.0
    with pytest.raises(CloudDataError, match="needs cirrus"):
        evaluate_on_chips(Oracle(), chips, ("blue", "cirrus"))
    np.savez(tmp_path / "landsat7.npz", img=image[..., :4], msk=mask)
    with pytest.raises(CloudDataError, match=r"landsat7\.npz: img"):
        read_chips(tmp_path)
