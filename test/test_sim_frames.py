"""The sim's TF tree (robot_memory/sim/frames.py), in-process: static and
dynamic transforms compose, through the ROS-free TransformBuffer, to exactly
the optical pose the camera renderer uses; the sim node sends /tf for an
instant before that instant's images."""

from __future__ import annotations

import itertools
import os
from types import SimpleNamespace

os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco
import numpy as np
import pytest

from robot_memory.health.counters import HealthCounters
from robot_memory.nodes import conversions as conv
from robot_memory.nodes.sim_outputs import SimPublishers
from robot_memory.robot.panda import ARM_JOINTS, HOME_ARM
from robot_memory.sim.cameras import CameraRig
from robot_memory.sim.depth_noise import DepthNoise
from robot_memory.sim.frames import CellFrames, optical_frame
from robot_memory.sim.realtime_loop import SimLoop
from robot_memory.sim.runner import DueOutputs, RunnerConfig, SimulationRunner
from robot_memory.transforms.tf_buffer import TransformBuffer, quat_rotate

CAMERAS = ("front", "wrist")
LINKS = tuple(f"panda_link{i}" for i in range(8)) + ("panda_hand",)


@pytest.fixture(scope="module")
def cell():
    r = SimulationRunner(RunnerConfig(panda_visual="primitive", camera_rate=0.0))
    rig = CameraRig(r.physics.model, 64, 48, CAMERAS)
    yield r, rig
    rig.close()


def buffer_at(r: SimulationRunner, frames: CellFrames, buf: TransformBuffer | None = None):
    """Feed the static and the current dynamic transforms, as TFMessages, to a buffer."""
    buf = buf or TransformBuffer()
    r.physics.sync_kinematics()
    buf.add_message(conv.tf_message(frames.static(r.physics.data), 0.0), static=True)
    buf.add_message(conv.tf_message(frames.dynamic(r.physics.data), r.time))
    return buf


def assert_same_pose(transform, pos: np.ndarray, quat: np.ndarray, tol: float = 1e-9) -> None:
    np.testing.assert_allclose(transform.translation, pos, atol=tol)
    sign = 1.0 if float(np.dot(transform.rotation, quat)) >= 0 else -1.0  # q and -q: one turn
    np.testing.assert_allclose(sign * transform.rotation, quat, atol=tol)


def test_frame_tree_names_and_parents(cell):
    r, _ = cell
    frames = CellFrames(r.physics.model, CAMERAS)
    static = {(t.parent, t.child) for t in frames.static(r.physics.data)}
    assert static == {
        ("world", "panda_link0"),
        ("world", "front_color_optical_frame"),
        ("panda_hand", "wrist_color_optical_frame"),
    }
    dynamic = [(t.parent, t.child) for t in frames.dynamic(r.physics.data)]
    assert dynamic == list(itertools.pairwise(LINKS))
    base = next(t for t in frames.static(r.physics.data) if t.child == "panda_link0")
    np.testing.assert_allclose(base.translation, r.physics.body_pose("panda_link0")[0])
    renamed = CellFrames(r.physics.model, ["wrist"], world_frame="map", arm_id="fr3")
    assert [t.parent for t in renamed.static(r.physics.data)] == ["map", "fr3_hand"]
    assert renamed.dynamic(r.physics.data)[-1].child == "fr3_hand"
    with pytest.raises(ValueError, match="no camera"):
        CellFrames(r.physics.model, ["ceiling"])


def test_tf_composes_to_the_renderers_optical_pose_in_every_pose(cell):
    r, rig = cell
    frames = CellFrames(r.physics.model, CAMERAS)
    rng = np.random.default_rng(0)
    wrist_positions = []
    for _ in range(4):
        target = np.array(HOME_ARM) + rng.uniform(-0.4, 0.4, 7)
        r.command_trajectory(ARM_JOINTS, [0.5], [target.tolist()])
        r.run_for(0.6)
        buf = buffer_at(r, frames)
        for cam in CAMERAS:
            pos, quat = rig.optical_pose(r.physics, cam)
            assert_same_pose(buf.lookup("world", optical_frame(cam), r.time), pos, quat)
        # the wrist camera is fixed on the hand: hand <- camera never changes
        hand = buf.lookup("panda_hand", "wrist_color_optical_frame", r.time)
        np.testing.assert_allclose(hand.translation, [0.06, 0.0, 0.03], atol=1e-12)
        wrist_positions.append(buf.lookup("world", "wrist_color_optical_frame", r.time).translation)
        tcp = buf.lookup("world", "panda_hand", r.time)
        hand_pos, _ = r.physics.body_pose("panda_hand")
        np.testing.assert_allclose(tcp.translation, hand_pos, atol=1e-9)
    moved = [np.linalg.norm(a - b) for a, b in itertools.pairwise(wrist_positions)]
    assert min(moved) > 0.02  # the wrist camera moved with the hand


def test_optical_frame_looks_along_z_with_y_down(cell):
    r, _ = cell
    frames = CellFrames(r.physics.model, ["front"])
    buf = buffer_at(r, frames)
    cam = buf.lookup("world", "front_color_optical_frame", r.time)
    cam_id = mujoco.mj_name2id(r.physics.model, mujoco.mjtObj.mjOBJ_CAMERA, "front_camera")
    mj_rot = r.physics.data.cam_xmat[cam_id].reshape(3, 3)  # columns: MuJoCo cam x, y, z
    np.testing.assert_allclose(quat_rotate(cam.rotation, np.array([0, 0, 1.0])), -mj_rot[:, 2])
    np.testing.assert_allclose(quat_rotate(cam.rotation, np.array([0, 1.0, 0])), -mj_rot[:, 1])
    np.testing.assert_allclose(quat_rotate(cam.rotation, np.array([1.0, 0, 0])), mj_rot[:, 0])


class _Recorder:
    def __init__(self, log: list, topic: str) -> None:
        self.log, self.topic = log, topic

    def publish(self, msg) -> None:
        self.log.append((self.topic, msg))


def test_node_sends_tf_before_the_images_of_the_same_instant(cell):
    r, rig = cell
    log: list = []
    node = SimpleNamespace(create_publisher=lambda _type, topic, _qos: _Recorder(log, topic))
    health = HealthCounters("sim")
    out = SimPublishers(node, health, list(CAMERAS), (64, 48), "16UC1", "world")
    loop = SimLoop(
        r, CellFrames(r.physics.model, CAMERAS), list(CAMERAS), (64, 48), 0, health, print
    )
    r.run_for(0.1)
    out.emit(loop.outputs(DueOutputs(cameras=True), rig))
    topics = [topic for topic, _ in log]
    assert topics[0] == "/tf" and topics.count("/tf") == 1
    images = ("color/image_raw", "color/camera_info", "aligned_depth_to_color/image_raw")
    assert set(topics[1:]) == {f"/camera/{c}/{k}" for c in CAMERAS for k in images}
    stamp = log[0][1].transforms[0].header.stamp
    for topic, msg in log[1:]:
        assert msg.header.stamp == stamp
        assert msg.header.frame_id == optical_frame(topic.split("/")[2])
    log.clear()
    out.emit(loop.outputs(DueOutputs(joint_states=True), rig))
    assert [topic for topic, _ in log] == ["/tf", "/joint_states"]  # /tf at the joint-state rate


def test_a_calibration_error_moves_only_the_published_camera_mounts(cell):
    r, _ = cell
    true = {(t.parent, t.child): t for t in CellFrames(r.physics.model, CAMERAS).static(
        r.physics.data)}  # fmt: skip
    off = CellFrames(r.physics.model, CAMERAS, calibration_error=(4.0, 0.5), seed=1)
    for t in off.static(r.physics.data):
        ref = true[t.parent, t.child]
        if t.child == "panda_link0":
            assert_same_pose(t, ref.translation, ref.rotation)
            continue
        assert np.linalg.norm(t.translation - ref.translation) == pytest.approx(0.004)
        dot = abs(float(np.dot(t.rotation, ref.rotation)))
        assert np.degrees(2 * np.arccos(min(dot, 1.0))) == pytest.approx(0.5, abs=1e-6)


def test_the_rig_reports_realsense_like_depth_when_asked(cell):
    r, perfect = cell
    noisy = CameraRig(r.physics.model, 64, 48, ("front",), DepthNoise(), seed=3)
    try:
        _, clean = perfect.render(r.physics, "front")
        _, depth = noisy.render(r.physics, "front")
    finally:
        noisy.close()
    seen = (clean > 0) & (depth > 0)
    assert 0 < (depth[clean > 0] == 0).mean() < 0.3  # some holes (edges, dark, random)
    got = depth[seen].astype(np.float64)
    assert np.allclose(got * 1000.0, np.round(got * 1000.0), atol=0.02)  # whole millimetres
    flat = seen & (np.abs(clean - np.median(clean[seen])) < 0.3)
    error = np.median(np.abs(depth[flat] - clean[flat]))
    focal = float(perfect.intrinsics("front")[0, 0])
    assert 0 < error < 3 * DepthNoise().sigma_z(float(np.median(clean[flat])), focal)
