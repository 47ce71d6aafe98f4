"""Our cloud models against ukis-csmask and a brightness threshold: held-out L8 Biome patches and other sensors.

Cloud IoU (thin + thick cloud as one class; the peer and the threshold know only "cloud"), accuracy over
clear / cloud / shadow, the cloud-cover error per patch (percentage points) with its spread, and ms per
patch end to end (from the file's bytes to a class map), the methods taking turns patch by patch.

- ours: `PatchSegmenter` on the manifest's bands (carmask-clouds: all 8).
- ukis-csmask 1.0.0 (PyPI, Apache-2.0): its 6-band (blue..swir2) and 4-band (blue..nir) Level-1C models
  (U-Net, EfficientNet-B4 encoder, trained on Sentinel-2 / Landsat data of its own), run as its README
  says: `CSmask(img, band_order, product_level="l1c").csm` (classes clear, cloud, shadow).
- threshold: cloud where the mean of blue, green and red is over t, t chosen on --fit-splits (the floor).

Cross-sensor (`--chips DIR`): ukis-csmask's own test chips, a Sentinel-2, a Landsat-7 and a Landsat-5 scene
(training.clouds.chips; 512x512 reflectance, blue..swir2; fetched from github dlr-eoc/ukis-csmask, never
committed). Ours takes the bands its manifest names (models needing cirrus or thermal cannot run there);
pooled cloud IoU over the three chips, cover error per chip, ms per chip from the array.

Needs `pip install ukis-csmask==1.0.0` (the peer extra) and ../shared/data/clouds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import machine

UKIS_NAMES = {"swir1": "swir16", "swir2": "swir22"}  # ukis-csmask's band names for ours
PEER_TO_LABELS = np.array([0, 2, 3], np.uint8)  # its clear, cloud, shadow -> our clear, thick cloud, shadow


def brightness(image: np.ndarray) -> np.ndarray:
    return image[..., :3].mean(axis=-1)  # blue, green, red: FILE_BANDS order


def fit_threshold(images: np.ndarray, labels: np.ndarray) -> float:
    """The visible-brightness threshold with the best pooled cloud IoU on the fitting patches."""
    from training.clouds.data import IGNORE

    valid, cloud = labels != IGNORE, np.isin(labels, [1, 2])
    bright = brightness(images)
    best = (0.0, 0.2)
    for t in np.arange(0.05, 0.8, 0.01):
        pred = bright > t
        iou = np.count_nonzero(pred & cloud & valid) / max(1, np.count_nonzero((pred | cloud) & valid))
        best = max(best, (iou, float(t)))
    return best[1]


def methods(models: list[Path], threshold: float, ukis: bool) -> dict:
    """name -> function(tiff bytes) -> class map in the labels' space."""
    from carmask.clouds.patches import read_patch
    from carmask.clouds.segmenter import PatchSegmenter
    from training.clouds.bands import FILE_BANDS

    out = {}
    for path in models:
        seg = PatchSegmenter(path, providers=["CPUExecutionProvider"])
        out[seg.manifest.name] = lambda data, seg=seg: seg.segment(data, FILE_BANDS).class_map
    if ukis:
        from ukis_csmask.mask import CSmask

        for bands in (6, 4):
            names = [UKIS_NAMES.get(b, b) for b in FILE_BANDS[:bands]]

            def peer(data, bands=bands, names=names):
                image = np.ascontiguousarray(read_patch(data)[..., :bands])
                return PEER_TO_LABELS[CSmask(image, band_order=names, product_level="l1c").csm[..., 0]]

            out[f"ukis-csmask {bands}-band"] = peer
    out[f"threshold (visible > {threshold:.2f})"] = lambda data: np.where(
        brightness(read_patch(data)) > threshold, 2, 0
    ).astype(np.uint8)
    return out


def chip_methods(models: list[Path], threshold: float, ukis: bool) -> dict:
    """name -> function(reflectance (H, W, 6) in CHIP_BANDS order) -> class map; models lacking bands are left out."""
    from carmask.clouds.segmenter import PatchSegmenter
    from carmask.clouds.sensors import BandInput
    from training.clouds.chips import CHIP_BANDS

    out = {}
    for path in models:
        seg = PatchSegmenter(path, providers=["CPUExecutionProvider"])
        if not set(seg.band_names) <= set(CHIP_BANDS):
            print(f"{seg.manifest.name}: needs {', '.join(seg.band_names)}; the chips have {', '.join(CHIP_BANDS)}")
            continue
        names = BandInput(bands=CHIP_BANDS)
        out[seg.manifest.name] = lambda image, seg=seg, names=names: seg.classify(seg.bands_of(image, names)).class_map
    if ukis:
        from ukis_csmask.mask import CSmask

        for bands in (6, 4):
            names = [UKIS_NAMES.get(b, b) for b in CHIP_BANDS[:bands]]

            def peer(image, bands=bands, names=names):
                image = np.ascontiguousarray(image[..., :bands])
                return PEER_TO_LABELS[CSmask(image, band_order=names, product_level="l1c").csm[..., 0]]

            out[f"ukis-csmask {bands}-band"] = peer
    out[f"threshold (visible > {threshold:.2f})"] = lambda image: np.where(brightness(image) > threshold, 2, 0).astype(
        np.uint8
    )
    return out


def run_chips(folder: Path, models: list[Path], threshold: float, ukis: bool, rounds: int) -> dict:
    """Every method on every chip, taking turns; prints the table and returns the figures."""
    import warnings

    from training.clouds.chips import read_chips
    from training.clouds.evaluate import score

    warnings.filterwarnings("ignore", message=".*smaller than the internal tiling size.*")
    chips = read_chips(folder)
    runs = chip_methods(models, threshold, ukis)
    maps = {name: [None] * len(chips) for name in runs}
    times = {name: [] for name in runs}
    for _ in range(rounds):
        for i, chip in enumerate(chips):
            for name, fn in runs.items():
                start = time.perf_counter()
                maps[name][i] = fn(chip.image)
                times[name].append((time.perf_counter() - start) * 1000)
    labels = np.stack([c.labels for c in chips])
    names = [c.name for c in chips]
    print(f"\ncross-sensor chips ({', '.join(names)}; 512x512, from ukis-csmask's tests)")
    print(f"{'method':34} {'cloud IoU':>9} {'cover err':>9} {'(max)':>6}  per chip: cloud IoU / cover error  ms/chip")
    results = {}
    for name in runs:
        r = score(np.stack(maps[name]), labels, names, names)
        rows = r["per_patch"]
        per = "  ".join(f"{c['patch']} {c['cloud_iou']:.3f} / {c['cloud_cover_error_pct']:+.1f}" for c in rows)
        err = r["cloud_cover_error_spread"]
        print(f"{name:34} {r['cloud_iou']:9.4f} {r['cloud_cover_mae_pct']:9.2f} {err['max']:6.1f}  {per}  "
              f"{np.median(times[name]):.0f}")  # fmt: skip
        results[name] = {"cloud_iou": r["cloud_iou"], "cloud_cover_mae_pct": r["cloud_cover_mae_pct"],
                         "shadow_iou": r["shadow_iou"], "accuracy_3class": r["accuracy_3class"],
                         "ms_median": float(np.median(times[name])), "per_chip": r["per_patch"]}  # fmt: skip
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models", type=Path, nargs="*", default=[Path("models/carmask-clouds.json")], help="ours (none: peers only)"
    )
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data/clouds/l8-biome"))
    parser.add_argument("--splits", default="test", help="the held-out patches scored")
    parser.add_argument("--fit-splits", default="train,val", help="where the threshold is chosen")
    parser.add_argument("--rounds", type=int, default=3, help="timed passes over the patches")
    parser.add_argument("--no-ukis", action="store_true", help="leave the peer out")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument("--chips", type=Path, help="folder of ukis-csmask's <sensor>.npz test chips (cross-sensor)")
    args = parser.parse_args()

    from training.clouds.bands import FILE_BANDS
    from training.clouds.data import load_all, read_l8_biome
    from training.clouds.evaluate import score

    held = read_l8_biome(args.data_dir, tuple(args.splits.split(",")))
    fit_images, fit_labels = load_all(read_l8_biome(args.data_dir, tuple(args.fit_splits.split(","))), FILE_BANDS)
    threshold = fit_threshold(fit_images, fit_labels)
    _, labels = load_all(held, FILE_BANDS)
    blobs = [p.image_path.read_bytes() for p in held]
    runs = methods(args.models, threshold, not args.no_ukis)
    maps = {name: [None] * len(held) for name in runs}
    times = {name: [] for name in runs}
    for fn in runs.values():  # warm-up
        fn(blobs[0])
    for _ in range(args.rounds):
        for i, data in enumerate(blobs):  # taking turns patch by patch
            for name, fn in runs.items():
                start = time.perf_counter()
                maps[name][i] = fn(data)
                times[name].append((time.perf_counter() - start) * 1000)

    print(f"{len(held)} patches ({args.splits}; {', '.join(sorted({p.biome for p in held}))}); {machine()}")
    print(f"{'method':34} {'cloud IoU':>9} {'per patch (median, min)':>24} {'acc 3-cl':>8} "
          f"{'cover err':>9} {'(max)':>6} {'ms/patch':>9} {'p10-p90':>12}")  # fmt: skip
    results = {}
    for name in runs:
        r = score(np.stack(maps[name]), labels, [p.name for p in held], [p.biome for p in held])
        iou, err = r["cloud_iou_per_patch"], r["cloud_cover_error_spread"]
        t = np.array(times[name])
        results[name] = {**{k: r[k] for k in ("cloud_iou", "accuracy_3class", "cloud_cover_mae_pct")},
                         "cloud_iou_per_patch": iou, "cover_error": err, "ms_median": float(np.median(t)),
                         "per_patch": r["per_patch"]}  # fmt: skip
        print(
            f"{name:34} {r['cloud_iou']:9.4f} {iou.get('median', float('nan')):>15.3f}, {iou.get('min', 0):.3f} "
            f"{r['accuracy_3class']:8.4f} {r['cloud_cover_mae_pct']:9.2f} {err['max']:6.1f} {np.median(t):9.1f} "
            f"{np.percentile(t, 10):5.1f}-{np.percentile(t, 90):.1f}"
        )
    print("cover error per patch (points, predicted - true):")
    for i, p in enumerate(held):
        row = "  ".join(f"{results[n]['per_patch'][i]['cloud_cover_error_pct']:+6.1f}" for n in runs)
        print(f"  {p.name:24} true {results[next(iter(runs))]['per_patch'][i]['cloud_cover_true_pct']:5.1f} %  {row}")
    chips = run_chips(args.chips, args.models, threshold, not args.no_ukis, args.rounds) if args.chips else None
    if args.json:
        figures = {"splits": args.splits, "threshold": threshold, "results": results, "chips": chips}
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
