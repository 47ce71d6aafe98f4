"""carmask-bulk on local Ray (2 CPUs) with the red test model: masks as carmask-predict's, errors, resume."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from carmask.predict import main as predict_main
from tests.fixtures import red_box_photo

pytest.importorskip("ray")
pytestmark = pytest.mark.slow
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def make_photos(root, count=10):
    for i in range(count):
        folder = root / f"car{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        red_box_photo(120 + 8 * i, 90, box=(0.1 + 0.02 * i, 0.2, 0.6, 0.8))[0].save(folder / f"v{i:02d}.jpg")
    (root / "car0" / "broken.jpg").write_bytes(b"not a photo")
    return root


def test_bulk_writes_predicts_masks_records_errors_and_resumes(tmp_path, red_model):
    import pyarrow.dataset as pads

    from carmask.bulk import main as bulk_main

    photos = make_photos(tmp_path / "in")
    argv = [str(photos), "--out", str(tmp_path / "bulk"), "--model", str(red_model), "--num-cpus", "2"]
    assert bulk_main([*argv, "--actors", "2", "--batch-size", "4"]) == 1  # 1: a photo failed
    predict_main([str(photos), "--out", str(tmp_path / "predict"), "--model", str(red_model), "--quiet"])

    masks = sorted(p.relative_to(tmp_path / "bulk") for p in (tmp_path / "bulk").rglob("*_mask.png"))
    assert masks == sorted(p.relative_to(tmp_path / "predict") for p in (tmp_path / "predict").rglob("*_mask.png"))
    assert len(masks) == 10
    for rel in masks:
        a, b = (np.asarray(Image.open(tmp_path / d / rel)) for d in ("bulk", "predict"))
        assert np.array_equal(a, b), rel

    table = pads.dataset(str(tmp_path / "bulk" / "table"), format="parquet").to_table().to_pylist()
    assert len(table) == 11
    broken = next(r for r in table if r["id"].endswith("broken.jpg"))
    assert "UnsupportedImageError" in broken["error"] and not broken["rle"]
    good = next(r for r in table if r["id"] == "car1/v01.jpg")
    assert good["model"] == "red" and good["width"] == 128 and 0 < good["coverage"] < 1 and not good["error"]

    # A rerun does only what is missing: one mask deleted, the broken photo retried.
    (tmp_path / "bulk" / "car1" / "v01_mask.png").unlink()
    import ray

    from carmask.bulk import list_photos, run_bulk

    ray.init(num_cpus=2, include_dashboard=False)
    try:
        counts = run_bulk(list_photos([str(photos)]), tmp_path / "bulk", red_model, root=photos)
    finally:
        ray.shutdown()
    assert counts == {"photos": 11, "skipped": 9, "written": 1, "failed": 1}
    assert (tmp_path / "bulk" / "car1" / "v01_mask.png").is_file()


def test_list_files_name_photos(tmp_path):
    from carmask.bulk import list_photos

    photos = make_photos(tmp_path / "in", count=3)
    listing = tmp_path / "photos.txt"
    listing.write_text(f"# a list\n{photos / 'car0' / 'v00.jpg'}\n{photos / 'car1' / 'v01.jpg'}\n")
    assert [p.name for p in list_photos([str(listing)])] == ["v00.jpg", "v01.jpg"]
