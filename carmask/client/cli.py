"""`carmask-client`: segment photo sets through a running service, or write a Kaggle submission."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from carmask.client.api import DEFAULT_URL, CarmaskClient


def _segment(args: argparse.Namespace) -> int:
    from carmask.client.jobs import segment_paths

    with CarmaskClient(args.url, timeout=args.timeout, retries=args.retries, api_key=args.api_key) as client:
        summary = segment_paths(
            client, args.paths, args.out, args.format, args.concurrency, args.set_size, args.threshold, not args.quiet
        )
    print(summary, file=sys.stderr)
    return 1 if summary.failed else 0


def _submission(args: argparse.Namespace) -> int:
    from carmask.client.submission import make_submission, offline_rle, service_rle

    if args.offline:
        from carmask.inference import Segmenter

        rle_of = offline_rle(Segmenter(args.model, threads=args.threads))
        report = make_submission(args.test_dir, args.sample, args.out, rle_of, progress=not args.quiet)
    else:
        with CarmaskClient(args.url, timeout=args.timeout, retries=args.retries, api_key=args.api_key) as client:
            report = make_submission(args.test_dir, args.sample, args.out, service_rle(client), progress=not args.quiet)
    print(report, file=sys.stderr)
    print(f"wrote {args.out}", file=sys.stderr)
    return 1 if report.failed or report.problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="carmask-client", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--url", help=f"service URL (default: $CARMASK_URL or {DEFAULT_URL})")
        p.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
        p.add_argument(
            "--retries", type=int, default=3, help="retries on connection errors, 5xx and 429 (honouring Retry-After)"
        )
        p.add_argument("--api-key", help="API key, when the service requires one (default: $CARMASK_API_KEY)")
        p.add_argument("--quiet", action="store_true", help="no progress bar")

    seg = sub.add_parser(
        "segment",
        help="segment files, folders, or a folder of photo-set folders",
        description="Masks for every photo, written into --out mirroring the input folders. Finished outputs are "
        "skipped, so rerunning an interrupted job resumes it. Exit status 1 if any photo failed.",
    )
    seg.add_argument("paths", nargs="+", help="photos, folders, or glob patterns")
    seg.add_argument("--out", type=Path, required=True, help="output folder")
    seg.add_argument("--format", choices=["mask", "rle", "cutout"], default="mask")
    seg.add_argument("--threshold", type=float)
    seg.add_argument("--concurrency", type=int, default=2, help="requests in flight at once")
    seg.add_argument("--set-size", type=int, default=16, help="photos per /segment/batch request")
    common(seg)
    seg.set_defaults(run=_segment)

    subm = sub.add_parser(
        "submission",
        help="write a Kaggle submission.csv for a folder of test photos",
        description="RLE masks at 1918x1280 for each photo of TEST_DIR, in the order of the sample submission, "
        "checked against it. Resumes an interrupted run from <out>.parts.jsonl.",
    )
    subm.add_argument("test_dir", type=Path)
    subm.add_argument("--sample", type=Path, required=True, help="Kaggle's sample_submission.csv")
    subm.add_argument("--out", type=Path, default=Path("submission.csv"))
    subm.add_argument("--offline", action="store_true", help="run the ONNX model here, no service (ignores --url)")
    subm.add_argument("--model", type=Path, default=None, help="with --offline: model manifest (.json)")
    subm.add_argument("--threads", type=int, default=0, help="with --offline: onnxruntime threads")
    common(subm)
    subm.set_defaults(run=_submission)

    args = parser.parse_args(argv)
    if getattr(args, "model", None) is None and getattr(args, "offline", False):
        from carmask.inference import DEFAULT_MODEL

        args.model = DEFAULT_MODEL
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
