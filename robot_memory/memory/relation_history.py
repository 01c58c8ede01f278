"""What was related to what, and when: the relations memory confirmed and that
have since ended (ROS-free).

A relation ends when an update drops it: a refresh no longer finds it (the
cover was lifted off, the cube left the bin), or its subject or target left
memory (pruned, merged into another object, gone absent). Each ended relation
becomes one :class:`EndedRelation` with the stamp of the frame that ended it
and the labels its two ends had then (a removed object can no longer be looked
up). The list is bounded (``MemoryConfig.relation_history_length``, oldest
dropped first) and only keeps the kinds in ``MemoryConfig.relation_history_kinds``
(``in`` and ``on`` by default: ``near`` comes and goes with every small move).

:func:`relation_history` answers the ``relation_history`` query: the ended
relations and the current ones (``ended`` None), newest first, so a caller can
ask "what was ever in the white box" after the box was lifted away.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from robot_memory.memory.query_targets import QueryError, resolve_target_or_known
from robot_memory.memory.relations import NodeId, RelationKey, RelationState

if TYPE_CHECKING:
    from robot_memory.memory.scene_graph import SceneMemory
    from robot_memory.schemas import MemoryQuery

RELATION_NAMES = ("in", "on", "near")


@dataclass(frozen=True)
class EndedRelation:
    subject: NodeId
    relation: str
    target: NodeId
    confidence: float
    first_confirmed: float
    last_confirmed: float
    ended: float | None  # None: still active (query results only)
    subject_label: str
    target_label: str
    seq: int = 0  # increasing record number (the store's row id)

    def as_result(self) -> dict:
        out = asdict(self)
        del out["seq"]
        return out


class RelationHistory:
    """The bounded list of ended relations, with what the store has not got yet
    and a snapshot/restore pair for SceneMemory's atomic updates."""

    def __init__(self, max_length: int) -> None:
        self.max_length = int(max_length)
        self.entries: list[EndedRelation] = []  # oldest first
        self.pending: list[EndedRelation] = []  # recorded, not yet committed
        self.next_seq = 1

    def record(
        self,
        ended: Iterable[tuple[RelationKey, RelationState]],
        stamp: float,
        label_of,
    ) -> list[EndedRelation]:
        """Append the relations that ended at ``stamp``; ``label_of(node)`` names an end."""
        new = []
        for (s, r, t), state in sorted(ended, key=lambda kv: str(kv[0])):
            entry = EndedRelation(
                s,
                r,
                t,
                float(state.confidence),
                float(state.first_confirmed),
                float(state.last_confirmed),
                float(stamp),
                label_of(s),
                label_of(t),
                self.next_seq,
            )
            self.next_seq += 1
            new.append(entry)
        if new:
            self.entries.extend(new)
            del self.entries[: -self.max_length]
            self.pending.extend(new)
            del self.pending[: -self.max_length]
        return new

    def oldest_kept(self) -> int:
        """Record numbers below this are no longer kept (the store drops them)."""
        return self.entries[0].seq if self.entries else self.next_seq

    def snapshot(self) -> tuple:
        return (list(self.entries), list(self.pending), self.next_seq)

    def restore(self, saved: tuple) -> None:
        entries, pending, self.next_seq = saved
        self.entries, self.pending = list(entries), list(pending)

    def load(self, entries: list[EndedRelation]) -> None:
        """Entries read back from the store (oldest first)."""
        self.entries = list(entries)[-self.max_length :]
        self.pending = []
        seqs = [e.seq for e in entries]
        self.next_seq = max([self.next_seq, *[s + 1 for s in seqs]])

    def clear(self) -> None:
        """Forget the entries (record numbers keep counting up)."""
        self.entries, self.pending = [], []


def ended_relations(
    before: dict[RelationKey, RelationState | None],
    now: dict[RelationKey, RelationState],
    kinds: Iterable[str],
) -> list[tuple[RelationKey, RelationState]]:
    """From an update's undo journal (``before``: each touched edge as it was when
    the update began): the edges that existed then and exist no more."""
    keep = set(kinds)
    return [
        (key, state)
        for key, state in before.items()
        if state is not None and key[1] in keep and key not in now
    ]


# -- the query ---------------------------------------------------------------------
def _relation_filter(text: str, default: Iterable[str]) -> set[str]:
    names = {w for w in re.split(r"[\s,;]+", text.strip().lower()) if w}
    unknown = names - set(RELATION_NAMES)
    if unknown:
        raise QueryError(
            f"relation_history: text names relations ({', '.join(RELATION_NAMES)}), "
            f"got {sorted(unknown)}"
        )
    return names or set(default)


def label_of(memory: SceneMemory, node: NodeId) -> str:
    """The label of an object (live, merged or just removed) or place; "" if unknown."""
    if isinstance(node, str):
        for place in memory.cell.places:
            if place.id == node:
                return place.label or place.id
        return node
    try:
        return memory.get(node).label
    except KeyError:
        return ""


def relation_history(memory: SceneMemory, q: MemoryQuery) -> list[dict]:
    """Ended and current relations, filtered, newest first (current ones first)."""
    history: list[EndedRelation] = memory.relation_history()
    kinds = _relation_filter(q.text, memory.config.relation_history_kinds)
    current = [
        EndedRelation(
            s,
            r,
            t,
            float(v.confidence),
            float(v.first_confirmed),
            float(v.last_confirmed),
            None,
            label_of(memory, s),
            label_of(memory, t),
        )
        for (s, r, t), v in memory.relations().items()
    ]
    rows = [e for e in history + current if e.relation in kinds]
    if q.object_id is not None:
        rows = [e for e in rows if q.object_id in (e.subject, e.target)]
    if q.target.strip():
        known = [(e.target, e.target_label) for e in history]
        known += [(e.subject, e.subject_label) for e in history]
        targets = resolve_target_or_known(memory, q.target, known)
        rows = [e for e in rows if e.target in targets]
    if q.since is not None:
        rows = [e for e in rows if e.ended is None or e.ended >= q.since]

    def newest(e: EndedRelation) -> tuple:
        return (math.inf if e.ended is None else e.ended, e.last_confirmed, e.seq)

    rows.sort(key=newest, reverse=True)
    return [e.as_result() for e in rows]
