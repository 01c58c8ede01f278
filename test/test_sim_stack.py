"""The sim stack over real DDS: launched with the project's launcher, observed
and commanded from this (separate) test process."""

from __future__ import annotations

import io
import itertools
import os

os.environ.setdefault("MUJOCO_GL", "egl")  # the TF test renders nothing but builds a rig

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Float64MultiArray
from tf2_msgs.msg import TFMessage
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from robot_memory.bringup.launch_spec import stack
from robot_memory.bringup.launcher import Launcher
from robot_memory.nodes.conversions import from_time, image_to_numpy, to_time
from robot_memory.nodes.qos import COMMAND, LATCHED, SENSOR
from robot_memory.robot.ik import ArmIK
from robot_memory.robot.panda import ALL_JOINTS, ARM_JOINTS, HOME_ARM
from robot_memory.sim.cameras import CameraRig
from robot_memory.sim.physics import CellPhysics
from robot_memory.sim.scene import build_model
from robot_memory.transforms.tf_buffer import TransformBuffer
from ros_helpers import DEEP, Probe, spin_for, spin_until

#: Reliable and deep enough for every /tf and joint state of a test.
pytestmark = pytest.mark.ros

CAMERA_TOPICS = {
    f"/camera/{cam}/{kind}": msg
    for cam in ("front", "wrist")
    for kind, msg in (
        ("color/image_raw", Image),
        ("color/camera_info", CameraInfo),
        ("aligned_depth_to_color/image_raw", Image),
    )
}


@pytest.fixture(scope="module")
def sim_stack():
    log = io.StringIO()
    specs = [s for s in stack("sim", {"sim": {"camera_rate": 5.0}}) if s.name == "sim"]
    rclpy.init()
    probe = Probe()
    for topic, msg in CAMERA_TOPICS.items():
        probe.listen(msg, topic, SENSOR)
    # deep queues: a probe slowed by a loaded machine must not lose /tf or joint
    # states (keep-last would overwrite them) that the TF test pairs with images
    probe.listen(JointState, "/joint_states", DEEP)
    probe.listen(Clock, "/clock", 10)
    probe.listen(DiagnosticArray, "/diagnostics", 10)
    probe.listen(TFMessage, "/tf", DEEP)
    probe.listen(TFMessage, "/tf_static", LATCHED)
    traj_pub = probe.create_publisher(JointTrajectory, "/arm_controller/joint_trajectory", COMMAND)
    grip_pub = probe.create_publisher(Float64MultiArray, "/gripper_controller/commands", COMMAND)
    launcher = Launcher(specs, output=log)
    launcher.start()
    try:
        spin_until(
            probe,
            lambda: (
                all(probe.messages[t] for t in CAMERA_TOPICS)
                and probe.messages["/clock"]
                and probe.messages["/joint_states"]
                and probe.messages["/tf"]
                and probe.messages["/tf_static"]
            ),
            timeout_s=60,
            check=launcher.check,
            what="sim topics",
        )
        yield probe, launcher, traj_pub, grip_pub, log
    finally:
        launcher.shutdown()
        probe.destroy_node()
        rclpy.shutdown()


def trajectory(q: np.ndarray, t: float = 2.0, names=ARM_JOINTS) -> JointTrajectory:
    msg = JointTrajectory(joint_names=list(names))
    msg.points = [JointTrajectoryPoint(positions=[float(v) for v in q], time_from_start=to_time(t))]
    return msg


def arm_q(msg: JointState) -> np.ndarray:
    return np.array([msg.position[list(msg.name).index(n)] for n in ARM_JOINTS])


def test_sensors_arrive_with_the_contract_encodings(sim_stack):
    probe, *_ = sim_stack
    for cam in ("front", "wrist"):
        rgb = probe.last(f"/camera/{cam}/color/image_raw")
        assert rgb.encoding == "rgb8"
        img = image_to_numpy(rgb)
        assert img.shape == (240, 320, 3) and img.std() > 5  # not a blank frame
        depth = probe.last(f"/camera/{cam}/aligned_depth_to_color/image_raw")
        assert depth.encoding in ("16UC1", "32FC1")
        assert (depth.height, depth.width) == (rgb.height, rgb.width)
        d = image_to_numpy(depth)
        assert np.count_nonzero(d) > 0.5 * d.size
        info = probe.last(f"/camera/{cam}/color/camera_info")
        assert info.k[0] > 0 and info.k[4] > 0 and info.k[8] == 1.0
        assert info.header.frame_id == rgb.header.frame_id == f"{cam}_color_optical_frame"
    joints = probe.last("/joint_states")
    assert set(ALL_JOINTS) <= set(joints.name) and len(joints.name) == 9


def test_clock_advances(sim_stack):
    probe, launcher, *_ = sim_stack
    t0 = from_time(probe.last("/clock").clock)
    spin_for(probe, 1.0)
    launcher.check()
    assert from_time(probe.last("/clock").clock) > t0 + 0.2


def test_trajectory_brings_the_end_effector_within_1cm(sim_stack):
    probe, launcher, traj_pub, *_ = sim_stack
    ik = ArmIK(build_model("tabletop", panda_visual="primitive"))
    target_q = np.array(HOME_ARM) + np.array([0.4, 0.3, -0.2, 0.35, 0.2, -0.3, 0.3])
    target_pos, _ = ik.forward(target_q)
    traj_pub.publish(trajectory(target_q, t=2.0))

    def arrived() -> bool:
        pos, _ = ik.forward(arm_q(probe.last("/joint_states")))
        return float(np.linalg.norm(pos - target_pos)) < 0.01

    spin_until(probe, arrived, timeout_s=30, check=launcher.check, what="end effector at target")
    spin_for(probe, 1.0)  # and it stays there (no oscillation)
    pos, _ = ik.forward(arm_q(probe.last("/joint_states")))
    assert np.linalg.norm(pos - target_pos) < 0.01


BAD_COMMANDS = {
    "unknown joint": trajectory(np.zeros(2), names=("panda_joint1", "elbow_joint")),
    "non-finite value": trajectory(np.array([np.nan, *HOME_ARM[1:]])),
    "position out of limits": trajectory(np.array([*HOME_ARM[:3], 0.5, *HOME_ARM[4:]])),
    "empty trajectory": JointTrajectory(joint_names=list(ARM_JOINTS)),
}


def test_bad_commands_are_rejected_with_a_reason_and_the_sim_keeps_running(sim_stack):
    probe, launcher, traj_pub, grip_pub, log = sim_stack
    spin_for(probe, 0.5)
    before = arm_q(probe.last("/joint_states"))
    for msg in BAD_COMMANDS.values():
        traj_pub.publish(msg)
    grip_pub.publish(Float64MultiArray(data=[float("nan")]))
    grip_pub.publish(Float64MultiArray(data=[0.5]))

    def counted() -> dict[str, int]:
        out: dict[str, int] = {}
        for arr in probe.messages["/diagnostics"]:
            for status in arr.status:
                if status.name.startswith("sim"):
                    out = {kv.key: int(kv.value) for kv in status.values if "rejected" in kv.key}
        return out

    expected = {f"rejected.{reason}" for reason in BAD_COMMANDS} | {
        "rejected.gripper width out of limits"
    }
    spin_until(
        probe,
        lambda: expected <= set(counted()),
        timeout_s=20,
        check=launcher.check,
        what="rejections in /diagnostics",
    )
    assert counted()["rejected_total"] >= len(BAD_COMMANDS) + 2
    # the log lines come through the child's stderr pipe, which may lag the
    # diagnostics on a loaded machine: wait for them, then check each
    lines = [f"trajectory rejected: {reason}" for reason in BAD_COMMANDS]
    spin_until(
        probe,
        lambda: all(line in log.getvalue() for line in lines),
        timeout_s=20,
        check=launcher.check,
        what="the rejections in the sim's log",
    )
    for line in lines:
        assert line in log.getvalue()
    # nothing moved, and the sim is still alive and stepping
    spin_for(probe, 0.5)
    launcher.check()
    assert np.max(np.abs(arm_q(probe.last("/joint_states")) - before)) < 0.01


STATIC_FRAMES = {
    ("world", "panda_link0"),
    ("world", "front_color_optical_frame"),
    ("panda_hand", "wrist_color_optical_frame"),
}
LINKS = [f"panda_link{i}" for i in range(8)] + ["panda_hand"]


def stamp_of(header) -> tuple[int, int]:
    return (header.stamp.sec, header.stamp.nanosec)


def test_tf_static_is_one_latched_message_and_the_pose_topic_is_gone(sim_stack):
    probe, launcher, *_ = sim_stack
    late: list[TFMessage] = []  # a subscriber that joins long after the sim published
    sub = probe.create_subscription(TFMessage, "/tf_static", late.append, LATCHED)
    try:
        spin_until(probe, lambda: late, timeout_s=10, check=launcher.check, what="/tf_static")
    finally:
        probe.destroy_subscription(sub)
    assert len(late) == 1
    frames = {(t.header.frame_id, t.child_frame_id) for t in late[0].transforms}
    assert frames == STATIC_FRAMES
    dynamic = probe.last("/tf").transforms
    links = [(t.header.frame_id, t.child_frame_id) for t in dynamic]
    assert links == list(itertools.pairwise(LINKS))
    topics = dict(probe.get_topic_names_and_types())
    assert not any(t.endswith("/pose") for t in topics), sorted(topics)
    assert topics["/tf"] == ["tf2_msgs/msg/TFMessage"]


def test_tf_at_image_stamps_composes_to_the_renderers_camera_pose(sim_stack):
    """During a move: for every camera image there is a /tf of its stamp; world
    <- <cam>_color_optical_frame from /tf_static + /tf equals the optical pose
    the sim core's renderer computes from the joint states of that instant; the
    wrist camera moves with the hand, the front camera stays."""
    probe, launcher, traj_pub, *_ = sim_stack
    for topic in ("/tf", "/joint_states", "/camera/wrist/color/image_raw"):
        probe.messages[topic].clear()
    probe.messages["/camera/front/color/image_raw"].clear()
    target = np.array(HOME_ARM) + np.array([-0.5, 0.2, 0.3, 0.3, -0.3, 0.2, -0.4])
    traj_pub.publish(trajectory(target, t=2.0))
    images = [probe.messages[f"/camera/{cam}/color/image_raw"] for cam in ("front", "wrist")]
    # images of the move (5 Hz of sim time; the sim may run slower than real time)
    spin_until(probe, lambda: min(map(len, images)) >= 8, 60, launcher.check, "images")
    # /tf is sent before the images of its instant, but on its own subscription:
    # on a loaded machine the probe may take the images first
    newest_image = max(stamp_of(m.header) for cam in images for m in cam)
    spin_until(
        probe,
        lambda: (
            max(stamp_of(m.transforms[0].header) for m in probe.messages["/tf"]) >= newest_image
        ),
        60,
        launcher.check,
        "/tf up to the newest image",
    )

    buf = TransformBuffer(cache_s=60.0)
    buf.add_message(probe.last("/tf_static"), static=True)
    tf_stamps = set()
    for msg in probe.messages["/tf"]:
        buf.add_message(msg)
        tf_stamps.add(stamp_of(msg.transforms[0].header))
    gaps = np.diff(sorted(s + ns * 1e-9 for s, ns in tf_stamps))
    # /tf at the joint-state rate (100 Hz of sim time; 4 ms physics slices: 8 and 12 ms gaps)
    assert 0.009 < float(np.mean(gaps)) < 0.011 and float(np.max(gaps)) < 0.0125
    joints = {stamp_of(m.header): m for m in probe.messages["/joint_states"]}

    physics = CellPhysics(build_model("tabletop", panda_visual="primitive"))
    rig = CameraRig(physics.model, 32, 24, ("front", "wrist"))
    poses: dict[str, list[np.ndarray]] = {"front": [], "wrist": []}
    compared = 0
    try:
        for cam in ("front", "wrist"):
            for image in probe.messages[f"/camera/{cam}/color/image_raw"]:
                stamp = stamp_of(image.header)
                if stamp > newest_image:
                    continue  # arrived while /tf caught up
                if stamp < min(tf_stamps):
                    continue  # its /tf came before the clear above, the image after
                assert stamp in tf_stamps, f"no /tf at the stamp of a {cam} image"
                t = stamp[0] + stamp[1] * 1e-9
                from_tf = buf.lookup("world", image.header.frame_id, t)
                poses[cam].append(from_tf.translation)
                if stamp not in joints:
                    continue
                js = joints[stamp]
                for name, q in zip(js.name, js.position, strict=True):
                    physics.data.qpos[physics.model.jnt_qposadr[physics.model.joint(name).id]] = q
                physics.forward()
                pos, quat = rig.optical_pose(physics, cam)
                np.testing.assert_allclose(from_tf.translation, pos, atol=1e-6)
                sign = 1.0 if float(np.dot(from_tf.rotation, quat)) >= 0 else -1.0
                np.testing.assert_allclose(sign * from_tf.rotation, quat, atol=1e-6)
                compared += 1
    finally:
        rig.close()
    assert compared >= 8, compared  # 2 cameras x 8 images, nearly all with joint states
    wrist, front = np.array(poses["wrist"]), np.array(poses["front"])
    assert np.linalg.norm(wrist[-1] - wrist[0]) > 0.05  # moved with the hand
    assert np.ptp(front, axis=0).max() < 1e-9  # the front camera is on a post
