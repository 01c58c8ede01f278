"""The ``look`` skill without ROS: point the wrist camera down at a table point.

Not the diffusion policy: a scripted IK motion. The TCP goes ``LOOK_HEIGHT``
above the point, pointing straight down with the home hand yaw; from there the
wrist camera sees about 0.55 x 0.7 m of table around it (the spawn area from
``LOOK_POINTS``). Two calls make the skill:

    q_goal = look_target(ik, q_now, point)          # IK, raises IKError
    times, positions = look_trajectory(q_now, q_goal)  # minimum-jerk, safe speed

``times`` are seconds from now (strictly increasing, first > 0) and
``positions`` one row of the 7 arm joints per time: what
``SimulationRunner.command_trajectory`` and a ``JointTrajectory`` take. The
policy node sends it through the safety node like any chunk; the in-process
evaluation (:mod:`robot_memory.tasks.inprocess`) hands it to the simulator.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from robot_memory.control.profiles import min_jerk
from robot_memory.robot.ik import IKError, PandaIK, top_down_rotation
from robot_memory.robot.panda import ARM_LOWER, ARM_UPPER, ARM_VELOCITY, HOME_ARM

#: TCP height above the table while looking [m] (the table top is z = 0).
LOOK_HEIGHT = 0.42
#: The sweep over the table (TCP x, y) that sees the whole spawn area [m].
LOOK_POINTS: tuple[tuple[float, float], ...] = ((0.08, -0.2), (0.08, 0.2), (0.1, 0.0))
#: Where an unreachable look point is pulled towards (the table's middle) [m].
FALLBACK_POINT = (0.08, 0.0)
#: Fraction of Franka's joint velocity limits a look moves at (the expert's
#: joint moves use 0.5; the safety node allows 1.0).
LOOK_JOINT_SPEED = 0.4


def home_yaw(ik: PandaIK) -> float:
    """The hand yaw at the home pose [rad]: looks keep it (no wrist twist)."""
    rot = ik.forward(HOME_ARM)[1]
    return float(np.arctan2(rot[1, 0], rot[0, 0]))


def look_target(
    ik: PandaIK,
    q_now: Sequence[float],
    point: Sequence[float],
    height: float = LOOK_HEIGHT,
    yaw: float | None = None,
    tries: int = 4,
) -> np.ndarray:
    """Arm joints that put the TCP ``height`` above table point ``point`` (x, y
    or x, y, z; z is ignored: the height is above the table top), pointing down
    with hand ``yaw`` (default: the home yaw). The IK is seeded at ``q_now``.

    A point out of reach is pulled towards ``FALLBACK_POINT`` in ``tries``
    steps (the camera still sees it from nearer the middle); raises
    :class:`IKError` when even the last step fails."""
    xy = np.asarray(point, dtype=float).reshape(-1)[:2]
    if xy.shape != (2,) or not np.all(np.isfinite(xy)):
        raise ValueError(f"look point must be finite x, y, got {point!r}")
    if not np.isfinite(height) or height <= 0:
        raise ValueError(f"height must be > 0, got {height}")
    rot = top_down_rotation(home_yaw(ik) if yaw is None else yaw)
    q0 = np.asarray(q_now, dtype=float)
    last: IKError | None = None
    for k in range(max(1, tries)):
        s = k / max(1, tries - 1) * 0.6  # up to 60% of the way to the fallback
        target = np.array([*((1 - s) * xy + s * np.asarray(FALLBACK_POINT)), height])
        try:
            return ik.solve(q0, target, rot).q
        except IKError as err:
            last = err
    raise IKError(f"no look pose above {xy.round(3).tolist()}: {last}")


def look_trajectory(
    q_now: Sequence[float],
    q_goal: Sequence[float],
    speed: float = LOOK_JOINT_SPEED,
    waypoints: int = 10,
    min_duration: float = 0.6,
) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-jerk joint move from ``q_now`` to ``q_goal``: (times (n,),
    positions (n, 7)). The duration keeps every joint's peak speed at or below
    ``speed`` times its velocity limit (min-jerk peaks at 1.875x the mean)."""
    q0, q1 = np.asarray(q_now, dtype=float), np.asarray(q_goal, dtype=float)
    if q0.shape != (7,) or q1.shape != (7,):
        raise ValueError("q_now and q_goal must be 7 arm joints")
    if not 0.0 < speed <= 1.0:
        raise ValueError(f"speed is a fraction of the limits in (0, 1], got {speed}")
    if np.any(q1 < ARM_LOWER) or np.any(q1 > ARM_UPPER):
        raise ValueError("q_goal is outside the joint limits")
    peak = float(np.max(np.abs(q1 - q0) / (speed * ARM_VELOCITY)))
    duration = max(min_duration, 1.875 * peak)
    tau = np.linspace(0.0, 1.0, max(2, waypoints) + 1)[1:]
    return tau * duration, q0 + np.outer(min_jerk(tau), q1 - q0)


__all__ = [
    "FALLBACK_POINT",
    "LOOK_HEIGHT",
    "LOOK_JOINT_SPEED",
    "LOOK_POINTS",
    "home_yaw",
    "look_target",
    "look_trajectory",
]
