"""`carmask-client` throughput: the 32 Carvana test photos through a local service at 1, 2 and 4
concurrent requests (one photo per request, and 16-photo sets), against the offline path.

    python benchmarks/client_throughput.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, running_service, test_photos

from carmask.client import CarmaskClient
from carmask.client.jobs import segment_paths
from carmask.inference import DEFAULT_MODEL, Segmenter
from carmask.predict import predict_paths


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        for name, data in test_photos():
            (folder / name).write_bytes(data)
        n = len(list(folder.iterdir()))
        print(f"machine: {machine()}; {n} photos")
        with running_service() as url, CarmaskClient(url) as client:
            for set_size in (1, 16):
                for concurrency in (1, 2, 4):
                    out = Path(tmp) / f"out-{set_size}-{concurrency}"
                    start = time.perf_counter()
                    summary = segment_paths(client, [str(folder)], out, "mask", concurrency, set_size, progress=False)
                    elapsed = time.perf_counter() - start
                    assert summary.done == n, summary
                    print(f"service  set size {set_size:2}  concurrency {concurrency}: {n / elapsed:5.1f} photos/s")
        seg = Segmenter(DEFAULT_MODEL)
        start = time.perf_counter()
        predict_paths(seg, sorted(folder.iterdir()), out_dir=Path(tmp) / "offline", batch_size=16, progress=False)
        elapsed = time.perf_counter() - start
        print(f"offline  (carmask-predict, batch 16): {n / elapsed:5.1f} photos/s")


if __name__ == "__main__":
    main()
