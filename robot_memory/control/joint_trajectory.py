"""JointTrajectory validation and sampling, as ros2_control's
JointTrajectoryController does it (ROS-free).

The simulator consumes ``/arm_controller/joint_trajectory`` through this module,
so the sim rejects exactly what a careful controller should reject and
interpolates the way JTC does: from the state at the start time to the first
point, then point to point; linear when points carry positions only, cubic
Hermite when they carry velocities too. Joints a trajectory does not name hold
their current command (JTC's ``allow_partial_joints_goal``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from robot_memory.robot.description import JointLimits
from robot_memory.robot.panda import GRIPPER_MAX_WIDTH, GRIPPER_MIN_WIDTH

#: Slack on position limits, so a point exactly on a limit after a float round
#: trip is still accepted [rad].
LIMIT_TOLERANCE = 1e-6


class TrajectoryError(ValueError):
    """A command that must not reach the actuators. ``reason`` is short and
    stable (diagnostics count by it); the message has the detail."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class TrajectoryPlan:
    """A validated trajectory over the full joint set of ``limits``.

    ``times`` are seconds from the start, strictly increasing and > 0.
    ``positions``/``velocities`` are (n_points, n_joints); ``mask`` marks the
    joints the trajectory commands (others hold).
    """

    times: np.ndarray
    positions: np.ndarray
    velocities: np.ndarray | None
    mask: np.ndarray

    @property
    def duration(self) -> float:
        return float(self.times[-1])


def validate_trajectory(
    joint_names: Sequence[str],
    times_from_start: Sequence[float],
    positions: Sequence[Sequence[float]],
    velocities: Sequence[Sequence[float]] | None,
    limits: JointLimits,
) -> TrajectoryPlan:
    """Check a trajectory against ``limits``; raise :class:`TrajectoryError`.

    ``velocities`` is None, or one entry per point (an empty entry means
    "no velocities", as in the message).
    """
    names = list(joint_names)
    if not names:
        raise TrajectoryError("empty joint_names", "the trajectory names no joints")
    if len(set(names)) != len(names):
        raise TrajectoryError("duplicate joint", f"joint_names {names}")
    unknown = [n for n in names if n not in limits.names]
    if unknown:
        raise TrajectoryError(
            "unknown joint", f"{unknown} not in controller joints {list(limits.names)}"
        )
    if len(positions) == 0:
        raise TrajectoryError("empty trajectory", "no points")
    if len(times_from_start) != len(positions):
        raise TrajectoryError("malformed point", "times and points differ in number")

    times = np.asarray(times_from_start, dtype=float)
    if not np.all(np.isfinite(times)):
        raise TrajectoryError("non-finite value", "time_from_start is not finite")
    if times[0] <= 0.0 or np.any(np.diff(times) <= 0.0):
        raise TrajectoryError(
            "non-increasing time", f"time_from_start must be > 0 and increasing: {times.tolist()}"
        )

    idx = [limits.index(n) for n in names]
    pts = _matrix(positions, len(names), "positions")
    vels = None
    if velocities is not None and any(len(v) for v in velocities):
        vels = _matrix(velocities, len(names), "velocities")

    lower, upper = limits.lower[idx], limits.upper[idx]
    bad = (pts < lower - LIMIT_TOLERANCE) | (pts > upper + LIMIT_TOLERANCE)
    if np.any(bad):
        p, j = np.argwhere(bad)[0]
        raise TrajectoryError(
            "position out of limits",
            f"point {p} {names[j]}={pts[p, j]:.4f} outside [{lower[j]:.4f}, {upper[j]:.4f}]",
        )
    if vels is not None:
        vmax = limits.velocity[idx]
        over = np.abs(vels) > vmax + LIMIT_TOLERANCE
        if np.any(over):
            p, j = np.argwhere(over)[0]
            raise TrajectoryError(
                "velocity out of limits",
                f"point {p} {names[j]} |{vels[p, j]:.3f}| > {vmax[j]:.3f} rad/s",
            )

    n_joints = len(limits.names)
    full_pos = np.full((len(pts), n_joints), np.nan)
    full_pos[:, idx] = pts
    full_vel = None
    if vels is not None:
        full_vel = np.zeros((len(pts), n_joints))
        full_vel[:, idx] = vels
    mask = np.zeros(n_joints, dtype=bool)
    mask[idx] = True
    return TrajectoryPlan(times, full_pos, full_vel, mask)


def _matrix(rows: Sequence[Sequence[float]], width: int, what: str) -> np.ndarray:
    for i, row in enumerate(rows):
        if len(row) != width:
            raise TrajectoryError(
                "malformed point", f"point {i} has {len(row)} {what}, expected {width}"
            )
    arr = np.asarray(rows, dtype=float).reshape(len(rows), width)
    if not np.all(np.isfinite(arr)):
        raise TrajectoryError("non-finite value", f"NaN or inf in {what}")
    return arr


class ActiveTrajectory:
    """A validated plan anchored at ``start_time`` from ``start_positions``."""

    def __init__(self, plan: TrajectoryPlan, start_time: float, start_positions: np.ndarray):
        self.plan = plan
        self.start_time = float(start_time)
        start = np.asarray(start_positions, dtype=float)
        # Knot 0 is the state at the start time; unnamed joints hold there.
        self._times = np.concatenate([[0.0], plan.times])
        pos = np.where(plan.mask, plan.positions, start)
        self._pos = np.vstack([start, pos])
        self._vel = None
        if plan.velocities is not None:
            self._vel = np.vstack([np.zeros_like(start), plan.velocities])

    @property
    def end_time(self) -> float:
        return self.start_time + self.plan.duration

    @property
    def final_positions(self) -> np.ndarray:
        return self._pos[-1].copy()

    def done(self, t: float) -> bool:
        return t >= self.end_time

    def sample(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Positions and velocities at absolute time ``t``."""
        tau = t - self.start_time
        if tau <= 0.0:
            return self._pos[0].copy(), np.zeros(self._pos.shape[1])
        if tau >= self._times[-1]:
            return self._pos[-1].copy(), np.zeros(self._pos.shape[1])
        k = int(np.searchsorted(self._times, tau, side="right")) - 1
        t0, t1 = self._times[k], self._times[k + 1]
        h = t1 - t0
        s = (tau - t0) / h
        p0, p1 = self._pos[k], self._pos[k + 1]
        if self._vel is None:
            return p0 + s * (p1 - p0), (p1 - p0) / h
        v0, v1 = self._vel[k], self._vel[k + 1]
        h00, h10 = 2 * s**3 - 3 * s**2 + 1, s**3 - 2 * s**2 + s
        h01, h11 = -2 * s**3 + 3 * s**2, s**3 - s**2
        pos = h00 * p0 + h10 * h * v0 + h01 * p1 + h11 * h * v1
        dh00, dh10 = 6 * s**2 - 6 * s, 3 * s**2 - 4 * s + 1
        dh01, dh11 = -6 * s**2 + 6 * s, 3 * s**2 - 2 * s
        vel = (dh00 * p0 + dh01 * p1) / h + dh10 * v0 + dh11 * v1
        return pos, vel


def validate_gripper_command(data: Sequence[float]) -> float:
    """``/gripper_controller/commands`` carries one value: the finger opening [m]."""
    if len(data) != 1:
        raise TrajectoryError("malformed gripper command", f"expected 1 value, got {len(data)}")
    width = float(data[0])
    if not np.isfinite(width):
        raise TrajectoryError("non-finite gripper width", "gripper width is not finite")
    if not GRIPPER_MIN_WIDTH - LIMIT_TOLERANCE <= width <= GRIPPER_MAX_WIDTH + LIMIT_TOLERANCE:
        raise TrajectoryError(
            "gripper width out of limits",
            f"{width:.4f} m outside [{GRIPPER_MIN_WIDTH}, {GRIPPER_MAX_WIDTH}]",
        )
    return width
