"""Whether a skill goal may start now, and what it becomes: the checks every
goal passes on arrival (the e-stop, a recent robot state, a usable
checkpoint), then its grounding in the scene graph (a pick or place into a
:class:`SkillGoal`, a look into a :class:`LookMotion`). A refused goal raises
:class:`GroundingError` with a reason; the running skill is not touched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from robot_memory.policy.goal_grounding import GroundingError, ground_goal
from robot_memory.policy.look_skill import LookDriver, LookMotion
from robot_memory.policy.runtime import RobotState
from robot_memory.policy.skill_goal import SkillGoal
from robot_memory.schemas import PolicyGoalMsg, SceneGraphMsg


@dataclass(frozen=True)
class GoalGate:
    """What admission needs from the node: how old a robot state may be, the
    look driver, the hand yaw of a joint vector, and why pick/place cannot run
    (None when a checkpoint is loaded)."""

    max_state_age_s: float
    looker: LookDriver
    hand_yaw: Callable[[np.ndarray], float]
    unavailable: str | None = None

    def admit(
        self,
        goal: PolicyGoalMsg,
        graph: SceneGraphMsg | None,
        newest: RobotState | None,
        now: float,
        estop: bool,
    ) -> SkillGoal | LookMotion:
        if estop:
            raise GroundingError("estop active", "goal refused while the e-stop is on", goal.id)
        if newest is None or now - newest.stamp > self.max_state_age_s:
            raise GroundingError("no robot state", "no recent /joint_states", goal.id)
        if goal.skill == "look":
            try:
                return self.looker.start(goal, graph, newest.q, newest.gripper_width, newest.stamp)
            except GroundingError as err:
                err.goal_id = goal.id
                raise
        if self.unavailable is not None:
            raise GroundingError("no checkpoint", self.unavailable, goal.id)
        return ground_goal(goal, graph, self.hand_yaw(newest.q))


def describe(goal: PolicyGoalMsg, target: SkillGoal | LookMotion) -> str:
    """One log line for a started goal."""
    if isinstance(target, LookMotion):
        return f"goal {goal.id}: look at {np.round(target.point, 3).tolist()}"
    where = np.round(target.target_position, 3).tolist()
    return f"goal {goal.id}: {goal.skill} at {where}, yaw {target.goal_yaw:.2f}"
