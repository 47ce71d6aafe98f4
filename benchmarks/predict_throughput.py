"""`carmask-predict` throughput over the 32 Carvana test photos, with the time split by stage.

python benchmarks/predict_throughput.py [--threads 2] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, test_photos

from carmask.inference import DEFAULT_MODEL, Segmenter
from carmask.predict import predict_paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0: one per core)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        photos = []
        for name, data in test_photos():
            (Path(tmp) / name).write_bytes(data)
            photos.append(Path(tmp) / name)
        segmenter = Segmenter(args.model, threads=args.threads)
        predict_paths(segmenter, photos[:4], out_dir=Path(tmp) / "warm", progress=False)
        start = time.perf_counter()
        stats = predict_paths(segmenter, photos, out_dir=Path(tmp) / "out", batch_size=args.batch_size, progress=False)
        elapsed = time.perf_counter() - start
    total = sum(stats.seconds.values())
    print(f"machine: {machine()}; model {args.model.name}, {args.threads} threads, batch {args.batch_size}")
    print(f"{len(stats.written)} photos in {elapsed:.2f} s: {len(stats.written) / elapsed:.1f} photos/s")
    for stage, seconds in stats.seconds.items():
        print(
            f"  {stage:7} {seconds:6.2f} s  {100 * seconds / total:5.1f}%  {1000 * seconds / len(photos):6.1f} ms/photo"
        )


if __name__ == "__main__":
    main()
