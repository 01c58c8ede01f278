"""Joint-space motion limits for commanded trajectories (ROS-free, numpy only).

A command is a polyline of joint positions with times, which the controller
(ros2_control's JointTrajectoryController, or the sim's copy of it) follows by
linear interpolation from its current setpoint. What this module calls its
velocity and acceleration are therefore finite differences:

* segment ``k`` (from point ``k-1`` to point ``k``; point 0 is the setpoint the
  command starts from) moves at ``v_k = (q_k - q_{k-1}) / dt_k``;
* the acceleration at point ``k-1`` is ``(v_k - v_{k-1}) / ((dt_{k-1} + dt_k) / 2)``,
  with ``v_0`` the velocity of the motion the command replaces and, for the
  first segment, ``dt_0 := dt_1``.

:func:`retime` stretches time (never compresses it) until a path meets the
velocity and acceleration limits, and each segment can still stop before a
position limit; the positions are kept. :func:`smooth_stop` brings a motion to
rest at the acceleration limit. :func:`command_violations` is the one check of
all of this, used by the safety filter on everything it emits and by the
property tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Relative slack on velocity and acceleration limits for float round trips.
LIMIT_SLACK = 1e-6
#: Slack on position limits [rad].
POSITION_SLACK = 1e-6
#: Time step of a smooth stop's points [s].
STOP_STEP_S = 0.02
_MAX_PASSES = 400
_GROWTH = 1.05


@dataclass(frozen=True)
class MotionLimits:
    """Per-joint position, velocity and acceleration limits (all arrays of one length)."""

    lower: np.ndarray
    upper: np.ndarray
    velocity: np.ndarray
    acceleration: np.ndarray

    def __post_init__(self) -> None:
        arrays = [np.asarray(getattr(self, n), dtype=float) for n in self.__dataclass_fields__]
        if len({a.shape for a in arrays}) != 1 or arrays[0].ndim != 1:
            raise ValueError("limits must be 1-D arrays of one length")
        if np.any(arrays[0] >= arrays[1]) or np.any(arrays[2] <= 0) or np.any(arrays[3] <= 0):
            raise ValueError("limits need lower < upper and positive velocity/acceleration")
        for name, value in zip(self.__dataclass_fields__, arrays, strict=True):
            object.__setattr__(self, name, value)

    def scaled(self, velocity: float, acceleration: float, margin: float = 0.0) -> MotionLimits:
        return MotionLimits(
            self.lower + margin,
            self.upper - margin,
            self.velocity * velocity,
            self.acceleration * acceleration,
        )


class RetimeError(ValueError):
    """A path no retiming can make feasible (e.g. a point beyond a position limit)."""


def segment_velocities(q0: np.ndarray, times: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """(n, joints) velocities of the segments from ``q0`` through ``positions``;
    ``times`` are seconds from the start, strictly increasing, the first > 0."""
    dt = np.diff(np.concatenate([[0.0], times]))
    return np.diff(np.vstack([q0, positions]), axis=0) / dt[:, None]


def _accelerations(v_in: np.ndarray, dt: np.ndarray, vel: np.ndarray) -> np.ndarray:
    prev = np.vstack([v_in, vel[:-1]])
    span = (np.concatenate([[dt[0]], dt[:-1]]) + dt) / 2
    return (vel - prev) / span[:, None]


def retime(
    starts: list[tuple[np.ndarray, np.ndarray]],
    times: np.ndarray,
    positions: np.ndarray,
    limits: MotionLimits,
) -> np.ndarray:
    """Times (seconds from now; each segment at least as long as asked) that
    make the path through ``positions`` meet ``limits`` from every start
    ``(q0, v_in)``: where the controller's setpoint is and how it moves, and,
    when the arm does not track it, where the arm is (at rest). The command
    ends at rest within the acceleration limit too. Positions are kept.
    Raises :class:`RetimeError` when a point is outside the position limits."""
    positions = np.asarray(positions, dtype=float).reshape(len(times), len(limits.lower))
    times = np.asarray(times, dtype=float)
    if np.any(positions < limits.lower - POSITION_SLACK) or np.any(
        positions > limits.upper + POSITION_SLACK
    ):
        raise RetimeError("a point is outside the position limits")
    dt = np.diff(np.concatenate([[0.0], times]))
    if len(dt) == 0 or np.any(dt <= 0) or not np.all(np.isfinite(dt)):
        raise RetimeError("times must be finite, > 0 and increasing")
    # what does not change from pass to pass: each start's steps, and the room
    # each segment has before the position limit it heads to
    paths = []
    for q0, v_in in starts:
        steps = np.diff(np.vstack([np.asarray(q0, float), positions]), axis=0)
        room = np.where(steps > 0, limits.upper - positions, positions - limits.lower)
        paths.append((steps, np.maximum(room, 0.0) + POSITION_SLACK, np.asarray(v_in, float)))
    for _ in range(_MAX_PASSES):
        grow = np.zeros(len(dt), dtype=bool)
        for steps, room, v_in in paths:
            grow |= _too_fast(steps, room, v_in, dt, limits)
        if not np.any(grow):
            return np.cumsum(dt)
        dt = np.where(grow, dt * _GROWTH, dt)
    raise RetimeError(f"no timing meets the limits within {_MAX_PASSES} passes")


def _too_fast(
    steps: np.ndarray, room: np.ndarray, v_in: np.ndarray, dt: np.ndarray, limits: MotionLimits
) -> np.ndarray:
    """Segments to slow down: over the velocity limit, the faster side of a
    junction over the acceleration limit, or unable to stop before a limit
    (``room``: distance to it, with the slack)."""
    vel = steps / dt[:, None]
    speed = np.max(np.abs(vel) / limits.velocity, axis=1)
    grow = speed > 1.0 + LIMIT_SLACK
    grow |= np.any(vel**2 / (2 * limits.acceleration) > room, axis=1)
    acc = np.max(np.abs(_accelerations(v_in, dt, vel)) / limits.acceleration, axis=1)
    over = acc > 1.0 + LIMIT_SLACK  # at the junction before segment k: grow k, and
    grow |= over  # the segment before it where that one is the faster side
    grow[:-1] |= over[1:] & (speed[:-1] >= speed[1:])
    if np.max(np.abs(vel[-1]) / dt[-1] / limits.acceleration) > 1.0 + LIMIT_SLACK:
        grow[-1] = True  # it must come to rest at its last point
    return grow


def smooth_stop(
    q: np.ndarray, v: np.ndarray, limits: MotionLimits, step_s: float = STOP_STEP_S
) -> tuple[np.ndarray, np.ndarray]:
    """``(times, positions)`` that bring the motion at ``q`` with velocity ``v``
    to rest, every joint decelerating together at most at its limit. A motion
    at rest gives one point at ``q`` after ``step_s``."""
    q = np.clip(np.asarray(q, dtype=float), limits.lower, limits.upper)
    v = np.asarray(v, dtype=float)
    duration = float(np.max(np.abs(v) / limits.acceleration))
    if duration <= 0.0:
        return np.array([step_s]), q.reshape(1, -1)
    n = max(1, int(np.ceil(duration / step_s)))
    t = np.linspace(duration / n, duration, n)
    pos = q + np.outer(t, v) - 0.5 * np.outer(t**2, v / duration)
    return t, np.clip(pos, limits.lower, limits.upper)


def command_violations(
    q0: np.ndarray,
    v_in: np.ndarray,
    times: np.ndarray,
    positions: np.ndarray,
    limits: MotionLimits,
) -> list[str]:
    """Every way the command ``q0 -> positions`` at ``times`` (from now) breaks
    ``limits``, taking over from a motion at ``v_in``; empty when it is safe."""
    problems: list[str] = []
    times = np.asarray(times, dtype=float)
    positions = np.asarray(positions, dtype=float).reshape(len(times), -1)
    if len(times) == 0:
        return ["no points"]
    if not (np.all(np.isfinite(times)) and np.all(np.isfinite(positions))):
        return ["non-finite value"]
    dt = np.diff(np.concatenate([[0.0], times]))
    if np.any(dt <= 0):
        return ["times not increasing from now"]
    if np.any(positions < limits.lower - POSITION_SLACK) or np.any(
        positions > limits.upper + POSITION_SLACK
    ):
        problems.append("position beyond limits")
    vel = segment_velocities(np.asarray(q0, dtype=float), times, positions)
    if np.any(np.abs(vel) > limits.velocity * (1 + LIMIT_SLACK) + LIMIT_SLACK):
        problems.append("velocity over limit")
    acc = _accelerations(np.asarray(v_in, dtype=float), dt, vel)
    rest = np.abs(vel[-1]) / dt[-1]  # coming to rest at the last point
    if np.any(np.abs(acc) > limits.acceleration * (1 + LIMIT_SLACK) + LIMIT_SLACK) or np.any(
        rest > limits.acceleration * (1 + LIMIT_SLACK) + LIMIT_SLACK
    ):
        problems.append("acceleration over limit")
    return problems


def plan_velocity(times: np.ndarray, rows: np.ndarray, now: float) -> np.ndarray:
    """Velocity of the polyline ``rows`` at absolute ``times`` at ``now``
    (zero before its start and after its end)."""
    k = int(np.searchsorted(times, now, side="right"))
    if k <= 0 or k >= len(times):
        return np.zeros(rows.shape[1])
    return (rows[k] - rows[k - 1]) / (times[k] - times[k - 1])
