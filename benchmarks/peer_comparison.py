"""Our models against rembg's u2netp on the same held-out photos: IoU and end-to-end ms per photo, one run.

End to end means what each tool does from the photo's bytes to a full-resolution mask: ours decodes (JPEG
draft mode), resizes, runs the model and upsamples (`Segmenter.segment_files`); rembg decodes, runs
u2netp at 320x320 and resizes back (`rembg.remove(..., only_mask=True)`), thresholded at 128. The tools
take turns every `--block` photos, so a noisy neighbour slows them alike, while each runs a stretch of
photos as a service would (photo by photo, a session's spinning threads slow the next tool's first
call); figures are medians with p10-p90.

Needs the peer extra (`pip install -e '.[peer]'`) and u2netp (`carmask-weights fetch u2netp`);
`make benchmark-peer` does both.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import machine

WEIGHTS = Path(".cache/carmask/weights")


def _iou(pred: np.ndarray, label: np.ndarray) -> tuple[float, float]:
    from carmask.metrics import per_image_scores
    from training.data.sources import IGNORE

    valid = label != IGNORE
    iou = float(per_image_scores(pred[None], (label == 1)[None], valid[None])["iou"][0])
    return iou, float(np.count_nonzero(pred & valid) / max(1, np.count_nonzero(valid)))


def held_out(run_dir: Path | None, sets: list[str], per_set: int) -> dict[str, list]:
    """Up to `per_set` photos of each evaluation set, evenly spaced (so every car/sequence appears)."""
    from training.config import TrainConfig, load_run_config
    from training.data.mixture import held_out_photos
    from training.data.reader import read_carvana
    from training.data.split import read_split, split_by_car

    cfg = load_run_config(run_dir) if run_dir else TrainConfig()
    carvana = read_carvana(cfg.data_dir)
    if run_dir:
        _, val = read_split(run_dir / "split.json", carvana)
    else:
        _, val = split_by_car(carvana, cfg.val_fraction, cfg.seed)  # the default recipe's split
    out = {}
    for name in sets:
        photos = held_out_photos(cfg, val, name)
        pick = np.linspace(0, len(photos) - 1, min(per_set, len(photos))).round().astype(int)
        out[name] = [photos[i] for i in pick]
    return out


def ours(manifest):
    """One of our models (a manifest path, or a loaded Manifest): photo bytes in, full-size bool mask out."""
    from carmask.inference import Segmenter

    segmenter = Segmenter(manifest, providers=["CPUExecutionProvider"])
    return lambda data: segmenter.segment_files([data])[0].astype(bool)


def rembg_u2netp():
    from training.weights.u2netp import u2netp_session

    session, remove = u2netp_session(WEIGHTS)

    def segment(data: bytes) -> np.ndarray:
        with Image.open(io.BytesIO(data)) as img:
            mask = remove(img, session=session, only_mask=True)
        return np.asarray(mask) > 127

    return segment


def _run_one(name: str, segment, data: bytes, label: np.ndarray, item, cell: dict) -> None:
    start = time.perf_counter()
    pred = segment(data)
    spent = (time.perf_counter() - start) * 1000
    if pred.shape != label.shape:
        raise RuntimeError(f"{name}: mask {pred.shape} for a {label.shape} photo ({item.name})")
    iou, coverage = _iou(pred, label)
    cell["iou"].append(iou), cell["coverage"].append(coverage), cell["ms"].append(spent)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", type=Path, default=[Path("models/carmask-v2.json")])
    parser.add_argument("--run-dir", type=Path, help="the run whose held-out data to use (default recipe's split)")
    parser.add_argument("--sets", default="carvana,dsmlr,davis,no_car")
    parser.add_argument("--per-set", type=int, default=100, help="photos per set at most")
    parser.add_argument(
        "--block",
        type=int,
        default=10,
        help="photos each tool runs back to back before the next takes its turn (1: photo by photo; an "
        "onnxruntime session's threads spin on after a call and slow whichever session runs next)",
    )
    parser.add_argument("--no-peer", action="store_true", help="our models only")
    args = parser.parse_args(argv)

    contenders = {m.stem: ours(m) for m in args.models}
    if not args.no_peer:
        contenders["rembg-u2netp"] = rembg_u2netp()
    photos = held_out(args.run_dir, args.sets.split(","), args.per_set)
    print(f"machine: {machine()}")
    first = next(iter(photos.values()))[0].image_path.read_bytes()
    for segment in contenders.values():  # warm-up: session arenas and lazy initialisation are not per-photo costs
        segment(first)
    results = {name: {s: {"iou": [], "coverage": [], "ms": []} for s in photos} for name in contenders}
    for set_name, items in photos.items():
        for start in range(0, len(items), args.block):
            chunk = items[start : start + args.block]
            block = [(item.image_path.read_bytes(), item.load_label(), item) for item in chunk]
            for name, segment in contenders.items():
                for data, label, item in block:
                    _run_one(name, segment, data, label, item, results[name][set_name])
        print(f"  {set_name}: {len(items)} photos done", flush=True)

    print(f"\n{'set':8} {'photos':>6}  " + "  ".join(f"{n:>34}" for n in contenders))
    print(f"{'':8} {'':6}  " + "  ".join(f"{'IoU   ms median (p10-p90)':>34}" for _ in contenders))
    for set_name, items in photos.items():
        cells = []
        for name in contenders:
            c = results[name][set_name]
            metric = f"cov {np.mean(c['coverage']):.3f}" if set_name == "no_car" else f"{np.mean(c['iou']):.4f}"
            ms = np.percentile(c["ms"], [50, 10, 90])
            cells.append(f"{metric:>11} {ms[0]:7.1f} ({ms[1]:5.1f}-{ms[2]:6.1f})")
        print(f"{set_name:8} {len(items):6d}  " + "  ".join(f"{c:>34}" for c in cells))
    if "rembg-u2netp" in contenders:
        peer = np.median([m for s in results["rembg-u2netp"].values() for m in s["ms"]])
        for name in args.models:
            mine = np.median([m for s in results[name.stem].values() for m in s["ms"]])
            print(f"end to end, all photos: {name.stem} {mine:.1f} ms, u2netp {peer:.1f} ms: {peer / mine:.1f}x faster")
    print("(no_car: mean share of the frame predicted as car; IoU elsewhere, ignored pixels left out)")


if __name__ == "__main__":
    main()
