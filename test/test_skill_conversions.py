"""RunSkill goals and PolicyStatus / SafetyStatus messages <-> the core's types
(no DDS): round trips keep every field; NaN, infinities, unknown skills or
states and a yaw out of bounds raise PayloadError; empty bounded fields are
None."""

from __future__ import annotations

import math

import pytest
from geometry_msgs.msg import Point
from robot_memory_interfaces.action import RunSkill
from robot_memory_interfaces.msg import PolicyStatus

from robot_memory.nodes.safety_conversions import safety_status_from_msg, safety_status_to_msg
from robot_memory.nodes.skill_conversions import (
    policy_status_from_msg,
    policy_status_to_msg,
    skill_goal_from_msg,
    skill_goal_to_msg,
    skill_result,
)
from robot_memory.schemas import PayloadError, PolicyGoalMsg, PolicyStatusMsg


@pytest.mark.parametrize(
    "goal",
    [
        PolicyGoalMsg(id="g", skill="pick", object_id=7),
        PolicyGoalMsg(id="g", skill="pick", target_position=(0.1, -0.2, 0.02), goal_yaw=0.5),
        PolicyGoalMsg(id="g", skill="place", object_id=7, target="bin"),
        PolicyGoalMsg(id="g", skill="look", target="3"),
    ],
)
def test_a_goal_round_trips(goal):
    msg = skill_goal_to_msg(goal)
    assert skill_goal_from_msg(msg, "g") == goal


def test_an_empty_goal_field_is_none_and_the_id_is_the_given_one():
    goal = skill_goal_from_msg(RunSkill.Goal(skill="look", target="bin"), "abc123")
    assert goal.id == "abc123" and goal.object_id is None
    assert goal.target_position is None and goal.goal_yaw is None


@pytest.mark.parametrize(
    ("msg", "where"),
    [
        (RunSkill.Goal(skill="fly", object_id=[7]), "skill"),
        (RunSkill.Goal(skill="", object_id=[7]), "skill"),
        (RunSkill.Goal(skill="pick", target_position=[Point(x=math.nan)]), "target_position"),
        (RunSkill.Goal(skill="pick", target_position=[Point(z=math.inf)]), "target_position"),
        (RunSkill.Goal(skill="pick", object_id=[7], goal_yaw=[math.nan]), "goal_yaw"),
        (RunSkill.Goal(skill="pick", object_id=[7], goal_yaw=[100.0]), "goal_yaw"),
        (RunSkill.Goal(skill="pick", target="x" * 200), "target"),
    ],
)
def test_malformed_goals_raise_payload_error(msg, where):
    with pytest.raises(PayloadError) as err:
        skill_goal_from_msg(msg, "g")
    assert err.value.reason == "invalid payload" and err.value.detail.startswith(where)


def test_a_policy_status_round_trips_and_an_unknown_state_is_refused():
    status = PolicyStatusMsg(
        goal_id="g", state="canceled", reason="cancel requested", skill="pick", chunks=4,
        stamp=12.5,
    )  # fmt: skip
    assert policy_status_from_msg(policy_status_to_msg(status)) == status
    placing = status.model_copy(update={"skill": "place", "object_id": 7, "target": "bin"})
    assert policy_status_from_msg(policy_status_to_msg(placing)) == placing
    with pytest.raises(PayloadError):
        policy_status_from_msg(PolicyStatus(state="exploded"))


def test_results_say_success_only_when_succeeded():
    assert skill_result("succeeded", "lifted", 5).success
    for state in ("failed", "canceled", "rejected"):
        result = skill_result(state, "why", 3)
        assert not result.success
        assert (result.state, result.reason, result.chunks) == (state, "why", 3)


def test_a_safety_status_round_trips_with_counts_by_reason():
    status = {
        "state": "holding", "hold_reason": "stop requested", "accepted": 3, "retimed": 1,
        "rejected_total": 2, "rejected": {"stale": 1, "outside workspace": 1},
        "stale_points_dropped": 4, "holds": 1, "rejected_joint_states": {"teleport": 2},
        "last_reject": "stale: observation 0.8 s old",
    }  # fmt: skip
    msg = safety_status_to_msg(status, 7.25)
    pairs = [(kv.key, kv.value) for kv in msg.rejected]
    assert pairs == [("outside workspace", "1"), ("stale", "1")]
    assert safety_status_from_msg(msg) == {**status, "stamp": 7.25}
    msg.state = "fine"
    with pytest.raises(PayloadError):
        safety_status_from_msg(msg)
