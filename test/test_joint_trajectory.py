"""JTC-style validation and interpolation (pure core, no ROS)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robot_memory.control.joint_trajectory import (
    ActiveTrajectory,
    TrajectoryError,
    validate_gripper_command,
    validate_trajectory,
)
from robot_memory.robot.panda import ARM_JOINTS, ARM_LOWER, ARM_UPPER, HOME_ARM, PANDA_ARM_LIMITS


def plan(names=ARM_JOINTS, times=(1.0,), points=(tuple(HOME_ARM),), vels=None):
    return validate_trajectory(names, times, points, vels, PANDA_ARM_LIMITS)


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"names": ()}, "empty joint_names"),
        ({"names": ("panda_joint1", "elbow")}, "unknown joint"),
        ({"names": ("panda_joint1", "panda_joint1"), "points": ((0, 0),)}, "duplicate joint"),
        ({"times": (), "points": ()}, "empty trajectory"),
        ({"points": ((np.nan,) + tuple(HOME_ARM[1:]),)}, "non-finite value"),
        (
            {"points": (tuple(HOME_ARM[:3]) + (0.5,) + tuple(HOME_ARM[4:]),)},
            "position out of limits",
        ),
        ({"times": (1.0, 1.0), "points": (tuple(HOME_ARM),) * 2}, "non-increasing time"),
        ({"times": (0.0,)}, "non-increasing time"),
        ({"points": (tuple(HOME_ARM[:6]),)}, "malformed point"),
        ({"vels": ((5.0,) * 7,)}, "velocity out of limits"),
    ],
)
def test_bad_trajectories_are_rejected_with_a_reason(kwargs, reason):
    with pytest.raises(TrajectoryError) as err:
        plan(**kwargs)
    assert err.value.reason == reason
    assert err.value.detail


def test_linear_interpolation_from_start_state_to_points():
    start = np.array(HOME_ARM)
    target = start + 0.2
    traj = ActiveTrajectory(plan(points=(tuple(target),), times=(2.0,)), 10.0, start)
    np.testing.assert_allclose(traj.sample(9.0)[0], start)
    np.testing.assert_allclose(traj.sample(11.0)[0], start + 0.1)
    np.testing.assert_allclose(traj.sample(11.0)[1], np.full(7, 0.1))
    np.testing.assert_allclose(traj.sample(13.0)[0], target)
    assert traj.done(12.0) and not traj.done(11.9)


def test_cubic_with_velocities_hits_knots_and_is_smooth():
    start = np.array(HOME_ARM)
    mid, end = start + 0.1, start + 0.3
    traj = ActiveTrajectory(
        plan(times=(1.0, 2.0), points=(tuple(mid), tuple(end)), vels=((0.2,) * 7, (0.0,) * 7)),
        0.0,
        start,
    )
    np.testing.assert_allclose(traj.sample(1.0)[0], mid, atol=1e-12)
    np.testing.assert_allclose(traj.sample(1.0)[1], np.full(7, 0.2), atol=1e-9)
    np.testing.assert_allclose(traj.sample(2.0)[0], end)
    ts = np.linspace(0, 2, 401)
    q = np.array([traj.sample(t)[0][0] for t in ts])
    assert np.max(np.abs(np.diff(q, 2))) < 1e-3  # no jumps


def test_partial_goal_holds_unnamed_joints():
    start = np.array(HOME_ARM)
    traj = ActiveTrajectory(plan(names=("panda_joint2",), points=((0.3,),)), 0.0, start)
    final = traj.final_positions
    assert final[1] == pytest.approx(0.3)
    np.testing.assert_allclose(np.delete(final, 1), np.delete(start, 1))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), min_size=7, max_size=7))
def test_accepted_points_are_always_finite_and_within_limits(values):
    try:
        p = plan(points=(tuple(values),))
    except TrajectoryError:
        return
    assert np.all(np.isfinite(p.positions))
    assert np.all(p.positions >= ARM_LOWER - 1e-6) and np.all(p.positions <= ARM_UPPER + 1e-6)


@pytest.mark.parametrize(
    ("data", "ok"), [([0.04], True), ([0.0], True), ([0.09], False), ([np.nan], False), ([], False)]
)
def test_gripper_command_validation(data, ok):
    if ok:
        assert validate_gripper_command(data) == pytest.approx(data[0])
    else:
        with pytest.raises(TrajectoryError):
            validate_gripper_command(data)
