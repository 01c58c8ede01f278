"""The memory's journal of one update and its commit to the store (ROS-free).

Moved out of :mod:`robot_memory.memory.scene_graph`: :class:`MemoryJournal` is a
base class of :class:`~robot_memory.memory.scene_graph.SceneMemory` holding its
bookkeeping, unchanged. Each update starts a journal (``_begin``); every object
it changes is first copied (``_touch``) so that ``_rollback`` can restore the
memory exactly as it was when the update raises. What changed (``_dirty``,
``_deleted``, the relation table's dirty/deleted keys, the relation history's
pending entries) is written to the :class:`~robot_memory.memory.store.MemoryStore`
in one transaction (``_maybe_commit``, per the commit policy), and read back
when the memory starts (``_load``).
"""

from __future__ import annotations

from robot_memory.memory.config import MemoryConfig
from robot_memory.memory.events import EventLog, as_vec
from robot_memory.memory.object_node import MemoryObject
from robot_memory.memory.relation_history import RelationHistory, label_of
from robot_memory.memory.relations import RelationTable
from robot_memory.memory.store import MemoryStore


class MemoryJournal:
    """The undo journal and store glue of :class:`SceneMemory` (which sets the
    attributes annotated here in its ``__init__``)."""

    config: MemoryConfig
    _objects: dict[int, MemoryObject]
    _merged: dict[int, MemoryObject]
    _rel: RelationTable
    _history: RelationHistory
    _events: EventLog
    _next_id: int
    _seq: int
    _stamp: float
    _camera_stamps: dict[str, float]
    _counters: dict[str, int]
    _version: int
    _epoch: int
    _store: MemoryStore | None
    _last_commit: float

    def _begin(self) -> None:
        self._undo_objects: dict[int, MemoryObject | None] = {}
        self._rel.undo = {}
        if not hasattr(self, "_dirty"):
            self._dirty: set[int] = set()
            self._deleted: set[int] = set()

    def _save_scalars(self) -> tuple:
        return (
            self._next_id,
            self._seq,
            self._stamp,
            dict(self._camera_stamps),
            dict(self._counters),
            set(self._dirty),
            set(self._deleted),
            self._last_commit,
            set(self._rel.dirty),
            set(self._rel.deleted),
            self._history.snapshot(),
            self._events.snapshot(),
        )

    def _rollback(self, saved: tuple) -> None:
        for oid, before in self._undo_objects.items():
            self._objects.pop(oid, None)
            self._merged.pop(oid, None)
            if before is not None:
                target = self._merged if before.merged_into is not None else self._objects
                target[oid] = before
        (self._next_id, self._seq, self._stamp, self._camera_stamps, self._counters) = saved[:5]
        self._dirty, self._deleted, self._last_commit = saved[5:8]
        self._rel.rollback(*saved[8:10])
        self._history.restore(saved[10])
        self._events.restore(saved[11])
        self._version += 1
        self._epoch += 1
        self._begin()

    def _label_of(self, node: int | str) -> str:
        """Label of a relation end; an object removed by this update, as it was."""
        gone = isinstance(node, int) and node not in self._objects and node not in self._merged
        before = self._undo_objects.get(node) if gone else None  # type: ignore[call-overload]
        return before.label if before is not None else label_of(self, node)

    def _touch(self, obj: MemoryObject) -> MemoryObject:
        if obj.id not in self._undo_objects:
            self._undo_objects[obj.id] = obj.clone()
        self._dirty.add(obj.id)
        return obj

    def _remove(self, oid: int, merged: bool = False) -> None:
        obj = self._objects.pop(oid)
        if merged:
            self._merged[oid] = obj
        else:
            self._deleted.add(oid)
            self._dirty.discard(oid)

    def _meta(self) -> dict:
        return {
            "next_id": self._next_id,
            "seq": self._seq,
            "stamp": self._stamp,
            "camera_stamps": self._camera_stamps,
            "session": self._events.session,
        }

    def _has_pending(self) -> bool:
        pending = self._dirty or self._deleted or self._rel.dirty or self._rel.deleted
        return bool(pending or self._history.pending or self._events.pending)

    def _pending(self) -> tuple:
        objects = [self._objects.get(i) or self._merged[i] for i in sorted(self._dirty)]
        return (
            self._meta(),
            objects,
            sorted(self._deleted),
            {k: self._rel.edges[k] for k in self._rel.dirty},
            list(self._rel.deleted),
            (list(self._history.pending), self._history.oldest_kept()),
            (
                sorted(self._events.pending.values(), key=lambda e: e.seq),
                self._events.oldest_kept(),
            ),
        )

    def _maybe_commit(self, stamp: float) -> None:
        interval = self.config.commit_policy == "interval"
        if (
            self._store is not None
            and interval
            and (stamp - self._last_commit < self.config.commit_interval)
        ):
            return
        self._commit_now()
        self._last_commit = stamp

    def _commit_now(self) -> None:
        """Write what is pending (if there is a store) and start afresh."""
        if self._store is not None and self._has_pending():
            self._store.commit(*self._pending())
        self._dirty, self._deleted = set(), set()
        self._rel.dirty, self._rel.deleted = set(), set()
        self._history.pending = []
        self._events.pending = {}

    def _load(self) -> None:
        assert self._store is not None
        meta, objects, relations = self._store.load()
        for oid, obj in objects.items():
            (self._merged if obj.merged_into is not None else self._objects)[oid] = obj
        for key, state in relations.items():
            self._rel.set(key, state, journal=False)
        self._rel.dirty, self._rel.deleted = set(), set()
        self._history.load(self._store.load_relation_history())
        confirmed = {
            oid: as_vec(obj.centroid)
            for oid, obj in self._objects.items()
            if obj.observations >= self.config.ghost_min_observations
        }
        events = self._store.load_events()
        resumed = bool(objects or events)
        session = int(meta.get("session", 0)) + int(resumed)
        self._events.load(events, session, confirmed, resumed)
        self._next_id = max([int(meta.get("next_id", 1)), *[i + 1 for i in objects]])
        self._seq = int(meta.get("seq", 0))
        self._stamp = float(meta.get("stamp", 0.0))
        self._camera_stamps = {str(k): float(v) for k, v in meta.get("camera_stamps", {}).items()}
        self._version += 1
        self._epoch += 1


__all__ = ["MemoryJournal"]
