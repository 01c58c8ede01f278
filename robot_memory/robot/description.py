"""What the stack needs to know about an arm, as data: its joints, their
limits, a home pose and the MuJoCo description its kinematics compile from.

One :class:`ArmDescription` per arm model (:data:`robot_memory.robot.panda.PANDA`,
:data:`robot_memory.robot.ur5e.UR5E`); :func:`robot_memory.robot.arm_model.arm_model`
compiles its MJCF at a base pose, and the IK (:class:`robot_memory.robot.ik.ArmIK`),
the safety filter's forward kinematics and the robot mask run on that model.
Adding an arm is a new description and an MJCF folder under ``sim/``; the
cores do not change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class JointLimits:
    """Position and velocity limits for a named set of joints."""

    names: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    velocity: np.ndarray

    def index(self, name: str) -> int:
        return self.names.index(name)


@dataclass(frozen=True, eq=False)
class ArmDescription:
    """An arm: ``joints`` in command order with their limits (radians, rad/s,
    rad/s^2; ``acceleration`` None where the maker publishes none), ``home``,
    and its MJCF (``mjcf``, a path under the project's ``sim/`` folder) with
    the base body that is placed at the cell's robot base and the TCP site."""

    name: str
    joints: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    velocity: np.ndarray
    acceleration: np.ndarray | None
    home: np.ndarray
    mjcf: str
    base_body: str
    tcp_site: str
    source: str  # where the numbers come from

    def __post_init__(self) -> None:
        n = len(self.joints)
        arrays = {"lower": self.lower, "upper": self.upper, "velocity": self.velocity}
        arrays["home"] = self.home
        if self.acceleration is not None:
            arrays["acceleration"] = self.acceleration
        for key, value in arrays.items():
            if np.shape(value) != (n,):
                raise ValueError(f"{self.name}: {key} must have {n} values, got {np.shape(value)}")
        if np.any(self.lower >= self.upper) or np.any(self.velocity <= 0):
            raise ValueError(f"{self.name}: limits must have lower < upper and velocity > 0")
        if np.any(self.home < self.lower) or np.any(self.home > self.upper):
            raise ValueError(f"{self.name}: home is outside the joint limits")

    @property
    def limits(self) -> JointLimits:
        return JointLimits(self.joints, self.lower, self.upper, self.velocity)


__all__ = ["ArmDescription", "JointLimits"]
