"""Thin parts cut from the body they belong to (ROS-free; scipy).

A screwdriver's metal shaft is 7 mm across and lies on the table beside its
handle. Where they meet, depth drops out (the RealSense model loses edges;
the shaft's rounded end meets the handle's rounded end): density clustering
then returns the shaft as a cluster of its own, which memory keeps as a
second, "white screwdriver" object, and the handle alone names the tool.

A *stick* is a cluster that cannot be an object of its own: straight and
narrow across its footprint (the spread across its long axis, as a uniform
band, narrower than ``stick_max_width``), at least ``stick_min_length`` long
and low (``stick_max_height`` from its lowest to its highest voxel). A stick
with another cluster (not a stick) on its axis beyond one of its ends, within
``stick_join_gap`` of that end, is that cluster's *appendage*:
:func:`join_sticks` gives it the cluster's label and marks it. The
pipeline keeps it in the object's box (where the object is: its centre is
the whole screwdriver's) but not in its points (where to
grasp, which way it lies, what depth must show for permanence) nor in its
colour word and hue (a black handle with a grey shaft is a black
screwdriver). Measured, paired on the realistic task suite: with the shaft's
points in the object, three screwdriver episodes were lost (one "remembered
as gone", likely its thin, low points reading as free space); with the shaft
dropped altogether, the box centre sat on the handle, 3.6 cm from the
screwdriver's centre, beyond the 3 cm the bag evaluation matches within.

The body must also lie along the stick, as a handle does: its own footprint
wider than a stick (``stick_max_width``) and elongated (long over short
spread at least ``stick_host_min_elongation``), with its long axis within
``HOST_AXIS_TOLERANCE_DEG`` of the stick's. A bowl
or a box the shaft's tip points at is round or square, or lies across it: the
shaft stays apart rather than stretch that object's box.

A stick that touches nothing stays an object (the labeller may still know
it); a standing wall is tall, never a stick (:func:`robot_memory.perception.
instances.is_wall` handles walls).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.spatial import cKDTree

from robot_memory.perception.config import PerceptionConfig

#: A uniform band of width w has a standard deviation of w / sqrt(12) across.
BAND_STD = 1.0 / np.sqrt(12.0)
#: A body's long axis this close to a stick's (degrees): it lies along the stick.
HOST_AXIS_TOLERANCE_DEG = 25.0


def _spread(xy: np.ndarray) -> tuple[np.ndarray, float, float]:
    """The unit long axis of (N, 2) points and their standard deviations along
    it and across it."""
    values, vectors = np.linalg.eigh(np.cov((xy - xy.mean(axis=0)).T))
    return vectors[:, 1], float(np.sqrt(max(values[1], 0.0))), float(np.sqrt(max(values[0], 0.0)))


def is_stick(points: np.ndarray, config: PerceptionConfig) -> bool:
    """Straight, narrow across, long enough and low: see the module docstring."""
    if len(points) < 3 or float(np.ptp(points[:, 2])) > config.stick_max_height:
        return False  # cheap test first: most clusters are taller than a stick
    xy = points[:, :2] - points[:, :2].mean(axis=0)
    axis, _, across = _spread(xy)
    along = xy @ axis
    return across < config.stick_max_width * BAND_STD and float(np.ptp(along)) >= (
        config.stick_min_length
    )


def join_sticks(
    centroids: np.ndarray, labels: np.ndarray, config: PerceptionConfig
) -> tuple[np.ndarray, np.ndarray]:
    """``(labels, appendage)``: every stick cluster with a body on its axis
    beyond one of its ends, within ``stick_join_gap`` (:func:`_host`), takes
    that body's label, and ``appendage`` marks its voxels (a bool per voxel).
    Labels of joined sticks are left unused; -1 stays -1."""
    out = labels.copy()
    appendage = np.zeros(len(labels), dtype=bool)
    if len(labels) == 0 or config.stick_join_gap <= 0 or labels.max() < 1:
        return out, appendage
    order = np.argsort(labels, kind="stable")  # every cluster's members in one sort
    bounds = np.searchsorted(labels[order], np.arange(int(labels.max()) + 2))
    clusters = [order[bounds[k] : bounds[k + 1]] for k in range(int(labels.max()) + 1)]
    sticks = [k for k, m in enumerate(clusters) if is_stick(centroids[m], config)]
    if not sticks:
        return out, appendage
    bodies = np.flatnonzero((labels >= 0) & ~np.isin(labels, sticks))
    if len(bodies) == 0:
        return out, appendage
    tree = cKDTree(centroids[bodies])
    shapes: dict[int, tuple[np.ndarray, float, float]] = {}  # label -> axis, elongation, width
    min_cos = float(np.cos(np.radians(HOST_AXIS_TOLERANCE_DEG)))

    def lies_along(label: int, axis: np.ndarray) -> bool:
        """A handle: wider than a stick, elongated, along the stick's axis."""
        if config.stick_host_min_elongation <= 0:
            return True
        if label not in shapes:
            members = clusters[label]
            if len(members) >= 3:
                body_axis, long, short = _spread(centroids[members, :2])
                shapes[label] = (body_axis, long / max(short, 1e-9), short / BAND_STD)
            else:
                shapes[label] = (axis, 0.0, 0.0)
        body_axis, elongation, width = shapes[label]
        return (
            width >= config.stick_max_width  # a sliver (a face seen edge-on) is no handle
            and elongation >= config.stick_host_min_elongation
            and abs(float(body_axis @ axis)) >= min_cos
        )

    for k in sticks:
        members = clusters[k]
        host = _host(centroids[members], centroids, labels, bodies, tree, config, lies_along)
        if host is not None:
            out[members] = labels[host]
            appendage[members] = True
    return out, appendage


def _host(
    stick: np.ndarray,
    centroids: np.ndarray,
    labels: np.ndarray,
    bodies: np.ndarray,
    tree: cKDTree,
    config: PerceptionConfig,
    lies_along: Callable[[int, np.ndarray], bool],
) -> int | None:
    """The body voxel (an index into ``centroids``) nearest to one of the
    stick's ends, within ``stick_join_gap`` of it and on the stick's axis
    beyond that end (off the axis by at most half its distance along it, and
    at least a voxel), of a body that ``lies_along`` the stick: a shaft leaves
    its handle end-on; a bowl it lies beside or points at, or a box it lies
    along, is not its body. None: no such voxel."""
    xy = stick[:, :2]
    centre = xy.mean(axis=0)
    axis = _spread(xy)[0]
    along = (xy - centre) @ axis
    best, best_gap = None, np.inf
    for sign, extreme in ((1.0, along.max()), (-1.0, along.min())):
        end_points = stick[sign * along >= sign * extreme - config.cluster_voxel]
        end = end_points.mean(axis=0)
        direction = sign * axis
        for j in tree.query_ball_point(end, config.stick_join_gap):
            v = centroids[bodies[j], :2] - end[:2]
            ahead = float(v @ direction)
            lateral = float(np.linalg.norm(v - ahead * direction))
            gap = float(np.linalg.norm(centroids[bodies[j]] - end))
            on_axis = lateral <= max(0.5 * ahead, config.cluster_voxel)
            body = int(labels[bodies[j]])
            if (
                ahead > -config.cluster_voxel
                and on_axis
                and gap < best_gap
                and lies_along(body, axis)
            ):
                best, best_gap = int(bodies[j]), gap
    return best


__all__ = ["is_stick", "join_sticks"]
