"""Model latency in onnxruntime: one 256x256 image, 2 threads, median of many runs.

python benchmarks/model_latency.py [models/*.onnx ...]
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine


def latency(path: Path, batch: int, threads: int = 0, runs: int = 50) -> float:
    # threads=0: onnxruntime's default, one per core (2 here), as the service runs it.
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((batch, 256, 256, 3), dtype=np.float32)
    name = session.get_inputs()[0].name
    for _ in range(5):
        session.run(None, {name: x})
    times = []
    for _ in range(runs if batch == 1 else max(5, runs // batch)):
        start = time.perf_counter()
        session.run(None, {name: x})
        times.append((time.perf_counter() - start) * 1000)
    return float(np.median(times))


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--one":  # child: time one model, print one row
        path = Path(sys.argv[2])
        one, sixteen = latency(path, 1), latency(path, 16) / 16
        print(f"{path.name:40} {path.stat().st_size / 1e6:6.2f} {one:11.1f} {sixteen:15.1f}")
        return
    paths = [Path(p) for p in sys.argv[1:]] or sorted((ROOT / "models").glob("*.onnx"))
    print(f"machine: {machine()}; onnxruntime {ort.__version__}, CPUExecutionProvider, default threads (1 per core)")
    print(f"{'model':40} {'MB':>6} {'1 image ms':>11} {'batch16 ms/img':>15}")
    for path in paths:
        # One process per model: a finished session's spinning threads would slow the next one down.
        subprocess.run([sys.executable, __file__, "--one", str(path)], check=True)


if __name__ == "__main__":
    main()
