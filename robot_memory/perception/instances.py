"""Separating touching objects inside one cluster (ROS-free; opencv).

Density clustering links objects that touch: two mugs side by side, a can
against a box. Their union, seen from above, has a neck where they meet. Per
cluster, the voxels' footprint on the table (an occupancy grid, closed over
small holes, enclosed areas filled: an open mug's inside is cut with the
table) gets a distance transform; every local maximum at least
``split_min_radius`` deep seeds a watershed region, and neighbouring regions
merge again unless the neck between them is narrower than
``split_neck_ratio`` of the smaller one's depth. A disc stays one object, a
box's ridge stays one object, a mug's thin handle never seeds a region of its
own; two discs (or a disc and a box) touching become two.

Same-colour twins side by side are the case this exists for: colour cannot
tell them apart, their footprints can.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
from scipy.spatial import cKDTree

from robot_memory.perception.config import PerceptionConfig


def split_touching(
    centroids: np.ndarray, labels: np.ndarray, config: PerceptionConfig
) -> np.ndarray:
    """Voxel labels with each cluster split into its touching objects
    (new labels numbered after the existing ones; -1 stays -1)."""

    def regions(members: np.ndarray) -> np.ndarray | None:
        if len(members) < 2 * config.min_cluster_voxels:
            return None
        return footprint_regions(centroids[members, :2], config)

    return _relabel(labels, config, regions)


def _relabel(
    labels: np.ndarray, config: PerceptionConfig, regions_of: Callable[[np.ndarray], object]
) -> np.ndarray:
    """Every cluster's voxels (``members``, indices) split by ``regions_of(members)``:
    a region (0..K-1) per member, or None to keep the cluster whole. Region 0
    keeps the cluster's label; the others get new ones after the existing."""
    out = labels.copy()
    if len(labels) == 0 or config.split_min_radius <= 0:
        return out
    next_label = int(labels.max()) + 1
    for label in range(int(labels.max()) + 1):
        members = np.flatnonzero(labels == label)
        parts = regions_of(members)
        if parts is None:
            continue
        for part in range(1, int(np.max(parts)) + 1 if len(parts) else 1):
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
    # a mug or bowl seen from above is a ring, its inside cut with the table: fill
    # enclosed areas as large as an object's core (not the small gaps the closing
    # encloses where two rings touch)
    grid = fill_holes(grid, np.pi * (config.split_min_radius / cell) ** 2)
    depth = cv2.distanceTransform(grid, cv2.DIST_L2, 5) * cell
    markers = _significant_peaks(depth, config.split_min_radius, config.split_neck_ratio)
    if markers.max() < 2:
        return np.zeros(len(xy), dtype=int)
    regions = _watershed(grid, depth, markers)
    return regions[ij[:, 0], ij[:, 1]] - 1  # regions 1..K -> 0..K-1


def fill_holes(grid: np.ndarray, min_area_cells: float) -> np.ndarray:
    """The footprint with every enclosed empty area of at least ``min_area_cells``
    filled (the grid has an empty border: the outside touches its corner)."""
    n, holes = cv2.connectedComponents((grid == 0).astype(np.uint8), connectivity=4)
    areas = np.bincount(holes.ravel(), minlength=n)
    fill = areas >= min_area_cells
    fill[0] = False  # unused: 0 is the footprint itself
    fill[holes[0, 0]] = False  # the outside
    return np.where(fill[holes] & (grid == 0), 255, grid).astype(np.uint8)


def _significant_peaks(depth: np.ndarray, min_radius: float, neck_ratio: float) -> np.ndarray:
    """Markers (1..K) of the footprint's objects: the connected parts of one
    level set {depth >= t}, each deep enough (peak >= min_radius) and cut from
    the others by a neck (t <= neck_ratio * its peak). Of all levels, the one
    with the most such parts wins (the higher level on a tie)."""
    best, best_count = np.zeros(depth.shape, dtype=np.int32), 0
    top = float(depth.max())
    if top < min_radius or _maxima(depth, min_radius) < 2:
        return best  # every part of every level holds a maximum: at most one is deep enough
    for t in np.arange(top, 0.0, -min_radius / 16):
        if t > neck_ratio * top:
            continue  # above every part's neck: none can count
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


def _maxima(depth: np.ndarray, floor: float) -> int:
    """An upper bound on the regional maxima of ``depth`` at least ``floor`` deep:
    the connected groups of cells no neighbour exceeds (a true maximum's cells all
    pass; a plateau on a slope may add groups, never hide one)."""
    local = (depth >= cv2.dilate(depth, np.ones((3, 3), np.uint8))) & (depth >= floor)
    return cv2.connectedComponents(local.astype(np.uint8), connectivity=8)[0] - 1


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


def voxel_hues(
    voxel_of_point: np.ndarray, pixels: np.ndarray, n_voxels: int, config: PerceptionConfig
) -> np.ndarray:
    """Per voxel: its mean colour's hue bin (0..5: red, orange, yellow, green,
    blue, purple) or -1 without a hue; with ``split_white_black`` (the
    default), 6 for bright white and 7 for black (grey between: neither): a
    white bowl against a black screwdriver. An achromatic part that stands as a
    wall (:func:`is_wall`: the white cover's shaded side reads black) never
    splits off."""
    if n_voxels == 0:
        return np.zeros(0, dtype=int)
    counts = np.maximum(np.bincount(voxel_of_point, minlength=n_voxels), 1)
    mean = np.stack(
        [np.bincount(voxel_of_point, pixels[:, k], n_voxels) / counts for k in range(3)], axis=1
    )
    hsv = cv2.cvtColor(mean.astype(np.uint8).reshape(-1, 1, 3), cv2.COLOR_RGB2HSV)
    hue, sat, val = (hsv.reshape(-1, 3)[:, k].astype(float) for k in range(3))
    bins = np.searchsorted(np.array([8.0, 20.0, 34.0, 85.0, 128.0, 165.0]), hue, side="right")
    bins = np.where(bins == 6, 0, bins)  # hue past purple wraps to red
    hued = (sat >= config.min_saturation) & (val >= config.min_value)
    if not config.split_white_black:
        return np.where(hued, bins, -1)
    white = ~hued & (sat < config.min_saturation / 2) & (val >= config.split_white_value)
    black = ~hued & (val < config.split_black_value)
    return np.where(hued, bins, np.where(white, 6, np.where(black, 7, -1)))


#: voxel_hues codes from here on are achromatic (6 white, 7 black).
ACHROMATIC_CODES = 6


def is_wall(points: np.ndarray, config: PerceptionConfig) -> bool:
    """Voxels that stand in one vertical plane: thinner than ``wall_thickness``
    across their footprint's narrow axis and taller than ``3 * wall_thickness``.
    A shaded wall of the white cover reads black; a black screwdriver lying on
    the table is as long but flat."""
    if len(points) < 3:
        return False
    xy = points[:, :2] - points[:, :2].mean(axis=0)
    minor = float(np.sqrt(max(np.linalg.eigvalsh(np.cov(xy.T))[0], 0.0)))
    tall = float(np.ptp(points[:, 2])) > 3 * config.wall_thickness
    return minor < config.wall_thickness / 3 and tall  # a uniform band 1.2 cm wide: 3.5 mm


def split_by_colour(
    centroids: np.ndarray, labels: np.ndarray, hues: np.ndarray, config: PerceptionConfig
) -> np.ndarray:
    """Voxel labels with each cluster that holds two or more hues (with
    ``split_white_black``, bright white and black count too), each a large part
    of it in a place of its own (a blue box against a yellow can), split by
    hue: every voxel goes to the hue group nearest it on the table, so a can's
    label band and lid stay with the can. A two-tone object (hues mixed in one
    place) stays whole."""

    def groups(members: np.ndarray) -> np.ndarray | None:
        codes = hues[members]
        found, counts = np.unique(codes[codes >= 0], return_counts=True)
        need = max(config.min_cluster_voxels, config.colour_split_fraction * len(members))
        major = [
            c
            for c in found[counts >= need]
            if c < ACHROMATIC_CODES or not is_wall(centroids[members][codes == c], config)
        ]
        if len(major) < 2:
            return None
        xy = centroids[members, :2]
        centres = np.array([xy[codes == c].mean(axis=0) for c in major])
        spread = max(np.linalg.norm(xy[codes == c] - centres[i], axis=1).mean()
                     for i, c in enumerate(major))  # fmt: skip
        gaps = np.linalg.norm(centres[:, None] - centres[None], axis=2)
        if gaps[np.triu_indices(len(major), 1)].min() < max(2 * config.split_min_radius, spread):
            return None  # the hues share one place: one object of several colours
        nearest = np.full(len(members), np.inf)
        group = np.zeros(len(members), dtype=int)
        for i, c in enumerate(major):
            d, _ = cKDTree(xy[codes == c]).query(xy)  # distance to the hue's nearest voxel
            closer = d < nearest
            nearest[closer], group[closer] = d[closer], i
        return group

    return _relabel(labels, config, groups)
