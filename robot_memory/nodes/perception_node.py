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

The newest complete frame of each camera goes to a worker thread, so the
executor never blocks on point-cloud work. A frame that arrives while the
previous one of the same camera is still being processed replaces it (counted as
``dropped_frames``): perception runs on the freshest data, never on a backlog.

Output: ``/perception/observations`` (robot_memory_interfaces/msg/ObservationFrame).
Every input it cannot use is logged with the reason and counted on
``/diagnostics``, every frame the sync drops too (``missing transform``,
``missing depth``, ...); every subscription goes through
:class:`InputBoundary`: no message ends the node.
"""

from __future__ import annotations

import threading
import time

import numpy as np
from rclpy.node import Node
from robot_memory_interfaces.msg import ObservationFrame
from sensor_msgs.msg import CameraInfo, Image, JointState

from robot_memory.bringup.launch_spec import PERCEPTION_PARAMETERS
from robot_memory.cell import load_cell
from robot_memory.health.counters import HealthCounters
from robot_memory.nodes.conversions import from_time
from robot_memory.nodes.diagnostics import DiagnosticsPublisher
from robot_memory.nodes.input_boundary import InputBoundary
from robot_memory.nodes.memory_conversions import observation_frame_to_msg
from robot_memory.nodes.node_main import spin_node
from robot_memory.nodes.qos import COMMAND, SENSOR
from robot_memory.nodes.tf_listener import TfListener, parse_camera_frames
from robot_memory.perception import (
    PerceptionConfig,
    PerceptionInputError,
    PerceptionPipeline,
    decode_color,
    decode_depth,
)
from robot_memory.perception.camera_sync import CameraSync, SyncedFrame, SyncError
from robot_memory.perception.image_decoding import check_image
from robot_memory.perception.observations import frame_to_payload
from robot_memory.transforms.tf_buffer import Transform


class PerceptionNode(Node):
    def __init__(self) -> None:
        super().__init__("perception")
        for name, default in PERCEPTION_PARAMETERS.items():
            self.declare_parameter(name, default)
        p = self.get_parameter
        self.cameras = [str(c) for c in p("cameras").value]
        self.use_robot_mask = bool(p("use_robot_mask").value)
        config = PerceptionConfig(
            stride=int(p("stride").value),
            num_threads=int(p("num_threads").value),
        )
        cell_file = str(p("cell_file").value)
        self.pipeline = PerceptionPipeline(config, load_cell(cell_file or None))
        self.health = HealthCounters("perception")
        self.inputs = InputBoundary(self, self.health)
        self.out_pub = self.create_publisher(ObservationFrame, "/perception/observations", COMMAND)
        self.world_frame = str(p("world_frame").value)
        self.camera_frames = parse_camera_frames(str(p("camera_frames").value))
        self._tf_errors: dict[str, str] = {}  # the last lookup failure per camera
        tolerance = float(p("sync_tolerance_s").value)
        wait = float(p("transform_wait_s").value)
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
            sub(
                Image,
                f"{base}/aligned_depth_to_color/image_raw",
                lambda m, c=cam: self.on_depth(c, m),
                SENSOR,
            )
            sub(
                CameraInfo, f"{base}/color/camera_info", lambda m, c=cam: self.on_info(c, m), SENSOR
            )
        self.tf = TfListener(self.inputs, float(p("tf_cache_s").value), self._on_tf)
        self.joints: dict[str, float] | None = None
        self.inputs.subscribe(JointState, "/joint_states", self.on_joints, COMMAND)
        self.diagnostics = DiagnosticsPublisher(self, self.health)

        self._pending: dict[str, SyncedFrame] = {}
        self._wake = threading.Condition()
        self._stop = False
        self._worker = threading.Thread(target=self._work, name="perception", daemon=True)
        self._worker.start()
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
        if frame is None:
            return
        with self._wake:
            if cam in self._pending:
                self.health.increment("dropped_frames")
            self._pending[cam] = frame
            self._wake.notify()

    def _reject(self, reason: str, text: str) -> None:
        # counted; logged at most once a second per reason (also from the worker)
        self.inputs.reject(reason, f"rejected ({reason}): {text}")

    # -- worker thread --------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._wake:
                while not self._pending and not self._stop:
                    self._wake.wait(0.5)
                if self._stop:
                    return
                cam = next(iter(self._pending))
                frame = self._pending.pop(cam)
            try:
                self._process(frame)
            except Exception as exc:  # noqa: BLE001 - the node must outlive one bad frame
                if not self.context.ok():
                    return  # the context went away mid-frame at shutdown
                where = f"{frame.camera} frame at {frame.stamp:.3f}"
                self._reject("processing error", f"{where}: {exc!r}")

    def _process(self, frame: SyncedFrame) -> None:
        t0 = time.monotonic()
        color, depth, info, pose = frame.color, frame.depth, frame.info, frame.pose
        try:
            rgb = decode_color(color.encoding, color.height, color.width, color.step, color.data)
            dep = decode_depth(
                depth.encoding,
                depth.height,
                depth.width,
                depth.step,
                depth.data,
                bool(depth.is_bigendian),
            )
            if (info.width, info.height) != (0, 0) and (info.width, info.height) != (
                color.width,
                color.height,
            ):
                raise PerceptionInputError(
                    "size mismatch",
                    f"camera_info is {info.width}x{info.height}, "
                    f"colour is {color.width}x{color.height}",
                )
            result = self.pipeline.process(
                rgb,
                dep,
                np.array(info.k, dtype=float).reshape(3, 3),
                np.asarray(pose.translation, dtype=float),
                np.asarray(pose.rotation, dtype=float),
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
        with self._wake:
            self._stop = True
            self._wake.notify()
        self._worker.join(timeout=1.0)  # spin_node exits 1.8 s after the signal anyway


def main(args: list[str] | None = None) -> None:
    spin_node(PerceptionNode, args)


if __name__ == "__main__":
    main()
