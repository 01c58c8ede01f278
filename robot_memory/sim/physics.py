"""Accessors over MjModel/MjData for the Panda cell (dm_control-style Physics).

Poses (``tcp_pose``, ``body_pose``, the cameras) are always those of the
current ``qpos``: ``mj_step`` leaves the kinematics one step behind, so the
accessors refresh them on demand (cheap, and it does not change the
trajectory: every step recomputes them anyway).
"""

from __future__ import annotations

import mujoco
import numpy as np

from robot_memory.robot.panda import (
    ALL_JOINTS,
    ARM_JOINTS,
    ARM_LOWER,
    ARM_UPPER,
    FINGER_JOINTS,
    GRIPPER_MAX_WIDTH,
    GRIPPER_MIN_WIDTH,
)


class CellPhysics:
    """``step(n)`` advances ``n`` control steps of ``n_substeps`` physics steps each."""

    def __init__(self, model: mujoco.MjModel, n_substeps: int = 1) -> None:
        if n_substeps < 1:
            raise ValueError(f"n_substeps must be >= 1, got {n_substeps}")
        self.model = model
        self.data = mujoco.MjData(model)
        self.n_substeps = n_substeps
        self._stale = False
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
        """Physics step [s]."""
        return float(self.model.opt.timestep)

    @property
    def control_dt(self) -> float:
        """Duration of one ``step()`` [s]."""
        return self.timestep * self.n_substeps

    def reset_to_keyframe(self, name: str = "home") -> None:
        key = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_KEY, name)
        if key < 0:
            raise ValueError(f"no keyframe {name!r} in the model")
        mujoco.mj_resetDataKeyframe(self.model, self.data, key)
        self.forward()

    def step(self, n: int = 1) -> None:
        if n > 0:
            mujoco.mj_step(self.model, self.data, nstep=n * self.n_substeps)
            self._stale = True

    def forward(self) -> None:
        """Recompute everything derived from the state (after editing qpos/qvel)."""
        mujoco.mj_forward(self.model, self.data)
        self._stale = False

    def sync_kinematics(self) -> None:
        """Bring body, site and camera poses up to date with ``qpos``."""
        if self._stale:
            mujoco.mj_kinematics(self.model, self.data)
            mujoco.mj_comPos(self.model, self.data)
            mujoco.mj_camlight(self.model, self.data)
            self._stale = False

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
        """Position targets for joints 1..7 [rad], clipped to the joint limits."""
        q = np.asarray(q, dtype=float)
        if q.shape != (7,) or not np.all(np.isfinite(q)):
            raise ValueError(f"arm command must be 7 finite joint positions, got {q!r}")
        self.data.ctrl[self._arm_act] = np.clip(q, ARM_LOWER, ARM_UPPER)

    def set_gripper_command(self, width: float) -> None:
        """Finger opening [m], clipped to [0, 0.08]; the grip force is limited."""
        if not np.isfinite(width):
            raise ValueError(f"gripper width must be finite, got {width}")
        width = float(np.clip(width, GRIPPER_MIN_WIDTH, GRIPPER_MAX_WIDTH))
        self.data.ctrl[self._finger_act] = width / 2.0

    def tcp_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """TCP position and orientation (quaternion w, x, y, z) in the world."""
        self.sync_kinematics()
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, self.data.site_xmat[self._tcp])
        return self.data.site_xpos[self._tcp].copy(), quat

    def body_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        body = self.model.body(name).id
        self.sync_kinematics()
        return self.data.xpos[body].copy(), self.data.xquat[body].copy()

    def warnings(self) -> dict[str, int]:
        """MuJoCo warnings raised so far (instability, contact overflow, ...)."""
        out = {}
        for i, w in enumerate(self.data.warning):
            if w.number:
                out[mujoco.mjtWarning(i).name] = int(w.number)
        return out
