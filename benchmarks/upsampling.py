"""Does upsampling probabilities (what the service does) beat upsampling the thresholded 256x256 mask?

    python benchmarks/upsampling.py --run-dir runs/w8 [--model models/carmask-unet.json]

Mean Dice at the photos' original resolution on the run's validation cars, both ways.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine

from carmask.inference import DEFAULT_MODEL, Segmenter
from carmask.metrics import per_image_scores
from carmask.preprocess import probabilities_to_mask
from training.data.cache import load_arrays
from training.data.reader import load_mask, read_carvana
from training.data.split import read_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    args = parser.parse_args()
    config = json.loads((args.run_dir / "config.json").read_text())
    _, val = read_split(args.run_dir / "split.json", read_carvana(Path(config["data_dir"])))
    seg = Segmenter(args.model)
    images, _ = load_arrays(val, seg.input_size, Path(config["cache_dir"]))
    dice = {"probabilities, bilinear": [], "binary mask, nearest": []}
    for start in range(0, len(val), 16):
        probs = seg.probabilities(images[start : start + 16])
        for sample, prob in zip(val[start : start + 16], probs, strict=True):
            truth = load_mask(sample)
            size = truth.shape[::-1]
            soft = probabilities_to_mask(prob, size, seg.threshold)
            small = Image.fromarray(((prob > seg.threshold) * 255).astype(np.uint8))
            hard = (np.asarray(small.resize(size, Image.Resampling.NEAREST)) > 0).astype(np.uint8)
            for key, mask in zip(dice, (soft, hard), strict=True):
                dice[key].append(per_image_scores(mask[None], truth[None])["dice"][0])
    print(f"machine: {machine()}; {len(val)} validation photos, model {args.model.name}")
    for key, values in dice.items():
        print(f"  upsampling {key:25}: mean Dice at original resolution {np.mean(values):.4f}")


if __name__ == "__main__":
    main()
