"""`carmask-bulk --model <multi-band model>`: folders of satellite scenes on Ray Data, one scene per task.

A scene is already a large unit of work (carmask.clouds.scene tiles it in bounded memory), so scenes are
not batched: each actor holds one ONNX session and classifies one scene at a time into
`<scene>_classes.tif` (mirroring the input folders, as carmask-predict writes it). The Parquet table gets a
row per scene (its summary as JSON: each group's and class's share, valid and fill pixels; model; error) and
`cover.csv` is written from the whole table, one row per scene as carmask-predict writes it. A scene that
cannot be read is a row with its error. A rerun skips scenes whose class map is on disk and whose row is in
the table.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from carmask.clouds.cover import cover_csv
from carmask.files import PATCH_FORMATS, output_path, write_atomic

SCENE_COLUMNS = ("id", "path", "summary", "model", "version", "error")


class SceneActor:
    """Ray actor: one PatchSegmenter (one ONNX session), a scene per call."""

    def __init__(self, manifest: str, threads: int, out_dir: str, root: str | None, band_input: dict, tiling: dict):
        from carmask.clouds.scene import Tiling
        from carmask.clouds.segmenter import PatchSegmenter
        from carmask.clouds.sensors import BandInput

        self.seg = PatchSegmenter(manifest, threads=threads)
        self.out_dir, self.root = Path(out_dir), Path(root) if root else None
        self.band_input, self.tiling = BandInput.parse(**band_input), Tiling(**tiling)

    def __call__(self, batch: dict) -> dict:
        from carmask.clouds.patches import PatchError
        from carmask.clouds.scene import segment_scene

        rows = []
        for ident, path in zip(batch["id"], batch["path"], strict=True):
            row = {"id": ident, "path": path, "model": self.seg.manifest.name, "version": self.seg.manifest.version}
            try:
                target = output_path(Path(path), "geotiff", self.out_dir, self.root, PATCH_FORMATS)
                target.parent.mkdir(parents=True, exist_ok=True)
                summary = segment_scene(self.seg, path, target, self.band_input, self.tiling)
                row.update(summary=json.dumps(summary), error="")
            except (PatchError, OSError, ValueError) as exc:
                row.update(summary="", error=f"{type(exc).__name__}: {exc}")
            rows.append(row)
        return {c: np.array([r[c] for r in rows], dtype=object) for c in SCENE_COLUMNS}


def run_scene_bulk(
    scenes: list[Path],
    out_dir: Path,
    manifest: Path,
    root: Path | None = None,
    actors: int = 1,
    threads_per_actor: int = 0,
    band_input: dict | None = None,
    tiling: dict | None = None,
) -> dict:
    """Classify `scenes` on the Ray cluster `ray.init` connected to; returns counts (and writes cover.csv)."""
    import ray

    from carmask.bulk import done_ids

    table_dir = out_dir / "table"
    finished = done_ids(table_dir)

    def ident(path: Path) -> str:
        return str(path.relative_to(root)) if root and path.is_relative_to(root) else str(path)

    def is_done(path: Path) -> bool:
        target = output_path(path, "geotiff", out_dir, root, PATCH_FORMATS)
        return target.is_file() and ident(path) in finished

    todo = [p for p in scenes if not is_done(p)]
    counts = {"scenes": len(scenes), "skipped": len(scenes) - len(todo), "written": 0, "failed": 0}
    if todo:
        total = float(ray.cluster_resources().get("CPU", 1))
        threads = threads_per_actor or max(1, int(total) // max(1, actors))
        rows = [{"id": ident(p), "path": str(p)} for p in todo]
        kwargs = {"manifest": str(manifest), "threads": threads, "out_dir": str(out_dir), "tiling": tiling or {},
                  "root": str(root) if root else None, "band_input": band_input or {}}  # fmt: skip
        ds = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
            SceneActor,
            fn_constructor_kwargs=kwargs,
            batch_size=1,
            concurrency=actors,
            num_cpus=max(0.25, total / max(1, actors)),
        )
        ds = ds.materialize()
        ds.write_parquet(str(table_dir))
        errors = [e for batch in ds.iter_batches(batch_size=256, batch_format="numpy") for e in batch["error"]]
        counts["failed"] = sum(1 for e in errors if e)
        counts["written"] = len(errors) - counts["failed"]
    write_cover_csv(table_dir, out_dir / "cover.csv")
    return counts


def write_cover_csv(table_dir: Path, target: Path) -> None:
    """cover.csv from every successful row of the table (the latest per scene), as carmask-predict writes it."""
    import pyarrow.dataset as pads

    if not table_dir.is_dir():
        return
    latest: dict[str, dict] = {}
    for row in pads.dataset(str(table_dir), format="parquet").to_table().to_pylist():
        if not row["error"]:
            latest[row["id"]] = row
    if not latest:
        return
    rows = [(r["path"], json.loads(r["summary"])) for r in sorted(latest.values(), key=lambda r: r["id"])]
    write_atomic(target, cover_csv(rows))
