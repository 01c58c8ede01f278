"""What perception hands to memory, ROS-free: one camera frame's view and the
objects segmented in it.

These plain dataclasses are the contract between the perception core
(:mod:`robot_memory.perception`), the memory core (:mod:`robot_memory.memory`)
and their nodes, which carry them as JSON (``ObservationFrameMsg`` in
:mod:`robot_memory.schemas`) on ``/perception/observations``.

Conventions: world frame (REP 103, the table frame), metres, seconds;
quaternions (w, x, y, z); camera optical frames have x right, y down, z forward.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def quat_to_matrix(quat_wxyz: np.ndarray) -> np.ndarray:
    """Rotation matrix of a unit quaternion (w, x, y, z)."""
    w, x, y, z = np.asarray(quat_wxyz, dtype=float) / np.linalg.norm(quat_wxyz)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


@dataclass
class CameraView:
    """Where a camera was and what its depth saw, coarsely: enough for memory
    to decide whether a remembered object *should* have been visible
    (in the frustum, unoccluded, and depth shows free space there).

    ``depth`` is a downsampled metric depth image (0 = no return) whose pixel
    grid matches ``intrinsics`` (already scaled to the coarse resolution).
    """

    camera: str
    stamp: float
    intrinsics: np.ndarray  # 3x3 K of the coarse depth grid
    position: np.ndarray  # optical frame origin in the world [m]
    quaternion: np.ndarray  # optical frame orientation in the world (w, x, y, z)
    depth: np.ndarray  # (h, w) float32 metres, 0 where there was no return
    max_range: float = 2.0  # beyond this, depth evidence is not trusted [m]

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.depth.shape[0]), int(self.depth.shape[1])

    def rotation(self) -> np.ndarray:
        """Optical-to-world rotation."""
        return quat_to_matrix(self.quaternion)

    def project(self, points_world: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pixel columns, rows (float, coarse grid) and depth along the optical
        axis of ``points_world`` (N x 3). Points behind the camera get z <= 0."""
        pts = np.atleast_2d(np.asarray(points_world, dtype=float))
        cam = (pts - self.position) @ self.rotation()  # world -> optical: R^T p
        z = cam[:, 2]
        safe = np.where(z > 1e-6, z, 1e-6)
        u = self.intrinsics[0, 0] * cam[:, 0] / safe + self.intrinsics[0, 2]
        v = self.intrinsics[1, 1] * cam[:, 1] / safe + self.intrinsics[1, 2]
        return u, v, z

    def in_view(self, points_world: np.ndarray, margin_px: float = 1.0) -> np.ndarray:
        """Boolean mask: in front of the camera, inside the image (less a
        margin) and within ``max_range``."""
        u, v, z = self.project(points_world)
        h, w = self.shape
        return (
            (z > 0.05)
            & (z < self.max_range)
            & (u >= margin_px)
            & (u <= w - 1 - margin_px)
            & (v >= margin_px)
            & (v <= h - 1 - margin_px)
        )

    def depth_at(self, points_world: np.ndarray) -> np.ndarray:
        """Measured depth at each point's pixel (nearest pixel; NaN outside the
        image, 0 where the sensor had no return)."""
        u, v, _ = self.project(points_world)
        h, w = self.shape
        cols, rows = np.round(u).astype(int), np.round(v).astype(int)
        inside = (cols >= 0) & (cols < w) & (rows >= 0) & (rows < h)
        out = np.full(len(cols), np.nan)
        out[inside] = self.depth[rows[inside], cols[inside]]
        return out


@dataclass
class ObjectObservation:
    """One segmented object in one frame, in the world frame."""

    centroid: np.ndarray  # (3,) [m]
    bbox_min: np.ndarray  # (3,) axis-aligned box in the world [m]
    bbox_max: np.ndarray  # (3,)
    color: str  # colour word: "red", "blue", ...
    rgb: tuple[float, float, float]  # mean colour, 0..1
    shape: str  # shape cue: "cube", "cylinder", "sphere", "block", ...
    label: str  # words a person would use: "red cube"
    confidence: float  # 0..1, how sure perception is of this detection
    camera: str
    stamp: float
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))  # downsampled, capped
    n_points: int = 0  # points in the cluster before downsampling

    @property
    def size(self) -> np.ndarray:
        return self.bbox_max - self.bbox_min


@dataclass
class ObservationFrame:
    """Everything perception concluded from one camera frame."""

    view: CameraView
    objects: list[ObjectObservation]

    @property
    def stamp(self) -> float:
        return self.view.stamp

    @property
    def camera(self) -> str:
        return self.view.camera


# -- JSON (the /perception/observations payload) -------------------------------------
def _vec(a: np.ndarray) -> tuple[float, float, float]:
    return (float(a[0]), float(a[1]), float(a[2]))


def frame_to_payload(frame: ObservationFrame, max_points: int = 32):
    """:class:`ObservationFrame` -> ``ObservationFrameMsg`` (depth in integer mm)."""
    from robot_memory.schemas import CameraViewMsg, ObservationFrameMsg, ObservedObjectMsg

    view = frame.view
    depth_mm = np.clip(np.nan_to_num(view.depth, nan=0.0) * 1000.0, 0, 65535)
    objects = []
    for obj in frame.objects:
        pts = obj.points
        if len(pts) > max_points:
            pts = pts[np.linspace(0, len(pts) - 1, max_points).astype(int)]
        objects.append(
            ObservedObjectMsg(
                centroid=_vec(obj.centroid),
                bbox_min=_vec(obj.bbox_min),
                bbox_max=_vec(obj.bbox_max),
                color=obj.color,
                rgb=tuple(float(c) for c in obj.rgb),  # type: ignore[arg-type]
                shape=obj.shape,
                label=obj.label,
                confidence=float(np.clip(obj.confidence, 0.0, 1.0)),
                n_points=int(obj.n_points),
                points=[_vec(p) for p in pts],
            )
        )
    return ObservationFrameMsg(
        camera=view.camera,
        stamp=float(view.stamp),
        view=CameraViewMsg(
            intrinsics=tuple(float(v) for v in np.asarray(view.intrinsics).reshape(9)),
            position=_vec(view.position),
            quaternion=tuple(float(v) for v in view.quaternion),  # type: ignore[arg-type]
            depth_shape=(int(view.depth.shape[0]), int(view.depth.shape[1])),
            depth_mm=np.round(depth_mm).astype(np.int64).reshape(-1).tolist(),
            max_range=float(view.max_range),
        ),
        objects=objects,
    )


class FrameError(ValueError):
    """An observation payload that parses but does not make a usable frame."""


def frame_from_payload(msg) -> ObservationFrame:
    """``ObservationFrameMsg`` -> :class:`ObservationFrame`; raises :class:`FrameError`."""
    rows, cols = msg.view.depth_shape
    if rows <= 0 or cols <= 0 or len(msg.view.depth_mm) != rows * cols:
        raise FrameError(
            f"depth_mm has {len(msg.view.depth_mm)} values, depth_shape says {rows}x{cols}"
        )
    quat = np.array(msg.view.quaternion, dtype=float)
    if not 0.9 < np.linalg.norm(quat) < 1.1:
        raise FrameError(f"camera quaternion is not unit length (|q| = {np.linalg.norm(quat):.3f})")
    depth = np.asarray(msg.view.depth_mm, dtype=np.float32).reshape(rows, cols) / 1000.0
    view = CameraView(
        camera=msg.camera,
        stamp=msg.stamp,
        intrinsics=np.array(msg.view.intrinsics, dtype=float).reshape(3, 3),
        position=np.array(msg.view.position, dtype=float),
        quaternion=quat / np.linalg.norm(quat),
        depth=depth,
        max_range=msg.view.max_range,
    )
    objects = [
        ObjectObservation(
            centroid=np.array(o.centroid),
            bbox_min=np.array(o.bbox_min),
            bbox_max=np.array(o.bbox_max),
            color=o.color,
            rgb=o.rgb,
            shape=o.shape,
            label=o.label,
            confidence=o.confidence,
            camera=msg.camera,
            stamp=msg.stamp,
            points=np.array(o.points, dtype=float).reshape(-1, 3),
            n_points=o.n_points,
        )
        for o in msg.objects
    ]
    return ObservationFrame(view=view, objects=objects)
