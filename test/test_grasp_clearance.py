"""Grasps kept clear of neighbours (plain pytest): the ROS-free core
(``policy/grasp_clearance.py``), the scripted expert's grasp on simulator
truth and the policy's goal grounding on memory's footprints."""

from __future__ import annotations

import numpy as np
import pytest

from robot_memory.expert.pick_place import PickPlacePlanner
from robot_memory.policy.goal_grounding import ground_goal
from robot_memory.policy.grasp_clearance import (
    ENOUGH_CLEARANCE,
    FINGER_PAD,
    Footprint,
    clear_grasp,
    clearance,
)
from robot_memory.robot.ik import ArmIK
from robot_memory.robot.panda import GRIPPER_MAX_WIDTH
from robot_memory.schemas import GroundTruthObject, MemoryObjectMsg, PolicyGoalMsg, SceneGraphMsg
from robot_memory.sim.scene import build_model

OPEN = GRIPPER_MAX_WIDTH
#: A can (r 3 cm) whose side touches a handle lying along x at the origin
#: (2.6 cm thick), right where the +y finger comes down with the hand at yaw 0.
CAN = Footprint((0.0, 0.013 + 0.03), radius=0.03)


def test_footprint_distances_for_circles_and_turned_rectangles() -> None:
    circle = Footprint((1.0, 0.0), radius=0.5)
    np.testing.assert_allclose(circle.distance(np.array([[3.0, 0.0], [1.2, 0.0]])), [1.5, 0.0])
    box = Footprint((0.0, 0.0), half=(0.2, 0.1), yaw=np.pi / 2)  # long side along y now
    np.testing.assert_allclose(
        box.distance(np.array([[0.0, 0.25], [0.25, 0.0], [0.0, 0.0]])), [0.05, 0.15, 0.0]
    )


def test_the_finger_pads_lie_either_side_across_the_hand() -> None:
    # hand yaw 0: fingers close along y, pads from OPEN/2 to OPEN/2 + thickness
    near = Footprint((0.0, OPEN / 2 + FINGER_PAD[1] + 0.01), radius=0.0, half=(0.001, 0.001))
    assert clearance((0.0, 0.0), 0.0, OPEN, [near]) == pytest.approx(0.009, abs=1e-3)
    assert clearance((0.0, 0.0), np.pi / 2, OPEN, [near]) > 0.03  # turned: pads along x
    assert clearance((0.0, 0.0), 0.0, OPEN, []) == float("inf")


def test_a_clear_grasp_stays_where_it_was() -> None:
    far = Footprint((0.3, 0.3), radius=0.03)
    g = clear_grasp((0.0, 0.0), 0.0, [far], OPEN, max_slide=0.03, max_turn=np.radians(30))
    assert (g.point, g.yaw, g.slide, g.turn) == ((0.0, 0.0), 0.0, 0.0, 0.0)
    assert g.clearance == pytest.approx(ENOUGH_CLEARANCE)


def test_a_handle_against_a_can_is_taken_further_along_or_turned() -> None:
    assert clearance((0.0, 0.0), 0.0, OPEN, [CAN]) == 0.0  # nominal: a pad on the can
    g = clear_grasp((0.0, 0.0), 0.0, [CAN], OPEN, max_slide=0.03, max_turn=np.radians(30))
    assert g.clearance >= ENOUGH_CLEARANCE
    assert clearance(g.point, g.yaw, OPEN, [CAN]) >= ENOUGH_CLEARANCE
    assert abs(g.slide) <= 0.03 + 1e-9 and abs(g.turn) <= np.radians(30) + 1e-9
    assert g.point[1] == pytest.approx(0.0)  # slid along the handle (x), never off it
    # with no freedom the grasp cannot move, and says how little room it has
    stuck = clear_grasp((0.0, 0.0), 0.0, [CAN], OPEN)
    assert (stuck.point, stuck.yaw, stuck.clearance) == ((0.0, 0.0), 0.0, 0.0)


def truth(oid: str, shape: str, xy, size) -> GroundTruthObject:
    return GroundTruthObject(
        id=oid, kind="object", shape=shape, color="red", label=f"red {shape}",
        position=(xy[0], xy[1], size[2] / 2), quaternion=(1.0, 0.0, 0.0, 0.0), size=size,
    )  # fmt: skip


def test_the_expert_takes_a_screwdriver_clear_of_the_can_beside_it() -> None:
    planner = PickPlacePlanner(ArmIK(build_model("tabletop", "primitive")))
    driver = truth("screwdriver", "screwdriver", (0.2, 0.0), (0.16, 0.026, 0.026))
    alone_point, alone_yaw = planner.grasp(driver, [driver])
    np.testing.assert_allclose(alone_point[:2], (0.2, 0.0))
    can = truth("can", "can", (0.2, 0.043), (0.06, 0.06, 0.085))
    point, yaw = planner.grasp(driver, [driver, can])
    can_print = Footprint((0.2, 0.043), radius=0.03)
    assert clearance(alone_point[:2], alone_yaw, OPEN, [can_print]) == 0.0
    assert clearance(point[:2], yaw, OPEN, [can_print]) >= ENOUGH_CLEARANCE
    assert point[1] == pytest.approx(0.0, abs=1e-9) and point[2] == alone_point[2]


def remembered(oid: int, shape: str, centre, half) -> MemoryObjectMsg:
    c, h = np.asarray(centre, float), np.asarray(half, float)
    return MemoryObjectMsg(
        id=oid, label=f"red {shape}", color="red", shape=shape, centroid=tuple(c),
        bbox_min=tuple(c - h), bbox_max=tuple(c + h), confidence=0.9, observations=5,
        first_seen=0.0, last_seen=1.0, status="visible",
    )  # fmt: skip


def graph(*objects: MemoryObjectMsg) -> SceneGraphMsg:
    return SceneGraphMsg(seq=1, stamp=1.0, objects=list(objects), places=[], relations=[])


def test_the_policys_pick_goal_clears_a_remembered_neighbour() -> None:
    driver = remembered(1, "screwdriver", (0.2, 0.0, 0.013), (0.08, 0.013, 0.013))
    can = remembered(2, "can", (0.2, 0.043, 0.0425), (0.03, 0.03, 0.0425))
    goal = PolicyGoalMsg(id="g", skill="pick", object_id=1, goal_yaw=0.0)
    alone = ground_goal(goal, graph(driver))
    np.testing.assert_allclose(alone.target_position, (0.2, 0.0, 0.013))
    crowded = ground_goal(goal, graph(driver, can))
    can_print = Footprint((0.2, 0.043), radius=0.03)
    assert clearance(crowded.target_position[:2], crowded.goal_yaw, OPEN, [can_print]) >= (
        ENOUGH_CLEARANCE
    )
    assert crowded.target_position[2] == pytest.approx(0.013)
    # a can is round: its goal never moves (any yaw closes across it)
    can_goal = PolicyGoalMsg(id="h", skill="pick", object_id=2, goal_yaw=0.0)
    both = ground_goal(can_goal, graph(driver, can))
    np.testing.assert_allclose(both.target_position, (0.2, 0.043, 0.0425))
