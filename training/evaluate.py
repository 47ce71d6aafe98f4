"""Evaluate a Keras checkpoint or an exported ONNX model on labelled photos, set by set.

For each validation set (Carvana's held-out cars, DSMLR's test photos, a held-out DAVIS sequence, car-free
photos) it reports loss, pixel accuracy, Dice, IoU and predicted coverage (means over images) at the
model's resolution (the network's own output) and at each photo's original resolution (as the service
answers: the letterbox's padding cropped off, the manifest's subject selection, probabilities upsampled,
then thresholded), per group (car, sequence) and per photo kind (how much of the frame the car
fills), with a JSON report and a PNG sheet of the best and worst examples of each set. Ignored pixels (255
in a label) count nowhere.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

import keras
import numpy as np
from PIL import Image
from tqdm import tqdm

from carmask.metrics import bootstrap_interval, boundary_f_score, per_image_scores, top_edge_offset
from carmask.preprocess import Fit, Normalisation, photo_content, probabilities_to_mask, threshold_u8
from carmask.refine import Refine
from carmask.subject import RULES as SUBJECT_RULES
from carmask.subject import Subject
from training.data.cache import load_arrays
from training.data.sources import IGNORE
from training.losses import get_loss

# Photo kinds by how much of the (valid) frame the car covers.
KINDS = (
    (0.0, "no car"),
    (1e-9, "small car (<10% of frame)"),
    (0.10, "medium car (10-40%)"),
    (0.40, "large car (>40%)"),
)
HEADLINE = ("images", "groups", "loss_model", "dice_model", "iou_model", "dice_original", "iou_original")


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


def _run_config(run_dir: Path | None) -> dict:
    """A run's config.json, {} when there is none."""
    config_file = run_dir / "config.json" if run_dir else None
    return json.loads(config_file.read_text()) if config_file is not None and config_file.is_file() else {}


def run_normalisation(run_dir: Path | None) -> Normalisation:
    """The input normalisation a run trained with (config.json), pixel / 255 for runs that predate it."""
    data = _run_config(run_dir).get("normalisation")
    return Normalisation(data["scale"], tuple(data["mean"]), tuple(data["std"])) if data else Normalisation()


def run_image_size(run_dir: Path | None) -> int:
    """The side a run trained at (config.json), 256 for runs that do not say."""
    return int(_run_config(run_dir).get("image_size", 256))


def load_predictor(path: Path, flip_tta: bool | None = None, threads: int = 0, run_dir: Path | None = None):
    """An ONNX model (its manifest says the normalisation and, unless `flip_tta` is given, the test-time
    augmentation) or a Keras checkpoint (its run's config says the normalisation; mirrored only if asked)."""
    if path.suffix in (".onnx", ".json"):
        from carmask.inference import Segmenter

        return Segmenter(
            path.with_suffix(".json"), providers=["CPUExecutionProvider"], threads=threads, flip_tta=flip_tta
        )
    return KerasPredictor(path, run_normalisation(run_dir or path.parent), flip_tta=bool(flip_tta))


@dataclass
class EvalConfig:
    image_size: int = 256
    threshold: float = 0.5
    batch_size: int = 16
    original_resolution: bool = True
    quality: str = "best"  # "fast" skips an exported model's learned refinement at the photo's resolution
    loss: str = "bce_dice"
    subject: str | None = None  # "main" / "all"; None: the exported model's manifest says, a checkpoint keeps all
    same_height: float | None = None  # overrides the subject's same_height rule (None: as the manifest says)
    prefer_whole: float | None = None  # likewise its prefer_whole rule
    min_confidence: float | None = None  # likewise its min_confidence rule


def _mean(rows: list[dict], key: str) -> float:
    """The mean over photos; for the top edge's offset the median (one photo's missing roof is hundreds of px)."""
    values = [r[key] for r in rows]
    if np.all(np.isnan(values)):
        return float("nan")
    return float(np.nanmedian(values) if key.startswith("top_edge") else np.nanmean(values))


def _outline(pred: np.ndarray, label: np.ndarray) -> dict[str, float]:
    """Boundary F-score at 2 px and the top edge's median offset, where the label has no ignored pixels
    (an ignored hull has no true outline); NaN elsewhere."""
    if (label == IGNORE).any():
        return {"bf2_original": float("nan"), "top_edge_original": float("nan")}
    truth = label == 1
    return {"bf2_original": boundary_f_score(pred, truth, 2), "top_edge_original": top_edge_offset(pred, truth)}


def _interval(rows: list[dict], key: str) -> list[float]:
    """95 % bootstrap interval of the mean of `key` over photos."""
    return [round(v, 4) for v in bootstrap_interval(np.array([r[key] for r in rows]))]


def photo_kind(car_fraction: float) -> str:
    return [name for lower, name in KINDS if car_fraction >= lower][-1]


def _scores(pred: np.ndarray, label: np.ndarray, suffix: str) -> dict[str, float]:
    valid = label != IGNORE
    scores = per_image_scores(pred[None], (label == 1)[None], valid[None])
    row = {f"{k}_{suffix}": float(v[0]) for k, v in scores.items()}
    row[f"coverage_{suffix}"] = float(np.count_nonzero(pred & valid) / max(1, np.count_nonzero(valid)))
    return row


def evaluate(predictor, samples: list, cfg: EvalConfig, cache_dir: Path | None = None) -> tuple[dict, dict]:
    """(report, extras) for one set: report is JSON-ready; extras holds arrays for the example sheet."""
    # An exported model places photos as its manifest says (letterbox), at the size asked for (a model
    # can be scored at another input size than its manifest's); a Keras checkpoint squashes.
    size = (cfg.image_size, cfg.image_size)
    fit = replace(predictor.fit, size=size) if hasattr(predictor, "fit") else Fit(size)
    subject = getattr(predictor, "subject", Subject()).with_mode(cfg.subject)
    for rule in SUBJECT_RULES:
        if getattr(cfg, rule) is not None:
            subject = replace(subject, **{rule: getattr(cfg, rule)})
    manifest = getattr(predictor, "manifest", None)  # an exported model's refinement; a checkpoint has none
    refine = manifest.output.refinement if manifest is not None else Refine()
    images, labels = load_arrays(samples, fit, cache_dir)
    loss_fn = get_loss(cfg.loss)
    rows, probs, losses = [], [], []
    for start in tqdm(range(0, len(samples), cfg.batch_size), desc="evaluate", leave=False):
        batch = slice(start, start + cfg.batch_size)
        prob = predictor.probabilities(images[batch])
        truth = labels[batch]
        loss = loss_fn(truth[..., None].astype(np.float32), prob[..., None])
        losses.append(float(keras.ops.convert_to_numpy(loss)) * len(prob))
        for i, sample in enumerate(samples[batch]):
            valid = truth[i] != IGNORE
            fraction = np.count_nonzero(truth[i] == 1) / max(1, np.count_nonzero(valid))
            row = {"image": sample.name, "group": sample.group, "kind": photo_kind(fraction)}
            row.update(_scores(prob[i] > cfg.threshold, truth[i], "model"))
            if cfg.original_resolution:
                full = sample.load_label()
                size = full.shape[::-1]
                content = photo_content(prob[i], size, cfg.threshold, fit, subject, refine, images[batch][i])
                if hasattr(predictor, "at_photo"):  # an exported model: refined at the photo's size as served
                    prob_u8 = predictor.at_photo(content, size, sample.image_path, cfg.quality)
                    mask = threshold_u8(prob_u8, cfg.threshold)
                else:
                    mask = probabilities_to_mask(content, size, cfg.threshold)
                row.update(_scores(mask == 1, full, "original"))
                row.update(_outline(mask == 1, full))
            rows.append(row)
        probs.append(prob)

    keys = [k for k in rows[0] if k not in ("image", "group", "kind")]
    by_group, by_kind = defaultdict(list), defaultdict(list)
    for row in rows:
        by_group[row["group"]].append(row)
        by_kind[row["kind"]].append(row)
    report = {
        "images": len(rows),
        "groups": len(by_group),
        "threshold": cfg.threshold,
        "subject": subject.mode,
        "loss_model": sum(losses) / len(rows),
        **{k: _mean(rows, k) for k in keys},
        "per_kind": {kind: {"images": len(r), **{k: _mean(r, k) for k in keys}} for kind, r in sorted(by_kind.items())},
        "per_group": {
            group: {"images": len(r), **{k: _mean(r, k) for k in keys}} for group, r in sorted(by_group.items())
        },
        "per_image": rows,
    }
    iou_key = "iou_original" if cfg.original_resolution else "iou_model"
    report["iou_interval"] = _interval(rows, iou_key)  # over photos: small sets need their spread
    report["iou_p10_p50_p90"] = [round(float(v), 4) for v in np.percentile([r[iou_key] for r in rows], [10, 50, 90])]
    for group, group_rows in by_group.items():
        report["per_group"][group]["iou_interval"] = _interval(group_rows, iou_key)
    return report, {"images": images, "masks": labels, "probs": np.concatenate(probs)}


def overlay(image: np.ndarray, pred: np.ndarray, label: np.ndarray) -> Image.Image:
    """Photo with agreement tinted green, false positives red, misses blue; ignored pixels greyed."""
    truth, ignored = label == 1, label == IGNORE
    out = image.astype(np.float32)
    for mask, colour in (
        (pred & truth, (0, 255, 0)),
        (pred & ~truth & ~ignored, (255, 0, 0)),
        (~pred & truth, (0, 0, 255)),
        (ignored, (128, 128, 128)),
    ):
        out[mask] = 0.55 * out[mask] + 0.45 * np.array(colour, dtype=np.float32)
    return Image.fromarray(out.astype(np.uint8))


def example_sheet(report: dict, extras: dict, path: Path, threshold: float, count: int = 4) -> None:
    """A PNG: the `count` worst images (top row) and best (bottom row) by IoU."""
    key = "iou_original" if "iou_original" in report["per_image"][0] else "iou_model"
    order = np.argsort([r[key] for r in report["per_image"]])
    count = min(count, len(order))
    picks = [*order[:count], *order[-count:]]
    h, w = extras["images"].shape[1:3]
    sheet = Image.new("RGB", (w * count, h * 2), "white")
    for slot, i in enumerate(picks):
        tile = overlay(extras["images"][i], extras["probs"][i] > threshold, extras["masks"][i])
        sheet.paste(tile, ((slot % count) * w, (slot // count) * h))
    sheet.save(path)


RECORDED = (*HEADLINE, "coverage_model", "iou_interval", "bf2_original", "top_edge_original")
GROUP_RECORDED = ("images", "iou_original", "iou_interval", "bf2_original")


def _known(row: dict, keys: tuple[str, ...]) -> dict:
    """The keys of `row` that it has and that are not NaN (an outline with no clean label to measure on)."""
    return {k: row[k] for k in keys if k in row and not (isinstance(row[k], float) and np.isnan(row[k]))}


def summary(reports: dict[str, dict]) -> dict[str, dict]:
    """The headline figures of each set, as a manifest records them: the scores, their interval, the outline
    measures, and user-photos' groups (web, phone, street)."""
    out = {}
    for name, report in reports.items():
        out[name] = _known(report, RECORDED)
        if name == "user_photos" and "per_group" in report:
            out[name]["per_group"] = {g: _known(r, GROUP_RECORDED) for g, r in report["per_group"].items()}
    return out


def print_summary(reports: dict[str, dict]) -> None:
    res = "original" if all("iou_original" in r for r in reports.values()) else "model"
    print(f"{'set':10} {'images':>6} {'groups':>6}   Dice {res:<9} IoU {res:<9} coverage  (model resolution: IoU)")
    for name, r in reports.items():
        print(
            f"{name:10} {r['images']:6d} {r['groups']:6d}   {r[f'dice_{res}']:.4f}{'':9}  {r[f'iou_{res}']:.4f}"
            f"{'':9}  {r[f'coverage_{res}']:.4f}    ({r['iou_model']:.4f})"
        )
    print(
        "IoU 95 % interval over photos, outline (where labels have no ignored pixels): boundary F at 2 px, "
        "top edge's offset (px, + = below the truth; median over columns, then over photos):"
    )
    for name, r in reports.items():
        low, high = r["iou_interval"]
        outline = f"BF2 {r['bf2_original']:.4f}  top {r['top_edge_original']:+.2f}" if "bf2_original" in r else ""
        print(f"  {name:11} [{low:.4f}, {high:.4f}]  {outline}")
        if name == "user_photos":  # its groups are kinds of photo (web, phone, street), each reported
            for group, g in r["per_group"].items():
                glow, ghigh = g["iou_interval"]
                print(
                    f"    {group:9} {g['images']:3d} photos  IoU {g[f'iou_{res}']:.4f} [{glow:.4f}, {ghigh:.4f}]"
                    + (
                        f"  BF2 {g['bf2_original']:.4f}  top {g['top_edge_original']:+.2f}"
                        if "bf2_original" in g
                        else ""
                    )
                )
    print("per photo kind (IoU):")
    for name, r in reports.items():
        kinds = "  ".join(f"{kind}: {k[f'iou_{res}']:.4f} ({k['images']})" for kind, k in r["per_kind"].items())
        print(f"  {name:10} {kinds}")


def write_reports(reports: dict[str, dict], extras: dict[str, dict], out_dir: Path, threshold: float) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps({"sets": reports, "summary": summary(reports)}, indent=1))
    for name, report in reports.items():
        example_sheet(report, extras[name], out_dir / f"examples_{name}.png", threshold)
