"""Plan and PlannerStatus messages <-> the planner core's models: round trips,
optional fields, and validation of what comes in (an unknown skill or state, NaN)."""

from __future__ import annotations

import math

import pytest
from robot_memory_interfaces.msg import Plan as PlanMsg

from robot_memory.nodes.planner_conversions import (
    execute_result,
    feedback_from_status,
    plan_from_msg,
    plan_to_msg,
    planner_status_from_msg,
    planner_status_to_msg,
)
from robot_memory.planner.plan import Plan, PlannerStatusMsg, PlanStep
from robot_memory.schemas import PayloadError

PLAN = Plan(
    id="p1",
    instruction="put the red cube in the bin",
    backend="offline",
    steps=[
        PlanStep(skill="pick", object_id=7, goal_yaw=0.25, why="it is the red cube"),
        PlanStep(skill="place", object_id=7, target="bin"),
        PlanStep(skill="look", target_position=(0.1, -0.2, 0.0)),
    ],
    experiences=["e1"],
    notes=["grounded 'red cube' to #7"],
    attempt=1,
)
ANSWER = Plan(
    id="p2",
    instruction="where is the cup?",
    backend="offline",
    kind="answer",
    answer="in the bin",
    answer_object_id=3,
    answer_position=(0.3, 0.2, 0.05),
    answer_place="bin",
)


@pytest.mark.parametrize("plan", [PLAN, ANSWER], ids=["motion", "answer"])
def test_plans_round_trip(plan: Plan) -> None:
    assert plan_from_msg(plan_to_msg(plan)) == plan


def test_statuses_round_trip_with_every_state() -> None:
    for state in ("idle", "planning", "executing", "succeeded", "rejected", "canceled"):
        status = PlannerStatusMsg(
            plan_id="p1", instruction="x", state=state, step=1, n_steps=3, skill="place",
            progress=0.5, message="m", reason="r", attempt=2, stamp=12.25,
        )  # fmt: skip
        assert planner_status_from_msg(planner_status_to_msg(status)) == status


def test_what_comes_in_is_validated() -> None:
    msg = plan_to_msg(PLAN)
    msg.steps[0].skill = "throw"
    with pytest.raises(PayloadError):
        plan_from_msg(msg)
    msg = plan_to_msg(PLAN)
    msg.steps[2].target_position[0].x = math.nan
    with pytest.raises(PayloadError):
        plan_from_msg(msg)
    status = planner_status_to_msg(PlannerStatusMsg(state="idle"))
    status.state = "dancing"
    with pytest.raises(PayloadError):
        planner_status_from_msg(status)
    status.state, status.progress = "executing", 1.5
    with pytest.raises(PayloadError):
        planner_status_from_msg(status)


def test_action_feedback_and_result() -> None:
    status = PlannerStatusMsg(state="executing", step=1, n_steps=3, progress=0.33, attempt=1)
    fb = feedback_from_status(status, PLAN)
    assert (fb.state, fb.step, fb.n_steps, fb.replans) == ("executing", 1, 3, 1)
    assert plan_from_msg(fb.plan) == PLAN
    assert feedback_from_status(status, None).plan == PlanMsg()
    done = execute_result("answered", plan=ANSWER)
    assert done.success and done.answer == "in the bin"
    failed = execute_result("canceled", "canceled", PLAN)
    assert not failed.success and failed.answer == "" and failed.reason == "canceled"
