"""The safety layer between the policy and the arm controller (ROS-free).

:class:`SafetyFilter` checks each action chunk (``/policy/action_chunk``) and
passes it on retimed to start now, or rejects all of it with a reason. It never
moves a point: a chunk that leaves the joint limits or puts the TCP outside the
workspace box is refused whole (no retiming can fix it). A chunk that is only
too fast is *retimed*: its path kept, time stretched until every joint meets
its velocity and acceleration limits (:mod:`robot_memory.control.retiming`),
from the setpoint the controller is at and the velocity it moves with, and it
comes to rest at its last point. Every command it emits, holds included, is
checked once more against the limits before it leaves
(:func:`~robot_memory.control.retiming.command_violations`).

Points whose absolute time (observation stamp + ``time_from_start``) is already
past are dropped (counted, not a rejection, unless every point is past). The
workspace is checked at the points only, not along the joint-space segments
between them; at policy rates (dt <= 0.1 s) these are millimetres apart.

Trusted state: joint states pass a :class:`JointStateGuard` (limits, one
publisher, no teleports); the controller's own setpoint (what this filter last
commanded) is the reference while the arm tracks it.

Watchdog, while the arm executes chunks: a hold when no chunk arrived within
the expected chunk interval (measured from the arrivals) plus
``watchdog_timeout_s``, or a watched camera sent no frame within its expected
interval plus ``watchdog_timeout_s``. Before the first accepted chunk it never
holds, so a stack where something else drives the controller (the scripted
expert) is left alone. A hold is a smooth stop from the current motion at the
acceleration limits. An e-stop holds at once and rejects every chunk until it
is released; after release the arm stays held until a new chunk is accepted.
A stop request (the policy's empty chunk: a skill canceled) holds at once the
same way, without waiting for the watchdog, until the next accepted chunk.
"""

from __future__ import annotations

from collections.abc import Sequence

import mujoco
import numpy as np

from robot_memory.control.joint_state_guard import JointStateGuard, StateGuardConfig, StateRejected
from robot_memory.control.joint_trajectory import LIMIT_TOLERANCE
from robot_memory.control.retiming import (
    RetimeError,
    command_violations,
    plan_velocity,
    retime,
    smooth_stop,
)
from robot_memory.control.safety_config import (
    PANDA_MOTION_LIMITS,
    STATUS_SCHEMA_VERSION,
    ChunkRejected,
    SafeChunk,
    SafetyConfig,
    SafetyCounters,
)
from robot_memory.control.watchdog import Watchdog
from robot_memory.robot.arm_model import TcpKinematics, panda_arm_model
from robot_memory.robot.panda import (
    ARM_JOINTS,
    GRIPPER_MAX_WIDTH,
    GRIPPER_MIN_WIDTH,
    GRIPPER_WIDTH_JOINT,
)

_AXES = "xyz"
#: The hold reason of a stop request.
STOP_REQUESTED = "stop requested"


class SafetyFilter:
    """The chunk checks, the trusted state and the watchdog/e-stop state
    machine. ``model`` is the arm for TCP kinematics (default: the Panda where
    the tabletop cell mounts it, :func:`robot_memory.robot.arm_model.panda_arm_model`;
    world = the table frame). Not thread-safe: call it from
    one thread."""

    def __init__(
        self, config: SafetyConfig | None = None, model: mujoco.MjModel | None = None
    ) -> None:
        self.config = cfg = config or SafetyConfig()
        self.kinematics = TcpKinematics(model or panda_arm_model())
        self.counters = SafetyCounters()
        self.limits = PANDA_MOTION_LIMITS.scaled(
            cfg.velocity_scale, cfg.acceleration_scale, cfg.position_margin
        )
        self.lower, self.upper = self.limits.lower, self.limits.upper
        self.guard = JointStateGuard(
            self.limits,
            StateGuardConfig(
                limit_tolerance=cfg.joint_state_tolerance + cfg.position_margin,
                jump_tolerance=cfg.joint_state_jump_tolerance,
                publisher_timeout_s=cfg.joint_state_publisher_timeout_s,
            ),
        )
        self.watchdog = Watchdog(
            cfg.watchdog_timeout_s, cfg.expected_chunk_interval_s, cfg.expected_frame_interval_s
        )
        self.estop = False
        self.estop_since: float | None = None
        self.hold_reason = ""
        self._held = False  # a hold was sent since the last accepted chunk
        self._gripper_plan: tuple[np.ndarray, np.ndarray] | None = None
        self._gripper_sent: float | None = None
        # what the controller was last told: absolute times and joint rows,
        # starting at the setpoint of the moment it was sent
        self._arm_plan: tuple[np.ndarray, np.ndarray] | None = None

    # -- trusted state ----------------------------------------------------------
    def observe_joints(
        self, q: Sequence[float], now: float, publisher: bytes | None = None
    ) -> None:
        """A measured arm position; raises StateRejected (counted) when untrusted."""
        try:
            self.guard.accept(np.asarray(q, dtype=float), now, publisher)
        except StateRejected as err:
            self.counters.rejected_joint_states[err.kind] += 1
            raise

    def trusted_state(self, now: float) -> np.ndarray | None:
        """The last trusted measurement, if not older than ``max_chunk_age_s``."""
        return self.guard.fresh(now, self.config.max_chunk_age_s)

    def setpoint(self, now: float) -> np.ndarray | None:
        """Where the last command sent puts the arm at ``now`` (None: nothing sent)."""
        if self._arm_plan is None:
            return None
        times, rows = self._arm_plan
        return np.array([np.interp(now, times, rows[:, j]) for j in range(rows.shape[1])])

    def _starts(
        self, now: float, q_measured: np.ndarray | None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Where a new command starts from: the controller's setpoint and its
        velocity (it interpolates from there), and also the measured position at
        rest when the arm does not track the setpoint (or nothing was sent)."""
        setpoint = self.setpoint(now)
        zero = np.zeros(len(ARM_JOINTS))
        if setpoint is None:
            return [] if q_measured is None else [(q_measured, zero)]
        assert self._arm_plan is not None
        starts = [(setpoint, plan_velocity(*self._arm_plan, now))]
        if q_measured is not None and np.max(np.abs(setpoint - q_measured)) > (
            self.config.tracking_tolerance
        ):
            starts.append((q_measured, zero))
        return starts

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
        order (7 arm joints, optionally :data:`GRIPPER_WIDTH_JOINT`);
        ``q_measured`` the trusted measured arm position (None: none fresh)."""
        try:
            chunk = self._check(stamp, joint_names, times, positions, now, q_measured)
        except ChunkRejected as err:
            self.counters.rejected[err.kind] += 1
            self.counters.last_reject = err.reason
            raise
        self.counters.accepted += 1
        self.counters.retimed += chunk.stretch > 1.0 + 1e-9
        self.counters.stale_points_dropped += chunk.dropped
        self._held, self.hold_reason = False, ""
        self.watchdog.chunk_accepted(now, end=now + float(chunk.times[-1]))
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
                raise ChunkRejected("unknown joint", f"unknown joint {name[:64]}")
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
        if not (np.isfinite(stamp) and np.all(np.isfinite(t)) and np.all(np.isfinite(pts))):
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
        self._check_workspace(q)

        # Drop what is past; of the points closer than min_lead_s keep the last.
        lead = stamp + t - now
        keep = lead > cfg.min_lead_s
        soon = np.flatnonzero((lead > 0.0) & ~keep)
        if len(soon):
            keep[soon[-1]] = True
        if not np.any(keep):
            raise ChunkRejected("stale", "stale: every point is in the past")
        q0 = None if q_measured is None else np.asarray(q_measured, dtype=float).reshape(7)
        if q0 is None or not np.all(np.isfinite(q0)):
            raise ChunkRejected("no joint state", "no trusted measured arm position")
        asked = np.maximum(lead[keep], cfg.min_lead_s)
        asked = np.maximum.accumulate(asked + np.arange(len(asked)) * 1e-9)
        out_q = q[keep]
        starts = self._starts(now, q0)
        out_t = self._timed(starts, asked, out_q)
        self._arm_plan = (np.concatenate([[now], now + out_t]), np.vstack([starts[0][0], out_q]))
        return SafeChunk(
            times=out_t,
            positions=out_q,
            absolute_times=now + out_t,
            gripper=None if grip is None else grip[keep],
            dropped=int(len(t) - np.count_nonzero(keep)),
            stretch=float(out_t[-1] / asked[-1]),
        )

    def _timed(
        self, starts: list[tuple[np.ndarray, np.ndarray]], times: np.ndarray, rows: np.ndarray
    ) -> np.ndarray:
        """``times`` stretched to the limits from every start, then checked."""
        try:
            out_t = retime(starts, times, rows, self.limits)
        except RetimeError as err:
            raise ChunkRejected("cannot retime", str(err)) from None
        for q0, v0 in starts:
            problems = command_violations(q0, v0, out_t, rows, self.limits)
            if problems:  # never expected: retime() meets the same limits
                raise ChunkRejected("unsafe after retiming", ", ".join(problems))
        return out_t

    def _check_positions(self, q: np.ndarray) -> None:
        bad = (q < self.lower - LIMIT_TOLERANCE) | (q > self.upper + LIMIT_TOLERANCE)
        if np.any(bad):
            p, j = np.argwhere(bad)[0]
            raise ChunkRejected(
                "position out of limits",
                f"joint {ARM_JOINTS[j]} position {q[p, j]:.4g} outside "
                f"[{self.lower[j]:.4f}, {self.upper[j]:.4f}]",
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
    def on_frame(self, camera: str, now: float) -> None:
        """A watched camera sent a frame (its heartbeat)."""
        self.watchdog.frame(camera, now)

    def tick(self, now: float) -> str | None:
        """The reason to hold now (once per stall), or None; the caller then
        sends :meth:`hold_command`."""
        if self.estop or self._held:
            return None
        reason = self.watchdog.due(now)
        if reason is not None:
            self._hold(reason)
        return reason

    def set_estop(self, active: bool, now: float) -> bool:
        """Latch or release the e-stop; True when the caller must hold now
        (the e-stop was just pressed)."""
        if active and not self.estop:
            self.estop = True
            self.estop_since = now
            self._hold("e-stop")
            return True
        if not active:
            self.estop, self.estop_since = False, None
        return False

    def request_stop(self, reason: str = STOP_REQUESTED) -> bool:
        """ "Stop now" (an empty chunk): True when the caller must send
        :meth:`hold_command` now. Nothing to stop (no command sent yet, already
        held, e-stop) is False."""
        if self.estop or self._held or self._arm_plan is None:
            return False
        self._hold(reason)
        return True

    def _hold(self, reason: str) -> None:
        self._held, self.hold_reason = True, reason
        self.counters.holds += 1
        self.watchdog.stop()
        self._gripper_plan = None  # the gripper keeps its last width

    def hold_command(self, now: float, q_measured: np.ndarray | None) -> SafeChunk | None:
        """A smooth stop from the controller's current motion (at rest: stay at
        the setpoint), retimed so that it is also within the limits from the
        trusted measurement when the arm does not track the setpoint. None when
        neither a setpoint nor a trusted measurement is known."""
        q0 = None if q_measured is None else np.asarray(q_measured, dtype=float).reshape(7)
        starts = self._starts(now, q0)
        if not starts:
            return None
        q_set, v_set = starts[0]
        times, rows = smooth_stop(q_set, v_set, self.limits)
        try:
            out_t = self._timed(starts, times, rows)
        except ChunkRejected:  # a stop from a setpoint past a limit: stay where measured
            if q0 is None:
                return None
            starts = [(q0, np.zeros(7))]
            rows = np.clip(q0, self.lower, self.upper).reshape(1, 7)
            out_t = self._timed(starts, np.array([0.1]), rows)
        self._arm_plan = (np.concatenate([[now], now + out_t]), np.vstack([starts[0][0], rows]))
        return SafeChunk(times=out_t, positions=rows, absolute_times=now + out_t)

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
            "hold_reason": self.hold_reason,
            "accepted": c.accepted,
            "retimed": c.retimed,
            "rejected_total": sum(c.rejected.values()),
            "rejected": dict(sorted(c.rejected.items())),
            "stale_points_dropped": c.stale_points_dropped,
            "holds": c.holds,
            "rejected_joint_states": dict(sorted(c.rejected_joint_states.items())),
            "last_reject": c.last_reject,
        }
