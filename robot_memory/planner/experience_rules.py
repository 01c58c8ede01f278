"""Apply experience rules to a plan (ROS-free; shared by the offline and VLM backends).

An :class:`~robot_memory.planner.experience.Experience` whose object matches a
picked object's (colour, shape) changes the plan by its rule:

* ``look_before_pick``: a ``look`` at that object right before its ``pick``
  (memory refreshes its position first);
* ``extra_attempt``: nothing in the steps (the executor allows one more try);
  the experience is listed in ``plan.experiences`` all the same.
"""

from __future__ import annotations

from robot_memory.planner.plan import MAX_STEPS, Plan, PlanStep
from robot_memory.planner.world import World


def _matches(exp, colour: str, shape: str) -> bool:
    fn = getattr(exp, "matches_object", None)
    return bool(fn(colour, shape)) if callable(fn) else False


def apply_experience_rules(plan: Plan, world: World, experiences: list) -> Plan:
    """A copy of ``plan`` with the rules of matching ``experiences`` applied."""
    if plan.kind != "motion" or not experiences:
        return plan
    steps: list[PlanStep] = []
    used: list[str] = list(plan.experiences)
    notes = list(plan.notes)
    room = MAX_STEPS - len(plan.steps)
    for step in plan.steps:
        obj = world.objects.get(step.object_id) if step.object_id is not None else None
        if step.skill == "pick" and obj is not None:
            hits = [e for e in experiences if _matches(e, obj.color, obj.shape)]
            for e in hits:
                if e.id not in used:
                    used.append(e.id)
            looks = [e for e in hits if e.rule == "look_before_pick"]
            already = bool(steps) and steps[-1].skill == "look" and steps[-1].object_id == obj.id
            if looks and not already:
                if room > 0:
                    e = looks[0]
                    why = f"experience {e.id}: {e.reflection or e.reason}"
                    steps.append(PlanStep(skill="look", object_id=obj.id, why=why[:240]))
                    room -= 1
                else:
                    notes.append(f"no room for a look before picking #{obj.id} (experience)")
        steps.append(step)
    return plan.model_copy(update={"steps": steps, "experiences": used, "notes": notes})


__all__ = ["apply_experience_rules"]
