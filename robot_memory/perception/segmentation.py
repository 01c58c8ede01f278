"""Geometry of the perception core: depth -> world points -> support plane ->
clusters (ROS-free; open3d for RANSAC and DBSCAN)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import open3d as o3d

from robot_memory.cell import Box
from robot_memory.perception.config import PerceptionConfig


@dataclass
class PointSet:
    """World points with the image pixels they came from."""

    points: np.ndarray  # (N, 3) float64 world [m]
    rows: np.ndarray  # (N,) int pixel rows in the full image
    cols: np.ndarray  # (N,) int pixel columns

    def take(self, keep: np.ndarray) -> PointSet:
        return PointSet(self.points[keep], self.rows[keep], self.cols[keep])

    def __len__(self) -> int:
        return len(self.points)


@dataclass(frozen=True)
class SupportPlane:
    """Unit normal (pointing up) and offset: height(p) = normal . p + offset."""

    normal: np.ndarray
    offset: float
    fitted: bool  # False: RANSAC failed or was rejected, the cell's table height is used

    def height(self, points: np.ndarray) -> np.ndarray:
        return np.atleast_2d(points) @ self.normal + self.offset

    def z_at(self, x: float, y: float) -> float:
        """Height of the plane (world z) at (x, y)."""
        n = self.normal
        return float(-(n[0] * x + n[1] * y + self.offset) / n[2])


def backproject(
    depth: np.ndarray,
    intrinsics: np.ndarray,
    rotation: np.ndarray,
    position: np.ndarray,
    stride: int,
    max_range: float,
) -> PointSet:
    """Every ``stride``-th valid pixel (finite, 0 < z < max_range) as a world point."""
    sub = depth[::stride, ::stride]
    with np.errstate(invalid="ignore"):
        valid = (sub > 0) & (sub < max_range)  # NaN compares False
    flat = np.flatnonzero(valid)
    r_idx, c_idx = np.divmod(flat, sub.shape[1])
    z = sub.reshape(-1)[flat].astype(np.float32)
    rows, cols = r_idx * stride, c_idx * stride
    fx, fy, cx, cy = intrinsics[0, 0], intrinsics[1, 1], intrinsics[0, 2], intrinsics[1, 2]
    ray_x = ((np.arange(0, depth.shape[1], stride) - cx) / fx).astype(np.float32)[c_idx]
    ray_y = ((np.arange(0, depth.shape[0], stride) - cy) / fy).astype(np.float32)[r_idx]
    rotation = rotation.astype(np.float32)
    world = np.empty((len(z), 3))
    for k in range(3):  # world = z * (R @ ray) + t, one axis at a time (no N x 3 temporaries)
        world[:, k] = z * (rotation[k, 0] * ray_x + rotation[k, 1] * ray_y + rotation[k, 2])
        world[:, k] += position[k]
    return PointSet(world, rows, cols)


def _inside(points: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    keep = (points[:, 0] >= lo[0]) & (points[:, 0] <= hi[0])
    keep &= (points[:, 1] >= lo[1]) & (points[:, 1] <= hi[1])
    keep &= (points[:, 2] >= lo[2]) & (points[:, 2] <= hi[2])
    return keep


def crop_to_cell(cloud: PointSet, workspace: Box, fixtures: tuple[Box, ...], margin: float):
    """Points inside the workspace and outside every fixture (inflated by ``margin``)."""
    keep = _inside(cloud.points, workspace.bbox_min, workspace.bbox_max)
    if fixtures:
        lo = np.min([f.bbox_min for f in fixtures], axis=0) - margin
        hi = np.max([f.bbox_max for f in fixtures], axis=0) + margin
        near = np.flatnonzero(keep & _inside(cloud.points, lo, hi))
        if near.size:
            pts = cloud.points[near]
            drop = np.zeros(len(near), dtype=bool)
            for fixture in fixtures:
                drop |= _inside(pts, fixture.bbox_min - margin, fixture.bbox_max + margin)
            keep[near[drop]] = False
    return cloud.take(keep)


#: RANSAC's sampling seed, the same for every frame (reproducible planes).
RANSAC_SEED = 0


def fit_support_plane(
    points: np.ndarray, table_height: float, config: PerceptionConfig
) -> SupportPlane:
    """RANSAC plane through the points near the table height; accepted only if
    near-horizontal and near ``table_height``, else the cell's table plane."""
    fallback = SupportPlane(np.array([0.0, 0.0, 1.0]), -table_height, fitted=False)
    band = np.abs(points[:, 2] - table_height) < config.plane_search_band
    if np.count_nonzero(band) < 50:
        return fallback
    candidates = points[band]
    if len(candidates) > config.plane_max_points:  # evenly thinned: RANSAC needs few
        candidates = candidates[:: len(candidates) // config.plane_max_points + 1]
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(candidates))
    cloud = cloud.voxel_down_sample(config.plane_voxel)
    if len(cloud.points) < 30:
        return fallback
    # One thread, the generator reseeded: the plane is a function of this frame's
    # points alone (parallel RANSAC picks among equal-scoring samples in thread
    # order, and the tiny differences grew into different episodes in the eval).
    o3d.utility.random.seed(RANSAC_SEED)
    threads = o3d.utility.get_max_threads()
    o3d.utility.set_max_threads(1)
    try:
        model, inliers = cloud.segment_plane(
            config.plane_distance_threshold, 3, config.plane_iterations
        )
    finally:
        o3d.utility.set_max_threads(threads)
    normal, offset = np.asarray(model[:3], dtype=float), float(model[3])
    norm = np.linalg.norm(normal)
    if norm == 0 or len(inliers) < 0.3 * len(cloud.points):
        return fallback
    normal, offset = normal / norm, offset / norm
    if normal[2] < 0:
        normal, offset = -normal, -offset
    tilt = np.degrees(np.arccos(np.clip(normal[2], -1.0, 1.0)))
    plane = SupportPlane(normal, offset, fitted=True)
    if tilt > config.plane_max_tilt_deg or abs(plane.z_at(0.0, 0.0) - table_height) > (
        config.plane_max_offset
    ):
        return fallback
    return plane


def voxelize(points: np.ndarray, voxel: float) -> tuple[np.ndarray, np.ndarray]:
    """Voxel index of every point and the voxel centroids (N,) and (V, 3)."""
    if len(points) == 0:
        return np.zeros(0, dtype=int), np.zeros((0, 3))
    keys = np.floor(points / voxel).astype(np.int64)
    keys -= keys.min(axis=0)
    span = keys.max(axis=0) + 1
    flat = (keys[:, 0] * span[1] + keys[:, 1]) * span[2] + keys[:, 2]
    _, inverse, counts = np.unique(flat, return_inverse=True, return_counts=True)
    centroids = np.stack(
        [np.bincount(inverse, weights=points[:, k]) / counts for k in range(3)], axis=1
    )
    return inverse.reshape(-1), centroids


def cluster_voxels(centroids: np.ndarray, keep: np.ndarray, config: PerceptionConfig) -> np.ndarray:
    """DBSCAN labels of the voxel centroids (-1: noise or not kept)."""
    labels = np.full(len(centroids), -1, dtype=int)
    if np.count_nonzero(keep) == 0:
        return labels
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(centroids[keep]))
    labels[keep] = np.asarray(
        cloud.cluster_dbscan(config.dbscan_eps, config.dbscan_min_points, print_progress=False)
    )
    return labels


def coarse_depth(
    depth: np.ndarray, intrinsics: np.ndarray, grid_w: int, grid_h: int
) -> tuple[np.ndarray, np.ndarray]:
    """Min-pooled depth on a grid_h x grid_w grid (0 = no valid value in the cell)
    and the intrinsics scaled to that grid."""
    h, w = depth.shape
    valid = np.where(np.isfinite(depth) & (depth > 0), depth, np.inf).astype(np.float32)
    row_starts = np.linspace(0, h, grid_h, endpoint=False).astype(int)
    col_starts = np.linspace(0, w, grid_w, endpoint=False).astype(int)
    pooled = np.minimum.reduceat(np.minimum.reduceat(valid, row_starts, axis=0), col_starts, axis=1)
    pooled[~np.isfinite(pooled)] = 0.0
    sx, sy = grid_w / w, grid_h / h
    k = np.array(intrinsics, dtype=float).copy()
    k[0, 0] *= sx
    k[1, 1] *= sy
    k[0, 1] *= sx
    k[0, 2] = (k[0, 2] + 0.5) * sx - 0.5
    k[1, 2] = (k[1, 2] + 0.5) * sy - 0.5
    return pooled.astype(np.float32), k
