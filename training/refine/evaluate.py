"""Scoring refiners on held-out photos at full resolution, from the cached coarse answers.

For each photo: the coarse answer upsampled (what quality=fast serves) and each candidate's refinement of it,
scored against the full-resolution label: Dice, IoU, boundary F-score at 2 px and the top edge's offset,
with 95 % bootstrap intervals over photos and the paired difference to the coarse answer. A candidate is
anything with `at_photo(prob_u8, image)`: carmask.refine.learned.EdgeRefiner, or the full-resolution
guided filter below.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from carmask.imaging import open_photo
from carmask.metrics import bootstrap_interval
from carmask.preprocess import quantise, threshold_u8, upsample_probabilities
from carmask.refine.guided import guided_filter
from training.evaluate import _outline, _scores
from training.refine.coarse import load_coarse


@dataclass(frozen=True)
class FullResGuided:
    """He et al.'s guided filter of the upsampled probabilities by the photo's grey, at full resolution."""

    radius: int = 4
    eps: float = 1e-3

    def at_photo(self, prob_u8: np.ndarray, image) -> np.ndarray:
        grey = np.asarray(image.convert("L"), np.float32) * np.float32(1 / 255)
        prob = prob_u8.astype(np.float32) * np.float32(1 / 255)
        out = guided_filter(grey, prob, self.radius, self.eps)
        return quantise(out)


def scores(mask: np.ndarray, label: np.ndarray) -> dict[str, float]:
    """Dice and IoU over the label's valid pixels; boundary F and top edge where it ignores none (else NaN)."""
    pred = mask.astype(bool)
    area, outline = _scores(pred, label, "original"), _outline(pred, label)
    return {"dice": area["dice_original"], "iou": area["iou_original"], "bf2": outline["bf2_original"],
            "top_edge": outline["top_edge_original"]}  # fmt: skip


def score_refiners(candidates: dict, samples: list, coarse_folder, threshold: float = 0.5) -> dict[str, list[dict]]:
    """Per-photo scores of the coarse answer ("coarse") and of each candidate."""
    rows: dict[str, list[dict]] = {"coarse": [], **{name: [] for name in candidates}}
    for sample in tqdm(samples, desc="score", leave=False):
        label = sample.load_label()
        prob_u8 = upsample_probabilities(load_coarse(coarse_folder, sample), label.shape[::-1])
        image = open_photo(sample.image_path).image
        rows["coarse"].append(
            {"name": sample.name, "group": sample.group, **scores(threshold_u8(prob_u8, threshold), label)}
        )
        for name, candidate in candidates.items():
            refined = candidate.at_photo(prob_u8, image)
            rows[name].append(
                {"name": sample.name, "group": sample.group, **scores(threshold_u8(refined, threshold), label)}
            )
    return rows


def summarise(rows: dict[str, list[dict]], key: str = "dice") -> dict[str, dict]:
    """Mean (median for the top edge), its interval, and the paired difference to the coarse answer."""
    out = {}
    base = np.array([r[key] for r in rows["coarse"]])
    for name, items in rows.items():
        values = np.array([r[key] for r in items])
        entry = {"mean": float(values.mean()), "interval": bootstrap_interval(values)}
        for extra in ("bf2", "top_edge"):
            found = [r[extra] for r in items if extra in r and not np.isnan(r[extra])]
            if found:
                entry[extra] = float(np.median(found) if extra == "top_edge" else np.mean(found))
        if name != "coarse":
            entry["gain"] = float((values - base).mean())
            entry["gain_interval"] = bootstrap_interval(values - base)
            entry["better_photos"] = int((values > base).sum())
            entry["worse_photos"] = int((values < base).sum())
        out[name] = entry
    return out


def held_out(config, sets: list[str], val_cars: set[str], user_photos_dir: Path) -> dict[str, list]:
    """The held-out photos of each named set: Carvana's validation cars, DAVIS's held-out sequences, user-photos."""
    from training.data.reader import read_carvana
    from training.data.sources.davis import read_davis
    from training.data.sources.user_photos import read_user_photos
    from training.refine.train import sequence

    readers = {
        "carvana": lambda: [s for s in read_carvana(config.carvana_dir) if s.car in val_cars],
        "davis": lambda: [
            f for f in read_davis(config.davis_dir) if sequence(f) in config.davis_val_sequences.split(",")
        ],
        "user-photos": lambda: read_user_photos(user_photos_dir),
    }
    unknown = sorted(set(sets) - set(readers))
    if unknown:
        raise ValueError(f"unknown sets {unknown}; known: {sorted(readers)}")
    return {name: readers[name]() for name in sets}


def score_main(config, args, tmp: Path) -> dict:
    """`carmask-refiner score`: every candidate on every held-out set, against the coarse answer."""
    import keras

    import training.refine.nets  # noqa: F401 - custom layers
    from carmask.inference import Segmenter
    from carmask.refine.learned import EdgeRefiner
    from carmask.session import open_session
    from training.refine.coarse import cache_coarse, cache_folder
    from training.refine.export import stage_for, to_onnx

    segmenter = Segmenter(config.manifest, providers=["CPUExecutionProvider"])
    candidates: dict = {}
    for run in args.runs:
        path = tmp / f"{run.name}.onnx"
        to_onnx(keras.models.load_model(run / "best.keras", compile=False), path)
        spec = stage_for(run, path, args.tile, args.margin, args.max_side)
        candidates[run.name] = EdgeRefiner(spec, open_session(path, ["CPUExecutionProvider"]))
    if args.guided:
        candidates["guided-full-res"] = FullResGuided()
    coarse_root = cache_folder(config.cache_dir / "coarse", segmenter)
    val_cars = set(segmenter.manifest.training.get("val_cars", []))
    report: dict = {"rows": {}, "summary": {}}
    for name, photos in held_out(config, args.sets.split(","), val_cars, args.user_photos_dir).items():
        photos = photos[:: args.every]
        cache_coarse(segmenter, photos, coarse_root / name)
        rows = score_refiners(candidates, photos, coarse_root / name)
        report["rows"][name] = rows
        report["summary"][name] = {"photos": len(photos), "dice": summarise(rows, "dice"),
                                   "iou": summarise(rows, "iou")}  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))
    return report
