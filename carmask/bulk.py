"""`carmask-bulk`: segment a large photo collection on Ray Data (the `bulk` extra).

With a multi-band model (clouds) it classifies folders of GeoTIFF scenes instead: carmask.clouds.bulk.

Photos are listed (folders, globs, or list files of paths), decoded in Ray tasks, run through the ONNX
model in an actor pool (one session per actor, created once), and written as PNG masks (mirroring the
input folders, exactly as `carmask-predict` writes them) and a Parquet table: image id, path, width,
height, RLE, coverage, model, version, error. A photo that cannot be read is a row with its error, never a
stopped job. A rerun skips what is done: photos with their mask on disk and their row in the table.
Local Ray by default (`--num-cpus`), `--address` for an existing cluster; `s3://`/`gs://` outputs work
where pyarrow has those filesystems (not tested here).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from carmask.clouds.sensors import SENSOR_NAMES, BandInput
from carmask.files import PHOTO_SUFFIXES, expand_inputs, output_path, write_atomic
from carmask.inference import DEFAULT_MODEL, Segmenter
from carmask.manifest import load_manifest
from carmask.outputs import mask_png, rle_record
from carmask.preprocess import Fit, load_for_model, threshold_u8
from carmask.refine import QUALITIES

SCENE_SUFFIXES = {".tif", ".tiff"}
TABLE_COLUMNS = ("id", "path", "width", "height", "rle", "coverage", "model", "version", "error")


def list_photos(sources: list[str], suffixes: set[str] = PHOTO_SUFFIXES) -> list[Path]:
    """Photos (or scenes) from folders, globs and list files (`.txt`/`.lst`: one path per line, `#` comments)."""
    items: list[str] = []
    for source in sources:
        if Path(source).suffix.lower() in (".txt", ".lst") and Path(source).is_file():
            lines = Path(source).read_text().splitlines()
            items += [line.strip() for line in lines if line.strip() and not line.startswith("#")]
        else:
            items.append(source)
    return expand_inputs(items, suffixes)


def done_ids(table_dir: Path) -> set[str]:
    """Ids with a successful row in an earlier run's table."""
    if not table_dir.is_dir() or not any(table_dir.glob("*.parquet")):
        return set()
    import pyarrow.dataset as pads

    table = pads.dataset(str(table_dir), format="parquet").to_table(columns=["id", "error"])
    return {i for i, e in zip(table["id"].to_pylist(), table["error"].to_pylist(), strict=True) if not e}


def decode_batch(batch: dict, fit: Fit) -> dict:
    """Ray task: photos to model-size pixels; an unreadable one keeps zeros and its error."""
    n = len(batch["path"])
    pixels = np.zeros((n, fit.size[1], fit.size[0], 3), np.uint8)
    widths, heights, errors = np.zeros(n, np.int64), np.zeros(n, np.int64), []
    for i, path in enumerate(batch["path"]):
        try:
            pixels[i], photo = load_for_model(path, fit)
            widths[i], heights[i] = photo.size
            errors.append("")
        except Exception as exc:  # noqa: BLE001 - recorded in the row, the job goes on
            errors.append(f"{type(exc).__name__}: {exc}")
    return {**batch, "pixels": pixels, "width": widths, "height": heights, "error": np.array(errors, dtype=object)}


class SegmentActor:
    """Ray actor: one ONNX session, reused for every batch it is given."""

    def __init__(
        self, manifest: str, threads: int, write_masks: bool, out_dir: str | None, root: str | None, quality: str
    ):
        self.segmenter = Segmenter(manifest, providers=None, threads=threads)
        self.quality = quality  # "fast" skips the learned refinement at the photo's resolution
        self.write_masks, self.out_dir = write_masks, Path(out_dir) if out_dir else None
        self.root = Path(root) if root else None

    def __call__(self, batch: dict) -> dict:
        ok = [i for i, e in enumerate(batch["error"]) if not e]
        probs = self.segmenter.probabilities(batch["pixels"][ok]) if ok else []
        n, m = len(batch["path"]), self.segmenter.manifest
        rles, coverages = np.array([""] * n, dtype=object), np.zeros(n)
        for i, prob in zip(ok, probs, strict=True):
            size = (int(batch["width"][i]), int(batch["height"][i]))
            content = self.segmenter.content(prob, size, m.threshold, pixels=batch["pixels"][i])
            mask = threshold_u8(self.segmenter.at_photo(content, size, batch["path"][i], self.quality), m.threshold)
            record = rle_record(mask)
            rles[i], coverages[i] = record["rle"], record["coverage"]
            if self.write_masks:
                photo = Path(batch["path"][i])
                write_atomic(output_path(photo, "mask", self.out_dir, self.root), mask_png(mask))
        return {
            "id": batch["id"],
            "path": batch["path"],
            "width": batch["width"],
            "height": batch["height"],
            "rle": rles,
            "coverage": coverages,
            "model": np.array([m.name] * n, dtype=object),
            "version": np.array([m.version] * n, dtype=object),
            "error": batch["error"],
        }


def run_bulk(
    photos: list[Path],
    out_dir: Path,
    manifest: Path = DEFAULT_MODEL,
    root: Path | None = None,
    actors: int = 1,
    batch_size: int = 16,
    threads_per_actor: int = 0,
    write_masks: bool = True,
    write_table: bool = True,
    quality: str = "best",
) -> dict:
    """Segment `photos` on the Ray cluster `ray.init` connected to; returns counts. `quality` "fast" skips
    the learned refinement at the photo's resolution."""
    import ray

    model = load_manifest(manifest)
    table_dir = out_dir / "table"
    finished = done_ids(table_dir) if write_table else None

    def ident(path: Path) -> str:
        return str(path.relative_to(root)) if root and path.is_relative_to(root) else str(path)

    def is_done(path: Path) -> bool:
        if write_masks and not output_path(path, "mask", out_dir, root).is_file():
            return False
        return finished is None or ident(path) in finished

    todo = [p for p in photos if not is_done(p)]
    counts = {"photos": len(photos), "skipped": len(photos) - len(todo), "written": 0, "failed": 0}
    if not todo:
        return counts
    rows = [{"id": ident(p), "path": str(p)} for p in todo]
    total = float(ray.cluster_resources().get("CPU", 1))
    threads = threads_per_actor or max(1, int(total) // max(1, actors))  # onnxruntime threads per session
    # What the actors reserve from Ray's scheduler: all but one CPU, so decode tasks can always run
    # (reserving every CPU for actors deadlocks the pipeline: no decoded batch ever reaches them).
    actor_cpus = max(0.25, (total - 1) / max(1, actors))
    ds = ray.data.from_items(rows, override_num_blocks=max(1, min(len(rows) // batch_size, 200)))
    ds = ds.map_batches(decode_batch, batch_size=batch_size, fn_kwargs={"fit": model.input.fit})
    ds = ds.map_batches(
        SegmentActor,
        fn_constructor_kwargs={
            "manifest": str(manifest),
            "threads": threads,
            "write_masks": write_masks,
            "out_dir": str(out_dir),
            "root": str(root) if root else None,
            "quality": quality,
        },
        batch_size=batch_size,
        concurrency=actors,
        num_cpus=actor_cpus,
    )
    if write_table:
        ds = ds.materialize()
        ds.write_parquet(str(table_dir))
    errors = [e for batch in ds.iter_batches(batch_size=1024, batch_format="numpy") for e in batch["error"]]
    counts["failed"] = sum(1 for e in errors if e)
    counts["written"] = len(errors) - counts["failed"]
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="carmask-bulk",
        description="Segment many photos on Ray Data: PNG masks (as carmask-predict writes them) and a Parquet "
        "table of RLE and errors in --out. A rerun skips finished photos. With a multi-band model (--model "
        "models/carmask-clouds.json) it classifies GeoTIFF scenes, one per task: <scene>_classes.tif, the table "
        "and cover.csv. Needs the bulk extra (pip install 'carmask[bulk]'; scenes also 'carmask[scenes]').",
    )
    parser.add_argument("sources", nargs="+", help="photo files, folders, glob patterns, or .txt lists of paths")
    parser.add_argument("--out", type=Path, required=True, help="output folder: masks (mirrored) and table/")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="model manifest (.json)")
    parser.add_argument("--actors", type=int, default=1, help="model actors (one ONNX session each)")
    parser.add_argument("--batch-size", type=int, default=16, help="photos per decode task and model call")
    parser.add_argument("--threads-per-actor", type=int, default=0, help="CPUs per actor (0: share them all)")
    parser.add_argument("--num-cpus", type=int, help="CPUs of the local Ray instance (default: all)")
    parser.add_argument("--address", help="an existing Ray cluster (default: start a local one)")
    parser.add_argument("--no-masks", action="store_true", help="only the table")
    parser.add_argument("--no-table", action="store_true", help="only the masks")
    parser.add_argument("--quality", choices=QUALITIES, default="best",
                        help="photos: fast skips the learned refinement at the photo's resolution")  # fmt: skip
    scenes = parser.add_argument_group("multi-band models: GeoTIFF scenes, one per task, as carmask-predict")
    scenes.add_argument("--sensor", choices=SENSOR_NAMES, help="the scenes' sensor (bands and DN conversion)")
    scenes.add_argument("--bands", help="the scenes' bands in order, comma-separated")
    scenes.add_argument("--dn-scale", type=float, help="integers: reflectance = DN x this + --dn-add")
    scenes.add_argument("--dn-add", type=float, help="see --dn-scale (default: the sensor's)")
    scenes.add_argument("--tile", type=int, default=0, help="tile side (0: the model's largest side, at most 512)")
    args = parser.parse_args(argv)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError:
        parser.exit(2, "carmask-bulk: Ray is not installed: pip install 'carmask[bulk]'\n")
    multi_band = load_manifest(args.model.with_suffix(".json")).output.classes != []
    photos = list_photos(args.sources, SCENE_SUFFIXES if multi_band else PHOTO_SUFFIXES)
    if not photos:
        parser.error(f"no {'scenes' if multi_band else 'photos'} found in the given sources")
    root = Path(args.sources[0]) if len(args.sources) == 1 and Path(args.sources[0]).is_dir() else None
    if multi_band:
        return _scenes(parser, args, photos, root, ray)
    ray.init(address=args.address, num_cpus=None if args.address else args.num_cpus, include_dashboard=False)
    try:
        counts = run_bulk(
            photos,
            args.out,
            args.model.with_suffix(".json"),
            root,
            args.actors,
            args.batch_size,
            args.threads_per_actor,
            not args.no_masks,
            not args.no_table,
            args.quality,
        )
    finally:
        ray.shutdown()
    print(
        f"{counts['written']} written, {counts['failed']} failed, {counts['skipped']} already done "
        f"(of {counts['photos']})",
        file=sys.stderr,
    )
    return 1 if counts["failed"] else 0


def _scenes(parser, args, scenes: list[Path], root: Path | None, ray) -> int:
    from carmask.clouds.bulk import run_scene_bulk
    from carmask.clouds.patches import PatchError
    from carmask.clouds.scene import require_rasterio

    band_input = {"sensor": args.sensor, "bands": args.bands, "dn_scale": args.dn_scale, "dn_add": args.dn_add}
    try:
        require_rasterio()
        BandInput.parse(**band_input)  # refused here, before Ray starts
    except PatchError as exc:
        parser.error(str(exc))
    ray.init(address=args.address, num_cpus=None if args.address else args.num_cpus, include_dashboard=False)
    try:
        counts = run_scene_bulk(scenes, args.out, args.model.with_suffix(".json"), root, args.actors,
                                args.threads_per_actor, band_input, {"tile": args.tile})  # fmt: skip
    finally:
        ray.shutdown()
    print(f"{counts['written']} written, {counts['failed']} failed, {counts['skipped']} already done "
          f"(of {counts['scenes']}); cover per scene: {args.out / 'cover.csv'}", file=sys.stderr)  # fmt: skip
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
