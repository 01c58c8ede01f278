"""The yaw a top-down grasp of a remembered object should use (ROS-free).

Memory keeps no orientation of its own, only an object's points: views from the
front and wrist cameras fused on a 5 mm grid. Their xy footprint is enough for
the one angle a top-down grasp needs: :func:`estimate_yaw` fits OpenCV's
minimum-area rectangle to the convex hull of the points' xy and returns the
**hand yaw** that closes the fingers across the footprint's narrow side, in the
convention of the scripted expert (``PickPlacePlanner.grasp_yaw``) and of
``SkillGoal.goal_yaw``: the fingers close along hand yaw + pi/2, so the hand
yaw is the direction of the long side; of the equivalent yaws (the hand is
symmetric by pi) the one nearest the home hand yaw (0) is given, in [-pi/2, pi/2).
A square footprint (a cube) is symmetric by pi/2: its yaw is in [-pi/4, pi/4).

None (unknown; grasp at the home yaw) for too few points and for round
footprints: a short footprint whose shape word is round (sphere, cylinder), or
one with neither a polygonal shape word nor the fill of a square (a disc fills
pi/4 of its rectangle; the footprint alone cannot tell a disc from a hexagon).

Measured on the sim with the real perception (``test/test_memory_yaw.py``;
numbers in docs/memory.md): PCA over the same points is biased by uneven
sampling (10-40 degrees on cubes and prisms); the rectangle is within about a
degree once a view shows the whole top, and off only for objects seen partly
from afar.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from robot_memory.schemas import MemoryObjectMsg

#: Fewer points than this: no yaw.
MIN_POINTS = 8
#: Footprints at least this elongated have a long axis whatever the shape word.
ELONGATED_RATIO = 1.4
#: Shape words of round things: no yaw unless elongated (lying on its side).
ROUND_SHAPES = frozenset({"sphere", "ball", "cylinder", "can", "disc", "round"})
#: A round thing counts as lying on its side only when its elongated footprint
#: also fills its rectangle: a view from one side gives an arc or a half disc
#: (fill pi/4 or less), which is long across the view but has no axis.
ROUND_LYING_FILL = 0.88
#: Shape words of things with flat sides: the rectangle's yaw even when short.
POLYGONAL_SHAPES = frozenset({"cube", "block", "prism", "box", "cover", "lid", "bin"})
#: A footprint this close to square (sides, and hull area / rectangle area) is
#: symmetric by pi/2.
SQUARE_RATIO, SQUARE_FILL = 1.06, 0.9
#: Hand yaw when memory has no estimate: the home hand yaw [rad].
DEFAULT_GRASP_YAW = 0.0


def wrap_yaw(angle: float, period: float = math.pi) -> float:
    """``angle`` modulo ``period``, in [-period/2, period/2)."""
    return float((angle + period / 2) % period - period / 2)


def footprint(points: np.ndarray) -> tuple[float, float, float, float] | None:
    """(long-side direction [rad], long side [m], short side [m], hull area /
    rectangle area) of the points' xy, or None when there are too few."""
    pts = np.asarray(points, dtype=float).reshape(-1, 3)
    if len(pts) < MIN_POINTS or not np.all(np.isfinite(pts)):
        return None
    xy = ((pts[:, :2] - pts[:, :2].mean(axis=0)) * 1000.0).astype(np.float32)  # mm
    hull = cv2.convexHull(xy.reshape(-1, 1, 2))
    (_, _), (w, h), angle = cv2.minAreaRect(hull)
    if max(w, h) <= 0:
        return None  # all in one spot
    direction = math.radians(angle) + (0.0 if w >= h else math.pi / 2)
    long_side, short_side = max(w, h), min(w, h)
    fill = float(cv2.contourArea(hull)) / (long_side * short_side) if short_side > 0 else 0.0
    return direction, long_side / 1000.0, short_side / 1000.0, fill


def estimate_yaw(points: np.ndarray, shape: str | None = None) -> float | None:
    """Hand yaw for a top-down grasp across the footprint's narrow side [rad],
    or None (too few points, or round). ``shape``: memory's shape word, if any."""
    fit = footprint(points)
    if fit is None:
        return None
    direction, long_side, short_side, fill = fit
    ratio = long_side / short_side if short_side > 0 else math.inf
    word = (shape or "").lower()
    if word in ROUND_SHAPES and ratio >= ELONGATED_RATIO and fill < ROUND_LYING_FILL:
        return None  # a partial view of an upright round thing
    if ratio < ELONGATED_RATIO:
        if word in ROUND_SHAPES:
            return None
        square = ratio < SQUARE_RATIO and fill >= SQUARE_FILL
        if word not in POLYGONAL_SHAPES and not square:
            return None
        if square:
            return wrap_yaw(direction, math.pi / 2)
    return wrap_yaw(direction, math.pi)


def grasp_yaw(obj: MemoryObjectMsg) -> float:
    """The hand yaw to pick ``obj`` with: memory's estimate, else the home yaw (0)."""
    yaw = obj.yaw
    return DEFAULT_GRASP_YAW if yaw is None or not math.isfinite(yaw) else float(yaw)
