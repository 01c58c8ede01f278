"""The simulated cell, in-process (no ROS): models, determinism, servo
tracking, cameras, ground truth and the scripted expert."""

from __future__ import annotations

import numpy as np
import pytest

from robot_memory.expert.pick_place import PickPlacePlanner, place_point_for, run_in_process
from robot_memory.robot.ik import ArmIK
from robot_memory.robot.panda import ARM_JOINTS, HOME_ARM
from robot_memory.sim.cameras import CameraRig
from robot_memory.sim.physics import CellPhysics
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
    ik = ArmIK(r.physics.model)
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
    planner = PickPlacePlanner(ArmIK(build_model("tabletop", "primitive")))
    truth = r.ground_truth()
    steps = planner.plan(
        r.physics.arm_qpos(), truth.get(object_id), place_point_for(truth.get("bin"))
    )
    run_in_process(r, steps)
    r.run_for(0.5)
    assert TabletopTask().object_in_place(r.physics, object_id, "bin")
    assert r.physics.warnings() == {}


def _segmented_bodies(model, data, camera: str) -> set[str]:
    """Names of the bodies whose geoms are visible in ``camera`` (320x240)."""
    import mujoco

    renderer = mujoco.Renderer(model, 240, 320)
    try:
        renderer.enable_segmentation_rendering()
        renderer.update_scene(data, camera=camera)
        seg = renderer.render()
    finally:
        renderer.close()
    geoms = np.unique(seg[..., 0][seg[..., 1] == int(mujoco.mjtObj.mjOBJ_GEOM)])
    return {model.body(model.geom_bodyid[g]).name for g in geoms}


def test_front_camera_sees_part_of_the_table_and_never_the_bin():
    object_ids = {o.id for o in OBJECTS}
    seen_counts = []
    r = runner(0)
    for seed in range(4):
        r.reset(seed)
        seen = _segmented_bodies(r.physics.model, r.physics.data, "front_camera")
        assert "bin" not in seen and "table" in seen
        seen_counts.append(len(seen & object_ids))
    assert min(seen_counts) >= 1 and max(seen_counts) < len(object_ids)
    wrist = _segmented_bodies(r.physics.model, r.physics.data, "wrist_camera")
    assert {"panda_leftfinger", "panda_rightfinger", "table"} <= wrist


def test_placements_are_reachable_off_the_bin_and_seed_dependent():
    from robot_memory.sim.task import REACH

    r = runner(0)
    layouts = []
    for seed in range(8):
        r.reset(seed)
        truth = r.ground_truth()
        base = r.physics.body_pose("panda_link0")[0]
        for obj in (o for o in truth.objects if o.kind == "object"):
            assert REACH[0] - 0.01 < np.linalg.norm(np.array(obj.position[:2]) - base[:2])
            assert np.linalg.norm(np.array(obj.position[:2]) - base[:2]) < REACH[1] + 0.01
            assert obj.support == "table"
            assert not r.task.object_in_place(r.physics, obj.id, "bin")
        layouts.append(np.array([o.position for o in truth.objects]))
    assert all(not np.allclose(layouts[0], other) for other in layouts[1:])
    assert truth.get("bin").support == "table" and truth.get("table").support is None


def test_poses_are_current_after_a_step_and_commands_are_checked():
    r = runner(0)
    ik = ArmIK(r.physics.model)
    r.command_trajectory(ARM_JOINTS, [0.5], [(np.array(HOME_ARM) + 0.2).tolist()])
    r.run_for(0.25)  # moving
    pos, _ = r.physics.tcp_pose()
    np.testing.assert_allclose(pos, ik.forward(r.physics.arm_qpos())[0], atol=1e-9)
    with pytest.raises(ValueError):
        r.physics.set_arm_command(np.array([np.nan] * 7))
    with pytest.raises(ValueError):
        r.physics.set_arm_command(np.zeros(6))
    r.physics.set_gripper_command(0.5)  # clipped to the hand's 8 cm
    r.run_for(0.5)
    assert abs(r.physics.gripper_width() - 0.08) < 1e-3
    names, q, dq, effort = r.physics.joint_state()
    assert len(names) == len(q) == len(dq) == len(effort) == 9


def test_the_cover_hides_an_object():
    r = runner(0)
    physics, task = r.physics, r.task
    assert "red_cube" in _segmented_bodies(physics.model, physics.data, "front_camera")
    cube = physics.body_pose("red_cube")[0]
    adr = physics.model.jnt_qposadr[physics.model.joint("cover").id]
    physics.data.qpos[adr : adr + 7] = [cube[0], cube[1], 0.047, 1, 0, 0, 0]
    physics.data.qvel[:] = 0.0
    physics.forward()
    r.run_for(0.5)
    assert task.object_in_place(physics, "red_cube", "cover")
    assert not task.object_in_place(physics, "green_sphere", "cover")
    assert r.ground_truth().get("cover").support == "table"
    seen = _segmented_bodies(physics.model, physics.data, "front_camera")
    assert "red_cube" not in seen
    assert physics.warnings() == {}


@pytest.mark.parametrize("rate", [250.0, 1000.0])
def test_servos_settle_at_other_physics_rates(rate):
    model = build_model("tabletop", "primitive")
    model.opt.timestep = 1.0 / rate
    physics = CellPhysics(model)
    target = np.array(HOME_ARM) + np.array([0.8, 0.4, -0.5, 0.6, 0.8, -0.6, 0.9])
    physics.set_arm_command(target)  # a step, not a trajectory: the worst case
    physics.set_gripper_command(0.0)
    physics.step(round(1.5 * rate))
    assert np.max(np.abs(physics.arm_qpos() - target)) < 2e-3
    assert np.max(np.abs(physics.arm_qvel())) < 1e-3
    assert physics.gripper_width() < 1e-3 and physics.warnings() == {}
