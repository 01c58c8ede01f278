"""What the policy node (:mod:`robot_memory.nodes.policy_node`) builds around
its skills: checking a joint state's arm and gripper width, loading the
policy runtime from the checkpoint, the node's records of an observation, a
running skill and an inference request, the messages it publishes from them
(an action chunk as a ``JointTrajectory``, the "stop now" empty trajectory, a
skill's ``PolicyStatusMsg``) and a running skill's phase (the action feedback).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from builtin_interfaces.msg import Time
from rclpy.impl.rcutils_logger import RcutilsLogger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from robot_memory.nodes.safety_node import to_duration
from robot_memory.paths import model_path
from robot_memory.policy.runtime import ActionChunk, PolicyRuntime, RobotState
from robot_memory.policy.skill_goal import SkillGoal
from robot_memory.policy.skill_monitor import SkillMonitor
from robot_memory.robot.panda import ARM_JOINTS, FINGER_JOINTS, GRIPPER_WIDTH_JOINT
from robot_memory.schemas import PayloadError, PolicyGoalMsg, PolicyStatusMsg

#: A commanded gripper width below this is "closed" (the skill monitor's rule).
GRIPPER_CLOSED_BELOW_M = 0.04


def arm_and_width(
    names: Sequence[str], positions: Sequence[float], last_width: float | None
) -> tuple[np.ndarray, float]:
    """The 7 arm positions and the gripper width (the finger joints' sum; the last
    known ``last_width`` when this message has no fingers, as drivers that publish
    the fingers in a JointState of their own). Raises PayloadError: ``malformed
    joint_states`` (no arm), ``non-finite joint_states``, ``no gripper width``."""
    names, pos = list(names), list(positions)
    try:
        q = np.array([pos[names.index(n)] for n in ARM_JOINTS], dtype=float)
    except (ValueError, IndexError):
        raise PayloadError("malformed joint_states", f"no arm in {names[:20]}") from None
    width = last_width
    if all(n in names and names.index(n) < len(pos) for n in FINGER_JOINTS):
        width = float(sum(pos[names.index(n)] for n in FINGER_JOINTS))
    if not np.all(np.isfinite(q)) or not np.isfinite(width if width is not None else 0.0):
        raise PayloadError("non-finite joint_states", "joint_states with NaN")
    if width is None:
        raise PayloadError("no gripper width", f"no {FINGER_JOINTS} in joint_states yet")
    return q, width


def load_runtime(p: dict, logger: RcutilsLogger) -> tuple[PolicyRuntime | None, str]:
    """The policy runtime for the node's parameters ``p`` and ""; or None and why
    not (no checkpoint, or one that does not load), logged as an error."""
    path = Path(str(p["checkpoint"])).expanduser() if p["checkpoint"] else model_path()
    if not path.is_dir():
        text = f"no policy checkpoint at {path}"
        logger.error(f"{text}: every goal will fail (train one, see docs)")
        return None, text
    try:
        runtime = PolicyRuntime(
            str(path),
            device=str(p["device"]),
            sampler=str(p["sampler"]),
            num_inference_steps=int(p["num_inference_steps"]),
            n_action_steps=int(p["n_action_steps"]),
            half_precision=bool(p["half_precision"]),
            compile_model=bool(p["compile"]),
            threads=int(p["torch_threads"]) or None,
            ik_attempts=int(p["ik_attempts"]),
        )
    except Exception as exc:  # noqa: BLE001 - a bad checkpoint must not take the stack down
        text = f"no policy checkpoint at {path} ({exc})"
        logger.error(f"{text}: every goal will fail")
        return None, text
    logger.info(
        f"policy {path} on {runtime.device} ({runtime.dtype}), {runtime.sampler} "
        f"x{runtime.num_inference_steps}, {runtime.n_action_steps} steps of {runtime.dt} s"
    )
    return runtime, ""


def chunk_message(chunk: ActionChunk, stamp: Time) -> JointTrajectory:
    msg = JointTrajectory(joint_names=[*ARM_JOINTS, GRIPPER_WIDTH_JOINT])
    msg.header.stamp = stamp
    msg.points = [
        JointTrajectoryPoint(
            positions=[*(float(v) for v in q), float(width)], time_from_start=to_duration(t)
        )
        for t, q, width in zip(
            chunk.times, chunk.joint_positions, chunk.gripper_widths, strict=True
        )
    ]
    return msg


@dataclass
class Observation:
    state: RobotState
    stamp: Time  # the header stamp as received (the chunk carries it back unchanged)


@dataclass
class Skill:
    goal: PolicyGoalMsg
    target: SkillGoal
    monitor: SkillMonitor
    generation: int
    chunks: int = 0


@dataclass
class Request:
    generation: int
    target: SkillGoal
    window: list[RobotState]
    stamp: Time


def stop_message(stamp: Time) -> JointTrajectory:
    """ "Stop now" (the ros2_control JTC convention): a trajectory with no points.
    The safety node holds the arm at once with its smooth stop."""
    msg = JointTrajectory(joint_names=[*ARM_JOINTS, GRIPPER_WIDTH_JOINT])
    msg.header.stamp = stamp
    return msg


def skill_phase(skill: Skill, commanded_width: float | None, now: float) -> str:
    """The phase of a running pick or place for the action feedback: ``start``
    (no chunk yet); pick: ``approach`` (gripper commanded open), ``grasp``
    (commanded closed), ``lift`` (closed for the monitor's settle time); place: ``carry``,
    ``release`` (lowered over the target), ``retreat`` (released)."""
    if commanded_width is None:
        return "start"
    monitor = skill.monitor
    if skill.goal.skill == "pick":
        if commanded_width >= GRIPPER_CLOSED_BELOW_M:
            return "approach"
        since = monitor.closed_since
        settled = since is not None and now - since >= monitor.config.closed_settle_s
        return "lift" if settled else "grasp"
    if monitor.released:
        return "retreat"
    return "release" if monitor.lowered else "carry"


def skill_status(skill: Skill, state: str, reason: str = "") -> PolicyStatusMsg:
    """The status of a skill (its goal, skill name and chunks so far)."""
    goal_id, name, chunks = skill.goal.id, skill.goal.skill, skill.chunks
    return PolicyStatusMsg(goal_id=goal_id, state=state, reason=reason, skill=name, chunks=chunks)


__all__ = [
    "Observation",
    "Request",
    "Skill",
    "chunk_message",
    "load_runtime",
    "skill_phase",
    "skill_status",
    "stop_message",
]
