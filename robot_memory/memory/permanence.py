"""Object permanence (ROS-free): what a frame's depth says about remembered
objects that perception did not report.

* out of view -> ``OUT_OF_VIEW``: keep believing, confidence unchanged;
* in view, and the depth at its points is *beyond* where it should be (we see
  past it, by a margin that shrinks for flat objects: ``free_space_margin``)
  -> ``FREE``: evidence it is gone;
* in view, depth *nearer* than expected -> ``OCCLUDED`` (under a cover, behind
  the gripper): no change;
* in view, depth where expected -> ``PRESENT`` (perception missed it): no change;
* no depth return -> ``NO_RETURN``: no change.
"""

from __future__ import annotations

import numpy as np

from robot_memory.memory.config import MemoryConfig
from robot_memory.memory.object_node import MemoryObject
from robot_memory.perception.observations import CameraView

OUT_OF_VIEW = "out_of_view"
FREE = "free"
OCCLUDED = "occluded"
PRESENT = "present"
NO_RETURN = "no_return"


def sample_points(obj: MemoryObject, count: int) -> np.ndarray:
    """The centroid, the top-face centre and up to ``count`` evenly strided points."""
    top = np.array([obj.centroid[0], obj.centroid[1], obj.bbox_max[2]])
    pts = obj.points
    if len(pts) > count:
        pts = pts[np.linspace(0, len(pts) - 1, count).astype(int)]
    return np.vstack([obj.centroid, top, np.asarray(pts, dtype=float).reshape(-1, 3)])


def free_space_margin(obj: MemoryObject, config: MemoryConfig) -> float:
    """How far beyond an object's points the depth must reach to say it is gone:
    ``depth_margin``, but at most half the object's height (a screwdriver lying
    down stands 2.6 cm: the table behind it is nearer than 3 cm beyond its top)
    and at least ``min_depth_margin`` (the sensor's noise)."""
    height = float(obj.bbox_max[2] - obj.bbox_min[2])
    return float(np.clip(0.5 * height, config.min_depth_margin, config.depth_margin))


def classify(objects: list[MemoryObject], view: CameraView, config: MemoryConfig) -> dict[int, str]:
    """Object id -> one of the verdicts above, for each of ``objects``."""
    verdicts: dict[int, str] = {}
    if not objects:
        return verdicts
    centroids = np.array([o.centroid for o in objects])
    in_view = view.in_view(centroids)
    checked = [o for o, v in zip(objects, in_view, strict=True) if v]
    for o, v in zip(objects, in_view, strict=True):
        if not v:
            verdicts[o.id] = OUT_OF_VIEW
    if not checked:
        return verdicts
    samples = [sample_points(o, config.permanence_sample_points) for o in checked]
    counts = np.array([len(s) for s in samples])
    pts = np.vstack(samples)
    _, _, expected = view.project(pts)
    measured = view.depth_at(pts)
    visible = view.in_view(pts, margin_px=0.0)
    valid = visible & np.isfinite(measured) & (measured > 0) & (measured < view.max_range)
    margin = np.repeat([free_space_margin(o, config) for o in checked], counts)
    free = valid & (measured > expected + margin)
    occluded = valid & (measured < expected - config.depth_margin)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    n_valid = np.add.reduceat(valid.astype(int), starts)
    n_free = np.add.reduceat(free.astype(int), starts)
    n_occluded = np.add.reduceat(occluded.astype(int), starts)
    for k, obj in enumerate(checked):
        if n_valid[k] == 0:
            verdicts[obj.id] = NO_RETURN
        elif n_free[k] >= config.free_fraction * n_valid[k]:
            verdicts[obj.id] = FREE
        elif n_occluded[k] >= config.free_fraction * n_valid[k]:
            verdicts[obj.id] = OCCLUDED
        else:
            verdicts[obj.id] = PRESENT
    return verdicts


def apply_absence(obj: MemoryObject, stamp: float, config: MemoryConfig) -> bool:
    """Fold one frame of free-space evidence in; True when the object became absent."""
    obj.absence_evidence += 1
    obj.confidence = float(max(0.0, obj.confidence - config.absence_decay))
    if obj.status != "absent" and obj.confidence < config.absence_threshold:
        obj.status = "absent"
        obj.absent_since = stamp
        return True
    if obj.status == "visible":
        obj.status = "remembered"
    return False
