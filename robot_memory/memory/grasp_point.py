"""Where a top-down grasp of a remembered object should close (ROS-free).

Memory's centroid is the centre of an object's box, a poor grasp point where
the footprint is not solid around it: a mug's box centre lies between cup and
handle (1.25 cm off the cup's axis), a screwdriver's at the junction of its
thick handle and thin shaft. Fingers find the most to close on where the
footprint is thickest. :func:`estimate_grasp_point` rasterises the fused
points' xy on a ``CELL`` grid, closes gaps between samples, fills holes (a mug
seen from above is a ring), takes the distance transform and returns the middle
of the cells within ``PLATEAU`` of the deepest: a disc's centre, a handle's
axis (a ridge of equal depth) at its middle. The height is the box centre's.

The estimate is used only when the footprint is solid around that point: the
inscribed radius at least ``SOLID_FRACTION`` of half the short side of the
footprint's minimum-area rectangle. A partial view (the arc of a can seen from
one side) is thin: None then, and the centroid stands.
"""

from __future__ import annotations

import cv2
import numpy as np

from robot_memory.memory.orientation import MIN_POINTS, footprint
from robot_memory.perception.instances import fill_holes

#: Raster cell [m], finer than memory's 5 mm fusion grid so depths are smooth.
CELL = 0.002
#: Closing radius in cells (12 mm): bridges the gaps between 5 mm samples.
CLOSE_CELLS = 6
#: Cells at least this fraction of the deepest one form the plateau.
PLATEAU = 0.9
#: Inscribed radius / half the short side below which the footprint is too thin.
SOLID_FRACTION = 0.6


def estimate_grasp_point(
    points: np.ndarray, bbox_min: np.ndarray, bbox_max: np.ndarray
) -> tuple[float, float, float] | None:
    """The grasp point (x, y, z) [m] from an object's fused points, or None
    (too few points, or a footprint too thin to trust)."""
    pts = np.asarray(points, dtype=float).reshape(-1, 3)
    if len(pts) < MIN_POINTS or not np.all(np.isfinite(pts)):
        return None
    fit = footprint(pts)
    if fit is None or fit[2] <= 0:
        return None
    short_side = fit[2]
    pad = CLOSE_CELLS + 2
    origin = pts[:, :2].min(axis=0) - pad * CELL
    cells = np.floor((pts[:, :2] - origin) / CELL).astype(int)
    shape = cells.max(axis=0) + pad + 1
    grid = np.zeros((int(shape[1]), int(shape[0])), np.uint8)  # rows: y, cols: x
    grid[cells[:, 1], cells[:, 0]] = 255
    kernel = cv2.getStructuringElement(
        cv2.MORPH_ELLIPSE, (2 * CLOSE_CELLS + 1, 2 * CLOSE_CELLS + 1)
    )
    grid = fill_holes(cv2.morphologyEx(grid, cv2.MORPH_CLOSE, kernel), min_area_cells=1)
    depth = cv2.distanceTransform(grid, cv2.DIST_L2, 5) * CELL
    deepest = float(depth.max())
    if deepest < SOLID_FRACTION * short_side / 2:
        return None
    rows, cols = np.nonzero(depth >= PLATEAU * deepest)
    x, y = origin + (np.array([cols.mean(), rows.mean()]) + 0.5) * CELL
    z = (float(bbox_min[2]) + float(bbox_max[2])) / 2
    return (float(x), float(y), z)


__all__ = ["estimate_grasp_point"]
