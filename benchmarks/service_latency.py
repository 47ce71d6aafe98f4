"""Service latency and throughput on 127.0.0.1 with the shipped model, plus where the time goes.

    python benchmarks/service_latency.py [--requests 40] [--url URL]

Sends real Carvana test photos (generated 1918x1280 JPEGs when ../shared is absent).
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, percentile, rss_mb, running_service, test_photos

from carmask.imaging import open_photo
from carmask.inference import DEFAULT_MODEL, Segmenter
from carmask.outputs import mask_png, rle_record
from carmask.preprocess import threshold_u8, upsample_probabilities


def stage_breakdown(photos: list[tuple[str, bytes]], threads: int = 0, rounds: int = 3) -> dict[str, float]:
    """Milliseconds per photo in each stage of POST /segment, measured in-process."""
    seg = Segmenter(DEFAULT_MODEL, threads=threads)
    times: dict[str, list[float]] = {k: [] for k in ("decode", "resize", "model", "upsample", "png", "rle")}
    for _ in range(rounds):
        for _, data in photos:
            t0 = time.perf_counter()
            photo = open_photo(data, draft_size=seg.input_size)
            t1 = time.perf_counter()
            pixels = seg.fit.pixels(photo.image)
            t2 = time.perf_counter()
            prob = seg.probabilities(pixels[None])[0]
            t3 = time.perf_counter()
            prob = seg.content(prob, photo.size, seg.threshold, pixels=pixels)
            mask = threshold_u8(upsample_probabilities(prob, photo.size), seg.threshold)
            t4 = time.perf_counter()
            mask_png(mask)
            t5 = time.perf_counter()
            rle_record(mask)
            t6 = time.perf_counter()
            for key, a, b in zip(times, (t0, t1, t2, t3, t4, t5), (t1, t2, t3, t4, t5, t6), strict=True):
                times[key].append((b - a) * 1000)
    return {k: float(np.median(v)) for k, v in times.items()}


def load(url: str, photos, fmt: str, clients: int, requests: int) -> tuple[float, float, float]:
    """(p50 ms, p95 ms, photos/s) for `requests` single-photo POSTs from `clients` concurrent clients."""
    latencies: list[float] = []

    def one(i: int) -> None:
        name, data = photos[i % len(photos)]
        start = time.perf_counter()
        r = http.post("/segment", params={"format": fmt}, files={"file": (name, data, "image/jpeg")})
        r.raise_for_status()
        latencies.append((time.perf_counter() - start) * 1000)

    with httpx.Client(base_url=url, timeout=60, limits=httpx.Limits(max_connections=clients)) as http:
        for i in range(4):
            one(i)  # warm-up
        latencies.clear()
        start = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(one, range(requests)))
        elapsed = time.perf_counter() - start
    return percentile(latencies, 50), percentile(latencies, 95), requests / elapsed


def batch_throughput(url: str, photos, size: int = 16, rounds: int = 4) -> tuple[float, float]:
    files = [("files", (name, data, "image/jpeg")) for name, data in photos[:size]]
    times = []
    with httpx.Client(base_url=url, timeout=120) as http:
        http.post("/segment/batch", files=files).raise_for_status()
        for _ in range(rounds):
            start = time.perf_counter()
            http.post("/segment/batch", files=files).raise_for_status()
            times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1000, size / float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--url", help="an already running service (default: start one)")
    args = parser.parse_args()
    photos = test_photos()
    print(f"machine: {machine()}; {len(photos)} photos, {len(photos[0][1]) // 1024} KB JPEG each (about)")

    stages = stage_breakdown(photos[:8])
    print("where the time goes for one photo (ms, median, in-process):")
    print("  " + "  ".join(f"{k} {v:.1f}" for k, v in stages.items()))

    def run(url: str) -> None:
        pid = getattr(url, "pid", None)
        if pid:
            print(f"service memory after start-up: {rss_mb(pid):.0f} MB RSS")
        for fmt in ("png", "rle"):
            for clients in (1, 4):
                p50, p95, rate = load(url, photos, fmt, clients, args.requests)
                print(
                    f"POST /segment format={fmt:3} clients={clients}: p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  "
                    f"{rate:5.1f} photos/s"
                )
        ms, rate = batch_throughput(url, photos)
        print(f"POST /segment/batch 16 photos: {ms:.0f} ms per request, {rate:.1f} photos/s")
        if pid:
            before = rss_mb(pid)
            load(url, photos, "png", 4, 200)
            print(f"service memory: {before:.0f} MB RSS after the runs above, {rss_mb(pid):.0f} MB after 200 more")

    if args.url:
        run(args.url)
    else:
        with running_service() as url:
            run(url)


if __name__ == "__main__":
    main()
