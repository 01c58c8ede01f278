"""Answers to "where is X?" from memory (ROS-free).

The answer says where memory believes the object is (in a container object, in
a place of the cell, or at a position), how long ago it was last seen, and
whether memory believes it is gone. With a memory port it also says where the
object was first seen when it has moved since.
"""

from __future__ import annotations

import uuid

import numpy as np

from robot_memory.planner.world import MemoryPort, World
from robot_memory.schemas import MemoryObjectMsg, MemoryQuery

#: Moves shorter than this (xy) are not mentioned [m].
MOVE_MENTION_M = 0.04


def where_is(world: World, obj: MemoryObjectMsg) -> tuple[str, str]:
    """(place key, words): a container object id as text, a place id, or "" (a position)."""
    for r in world.relations_of(obj.id):
        t = r.target
        if r.relation == "in" and isinstance(t, int) and t in world.objects:
            return str(t), f"under the {world.objects[t].label}"
    ordered = sorted(world.places.values(), key=lambda p: p.kind != "container")
    rel_targets = {r.target for r in world.relations_of(obj.id) if r.relation in ("in", "on")}
    for p in ordered:
        if p.id in rel_targets or world.in_place(obj, p.id):
            label = p.label or p.id
            inside = p.kind == "container" or label.startswith("middle")
            prep = "in the" if inside else "on the"
            return p.id, f"{prep} {label}"
    return "", "on the table"


def _ago(now: float, then: float) -> str:
    dt = max(0.0, now - then)
    if dt < 1.0:
        return "just now"
    if dt < 120:
        return f"{dt:.0f} s ago"
    return f"{dt / 60:.0f} min ago"


def _first_position(memory: MemoryPort | None, obj: MemoryObjectMsg) -> list[float] | None:
    if memory is None:
        return None
    try:
        ans = memory.query(MemoryQuery(id=uuid.uuid4().hex[:16], kind="history", object_id=obj.id))
        poses = ans.results[0].get("poses", []) if ans.ok and ans.results else []
        return [float(v) for v in poses[0]["position"]] if poses else None
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def answer_where(
    world: World, obj: MemoryObjectMsg, memory: MemoryPort | None = None
) -> dict[str, object]:
    """The fields of an answer plan: answer, answer_object_id, answer_position, answer_place."""
    place, words = where_is(world, obj)
    pos = tuple(round(float(v), 3) for v in obj.centroid)
    at = "({:.2f}, {:.2f}, {:.2f})".format(*pos)
    ago = _ago(world.stamp, obj.last_seen)
    seen = "seen now" if obj.status == "visible" else f"last seen {ago}"
    name = f"The {obj.label}"
    if obj.status == "absent":
        text = (
            f"{name} seems to be gone: it was last seen {_ago(world.stamp, obj.last_seen)} "
            f"{words} at {at}, and it was not there when that spot was seen again."
        )
    else:
        text = f"{name} is {words} ({seen} at {at})."
    first = _first_position(memory, obj)
    if first is not None:
        moved = float(np.linalg.norm(np.asarray(first[:2]) - np.asarray(pos[:2])))
        if moved > MOVE_MENTION_M:
            text += " It was moved there from ({:.2f}, {:.2f}, {:.2f}).".format(*first[:3])
    return {
        "answer": text,
        "answer_object_id": obj.id,
        "answer_position": pos,
        "answer_place": place,
    }


__all__ = ["answer_where", "where_is"]
