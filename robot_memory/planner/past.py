"""The cell's past, replayed from memory's events (ROS-free).

Works on event records as the ``events`` memory query returns them (dicts of
:meth:`robot_memory.memory.events.MemoryEvent.as_result`, oldest first), so the
planner answers over ``/memory/query`` exactly as in-process. Each function
returns its evidence (the events it used), which an answer cites.

* :func:`position_at`: where an object was at an instant;
* :func:`contents_at`: what was in / under a container at an instant;
* :func:`put_into`: what was put into a container, in order (after / before X);
* :func:`count`: how many events of some kinds (how many times the box was lifted);
* :func:`changes`: what changed in a window, one entry per object;
* :func:`ever_seen`: objects whose label has the words, seen at any time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

Event = dict
INTO = ("put_in", "covered")
OUT_OF = ("taken_out", "uncovered")
CHANGE_KINDS = ("appeared", "disappeared", "moved", "put_in", "taken_out", "covered", "uncovered")


@dataclass
class Replayed:
    """A state as of an instant, with the events it rests on."""

    value: object
    evidence: list[Event] = field(default_factory=list)


def _until(events: Iterable[Event], t: float | None) -> Iterable[Event]:
    for e in events:
        if t is None or e["stamp"] <= t:
            yield e


def position_at(events: Sequence[Event], object_id: int, t: float | None) -> Replayed:
    """Its position at ``t`` (None: not seen yet, or seen gone), and the event
    that put it there."""
    pos, last = None, []
    for e in _until(events, t):
        if e["object_id"] != object_id:
            continue
        if e["kind"] in ("appeared", "moved"):
            pos, last = e["to_position"], [e]
        elif e["kind"] == "disappeared":
            pos, last = None, [e]
    return Replayed(pos, last)


def contents_at(events: Sequence[Event], target: int | str, t: float | None) -> Replayed:
    """Object ids in / under ``target`` at ``t`` (oldest arrival first), each
    with the event that brought it there (put in, covered, or first seen there)."""
    inside: dict[int, Event] = {}
    for e in _until(events, t):
        oid = e["object_id"]
        if e["target"] == target and (e["kind"] in INTO or e["kind"] == "appeared"):
            inside[oid] = e
        elif e["target"] == target and e["kind"] in OUT_OF:
            inside.pop(oid, None)  # an object seen gone ends its relations too
    ordered = sorted(inside.values(), key=lambda e: (e["stamp"], e["seq"]))
    return Replayed([e["object_id"] for e in ordered], ordered)


def put_into(
    events: Sequence[Event], target: int | str, since: float | None = None,
    until: float | None = None,
) -> list[Event]:  # fmt: skip
    """The put_in events into ``target`` in the window, in order."""
    return [
        e for e in events
        if e["kind"] == "put_in" and e["target"] == target
        and (since is None or e["stamp"] >= since) and (until is None or e["stamp"] <= until)
    ]  # fmt: skip


def next_to(sequence: Sequence[Event], object_id: int, after: bool = True) -> Replayed:
    """In ``sequence`` (ordered events), the one right after (or before) the
    first of ``object_id``; None when it is last (first) or absent."""
    for i, e in enumerate(sequence):
        if e["object_id"] == object_id:
            j = i + 1 if after else i - 1
            if 0 <= j < len(sequence):
                return Replayed(sequence[j]["object_id"], [e, sequence[j]])
            return Replayed(None, [e])
    return Replayed(None, [])


def count(
    events: Sequence[Event], kinds: Iterable[str], object_id: int | None = None,
    target: int | str | None = None, since: float | None = None, until: float | None = None,
) -> Replayed:  # fmt: skip
    wanted = set(kinds)
    rows = [
        e for e in events
        if e["kind"] in wanted
        and (object_id is None or e["object_id"] == object_id)
        and (target is None or e["target"] == target)
        and (since is None or e["stamp"] >= since) and (until is None or e["stamp"] <= until)
    ]  # fmt: skip
    return Replayed(len(rows), rows)


def changes(events: Sequence[Event], since: float | None, until: float | None) -> Replayed:
    """One entry per object that changed in the window: its events in order."""
    per_object: dict[int, list[Event]] = {}
    for e in events:
        if e["kind"] not in CHANGE_KINDS or e["object_id"] is None:
            continue
        if (since is not None and e["stamp"] < since) or (until is not None and e["stamp"] > until):
            continue
        per_object.setdefault(e["object_id"], []).append(e)
    return Replayed(per_object, [e for rows in per_object.values() for e in rows])


def ever_seen(events: Sequence[Event], words: str) -> Replayed:
    """Objects whose label has every one of ``words`` and that appeared at some time."""
    wanted = [w for w in words.lower().split() if w not in ("the", "a", "an", "any")]
    rows = [
        e for e in events
        if e["kind"] == "appeared" and all(w in e["label"].lower().split() for w in wanted)
    ]  # fmt: skip
    return Replayed(sorted({e["object_id"] for e in rows}), rows)
