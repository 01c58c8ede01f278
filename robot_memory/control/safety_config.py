"""Configuration and result types of the safety filter (ROS-free)."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from robot_memory.control.retiming import MotionLimits
from robot_memory.robot.panda import (
    ARM_ACCELERATION,
    ARM_JOINTS,
    ARM_LOWER,
    ARM_UPPER,
    ARM_VELOCITY,
)

STATUS_SCHEMA_VERSION = 2
#: Franka's published position, velocity and acceleration limits of the arm.
PANDA_MOTION_LIMITS = MotionLimits(ARM_LOWER, ARM_UPPER, ARM_VELOCITY, ARM_ACCELERATION)
_SCALARS = (
    "position_margin",
    "velocity_scale",
    "acceleration_scale",
    "watchdog_timeout_s",
    "expected_chunk_interval_s",
    "expected_frame_interval_s",
    "max_chunk_age_s",
    "min_lead_s",
    "gripper_deadband_m",
    "tracking_tolerance",
    "joint_state_tolerance",
    "joint_state_jump_tolerance",
    "joint_state_publisher_timeout_s",
)


@dataclass(frozen=True)
class SafetyConfig:
    """Limits of the safety filter. Raises ValueError when inconsistent."""

    position_margin: float = 0.0  # [rad] kept clear of each joint limit
    velocity_scale: float = 1.0  # fraction of Franka's joint velocity limits
    acceleration_scale: float = 1.0  # fraction of Franka's joint acceleration limits
    workspace_min: tuple[float, float, float] = (-0.6, -0.5, 0.005)  # TCP box, table frame [m]
    workspace_max: tuple[float, float, float] = (0.6, 0.5, 0.8)
    # hold when an input is this late: a chunk past the expected chunk interval,
    # a watched camera frame past the expected frame interval (both measured
    # from arrivals; the expected_* values are the first guesses)
    watchdog_timeout_s: float = 0.2
    expected_chunk_interval_s: float = 0.7  # the policy's (n_action_steps - 1) * dt
    expected_frame_interval_s: float = 0.1  # cameras at 10 Hz
    max_chunk_age_s: float = 1.0  # reject chunks whose observation is older (or newer)
    min_lead_s: float = 0.05  # the first point sent is at least this far ahead
    tracking_tolerance: float = 0.15  # [rad] measured vs commanded before the command is trusted
    gripper_deadband_m: float = 0.005  # resend the gripper width only when it moves more
    joint_state_tolerance: float = 0.02  # [rad] a measurement past a limit still believed
    joint_state_jump_tolerance: float = 0.05  # [rad] beyond what the velocity limit allows
    joint_state_publisher_timeout_s: float = 0.5  # silence before another publisher is trusted

    def __post_init__(self) -> None:
        for name in ("workspace_min", "workspace_max"):
            value = tuple(float(v) for v in getattr(self, name))
            if len(value) != 3 or not all(math.isfinite(v) for v in value):
                raise ValueError(f"{name} must be 3 finite numbers, got {value}")
            object.__setattr__(self, name, value)
        for name in _SCALARS:
            value = float(getattr(self, name))
            if not math.isfinite(value):
                raise ValueError(f"{name} must be finite")
            object.__setattr__(self, name, value)
        if any(lo >= hi for lo, hi in zip(self.workspace_min, self.workspace_max, strict=True)):
            raise ValueError(f"empty workspace {self.workspace_min} .. {self.workspace_max}")
        half_range = float(np.min(ARM_UPPER - ARM_LOWER)) / 2
        if not 0.0 <= self.position_margin < half_range:
            raise ValueError(f"position_margin must be in [0, {half_range:.3f}) rad")
        for name in ("velocity_scale", "acceleration_scale"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in (0, 1]")
        for name in (
            "watchdog_timeout_s",
            "expected_chunk_interval_s",
            "expected_frame_interval_s",
            "max_chunk_age_s",
            "min_lead_s",
        ):
            if not getattr(self, name) > 0.0:
                raise ValueError(f"{name} must be > 0")
        for name in (
            "gripper_deadband_m",
            "joint_state_tolerance",
            "joint_state_jump_tolerance",
            "joint_state_publisher_timeout_s",
        ):
            if not getattr(self, name) >= 0.0:
                raise ValueError(f"{name} must be >= 0")


class ChunkRejected(ValueError):  # noqa: N818 (the name others code against)
    """A chunk that must not reach the controller. ``kind`` is short and stable
    (diagnostics count by it); ``reason`` says what exactly was wrong."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True)
class SafeChunk:
    """A trajectory for the controller, to start now.

    ``times`` are seconds from now, strictly increasing, the first at least
    ``min_lead_s``; ``positions`` (n, 7) are in :data:`ARM_JOINTS` order and
    exactly the chunk's values. ``gripper`` holds the widths of the same points
    when the chunk carried them; ``absolute_times`` are when the points are
    reached (now + ``times``, on the clock the filter was given).
    ``stretch`` is how much longer than asked the retimed chunk takes (1: as asked).
    """

    times: np.ndarray
    positions: np.ndarray
    absolute_times: np.ndarray
    gripper: np.ndarray | None = None
    dropped: int = 0
    stretch: float = 1.0
    joint_names: tuple[str, ...] = ARM_JOINTS


@dataclass
class SafetyCounters:
    accepted: int = 0
    retimed: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    rejected_joint_states: Counter[str] = field(default_factory=Counter)
    stale_points_dropped: int = 0
    holds: int = 0
    last_reject: str = ""
