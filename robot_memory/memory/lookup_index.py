"""Indexes for memory's queries (ROS-free): by words and by time of change.

``find`` and ``last_seen`` by text score each distinct (label, colour, shape)
once (the embeddings are cached per label) and then need the objects of the
best kinds only: :class:`KindIndex` keeps the ids of each kind, present and
absent apart. ``changed_since`` needs only the objects that changed after a
time: :class:`ChangeIndex` keeps every object's last change (first sighting,
newest pose, going absent) in a sorted list. Both are kept in step by
:class:`~robot_memory.memory.scene_graph.SceneMemory` with the ids each update
touched (rebuilt on rollback, reset and load), like the active window.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable

from robot_memory.memory.object_node import MemoryObject

Words = tuple[str, str, str]


class KindIndex:
    """Object ids by (words, absent)."""

    def __init__(self) -> None:
        self.key_of: dict[int, tuple[Words, bool]] = {}
        self.members: dict[tuple[Words, bool], set[int]] = {}

    def sync(self, objects: dict[int, MemoryObject], ids: Iterable[int]) -> None:
        for oid in ids:
            old = self.key_of.pop(oid, None)
            if old is not None:
                group = self.members[old]
                group.discard(oid)
                if not group:
                    del self.members[old]
            obj = objects.get(oid)
            if obj is None or obj.merged_into is not None:
                continue
            key = (obj.words, obj.status == "absent")
            self.members.setdefault(key, set()).add(oid)
            self.key_of[oid] = key

    def rebuild(self, objects: dict[int, MemoryObject]) -> None:
        self.key_of.clear()
        self.members.clear()
        self.sync(objects, list(objects))

    def kinds(self) -> list[Words]:
        """The distinct words, in a fixed order."""
        return sorted({words for words, _ in self.members})


def last_change(obj: MemoryObject, tolerance: float) -> float:
    """The latest time ``obj`` changed in a way ``changed_since`` reports (its
    newest pose counted ``tolerance`` later: frames accepted out of order)."""
    newest = obj.pose_history[-1][0] + tolerance if obj.pose_history else -math.inf
    gone = (
        obj.absent_since if obj.status == "absent" and obj.absent_since is not None else -math.inf
    )
    return max(obj.first_seen, newest, gone)


class ChangeIndex:
    """(last change, id) of every object, sorted."""

    def __init__(self, tolerance: float) -> None:
        self.tolerance = tolerance
        self.entries: list[tuple[float, int]] = []
        self.time_of: dict[int, float] = {}

    def sync(self, objects: dict[int, MemoryObject], ids: Iterable[int]) -> None:
        for oid in ids:
            old = self.time_of.pop(oid, None)
            if old is not None:
                k = bisect.bisect_left(self.entries, (old, oid))
                del self.entries[k]
            obj = objects.get(oid)
            if obj is None or obj.merged_into is not None:
                continue
            t = last_change(obj, self.tolerance)
            bisect.insort(self.entries, (t, oid))
            self.time_of[oid] = t

    def rebuild(self, objects: dict[int, MemoryObject]) -> None:
        self.time_of = {
            oid: last_change(o, self.tolerance)
            for oid, o in objects.items()
            if o.merged_into is None
        }
        self.entries = sorted((t, oid) for oid, t in self.time_of.items())

    def changed_at_or_after(self, since: float) -> list[int]:
        """Ids whose last change is at or after ``since``, by id."""
        k = bisect.bisect_left(self.entries, (since, -math.inf))
        return sorted(oid for _, oid in self.entries[k:])


__all__ = ["ChangeIndex", "KindIndex", "last_change"]
