"""robot_memory_interfaces RunSkill goals and PolicyStatus messages <-> the
core's validated types (node layer only).

* ``skill_goal_to_msg(goal)``: a :class:`~robot_memory.schemas.PolicyGoalMsg`
  -> a ``RunSkill.Goal`` (the goal's ``id`` does not travel: the action's goal
  UUID names it);
* ``skill_goal_from_msg(goal, goal_id)``: a ``RunSkill.Goal`` -> a validated
  PolicyGoalMsg with ``id = goal_id``; NaN or infinite values, a yaw out of
  bounds, an unknown skill: :class:`~robot_memory.schemas.PayloadError`
  (``invalid payload``). Whether the target exists in memory and lies inside
  the workspace is the grounding's check (``GroundingError``);
* ``policy_status_to_msg / policy_status_from_msg``: ``/policy/status``;
* ``skill_result(state, reason, chunks)``: the action's result (success is
  ``state == "succeeded"``).
"""

from __future__ import annotations

from robot_memory_interfaces.action import RunSkill
from robot_memory_interfaces.msg import PolicyStatus

from robot_memory.nodes.conversions import from_time, to_time
from robot_memory.nodes.memory_conversions import optional, point, xyz
from robot_memory.payload_codec import validate_payload
from robot_memory.schemas import PayloadError, PolicyGoalMsg, PolicyStatusMsg

#: The result states of a RunSkill goal.
SUCCEEDED, FAILED, CANCELED, REJECTED = "succeeded", "failed", "canceled", "rejected"


def skill_goal_to_msg(goal: PolicyGoalMsg) -> RunSkill.Goal:
    msg = RunSkill.Goal(skill=goal.skill, target=goal.target)
    if goal.object_id is not None:
        msg.object_id = [int(goal.object_id)]
    if goal.target_position is not None:
        msg.target_position = [point(goal.target_position)]
    if goal.goal_yaw is not None:
        msg.goal_yaw = [float(goal.goal_yaw)]
    return msg


def skill_goal_from_msg(goal: RunSkill.Goal, goal_id: str) -> PolicyGoalMsg:
    """The validated goal (raises PayloadError)."""
    position = optional(goal.target_position)
    object_id = optional(goal.object_id)
    yaw = optional(goal.goal_yaw)
    data = {
        "id": goal_id,
        "skill": goal.skill,
        "object_id": None if object_id is None else int(object_id),
        "target": goal.target,
        "target_position": None if position is None else xyz(position),
        "goal_yaw": None if yaw is None else float(yaw),
    }
    return validate_payload(PolicyGoalMsg, data)


def policy_status_to_msg(status: PolicyStatusMsg) -> PolicyStatus:
    return PolicyStatus(
        goal_id=status.goal_id,
        state=status.state,
        reason=status.reason,
        skill=status.skill,
        object_id=[] if status.object_id is None else [int(status.object_id)],
        target=status.target,
        chunks=int(status.chunks),
        stamp=to_time(status.stamp),
    )


def policy_status_from_msg(msg: PolicyStatus) -> PolicyStatusMsg:
    """The validated status (raises PayloadError, e.g. an unknown state)."""
    data = {
        "goal_id": msg.goal_id,
        "state": msg.state,
        "reason": msg.reason,
        "skill": msg.skill,
        "object_id": int(msg.object_id[0]) if len(msg.object_id) else None,
        "target": msg.target,
        "chunks": int(msg.chunks),
        "stamp": from_time(msg.stamp),
    }
    return validate_payload(PolicyStatusMsg, data)


def skill_result(state: str, reason: str = "", chunks: int = 0) -> RunSkill.Result:
    return RunSkill.Result(
        success=state == SUCCEEDED, state=state, reason=reason, chunks=max(int(chunks), 0)
    )


__all__ = [
    "CANCELED",
    "FAILED",
    "REJECTED",
    "SUCCEEDED",
    "PayloadError",
    "policy_status_from_msg",
    "policy_status_to_msg",
    "skill_goal_from_msg",
    "skill_goal_to_msg",
    "skill_result",
]
