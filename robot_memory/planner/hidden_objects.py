""" "The object that was under the box": what memory recalls under a container (ROS-free).

:func:`hidden_under` grounds the container the phrase names, then asks memory
what was under (``in``) it: the relations now, the relation history, and, as a
fallback, objects standing where the container once stood that memory knew
before it came. When the words fit several containers equally ("the box" in a
cell with a cover and a large cardboard box, or one cover memory holds twice),
the one memory recalls something under decides; none or several: the planner
says so rather than guess.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from robot_memory.memory.colours import SHADE, same_colour
from robot_memory.planner.grounding import Grounder, canonical_words
from robot_memory.planner.language import ObjectRef
from robot_memory.planner.plan import PlanningError
from robot_memory.planner.plan_state import PlanState, memory_rows, xy
from robot_memory.planner.world import MemoryPort, World
from robot_memory.schemas import MemoryObjectMsg

Recall = tuple[dict[int, tuple[float, str]], dict[int, str]]  # (seen, skipped)


def hidden_under(
    grounder: Grounder,
    ref: ObjectRef,
    world: World,
    memory: MemoryPort | None,
    state: PlanState,
) -> MemoryObjectMsg:
    """The object ``ref`` means ("the (red) thing that was under the box");
    raises PlanningError ("no such object", "ambiguous", "object covered")."""
    try:
        cont, why = grounder.container(ref.hidden_in, world)
        conts = [cont]
        state.notes.append(why)
    except PlanningError as err:
        if err.reason != "ambiguous":
            raise
        conts = grounder.close_containers(ref.hidden_in, world)
    recalls = [(c, recall_under(c, world, memory)) for c in conts]
    if len(conts) > 1:
        with_something = [(c, r) for c, r in recalls if r[0]]
        names = ", ".join(f"#{c.id} {c.label}" for c in conts)
        if len(with_something) != 1:
            what = "nothing" if not with_something else "something"
            raise PlanningError(
                "ambiguous" if with_something else "no such object",
                f"{ref.hidden_in!r} could be {names}; memory recalls {what} under "
                + ("each" if with_something else "any of them"),
            )
        recalls = with_something
        state.notes.append(
            f"{ref.hidden_in!r} could be {names}: only #{recalls[0][0].id} had something under it"
        )
    cont, (seen, skipped) = recalls[0]
    if skipped:
        state.notes.append(
            "not what was under it: "
            + ", ".join(f"#{i} ({why})" for i, why in sorted(skipped.items()))
        )
    if not seen:
        detail = f"memory recalls nothing under the {cont.label}"
        if skipped:
            detail += " that is still here"
        raise PlanningError("no such object", detail)
    ids = sorted(seen, key=lambda i: -seen[i][0])
    if canonical_words(ref.text):  # "the red thing that was under the box"
        pool = [world.objects[i] for i in ids]
        match, _ = grounder.ground(ref.text, world, pool)
        ids = [match.obj.id]
    sid = ids[0]
    obj = world.objects[sid]
    others = ", ".join(f"#{i}" for i in ids[1:])
    state.notes.append(
        f"under the {cont.label}: #{obj.id} {obj.label} ({seen[sid][1]}, "
        f"last {seen[sid][0]:.1f} s)" + (f"; earlier also {others}" if others else "")
    )
    if world.is_covered(obj.id):
        raise PlanningError("object covered", f"the {obj.label} is still under the {cont.label}")
    return obj


def recall_under(cont: MemoryObjectMsg, world: World, memory: MemoryPort | None) -> Recall:
    """(subject -> (last confirmed, source), subject -> why it cannot be it) of
    what memory recalls under ``cont``."""
    seen: dict[int, tuple[float, str]] = {}
    skipped: dict[int, str] = {}

    def add(subject: object, stamp: float, source: str) -> None:
        try:
            sid = int(subject)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            return
        if sid == cont.id:
            return
        bad = not_hidden_thing(world, cont, sid)
        if bad:
            skipped[sid] = bad
        elif stamp >= seen.get(sid, (-math.inf, ""))[0]:
            seen[sid] = (stamp, source)

    for r in world.graph.relations:
        if r.relation == "in" and r.target == cont.id:
            add(r.subject, r.last_confirmed, "memory: in it now")
    for row in memory_rows(memory, kind="relation_history", target=str(cont.id)):
        if row.get("relation") == "in" and str(row.get("target")) == str(cont.id):
            add(row.get("subject"), float(row.get("last_confirmed", 0.0)), "relation history")
    if not seen:
        under_past_poses(cont, world, memory, add)
    return seen, skipped


def not_hidden_thing(world: World, cont: MemoryObjectMsg, sid: int) -> str:
    """Why memory object ``sid``, once ``in`` the container, cannot be the
    thing that was under it ("" when it can): gone from memory (merged into
    another object or pruned), believed gone, a container itself, or a piece
    of the container seen on its own (a shaded wall reads black, the top a
    white cylinder: the container's colour family, or black)."""
    obj = world.objects.get(sid)
    if obj is None:
        return "no longer in memory"
    if obj.status == "absent":
        return "gone"
    if obj.container:
        return "a container"
    if same_colour(obj.color, cont.color) or obj.color in SHADE:
        return f"a {obj.color} piece of the {cont.label}"
    return ""


def under_past_poses(
    cont: MemoryObjectMsg,
    world: World,
    memory: MemoryPort | None,
    add: Callable[[object, float, str], None],
) -> None:
    """Fallback: objects that stand where the container once stood, and that
    memory knew before the container came there (not something put on that
    spot after it left)."""
    rows = memory_rows(memory, kind="history", object_id=cont.id)
    half = (np.asarray(cont.bbox_max) - np.asarray(cont.bbox_min))[:2] / 2.0
    for pose in rows[0].get("poses", []) if rows else []:
        p, stamp = xy(pose["position"]), float(pose["stamp"])
        if np.linalg.norm(p - xy(cont.centroid)) < 0.02:
            continue  # where it is now: anything there is covered, not "was"
        for o in world.present():
            if o.first_seen < stamp and np.all(np.abs(xy(o.centroid) - p) <= half):
                add(o.id, stamp, "stood under its earlier position")


__all__ = ["hidden_under", "not_hidden_thing", "recall_under"]
