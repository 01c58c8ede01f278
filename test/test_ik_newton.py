"""The policy's chunk IK: damped Newton steps on MuJoCo's kinematics, with mink
as the fallback. Checked against mink (ArmIK) itself, on both arms."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from robot_memory.policy.kinematics import ArmKinematics, top_down_quaternion
from robot_memory.robot.arm_model import arm_model
from robot_memory.robot.ik import ArmIK, IKError, top_down_rotation
from robot_memory.robot.ik_newton import NewtonIK
from robot_memory.robot.panda import HOME_ARM, PANDA
from robot_memory.robot.ur5e import UR5E


@pytest.mark.parametrize("arm", [PANDA, UR5E], ids=lambda a: a.name)
def test_forward_kinematics_is_minks(arm) -> None:
    model = arm_model(arm)
    newton, mink_ik = NewtonIK(model, arm), ArmIK(model, arm)
    rng = np.random.default_rng(1)
    for _ in range(10):
        q = rng.uniform(arm.lower * 0.8, arm.upper * 0.8)
        position, rotation = newton.forward(q)
        mink_position, mink_rotation = mink_ik.forward(q)
        assert position == pytest.approx(mink_position, abs=1e-9)
        assert rotation == pytest.approx(mink_rotation, abs=1e-9)


@pytest.mark.parametrize("arm", [PANDA, UR5E], ids=lambda a: a.name)
def test_newton_reaches_poses_within_the_joint_limits(arm) -> None:
    newton = NewtonIK(arm_model(arm), arm)
    position, rotation = newton.forward(arm.home)
    rng = np.random.default_rng(2)
    for _ in range(10):
        target = position + rng.uniform(-0.06, 0.06, 3)
        q, pos_err, rot_err, converged = newton.solve(arm.home, target, rotation)
        assert converged, (target, pos_err, rot_err)
        assert np.all(q >= arm.lower) and np.all(q <= arm.upper)
        reached, turned = newton.forward(q)
        assert np.linalg.norm(reached - target) < 5e-4
        assert turned == pytest.approx(rotation, abs=1e-2)


def test_top_down_quaternion_is_the_top_down_rotation() -> None:
    for yaw in np.linspace(-3.0, 3.0, 13):
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, top_down_rotation(yaw).reshape(9))
        ours = top_down_quaternion(yaw)
        assert abs(abs(np.dot(quat, ours)) - 1.0) < 1e-12, yaw  # the same rotation, either sign


def chunk(start_q: np.ndarray, kin: ArmKinematics, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """8 TCP targets a policy chunk could hold: a smooth drift of a few cm."""
    rng = np.random.default_rng(seed)
    position, yaw = kin.tcp_pose(start_q)
    velocity = rng.uniform(-0.1, 0.1, 3)  # [m/s] over 0.1 s steps
    steps = np.arange(1, 9)[:, None] * 0.1
    positions = position + velocity * steps + rng.normal(0, 0.002, (8, 3))
    return positions, yaw + rng.uniform(-0.3, 0.3) * steps[:, 0]


def test_a_chunk_matches_mink_solving_every_pose() -> None:
    kin = ArmKinematics()
    rng = np.random.default_rng(3)
    for seed in range(12):
        start = HOME_ARM + rng.uniform(-0.2, 0.2, 7)
        positions, yaws = chunk(start, kin, seed)
        joints = kin.joint_targets(start, positions, yaws)
        q, by_mink = start, []
        for p, y in zip(positions, yaws, strict=True):
            q = kin.ik.solve(q, p, top_down_rotation(y), pos_tol=1e-3, rot_tol=1e-2).q
            by_mink.append(q)
        for q, target, yaw in zip(joints, positions, yaws, strict=True):
            reached, turned = kin.tcp_pose(q)
            assert np.linalg.norm(reached - target) < 1e-3
            assert abs(turned - yaw) < 1e-2
        # the same redundancy resolution: each pose near the previous one
        assert np.max(np.abs(joints - np.array(by_mink))) < 0.1
    assert kin.newton_fallbacks == 0


def test_an_unreachable_pose_goes_to_mink_and_raises_as_before() -> None:
    kin = ArmKinematics()
    position, yaw = kin.tcp_pose(HOME_ARM)
    far = np.array([position, position + [1.5, 0.0, 0.0]])  # 1.5 m beyond reach
    with pytest.raises(IKError):
        kin.joint_targets(HOME_ARM, far, np.full(2, yaw))
    assert kin.newton_fallbacks == 1
    # with min_points the reachable prefix is kept
    prefix = kin.joint_targets(HOME_ARM, far, np.full(2, yaw), min_points=1)
    assert len(prefix) == 1 and kin.newton_fallbacks == 2
