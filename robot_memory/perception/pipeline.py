"""RGB-D + camera_info + camera pose (+ joint positions) -> objects in the world
frame (ROS-free). No simulator segmentation: geometry and colour only, so the
same code runs on real cameras."""

from __future__ import annotations

import time
from collections.abc import Mapping

import cv2
import numpy as np
import open3d as o3d

from robot_memory.cell import CellConfig, load_cell
from robot_memory.perception.appearance import color_name
from robot_memory.perception.config import PerceptionConfig
from robot_memory.perception.image_decoding import PerceptionInputError
from robot_memory.perception.instances import split_by_colour, split_touching, voxel_hues
from robot_memory.perception.labelling.base import UNKNOWN, Labeller, ObjectCrop, crop_image
from robot_memory.perception.labelling.feature_labeller import FeatureLabeller
from robot_memory.perception.observations import (
    CameraView,
    ObjectObservation,
    ObservationFrame,
    quat_to_matrix,
)
from robot_memory.perception.robot_mask import RobotMask
from robot_memory.perception.segmentation import (
    PointSet,
    SupportPlane,
    backproject,
    cluster_voxels,
    coarse_depth,
    crop_to_cell,
    fit_support_plane,
    voxelize,
)
from robot_memory.perception.thin_parts import join_sticks

#: Fixtures at most this thick count as floors objects can rest on (the bin floor).
FLOOR_MAX_THICKNESS = 0.03
#: A cluster whose lowest point is this close to the support rests on it (seen from
#: above, only the top face of the 7 cm cylinder shows). Lifted objects closer
#: than this to the table get boxes reaching down to it: a known weakness.
RESTING_GAP = 0.08
STAGES = ("validate", "backproject", "plane", "robot_mask", "cluster", "describe", "view")


def _groups(labels: np.ndarray, n: int) -> list[np.ndarray]:
    """Indices of each label 0..n-1 in ``labels`` (ascending; -1 ignored): one
    stable sort instead of a full comparison per label."""
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(n + 1))
    return [order[bounds[i] : bounds[i + 1]] for i in range(n)]


class PerceptionPipeline:
    """Stateless per frame; not thread-safe (reuses one MuJoCo model for the mask).

    Without ``joint_positions`` the robot mask is skipped: points on the arm then
    reach clustering and large arm parts are dropped only by ``max_object_size``,
    so pass joint positions whenever the arm may be in view.
    """

    def __init__(
        self,
        config: PerceptionConfig | None = None,
        cell: CellConfig | None = None,
        labeller: Labeller | None = None,
    ):
        self.config = config or PerceptionConfig()
        self.cell = cell or load_cell()
        self.labeller = labeller if labeller is not None else FeatureLabeller()
        cv2.setNumThreads(self.config.num_threads)
        o3d.utility.set_max_threads(self.config.num_threads)
        o3d.utility.set_verbosity_level(o3d.utility.VerbosityLevel.Error)
        o3d.utility.random.seed(0)
        self.robot_mask = RobotMask(
            self.cell.robot_base_position,
            self.cell.robot_base_quaternion,
            self.config.robot_mask_margin,
        )
        self.floors = tuple(
            f for f in self.cell.fixtures if f.bbox_max[2] - f.bbox_min[2] <= FLOOR_MAX_THICKNESS
        )
        self.last_timings: dict[str, float] = {}
        self.last_crops: list[ObjectCrop] = []  # what the labeller saw, one per object

    # -- validation -------------------------------------------------------------
    def _validate(self, rgb, depth, intrinsics, cam_position, cam_quaternion, joint_positions):
        try:
            rgb = np.asarray(rgb)
            depth = np.asarray(depth, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise PerceptionInputError("bad image", str(exc)) from exc
        if rgb.size == 0 or depth.size == 0:
            raise PerceptionInputError("empty image", f"rgb {rgb.shape}, depth {depth.shape}")
        if rgb.ndim != 3 or rgb.shape[2] != 3 or depth.ndim != 2:
            raise PerceptionInputError(
                "bad image", f"need HxWx3 rgb and HxW depth, got {rgb.shape} and {depth.shape}"
            )
        if rgb.shape[:2] != depth.shape:
            raise PerceptionInputError(
                "size mismatch", f"rgb {rgb.shape[:2]} vs depth {depth.shape}"
            )
        if rgb.dtype != np.uint8:
            raise PerceptionInputError("bad image", f"rgb must be uint8, got {rgb.dtype}")
        invalid = np.count_nonzero(~np.isfinite(depth)) / depth.size
        if invalid > self.config.max_invalid_depth_fraction:
            raise PerceptionInputError("nan depth", f"{invalid:.0%} of the depth is not finite")
        try:
            k = np.asarray(intrinsics, dtype=float).reshape(3, 3)
        except (TypeError, ValueError) as exc:
            raise PerceptionInputError("bad intrinsics", str(exc)) from exc
        if not np.all(np.isfinite(k)) or k[0, 0] <= 0 or k[1, 1] <= 0:
            raise PerceptionInputError("bad intrinsics", f"K = {k.tolist()}")
        try:
            pos = np.asarray(cam_position, dtype=float).reshape(3)
            quat = np.asarray(cam_quaternion, dtype=float).reshape(4)
        except (TypeError, ValueError) as exc:
            raise PerceptionInputError("bad pose", str(exc)) from exc
        if not (np.all(np.isfinite(pos)) and np.all(np.isfinite(quat))):
            raise PerceptionInputError("bad pose", "non-finite camera pose")
        if abs(np.linalg.norm(quat) - 1.0) > self.config.quaternion_tolerance:
            raise PerceptionInputError("bad pose", f"|q| = {np.linalg.norm(quat):.4f}, not 1")
        joints = None
        if joint_positions is not None:
            try:
                joints = {str(n): float(v) for n, v in joint_positions.items()}
            except (AttributeError, TypeError, ValueError) as exc:
                raise PerceptionInputError("bad joint state", str(exc)) from exc
            if not all(np.isfinite(v) for v in joints.values()):
                raise PerceptionInputError("bad joint state", "non-finite joint position")
        return rgb, depth, k, pos, quat, joints

    # -- the pipeline -----------------------------------------------------------
    def process(
        self,
        rgb: np.ndarray,
        depth: np.ndarray,
        intrinsics: np.ndarray,
        cam_position: np.ndarray,
        cam_quaternion: np.ndarray,
        stamp: float,
        camera: str,
        joint_positions: Mapping[str, float] | None = None,
    ) -> ObservationFrame:
        """One frame's objects and camera view; raises :class:`PerceptionInputError`."""
        cfg, timings = self.config, {}
        t0 = time.perf_counter()
        rgb, depth, k, pos, quat, joints = self._validate(
            rgb, depth, intrinsics, cam_position, cam_quaternion, joint_positions
        )
        t1 = time.perf_counter()
        timings["validate"] = t1 - t0
        rotation = quat_to_matrix(quat)
        cloud = backproject(depth, k, rotation, pos, cfg.stride, cfg.max_range)
        cloud = crop_to_cell(cloud, self.cell.workspace, self.cell.fixtures, cfg.fixture_margin)
        t0, timings["backproject"] = time.perf_counter(), time.perf_counter() - t1
        plane = fit_support_plane(cloud.points, self.cell.table_height, cfg)
        above = cloud.take(plane.height(cloud.points) > cfg.min_height_above_support)
        t1, timings["plane"] = time.perf_counter(), time.perf_counter() - t0
        voxel_of_point, centroids = voxelize(above.points, cfg.cluster_voxel)
        keep = np.ones(len(centroids), dtype=bool)
        if joints is not None and len(centroids):  # the mask works on 5 mm voxels
            keep = ~self.robot_mask.mask(centroids, joints)
        t0, timings["robot_mask"] = time.perf_counter(), time.perf_counter() - t1
        voxel_labels, appendage = join_sticks(centroids, cluster_voxels(centroids, keep, cfg), cfg)
        voxel_labels = split_touching(centroids, voxel_labels, cfg)
        hues = voxel_hues(voxel_of_point, rgb[above.rows, above.cols], len(centroids), cfg)
        hues[appendage] = -1  # a joined shaft is no hue of its own
        voxel_labels = split_by_colour(centroids, voxel_labels, hues, cfg)
        labels = voxel_labels[voxel_of_point]
        voxels = np.column_stack([centroids, voxel_labels])
        t1, timings["cluster"] = time.perf_counter(), time.perf_counter() - t0
        objects, self.last_crops = [], []
        point_groups = _groups(labels, int(labels.max()) + 1 if len(labels) else 0)
        voxel_groups = _groups(voxel_labels, len(point_groups))
        for members, voxel_members in zip(point_groups, voxel_groups, strict=True):
            cluster = above.take(members)
            body = ~appendage[voxel_members], ~appendage[voxel_of_point[members]]
            obj = self._describe(cluster, voxels[voxel_members, :3], rgb, plane, pos, *body)
            if obj is not None:
                obj.camera, obj.stamp = camera, float(stamp)
                objects.append(obj)
        t0, timings["describe"] = time.perf_counter(), time.perf_counter() - t1
        grid, grid_k = coarse_depth(depth, k, cfg.depth_grid_width, cfg.depth_grid_height)
        view = CameraView(
            camera=camera,
            stamp=float(stamp),
            intrinsics=grid_k,
            position=pos,
            quaternion=quat / np.linalg.norm(quat),
            depth=grid,
            max_range=cfg.max_range,
        )
        timings["view"] = time.perf_counter() - t0
        self.last_timings = timings
        return ObservationFrame(view=view, objects=objects)

    def support_height(self, x: float, y: float, bottom_z: float, plane: SupportPlane) -> float:
        """z of what an object at (x, y) whose lowest seen point is ``bottom_z``
        rests on: the highest floor fixture under it, else the table plane."""
        best = plane.z_at(x, y)
        for floor in self.floors:
            top = float(floor.bbox_max[2])
            inside = np.all((floor.bbox_min[:2] <= (x, y)) & ((x, y) <= floor.bbox_max[:2]))
            if inside and best < top <= bottom_z + 0.005:
                best = top
        return best

    def _describe(
        self,
        cluster: PointSet,
        voxels: np.ndarray,
        rgb: np.ndarray,
        plane: SupportPlane,
        camera_position: np.ndarray,
        body_voxels: np.ndarray,
        body_points: np.ndarray,
    ) -> ObjectObservation | None:
        """``body_*``: per voxel / point, not on a joined appendage (a shaft):
        the box holds the whole object, the points (grasp point, yaw,
        permanence) and the colour word only its body."""
        cfg = self.config
        if len(voxels) < cfg.min_cluster_voxels:
            return None
        pts = cluster.points
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        extent = float(np.max(hi - lo))
        if extent < cfg.min_object_size or extent > cfg.max_object_size:
            return None
        cx, cy = (lo[:2] + hi[:2]) / 2.0
        support = self.support_height(cx, cy, float(lo[2]), plane)
        # The lowest mm were cut with the support and whatever curves under the
        # object's equator is hidden; an object this close rests on the support,
        # so the box reaches down to it (the bottom is never seen).
        if lo[2] - support < RESTING_GAP:
            lo = np.array([lo[0], lo[1], support])
        pixels = rgb[cluster.rows, cluster.cols]
        own = pixels[body_points] if 3 * np.count_nonzero(body_points) >= len(pixels) else pixels
        color, mean_rgb = color_name(own, cfg)
        image, mask = crop_image(rgb, cluster.rows, cluster.cols)
        crop = ObjectCrop(pts, pixels, support, camera_position, image, mask, color)
        verdict = self.labeller.label(crop)
        self.last_crops.append(crop)
        shape = verdict.category
        h, w = rgb.shape[:2]
        edge = 2 * cfg.stride
        touches_border = bool(
            np.any(
                (cluster.rows < edge)
                | (cluster.cols < edge)
                | (cluster.rows >= h - edge)
                | (cluster.cols >= w - edge)
            )
        )
        confidence = min(1.0, len(voxels) / 60.0) * (0.5 if touches_border else 1.0)
        sliver = float(np.min(hi[:2] - lo[:2])) < cfg.cluster_voxel  # all in one vertical plane
        if shape == UNKNOWN or sliver:  # a sliver: a wall or an edge seen edge-on, not an object
            confidence *= 0.5 if sliver else 0.7
        if np.count_nonzero(body_voxels) >= cfg.min_cluster_voxels:
            voxels = voxels[body_voxels]
        step = max(1, int(np.ceil(len(voxels) / cfg.max_points_per_object)))
        return ObjectObservation(
            centroid=(lo + hi) / 2.0,
            bbox_min=lo,
            bbox_max=hi,
            color=color,
            rgb=(float(mean_rgb[0]), float(mean_rgb[1]), float(mean_rgb[2])),
            shape=shape,
            label=f"{color} {shape}",
            confidence=float(confidence),
            camera="",
            stamp=0.0,
            points=voxels[::step][: cfg.max_points_per_object].copy(),
            n_points=len(pts),
        )
