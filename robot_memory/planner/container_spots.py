"""Where in a place a thing goes (ROS-free); the offline planner calls these
for each object of a move.

* :func:`container_spot` (the bin): one thing alone in the place goes to the
  place's own point (its top centre); when it will not be alone, each gets the
  slot of :data:`CONTAINER_SLOTS` farthest from what is in it (memory's
  objects, and what the plan put there).
* :func:`region_spot` (a table region): the clear spot in the region nearest
  its own point, inside the table area the policy's places were demonstrated
  on. The region's centre may be taken (the cover stood right there in an
  evaluation run: the cylinder put against it was perceived as a "block" and
  the place could not be verified).
"""

from __future__ import annotations

import math

import numpy as np

from robot_memory.planner.plan_state import PlanState, Target, xy
from robot_memory.planner.validation import PLACE_X, PLACE_Y
from robot_memory.planner.world import World
from robot_memory.policy.skill_goal import TABLE_PLACE_X, TABLE_PLACE_Y
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


#: A thing put in a table region stands this far from every other centre [m]
#: and this far from any container's box (the cover, 11 cm wide).
REGION_CLEARANCE = 0.09
CONTAINER_MARGIN = 0.05
REGION_GRID = 0.02


def region_spot(
    world: World, target: Target, obj: MemoryObjectMsg, state: PlanState
) -> tuple[float, float, float] | None:
    """A clear spot for ``obj`` in a table region ``target``: the grid point of
    the region (inside ``TABLE_PLACE_X``/``_Y``) nearest the region's own point
    that keeps :data:`REGION_CLEARANCE` from every other remembered object and
    what this plan put down, and :data:`CONTAINER_MARGIN` from any container's
    box. None when ``target`` is no table region or nothing there is clear (the
    place then goes to the region's own point, as before)."""
    if not isinstance(target, str) or target not in world.places:
        return None
    place = world.places[target]
    if place.kind != "table_region":
        return None
    lo, hi = np.asarray(place.bbox_min, dtype=float), np.asarray(place.bbox_max, dtype=float)
    x0, x1 = max(lo[0], TABLE_PLACE_X[0]), min(hi[0], TABLE_PLACE_X[1])
    y0, y1 = max(lo[1], TABLE_PLACE_Y[0]), min(hi[1], TABLE_PLACE_Y[1])
    if x0 > x1 or y0 > y1:
        return None
    own = np.clip((lo[:2] + hi[:2]) / 2.0, (x0, y0), (x1, y1))
    others = [o for o in world.graph.objects if o.status != "absent" and o.id != obj.id]
    taken = [xy(o.centroid) for o in others if not o.container]
    taken += [xy(p) for spots in state.spots.values() for p in spots]
    boxes = [
        (
            np.asarray(o.bbox_min[:2]) - CONTAINER_MARGIN,
            np.asarray(o.bbox_max[:2]) + CONTAINER_MARGIN,
        )
        for o in others
        if o.container
    ]
    best, best_d = None, math.inf
    for x in np.arange(x0, x1 + 1e-9, REGION_GRID):
        for y in np.arange(y0, y1 + 1e-9, REGION_GRID):
            p = np.array([x, y])
            if any(np.linalg.norm(p - t) < REGION_CLEARANCE for t in taken):
                continue
            if any(np.all(p >= b_lo) and np.all(p <= b_hi) for b_lo, b_hi in boxes):
                continue
            d = float(np.linalg.norm(p - own))
            if d < best_d:
                best, best_d = p, d
    if best is None:
        return None
    spot = (float(best[0]), float(best[1]), float(hi[2]))
    state.spots.setdefault(target, []).append(spot)
    return spot


__all__ = ["CONTAINER_SLOTS", "container_spot", "region_spot"]
