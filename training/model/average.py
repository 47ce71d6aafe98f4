"""Weight-space averaging of two checkpoints of one architecture (WiSE-FT, Wortsman et al., CVPR 2022).

A model fine-tuned towards new photos forgets some of what it knew; the straight line between its weights
and its starting point's often keeps most of the gain and little of the loss, at no cost when served.
`carmask-weights average START TUNED --weight w OUT`: (1 - w) x START + w x TUNED, layer by layer (the
BatchNorm statistics too), into a run folder that export reads like any other.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import keras
import numpy as np


def average_weights(start: keras.Model, tuned: keras.Model, weight: float) -> keras.Model:
    """`start`'s architecture with (1 - weight) x start + weight x tuned weights; the two must match."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must be in [0, 1], got {weight}")
    mine = {w.path: w for w in start.weights}
    theirs = {w.path: w for w in tuned.weights}
    if mine.keys() != theirs.keys():
        raise ValueError(f"{start.name} and {tuned.name} differ in their weights: not one architecture")
    for path, variable in mine.items():
        a, b = keras.ops.convert_to_numpy(variable), keras.ops.convert_to_numpy(theirs[path])
        if a.shape != b.shape:
            raise ValueError(f"{path}: shapes {a.shape} and {b.shape} differ")
        if np.issubdtype(a.dtype, np.floating):
            variable.assign((1.0 - weight) * a + weight * b)
    return start


def average_run(start: Path, tuned: Path, weight: float, out: Path) -> Path:
    """Write `out` (a .keras file) and beside it the run files export reads: the tuned run's config and
    split, with the average as this folder's stage (its lineage: the tuned run's, then the average)."""
    from training.checkpoints import save_model

    model = average_weights(keras.models.load_model(start, compile=False),
                            keras.models.load_model(tuned, compile=False), weight)  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    save_model(model, out)
    config = json.loads((tuned.parent / "config.json").read_text())
    config.update(init_from=str(tuned), average={"start": str(start), "tuned": str(tuned), "weight": weight})
    (out.parent / "config.json").write_text(json.dumps(config, indent=1))
    if (tuned.parent / "split.json").is_file():
        shutil.copy(tuned.parent / "split.json", out.parent / "split.json")
    return out
