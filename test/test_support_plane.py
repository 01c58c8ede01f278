"""The support plane (Open3D RANSAC): found on a noisy table, and the same
plane for the same points every time, whatever ran before (the evaluation's
episodes are reproducible only if perception is)."""

from __future__ import annotations

import numpy as np

from robot_memory.perception.config import PerceptionConfig
from robot_memory.perception.segmentation import fit_support_plane

TABLE_Z = 0.0


def noisy_table(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(-0.4, 0.4, size=(20000, 2))
    z = TABLE_Z + 0.002 * xy[:, 0] + rng.normal(0.0, 0.0015, len(xy))  # tilted 0.1 deg, noisy
    clutter = rng.uniform((-0.4, -0.4, TABLE_Z), (0.4, 0.4, TABLE_Z + 0.03), size=(3000, 3))
    return np.vstack([np.column_stack([xy, z]), clutter])


def test_the_plane_is_found_and_is_the_same_every_time():
    config = PerceptionConfig(num_threads=2)
    points = noisy_table(1)
    first = fit_support_plane(points, TABLE_Z, config)
    assert first.fitted and first.normal[2] > 0.999 and abs(first.z_at(0.0, 0.0)) < 0.003
    for seed in (2, 3, 4):  # other frames in between move the generator on
        fit_support_plane(noisy_table(seed), TABLE_Z, config)
        again = fit_support_plane(points, TABLE_Z, config)
        assert np.array_equal(again.normal, first.normal) and again.offset == first.offset
