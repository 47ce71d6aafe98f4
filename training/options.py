"""A settings dataclass as command-line flags: one `--flag` per field, its default shown, and back."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path


def add_options(parser: argparse.ArgumentParser, config: type) -> None:
    """`--<field-name>` for every field of the dataclass `config`, typed and defaulted as the field is."""
    defaults = config()
    for f in fields(config):
        value = getattr(defaults, f.name)
        kind = Path if isinstance(value, Path) else type(value)
        parser.add_argument("--" + f.name.replace("_", "-"), type=kind, default=value, help=f"default: {value}")


def from_options(args: argparse.Namespace, config: type):
    """The dataclass `config` filled from parsed `add_options` flags."""
    return config(**{f.name: getattr(args, f.name) for f in fields(config)})
