"""Inverse kinematics for the Panda's TCP with mink (differential IK, QP-based).

The solver works on the scene model itself so the base pose and kinematics are
exactly the simulator's; every degree of freedom that is not an arm joint
(objects' free joints, fingers) is frozen.
"""

from __future__ import annotations

from dataclasses import dataclass

import mink
import mujoco
import numpy as np

from robot_memory.robot.panda import ARM_JOINTS, ARM_LOWER, ARM_UPPER

TCP_SITE = "tcp"


class IKError(RuntimeError):
    """No joint configuration reaches the requested pose closely enough.
    ``result`` holds the solver's closest configuration (None if unknown)."""

    def __init__(self, message: str, result: IKResult | None = None) -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class IKResult:
    q: np.ndarray  # arm joints 1..7
    position_error: float  # [m]
    orientation_error: float  # [rad]


def top_down_rotation(yaw: float) -> np.ndarray:
    """Rotation (3x3) of a TCP pointing straight down, fingers closing along
    the horizontal axis at angle ``yaw + pi/2``."""
    c, s = np.cos(yaw), np.sin(yaw)
    rz = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    rx_pi = np.diag([1.0, -1.0, -1.0])
    return rz @ rx_pi


class PandaIK:
    def __init__(self, model: mujoco.MjModel, tcp_site: str = TCP_SITE) -> None:
        self.model = model
        self.configuration = mink.Configuration(model)
        self._arm_qpos = np.array([model.jnt_qposadr[model.joint(n).id] for n in ARM_JOINTS])
        arm_dofs = {int(model.jnt_dofadr[model.joint(n).id]) for n in ARM_JOINTS}
        frozen = [d for d in range(model.nv) if d not in arm_dofs]
        self.tcp_task = mink.FrameTask(
            tcp_site, "site", position_cost=1.0, orientation_cost=0.5, lm_damping=1e-6
        )
        self.posture_task = mink.PostureTask(model, cost=1e-3)
        self.constraints = [mink.DofFreezingTask(model, dof_indices=frozen)] if frozen else []
        self.limits = [mink.ConfigurationLimit(model)]

    def forward(self, q_arm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """TCP position and rotation matrix for arm joints ``q_arm``."""
        self._set_arm(q_arm)
        pose = self.configuration.get_transform_frame_to_world(TCP_SITE, "site")
        return pose.translation(), pose.rotation().as_matrix()

    def _set_arm(self, q_arm: np.ndarray) -> None:
        q = self.configuration.q.copy()
        q[self._arm_qpos] = np.clip(q_arm, ARM_LOWER + 1e-4, ARM_UPPER - 1e-4)
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
