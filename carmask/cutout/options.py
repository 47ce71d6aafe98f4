"""What a cutout can be asked for, checked once: the service, the CLI and the page share these names."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class OptionError(ValueError):
    """A cutout option that is malformed, or that does not go with another (the service answers 422)."""


class Windows(StrEnum):
    opaque = "opaque"  # the glass as photographed, fully opaque (the old background shows inside it)
    transparent = "transparent"  # see-through: the new background shows through the glass
    tinted = "tinted"  # dark, partly opaque glass


class Shadow(StrEnum):
    none = "none"
    contact = "contact"  # a soft shadow on the ground under the car


class Output(StrEnum):
    png = "png"
    webp = "webp"
    jpeg = "jpeg"  # no transparency: needs an opaque bg_color


MEDIA_TYPES = {Output.png: "image/png", Output.webp: "image/webp", Output.jpeg: "image/jpeg"}
SUFFIXES = {Output.png: ".png", Output.webp: ".webp", Output.jpeg: ".jpg"}
COLOUR = re.compile(r"^#?([0-9a-fA-F]{6})([0-9a-fA-F]{2})?$")
MAX_CROP_MARGIN = 0.5


def parse_colour(text: str) -> tuple[int, int, int, int]:
    """RRGGBB or RRGGBBAA (hex, an optional leading #) to (r, g, b, a)."""
    match = COLOUR.match(text.strip())
    if not match:
        raise OptionError(f"bg_color must be RRGGBB or RRGGBBAA in hex (e.g. ffffff, 00000080), not {text!r}")
    rgb, alpha = match.group(1), match.group(2) or "ff"
    return (*(int(rgb[i : i + 2], 16) for i in (0, 2, 4)), int(alpha, 16))


@dataclass(frozen=True)
class CutoutOptions:
    windows: Windows = Windows.opaque
    shadow: Shadow = Shadow.none
    bg_color: str | None = None  # RRGGBB or RRGGBBAA; None: transparent
    crop: bool = False
    crop_margin: float = 0.05  # of the car's box, per side
    output: Output = Output.png
    decontaminate: bool = False

    def __post_init__(self) -> None:
        for name, kind in (("windows", Windows), ("shadow", Shadow), ("output", Output)):
            value = getattr(self, name)
            try:
                object.__setattr__(self, name, kind(value))
            except ValueError:
                raise OptionError(f"{name} must be one of {', '.join(kind)}, not {value!r}") from None
        if not 0.0 <= self.crop_margin <= MAX_CROP_MARGIN:
            raise OptionError(f"crop_margin must be between 0 and {MAX_CROP_MARGIN}, not {self.crop_margin}")
        if self.bg_color is not None:
            parse_colour(self.bg_color)
        if self.output is Output.jpeg and (self.background is None or self.background[3] != 255):
            raise OptionError("output=jpeg has no transparency: give an opaque bg_color (RRGGBB), or use png or webp")

    @property
    def background(self) -> tuple[int, int, int, int] | None:
        return parse_colour(self.bg_color) if self.bg_color is not None else None

    @property
    def plain(self) -> bool:
        """No option set: the photo with the mask as alpha, as a PNG (the fast path)."""
        return self == CutoutOptions()

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.output]

    @property
    def suffix(self) -> str:
        return SUFFIXES[self.output]
