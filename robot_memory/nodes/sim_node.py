"""Sim node: the MuJoCo Panda cell on the topics a real cell uses.

Publishes /clock, /joint_states, realsense-style camera topics (frame_id
``<cam>_color_optical_frame``), /tf_static (``world -> panda_link0``, the camera
mounts; one latched message), /tf (``panda_link0 -> ... -> panda_hand`` with every
joint state and every camera frame, BEFORE that instant's images) and
/sim/ground_truth; consumes the JointTrajectoryController and gripper command
topics and /sim/reset. The loop thread (:class:`robot_memory.sim.realtime_loop.SimLoop`)
steps physics against the wall clock (``real_time_factor``; 0 = as fast as
possible) and renders cameras at ``camera_rate`` of simulated time; this node
turns what it emits into messages. The rest is SimulationRunner and CellFrames
(robot_memory/sim/frames.py: the frame tree).
"""

from __future__ import annotations

import time

import rclpy
from rclpy.node import Node
from rclpy.parameter import Parameter
from robot_memory_interfaces.msg import GroundTruth as GroundTruthMsg
from robot_memory_interfaces.msg import SimReset as SimResetMsg
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Float64MultiArray
from tf2_msgs.msg import TFMessage
from trajectory_msgs.msg import JointTrajectory

from robot_memory.bringup.node_parameters import SIM_PARAMETERS
from robot_memory.control.joint_trajectory import TrajectoryError
from robot_memory.health.counters import HealthCounters
from robot_memory.nodes import conversions as conv
from robot_memory.nodes.diagnostics import DiagnosticsPublisher
from robot_memory.nodes.input_boundary import InputBoundary
from robot_memory.nodes.node_main import spin_node
from robot_memory.nodes.parameters import declare_parameters
from robot_memory.nodes.qos import COMMAND, SENSOR, TF, TF_STATIC
from robot_memory.nodes.sim_conversions import ground_truth_to_msg, sim_reset_from_msg
from robot_memory.robot.panda import ALL_JOINTS
from robot_memory.schemas import PayloadError
from robot_memory.sim.frames import CellFrames, optical_frame
from robot_memory.sim.realtime_loop import CameraRender, SimLoop, SimOutputs
from robot_memory.sim.runner import RunnerConfig, SimulationRunner


class SimNode(Node):
    def __init__(self) -> None:
        super().__init__("sim")
        p = declare_parameters(self, SIM_PARAMETERS)
        if self.get_parameter("use_sim_time").value:
            self.get_logger().warn("the sim node owns /clock; ignoring use_sim_time")
            self.set_parameters([Parameter("use_sim_time", value=False)])
        self.cameras = list(p["cameras"])
        self.width, self.height = int(p["image_width"]), int(p["image_height"])
        self.depth_encoding = str(p["depth_encoding"])
        if self.depth_encoding not in ("16UC1", "32FC1"):
            raise ValueError(f"depth_encoding must be 16UC1 or 32FC1, got {self.depth_encoding}")
        self.world_frame = str(p["world_frame"])
        self.runner = SimulationRunner(RunnerConfig.from_parameters(p))
        self.frames = CellFrames(
            self.runner.physics.model, self.cameras, self.world_frame, str(p["arm_id"])
        )
        self.health = HealthCounters("sim")
        self.inputs = InputBoundary(self, self.health)  # no message ends the node

        self.clock_pub = self.create_publisher(Clock, "/clock", 10)
        self.joint_pub = self.create_publisher(JointState, "/joint_states", COMMAND)
        self.tf_pub = self.create_publisher(TFMessage, "/tf", TF)
        self.tf_static_pub = self.create_publisher(TFMessage, "/tf_static", TF_STATIC)
        self.gt_pub = self.create_publisher(GroundTruthMsg, "/sim/ground_truth", COMMAND)
        self.cam_pubs = {
            cam: (
                self.create_publisher(Image, f"/camera/{cam}/color/image_raw", SENSOR),
                self.create_publisher(CameraInfo, f"/camera/{cam}/color/camera_info", SENSOR),
                self.create_publisher(
                    Image, f"/camera/{cam}/aligned_depth_to_color/image_raw", SENSOR
                ),
            )
            for cam in self.cameras
        }
        self.inputs.subscribe(
            JointTrajectory, "/arm_controller/joint_trajectory", self.on_trajectory, COMMAND
        )
        self.inputs.subscribe(
            Float64MultiArray, "/gripper_controller/commands", self.on_gripper, COMMAND
        )
        self.inputs.subscribe(SimResetMsg, "/sim/reset", self.on_reset, COMMAND)
        self.diagnostics = DiagnosticsPublisher(self, self.health)
        rtf = float(p["real_time_factor"])
        size = (self.width, self.height)
        self.loop = SimLoop(
            self.runner, self.frames, self.cameras, size, rtf, self.health, self.emit, rclpy.ok
        )
        self.publish_static_if_changed()
        self.loop.start()
        self.get_logger().info(
            f"sim ready: scene={p['scene']} seed={p['seed']} cameras={self.cameras} "
            f"{self.width}x{self.height}@{p['camera_rate']}Hz rtf={rtf or 'max'}"
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

    # -- outputs (loop thread) ------------------------------------------------
    def publish_static_if_changed(self) -> None:
        """All static transforms in one latched message, when they changed."""
        if (changed := self.loop.static_if_changed()) is not None:
            self.tf_static_pub.publish(conv.tf_message(*changed))

    def emit(self, out: SimOutputs) -> None:
        t = out.t
        if out.clock:
            self.clock_pub.publish(Clock(clock=conv.to_time(t)))
        if out.links is not None:
            self.tf_pub.publish(conv.tf_message(out.links, t))  # before this instant's images
        if out.joint_state is not None:
            self.joint_pub.publish(conv.joint_state(ALL_JOINTS, *out.joint_state, t))
        if out.ground_truth is not None:
            self.gt_pub.publish(ground_truth_to_msg(out.ground_truth, self.world_frame))
        for cam, render in out.renders.items():
            self._publish_camera(cam, t, render)

    def _publish_camera(self, cam: str, t: float, render: CameraRender) -> None:
        t0 = time.monotonic()
        frame = optical_frame(cam)  # its pose: /tf_static + /tf at stamp t
        img_pub, info_pub, depth_pub = self.cam_pubs[cam]
        img_pub.publish(conv.rgb_image(render.rgb, t, frame))
        depth_pub.publish(conv.depth_image(render.depth, t, frame, self.depth_encoding))
        info_pub.publish(conv.camera_info(render.intrinsics, self.width, self.height, t, frame))
        took = render.render_s + time.monotonic() - t0
        self.health.latency(f"camera.{cam}.render_publish", took)
        self.health.tick(f"camera.{cam}", time.monotonic())

    def check_loop(self) -> None:
        self.loop.check()

    def shutdown(self) -> None:
        self.loop.stop(timeout_s=1.0)  # one slice and a render; spin_node bounds the rest


def main(args: list[str] | None = None) -> None:
    spin_node(SimNode, args, check=SimNode.check_loop)


if __name__ == "__main__":
    main()
