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

from dataclasses import dataclass

import numpy as np

from robot_memory.cell import CellConfig
from robot_memory.memory.config import MemoryConfig
from robot_memory.memory.object_node import MemoryObject

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
        stale = {k for s in refreshed for k in self.by_subject.get(s, ())}
        stale |= {k for c in changed if c not in arr.index for k in self.by_target.get(c, ())}
        for key in stale - fresh.keys():
            self.set(key, None)
        for key, conf in fresh.items():
            old = self.edges.get(key)
            self.set(key, RelationState(conf, old.first_confirmed if old else stamp, stamp))
