"""Fast inverse kinematics for short pose sequences: damped Newton steps on
MuJoCo's own kinematics (``mj_kinematics`` + ``mj_jacSite``), no QP.

The policy turns every action chunk (8 TCP poses a few millimetres apart) into
joints. mink (:class:`~robot_memory.robot.ik.ArmIK`) solves each pose as a
sequence of QPs, which costs ~0.15 ms of Python per iteration; here one
iteration is a handful of C calls and a 7x7 solve. Each step minimises

    |W (J dq - e)|^2 + damping |dq|^2 + posture |q + dq - q_seed|^2

(the same costs as ArmIK: position 1, orientation 0.5, a weak pull to the
seed), then clips to the joint limits. It converges in 1-3 steps from a warm
start. When it does not (a pose at the edge of reach, a joint pinned at its
limit), the caller falls back to mink, which handles limits as constraints.
"""

from __future__ import annotations

import mujoco
import numpy as np

from robot_memory.robot.description import ArmDescription
from robot_memory.robot.panda import PANDA

LIMIT_MARGIN = 1e-4  # [rad] kept from the joint limits, as ArmIK does


class NewtonIK:
    """Damped Newton IK of the arm's TCP site on a MuJoCo model of the arm."""

    def __init__(
        self,
        model: mujoco.MjModel,
        arm: ArmDescription = PANDA,
        orientation_weight: float = 0.5,
        damping: float = 1e-4,
        posture_weight: float = 1e-4,
    ) -> None:
        self.model, self.arm = model, arm
        self.data = mujoco.MjData(model)
        joints = [model.joint(n).id for n in arm.joints]
        self._qpos = np.array([model.jnt_qposadr[j] for j in joints])
        dofs = [int(model.jnt_dofadr[j]) for j in joints]
        contiguous = dofs == list(range(dofs[0], dofs[0] + len(dofs)))
        self._dofs = slice(dofs[0], dofs[0] + len(dofs)) if contiguous else np.array(dofs)
        self._site = model.site(arm.tcp_site).id
        self._lower = np.asarray(arm.lower, dtype=float) + LIMIT_MARGIN
        self._upper = np.asarray(arm.upper, dtype=float) - LIMIT_MARGIN
        self._jacp = np.zeros((3, model.nv))
        self._jacr = np.zeros((3, model.nv))
        self._weights = np.array([1.0] * 3 + [orientation_weight] * 3) ** 2
        self._regular = (damping + posture_weight) * np.eye(len(joints))
        self._posture = posture_weight
        self._quat = np.zeros(4)
        self._target_quat = np.zeros(4)
        self._error_quat = np.zeros(4)
        self._rotvec = np.zeros(3)
        self._last: np.ndarray | None = None  # the answer whose kinematics data holds
        n = len(joints)
        self._e, self._jac = np.zeros(6), np.zeros((6, n))
        self._hess, self._grad, self._step = np.zeros((n, n)), np.zeros(n), np.zeros(n)

    def forward(self, q_arm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """TCP position and rotation matrix (copies) for arm joints ``q_arm``."""
        self._kinematics(np.asarray(q_arm, dtype=float))
        d = self.data
        return d.site_xpos[self._site].copy(), d.site_xmat[self._site].reshape(3, 3).copy()

    def _kinematics(self, q_arm: np.ndarray) -> None:
        self._last = None
        self.data.qpos[self._qpos] = q_arm
        mujoco.mj_kinematics(self.model, self.data)

    def _error(self, position: np.ndarray) -> tuple[float, float]:
        """Fill ``self._e`` (position; rotation vector, world frame) from the
        TCP to the target; return the position and orientation error norms."""
        d, e = self.data, self._e
        mujoco.mju_mat2Quat(self._quat, d.site_xmat[self._site])
        mujoco.mju_negQuat(self._quat, self._quat)
        mujoco.mju_mulQuat(self._error_quat, self._target_quat, self._quat)
        mujoco.mju_quat2Vel(self._rotvec, self._error_quat, 1.0)
        np.subtract(position, d.site_xpos[self._site], out=e[:3])
        e[3:] = self._rotvec
        return mujoco.mju_norm3(e[:3]), mujoco.mju_norm3(self._rotvec)

    def solve(
        self,
        q_seed: np.ndarray,
        position: np.ndarray,
        rotation: np.ndarray,
        pos_tol: float = 5e-4,
        rot_tol: float = 5e-3,
        max_iters: int = 12,
    ) -> tuple[np.ndarray, float, float, bool]:
        """``(q, position error [m], orientation error [rad], converged)``
        from ``q_seed`` towards the TCP pose ``position`` / ``rotation``."""
        mujoco.mju_mat2Quat(self._target_quat, np.asarray(rotation, dtype=float).reshape(9))
        return self.solve_quat(
            q_seed, np.asarray(position, dtype=float), pos_tol, rot_tol, max_iters
        )

    def solve_quat(
        self,
        q_seed: np.ndarray,
        position: np.ndarray,
        pos_tol: float,
        rot_tol: float,
        max_iters: int,
        target_quat: np.ndarray | None = None,
    ) -> tuple[np.ndarray, float, float, bool]:
        """:meth:`solve` with the target rotation as a quaternion (w, x, y, z);
        None keeps the one :meth:`solve` set. Chained along a path (each seed
        the previous call's answer), the kinematics of the seed are reused."""
        if target_quat is not None:
            self._target_quat[:] = target_quat
        model, data, hess, grad = self.model, self.data, self._hess, self._grad
        jac, jacp, jacr, dofs = self._jac, self._jacp, self._jacr, self._dofs
        at_seed = self._last is not None and np.array_equal(q_seed, self._last)
        seed = q_seed if at_seed else np.minimum(np.maximum(q_seed, self._lower), self._upper)
        q = seed.copy()
        for steps in range(max_iters + 1):
            if not (steps == 0 and at_seed):  # data holds the seed's kinematics already
                data.qpos[self._qpos] = q
                mujoco.mj_kinematics(model, data)
            pos_err, rot_err = self._error(position)
            if pos_err < pos_tol and rot_err < rot_tol:
                self._last = q.copy()
                return q, pos_err, rot_err, True
            if steps == max_iters:
                break
            mujoco.mj_comPos(model, data)
            mujoco.mj_jacSite(model, data, jacp, jacr, self._site)
            jac[:3] = jacp[:, dofs]
            jac[3:] = jacr[:, dofs]
            jw = jac.T * self._weights
            np.matmul(jw, jac, out=hess)
            hess += self._regular
            np.matmul(jw, self._e, out=grad)
            grad += self._posture * (seed - q)
            mujoco.mju_cholFactor(hess, 0.0)
            mujoco.mju_cholSolve(self._step, hess, grad)
            q += self._step
            np.minimum(np.maximum(q, self._lower, out=q), self._upper, out=q)
        self._last = None
        return q, pos_err, rot_err, False


__all__ = ["NewtonIK"]
