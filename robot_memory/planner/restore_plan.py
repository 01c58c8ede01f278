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

import math
from collections.abc import Callable

import numpy as np

from robot_memory.planner.plan import PlanningError
from robot_memory.planner.plan_state import PlanState, Target, memory_rows, xy
from robot_memory.planner.validation import PLACE_X, PLACE_Y
from robot_memory.planner.world import MemoryPort, World
from robot_memory.policy.skill_goal import TABLE_PLACE_CLEARANCE, TABLE_PLACE_X, TABLE_PLACE_Y
from robot_memory.schemas import MemoryObjectMsg

#: Adds a pick (unless held) and a place of an object at a target to the plan:
#: ``(world, obj, target, why, state)``.
PickPlace = Callable[[World, MemoryObjectMsg, Target, str, PlanState], None]


def first_pose(memory: MemoryPort | None, oid: int) -> tuple[float, np.ndarray] | None:
    """(stamp, position) of the first pose in memory's history of ``oid``."""
    rows = memory_rows(memory, kind="history", object_id=oid)
    poses = rows[0].get("poses", []) if rows else []
    if not poses:
        return None
    first = min(poses, key=lambda p: float(p["stamp"]))
    return float(first["stamp"]), np.asarray(first["position"], dtype=float)


def original_positions(world: World, memory: MemoryPort | None) -> dict[int, np.ndarray]:
    """Where each present object was when memory first saw it, by id."""
    origins: dict[int, np.ndarray] = {}
    for o in world.present():
        first = first_pose(memory, o.id)
        if first is not None:
            origins[o.id] = first[1]
    # An object memory lost track of while it was moved unseen (the old entry
    # absent, the object seen again under a new id) is the same object when
    # exactly one absent and one present object share its colour and shape and
    # the absent one was seen first: where it was is the absent one's first pose.
    kinds: dict[tuple[str, str], list[MemoryObjectMsg]] = {}
    for o in world.graph.objects:
        if not o.container and o.color and o.shape:
            kinds.setdefault((o.color, o.shape), []).append(o)
    for group in kinds.values():
        gone = [o for o in group if o.status == "absent"]
        here = [o for o in group if o.status != "absent"]
        if len(gone) != 1 or len(here) != 1 or gone[0].first_seen >= here[0].first_seen:
            continue
        first = first_pose(memory, gone[0].id)
        if first is not None:
            origins[here[0].id] = first[1]
    if not origins and world.graph.objects:  # no history: what changed since the start
        since = min(o.first_seen for o in world.graph.objects)
        for row in memory_rows(memory, kind="changed_since", since=since):
            if row.get("change") == "moved" and row.get("id") not in origins:
                origins[int(row["id"])] = np.asarray(row["from"], dtype=float)
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
    origins = original_positions(world, memory)
    cur: dict[int, np.ndarray] = {o.id: xy(o.centroid) for o in world.graph.objects}
    cur = {i: p for i, p in cur.items() if world.objects[i].status != "absent"}
    goals: dict[int, np.ndarray] = {}
    for o in world.present():
        if o.id not in origins:
            continue
        d = float(np.linalg.norm(xy(origins[o.id]) - cur[o.id]))
        if d <= moved_threshold:
            continue
        if world.is_covered(o.id):
            state.notes.append(f"skip #{o.id} {o.label}: moved but covered now")
            continue
        g = origins[o.id]
        if not (PLACE_X[0] <= g[0] <= PLACE_X[1] and PLACE_Y[0] <= g[1] <= PLACE_Y[1]):
            state.notes.append(f"skip #{o.id} {o.label}: its old spot is out of reach")
            continue
        goals[o.id] = xy(g)
    for i in list(goals):  # blocked by something that is not going to move
        blockers = [
            j
            for j, p in cur.items()
            if j != i and j not in goals and np.linalg.norm(p - goals[i]) < spot_clearance
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


__all__ = ["PickPlace", "first_pose", "free_spot", "original_positions", "restore_all"]
