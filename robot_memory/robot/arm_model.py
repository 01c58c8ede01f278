"""An arm as a MuJoCo model on its own, placed where the cell mounts it:
what the deployed stack's kinematics (the policy's IK, the safety filter's FK)
compile, without the simulator's scene (table, objects, cameras).

The description is the one the simulator attaches to its cell
(``sim/panda/panda.xml``, a data file), so the arm the policy plans for and the
arm the sim moves are the same; the base pose is the cell's ``robot_base``
(``config/cell_*.json``; the tabletop cell's world is the table frame).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import mujoco
import numpy as np

from robot_memory.paths import sim_path
from robot_memory.robot.description import ArmDescription
from robot_memory.robot.panda import PANDA

#: The tabletop cell's robot_base (config/cell_tabletop.json, sim/cell/tabletop.xml).
TABLETOP_BASE_POSITION = (-0.45, 0.0, 0.0)
TABLETOP_BASE_QUATERNION = (1.0, 0.0, 0.0, 0.0)  # w, x, y, z


def arm_model(
    arm: ArmDescription,
    base_position: Sequence[float] = TABLETOP_BASE_POSITION,
    base_quaternion: Sequence[float] = TABLETOP_BASE_QUATERNION,
) -> mujoco.MjModel:
    """``arm``'s MJCF with its base body at ``base_position`` /
    ``base_quaternion`` (w, x, y, z) in the world frame (compiled once per pose)."""
    return _compile(arm, tuple(map(float, base_position)), tuple(map(float, base_quaternion)))


def panda_arm_model(
    base_position: Sequence[float] = TABLETOP_BASE_POSITION,
    base_quaternion: Sequence[float] = TABLETOP_BASE_QUATERNION,
) -> mujoco.MjModel:
    """The Panda (arm, hand, fingers, the ``tcp`` site), the arm the cell simulates."""
    return arm_model(PANDA, base_position, base_quaternion)


class TcpKinematics:
    """TCP positions of an arm model for rows of its joints (MuJoCo FK)."""

    def __init__(self, model: mujoco.MjModel, arm: ArmDescription = PANDA) -> None:
        self.model = model
        self.data = mujoco.MjData(model)
        self._qpos = np.array([model.jnt_qposadr[model.joint(n).id] for n in arm.joints])
        self._site = model.site(arm.tcp_site).id

    def positions(self, q_arm: np.ndarray) -> np.ndarray:
        out = np.empty((len(q_arm), 3))
        for i, q in enumerate(q_arm):
            self.data.qpos[self._qpos] = q
            mujoco.mj_kinematics(self.model, self.data)
            out[i] = self.data.site_xpos[self._site]
        return out


@lru_cache(maxsize=8)
def _compile(
    arm: ArmDescription, position: tuple[float, ...], quaternion: tuple[float, ...]
) -> mujoco.MjModel:
    spec = mujoco.MjSpec.from_file(str(sim_path(arm.mjcf)))
    base = spec.body(arm.base_body)
    if base is None:
        raise ValueError(f"{arm.mjcf}: no body {arm.base_body!r}")
    if any(base.pos) or list(base.quat) != [1.0, 0.0, 0.0, 0.0]:
        raise ValueError(f"{arm.mjcf}: {arm.base_body} must sit at its file's origin")
    base.pos, base.quat = list(position), list(quaternion)
    model = spec.compile()
    names = tuple(model.joint(j).name for j in range(model.njnt))
    missing = [j for j in arm.joints if j not in names]
    if missing:
        raise ValueError(f"{arm.mjcf}: joints {missing} of {arm.name} are not in the model")
    return model


__all__ = [
    "TABLETOP_BASE_POSITION",
    "TABLETOP_BASE_QUATERNION",
    "TcpKinematics",
    "arm_model",
    "panda_arm_model",
]
