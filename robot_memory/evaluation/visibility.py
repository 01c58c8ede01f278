"""Which ground-truth objects the cameras could actually see.

Used to find the objects that were out of view (occluded, under the cover,
outside every frustum) so that object permanence can be scored on them.
An object counts as seen by one camera when enough points sampled on its
camera-facing box faces are inside the image and the measured depth there is
not clearly in front of them (which would mean something occludes them).
"""

from __future__ import annotations

import numpy as np

from robot_memory.perception.observations import CameraView, quat_to_matrix
from robot_memory.schemas import GroundTruth, GroundTruthObject

OCCLUSION_MARGIN = 0.02  # measured depth this much in front of the expected one: occluded [m]
SAMPLES_PER_FACE = 4  # samples along each face axis (4 x 4 per face)
FACE_INSET = 0.1  # keep samples this fraction of the face away from its edges


def _face_grid(n: int) -> np.ndarray:
    t = np.linspace(-1.0 + 2 * FACE_INSET, 1.0 - 2 * FACE_INSET, n)
    a, b = np.meshgrid(t, t, indexing="ij")
    return np.stack([a.ravel(), b.ravel()], axis=1)  # in [-1, 1] face coordinates


def facing_samples(obj: GroundTruthObject, camera_position: np.ndarray) -> np.ndarray:
    """Points (N x 3, world) on the faces of ``obj``'s box that face the camera."""
    rot = quat_to_matrix(np.asarray(obj.quaternion, dtype=float))
    centre = np.asarray(obj.position, dtype=float)
    half = np.asarray(obj.size, dtype=float) / 2.0
    grid = _face_grid(SAMPLES_PER_FACE)
    out = []
    for axis in range(3):
        others = [k for k in range(3) if k != axis]
        for sign in (-1.0, 1.0):
            normal = rot[:, axis] * sign
            face_centre = centre + normal * half[axis]
            if float(normal @ (camera_position - face_centre)) <= 0.0:
                continue  # back face: the object itself hides it
            local = np.zeros((len(grid), 3))
            local[:, axis] = sign * half[axis]
            local[:, others[0]] = grid[:, 0] * half[others[0]]
            local[:, others[1]] = grid[:, 1] * half[others[1]]
            out.append(centre + local @ rot.T)
    return np.concatenate(out) if out else np.zeros((0, 3))


def visible_fraction(obj: GroundTruthObject, view: CameraView) -> float:
    """Fraction of ``obj``'s camera-facing samples in view and unoccluded in ``view``.

    Pixels with no depth return give no evidence and count as not seen.
    """
    pts = facing_samples(obj, np.asarray(view.position, dtype=float))
    if len(pts) == 0:
        return 0.0
    inside = view.in_view(pts)
    _, _, expected = view.project(pts)
    measured = view.depth_at(pts)
    valid = np.isfinite(measured) & (measured > 0.0)
    unoccluded = valid & (measured >= expected - OCCLUSION_MARGIN)
    return float(np.count_nonzero(inside & unoccluded)) / len(pts)


def visible_objects(
    truth: GroundTruth, views: list[CameraView], min_fraction: float = 0.3
) -> set[str]:
    """Ids of GT objects (kind object) that at least one camera in ``views`` sees:
    at least ``min_fraction`` of the samples on their camera-facing faces are in
    the image and not occluded (measured depth not below expected - 2 cm)."""
    seen: set[str] = set()
    for obj in truth.objects:
        if obj.kind != "object":
            continue
        if any(visible_fraction(obj, view) >= min_fraction for view in views):
            seen.add(obj.id)
    return seen
