"""The perception node over DDS, fed frames rendered by the sim in this process
and camera extrinsics on /tf and /tf_static published from here: good frames
give observations (robot_memory_interfaces/msg/ObservationFrame) with the
transform at the image stamp; a frame whose transform comes late waits for it,
one whose transform never comes is dropped and counted, never processed with
another instant's pose; bad frames are rejected with a reason, counted on
/diagnostics, and the node keeps working."""

from __future__ import annotations

import io

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TransformStamped
from robot_memory_interfaces.msg import ObservationFrame
from sensor_msgs.msg import CameraInfo, Image
from tf2_msgs.msg import TFMessage

from robot_memory.bringup.launch_spec import perception_node
from robot_memory.bringup.launcher import Launcher
from robot_memory.nodes import conversions as conv
from robot_memory.nodes.memory_conversions import observation_frame_from_msg
from robot_memory.nodes.qos import COMMAND, SENSOR, TF, TF_STATIC
from robot_memory.nodes.tf_listener import parse_camera_frames
from ros_helpers import Probe, rejected, spin_for, spin_until

pytestmark = pytest.mark.ros
W, H = 320, 240
OPTICAL = "front_color_optical_frame"
LATE = "front_late_optical_frame"  # child of the dynamic "front_mount"
DX = 0.1  # the two /tf samples around the image are this far either side [m]


def transform(parent: str, child: str, t: float, pos, quat) -> TransformStamped:
    msg = TransformStamped(header=conv.header(t, parent), child_frame_id=child)
    tr, r = msg.transform.translation, msg.transform.rotation
    tr.x, tr.y, tr.z = (float(v) for v in pos)
    r.w, r.x, r.y, r.z = (float(v) for v in quat)
    return msg


class Feeder:
    """The camera topics and /tf, /tf_static as a driver and the sim publish them."""

    def __init__(self, probe: Probe, cam: str = "front") -> None:
        base = f"/camera/{cam}"
        self.color = probe.create_publisher(Image, f"{base}/color/image_raw", SENSOR)
        self.depth = probe.create_publisher(
            Image, f"{base}/aligned_depth_to_color/image_raw", SENSOR
        )
        self.info = probe.create_publisher(CameraInfo, f"{base}/color/camera_info", SENSOR)
        self.tf = probe.create_publisher(TFMessage, "/tf", TF)
        self.tf_static = probe.create_publisher(TFMessage, "/tf_static", TF_STATIC)

    def statics(self, pos, quat) -> None:
        """All static transforms in one latched message, as tf2 does."""
        identity = ((0, 0, 0), (1, 0, 0, 0))
        self.tf_static.publish(
            TFMessage(
                transforms=[
                    transform("world", OPTICAL, 0.0, pos, quat),
                    transform("front_mount", LATE, 0.0, *identity),
                ]
            )
        )

    def mount(self, t: float, pos, quat) -> None:
        self.tf.publish(TFMessage(transforms=[transform("world", "front_mount", t, pos, quat)]))

    def send(self, t, rgb, depth, k, *, frame=OPTICAL, info=True, color_encoding="rgb8",
             depth_encoding="16UC1") -> None:  # fmt: skip
        if info:
            self.info.publish(conv.camera_info(k, rgb.shape[1], rgb.shape[0], t, frame))
        img = conv.rgb_image(rgb, t, frame)
        img.encoding = color_encoding
        self.color.publish(img)
        self.depth.publish(conv.depth_image(depth, t, frame, depth_encoding))


@pytest.fixture(scope="module")
def node(rendered):
    _, _, pos, quat, _ = rendered
    log = io.StringIO()
    spec = perception_node(cameras=["front"], use_robot_mask=False)
    rclpy.init()
    probe = Probe("perception_probe")
    probe.listen(ObservationFrame, "/perception/observations", COMMAND)
    probe.listen(DiagnosticArray, "/diagnostics", 50)
    feed = Feeder(probe)
    feed.statics(pos, quat)
    launcher = Launcher([spec], output=log)
    launcher.start()
    try:
        yield probe, feed, launcher
    finally:
        launcher.shutdown()
        probe.destroy_node()
        rclpy.try_shutdown()


def observations(probe: Probe) -> dict[float, np.ndarray]:
    """Stamp -> the centroids of the frame's objects (world frame)."""
    out = {}
    for msg in probe.messages["/perception/observations"]:
        frame = observation_frame_from_msg(msg)
        out[round(frame.stamp, 6)] = np.array([o.centroid for o in frame.objects])
    return out


def test_perception_node_rejects_bad_frames_and_keeps_working(rendered, node):
    rgb, depth, _, _, k = rendered
    probe, feed, launcher = node
    t = [1.0]

    def until_rejected(reason: str, send) -> None:
        def sent_and_counted() -> bool:
            t[0] += 0.1
            send(t[0])
            spin_for(probe, 0.3)
            return rejected(probe, "perception").get(reason, 0) >= 1

        spin_until(probe, sent_and_counted, 40, launcher.check, f"rejection {reason!r}")

    until_rejected("missing camera_info", lambda s: feed.send(s, rgb, depth, k, info=False))
    until_rejected(
        "unsupported encoding", lambda s: feed.send(s, rgb, depth, k, color_encoding="yuv422")
    )
    small = np.ascontiguousarray(depth[::2, ::2])
    until_rejected("size mismatch", lambda s: feed.send(s, rgb, small, k))
    nan_depth = np.full_like(depth, np.nan)
    until_rejected("nan depth", lambda s: feed.send(s, rgb, nan_depth, k, depth_encoding="32FC1"))
    until_rejected("time went backwards", lambda s: feed.send(0.5, rgb, depth, k))

    # Still working: a good frame (on the new timeline) gives objects in the world frame,
    # with the static camera transform from /tf_static.
    def observed() -> bool:
        t[0] += 0.1
        feed.send(t[0], rgb, depth, k)
        spin_for(probe, 0.3)
        return bool(probe.messages["/perception/observations"])

    spin_until(probe, observed, 40, launcher.check, "observations from a good frame")
    out = observation_frame_from_msg(probe.last("/perception/observations"))
    assert out.camera == "front" and out.objects and out.frame_id == "world"
    assert all(-0.6 < o.centroid[0] < 0.6 and o.centroid[2] < 0.2 for o in out.objects)


def test_extrinsics_from_tf_at_the_image_stamp_late_or_never(rendered, node):
    """The camera hangs off a moving mount: /tf samples DX either side of the
    image give the true pose only interpolated at the image stamp. A frame whose
    second sample is late waits for it; frames whose transform never comes are
    dropped as ``missing transform``, never processed with the last pose."""
    rgb, depth, pos, quat, k = rendered
    probe, feed, launcher = node
    shift = np.array([DX, 0.0, 0.0])
    t = 50.0

    def reference_seen() -> bool:  # the static pose of /tf_static: the true centroids
        nonlocal t
        t += 0.1
        feed.send(t, rgb, depth, k)
        spin_for(probe, 0.3)
        return round(t - 0.1, 6) in observations(probe) or round(t, 6) in observations(probe)

    spin_until(probe, reference_seen, 60, launcher.check, "a frame with the static transform")
    reference = observations(probe)[max(observations(probe))]
    assert len(reference)

    t = 100.0
    for _ in range(5):  # images are best effort: retry a lost one
        t += 1.0
        feed.mount(t - 0.05, pos - shift, quat)
        feed.send(t, rgb, depth, k, frame=LATE)
        spin_for(probe, 1.0)
        assert round(t, 6) not in observations(probe), "processed before its transform came"
        feed.mount(t + 0.05, pos + shift, quat)  # late: now the image stamp is covered
        try:
            spin_until(probe, lambda t=t: round(t, 6) in observations(probe), 5, launcher.check)
        except AssertionError:
            continue
        break
    got = observations(probe)[round(t, 6)]
    assert got.shape == reference.shape
    assert np.abs(got - reference).max() < 0.01  # interpolated, not either sample (DX off)

    # The transform never comes (the mount's /tf stopped at t + 0.05).
    before = rejected(probe, "perception").get("missing transform", 0)
    stamps = [t + 1.0 + 0.1 * i for i in range(8)]
    for s in stamps:
        feed.send(s, rgb, depth, k, frame=LATE)
        spin_for(probe, 0.2)
    spin_until(
        probe,
        lambda: rejected(probe, "perception").get("missing transform", 0) > before,
        20,
        launcher.check,
        "missing transform counted",
    )
    assert not {round(s, 6) for s in stamps} & set(observations(probe))

    # A malformed transform (NaN) is rejected and counted, the buffer untouched.
    feed.tf.publish(TFMessage(transforms=[transform("world", "front_mount", t + 9, pos * np.nan,
                                                    quat)]))  # fmt: skip
    spin_until(
        probe,
        lambda: rejected(probe, "perception").get("malformed transform", 0) >= 1,
        20,
        launcher.check,
        "malformed transform counted",
    )


def test_camera_frame_overrides_parse():
    assert parse_camera_frames("") == {}
    assert parse_camera_frames("front=a_optical, wrist = b") == {"front": "a_optical", "wrist": "b"}
    with pytest.raises(ValueError, match="camera=frame"):
        parse_camera_frames("front")
