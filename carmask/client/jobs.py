"""Segmenting folders of photo sets through the service, resumably.

Inputs are files, folders, or a folder of folders (one folder per car or
dealer set). Each set goes to the service in `/segment/batch` requests (or
one `/segment` request per photo for cutouts), a few at a time. Each output
is written atomically, and a photo whose output already exists is skipped,
so an interrupted job is simply run again.
"""

from __future__ import annotations

import json
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from carmask.client.api import CarmaskClient, ClientError, ServiceUnavailable
from carmask.files import expand_inputs, output_path, write_atomic


@dataclass
class JobSummary:
    done: int = 0
    skipped: int = 0
    failed: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [f"done {self.done}, skipped {self.skipped}, failed {len(self.failed)}"]
        lines += [f"  failed: {path}: {reason}" for path, reason in sorted(self.failed.items())]
        return "\n".join(lines)


@dataclass
class Task:
    photos: list[Path]
    outputs: list[Path]


def plan(inputs: list[str], out_dir: Path, fmt: str, set_size: int) -> tuple[list[Task], int]:
    """Group photos by folder into batch-sized tasks, leaving out those already done."""
    roots = [Path(i) for i in inputs if Path(i).is_dir()]
    by_folder: dict[Path, list[tuple[Path, Path]]] = defaultdict(list)
    skipped = 0
    for photo in expand_inputs(inputs):
        root = next((r for r in roots if photo.is_relative_to(r)), None)
        target = output_path(photo, fmt, out_dir, root)
        if target.exists():
            skipped += 1
            continue
        by_folder[photo.parent].append((photo, target))
    tasks = []
    for pairs in by_folder.values():
        for start in range(0, len(pairs), set_size):
            chunk = pairs[start : start + set_size]
            tasks.append(Task([p for p, _ in chunk], [t for _, t in chunk]))
    return tasks, skipped


def _run_task(client: CarmaskClient, task: Task, fmt: str, threshold: float | None) -> dict[str, str]:
    """Segment one task's photos and write their outputs; returns {photo: reason} for failures."""
    failed: dict[str, str] = {}
    if fmt == "cutout":  # no batch form: one request per photo
        for photo, target in zip(task.photos, task.outputs, strict=True):
            try:
                write_atomic(target, client.segment(photo, "cutout", threshold))
            except (ClientError, ServiceUnavailable, OSError) as exc:
                failed[str(photo)] = str(exc)
        return failed
    try:
        entries = client.segment_batch(task.photos, "json", threshold)
    except ClientError as exc:  # the whole request refused (e.g. too large): try the photos one by one
        if len(task.photos) == 1:
            return {str(task.photos[0]): str(exc)}
        for photo, target in zip(task.photos, task.outputs, strict=True):
            failed.update(_run_task(client, Task([photo], [target]), fmt, threshold))
        return failed
    for photo, target, entry in zip(task.photos, task.outputs, entries, strict=True):
        if "error" in entry:
            failed[str(photo)] = f"{entry['status']} {entry['error']}: {entry['detail']}"
            continue
        write_atomic(target, _render(entry, fmt))
    return failed


def _written(task: Task, photo: Path) -> bool:
    return task.outputs[task.photos.index(photo)].exists()


def _render(entry: dict, fmt: str) -> bytes:
    if fmt == "rle":
        return json.dumps({k: entry[k] for k in ("width", "height", "rle", "coverage")}).encode()
    from carmask import rle
    from carmask.outputs import mask_png

    return mask_png(rle.decode(entry["rle"], entry["height"], entry["width"]))


def segment_paths(
    client: CarmaskClient,
    inputs: list[str],
    out_dir: Path,
    fmt: str = "mask",
    concurrency: int = 2,
    set_size: int = 16,
    threshold: float | None = None,
    progress: bool = True,
) -> JobSummary:
    tasks, skipped = plan(inputs, out_dir, fmt, set_size)
    summary = JobSummary(skipped=skipped)
    total = sum(len(t.photos) for t in tasks)
    with ThreadPoolExecutor(max(1, concurrency)) as pool, tqdm(total=total, unit="photo", disable=not progress) as bar:
        futures = {pool.submit(_run_task, client, task, fmt, threshold): task for task in tasks}
        for future in as_completed(futures):
            task = futures[future]
            try:
                failed = future.result()
            except (ServiceUnavailable, OSError) as exc:  # the whole set: service down, or a file unreadable
                failed = {str(p): str(exc) for p in task.photos if not _written(task, p)}
            summary.failed.update(failed)
            summary.done += len(task.photos) - len(failed)
            bar.update(len(task.photos))
    return summary
