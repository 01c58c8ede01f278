"""Fast inverse kinematics for short pose sequences: damped Newton steps on
MuJoCo's own kinematics (``mj_kinematics`` + ``mj_jacSite``), no QP.

The policy turns every action chunk (8 TCP poses, millimetres to centimetres apart) into
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
        self.data = data = mujoco.MjData(model)
        joints = [model.joint(n).id for n in arm.joints]
        n = len(joints)
        self._qpos = _slice_if_contiguous([int(model.jnt_qposadr[j]) for j in joints])
        self._dofs = _slice_if_contiguous([int(model.jnt_dofadr[j]) for j in joints])
        site = model.site(arm.tcp_site).id
        # views into data, valid for its lifetime: no indexing per iteration
        self._xpos, self._xmat = data.site_xpos[site], data.site_xmat[site]
        self._site = site
        self._lower = np.asarray(arm.lower, dtype=float) + LIMIT_MARGIN
        self._upper = np.asarray(arm.upper, dtype=float) - LIMIT_MARGIN
        self._jacp, self._jacr = np.zeros((3, model.nv)), np.zeros((3, model.nv))
        self._weights = (np.array([1.0] * 3 + [orientation_weight] * 3) ** 2)[:, None]
        self._regular = (damping + posture_weight) * np.eye(n)
        self._posture = posture_weight
        self._quat, self._target_quat, self._error_quat = np.zeros(4), np.zeros(4), np.zeros(4)
        self._e = np.zeros(6)
        self._e_pos, self._e_rot = self._e[:3], self._e[3:]
        self._jac, self._jac_w = np.zeros((6, n)), np.zeros((6, n))
        self._hess, self._grad = np.zeros((n, n)), np.zeros(n)
        self._step, self._pull = np.zeros(n), np.zeros(n)
        self._last: np.ndarray | None = None  # the answer whose kinematics data holds

    def forward(self, q_arm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """TCP position and rotation matrix (copies) for arm joints ``q_arm``."""
        self._kinematics(np.asarray(q_arm, dtype=float))
        return self._xpos.copy(), self._xmat.reshape(3, 3).copy()

    def _kinematics(self, q_arm: np.ndarray) -> None:
        self._last = None
        self.data.qpos[self._qpos] = q_arm
        mujoco.mj_kinematics(self.model, self.data)

    def _error(self, position: np.ndarray) -> tuple[float, float]:
        """Fill ``self._e`` (position; rotation vector, world frame) from the
        TCP to the target; return the position and orientation error norms."""
        mujoco.mju_mat2Quat(self._quat, self._xmat)
        mujoco.mju_negQuat(self._quat, self._quat)
        mujoco.mju_mulQuat(self._error_quat, self._target_quat, self._quat)
        mujoco.mju_quat2Vel(self._e_rot, self._error_quat, 1.0)
        mujoco.mju_sub3(self._e_pos, position, self._xpos)
        return mujoco.mju_norm3(self._e_pos), mujoco.mju_norm3(self._e_rot)

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
        model, data, qpos, dofs = self.model, self.data, self._qpos, self._dofs
        jac, jac_w, hess, grad, step = self._jac, self._jac_w, self._hess, self._grad, self._step
        at_seed = self._last is not None and np.array_equal(q_seed, self._last)
        seed = q_seed if at_seed else np.minimum(np.maximum(q_seed, self._lower), self._upper)
        q = np.array(seed, dtype=float)
        for steps in range(max_iters + 1):
            if not (steps == 0 and at_seed):  # data holds the seed's kinematics already
                data.qpos[qpos] = q
                mujoco.mj_kinematics(model, data)
            pos_err, rot_err = self._error(position)
            if pos_err < pos_tol and rot_err < rot_tol:
                self._last = q.copy()
                return q, pos_err, rot_err, True
            if steps == max_iters:
                break
            mujoco.mj_comPos(model, data)
            mujoco.mj_jacSite(model, data, self._jacp, self._jacr, self._site)
            jac[:3], jac[3:] = self._jacp[:, dofs], self._jacr[:, dofs]
            np.multiply(jac, self._weights, out=jac_w)
            mujoco.mju_mulMatTMat(hess, jac_w, jac)  # J' W J
            hess += self._regular
            mujoco.mju_mulMatTVec(grad, jac_w, self._e)  # J' W e
            mujoco.mju_sub(self._pull, seed, q)
            mujoco.mju_addToScl(grad, self._pull, self._posture)
            mujoco.mju_cholFactor(hess, 0.0)
            mujoco.mju_cholSolve(step, hess, grad)
            q += step
            np.minimum(np.maximum(q, self._lower, out=q), self._upper, out=q)
        self._last = None
        return q, pos_err, rot_err, False


def _slice_if_contiguous(indices: list[int]) -> slice | np.ndarray:
    """A slice where the indices are consecutive (a view, no gather), else the array."""
    if indices == list(range(indices[0], indices[0] + len(indices))):
        return slice(indices[0], indices[0] + len(indices))
    return np.array(indices)


__all__ = ["NewtonIK"]
