"""Observation-to-object association: one cost matrix per frame, solved one-to-one
with the Hungarian method (never per-detection argmax, which lets two detections
claim the same object), with hard gates on distance and appearance."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from robot_memory.memory.colours import ACHROMATIC, same_colour
from robot_memory.memory.config import MemoryConfig
from robot_memory.memory.object_node import MemoryObject
from robot_memory.perception.observations import ObjectObservation

GATED = 1e6


def appearance_dissimilarity(obs: ObjectObservation, obj: MemoryObject) -> float:
    """0 same label; 0.5 shares colour or shape; 1 shares neither. Plus up to
    0.25 for the rgb difference."""
    if obs.label == obj.label:
        word = 0.0
    elif (obs.color and obs.color == obj.color) or (obs.shape and obs.shape == obj.shape):
        word = 0.5
    else:
        word = 1.0
    rgb = float(np.linalg.norm(np.asarray(obs.rgb, dtype=float) - np.asarray(obj.rgb)))
    return word + 0.25 * min(rgb / np.sqrt(3.0), 1.0)


def neutral(rgb, spread: float = 0.08) -> bool:
    """An rgb whose chromaticity (r, g, b over their sum) is nearly grey."""
    c = np.asarray(rgb, dtype=float)
    total = float(c.sum())
    if total <= 1e-6:
        return True
    chroma = c / total
    return float(chroma.max() - chroma.min()) < spread


def other_colour(obs: ObjectObservation, obj: MemoryObject, gate_rgb: float) -> bool:
    """Another object, however close: two different chromatic colour words
    with rgb at least ``gate_rgb`` apart (a lighting shift that turns a red into
    an orange keeps its rgb near and is not gated), or a neutral white, grey or
    black against a coloured one (the white cover put over the orange box, or
    its shaded wall, is not the box; shade darkens a colour but keeps its hue,
    so a coloured object's own dark side is not neutral)."""
    if gate_rgb <= 0 or not obs.color or not obj.color or same_colour(obs.color, obj.color):
        return False
    if obs.color in ACHROMATIC or obj.color in ACHROMATIC:
        grey, coloured = (obs, obj) if obs.color in ACHROMATIC else (obj, obs)
        return neutral(grey.rgb) and not neutral(coloured.rgb)
    rgb = float(np.linalg.norm(np.asarray(obs.rgb, dtype=float) - np.asarray(obj.rgb)))
    return rgb >= gate_rgb


def _iou_rows(lo: np.ndarray, hi: np.ndarray, los: np.ndarray, his: np.ndarray) -> np.ndarray:
    inter = np.clip(np.minimum(hi, his) - np.maximum(lo, los), 0.0, None).prod(axis=1)
    va = float(np.clip(hi - lo, 0.0, None).prod())
    vb = np.clip(his - los, 0.0, None).prod(axis=1)
    union = va + vb - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def cost_matrix(
    observations: list[ObjectObservation], objects: list[MemoryObject], config: MemoryConfig
) -> np.ndarray:
    """(n_obs, n_objects) cost; ``GATED`` where a match is not allowed."""
    n, m = len(observations), len(objects)
    cost = np.full((n, m), GATED)
    if n == 0 or m == 0:
        return cost
    centroids = np.array([o.centroid for o in objects])
    los = np.array([o.bbox_min for o in objects])
    his = np.array([o.bbox_max for o in objects])
    sizes = np.maximum(his - los, 1e-3)
    for i, obs in enumerate(observations):
        dist = np.linalg.norm(centroids - np.asarray(obs.centroid), axis=1)
        candidates = np.flatnonzero(dist < config.gating_distance)
        if len(candidates) == 0:
            continue
        lo, hi = np.asarray(obs.bbox_min), np.asarray(obs.bbox_max)
        iou = _iou_rows(lo, hi, los[candidates], his[candidates])
        obs_size = np.maximum(hi - lo, 1e-3)
        size_diff = np.abs(sizes[candidates] - obs_size) / np.maximum(sizes[candidates], obs_size)
        size_term = size_diff.mean(axis=1)
        for k, j in enumerate(candidates):
            obj = objects[j]
            app = appearance_dissimilarity(obs, obj)
            if app >= 1.0 or other_colour(obs, obj, config.colour_gate_rgb):
                continue  # nothing agrees, or another colour: another thing
            c = (
                config.weight_distance * dist[j] / config.gating_distance
                + config.weight_iou * (1.0 - iou[k])
                + config.weight_size * size_term[k]
                + config.weight_appearance * app
            )
            if c < config.max_match_cost:
                cost[i, j] = c
    return cost


def assign(
    observations: list[ObjectObservation], objects: list[MemoryObject], config: MemoryConfig
) -> dict[int, int]:
    """Observation index -> index into ``objects``; one-to-one, gated."""
    cost = cost_matrix(observations, objects, config)
    if cost.size == 0:
        return {}
    cols = np.flatnonzero((cost < GATED).any(axis=0))
    rows = np.flatnonzero((cost < GATED).any(axis=1))
    if len(cols) == 0:
        return {}
    sub = cost[np.ix_(rows, cols)]
    r, c = linear_sum_assignment(sub)
    return {int(rows[i]): int(cols[j]) for i, j in zip(r, c, strict=True) if sub[i, j] < GATED}
