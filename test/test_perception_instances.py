"""Touching objects separated by their footprint (perception/instances.py),
on synthetic footprints of the household objects' sizes and on a rendered
scene with two same-colour cans standing in contact."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from robot_memory.perception.config import PerceptionConfig
from robot_memory.perception.instances import footprint_regions, split_by_colour, split_touching

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


def ring(rng, centre, radius, wall=0.008):
    """A mug or bowl seen from above: its rim and walls on a 2.5 mm lattice (as
    dense as voxel centroids are); the inside is cut with the table."""
    g = np.arange(-radius, radius + 1e-9, 0.0025)
    xy = np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2)
    r = np.linalg.norm(xy, axis=1)
    xy = xy[(r <= radius) & (r >= radius - wall)] + rng.normal(0, 0.0005, (1, 2))
    return xy + np.asarray(centre)


def test_touching_rings_are_filled_and_split():
    rng = np.random.default_rng(3)
    assert regions(ring(rng, (0, 0), 0.032)) == 1
    assert regions(np.concatenate([ring(rng, (0, 0), 0.032), ring(rng, (0.064, 0), 0.032)])) == 2


def cluster_of(*parts):
    """(voxel centroids, one cluster label each, hue codes) from (xy, hue) parts."""
    xy = np.concatenate([p[0] for p in parts])
    codes = np.concatenate([np.full(len(p[0]), p[1]) for p in parts])
    centroids = np.column_stack([xy, np.full(len(xy), 0.03)])
    return centroids, np.zeros(len(xy), dtype=int), codes


def test_two_hues_in_places_of_their_own_split_by_colour():
    rng = np.random.default_rng(4)
    box = rect(rng, (0.0, 0.0), 0.058, 0.09, 0.0, 300)  # blue (4)
    can_body = disc(rng, (0.065, 0.0), 0.03, 200)  # yellow (2) ...
    can_band = disc(rng, (0.065, 0.0), 0.03, 100)  # ... with a white label band (-1)
    centroids, labels, codes = cluster_of((box, 4), (can_body, 2), (can_band, -1))
    out = split_by_colour(centroids, labels, codes, CFG)
    assert len(set(out)) == 2
    assert len(set(out[:300])) == 1 and len(set(out[300:])) == 1  # the band stays with the can
    assert out[0] != out[300]


def test_an_object_of_two_hues_mixed_in_one_place_stays_whole():
    rng = np.random.default_rng(5)
    blue = rect(rng, (0.0, 0.0), 0.058, 0.09, 0.0, 300)
    red = rect(rng, (0.0, 0.0), 0.058, 0.09, 0.0, 300)  # a checkered box: hues interleaved
    out = split_by_colour(*cluster_of((blue, 4), (red, 0)), CFG)
    assert len(set(out)) == 1


def test_white_and_black_split_unless_the_black_is_a_wall():
    """A white bowl with a black screwdriver lying against it splits in two
    (white 6, black 7); the white cover whose shaded side reads black is one
    object: that black part stands as a wall (thin across, tall)."""
    rng = np.random.default_rng(6)
    bowl = disc(rng, (0.0, 0.0), 0.036, 400)
    handle = rect(rng, (0.06, 0.045), 0.088, 0.026, 0.0, 250)
    out = split_by_colour(*cluster_of((bowl, 6), (handle, 7)), CFG)
    assert len(set(out)) == 2 and len(set(out[:400])) == 1 and out[0] != out[-1]
    top = rect(rng, (0.0, 0.0), 0.11, 0.11, 0.0, 400)
    cover = np.column_stack([top, np.full(len(top), 0.09)])
    y = rng.uniform(-0.055, 0.055, 200)
    x = rng.uniform(0.054, 0.058, 200)  # a wall 4 mm thick
    wall = np.column_stack([x, y, rng.uniform(0.0, 0.09, 200)])
    centroids = np.vstack([cover, wall])
    codes = np.concatenate([np.full(400, 6), np.full(200, 7)])
    out = split_by_colour(centroids, np.zeros(600, dtype=int), codes, CFG)
    assert len(set(out)) == 1
    # were walls not told apart, the shaded side would be an object of its own
    thin = replace(CFG, wall_thickness=0.001)
    assert len(set(split_by_colour(centroids, np.zeros(600, dtype=int), codes, thin))) == 2
