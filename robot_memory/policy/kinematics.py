"""Panda TCP kinematics for the policy: forward kinematics of observations and
inverse kinematics of predicted TCP targets, warm-started point to point.

A chunk's IK runs every control cycle, so each pose is first solved by damped
Newton steps on MuJoCo's kinematics (:class:`~robot_memory.robot.ik_newton.NewtonIK`,
~0.05 ms a pose); a pose it does not converge on goes to mink
(:class:`~robot_memory.robot.ik.ArmIK`, joint limits as QP constraints).

The policy acts in the table frame on a top-down hand: a TCP position and a
hand yaw. Yaw 0 is the home pose's yaw (fingers closing along world y).
"""

from __future__ import annotations

import numpy as np

from robot_memory.robot.arm_model import panda_arm_model
from robot_memory.robot.ik import ArmIK, IKError, top_down_rotation
from robot_memory.robot.ik_newton import NewtonIK


def hand_yaw(rotation: np.ndarray) -> float:
    """Yaw of a top-down TCP rotation (inverse of :func:`top_down_rotation`)."""
    return float(np.arctan2(rotation[1, 0], rotation[0, 0]))


def top_down_quaternion(yaw: float | np.ndarray) -> np.ndarray:
    """:func:`top_down_rotation` as a quaternion (w, x, y, z): Rz(yaw) Rx(pi);
    one row per yaw for an array."""
    half = 0.5 * np.asarray(yaw, dtype=float)
    zero = np.zeros_like(half)
    return np.stack([zero, np.cos(half), np.sin(half), zero], axis=-1)


def wrap_angle(angle: np.ndarray | float) -> np.ndarray | float:
    return (np.asarray(angle) + np.pi) % (2 * np.pi) - np.pi


ROT_TOL = 1e-2  # [rad] a chunk pose's orientation tolerance
NEWTON_STEPS = 12  # Newton steps before a pose goes to mink


class ArmKinematics:
    """FK/IK on the simulator's own model (base pose and kinematics identical)."""

    def __init__(self) -> None:
        model = panda_arm_model()
        self.ik = ArmIK(model)  # mink: the fallback, and the look skill's solver
        self.newton = NewtonIK(model)
        self.newton_fallbacks = 0  # poses Newton did not converge on (mink solved them)

    def tcp_pose(self, q_arm: np.ndarray) -> tuple[np.ndarray, float]:
        """TCP position [m] and hand yaw [rad] for arm joints ``q_arm``."""
        position, rotation = self.newton.forward(np.asarray(q_arm, dtype=float))
        return position, hand_yaw(rotation)

    def tcp_poses(self, q_arm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Batched :meth:`tcp_pose` over rows of ``q_arm`` (n, 7)."""
        q_arm = np.atleast_2d(q_arm)
        out = [self.tcp_pose(q) for q in q_arm]
        return np.array([p for p, _ in out]), np.array([y for _, y in out])

    def joint_targets(
        self,
        q_start: np.ndarray,
        positions: np.ndarray,
        yaws: np.ndarray,
        pos_tol: float = 1e-3,
        reach_tolerance: float = 0.02,
        min_points: int | None = None,
    ) -> np.ndarray:
        """Arm joints for each TCP target (n, 3) / yaw (n,), each solve seeded by
        the previous one (so the chunk is a smooth joint path). A target missed
        by less than ``reach_tolerance`` [m] gets the closest pose (the policy's
        targets are approximate anyway); a farther one raises IKError, unless
        ``min_points`` targets were solved before it: then the chunk is cut
        there (the reachable prefix is returned)."""
        q = np.asarray(q_start, dtype=float)
        positions = np.asarray(positions, dtype=float)
        out = np.empty((len(positions), 7))
        quats = top_down_quaternion(np.asarray(yaws, dtype=float))
        for i, (p, yaw) in enumerate(zip(positions, yaws, strict=True)):
            solved, _, _, converged = self.newton.solve_quat(
                q, p, pos_tol, ROT_TOL, NEWTON_STEPS, quats[i]
            )
            if converged:
                q = out[i] = solved
                continue
            self.newton_fallbacks += 1
            try:
                q = self.ik.solve(
                    q, p, top_down_rotation(float(yaw)), pos_tol=pos_tol, rot_tol=ROT_TOL
                ).q
            except IKError as exc:
                if exc.result is None or exc.result.position_error > reach_tolerance:
                    if min_points is not None and i >= min_points:
                        return out[:i]
                    raise
                q = exc.result.q
            out[i] = q
        return out


__all__ = ["ArmKinematics", "IKError", "hand_yaw", "top_down_quaternion", "wrap_angle"]
