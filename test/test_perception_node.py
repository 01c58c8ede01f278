"""The perception node over DDS, fed frames rendered by the sim in this process:
good frames give observations; bad ones are rejected with a reason, counted on
/diagnostics, and the node keeps working."""

from __future__ import annotations

import io

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String

from robot_memory.launch_spec import perception_node
from robot_memory.launcher import Launcher
from robot_memory.nodes import conversions as conv
from robot_memory.nodes.qos import COMMAND, SENSOR
from robot_memory.schemas import ObservationFrameMsg
from robot_memory.sim.cameras import CameraRig
from robot_memory.sim.runner import RunnerConfig, SimulationRunner
from ros_helpers import Probe, rejected, spin_for, spin_until

pytestmark = pytest.mark.ros
W, H = 320, 240


@pytest.fixture(scope="module")
def rendered():
    runner = SimulationRunner(RunnerConfig(seed=1, camera_rate=0, ground_truth_rate=0))
    rig = CameraRig(runner.physics.model, W, H, ("front",))
    rgb, depth = rig.render(runner.physics, "front")
    pos, quat = rig.optical_pose(runner.physics, "front")
    k = rig.intrinsics("front")
    rig.close()
    return rgb, depth, pos, quat, k


class Feeder:
    def __init__(self, probe: Probe, cam: str = "front") -> None:
        base = f"/camera/{cam}"
        self.color = probe.create_publisher(Image, f"{base}/color/image_raw", SENSOR)
        self.depth = probe.create_publisher(
            Image, f"{base}/aligned_depth_to_color/image_raw", SENSOR
        )
        self.info = probe.create_publisher(CameraInfo, f"{base}/color/camera_info", SENSOR)
        self.pose = probe.create_publisher(PoseStamped, f"{base}/pose", SENSOR)
        self.frame = f"{cam}_color_optical_frame"

    def send(self, t, rgb, depth, pos, quat, k, *, info=True, color_encoding="rgb8",
             depth_encoding="16UC1") -> None:  # fmt: skip
        if info:
            self.info.publish(conv.camera_info(k, rgb.shape[1], rgb.shape[0], t, self.frame))
        img = conv.rgb_image(rgb, t, self.frame)
        img.encoding = color_encoding
        self.color.publish(img)
        self.depth.publish(conv.depth_image(depth, t, self.frame, depth_encoding))
        self.pose.publish(conv.pose_stamped(pos, quat, t, "world"))


def test_perception_node_rejects_bad_frames_and_keeps_working(rendered):
    rgb, depth, pos, quat, k = rendered
    log = io.StringIO()
    spec = perception_node(cameras=["front"], use_robot_mask=False)
    rclpy.init()
    probe = Probe("perception_probe")
    probe.listen(String, "/perception/observations", COMMAND)
    probe.listen(DiagnosticArray, "/diagnostics", 50)
    feed = Feeder(probe)
    launcher = Launcher([spec], output=log)
    launcher.start()
    t = [1.0]

    def until_rejected(reason: str, send) -> None:
        def sent_and_counted() -> bool:
            t[0] += 0.1
            send(t[0])
            spin_for(probe, 0.3)
            return rejected(probe, "perception").get(reason, 0) >= 1

        spin_until(probe, sent_and_counted, 40, launcher.check, f"rejection {reason!r}")

    try:
        until_rejected("missing camera_info", lambda s: feed.send(s, rgb, depth, pos, quat, k,
                                                                  info=False))  # fmt: skip
        until_rejected(
            "unsupported encoding",
            lambda s: feed.send(s, rgb, depth, pos, quat, k, color_encoding="yuv422"),
        )
        small = np.ascontiguousarray(depth[::2, ::2])
        until_rejected("size mismatch", lambda s: feed.send(s, rgb, small, pos, quat, k))
        nan_depth = np.full_like(depth, np.nan)
        until_rejected(
            "nan depth",
            lambda s: feed.send(s, rgb, nan_depth, pos, quat, k, depth_encoding="32FC1"),
        )
        until_rejected("time went backwards", lambda s: feed.send(0.5, rgb, depth, pos, quat, k))

        # Still working: a good frame (on the new timeline) gives objects in the world frame.
        def observed() -> bool:
            t[0] += 0.1
            feed.send(t[0], rgb, depth, pos, quat, k)
            spin_for(probe, 0.3)
            return bool(probe.messages["/perception/observations"])

        spin_until(probe, observed, 40, launcher.check, "observations from a good frame")
        out = ObservationFrameMsg.model_validate_json(probe.last("/perception/observations").data)
        assert out.camera == "front" and out.objects
        assert all(-0.6 < o.centroid[0] < 0.6 and o.centroid[2] < 0.2 for o in out.objects)
    finally:
        launcher.shutdown()
        probe.destroy_node()
        rclpy.try_shutdown()
