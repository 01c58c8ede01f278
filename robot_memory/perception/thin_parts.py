"""Thin parts cut from the body they belong to (ROS-free; scipy).

A screwdriver's metal shaft is 7 mm across and lies on the table beside its
handle. Where they meet, depth drops out (the RealSense model loses edges;
the shaft's rounded end meets the handle's rounded end): density clustering
then returns the shaft as a cluster of its own, which memory keeps as a
second, "white screwdriver" object, and the handle alone names the tool.

A *stick* is a cluster that cannot be an object of its own: straight and
narrow across its footprint (the spread across its long axis, as a uniform
band, narrower than ``stick_max_width``), at least ``stick_min_length`` long
and low (``stick_max_height`` from its lowest to its highest voxel). A stick
with one end within ``stick_join_gap`` of another cluster (not a stick) is
that cluster's *appendage*: :func:`join_sticks` gives it the cluster's label
and marks it, and the pipeline sets its voxels aside. It is no object of its
own, and it stays out of the body's box too: a screwdriver's box (and so its
grasp point, its footprint for permanence) stays on the handle, as when
the shaft is not seen at all (measured: with the shaft in the box, three
realistic task episodes lost their screwdriver).

A stick that touches nothing stays an object (the labeller may still know
it); a standing wall is tall, never a stick (:func:`robot_memory.perception.
instances.is_wall` handles walls).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from robot_memory.perception.config import PerceptionConfig

#: A uniform band of width w has a standard deviation of w / sqrt(12) across.
BAND_STD = 1.0 / np.sqrt(12.0)


def is_stick(points: np.ndarray, config: PerceptionConfig) -> bool:
    """Straight, narrow across, long enough and low: see the module docstring."""
    if len(points) < 3 or float(np.ptp(points[:, 2])) > config.stick_max_height:
        return False  # cheap test first: most clusters are taller than a stick
    xy = points[:, :2] - points[:, :2].mean(axis=0)
    values, vectors = np.linalg.eigh(np.cov(xy.T))
    across = float(np.sqrt(max(values[0], 0.0)))
    along = xy @ vectors[:, 1]
    return across < config.stick_max_width * BAND_STD and float(np.ptp(along)) >= (
        config.stick_min_length
    )


def join_sticks(
    centroids: np.ndarray, labels: np.ndarray, config: PerceptionConfig
) -> tuple[np.ndarray, np.ndarray]:
    """``(labels, appendage)``: every stick cluster whose end lies within
    ``stick_join_gap`` of another cluster takes that cluster's label (the
    nearest, voxel to voxel), and ``appendage`` marks its voxels (a bool per
    voxel). Labels of joined sticks are left unused; -1 stays -1."""
    out = labels.copy()
    appendage = np.zeros(len(labels), dtype=bool)
    if len(labels) == 0 or config.stick_join_gap <= 0 or labels.max() < 1:
        return out, appendage
    order = np.argsort(labels, kind="stable")  # every cluster's members in one sort
    bounds = np.searchsorted(labels[order], np.arange(int(labels.max()) + 2))
    clusters = [order[bounds[k] : bounds[k + 1]] for k in range(int(labels.max()) + 1)]
    sticks = [k for k, m in enumerate(clusters) if is_stick(centroids[m], config)]
    if not sticks:
        return out, appendage
    bodies = np.flatnonzero((labels >= 0) & ~np.isin(labels, sticks))
    if len(bodies) == 0:
        return out, appendage
    tree = cKDTree(centroids[bodies])
    for k in sticks:
        members = clusters[k]
        gap, nearest = tree.query(centroids[members], distance_upper_bound=config.stick_join_gap)
        touching = np.isfinite(gap)
        if not np.any(touching) or not _at_an_end(centroids[members], touching, config):
            continue
        host = labels[bodies[nearest[touching][np.argmin(gap[touching])]]]
        out[members] = host
        appendage[members] = True
    return out, appendage


def _at_an_end(points: np.ndarray, touching: np.ndarray, config: PerceptionConfig) -> bool:
    """The stick's voxels near the other cluster lie at one end of it (a shaft
    leaves its handle end-on; a stick lying alongside a box is not its part)."""
    xy = points[:, :2] - points[:, :2].mean(axis=0)
    axis = np.linalg.eigh(np.cov(xy.T))[1][:, 1]
    along = xy @ axis
    near = along[touching]
    end = config.stick_join_gap + config.cluster_voxel
    return bool(np.all(near <= along.min() + end) or np.all(near >= along.max() - end))


__all__ = ["is_stick", "join_sticks"]
