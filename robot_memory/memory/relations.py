"""Geometric relations between remembered objects and the cell's places (ROS-free).

* ``in``: the centroid of A lies inside a container place (the bin) or inside a
  container object's box (a box, cover, lid or bin) bigger than A;
* ``on``: the bottom of A is within ``on_tolerance`` of the top of B and their
  footprints overlap; or A rests on the table (bottom at the table height) in a
  table region, which becomes the target (``table_right``, ...);
* ``near``: centroids within ``near_distance`` and no ``in``/``on`` between the
  two, to the ``near_max_neighbours`` nearest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from robot_memory.cell import CellConfig
from robot_memory.memory.config import MemoryConfig
from robot_memory.memory.object_node import MemoryObject
from robot_memory.memory.spatial_index import ObjectIndex

NodeId = int | str
RelationKey = tuple[NodeId, str, NodeId]  # subject, relation, target


@dataclass(frozen=True)
class RelationState:
    confidence: float
    first_confirmed: float
    last_confirmed: float


class ObjectArrays:
    """Columns of the live objects, for vectorized pair tests."""

    def __init__(self, objects: list[MemoryObject]) -> None:
        self.objects = objects
        self.ids = np.array([o.id for o in objects], dtype=np.int64)
        self.index = {o.id: i for i, o in enumerate(objects)}
        self.centroid = np.array([o.centroid for o in objects]).reshape(-1, 3)
        self.lo = np.array([o.bbox_min for o in objects]).reshape(-1, 3)
        self.hi = np.array([o.bbox_max for o in objects]).reshape(-1, 3)
        self.volume = np.clip(self.hi - self.lo, 0, None).prod(axis=1)
        self.container = np.array([o.container for o in objects], dtype=bool)
        self.confidence = np.array([o.confidence for o in objects], dtype=float)


def _inside(points: np.ndarray, lo: np.ndarray, hi: np.ndarray, margin: float) -> np.ndarray:
    return np.all((points >= lo - margin) & (points <= hi + margin), axis=-1)


def _footprint_overlap(lo: np.ndarray, hi: np.ndarray, los: np.ndarray, his: np.ndarray):
    inter = np.clip(np.minimum(hi[:2], his[:, :2]) - np.maximum(lo[:2], los[:, :2]), 0, None)
    area = inter.prod(axis=1)
    a = np.clip(hi[:2] - lo[:2], 1e-6, None).prod()
    b = np.clip(his[:, :2] - los[:, :2], 1e-6, None).prod(axis=1)
    return area / np.minimum(a, b)


def _in_mask(arr: ObjectArrays, i: int, config: MemoryConfig) -> np.ndarray:
    """Targets that object ``i`` is in."""
    mask = (
        arr.container
        & _inside(arr.centroid[i], arr.lo, arr.hi, config.container_margin)
        & (arr.volume > arr.volume[i])
    )
    mask[i] = False
    return mask


def _on_mask(arr: ObjectArrays, i: int, config: MemoryConfig) -> np.ndarray:
    """Targets that object ``i`` rests on."""
    mask = (np.abs(arr.lo[i, 2] - arr.hi[:, 2]) <= config.on_tolerance) & (
        _footprint_overlap(arr.lo[i], arr.hi[i], arr.lo, arr.hi) >= config.on_min_overlap
    )
    mask[i] = False
    return mask


def _contains_mask(arr: ObjectArrays, i: int, config: MemoryConfig) -> np.ndarray:
    """Objects that are in object ``i``."""
    if not arr.container[i]:
        return np.zeros(len(arr.ids), dtype=bool)
    mask = _inside(arr.centroid, arr.lo[i], arr.hi[i], config.container_margin) & (
        arr.volume < arr.volume[i]
    )
    mask[i] = False
    return mask


def _supports_mask(arr: ObjectArrays, i: int, config: MemoryConfig) -> np.ndarray:
    """Objects that rest on object ``i``."""
    mask = (np.abs(arr.lo[:, 2] - arr.hi[i, 2]) <= config.on_tolerance) & (
        _footprint_overlap(arr.lo[i], arr.hi[i], arr.lo, arr.hi) >= config.on_min_overlap
    )
    mask[i] = False
    return mask


def relations_of(
    arr: ObjectArrays, i: int, cell: CellConfig, config: MemoryConfig
) -> dict[RelationKey, float]:
    """Every relation with object ``i`` as the subject, with its confidence."""
    out: dict[RelationKey, float] = {}
    subject = int(arr.ids[i])
    conf_i = float(arr.confidence[i])
    in_any = False
    for place in cell.places:
        if (
            place.kind == "container"
            and place.contains(arr.centroid[i], config.container_margin)[0]
        ):
            out[(subject, "in", place.id)] = conf_i
            in_any = True
    in_mask = _in_mask(arr, i, config)
    on_mask = _on_mask(arr, i, config) & ~in_mask
    for j in np.flatnonzero(in_mask):
        out[(subject, "in", int(arr.ids[j]))] = min(conf_i, float(arr.confidence[j]))
        in_any = True
    for j in np.flatnonzero(on_mask):
        out[(subject, "on", int(arr.ids[j]))] = min(conf_i, float(arr.confidence[j]))
    on_table = abs(arr.lo[i, 2] - cell.table_height) <= config.table_tolerance
    if on_table and not in_any and not on_mask.any():
        xy = arr.centroid[i, :2]
        for place in cell.places:
            inside = np.all(xy >= place.bbox_min[:2]) and np.all(xy <= place.bbox_max[:2])
            if place.kind == "table_region" and inside:
                out[(subject, "on", place.id)] = conf_i
                break
    dist = np.linalg.norm(arr.centroid - arr.centroid[i], axis=1)
    near = (dist <= config.near_distance) & ~in_mask & ~on_mask
    near &= ~_contains_mask(arr, i, config) & ~_supports_mask(arr, i, config)
    near[i] = False
    candidates = np.flatnonzero(near)
    if len(candidates) > config.near_max_neighbours:
        candidates = candidates[np.argsort(dist[candidates])[: config.near_max_neighbours]]
    for j in candidates:
        out[(subject, "near", int(arr.ids[j]))] = min(conf_i, float(arr.confidence[j]))
    return out


def subjects_to_refresh(
    arr: ObjectArrays, changed: set[int], linked: set[int], config: MemoryConfig
) -> list[int]:
    """Indices whose outgoing relations may have changed: the changed objects,
    objects with an edge to one (``linked``), and objects close to one."""
    picked = {arr.index[c] for c in changed | linked if c in arr.index}
    extent = float(np.linalg.norm(arr.hi - arr.lo, axis=1).max()) if len(arr.ids) else 0.0
    radius = max(config.near_distance, extent)  # further away: no near, on or in
    for c in changed:
        if c in arr.index:
            d = np.linalg.norm(arr.centroid - arr.centroid[arr.index[c]], axis=1)
            picked.update(np.flatnonzero(d <= radius).tolist())
    return sorted(picked)


def pair_radius(index: ObjectIndex, config: MemoryConfig) -> float:
    """Centroids further apart than this can have no relation: ``near`` needs
    ``near_distance``; ``in``/``on`` need the boxes to touch (within the margin or
    tolerance), so the centroids are within the sum of the two reaches."""
    touch = 2 * index.reach_max() + config.container_margin * math.sqrt(3) + config.on_tolerance
    return max(config.near_distance, touch)


def subjects_near_changes(
    index: ObjectIndex, changed: set[int], linked: set[int], config: MemoryConfig
) -> list[int]:
    """Ids whose outgoing relations may have changed: the changed objects, objects
    with an edge to one (``linked``) and live objects close enough to a changed one
    to relate to it. Same set as :func:`subjects_to_refresh` or a superset (the
    radius also covers off-centre centroids, margins and tolerances)."""
    picked = {c for c in changed | linked if c in index}
    live = sorted(c for c in changed if c in index)
    if live:
        slots = np.array([index.slot_of[c] for c in live])
        base = max(config.near_distance, index.extent_max())
        touch = index.reach_max() + config.container_margin * math.sqrt(3) + config.on_tolerance
        radii = np.maximum(base, index.reach[slots] + touch)
        _, found = index.within(index.centroid[slots], radii)
        picked.update(index.ids[found].tolist())
    return sorted(picked)


def relations_indexed(
    index: ObjectIndex, subjects: list[int], cell: CellConfig, config: MemoryConfig
) -> dict[RelationKey, float]:
    """Every relation with one of ``subjects`` (live ids) as the subject: the same
    as :func:`relations_of` over all live objects, evaluated on candidate pairs
    from the grid (vectorized over all subjects at once)."""
    out: dict[RelationKey, float] = {}
    if not subjects:
        return out
    sub = np.array([index.slot_of[s] for s in subjects], dtype=np.int64)
    n = len(sub)
    c_s = index.centroid[sub]
    conf_s = index.confidence[sub]
    in_any = np.zeros(n, dtype=bool)
    for place in cell.places:
        if place.kind != "container":
            continue
        hit = place.contains(c_s, config.container_margin)
        in_any |= hit
        for k in np.flatnonzero(hit):
            out[(subjects[k], "in", place.id)] = float(conf_s[k])

    touch_pad = config.container_margin * math.sqrt(3) + config.on_tolerance
    if config.on_min_overlap > 0:
        radius = pair_radius(index, config)
        rows, slots = index.candidate_pairs(c_s, radius)
    else:  # any footprint overlap (even none) counts: every pair is a candidate
        radius = math.inf
        live = np.flatnonzero(index.live[: len(index.ids)])
        rows = np.repeat(np.arange(n), len(live))
        slots = np.tile(live, n)
    s = sub[rows]
    c = index.centroid
    dist = np.linalg.norm(c[slots] - c[s], axis=1)
    keep = (slots != s) & (dist <= radius)
    rows, slots, s, dist = rows[keep], slots[keep], s[keep], dist[keep]
    # in / on / contains / supports need the boxes to touch: test only those pairs
    t = np.flatnonzero(dist <= index.reach[s] + index.reach[slots] + touch_pad)
    if config.on_min_overlap <= 0:
        t = np.arange(len(rows))
    ts, tj = s[t], slots[t]
    lo, hi = index.lo, index.hi
    vol_s = np.clip(hi[ts] - lo[ts], 0, None).prod(axis=1)
    vol_j = np.clip(hi[tj] - lo[tj], 0, None).prod(axis=1)
    m = config.container_margin
    in_t = (
        index.container[tj]
        & np.all((c[ts] >= lo[tj] - m) & (c[ts] <= hi[tj] + m), axis=-1)
        & (vol_j > vol_s)
    )
    inter = np.clip(
        np.minimum(hi[ts, :2], hi[tj, :2]) - np.maximum(lo[ts, :2], lo[tj, :2]), 0, None
    )
    area_s = np.clip(hi[ts, :2] - lo[ts, :2], 1e-6, None).prod(axis=1)
    area_j = np.clip(hi[tj, :2] - lo[tj, :2], 1e-6, None).prod(axis=1)
    overlap_ok = inter.prod(axis=1) / np.minimum(area_s, area_j) >= config.on_min_overlap
    on_t = (np.abs(lo[ts, 2] - hi[tj, 2]) <= config.on_tolerance) & overlap_ok & ~in_t
    contains_t = (
        index.container[ts]
        & np.all((c[tj] >= lo[ts] - m) & (c[tj] <= hi[ts] + m), axis=-1)
        & (vol_j < vol_s)
    )
    supports_t = (np.abs(lo[tj, 2] - hi[ts, 2]) <= config.on_tolerance) & overlap_ok
    in_m = np.zeros(len(rows), dtype=bool)
    on_m = np.zeros(len(rows), dtype=bool)
    blocked = np.zeros(len(rows), dtype=bool)
    in_m[t] = in_t
    on_m[t] = on_t
    blocked[t] = in_t | on_t | contains_t | supports_t
    near_m = (dist <= config.near_distance) & ~blocked

    ids_j = index.ids[slots]
    conf_pair = np.minimum(conf_s[rows], index.confidence[slots])
    for mask, name in ((in_m, "in"), (on_m, "on")):
        for k, j, v in zip(
            rows[mask].tolist(), ids_j[mask].tolist(), conf_pair[mask].tolist(), strict=True
        ):
            out[(subjects[k], name, j)] = v
    in_any[rows[in_m]] = True
    on_any = np.zeros(n, dtype=bool)
    on_any[rows[on_m]] = True
    on_table = np.abs(index.lo[sub, 2] - cell.table_height) <= config.table_tolerance
    todo = on_table & ~in_any & ~on_any
    for place in cell.places:  # the first table region holding the xy centroid
        if place.kind != "table_region" or not todo.any():
            continue
        xy = c_s[:, :2]
        hit = todo & np.all((xy >= place.bbox_min[:2]) & (xy <= place.bbox_max[:2]), axis=1)
        for k in np.flatnonzero(hit).tolist():
            out[(subjects[k], "on", place.id)] = float(conf_s[k])
        todo &= ~hit

    nr, nj, nd, nc = rows[near_m], ids_j[near_m], dist[near_m], conf_pair[near_m]
    order = np.lexsort((nd, nr))  # by subject, then distance
    nr, nj, nc = nr[order], nj[order], nc[order]
    if len(nr):
        first = np.flatnonzero(np.r_[True, nr[1:] != nr[:-1]])
        rank = np.arange(len(nr)) - np.repeat(first, np.diff(np.r_[first, len(nr)]))
        keep = rank < config.near_max_neighbours
        for k, j, v in zip(nr[keep].tolist(), nj[keep].tolist(), nc[keep].tolist(), strict=True):
            out[(subjects[k], "near", j)] = v
    return out


class RelationTable:
    """The relation edges, indexed by subject and target, with an undo journal
    (for atomic updates) and the changes not yet written to the store."""

    def __init__(self) -> None:
        self.edges: dict[RelationKey, RelationState] = {}
        self.by_subject: dict[NodeId, set[RelationKey]] = {}
        self.by_target: dict[NodeId, set[RelationKey]] = {}
        self.undo: dict[RelationKey, RelationState | None] = {}
        self.dirty: set[RelationKey] = set()
        self.deleted: set[RelationKey] = set()

    def set(self, key: RelationKey, state: RelationState | None, journal: bool = True) -> None:
        if journal:
            self.undo.setdefault(key, self.edges.get(key))
        subject, _, target = key
        if state is None:
            if self.edges.pop(key, None) is not None:
                self.by_subject[subject].discard(key)
                self.by_target[target].discard(key)
            self.deleted.add(key)
            self.dirty.discard(key)
        else:
            self.edges[key] = state
            self.by_subject.setdefault(subject, set()).add(key)
            self.by_target.setdefault(target, set()).add(key)
            self.dirty.add(key)
            self.deleted.discard(key)

    def incident(self, node: NodeId) -> list[RelationKey]:
        return list(self.by_subject.get(node, ())) + list(self.by_target.get(node, ()))

    def rollback(self, dirty: set[RelationKey], deleted: set[RelationKey]) -> None:
        for key, state in self.undo.items():
            self.set(key, state, journal=False)
        self.undo = {}
        self.dirty, self.deleted = dirty, deleted

    def clear(self) -> None:
        self.__init__()  # type: ignore[misc]

    def refresh(
        self,
        arr: ObjectArrays,
        subjects: list[int],
        changed: set[int],
        cell: CellConfig,
        config: MemoryConfig,
        stamp: float,
    ) -> None:
        """Recompute the outgoing relations of ``subjects`` (indices into ``arr``)."""
        fresh: dict[RelationKey, float] = {}
        for i in subjects:
            fresh.update(relations_of(arr, i, cell, config))
        refreshed = {int(arr.ids[i]) for i in subjects} | changed
        self.replace(fresh, refreshed, {c for c in changed if c not in arr.index}, stamp)

    def replace(
        self,
        fresh: dict[RelationKey, float],
        refreshed: set[int],
        gone: set[int],
        stamp: float,
    ) -> None:
        """``fresh`` becomes every edge out of ``refreshed``; edges into ``gone``
        (objects no longer live) are dropped; the rest is untouched."""
        stale = {k for s in refreshed for k in self.by_subject.get(s, ())}
        stale |= {k for c in gone for k in self.by_target.get(c, ())}
        for key in stale - fresh.keys():
            self.set(key, None)
        edges, undo, dirty, deleted = self.edges, self.undo, self.dirty, self.deleted
        for key, conf in fresh.items():  # self.set, inlined: this loop is the hot one
            old = edges.get(key)
            undo.setdefault(key, old)
            if old is None:
                edges[key] = RelationState(conf, stamp, stamp)
                self.by_subject.setdefault(key[0], set()).add(key)
                self.by_target.setdefault(key[2], set()).add(key)
            else:
                edges[key] = RelationState(conf, old.first_confirmed, stamp)
            dirty.add(key)
            deleted.discard(key)
