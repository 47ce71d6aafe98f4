"""IoU by photo aspect: held-out photos cropped to portrait, square and panorama frames, every tool side by side.

Phone photos come in 3:4 and 9:16 portrait as often as in landscape; the training photos are 3:2
(Carvana), 1:1 (DSMLR) and 16:9 (DAVIS). Each held-out photo is cropped to each aspect, as large as fits,
centred on its car (so a portrait crop cuts a side-on car at the frame's edges, as a phone held upright
does), re-encoded as JPEG (quality 92) and segmented by each tool. A manifest with an aspect range is also
run with it removed ("squashed"), which shows what its letterboxing is worth.

Needs `../shared/data` (DSMLR test photos, the held-out DAVIS sequence); the peer (rembg's u2netp) as in
peer_comparison.py, or `--no-peer`.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import machine
from benchmarks.peer_comparison import _iou, held_out, ours, rembg_u2netp

ASPECTS = {"as is": None, "1:1": 1.0, "4:3": 4 / 3, "16:9": 16 / 9, "2:1": 2.0, "2.4:1": 2.4}
ASPECTS |= {"3:4": 3 / 4, "9:16": 9 / 16}  # portrait


def crop_around_car(image: Image.Image, label: np.ndarray, aspect: float) -> tuple[Image.Image, np.ndarray]:
    """The largest crop of `aspect` (width / height) centred on the car's pixels, kept inside the photo."""
    width, height = image.size
    rows, cols = np.nonzero(label == 1)
    w, h = (width, width / aspect) if width / aspect <= height else (height * aspect, height)
    w, h = int(w), int(h)
    x0 = int(np.clip(cols.mean() - w / 2, 0, width - w))
    y0 = int(np.clip(rows.mean() - h / 2, 0, height - h))
    return image.crop((x0, y0, x0 + w, y0 + h)), label[y0 : y0 + h, x0 : x0 + w]


def contenders(models: list[Path], peer: bool) -> dict:
    from carmask.manifest import load_manifest

    out = {}
    for path in models:
        manifest = load_manifest(path)
        label = f"{manifest.name} {manifest.version}"  # two versions of one model are two columns
        out[label] = ours(manifest)
        if manifest.input.aspect_range is not None:
            squashed = load_manifest(path)
            squashed.input.aspect_range = None
            out[f"{label} squashed"] = ours(squashed)
    if peer:
        out["rembg-u2netp"] = rembg_u2netp()
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", type=Path, default=[Path("models/carmask-v2.json")])
    parser.add_argument("--run-dir", type=Path, help="the run whose held-out data to use (default recipe's split)")
    parser.add_argument("--sets", default="dsmlr,davis")
    parser.add_argument("--per-set", type=int, default=100, help="photos per set at most")
    parser.add_argument("--no-peer", action="store_true", help="our models only")
    args = parser.parse_args(argv)

    tools = contenders(args.models, not args.no_peer)
    photos = held_out(args.run_dir, args.sets.split(","), args.per_set)
    print(f"machine: {machine()}")
    for set_name, items in photos.items():
        scores = {(t, a): [] for t in tools for a in ASPECTS}
        for item in items:
            image, label = Image.open(item.image_path).convert("RGB"), item.load_label()
            for aspect_name, aspect in ASPECTS.items():
                crop, truth = (image, label) if aspect is None else crop_around_car(image, label, aspect)
                buf = io.BytesIO()
                crop.save(buf, "JPEG", quality=92)
                for tool, segment in tools.items():
                    scores[(tool, aspect_name)].append(_iou(segment(buf.getvalue()), truth)[0])
        print(f"\n{set_name}: {len(items)} photos, mean IoU per crop aspect (width:height)")
        width = 2 + max(len(t) for t in tools)  # a column per tool, wide enough for its name
        print(f"{'aspect':8}" + "".join(f"{t:>{width}}" for t in tools))
        for aspect_name in ASPECTS:
            print(f"{aspect_name:8}" + "".join(f"{np.mean(scores[(t, aspect_name)]):{width}.4f}" for t in tools))


if __name__ == "__main__":
    main()
