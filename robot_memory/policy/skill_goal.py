"""What a pick or place skill is asked to do (ROS-free, simulator-free): the
goal the policy is conditioned on and the geometry every user of a skill
shares (the release height, where on the table a place may go).

The simulated tasks built on it (start states, ground-truth success, the
scripted expert) are in :mod:`robot_memory.learning.skill_tasks`, apart from the
deployable core.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: TCP height above the place surface at release [m]: every object's bottom is
#: then 1-3.5 cm above the surface (it drops, it is not pushed into it).
RELEASE_TCP_HEIGHT = 0.055
#: A pick counts when the object is held this much above where it rested [m].
PICK_LIFT_SUCCESS_M = 0.05
#: A table place counts when the object rests this close to the target (xy) [m].
PLACE_TABLE_TOLERANCE_M = 0.04
#: Table spots for place: inside this box, clear of objects, bin and cover.
TABLE_PLACE_X = (-0.1, 0.28)
TABLE_PLACE_Y = (-0.3, 0.2)
TABLE_PLACE_CLEARANCE = 0.1


@dataclass
class SkillGoal:
    skill: str  # "pick" or "place"
    target_position: np.ndarray  # (3,) table frame [m]
    goal_yaw: float  # hand yaw to use [rad]
    object_id: str = ""
    target_id: str = ""  # "bin", "table" for place
    object_rest_z: float = 0.0  # object's centre height when the episode began

    def __post_init__(self) -> None:
        self.target_position = np.asarray(self.target_position, dtype=float)
        if self.skill not in ("pick", "place"):
            raise ValueError(f"unknown skill {self.skill!r}")
        if self.target_position.shape != (3,) or not np.all(np.isfinite(self.target_position)):
            raise ValueError(f"target_position must be 3 finite numbers: {self.target_position}")
        if not np.isfinite(self.goal_yaw):
            raise ValueError("goal_yaw must be finite")


__all__ = [
    "PICK_LIFT_SUCCESS_M",
    "PLACE_TABLE_TOLERANCE_M",
    "RELEASE_TCP_HEIGHT",
    "TABLE_PLACE_CLEARANCE",
    "TABLE_PLACE_X",
    "TABLE_PLACE_Y",
    "SkillGoal",
]
