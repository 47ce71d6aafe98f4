"""Teachers: general segmenters whose agreeing answers label photos that have no masks.

Each teacher is its own module behind one small interface (`base.Teacher`): a name, a cache key, and
`probabilities(photo) -> (H, W) float32` at the photo's size. `labelling.label_photos` runs several over a
folder, caches each teacher's answer per photo, and turns agreement into labels (disagreement: ignored).
"""

from __future__ import annotations

from training.teachers.base import Teacher, TeacherError

NAMES = ("u2netp", "isnet", "carmask")


def make_teacher(name: str, **options) -> Teacher:
    """A teacher by name: u2netp (rembg), isnet (IS-Net at 1024 px), carmask (our shipped model, flip TTA)."""
    if name == "u2netp":
        from training.teachers.u2netp import U2netp

        return U2netp(**options)
    if name == "isnet":
        from training.teachers.isnet import IsNet

        return IsNet(**options)
    if name == "carmask":
        from training.teachers.carmask import CarmaskTeacher

        return CarmaskTeacher(**options)
    raise TeacherError(f"unknown teacher {name!r}; choose from {', '.join(NAMES)}")


__all__ = ["NAMES", "Teacher", "TeacherError", "make_teacher"]
