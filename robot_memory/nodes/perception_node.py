"""Perception node: RGB-D cameras -> objects in the world frame.

Thin adapter over :class:`robot_memory.perception.PerceptionPipeline`. For each
camera it subscribes to the realsense-style colour, aligned depth and
camera_info topics and pairs them by stamp
(:class:`robot_memory.perception.camera_sync.CameraSync`).

Camera extrinsics come from ``/tf`` and ``/tf_static`` (tf2_msgs/msg/TFMessage)
kept in a :class:`robot_memory.transforms.tf_buffer.TransformBuffer`: the pose
of the image's ``header.frame_id`` (or the ``camera_frames`` override) in
``world_frame`` **at the image's stamp**, interpolated between samples, never
extrapolated. A frame whose transform has not arrived yet waits (up to
``transform_wait_s`` of stream time, re-tried on every ``/tf`` message) and is
processed when it arrives; else it is dropped and counted as ``missing
transform``; it is never processed with another instant's pose. Static
transforms hold at every time. ``/tf`` going back in time by more than a
second (a restarted sim, a looping bag) clears the dynamic transforms.

The newest complete frame of each camera goes to a worker thread
(:class:`robot_memory.nodes.latest_frames.LatestFrameWorker`): a frame that
arrives while the previous one of the same camera still waits replaces it
(counted as ``dropped_frames``): perception runs on the freshest data.

Output: ``/perception/observations`` (robot_memory_interfaces/msg/ObservationFrame).
Every input it cannot use is logged with the reason and counted on
``/diagnostics``, every frame the sync drops too (``missing transform``,
``missing depth``, ...); every subscription goes through
:class:`InputBoundary`: no message ends the node.
"""

from __future__ import annotations

import time

import numpy as np
from rclpy.node import Node
from robot_memory_interfaces.msg import ObservationFrame
from sensor_msgs.msg import CameraInfo, Image, JointState

from robot_memory.bringup.node_parameters import PERCEPTION_PARAMETERS
from robot_memory.cell import load_cell
from robot_memory.health.counters import HealthCounters
from robot_memory.nodes.conversions import decode_rgbd, from_time
from robot_memory.nodes.diagnostics import DiagnosticsPublisher
from robot_memory.nodes.input_boundary import InputBoundary
from robot_memory.nodes.latest_frames import LatestFrameWorker
from robot_memory.nodes.memory_conversions import observation_frame_to_msg
from robot_memory.nodes.node_main import spin_node
from robot_memory.nodes.parameters import declare_parameters
from robot_memory.nodes.qos import COMMAND, SENSOR
from robot_memory.nodes.tf_listener import TfListener, parse_camera_frames
from robot_memory.perception import PerceptionConfig, PerceptionInputError, PerceptionPipeline
from robot_memory.perception.camera_sync import CameraSync, SyncedFrame, SyncError
from robot_memory.perception.image_decoding import check_image
from robot_memory.perception.observations import frame_to_payload
from robot_memory.transforms.tf_buffer import Transform


class PerceptionNode(Node):
    def __init__(self) -> None:
        super().__init__("perception")
        p = declare_parameters(self, PERCEPTION_PARAMETERS)
        self.cameras = [str(c) for c in p["cameras"]]
        self.use_robot_mask = bool(p["use_robot_mask"])
        config = PerceptionConfig(stride=int(p["stride"]), num_threads=int(p["num_threads"]))
        self.pipeline = PerceptionPipeline(config, load_cell(str(p["cell_file"]) or None))
        self.health = HealthCounters("perception")
        self.inputs = InputBoundary(self, self.health)
        self.out_pub = self.create_publisher(ObservationFrame, "/perception/observations", COMMAND)
        self.world_frame = str(p["world_frame"])
        self.camera_frames = parse_camera_frames(str(p["camera_frames"]))
        self._tf_errors: dict[str, str] = {}  # the last lookup failure per camera
        tolerance, wait = float(p["sync_tolerance_s"]), float(p["transform_wait_s"])
        self.syncs: dict[str, CameraSync] = {}
        for cam in self.cameras:
            self.syncs[cam] = CameraSync(
                cam,
                tolerance_s=tolerance,
                pose_wait_s=wait,
                on_drop=lambda r, d, c=cam: self._dropped(c, r, d),
                pose_source=lambda stamp, color, c=cam: self._camera_pose(c, stamp, color),
            )
            base, sub = f"/camera/{cam}", self.inputs.subscribe
            sub(Image, f"{base}/color/image_raw", lambda m, c=cam: self.on_color(c, m), SENSOR)
            depth_topic = f"{base}/aligned_depth_to_color/image_raw"
            sub(Image, depth_topic, lambda m, c=cam: self.on_depth(c, m), SENSOR)
            info_topic = f"{base}/color/camera_info"
            sub(CameraInfo, info_topic, lambda m, c=cam: self.on_info(c, m), SENSOR)
        self.tf = TfListener(self.inputs, float(p["tf_cache_s"]), self._on_tf)
        self.joints: dict[str, float] | None = None
        self.inputs.subscribe(JointState, "/joint_states", self.on_joints, COMMAND)
        self.diagnostics = DiagnosticsPublisher(self, self.health)

        self.worker: LatestFrameWorker[SyncedFrame] = LatestFrameWorker(
            self._process,
            self._failed,
            lambda: self.health.increment("dropped_frames"),
            name="perception",
        )
        self.get_logger().info(
            f"perception on cameras {self.cameras}; robot mask "
            f"{'on' if self.use_robot_mask else 'off'}; extrinsics from /tf in "
            f"{self.world_frame!r}; output /perception/observations"
        )

    # -- inputs (executor thread: convert, pair, hand over) -------------------
    def on_color(self, cam: str, msg: Image) -> None:
        check_image("colour", msg.encoding, msg.height, msg.width, msg.step, len(msg.data))
        self._sync(cam, lambda s: s.add_color(from_time(msg.header.stamp), msg))

    def on_depth(self, cam: str, msg: Image) -> None:
        check_image("depth", msg.encoding, msg.height, msg.width, msg.step, len(msg.data))
        self._sync(cam, lambda s: s.add_depth(from_time(msg.header.stamp), msg))

    def _on_tf(self) -> None:
        for cam in self.cameras:  # frames waiting for these transforms
            self._sync(cam, lambda s: s.poll())

    def _camera_pose(self, cam: str, stamp: float, color: Image) -> Transform | None:
        """world <- the camera's optical frame at ``stamp``; None: not (yet) known."""
        frame = self.camera_frames.get(cam) or color.header.frame_id
        pose = self.tf.pose_at(self.world_frame, frame, stamp)
        if isinstance(pose, str):
            self._tf_errors[cam] = pose
            return None
        return pose

    def _dropped(self, cam: str, reason: str, detail: str) -> None:
        if reason == "missing transform" and cam in self._tf_errors:
            detail = f"{detail} ({self._tf_errors[cam]})"
        self._reject(reason, f"dropped: {detail}")

    def on_info(self, cam: str, msg: CameraInfo) -> None:
        k = np.array(msg.k, dtype=float).reshape(3, 3)
        if not np.all(np.isfinite(k)) or k[0, 0] <= 0 or k[1, 1] <= 0:
            self._reject("bad intrinsics", f"{cam} camera_info with K={list(msg.k)} ignored")
            return
        self.syncs[cam].set_info(msg)

    def on_joints(self, msg: JointState) -> None:
        if len(msg.name) != len(msg.position) or not np.all(np.isfinite(msg.position)):
            self._reject("malformed joint_states", "joint_states with NaN or mismatched names")
            return
        self.joints = dict(zip(msg.name, (float(v) for v in msg.position), strict=True))

    def _sync(self, cam: str, add) -> None:
        try:
            frame = add(self.syncs[cam])
        except SyncError as err:
            self._reject(err.reason, str(err))
            return
        if frame is not None:
            self.worker.put(cam, frame)

    def _reject(self, reason: str, text: str) -> None:
        # counted; logged at most once a second per reason (also from the worker)
        self.inputs.reject(reason, f"rejected ({reason}): {text}")

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
        self.worker.stop(timeout_s=1.0)  # spin_node exits 1.8 s after the signal anyway


def main(args: list[str] | None = None) -> None:
    spin_node(PerceptionNode, args)


if __name__ == "__main__":
    main()
