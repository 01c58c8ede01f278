"""Accessors over MjModel/MjData for the Panda cell (dm_control-style Physics)."""

from __future__ import annotations

import mujoco
import numpy as np

from robot_memory.robot.panda import (
    ALL_JOINTS,
    ARM_JOINTS,
    FINGER_JOINTS,
    GRIPPER_MAX_WIDTH,
    GRIPPER_MIN_WIDTH,
)


class CellPhysics:
    def __init__(self, model: mujoco.MjModel) -> None:
        self.model = model
        self.data = mujoco.MjData(model)
        self._qpos = np.array([model.jnt_qposadr[model.joint(n).id] for n in ALL_JOINTS])
        self._qvel = np.array([model.jnt_dofadr[model.joint(n).id] for n in ALL_JOINTS])
        self._arm_act = np.array([model.actuator(n).id for n in ARM_JOINTS])
        self._finger_act = np.array([model.actuator(n).id for n in FINGER_JOINTS])
        self._tcp = model.site("tcp").id
        self.reset_to_keyframe("home")

    @property
    def time(self) -> float:
        return float(self.data.time)

    @property
    def timestep(self) -> float:
        return float(self.model.opt.timestep)

    def reset_to_keyframe(self, name: str = "home") -> None:
        mujoco.mj_resetDataKeyframe(self.model, self.data, self.model.key(name).id)
        mujoco.mj_forward(self.model, self.data)

    def step(self, n: int = 1) -> None:
        mujoco.mj_step(self.model, self.data, nstep=n)

    def forward(self) -> None:
        mujoco.mj_forward(self.model, self.data)

    def arm_qpos(self) -> np.ndarray:
        return self.data.qpos[self._qpos[:7]].copy()

    def arm_qvel(self) -> np.ndarray:
        return self.data.qvel[self._qvel[:7]].copy()

    def gripper_width(self) -> float:
        return float(np.sum(self.data.qpos[self._qpos[7:]]))

    def joint_state(self) -> tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray]:
        """Names, positions, velocities and efforts of the 9 Panda joints."""
        effort = self.data.qfrc_actuator[self._qvel] + self.data.qfrc_gravcomp[self._qvel]
        return (
            ALL_JOINTS,
            self.data.qpos[self._qpos].copy(),
            self.data.qvel[self._qvel].copy(),
            effort,
        )

    def set_arm_command(self, q: np.ndarray) -> None:
        self.data.ctrl[self._arm_act] = q

    def set_gripper_command(self, width: float) -> None:
        width = float(np.clip(width, GRIPPER_MIN_WIDTH, GRIPPER_MAX_WIDTH))
        self.data.ctrl[self._finger_act] = width / 2.0

    def tcp_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """TCP position and orientation (quaternion w, x, y, z) in the world."""
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, self.data.site_xmat[self._tcp])
        return self.data.site_xpos[self._tcp].copy(), quat

    def body_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        body = self.model.body(name).id
        return self.data.xpos[body].copy(), self.data.xquat[body].copy()

    def warnings(self) -> dict[str, int]:
        """MuJoCo warnings raised so far (instability, contact overflow, ...)."""
        out = {}
        for i, w in enumerate(self.data.warning):
            if w.number:
                out[mujoco.mjtWarning(i).name] = int(w.number)
        return out
