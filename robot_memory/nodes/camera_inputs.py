"""A node's RGB-D camera inputs: realsense-style topics paired by stamp, posed by /tf.

For each camera: ``/camera/<cam>/color/image_raw``,
``/camera/<cam>/aligned_depth_to_color/image_raw`` and
``/camera/<cam>/color/camera_info`` (with ``image_transport`` "compressed":
the images' ``/compressed`` and ``/compressedDepth`` CompressedImage topics,
decoded when a frame is processed), paired by
:class:`robot_memory.perception.camera_sync.CameraSync`. The camera's pose is
the ``/tf`` transform ``world_frame <- header.frame_id`` (or the
``camera_frames`` override) **at the image's stamp**, interpolated, never
extrapolated; a frame whose transform has not arrived waits up to
``pose_wait_s`` of stream time (re-tried on every ``/tf`` message), else it is
dropped as ``missing transform`` with the lookup's reason. Every input it
cannot use is rejected through the node's :class:`InputBoundary` (counted on
``/diagnostics``, logged at most once a second per reason).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from robot_memory.nodes.conversions import camera_image_topics, from_time
from robot_memory.nodes.input_boundary import InputBoundary
from robot_memory.nodes.qos import SENSOR
from robot_memory.nodes.tf_listener import TfListener
from robot_memory.perception.camera_sync import CameraSync, SyncedFrame, SyncError
from robot_memory.perception.image_decoding import check_image
from robot_memory.perception.image_messages import check_compressed
from robot_memory.transforms.tf_buffer import Transform


class CameraInputs:
    """Subscribes the cameras' topics and ``/tf``; hands each complete, posed
    frame to ``on_frame(camera, frame)`` (on the executor's thread)."""

    def __init__(
        self,
        inputs: InputBoundary,
        cameras: list[str],
        on_frame: Callable[[str, SyncedFrame], None],
        *,
        world_frame: str,
        camera_frames: dict[str, str],
        sync_tolerance_s: float,
        pose_wait_s: float,
        tf_cache_s: float,
        image_transport: str = "raw",
    ) -> None:
        self.inputs = inputs
        self.cameras = list(cameras)
        self.on_frame = on_frame
        self.world_frame = world_frame
        self.camera_frames = camera_frames
        self._tf_errors: dict[str, str] = {}  # the last lookup failure per camera
        self.syncs: dict[str, CameraSync] = {}
        for cam in self.cameras:
            self.syncs[cam] = CameraSync(
                cam,
                tolerance_s=sync_tolerance_s,
                pose_wait_s=pose_wait_s,
                on_drop=lambda r, d, c=cam: self._dropped(c, r, d),
                pose_source=lambda stamp, color, c=cam: self._camera_pose(c, stamp, color),
            )
            base, sub = f"/camera/{cam}", inputs.subscribe
            t = camera_image_topics(cam, image_transport)
            sub(t.kind, t.color, lambda m, c=cam: self.on_color(c, m), SENSOR)
            sub(t.kind, t.depth, lambda m, c=cam: self.on_depth(c, m), SENSOR)
            info_topic = f"{base}/color/camera_info"
            sub(CameraInfo, info_topic, lambda m, c=cam: self.on_info(c, m), SENSOR)
        self.tf = TfListener(inputs, tf_cache_s, self._on_tf)

    def on_color(self, cam: str, msg: Image | CompressedImage) -> None:
        _check("colour", msg)
        self._sync(cam, lambda s: s.add_color(from_time(msg.header.stamp), msg))

    def on_depth(self, cam: str, msg: Image | CompressedImage) -> None:
        _check("depth", msg)
        self._sync(cam, lambda s: s.add_depth(from_time(msg.header.stamp), msg))

    def on_info(self, cam: str, msg: CameraInfo) -> None:
        k = np.array(msg.k, dtype=float).reshape(3, 3)
        if not np.all(np.isfinite(k)) or k[0, 0] <= 0 or k[1, 1] <= 0:
            self.reject("bad intrinsics", f"{cam} camera_info with K={list(msg.k)} ignored")
            return
        self.syncs[cam].set_info(msg)

    def reject(self, reason: str, text: str) -> None:
        self.inputs.reject(reason, f"rejected ({reason}): {text}")

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
        self.reject(reason, f"dropped: {detail}")

    def _sync(self, cam: str, add: Callable[[CameraSync], SyncedFrame | None]) -> None:
        try:
            frame = add(self.syncs[cam])
        except SyncError as err:
            self.reject(err.reason, str(err))
            return
        if frame is not None:
            self.on_frame(cam, frame)


def _check(kind: str, msg: Image | CompressedImage) -> None:
    """What can be checked before the frame is decoded; raises PerceptionInputError."""
    if isinstance(msg, CompressedImage):
        check_compressed(kind, msg.format, len(msg.data))
    else:
        check_image(kind, msg.encoding, msg.height, msg.width, msg.step, len(msg.data))
