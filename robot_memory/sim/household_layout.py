"""Where the household objects stand in an episode (ROS-free, seeded).

A cluttered table, not a spread-out one: a few pairs of objects stand touching
(always one pair of the same colour and kind, e.g. the two red mugs), the rest
at least ``gap`` apart. Footprints are convex polygons (a circle for round
objects, the yawed bounding rectangle otherwise), so touching means within a
few millimetres, and nothing starts interpenetrating.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Round footprints (a circle of the object's half width).
ROUND = {"bowl", "bottle", "can"}
SPAWN_X = (-0.17, 0.32)
SPAWN_Y = (-0.36, 0.36)
REACH = (0.33, 0.78)  # distance of an object's centre from panda_link0 [m]
BIN_HALF = 0.1 + 0.015  # the bin's walls and a margin [m]
COVER_HALF = 0.055 + 0.02


@dataclass(frozen=True)
class LayoutConfig:
    touching_pairs: int = 3  # pairs standing in contact (the first of one colour and kind)
    gap: float = 0.02  # between footprints that do not touch [m]
    touch_gap: float = 0.002  # between the footprints of a touching pair [m]
    attempts: int = 40  # whole-layout restarts before giving up


def footprint(shape: str, size: Sequence[float], xy: np.ndarray, yaw: float) -> np.ndarray:
    """Convex footprint polygon (K, 2) of an object at ``xy`` turned by ``yaw``."""
    if shape in ROUND:
        a = np.linspace(0.0, 2 * np.pi, 16, endpoint=False)
        return xy + (size[0] / 2) * np.column_stack([np.cos(a), np.sin(a)])
    hx, hy = size[0] / 2, size[1] / 2
    corners = np.array([[hx, hy], [-hx, hy], [-hx, -hy], [hx, -hy]])
    c, s = np.cos(yaw), np.sin(yaw)
    return xy + corners @ np.array([[c, s], [-s, c]])


def separated(a: np.ndarray, b: np.ndarray, gap: float) -> bool:
    """Convex polygons ``a`` and ``b`` are at least ``gap`` apart along some
    edge normal of either (separating axis test)."""
    for poly in (a, b):
        edges = np.roll(poly, -1, axis=0) - poly
        normals = np.column_stack([edges[:, 1], -edges[:, 0]])
        normals /= np.linalg.norm(normals, axis=1, keepdims=True)
        pa, pb = a @ normals.T, b @ normals.T
        if np.any(
            (pa.min(axis=0) - pb.max(axis=0) >= gap) | (pb.min(axis=0) - pa.max(axis=0) >= gap)
        ):
            return True
    return False


class HouseholdLayout:
    """Samples (xy, yaw) for every object; the same rng state gives the same layout."""

    def __init__(self, objects, config: LayoutConfig | None = None) -> None:
        self.objects = tuple(objects)
        self.config = config or LayoutConfig()
        kinds: dict[tuple[str, str], list[str]] = {}
        for item in self.objects:
            kinds.setdefault((item.color, item.shape), []).append(item.id)
        self.twins = [ids for ids in kinds.values() if len(ids) >= 2]
        self.info = {item.id: item for item in self.objects}

    def sample(
        self, rng: np.random.Generator, keep_out: dict[str, np.ndarray]
    ) -> dict[str, tuple[np.ndarray, float]]:
        for _ in range(self.config.attempts):
            layout = self._try(rng, keep_out)
            if layout is not None:
                return layout
        raise RuntimeError("could not lay out the household objects; widen the spawn area")

    def _pairs(self, rng: np.random.Generator) -> list[tuple[str, str]]:
        pairs: list[tuple[str, str]] = []
        used: set[str] = set()
        if self.twins:
            twin = self.twins[rng.integers(len(self.twins))]
            a, b = rng.choice(twin, size=2, replace=False)
            pairs.append((str(a), str(b)))
            used |= {str(a), str(b)}
        rest = [o.id for o in self.objects if o.id not in used]
        order = rng.permutation(len(rest))
        while len(pairs) < self.config.touching_pairs and len(order) >= 2:
            pairs.append((rest[order[0]], rest[order[1]]))
            order = order[2:]
        return pairs

    def _try(self, rng, keep_out) -> dict[str, tuple[np.ndarray, float]] | None:
        placed: dict[str, tuple[np.ndarray, float]] = {}
        polys: dict[str, np.ndarray] = {}
        pairs = self._pairs(rng)
        partner = {a: b for a, b in pairs}
        singles = [o.id for o in self.objects if o.id not in {x for p in pairs for x in p}]
        for object_id in [a for a, _ in pairs] + singles:
            pose = self._free_spot(rng, object_id, polys, keep_out)
            if pose is None:
                return None
            placed[object_id], polys[object_id] = pose, self._poly(object_id, *pose)
            if object_id in partner:
                other = partner[object_id]
                pose = self._touching(rng, other, object_id, placed, polys, keep_out)
                if pose is None:
                    return None
                placed[other], polys[other] = pose, self._poly(other, *pose)
        return placed

    def _poly(self, object_id: str, xy: np.ndarray, yaw: float) -> np.ndarray:
        item = self.info[object_id]
        return footprint(item.shape, item.size, xy, yaw)

    def _allowed(self, poly: np.ndarray, polys, keep_out, gap: float, skip: str = "") -> bool:
        centre = poly.mean(axis=0)
        reach = np.linalg.norm(centre - keep_out["panda_link0"])
        if not REACH[0] <= reach <= REACH[1]:
            return False
        if not (SPAWN_X[0] <= centre[0] <= SPAWN_X[1] and SPAWN_Y[0] <= centre[1] <= SPAWN_Y[1]):
            return False
        for name, half in (("bin", BIN_HALF), ("cover", COVER_HALF)):
            lo, hi = keep_out[name] - half, keep_out[name] + half
            box = np.array([[hi[0], hi[1]], [lo[0], hi[1]], [lo[0], lo[1]], [hi[0], lo[1]]])
            if not separated(poly, box, 0.0):
                return False
        return all(separated(poly, other, gap) for name, other in polys.items() if name != skip)

    def _yaw(self, rng: np.random.Generator, object_id: str) -> float:
        return 0.0 if self.info[object_id].shape in ROUND else float(rng.uniform(-np.pi, np.pi))

    def _free_spot(self, rng, object_id, polys, keep_out):
        for _ in range(400):
            xy = np.array([rng.uniform(*SPAWN_X), rng.uniform(*SPAWN_Y)])
            yaw = self._yaw(rng, object_id)
            if self._allowed(self._poly(object_id, xy, yaw), polys, keep_out, self.config.gap):
                return xy, yaw
        return None

    def _touching(self, rng, object_id, anchor, placed, polys, keep_out):
        """A spot where ``object_id`` stands within ``touch_gap`` of ``anchor``:
        slide it towards the anchor along a random direction until just before
        contact; the rest of the table keeps its ``gap``."""
        cfg = self.config
        others = {k: v for k, v in polys.items() if k != anchor}
        for _ in range(60):
            direction = rng.uniform(-np.pi, np.pi)
            unit = np.array([np.cos(direction), np.sin(direction)])
            yaw = self._yaw(rng, object_id)
            last = None
            for d in np.arange(0.2, 0.0, -0.001):
                xy = placed[anchor][0] + d * unit
                poly = self._poly(object_id, xy, yaw)
                if not separated(poly, polys[anchor], cfg.touch_gap):
                    break
                last = poly, xy
            if last is None:
                continue
            poly, xy = last
            if self._allowed(poly, others, keep_out, cfg.gap):
                return xy, yaw
        return None
