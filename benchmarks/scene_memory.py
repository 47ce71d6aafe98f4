"""A whole scene through `carmask-predict` in bounded memory: peak RSS, time, and the georeferencing kept.

Writes a generated four-band Sentinel-2 L2A-like GeoTIFF (uint16 DN with the baseline-04.00 offset, UTM
zone 33N, 10 m pixels, tiled and deflated; written strip by strip so making it takes little memory): a
smooth ground, bright cloud blobs, a fill border. Then runs carmask-predict on it in a child process (its
own peak RSS, as the CLI prints it), and checks that the class map has the scene's CRS, transform and size.
The input alone, read whole as float32, would take width x height x 4 x 4 bytes (6,000 a side: 576 MB).

    python benchmarks/scene_memory.py --side 6000 --model models/carmask-clouds-4band.json
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import machine


def write_scene(path: Path, side: int, strip: int = 512, seed: int = 0) -> None:
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    rng = np.random.default_rng(seed)
    coarse = rng.random((side // 200 + 2, side // 200 + 2)).astype(np.float32)  # cloud field, ~2 km cells
    profile = {"driver": "GTiff", "width": side, "height": side, "count": 4, "dtype": "uint16", "nodata": 0,
               "crs": "EPSG:32633", "transform": from_origin(399960.0, 5300040.0, 10.0, 10.0), "tiled": True,
               "blockxsize": 512, "blockysize": 512, "compress": "deflate", "BIGTIFF": "IF_SAFER"}  # fmt: skip
    ground = np.array([0.05, 0.08, 0.07, 0.3], np.float32)  # blue, green, red, nir: vegetation
    with rasterio.open(path, "w", **profile) as dst:
        for top in range(0, side, strip):
            rows = min(strip, side - top)
            y = (np.arange(top, top + rows) / 200.0)[:, None]
            x = (np.arange(side) / 200.0)[None, :]
            cloud = coarse[y.astype(int), x.astype(int)] > 0.7  # blocky blobs, ~30 % of the scene
            reflectance = ground + rng.normal(0, 0.01, (rows, side, 4)).astype(np.float32)
            reflectance[cloud] = 0.6 + rng.normal(0, 0.02, (int(cloud.sum()), 4)).astype(np.float32)
            dn = np.clip(reflectance * 10000 + 1000, 1, 65535).astype(np.uint16)
            dn[:, :100] = 0  # a fill border down the west edge (outside the swath)
            dst.write(np.moveaxis(dn, -1, 0), window=Window(0, top, side, rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--side", type=int, default=6000, help="scene side in pixels")
    parser.add_argument("--model", type=Path, default=Path("models/carmask-clouds-4band.json"))
    parser.add_argument("--work", type=Path, help="folder for the scene and its class map (default: a temp folder)")
    args = parser.parse_args()

    import rasterio

    work = args.work or Path(tempfile.mkdtemp(prefix="scene-memory-"))
    work.mkdir(parents=True, exist_ok=True)
    scene = work / f"scene{args.side}.tif"
    started = time.perf_counter()
    if not scene.is_file():
        write_scene(scene, args.side)
    made = time.perf_counter() - started
    command = [sys.executable, "-m", "carmask.predict", str(scene), "--model", str(args.model), "--sensor",
               "sentinel2-l2a", "--out", str(work / "out"), "--quiet"]  # fmt: skip
    started = time.perf_counter()
    run = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if run.returncode:
        sys.exit(f"carmask-predict failed ({run.returncode}):\n{run.stderr}")
    peak = float(re.search(r"peak RSS (\d+) MB", run.stderr).group(1))
    with rasterio.open(scene) as src, rasterio.open(work / "out" / f"{scene.stem}_classes.tif") as out:
        same = (src.crs == out.crs, src.transform == out.transform, src.shape == out.shape)
        cover = run.stderr
    print(f"{machine()}")
    print(f"scene {args.side}x{args.side}x4 uint16 ({scene.stat().st_size / 1e6:.0f} MB on disk, made in {made:.0f} s; "
          f"{args.side**2 * 16 / 1e6:.0f} MB as float32 in memory)")  # fmt: skip
    print(f"carmask-predict {args.model.name}: {seconds:.1f} s, peak RSS {peak:.0f} MB (whole process: Python, "
          f"onnxruntime, GDAL)")  # fmt: skip
    print(f"class map: CRS same {same[0]}, transform same {same[1]}, size same {same[2]}")
    print((work / "out" / "cover.csv").read_text().strip() if (work / "out" / "cover.csv").is_file() else cover)


if __name__ == "__main__":
    main()
