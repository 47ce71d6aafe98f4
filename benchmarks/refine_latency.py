"""The request time at 1918x1280 with the learned refinement, beside v1 and the unrefined v2, in one run.

    python benchmarks/refine_latency.py [--photos 8] [--rounds 5] [--model models/carmask-v2.json]

Runs the service's own per-photo path (service.pipeline.segment_one: decode, model, post-processing,
refinement, PNG encoding) on Carvana test photos (generated 1918x1280 JPEGs when ../shared is absent) for
v1 (carmask-unet), the default model with quality=fast (no refinement at the photo's size: the 2.6.x/2.7.0
request) and with quality=best (refined), every configuration on every photo in turn so the machine's
neighbours weigh on all alike. Prints each one's median and 10th-90th percentile milliseconds, its ratio
to v1 per photo and round (median and 10th-90th percentile of the paired ratios), and the refinement's own
milliseconds (its stage: the second decode at full size, the band, the tiles, the network, the paste).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from time import perf_counter

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, test_photos

from carmask.inference import DEFAULT_MODEL, Segmenter
from service.pipeline import MaskFormat, MaskSize, Quality, segment_one

V1 = ROOT / "models" / "carmask-unet.json"
MAX_PIXELS = 50_000_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    args = parser.parse_args()
    photos = test_photos(args.photos)
    default = Segmenter(args.model)
    runs = {
        "v1 (carmask-unet)": (Segmenter(V1), Quality.best),
        f"{default.manifest.name} {default.manifest.version} quality=fast": (default, Quality.fast),
        f"{default.manifest.name} {default.manifest.version} quality=best": (default, Quality.best),
    }
    print(f"machine: {machine()}; {len(photos)} photos x {args.rounds} rounds, format=png, size=original")
    if default.refiner is None:
        print(f"note: {default.manifest.name} {default.manifest.version} has no learned stage: best = fast")
    ms: dict[str, list[float]] = {name: [] for name in runs}
    refine_ms: list[float] = []
    for seg, quality in runs.values():  # warm-up
        segment_one(seg, "warm.jpg", photos[0][1], MaskFormat.png, seg.threshold, MaskSize.original, MAX_PIXELS,
                    quality=quality)  # fmt: skip
    for _ in range(args.rounds):
        for photo_name, data in photos:
            for name, (seg, quality) in runs.items():
                timings: dict[str, float] = {}
                start = perf_counter()
                segment_one(seg, photo_name, data, MaskFormat.png, seg.threshold, MaskSize.original, MAX_PIXELS,
                            timings, quality=quality)  # fmt: skip
                ms[name].append((perf_counter() - start) * 1000)
                if quality is Quality.best and seg is default:
                    refine_ms.append(timings.get("refine", 0.0) * 1000)
    v1 = np.array(ms["v1 (carmask-unet)"])
    for name, values in ms.items():
        values = np.array(values)
        ratio = values / v1
        print(f"  {name:42} median {np.median(values):6.1f} ms (p10-p90 {np.percentile(values, 10):6.1f}-"
              f"{np.percentile(values, 90):6.1f})  x v1: {np.median(ratio):.2f} (p10-p90 "
              f"{np.percentile(ratio, 10):.2f}-{np.percentile(ratio, 90):.2f})")  # fmt: skip
    if default.refiner is not None:
        print(f"  the refinement's own stage: median {np.median(refine_ms):.1f} ms (p10-p90 "
              f"{np.percentile(refine_ms, 10):.1f}-{np.percentile(refine_ms, 90):.1f})")  # fmt: skip


if __name__ == "__main__":
    main()
