"""Model latency in onnxruntime: one image at the model's input size, default threads (1 per core), side by side.

python benchmarks/model_latency.py [--rounds 5] [models/*.onnx ...] [model.onnx@288 ...]
python benchmarks/model_latency.py --paired 30 a.onnx b.onnx   # a few per cent apart: paired in one process

The input size comes from each model's manifest (`@SIZE` overrides it, to time one graph at another size).

The models take turns, one process each per round, so a noisy neighbour on the VM slows them alike; the
first model is the reference the others are compared with as a ratio (per round, then the median).
`--paired N` keeps every model's session open in one process and lets them take turns every 10 runs, N
rounds: each round's medians are taken seconds apart, so their ratio resolves differences of a few per cent
that the VM's load hides between processes (the first runs after another session's turn, slowed by its
spinning threads, fall out of each round's median).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine


def input_size(spec: str) -> tuple[Path, int]:
    """`model.onnx` or `model.onnx@288`: the file, and the side from `@` or its manifest (else 256)."""
    path, _, size = spec.partition("@")
    if size:
        return Path(path), int(size)
    manifest = Path(path).with_suffix(".json")
    return Path(path), json.loads(manifest.read_text())["input"]["height"] if manifest.is_file() else 256


def random_input(session: ort.InferenceSession, batch: int, side: int) -> np.ndarray:
    """A random input of the session's layout: NHWC (ours: 3 channels or a patch model's bands last) or NCHW
    (PyTorch exports such as rembg's u2netp: 3 channels first)."""
    shape = session.get_inputs()[0].shape
    if shape[1] == 3 and shape[-1] != 3:
        return np.random.default_rng(0).random((batch, 3, side, side), dtype=np.float32)
    return np.random.default_rng(0).random((batch, side, side, shape[-1]), dtype=np.float32)


def latency(path: Path, batch: int, side: int = 256, threads: int = 0, runs: int = 50) -> float:
    # threads=0: onnxruntime's default, one per core (2 here), as the service runs it.
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    x = random_input(session, batch, side)
    name = session.get_inputs()[0].name
    for _ in range(5):
        session.run(None, {name: x})
    times = []
    for _ in range(runs if batch == 1 else max(5, runs // batch)):
        start = time.perf_counter()
        session.run(None, {name: x})
        times.append((time.perf_counter() - start) * 1000)
    return float(np.median(times))


def paired(specs: list[str], rounds: int, block: int = 10) -> None:
    """All models in one process, taking turns every `block` runs: per-round ratios to the first model."""
    sessions, feeds = [], []
    for spec in specs:
        path, side = input_size(spec)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        x = random_input(session, 1, side)
        sessions.append(session)
        feeds.append({session.get_inputs()[0].name: x})
        for _ in range(20):
            session.run(None, feeds[-1])
    medians = np.zeros((rounds, len(specs)))
    for r in range(rounds):
        for i, (session, feed) in enumerate(zip(sessions, feeds, strict=True)):
            times = []
            for _ in range(block):
                start = time.perf_counter()
                session.run(None, feed)
                times.append((time.perf_counter() - start) * 1000)
            medians[r, i] = np.median(times)
    ratios = medians / medians[:, :1]
    reference = f"x {Path(specs[0]).name} (p10-p90)"
    print(f"{'model @ input side':32} {'1 image ms: median (p10-p90)':>30} {reference:>36}")
    for i, spec in enumerate(specs):
        path, side = input_size(spec)
        ms, ratio = np.percentile(medians[:, i], [50, 10, 90]), np.percentile(ratios[:, i], [50, 10, 90])
        print(
            f"{f'{path.name} @ {side}':32} {ms[0]:13.2f} ({ms[1]:5.2f}-{ms[2]:6.2f})     "
            f"{ratio[0]:15.3f} ({ratio[1]:.3f}-{ratio[2]:.3f})"
        )
    print(f"({rounds} rounds in one process, models taking turns every {block} runs; medians of the rounds)")


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--one":  # child: time one model, print one JSON line
        path, side = input_size(sys.argv[2])
        print(json.dumps({"one": latency(path, 1, side), "batch16": latency(path, 16, side) / 16}))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="ONNX files, each optionally @SIZE")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--paired", type=int, metavar="N", help="N rounds with every model in one process")
    args = parser.parse_args()
    paths = args.models or [str(p) for p in sorted((ROOT / "models").glob("*.onnx"))]
    print(f"machine: {machine()}; onnxruntime {ort.__version__}, CPUExecutionProvider, default threads (1 per core)")
    if args.paired:
        paired(paths, args.paired)
        return
    rounds: dict[str, list[dict]] = {p: [] for p in paths}
    for _ in range(args.rounds):
        for path in paths:
            # One process per model: a finished session's spinning threads would slow the next one down.
            out = subprocess.run([sys.executable, __file__, "--one", path], check=True, capture_output=True)
            rounds[path].append(json.loads(out.stdout))
    reference = paths[0]
    header = f"{'model @ input side':32} {'MB':>5} {'1 image ms: median (min-max)':>30} {'batch16 ms/img':>15}"
    print(f"{header} {'x ' + Path(reference).name:>22}")
    for spec, runs in rounds.items():
        path, side = input_size(spec)
        one = [r["one"] for r in runs]
        ratio = np.median([r["one"] / ref["one"] for r, ref in zip(runs, rounds[reference], strict=True)])
        label = f"{path.name} @ {side}"
        print(
            f"{label:32} {path.stat().st_size / 1e6:5.2f} {np.median(one):13.1f} ({min(one):5.1f}-{max(one):5.1f})"
            f"{'':6} {np.median([r['batch16'] for r in runs]):15.1f} {ratio:22.2f}"
        )
    print(f"({args.rounds} rounds, models taking turns; each figure a median of 50 runs in its own process)")


if __name__ == "__main__":
    main()
