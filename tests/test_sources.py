"""The sources beside Carvana (DSMLR, DAVIS, backgrounds), copy-paste, crop augmentation and the mixture."""

import json

import numpy as np
import pytest
from PIL import Image

from carmask.preprocess import Normalisation
from training.config import TrainConfig
from training.data.augment import AugmentConfig, augment
from training.data.composite import CompositeConfig, paste
from training.data.dataset import MixedBatches, SourceArrays
from training.data.sources import IGNORE, SourceError
from training.data.sources.backgrounds import read_backgrounds
from training.data.sources.davis import read_davis
from training.data.sources.dsmlr import read_dsmlr, whole_car_label


def _square(x0, y0, x1, y1) -> list[float]:
    return [x0, y0, x1, y0, x1, y1, x0, y1]


def make_dsmlr(root, images: dict[str, list[list[float]]], size=(100, 80), drop_photo: str | None = None):
    folder = root / "trainingset"
    (folder / "JPEGImages").mkdir(parents=True)
    coco = {
        "categories": [{"id": 1, "name": "_background_"}, {"id": 2, "name": "door"}],
        "images": [],
        "annotations": [],
    }
    for index, (name, polygons) in enumerate(images.items(), start=1):
        coco["images"].append({"id": index, "file_name": name, "width": size[0], "height": size[1]})
        for poly in polygons:
            ann_id = len(coco["annotations"]) + 1
            coco["annotations"].append({"id": ann_id, "image_id": index, "category_id": 2, "segmentation": [poly]})
        if name != drop_photo:
            Image.new("RGB", size, (90, 90, 90)).save(folder / "JPEGImages" / name)
    (folder / "annotations.json").write_text(json.dumps(coco))
    return root


def test_dsmlr_label_is_parts_then_ignored_hull_then_background():
    # One car: an L of two parts with a notch (the "body panel" no class covers) and a small seam.
    parts = [tuple(_square(10, 20, 40, 40)), tuple(_square(10, 44, 80, 60))]
    label = whole_car_label(parts, 200, 100)
    assert label[30, 20] == 1 and label[50, 60] == 1  # parts
    assert label[30, 60] == IGNORE  # the notch inside their hull
    assert label[42, 20] == IGNORE  # the seam between them
    assert label[40, 150] == 0 and label[5, 5] == 0  # far outside
    assert set(np.unique(label)) == {0, 1, IGNORE}


def test_dsmlr_a_missing_part_between_parts_is_ignored_not_background():
    # Front door and rear light annotated, the rear door between them not: it must not become background.
    label = whole_car_label([tuple(_square(5, 30, 60, 70)), tuple(_square(140, 30, 195, 70))], 200, 100)
    assert label[50, 100] == IGNORE
    assert label[5, 100] == 0 and label[95, 100] == 0  # above and below the car: background


def test_dsmlr_reader_and_its_errors(tmp_path):
    root = make_dsmlr(tmp_path / "ok", {"a.jpg": [_square(10, 10, 40, 40)], "b.jpg": []})
    photos = read_dsmlr(root, "trainingset")
    assert [p.name for p in photos] == ["a.jpg"]  # b has no car annotated: no label to trust
    assert photos[0].load_label().shape == (80, 100)
    with pytest.raises(SourceError, match="no DSMLR annotations"):
        read_dsmlr(tmp_path / "nothing")
    broken = make_dsmlr(tmp_path / "gone", {"a.jpg": [_square(1, 1, 9, 9)]}, drop_photo="a.jpg")
    with pytest.raises(SourceError, match=r"missing: a\.jpg"):
        read_dsmlr(broken)
    rle = make_dsmlr(tmp_path / "rle", {"a.jpg": [_square(1, 1, 9, 9)]})
    coco = json.loads((rle / "trainingset" / "annotations.json").read_text())
    coco["annotations"][0]["segmentation"] = {"counts": [1, 2], "size": [80, 100]}
    (rle / "trainingset" / "annotations.json").write_text(json.dumps(coco))
    with pytest.raises(SourceError, match="not a polygon list"):
        read_dsmlr(rle)


def test_a_teacher_fills_only_the_ignored_hull_where_it_is_confident(tmp_path):
    from carmask.preprocess import Fit
    from training.data.cache import _key
    from training.data.sources.dsmlr import with_teacher
    from training.data.teacher import Teacher

    # The notch of the L (ignored) is car to the teacher on its left, background on its right, unsure between.
    root = make_dsmlr(tmp_path / "d", {"a.jpg": [_square(10, 10, 30, 30), _square(10, 34, 90, 60)]})
    (photo,) = read_dsmlr(root, "trainingset")
    plain = photo.load_label()
    prob = np.full((80, 100), 128, np.uint8)
    prob[:, :45] = 250  # car: also over background outside the hull, and over a part
    prob[:, 70:] = 5  # background: also over a part
    teachers = tmp_path / "teacher"
    teachers.mkdir()
    Image.fromarray(prob).save(teachers / "a.png")
    (taught,) = with_teacher([photo], Teacher(teachers))
    label = taught.load_label()
    assert plain[32, 40] == plain[32, 60] == plain[32, 80] == IGNORE  # the notch, before
    assert label[32, 40] == 1 and label[32, 80] == 0 and label[32, 60] == IGNORE  # car / background / unsure
    assert np.array_equal(label[plain != IGNORE], plain[plain != IGNORE])  # parts and outside: the human's
    assert _key([photo], Fit((32, 32))) != _key([taught], Fit((32, 32)))  # taught labels are cached apart
    assert with_teacher([photo], None) == [photo]
    (teachers / "a.png").unlink()
    with pytest.raises(SourceError, match="carmask-teacher"):
        taught.load_label()
    Image.fromarray(prob[:40]).save(teachers / "a.png")
    with pytest.raises(SourceError, match="is \\(100, 40\\), the photo \\(100, 80\\)"):
        taught.load_label()


def make_davis(root, sequences=("seq-a", "seq-b"), frames=3, drop_mask: str | None = None):
    for sequence in sequences:
        (root / "JPEGImages" / "480p" / sequence).mkdir(parents=True)
        (root / "Annotations" / "480p" / sequence).mkdir(parents=True)
        for i in range(frames):
            Image.new("RGB", (32, 24), (10, 10, 10)).save(root / "JPEGImages" / "480p" / sequence / f"{i:05d}.jpg")
            if f"{sequence}/{i:05d}" != drop_mask:
                mask = np.zeros((24, 32), np.uint8)
                mask[5:15, 5:20] = 255
                Image.fromarray(mask).save(root / "Annotations" / "480p" / sequence / f"{i:05d}.png")
    return root


def test_davis_reader_splits_by_sequence_and_reports_errors(tmp_path):
    root = make_davis(tmp_path / "davis")
    frames = read_davis(root, ["seq-b"])
    assert len(frames) == 3 and {f.group for f in frames} == {"davis/seq-b"}
    assert frames[0].load_label().sum() == 10 * 15
    with pytest.raises(SourceError, match="not in"):
        read_davis(root, ["seq-z"])
    with pytest.raises(SourceError, match=r"without a mask: seq-a/00001\.png"):
        read_davis(make_davis(tmp_path / "broken", drop_mask="seq-a/00001"))
    with pytest.raises(SourceError, match="no DAVIS layout"):
        read_davis(tmp_path / "empty")


def test_backgrounds_reader_keeps_splits_apart(tmp_path):
    for name in ("train_1.jpg", "val_2.jpg", "test_3.jpg", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in read_backgrounds(tmp_path)] == ["train_1.jpg", "val_2.jpg"]
    assert [p.name for p in read_backgrounds(tmp_path, ("test",))] == ["test_3.jpg"]
    with pytest.raises(SourceError, match="holds no photos"):
        read_backgrounds(tmp_path, ("other",))


def test_source_weights_are_parsed_and_checked():
    assert TrainConfig(sources="carvana:2, dsmlr:0.5").source_weights() == {"carvana": 2.0, "dsmlr": 0.5}
    with pytest.raises(ValueError, match="unknown source 'coco'"):
        TrainConfig(sources="carvana:1,coco:1").source_weights()
    with pytest.raises(ValueError, match="must include carvana"):
        TrainConfig(sources="dsmlr:1").source_weights()
    with pytest.raises(ValueError, match="not a number"):
        TrainConfig(sources="carvana:lots").source_weights()


def _red_car(size=64):
    car = np.full((size, size, 3), 240, np.uint8)  # studio white
    mask = np.zeros((size, size), np.uint8)
    mask[20:44, 8:56] = 1
    car[mask == 1] = (230, 10, 10)
    return car, mask


@pytest.mark.parametrize("seed", range(6))
def test_copy_paste_keeps_image_and_label_aligned(seed):
    car, mask = _red_car()
    background = np.zeros((80, 96, 3), np.uint8)
    background[..., 2] = 200  # blue
    config = CompositeConfig(car_colour=CompositeConfig().car_colour.__class__())  # no colour jitter: red stays red
    image, label = paste(np.random.default_rng(seed), config, car, mask, background)
    assert image.shape == background.shape and label.shape == background.shape[:2]
    red = (image[..., 0] > 150) & (image[..., 2] < 100)
    assert label.sum() > 0
    assert red[label == 1].mean() > 0.9  # the label lies on the pasted car
    assert label[red].mean() > 0.9  # and the car lies under the label
    assert (image[label == 0][..., 2] > 100).mean() > 0.95  # the studio white was not pasted


@pytest.mark.parametrize("seed", range(4))
def test_a_cast_shadow_darkens_the_ground_under_the_car_and_stays_background(seed):
    car, mask = _red_car()
    background = np.full((96, 96, 3), 180, np.uint8)
    plain = CompositeConfig(car_colour=CompositeConfig().car_colour.__class__(), min_width=0.4, max_width=0.6)
    shaded = CompositeConfig(**{**plain.to_dict(), "car_colour": plain.car_colour, "shadow": 1.0})
    image0, label0 = paste(np.random.default_rng(seed), plain, car, mask, background)
    image1, label1 = paste(np.random.default_rng(seed), shaded, car, mask, background)
    assert np.array_equal(label0, label1)  # the shadow is background: the label is the car alone
    inside = label1 == 1
    inside[1:-1] &= inside[:-2] & inside[2:]  # away from the feathered edge
    assert np.array_equal(image0[inside], image1[inside])  # the car itself is untouched
    darker = image1.astype(int).sum(-1) < image0.astype(int).sum(-1) - 30
    assert darker.any() and not (image1.astype(int) > image0.astype(int) + 1).any()
    rows = np.nonzero(label1.any(axis=1))[0]
    shade_rows = np.nonzero(darker.any(axis=1))[0]
    assert shade_rows.mean() > rows.mean()  # under the car, not over it
    with pytest.raises(ValueError, match="probability"):
        TrainConfig(composite_shadow=1.5).composite()


@pytest.mark.parametrize("seed", range(4))
def test_a_glossy_floor_mirrors_the_car_under_its_wheels_and_stays_background(seed):
    car, mask = _red_car()
    background = np.full((96, 96, 3), 60, np.uint8)  # a dark floor
    plain = CompositeConfig(car_colour=CompositeConfig().car_colour.__class__(), min_width=0.4, max_width=0.6)
    glossy = CompositeConfig(**{**plain.to_dict(), "car_colour": plain.car_colour, "floor": 1.0})
    image0, label0 = paste(np.random.default_rng(seed), plain, car, mask, background)
    image1, label1 = paste(np.random.default_rng(seed), glossy, car, mask, background)
    assert np.array_equal(label0, label1)  # the reflection is background: the label is the car alone
    redder = (image1[..., 0].astype(int) - image0[..., 0]) > 8
    assert redder.any() and not redder[label1 == 1].any()  # a red mirror image, outside the car
    car_rows = np.nonzero(label1.any(axis=1))[0]
    mirror_rows = np.nonzero(redder.any(axis=1))[0]
    assert mirror_rows.min() >= car_rows.max() - 3  # under the wheels, not over the roof
    # fading with distance from the wheels
    strength = (image1[..., 0].astype(int) - image0[..., 0]).clip(0)
    near, far = mirror_rows.min(), mirror_rows.max()
    assert strength[near].max() >= strength[far].max()


def test_a_studio_backdrop_replaces_the_background_photo():
    car, mask = _red_car()
    background = np.zeros((96, 128, 3), np.uint8)
    background[..., 1] = 255  # green: no studio is green
    cfg = CompositeConfig(studio=1.0)
    for seed in range(4):
        image, label = paste(np.random.default_rng(seed), cfg, car, mask, background)
        outside = image[label == 0].astype(int)
        green = outside[:, 1] - (outside[:, 0] + outside[:, 2]) / 2 > 100
        assert green.mean() < 0.05 and label.sum() > 0
    with pytest.raises(ValueError, match="composite_floor is a probability"):
        TrainConfig(composite_floor=-0.1).composite()


def test_crop_augmentation_resamples_image_and_label_together_and_keeps_ignore():
    image = np.zeros((120, 160, 3), np.uint8)
    label = np.zeros((120, 160), np.uint8)
    image[30:90, 40:120] = 255
    label[30:90, 40:120] = 1
    label[30:90, 40:60] = IGNORE
    cfg = AugmentConfig(crop=1.0, crop_scale=0.5, aspect=0.4, rotation=10, horizontal_flip=True)
    for seed in range(5):
        out_image, out_label = augment(np.random.default_rng(seed), cfg, image, label, out_shape=(64, 64))
        assert out_image.shape == (64, 64, 3) and out_label.shape == (64, 64)
        assert set(np.unique(out_label)) <= {0, 1, IGNORE}
        white = out_image[..., 0] > 127
        car = out_label != 0
        assert (white == car).mean() > 0.95, seed


def test_mixture_draws_each_source_by_weight_and_repeats_by_seed():
    def source(name, value, n, weight):
        images = np.full((n, 16, 16, 3), value, np.uint8)
        return SourceArrays(name, images, np.zeros((n, 16, 16), np.uint8), weight)

    sources = [source("a", 10, 5, 3.0), source("b", 200, 50, 1.0)]
    batches = MixedBatches(sources, 8, Normalisation(), samples_per_epoch=40, seed=3)
    kinds = np.concatenate([batches[i][0][:, 0, 0, 0] for i in range(len(batches))])
    assert len(kinds) == 40
    assert np.sum(kinds < 0.5) == 30 and np.sum(kinds > 0.5) == 10  # 3:1
    again = MixedBatches(sources, 8, Normalisation(), samples_per_epoch=40, seed=3)
    assert np.array_equal(batches[2][0], again[2][0])
    with pytest.raises(ValueError, match="positive weight"):
        MixedBatches([source("a", 1, 2, 0.0)], 4, Normalisation())


def test_each_source_can_have_its_own_augmentation():
    """Studio photos mild, ordinary ones the photos preset: a source's preset applies to its items only."""
    gradient = np.tile(np.arange(32, dtype=np.uint8)[None, :, None] * 8, (32, 1, 3))

    def source(name):
        return SourceArrays(name, np.stack([gradient] * 4), np.zeros((4, 32, 32), np.uint8), 1.0)

    shift = AugmentConfig(width_shift=0.4, fill_mode="constant")
    batches = MixedBatches(
        [source("carvana"), source("dsmlr")], 8, Normalisation(), source_augmentation={"dsmlr": shift}, seed=1
    )
    for k, i in batches.plan:
        image, _ = batches.item(np.random.default_rng(int(i)), int(k), int(i))
        changed = not np.array_equal(image, gradient)
        assert changed == (batches.sources[k].name == "dsmlr")
    assert set(TrainConfig(source_augment="dsmlr:photos, davis:mild").source_augmentations()) == {"dsmlr", "davis"}
    assert TrainConfig().source_augmentations() == {}
    with pytest.raises(ValueError, match="unknown source"):
        TrainConfig(source_augment="coco:photos").source_augmentations()
    with pytest.raises(ValueError, match="unknown augmentation preset"):
        TrainConfig(source_augment="dsmlr:wild").source_augmentations()
