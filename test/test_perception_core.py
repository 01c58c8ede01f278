"""Perception core on real renders of the sim cell (no simulator segmentation):
labels and centroids against ground truth, robot and fixture rejection, image
decoding and input validation."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import cv2
import numpy as np
import pytest

from robot_memory.perception import (
    PerceptionConfig,
    PerceptionInputError,
    decode_color,
    decode_depth,
)
from robot_memory.perception.pipeline import PerceptionPipeline
from robot_memory.robot.ik import ArmIK, top_down_rotation
from robot_memory.robot.panda import ARM_JOINTS
from robot_memory.sim.cameras import CameraRig
from robot_memory.sim.runner import RunnerConfig, SimulationRunner

SEEDS = (1, 2, 3)
CENTROID_TOLERANCE = 0.02
BORDER_PX = 60  # objects whose centre is this close to the border may be cut off


@pytest.fixture(scope="module")
def runner() -> SimulationRunner:
    return SimulationRunner(RunnerConfig(camera_rate=0, ground_truth_rate=0, seed=SEEDS[0]))


@pytest.fixture(scope="module")
def rig(runner: SimulationRunner):
    cameras = CameraRig(runner.physics.model, 640, 480, ("front", "wrist"))
    yield cameras
    cameras.close()


@pytest.fixture(scope="module")
def pipeline() -> PerceptionPipeline:
    return PerceptionPipeline()


def joints(runner: SimulationRunner) -> dict[str, float]:
    names, q, _, _ = runner.physics.joint_state()
    return dict(zip(names, q.tolist(), strict=True))


def perceive(runner, rig, pipeline, cam, with_joints=True):
    rgb, depth = rig.render(runner.physics, cam)
    pos, quat = rig.optical_pose(runner.physics, cam)
    frame = pipeline.process(
        rgb,
        depth,
        rig.intrinsics(cam),
        pos,
        quat,
        runner.time,
        cam,
        joints(runner) if with_joints else None,
    )
    return frame, depth


def clearly_visible(frame, depth: np.ndarray, rig: CameraRig, position: np.ndarray) -> bool:
    """Centre projects well inside the image and nothing is much nearer there."""
    view = frame.view
    cam = (np.asarray(position) - view.position) @ view.rotation()
    if cam[2] <= 0.05:
        return False
    k = rig.intrinsics(frame.camera)
    u, v = k[0, 0] * cam[0] / cam[2] + k[0, 2], k[1, 1] * cam[1] / cam[2] + k[1, 2]
    h, w = depth.shape
    if not (BORDER_PX <= u < w - BORDER_PX and BORDER_PX <= v < h - BORDER_PX):
        return False
    seen = depth[int(v), int(u)]
    return bool(seen > 0 and seen > cam[2] - 0.05)


@pytest.mark.parametrize("seed", SEEDS)
def test_objects_detected_with_labels_and_centroids(runner, rig, pipeline, seed):
    runner.reset(seed)
    truth = runner.ground_truth()
    checked = 0
    for cam in ("front", "wrist"):
        frame, depth = perceive(runner, rig, pipeline, cam)
        assert frame.view.depth.shape == (60, 80)
        for gt in truth.objects:
            if gt.kind != "object" or not clearly_visible(frame, depth, rig, gt.position):
                continue
            errors = [np.linalg.norm(o.centroid - gt.position) for o in frame.objects]
            assert errors, f"{cam}: nothing detected, {gt.label} in view"
            best = frame.objects[int(np.argmin(errors))]
            assert best.label == gt.label, f"{cam}: {gt.label} seen as {best.label}"
            assert min(errors) < CENTROID_TOLERANCE, f"{cam}: {gt.label} off by {min(errors):.3f}"
            assert 0.0 < best.confidence <= 1.0 and 0 < len(best.points) <= 200
            checked += 1
        # every detection is something real: an object or the cover, never bin walls
        real = [np.asarray(gt.position) for gt in truth.objects if gt.kind != "place"]
        cover = np.asarray(next(gt.position for gt in truth.objects if gt.id == "cover"))
        for obj in frame.objects:
            near_object = min(np.linalg.norm(obj.centroid - p) for p in real) < 0.04
            near_cover = np.linalg.norm(obj.centroid[:2] - cover[:2]) < 0.04
            assert near_object or near_cover, f"{cam}: spurious {obj.label} at {obj.centroid}"
            if near_cover:
                assert obj.label == "white box"
    assert checked >= 4, "too few objects in clear view to judge"


def test_cover_is_a_white_box_not_an_object(runner, rig, pipeline):
    runner.reset(SEEDS[0])
    cover = np.array(next(g.position for g in runner.ground_truth().objects if g.id == "cover"))
    frame, _ = perceive(runner, rig, pipeline, "front")
    boxes = [o for o in frame.objects if np.linalg.norm(o.centroid[:2] - cover[:2]) < 0.03]
    assert [o.label for o in boxes] == ["white box"]
    assert np.all(np.abs(boxes[0].size[:2] - 0.11) < 0.015)


def test_robot_hand_in_view_is_not_an_object(runner, rig, pipeline):
    runner.reset(SEEDS[1])
    ik = ArmIK(runner.physics.model)
    target = np.array([0.0, -0.05, 0.16])
    q = ik.solve(runner.physics.arm_qpos(), target, top_down_rotation(0.3)).q
    runner.command_trajectory(ARM_JOINTS, [2.0], [q.tolist()])
    runner.run_for(2.5)
    hand = runner.physics.body_pose("panda_hand")[0]
    tcp = runner.physics.tcp_pose()[0]
    masked, _ = perceive(runner, rig, pipeline, "front")
    unmasked, _ = perceive(runner, rig, pipeline, "front", with_joints=False)

    def near_hand(frame):
        return [
            o.label
            for o in frame.objects
            if min(np.linalg.norm(o.centroid - hand), np.linalg.norm(o.centroid - tcp)) < 0.1
        ]

    assert near_hand(unmasked), "the hand should be in the front camera's view"
    assert near_hand(masked) == []


def test_object_in_bin_rests_on_the_bin_floor(runner, rig, pipeline):
    runner.reset(SEEDS[0])
    model, data = runner.physics.model, runner.physics.data
    adr = model.jnt_qposadr[model.joint("red_cube").id]
    data.qpos[adr : adr + 7] = [0.13, 0.33, 0.045, 1.0, 0.0, 0.0, 0.0]
    data.qvel[:] = 0.0
    runner.physics.forward()
    runner.run_for(0.5)
    cube = np.array(next(g.position for g in runner.ground_truth().objects if g.id == "red_cube"))
    assert cube[2] > 0.03  # on the bin floor, not the table
    look_down_at_bin = ArmIK(runner.physics.model).solve(
        runner.physics.arm_qpos(), np.array([0.1, 0.25, 0.4]), top_down_rotation(0.0)
    )
    runner.command_trajectory(ARM_JOINTS, [2.0], [look_down_at_bin.q.tolist()])
    runner.run_for(2.5)
    frame, _ = perceive(runner, rig, pipeline, "wrist")
    labels = {o.label: o for o in frame.objects}
    assert "red cube" in labels
    assert np.linalg.norm(labels["red cube"].centroid - cube) < CENTROID_TOLERANCE
    bin_objects = [o for o in frame.objects if 0.05 < o.centroid[0] < 0.25 < o.centroid[1]]
    assert [o.label for o in bin_objects] == ["red cube"]  # no bin walls


# -- decoding ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (7, 5, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    ("encoding", "conversion"),
    [
        ("rgb8", None),
        ("bgr8", cv2.COLOR_RGB2BGR),
        ("rgba8", cv2.COLOR_RGB2RGBA),
        ("bgra8", cv2.COLOR_RGB2BGRA),
    ],
)
def test_decode_color_round_trip(image, encoding, conversion):
    raw = image if conversion is None else cv2.cvtColor(image, conversion)
    channels = raw.shape[2]
    padded = np.zeros((7, 5 * channels + 3), dtype=np.uint8)  # row padding
    padded[:, : 5 * channels] = raw.reshape(7, -1)
    out = decode_color(encoding, 7, 5, padded.shape[1], padded.tobytes())
    assert out.dtype == np.uint8 and out.shape == (7, 5, 3)
    np.testing.assert_array_equal(out, image)


def test_decode_depth_round_trip():
    mm = np.array([[0, 500, 1234], [65535, 1, 800]], dtype="<u2")
    depth = decode_depth("16UC1", 2, 3, 6, mm.tobytes())
    np.testing.assert_allclose(depth, mm.astype(np.float32) / 1000.0, rtol=1e-6)
    metres = np.array([[0.0, 0.5, np.nan], [np.inf, -1.0, 1.25]], dtype="<f4")
    depth = decode_depth("32FC1", 2, 3, 12, metres.tobytes())
    assert depth.dtype == np.float32
    np.testing.assert_array_equal(np.isnan(depth), [[0, 0, 1], [1, 1, 0]])
    assert depth[0, 1] == 0.5 and depth[1, 2] == 1.25 and depth[0, 0] == 0.0


@pytest.mark.parametrize(
    ("call", "reason"),
    [
        (lambda: decode_color("mono8", 2, 2, 2, bytes(4)), "unsupported encoding"),
        (lambda: decode_depth("rgb8", 2, 2, 6, bytes(12)), "unsupported encoding"),
        (lambda: decode_color("rgb8", 2, 2, 6, bytes(11)), "malformed image"),
        (lambda: decode_color("rgb8", 2, 2, 5, bytes(10)), "malformed image"),
        (lambda: decode_depth("16UC1", 2, 2, 4, bytes(7)), "malformed image"),
        (lambda: decode_depth("32FC1", 2, 2, 4, bytes(8)), "malformed image"),
        (lambda: decode_color("rgb8", 0, 2, 6, b""), "empty image"),
    ],
)
def test_decode_errors(call, reason):
    with pytest.raises(PerceptionInputError) as info:
        call()
    assert info.value.reason == reason


# -- validation -------------------------------------------------------------------
K = np.array([[500.0, 0.0, 31.5], [0.0, 500.0, 23.5], [0.0, 0.0, 1.0]])
POSE = (np.array([0.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0, 0.0]))  # looking straight down


def flat_table(height: int = 48, width: int = 64) -> tuple[np.ndarray, np.ndarray]:
    return np.full((height, width, 3), 128, np.uint8), np.full((height, width), 1.0, np.float32)


def test_valid_small_frame_sees_the_empty_table(pipeline):
    rgb, depth = flat_table()
    depth[::7, ::5] = np.nan  # isolated NaNs are just no return
    frame = pipeline.process(rgb, depth, K, *POSE, 1.5, "test")
    assert frame.objects == [] and frame.stamp == 1.5 and frame.camera == "test"
    assert frame.view.depth.shape == (60, 80)


def nan_depth():
    rgb, depth = flat_table()
    depth[:30] = np.nan
    return rgb, depth


@pytest.mark.parametrize(
    ("inputs", "reason"),
    [
        (lambda: (flat_table()[0], flat_table(48, 63)[1], K, *POSE), "size mismatch"),
        (lambda: (*nan_depth(), K, *POSE), "nan depth"),
        (lambda: (*flat_table(), K * np.array([[-1], [1], [1]]), *POSE), "bad intrinsics"),
        (lambda: (*flat_table(), np.full((3, 3), np.nan), *POSE), "bad intrinsics"),
        (lambda: (*flat_table(), K, POSE[0], np.array([1.0, 1.0, 0, 0])), "bad pose"),
        (lambda: (*flat_table(), K, np.array([np.nan, 0, 1]), POSE[1]), "bad pose"),
        (lambda: (np.zeros((0, 0, 3), np.uint8), np.zeros((0, 0)), K, *POSE), "empty image"),
    ],
)
def test_process_rejects_bad_input(pipeline, inputs, reason):
    rgb, depth, k, pos, quat = inputs()
    with pytest.raises(PerceptionInputError) as info:
        pipeline.process(rgb, depth, k, pos, quat, 0.0, "test")
    assert info.value.reason == reason


@pytest.mark.parametrize(
    "bad", [{"stride": 0}, {"dbscan_eps": -1.0}, {"max_invalid_depth_fraction": 1.5}]
)
def test_config_validates_itself(bad):
    with pytest.raises(ValueError):
        PerceptionConfig(**bad)


def test_big_endian_depth_decodes_like_little_endian():
    mm = np.array([[500, 0, 1250]], dtype=np.uint16)
    metres = np.array([[0.5, 0.0, 1.25]], dtype=np.float32)
    for enc, arr in (("16UC1", mm), ("32FC1", metres)):
        little = decode_depth(
            enc, 1, 3, 3 * arr.itemsize, arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        )
        big = decode_depth(
            enc, 1, 3, 3 * arr.itemsize, arr.astype(arr.dtype.newbyteorder(">")).tobytes(), True
        )
        np.testing.assert_allclose(big, little)
        np.testing.assert_allclose(big, metres)
