"""What each cutout option costs: POST /segment?format=cutout's work in-process, per option, in one run.

    python benchmarks/cutout_options.py [--photos 8] [--rounds 3] [--model models/carmask-v2.json]

Runs the service's own per-photo path (service.pipeline.segment_one: decode, model, post-processing, full-
resolution decode, cutout, encoding) on Carvana test photos (generated 1918x1280 JPEGs when ../shared is
absent), first with no option (today's cutout) and then each option alone and all of them together, every
configuration on every photo in turn, so neighbours on the machine weigh on all alike. Prints the median
and the 10th-90th percentile milliseconds per photo, and each option's median above the plain cutout.
Options that need glass are skipped, with a note, for a model without a glass output.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from time import perf_counter

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, test_photos

from carmask.cutout import CutoutOptions
from carmask.inference import DEFAULT_MODEL, Segmenter
from service.pipeline import MaskFormat, MaskSize, segment_one

CONFIGS = {
    "plain (no option)": {},
    "windows=transparent": {"windows": "transparent"},
    "windows=tinted": {"windows": "tinted"},
    "shadow=contact": {"shadow": "contact"},
    "bg_color=ffffff": {"bg_color": "ffffff"},
    "crop=true": {"crop": True},
    "decontaminate=true": {"decontaminate": True},
    "output=webp": {"output": "webp"},
    "output=jpeg (bg ffffff)": {"output": "jpeg", "bg_color": "ffffff"},
    "all (transparent, shadow, bg, crop, decontaminate, jpeg)": {
        "windows": "transparent",
        "shadow": "contact",
        "bg_color": "ffffff",
        "crop": True,
        "decontaminate": True,
        "output": "jpeg",
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    args = parser.parse_args()
    seg = Segmenter(args.model)
    photos = test_photos(args.photos)
    configs = {k: v for k, v in CONFIGS.items() if seg.glass.present or "windows" not in v}
    if len(configs) < len(CONFIGS):
        print(f"note: {seg.manifest.name} {seg.manifest.version} marks no glass: windows options skipped")
    times: dict[str, list[float]] = {k: [] for k in configs}
    for _ in range(args.rounds):
        for name, data in photos:
            for label, options in configs.items():
                start = perf_counter()
                segment_one(seg, name, data, MaskFormat.cutout, seg.threshold, MaskSize.original, 50_000_000,
                            options=CutoutOptions(**options))  # fmt: skip
                times[label].append((perf_counter() - start) * 1000)
    size = "x".join(map(str, Image.open(io.BytesIO(photos[0][1])).size))
    print(f"{seg.manifest.name} {seg.manifest.version}, {len(photos)} photos ({size}) x {args.rounds} rounds, "
          f"{machine()}")  # fmt: skip
    plain = float(np.median(times["plain (no option)"]))
    print(f"{'configuration':58s} {'median ms':>9s} {'p10-p90':>13s} {'+ms':>7s}")
    for label, values in times.items():
        median = float(np.median(values))
        p10, p90 = np.percentile(values, [10, 90])
        print(f"{label:58s} {median:9.1f} {p10:6.1f}-{p90:6.1f} {median - plain:+7.1f}")


if __name__ == "__main__":
    main()
