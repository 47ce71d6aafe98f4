"""Refinement of a model's car probabilities along the car's outline, as the manifest's `output.refine` says.

`output.refine` is a list of stages in the order they run (a single object, as older manifests wrote it,
is a list of one):
  {"method": "guided", "radius", "eps"}: a guided filter at the model's resolution (guided.py), before the
      probabilities are upsampled;
  {"method": "learned", "file", "sha256", "radius", "tile", "margin", "max_side", "batch"}: a small network
      at the photo's own resolution (learned.py), after upsampling, changing only a band along the outline
      (band.py); its ONNX graph lies beside the manifest. A request may skip it (quality=fast).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from carmask.refine.guided import METHODS, Refine, guided_filter
from carmask.refine.learned import LearnedRefine

__all__ = ["METHODS", "QUALITIES", "LearnedRefine", "Refine", "Refinement", "guided_filter"]

# What a request may ask: "best" runs every stage, "fast" skips the learned one (the photo's resolution).
QUALITIES = ("best", "fast")


@dataclass(frozen=True)
class Refinement:
    model: Refine = field(default_factory=Refine)  # at the model's resolution
    photo: LearnedRefine | None = None  # at the photo's resolution; None: none

    @classmethod
    def parse(cls, refine: dict[str, Any] | list[dict[str, Any]]) -> Refinement:
        """The stages of a manifest's `output.refine`; ValueError names what is wrong."""
        stages = [refine] if isinstance(refine, dict) else refine
        if not isinstance(stages, list) or not all(isinstance(s, dict) for s in stages):
            raise ValueError(f"refine must be a stage or a list of stages, got {refine!r}")
        stages = [s for s in stages if s]  # {} is no stage, as older manifests wrote it
        methods = [s.get("method", "none") for s in stages]
        order = [m for m in methods if m != "learned"] + [m for m in methods if m == "learned"]
        if len(methods) > 2 or len(set(methods)) < len(methods) or methods != order:
            raise ValueError(f"refine: at most one model-resolution stage ({METHODS}) then one learned stage, "
                             f"got {methods}")  # fmt: skip
        model, photo = Refine(), None
        for stage in stages:
            params = {k: v for k, v in stage.items() if k != "method"}
            if stage.get("method") == "learned":
                photo = LearnedRefine(**params)
            else:
                model = Refine(**stage)
        return cls(model, photo)
