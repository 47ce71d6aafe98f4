"""Two carmask-evaluate reports side by side, paired photo by photo: what the ship rule is decided on.

For each set both reports scored, the headline figure of each (Dice at the photo's resolution for Carvana,
IoU elsewhere), the paired difference (B - A) with its 95 % bootstrap interval over the photos both scored,
and how many photos got better and worse (by more than `tie`). Sets one report lacks are left out.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from carmask.metrics import bootstrap_interval

HEADLINE_KEY = {"carvana": "dice_original"}  # every other set: iou_original


def headline_key(name: str) -> str:
    return HEADLINE_KEY.get(name, "iou_original")


def compare(a: dict, b: dict, tie: float = 1e-3) -> dict[str, dict]:
    """{set: {"photos", "a", "b", "difference", "interval", "better", "worse"}} for the sets of both reports
    (each a report.json's "sets")."""
    rows = {}
    for name in [n for n in a if n in b]:
        key = headline_key(name)
        scores_a = {r["image"]: r[key] for r in a[name]["per_image"]}
        scores_b = {r["image"]: r[key] for r in b[name]["per_image"]}
        both = [image for image in scores_a if image in scores_b]
        if not both:
            continue
        diff = np.array([scores_b[i] - scores_a[i] for i in both])
        low, high = bootstrap_interval(diff)
        rows[name] = {
            "metric": key,
            "photos": len(both),
            "a": float(np.mean([scores_a[i] for i in both])),
            "b": float(np.mean([scores_b[i] for i in both])),
            "difference": float(diff.mean()),
            "interval": [low, high],
            "better": int((diff > tie).sum()),
            "worse": int((diff < -tie).sum()),
        }
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="carmask-compare",
        description="Compare two carmask-evaluate reports (report.json) photo by photo: each set's headline "
        "figure (Carvana: Dice at the photo's resolution; others: IoU), B - A with a 95 %% bootstrap interval "
        "over the photos both scored, and the photos better / worse.",
    )
    parser.add_argument("a", type=Path, help="the report to compare against (e.g. the default model's)")
    parser.add_argument("b", type=Path, help="the candidate's report")
    parser.add_argument("--tie", type=float, default=1e-3, help="differences this small count as neither")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    reports = []
    for path in (args.a, args.b):
        if not path.is_file():
            parser.error(f"{path}: no such report (carmask-evaluate ... --out DIR writes DIR/report.json)")
        reports.append(json.loads(path.read_text())["sets"])
    rows = compare(*reports, tie=args.tie)
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print(
        f"{'set':12} {'photos':>6}  {'metric':14} {'A':>7} {'B':>7}  {'B - A':>8}  {'95 % interval':>19}  better/worse"
    )
    for name, r in rows.items():
        low, high = r["interval"]
        print(
            f"{name:12} {r['photos']:6d}  {r['metric']:14} {r['a']:.4f}  {r['b']:.4f}  {r['difference']:+.4f}"
            f"  [{low:+.4f}, {high:+.4f}]  {r['better']}/{r['worse']}"
        )


if __name__ == "__main__":
    main()
