"""The glass head: its labels, its folds, and its export as a second output beside an unchanged car output."""

import json

import keras
import numpy as np
import pytest
from PIL import Image

from carmask.inference import Segmenter
from carmask.preprocess import Fit
from training.data.sources.base import IGNORE
from training.glass.labels import GlassPhoto, dsmlr_glass_label, read_user_photo_glass
from training.glass.train import fit_label, fold_of


def square(x0, y0, x1, y1):
    return (x0, y0, x1, y0, x1, y1, x0, y1)


def test_dsmlr_glass_is_glass_doors_unknown_other_parts_not_glass():
    parts = {
        "front_glass": [square(20, 10, 40, 20)],
        "front_left_door": [square(40, 10, 60, 40)],
        "hood": [square(0, 20, 20, 40)],
        "wheel": [square(60, 30, 80, 40)],
    }
    label = dsmlr_glass_label(parts, 100, 60)
    assert (label[12:18, 22:38] == 1).all()  # the windscreen
    assert (label[12:38, 42:58] == IGNORE).all()  # a door may hold a side window: unknown
    assert (label[22:38, 2:18] == 0).all() and (label[32:38, 62:78] == 0).all()  # hood, wheel: not glass
    assert (label[50:, :] == 0).all() and (label[:, 90:] == 0).all()  # well outside the car: not glass


def test_user_photo_windows_and_grouped_folds(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "parts").mkdir()
    names = [f"ic_web{i}" for i in range(6)] + [f"ic_IMG_2020{i}" for i in range(4)]
    for name in names:
        Image.new("RGB", (40, 30)).save(tmp_path / "images" / f"{name}.jpg")
        parts = np.zeros((30, 40), np.uint8)
        parts[5:10, 5:20] = 4
        parts[10:25, 5:35] = 1
        Image.fromarray(parts).save(tmp_path / "parts" / f"{name}.png")
    photos = read_user_photo_glass(tmp_path)
    assert {p.group for p in photos} == {"web", "phone"}
    label = photos[0].load_label()
    assert label.sum() == 5 * 15 and set(np.unique(label)) == {0, 1}
    dsmlr = [GlassPhoto("d.jpg", tmp_path / "d.jpg", "dsmlr", (1, 1, {}))]
    fold = fold_of(dsmlr + photos, 2, seed=0)
    assert fold[0] == -1  # DSMLR always trains
    for group in ("web", "phone"):  # each fold holds both groups, evenly
        counts = np.bincount(fold[1:][[p.group == group for p in photos]], minlength=2)
        assert counts.max() - counts.min() <= 1


def test_labels_fit_the_model_input_as_photos_do():
    fit = Fit((64, 64), (1.0, 1.8), (0, 0, 0))
    label = np.zeros((60, 240), np.uint8)  # 4:1, letterboxed
    label[20:40, 100:140] = 1
    fitted = fit_label(label, fit)
    _, y, _, h = fit.box((240, 60))
    assert fitted.shape == (64, 64) and (fitted[:y] == IGNORE).all() and (fitted[y + h :] == IGNORE).all()
    assert fitted[y : y + h].max() == 1


@pytest.mark.slow
def test_glass_export_adds_an_output_and_keeps_the_car_output(tmp_path):
    from training.export import ExportError, export
    from training.glass.export import export_glass
    from training.glass.head import attach, build_head
    from training.model.mobile_unet import MobileUNetConfig

    keras.utils.set_random_seed(0)
    cfg = MobileUNetConfig(full_res_block="subpixel", decoder_widths=(16, 16, 8, 8, 8), stem_width=8)
    trunk = cfg.build()
    trunk.save(tmp_path / "best.keras")
    norm = cfg.normalisation
    config = {"model": cfg.to_dict(), "image_size": 64,
              "normalisation": {"scale": norm.scale, "mean": norm.mean, "std": norm.std}}  # fmt: skip
    (tmp_path / "config.json").write_text(json.dumps(config))
    base = export(tmp_path / "best.keras", tmp_path / "models", "tiny", "1.0.0")

    run = tmp_path / "glass"
    run.mkdir()
    attach(trunk, build_head(16, 8, width=8)).save(run / "model.keras")
    summary = {"photos": 2, "mean_iou": 0.5}
    report = {"config": {"threshold": 0.4, "epochs": 1, "batch_size": 2, "learning_rate": 0.01,
                         "user_photo_repeat": 1, "width": 8, "folds": 2, "seed": 0},
              "data": {"dsmlr": 1, "user_photos": 2}, "k_fold": summary}  # fmt: skip
    (run / "report.json").write_text(json.dumps(report))
    manifest = export_glass(run, base.path, "1.1.0", tmp_path / "models")

    assert manifest.version == "1.1.0" and manifest.output.windows == {"name": "windows", "threshold": 0.4}
    assert manifest.architecture["glass_head"]["car_output_max_abs_diff"] <= 1e-5
    assert manifest.metrics["glass"]["user_photos_k_fold"] == summary
    seg = Segmenter(manifest.path)
    x = np.random.default_rng(1).integers(0, 255, (1, 64, 96, 3), np.uint8)
    car, glass = seg.outputs(x, glass=True)
    want_car, want_glass = (keras.ops.convert_to_numpy(o)[..., 0] for o in keras.models.load_model(
        run / "model.keras", compile=False)(norm.apply(x)))  # fmt: skip
    assert np.abs(car - want_car).max() < 1e-4 and np.abs(glass - want_glass).max() < 1e-4

    # a head fitted on another trunk is refused, and the shipped file stays as it was
    shipped = manifest.model_path.read_bytes()
    attach(cfg.build(), build_head(16, 8, width=8)).save(run / "model.keras")
    with pytest.raises(ExportError, match="another trunk"):
        export_glass(run, manifest.path, "1.1.1", tmp_path / "models")
    assert manifest.model_path.read_bytes() == shipped and not list((tmp_path / "models").glob(".*staged"))
