"""The active window of a memory update (ROS-free): what one frame can change.

Hydra and Khronos keep building-scale scene graphs at sensor rate by touching
only an active window around the sensor. Here an update's association,
re-identification, permanence and part checks consider only the objects within
``MemoryConfig.active_radius`` (xy) of the camera or of an observation
(:func:`window_objects`), found in a coarse grid of every object, absent ones
too (:class:`WindowGrid`, kept in step with the ids each update touched). The
periodic ghost sweep visits only objects that may still turn ghost
(:func:`may_turn_ghost`). With the window covering the cell (the default 3 m)
an update builds the graph an update over every object builds
(test_eval_bag.py); ``active_radius`` 0 turns the window off.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from robot_memory.memory.config import MemoryConfig
from robot_memory.memory.object_node import MemoryObject
from robot_memory.perception.observations import ObjectObservation, ObservationFrame


class WindowGrid:
    """Every remembered object (absent ones too; merged ones not) by coarse xy
    cell, for the active window: the ids near a camera, whatever their status.
    Kept in step by :meth:`sync` with the ids an update touched."""

    def __init__(self, cell_size: float = 1.0) -> None:
        self.cell = float(cell_size)
        self.grid: dict[tuple[int, int], set[int]] = {}
        self.cell_of: dict[int, tuple[int, int]] = {}
        self.xy: dict[int, tuple[float, float]] = {}

    def __len__(self) -> int:
        return len(self.cell_of)

    def sync(self, objects: dict[int, MemoryObject], ids: Iterable[int]) -> None:
        for oid in ids:
            old = self.cell_of.pop(oid, None)
            if old is not None:
                self.grid[old].discard(oid)
                self.xy.pop(oid, None)
            obj = objects.get(oid)
            if obj is None or obj.merged_into is not None:
                continue
            x, y = float(obj.centroid[0]), float(obj.centroid[1])
            key = (math.floor(x / self.cell), math.floor(y / self.cell))
            self.grid.setdefault(key, set()).add(oid)
            self.cell_of[oid] = key
            self.xy[oid] = (x, y)

    def rebuild(self, objects: dict[int, MemoryObject]) -> None:
        self.grid.clear()
        self.cell_of.clear()
        self.xy.clear()
        self.sync(objects, list(objects))

    def near(self, centres: np.ndarray, radius: float) -> list[int]:
        """Ids whose centroid is within ``radius`` (xy) of any of ``centres``, sorted."""
        k = math.ceil(radius / self.cell)
        found: set[int] = set()
        r2 = radius * radius
        for cx, cy in np.asarray(centres, dtype=float).reshape(-1, 2).tolist():
            kx, ky = math.floor(cx / self.cell), math.floor(cy / self.cell)
            for dx in range(-k, k + 1):
                for dy in range(-k, k + 1):
                    for oid in self.grid.get((kx + dx, ky + dy), ()):
                        x, y = self.xy[oid]
                        if (x - cx) ** 2 + (y - cy) ** 2 <= r2:
                            found.add(oid)
        return sorted(found)


def window_objects(
    objects: dict[int, MemoryObject],
    grid: WindowGrid,
    frame: ObservationFrame,
    observations: list[ObjectObservation],
    radius: float,
) -> list[MemoryObject]:
    """The objects ``frame`` can change, by id: those within ``radius`` (xy) of
    the camera or of an observation (every object when ``radius`` is 0)."""
    if radius <= 0:
        ids: list[int] = sorted(objects)
    else:
        centres = [np.asarray(o.centroid, dtype=float)[:2] for o in observations]
        if frame.view is not None:
            centres.append(np.asarray(frame.view.position, dtype=float)[:2])
        ids = grid.near(np.array(centres).reshape(-1, 2), radius)
    found = (objects.get(i) for i in ids)
    return [o for o in found if o is not None and o.merged_into is None]


def may_turn_ghost(obj: MemoryObject | None, config: MemoryConfig) -> bool:
    """Whether ``obj`` can turn into a ghost without being touched again: seen
    too few times and unsure (a sure one loses confidence only from depth
    evidence, in an update that touches it and so puts it back in the sweep)."""
    if obj is None or obj.observations >= max(2, config.ghost_min_observations):
        return False
    return obj.status == "absent" or obj.confidence < config.ghost_max_confidence


__all__ = ["WindowGrid", "may_turn_ghost", "window_objects"]
