"""Putting everything back (ROS-free): where each moved object was first seen,
and the order to move them there in. Moved out of
:mod:`robot_memory.planner.offline_backend`, which calls :func:`restore_all`
for a "put everything back" command and :func:`free_spot` for "next to X".

An object's origin is its first pose in memory's history (an object memory
lost track of while it was moved unseen: its absent twin's first pose; no
history at all: memory's ``changed_since`` answer). Objects whose old spot is
out of reach, covered now, or taken by something that stays are skipped; one
whose old spot another moving object stands on waits for it, and a cycle of
swapped spots is broken by setting one object aside on a free table spot.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from robot_memory.planner.plan import PlanningError
from robot_memory.planner.plan_state import PlanState, Target, memory_rows, xy
from robot_memory.planner.recovery import same_kind
from robot_memory.planner.validation import PLACE_X, PLACE_Y
from robot_memory.planner.world import MemoryPort, World
from robot_memory.policy.skill_goal import TABLE_PLACE_CLEARANCE, TABLE_PLACE_X, TABLE_PLACE_Y
from robot_memory.schemas import MemoryObjectMsg

#: Adds a pick (unless held) and a place of an object at a target to the plan:
#: ``(world, obj, target, why, state)``.
PickPlace = Callable[[World, MemoryObjectMsg, Target, str, PlanState], None]


#: Two consecutive poses farther apart than this are two places, not one
#: estimate refined (a partial first view converging) [m].
SAME_SPOT_M = 0.08
#: Objects kept apart by at least this are different places of one kind [m].
ONE_PLACE_M = 0.06


@dataclass
class Origin:
    """Where an object stood when memory first saw it, and until when memory
    knew it there (``until``: the first sighting elsewhere; inf if none)."""

    position: np.ndarray
    until: float = math.inf


def settled_origin(row: dict, moved_threshold: float) -> Origin | None:
    """The first place in a history row, as memory settled on it: the pose
    history starts with the first (often partial) view and records every
    centimetre the estimate drifts while the object is watched; the place ends
    at the first step of more than ``SAME_SPOT_M``, more than
    ``SAME_SPOT_M`` from the first pose, or more than ``moved_threshold``
    across a gap in the object's sightings (moved while nobody looked; a row
    without sightings counts every step as one)."""
    poses = sorted(row.get("poses", []), key=lambda p: float(p["stamp"]))
    if not poses:
        return None
    seen = [tuple(map(float, v)) for v in row.get("visibility", [])]

    def interval(stamp: float) -> int:
        return next((i for i, (a, b) in enumerate(seen) if a <= stamp <= b), -1)

    first = np.asarray(poses[0]["position"], dtype=float)
    origin = Origin(first)
    for prev, nxt in itertools.pairwise(poses):
        a, b = np.asarray(prev["position"], float), np.asarray(nxt["position"], float)
        step = float(np.linalg.norm(b[:2] - a[:2]))
        unseen = interval(float(prev["stamp"])) != interval(float(nxt["stamp"])) or not seen
        if (
            step > SAME_SPOT_M
            or float(np.linalg.norm(b[:2] - first[:2])) > SAME_SPOT_M
            or (step > moved_threshold and unseen)
        ):
            origin.until = float(nxt["stamp"])
            break
        origin.position = b
    return origin


def original_positions(
    world: World, memory: MemoryPort | None, moved_threshold: float = 0.04
) -> dict[int, Origin]:
    """Where each present object was when memory first saw it, by id."""
    origins: dict[int, Origin] = {}
    for o in world.graph.objects:
        rows = memory_rows(memory, kind="history", object_id=o.id)
        found = settled_origin(rows[0], moved_threshold) if rows else None
        if found is not None:
            if o.status == "absent":
                found.until = min(found.until, o.last_seen)
            origins[o.id] = found
    # An object memory lost track of while it was moved unseen (the old entry
    # absent, the object seen again under a new id) is the same object when its
    # kind (colour and shape words, neighbouring colours allowed: a white bowl
    # reads grey in shade) has exactly one absent place, seen first, and
    # exactly one object that appeared after it. Several absent entries within
    # ONE_PLACE_M of each other are one place seen as pieces.
    present = [o for o in world.present() if not o.container and o.color and o.shape]
    absent = [
        o
        for o in world.graph.objects
        if o.status == "absent" and not o.container and o.color and o.shape and o.id in origins
    ]
    for obj in present:
        gone = [a for a in absent if same_kind(a, obj) and a.first_seen < obj.first_seen]
        if not gone:
            continue
        places = [origins[a.id].position for a in gone]
        if max(float(np.linalg.norm(p[:2] - places[0][:2])) for p in places) > ONE_PLACE_M:
            continue
        last_there = max(origins[a.id].until for a in gone)
        newcomers = [o for o in present if same_kind(gone[0], o) and o.first_seen > last_there]
        if [o.id for o in newcomers] == [obj.id]:
            origins[obj.id] = Origin(np.mean(places, axis=0), last_there)
    if not origins and world.graph.objects:  # no history: what changed since the start
        since = min(o.first_seen for o in world.graph.objects)
        for row in memory_rows(memory, kind="changed_since", since=since):
            if row.get("change") == "moved" and row.get("id") not in origins:
                origins[int(row["id"])] = Origin(
                    np.asarray(row["from"], dtype=float), float(row.get("stamp", math.inf))
                )
    return origins


def restore_all(
    world: World,
    memory: MemoryPort | None,
    state: PlanState,
    pick_place: PickPlace,
    moved_threshold: float,
    spot_clearance: float,
    table_height: float,
) -> None:
    """Add to ``state`` the steps that put every moved object back where memory
    first saw it (moved: more than ``moved_threshold`` from there; a spot is
    taken within ``spot_clearance``; positions at ``table_height``)."""
    if memory is None:
        raise PlanningError("no memory", "putting things back needs memory's history")
    origins = original_positions(world, memory, moved_threshold)
    cur: dict[int, np.ndarray] = {o.id: xy(o.centroid) for o in world.graph.objects}
    cur = {i: p for i, p in cur.items() if world.objects[i].status != "absent"}
    goals: dict[int, np.ndarray] = {}
    for o in world.present():
        if o.id not in origins:
            continue
        d = float(np.linalg.norm(xy(origins[o.id].position) - cur[o.id]))
        if d <= moved_threshold:
            continue
        if world.is_covered(o.id):
            state.notes.append(f"skip #{o.id} {o.label}: moved but covered now")
            continue
        g = origins[o.id].position
        if not (PLACE_X[0] <= g[0] <= PLACE_X[1] and PLACE_Y[0] <= g[1] <= PLACE_Y[1]):
            state.notes.append(f"skip #{o.id} {o.label}: its old spot is out of reach")
            continue
        goals[o.id] = xy(g)

    def neighbour(j: int, i: int) -> bool:
        """``j`` stood where it stands now while ``i`` was on its old spot."""
        o = origins.get(j)
        return (
            o is not None
            and float(np.linalg.norm(xy(o.position) - cur[j])) <= moved_threshold
            and world.objects[j].first_seen < origins[i].until
        )

    for i in list(goals):  # blocked by something that is not going to move
        blockers = [
            j
            for j, p in cur.items()
            if j != i
            and j not in goals
            and np.linalg.norm(p - goals[i]) < spot_clearance
            and not neighbour(j, i)
        ]
        if blockers:
            state.notes.append(
                f"skip #{i} {world.objects[i].label}: its old spot is taken by #{blockers[0]}"
            )
            del goals[i]
    if not goals:
        state.notes.append("nothing has moved since memory first saw it")
        return
    staged: set[int] = set()
    pending = dict(goals)
    while pending:
        ready = [
            i
            for i in sorted(pending)
            if not any(
                j != i and np.linalg.norm(cur[j] - pending[i]) < spot_clearance for j in pending
            )
        ]
        if ready:
            i = ready[0]
            g = pending.pop(i)
            pos = (float(g[0]), float(g[1]), table_height)
            why = "back where memory first saw it at ({:.2f}, {:.2f})".format(*pos[:2])
            pick_place(world, world.objects[i], pos, why, state)
            cur[i] = g
            continue
        i = next((k for k in sorted(pending) if k not in staged), None)
        spot = None if i is None else free_spot(list(cur.values()) + list(goals.values()))
        if i is None or spot is None:
            state.notes.append(f"cannot untangle swapped spots of {sorted(pending)}; skipped")
            break
        staged.add(i)
        pos = (float(spot[0]), float(spot[1]), table_height)
        pick_place(world, world.objects[i], pos, "aside first (its spot swap)", state)
        cur[i] = spot
        state.notes.append(f"#{i} set aside first: objects stand on each other's old spots")


def free_spot(taken: list[np.ndarray], near: np.ndarray | None = None) -> np.ndarray | None:
    """A table spot the policy knows, clear of everything: the farthest from
    everything, or (``near``) the closest to that point that is clear."""
    best, best_key = None, math.inf
    clear = TABLE_PLACE_CLEARANCE if near is None else 0.08
    for x in np.arange(TABLE_PLACE_X[0], TABLE_PLACE_X[1] + 1e-9, 0.02):
        for y in np.arange(TABLE_PLACE_Y[0], TABLE_PLACE_Y[1] + 1e-9, 0.02):
            p = np.array([x, y])
            d = min((float(np.linalg.norm(p - t)) for t in taken), default=math.inf)
            if d < clear:
                continue
            key = -d if near is None else float(np.linalg.norm(p - near))
            if key < best_key:
                best, best_key = p, key
    return best


__all__ = [
    "Origin",
    "PickPlace",
    "free_spot",
    "original_positions",
    "restore_all",
    "settled_origin",
]
