"""Camera images on a network link: image_transport's compressed forms (JPEG
colour on ``.../image_raw/compressed``, PNG depth on ``.../compressedDepth``).
The encoders round-trip within their documented loss (none for 16UC1 depth);
the launch spec switches every node that publishes or reads images; and a
perception node over DDS set to ``image_transport: compressed`` sees the same
objects from compressed frames as from raw ones, rejecting garbage with a
reason and going on."""

from __future__ import annotations

import io

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TransformStamped
from robot_memory_interfaces.msg import ObservationFrame
from sensor_msgs.msg import CameraInfo, CompressedImage
from tf2_msgs.msg import TFMessage

from robot_memory.bringup.launch_spec import perception_node, stack
from robot_memory.bringup.launcher import Launcher
from robot_memory.nodes import conversions as conv
from robot_memory.nodes.memory_conversions import observation_frame_from_msg
from robot_memory.nodes.qos import COMMAND, SENSOR, TF_STATIC
from robot_memory.perception import image_messages as im
from robot_memory.perception.image_decoding import PerceptionInputError
from ros_helpers import Probe, rejected, spin_for, spin_until

W, H = 320, 240
OPTICAL = "front_color_optical_frame"


def test_colour_and_depth_round_trip_within_their_loss(rendered):
    rgb, depth, *_ = rendered
    fmt, jpeg = im.encode_compressed_color(rgb, quality=90)
    back = im.decode_compressed_color(fmt, jpeg)
    assert back.shape == rgb.shape and back.dtype == np.uint8
    # channel order kept (a swap would move the mean of R and B apart by far more)
    assert np.abs(back.astype(int) - rgb.astype(int)).mean() < 3.0
    assert len(jpeg) < rgb.nbytes / 5

    data = im.encode_compressed_depth(depth, "16UC1")
    got = im.decode_compressed_depth(im.compressed_depth_format("16UC1"), data)
    assert np.array_equal(got, np.round(depth * 1000).astype(np.uint16) * np.float32(0.001))
    data = im.encode_compressed_depth(depth, "32FC1")  # inverse depth: finer near, coarser far
    got = im.decode_compressed_depth(im.compressed_depth_format("32FC1"), data)
    valid = depth > 0
    # half a quantization step: d^2 / (2 * 100 * 101)
    assert np.all(np.abs(got[valid] - depth[valid]) <= depth[valid] ** 2 / 20200.0 + 1e-5)


def test_compressed_messages_are_checked_before_decoding():
    im.check_compressed("colour", "rgb8; jpeg compressed bgr8", 1000)
    im.check_compressed("depth", "16UC1; compressedDepth png", 1000)
    for kind, fmt, size in [
        ("colour", "16UC1; compressedDepth png", 1000),  # depth on the colour topic
        ("depth", "jpeg", 1000),
        ("colour", "", 1000),
        ("colour", "jpeg", 0),
        ("depth", "16UC1; compressedDepth png", im.MAX_COMPRESSED_BYTES + 1),
    ]:
        with pytest.raises(PerceptionInputError):
            im.check_compressed(kind, fmt, size)
    with pytest.raises(PerceptionInputError, match="undecodable"):
        im.decode_compressed_color("jpeg", b"\xff\xd8 not a jpeg")


def test_the_launch_spec_switches_every_image_node():
    specs = {s.name: s for s in stack("sim", image_transport="compressed")}
    assert specs["sim"].parameters["image_transport"] == "compressed"
    assert specs["perception"].parameters["image_transport"] == "compressed"
    assert specs["planner"].parameters["image_topic"].endswith("/image_raw/compressed")
    raw = {s.name: s for s in stack("sim")}
    assert raw["sim"].parameters["image_transport"] == "raw"
    override = {"perception": {"image_transport": "raw"}}  # an explicit override still wins
    mixed = {s.name: s for s in stack("sim", override, image_transport="compressed")}
    assert mixed["perception"].parameters["image_transport"] == "raw"
    with pytest.raises(ValueError, match="image transport"):
        stack("sim", image_transport="theora")


@pytest.mark.ros
def test_perception_node_reads_compressed_frames(rendered):
    rgb, depth, pos, quat, k = rendered
    log = io.StringIO()
    rclpy.init()
    probe = Probe("compressed_probe")
    probe.listen(ObservationFrame, "/perception/observations", COMMAND)
    probe.listen(DiagnosticArray, "/diagnostics", 50)
    base = "/camera/front"
    color = probe.create_publisher(CompressedImage, f"{base}/color/image_raw/compressed", SENSOR)
    depth_pub = probe.create_publisher(
        CompressedImage, f"{base}/aligned_depth_to_color/image_raw/compressedDepth", SENSOR
    )
    info = probe.create_publisher(CameraInfo, f"{base}/color/camera_info", SENSOR)
    statics = probe.create_publisher(TFMessage, "/tf_static", TF_STATIC)
    mount = TransformStamped(header=conv.header(0.0, "world"), child_frame_id=OPTICAL)
    tr, r = mount.transform.translation, mount.transform.rotation
    tr.x, tr.y, tr.z = (float(v) for v in pos)
    r.w, r.x, r.y, r.z = (float(v) for v in quat)
    statics.publish(TFMessage(transforms=[mount]))
    fmt, jpeg = im.encode_compressed_color(rgb)
    png = im.encode_compressed_depth(depth)
    spec = perception_node(cameras=["front"], use_robot_mask=False, image_transport="compressed")
    launcher = Launcher([spec], output=log)
    launcher.start()
    t = [1.0]

    def send(color_fmt: str = fmt, color_data: bytes = jpeg) -> None:
        t[0] += 0.1
        info.publish(conv.camera_info(k, W, H, t[0], OPTICAL))
        color.publish(conv.compressed_image(color_fmt, color_data, t[0], OPTICAL))
        fmt_depth = im.compressed_depth_format("16UC1")
        depth_pub.publish(conv.compressed_image(fmt_depth, png, t[0], OPTICAL))
        spin_for(probe, 0.3)

    try:
        for reason, bad in [
            ("undecodable compressed image", ("jpeg", b"\xff\xd8garbage")),
            ("unsupported encoding", ("16UC1; compressedDepth png", png)),
        ]:

            def counted(reason: str = reason, bad: tuple = bad) -> bool:
                send(*bad)
                return rejected(probe, "perception").get(reason, 0) >= 1

            spin_until(probe, counted, 60, launcher.check, f"rejection {reason!r}")

        def observed() -> bool:
            send()
            return bool(probe.messages["/perception/observations"])

        spin_until(probe, observed, 60, launcher.check, "observations from compressed frames")
        frame = observation_frame_from_msg(probe.last("/perception/observations"))
    finally:
        launcher.shutdown()
        probe.destroy_node()
        rclpy.try_shutdown()
    assert frame.camera == "front" and frame.frame_id == "world" and frame.objects
    # the same scene as the raw frame gives: every object on the table, in the workspace
    assert all(-0.6 < o.centroid[0] < 0.6 and o.centroid[2] < 0.2 for o in frame.objects)
