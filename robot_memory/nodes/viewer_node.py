"""Viewer node: the live stack in a browser, through Rerun's web viewer.

Thin adapter over :class:`robot_memory.viewer.live_scene.LiveScene`. In: the
cameras' colour images (raw or ``image_transport: compressed``; at most
``image_rate_hz`` per camera) and camera_info, ``/tf`` and ``/tf_static``
(the arm's links and the cameras' poses), ``/joint_states`` (when to redraw
the arm), ``/memory/scene_graph``, ``/planner/plan``, ``/planner/status``,
``/policy/status``. Out: a web page on ``web_port`` (Rerun's viewer, served
from the installed wheel) streaming from a gRPC server on ``grpc_port``; the
address is logged at start. Bad input is counted and dropped like anywhere
else (:class:`InputBoundary`); the viewer never publishes to the stack.
"""

from __future__ import annotations

import numpy as np
from rclpy.node import Node
from robot_memory_interfaces.msg import Plan as PlanMsg
from robot_memory_interfaces.msg import PlannerStatus, PolicyStatus, SceneGraph
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, JointState

from robot_memory.bringup.node_parameters import VIEWER_PARAMETERS
from robot_memory.health.counters import HealthCounters
from robot_memory.nodes.conversions import camera_image_topics, from_time, rgb_or_none
from robot_memory.nodes.diagnostics import DiagnosticsPublisher
from robot_memory.nodes.input_boundary import InputBoundary
from robot_memory.nodes.memory_conversions import scene_graph_from_msg
from robot_memory.nodes.node_main import spin_node
from robot_memory.nodes.parameters import declare_parameters
from robot_memory.nodes.planner_conversions import plan_from_msg, planner_status_from_msg
from robot_memory.nodes.qos import COMMAND, LATCHED, SENSOR, STATUS
from robot_memory.nodes.skill_conversions import policy_status_from_msg
from robot_memory.nodes.tf_listener import TfListener
from robot_memory.viewer.live_scene import LiveScene, serve

ARM_LINKS = [*(f"link{i}" for i in range(8)), "hand"]


class ViewerNode(Node):
    def __init__(self) -> None:
        super().__init__("viewer")
        p = declare_parameters(self, VIEWER_PARAMETERS)
        self.cameras = list(p["cameras"])
        self.world = str(p["world_frame"])
        self.links = [f"{p['arm_id']}_{name}" for name in ARM_LINKS]
        recording, self.url = serve(
            self.cameras, int(p["web_port"]), int(p["grpc_port"]), str(p["memory_limit"])
        )
        self.scene = LiveScene(recording, int(p["jpeg_quality"]), float(p["image_rate_hz"]),
                               float(p["robot_rate_hz"]))  # fmt: skip
        self.health = HealthCounters("viewer")
        self.inputs = InputBoundary(self, self.health)
        self.info: dict[str, CameraInfo] = {}
        self.tf = TfListener(self.inputs, cache_s=10.0)
        sub = self.inputs.subscribe
        for cam in self.cameras:
            t = camera_image_topics(cam, str(p["image_transport"]))
            sub(t.kind, t.color, lambda m, c=cam: self.on_image(c, m), SENSOR)
            on_info = lambda m, c=cam: self.info.update({c: m})  # noqa: E731
            sub(CameraInfo, f"/camera/{cam}/color/camera_info", on_info, SENSOR)
        sub(JointState, "/joint_states", self.on_joints, COMMAND)
        sub(SceneGraph, "/memory/scene_graph", self.on_scene_graph, LATCHED)
        sub(PlanMsg, "/planner/plan", self.on_plan, STATUS)
        sub(PlannerStatus, "/planner/status", self.on_planner_status, STATUS)
        sub(PolicyStatus, "/policy/status", self.on_policy_status, STATUS)
        self.diagnostics = DiagnosticsPublisher(self, self.health)
        self.get_logger().info(f"viewer ready: open {self.url}")
        print(f"[viewer] open {self.url}", flush=True)

    def on_image(self, cam: str, msg: Image | CompressedImage) -> None:
        stamp = from_time(msg.header.stamp)
        if not self.scene.wants_image(cam, stamp):
            return  # the viewer's rate, not the camera's
        if isinstance(msg, CompressedImage) and "jpeg" in msg.format.lower():
            self.scene.camera_image(cam, stamp, jpeg=bytes(msg.data))
        else:
            rgb = rgb_or_none(msg)
            if rgb is None:
                self.inputs.reject("unsupported image", f"{cam}: not rgb8 or JPEG, not shown")
                return
            self.scene.camera_image(cam, stamp, rgb=rgb)
        info = self.info.get(cam)
        frame = msg.header.frame_id or f"{cam}_color_optical_frame"
        pose = self.tf.pose_at(self.world, frame, stamp)
        if info is not None and not isinstance(pose, str):
            k = np.array(info.k, dtype=float).reshape(3, 3)
            self.scene.camera_pose(cam, stamp, pose.translation, pose.rotation, k,
                                   (info.width, info.height))  # fmt: skip

    def on_joints(self, msg: JointState) -> None:
        stamp = from_time(msg.header.stamp)
        if not self.scene.wants_robot(stamp):
            return
        poses = [self.tf.pose_at(self.world, link, stamp) for link in self.links]
        self.scene.robot(stamp, [p.translation for p in poses if not isinstance(p, str)])

    def on_scene_graph(self, msg: SceneGraph) -> None:
        self.scene.scene_graph(scene_graph_from_msg(msg))

    def on_plan(self, msg: PlanMsg) -> None:
        planner = self.scene.status.planner
        self.scene.plan(plan_from_msg(msg), planner.stamp if planner is not None else 0.0)

    def on_planner_status(self, msg: PlannerStatus) -> None:
        self.scene.planner_status(planner_status_from_msg(msg))

    def on_policy_status(self, msg: PolicyStatus) -> None:
        self.scene.policy_status(policy_status_from_msg(msg))


def main(args: list[str] | None = None) -> None:
    spin_node(ViewerNode, args)


if __name__ == "__main__":
    main()
