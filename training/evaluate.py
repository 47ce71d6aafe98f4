"""Evaluate a Keras checkpoint or an exported ONNX model on labelled Carvana photos.

Reports loss, pixel accuracy, Dice and IoU (means over images) at the model's
resolution and at each photo's original resolution (probabilities upsampled,
then thresholded, exactly as the service does), a per-car table, a JSON
report, and a PNG sheet of the best and worst examples.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from PIL import Image
from tqdm import tqdm

from carmask.metrics import per_image_scores
from carmask.preprocess import Normalisation, probabilities_to_mask
from training.data.cache import load_arrays
from training.data.reader import Sample, load_mask
from training.losses import get_loss


class KerasPredictor:
    """A Keras checkpoint behind the same `probabilities()` call as `carmask.inference.Segmenter`."""

    def __init__(self, path: Path, normalisation: Normalisation | None = None, flip_tta: bool = False):
        import training.losses  # noqa: F401 - registers the custom losses before loading

        self.model = keras.models.load_model(path, compile=False)
        self.normalisation, self.flip_tta = normalisation or Normalisation(), flip_tta

    def _run(self, x: np.ndarray) -> np.ndarray:
        return keras.ops.convert_to_numpy(self.model.predict_on_batch(x))[..., 0]

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        x = self.normalisation.apply(images)
        prob = self._run(x)
        if self.flip_tta:
            prob = 0.5 * (prob + self._run(np.ascontiguousarray(x[:, :, ::-1]))[:, :, ::-1])
        return prob


def load_predictor(path: Path, flip_tta: bool = False, threads: int = 0):
    if path.suffix in (".onnx", ".json"):
        from carmask.inference import Segmenter

        return Segmenter(
            path.with_suffix(".json"), providers=["CPUExecutionProvider"], threads=threads, flip_tta=flip_tta
        )
    return KerasPredictor(path, flip_tta=flip_tta)


@dataclass
class EvalConfig:
    image_size: int = 256
    threshold: float = 0.5
    batch_size: int = 16
    original_resolution: bool = True
    loss: str = "bce_dice"


def _mean(rows: list[dict], key: str) -> float:
    return float(np.mean([r[key] for r in rows]))


def evaluate(predictor, samples: list[Sample], cfg: EvalConfig, cache_dir: Path | None = None) -> tuple[dict, dict]:
    """(report, extras): report is JSON-ready; extras holds arrays for the example sheet."""
    size = (cfg.image_size, cfg.image_size)
    images, masks = load_arrays(samples, size, cache_dir)
    loss_fn = get_loss(cfg.loss)
    rows, probs, losses = [], [], []
    for start in tqdm(range(0, len(samples), cfg.batch_size), desc="evaluate", leave=False):
        batch = slice(start, start + cfg.batch_size)
        prob = predictor.probabilities(images[batch])
        truth = masks[batch]
        losses.append(
            float(keras.ops.convert_to_numpy(loss_fn(truth[..., None].astype(np.float32), prob[..., None]))) * len(prob)
        )
        model_scores = per_image_scores(prob > cfg.threshold, truth)
        for i, sample in enumerate(samples[batch]):
            row = {
                "image": sample.name,
                "car": sample.car,
                **{f"{k}_model": float(v[i]) for k, v in model_scores.items()},
            }
            if cfg.original_resolution:
                full_truth = load_mask(sample)
                full_pred = probabilities_to_mask(prob[i], full_truth.shape[::-1], cfg.threshold)
                scores = per_image_scores(full_pred[None], full_truth[None])
                row.update({f"{k}_original": float(v[0]) for k, v in scores.items()})
            rows.append(row)
        probs.append(prob)

    keys = [k for k in rows[0] if k not in ("image", "car")]
    per_car = defaultdict(list)
    for row in rows:
        per_car[row["car"]].append(row)
    report = {
        "images": len(rows),
        "cars": len(per_car),
        "threshold": cfg.threshold,
        "loss_model": sum(losses) / len(rows),
        **{k: _mean(rows, k) for k in keys},
        "per_car": {car: {k: _mean(r, k) for k in keys} for car, r in sorted(per_car.items())},
        "per_image": rows,
    }
    return report, {"images": images, "masks": masks, "probs": np.concatenate(probs)}


def overlay(image: np.ndarray, pred: np.ndarray, truth: np.ndarray) -> Image.Image:
    """Photo with agreement tinted green, false positives red, false negatives blue."""
    out = image.astype(np.float32)
    for mask, colour in (((pred & truth), (0, 255, 0)), ((pred & ~truth), (255, 0, 0)), ((~pred & truth), (0, 0, 255))):
        out[mask] = 0.55 * out[mask] + 0.45 * np.array(colour, dtype=np.float32)
    return Image.fromarray(out.astype(np.uint8))


def example_sheet(report: dict, extras: dict, path: Path, threshold: float, count: int = 4) -> None:
    """A PNG: the `count` worst images (top row) and best (bottom row) by Dice."""
    key = "dice_original" if "dice_original" in report["per_image"][0] else "dice_model"
    order = np.argsort([r[key] for r in report["per_image"]])
    picks = [*order[:count], *order[-count:]]
    h, w = extras["images"].shape[1:3]
    sheet = Image.new("RGB", (w * count, h * 2), "white")
    for slot, i in enumerate(picks):
        tile = overlay(extras["images"][i], extras["probs"][i] > threshold, extras["masks"][i].astype(bool))
        sheet.paste(tile, ((slot % count) * w, (slot // count) * h))
    sheet.save(path)


def print_summary(report: dict) -> None:
    print(f"{report['images']} images, {report['cars']} cars, threshold {report['threshold']}")
    for res in ("model", "original"):
        if f"dice_{res}" in report:
            print(
                f"  {res:>8} resolution: Dice {report[f'dice_{res}']:.4f}  IoU {report[f'iou_{res}']:.4f}  "
                f"accuracy {report[f'accuracy_{res}']:.4f}"
            )
    print(f"  loss (model resolution): {report['loss_model']:.4f}")
    print("  per car (Dice model / original):")
    for car, scores in report["per_car"].items():
        print(f"    {car}  {scores['dice_model']:.4f}  {scores.get('dice_original', float('nan')):.4f}")


def write_report(report: dict, extras: dict, out_dir: Path, threshold: float) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(report, indent=1))
    example_sheet(report, extras, out_dir / "examples.png", threshold)
