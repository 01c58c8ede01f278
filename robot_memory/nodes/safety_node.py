"""Safety node: the only way from the policy to the arm and gripper controllers.

Thin adapter over :class:`robot_memory.control.safety.SafetyFilter`:

* in: ``/policy/action_chunk`` (7 arm joints, optionally ``gripper_width``;
  stamp = observation time; NO points = "stop now", the ros2_control JTC
  convention: a smooth hold until the next accepted chunk), ``/joint_states``
  (trusted only when plausible and from the one publisher it trusts),
  ``/robot_memory/estop`` (latched; True holds and blocks every chunk), the
  watched cameras' ``camera_info`` (watchdog heartbeats);
* out: ``/arm_controller/joint_trajectory`` (the accepted chunk retimed to the
  limits, starting now; or a smooth stop), ``/gripper_controller/commands``,
  ``/safety/status`` (latched), ``/diagnostics``.

Nothing it receives ends it (the input boundary); nothing is sent before the
first accepted chunk except an e-stop hold. docs/policy.md has the contract.
"""

from __future__ import annotations

import time
from dataclasses import fields
from functools import partial

import numpy as np
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.subscription import MessageInfo
from robot_memory_interfaces.msg import SafetyStatus
from sensor_msgs.msg import CameraInfo, JointState
from std_msgs.msg import Bool, Float64MultiArray
from trajectory_msgs.msg import JointTrajectory

from robot_memory.bringup.node_parameters import SAFETY_PARAMETERS
from robot_memory.control.joint_state_guard import StateRejected
from robot_memory.control.safety import STOP_REQUESTED, SafetyFilter
from robot_memory.control.safety_config import ChunkRejected, SafetyConfig
from robot_memory.health.counters import HealthCounters
from robot_memory.nodes.conversions import from_time
from robot_memory.nodes.diagnostics import DiagnosticsPublisher
from robot_memory.nodes.input_boundary import InputBoundary
from robot_memory.nodes.node_main import spin_node
from robot_memory.nodes.parameters import declare_parameters
from robot_memory.nodes.qos import COMMAND, LATCHED, SENSOR
from robot_memory.nodes.safety_conversions import (
    arm_positions,
    safety_status_to_msg,
    trajectory_msg,
)
from robot_memory.robot.arm_model import panda_arm_model

LOG_THROTTLE_S = 1.0
STATUS_PERIOD_S = 1.0
#: Node parameters that are SafetyConfig fields (the rest: the robot's base, rate).
CONFIG_KEYS = tuple(f.name for f in fields(SafetyConfig))


class SafetyNode(Node):
    def __init__(self, parameter_overrides: list[Parameter] | None = None) -> None:
        super().__init__("safety", parameter_overrides=parameter_overrides or [])
        p = declare_parameters(self, SAFETY_PARAMETERS)
        config = SafetyConfig(**{k: p[k] for k in CONFIG_KEYS})
        arm = panda_arm_model(p["robot_base_position"], p["robot_base_quaternion"])
        self.filter = SafetyFilter(config, arm)
        self.health = HealthCounters("safety")
        self.traj_pub = self.create_publisher(
            JointTrajectory, "/arm_controller/joint_trajectory", COMMAND
        )
        self.grip_pub = self.create_publisher(
            Float64MultiArray, "/gripper_controller/commands", COMMAND
        )
        self.status_pub = self.create_publisher(SafetyStatus, "/safety/status", LATCHED)
        self.inputs = InputBoundary(self, self.health)
        joints = self.inputs.guard("/joint_states", self.on_joints)
        self.create_subscription(JointState, "/joint_states", lambda m, i: joints(m, i), COMMAND)
        self.inputs.subscribe(JointTrajectory, "/policy/action_chunk", self.on_chunk, COMMAND)
        self.inputs.subscribe(Bool, "/robot_memory/estop", self.on_estop, LATCHED)
        for topic in p["watched_cameras"]:
            self.inputs.subscribe(CameraInfo, topic, partial(self.on_frame, topic), SENSOR)
        self.diagnostics = DiagnosticsPublisher(self, self.health)

        self._status: dict | None = None
        self._status_sent = -np.inf
        self.create_timer(1.0 / max(float(p["rate"]), 1.0), self.tick)
        self.publish_status(force=True)
        self.get_logger().info(
            f"safety ready: velocity x{config.velocity_scale}, "
            f"margin {config.position_margin} rad, "
            f"workspace {config.workspace_min}..{config.workspace_max}, "
            f"watchdog {config.watchdog_timeout_s} s late, cameras {list(p['watched_cameras'])}"
        )

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # -- inputs ---------------------------------------------------------------
    def on_joints(self, msg: JointState, info: MessageInfo) -> None:
        q = arm_positions(msg)
        if q is None:
            self._reject_input(
                "malformed joint_states", f"joint_states without arm joints: {msg.name[:9]}"
            )
            return
        gid = info.get("publisher_gid") if isinstance(info, dict) else None
        try:
            self.filter.observe_joints(q, self.now(), repr(gid).encode() if gid else None)
        except StateRejected as err:
            self._reject_input(err.kind, f"joint_states rejected: {err.reason}")

    def _reject_input(self, reason: str, text: str) -> None:
        self.health.reject(reason)
        self.get_logger().warning(text, throttle_duration_sec=LOG_THROTTLE_S)

    def on_chunk(self, msg: JointTrajectory) -> None:
        now = self.now()
        self.health.tick("chunk_in", now)
        if not msg.points:  # "stop now"
            if self.filter.request_stop():
                self.get_logger().info("stop requested: holding")
                self.send_hold(STOP_REQUESTED)
            self.publish_status()
            return
        stamp = from_time(msg.header.stamp)
        try:
            chunk = self.filter.check_chunk(
                stamp,
                list(msg.joint_names),
                [from_time(pt.time_from_start) for pt in msg.points],
                [list(pt.positions) for pt in msg.points],
                now,
                self.filter.trusted_state(now),
            )
        except ChunkRejected as err:
            self.health.reject(err.kind)
            self.get_logger().warning(
                f"chunk rejected: {err.reason}", throttle_duration_sec=LOG_THROTTLE_S
            )
            self.publish_status()
            return
        self.traj_pub.publish(trajectory_msg(chunk))
        self.health.tick("trajectory_out", now)
        self.health.latency("observation_to_command", now - stamp)
        self.send_gripper(now)
        self.publish_status()

    def on_frame(self, topic: str, msg: CameraInfo) -> None:
        """A camera's heartbeat, at the frame's own time: a frame that waited in
        a queue on a loaded machine was still taken when it says (never later
        than now)."""
        now = self.now()
        stamp = from_time(msg.header.stamp)
        self.filter.on_frame(topic, min(stamp, now) if stamp > 0 else now)

    def on_estop(self, msg: Bool) -> None:
        if self.filter.set_estop(bool(msg.data), self.now()):
            self.get_logger().error("e-stop: holding the arm, chunks blocked")
            self.send_hold("e-stop")
        elif not msg.data:
            self.get_logger().info("e-stop released")
        self.publish_status()

    # -- outputs ----------------------------------------------------------------
    def tick(self) -> None:
        now = self.now()
        reason = self.filter.tick(now)
        if reason is not None:
            self.get_logger().warning(f"watchdog: {reason}: holding")
            self.send_hold("watchdog")
        self.send_gripper(now)
        self.publish_status()

    def send_hold(self, why: str) -> None:
        now = self.now()
        hold = self.filter.hold_command(now, self.filter.trusted_state(now))
        if hold is None:
            self.health.reject("hold without joint state")
            self.get_logger().error(f"{why}: neither a setpoint nor a joint state to hold at")
            return
        self.traj_pub.publish(trajectory_msg(hold))
        self.health.increment(f"holds.{why.replace(' ', '_')}")

    def send_gripper(self, now: float) -> None:
        width = self.filter.gripper_due(now)
        if width is not None:
            self.grip_pub.publish(Float64MultiArray(data=[width]))

    def publish_status(self, force: bool = False) -> None:
        """On change, and once a second anyway."""
        status = self.filter.status()
        wall = time.monotonic()
        if not force and status == self._status and wall - self._status_sent < STATUS_PERIOD_S:
            return
        self._status, self._status_sent = status, wall
        self.status_pub.publish(safety_status_to_msg(status, self.now()))
        for key in ("state", "hold_reason", "accepted", "retimed", "stale_points_dropped", "holds"):
            self.health.set_value(key, status[key])


def main(args: list[str] | None = None) -> None:
    spin_node(SafetyNode, args)


if __name__ == "__main__":
    main()
