"""carmask-bulk (Ray Data) against carmask-predict on the same folder: photos/s, the overhead ratio,
per-actor throughput, and (on a Carvana train folder) Dice of both against the labels.

python benchmarks/bulk_throughput.py [--folder ../shared/data/carvana/train] [--limit 0] [--actors 1 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine

DEFAULT = ROOT.parent / "shared" / "data" / "carvana" / "train"


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    return time.perf_counter() - start


def mean_dice(masks: Path, labels: Path, photos: list[Path]) -> float | None:
    if not labels.is_dir():
        return None
    scores = []
    for photo in photos:
        truth = np.asarray(Image.open(labels / f"{photo.stem}_mask.gif").convert("L")) > 0
        pred = np.asarray(Image.open(masks / f"{photo.stem}_mask.png")) > 0
        scores.append(2 * np.count_nonzero(truth & pred) / max(1, truth.sum() + pred.sum()))
    return float(np.mean(scores))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=DEFAULT)
    parser.add_argument("--limit", type=int, default=0, help="first N photos only (0: all)")
    parser.add_argument("--actors", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--model", default=str(ROOT / "models" / "carmask-v2.json"))
    args = parser.parse_args()
    photos = sorted(args.folder.glob("*.jpg"))[: args.limit or None]
    work = Path(tempfile.mkdtemp(prefix="carmask-bulk-bench-"))
    (work / "in").mkdir()
    for p in photos:  # one flat folder of exactly these photos, for both tools
        (work / "in" / p.name).symlink_to(p.resolve())
    bin_dir = Path(sys.executable).parent
    print(f"machine: {machine()}; {len(photos)} photos from {args.folder}")
    predict = timed([str(bin_dir / "carmask-predict"), str(work / "in"), "--out", str(work / "predict"),
                     "--model", args.model, "--batch-size", "16", "--quiet"])  # fmt: skip
    rate = len(photos) / predict
    labels = args.folder.parent / f"{args.folder.name}_masks"
    print(
        f"carmask-predict: {predict:6.1f} s  {rate:6.1f} photos/s  Dice {mean_dice(work / 'predict', labels, photos)}"
    )
    for actors in args.actors:
        out = work / f"bulk{actors}"
        seconds = timed([str(bin_dir / "carmask-bulk"), str(work / "in"), "--out", str(out), "--model", args.model,
                         "--actors", str(actors), "--batch-size", "16"])  # fmt: skip
        bulk_rate = len(photos) / seconds
        dice = mean_dice(out, labels, photos)
        print(
            f"carmask-bulk actors={actors}: {seconds:6.1f} s  {bulk_rate:6.1f} photos/s "
            f"({bulk_rate / rate:.2f}x predict, {bulk_rate / actors:.1f} per actor)  Dice {dice}"
        )
    print("(wall time includes start-up: Ray's is a few seconds)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
