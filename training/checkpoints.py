"""Writing Keras checkpoints atomically, for both training loops (cars, clouds)."""

from __future__ import annotations

from pathlib import Path

import keras


def save_model(model: keras.Model, path: Path) -> None:
    tmp = path.with_name(path.stem + ".tmp.keras")
    model.save(tmp)
    tmp.replace(path)  # a run killed mid-save keeps the previous checkpoint
