"""The true state of the simulated week at any instant (ROS-free).

:class:`WeekTruth` replays the ground-truth actions of a
:class:`~robot_memory.tasks.week_world.WeekLog` (never memory's events) to say
where each object was, what was in the bin or under the box, what was put in
and in which order, how often something moved, and what changed in a window.
Questions and their expected answers are made from it
(:mod:`robot_memory.tasks.week_questions`).

Memory sees an action at the robot's next look, 1.5 s after it; :meth:`settled`
says whether an instant or a window is far enough from every action that the
truth and a perfect memory must agree (questions are only asked there).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from robot_memory.tasks.week_world import COVER, TruthEvent, WeekLog

LAG_S = 2.5  # an action is in memory after the next look (1.5 s + 0.2 s of frames), with margin
CHANGE_KINDS = ("added", "removed", "moved", "put_in", "taken_out", "covered", "uncovered")


@dataclass
class TruthState:
    """The cell at one instant: present objects, their positions and where they are."""

    position: dict[int, tuple[float, float, float]] = field(default_factory=dict)
    inside: dict[int, str | int | None] = field(default_factory=dict)  # "bin", a cover tid
    present: set[int] = field(default_factory=set)

    def in_bin(self) -> list[int]:
        return [t for t in self.present if self.inside.get(t) == "bin"]

    def under(self, cover: int) -> list[int]:
        return [t for t in self.present if self.inside.get(t) == cover]


class WeekTruth:
    def __init__(self, log: WeekLog) -> None:
        self.log = log
        self.events = [e for e in log.truth if e.kind != "restart"]
        self.labels = {o.tid: o.label for o in log.objects.values()}
        self.cover = next((o.tid for o in log.objects.values() if o.label == COVER[0]), None)

    def tid(self, label: str) -> int:
        return next(t for t, name in self.labels.items() if name == label)

    # -- instants and windows ------------------------------------------------------
    def settled(self, t: float | None, since: float | None = None) -> bool:
        """No action within :data:`LAG_S` before ``t`` (and before ``since``):
        memory has seen everything that happened by then."""
        end = self.log.end  # the last look: by then memory has seen everything
        if t is not None and t < end and any(t - LAG_S < e.stamp <= t for e in self.events):
            return False  # happened by t, seen after t
        # and nothing happened just before since that memory saw after it
        return since is None or not any(since - LAG_S < e.stamp < since for e in self.events)

    def state_at(self, t: float | None) -> TruthState:
        """The cell after every action at or before ``t`` (None: the week's end)."""
        s = TruthState()
        for e in self._until(t):
            if e.tid is None:
                continue
            if e.kind == "added":
                s.present.add(e.tid)
                s.position[e.tid], s.inside[e.tid] = e.to_position, None  # type: ignore[assignment]
            elif e.kind == "removed":
                s.present.discard(e.tid)
            elif e.kind == "moved":
                s.position[e.tid] = e.to_position  # type: ignore[assignment]
            elif e.kind in ("put_in", "covered"):
                s.inside[e.tid] = e.target
            elif e.kind in ("taken_out", "uncovered"):
                s.inside[e.tid] = None
        return s

    def ever_present(self, t: float | None = None) -> set[int]:
        return {e.tid for e in self._until(t) if e.kind == "added" and e.tid is not None}

    def removed_by(self, t: float | None) -> set[int]:
        return {e.tid for e in self._until(t) if e.kind == "removed" and e.tid is not None}

    def put_in_sequence(
        self, since: float | None = None, until: float | None = None
    ) -> list[TruthEvent]:
        """Every put-in into the bin in the window, in order."""
        return [e for e in self._window(since, until) if e.kind == "put_in" and e.target == "bin"]

    def moves(self, tid: int, since: float | None = None, until: float | None = None) -> int:
        return sum(e.kind == "moved" and e.tid == tid for e in self._window(since, until))

    def changed(self, since: float | None, until: float | None) -> set[int]:
        """Objects with any action in the window."""
        return {
            e.tid for e in self._window(since, until)
            if e.kind in CHANGE_KINDS and e.tid is not None
        }  # fmt: skip

    def last_sighting(self, tid: int) -> float | None:
        return self.log.sightings.get(tid)

    # -- helpers -------------------------------------------------------------------
    def _until(self, t: float | None) -> Iterable[TruthEvent]:
        return (e for e in self.events if t is None or e.stamp <= t)

    def _window(self, since: float | None, until: float | None) -> Iterable[TruthEvent]:
        return (
            e for e in self.events
            if (since is None or e.stamp >= since) and (until is None or e.stamp <= until)
        )  # fmt: skip
