"""Safety node: the only way from the policy to the arm and gripper controllers.

Thin adapter over :class:`robot_memory.control.safety.SafetyFilter`. In:
``/policy/action_chunk`` (no points = "stop now", the JTC convention),
``/joint_states`` (trusted only when plausible and from one publisher),
``/robot_memory/estop`` (latched), the watched cameras' ``camera_info``
(watchdog heartbeats). Out: ``/arm_controller/joint_trajectory``,
``/gripper_controller/commands``, ``/safety/status`` (latched),
``/diagnostics``. Nothing it receives ends it; nothing is sent before the first
accepted chunk except an e-stop hold. docs/policy.md has the contract.
"""

from __future__ import annotations

from dataclasses import fields
from functools import partial

from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.subscription import MessageInfo
from sensor_msgs.msg import CameraInfo, JointState
from std_msgs.msg import Bool
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
from robot_memory.nodes.safety_conversions import arm_positions, chunk_from_msg
from robot_memory.nodes.safety_outputs import SafetyOutputs
from robot_memory.robot.arm_model import panda_arm_model

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
        self.outputs = SafetyOutputs(self, self.health)
        self.inputs = InputBoundary(self, self.health)
        joints = self.inputs.guard("/joint_states", self.on_joints)
        self.create_subscription(JointState, "/joint_states", lambda m, i: joints(m, i), COMMAND)
        self.inputs.subscribe(JointTrajectory, "/policy/action_chunk", self.on_chunk, COMMAND)
        self.inputs.subscribe(Bool, "/robot_memory/estop", self.on_estop, LATCHED)
        for topic in p["watched_cameras"]:
            self.inputs.subscribe(CameraInfo, topic, partial(self.on_frame, topic), SENSOR)
        self.diagnostics = DiagnosticsPublisher(self, self.health)

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
            text = f"joint_states without arm joints: {msg.name[:9]}"
            self.inputs.reject("malformed joint_states", text)
            return
        gid = info.get("publisher_gid") if isinstance(info, dict) else None
        try:
            self.filter.observe_joints(q, self.now(), repr(gid).encode() if gid else None)
        except StateRejected as err:
            self.inputs.reject(err.kind, f"joint_states rejected: {err.reason}")

    def on_chunk(self, msg: JointTrajectory) -> None:
        now = self.now()
        self.health.tick("chunk_in", now)
        if not msg.points:  # "stop now"
            if self.filter.request_stop():
                self.get_logger().info("stop requested: holding")
                self.send_hold(STOP_REQUESTED)
            self.publish_status()
            return
        stamp, names, times, positions = chunk_from_msg(msg)
        try:
            trusted = self.filter.trusted_state(now)
            chunk = self.filter.check_chunk(stamp, names, times, positions, now, trusted)
        except ChunkRejected as err:
            self.inputs.reject(err.kind, f"chunk rejected: {err.reason}")
            self.publish_status()
            return
        self.outputs.trajectory(chunk)
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
        self.outputs.trajectory(hold)
        self.health.increment(f"holds.{why.replace(' ', '_')}")

    def send_gripper(self, now: float) -> None:
        self.outputs.gripper(self.filter.gripper_due(now))

    def publish_status(self, force: bool = False) -> None:
        self.outputs.status(self.filter.status(), self.now(), force)


def main(args: list[str] | None = None) -> None:
    spin_node(SafetyNode, args)


if __name__ == "__main__":
    main()
