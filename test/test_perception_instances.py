"""Touching objects separated by their footprint (perception/instances.py),
on synthetic footprints of the household objects' sizes and on a rendered
scene with two same-colour cans standing in contact."""

from __future__ import annotations

import numpy as np
import pytest

from robot_memory.perception.config import PerceptionConfig
from robot_memory.perception.instances import footprint_regions, split_touching

CFG = PerceptionConfig()


def disc(rng, centre, radius, n=600):
    a = rng.uniform(0, 2 * np.pi, n)
    d = radius * np.sqrt(rng.uniform(0, 1, n))
    return np.column_stack([centre[0] + d * np.cos(a), centre[1] + d * np.sin(a)])


def rect(rng, centre, length, width, yaw, n=800):
    p = rng.uniform(-0.5, 0.5, (n, 2)) * [length, width]
    c, s = np.cos(yaw), np.sin(yaw)
    return np.asarray(centre) + p @ np.array([[c, s], [-s, c]])


def regions(xy) -> int:
    return int(footprint_regions(xy, CFG).max()) + 1


@pytest.mark.parametrize("seed", range(5))
def test_one_object_stays_one(seed):
    rng = np.random.default_rng(seed)
    yaw = rng.uniform(0, np.pi)
    assert regions(disc(rng, (0.1, 0.2), 0.03)) == 1  # can
    assert regions(rect(rng, (0, 0), 0.058, 0.09, yaw)) == 1  # box
    assert regions(rect(rng, (0, 0), 0.16, 0.026, yaw)) == 1  # screwdriver
    mug = np.concatenate([disc(rng, (0, 0), 0.032), rect(rng, (0.043, 0), 0.022, 0.011, 0, 100)])
    assert regions(mug) == 1  # the handle is too thin to be an object of its own


@pytest.mark.parametrize("seed", range(5))
def test_two_round_objects_in_contact_become_two(seed):
    rng = np.random.default_rng(seed)
    yaw = rng.uniform(0, 2 * np.pi)
    a = disc(rng, (0.0, 0.0), 0.03)
    b = disc(rng, (0.061 * np.cos(yaw), 0.061 * np.sin(yaw)), 0.03)
    parts = footprint_regions(np.concatenate([a, b]), CFG)
    assert parts.max() == 1
    # each disc is mostly in one region, a different one (5 mm cells blur the contact)
    pa, pb = np.bincount(parts[:600]).argmax(), np.bincount(parts[600:]).argmax()
    assert pa != pb
    assert np.mean(parts[:600] == pa) > 0.85 and np.mean(parts[600:] == pb) > 0.85


def test_split_touching_relabels_only_the_merged_cluster():
    rng = np.random.default_rng(0)
    twins = np.concatenate([disc(rng, (0, 0), 0.03), disc(rng, (0.061, 0), 0.03)])
    lone = disc(rng, (0.3, 0.3), 0.03)
    xy = np.concatenate([twins, lone, [[1.0, 1.0]]])
    centroids = np.column_stack([xy, np.full(len(xy), 0.04)])
    labels = np.array([0] * len(twins) + [1] * len(lone) + [-1])
    out = split_touching(centroids, labels, CFG)
    assert out[-1] == -1
    assert len(set(out[: len(twins)])) == 2 and set(out[len(twins) : -1]) == {1}
    off = split_touching(centroids, labels, PerceptionConfig(split_min_radius=0.0))
    np.testing.assert_array_equal(off, labels)
