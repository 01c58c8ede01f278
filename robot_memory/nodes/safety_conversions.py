"""The safety node's messages, node layer only: ``/safety/status``
(robot_memory_interfaces/msg/SafetyStatus) <-> the safety filter's status dict
(:meth:`robot_memory.control.safety.SafetyFilter.status`); a checked chunk or
hold -> the controller's ``JointTrajectory``; a ``JointState`` -> the arm's
positions. Counts by reason travel as ``diagnostic_msgs/KeyValue``
(key: the reason, value: the count in decimal)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from diagnostic_msgs.msg import KeyValue
from robot_memory_interfaces.msg import SafetyStatus
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from robot_memory.control.safety_config import SafeChunk
from robot_memory.nodes.conversions import from_time, to_duration, to_time
from robot_memory.robot.panda import ARM_JOINTS
from robot_memory.schemas import PayloadError

#: The status keys that are plain counters.
COUNTERS = ("accepted", "retimed", "rejected_total", "stale_points_dropped", "holds")
STATES = ("ok", "holding", "estop")


def trajectory_msg(chunk: SafeChunk) -> JointTrajectory:
    """The chunk as a JointTrajectory that starts on receipt (stamp zero)."""
    msg = JointTrajectory(joint_names=list(chunk.joint_names))
    msg.points = [
        JointTrajectoryPoint(positions=[float(v) for v in q], time_from_start=to_duration(t))
        for t, q in zip(chunk.times, chunk.positions, strict=True)
    ]
    return msg


def chunk_from_msg(
    msg: JointTrajectory,
) -> tuple[float, list[str], list[float], list[list[float]]]:
    """A chunk's observation stamp, joint names, ``time_from_start`` of each
    point and positions (one row per point), for ``SafetyFilter.check_chunk``."""
    times = [from_time(pt.time_from_start) for pt in msg.points]
    positions = [list(pt.positions) for pt in msg.points]
    return from_time(msg.header.stamp), list(msg.joint_names), times, positions


def arm_positions(msg: JointState) -> np.ndarray | None:
    """The 7 arm joints' positions in ``ARM_JOINTS`` order; None when one is missing."""
    try:
        idx = [list(msg.name).index(n) for n in ARM_JOINTS]
        return np.array([msg.position[i] for i in idx], dtype=float)
    except (ValueError, IndexError):
        return None


def counts_to_msg(counts: Mapping[str, int]) -> list[KeyValue]:
    return [KeyValue(key=str(k), value=str(int(v))) for k, v in sorted(counts.items())]


def counts_from_msg(values: list[KeyValue]) -> dict[str, int]:
    """``{reason: count}``; raises PayloadError for a count that is no integer."""
    try:
        return {kv.key: int(kv.value) for kv in values}
    except ValueError as err:
        raise PayloadError("invalid payload", f"count: {err}") from None


def safety_status_to_msg(status: Mapping[str, Any], stamp_s: float) -> SafetyStatus:
    msg = SafetyStatus(
        state=str(status["state"]),
        hold_reason=str(status["hold_reason"]),
        rejected=counts_to_msg(status["rejected"]),
        rejected_joint_states=counts_to_msg(status["rejected_joint_states"]),
        last_reject=str(status["last_reject"]),
        stamp=to_time(stamp_s),
    )
    for key in COUNTERS:
        setattr(msg, key, int(status[key]))
    return msg


def safety_status_from_msg(msg: SafetyStatus) -> dict[str, Any]:
    """The status dict (the filter's keys, no ``schema_version``; ``stamp``:
    the safety node's time of the status [s]). Raises PayloadError."""
    if msg.state not in STATES:
        raise PayloadError("invalid payload", f"state: {msg.state[:32]!r}")
    status: dict[str, Any] = {"state": msg.state, "hold_reason": msg.hold_reason}
    status.update({key: int(getattr(msg, key)) for key in COUNTERS})
    status["rejected"] = counts_from_msg(msg.rejected)
    status["rejected_joint_states"] = counts_from_msg(msg.rejected_joint_states)
    status["last_reject"] = msg.last_reject
    status["stamp"] = from_time(msg.stamp)
    return status


__all__ = [
    "arm_positions",
    "chunk_from_msg",
    "safety_status_from_msg",
    "safety_status_to_msg",
    "trajectory_msg",
]
