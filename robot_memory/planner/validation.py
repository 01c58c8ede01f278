"""Check a plan before anything moves (ROS-free).

:func:`validate_plan` runs the plan symbolically over the remembered scene:

* **schema**: :func:`parse_plan` validates JSON from any backend (a VLM's
  answer included) into a :class:`~robot_memory.planner.plan.Plan`;
* **whitelist**: only the skills in ``SKILLS``; unknown fields are refused;
* **grounding**: every ``object_id`` exists in memory and is not absent; every
  ``target`` is a place of the cell or an existing object id; every
  ``target_position`` is finite and inside the reachable table area;
* **preconditions**: ``pick`` needs an empty hand and an object that is not
  held nor under a cover; ``place`` needs the hand to hold that object; the
  plan must end with the hand empty.

Every refusal raises :class:`PlanValidationError` with a short ``reason``
(counted in diagnostics) and the index of the offending step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import ValidationError

from robot_memory.payload_codec import decode_json, first_error, json_depth_exceeds
from robot_memory.planner.plan import SKILLS, Plan, PlanStep
from robot_memory.planner.world import World
from robot_memory.schemas import MAX_JSON_DEPTH, PayloadError

#: Longest plan text accepted from a backend (a VLM answer) [characters].
MAX_PLAN_CHARS = 256_000

#: Where a place at a position may be asked for: the table area the policy's
#: demonstrations covered, grown a little [m, world frame].
PLACE_X = (-0.15, 0.32)
PLACE_Y = (-0.36, 0.36)
PLACE_Z = (-0.02, 0.3)


class PlanValidationError(ValueError):
    def __init__(self, reason: str, detail: str = "", step: int | None = None) -> None:
        where = "" if step is None else f" (step {step + 1})"
        super().__init__(f"{reason}{where}: {detail}" if detail else f"{reason}{where}")
        self.reason = reason
        self.detail = detail
        self.step = step


@dataclass(frozen=True)
class ValidationLimits:
    place_x: tuple[float, float] = PLACE_X
    place_y: tuple[float, float] = PLACE_Y
    place_z: tuple[float, float] = PLACE_Z


def decode_plan_json(text: str) -> Any:
    """JSON text from a backend, through :func:`robot_memory.payload_codec.decode_json`
    (size, nesting, huge integers); raises PlanValidationError "malformed json"."""
    try:
        return decode_json(text, MAX_PLAN_CHARS, MAX_JSON_DEPTH)
    except PayloadError as exc:
        raise PlanValidationError("malformed json", exc.detail[:200] or exc.reason) from None


def parse_plan(data: str | dict) -> Plan:
    """A Plan from JSON text or a dict; raises PlanValidationError (never anything else)."""
    if isinstance(data, str):
        data = decode_plan_json(data)
    if not isinstance(data, dict):
        raise PlanValidationError("malformed json", "a plan is a JSON object")
    if json_depth_exceeds(data, MAX_JSON_DEPTH):
        raise PlanValidationError("malformed json", f"nested deeper than {MAX_JSON_DEPTH}")
    steps = data.get("steps")
    if isinstance(steps, list):
        for i, step in enumerate(steps):
            skill = step.get("skill") if isinstance(step, dict) else None
            if skill not in SKILLS:
                raise PlanValidationError(
                    "unknown skill", f"{str(skill)[:40]!r} is not one of {list(SKILLS)}", i
                )
    try:
        return Plan.model_validate(data)
    except ValidationError as exc:
        raise PlanValidationError("invalid plan", first_error(exc, "plan")) from exc


def _object(world: World, step: PlanStep, i: int) -> None:
    if step.object_id is None:
        raise PlanValidationError("missing object", f"{step.skill} needs object_id", i)
    obj = world.objects.get(step.object_id)
    if obj is None:
        raise PlanValidationError("unknown object", f"memory holds no object {step.object_id}", i)
    if obj.status == "absent":
        raise PlanValidationError(
            "object absent", f"object {obj.id} ({obj.label}) is remembered as gone", i
        )


def _target(world: World, step: PlanStep, i: int, limits: ValidationLimits) -> None:
    if step.target_position is not None:
        p = np.asarray(step.target_position, dtype=float)
        inside = (
            limits.place_x[0] <= p[0] <= limits.place_x[1]
            and limits.place_y[0] <= p[1] <= limits.place_y[1]
            and limits.place_z[0] <= p[2] <= limits.place_z[1]
        )
        if not inside:
            raise PlanValidationError(
                "target out of reach",
                f"{[round(float(v), 3) for v in p]} is outside the table area",
                i,
            )
        return
    if not step.target:
        raise PlanValidationError(
            "missing target", f"{step.skill} needs target or target_position", i
        )
    if step.target in world.places:
        return
    text = step.target.strip()
    if text.lstrip("-").isdigit():
        oid = int(text)
        if oid not in world.objects or world.objects[oid].status == "absent":
            raise PlanValidationError("unknown target", f"memory holds no object {oid}", i)
        if step.skill == "place" and oid == step.object_id:
            raise PlanValidationError("invalid target", "an object cannot go onto itself", i)
        return
    raise PlanValidationError(
        "unknown target",
        f"{text[:40]!r} is no place ({sorted(world.places)}) nor an object id",
        i,
    )


def validate_plan(
    plan: Plan, world: World, held: int | None = None, limits: ValidationLimits | None = None
) -> Plan:
    """Return ``plan`` when it can run from this world with ``held`` in the hand; else raise."""
    limits = limits or ValidationLimits()
    if plan.kind == "answer":
        if plan.steps:
            raise PlanValidationError("invalid plan", "an answer has no steps")
        if plan.answer_object_id is not None and plan.answer_object_id not in world.objects:
            raise PlanValidationError(
                "unknown object", f"answer names object {plan.answer_object_id}"
            )
        return plan
    if not plan.steps:
        raise PlanValidationError("empty plan", "a motion plan needs at least one step")
    hand = held
    for i, step in enumerate(plan.steps):
        if step.skill == "pick":
            _object(world, step, i)
            if hand is not None:
                raise PlanValidationError("hand not empty", f"pick while holding object {hand}", i)
            if world.is_covered(step.object_id):  # type: ignore[arg-type]
                raise PlanValidationError(
                    "object covered", f"object {step.object_id} is under a cover", i
                )
            hand = step.object_id
        elif step.skill == "place":
            _object(world, step, i)
            if hand != step.object_id:
                held_text = "nothing" if hand is None else f"object {hand}"
                raise PlanValidationError(
                    "not holding", f"place of {step.object_id} while holding {held_text}", i
                )
            _target(world, step, i, limits)
            hand = None
        else:  # look
            if step.object_id is not None and step.object_id not in world.objects:
                raise PlanValidationError(
                    "unknown object", f"memory holds no object {step.object_id}", i
                )
            if step.object_id is None:
                _target(world, step, i, limits)
    if hand is not None:
        raise PlanValidationError("ends holding", f"the plan ends with object {hand} in the hand")
    return plan


__all__ = ["PlanValidationError", "ValidationLimits", "parse_plan", "validate_plan"]
