"""An incremental spatial index of the remembered objects (ROS-free).

Columns (centroid, box, reach, container, confidence) of the live objects -- not
absent, not merged -- in numpy slots, plus a uniform xy grid hash of their
centroids, kept in step with :class:`~robot_memory.memory.scene_graph.SceneMemory`
by re-reading only the objects an update changed. Neighbour lookups for the
relations and the duplicate check then cost what is near, not what is remembered.

``reach`` is the distance from an object's centroid to the farthest corner of its
box: every point of the box is within ``reach`` of the centroid, which bounds how
far apart two objects can be and still touch (``in``, ``on``, overlap).

Consistency: every change an update makes reaches the index through the ids it
syncs; what replaces objects wholesale (a rolled-back update, a reset, a load)
bumps the memory's epoch, and :func:`memory_index` rebuilds the index once for a
new epoch (no pass over every object per update).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from robot_memory.memory.object_node import MemoryObject

_EPS = 1e-9
SMALL = 48  # live objects up to which lookups test every pair


class ObjectIndex:
    def __init__(self, cell_size: float, capacity: int = 64) -> None:
        if not cell_size > 0:
            raise ValueError(f"cell_size must be > 0, got {cell_size}")
        self.cell = float(cell_size)
        self.refs: dict[int, MemoryObject] = {}  # id -> the instance last read (absent too)
        self.slot_of: dict[int, int] = {}  # live ids only
        self._free: list[int] = []
        self._size = 0  # slots ever used
        self._alloc(capacity)
        self.grid: dict[tuple[int, int], set[int]] = {}  # xy cell -> slots
        self._cell_of: dict[int, tuple[int, int]] = {}  # slot -> xy cell
        self.token: object = None  # the memory epoch it was last rebuilt for

    # -- storage -----------------------------------------------------------------
    def _alloc(self, capacity: int) -> None:
        self._maxima: dict[str, float] | None = None  # reach / extent maxima, when known
        self.ids = np.full(capacity, -1, dtype=np.int64)
        self.centroid = np.zeros((capacity, 3))
        self.lo = np.zeros((capacity, 3))
        self.hi = np.zeros((capacity, 3))
        self.reach = np.zeros(capacity)
        self.container = np.zeros(capacity, dtype=bool)
        self.confidence = np.zeros(capacity)
        self.live = np.zeros(capacity, dtype=bool)

    def _grow(self) -> None:
        old = (self.ids, self.centroid, self.lo, self.hi, self.reach, self.container)
        old += (self.confidence, self.live)
        self._alloc(2 * len(self.ids))
        new = (self.ids, self.centroid, self.lo, self.hi, self.reach, self.container)
        new += (self.confidence, self.live)
        for a, b in zip(old, new, strict=True):
            b[: len(a)] = a

    def __len__(self) -> int:
        return len(self.slot_of)

    def __contains__(self, oid: object) -> bool:
        return oid in self.slot_of

    def _key(self, x: float, y: float) -> tuple[int, int]:
        return (math.floor(x / self.cell), math.floor(y / self.cell))

    def _drop(self, oid: int) -> None:
        slot = self.slot_of.pop(oid, None)
        if slot is None:
            return
        cell = self._cell_of.pop(slot)
        members = self.grid[cell]
        members.discard(slot)
        if not members:
            del self.grid[cell]
        self._forget_max(slot)
        self.live[slot] = False
        self.ids[slot] = -1
        self._free.append(slot)

    def _forget_max(self, slot: int) -> None:
        """The cached maxima stay valid unless ``slot`` (rewritten or dropped) held one."""
        m = self._maxima
        if m is not None and self.live[slot]:
            extent = float(np.linalg.norm(self.hi[slot] - self.lo[slot]))
            if self.reach[slot] >= m["reach"] or extent >= m["extent"]:
                self._maxima = None

    def _write(self, obj: MemoryObject) -> None:
        slot = self.slot_of.get(obj.id)
        if slot is None:
            if self._free:
                slot = self._free.pop()
            else:
                if self._size == len(self.ids):
                    self._grow()
                slot = self._size
                self._size += 1
            self.slot_of[obj.id] = slot
        else:
            self._forget_max(slot)
        c = np.asarray(obj.centroid, dtype=float)
        lo = np.asarray(obj.bbox_min, dtype=float)
        hi = np.asarray(obj.bbox_max, dtype=float)
        self.ids[slot] = obj.id
        self.centroid[slot] = c
        self.lo[slot] = lo
        self.hi[slot] = hi
        self.reach[slot] = float(np.linalg.norm(np.maximum(hi - c, c - lo))) * (1 + _EPS) + _EPS
        self.container[slot] = obj.container
        self.confidence[slot] = obj.confidence
        self.live[slot] = True
        if self._maxima is not None:
            m = self._maxima
            m["reach"] = max(m["reach"], float(self.reach[slot]))
            m["extent"] = max(m["extent"], float(np.linalg.norm(hi - lo)))
        key = self._key(c[0], c[1])
        old = self._cell_of.get(slot)
        if old != key:
            if old is not None:
                members = self.grid[old]
                members.discard(slot)
                if not members:
                    del self.grid[old]
            self.grid.setdefault(key, set()).add(slot)
            self._cell_of[slot] = key

    # -- keeping in step -----------------------------------------------------------
    def sync(self, objects: dict[int, MemoryObject], ids: Iterable[int]) -> None:
        """Re-read ``ids`` from ``objects`` (gone, absent or merged ones leave the index)."""
        for oid in ids:
            obj = objects.get(oid)
            if obj is None:
                self.refs.pop(oid, None)
                self._drop(oid)
                continue
            self.refs[oid] = obj
            if obj.status == "absent" or obj.merged_into is not None:
                self._drop(oid)
            else:
                self._write(obj)

    def rebuild(self, objects: dict[int, MemoryObject]) -> None:
        self.refs.clear()
        self.slot_of.clear()
        self._free.clear()
        self._size = 0
        self.grid.clear()
        self._cell_of.clear()
        self._alloc(max(64, 2 * len(objects)))
        self.sync(objects, list(objects))

    # -- lookups -----------------------------------------------------------------
    def _known_maxima(self) -> dict[str, float]:
        """Reach and box diagonal maxima of the live objects, recomputed only
        after the object that held one changed or left."""
        if self._maxima is None:
            live = self.live[: self._size]
            if not live.any():
                return {"reach": 0.0, "extent": 0.0}
            d = self.hi[: self._size][live] - self.lo[: self._size][live]
            self._maxima = {
                "reach": float(self.reach[: self._size][live].max()),
                "extent": float(np.linalg.norm(d, axis=1).max()),
            }
        return self._maxima

    def extent_max(self) -> float:
        """The largest box diagonal of the live objects (0 when none)."""
        return self._known_maxima()["extent"] if self.slot_of else 0.0

    def reach_max(self) -> float:
        return self._known_maxima()["reach"] if self.slot_of else 0.0

    def candidate_pairs(self, points: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
        """(query row, slot) for every live slot whose grid cell is within ``radius``
        (in xy) of the query point's cell: a superset of the slots within ``radius``
        of each point, to be filtered exactly by the caller."""
        pts = np.asarray(points, dtype=float).reshape(-1, 3)
        empty = np.zeros(0, dtype=np.int64)
        if len(pts) == 0 or not self.grid:
            return empty, empty
        if len(self.slot_of) <= SMALL:  # a few objects: every pair beats the grid walk
            live = np.fromiter(self.slot_of.values(), np.int64, len(self.slot_of))
            return np.repeat(np.arange(len(pts)), len(live)), np.tile(live, len(pts))
        k = max(0, math.ceil(radius / self.cell * (1 + _EPS)))
        groups: dict[tuple[int, int], list[int]] = {}
        keys = np.floor(pts[:, :2] / self.cell).astype(np.int64).tolist()
        for q, (cx, cy) in enumerate(keys):
            groups.setdefault((cx, cy), []).append(q)
        rows, slots = [], []
        grid = self.grid
        for (cx, cy), qs in groups.items():
            found: list[int] = []
            for dx in range(-k, k + 1):
                for dy in range(-k, k + 1):
                    members = grid.get((cx + dx, cy + dy))
                    if members:
                        found.extend(members)
            if not found:
                continue
            cand = np.asarray(found, dtype=np.int64)
            q = np.asarray(qs, dtype=np.int64)
            rows.append(np.repeat(q, len(cand)))
            slots.append(np.tile(cand, len(q)))
        if not rows:
            return empty, empty
        return np.concatenate(rows), np.concatenate(slots)

    def within(self, points: np.ndarray, radii: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(query row, slot) pairs with the slot's centroid within ``radii[row]`` (3D)."""
        pts = np.asarray(points, dtype=float).reshape(-1, 3)
        radii = np.broadcast_to(np.asarray(radii, dtype=float), (len(pts),))
        if len(pts) == 0:
            return self.candidate_pairs(pts, 0.0)
        rows, slots = self.candidate_pairs(pts, float(radii.max()))
        d = np.linalg.norm(self.centroid[slots] - pts[rows], axis=1)
        keep = d <= radii[rows]
        return rows[keep], slots[keep]

    def objects_near(self, obj: MemoryObject, radius: float) -> list[MemoryObject]:
        """Live objects (``obj`` excluded) whose centroid is within ``radius`` of
        ``obj``'s, in id order."""
        _, slots = self.within(np.asarray(obj.centroid, dtype=float)[None], np.array([radius]))
        ids = sorted(int(i) for i in self.ids[slots] if i != obj.id)
        return [self.refs[i] for i in ids]


def memory_index(memory, pending: set[int]) -> ObjectIndex:
    """The index attached to a SceneMemory, rebuilt once per memory epoch and
    with ``pending`` re-read."""
    idx = memory.__dict__.get("_spatial_index")
    if idx is None:
        # cells of half the near distance (a hair over, so that a near query spans
        # 5 x 5 cells, not 7 x 7, when the radius is exactly the near distance)
        idx = ObjectIndex(memory.config.near_distance / 2 * (1 + 1e-6))
        memory.__dict__["_spatial_index"] = idx
    epoch = memory._epoch
    if idx.token != epoch:  # a rollback, reset or load replaced objects: read them all
        idx.token = epoch
        idx.rebuild(memory._objects)
    idx.sync(memory._objects, pending)
    return idx
