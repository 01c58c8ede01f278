"""The simulated cell, in-process (no ROS): models, determinism, servo
tracking, cameras, ground truth and the scripted expert."""

from __future__ import annotations

import numpy as np
import pytest

from robot_memory.expert.ik import PandaIK
from robot_memory.expert.pick_place import PickPlacePlanner, place_point_for, run_in_process
from robot_memory.robot.panda import ARM_JOINTS, HOME_ARM
from robot_memory.sim.cameras import CameraRig
from robot_memory.sim.runner import RunnerConfig, SimulationRunner
from robot_memory.sim.scene import OBJECTS, PANDA_VISUALS, SCENES, build_model
from robot_memory.sim.task import TabletopTask


def runner(seed: int = 0, **kw) -> SimulationRunner:
    return SimulationRunner(RunnerConfig(seed=seed, panda_visual="primitive", **kw))


@pytest.mark.parametrize("scene", SCENES)
@pytest.mark.parametrize("visual", PANDA_VISUALS)
def test_every_scene_compiles_and_steps_without_warnings(scene, visual):
    r = SimulationRunner(RunnerConfig(scene=scene, panda_visual=visual))
    r.run_for(1.0)
    assert r.physics.warnings() == {}
    np.testing.assert_allclose(r.physics.arm_qpos(), HOME_ARM, atol=2e-3)  # holds home


def test_bad_options_are_clear_errors():
    with pytest.raises(ValueError, match="unknown scene"):
        build_model("kitchen")
    with pytest.raises(ValueError, match="panda_visual"):
        build_model("tabletop", "shiny")
    with pytest.raises(ValueError, match="seed"):
        RunnerConfig(seed=-1)


def _trajectory(seed: int) -> np.ndarray:
    r = runner(seed)
    target = np.array(HOME_ARM) + 0.3
    r.command_trajectory(ARM_JOINTS, [1.0], [target.tolist()])
    qs = []
    for _ in range(200):
        r.advance(1)
        qs.append(r.physics.data.qpos.copy())
    return np.array(qs)


def test_same_seed_same_trajectory_different_seed_different_scene():
    a, b, c = _trajectory(3), _trajectory(3), _trajectory(4)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a[0], c[0])


def test_position_servo_brings_the_tcp_within_1cm_without_oscillating():
    r = runner()
    ik = PandaIK(r.physics.model)
    target_q = np.array(HOME_ARM) + np.array([0.5, 0.3, -0.3, 0.4, 0.3, -0.4, 0.5])
    target_pos, _ = ik.forward(target_q)
    r.command_trajectory(ARM_JOINTS, [2.0], [target_q.tolist()])
    r.run_for(2.5)
    errors = []
    for _ in range(20):
        r.run_for(0.05)
        errors.append(np.linalg.norm(r.physics.tcp_pose()[0] - target_pos))
    assert max(errors) < 0.01
    assert np.max(np.abs(r.physics.arm_qvel())) < 0.01  # settled, not ringing


def test_objects_start_on_the_table_and_ground_truth_validates():
    truth = runner(5).ground_truth()
    objects = [o for o in truth.objects if o.kind == "object"]
    assert {o.id for o in objects} == {o.id for o in OBJECTS}
    assert len({o.shape for o in objects}) == len({o.color for o in objects}) == 6
    for obj in objects:
        assert obj.support == "table" and not obj.grasped
        assert abs(obj.position[2] - obj.size[2] / 2) < 0.005 or obj.shape == "capsule"
    centres = np.array([o.position[:2] for o in objects])
    dists = np.linalg.norm(centres[:, None] - centres[None], axis=-1) + np.eye(6)
    assert dists.min() > 0.1


def test_cameras_render_colour_metric_depth_and_a_consistent_optical_frame():
    r = runner(2)
    rig = CameraRig(r.physics.model, 320, 240)
    try:
        for cam in ("front", "wrist"):
            rgb, depth = rig.render(r.physics, cam)
            assert rgb.shape == (240, 320, 3) and rgb.std() > 10
            assert depth.shape == (240, 320) and np.all(depth >= 0)
            assert 0.05 < np.median(depth[depth > 0]) < 3.0
            k = rig.intrinsics(cam)
            assert k[0, 0] > 0 and k[0, 0] == k[1, 1]
        # Project the red cube's centre into the front camera with K and the
        # optical pose; the pixel there must be red and at the right depth.
        pos, quat = rig.optical_pose(r.physics, "front")
        w, x, y, z = quat
        rot = np.array(
            [
                [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
            ]
        )
        cube = np.array(r.ground_truth().get("red_cube").position)
        p_cam = rot.T @ (cube - pos)
        assert p_cam[2] > 0  # in front of the camera (z forward)
        u, v, _ = rig.intrinsics("front") @ (p_cam / p_cam[2])
        rgb, depth = rig.render(r.physics, "front")
        pixel = rgb[int(round(v)), int(round(u))].astype(int)
        assert pixel[0] > 80 and pixel[0] > 3 * max(pixel[1], pixel[2]), pixel  # red
        assert abs(depth[int(round(v)), int(round(u))] - p_cam[2]) < 0.04
    finally:
        rig.close()


@pytest.mark.parametrize("object_id", ["red_cube", "blue_cylinder", "yellow_block"])
def test_expert_in_process_puts_objects_in_the_bin(object_id):
    r = runner(1, camera_rate=0.0)
    planner = PickPlacePlanner(PandaIK(build_model("tabletop", "primitive")))
    truth = r.ground_truth()
    steps = planner.plan(
        r.physics.arm_qpos(), truth.get(object_id), place_point_for(truth.get("bin"))
    )
    run_in_process(r, steps)
    r.run_for(0.5)
    assert TabletopTask().object_in_place(r.physics, object_id, "bin")
    assert r.physics.warnings() == {}
