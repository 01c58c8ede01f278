"""Remove the robot's own points: the Panda's collision primitives at the
current joint positions, inflated by a margin (ROS-free).

The arm is its one description, :func:`robot_memory.robot.arm_model.panda_arm_model`
(``sim/panda/panda.xml`` alone at the cell's robot base: the same model the
policy's IK and the safety filter use; no scene, no visual meshes), and only
forward kinematics runs, so it is the same on hardware as in simulation as
long as the primitives cover the real links (they are deliberately fat).
"""

from __future__ import annotations

from collections.abc import Mapping

import mujoco
import numpy as np

from robot_memory.robot.arm_model import panda_arm_model

_BOX = int(mujoco.mjtGeom.mjGEOM_BOX)
_CYLINDER = int(mujoco.mjtGeom.mjGEOM_CYLINDER)
_CAPSULE = int(mujoco.mjtGeom.mjGEOM_CAPSULE)
_SPHERE = int(mujoco.mjtGeom.mjGEOM_SPHERE)

#: Extra inflation [m] where the real links stick out of their primitives:
#: link7's flange reaches ~3 cm past its cylinder, the hand ~1 cm past its box.
BODY_PADDING = {"panda_link7": 0.025, "panda_hand": 0.01}


class RobotMask:
    """``mask(points, joint_positions)`` -> True where a point belongs to the robot.

    Joints missing from ``joint_positions`` keep their model default (0 for the
    arm; fingers closed), so always pass all 9 Panda joints when you have them.
    """

    def __init__(
        self, base_position: np.ndarray, base_quaternion: np.ndarray, margin: float = 0.02
    ) -> None:
        # the arm's one description (robot/arm_model.py), its base where the cell mounts it
        self.model = panda_arm_model(
            np.asarray(base_position, dtype=float), np.asarray(base_quaternion, dtype=float)
        )
        self.data = mujoco.MjData(self.model)
        self.margin = float(margin)
        self._qpos_adr: dict[str, int] = {}
        for j in range(self.model.njnt):
            name = mujoco.mj_id2name(self.model, mujoco.mjtObj.mjOBJ_JOINT, j)
            if name:
                self._qpos_adr[name] = int(self.model.jnt_qposadr[j])
        supported = {_BOX, _CYLINDER, _CAPSULE, _SPHERE}
        self._geoms = [g for g in range(self.model.ngeom) if self.model.geom_type[g] in supported]
        self._padding = []
        for g in self._geoms:
            body = mujoco.mj_id2name(
                self.model, mujoco.mjtObj.mjOBJ_BODY, int(self.model.geom_bodyid[g])
            )
            self._padding.append(BODY_PADDING.get(body or "", 0.0))

    @property
    def joint_names(self) -> tuple[str, ...]:
        return tuple(self._qpos_adr)

    def geom_poses(
        self, joint_positions: Mapping[str, float]
    ) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
        """(type, size, world position, world rotation) of every collision primitive."""
        self.data.qpos[:] = self.model.qpos0
        for name, value in joint_positions.items():
            adr = self._qpos_adr.get(name)
            if adr is not None:
                self.data.qpos[adr] = float(value)
        mujoco.mj_kinematics(self.model, self.data)
        poses = []
        for g in self._geoms:
            rot = self.data.geom_xmat[g].reshape(3, 3).copy()
            pos = self.data.geom_xpos[g].copy()
            poses.append((int(self.model.geom_type[g]), self.model.geom_size[g].copy(), pos, rot))
        return poses

    def mask(self, points: np.ndarray, joint_positions: Mapping[str, float]) -> np.ndarray:
        """Boolean (N,): points within ``margin`` of any collision primitive."""
        pts = np.asarray(points, dtype=float).reshape(-1, 3)
        hit = np.zeros(len(pts), dtype=bool)
        if len(pts) == 0:
            return hit
        poses = self.geom_poses(joint_positions)
        # One cheap pass: only points inside the whole robot's bounding box go on.
        reach = np.array(
            [
                self.model.geom_rbound[g] + self.margin + pad
                for g, pad in zip(self._geoms, self._padding, strict=True)
            ]
        )
        centres = np.array([pose[2] for pose in poses])
        lo, hi = (centres - reach[:, None]).min(axis=0), (centres + reach[:, None]).max(axis=0)
        candidates = np.flatnonzero(
            (pts[:, 0] >= lo[0])
            & (pts[:, 0] <= hi[0])
            & (pts[:, 1] >= lo[1])
            & (pts[:, 1] <= hi[1])
            & (pts[:, 2] >= lo[2])
            & (pts[:, 2] <= hi[2])
        )
        if candidates.size == 0:
            return hit
        full_hit, hit, pts = hit, np.zeros(candidates.size, dtype=bool), pts[candidates]
        for g, padding, (gtype, size, pos, rot) in zip(
            self._geoms, self._padding, poses, strict=True
        ):
            m = self.margin + padding
            bound = float(self.model.geom_rbound[g]) + m
            near = np.flatnonzero(np.sum((pts - pos) ** 2, axis=1) <= bound * bound)
            if near.size == 0:
                continue
            local = (pts[near] - pos) @ rot  # world -> geom frame
            if gtype == _BOX:
                inside = np.all(np.abs(local) <= size[:3] + m, axis=1)
            elif gtype == _CYLINDER:
                radial = np.hypot(local[:, 0], local[:, 1])
                inside = (radial <= size[0] + m) & (np.abs(local[:, 2]) <= size[1] + m)
            elif gtype == _CAPSULE:
                axial = np.clip(local[:, 2], -size[1], size[1])
                dist = np.linalg.norm(local - np.outer(axial, [0.0, 0.0, 1.0]), axis=1)
                inside = dist <= size[0] + m
            else:  # sphere
                inside = np.linalg.norm(local, axis=1) <= size[0] + m
            hit[near[inside]] = True
        full_hit[candidates] = hit
        return full_hit
