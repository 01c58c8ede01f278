"""RGB-D rendering of the cell's cameras, with REP 103 optical frames."""

from __future__ import annotations

from collections.abc import Sequence

import mujoco
import numpy as np

from robot_memory.sim.depth_noise import DepthNoise
from robot_memory.sim.physics import CellPhysics

#: MuJoCo cameras look along -z with y up; optical frames look along +z with y down.
MJ_TO_OPTICAL = np.diag([1.0, -1.0, -1.0])
#: Depth beyond this is reported as "no return" (like a real sensor's range).
MAX_DEPTH_M = 6.0


def mj_camera_name(cam: str) -> str:
    return f"{cam}_camera"


class CameraRig:
    """Renders colour and metric depth for named cameras (``front``, ``wrist``).

    Create it in the thread that renders: the GL context belongs to that thread.
    Shadows and reflections are off (they cost 3-5x and sensors need neither).
    ``depth_noise``: what a RealSense-class camera would report instead of the
    perfect rendered depth (:mod:`robot_memory.sim.depth_noise`), drawn from
    ``seed``; None: perfect depth.
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        width: int,
        height: int,
        cameras: Sequence[str] = ("front", "wrist"),
        depth_noise: DepthNoise | None = None,
        seed: int = 0,
    ) -> None:
        if width <= 0 or height <= 0:
            raise ValueError(f"image size must be positive, got {width}x{height}")
        self.model, self.width, self.height = model, width, height
        self.depth_noise, self._noise_rng = depth_noise, np.random.default_rng(seed)
        self.ids: dict[str, int] = {}
        for cam in cameras:
            cam_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, mj_camera_name(cam))
            if cam_id < 0:
                raise ValueError(
                    f"no camera {cam!r} in the model (MJCF name {mj_camera_name(cam)})"
                )
            self.ids[cam] = cam_id
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, height)
        self._renderer = mujoco.Renderer(model, height, width)
        self._depth = mujoco.Renderer(model, height, width)
        self._depth.enable_depth_rendering()
        for r in (self._renderer, self._depth):
            r.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
            r.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False
            r.scene.flags[mujoco.mjtRndFlag.mjRND_SKYBOX] = False

    def reseed_noise(self, seed: int) -> None:
        """Draw the depth noise from ``seed`` again (an evaluation episode's frames
        then depend on its seed alone, not on the episodes before it)."""
        self._noise_rng = np.random.default_rng(seed)

    def render(self, physics: CellPhysics, cam: str) -> tuple[np.ndarray, np.ndarray]:
        """Colour (HxWx3 uint8) and depth along the optical axis (HxW float32, m;
        0 where nothing is within range)."""
        cam_id = self._id(cam)
        physics.sync_kinematics()
        self._renderer.update_scene(physics.data, camera=cam_id)
        rgb = self._renderer.render().copy()
        self._depth.update_scene(physics.data, camera=cam_id)
        depth = self._depth.render().astype(np.float32)
        depth[(depth >= MAX_DEPTH_M) | ~np.isfinite(depth)] = 0.0
        if self.depth_noise is not None:
            focal = float(self.intrinsics(cam)[0, 0])
            depth = self.depth_noise.apply(depth, focal, self._noise_rng, rgb)
        return rgb, depth

    def intrinsics(self, cam: str) -> np.ndarray:
        """Pinhole K from the vertical field of view (square pixels, centred)."""
        fovy = np.radians(self.model.cam_fovy[self._id(cam)])
        f = 0.5 * self.height / np.tan(fovy / 2.0)
        return np.array(
            [[f, 0.0, (self.width - 1) / 2.0], [0.0, f, (self.height - 1) / 2.0], [0.0, 0.0, 1.0]]
        )

    def optical_pose(self, physics: CellPhysics, cam: str) -> tuple[np.ndarray, np.ndarray]:
        """Position and quaternion (w, x, y, z) of the optical frame in the world."""
        cam_id = self._id(cam)
        physics.sync_kinematics()
        rot = physics.data.cam_xmat[cam_id].reshape(3, 3) @ MJ_TO_OPTICAL
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, rot.reshape(9))
        return physics.data.cam_xpos[cam_id].copy(), quat

    def _id(self, cam: str) -> int:
        if cam not in self.ids:
            raise ValueError(f"camera {cam!r} is not in this rig; it has {sorted(self.ids)}")
        return self.ids[cam]

    def close(self) -> None:
        self._renderer.close()
        self._depth.close()
