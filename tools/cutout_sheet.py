"""An examples sheet of real cutouts: each photo beside its cutout with no option and with the listing options.

    python tools/cutout_sheet.py PHOTO... [--model models/carmask-v2.json] [--out models/examples/cutouts.jpg]

Columns: the photo; the plain cutout on a checkerboard; see-through windows, contact shadow, white background,
cropped; tinted windows on grey, cleaned edges, cropped. Window options need a model that marks glass (else
those columns keep the glass opaque). Commit a sheet only of photos whose licence allows it.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from carmask.cutout import CutoutOptions, render
from carmask.imaging import open_photo
from carmask.inference import DEFAULT_MODEL, Segmenter

CELL = 300  # thumbnail width


def checker(size: tuple[int, int], step: int = 12) -> Image.Image:
    y, x = np.mgrid[: size[1], : size[0]]
    board = np.where(((x // step + y // step) % 2) == 0, 235, 200).astype(np.uint8)
    return Image.fromarray(np.dstack([board] * 3))


def thumb(image: Image.Image) -> Image.Image:
    image = image.convert("RGBA")
    scale = CELL / image.width
    image = image.resize((CELL, max(1, round(image.height * scale))), Image.Resampling.LANCZOS)
    base = checker(image.size).convert("RGBA")
    base.alpha_composite(image)
    return base.convert("RGB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", nargs="+", type=Path)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--out", type=Path, default=Path("models/examples/cutouts.jpg"))
    args = parser.parse_args()
    seg = Segmenter(args.model)
    glass = seg.glass.present
    columns = {
        "photo": None,
        "cutout (no option)": CutoutOptions(),
        "see-through, shadow, white, crop": CutoutOptions(windows="transparent" if glass else "opaque",
                                                          shadow="contact", bg_color="ffffff", crop=True),
        "tinted, grey, clean edges, crop": CutoutOptions(windows="tinted" if glass else "opaque", bg_color="c8ccd0",
                                                         decontaminate=True, crop=True),
    }  # fmt: skip
    rows = []
    for path in args.photos:
        result = seg.segment_files([path], glass=glass)[0]
        mask, glass_u8 = result if glass else (result, None)
        image = open_photo(path).image
        cells = [thumb(image) if o is None else thumb(Image.open(io.BytesIO(render(image, mask, o, glass_u8))))
                 for o in columns.values()]  # fmt: skip
        rows.append(cells)
    height = [max(c.height for c in row) for row in rows]
    sheet = Image.new("RGB", (CELL * len(columns), 24 + sum(height)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, title in enumerate(columns):
        draw.text((i * CELL + 6, 6), title, fill="black")
    y = 24
    for row, h in zip(rows, height, strict=True):
        for i, cell in enumerate(row):
            sheet.paste(cell, (i * CELL, y))
        y += h
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, quality=85)
    print(f"wrote {args.out} ({seg.manifest.name} {seg.manifest.version}, {len(rows)} photos)")


if __name__ == "__main__":
    main()
