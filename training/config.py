"""Training configuration: every knob of a run, with its default, in one place.

The defaults are the recipe of the shipped model (carmask-v2): a MobileNetV2 U-Net trained on a weighted
mixture of Carvana, copy-paste composites, DSMLR, DAVIS and car-free photos. The v1 recipe is
`--architecture unet --sources carvana:1 --augment mild --samples-per-epoch 0 --learning-rate 2e-3 ...`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from training.data.augment import AugmentConfig, preset
from training.data.composite import CompositeConfig
from training.data.teacher import Teacher
from training.model import ARCHITECTURES, MobileUNetConfig, UNetConfig

ENV_PREFIX = "CARMASK_TRAIN_"
SOURCE_NAMES = ("carvana", "composite", "dsmlr", "davis", "negatives", "pseudo")


@dataclass
class TrainConfig:
    data_dir: Path = Path("../shared/data/carvana")
    dsmlr_dir: Path = Path("../shared/data/cars-outside/dsmlr")
    davis_dir: Path = Path("../shared/data/cars-outside/davis")
    backgrounds_dir: Path = Path("../shared/data/backgrounds/bsds500")
    pseudo_dir: Path = Path(".cache/carmask/pseudo/stanford-cars")  # a carmask-teacher folder (source "pseudo")
    pseudo_max_ignored: float = 0.15  # leave out teacher-labelled photos with more of the frame ignored
    user_photos_dir: Path = Path("../shared/data/cars-outside/user-photos")  # evaluation only, never a source
    sources: str = "carvana:0.3,composite:0.2,dsmlr:0.35,davis:0.1,negatives:0.05"
    davis_val_sequences: str = "car-roundabout"  # held out whole; the other sequences train
    run_dir: Path = Path("runs/v2")
    cache_dir: Path | None = Path(".cache/carmask")
    epochs: int = 26
    samples_per_epoch: int = 1600  # drawn from the sources by weight; 0: every photo once
    batch_size: int = 16
    learning_rate: float = 1e-3
    min_learning_rate: float = 1e-5  # cosine decay floor
    loss: str = "bce_dice"
    image_size: int = 256
    cache_size: int = 320  # photos are cached this large, so crops resample down to image_size
    architecture: str = "mobile_unet"  # unet (classic, from scratch) or mobile_unet (pretrained MobileNetV2)
    encoder_weights: Path | None = Path(".cache/carmask/weights/mobilenet_v2_imagenet.npz")
    decoder_widths: str = "64,48,32,24,8"  # mobile_unet: decoder channels at strides 16, 8, 4, 2, 1
    stem_width: int = 8  # mobile_unet: full-resolution stem channels
    full_res_block: str = "conv"  # mobile_unet: stride-1 level, separable or conv (classic U-Net's)
    half_res_block: str = "separable"  # mobile_unet: stride-2 level, separable or conv (with an image path)
    half_width: int = 16  # mobile_unet: channels of the image path at stride 2 (half_res_block=conv)
    upsampling: str = "nearest"  # mobile_unet: decoder 2x upsampling, nearest or bilinear
    base_width: int = 8  # classic U-Net only
    depth: int = 4  # classic U-Net only
    batchnorm: bool = True  # classic U-Net only
    augment: str = "photos"  # preset: none, mild, original (ImageDataGenerator settings), photos
    source_augment: str = ""  # name:preset,... per source (e.g. studio photos mild, ordinary ones photos)
    composite_shadow: float = 0.0  # probability that a pasted car casts a soft shadow (labelled background)
    composite_floor: float = 0.0  # probability that a pasted car is mirrored by a glossy floor (labelled background)
    composite_studio: float = 0.0  # probability of a generated studio backdrop behind a pasted car
    dsmlr_teacher: Path | None = None  # carmask-teacher's masks: fill DSMLR's ignored hulls where confident
    rotation: float | None = None  # preset overrides
    width_shift: float | None = None
    height_shift: float | None = None
    shear: float | None = None
    zoom: float | None = None
    horizontal_flip: bool | None = None
    val_fraction: float = 0.2
    seed: int = 42
    patience: int = 10  # early stopping: epochs without a better validation score
    threshold: float = 0.5
    max_images: int | None = None  # use only the first N photos of each source (smoke runs)
    resume: bool = False
    init_from: Path | None = None  # start from this checkpoint's weights (fine-tuning stage), new optimizer
    freeze_copied: bool = False  # with init_from: train only the layers it did not supply (a new head's warm-up)
    freeze_encoder: bool = False  # keep the pretrained encoder fixed (BatchNorm statistics too): decoder-only tuning
    freeze_batchnorm: bool = False  # every BatchNorm fixed (inference mode): starts imported from ONNX need it
    workers: int = 2  # processes decoding the cache

    @property
    def size(self) -> tuple[int, int]:
        return (self.image_size, self.image_size)

    def source_weights(self) -> dict[str, float]:
        """`sources` parsed: {name: weight}, names checked."""
        weights = {}
        for name, value in _per_source("sources", self.sources):
            try:
                weights[name] = float(value or 1)
            except ValueError:
                raise ValueError(f"source {name!r}: weight {value!r} is not a number") from None
        if "carvana" not in weights:
            raise ValueError("sources must include carvana (its cars are also the composites' cars)")
        return weights

    def model(self) -> UNetConfig | MobileUNetConfig:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {self.architecture!r}; choose from {sorted(ARCHITECTURES)}")
        if self.architecture == "unet":
            return UNetConfig(base_width=self.base_width, depth=self.depth, batchnorm=self.batchnorm)
        try:
            widths = tuple(int(w) for w in self.decoder_widths.split(","))
        except ValueError:
            raise ValueError(f"decoder_widths must be comma-separated integers, got {self.decoder_widths!r}") from None
        if len(widths) != 5:
            raise ValueError(f"decoder_widths needs 5 widths (strides 16, 8, 4, 2, 1), got {len(widths)}")
        return MobileUNetConfig(
            decoder_widths=widths,
            stem_width=self.stem_width,
            full_res_block=self.full_res_block,
            half_res_block=self.half_res_block,
            half_width=self.half_width,
            upsampling=self.upsampling,
            weights=self.encoder_weights,
        )

    def source_augmentations(self) -> dict[str, AugmentConfig]:
        """`source_augment` parsed: {source name: preset}; the sources it leaves out use `augmentation()`."""
        return {name: preset(value) for name, value in _per_source("source_augment", self.source_augment)}

    def composite(self) -> CompositeConfig:
        for name in ("composite_shadow", "composite_floor", "composite_studio"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} is a probability, got {getattr(self, name)}")
        return CompositeConfig(shadow=self.composite_shadow, floor=self.composite_floor, studio=self.composite_studio)

    def teacher(self) -> Teacher | None:
        return Teacher(self.dsmlr_teacher) if self.dsmlr_teacher else None

    def augmentation(self) -> AugmentConfig:
        return preset(
            self.augment,
            rotation=self.rotation,
            width_shift=self.width_shift,
            height_shift=self.height_shift,
            shear=self.shear,
            zoom=self.zoom,
            horizontal_flip=self.horizontal_flip,
        )


def _per_source(option: str, text: str) -> list[tuple[str, str]]:
    """ "name:value,..." as (name, value) pairs, each name a known source."""
    pairs = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition(":")
        if name not in SOURCE_NAMES:
            raise ValueError(f"unknown source {name!r} in {option}={text!r}; choose from {SOURCE_NAMES}")
        pairs.append((name, value))
    return pairs


HELP = {
    "data_dir": "Carvana folder (train/, train_masks/ or train_masks.csv)",
    "dsmlr_dir": "DSMLR car parts folder (trainingset/ trains, testset/ validates)",
    "davis_dir": "DAVIS-2016 folder (JPEGImages/480p, Annotations/480p)",
    "pseudo_dir": "a carmask-teacher folder (photos labelled by teachers' agreement): the source 'pseudo'",
    "pseudo_max_ignored": "leave out teacher-labelled photos with more than this share of the frame ignored",
    "user_photos_dir": "photos of the kind users send, with whole-car masks: evaluated (carmask-evaluate), "
    "never trained on",
    "backgrounds_dir": "car-free photos <split>_<id>.jpg (train/val: composites and negatives; test: validation)",
    "sources": "training mixture, name:weight,... from carvana, composite, dsmlr, davis, negatives",
    "davis_val_sequences": "DAVIS sequences held out for validation (comma-separated)",
    "run_dir": "where checkpoints, logs, plots and the split are written",
    "cache_dir": "cache of resized arrays (none to disable)",
    "samples_per_epoch": "photos per epoch drawn from the sources by weight (0: each photo once)",
    "architecture": "unet (classic U-Net from scratch) or mobile_unet (ImageNet MobileNetV2 encoder)",
    "full_res_block": "mobile_unet's finest level: separable (light), conv (two 3x3 convs, sharper edges) or "
    "subpixel (at stride 2 on a 4x4 stride-2 stem, each position predicting its 2x2 pixels: cheaper)",
    "half_res_block": "mobile_unet's stride-2 level: separable or conv (classic, with a half-resolution image path)",
    "upsampling": "mobile_unet's decoder 2x upsampling: nearest, or bilinear (a fixed smoothing filter after it)",
    "encoder_weights": "mobile_unet encoder weights (.npz from `carmask-weights fetch mobilenet_v2`; none: random)",
    "augment": "augmentation preset: none, mild, original (ImageDataGenerator settings), photos",
    "source_augment": "per-source presets, name:preset,... (e.g. dsmlr:photos); other sources use --augment",
    "composite_shadow": "probability that a composite's pasted car casts a soft shadow on the ground "
    "(labelled background); 0 keeps the composites of earlier runs",
    "composite_floor": "probability that a composite's car stands on a glossy floor mirroring it (a flipped, "
    "faded copy under the wheels, labelled background)",
    "composite_studio": "probability that a composite's background is a generated studio backdrop (wall and floor)",
    "dsmlr_teacher": "folder of carmask-teacher masks (u2netp's): DSMLR's ignored hull pixels take the teacher's "
    "answer where it is confident (<= 0.1 background, >= 0.9 car); parts and outside-hull labels stay",
    "base_width": "classic U-Net: channels at full resolution (doubles per level)",
    "resume": "continue from run_dir/last.keras with its optimizer state",
    "init_from": "start from this .keras checkpoint's weights where layer names and shapes match (a later stage)",
    "freeze_copied": "with --init-from: keep the copied layers fixed (BatchNorm statistics too), train the new ones",
    "freeze_encoder": "keep the pretrained encoder fixed (BatchNorm statistics too): train the decoder and head only",
    "freeze_batchnorm": "keep every BatchNorm fixed in inference mode (convolutions train): needed when --init-from "
    "is a model imported from ONNX (`carmask-weights from-onnx`), whose BatchNorms hold the folded affines",
}


def load_run_config(run_dir: Path) -> TrainConfig:
    """The TrainConfig a run was started with (its config.json), paths as Paths; unknown keys ignored."""
    import json
    import typing

    data = json.loads((Path(run_dir) / "config.json").read_text())
    values = {}
    for name, hint in typing.get_type_hints(TrainConfig).items():
        if name in data:
            is_path = hint is Path or Path in typing.get_args(hint)
            values[name] = Path(data[name]) if is_path and data[name] is not None else data[name]
    return TrainConfig(**values)
