"""The safety layer between the policy and the arm controller (ROS-free).

:class:`SafetyFilter` checks each action chunk (``/policy/action_chunk``) and
either passes it on, retimed to start now, or rejects all of it with a reason.
It never clamps or edits a position: a chunk that leaves the joint limits, moves
a joint faster than ``velocity_scale`` times Franka's limit (between
consecutive points, and from the measured position to the first point sent) or
puts the TCP outside the workspace box is refused whole, so the arm keeps
executing the last good chunk and the watchdog stops it if no good one follows.

Points whose absolute time (observation stamp + ``time_from_start``) is already
past are dropped (counted, not a rejection, unless every point is past). The
workspace is checked at the points only, not along the joint-space segments
between them; at policy rates (dt <= 0.1 s) these are millimetres apart.

The watchdog/e-stop state machine: after a chunk was accepted, a silence of
``watchdog_timeout_s`` asks for one hold at the measured position
(:meth:`SafetyFilter.tick`); before the first accepted chunk it never asks, so
a stack where something else drives the controller (the scripted expert) is
left alone. An e-stop asks for a hold at once and rejects every chunk until it
is released; after release the arm stays held until a new chunk is accepted.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import mujoco
import numpy as np

from robot_memory.control.joint_trajectory import LIMIT_TOLERANCE
from robot_memory.robot.panda import (
    ARM_JOINTS,
    ARM_LOWER,
    ARM_UPPER,
    ARM_VELOCITY,
    GRIPPER_MAX_WIDTH,
    GRIPPER_MIN_WIDTH,
    GRIPPER_WIDTH_JOINT,
)
from robot_memory.sim.scene import build_model

STATUS_SCHEMA_VERSION = 1
_AXES = "xyz"
_SCALARS = (
    "position_margin",
    "velocity_scale",
    "watchdog_timeout_s",
    "max_chunk_age_s",
    "min_lead_s",
    "hold_time_s",
    "gripper_deadband_m",
    "tracking_tolerance",
)


@dataclass(frozen=True)
class SafetyConfig:
    """Limits of the safety filter. Raises ValueError when inconsistent."""

    position_margin: float = 0.0  # [rad] kept clear of each joint limit
    velocity_scale: float = 1.0  # fraction of Franka's joint velocity limits
    workspace_min: tuple[float, float, float] = (-0.6, -0.5, 0.005)  # TCP box, table frame [m]
    workspace_max: tuple[float, float, float] = (0.6, 0.5, 0.8)
    watchdog_timeout_s: float = 1.5  # hold after this long without an accepted chunk
    max_chunk_age_s: float = 1.0  # reject chunks whose observation is older (or newer)
    min_lead_s: float = 0.05  # the first point sent is at least this far ahead
    tracking_tolerance: float = 0.15  # [rad] measured vs commanded before the command is trusted
    hold_time_s: float = 0.1  # time_from_start of the one-point hold trajectory
    gripper_deadband_m: float = 0.005  # resend the gripper width only when it moves more

    def __post_init__(self) -> None:
        for name in ("workspace_min", "workspace_max"):
            value = tuple(float(v) for v in getattr(self, name))
            if len(value) != 3 or not all(math.isfinite(v) for v in value):
                raise ValueError(f"{name} must be 3 finite numbers, got {value}")
            object.__setattr__(self, name, value)
        for name in _SCALARS:
            object.__setattr__(self, name, float(getattr(self, name)))
        if any(lo >= hi for lo, hi in zip(self.workspace_min, self.workspace_max, strict=True)):
            raise ValueError(f"empty workspace {self.workspace_min} .. {self.workspace_max}")
        half_range = float(np.min(ARM_UPPER - ARM_LOWER)) / 2
        if not 0.0 <= self.position_margin < half_range:
            raise ValueError(f"position_margin must be in [0, {half_range:.3f}) rad")
        if not 0.0 < self.velocity_scale <= 1.0:
            raise ValueError("velocity_scale must be in (0, 1]")
        for name in ("watchdog_timeout_s", "max_chunk_age_s", "min_lead_s", "hold_time_s"):
            if not getattr(self, name) > 0.0:
                raise ValueError(f"{name} must be > 0")
        if not self.gripper_deadband_m >= 0.0:
            raise ValueError("gripper_deadband_m must be >= 0")


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
    when the chunk carried them; ``absolute_times`` are the points' own times.
    """

    times: np.ndarray
    positions: np.ndarray
    absolute_times: np.ndarray
    gripper: np.ndarray | None = None
    dropped: int = 0
    joint_names: tuple[str, ...] = ARM_JOINTS


@dataclass
class SafetyCounters:
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    stale_points_dropped: int = 0
    holds: int = 0
    last_reject: str = ""


class TcpKinematics:
    """TCP positions of the scene model for rows of arm joints (MuJoCo FK)."""

    def __init__(self, model: mujoco.MjModel, site: str = "tcp") -> None:
        self.model = model
        self.data = mujoco.MjData(model)
        self._qpos = np.array([model.jnt_qposadr[model.joint(n).id] for n in ARM_JOINTS])
        self._site = model.site(site).id

    def positions(self, q_arm: np.ndarray) -> np.ndarray:
        out = np.empty((len(q_arm), 3))
        for i, q in enumerate(q_arm):
            self.data.qpos[self._qpos] = q
            mujoco.mj_kinematics(self.model, self.data)
            out[i] = self.data.site_xpos[self._site]
        return out


class SafetyFilter:
    """The chunk checks and the watchdog/e-stop state machine. ``model`` is
    the scene for TCP kinematics (default: the tabletop cell, whose world frame
    is the table frame). Not thread-safe: call it from one thread."""

    def __init__(
        self, config: SafetyConfig | None = None, model: mujoco.MjModel | None = None
    ) -> None:
        self.config = config or SafetyConfig()
        self.kinematics = TcpKinematics(model or build_model("tabletop", "primitive"))
        self.counters = SafetyCounters()
        self.lower = ARM_LOWER + self.config.position_margin
        self.upper = ARM_UPPER - self.config.position_margin
        self.velocity_limit = ARM_VELOCITY * self.config.velocity_scale
        self.estop = False
        self.estop_since: float | None = None
        self._last_accept: float | None = None
        self._held = False  # a hold was sent since the last accepted chunk
        self._gripper_plan: tuple[np.ndarray, np.ndarray] | None = None
        self._gripper_sent: float | None = None
        # what the controller was last told: absolute times and joint rows,
        # starting at the setpoint of the moment it was sent
        self._arm_plan: tuple[np.ndarray, np.ndarray] | None = None

    def setpoint(self, now: float) -> np.ndarray | None:
        """Where the last command sent puts the arm at ``now`` (None: nothing sent)."""
        if self._arm_plan is None:
            return None
        times, rows = self._arm_plan
        return np.array([np.interp(now, times, rows[:, j]) for j in range(rows.shape[1])])

    def _reference(self, now: float, q_measured: np.ndarray) -> np.ndarray:
        """Where the next chunk starts from: the controller interpolates from its
        current setpoint, so velocities are checked from there, as long as the
        arm tracks it (within ``tracking_tolerance``); else from the measurement."""
        setpoint = self.setpoint(now)
        if setpoint is None:
            return q_measured
        if np.max(np.abs(setpoint - q_measured)) > self.config.tracking_tolerance:
            return q_measured
        return setpoint

    # -- chunks ---------------------------------------------------------------
    def check_chunk(
        self,
        stamp: float,
        joint_names: Sequence[str],
        times: Sequence[float],
        positions: Sequence[Sequence[float]],
        now: float,
        q_measured: np.ndarray | Sequence[float] | None,
    ) -> SafeChunk:
        """The chunk retimed to start at ``now``; raises :class:`ChunkRejected`.

        ``stamp`` is the observation time, ``times`` each point's
        ``time_from_start``, ``positions`` one row per point in ``joint_names``
        order (7 arm joints, optionally :data:`GRIPPER_WIDTH_JOINT`)."""
        try:
            chunk = self._check(stamp, joint_names, times, positions, now, q_measured)
        except ChunkRejected as err:
            self.counters.rejected[err.kind] += 1
            self.counters.last_reject = err.reason
            raise
        self.counters.accepted += 1
        self.counters.stale_points_dropped += chunk.dropped
        self.on_chunk_accepted(now)
        if chunk.gripper is not None:
            self._gripper_plan = (chunk.absolute_times, chunk.gripper)
        return chunk

    def _check(
        self,
        stamp: float,
        joint_names: Sequence[str],
        times: Sequence[float],
        positions: Sequence[Sequence[float]],
        now: float,
        q_measured: np.ndarray | Sequence[float] | None,
    ) -> SafeChunk:
        cfg = self.config
        if self.estop:
            raise ChunkRejected("estop active", "estop active")
        names = list(joint_names)
        known = (*ARM_JOINTS, GRIPPER_WIDTH_JOINT)
        for name in names:
            if name not in known:
                raise ChunkRejected("unknown joint", f"unknown joint {name}")
        if len(set(names)) != len(names):
            raise ChunkRejected("duplicate joint", f"duplicate joint in {names}")
        missing = [n for n in ARM_JOINTS if n not in names]
        if missing:
            raise ChunkRejected("missing arm joints", f"missing arm joints {missing}")
        if len(positions) == 0:
            raise ChunkRejected("empty chunk", "empty chunk")
        if len(times) != len(positions) or any(len(row) != len(names) for row in positions):
            raise ChunkRejected("malformed chunk", "points and joint names differ in size")
        t = np.asarray(times, dtype=float)
        pts = np.asarray(positions, dtype=float).reshape(len(positions), len(names))
        if not (math.isfinite(stamp) and np.all(np.isfinite(t)) and np.all(np.isfinite(pts))):
            raise ChunkRejected("non-finite value", "non-finite value")
        if t[0] < 0.0 or np.any(np.diff(t) <= 0.0):
            raise ChunkRejected("times not increasing", "times not increasing")
        age = now - stamp
        if age > cfg.max_chunk_age_s:
            raise ChunkRejected("stale", f"stale: observation {age:.2f} s old")
        if -age > cfg.max_chunk_age_s:
            raise ChunkRejected("stamp in the future", f"stamp {-age:.2f} s in the future")

        q = pts[:, [names.index(n) for n in ARM_JOINTS]]
        self._check_positions(q)
        grip = pts[:, names.index(GRIPPER_WIDTH_JOINT)] if GRIPPER_WIDTH_JOINT in names else None
        if grip is not None:
            bad = (grip < GRIPPER_MIN_WIDTH - LIMIT_TOLERANCE) | (
                grip > GRIPPER_MAX_WIDTH + LIMIT_TOLERANCE
            )
            if np.any(bad):
                w = grip[np.argmax(bad)]
                raise ChunkRejected(
                    "gripper out of limits",
                    f"gripper width {w:.4g} outside [{GRIPPER_MIN_WIDTH:g}, {GRIPPER_MAX_WIDTH:g}]",
                )
        self._check_velocities(t, q)
        self._check_workspace(q)

        # Drop what is past; of the points closer than min_lead_s keep the last.
        lead = stamp + t - now
        keep = lead > cfg.min_lead_s
        soon = np.flatnonzero((lead > 0.0) & ~keep)
        if len(soon):
            keep[soon[-1]] = True
        if not np.any(keep):
            raise ChunkRejected("stale", "stale: every point is in the past")
        if q_measured is None:
            raise ChunkRejected("no joint state", "no measured arm position")
        q0 = np.asarray(q_measured, dtype=float).reshape(len(ARM_JOINTS))
        if not np.all(np.isfinite(q0)):
            raise ChunkRejected("no joint state", "measured arm position is not finite")
        out_t = np.maximum(lead[keep], cfg.min_lead_s)
        out_q = q[keep]
        q_ref = self._reference(now, q0)
        self._check_velocities(np.concatenate([[0.0], out_t]), np.vstack([q_ref, out_q]))
        self._arm_plan = (np.concatenate([[now], now + out_t]), np.vstack([q_ref, out_q]))
        return SafeChunk(
            times=out_t,
            positions=out_q,
            absolute_times=stamp + t[keep],
            gripper=None if grip is None else grip[keep],
            dropped=int(len(t) - np.count_nonzero(keep)),
        )

    def _check_positions(self, q: np.ndarray) -> None:
        bad = (q < self.lower - LIMIT_TOLERANCE) | (q > self.upper + LIMIT_TOLERANCE)
        if np.any(bad):
            p, j = np.argwhere(bad)[0]
            raise ChunkRejected(
                "position out of limits",
                f"joint {ARM_JOINTS[j]} position {q[p, j]:.4g} outside "
                f"[{self.lower[j]:.4f}, {self.upper[j]:.4f}]",
            )

    def _check_velocities(self, t: np.ndarray, q: np.ndarray) -> None:
        if len(t) < 2:
            return
        vel = np.abs(np.diff(q, axis=0)) / np.diff(t)[:, None]
        over = vel > self.velocity_limit + LIMIT_TOLERANCE
        if np.any(over):
            p, j = np.argwhere(over)[0]
            raise ChunkRejected(
                "velocity over limit",
                f"velocity of {ARM_JOINTS[j]} {vel[p, j]:.3g} rad/s over limit "
                f"{self.velocity_limit[j]:.4g}",
            )

    def _check_workspace(self, q: np.ndarray) -> None:
        tcp = self.kinematics.positions(q)
        lo, hi = np.asarray(self.config.workspace_min), np.asarray(self.config.workspace_max)
        bad = (tcp < lo) | (tcp > hi)
        if np.any(bad):
            p, a = np.argwhere(bad)[0]
            side = "below" if tcp[p, a] < lo[a] else "above"
            raise ChunkRejected(
                "outside workspace", f"tcp {_AXES[a]} {tcp[p, a]:.3f} {side} workspace"
            )

    # -- watchdog and e-stop ---------------------------------------------------
    def on_chunk_accepted(self, now: float) -> None:
        self._last_accept = now
        self._held = False

    def tick(self, now: float) -> bool:
        """True once per silence of ``watchdog_timeout_s`` after an accepted
        chunk: the caller sends :meth:`hold_command`."""
        if self.estop or self._held or self._last_accept is None:
            return False
        if now - self._last_accept <= self.config.watchdog_timeout_s:
            return False
        self._hold()
        return True

    def set_estop(self, active: bool, now: float) -> bool:
        """Latch or release the e-stop; True when the caller must hold now
        (the e-stop was just pressed)."""
        if active and not self.estop:
            self.estop = True
            self.estop_since = now
            self._hold()
            return True
        if not active:
            self.estop, self.estop_since = False, None
        return False

    def _hold(self) -> None:
        self._held = True
        self.counters.holds += 1
        self._gripper_plan = None  # the gripper keeps its last width

    def hold_command(self, q_measured: np.ndarray | Sequence[float]) -> SafeChunk:
        """One point at the measured position (inside the limits: a hold is
        never refused by the controller for a measurement a hair past one)."""
        q = np.clip(np.asarray(q_measured, dtype=float), ARM_LOWER, ARM_UPPER)
        self._arm_plan = (np.array([-np.inf]), q.reshape(1, len(ARM_JOINTS)))
        return SafeChunk(
            times=np.array([self.config.hold_time_s]),
            positions=q.reshape(1, len(ARM_JOINTS)),
            absolute_times=np.array([np.nan]),
        )

    # -- gripper ----------------------------------------------------------------
    def gripper_due(self, now: float) -> float | None:
        """The width to send now, or None: the width of the last accepted
        chunk's latest point at or before ``now`` (its first point before
        that), when it differs from the last width sent by more than the
        deadband."""
        if self._gripper_plan is None:
            return None
        abs_times, widths = self._gripper_plan
        k = max(int(np.searchsorted(abs_times, now, side="right")) - 1, 0)
        width = float(widths[k])
        last = self._gripper_sent
        if last is not None and abs(width - last) <= self.config.gripper_deadband_m:
            return None
        self._gripper_sent = width
        return width

    # -- status ----------------------------------------------------------------
    @property
    def state(self) -> str:
        if self.estop:
            return "estop"
        return "holding" if self._held else "ok"

    def status(self) -> dict[str, object]:
        """The ``/safety/status`` payload."""
        c = self.counters
        return {
            "schema_version": STATUS_SCHEMA_VERSION,
            "state": self.state,
            "accepted": c.accepted,
            "rejected_total": sum(c.rejected.values()),
            "rejected": dict(sorted(c.rejected.items())),
            "stale_points_dropped": c.stale_points_dropped,
            "holds": c.holds,
            "last_reject": c.last_reject,
        }
