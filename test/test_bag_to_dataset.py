"""bag-to-dataset: real bags (written with the project's BagWriter) of a
synthetic Panda motion become episodes with the right observations and actions."""

from __future__ import annotations

import json

import numpy as np
import pytest

from robot_memory.bag.typedefs import typestore
from robot_memory.bag.writer import BagWriter
from robot_memory.cli import main as cli_main
from robot_memory.learning.bag_to_dataset import ConversionError, Goal, Options, convert_bag
from robot_memory.learning.dataset import load_episodes, read_meta
from robot_memory.policy.kinematics import ArmKinematics
from robot_memory.robot.panda import ALL_JOINTS, ARM_JOINTS, FINGER_JOINTS, HOME_ARM

TS = typestore()  # standard types and robot_memory_interfaces (RunSkill goals)
RUN_SKILL_GOAL = "robot_memory_interfaces/action/RunSkill_Goal"
M = TS.types
BASE_NS = 1_700_000_000 * 10**9  # log time of the bag's first message
RATE, DURATION, LAG = 100.0, 3.0, 0.05
#: The commanded move: received at 0.5 s, via MID at +0.8 s to GOAL at +1.6 s.
RECEIPT, KNOTS = 0.5, (0.8, 1.6)
MID = HOME_ARM + np.array([0.1, 0.05, -0.1, 0.1, 0.0, -0.05, 0.2])
GOAL = HOME_ARM + np.array([0.2, 0.1, -0.2, 0.2, 0.1, -0.1, 0.3])
GRIP_AT, GRIP_WIDTH = 2.2, 0.02  # close the gripper after the move
PICK = Goal("pick", [0.5, 0.0, 0.05], 0.3, "red_cube")
EMPTY = np.array([], dtype=np.float64)


def setpoint(t: np.ndarray) -> np.ndarray:
    """The JTC setpoint of the commanded move (linear from HOME at receipt)."""
    knots = [RECEIPT, RECEIPT + KNOTS[0], RECEIPT + KNOTS[1]]
    cols = [np.interp(t, knots, [HOME_ARM[j], MID[j], GOAL[j]]) for j in range(7)]
    return np.stack(cols, axis=-1)


def commanded_width(t: np.ndarray) -> np.ndarray:
    return np.where(t < GRIP_AT, 0.08, GRIP_WIDTH)


def measured(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A follower that tracks the setpoint LAG seconds late; the fingers close
    over 0.2 s after the gripper command."""
    width = np.interp(t, [GRIP_AT + LAG, GRIP_AT + LAG + 0.2], [0.08, GRIP_WIDTH])
    return setpoint(t - LAG), width


def _time(t: float, kind: str = "builtin_interfaces/msg/Time"):
    sec, nanosec = divmod(round(t * 1e9), 10**9)
    return M[kind](sec=sec, nanosec=nanosec)


def _header(stamp: float):
    return M["std_msgs/msg/Header"](stamp=_time(stamp), frame_id="")


def _point(t: float, q: np.ndarray):
    return M["trajectory_msgs/msg/JointTrajectoryPoint"](
        positions=np.asarray(q, float), velocities=EMPTY, accelerations=EMPTY, effort=EMPTY,
        time_from_start=_time(t, "builtin_interfaces/msg/Duration"),
    )  # fmt: skip


def run_skill_goal(skill, target_position=None, goal_yaw=None, object_id=None, target=""):
    point = M["geometry_msgs/msg/Point"]
    return M[RUN_SKILL_GOAL](
        skill=skill, object_id=np.array([] if object_id is None else [object_id], np.int64),
        target=target, target_position=[] if target_position is None else [point(*target_position)],
        goal_yaw=np.array([] if goal_yaw is None else [goal_yaw], np.float64),
    )  # fmt: skip


def write_bag(
    path,
    *,
    duration: float = DURATION,
    commands: bool = True,
    trajectories=((RECEIPT, 0.0, ((KNOTS[0], MID), (KNOTS[1], GOAL))),),
    goals: list[tuple[float, str | dict]] = (),
    names=ALL_JOINTS,
    nan_every: int = 0,
    stamp_offset: float | None = None,
    stamp_rate: float = 1.0,
):
    """Joint states at RATE (header stamps = log time + stamp_offset, or the
    log time itself; sim time at stamp_rate), trajectories ``(receipt, start delay or 0, points)``,
    gripper commands, optional goals."""
    events = []  # (t, topic, msgtype, msg)
    for i, t in enumerate(np.arange(0.0, duration, 1.0 / RATE)):
        q, w = measured(np.array(t))
        pos = np.concatenate([q, [w / 2, w / 2]])
        if nan_every and i % nan_every == 0:
            pos[1] = np.nan
        by_name = dict(zip(ALL_JOINTS, pos, strict=True))
        stamp = BASE_NS * 1e-9 + t if stamp_offset is None else stamp_offset + t * stamp_rate
        msg = M["sensor_msgs/msg/JointState"](
            header=_header(stamp), name=list(names), position=np.array([by_name[n] for n in names]),
            velocity=EMPTY, effort=EMPTY,
        )  # fmt: skip
        events.append((t, "/joint_states", "sensor_msgs/msg/JointState", msg))
    if commands:
        for receipt, delay, points in trajectories:
            traj = M["trajectory_msgs/msg/JointTrajectory"](
                header=_header(BASE_NS * 1e-9 + receipt + delay if delay else 0.0),
                joint_names=list(ARM_JOINTS), points=[_point(t, q) for t, q in points],
            )  # fmt: skip
            events.append((receipt, "/arm_controller/joint_trajectory", traj.__msgtype__, traj))
        for t, width in ((0.2, 0.08), (GRIP_AT, GRIP_WIDTH)):
            layout = M["std_msgs/msg/MultiArrayLayout"](dim=[], data_offset=0)
            grip = M["std_msgs/msg/Float64MultiArray"](layout=layout, data=np.array([width]))
            events.append((t, "/gripper_controller/commands", grip.__msgtype__, grip))
    for t, goal in goals:
        if isinstance(goal, str):  # an older bag's JSON /policy/goal
            events.append(
                (t, "/policy/goal", "std_msgs/msg/String", M["std_msgs/msg/String"](goal))
            )
        else:  # the typed RunSkill goal (e.g. from a teleop tool)
            events.append((t, "/teleop/skill_goal", RUN_SKILL_GOAL, run_skill_goal(**goal)))
    with BagWriter(path, "mcap") as bag:
        for topic, msgtype in sorted({(e[1], e[2]) for e in events}):
            bag.add_topic(topic, msgtype)
        for t, topic, msgtype, msg in sorted(events, key=lambda e: e[0]):
            bag.write(topic, bytes(TS.serialize_cdr(msg, msgtype)), BASE_NS + round(t * 1e9))
    return path


@pytest.fixture(scope="module")
def kin():
    return ArmKinematics()


@pytest.fixture(scope="module")
def bag(tmp_path_factory):
    return write_bag(tmp_path_factory.mktemp("bags") / "teleop_run")


def _convert(bag_path, out, kin, **kw):
    kw.setdefault("goal", PICK)
    return convert_bag(bag_path, out, Options(progress=False, **kw), kin)


def _check_tcp(ep, kin):
    tcp, yaw = kin.tcp_poses(ep.steps["joint_positions"])
    np.testing.assert_allclose(ep.steps["tcp_position"], tcp, atol=1e-5)
    np.testing.assert_allclose(ep.steps["tcp_yaw"], yaw, atol=1e-5)
    a_tcp, a_yaw = kin.tcp_poses(ep.steps["action_joint_positions"])
    np.testing.assert_allclose(ep.steps["action_tcp_position"], a_tcp, atol=1e-5)
    np.testing.assert_allclose(ep.steps["action_tcp_yaw"], a_yaw, atol=1e-5)


def test_commands_mode_keeps_every_tick_with_setpoints_as_actions(bag, tmp_path, kin):
    res = _convert(bag, tmp_path / "ds", kin, keep_idle=True)
    (ep,) = load_episodes(tmp_path / "ds")
    ticks = np.arange(len(ep)) / 10.0
    assert len(ep) == 30 == res.steps  # 3 s of 100 Hz states at 10 fps: ticks 0.0 .. 2.9
    np.testing.assert_allclose(ep.steps["time"], ticks, atol=1e-9)
    q, w = measured(ticks)
    np.testing.assert_allclose(ep.steps["joint_positions"], q, atol=1e-5)
    np.testing.assert_allclose(ep.steps["gripper_width"], w, atol=1e-5)
    np.testing.assert_allclose(ep.steps["action_joint_positions"], setpoint(ticks), atol=1e-5)
    np.testing.assert_allclose(ep.steps["action_gripper_width"], commanded_width(ticks), atol=1e-6)
    assert not np.allclose(ep.steps["action_joint_positions"], q, atol=1e-3)  # lag shows
    _check_tcp(ep, kin)
    info = ep.info
    assert (info.skill, info.target_position, info.goal_yaw) == ("pick", [0.5, 0.0, 0.05], 0.3)
    assert info.object_id == "red_cube" and info.success
    assert info.source.startswith("bag:teleop_run@0.00-2.90s")
    assert read_meta(tmp_path / "ds")["source"] == "bag:teleop_run"


def test_idle_ticks_are_trimmed_to_the_motion_plus_a_margin(bag, tmp_path, kin):
    _convert(bag, tmp_path / "ds", kin)
    (ep,) = load_episodes(tmp_path / "ds")
    # Motion starts between ticks 0.5 and 0.6 (obs and setpoint), the fingers
    # stop at 2.45 s: ticks 0.4 (margin) .. 2.6 (last arrival 2.5 + margin).
    assert len(ep) == 23
    ticks = 0.4 + np.arange(len(ep)) / 10.0
    np.testing.assert_allclose(ep.steps["joint_positions"], measured(ticks)[0], atol=1e-5)
    np.testing.assert_allclose(ep.steps["action_joint_positions"], setpoint(ticks), atol=1e-5)
    np.testing.assert_allclose(ep.steps["time"], np.arange(len(ep)) / 10.0, atol=1e-9)


def test_next_state_mode_uses_the_next_measurement(tmp_path, kin):
    teleop = write_bag(tmp_path / "no_commands", commands=False)
    _convert(teleop, tmp_path / "ds", kin, keep_idle=True, fps=20.0)
    (ep,) = load_episodes(tmp_path / "ds")
    assert len(ep) == 59  # the last tick needs a state one tick later
    ticks = np.arange(len(ep)) / 20.0
    q, w = measured(ticks + 0.05)
    np.testing.assert_allclose(ep.steps["action_joint_positions"], q, atol=1e-5)
    np.testing.assert_allclose(ep.steps["action_gripper_width"], w, atol=1e-5)
    np.testing.assert_allclose(
        ep.steps["action_joint_positions"][:-1], ep.steps["joint_positions"][1:], atol=1e-6
    )
    assert ep.info.source.endswith(":next_state")
    _check_tcp(ep, kin)
    with pytest.raises(ConversionError, match="no /arm_controller/joint_trajectory messages"):
        _convert(teleop, tmp_path / "ds", kin, action_source="commands")


def test_goals_from_topic_split_the_bag_and_append(bag, tmp_path, kin):
    goals = [
        (0.1, json.dumps({"kind": "pick", "target_position": [0.5, 0.1, 0.05]})),
        (1.2, json.dumps({"skill": "place", "target_position": [0.3, -0.2, 0.1], "goal_yaw": 1})),
        (1.9, "not json"),  # ends the place episode, makes none of its own
        (2.1, json.dumps({"skill": "pick", "target_position": [0.4, 0.0, 0.05]})),
    ]
    split = write_bag(tmp_path / "with_goals", goals=goals)
    res = _convert(split, tmp_path / "ds", kin, goal=None, goals_from_topic="/policy/goal")
    assert res.episodes == 3 and any("goal at 1.90 s skipped" in n for n in res.notes)
    eps = list(load_episodes(tmp_path / "ds"))
    assert [e.info.skill for e in eps] == ["pick", "place", "pick"]
    assert eps[1].info.target_position == [0.3, -0.2, 0.1] and eps[1].info.goal_yaw == 1.0
    assert eps[0].info.source.startswith("bag:with_goals@0.40-")  # idle 0.1 .. 0.3 trimmed
    assert eps[1].info.source.startswith("bag:with_goals@1.20-1.80s")  # up to the next goal
    assert sum(len(e) for e in eps) == res.steps
    _convert(bag, tmp_path / "ds", kin)  # a second bag appends
    assert len(list(load_episodes(tmp_path / "ds"))) == 4


def test_typed_run_skill_goals_split_the_bag_like_json_ones(tmp_path, kin):
    goals = [
        (0.1, {"skill": "pick", "target_position": (0.5, 0.1, 0.05), "object_id": 7}),
        (1.2, {"skill": "place", "target_position": (0.3, -0.2, 0.1), "goal_yaw": 1.0,
               "target": "bin"}),
        (1.9, {"skill": "look"}),  # no target_position: ends the place episode, skipped
        (2.1, {"skill": "pick", "target_position": (0.4, 0.0, 0.05)}),
    ]  # fmt: skip
    split = write_bag(tmp_path / "typed_goals", goals=goals)
    res = _convert(split, tmp_path / "ds", kin, goal=None, goals_from_topic="/teleop/skill_goal")
    assert res.episodes == 3 and any("goal at 1.90 s skipped" in n for n in res.notes)
    eps = list(load_episodes(tmp_path / "ds"))
    assert [e.info.skill for e in eps] == ["pick", "place", "pick"]
    assert eps[0].info.object_id == "7" and eps[1].info.target_id == "bin"
    assert eps[1].info.target_position == [0.3, -0.2, 0.1] and eps[1].info.goal_yaw == 1.0
    assert eps[1].info.source.startswith("bag:typed_goals@1.20-1.80s")


def test_header_stamps_in_another_clock_give_the_same_episode(tmp_path, kin):
    sim = write_bag(tmp_path / "sim_time", stamp_offset=42.0)
    _convert(sim, tmp_path / "ds", kin, use_header_stamps=True)
    _convert(sim, tmp_path / "ds", kin)
    a, b = load_episodes(tmp_path / "ds")
    assert len(a) == len(b) == 23
    for name in a.steps:
        np.testing.assert_allclose(a.steps[name], b.steps[name], atol=1e-5)


def test_a_robot_clock_at_another_rate_needs_header_stamps(tmp_path, kin):
    slow = write_bag(tmp_path / "slow_sim", stamp_offset=10.0, stamp_rate=0.5)
    with pytest.raises(ConversionError, match=r"runs at 0.50x .* use --use-header-stamps"):
        _convert(slow, tmp_path / "ds", kin)
    _convert(slow, tmp_path / "ds", kin, use_header_stamps=True, keep_idle=True)
    (ep,) = load_episodes(tmp_path / "ds")
    assert len(ep) == 15  # 1.5 s of robot time


def test_trajectory_start_stamp_and_anchor(tmp_path, kin):
    late = write_bag(tmp_path / "late", trajectories=[(RECEIPT, 0.3, ((1.0, GOAL),))])
    _convert(late, tmp_path / "ds", kin, keep_idle=True)
    (ep,) = load_episodes(tmp_path / "ds")
    ticks = np.arange(len(ep)) / 10.0
    expected = [np.interp(ticks, [0.8, 1.8], [HOME_ARM[j], GOAL[j]]) for j in range(7)]
    np.testing.assert_allclose(ep.steps["action_joint_positions"], np.stack(expected, 1), atol=1e-5)
    # A second trajectory at 1.0 s starts from the measured state (JTC) or,
    # with anchor="setpoint", from where the first one's setpoint was.
    second = [(RECEIPT, 0.0, ((KNOTS[0], MID), (KNOTS[1], GOAL))), (1.0, 0.0, ((1.0, GOAL),))]
    replan = write_bag(tmp_path / "replan", trajectories=second)
    for anchor, start in (("measured", measured(np.array(1.0))[0]), ("setpoint", setpoint(1.0))):
        _convert(replan, tmp_path / anchor, kin, keep_idle=True, anchor=anchor)
        (ep,) = load_episodes(tmp_path / anchor)
        expected = start + 0.5 * (GOAL - start)  # tick 1.5 s, half way
        np.testing.assert_allclose(ep.steps["action_joint_positions"][15], expected, atol=1e-5)


def test_window_and_nan_samples(tmp_path, kin):
    noisy = write_bag(tmp_path / "noisy", nan_every=10)
    res = _convert(noisy, tmp_path / "ds", kin, start=1.0, end=2.0, keep_idle=True)
    assert "30 NaN joint_states samples" in res.notes
    (ep,) = load_episodes(tmp_path / "ds")
    assert len(ep) == 11  # ticks 1.0 .. 2.0
    ticks = 1.0 + np.arange(11) / 10.0
    np.testing.assert_allclose(ep.steps["joint_positions"], measured(ticks)[0], atol=1e-5)


def goal_only_bag(tmp_path):
    with BagWriter(tmp_path / "goal_only", "mcap") as bag:
        bag.add_topic("/policy/goal", "std_msgs/msg/String")
        raw = TS.serialize_cdr(M["std_msgs/msg/String"]("{}"), "std_msgs/msg/String")
        bag.write("/policy/goal", bytes(raw), BASE_NS)
    return tmp_path / "goal_only"


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda p: p / "absent", "bag missing"),
        (lambda p: write_bag(p / "b", names=FINGER_JOINTS), "joint names missing.*panda_joint1"),
        (lambda p: write_bag(p / "b", duration=0.005), "too few"),
        (lambda p: write_bag(p / "b", nan_every=1), "every arm sample was NaN"),
        (goal_only_bag, "no joint states: topic /joint_states is not in the bag"),
    ],
)
def test_errors_say_why(tmp_path, kin, make, match):
    path = make(tmp_path)
    with pytest.raises(ConversionError, match=match):
        _convert(path, tmp_path / "ds", kin)
    assert not (tmp_path / "ds").exists()


def test_cli(bag, tmp_path, capsys):
    out = str(tmp_path / "ds")
    goal = ["--skill", "place", "--target", "0.3", "-0.2", "0.1", "--object-id", "cube"]
    argv = ["bag-to-dataset", str(bag), "--out", out, *goal, "--no-progress"]
    assert cli_main(argv) == 0
    assert "wrote 1 episode(s), 23 steps, 2.3 s of data at 10 fps" in capsys.readouterr().out
    (ep,) = load_episodes(out)
    assert ep.info.skill == "place" and ep.info.object_id == "cube"
    assert cli_main([*argv[:2], str(tmp_path / "nope"), *argv[2:]]) == 2
    captured = capsys.readouterr()
    assert "bag missing" in captured.err and "1 of 2 bag(s) failed" in captured.out
    assert len(list(load_episodes(out))) == 2
