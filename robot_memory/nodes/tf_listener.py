"""A tf2-style listener for the pip world: ``/tf`` and ``/tf_static``
(tf2_msgs/msg/TFMessage) into a ROS-free
:class:`robot_memory.transforms.tf_buffer.TransformBuffer`.

tf2_ros is not on PyPI; this is the part of ``tf2_ros.TransformListener`` a
node needs: the subscriptions with tf2's QoS (through the node's
:class:`InputBoundary`), malformed transforms rejected and counted
(``malformed transform``), ``/tf`` going back in time by more than
``JUMP_BACK_S`` (a restarted sim, a looping bag) clears the dynamic transforms
(counted as ``tf time went backwards``), and an ``on_update`` hook run after
every message (perception re-tries the frames waiting for a transform).
Lookups never extrapolate: :meth:`pose_at` interpolates between the samples
around the stamp, or says why it cannot (yet).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from tf2_msgs.msg import TFMessage

from robot_memory.nodes.conversions import from_time
from robot_memory.nodes.input_boundary import InputBoundary
from robot_memory.nodes.qos import TF, TF_STATIC
from robot_memory.transforms.tf_buffer import Transform, TransformBuffer, TransformError

JUMP_BACK_S = 1.0  # /tf this much older than the newest seen: time restarted


class TfListener:
    """Keeps ``/tf`` and ``/tf_static`` for a node (single-threaded executor)."""

    def __init__(
        self,
        inputs: InputBoundary,
        cache_s: float = 10.0,
        on_update: Callable[[], None] | None = None,
    ) -> None:
        self.inputs = inputs
        self.buffer = TransformBuffer(cache_s=cache_s, tolerance_s=0.0)
        self.on_update = on_update
        self._newest = float("-inf")
        inputs.subscribe(TFMessage, "/tf", lambda m: self._add(m, False), TF)
        inputs.subscribe(TFMessage, "/tf_static", lambda m: self._add(m, True), TF_STATIC)

    def _add(self, msg: TFMessage, static: bool) -> None:
        topic = "/tf_static" if static else "/tf"
        for ts in msg.transforms:
            t, r = ts.transform.translation, ts.transform.rotation
            values = (t.x, t.y, t.z, r.w, r.x, r.y, r.z)
            if not np.all(np.isfinite(values)) or np.linalg.norm(values[3:]) < 1e-6:
                self.inputs.reject(
                    "malformed transform", f"{topic} {ts.child_frame_id!r} ignored: {values}"
                )
                continue
            stamp = from_time(ts.header.stamp)
            if not static:
                if stamp < self._newest - JUMP_BACK_S:
                    self.buffer.clear()
                    self._newest = stamp
                    self.inputs.reject(
                        "tf time went backwards",
                        f"{topic} at {stamp:.3f} s: dynamic transforms cleared",
                    )
                self._newest = max(self._newest, stamp)
            self.buffer.add(
                ts.header.frame_id, ts.child_frame_id, stamp, (t.x, t.y, t.z),
                (r.w, r.x, r.y, r.z), static,
            )  # fmt: skip
        if self.on_update is not None:
            self.on_update()

    def pose_at(self, target: str, source: str, stamp: float) -> Transform | str:
        """``target <- source`` at ``stamp`` (interpolated, never extrapolated),
        or why not (yet)."""
        if not source:
            return "the image has no header.frame_id (set camera_frames)"
        try:
            return self.buffer.lookup(target, source, stamp, tolerance_s=0.0)
        except TransformError as err:
            return f"{target} <- {source}: {err}"


def parse_camera_frames(text: str) -> dict[str, str]:
    """``"front=cam_a_optical,wrist=cam_b_optical"`` -> per-camera TF frame overrides."""
    out: dict[str, str] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        cam, sep, frame = (x.strip() for x in item.partition("="))
        if not sep or not cam or not frame:
            raise ValueError(f"camera_frames: expected camera=frame, got {item!r}")
        out[cam] = frame
    return out
