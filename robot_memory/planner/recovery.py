"""The executor's checks and recoveries, as plain functions (ROS-free). Moved
out of :mod:`robot_memory.planner.executor`; :class:`~robot_memory.planner.
executor.PlanExecutor` calls them and keeps the side effects (statuses,
counters, memory refreshes, the task result).

* verification in memory: the look before it (:func:`look_goal`), and whether
  memory shows the carried object at the place step's target (:func:`verify_place`);
* replanning a failed object: finding it again (:func:`find_again`: the same id,
  else a ``last_seen`` query by its label) and redoing its pick and place
  (:func:`retry_object`);
* before a step: following an object memory gave a new id
  (:func:`follow_new_id`), memory's current grasp yaw for a pick
  (:func:`refresh_goal_yaw`), and in the memoryless ablation the step
  re-grounded in what the cameras show now (:func:`reground_step`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from robot_memory.memory.shapes import shape_fits
from robot_memory.perception.labelling.base import UNKNOWN
from robot_memory.planner.grounding import near_colours, voted_names
from robot_memory.planner.plan import Plan, PlanStep
from robot_memory.planner.validation import PlanValidationError, validate_plan
from robot_memory.planner.world import MemoryPort, SkillOutcome, World
from robot_memory.schemas import MemoryObjectMsg, MemoryQuery, PolicyGoalMsg

LOG = logging.getLogger("robot_memory.planner.executor")  # the executor's log, as before


#: How far a missed grasp may push or roll an object before memory's search
#: stops taking an unnamed thing of its colour for it [m].
PUSHED_M = 0.25


def same_kind(a: MemoryObjectMsg, b: MemoryObjectMsg) -> bool:
    """``a`` may be ``b`` seen again: the same or a neighbouring colour word (a
    black handle reads grey in another light) and shape words of one family
    (a cube the labeller calls a box), in their labels or in any name that
    holds a large share of either's label votes (:func:`voted_names`: a bottle
    seen only from its top, taken for a can, still has votes as a bottle)."""
    return any(
        (ca == cb or near_colours(ca, cb)) and shape_fits({sa}, sb)
        for _, ca, sa, _ in voted_names(a)
        for _, cb, sb, _ in voted_names(b)
    )


# -- verification in memory -------------------------------------------------------
def look_goal(plan: Plan, i: int, step: PlanStep) -> PolicyGoalMsg | None:
    """The ``look`` at a place step's destination before its effect is checked
    (a place id, or the target position; None: a place on an object)."""
    if step.target and not step.target.lstrip("-").isdigit():
        return PolicyGoalMsg(id=f"{plan.id[:100]}-{i}-look", skill="look", target=step.target)
    if step.target_position is not None:
        return PolicyGoalMsg(
            id=f"{plan.id[:100]}-{i}-look",
            skill="look",
            target_position=step.target_position,
        )
    return None


def verify_place(
    world: World, step: PlanStep, carried: MemoryObjectMsg, tolerance: float
) -> SkillOutcome:
    """Whether memory (``world``, refreshed after the look) shows an object
    looking like the carried one (same colour and shape) in the place, or
    within ``tolerance`` (xy) of the position."""
    for obj in world.present():
        if obj.id != carried.id and not same_kind(obj, carried):
            continue
        if step.target_position is not None and world.near(obj, step.target_position, tolerance):
            return SkillOutcome("succeeded", "verified in memory")
        if step.target and step.target in world.places and world.in_place(obj, step.target):
            return SkillOutcome("succeeded", "verified in memory")
        if step.target.lstrip("-").isdigit():
            return SkillOutcome("succeeded", "placed on an object (not checked)")
    return SkillOutcome(
        "failed",
        f"not verified: memory does not show the {carried.label} at "
        f"{step.target or 'the position'}",
    )


# -- replanning a failed object ------------------------------------------------------
def find_again(
    world: World, obj: MemoryObjectMsg, memory: MemoryPort, plan: Plan
) -> MemoryObjectMsg | None:
    """The failed object in fresh memory: the same id if memory still holds it
    (not absent), else memory's ``last_seen`` answer for its label when that is
    the same kind of object; None when memory lost it."""
    found = world.objects.get(obj.id)
    if found is None or found.status == "absent":
        answer = memory.query(
            MemoryQuery(id=f"{plan.id[:90]}-regrounding", kind="last_seen", text=obj.label)
        )
        hits = [r for r in answer.results if answer.ok and r.get("status") != "absent"]
        found = world.objects.get(hits[0]["id"]) if hits else None
        if found is None or not same_kind(found, obj):
            return knocked_over(world, obj)
    return found


def knocked_over(world: World, obj: MemoryObjectMsg) -> MemoryObjectMsg | None:
    """``obj`` pushed by a missed grasp into a pose its name no longer fits (a
    bottle on its side the labeller calls an "object"): the nearest present
    object first seen since ``obj`` was, of its colour, within ``PUSHED_M`` of
    where it stood, that memory names nothing, or names ``obj``'s kind in its
    votes. None when there is none."""
    here = np.asarray(obj.centroid[:2], dtype=float)

    def fits(o: MemoryObjectMsg) -> bool:
        if o.id == obj.id or o.first_seen < obj.last_seen:
            return False
        if not (o.color == obj.color or near_colours(o.color, obj.color)):
            return False
        voted = any(obj.shape in label.split() for label in o.label_votes)
        return o.shape == UNKNOWN or voted

    near = [
        (float(np.linalg.norm(np.asarray(o.centroid[:2]) - here)), o.id, o)
        for o in world.present()
        if fits(o)
    ]
    near = [n for n in near if n[0] <= PUSHED_M]
    return min(near)[2] if near else None


def retry_object(
    plan: Plan, i: int, obj: MemoryObjectMsg, found: MemoryObjectMsg, reason: str, world: World
) -> tuple[Plan, int] | None:
    """The plan with the failed object's steps from its pick to its place again
    (on ``found``'s id, after a look at it), and the index to resume at; None
    when the rest of that plan does not validate."""
    # the steps on this object from its pick to its place, again
    start = max(
        (
            k
            for k in range(i + 1)
            if plan.steps[k].skill == "pick" and plan.steps[k].object_id == obj.id
        ),
        default=i,
    )
    end = next(
        (
            k
            for k in range(i, len(plan.steps))
            if plan.steps[k].skill == "place" and plan.steps[k].object_id == obj.id
        ),
        i,
    )
    redo = [s.model_copy(update={"object_id": found.id}) for s in plan.steps[start : end + 1]]
    if redo and redo[0].skill == "pick":
        redo.insert(0, PlanStep(skill="look", object_id=found.id, why=f"replan: {reason}"[:240]))
    steps = plan.steps[:start] + redo + plan.steps[end + 1 :]
    new = plan.model_copy(
        update={
            "steps": steps,
            "attempt": plan.attempt + 1,
            "id": f"{plan.id.split('~')[0]}~{plan.attempt + 1}",
        }
    )
    try:
        validate_plan(new.model_copy(update={"steps": steps[start:]}), world, None)
    except PlanValidationError as err:
        LOG.info("replan invalid: %s", err)
        return None
    return new, start


# -- before a step ---------------------------------------------------------------------
def reground_step(step: PlanStep, known: dict[int, MemoryObjectMsg], new: World) -> PlanStep | None:
    """Memoryless ablation: the same step on what the cameras show now. The
    object in the hand (a place) need not be in view: its id only serves the
    verification."""
    update: dict = {}
    if step.object_id is not None:
        ref = known.get(step.object_id)
        match = [o for o in new.present() if ref is not None and same_kind(o, ref)]
        if match:
            update["object_id"] = match[0].id
        elif step.skill != "place":
            return None
    if step.target.lstrip("-").isdigit():
        ref = known.get(int(step.target))
        match = [o for o in new.objects.values() if ref is not None and same_kind(o, ref)]
        if not match:
            return None
        update["target"] = str(match[0].id)
    return step.model_copy(update=update)


def follow_new_id(
    plan: Plan,
    i: int,
    step: PlanStep,
    known: dict[int, MemoryObjectMsg],
    world: World,
    memory: MemoryPort,
    count: Callable[[str], None],
) -> tuple[Plan, PlanStep]:
    """Memory may have given an object a new id (it was seen somewhere else
    after a missed grasp, and the old entry went absent): follow it, by its
    colour and shape nearest the old position, else by a ``last_seen`` query.
    Returns the plan (its steps on the old id now on the new one) and step
    ``i`` of it; ``count("followed_ids")`` when an id was followed."""
    assert step.object_id is not None
    current = world.objects.get(step.object_id)
    ref = known.get(step.object_id)
    if (current is not None and current.status != "absent") or ref is None:
        return plan, step
    candidates = [o for o in world.present() if same_kind(o, ref)]
    if not candidates:
        answer = memory.query(
            MemoryQuery(id=f"{plan.id[:90]}-follow-{i}", kind="last_seen", text=ref.label)
        )
        ids = [r.get("id") for r in answer.results if answer.ok and r.get("status") != "absent"]
        candidates = [world.objects[k] for k in ids if k in world.objects]
        candidates = [o for o in candidates if same_kind(o, ref)]
    if not candidates:
        return plan, step
    d = [np.linalg.norm(np.subtract(o.centroid, ref.centroid)) for o in candidates]
    found = candidates[int(np.argmin(d))]
    count("followed_ids")
    old_id = step.object_id
    steps = [
        s.model_copy(update={"object_id": found.id}) if s.object_id == old_id else s
        for s in plan.steps
    ]
    return plan.model_copy(update={"steps": steps}), steps[i]


def refresh_goal_yaw(
    plan: Plan, i: int, step: PlanStep, known: dict[int, MemoryObjectMsg], world: World
) -> tuple[Plan, PlanStep]:
    """A pick whose hand yaw is memory's estimate from when it was planned
    takes memory's estimate now (a look since may have corrected a yaw
    from far, partial views; None: the policy's default). Returns the plan
    and step ``i`` of it."""
    then, now = known.get(step.object_id), world.objects.get(step.object_id)  # type: ignore[arg-type]
    if step.skill != "pick" or then is None or now is None or step.goal_yaw is None:
        return plan, step
    if then.yaw is None or abs(then.yaw - step.goal_yaw) > 1e-6 or now.yaw == then.yaw:
        return plan, step  # not memory's yaw (or unchanged)
    step = step.model_copy(update={"goal_yaw": now.yaw})
    steps = list(plan.steps)
    steps[i] = step
    return plan.model_copy(update={"steps": steps}), step


__all__ = [
    "find_again",
    "follow_new_id",
    "look_goal",
    "refresh_goal_yaw",
    "reground_step",
    "retry_object",
    "same_kind",
    "verify_place",
]
