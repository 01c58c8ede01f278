"""The events of one memory update (ROS-free): what the update changed, as
:mod:`robot_memory.memory.events` records it.

Called by :class:`~robot_memory.memory.scene_graph.SceneMemory` at the end of
each update, inside its journal (a failed update restores the log too). An
object's ``appeared`` waits until it is confirmed (seen
``ghost_min_observations`` times; a one-frame ghost never appears), stamped
with when it was first seen; its ``target`` is the container it was in then
(first seen in the bin: it appeared there, nobody was seen putting it in).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from robot_memory.memory.events import EventLog, ObjectTrack, as_vec, is_cover
from robot_memory.memory.relations import NodeId, RelationKey, RelationState

if TYPE_CHECKING:
    from robot_memory.memory.object_node import MemoryObject

RELATION_EVENTS = {True: ("covered", "uncovered"), False: ("put_in", "taken_out")}


def record_update_events(
    log: EventLog,
    objects: dict[int, MemoryObject],
    changed: Iterable[int],
    absent: Iterable[int],
    edges_before: dict[RelationKey, RelationState | None],
    edges_now: dict[RelationKey, RelationState],
    stamp: float,
    label_of: Callable[[NodeId], str],
    min_observations: int,
) -> None:
    """Record what changed: ``changed`` objects (matched, created, relocated),
    those that went ``absent``, and the ``in`` relations that began or ended
    (``edges_before``: each touched edge as it was before the update)."""
    if not log.session_announced:
        log.add(stamp, "session_started")
        log.session_announced = True
    for oid in sorted(set(changed)):
        obj = objects.get(oid)
        if obj is None or obj.status != "visible":
            continue
        position = as_vec(obj.centroid)
        if oid not in log.tracks:
            if obj.observations >= min_observations:
                cause = log.cause_of(oid, obj.first_seen)
                inside = next((t for s, r, t in edges_now if s == oid and r == "in"), None)
                log.add(obj.first_seen, "appeared", object_id=oid, label=obj.label,
                        to_position=position, cause=cause, target=inside,
                        target_label="" if inside is None else label_of(inside))  # fmt: skip
                log.tracks[oid] = ObjectTrack(position)
            continue
        log.moved(oid, obj.label, position, stamp)
    for oid in sorted(set(absent)):
        obj = objects.get(oid)
        track = log.tracks.get(oid)
        if obj is None or track is None:
            continue  # never confirmed: nothing appeared, nothing disappears
        log.add(stamp, "disappeared", object_id=oid, label=obj.label,
                from_position=track.position, cause=log.cause_of(oid, stamp))  # fmt: skip
    for key, before in sorted(edges_before.items(), key=lambda kv: str(kv[0])):
        subject, relation, target = key
        if relation != "in" or not isinstance(subject, int) or subject not in log.tracks:
            continue
        began = before is None and key in edges_now
        ended = before is not None and key not in edges_now
        if not (began or ended):
            continue
        if ended and subject not in objects:
            continue  # merged into another or pruned: not an event in the cell
        target_label = label_of(target)
        cover = isinstance(target, int) and is_cover(target_label)
        kind = RELATION_EVENTS[cover][0 if began else 1]
        log.add(stamp, kind, object_id=subject, label=label_of(subject), target=target,
                target_label=target_label, cause=log.cause_of(subject, stamp))  # fmt: skip
