"""Turn recorded rosbags (teleoperation on hardware, sim + scripted expert) into
the episode dataset of :mod:`robot_memory.learning.dataset`, ROS-free.

    robot-memory bag-to-dataset BAG [BAG...] --out DATASET \\
        (--skill pick|place --target X Y Z [--goal-yaw RAD] [--object-id ID]
         | --goals-from-topic TOPIC) [--fps 10] [--action-source auto]

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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from robot_memory.learning.bag_timeline import GRIPPER_TOLERANCE as GRIPPER_TOLERANCE
from robot_memory.learning.bag_timeline import (
    ConversionError,
    Timeline,
    active_span,
    read_bag,
)
from robot_memory.learning.dataset import SKILLS, DatasetError, EpisodeInfo, EpisodeWriter


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


def parse_goal(text: str | dict, defaults: Goal | None = None) -> Goal:
    """A goal: a JSON payload (older bags' ``/policy/goal``; tolerant of ``kind``
    for ``skill``) or the fields of a typed RunSkill goal
    (:func:`~robot_memory.learning.bag_timeline.goal_fields`). Yaw and ids it
    lacks come from ``defaults`` (the command line)."""
    dflt = defaults or Goal("pick", [0.0, 0.0, 0.0])
    try:
        d = json.loads(text) if isinstance(text, str) else text
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


def _segments(tl: Timeline, opts: Options, res: BagResult) -> list[tuple[float, float, Goal]]:
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
    rec = read_bag(path, opts)
    source = opts.action_source
    if source == "auto":
        source = "commands" if rec.trajectories else "next_state"
    if source == "commands" and not rec.trajectories:
        raise ConversionError(f"--action-source commands but no {opts.trajectory_topic} messages")
    if source == "commands" and not rec.gripper:
        res.notes.append(f"no {opts.gripper_topic} messages: gripper action = next width")
    tl = Timeline(rec, opts)
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
            span = active_span(q, w, aq, aw, opts.idle_tolerance)
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
    g.add_argument("--goals-from-topic", metavar="TOPIC",
                   help="a topic of RunSkill goals (robot_memory_interfaces/action/RunSkill_Goal, "
                   "PlanStep, the action's send_goal events) or JSON in std_msgs/String (older "
                   "bags' /policy/goal); --goal-yaw/--object-id/--target-id fill what a goal "
                   "lacks")  # fmt: skip
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
