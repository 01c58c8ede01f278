"""What the safety node sends: the checked trajectory or hold on
``/arm_controller/joint_trajectory``, the gripper width on
``/gripper_controller/commands`` (both ``COMMAND`` QoS, what ros2_control's
controllers subscribe with) and the filter's status on ``/safety/status``
(latched; on change, and once a second anyway, mirrored on ``/diagnostics``).
"""

from __future__ import annotations

import time
from typing import Any

from rclpy.node import Node
from robot_memory_interfaces.msg import SafetyStatus
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory

from robot_memory.control.safety_config import SafeChunk
from robot_memory.health.counters import HealthCounters
from robot_memory.nodes.qos import COMMAND, LATCHED
from robot_memory.nodes.safety_conversions import safety_status_to_msg, trajectory_msg

STATUS_PERIOD_S = 1.0
#: Status keys also shown as diagnostics values.
DIAGNOSTIC_KEYS = ("state", "hold_reason", "accepted", "retimed", "stale_points_dropped", "holds")


class SafetyOutputs:
    def __init__(self, node: Node, health: HealthCounters) -> None:
        self.node, self.health = node, health
        topic = "/arm_controller/joint_trajectory"
        self.traj_pub = node.create_publisher(JointTrajectory, topic, COMMAND)
        topic = "/gripper_controller/commands"
        self.grip_pub = node.create_publisher(Float64MultiArray, topic, COMMAND)
        self.status_pub = node.create_publisher(SafetyStatus, "/safety/status", LATCHED)
        self._status: dict[str, Any] | None = None
        self._status_sent = float("-inf")

    def trajectory(self, chunk: SafeChunk) -> None:
        self.traj_pub.publish(trajectory_msg(chunk))

    def gripper(self, width: float | None) -> None:
        if width is not None:
            self.grip_pub.publish(Float64MultiArray(data=[float(width)]))

    def status(self, status: dict[str, Any], stamp_s: float, force: bool = False) -> None:
        """Publishes ``status`` when it changed, a second passed, or ``force``."""
        wall = time.monotonic()
        unchanged = status == self._status and wall - self._status_sent < STATUS_PERIOD_S
        if unchanged and not force:
            return
        self._status, self._status_sent = status, wall
        self.status_pub.publish(safety_status_to_msg(status, stamp_s))
        for key in DIAGNOSTIC_KEYS:
            self.health.set_value(key, status[key])
