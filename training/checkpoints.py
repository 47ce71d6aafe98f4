"""Writing Keras checkpoints atomically, for both training loops (cars, clouds)."""

from __future__ import annotations

from pathlib import Path

import keras


def save_model(model: keras.Model, path: Path) -> None:
    tmp = path.with_name(path.stem + ".tmp.keras")
    model.save(tmp)
    tmp.replace(path)  # a run killed mid-save keeps the previous checkpoint


def transfer_weights(source: keras.Model, target: keras.Model) -> tuple[list[str], list[str]]:
    """Copy weights layer by layer where the name and every weight's shape match (a stage that grows the
    model starts from an earlier run). Returns (copied, fresh) layer names; raises when nothing matches."""
    by_name = {layer.name: layer for layer in source.layers}
    copied, fresh = [], []
    for layer in target.layers:
        if not layer.weights:
            continue
        old = by_name.get(layer.name)
        old_weights = old.get_weights() if old is not None else []
        if len(old_weights) == len(layer.weights) and all(
            w.shape == tuple(v.shape) for w, v in zip(old_weights, layer.weights, strict=True)
        ):
            layer.set_weights(old_weights)
            copied.append(layer.name)
        else:
            fresh.append(layer.name)
    if not copied:
        raise ValueError(f"no layer of {source.name!r} matches {target.name!r} by name and shape")
    return copied, fresh
