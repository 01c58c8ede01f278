"""Spots inside a container place (the bin) for several things put in it
(ROS-free). Moved out of :mod:`robot_memory.planner.offline_backend`, which
calls :func:`container_spot` for each object of a move.

One thing alone in the place goes to the place's own point (its top centre);
when it will not be alone, each gets the slot of :data:`CONTAINER_SLOTS`
farthest from what is in it (memory's objects, and what the plan put there).
"""

from __future__ import annotations

import math

import numpy as np

from robot_memory.planner.plan_state import PlanState, Target, xy
from robot_memory.planner.validation import PLACE_X, PLACE_Y
from robot_memory.planner.world import World
from robot_memory.schemas import MemoryObjectMsg

#: Spots inside a container place (xy offsets from its centre, in order of
#: preference) for several things put in it: 9 cm apart side by side, then
#: nearer the robot (the validation's reach ends 1 cm past the bin's centre).
CONTAINER_SLOTS = (
    (-0.045, 0.0),
    (0.045, 0.0),
    (0.0, -0.05),
    (-0.045, -0.05),
    (0.045, -0.05),
    (0.0, 0.0),
)


def container_spot(
    world: World,
    target: Target,
    obj: MemoryObjectMsg,
    todo: list[MemoryObjectMsg],
    state: PlanState,
    inset: float,
) -> tuple[float, float, float] | None:
    """Where in a container place (the bin) ``obj`` goes when it will not be
    alone there: the slot farthest from what is in it (memory's objects, and
    what this plan put there), so the second thing does not land on the first.
    None (the place's own point, its top centre) when it will be alone.
    ``inset``: wall + half an object, so slots stay inside the walls."""
    if not isinstance(target, str) or target not in world.places:
        return None
    place = world.places[target]
    if place.kind != "container":
        return None
    taken = [
        xy(o.centroid)
        for o in world.present()
        if o.id not in state.at and world.in_place(o, target) and o.id != obj.id
    ]
    taken += [xy(p) for p in state.spots.get(target, [])]
    lo, hi = np.asarray(place.bbox_min, dtype=float), np.asarray(place.bbox_max, dtype=float)
    centre = (lo[:2] + hi[:2]) / 2.0
    if not taken and len(todo) < 2:  # alone there: the place's own point
        state.spots.setdefault(target, []).append((*map(float, centre), float(hi[2])))
        return None
    inner_lo = lo[:2] + inset
    inner_hi = hi[:2] - inset
    slots = []
    for off in CONTAINER_SLOTS:
        p = centre + np.asarray(off)
        inside = np.all(p >= inner_lo) and np.all(p <= inner_hi)
        if inside and PLACE_X[0] <= p[0] <= PLACE_X[1] and PLACE_Y[0] <= p[1] <= PLACE_Y[1]:
            slots.append(p)
    if not slots:
        return None

    def clearance(p: np.ndarray) -> float:
        return min((float(np.linalg.norm(p - t)) for t in taken), default=math.inf)

    best = max(slots, key=clearance)  # the first of equals: slots are in preference order
    spot = (float(best[0]), float(best[1]), float(hi[2]))
    state.spots.setdefault(target, []).append(spot)
    return spot


__all__ = ["CONTAINER_SLOTS", "container_spot"]
