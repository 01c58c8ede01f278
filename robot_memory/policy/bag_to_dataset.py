"""Turn recorded rosbags (teleoperation on hardware, sim + scripted expert) into
the episode dataset of :mod:`robot_memory.policy.dataset`, ROS-free.

    robot-memory bag-to-dataset BAG [BAG...] --out DATASET \\
        (--skill pick|place --target X Y Z [--goal-yaw RAD] [--object-id ID]
         | --goals-from-topic /policy/goal) [--fps 10] [--action-source auto]

Every ``1/fps`` seconds of the bag's time axis (log time, or header stamps with
``--use-header-stamps``) one step is made: the observation is ``/joint_states``
interpolated linearly at the tick (gripper width = sum of the finger joints).
The action is, with ``--action-source``:

* ``commands``: the setpoint the controllers follow at the tick: the last
  ``/arm_controller/joint_trajectory`` sampled as JTC does (header stamp 0 =
  start on receipt, linear from the state at receipt, cubic where points carry
  velocities) and the last ``/gripper_controller/commands`` width;
* ``next_state``: the measured joints and width one tick later, for teleop bags
  with no command topics (the follower's lag makes these trail the operator);
* ``auto`` (default): ``commands`` when the bag has trajectory messages.

Leading and trailing idle ticks (no motion, no command change) are trimmed,
keeping ``--idle-margin`` of them, unless ``--keep-idle``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rosbags.highlevel import AnyReader, AnyReaderError
from tqdm import tqdm

from robot_memory.control.joint_trajectory import (
    ActiveTrajectory,
    TrajectoryError,
    validate_gripper_command,
    validate_trajectory,
)
from robot_memory.policy.dataset import SKILLS, DatasetError, EpisodeInfo, EpisodeWriter
from robot_memory.robot.panda import ARM_JOINTS, FINGER_JOINTS, PANDA_ARM_LIMITS

#: Smallest finger-opening change that counts as motion [m].
GRIPPER_TOLERANCE = 2e-4


class ConversionError(RuntimeError):
    """A bag that cannot become episodes; the message says why."""


@dataclass
class Goal:
    skill: str
    target_position: list[float]
    goal_yaw: float = 0.0
    object_id: str = ""
    target_id: str = ""


@dataclass
class Options:
    fps: float = 10.0
    goal: Goal | None = None
    goals_from_topic: str | None = None
    joint_states_topic: str = "/joint_states"
    trajectory_topic: str = "/arm_controller/joint_trajectory"
    gripper_topic: str = "/gripper_controller/commands"
    action_source: str = "auto"  # auto | commands | next_state
    anchor: str = "measured"  # trajectories start from: measured | setpoint
    use_header_stamps: bool = False
    start: float | None = None  # window [s] from the bag's first message
    end: float | None = None
    keep_idle: bool = False
    idle_margin: int = 1
    idle_tolerance: float = 1e-3  # [rad] per tick
    failed: bool = False  # mark the episodes unsuccessful
    progress: bool = True


@dataclass
class BagResult:
    name: str
    episodes: int = 0
    steps: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def parse_goal(text: str, defaults: Goal | None = None) -> Goal:
    """A ``/policy/goal`` JSON payload; tolerant of ``kind`` for ``skill``.
    Yaw and ids it lacks come from ``defaults`` (the command line)."""
    dflt = defaults or Goal("pick", [0.0, 0.0, 0.0])
    try:
        d = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConversionError(f"goal is not JSON: {err}") from err
    if not isinstance(d, dict):
        raise ConversionError(f"goal is not a JSON object: {text[:80]!r}")
    skill = str(d.get("skill") or d.get("kind") or "").lower()
    if skill not in SKILLS:
        raise ConversionError(f"goal skill {skill!r} is not one of {SKILLS}")
    target = d.get("target_position", d.get("target", d.get("position")))
    try:
        pos = [float(v) for v in target]
        yaw = d.get("goal_yaw", d.get("yaw"))
        yaw = dflt.goal_yaw if yaw is None else float(yaw)
    except (TypeError, ValueError) as err:
        raise ConversionError(f"goal target/yaw unreadable: {err}") from err
    if len(pos) != 3 or not np.all(np.isfinite([*pos, yaw])):
        raise ConversionError(f"goal target_position must be 3 finite numbers: {target}")
    object_id = d.get("object_id") or dflt.object_id
    target_id = d.get("target_id") or d.get("place_id") or dflt.target_id
    return Goal(skill, pos, yaw, str(object_id), str(target_id))


@dataclass
class _Recording:
    """What one pass over the bag collected; times are log seconds from its start."""

    arm: list = field(default_factory=list)  # (log, stamp, q)
    fingers: list = field(default_factory=list)  # (log, stamp, width)
    trajectories: list = field(default_factory=list)  # (log, stamp, names, times, pos, vel)
    gripper: list = field(default_factory=list)  # (log, width)
    goals: list = field(default_factory=list)  # (log, text)
    names: set = field(default_factory=set)
    skipped: Counter = field(default_factory=Counter)


def _stamp(msg) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def _on_joint_state(rec: _Recording, t: float, msg) -> None:
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


def _read(path: Path, opts: Options) -> _Recording:
    if not path.exists():
        raise ConversionError(f"bag missing: no bag at {path}")
    rec = _Recording()
    try:
        with AnyReader([path]) as reader:
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
                opts.goals_from_topic: "std_msgs/msg/String",
            }
            conns = [c for c in reader.connections if c.topic in types]
            for c in conns:
                if c.msgtype != types[c.topic]:
                    raise ConversionError(f"{c.topic} is {c.msgtype}, not {types[c.topic]}")
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
                else:
                    rec.goals.append((t, msg.data))
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


class _Timeline:
    """A bag on one time axis: state series and command setpoints."""

    def __init__(self, rec: _Recording, opts: Options) -> None:
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


def _active_span(q, w, aq, aw, tol: float) -> tuple[int, int] | None:
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


def _segments(tl: _Timeline, opts: Options, res: BagResult) -> list[tuple[float, float, Goal]]:
    if not opts.goals_from_topic:
        assert opts.goal is not None
        return [(-np.inf, np.inf, opts.goal)]
    out: list[tuple[float, float, Goal]] = []
    ends = [t for t, _ in tl.goals[1:]] + [np.inf]
    for (t, text), end in zip(tl.goals, ends, strict=True):
        try:
            out.append((t, end - 1e-6, parse_goal(text, opts.goal)))
        except ConversionError as err:
            res.notes.append(f"goal at {t - tl.origin:.2f} s skipped: {err}")
    if not out:
        raise ConversionError(f"no usable goal messages on {opts.goals_from_topic}")
    return out


def bag_episodes(bag: str | Path, opts: Options, kin=None) -> tuple[list, BagResult]:
    """The episodes of one bag as ``[(EpisodeInfo, steps)]``, not yet written."""
    path = Path(bag)
    res = BagResult(path.name)
    rec = _read(path, opts)
    source = opts.action_source
    if source == "auto":
        source = "commands" if rec.trajectories else "next_state"
    if source == "commands" and not rec.trajectories:
        raise ConversionError(f"--action-source commands but no {opts.trajectory_topic} messages")
    if source == "commands" and not rec.gripper:
        res.notes.append(f"no {opts.gripper_topic} messages: gripper action = next width")
    tl = _Timeline(rec, opts)
    if kin is None:
        from robot_memory.policy.kinematics import ArmKinematics

        kin = ArmKinematics()
    dt = 1.0 / opts.fps
    lo = max(tl.arm_t[0], tl.grip_t[0])
    hi = min(tl.arm_t[-1], tl.grip_t[-1]) - (dt if source == "next_state" else 0.0)
    w0 = tl.origin + opts.start if opts.start is not None else -np.inf
    w1 = tl.origin + opts.end if opts.end is not None else np.inf
    episodes = []
    for s0, s1, goal in _segments(tl, opts, res):
        t0, t1 = max(s0, w0, lo), min(s1, w1, hi)
        n = int(np.floor((t1 - t0) * opts.fps + 1e-9)) + 1 if t1 >= t0 else 0
        where = f"{t0 - tl.origin:.2f} s"
        if n < 2:
            res.notes.append(f"episode at {where}: too few samples ({max(n, 0)} ticks), skipped")
            continue
        ticks = t0 + np.arange(n) * dt
        q, w = tl.observe(ticks)
        aq, aw = tl.commands(ticks, opts.fps) if source == "commands" else tl.observe(ticks + dt)
        first, last = 0, n - 1
        if not opts.keep_idle:
            span = _active_span(q, w, aq, aw, opts.idle_tolerance)
            if span is None:
                res.notes.append(f"episode at {where}: no motion (--keep-idle keeps it), skipped")
                continue
            first, last = max(0, span[0] - opts.idle_margin), min(n - 1, span[1] + opts.idle_margin)
        if last - first + 1 < 2:
            res.notes.append(f"episode at {where}: too few samples after trimming, skipped")
            continue
        sel = slice(first, last + 1)
        q, w, aq, aw = q[sel], w[sel], aq[sel], aw[sel]
        tcp, yaw = kin.tcp_poses(q)
        a_tcp, a_yaw = kin.tcp_poses(aq)
        steps = dict(time=np.arange(len(q)) * dt, joint_positions=q, gripper_width=w,
                     tcp_position=tcp, tcp_yaw=yaw, action_joint_positions=aq,
                     action_tcp_position=a_tcp, action_tcp_yaw=a_yaw,
                     action_gripper_width=aw)  # fmt: skip
        span_s = f"{ticks[first] - tl.origin:.2f}-{ticks[last] - tl.origin:.2f}s"
        g = goal
        info = EpisodeInfo(0, g.skill, [*map(float, g.target_position)], float(g.goal_yaw), len(q),
                           g.object_id, g.target_id, -1, not opts.failed,
                           f"bag:{path.name}@{span_s}:{source}")  # fmt: skip
        episodes.append((info, steps))
    res.notes.extend(f"{count} {what}" for what, count in sorted(rec.skipped.items()))
    if not episodes:
        raise ConversionError("no episodes: " + "; ".join(res.notes or ["nothing to convert"]))
    return episodes, res


def convert_bag(bag: str | Path, out: str | Path, opts: Options, kin=None) -> BagResult:
    """Convert one bag and append its episodes to the dataset at ``out``."""
    episodes, res = bag_episodes(bag, opts, kin)
    writer = EpisodeWriter(out, opts.fps, source=f"bag:{res.name}")
    for info, steps in episodes:
        writer.append(info, steps)
        res.episodes += 1
        res.steps += info.length
        res.seconds += info.length / opts.fps
    return res


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="robot-memory bag-to-dataset",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("bags", nargs="+", metavar="BAG", help="rosbag2 folders (MCAP or sqlite3)")
    p.add_argument("--out", required=True, help="dataset folder (episodes are appended)")
    p.add_argument("--fps", type=float, default=10.0, help="steps per second (default 10)")
    g = p.add_argument_group("goal (one episode per bag, or one per goal message)")
    g.add_argument("--skill", choices=SKILLS)
    g.add_argument("--target", nargs=3, type=float, metavar=("X", "Y", "Z"))
    g.add_argument("--goal-yaw", type=float, default=0.0, metavar="RAD")
    g.add_argument("--object-id", default="")
    g.add_argument("--target-id", default="", help="the place, for place episodes")
    g.add_argument("--goals-from-topic", metavar="TOPIC", help="e.g. /policy/goal (JSON); "
                   "--goal-yaw/--object-id/--target-id fill what a goal lacks")  # fmt: skip
    g.add_argument("--failed", action="store_true", help="mark the episodes unsuccessful")
    p.add_argument("--action-source", choices=["auto", "commands", "next_state"], default="auto")
    p.add_argument("--anchor", choices=["measured", "setpoint"], default="measured",
                   help="a trajectory starts from the measured state at receipt (JTC) or "
                   "from the previous setpoint (this project's sim)")  # fmt: skip
    p.add_argument("--use-header-stamps", action="store_true", help="time axis: header stamps")
    p.add_argument("--start", type=float, help="window start [s from the bag's start]")
    p.add_argument("--end", type=float, help="window end [s from the bag's start]")
    p.add_argument("--keep-idle", action="store_true", help="keep leading/trailing idle ticks")
    p.add_argument("--idle-margin", type=int, default=1, help="idle ticks kept at each end")
    p.add_argument("--idle-tolerance", type=float, default=1e-3, help="[rad] per tick")
    p.add_argument("--joint-states-topic", default="/joint_states")
    p.add_argument("--trajectory-topic", default="/arm_controller/joint_trajectory")
    p.add_argument("--gripper-topic", default="/gripper_controller/commands")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.goals_from_topic and (args.skill or args.target):
        parser.error("give either --skill/--target or --goals-from-topic, not both")
    if not args.goals_from_topic and (args.skill is None or args.target is None):
        parser.error("give --skill and --target X Y Z, or --goals-from-topic TOPIC")
    if args.fps <= 0 or args.idle_margin < 0:
        parser.error("--fps must be > 0 and --idle-margin >= 0")
    target = list(args.target or (0.0, 0.0, 0.0))
    goal = Goal(args.skill or "pick", target, args.goal_yaw, args.object_id, args.target_id)
    same = {k: v for k, v in vars(args).items() if k in Options.__dataclass_fields__}
    opts = Options(**same, goal=goal, progress=not args.no_progress)
    from robot_memory.policy.kinematics import ArmKinematics

    kin, total, failed = ArmKinematics(), BagResult("all"), 0
    for bag in args.bags:
        try:
            res = convert_bag(bag, args.out, opts, kin)
        except (ConversionError, DatasetError) as err:
            print(f"bag-to-dataset: {bag}: {err}", file=sys.stderr)
            failed += 1
            continue
        for note in res.notes:
            print(f"  {res.name}: {note}")
        print(f"{res.name}: {res.episodes} episode(s), {res.steps} steps, {res.seconds:.1f} s")
        total.episodes, total.steps = total.episodes + res.episodes, total.steps + res.steps
        total.seconds += res.seconds
    print(
        f"bag-to-dataset: wrote {total.episodes} episode(s), {total.steps} steps, "
        f"{total.seconds:.1f} s of data at {args.fps:g} fps to {args.out}"
        + (f"; {failed} of {len(args.bags)} bag(s) failed" if failed else "")
    )
    return 2 if failed else 0


__all__ = ["BagResult", "ConversionError", "Goal", "Options", "bag_episodes", "convert_bag", "main"]
