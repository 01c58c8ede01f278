"""Separating touching objects inside one cluster (ROS-free; opencv).

Density clustering links objects that touch: two mugs side by side, a can
against a box. Their union, seen from above, has a neck where they meet. Per
cluster, the voxels' footprint on the table (an occupancy grid, closed over
small holes) gets a distance transform; every local maximum at least
``split_min_radius`` deep seeds a watershed region, and neighbouring regions
merge again unless the neck between them is narrower than
``split_neck_ratio`` of the smaller one's depth. A disc stays one object, a
box's ridge stays one object, a mug's thin handle never seeds a region of its
own; two discs (or a disc and a box) touching become two.

Same-colour twins side by side are the case this exists for: colour cannot
tell them apart, their footprints can.
"""

from __future__ import annotations

import cv2
import numpy as np

from robot_memory.perception.config import PerceptionConfig


def split_touching(
    centroids: np.ndarray, labels: np.ndarray, config: PerceptionConfig
) -> np.ndarray:
    """Voxel labels with each cluster split into its touching objects
    (new labels numbered after the existing ones; -1 stays -1)."""
    out = labels.copy()
    if len(labels) == 0 or config.split_min_radius <= 0:
        return out
    next_label = int(labels.max()) + 1
    for label in range(int(labels.max()) + 1):
        members = np.flatnonzero(labels == label)
        if len(members) < 2 * config.min_cluster_voxels:
            continue
        parts = footprint_regions(centroids[members, :2], config)
        if parts.max() <= 0:
            continue
        for part in range(1, int(parts.max()) + 1):
            out[members[parts == part]] = next_label
            next_label += 1
    return out


def footprint_regions(xy: np.ndarray, config: PerceptionConfig) -> np.ndarray:
    """Region (0, 1, ...) of every point of one cluster's footprint; all 0
    when it is one object."""
    cell = config.split_cell
    keys = np.floor(xy / cell).astype(int)  # the voxel grid's columns when cell = cluster_voxel
    ij = keys - keys.min(axis=0) + 3
    grid = np.zeros(tuple(ij.max(axis=0) + 4), dtype=np.uint8)
    grid[ij[:, 0], ij[:, 1]] = 255
    grid = cv2.morphologyEx(grid, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))  # pinholes
    depth = cv2.distanceTransform(grid, cv2.DIST_L2, 5) * cell
    markers = _significant_peaks(depth, config.split_min_radius, config.split_neck_ratio)
    if markers.max() < 2:
        return np.zeros(len(xy), dtype=int)
    regions = _watershed(grid, depth, markers)
    return regions[ij[:, 0], ij[:, 1]] - 1  # regions 1..K -> 0..K-1


def _significant_peaks(depth: np.ndarray, min_radius: float, neck_ratio: float) -> np.ndarray:
    """Markers (1..K) of the footprint's objects: the connected parts of one
    level set {depth >= t}, each deep enough (peak >= min_radius) and cut from
    the others by a neck (t <= neck_ratio * its peak). Of all levels, the one
    with the most such parts wins (the higher level on a tie)."""
    best, best_count = np.zeros(depth.shape, dtype=np.int32), 0
    top = float(depth.max())
    if top < min_radius:
        return best
    for t in np.arange(top, 0.0, -0.25 * min_radius / 2):
        n, parts = cv2.connectedComponents((depth >= t).astype(np.uint8), connectivity=8)
        keep = []
        for k in range(1, n):
            peak = float(depth[parts == k].max())
            if peak >= min_radius and t <= neck_ratio * peak:
                keep.append(k)
        if len(keep) > best_count:
            relabel = np.zeros(n, dtype=np.int32)
            relabel[keep] = np.arange(1, len(keep) + 1)
            best, best_count = relabel[parts], len(keep)
    return best


def _watershed(grid: np.ndarray, depth: np.ndarray, markers: np.ndarray) -> np.ndarray:
    """Regions 1..K grown from the markers over the footprint (0 outside it):
    flooding by level, deepest cells first, so a region reaches a neck only
    after its own slopes (the classic watershed on the distance transform)."""
    regions = markers.astype(np.float32)
    inside = grid > 0
    kernel = np.ones((3, 3), np.uint8)
    step = max(float(depth.max()) / 16.0, 1e-6)
    for level in np.arange(float(depth.max()), -step, -step):
        allowed = inside & (depth >= level)
        while True:
            frontier = allowed & (regions == 0)
            grown = cv2.dilate(regions, kernel)
            take = frontier & (grown > 0)
            if not np.any(take):
                break
            regions[take] = grown[take]
    regions[inside & (regions == 0)] = 1
    return regions.astype(int)
