"""The policy node's ``look`` skill: goal -> look point -> IK -> a joint trajectory
sent as action chunks through the safety node, and the outcome.

The motion itself is :mod:`robot_memory.policy.look_skill` (ROS-free, shared
with the in-process evaluation); this module adds what the node needs:

* the look point of a goal over the latest scene graph: ``target_position``;
  else ``target`` a place id -> the top centre of its box, or an object id
  (text) -> its centroid; else ``object_id`` -> its centroid;
* the trajectory on the node's clock, starting at the observation it was
  planned from, published as a ``JointTrajectory`` on ``/policy/action_chunk``
  (the 7 arm joints; no gripper, a look leaves the hand as it is, except a
  hand that closed on nothing, which the look opens: a pick after a missed
  grasp then starts open, as every demonstrated pick did) stamped with
  the newest joint-state stamp. The safety node checks it like any chunk
  (limits, velocities from its setpoint, stamps) and its watchdog holds the
  arm 1.5 s after the last accepted chunk, so while the motion lasts the
  remaining points are sent again every ``resend_period_s``;
* the outcome: succeeded once the trajectory has ended and the measured
  joints stay within ``tolerance`` of the target, nearly still, for
  ``settle_s``; failed "timeout" when that has not happened ``timeout_s``
  after the trajectory's end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from builtin_interfaces.msg import Time
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from robot_memory.nodes.safety_node import to_duration
from robot_memory.policy.goal_grounding import (
    GroundingError,
    check_target,
    find_object,
    find_place,
    top_centre,
)
from robot_memory.policy.look_skill import look_target, look_trajectory
from robot_memory.policy.skill_monitor import MonitorConfig
from robot_memory.robot.ik import IKError, PandaIK
from robot_memory.robot.panda import ARM_JOINTS, GRIPPER_WIDTH_JOINT, HOME_GRIPPER_WIDTH
from robot_memory.schemas import PolicyGoalMsg, SceneGraphMsg

if TYPE_CHECKING:  # the runtime imports torch
    from robot_memory.policy.runtime import RobotState

RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"


@dataclass(frozen=True)
class LookConfig:
    tolerance: float = 0.02  # [rad] every arm joint this close to the target
    still_speed: float = 0.05  # [rad/s] "nearly still": no joint faster
    settle_s: float = 0.3  # both for this long
    timeout_s: float = 5.0  # after the trajectory's end
    # < the safety watchdog's expected chunk interval (0.7 s): a look is never
    # mistaken for a stalled policy
    resend_period_s: float = 0.5
    #: [m] a measured gripper width below this is a hand closed on nothing:
    #: the look opens it (the pick monitor's empty-grasp width)
    empty_hand_m: float = MonitorConfig.empty_grasp_m


@dataclass
class LookMotion:
    goal: PolicyGoalMsg
    point: np.ndarray  # the table point looked at [m]
    q_goal: np.ndarray
    times: np.ndarray  # absolute node times of the points [s]
    positions: np.ndarray  # (n, 7)
    last_sent: float = -np.inf
    settled_since: float | None = None
    q_prev: np.ndarray | None = None
    t_prev: float = -np.inf
    chunks: int = 0
    gripper_width: float | None = None  # command the gripper to this width too [m]

    @property
    def end(self) -> float:
        return float(self.times[-1])


def look_point(goal: PolicyGoalMsg, graph: SceneGraphMsg | None) -> np.ndarray:
    """Where ``goal`` wants the wrist camera to look, inside the cell's
    workspace (raises GroundingError)."""
    return check_target(_look_point(goal, graph), "look target")


def _look_point(goal: PolicyGoalMsg, graph: SceneGraphMsg | None) -> np.ndarray:
    if goal.target_position is not None:
        return np.asarray(goal.target_position, dtype=float)
    if not goal.target and goal.object_id is None:
        raise GroundingError("no target", "look needs target, object_id or target_position")
    if graph is None:
        raise GroundingError("no scene graph", "no /memory/scene_graph received yet")
    if goal.target:
        place = find_place(graph, goal.target)
        if place is not None:
            return top_centre(place.bbox_min, place.bbox_max)
        if not goal.target.lstrip("-").isdecimal():
            raise GroundingError("unknown target", f"{goal.target!r} is no place nor object id")
        return np.asarray(find_object(graph, int(goal.target)).centroid, dtype=float)
    return np.asarray(find_object(graph, int(goal.object_id)).centroid, dtype=float)  # type: ignore[arg-type]


class LookDriver:
    def __init__(self, ik: PandaIK, config: LookConfig | None = None) -> None:
        self.ik = ik
        self.config = config or LookConfig()

    def start(
        self, goal: PolicyGoalMsg, graph: SceneGraphMsg | None, state: RobotState
    ) -> LookMotion:
        """Plan the look from the robot ``state`` (arm joints and gripper width
        observed at node time ``state.stamp``); a hand closed on nothing is
        opened (raises GroundingError, reason "IK" when no look pose is reachable)."""
        q_now, t_obs, gripper_width = state.q, state.stamp, state.gripper_width
        point = look_point(goal, graph)
        try:
            q_goal = look_target(self.ik, q_now, point)
            times, positions = look_trajectory(q_now, q_goal)
        except (IKError, ValueError) as err:
            raise GroundingError("IK", f"look at {np.round(point, 3).tolist()}: {err}") from err
        motion = LookMotion(goal, point, q_goal, t_obs + times, positions)
        if gripper_width < self.config.empty_hand_m:
            motion.gripper_width = HOME_GRIPPER_WIDTH
        return motion

    def due(self, motion: LookMotion, now: float) -> bool:
        """Send (again) now? First at once, then every resend period while points remain."""
        return now < motion.end and now - motion.last_sent >= self.config.resend_period_s

    def chunk(self, motion: LookMotion, stamp: Time, t_stamp: float, now: float) -> JointTrajectory:
        """The points still ahead, ``time_from_start`` counted from ``stamp``."""
        keep = motion.times > t_stamp
        width = [] if motion.gripper_width is None else [float(motion.gripper_width)]
        msg = JointTrajectory(joint_names=[*ARM_JOINTS, *([GRIPPER_WIDTH_JOINT] if width else [])])
        msg.header.stamp = stamp
        msg.points = [
            JointTrajectoryPoint(
                positions=[*(float(v) for v in q), *width],
                time_from_start=to_duration(float(t - t_stamp)),
            )
            for t, q in zip(motion.times[keep], motion.positions[keep], strict=True)
        ]
        motion.last_sent = now
        motion.chunks += 1
        return msg

    def update(self, motion: LookMotion, now: float, q: np.ndarray, t_q: float) -> tuple[str, str]:
        """The skill's state after the measurement ``q`` at node time ``t_q``."""
        cfg = self.config
        speed = 0.0
        if motion.q_prev is not None and t_q > motion.t_prev:
            speed = float(np.max(np.abs(q - motion.q_prev)) / (t_q - motion.t_prev))
        if t_q > motion.t_prev:
            motion.q_prev, motion.t_prev = q.copy(), t_q
        close = float(np.max(np.abs(q - motion.q_goal))) <= cfg.tolerance
        if now >= motion.end and close and speed <= cfg.still_speed:
            if motion.settled_since is None:
                motion.settled_since = now
            if now - motion.settled_since >= cfg.settle_s:
                return SUCCEEDED, "at the look pose"
        else:
            motion.settled_since = None
        if now > motion.end + cfg.timeout_s:
            error = float(np.max(np.abs(q - motion.q_goal)))
            return FAILED, f"timeout: look pose not reached ({error:.3f} rad off)"
        return RUNNING, ""


__all__ = ["LookConfig", "LookDriver", "LookMotion", "look_point"]
