"""Outline metrics (boundary F-score, the top edge's offset) and bootstrap intervals on drawn masks."""

from __future__ import annotations

import numpy as np
import pytest

from carmask.metrics import bootstrap_interval, boundary_f_score, top_edge_offset


def _box(top=20, bottom=60, left=10, right=90, shape=(80, 100)):
    mask = np.zeros(shape, bool)
    mask[top:bottom, left:right] = True
    return mask


def test_boundary_f_score_counts_outline_pixels_within_the_tolerance():
    truth = _box()
    assert boundary_f_score(truth, truth, 2) == 1.0
    assert boundary_f_score(_box(top=22), truth, 2) == 1.0  # 2 px off: within the tolerance
    shifted = boundary_f_score(_box(top=25), truth, 2)  # the top edge (a quarter of the outline) is 5 px off
    assert 0.6 < shifted < 0.85
    assert boundary_f_score(_box(top=25), truth, 5) == 1.0
    assert boundary_f_score(np.zeros_like(truth), truth) == 0.0
    assert boundary_f_score(np.zeros_like(truth), np.zeros_like(truth)) == 1.0


def test_top_edge_offset_is_positive_when_the_roof_is_eroded():
    truth = _box()
    assert top_edge_offset(truth, truth) == 0.0
    assert top_edge_offset(_box(top=23), truth) == 3.0  # eroded roof: below the truth
    assert top_edge_offset(_box(top=18), truth) == -2.0
    eroded_middle = truth.copy()
    eroded_middle[20:24, 40:60] = False  # a quarter of the columns lose 4 px: the median stays 0
    assert top_edge_offset(eroded_middle, truth) == 0.0
    assert np.isnan(top_edge_offset(np.zeros_like(truth), truth))


def test_bootstrap_interval_holds_the_mean_and_narrows_with_more_photos():
    rng = np.random.default_rng(0)
    few, many = rng.normal(0.9, 0.05, 20), rng.normal(0.9, 0.05, 400)
    low, high = bootstrap_interval(few)
    assert low < few.mean() < high
    low2, high2 = bootstrap_interval(many)
    assert (high2 - low2) < (high - low) / 2
    assert bootstrap_interval(np.array([0.5, 0.5, 0.5])) == pytest.approx((0.5, 0.5))
    assert all(np.isnan(bootstrap_interval(np.array([np.nan]))))
