"""The time axis of a recorded bag, ROS-free: the reading and resampling half
of :mod:`robot_memory.learning.bag_to_dataset`.

:func:`read_bag` makes one pass over a rosbag2 bag and collects ``/joint_states``
(arm joints, gripper width = sum of the finger joints), arm trajectory commands,
gripper commands and goal messages as a :class:`Recording`. :class:`Timeline`
puts those on one time axis (log time, or the joint states' header stamps) and
samples them at any ticks (the converter uses the ``1/fps`` grid):
:meth:`Timeline.observe` interpolates the measured state linearly, and
:meth:`Timeline.commands` replays the trajectory commands through the project's
controller code (:class:`~robot_memory.control.joint_trajectory.ActiveTrajectory`,
sampled as JTC does) and holds the last gripper command. :func:`active_span` finds
the ticks between the leading and trailing idle ones, for trimming.

Bags that cannot be read or put on a time axis raise :class:`ConversionError`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rosbags.highlevel import AnyReader, AnyReaderError
from tqdm import tqdm

from robot_memory.bag.typedefs import typestore
from robot_memory.control.joint_trajectory import (
    ActiveTrajectory,
    TrajectoryError,
    validate_gripper_command,
    validate_trajectory,
)
from robot_memory.robot.panda import ARM_JOINTS, FINGER_JOINTS, PANDA_ARM_LIMITS

if TYPE_CHECKING:
    from robot_memory.learning.bag_to_dataset import Options

#: Smallest finger-opening change that counts as motion [m].
GRIPPER_TOLERANCE = 2e-4


class ConversionError(RuntimeError):
    """A bag that cannot become episodes; the message says why."""


@dataclass
class Recording:
    """What one pass over the bag collected; times are log seconds from its start."""

    arm: list = field(default_factory=list)  # (log, stamp, q)
    fingers: list = field(default_factory=list)  # (log, stamp, width)
    trajectories: list = field(default_factory=list)  # (log, stamp, names, times, pos, vel)
    gripper: list = field(default_factory=list)  # (log, width)
    goals: list = field(default_factory=list)  # (log, JSON text or dict of goal fields)
    names: set = field(default_factory=set)
    skipped: Counter = field(default_factory=Counter)


def _stamp(msg) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def _on_joint_state(rec: Recording, t: float, msg) -> None:
    names, pos = list(msg.name), np.asarray(msg.position, dtype=float)
    rec.names.update(names)
    if len(pos) != len(names):
        rec.skipped["joint_states with position count != name count"] += 1
        return
    index = {n: i for i, n in enumerate(names)}
    nan = False
    if all(n in index for n in ARM_JOINTS):
        q = pos[[index[n] for n in ARM_JOINTS]]
        if np.all(np.isfinite(q)):
            rec.arm.append((t, _stamp(msg), q))
        nan = not np.all(np.isfinite(q))
    if all(n in index for n in FINGER_JOINTS):
        w = float(sum(pos[index[n]] for n in FINGER_JOINTS))
        if np.isfinite(w):
            rec.fingers.append((t, _stamp(msg), w))
        nan = nan or not np.isfinite(w)
    if nan:
        rec.skipped["NaN joint_states samples"] += 1


#: A goal topic is JSON in a String (older bags, teleop tools) or a typed message
#: that carries a RunSkill goal (see :func:`goal_fields`).
JSON_GOAL_TYPE = "std_msgs/msg/String"


def goal_fields(msg: Any) -> dict | None:
    """The RunSkill goal in a decoded message, as a dict of the JSON goal's keys:
    a ``RunSkill_Goal`` or ``PlanStep`` (fields ``skill``, ``object_id[<=1]``,
    ``target``, ``target_position[<=1]``, ``goal_yaw[<=1]``), one that holds it
    in ``goal`` (``RunSkill_SendGoal_Request``) or in ``request[0].goal`` (the
    action's send_goal service event). None if there is none."""
    for _ in range(3):
        if hasattr(msg, "skill"):
            break
        if hasattr(msg, "goal"):
            msg = msg.goal
        elif len(getattr(msg, "request", ())):
            msg = msg.request[0]
        else:
            return None
    else:
        return None
    out: dict = {"skill": str(msg.skill)}
    if len(getattr(msg, "target_position", ())):
        p = msg.target_position[0]
        out["target_position"] = [float(p.x), float(p.y), float(p.z)]
    if len(getattr(msg, "goal_yaw", ())):
        out["goal_yaw"] = float(msg.goal_yaw[0])
    if len(getattr(msg, "object_id", ())):
        out["object_id"] = str(int(msg.object_id[0]))
    if getattr(msg, "target", ""):
        out["target_id"] = str(msg.target)
    return out


def read_bag(path: Path, opts: Options) -> Recording:
    if not path.exists():
        raise ConversionError(f"bag missing: no bag at {path}")
    rec = Recording()
    try:
        with AnyReader([path], default_typestore=typestore()) as reader:
            have = {c.topic for c in reader.connections}
            if opts.joint_states_topic not in have:
                raise ConversionError(
                    f"no joint states: topic {opts.joint_states_topic} is not in the bag "
                    f"(it has {sorted(have)})"
                )
            if opts.goals_from_topic and opts.goals_from_topic not in have:
                raise ConversionError(f"goal topic {opts.goals_from_topic} is not in the bag")
            types = {
                opts.joint_states_topic: "sensor_msgs/msg/JointState",
                opts.trajectory_topic: "trajectory_msgs/msg/JointTrajectory",
                opts.gripper_topic: "std_msgs/msg/Float64MultiArray",
            }
            conns = [c for c in reader.connections if c.topic in types]
            for c in conns:
                if c.msgtype != types[c.topic]:
                    raise ConversionError(f"{c.topic} is {c.msgtype}, not {types[c.topic]}")
            conns += [c for c in reader.connections if c.topic == opts.goals_from_topic]
            total = sum(c.msgcount for c in conns)
            bar = tqdm(total=total, desc=path.name, unit="msg", disable=not opts.progress)
            for conn, ns, raw in reader.messages(conns):
                bar.update()
                t, msg = (ns - reader.start_time) * 1e-9, reader.deserialize(raw, conn.msgtype)
                if conn.topic == opts.joint_states_topic:
                    _on_joint_state(rec, t, msg)
                elif conn.topic == opts.trajectory_topic:
                    pts, names = list(msg.points), list(msg.joint_names)
                    tfs = [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in pts]
                    pos, vel = [list(p.positions) for p in pts], [list(p.velocities) for p in pts]
                    rec.trajectories.append((t, _stamp(msg), names, tfs, pos, vel))
                elif conn.topic == opts.gripper_topic:
                    try:
                        rec.gripper.append((t, validate_gripper_command(list(msg.data))))
                    except TrajectoryError as err:
                        rec.skipped[f"gripper command rejected ({err.reason})"] += 1
                elif conn.msgtype == JSON_GOAL_TYPE:
                    rec.goals.append((t, msg.data))
                elif (goal := goal_fields(msg)) is not None:
                    rec.goals.append((t, goal))
                else:
                    raise ConversionError(
                        f"{conn.topic} is {conn.msgtype}: neither {JSON_GOAL_TYPE} (JSON) "
                        "nor a message that carries a RunSkill goal"
                    )
            bar.close()
    except AnyReaderError as err:
        raise ConversionError(f"cannot read {path} as a rosbag2 bag: {err}") from err
    if not rec.arm:
        missing = [n for n in ARM_JOINTS if n not in rec.names]
        why = f"joint names missing: {missing}" if missing else "every arm sample was NaN"
        raise ConversionError(f"no joint states with the arm joints ({why}; saw {rec.names})")
    if not rec.fingers:
        raise ConversionError(f"no finger joint samples ({list(FINGER_JOINTS)} missing or NaN)")
    return rec


def _series(t: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted by time, repeated times dropped (np.interp needs increasing x)."""
    order = np.argsort(t, kind="stable")
    t, v = t[order], v[order]
    keep = np.concatenate([[True], np.diff(t) > 0])
    return t[keep], v[keep]


def _interp(ticks: np.ndarray, t: np.ndarray, v: np.ndarray) -> np.ndarray:
    if v.ndim == 1:
        return np.interp(ticks, t, v)
    return np.stack([np.interp(ticks, t, v[:, j]) for j in range(v.shape[1])], axis=1)


class _Clock:
    """Log time <-> header stamps, through the joint states' own (log, stamp)
    pairs (a local offset, so sim time at any real-time factor maps too)."""

    def __init__(self, log: np.ndarray, stamp: np.ndarray) -> None:
        ok = stamp > 0
        self.log, self.offset = _series(log[ok], (log - stamp)[ok])
        self.stamp, self.offset_by_stamp = _series(stamp[ok], (log - stamp)[ok])
        self.valid = len(self.log) >= 2

    def to_stamp(self, log: np.ndarray | float) -> np.ndarray:
        return log - np.interp(log, self.log, self.offset)

    def to_log(self, stamp: np.ndarray | float) -> np.ndarray:
        return stamp + np.interp(stamp, self.stamp, self.offset_by_stamp)


class Timeline:
    """A bag on one time axis: state series and command setpoints."""

    def __init__(self, rec: Recording, opts: Options) -> None:
        arm_log = np.array([a[0] for a in rec.arm])
        clock = _Clock(arm_log, np.array([a[1] for a in rec.arm]))
        header = opts.use_header_stamps
        if header and not clock.valid:
            raise ConversionError("joint_states carry no header stamps; drop --use-header-stamps")
        if clock.valid and clock.log[-1] - clock.log[0] > 1.0:
            rate = (clock.to_stamp(clock.log[-1]) - clock.to_stamp(clock.log[0])) / (
                clock.log[-1] - clock.log[0]
            )
            if abs(rate - 1) > 0.05 and not header:  # log time would give wrong data
                raise ConversionError(
                    f"the robot's clock (header stamps) runs at {rate:.2f}x the bag's log time "
                    "(a sim recorded in wall time?): use --use-header-stamps"
                )
        if header and np.any(np.diff(np.array([a[1] for a in rec.arm])) < -0.5):
            raise ConversionError("joint_states header stamps jump back; drop --use-header-stamps")
        self.axis = clock.to_stamp if header else (lambda log: log)
        self.origin = float(self.axis(0.0))  # the bag's first message
        pick = 1 if header else 0
        arm = [a for a in rec.arm if a[1] > 0] if header else rec.arm
        fingers = [f for f in rec.fingers if f[1] > 0] if header else rec.fingers
        if len(arm) < 2 or len(fingers) < 2:
            raise ConversionError("too few joint_states samples (fewer than 2)")
        self.arm_t, self.arm_q = _series(
            np.array([a[pick] for a in arm]), np.array([a[2] for a in arm])
        )
        self.grip_t, self.grip_w = _series(
            np.array([f[pick] for f in fingers]), np.array([f[2] for f in fingers])
        )
        self.receipts: list[float] = []
        self.active: list[ActiveTrajectory] = []
        for log, stamp, names, times, pos, vel in sorted(rec.trajectories, key=lambda r: r[0]):
            try:
                plan = validate_trajectory(names, times, pos, vel, PANDA_ARM_LIMITS)
            except TrajectoryError as err:
                rec.skipped[f"trajectory rejected ({err.reason})"] += 1
                continue
            receipt = float(self.axis(log))
            if stamp <= 0:
                start = receipt
            elif header or clock.valid:
                start = stamp if header else float(clock.to_log(stamp))
            else:
                start = receipt
                rec.skipped["trajectory stamps unmappable (started on receipt)"] += 1
            anchor = _interp(np.array([receipt]), self.arm_t, self.arm_q)[0]
            if opts.anchor == "setpoint" and self.active:
                anchor = self.active[-1].sample(receipt)[0]
            self.receipts.append(receipt)
            self.active.append(ActiveTrajectory(plan, start, anchor))
        gripper = sorted(rec.gripper)
        self.cmd_t = np.array([float(self.axis(g[0])) for g in gripper])
        self.cmd_w = np.array([g[1] for g in gripper])
        self.goals = [(float(self.axis(g[0])), g[1]) for g in sorted(rec.goals)]

    def observe(self, ticks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _interp(ticks, self.arm_t, self.arm_q), _interp(ticks, self.grip_t, self.grip_w)

    def commands(self, ticks: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray]:
        """Arm setpoint and gripper command at each tick (before the first
        command: hold the first measured state; no gripper commands at all:
        the next measured width)."""
        idx = np.searchsorted(self.receipts, ticks, side="right") - 1
        arm = np.array(
            [
                self.arm_q[0] if i < 0 else self.active[i].sample(t)[0]
                for t, i in zip(ticks, idx, strict=True)
            ]
        )
        if not len(self.cmd_t):
            return arm, _interp(ticks + 1.0 / fps, self.grip_t, self.grip_w)
        gi = np.searchsorted(self.cmd_t, ticks, side="right") - 1
        return arm, np.where(gi < 0, self.grip_w[0], self.cmd_w[np.maximum(gi, 0)])


def active_span(q, w, aq, aw, tol: float) -> tuple[int, int] | None:
    """First and last tick with motion into/out of it or a command change."""
    moving = np.zeros(len(q), dtype=bool)
    moving[:-1] = (np.abs(np.diff(q, axis=0)).max(axis=1) > tol) | (
        np.abs(np.diff(w)) > GRIPPER_TOLERANCE
    )
    changed = np.zeros(len(q), dtype=bool)
    changed[1:] = (np.abs(np.diff(aq, axis=0)).max(axis=1) > tol) | (
        np.abs(np.diff(aw)) > GRIPPER_TOLERANCE
    )
    idx = np.flatnonzero(moving | changed)
    if not len(idx):
        return None
    return int(idx[0]), int(min(len(q) - 1, idx[-1] + 1))


__all__ = [
    "GRIPPER_TOLERANCE",
    "ConversionError",
    "Recording",
    "Timeline",
    "active_span",
    "read_bag",
]
