"""A world point in a pinhole camera's image (ROS-free): the pixel it falls
on and its depth, and whether that pixel is in the image."""

from __future__ import annotations

import numpy as np

from robot_memory.perception.observations import quat_to_matrix


def project_point(
    point: np.ndarray, position: np.ndarray, quat_wxyz: np.ndarray, k: np.ndarray
) -> tuple[float, float, float]:
    """Pixel (u, v) and depth z of a world point in an optical frame (x right,
    y down, z forward) at ``position`` / ``quat_wxyz``; z <= 0 is behind."""
    rot = quat_to_matrix(np.asarray(quat_wxyz, dtype=float))
    p = rot.T @ (np.asarray(point, dtype=float) - np.asarray(position, dtype=float))
    if p[2] <= 1e-9:
        return float("nan"), float("nan"), float(p[2])
    uvw = np.asarray(k, dtype=float) @ p
    return float(uvw[0] / uvw[2]), float(uvw[1] / uvw[2]), float(p[2])


def in_image(uvz: tuple[float, float, float], width: int, height: int, margin: float = 0) -> bool:
    """True if the projected point lies in the image, grown by ``margin`` pixels."""
    u, v, z = uvz
    return z > 0 and -margin <= u < width + margin and -margin <= v < height + margin


__all__ = ["in_image", "project_point"]
