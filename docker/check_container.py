"""Segment a photo through a running container and compare its latency with the service run directly.

python docker/check_container.py http://127.0.0.1:18080
"""

from __future__ import annotations

import io
import statistics
import sys
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _common import running_service, test_photos  # noqa: E402


def timed_segments(url: str, photos, rounds: int = 20) -> tuple[list[float], bytes]:
    times, body = [], b""
    with httpx.Client(base_url=url, timeout=60) as http:
        for i in range(rounds + 3):
            name, data = photos[i % len(photos)]
            start = time.perf_counter()
            r = http.post("/segment", files={"file": (name, data, "image/jpeg")})
            r.raise_for_status()
            if i >= 3:
                times.append((time.perf_counter() - start) * 1000)
            body = body or r.content
    return times, body


def main() -> None:
    url = sys.argv[1]
    photos = test_photos(8)
    times, png = timed_segments(url, photos)
    mask = np.asarray(Image.open(io.BytesIO(png)))
    size = Image.open(io.BytesIO(photos[0][1])).size
    assert mask.shape[::-1] == size, (mask.shape, size)
    coverage = (mask > 0).mean()
    assert 0.05 < coverage < 0.8, coverage  # a car, not an empty or full mask
    print(f"container: mask {mask.shape[1]}x{mask.shape[0]} for {photos[0][0]}, coverage {coverage:.3f}")
    print(f"container POST /segment: median {statistics.median(times):.1f} ms over {len(times)} photos")
    with running_service() as direct:
        direct_times, direct_png = timed_segments(direct, photos)
    same = np.array_equal(np.asarray(Image.open(io.BytesIO(direct_png))), mask)
    print(f"direct    POST /segment: median {statistics.median(direct_times):.1f} ms; same mask: {same}")


if __name__ == "__main__":
    main()
