"""The cell's coordinate frames as tf2 would publish them (ROS-free).

:class:`CellFrames` reads MuJoCo body and camera poses and returns
``parent <- child`` transforms (REP 103 / 105):

* static (``/tf_static``): ``world -> panda_link0`` (the robot base in the cell)
  and each camera's optical frame ``<cam>_color_optical_frame`` (x right, y down,
  z forward) under the body it is mounted on: ``world`` for the front camera
  on its post, ``panda_hand`` for the wrist camera;
* dynamic (``/tf``): ``panda_link0 -> panda_link1 -> ... -> panda_link7 ->
  panda_hand``, each relative to its parent, from the bodies' world poses.

Link names: the MJCF (``sim/panda/panda.xml``, the project's own model; the
kitchen_franka package only lends it meshes) already names its bodies
``panda_link0..7`` and ``panda_hand`` like franka_description's URDF for
``arm_id:=panda``, so the mapping is the identity for ``arm_id="panda"``; another
``arm_id`` (``fr3``) renames them ``<arm_id>_link<i>`` / ``<arm_id>_hand``.
franka_description also has a fixed ``panda_link8`` (flange, 0.107 m along
link7's z) between link7 and the hand; the MJCF folds it into the hand's
offset, so here the hand's parent is link7 and the composed pose is the same.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import mujoco
import numpy as np

from robot_memory.sim.cameras import mj_camera_name
from robot_memory.sim.depth_noise import miscalibrated_pose

#: MJCF body of each published link, base first; each one's parent is the one before.
MJCF_LINKS: tuple[str, ...] = tuple(f"panda_link{i}" for i in range(8)) + ("panda_hand",)
#: A MuJoCo camera looks along -z with y up; rotating it by pi about x gives the
#: optical frame (z forward, y down): the quaternion (w, x, y, z) of that turn.
MJ_TO_OPTICAL_QUAT = np.array([0.0, 1.0, 0.0, 0.0])


def optical_frame(cam: str) -> str:
    """The optical frame of camera ``cam`` (realsense2_camera's name for it)."""
    return f"{cam}_color_optical_frame"


@dataclass(frozen=True)
class FrameTransform:
    """``parent <- child``: a point p in ``child`` is ``R(rotation) p + translation``
    in ``parent``; rotation is a unit quaternion (w, x, y, z)."""

    parent: str
    child: str
    translation: np.ndarray
    rotation: np.ndarray

    def same_as(self, other: FrameTransform, tol: float = 1e-9) -> bool:
        return (
            (self.parent, self.child) == (other.parent, other.child)
            and bool(np.allclose(self.translation, other.translation, atol=tol))
            and bool(np.allclose(self.rotation, other.rotation, atol=tol))
        )


def _relative(
    parent_pos: np.ndarray, parent_quat: np.ndarray, pos: np.ndarray, quat: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The pose (pos, quat) given in the world, expressed in the parent's frame
    (MuJoCo's C pose algebra: a tenth of the time of the same in numpy)."""
    inv_pos, inv_quat, out_pos, out_quat = np.empty(3), np.empty(4), np.empty(3), np.empty(4)
    mujoco.mju_negPose(inv_pos, inv_quat, parent_pos, parent_quat)
    mujoco.mju_mulPose(out_pos, out_quat, inv_pos, inv_quat, pos, quat)
    return out_pos, out_quat


def _miscalibrated(
    position: np.ndarray, quat: np.ndarray, error_mm: float, error_deg: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    matrix = np.empty(9)
    mujoco.mju_quat2Mat(matrix, quat / np.linalg.norm(quat))
    pos, rot = miscalibrated_pose(position, matrix.reshape(3, 3), error_mm * 1e-3, error_deg, rng)
    out = np.empty(4)
    mujoco.mju_mat2Quat(out, rot.reshape(9))
    return pos, out


class CellFrames:
    """Frame names and transforms of the simulated cell for ``cameras``.

    ``calibration_error`` (mm, degrees): the published camera mounts are off by
    that much (a fixed translation and rotation per camera, drawn from
    ``seed``), as a real cell's extrinsic calibration is; images are still
    rendered from the true cameras.

    Raises ValueError when the model lacks a link or a camera, a camera moves
    relative to its body (MuJoCo tracking modes) or hangs on a body whose
    frame is not published.
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        cameras: Sequence[str],
        world_frame: str = "world",
        arm_id: str = "panda",
        calibration_error: tuple[float, float] = (0.0, 0.0),
        seed: int = 0,
    ) -> None:
        if not world_frame or not arm_id:
            raise ValueError("world_frame and arm_id must not be empty")
        self.world_frame = world_frame
        names = [f"{arm_id}_link{i}" for i in range(8)] + [f"{arm_id}_hand"]
        self.link_frames: tuple[str, ...] = tuple(names)
        self._bodies = []
        for mj_name in MJCF_LINKS:
            body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, mj_name)
            if body < 0:
                raise ValueError(f"no body {mj_name!r} in the model")
            self._bodies.append(body)
        for parent, child in itertools.pairwise(self._bodies):
            if model.body_parentid[child] != parent:
                raise ValueError(f"body {model.body(child).name} is not a child of the link before")
        if model.body_weldid[self._bodies[0]] != 0:
            raise ValueError("the robot base moves: world -> base cannot be static")
        frame_of_body = {0: world_frame} | dict(zip(self._bodies, names, strict=True))
        rng = np.random.default_rng(seed)
        self._cameras: list[FrameTransform] = []
        for cam in cameras:
            cam_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, mj_camera_name(cam))
            if cam_id < 0:
                raise ValueError(f"no camera {cam!r} in the model")
            if model.cam_mode[cam_id] != mujoco.mjtCamLight.mjCAMLIGHT_FIXED:
                raise ValueError(f"camera {cam!r} is not fixed to its body")
            body = int(model.cam_bodyid[cam_id])
            if body not in frame_of_body:
                raise ValueError(f"camera {cam!r} is mounted on unpublished body {body}")
            rotation = np.empty(4)
            mujoco.mju_mulQuat(rotation, model.cam_quat[cam_id].copy(), MJ_TO_OPTICAL_QUAT)
            position = model.cam_pos[cam_id].copy()
            if any(calibration_error):  # the mount the cell believes, off by a fixed error
                position, rotation = _miscalibrated(position, rotation, *calibration_error, rng)
            self._cameras.append(
                FrameTransform(
                    frame_of_body[body],
                    optical_frame(cam),
                    position,
                    rotation / np.linalg.norm(rotation),
                )
            )

    @property
    def base_frame(self) -> str:
        return self.link_frames[0]

    @property
    def camera_mounts(self) -> tuple[FrameTransform, ...]:
        """Each camera's optical frame under its body, as published (with the
        calibration error, when there is one)."""
        return tuple(self._cameras)

    def static(self, data: mujoco.MjData) -> list[FrameTransform]:
        """``world -> base`` and the camera mounts (kinematics must be current)."""
        pos, quat = self._pose(data, self._bodies[0])
        return [FrameTransform(self.world_frame, self.base_frame, pos, quat), *self._cameras]

    def dynamic(self, data: mujoco.MjData) -> list[FrameTransform]:
        """Each link relative to the one before (kinematics must be current)."""
        out = []
        for i in range(1, len(self._bodies)):
            pos, quat = _relative(
                *self._pose(data, self._bodies[i - 1]), *self._pose(data, self._bodies[i])
            )
            out.append(FrameTransform(self.link_frames[i - 1], self.link_frames[i], pos, quat))
        return out

    @staticmethod
    def _pose(data: mujoco.MjData, body: int) -> tuple[np.ndarray, np.ndarray]:
        return data.xpos[body].copy(), data.xquat[body].copy()
