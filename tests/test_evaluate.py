"""carmask-evaluate on a generated folder: Keras and ONNX agree, reports and sheets are written."""

import json

import pytest

from tests.fixtures import make_carvana
from training.cli import evaluate_main, export_main, train_main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("evaluate")
    data = make_carvana(tmp / "data", cars=4, views=3, size=(64, 48))
    args = [
        "--data-dir",
        str(data),
        "--run-dir",
        str(tmp / "run"),
        "--cache-dir",
        str(tmp / "cache"),
        "--image-size",
        "32",
        "--base-width",
        "4",
        "--depth",
        "2",
        "--batch-size",
        "4",
        "--epochs",
        "3",
        "--augment",
        "none",
        "--val-fraction",
        "0.25",
        "--workers",
        "1",
        "--architecture",
        "unet",
        "--sources",
        "carvana:1",
        "--samples-per-epoch",
        "0",
        "--cache-size",
        "32",
    ]
    train_main(args)
    return tmp


def test_evaluate_checkpoint_writes_report_and_examples(trained, capsys):
    run = trained / "run"
    evaluate_main(
        [
            str(run / "best.keras"),
            "--run-dir",
            str(run),
            "--image-size",
            "32",
            "--cache-dir",
            str(trained / "cache"),
            "--sets",
            "carvana",
        ]
    )
    report = json.loads((run / "eval" / "report.json").read_text())["sets"]["carvana"]
    assert report["images"] == 3 and report["groups"] == 1  # the one validation car, all its views
    for key in (
        "dice_model",
        "iou_model",
        "accuracy_model",
        "dice_original",
        "iou_original",
        "accuracy_original",
        "loss_model",
    ):
        assert 0 <= report[key] <= 10, key
    assert list(report["per_group"]) == json.loads((run / "split.json").read_text())["val_cars"]
    assert sum(k["images"] for k in report["per_kind"].values()) == 3
    assert (run / "eval" / "examples_carvana.png").stat().st_size > 0
    assert "per photo kind" in capsys.readouterr().out


def test_exported_model_scores_like_the_checkpoint(trained):
    run = trained / "run"
    export_main(
        [
            str(run / "best.keras"),
            "--out-dir",
            str(trained / "models"),
            "--name",
            "tiny",
            "--image-size",
            "32",
            "--report",
            str(run / "eval" / "report.json"),
            "--refine",
            "none",  # like with like: the checkpoint's evaluation has no edge refinement
        ]
    )
    manifest = json.loads((trained / "models" / "tiny.json").read_text())
    keras_report = json.loads((run / "eval" / "report.json").read_text())["sets"]["carvana"]
    assert manifest["metrics"]["carvana"]["dice_model"] == pytest.approx(keras_report["dice_model"])
    assert manifest["training"]["val_images"] == 3 and manifest["training"]["train_cars"] == 3
    manifest["metrics"]["glass"] = {"iou": 0.5}  # another kind of figure, which --record must leave alone
    (trained / "models" / "tiny.json").write_text(json.dumps(manifest))
    evaluate_main(
        [
            str(trained / "models" / "tiny.onnx"),
            "--run-dir",
            str(run),
            "--image-size",
            "32",
            "--cache-dir",
            str(trained / "cache"),
            "--out",
            str(trained / "onnx-eval"),
            "--sets",
            "carvana",
            "--record",
        ]
    )
    onnx_report = json.loads((trained / "onnx-eval" / "report.json").read_text())["sets"]["carvana"]
    assert onnx_report["dice_original"] == pytest.approx(keras_report["dice_original"], abs=1e-3)
    recorded = json.loads((trained / "models" / "tiny.json").read_text())["metrics"]
    assert recorded["carvana"]["dice_original"] == onnx_report["dice_original"]
    assert recorded["glass"] == {"iou": 0.5}


@pytest.mark.parametrize(
    "entry",
    [
        "training.cli:train_main",
        "training.cli:evaluate_main",
        "training.compare:main",
        "training.cli:export_main",
        "carmask.predict:main",
        "carmask.client.cli:main",
        "training.weights.fetch:main",
        "carmask.bulk:main",
        "service.__main__:main",
        "training.teachers.cli:main",
    ],
)
def test_every_command_has_useful_help(entry, capsys):
    import importlib

    module, func = entry.split(":")
    with pytest.raises(SystemExit) as exit_info:
        getattr(importlib.import_module(module), func)(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "usage:" in text and len(text) > 300


def test_compare_pairs_photos_and_reports_the_difference(tmp_path, capsys):
    from training.compare import compare, main

    def report(carvana: list[float], user: list[float]) -> dict:
        rows = lambda key, scores: [{"image": f"p{i}", key: s} for i, s in enumerate(scores)]  # noqa: E731
        return {"sets": {
            "carvana": {"per_image": rows("dice_original", carvana)},
            "user_photos": {"per_image": rows("iou_original", user)},
        }}  # fmt: skip

    a = report([0.99, 0.98, 0.97], [0.90, 0.80, 0.70, 0.60])
    b = report([0.99, 0.99, 0.97], [0.95, 0.85, 0.70, 0.50])
    b["sets"]["user_photos"]["per_image"].append({"image": "only-in-b", "iou_original": 0.0})  # not paired
    rows = compare(a["sets"], b["sets"])
    assert rows["carvana"]["metric"] == "dice_original" and rows["user_photos"]["metric"] == "iou_original"
    assert rows["carvana"]["better"] == 1 and rows["carvana"]["worse"] == 0
    user = rows["user_photos"]
    assert user["photos"] == 4 and (user["better"], user["worse"]) == (2, 1)
    assert user["difference"] == pytest.approx(0.0) and user["a"] == pytest.approx(0.75)
    low, high = user["interval"]
    assert low < 0 < high
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps(b))
    main([str(tmp_path / "a.json"), str(tmp_path / "b.json")])
    assert "user_photos" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main([str(tmp_path / "a.json"), str(tmp_path / "missing.json")])
