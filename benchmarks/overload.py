"""Overload: N clients sending photos as fast as they can; what the accepted ones wait, and what the rest get.

python benchmarks/overload.py [--clients 2 8 32] [--seconds 20] [--model models/carmask-v2.json]

One service (2 workers by default, `CARMASK_MAX_WAITING` photos may wait) on 127.0.0.1, the Carvana test
photos (or generated ones). Per client count: p50/p99 latency of the 200s, share of 503s (with their own
p99: they should be fast), connection errors, throughput, and the service's memory before and after.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, rss_mb, running_service, test_photos


def hammer(url: str, photos: list[tuple[str, bytes]], clients: int, seconds: float, polite: bool = False) -> dict:
    records: list[tuple[int, float]] = []  # (status or -1 for a connection error, seconds)
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(index: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            i = index
            while time.monotonic() < stop:
                name, data = photos[i % len(photos)]
                i += clients
                start = time.perf_counter()
                retry_after = 0.0
                try:
                    response = http.post("/segment", files={"file": (name, data, "image/jpeg")})
                    status = response.status_code
                    retry_after = float(response.headers.get("retry-after", 0))
                except httpx.TransportError:
                    status = -1
                with lock:
                    records.append((status, time.perf_counter() - start))
                if polite and status == 503:  # as carmask.client does
                    time.sleep(min(retry_after, max(0.0, stop - time.monotonic())))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = [s for status, s in records if status == 200]
    refused = [s for status, s in records if status == 503]
    return {
        "requests": len(records),
        "ok": len(ok),
        "p50": np.percentile(ok, 50) * 1000 if ok else float("nan"),
        "p99": np.percentile(ok, 99) * 1000 if ok else float("nan"),
        "refused_share": len(refused) / max(1, len(records)),
        "refused_p99": np.percentile(refused, 99) * 1000 if refused else float("nan"),
        "errors": sum(1 for status, _ in records if status == -1),
        "other": sorted({status for status, _ in records if status not in (200, 503, -1)}),
        "throughput": len(ok) / seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", nargs="+", type=int, default=[2, 8, 32])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--model", default=None, help="manifest (default: the service's default model)")
    parser.add_argument("--polite", action="store_true", help="clients wait what Retry-After says, as ours do")
    args = parser.parse_args()
    env = {"CARMASK_ACCESS_LOG": "false", **({"CARMASK_MODEL": args.model} if args.model else {})}
    photos = test_photos()
    print(f"machine: {machine()}; {len(photos)} photos; clients {'honour' if args.polite else 'ignore'} Retry-After")
    with running_service(env) as url:
        print(f"service: {httpx.get(url + '/ready').json()}")
        print(f"{'clients':>7} {'requests':>8} {'200 p50 ms':>10} {'200 p99 ms':>10} {'503 share':>9} "
              f"{'503 p99 ms':>10} {'conn errors':>11} {'photos/s':>8} {'RSS MB before/after':>20}")  # fmt: skip
        for clients in args.clients:
            before = rss_mb(url.pid)
            r = hammer(url, photos, clients, args.seconds, args.polite)
            after = rss_mb(url.pid)
            print(
                f"{clients:7d} {r['requests']:8d} {r['p50']:10.1f} {r['p99']:10.1f} {r['refused_share']:9.1%} "
                f"{r['refused_p99']:10.1f} {r['errors']:11d} {r['throughput']:8.1f} {before:9.0f} / {after:<9.0f}"
                + (f"  other statuses: {r['other']}" if r["other"] else "")
            )


if __name__ == "__main__":
    main()
