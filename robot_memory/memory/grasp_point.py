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
footprint's minimum-area rectangle. A partial view is thin: the near side of a
can or a bottle, all a camera in front of it sees, is an arc, and the centre
of an arc's box lies between it and the axis (half the radius nearer the
camera for a half circle: 1.3 cm on a bottle, enough to put a finger on it).
For an object whose shape word says it is round (``ROUND_WORDS``: a can, a
bottle, a bowl), the points of its lower half (a bottle's body, not its neck)
are first fitted with a circle (:func:`fit_circle`: a radius of
``ARC_RADIUS``, the points within ``ARC_RESIDUAL`` of it, spanning at least
``ARC_SPAN``): an arc seen from one side, or a ring seen from above, gives the
circle's centre. Points over a whole disc fit no circle (the top of a can
seen from above): the footprint's thickest part is found as for the rest.
Anything else thin gets None, and the centroid stands.
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
#: Shape and category words of objects round about a vertical axis.
ROUND_WORDS = frozenset({"can", "bottle", "bowl", "cylinder", "sphere"})
#: A round object's points lie on its circle when it fits them:
#: radius range [m], RMS distance of the points to it [m], angle it spans [rad].
ARC_RADIUS = (0.015, 0.06)
ARC_RESIDUAL = 0.004
ARC_SPAN = np.radians(70.0)


def estimate_grasp_point(
    points: np.ndarray, bbox_min: np.ndarray, bbox_max: np.ndarray, round_shape: bool = False
) -> tuple[float, float, float] | None:
    """The grasp point (x, y, z) [m] from an object's fused points, or None
    (too few points, or a footprint too thin to trust); ``round_shape``: the
    object is round about a vertical axis (its circle's centre, when one fits)."""
    pts = np.asarray(points, dtype=float).reshape(-1, 3)
    if len(pts) < MIN_POINTS or not np.all(np.isfinite(pts)):
        return None
    z = (float(bbox_min[2]) + float(bbox_max[2])) / 2
    if round_shape:
        low = pts[pts[:, 2] <= z]  # the lower half by height: a bottle's body, not its neck
        circle = fit_circle((low if len(low) >= MIN_POINTS else pts)[:, :2])
        if circle is not None:
            return (circle[0], circle[1], z)
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
    return (float(x), float(y), z)


def fit_circle(xy: np.ndarray) -> tuple[float, float, float] | None:
    """(centre x, centre y, radius) [m] of the circle the points ``xy`` (n, 2)
    lie on, or None when they do not (a radius outside ``ARC_RADIUS``, points
    more than ``ARC_RESIDUAL`` RMS off it, or an arc under ``ARC_SPAN``).
    Algebraic least squares (Kasa): x^2 + y^2 = a x + b y + c."""
    xy = np.asarray(xy, dtype=float)
    if len(xy) < MIN_POINTS:
        return None
    mean = xy.mean(axis=0)
    d = xy - mean  # centred: a well-conditioned system
    design = np.column_stack([d, np.ones(len(d))])
    (a, b, c), *_ = np.linalg.lstsq(design, (d**2).sum(axis=1), rcond=None)
    centre = np.array([a / 2, b / 2])
    r2 = c + centre @ centre
    if r2 <= 0:
        return None
    radius = float(np.sqrt(r2))
    offsets = d - centre
    residual = float(np.sqrt(np.mean((np.linalg.norm(offsets, axis=1) - radius) ** 2)))
    if not ARC_RADIUS[0] <= radius <= ARC_RADIUS[1] or residual > ARC_RESIDUAL:
        return None
    angles = np.sort(np.arctan2(offsets[:, 1], offsets[:, 0]))
    gaps = np.diff(np.concatenate([angles, [angles[0] + 2 * np.pi]]))
    if 2 * np.pi - gaps.max() < ARC_SPAN:  # the arc: the circle less its largest gap
        return None
    x, y = mean + centre
    return (float(x), float(y), radius)


__all__ = ["ROUND_WORDS", "estimate_grasp_point", "fit_circle"]
