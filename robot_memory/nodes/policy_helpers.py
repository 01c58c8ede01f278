"""What the policy node (:mod:`robot_memory.nodes.policy_node`) builds around
the skill executor: checking a joint state's arm and gripper width, loading
the policy runtime and the executor's settings from its parameters, and the
messages it publishes (an action chunk and a look's points as a
``JointTrajectory``, the "stop now" empty trajectory).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from builtin_interfaces.msg import Time
from rclpy.impl.rcutils_logger import RcutilsLogger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from robot_memory.nodes.conversions import to_duration
from robot_memory.paths import CONSISTENCY_POLICY, DEFAULT_POLICY, model_path
from robot_memory.policy.look_skill import LookMotion
from robot_memory.policy.runtime import ActionChunk, PolicyRuntime
from robot_memory.policy.skill_executor import ExecutorConfig
from robot_memory.policy.skill_monitor import MonitorConfig
from robot_memory.robot.panda import ARM_JOINTS, FINGER_JOINTS, GRIPPER_WIDTH_JOINT
from robot_memory.schemas import PayloadError


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
    default = CONSISTENCY_POLICY if p["sampler"] == "consistency" else DEFAULT_POLICY
    path = Path(str(p["checkpoint"])).expanduser() if p["checkpoint"] else model_path(default)
    if not path.is_dir():
        text = f"no policy checkpoint at {path}"
        logger.error(f"{text}: every goal will fail (train one, see docs)")
        return None, text
    try:
        runtime = PolicyRuntime(
            str(path),
            device=str(p["device"]),
            sampler=str(p["sampler"]),
            num_inference_steps=int(p["num_inference_steps"]) or None,
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


def stop_message(stamp: Time) -> JointTrajectory:
    """ "Stop now" (the ros2_control JTC convention): a trajectory with no points.
    The safety node holds the arm at once with its smooth stop."""
    msg = JointTrajectory(joint_names=[*ARM_JOINTS, GRIPPER_WIDTH_JOINT])
    msg.header.stamp = stamp
    return msg


def look_message(motion: LookMotion, stamp: Time, t_stamp: float) -> JointTrajectory:
    """A look's points after ``t_stamp``, ``time_from_start`` counted from
    ``stamp`` (the 7 arm joints; the gripper width too when the look opens it)."""
    times, positions = motion.ahead(t_stamp)
    width = [] if motion.gripper_width is None else [float(motion.gripper_width)]
    msg = JointTrajectory(joint_names=[*ARM_JOINTS, *([GRIPPER_WIDTH_JOINT] if width else [])])
    msg.header.stamp = stamp
    msg.points = [
        JointTrajectoryPoint(
            positions=[*(float(v) for v in q), *width], time_from_start=to_duration(float(t))
        )
        for t, q in zip(times, positions, strict=True)
    ]
    return msg


def executor_config(p: dict, runtime: PolicyRuntime | None) -> ExecutorConfig:
    """The skill executor's settings from the node's parameters and the runtime."""
    return ExecutorConfig(
        dt=runtime.dt if runtime else 0.1,
        n_obs_steps=runtime.config.n_obs_steps if runtime else 2,
        n_action_steps=runtime.n_action_steps if runtime else 2,
        max_observation_age_s=float(p["max_observation_age_s"]),
        monitor=MonitorConfig(timeout_s=float(p["timeout_s"])),
    )


__all__ = [
    "arm_and_width",
    "chunk_message",
    "executor_config",
    "load_runtime",
    "look_message",
    "stop_message",
]
