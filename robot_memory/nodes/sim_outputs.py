"""What the sim node publishes, as a real cell does: ``/clock``,
``/joint_states``, ``/tf`` (before that instant's images), ``/tf_static``
(latched, one message), ``/sim/ground_truth`` and per camera the
realsense-style colour, aligned depth and camera_info topics (frame
``<cam>_color_optical_frame``), raw or, for a network link, compressed the way
image_transport's plugins publish them (``.../image_raw/compressed`` JPEG,
``.../image_raw/compressedDepth`` PNG). :meth:`SimPublishers.emit` turns one
:class:`robot_memory.sim.realtime_loop.SimOutputs` into messages (the loop
thread).
"""

from __future__ import annotations

import time

from rclpy.node import Node
from robot_memory_interfaces.msg import GroundTruth as GroundTruthMsg
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, JointState
from tf2_msgs.msg import TFMessage

from robot_memory.health.counters import HealthCounters
from robot_memory.nodes import conversions as conv
from robot_memory.nodes.qos import COMMAND, SENSOR, TF, TF_STATIC
from robot_memory.nodes.sim_conversions import ground_truth_to_msg
from robot_memory.perception import image_messages
from robot_memory.robot.panda import ALL_JOINTS
from robot_memory.sim.frames import optical_frame
from robot_memory.sim.realtime_loop import CameraRender, SimOutputs


class SimPublishers:
    def __init__(
        self,
        node: Node,
        health: HealthCounters,
        cameras: list[str],
        size: tuple[int, int],
        depth_encoding: str,
        world_frame: str,
        image_transport: str = "raw",
        jpeg_quality: int = 90,
    ) -> None:
        if depth_encoding not in ("16UC1", "32FC1"):
            raise ValueError(f"depth_encoding must be 16UC1 or 32FC1, got {depth_encoding}")
        if not 1 <= jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be 1..100, got {jpeg_quality}")
        self.compressed, self.jpeg_quality = image_transport == "compressed", jpeg_quality
        self.health, self.size = health, size
        self.depth_encoding, self.world_frame = depth_encoding, world_frame
        self.clock_pub = node.create_publisher(Clock, "/clock", 10)
        self.joint_pub = node.create_publisher(JointState, "/joint_states", COMMAND)
        self.tf_pub = node.create_publisher(TFMessage, "/tf", TF)
        self.tf_static_pub = node.create_publisher(TFMessage, "/tf_static", TF_STATIC)
        self.gt_pub = node.create_publisher(GroundTruthMsg, "/sim/ground_truth", COMMAND)
        topics = {cam: conv.camera_image_topics(cam, image_transport) for cam in cameras}
        self.cam_pubs = {
            cam: (
                node.create_publisher(t.kind, t.color, SENSOR),
                node.create_publisher(CameraInfo, f"/camera/{cam}/color/camera_info", SENSOR),
                node.create_publisher(t.kind, t.depth, SENSOR),
            )
            for cam, t in topics.items()
        }

    def static(self, changed: tuple | None) -> None:
        """All static transforms in one latched message, when they changed."""
        if changed is not None:
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
        if self.compressed:
            fmt, jpeg = image_messages.encode_compressed_color(render.rgb, self.jpeg_quality)
            img_pub.publish(conv.compressed_image(fmt, jpeg, t, frame))
            png = image_messages.encode_compressed_depth(render.depth, self.depth_encoding)
            fmt = image_messages.compressed_depth_format(self.depth_encoding)
            depth_pub.publish(conv.compressed_image(fmt, png, t, frame))
        else:
            img_pub.publish(conv.rgb_image(render.rgb, t, frame))
            depth_pub.publish(conv.depth_image(render.depth, t, frame, self.depth_encoding))
        width, height = self.size
        info_pub.publish(conv.camera_info(render.intrinsics, width, height, t, frame))
        took = render.render_s + time.monotonic() - t0
        self.health.latency(f"camera.{cam}.render_publish", took)
        self.health.tick(f"camera.{cam}", time.monotonic())
