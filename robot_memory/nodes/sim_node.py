"""Sim node: the MuJoCo Panda cell on the topics a real cell uses.

Publishes /clock, /joint_states, realsense-style camera topics (frame_id
``<cam>_color_optical_frame``), /tf_static (``world -> panda_link0``, the camera
mounts; one latched message), /tf (``panda_link0 -> ... -> panda_hand`` with every
joint state and every camera frame, BEFORE that instant's images) and
/sim/ground_truth; consumes the JointTrajectoryController and gripper command
topics and /sim/reset. A loop thread steps physics against the wall clock
(``real_time_factor``; 0 = as fast as possible) and renders cameras at
``camera_rate`` of simulated time; all logic is in SimulationRunner and
CellFrames (robot_memory/sim/frames.py: the frame tree).
"""

from __future__ import annotations

import threading
import time

import numpy as np
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

from robot_memory.bringup.launch_spec import SIM_PARAMETERS
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
from robot_memory.sim.cameras import CameraRig
from robot_memory.sim.frames import CellFrames, FrameTransform, optical_frame
from robot_memory.sim.runner import DueOutputs, RunnerConfig, SimulationRunner

#: Loop granularity: physics steps are taken in slices of this much sim time.
SLICE_S = 0.004
#: If the loop falls this far behind the wall clock, it stops trying to catch up.
MAX_LAG_S = 0.1


class SimNode(Node):
    def __init__(self) -> None:
        super().__init__("sim")
        p = declare_parameters(self, SIM_PARAMETERS)
        if self.get_parameter("use_sim_time").value:
            self.get_logger().warn("the sim node owns /clock; ignoring use_sim_time")
            self.set_parameters([Parameter("use_sim_time", value=False)])
        self.rtf = float(p["real_time_factor"])
        if self.rtf < 0:
            raise ValueError(f"real_time_factor must be >= 0, got {self.rtf}")
        self.cameras = list(p["cameras"])
        self.width, self.height = int(p["image_width"]), int(p["image_height"])
        self.depth_encoding = str(p["depth_encoding"])
        if self.depth_encoding not in ("16UC1", "32FC1"):
            raise ValueError(f"depth_encoding must be 16UC1 or 32FC1, got {self.depth_encoding}")
        self.world_frame = str(p["world_frame"])
        self.runner = SimulationRunner(
            RunnerConfig(
                scene=str(p["scene"]),
                seed=int(p["seed"]),
                panda_visual=str(p["panda_visual"]),
                physics_rate=float(p["physics_rate"]),
                joint_state_rate=float(p["joint_state_rate"]),
                camera_rate=float(p["camera_rate"]),
                ground_truth_rate=float(p["ground_truth_rate"]),
            )
        )
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
        self._static: list[FrameTransform] = []
        self.publish_static_if_changed()

        self._stop = threading.Event()
        self._rig_ready = threading.Event()
        self._loop_error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="sim-loop", daemon=True)
        self._thread.start()
        self.get_logger().info(
            f"sim ready: scene={p['scene']} seed={p['seed']} cameras={self.cameras} "
            f"{self.width}x{self.height}@{p['camera_rate']}Hz rtf={self.rtf or 'max'}"
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

    # -- loop thread --------------------------------------------------------
    def _loop(self) -> None:
        try:
            rig = CameraRig(self.runner.physics.model, self.width, self.height, self.cameras)
        except Exception as exc:  # noqa: BLE001 - surfaced by main(): the process exits loudly
            self._loop_error = exc
            self._rig_ready.set()
            return
        self._rig_ready.set()
        try:
            self._run(rig)
        except Exception as exc:  # noqa: BLE001 - surfaced by main()
            self._loop_error = exc
        finally:
            rig.close()

    def _run(self, rig: CameraRig) -> None:
        steps = max(1, round(SLICE_S / self.runner.timestep))
        wall0, sim0 = time.monotonic(), self.runner.time
        rtf_wall, rtf_sim, overruns = wall0, sim0, 0
        while not self._stop.is_set() and rclpy.ok():
            due = self.runner.advance(steps)
            t = self.runner.time
            self._publish(due, rig, t)
            if self.rtf > 0:
                target_wall = wall0 + (t - sim0) / self.rtf
                lag = time.monotonic() - target_wall
                if lag > MAX_LAG_S:  # rendering or the CPU can't keep up: re-anchor
                    overruns += 1
                    self.health.set_value("overruns", overruns)
                    wall0, sim0 = time.monotonic(), t
                elif lag < 0:
                    time.sleep(-lag)
            now = time.monotonic()
            if now - rtf_wall >= 1.0:
                self.health.set_value("real_time_factor", f"{(t - rtf_sim) / (now - rtf_wall):.3f}")
                self.health.set_value("sim_time_s", f"{t:.3f}")
                rtf_wall, rtf_sim = now, t

    # -- TF -------------------------------------------------------------------
    def publish_static_if_changed(self) -> None:
        """All static transforms in one latched message, when they differ from
        the last one sent (tf2's StaticTransformBroadcaster semantics)."""
        with self.runner.lock:
            self.runner.physics.sync_kinematics()
            static, t = self.frames.static(self.runner.physics.data), self.runner.time
        if len(static) == len(self._static) and all(
            a.same_as(b) for a, b in zip(static, self._static, strict=True)
        ):
            return
        self._static = static
        self.tf_static_pub.publish(conv.tf_message(static, t))

    def _publish(self, due: DueOutputs, rig: CameraRig, t: float) -> None:
        if due.clock:
            self.clock_pub.publish(Clock(clock=conv.to_time(t)))
        if due.joint_states or due.cameras:
            renders: dict[str, tuple[np.ndarray, np.ndarray, float]] = {}
            with self.runner.lock:  # one state (no reset between) for the links and images
                self.runner.physics.sync_kinematics()
                links = self.frames.dynamic(self.runner.physics.data)
                if due.cameras:
                    for cam in self.cameras:
                        t0 = time.monotonic()
                        rgb, depth = rig.render(self.runner.physics, cam)
                        renders[cam] = (rgb, depth, time.monotonic() - t0)
            self.tf_pub.publish(conv.tf_message(links, t))  # before this instant's images
        if due.joint_states:
            _, pos, vel, eff = self.runner.physics.joint_state()
            self.joint_pub.publish(conv.joint_state(ALL_JOINTS, pos, vel, eff, t))
        if due.ground_truth:
            truth = self.runner.ground_truth()
            self.gt_pub.publish(ground_truth_to_msg(truth, self.world_frame))
        if due.cameras:
            for cam, (rgb, depth, render_s) in renders.items():
                self._publish_camera(rig, cam, t, rgb, depth, render_s)

    def _publish_camera(
        self,
        rig: CameraRig,
        cam: str,
        t: float,
        rgb: np.ndarray,
        depth: np.ndarray,
        render_s: float,
    ) -> None:
        t0 = time.monotonic()
        frame = optical_frame(cam)  # its pose: /tf_static + /tf at stamp t
        img_pub, info_pub, depth_pub = self.cam_pubs[cam]
        img_pub.publish(conv.rgb_image(rgb, t, frame))
        depth_pub.publish(conv.depth_image(depth, t, frame, self.depth_encoding))
        info_pub.publish(conv.camera_info(rig.intrinsics(cam), self.width, self.height, t, frame))
        self.health.latency(f"camera.{cam}.render_publish", render_s + time.monotonic() - t0)
        self.health.tick(f"camera.{cam}", time.monotonic())

    def check_loop(self) -> None:
        if self._loop_error is not None:
            raise RuntimeError(
                f"simulation loop failed: {self._loop_error!r}"
            ) from self._loop_error

    def shutdown(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)  # one slice and a render; spin_node bounds the rest


def main(args: list[str] | None = None) -> None:
    spin_node(SimNode, args, check=SimNode.check_loop)


if __name__ == "__main__":
    main()
