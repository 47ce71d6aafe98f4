"""U-Net size against speed: parameters, GFLOP and onnxruntime latency per base width (random weights).

    python benchmarks/model_sizes.py [--widths 8 12 16] [--depth 4]

Needs the training extras (TensorFlow + tf2onnx) to build and export the models.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine
from model_latency import latency

from training.export import convert
from training.model.unet import UNetConfig, build_unet


def gflop(cfg: UNetConfig, size: int = 256) -> float:
    """Multiply-adds x 2 of the convolutions for one image (BatchNorm folds into them)."""
    w, total, res = cfg.widths(), 0.0, size
    c_in = cfg.in_channels
    for level in range(cfg.depth):
        total += res * res * 9 * (c_in * w[level] + w[level] * w[level])
        c_in, res = w[level], res // 2
    total += res * res * 9 * (c_in * w[-1] + w[-1] * w[-1])
    for level in reversed(range(cfg.depth)):
        res *= 2
        total += res * res * w[level + 1] * w[level]  # 2x2 stride-2 transposed conv
        total += res * res * 9 * (2 * w[level] * w[level] + w[level] * w[level])
    total += size * size * w[0] * cfg.num_classes
    return 2 * total / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--widths", type=int, nargs="+", default=[8, 12, 16])
    parser.add_argument("--depth", type=int, default=4)
    args = parser.parse_args()
    print(f"machine: {machine()}; onnxruntime CPU, 2 threads, 256x256")
    print(f"{'width':>5} {'params':>9} {'GFLOP':>6} {'1 image ms':>11} {'batch16 ms/img':>15}")
    with tempfile.TemporaryDirectory() as tmp:
        for width in args.widths:
            cfg = UNetConfig(base_width=width, depth=args.depth)
            model = build_unet(cfg)
            path = Path(tmp) / f"w{width}.onnx"
            convert(model, path)
            one, batch = latency(path, 1), latency(path, 16) / 16
            print(f"{width:5} {model.count_params():9,} {gflop(cfg):6.2f} {one:11.1f} {batch:15.1f}")


if __name__ == "__main__":
    main()
