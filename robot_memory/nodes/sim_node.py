"""Sim node: the MuJoCo Panda cell on the topics a real cell uses.

Publishes ``/clock``, ``/joint_states``, the cameras, ``/tf``, ``/tf_static`` and
``/sim/ground_truth`` (:mod:`robot_memory.nodes.sim_outputs`); consumes the
JointTrajectoryController and gripper command topics and ``/sim/reset``. The
loop thread (:class:`robot_memory.sim.realtime_loop.SimLoop`) steps physics
against the wall clock (``real_time_factor``; 0 = as fast as possible) and
renders cameras at ``camera_rate`` of simulated time; the frame tree is
:class:`robot_memory.sim.frames.CellFrames`.
"""

from __future__ import annotations

import time

import rclpy
from rclpy.node import Node
from rclpy.parameter import Parameter
from robot_memory_interfaces.msg import SimReset as SimResetMsg
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory

from robot_memory.bringup.node_parameters import SIM_PARAMETERS
from robot_memory.control.joint_trajectory import TrajectoryError
from robot_memory.health.counters import HealthCounters
from robot_memory.nodes import conversions as conv
from robot_memory.nodes.diagnostics import DiagnosticsPublisher
from robot_memory.nodes.input_boundary import InputBoundary
from robot_memory.nodes.node_main import spin_node
from robot_memory.nodes.parameters import declare_parameters
from robot_memory.nodes.qos import COMMAND
from robot_memory.nodes.sim_conversions import sim_reset_from_msg
from robot_memory.nodes.sim_outputs import SimPublishers
from robot_memory.schemas import PayloadError
from robot_memory.sim.depth_noise import depth_noise_named
from robot_memory.sim.frames import CellFrames
from robot_memory.sim.realtime_loop import SimLoop
from robot_memory.sim.runner import RunnerConfig, SimulationRunner


class SimNode(Node):
    def __init__(self) -> None:
        super().__init__("sim")
        p = declare_parameters(self, SIM_PARAMETERS)
        if self.get_parameter("use_sim_time").value:
            self.get_logger().warn("the sim node owns /clock; ignoring use_sim_time")
            self.set_parameters([Parameter("use_sim_time", value=False)])
        self.cameras = list(p["cameras"])
        size = (int(p["image_width"]), int(p["image_height"]))
        self.world_frame = str(p["world_frame"])
        self.runner = SimulationRunner(RunnerConfig.from_parameters(p))
        error = (float(p["extrinsic_error_mm"]), float(p["extrinsic_error_deg"]))
        self.frames = CellFrames(self.runner.physics.model, self.cameras, self.world_frame,
                                 str(p["arm_id"]), error, int(p["seed"]))  # fmt: skip
        self.health = HealthCounters("sim")
        self.inputs = InputBoundary(self, self.health)  # no message ends the node

        depth = str(p["depth_encoding"])
        self.out = SimPublishers(self, self.health, self.cameras, size, depth, self.world_frame,
                                 str(p["image_transport"]), int(p["jpeg_quality"]))  # fmt: skip
        self.inputs.subscribe(
            JointTrajectory, "/arm_controller/joint_trajectory", self.on_trajectory, COMMAND
        )
        self.inputs.subscribe(
            Float64MultiArray, "/gripper_controller/commands", self.on_gripper, COMMAND
        )
        self.inputs.subscribe(SimResetMsg, "/sim/reset", self.on_reset, COMMAND)
        self.diagnostics = DiagnosticsPublisher(self, self.health)
        rtf = float(p["real_time_factor"])
        noise = depth_noise_named(str(p["depth_noise"]))
        self.loop = SimLoop(self.runner, self.frames, self.cameras, size, rtf, self.health,
                            self.out.emit, rclpy.ok, noise)  # fmt: skip
        self.publish_static_if_changed()
        self.loop.start()
        self.get_logger().info(
            f"sim ready: scene={p['scene']} seed={p['seed']} cameras={self.cameras} "
            f"{size[0]}x{size[1]}@{p['camera_rate']}Hz rtf={rtf or 'max'}"
        )

    # -- command callbacks (executor thread) -------------------------------
    def on_trajectory(self, msg: JointTrajectory) -> None:
        stamp = conv.from_time(msg.header.stamp)
        try:
            self.runner.command_trajectory(
                msg.joint_names,
                [conv.from_time(pt.time_from_start) for pt in msg.points],
                [list(pt.positions) for pt in msg.points],
                [list(pt.velocities) for pt in msg.points],
                start_time=stamp or None,
            )
        except TrajectoryError as err:
            self._reject(err.reason, f"trajectory rejected: {err}")
            return
        self.health.tick("trajectory_in", time.monotonic())

    def on_gripper(self, msg: Float64MultiArray) -> None:
        try:
            self.runner.command_gripper(list(msg.data))
        except TrajectoryError as err:
            self._reject(err.reason, f"gripper command rejected: {err}")

    def on_reset(self, msg: SimResetMsg) -> None:
        try:
            req = sim_reset_from_msg(msg)
        except PayloadError as err:
            self._reject(err.reason, f"reset rejected: {err}")
            return
        self.runner.reset(req.seed)
        self.publish_static_if_changed()
        self.get_logger().info(f"episode {self.runner.episode} (seed {req.seed})")

    def _reject(self, reason: str, text: str) -> None:
        self.inputs.reject(reason, text)  # counted; logged at most once a second per reason

    def publish_static_if_changed(self) -> None:
        self.out.static(self.loop.static_if_changed())

    def check_loop(self) -> None:
        self.loop.check()

    def shutdown(self) -> None:
        self.loop.stop(timeout_s=1.0)  # one slice and a render; spin_node bounds the rest


def main(args: list[str] | None = None) -> None:
    spin_node(SimNode, args, check=SimNode.check_loop)


if __name__ == "__main__":
    main()
