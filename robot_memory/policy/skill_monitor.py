"""When is a skill done? Proprioceptive checks the policy node and the
closed-loop evaluation share (the evaluation then asks the simulator's ground
truth whether the effect is really there).

* pick succeeded: the gripper was commanded closed, the fingers stopped on
  something (not fully closed) and the TCP rose ``lift_m`` above the target;
  failed: the fingers closed on nothing.
* place succeeded: holding, the hand came down over the target (near the
  release height), then the gripper opened and the TCP retreated ``retreat_m``
  above the release height.
* either: failed after ``timeout_s``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_memory.policy.skill_goal import RELEASE_TCP_HEIGHT, SkillGoal

RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"


@dataclass
class MonitorConfig:
    timeout_s: float = 15.0
    lift_m: float = 0.12
    retreat_m: float = 0.05
    empty_grasp_m: float = 0.004  # measured width below this with the gripper closed: missed
    closed_settle_s: float = 0.5  # fingers need this long after a close command
    place_xy_m: float = 0.03  # place: the hand came this close to the target (xy) ...
    lowered_m: float = 0.03  # ... and this close to the release height, holding

    def __post_init__(self) -> None:
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")


class SkillMonitor:
    def __init__(self, goal: SkillGoal, start_time: float, config: MonitorConfig | None = None):
        self.goal = goal
        self.config = config or MonitorConfig()
        self.start = start_time
        self.closed_since: float | None = None
        self.lowered = False
        self.released = False
        self.state = RUNNING
        self.reason = ""

    def update(
        self, t: float, gripper_width: float, commanded_width: float, tcp: np.ndarray
    ) -> str:
        if self.state != RUNNING:
            return self.state
        c, target = self.config, self.goal.target_position
        closed = commanded_width < 0.04
        if closed and self.closed_since is None:
            self.closed_since = t
        elif not closed:
            self.closed_since = None
            self.released = self.released or (self.goal.skill == "place" and self.lowered)
        release_z = target[2] + RELEASE_TCP_HEIGHT
        near_xy = np.linalg.norm(np.asarray(tcp[:2]) - target[:2]) <= c.place_xy_m
        if closed and near_xy and tcp[2] <= release_z + c.lowered_m:
            self.lowered = True
        settled = self.closed_since is not None and t - self.closed_since >= c.closed_settle_s
        if self.goal.skill == "pick":
            if settled and gripper_width < c.empty_grasp_m:
                return self._finish(FAILED, "the gripper closed on nothing")
            if settled and tcp[2] >= target[2] + c.lift_m:
                return self._finish(SUCCEEDED, "object grasped and lifted")
        elif self.released and tcp[2] >= release_z + c.retreat_m:
            return self._finish(SUCCEEDED, "object released and the hand retreated")
        if t - self.start > c.timeout_s:
            return self._finish(FAILED, f"timed out after {c.timeout_s:.0f} s")
        return RUNNING

    def _finish(self, state: str, reason: str) -> str:
        self.state, self.reason = state, reason
        return state


__all__ = ["FAILED", "RUNNING", "SUCCEEDED", "MonitorConfig", "SkillMonitor"]
