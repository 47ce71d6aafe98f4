"""Typed command-line configuration from dataclasses.

A dataclass holds the defaults (one place); `CARMASK_<SECTION>_<FIELD>`
environment variables override them; command-line flags override both.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean, got {text!r}")


def _base_type(annotation: Any) -> tuple[type, bool]:
    """(type, optional) from an annotation like `int`, `Path | None`."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return inner[0], True
    return annotation, False


def _converter(kind: type, optional: bool):
    base = _parse_bool if kind is bool else kind
    if not optional:
        return base
    return lambda text: None if text.lower() in ("", "none") else base(text)


def add_arguments(
    parser: argparse.ArgumentParser, cls: type, env_prefix: str, help: dict[str, str] | None = None
) -> None:
    """One `--field-name` flag per dataclass field, defaulting to env or the dataclass default."""
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        kind, optional = _base_type(hints[field.name])
        convert = _converter(kind, optional)
        env = f"{env_prefix}{field.name.upper()}"
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()  # type: ignore[misc]
        if env in os.environ:
            default = convert(os.environ[env])
        text = (help or {}).get(field.name, "")
        # Booleans work as bare flags (`--resume`) and with a value (`--batchnorm false`).
        flag_style = {"nargs": "?", "const": True} if kind is bool else {}
        parser.add_argument(
            "--" + field.name.replace("_", "-"),
            type=convert,
            default=default,
            metavar=kind.__name__.upper() if kind is not bool else "BOOL",
            help=f"{text} (default: {default}; env {env})".strip(),
            **flag_style,
        )


def from_namespace(cls: type[T], namespace: argparse.Namespace) -> T:
    values = {f.name: getattr(namespace, f.name) for f in dataclasses.fields(cls)}
    return cls(**values)


def to_jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {k: to_jsonable(v) for k, v in dataclasses.asdict(obj).items()}
    if isinstance(obj, dict):
        return {k: to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj
