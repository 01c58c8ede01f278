"""An object memory fused from two things, taken apart again (ROS-free).

A white bowl with a black screwdriver lying against it: the first frames may
see them as one cluster, and memory creates one object whose box spans both.
Then one camera sees them apart and the other still as one: the views apart
show the screwdriver as a piece of the large object
(:func:`robot_memory.memory.object_node.part_of`), and the views as one
cluster grow the object back each time the bowl's view has shrunk it. The
merged object lives on, and neither thing is remembered where it is (both
missed, one false object, in all three realistic scenario bags).

Evidence that an object is two: in one frame, two or more confident
observations of different colour words (a mug's two walls are one colour:
they stay one mug; twins of one colour are
:func:`robot_memory.memory.identity.merged_view`'s case), each covering at
least ``unmerge_min_share`` of the object's footprint and lying (nearly) whole
inside it, sharing almost none of their points, and together covering most of it.
Real segmentation shows it now and then for other objects too (a cluster
cut in two for a frame), so the frames must come close together: at
``unmerge_frames`` frames within ``unmerge_window_s`` (views that merge the
two again in between do not reset the count) the object is re-seated on the
observation that carries its label (else its colour word, else the largest:
a blue box merged with a yellow can stays the blue box) as a relocation,
before any other matching of the frame, and the other observations, no
longer inside its box, are matched or created as usual. From then on a view
of the two as one cluster is a merged view of the object and its neighbour:
it confirms, it does not reshape.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.spatial import cKDTree

from robot_memory.memory.config import MemoryConfig
from robot_memory.memory.object_node import MemoryObject
from robot_memory.perception.observations import ObjectObservation

#: Two observations sharing more than this of their points are one thing seen twice.
MAX_SHARED = 0.15
#: Points this close (xy) share a place: under a voxel apart [m].
SAME_PLACE_M = 0.004
#: Inside: at least this much of an observation's footprint lies in the object's
#: (grown by ``fragment_margin``). A fused object's box holds its pieces whole;
#: a screwdriver seen as its handle beside the white bowl's cluster, which holds
#: its shaft and reaches 2.4 cm beyond the tool's box (88 % inside), is not two
#: things fused (at 0.6 it was taken apart, onto its handle, in the bags).
MIN_INSIDE = 0.9
#: Together the observations cover at least this much of the object's footprint.
MIN_COVER = 0.6


def _area(lo, hi) -> float:
    return max(0.0, float(hi[0] - lo[0])) * max(0.0, float(hi[1] - lo[1]))


class FrameBoxes:
    """The xy boxes, areas and confidences of one frame's observations as
    arrays, built once per frame and tested against every candidate object."""

    def __init__(self, observations: list[ObjectObservation]) -> None:
        self.observations = observations
        n = len(observations)
        self.lo = np.array([o.bbox_min[:2] for o in observations], float).reshape(n, 2)
        self.hi = np.array([o.bbox_max[:2] for o in observations], float).reshape(n, 2)
        self.area = np.prod(np.clip(self.hi - self.lo, 0.0, None), axis=1)
        self.confidence = np.array([o.confidence for o in observations], float)

    def pieces(
        self, lo: np.ndarray, hi: np.ndarray, area: np.ndarray, config: MemoryConfig
    ) -> tuple[np.ndarray, np.ndarray]:
        """For objects' xy boxes ``lo``-``hi`` (N, 2), grown by ``fragment_margin``,
        of footprint ``area`` (N,): each observation's area inside each box, and
        whether it could be a piece of that object (confident, at least
        ``unmerge_min_share`` of its footprint, ``MIN_INSIDE`` inside its box);
        both (N, observations)."""
        sides = np.minimum(self.hi[None], hi[:, None]) - np.maximum(self.lo[None], lo[:, None])
        inside = np.prod(np.clip(sides, 0.0, None), axis=2)
        is_part = (
            (self.confidence >= config.min_create_confidence)[None]
            & (self.area[None] >= config.unmerge_min_share * area[:, None])
            & (inside >= MIN_INSIDE * self.area[None])
        )
        return inside, is_part


def _shared(a: ObjectObservation, b: ObjectObservation) -> float:
    """The larger fraction of either's points within ``SAME_PLACE_M`` (xy) of
    the other's: the boxes of a screwdriver lying diagonally along a bowl
    overlap by a third, their points hardly."""
    pa, pb = np.asarray(a.points)[:, :2], np.asarray(b.points)[:, :2]
    if len(pa) == 0 or len(pb) == 0:
        return 1.0  # nothing to tell them apart by
    near_a = cKDTree(pb).query(pa, distance_upper_bound=SAME_PLACE_M)[0] < np.inf
    near_b = cKDTree(pa).query(pb, distance_upper_bound=SAME_PLACE_M)[0] < np.inf
    return max(float(near_a.mean()), float(near_b.mean()))


def seen_apart(
    obj: MemoryObject,
    observations: list[ObjectObservation],
    config: MemoryConfig,
    boxes: FrameBoxes | None = None,
) -> list[int]:
    """Indices of the observations that show ``obj`` as separate things this
    frame (see the module docstring); [] when they do not. ``boxes``: the
    frame's :class:`FrameBoxes`, when the caller tests several objects."""
    area = _area(obj.bbox_min, obj.bbox_max)
    if area <= 0.0 or len(observations) < 2:
        return []
    boxes = boxes or FrameBoxes(observations)
    lo = np.asarray(obj.bbox_min, dtype=float)[None, :2] - config.fragment_margin
    hi = np.asarray(obj.bbox_max, dtype=float)[None, :2] + config.fragment_margin
    inside, is_part = boxes.pieces(lo, hi, np.array([area]), config)
    inside, parts = inside[0], np.flatnonzero(is_part[0]).tolist()
    if len(parts) < 2 or len({observations[k].color for k in parts}) < 2:
        return []  # one colour: walls of one mug, or twins (merged_view's case)
    if float(inside[parts].sum()) < MIN_COVER * area:
        return []
    if any(
        _shared(observations[a], observations[b]) > MAX_SHARED
        for a, b in itertools.combinations(parts, 2)
    ):
        return []
    return parts


def _with_two_parts(
    objects: list[MemoryObject], boxes: FrameBoxes, config: MemoryConfig
) -> list[MemoryObject]:
    """The live objects with at least two observations that could be pieces of
    them (confident, large and inside enough: :func:`seen_apart`'s first test),
    for all objects at once; only these go through the whole test (a memory of
    1,000 objects in one view, each tested alone, cost 50 ms a frame)."""
    live = [o for o in objects if o.status != "absent" and o.merged_into is None]
    if len(boxes.observations) < 2 or not live:
        return []
    lo = np.array([o.bbox_min[:2] for o in live], dtype=float)
    hi = np.array([o.bbox_max[:2] for o in live], dtype=float)
    area = np.prod(np.clip(hi - lo, 0.0, None), axis=1)
    margin = config.fragment_margin
    _, is_part = boxes.pieces(lo - margin, hi + margin, area, config)
    return [o for o, n in zip(live, is_part.sum(axis=1), strict=True) if n >= 2]


def reseat_merged(
    observations: list[ObjectObservation],
    objects: list[MemoryObject],
    config: MemoryConfig,
    evidence: dict[int, list[float]],
    stamp: float,
) -> dict[int, MemoryObject]:
    """Observation index -> the merged object it now is (at ``unmerge_frames``
    frames of evidence within ``unmerge_window_s``, their stamps kept in
    ``evidence`` by object id); the caller relocates each object onto its
    observation."""
    out: dict[int, MemoryObject] = {}
    if config.unmerge_frames <= 0:
        return out
    since = stamp - config.unmerge_window_s
    boxes = FrameBoxes(observations)
    for oid in [i for i, stamps in evidence.items() if stamps[-1] < since]:
        del evidence[oid]  # stale: the count starts again
    for obj in _with_two_parts(objects, boxes, config):
        parts = [k for k in seen_apart(obj, observations, config, boxes) if k not in out]
        if len(parts) < 2:
            continue
        recent = [t for t in evidence.get(obj.id, []) if t >= since]
        evidence[obj.id] = [*recent, stamp]
        if len(evidence[obj.id]) < config.unmerge_frames:
            continue
        del evidence[obj.id]
        same = [k for k in parts if observations[k].label == obj.label]
        same = same or [k for k in parts if observations[k].color == obj.color]
        keep = max(same or parts, key=lambda k: boxes.area[k])
        out[keep] = obj
    return out


__all__ = ["FrameBoxes", "reseat_merged", "seen_apart"]
