"""What happened in the cell, and when: the memory's event log (ROS-free).

Events are derived from what memory perceived, one update at a time
(:func:`derive_events`), never from ground truth:

* ``appeared``: a new object (``to``: where);
* ``disappeared``: an object memory knew is seen gone from its place
  (``from``: where it was);
* ``moved``: an object seen again ``move_event_distance`` or more from where it
  last settled (``from``, ``to``); the moves of one object within
  ``move_merge_s`` of each other are one event (a carried object is seen at
  several places on its way), stamped when the move was first seen, ending
  where the object came to rest;
* ``put_in`` / ``taken_out``: an ``in`` relation to a container begins / ends
  (``target``: the bin, a box);
* ``covered`` / ``uncovered``: the same with a cover (a container object whose
  label names a cover, box or lid);
* ``session_started``: the first update after memory was opened from its store
  (a restart), so "before the last restart" has a time.

Each event has a ``cause``: ``robot`` when the robot's own skill on that object
(told by :meth:`EventLog.note_skill`) covered its time, ``other`` when no skill
did (someone else moved it), ``""`` for the kinds without a mover. The log is
bounded (``max_length``, oldest dropped first), persisted by the store with the
graph, and restored with it; :class:`EventLog` has the same snapshot/restore
pair as the relation history, so a failed update leaves it as it was.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields, replace

import numpy as np

EVENT_KINDS = (
    "appeared",
    "disappeared",
    "moved",
    "put_in",
    "taken_out",
    "covered",
    "uncovered",
    "session_started",
)
MOVER_KINDS = ("appeared", "disappeared", "moved", "put_in", "taken_out", "covered", "uncovered")
COVER_WORDS = ("cover", "box", "lid")
Vec = tuple[float, float, float]


@dataclass(frozen=True)
class MemoryEvent:
    seq: int  # increasing record number (the store's row id)
    stamp: float  # when it was perceived [s]
    kind: str
    object_id: int | None = None
    label: str = ""  # the object's label then
    target: int | str | None = None  # put_in / covered / ...: the container or place
    target_label: str = ""
    from_position: Vec | None = None
    to_position: Vec | None = None
    cause: str = ""  # robot | other | ""
    session: int = 0  # how many times memory was opened from its store before

    def as_result(self) -> dict:
        """A plain dict (what the ``events`` query returns); positions to 0.1 mm.
        Built field by field: ``dataclasses.asdict`` deep-copies and was 10x slower."""
        out = {name: getattr(self, name) for name in _EVENT_FIELDS}
        for key in ("from_position", "to_position"):
            if out[key] is not None:
                out[key] = [round(float(v), 4) for v in out[key]]
        return out


_EVENT_FIELDS = tuple(f.name for f in fields(MemoryEvent))


@dataclass(frozen=True)
class SkillSpan:
    """The robot's own skill on an object, from its start to its end."""

    skill: str
    object_id: int | None
    target: str
    start: float
    end: float


@dataclass
class SkillTracker:
    """The robot's skills from the policy's status stream: a goal that ran and
    ended (succeeded, failed or canceled) becomes one :class:`SkillSpan` from
    its first ``running`` status to its end. Pick and place only (a look moves
    nothing)."""

    started: dict[str, float] = field(default_factory=dict)  # goal id -> first running

    def on_status(
        self, goal_id: str, state: str, skill: str, object_id: int | None, target: str,
        stamp: float,
    ) -> SkillSpan | None:  # fmt: skip
        if skill not in ("pick", "place") or not goal_id:
            return None
        if state == "running":
            self.started.setdefault(goal_id, stamp)
            if len(self.started) > 100:  # goals that never ended (a lost status)
                del self.started[next(iter(self.started))]
            return None
        if state not in ("succeeded", "failed", "canceled") or goal_id not in self.started:
            return None
        return SkillSpan(skill, object_id, target, self.started.pop(goal_id), stamp)


@dataclass
class ObjectTrack:
    """Where an object last settled, for ``moved`` events."""

    position: Vec
    moved_seq: int = 0  # its last moved event (merged while within move_merge_s)
    moved_stamp: float = -math.inf


@dataclass
class EventLog:
    max_length: int = 20000
    move_event_distance: float = 0.05
    move_merge_s: float = 10.0
    entries: list[MemoryEvent] = field(default_factory=list)  # oldest first
    pending: dict[int, MemoryEvent] = field(default_factory=dict)  # seq -> not committed
    tracks: dict[int, ObjectTrack] = field(default_factory=dict)
    skills: list[SkillSpan] = field(default_factory=list)  # recent, for causes
    next_seq: int = 1
    session: int = 0
    session_announced: bool = True  # False after load: the next update records it

    # -- recording -------------------------------------------------------------
    def add(self, stamp: float, kind: str, **fields) -> MemoryEvent:
        if kind not in EVENT_KINDS:
            raise ValueError(f"unknown event kind {kind!r}")
        event = MemoryEvent(self.next_seq, float(stamp), kind, session=self.session, **fields)
        self.next_seq += 1
        self._keep(event)
        return event

    def _keep(self, event: MemoryEvent) -> None:
        self.entries.append(event)
        if len(self.entries) > self.max_length:
            dropped = self.entries[: -self.max_length]
            del self.entries[: -self.max_length]
            for old in dropped:
                self.pending.pop(old.seq, None)
        self.pending[event.seq] = event

    def _replace(self, event: MemoryEvent) -> None:
        for i in range(len(self.entries) - 1, -1, -1):
            if self.entries[i].seq == event.seq:
                self.entries[i] = event
                self.pending[event.seq] = event
                return

    def cause_of(self, object_id: int, stamp: float, slack_s: float = 2.0) -> str:
        for span in reversed(self.skills):
            if span.object_id == object_id and span.start - slack_s <= stamp <= span.end + slack_s:
                return "robot"
        return "other"

    def note_skill(self, span: SkillSpan) -> None:
        """The robot ran ``span.skill`` on ``span.object_id`` (kept: the newest 200);
        a place that names no object moves the one the last pick took."""
        if span.object_id is None and span.skill == "place":
            picked = next((s.object_id for s in reversed(self.skills) if s.skill == "pick"), None)
            span = replace(span, object_id=picked)
        self.skills.append(span)
        del self.skills[:-200]
        self._recause(span)

    def _recause(self, span: SkillSpan) -> None:
        """Events already recorded during the skill were the robot's doing."""
        for event in reversed(self.entries):
            if event.stamp < span.start - 2.0:
                break
            if event.object_id == span.object_id and event.cause == "other":
                self._replace(replace(event, cause="robot"))

    def moved(self, obj_id: int, label: str, position: Vec, stamp: float) -> None:
        """Track ``obj_id`` seen at ``position``; a ``moved`` event when it left
        where it last settled (merged with its previous move when recent)."""
        track = self.tracks.get(obj_id)
        if track is None:
            self.tracks[obj_id] = ObjectTrack(position)
            return
        if _distance(track.position, position) < self.move_event_distance:
            return
        cause = self.cause_of(obj_id, stamp)
        if stamp - track.moved_stamp <= self.move_merge_s:
            event = next((e for e in reversed(self.entries) if e.seq == track.moved_seq), None)
            if event is not None:  # keeps its stamp (the move began): the log stays in order
                self._replace(replace(event, to_position=position))
                track.position, track.moved_stamp = position, stamp
                return
        event = self.add(
            stamp, "moved", object_id=obj_id, label=label, from_position=track.position,
            to_position=position, cause=cause,
        )  # fmt: skip
        self.tracks[obj_id] = ObjectTrack(position, event.seq, stamp)

    # -- bookkeeping -------------------------------------------------------------
    def oldest_kept(self) -> int:
        return self.entries[0].seq if self.entries else self.next_seq

    def take_pending(self) -> list[MemoryEvent]:
        out = sorted(self.pending.values(), key=lambda e: e.seq)
        self.pending = {}
        return out

    def snapshot(self) -> tuple:
        tracks = {
            k: ObjectTrack(v.position, v.moved_seq, v.moved_stamp) for k, v in self.tracks.items()
        }
        return (list(self.entries), dict(self.pending), tracks, list(self.skills),
                self.next_seq, self.session, self.session_announced)  # fmt: skip

    def restore(self, saved: tuple) -> None:
        entries, pending, tracks, skills, *rest = saved
        self.entries, self.pending, self.tracks, self.skills = (
            list(entries), dict(pending), dict(tracks), list(skills)
        )  # fmt: skip
        self.next_seq, self.session, self.session_announced = rest

    def load(
        self, entries: Sequence[MemoryEvent], session: int, tracks: dict[int, Vec], resumed: bool
    ) -> None:
        """Read back from the store; ``resumed`` (the store held a memory): a new
        session begins, recorded by the next update."""
        self.entries = list(entries)[-self.max_length :]
        self.pending = {}
        self.next_seq = max([self.next_seq, *[e.seq + 1 for e in entries]])
        self.session = session
        self.session_announced = not resumed
        self.tracks = {k: ObjectTrack(v) for k, v in tracks.items()}

    def clear(self) -> None:
        """Forget every event (record numbers keep counting up)."""
        self.entries, self.pending, self.tracks, self.skills = [], {}, {}, []

    # -- reading -------------------------------------------------------------------
    def select(
        self,
        kinds: Iterable[str] = (),
        object_id: int | None = None,
        targets: set[int | str] | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[MemoryEvent]:
        """Events matching every filter given, oldest first."""
        wanted = set(kinds)
        rows = self.entries
        if since is not None:
            rows = [e for e in rows if e.stamp >= since]
        if until is not None:
            rows = [e for e in rows if e.stamp <= until]
        if wanted:
            rows = [e for e in rows if e.kind in wanted]
        if object_id is not None:
            rows = [e for e in rows if object_id in (e.object_id, e.target)]
        if targets is not None:
            rows = [e for e in rows if e.target in targets]
        return list(rows)

    def session_starts(self) -> list[float]:
        """When each session after the first began (its first update), oldest first."""
        return [e.stamp for e in self.entries if e.kind == "session_started"]


def is_cover(label: str) -> bool:
    text = label.lower()
    return any(word in text for word in COVER_WORDS)


def _distance(a: Sequence[float], b: Sequence[float]) -> float:
    return float(np.linalg.norm(np.asarray(a, dtype=float) - np.asarray(b, dtype=float)))


def as_vec(values: Sequence[float]) -> Vec:
    return (float(values[0]), float(values[1]), float(values[2]))
