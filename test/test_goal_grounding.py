"""Policy goals grounded in the remembered scene graph (no ROS)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from robot_memory.policy.goal_admission import GoalGate
from robot_memory.policy.goal_grounding import (
    DEFAULT_PICK_YAW,
    GroundingError,
    ground_goal,
    ground_goal_text,
    parse_goal,
)
from robot_memory.policy.look_skill import LookDriver, LookMotion
from robot_memory.policy.runtime import RobotState
from robot_memory.policy.skill_goal import TABLE_PLACE_Y
from robot_memory.schemas import MemoryObjectMsg, PlaceMsg, PolicyGoalMsg, SceneGraphMsg


def obj(object_id: int, centroid, half=0.02, status="visible", label="red cube"):
    c = np.asarray(centroid, dtype=float)
    return MemoryObjectMsg(
        id=object_id,
        label=label,
        color="red",
        shape="cube",
        centroid=tuple(c),
        bbox_min=tuple(c - half),
        bbox_max=tuple(c + half),
        confidence=0.9,
        observations=5,
        first_seen=0.0,
        last_seen=1.0,
        status=status,
    )


BIN = ((0.05, 0.25, 0.0), (0.25, 0.45, 0.08))
L = ((-0.6, 0.15, -0.04), (0.6, 0.5, 0.0))
GRAPH = SceneGraphMsg(
    seq=3,
    stamp=1.0,
    objects=[
        obj(4, (0.1, -0.1, 0.02)),
        obj(5, (0.2, 0.0, 0.02), status="absent", label="blue cube"),
        obj(6, (0.0, 0.1, 0.03), half=0.03, status="remembered", label="box"),
    ],
    places=[
        PlaceMsg(id="bin", kind="container", label="bin", bbox_min=BIN[0], bbox_max=BIN[1]),
        PlaceMsg(id="table_left", kind="table_region", label="left", bbox_min=L[0], bbox_max=L[1]),
    ],
    relations=[],
)


def goal(**fields) -> PolicyGoalMsg:
    return PolicyGoalMsg(id="g1", **fields)


def reason_of(call) -> str:
    with pytest.raises(GroundingError) as info:
        call()
    return info.value.reason


def test_pick_by_memory_id_targets_the_objects_centroid():
    skill = ground_goal(goal(skill="pick", object_id=4), GRAPH)
    assert skill.skill == "pick" and skill.object_id == "4"
    np.testing.assert_allclose(skill.target_position, (0.1, -0.1, 0.02))
    assert skill.goal_yaw == DEFAULT_PICK_YAW and skill.object_rest_z == pytest.approx(0.02)
    # a remembered (not currently visible) object is still a valid target
    np.testing.assert_allclose(
        ground_goal(goal(skill="pick", object_id=6, goal_yaw=0.3), GRAPH).target_position,
        (0.0, 0.1, 0.03),
    )
    assert ground_goal(goal(skill="pick", object_id=6, goal_yaw=0.3), GRAPH).goal_yaw == 0.3


@pytest.mark.parametrize(
    ("fields", "graph", "reason"),
    [
        ({"skill": "pick", "object_id": 5}, GRAPH, "object absent"),
        ({"skill": "pick", "object_id": 99}, GRAPH, "unknown object"),
        ({"skill": "pick", "object_id": 4}, None, "no scene graph"),
        ({"skill": "pick"}, GRAPH, "no target"),
        ({"skill": "place", "target": "shelf"}, GRAPH, "unknown target"),
        ({"skill": "place", "target": "5"}, GRAPH, "object absent"),
        ({"skill": "place", "target": "77"}, GRAPH, "unknown object"),
        ({"skill": "place"}, GRAPH, "no target"),
    ],
)
def test_goals_memory_cannot_ground_are_refused_with_a_reason(fields, graph, reason):
    with pytest.raises(GroundingError) as info:
        ground_goal(goal(**fields), graph, hand_yaw=0.0)
    assert info.value.reason == reason and info.value.goal_id == "g1"
    assert info.value.detail  # a human-readable explanation for the log and status


def test_place_in_the_bin_targets_its_top_centre_with_the_current_hand_yaw():
    skill = ground_goal(goal(skill="place", target="bin", object_id=4), GRAPH, hand_yaw=0.7)
    np.testing.assert_allclose(skill.target_position, (0.15, 0.35, 0.08))
    assert skill.goal_yaw == 0.7 and skill.target_id == "bin" and skill.object_id == "4"
    # on top of a memory object (e.g. a box), by id as text
    box = ground_goal(goal(skill="place", target="6"), GRAPH, hand_yaw=0.0)
    np.testing.assert_allclose(box.target_position, (0.0, 0.1, 0.06))
    # without joint states the hand yaw is unknown: give goal_yaw or wait
    assert reason_of(lambda: ground_goal(goal(skill="place", target="bin"), GRAPH)) == (
        "no robot state"
    )


def test_table_region_centre_is_clipped_into_the_reachable_area():
    skill = ground_goal(goal(skill="place", target="table_left"), GRAPH, hand_yaw=0.0)
    np.testing.assert_allclose(skill.target_position, (0.0, TABLE_PLACE_Y[1], 0.0))


def test_an_explicit_target_position_always_wins():
    pos = (0.12, -0.2, 0.0)
    for fields in (
        {"skill": "place", "target": "table_left"},
        {"skill": "place", "target": "bin"},
        {"skill": "pick", "object_id": 4},
        {"skill": "pick", "object_id": 99},  # not even looked up
    ):
        skill = ground_goal(goal(target_position=pos, goal_yaw=0.1, **fields), None)
        np.testing.assert_allclose(skill.target_position, pos)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{not json", "malformed json"),
        ("[1, 2]", "malformed json"),
        (json.dumps({"id": "x", "skill": "push", "object_id": 4}), "invalid payload"),
        ('{"id": "x", "skill": "place", "target_position": [0.1, NaN, 0.0]}', "invalid payload"),
        ('{"id": "x", "skill": "pick", "object_id": 4, "goal_yaw": Infinity}', "invalid payload"),
        ('{"id": "x", "skill": "pick", "target_position": [0.1, 0.0]}', "invalid payload"),
        (json.dumps({"id": "x", "skill": "pick", "object_id": 4, "extra": 1}), "invalid payload"),
        (json.dumps({"skill": "pick", "object_id": 4}), "invalid payload"),
        (json.dumps({"id": "x", "skill": "pick", "object_id": "cup"}), "invalid payload"),
    ],
)
def test_malformed_payloads_are_refused(text, reason):
    with pytest.raises(GroundingError) as info:
        ground_goal_text(text, GRAPH, hand_yaw=0.0)
    assert info.value.reason == reason
    # the id comes back for the status whenever the payload had one
    assert info.value.goal_id == ("x" if '"id": "x"' in text else "")


def test_a_valid_payload_round_trips():
    text = json.dumps({"id": "p1", "skill": "pick", "object_id": 4})
    msg = parse_goal(text)
    assert msg.schema_version == 1 and msg.target == "" and msg.target_position is None
    parsed, skill = ground_goal_text(text, GRAPH)
    assert parsed.id == "p1" and skill.skill == "pick"


def _gate(unavailable: str | None = None) -> GoalGate:
    from robot_memory.policy.kinematics import ArmKinematics

    kin = ArmKinematics()
    return GoalGate(0.5, LookDriver(kin.ik), lambda q: kin.tcp_pose(q)[1], unavailable)


STATE = RobotState(np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785]), 0.04, 10.0)


@pytest.mark.parametrize(
    ("newest", "now", "estop", "unavailable", "reason"),
    [
        (STATE, 10.1, True, None, "estop active"),
        (None, 10.1, False, None, "no robot state"),
        (STATE, 10.6, False, None, "no robot state"),  # 0.6 s old, 0.5 s allowed
        (STATE, 10.1, False, "no policy checkpoint at /x", "no checkpoint"),
    ],
)
def test_the_gate_refuses_goals_that_cannot_start_now(newest, now, estop, unavailable, reason):
    gate = _gate(unavailable)
    with pytest.raises(GroundingError) as err:
        gate.admit(goal(skill="pick", object_id=4), GRAPH, newest, now, estop)
    assert err.value.reason == reason and err.value.goal_id == "g1"


def test_the_gate_admits_a_pick_and_a_look_with_a_fresh_state():
    gate = _gate()
    pick = gate.admit(goal(skill="pick", object_id=4), GRAPH, STATE, 10.1, False)
    np.testing.assert_allclose(pick.target_position, (0.1, -0.1, 0.02))
    look = gate.admit(goal(skill="look", object_id=4), GRAPH, STATE, 10.1, False)
    assert isinstance(look, LookMotion)
    np.testing.assert_allclose(look.point, (0.1, -0.1, 0.02), atol=0.03)
    with pytest.raises(GroundingError) as err:  # a look needs no checkpoint, but a target
        _gate("none").admit(goal(skill="look", object_id=99), GRAPH, STATE, 10.1, False)
    assert err.value.goal_id == "g1"
