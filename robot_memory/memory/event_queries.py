"""The ``events`` memory query (ROS-free): the event log filtered by kinds,
object, target and a time range; oldest first, the newest ``MAX_EVENT_RESULTS``."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from robot_memory.memory.events import EVENT_KINDS
from robot_memory.memory.query_targets import QueryError, resolve_target_or_known

if TYPE_CHECKING:
    from robot_memory.memory.scene_graph import SceneMemory
    from robot_memory.schemas import MemoryQuery

MAX_EVENT_RESULTS = 500


def event_kinds(text: str) -> set[str]:
    names = {w for w in re.split(r"[\s,;]+", text.strip().lower()) if w}
    unknown = names - set(EVENT_KINDS)
    if unknown:
        raise QueryError(f"events: text names event kinds ({', '.join(EVENT_KINDS)}), "
                         f"got {sorted(unknown)}")  # fmt: skip
    return names


def events_query(memory: SceneMemory, q: MemoryQuery) -> list[dict]:
    if q.since is not None and q.until is not None and q.until < q.since:
        raise QueryError(f"events: until ({q.until}) is before since ({q.since})")
    targets = None
    if q.target.strip():
        known = [(e.target, e.target_label) for e in memory.events().entries]
        targets = resolve_target_or_known(memory, q.target, known)
    rows = memory.events().select(
        event_kinds(q.text), q.object_id, targets, since=q.since, until=q.until
    )
    return [e.as_result() for e in rows[-MAX_EVENT_RESULTS:]]
