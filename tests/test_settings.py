"""Typed CLI configuration: dataclass defaults, CARMASK_TRAIN_* environment, flags."""

import argparse
from pathlib import Path

from carmask.settings import add_arguments, from_namespace
from training.config import ENV_PREFIX, TrainConfig


def parse(argv, monkeypatch=None, **env) -> TrainConfig:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    parser = argparse.ArgumentParser()
    add_arguments(parser, TrainConfig, ENV_PREFIX)
    return from_namespace(TrainConfig, parser.parse_args(argv))


def test_defaults_come_from_the_dataclass():
    assert parse([]) == TrainConfig()


def test_environment_overrides_defaults_and_flags_override_both(monkeypatch):
    cfg = parse([], monkeypatch, CARMASK_TRAIN_EPOCHS="7", CARMASK_TRAIN_CACHE_DIR="none")
    assert cfg.epochs == 7 and cfg.cache_dir is None
    cfg = parse(["--epochs", "3", "--run-dir", "x"], monkeypatch, CARMASK_TRAIN_EPOCHS="7")
    assert cfg.epochs == 3 and cfg.run_dir == Path("x")


def test_booleans_as_bare_flags_or_values():
    assert parse(["--resume"]).resume is True
    assert parse(["--batchnorm", "false"]).batchnorm is False
    assert parse(["--rotation", "12.5", "--horizontal-flip", "no"]).augmentation().rotation == 12.5
    assert parse(["--horizontal-flip", "no"]).augmentation().horizontal_flip is False
