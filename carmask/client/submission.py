"""Kaggle Carvana submissions: `submission.csv` (img,rle_mask) in the sample submission's order.

Masks come from the service or offline from the ONNX model (the same code as
`carmask-predict`). Finished rows are appended to `<out>.parts.jsonl` as they
come, so an interrupted run resumes; the CSV is written atomically at the end
and checked against the sample.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from carmask import rle
from carmask.files import PHOTO_SUFFIXES, write_atomic

KAGGLE_SIZE = (1918, 1280)  # (width, height) of every Carvana photo
HEADER = ["img", "rle_mask"]

# (photo paths) -> {photo name: RLE string or an Exception}
RLEFunction = Callable[[list[Path]], dict[str, str | Exception]]


@dataclass
class SubmissionReport:
    rows: int = 0
    predicted: int = 0
    resumed: int = 0
    missing: list[str] = field(default_factory=list)  # in the sample, no photo in the test folder
    extra: list[str] = field(default_factory=list)  # photos not in the sample
    failed: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # from the final check

    def __str__(self) -> str:
        lines = [f"{self.rows} rows: {self.predicted} predicted ({self.resumed} from an earlier run)"]
        if self.missing:
            lines.append(
                f"{len(self.missing)} sample images have no photo here (empty rle_mask), e.g. {self.missing[:3]}"
            )
        if self.extra:
            lines.append(f"{len(self.extra)} photos are not in the sample and were left out, e.g. {self.extra[:3]}")
        lines += [f"failed: {name}: {reason}" for name, reason in sorted(self.failed.items())]
        lines += [f"check: {p}" for p in self.problems] or ["check: header, image names and RLE all valid"]
        return "\n".join(lines)


def read_sample(path: Path) -> list[str]:
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header != HEADER:
            raise ValueError(f"{path}: header is {header}, expected {HEADER}")
        return [row[0] for row in reader if row]


def check_submission(path: Path, sample: Path, size: tuple[int, int] = KAGGLE_SIZE) -> list[str]:
    """Problems with a submission against its sample: header, names and order, RLE well-formed."""
    expected = read_sample(sample)
    problems = []
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header != HEADER:
            problems.append(f"header is {header}, expected {HEADER}")
        rows = list(reader)
    names = [r[0] for r in rows]
    if names != expected:
        missing, extra = set(expected) - set(names), set(names) - set(expected)
        problems.append(
            f"image names differ from the sample: {len(missing)} missing, {len(extra)} extra"
            + ("" if missing or extra else ", order differs")
        )
    for row in rows:
        if len(row) != 2:
            problems.append(f"{row[:1]}: expected 2 columns, got {len(row)}")
            continue
        try:
            rle.decode(row[1], size[1], size[0])
        except rle.RLEError as exc:
            problems.append(f"{row[0]}: {exc}")
    return problems


def _parts(path: Path) -> Iterator[dict]:
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by an interruption: predicted again


def make_submission(
    test_dir: Path, sample: Path, out: Path, rle_of: RLEFunction, chunk: int = 16, progress: bool = True
) -> SubmissionReport:
    from tqdm import tqdm

    order = read_sample(sample)
    wanted = set(order)
    photos = {p.name: p for p in sorted(test_dir.iterdir()) if p.suffix.lower() in PHOTO_SUFFIXES}
    report = SubmissionReport(missing=[n for n in order if n not in photos], extra=sorted(set(photos) - wanted))
    parts_file = out.with_name(out.name + ".parts.jsonl")
    done = {p["img"]: p["rle_mask"] for p in _parts(parts_file)}
    report.resumed = len(done)
    todo = [photos[n] for n in order if n in photos and n not in done]
    with open(parts_file, "a") as parts, tqdm(total=len(todo), unit="photo", disable=not progress) as bar:
        for start in range(0, len(todo), chunk):
            batch = todo[start : start + chunk]
            for name, result in rle_of(batch).items():
                if isinstance(result, Exception):
                    report.failed[name] = str(result)
                    continue
                done[name] = result
                parts.write(json.dumps({"img": name, "rle_mask": result}) + "\n")
            parts.flush()
            bar.update(len(batch))
    report.predicted = sum(1 for n in order if n in done)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows([n, done.get(n, "")] for n in order)
    report.rows = len(order)
    write_atomic(out, buf.getvalue().encode())
    report.problems = check_submission(out, sample)
    if not report.failed:
        parts_file.unlink(missing_ok=True)  # complete: nothing left to resume
    return report


def service_rle(client) -> RLEFunction:
    """RLE through a running service's /segment/batch (masks at each photo's own size)."""
    from carmask.client.api import ClientError, ServiceUnavailable

    def run(paths: list[Path]) -> dict[str, str | Exception]:
        try:
            entries = client.segment_batch(paths, "json")
        except (ClientError, ServiceUnavailable) as exc:
            return {p.name: exc for p in paths}
        return {
            p.name: (RuntimeError(f"{e['error']}: {e['detail']}") if "error" in e else e["rle"])
            for p, e in zip(paths, entries, strict=True)
        }

    return run


def offline_rle(segmenter) -> RLEFunction:
    """RLE through the ONNX model in-process, with the same pipeline as carmask-predict."""

    def run(paths: list[Path]) -> dict[str, str | Exception]:
        results = segmenter.segment_files(paths)
        return {p.name: (r if isinstance(r, Exception) else rle.encode(r)) for p, r in zip(paths, results, strict=True)}

    return run
