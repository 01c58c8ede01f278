"""Answers to questions about the past, from memory's events (ROS-free).

:func:`answer_past` asks memory for its events (the ``events`` query, so it
works over ``/memory/query`` as in-process), replays them
(:mod:`robot_memory.planner.past`) and returns the fields of an answer plan:
the sentence, the object it is about and the evidence it rests on (object ids
and times, in ``notes``). Objects are named by their labels as memory had them
then, so an object that has since left memory is still found.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence

from robot_memory.memory.event_queries import MAX_EVENT_RESULTS
from robot_memory.planner import past
from robot_memory.planner.past_questions import PastQuestion, parse_past_question
from robot_memory.planner.plan import Plan, PlanningError
from robot_memory.planner.question_intent import guess_past_question
from robot_memory.planner.time_words import CellClock, TimeWordsError, find_time
from robot_memory.planner.world import MemoryPort, PlanningContext, World
from robot_memory.schemas import MemoryQuery

FILLER = frozenset({"the", "a", "an", "any", "thing", "object", "one", "item", "that", "this"})
SYNONYMS = {"block": "cube", "ball": "sphere", "mug": "cup", "can": "cylinder", "cover": "box",
            "container": "box", "lid": "box", "pyramid": "prism"}  # fmt: skip
COLOURS = ("red", "green", "blue", "yellow", "orange", "purple", "white", "black", "grey", "pink")


def _words(text: str) -> list[str]:
    return [SYNONYMS.get(w, w) for w in text.lower().split() if w not in FILLER]


def matches(phrase: str, label: str) -> bool:
    wanted, have = _words(phrase), set(_words(label))
    return bool(wanted) and all(w in have for w in wanted)


def events_from(memory: MemoryPort, **filters) -> list[dict]:
    """Every event that matches ``filters``, oldest first. One answer holds the
    newest ``MAX_EVENT_RESULTS`` up to ``until``; older ones are fetched page
    by page (``until`` = the oldest stamp so far; events seen twice dropped)."""
    pages: list[list[dict]] = []
    seen: set[int] = set()
    until = filters.pop("until", None)
    while True:
        answer = memory.query(
            MemoryQuery(id=uuid.uuid4().hex[:16], kind="events", until=until, **filters)
        )
        if not answer.ok:
            raise PlanningError("memory unavailable", f"events query failed: {answer.error}")
        new = [e for e in answer.results if e["seq"] not in seen]
        seen.update(e["seq"] for e in new)
        pages.append(new)
        if len(answer.results) < MAX_EVENT_RESULTS or not new:
            break
        until = answer.results[0]["stamp"]
    return [e for page in reversed(pages) for e in page]  # memory's order


def object_ids(phrase: str, events: Sequence[dict], world: World) -> list[int]:
    """Objects whose label (then, or now) has the phrase's words; most recent first."""
    labels: dict[int, tuple[float, str]] = {}
    for e in events:
        if e["object_id"] is not None:
            labels[e["object_id"]] = (e["stamp"], e["label"])
    for o in world.graph.objects:
        labels.setdefault(o.id, (o.last_seen, o.label))
    found = [(stamp, oid) for oid, (stamp, label) in labels.items() if matches(phrase, label)]
    return [oid for _, oid in sorted(found, reverse=True)]


def target_of(phrase: str, events: Sequence[dict], world: World) -> int | str:
    words = " ".join(_words(phrase))
    for place in world.places.values():
        if words in (place.id.replace("_", " "), (place.label or "").lower()):
            return place.id
    ids = object_ids(phrase, events, world)
    if not ids:
        raise PlanningError("unknown object", f"nothing called {phrase!r} in memory, then or now")
    return ids[0]


def _label(oid: int, events: Sequence[dict], world: World) -> str:
    for e in reversed(events):
        if e["object_id"] == oid and e["label"]:
            return e["label"]
    return world.objects[oid].label if oid in world.objects else f"object {oid}"


def _cite(rows: Sequence[dict]) -> list[str]:
    return [f"#{e['object_id']} {e['kind']} at {e['stamp']:.1f} s (event {e['seq']})" for e in rows]


def _when(t: float | None) -> str:
    return "now" if t is None else f"at {t:.1f} s"


def past_question(
    ctx: PlanningContext, clock: CellClock, guess: bool = False
) -> PastQuestion | None:
    """The instruction as a question about the past, or None. Restarts (for
    "before the last restart") come from memory's events, asked only then. A
    question with a time that no pattern knows, or (``guess``) any question
    nothing else understood, goes to the keyword fallback
    (:mod:`robot_memory.planner.question_intent`)."""
    restarts: list[float] = []
    if ctx.memory is not None and re.search(r"\b(?:restart|reboot)", ctx.instruction.lower()):
        restarts = [e["stamp"] for e in events_from(ctx.memory, text="session_started")]
    now, text = ctx.world.stamp, ctx.instruction
    try:
        question = parse_past_question(text, now, clock, restarts)
        if question is None and (guess or find_time(text, now, clock, restarts)[1] is not None):
            question = guess_past_question(text, now, clock, restarts)
        return question
    except TimeWordsError as err:
        raise PlanningError("unknown time", str(err)) from None


def answer_plan(ctx: PlanningContext, question: PastQuestion, plan_id: str, backend: str) -> Plan:
    """The answer plan of a question about the past, its evidence in ``notes``."""
    if ctx.memory is None:
        raise PlanningError("memory unavailable", "questions about the past need memory")
    fields = answer_past(question, ctx.world, ctx.memory)
    notes = [f"question {question.kind} ({question.wording})", *fields.pop("notes")]  # type: ignore[misc]
    return Plan(id=plan_id, instruction=ctx.instruction, backend=backend, kind="answer",
                notes=notes, **fields)  # type: ignore[arg-type]  # fmt: skip


def answer_past(q: PastQuestion, world: World, memory: MemoryPort) -> dict[str, object]:
    """The fields of an answer plan: ``answer``, ``answer_object_id``,
    ``answer_position``, ``answer_place``, ``notes`` (the evidence)."""
    events = events_from(memory)
    t = q.time.point if q.time is not None else None
    out: dict[str, object] = {"answer_object_id": None, "answer_position": None, "answer_place": ""}

    def name(oid: int | None) -> str:
        return "nothing" if oid is None else f"the {_label(oid, events, world)} (#{oid})"

    if q.kind in ("contents", "attribute", "count_contents"):
        target = target_of(q.target, events, world)
        state = past.contents_at(events, target, t)
        inside: list[int] = state.value  # type: ignore[assignment]
        where = f"{q.relation or 'in'} the {q.target.removeprefix('the ')}"
        out["answer_place"] = str(target)
        if q.kind == "count_contents":
            text = f"{len(inside)} {'thing' if len(inside) == 1 else 'things'} {where} {_when(t)}"
        elif not inside:
            text = f"Nothing was {where} {_when(t)}"
        elif q.kind == "attribute":
            label = _label(inside[-1], events, world).split()
            if q.attribute == "colour":
                value = next((w for w in label if w in COLOURS), "unknown")
            else:
                value = label[-1]
            text = f"{value}: {name(inside[-1])} was {where} {_when(t)}"
            out["answer_object_id"] = inside[-1]
        else:
            verb = "was" if len(inside) == 1 else "were"
            text = f"{', '.join(name(o) for o in inside)} {verb} {where} {_when(t)}"
            out["answer_object_id"] = inside[-1]
        return {**out, "answer": text + ".", "notes": _cite(state.evidence)}
    if q.kind == "order":
        target = target_of(q.target, events, world)
        subject = _one(q.subject, events, world)
        window = (q.time.since, q.time.until) if q.time is not None else (None, None)
        sequence = past.put_into(events, target, *window)
        got = past.next_to(sequence, subject, after=q.after)
        side = "after" if q.after else "before"
        place = q.target.removeprefix("the ")
        if got.value is not None:
            who = "by me" if got.evidence[-1]["cause"] == "robot" else "by someone else"
            text = f"Right {side} {name(subject)}, {name(got.value)} went into the {place} ({who})"
        else:
            text = f"Nothing went into the {place} right {side} {name(subject)}"
        return {**out, "answer_object_id": got.value, "answer_place": str(target),
                "answer": text + ".", "notes": _cite(got.evidence)}  # fmt: skip
    if q.kind == "count_moves":
        subject = _one(q.subject, events, world)
        window = (q.time.since, q.time.until) if q.time is not None else (None, None)
        got = past.count(events, ["moved"], object_id=subject, since=window[0], until=window[1])
        text = f"{name(subject)} was moved {got.value} {'time' if got.value == 1 else 'times'}"
        out["answer_object_id"] = subject
        return {**out, "answer": text + ".", "notes": _cite(got.evidence)}
    if q.kind == "changes":
        since = q.time.since if q.time is not None else _last_restart(events)
        until = q.time.until if q.time is not None else None
        got = past.changes(events, since, until)
        per_object: dict[int, list[dict]] = got.value  # type: ignore[assignment]
        if not per_object:
            text = f"Nothing changed since {since or 0:.1f} s"
        else:
            parts = [f"{name(oid)}: {_tally(rows)}" for oid, rows in per_object.items()]
            text = f"Since {since or 0:.1f} s: " + "; ".join(parts)
        return {**out, "answer": text[:990] + ".", "notes": _cite(got.evidence)}
    if q.kind == "ever_seen":
        got = past.ever_seen(events, q.subject)
        ids: list[int] = got.value  # type: ignore[assignment]
        ids += [
            o.id for o in world.graph.objects if matches(q.subject, o.label) and o.id not in ids
        ]
        text = (f"Yes: {', '.join(name(o) for o in ids)}" if ids
                else f"No, I have never seen {q.subject}")  # fmt: skip
        return {**out, "answer_object_id": ids[0] if ids else None, "answer": text + ".",
                "notes": _cite(got.evidence)}  # fmt: skip
    subject = _one(q.subject, events, world)
    if q.kind == "last_seen":
        last = world.objects[subject].last_seen if subject in world.objects else None
        rows = [e for e in events if e["object_id"] == subject]
        if last is None and rows:
            last = rows[-1]["stamp"]
        if last is None:
            text = f"I never saw {name(subject)}"
        else:
            text = f"I last saw {name(subject)} at {last:.1f} s"
        out["answer_object_id"] = subject
        return {**out, "answer": text + ".", "notes": _cite(rows[-1:])}
    # where_was
    got = past.position_at(events, subject, t)
    out["answer_object_id"] = subject
    if got.value is None:
        state = "gone" if got.evidence else "not yet seen"
        text = f"{name(subject)} was {state} {_when(t)}"
    else:
        x, y, z = (round(float(v), 3) for v in got.value)  # type: ignore[union-attr]
        out["answer_position"] = (x, y, z)
        text = f"{name(subject)} was at ({x:.2f}, {y:.2f}, {z:.2f}) {_when(t)}"
    return {**out, "answer": text + ".", "notes": _cite(got.evidence)}


def _tally(rows: Sequence[dict]) -> str:
    """ "moved x3, put_in, taken_out": each kind once, in the order first seen, with its count."""
    counts: dict[str, int] = {}
    for e in rows:
        counts[e["kind"]] = counts.get(e["kind"], 0) + 1
    return ", ".join(kind if n == 1 else f"{kind} x{n}" for kind, n in counts.items())


def _one(phrase: str, events: Sequence[dict], world: World) -> int:
    ids = object_ids(phrase, events, world)
    if not ids:
        raise PlanningError("unknown object", f"nothing called {phrase!r} in memory, then or now")
    return ids[0]


def _last_restart(events: Sequence[dict]) -> float | None:
    starts = [e["stamp"] for e in events if e["kind"] == "session_started"]
    return starts[-1] if starts else None
