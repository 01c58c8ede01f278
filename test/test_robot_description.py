"""One robot model: an arm is an ArmDescription (joints, limits, home, MJCF)
under robot/ and sim/, and the same code compiles its kinematics and solves
its IK. The Panda is the simulated arm; the UR5e shows a second arm plugs in
without touching the cores: its MJCF reproduces Universal Robots' published
DH chain and ArmIK reaches poses with it."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from robot_memory.robot.arm_model import arm_model
from robot_memory.robot.description import ArmDescription
from robot_memory.robot.ik import ArmIK
from robot_memory.robot.panda import PANDA
from robot_memory.robot.ur5e import UR5E

#: Universal Robots' published UR5e DH table (standard DH), written out here so
#: the check does not read the numbers it checks from the module under test.
UR5E_D = (0.1625, 0.0, 0.0, 0.1333, 0.0997, 0.0996)
UR5E_A = (0.0, -0.425, -0.3922, 0.0, 0.0, 0.0)
UR5E_ALPHA = (np.pi / 2, 0.0, 0.0, np.pi / 2, -np.pi / 2, 0.0)


def dh_flange(q: np.ndarray) -> np.ndarray:
    """The flange position by the DH chain: T_i = Rz(q_i) Tz(d_i) Tx(a_i) Rx(alpha_i)."""
    t = np.eye(4)
    for qi, d, a, alpha in zip(q, UR5E_D, UR5E_A, UR5E_ALPHA, strict=True):
        cq, sq, ca, sa = np.cos(qi), np.sin(qi), np.cos(alpha), np.sin(alpha)
        t = t @ np.array(
            [[cq, -sq * ca, sq * sa, a * cq], [sq, cq * ca, -cq * sa, a * sq],
             [0.0, sa, ca, d], [0.0, 0.0, 0.0, 1.0]]
        )  # fmt: skip
    return t[:3, 3]


@pytest.mark.parametrize("arm", [PANDA, UR5E], ids=lambda a: a.name)
def test_each_description_compiles_with_its_joints_limits_and_tcp(arm: ArmDescription) -> None:
    model = arm_model(arm, (0.1, -0.2, 0.3), (1.0, 0.0, 0.0, 0.0))
    for j, name in enumerate(arm.joints):
        lo, hi = model.jnt_range[model.joint(name).id]
        assert (lo, hi) == pytest.approx((arm.lower[j], arm.upper[j]), abs=1e-4), name
    assert model.site(arm.tcp_site).id >= 0
    # the base sits where it was asked to
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    assert data.xpos[model.body(arm.base_body).id] == pytest.approx([0.1, -0.2, 0.3])


def test_the_ur5e_model_is_the_published_dh_chain() -> None:
    model = arm_model(UR5E, (0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0))
    ik = ArmIK(model, UR5E)
    rng = np.random.default_rng(0)
    for _ in range(20):
        q = rng.uniform(UR5E.lower / 2, UR5E.upper / 2)
        assert ik.forward(q)[0] == pytest.approx(dh_flange(q), abs=1e-9)
    assert dh_flange(np.zeros(6)) == pytest.approx([-0.8172, -0.2329, 0.0628])


def test_the_same_ik_reaches_poses_with_either_arm() -> None:
    for arm in (PANDA, UR5E):
        ik = ArmIK(arm_model(arm), arm)
        position, rotation = ik.forward(arm.home)
        target = position + np.array([0.05, -0.04, -0.06])
        q = ik.solve(arm.home, target, rotation).q
        assert q.shape == (len(arm.joints),)
        assert np.all(q >= arm.lower) and np.all(q <= arm.upper)
        reached, turned = ik.forward(q)
        assert reached == pytest.approx(target, abs=2e-3), arm.name
        assert turned == pytest.approx(rotation, abs=2e-2), arm.name


def test_a_description_with_inconsistent_data_is_refused() -> None:
    fields = {k: getattr(UR5E, k) for k in UR5E.__dataclass_fields__}
    with pytest.raises(ValueError, match="velocity must have 6 values"):
        ArmDescription(**{**fields, "velocity": np.ones(5)})
    with pytest.raises(ValueError, match="home is outside"):
        ArmDescription(**{**fields, "home": np.full(6, 7.0)})
