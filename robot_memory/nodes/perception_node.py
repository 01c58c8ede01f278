"""Perception node: RGB-D cameras -> objects in the world frame.

Thin adapter over :class:`robot_memory.perception.PerceptionPipeline`. The
cameras' colour, aligned depth and camera_info, paired by stamp and posed by
``/tf`` at the image's stamp, come from
:class:`robot_memory.nodes.camera_inputs.CameraInputs`. The newest complete
frame of each camera, at most ``max_rate_hz`` per camera and staggered between
cameras (:class:`robot_memory.perception.frame_gate.FrameGate`; the others
count as ``skipped_frames``), goes to a worker thread
(:class:`robot_memory.nodes.latest_frames.LatestFrameWorker`); one that arrives
while the previous one still waits replaces it (``dropped_frames``).

Output: ``/perception/observations`` (robot_memory_interfaces/msg/ObservationFrame).
Every input it cannot use is logged with the reason and counted on
``/diagnostics``; no message ends the node (:class:`InputBoundary`).
"""

from __future__ import annotations

import time

import numpy as np
from rclpy.node import Node
from robot_memory_interfaces.msg import ObservationFrame
from sensor_msgs.msg import JointState

from robot_memory.bringup.node_parameters import PERCEPTION_PARAMETERS
from robot_memory.cell import load_cell
from robot_memory.health.counters import HealthCounters
from robot_memory.nodes.camera_inputs import CameraInputs
from robot_memory.nodes.conversions import decode_rgbd
from robot_memory.nodes.diagnostics import DiagnosticsPublisher
from robot_memory.nodes.input_boundary import InputBoundary
from robot_memory.nodes.latest_frames import LatestFrameWorker
from robot_memory.nodes.memory_conversions import observation_frame_to_msg
from robot_memory.nodes.node_main import spin_node
from robot_memory.nodes.parameters import declare_parameters
from robot_memory.nodes.qos import COMMAND
from robot_memory.nodes.tf_listener import parse_camera_frames
from robot_memory.perception import PerceptionConfig, PerceptionInputError
from robot_memory.perception.camera_sync import SyncedFrame
from robot_memory.perception.frame_gate import FrameGate
from robot_memory.perception.labelling.factory import LabellerSettings, make_labeller
from robot_memory.perception.observations import frame_to_payload
from robot_memory.perception.pipeline import PerceptionPipeline


class PerceptionNode(Node):
    def __init__(self) -> None:
        super().__init__("perception")
        p = declare_parameters(self, PERCEPTION_PARAMETERS)
        self.cameras = [str(c) for c in p["cameras"]]
        self.use_robot_mask = bool(p["use_robot_mask"])
        config = PerceptionConfig(stride=int(p["stride"]), num_threads=int(p["num_threads"]))
        labeller = make_labeller(LabellerSettings.from_parameters(p))
        cell = load_cell(str(p["cell_file"]) or None)
        self.pipeline = PerceptionPipeline(config, cell, labeller)
        self.health = HealthCounters("perception")
        self.gate = FrameGate(self.cameras, float(p["max_rate_hz"]))
        self.inputs = InputBoundary(self, self.health)
        self.out_pub = self.create_publisher(ObservationFrame, "/perception/observations", COMMAND)
        self.worker: LatestFrameWorker[SyncedFrame] = LatestFrameWorker(
            self._process,
            self._failed,
            lambda: self.health.increment("dropped_frames"),
            name="perception",
        )
        self.cameras_in = CameraInputs(
            self.inputs,
            self.cameras,
            self._admit,
            world_frame=str(p["world_frame"]),
            camera_frames=parse_camera_frames(str(p["camera_frames"])),
            sync_tolerance_s=float(p["sync_tolerance_s"]),
            pose_wait_s=float(p["transform_wait_s"]),
            tf_cache_s=float(p["tf_cache_s"]),
            image_transport=str(p["image_transport"]),
        )
        self.joints: dict[str, float] | None = None
        self.inputs.subscribe(JointState, "/joint_states", self.on_joints, COMMAND)
        self.diagnostics = DiagnosticsPublisher(self, self.health)

        rate = f"{self.gate.rate_hz:g} Hz each" if self.gate.rate_hz else "every frame"
        self.get_logger().info(
            f"perception on cameras {self.cameras}, {rate}; labeller {p['labeller']}; robot mask "
            f"{'on' if self.use_robot_mask else 'off'}; extrinsics from /tf in "
            f"{self.cameras_in.world_frame!r}; output /perception/observations"
        )

    # -- inputs (executor thread) ---------------------------------------------
    def on_joints(self, msg: JointState) -> None:
        if len(msg.name) != len(msg.position) or not np.all(np.isfinite(msg.position)):
            self._reject("malformed joint_states", "joint_states with NaN or mismatched names")
            return
        self.joints = dict(zip(msg.name, (float(v) for v in msg.position), strict=True))

    def _reject(self, reason: str, text: str) -> None:
        self.cameras_in.reject(reason, text)  # counted; logged at most once a second

    def _admit(self, camera: str, frame: SyncedFrame) -> None:
        if self.gate.admit(camera, frame.stamp):
            self.worker.put(camera, frame)
        else:
            self.health.increment("skipped_frames")

    # -- worker thread --------------------------------------------------------
    def _failed(self, frame: SyncedFrame, exc: Exception) -> None:
        if self.context.ok():  # else the context went away mid-frame at shutdown
            where = f"{frame.camera} frame at {frame.stamp:.3f}"
            self._reject("processing error", f"{where}: {exc!r}")

    def _process(self, frame: SyncedFrame) -> None:
        t0 = time.monotonic()
        try:
            rgb, depth, k = decode_rgbd(frame.color, frame.depth, frame.info)
            result = self.pipeline.process(
                rgb,
                depth,
                k,
                np.asarray(frame.pose.translation, dtype=float),
                np.asarray(frame.pose.rotation, dtype=float),
                frame.stamp,
                frame.camera,
                self.joints if self.use_robot_mask else None,
            )
        except PerceptionInputError as err:
            self._reject(err.reason, f"{frame.camera} frame at {frame.stamp:.3f}: {err}")
            return
        if not self.context.ok():
            return  # shutting down (Ctrl-C): the publisher is gone with the context
        self.out_pub.publish(observation_frame_to_msg(frame_to_payload(result)))
        self.health.latency(f"process.{frame.camera}", time.monotonic() - t0)
        self.health.tick(f"frames.{frame.camera}", self.get_clock().now().nanoseconds * 1e-9)
        self.health.set_value(f"objects.{frame.camera}", len(result.objects))

    def shutdown(self) -> None:
        self.pipeline.labeller.close()
        self.worker.stop(timeout_s=1.0)  # spin_node exits 1.8 s after the signal anyway


def main(args: list[str] | None = None) -> None:
    spin_node(PerceptionNode, args)


if __name__ == "__main__":
    main()
