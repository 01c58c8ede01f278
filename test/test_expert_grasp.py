"""The scripted expert's grasp yaw among neighbours (plain pytest, real IK model)."""

from __future__ import annotations

import numpy as np
import pytest

from robot_memory.expert.pick_place import PickPlacePlanner
from robot_memory.robot.ik import ArmIK
from robot_memory.schemas import GroundTruthObject
from robot_memory.sim.scene import build_model


def thing(oid: str, shape: str, xy, size) -> GroundTruthObject:
    return GroundTruthObject(
        id=oid, kind="object", shape=shape, color="red", label=f"red {shape}",
        position=(xy[0], xy[1], size[2] / 2), quaternion=(1.0, 0.0, 0.0, 0.0), size=size,
    )  # fmt: skip


@pytest.fixture(scope="module")
def planner():
    return PickPlacePlanner(ArmIK(build_model("tabletop", "primitive")))


def closing_direction(planner, yaw: float) -> np.ndarray:
    c = yaw + np.pi / 2  # fingers close along hand yaw + pi/2
    return np.array([np.cos(c), np.sin(c)])


@pytest.mark.parametrize("angle", [0.0, 0.7, np.pi / 2, 2.5])
def test_a_can_against_another_is_grasped_across_the_line_to_it(planner, angle):
    can = thing("can_a", "can", (0.1, 0.0), (0.06, 0.06, 0.085))
    d = 0.062 * np.array([np.cos(angle), np.sin(angle)])
    twin = thing("can_b", "can", (0.1 + d[0], d[1]), (0.06, 0.06, 0.085))
    closing = closing_direction(planner, planner.grasp_yaw(can, [can, twin]))
    towards = d / np.linalg.norm(d)
    assert abs(float(closing @ towards)) < 1e-6  # no finger comes down on the twin


def test_neighbours_far_away_leave_the_grasp_as_it_was(planner):
    cube = thing("cube", "cube", (0.1, 0.0), (0.05, 0.05, 0.05))
    far = thing("far", "can", (0.1, 0.2), (0.06, 0.06, 0.085))
    assert planner.grasp_yaw(cube, [far]) == planner.grasp_yaw(cube)


def test_a_cube_is_still_grasped_across_its_faces(planner):
    cube = thing("cube", "cube", (0.1, 0.0), (0.05, 0.05, 0.05))
    for angle in (0.3, 1.2):
        d = 0.06 * np.array([np.cos(angle), np.sin(angle)])
        near = thing("near", "can", (0.1 + d[0], d[1]), (0.06, 0.06, 0.085))
        closing = closing_direction(planner, planner.grasp_yaw(cube, [near]))
        assert min(abs(closing[0]), abs(closing[1])) < 1e-6  # along a face normal
