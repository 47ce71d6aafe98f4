"""The teacher-labelling job on generated photos with stub teachers: agreement, cache, resume, the source."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from training.data.sources import IGNORE
from training.teachers.labelling import Agreement, label_photos, list_photos


class Stub:
    """A teacher that says car inside a box (its own box, so teachers can disagree), counting its calls."""

    def __init__(self, name: str, box: tuple[int, int, int, int], version: str = "1", inside: float = 0.95):
        self.name, self.box, self.version, self.inside, self.calls = name, box, version, inside, 0

    def key(self) -> str:
        return f"stub:{self.name}:{self.version}"

    def probabilities(self, photo: Image.Image) -> np.ndarray:
        self.calls += 1
        w, h = photo.size
        prob = np.full((h, w), 0.05, np.float32)
        x0, y0, x1, y1 = self.box
        prob[y0:y1, x0:x1] = self.inside
        return prob


def _photos(folder, count=3, size=(40, 30), colour=(200, 30, 10)):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.new("RGB", size, colour).save(folder / f"p{i:02d}.jpg")
    return list_photos(folder)


def test_agreement_labels_car_background_and_ignores_the_rest():
    a = np.array([[0.9, 0.9, 0.1, 0.5]], np.float32)
    b = np.array([[0.95, 0.1, 0.05, 0.5]], np.float32)
    label = Agreement(0.2, 0.8).label([a, b])
    assert label.tolist() == [[1, IGNORE, 0, IGNORE]]
    with pytest.raises(ValueError, match="low < high"):
        Agreement(0.8, 0.2)
    # two of three overrule the third: where the student (c) errs, the label follows the other two
    c = np.array([[0.9, 0.1, 0.9, 0.5]], np.float32)
    assert Agreement(0.2, 0.8).label([a, b, c]).tolist() == [[1, IGNORE, IGNORE, IGNORE]]
    assert Agreement(0.2, 0.8, votes=2).label([a, b, c]).tolist() == [[1, 0, 0, IGNORE]]
    with pytest.raises(ValueError, match="majority"):
        Agreement(votes=1).label([a, b])


def test_labelling_caches_per_teacher_resumes_and_redoes_a_changed_teacher(tmp_path):
    photos = _photos(tmp_path / "in")
    out = tmp_path / "set"
    wide, narrow = Stub("wide", (5, 5, 35, 25)), Stub("narrow", (10, 5, 35, 25))
    counts = label_photos(photos, out, [wide, narrow], progress=None)
    assert counts == {"labelled": 3, "done": 0} and wide.calls == narrow.calls == 3
    label = np.asarray(Image.open(out / "labels" / "p00.png"))
    assert label[15, 20] == 1 and label[1, 1] == 0 and label[15, 7] == IGNORE  # only `wide` says car at x=7
    cached = np.asarray(Image.open(out / "teachers" / "wide" / "p00.png"))
    assert cached.shape == (30, 40) and cached[15, 20] == round(0.95 * 255)
    rows = list(csv.DictReader((out / "labels.csv").open()))
    assert [r["photo"] for r in rows] == ["p00", "p01", "p02"]
    assert float(rows[0]["ignored"]) == pytest.approx(5 * 20 / (40 * 30), abs=1e-4)

    # Resumed: nothing runs again. A teacher with new weights runs alone; labels are made again from caches.
    assert label_photos(photos, out, [wide, narrow], progress=None) == {"labelled": 0, "done": 3}
    assert wide.calls == narrow.calls == 3
    narrow_v2 = Stub("narrow", (5, 5, 35, 25), version="2")
    assert label_photos(photos, out, [wide, narrow_v2], progress=None)["labelled"] == 3
    assert wide.calls == 3 and narrow_v2.calls == 3
    assert np.asarray(Image.open(out / "labels" / "p00.png"))[15, 7] == 1  # they agree now
    assert json.loads((out / "set.json").read_text())["teachers"]["narrow"] == "stub:narrow:2"


def test_a_killed_job_leaves_no_half_written_file_and_picks_up(tmp_path):
    photos = _photos(tmp_path / "in", count=4)
    out = tmp_path / "set"

    class Failing(Stub):
        def probabilities(self, photo):
            if self.calls == 2:
                raise KeyboardInterrupt  # the job is stopped on the third photo
            return super().probabilities(photo)

    failing = Failing("t", (0, 0, 20, 20))
    with pytest.raises(KeyboardInterrupt):
        label_photos(photos, out, [failing], progress=None)
    assert sorted(p.name for p in (out / "labels").iterdir()) == ["p00.png", "p01.png"]
    assert not list(out.rglob("*.tmp*"))
    again = Stub("t", (0, 0, 20, 20))
    assert label_photos(photos, out, [again], progress=None)["labelled"] == 4  # rows were not saved: redone ...
    assert again.calls == 2  # ... from the cache where the teacher had answered


def test_swapped_red_and_blue_are_corrected_for_teachers_and_training(tmp_path):
    photos = _photos(tmp_path / "in", count=1, colour=(10, 30, 200))  # stored blue: the photo is red

    class Colour(Stub):
        def probabilities(self, photo):
            r, _, b = np.asarray(photo, np.float32).mean(axis=(0, 1))
            self.seen = (r, b)
            return super().probabilities(photo)

    teacher = Colour("c", (0, 0, 10, 10))
    label_photos(photos, tmp_path / "set", [teacher], swap_red_blue=True, progress=None)
    assert teacher.seen[0] > 150 > teacher.seen[1]
    copy = np.asarray(Image.open(tmp_path / "set" / "photos" / "p00.jpg"), np.float32).mean(axis=(0, 1))
    assert copy[0] > 150 > copy[2]
    assert json.loads((tmp_path / "set" / "set.json").read_text())["swap_red_blue"] is True


def test_the_labelled_set_is_a_training_source_that_leaves_out_disputed_photos(tmp_path):
    from carmask.preprocess import Fit
    from training.data.cache import _key, load_arrays
    from training.data.sources import SourceError
    from training.data.sources.pseudo import read_pseudo

    photos = _photos(tmp_path / "in", count=2)
    out = tmp_path / "set"
    label_photos(photos[:1], out, [Stub("a", (5, 5, 35, 25)), Stub("b", (5, 5, 35, 25))], progress=None)
    # a second photo the teachers dispute: half the frame ignored
    label_photos(photos, out, [Stub("a", (5, 5, 35, 25)), Stub("b", (5, 5, 35, 25))], progress=None)
    rows = {r["photo"]: r for r in csv.DictReader((out / "labels.csv").open())}
    rows["p01"]["ignored"] = "0.5"
    with (out / "labels.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["photo", "car", "ignored"])
        writer.writeheader()
        writer.writerows(rows.values())
    (photo,) = read_pseudo(out, max_ignored=0.15)
    assert photo.name == "p00.jpg" and photo.load_label()[15, 20] == 1
    images, labels = load_arrays([photo], Fit((32, 32)), None, workers=1)
    assert images.shape == (1, 32, 32, 3) and set(np.unique(labels)) <= {0, 1}
    assert len(read_pseudo(out, max_ignored=0.6)) == 2
    other = tmp_path / "other"
    label_photos(photos[:1], other, [Stub("a", (5, 5, 35, 25))], progress=None)
    assert _key(read_pseudo(other), Fit((32, 32))) != _key([photo], Fit((32, 32)))  # other teachers: other cache
    with pytest.raises(SourceError, match="carmask-teacher"):
        read_pseudo(tmp_path / "in")


def test_user_photos_are_never_a_training_source():
    from training.config import TrainConfig

    with pytest.raises(ValueError, match="unknown source 'user_photos'"):
        TrainConfig(sources="carvana:1,user_photos:1").source_weights()


def test_the_command_refuses_an_unknown_teacher_and_an_empty_folder(tmp_path, capsys):
    from training.teachers.cli import main

    with pytest.raises(SystemExit, match="unknown teacher 'nope'"):
        main([str(tmp_path), str(tmp_path / "out"), "--teachers", "nope"])
    with pytest.raises(SystemExit, match="low < high"):
        main([str(tmp_path), str(tmp_path / "out"), "--teachers", "nope", "--low", "0.9", "--high", "0.1"])
