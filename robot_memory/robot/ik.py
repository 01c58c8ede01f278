"""Inverse kinematics for an arm's TCP with mink (differential IK, QP-based).

The solver works on the MuJoCo model it is given: the arm's own
(:func:`robot_memory.robot.arm_model.arm_model`) on a robot, or the
simulator's scene, whose base pose and kinematics are the same; every degree
of freedom that is not one of the arm's joints (objects' free joints, fingers)
is frozen. The arm is an :class:`~robot_memory.robot.description.ArmDescription`
(default the Panda).
"""

from __future__ import annotations

from dataclasses import dataclass

import mink
import mujoco
import numpy as np

from robot_memory.robot.description import ArmDescription
from robot_memory.robot.panda import PANDA


class IKError(RuntimeError):
    """No joint configuration reaches the requested pose closely enough.
    ``result`` holds the solver's closest configuration (None if unknown)."""

    def __init__(self, message: str, result: IKResult | None = None) -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class IKResult:
    q: np.ndarray  # the arm's joints, in its description's order
    position_error: float  # [m]
    orientation_error: float  # [rad]


def top_down_rotation(yaw: float) -> np.ndarray:
    """Rotation (3x3) of a TCP pointing straight down, fingers closing along
    the horizontal axis at angle ``yaw + pi/2``."""
    c, s = np.cos(yaw), np.sin(yaw)
    rz = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    rx_pi = np.diag([1.0, -1.0, -1.0])
    return rz @ rx_pi


class ArmIK:
    def __init__(self, model: mujoco.MjModel, arm: ArmDescription = PANDA) -> None:
        self.model, self.arm = model, arm
        self.configuration = mink.Configuration(model)
        self._arm_qpos = np.array([model.jnt_qposadr[model.joint(n).id] for n in arm.joints])
        arm_dofs = {int(model.jnt_dofadr[model.joint(n).id]) for n in arm.joints}
        frozen = [d for d in range(model.nv) if d not in arm_dofs]
        self.tcp_task = mink.FrameTask(
            arm.tcp_site, "site", position_cost=1.0, orientation_cost=0.5, lm_damping=1e-6
        )
        self.posture_task = mink.PostureTask(model, cost=1e-3)
        self.constraints = [mink.DofFreezingTask(model, dof_indices=frozen)] if frozen else []
        self.limits = [mink.ConfigurationLimit(model)]

    def forward(self, q_arm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """TCP position and rotation matrix for arm joints ``q_arm``."""
        self._set_arm(q_arm)
        pose = self.configuration.get_transform_frame_to_world(self.arm.tcp_site, "site")
        return pose.translation(), pose.rotation().as_matrix()

    def _set_arm(self, q_arm: np.ndarray) -> None:
        q = self.configuration.q.copy()
        q[self._arm_qpos] = np.clip(q_arm, self.arm.lower + 1e-4, self.arm.upper - 1e-4)
        self.configuration.update(q)

    def solve(
        self,
        q_seed: np.ndarray,
        position: np.ndarray,
        rotation: np.ndarray,
        max_iters: int = 300,
        pos_tol: float = 5e-4,
        rot_tol: float = 5e-3,
        dt: float = 0.05,
    ) -> IKResult:
        """Arm joints that put the TCP at ``position`` with ``rotation``,
        starting from ``q_seed`` (so the solution stays near it)."""
        self._set_arm(q_seed)
        target = mink.SE3.from_rotation_and_translation(
            mink.SO3.from_matrix(np.asarray(rotation)), np.asarray(position, dtype=float)
        )
        self.tcp_task.set_target(target)
        self.posture_task.set_target_from_configuration(self.configuration)
        tasks = [self.tcp_task, self.posture_task]
        for _ in range(max_iters):
            err = self.tcp_task.compute_error(self.configuration)
            if np.linalg.norm(err[:3]) < pos_tol and np.linalg.norm(err[3:]) < rot_tol:
                break
            vel = mink.solve_ik(
                self.configuration,
                tasks,
                dt,
                solver="daqp",
                damping=1e-3,
                limits=self.limits,
                constraints=self.constraints,
            )
            self.configuration.integrate_inplace(vel, dt)
        err = self.tcp_task.compute_error(self.configuration)
        result = IKResult(
            q=self.configuration.q[self._arm_qpos].copy(),
            position_error=float(np.linalg.norm(err[:3])),
            orientation_error=float(np.linalg.norm(err[3:])),
        )
        if result.position_error > 5 * pos_tol or result.orientation_error > 10 * rot_tol:
            mm, deg = result.position_error * 1e3, np.degrees(result.orientation_error)
            raise IKError(
                f"pose {np.round(position, 3).tolist()} not reached: {mm:.1f} mm, {deg:.1f} deg",
                result,
            )
        return result
