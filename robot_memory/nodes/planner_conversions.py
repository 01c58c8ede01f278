"""robot_memory_interfaces messages <-> the planner core's validated types:
``/planner/plan`` (:class:`~robot_memory.planner.plan.Plan`), ``/planner/status``
(:class:`~robot_memory.planner.plan.PlannerStatusMsg`) and the
``ExecuteInstruction`` action's feedback and result (node layer only).

``*_from_msg`` builds the core's pydantic model from a message and validates
it (NaN, bounds, an unknown skill or state): anything wrong raises
:class:`robot_memory.schemas.PayloadError` (``invalid payload``).
``*_to_msg`` is the reverse, for publishers.
"""

from __future__ import annotations

import array
from typing import Any

from robot_memory_interfaces.action import ExecuteInstruction
from robot_memory_interfaces.msg import Plan as PlanMsg
from robot_memory_interfaces.msg import PlannerStatus, PlanStep

from robot_memory.nodes.conversions import from_time, to_time
from robot_memory.nodes.memory_conversions import optional, point, xyz
from robot_memory.payload_codec import validate_payload
from robot_memory.planner.plan import Plan, PlannerStatusMsg
from robot_memory.planner.plan import PlanStep as CorePlanStep


# -- plan steps ------------------------------------------------------------------
def plan_step_to_msg(step: CorePlanStep) -> PlanStep:
    return PlanStep(
        skill=step.skill,
        object_id=[] if step.object_id is None else [int(step.object_id)],
        target=step.target,
        target_position=[] if step.target_position is None else [point(step.target_position)],
        goal_yaw=array.array("d", [] if step.goal_yaw is None else [float(step.goal_yaw)]),
        why=step.why,
    )


def plan_step_fields(msg: PlanStep) -> dict[str, Any]:
    """The fields of a :class:`PlanStep` core model (validated by the caller)."""
    position = optional(msg.target_position)
    return {
        "skill": msg.skill,
        "object_id": optional(msg.object_id),
        "target": msg.target,
        "target_position": None if position is None else xyz(position),
        "goal_yaw": optional(msg.goal_yaw),
        "why": msg.why,
    }


# -- /planner/plan ---------------------------------------------------------------
def plan_to_msg(plan: Plan) -> PlanMsg:
    return PlanMsg(
        id=plan.id,
        instruction=plan.instruction,
        backend=plan.backend,
        kind=plan.kind,
        steps=[plan_step_to_msg(s) for s in plan.steps],
        answer=plan.answer,
        answer_object_id=[] if plan.answer_object_id is None else [int(plan.answer_object_id)],
        answer_position=[] if plan.answer_position is None else [point(plan.answer_position)],
        answer_place=plan.answer_place,
        experiences=list(plan.experiences),
        notes=list(plan.notes),
        attempt=plan.attempt,
    )


def plan_from_msg(msg: PlanMsg) -> Plan:
    position = optional(msg.answer_position)
    data = {
        "id": msg.id,
        "instruction": msg.instruction,
        "backend": msg.backend,
        "kind": msg.kind,
        "steps": [plan_step_fields(s) for s in msg.steps],
        "answer": msg.answer,
        "answer_object_id": optional(msg.answer_object_id),
        "answer_position": None if position is None else xyz(position),
        "answer_place": msg.answer_place,
        "experiences": list(msg.experiences),
        "notes": list(msg.notes),
        "attempt": msg.attempt,
    }
    return validate_payload(Plan, data)


# -- /planner/status -------------------------------------------------------------
def planner_status_to_msg(status: PlannerStatusMsg) -> PlannerStatus:
    return PlannerStatus(
        plan_id=status.plan_id,
        instruction=status.instruction,
        state=status.state,
        step=status.step,
        n_steps=status.n_steps,
        skill=status.skill,
        progress=float(status.progress),
        message=status.message,
        reason=status.reason,
        attempt=status.attempt,
        stamp=to_time(status.stamp),
    )


def planner_status_from_msg(msg: PlannerStatus) -> PlannerStatusMsg:
    data = {
        "plan_id": msg.plan_id,
        "instruction": msg.instruction,
        "state": msg.state,
        "step": msg.step,
        "n_steps": msg.n_steps,
        "skill": msg.skill,
        "progress": msg.progress,
        "message": msg.message,
        "reason": msg.reason,
        "attempt": msg.attempt,
        "stamp": from_time(msg.stamp),
    }
    return validate_payload(PlannerStatusMsg, data)


# -- /planner/execute (action) ---------------------------------------------------
def feedback_from_status(
    status: PlannerStatusMsg, plan: Plan | None
) -> ExecuteInstruction.Feedback:
    """The action's feedback for one status of the running instruction."""
    return ExecuteInstruction.Feedback(
        state=status.state,
        plan=plan_to_msg(plan) if plan is not None else PlanMsg(),
        step=status.step,
        n_steps=status.n_steps,
        progress=float(status.progress),
        replans=status.attempt,
        message=status.message,
    )


def execute_result(
    state: str, reason: str = "", plan: Plan | None = None
) -> ExecuteInstruction.Result:
    """The action's result: ``success`` for succeeded / answered; a question's
    answer in ``answer``."""
    answer = plan.answer if plan is not None and plan.kind == "answer" else ""
    return ExecuteInstruction.Result(
        success=state in ("succeeded", "answered"),
        state=state,
        reason=reason[:1000],
        answer=answer,
        plan=plan_to_msg(plan) if plan is not None else PlanMsg(),
    )


def result_plan(result: ExecuteInstruction.Result) -> Plan | None:
    """The plan of a result or feedback (None when it carries none)."""
    return plan_from_msg(result.plan) if result.plan.id else None


__all__ = [
    "execute_result",
    "feedback_from_status",
    "plan_from_msg",
    "plan_step_to_msg",
    "plan_to_msg",
    "planner_status_from_msg",
    "planner_status_to_msg",
    "result_plan",
]
