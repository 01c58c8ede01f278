"""What memory refuses before it fuses anything (ROS-free): an observation it
cannot use, or a whole frame (no camera, a non-finite stamp, an invalid camera
view, time going backwards). Each answer is a reason the node counts.
"""

from __future__ import annotations

import math

import numpy as np

from robot_memory.perception.observations import ObjectObservation, ObservationFrame


def observation_problem(obs: ObjectObservation) -> str | None:
    """Why an observation cannot be used, or None."""
    try:
        arrays = [np.asarray(a, dtype=float) for a in (obs.centroid, obs.bbox_min, obs.bbox_max)]
        points = np.asarray(obs.points, dtype=float)
        rgb = np.asarray(obs.rgb, dtype=float)
        conf = float(obs.confidence)
    except (TypeError, ValueError):
        return "malformed observation"
    if any(a.shape != (3,) for a in arrays) or rgb.shape != (3,):
        return "malformed observation"
    if points.size and (points.ndim != 2 or points.shape[1] != 3):
        return "malformed observation"
    if not (all(np.all(np.isfinite(a)) for a in arrays) and np.all(np.isfinite(points))):
        return "non-finite observation"
    if not (math.isfinite(conf) and np.all(np.isfinite(rgb))):
        return "non-finite observation"
    if np.any(arrays[2] < arrays[1]):
        return "bbox_min above bbox_max"
    if not isinstance(obs.label, str) or not obs.label.strip():
        return "empty label"
    return None


def frame_problem(
    frame: ObservationFrame, last_stamp: float | None, tolerance: float
) -> tuple[str, str] | None:
    """(reason, detail) when memory must refuse the whole frame, else None."""
    if not isinstance(frame.camera, str) or not frame.camera.strip():
        return ("unknown camera", "frame has no camera name")
    if not math.isfinite(frame.stamp):
        return ("non-finite stamp", str(frame.stamp))
    view = frame.view
    try:
        ok_view = (
            np.asarray(view.depth).ndim == 2
            and np.asarray(view.intrinsics, dtype=float).shape == (3, 3)
            and bool(np.all(np.isfinite(view.intrinsics)))
            and bool(np.all(np.isfinite(view.position)))
            and bool(np.all(np.isfinite(view.quaternion)))
            and float(np.linalg.norm(view.quaternion)) > 0.5
        )
    except (TypeError, ValueError):
        ok_view = False
    if not ok_view:
        return ("invalid camera view", f"camera {frame.camera}")
    if last_stamp is not None and frame.stamp < last_stamp - tolerance:
        return ("time went backwards", f"{frame.camera}: {frame.stamp} after {last_stamp}")
    return None
