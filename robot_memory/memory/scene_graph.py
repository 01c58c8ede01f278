"""The memory core (ROS-free): a 3D scene graph of remembered objects and the
cell's places, fed by :class:`~robot_memory.perception.observations.ObservationFrame`.

Per frame: validate; associate observations to objects one-to-one (Hungarian);
re-identify objects seen moved; fold permanence evidence into the unmatched
ones; merge duplicates, prune ghosts; refresh relations of what changed; commit
the changes to SQLite in one transaction. Any exception leaves memory unchanged.

The undo journal, rollback and the store's commit and load are in the base
class :class:`~robot_memory.memory.journal.MemoryJournal`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx
import numpy as np

from robot_memory.cell import CellConfig, load_cell
from robot_memory.memory import permanence
from robot_memory.memory.active_window import WindowGrid, may_turn_ghost, window_objects
from robot_memory.memory.association import assign
from robot_memory.memory.config import MemoryConfig
from robot_memory.memory.event_derivation import record_update_events
from robot_memory.memory.events import EventLog, SkillSpan
from robot_memory.memory.identity import (
    displaced_objects,
    fragment_parent,
    merge_duplicates,
    merged_view,
    part_owner,
    reidentify,
)
from robot_memory.memory.input_checks import frame_problem, observation_problem
from robot_memory.memory.journal import MemoryJournal
from robot_memory.memory.lookup_index import ChangeIndex, KindIndex
from robot_memory.memory.object_node import MemoryObject, is_ghost
from robot_memory.memory.relation_history import (
    EndedRelation,
    RelationHistory,
    ended_relations,
)
from robot_memory.memory.relations import (
    ObjectArrays,
    RelationKey,
    RelationState,
    RelationTable,
    subjects_to_refresh,
)
from robot_memory.memory.store import MemoryStore
from robot_memory.memory.text_grounding import TextEmbedder
from robot_memory.memory.unmerge import reseat_merged
from robot_memory.perception.observations import ObjectObservation, ObservationFrame
from robot_memory.schemas import MemoryAnswer, MemoryQuery, SceneGraphMsg

FULL_PRUNE_EVERY = 20  # updates between sweeps over all objects for ghosts


class MemoryInputError(ValueError):
    """A frame memory refuses as a whole; ``reason`` is short and loggable."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass
class UpdateResult:
    matched: dict[int, int] = field(default_factory=dict)  # obs index -> object id
    created: list[int] = field(default_factory=list)
    relocated: list[int] = field(default_factory=list)
    absent: list[int] = field(default_factory=list)
    rejected_observations: list[tuple[int, str]] = field(default_factory=list)
    fragments: list[tuple[int, int]] = field(default_factory=list)  # obs index, part of id
    weak: list[int] = field(default_factory=list)  # unmatched, too unsure to create from


class SceneMemory(MemoryJournal):
    def __init__(
        self,
        config: MemoryConfig | None = None,
        cell: CellConfig | None = None,
        store_path: str | Path | None = None,
        embedder: TextEmbedder | None = None,
    ) -> None:
        self.config = config or MemoryConfig()
        self.cell = cell or load_cell()
        self.embedder = embedder or TextEmbedder()
        self._objects: dict[int, MemoryObject] = {}
        self._merged: dict[int, MemoryObject] = {}
        self._rel = RelationTable()
        self._history = RelationHistory(self.config.relation_history_length)
        c = self.config
        self._events = EventLog(c.event_log_length, c.move_event_distance, c.move_merge_s)
        self._next_id = 1
        self._seen_apart: dict[int, list[float]] = {}  # id -> stamps of views of two things
        self._seq = 0
        self._stamp = 0.0
        self._camera_stamps: dict[str, float] = {}
        self._counters = {"updates": 0, "rejected_frames": 0, "rejected_observations": 0}
        self._version = 0
        self._epoch = 0  # bumped when objects are replaced wholesale (rollback, reset, load)
        self._graph_cache: tuple[int, nx.MultiDiGraph] | None = None
        self._begin()
        self._store: MemoryStore | None = None
        self._last_commit = -math.inf
        if store_path is not None:
            self._store = MemoryStore(store_path)
            self._load()
        # kept in step with the ids each update touches (active_window, lookup_index)
        self._window_grid = WindowGrid()
        self._kinds = KindIndex()
        self._changes = ChangeIndex(self.config.time_jump_tolerance)
        self._young: set[int] = set()  # may still turn out a ghost (see _prune)
        self._sync_indexes(self._objects, rebuild=True)

    # -- public API --------------------------------------------------------------
    def update(self, frame: ObservationFrame) -> UpdateResult:
        self._validate_frame(frame)
        result = UpdateResult()
        valid: list[tuple[int, ObjectObservation]] = []
        for i, obs in enumerate(frame.objects):
            problem = observation_problem(obs)
            if problem is None:
                valid.append((i, obs))
            else:
                result.rejected_observations.append((i, problem))
        saved = self._save_scalars()
        self._begin()
        try:
            self._apply(frame, valid, result)
            self._counters["rejected_observations"] += len(result.rejected_observations)
            self._counters["updates"] += 1
            self._maybe_commit(frame.stamp)
        except BaseException:
            touched = list(self._undo_objects)
            self._rollback(saved)
            self._sync_indexes(touched)
            raise
        self._sync_indexes(self._undo_objects)
        return result

    def reset(self, as_new: bool = False) -> None:
        """Forget everything, in the store too. Ids keep counting up (never
        reused: a consumer may still hold one) and the graph's stamp never goes
        back, unless ``as_new``: ids from 1 and the stamp from 0, as a memory
        just made (evaluation, where the clock restarts with every episode and
        an episode must not depend on the ones before it)."""
        if as_new:
            self._next_id, self._stamp = 1, 0.0
        if self._store is not None:
            self._store.clear()
        self._objects.clear()
        self._merged.clear()
        self._rel.clear()
        self._history.clear()
        self._events.clear()
        self._camera_stamps.clear()
        self._seen_apart.clear()
        self._sync_indexes(self._objects, rebuild=True)
        self._epoch += 1
        self._seq += 1
        self._version += 1
        self._begin()
        if self._store is not None:
            self._store.commit(self._meta(), [], [], {}, [])

    def _sync_indexes(self, ids: Iterable[int], rebuild: bool = False) -> None:
        """Re-read ``ids`` into the window grid and the query indexes (every
        object when ``rebuild``)."""
        for index in (self._window_grid, self._kinds, self._changes):
            if rebuild:
                index.rebuild(self._objects)
            else:
                index.sync(self._objects, list(ids))
        self._young = set(self._objects) if rebuild else self._young | set(ids)

    @property
    def kind_index(self) -> KindIndex:
        """Object ids by words, present and absent apart (for text queries)."""
        return self._kinds

    @property
    def change_index(self) -> ChangeIndex:
        """Objects by their last change (for changed_since)."""
        return self._changes

    @property
    def graph(self) -> nx.MultiDiGraph:
        if self._graph_cache is None or self._graph_cache[0] != self._version:
            from robot_memory.memory.queries import networkx_graph

            self._graph_cache = (self._version, networkx_graph(self))
        return self._graph_cache[1]

    def objects(self, include_absent: bool = False) -> list[MemoryObject]:
        return [
            self._objects[k]
            for k in sorted(self._objects)
            if include_absent or self._objects[k].status != "absent"
        ]

    def get(self, object_id: int) -> MemoryObject:
        if object_id in self._objects:
            return self._objects[object_id]
        if object_id in self._merged:
            return self._merged[object_id]
        raise KeyError(f"no object with id {object_id} in memory")

    def relations(self) -> dict[RelationKey, RelationState]:
        return dict(self._rel.edges)

    def relation_history(self) -> list[EndedRelation]:
        """Relations that ended (oldest first, bounded); see ``relation_history.py``."""
        return list(self._history.entries)

    def events(self) -> EventLog:
        """What happened, as perceived (bounded); see ``events.py``."""
        return self._events

    def note_skill(self, span: SkillSpan) -> None:
        """The robot ran a skill on an object: what moved it then was the robot."""
        self._events.note_skill(span)
        self._commit_now()

    @property
    def stamp(self) -> float:
        return self._stamp

    @property
    def seq(self) -> int:
        return self._seq

    def relations_of(self, node: int | str, as_target: bool = False) -> dict:
        """Edges with ``node`` as the subject (or the target), from the index."""
        keys = (self._rel.by_target if as_target else self._rel.by_subject).get(node, ())
        return {k: self._rel.edges[k] for k in sorted(keys, key=str)}

    def snapshot(self) -> SceneGraphMsg:
        from robot_memory.memory.queries import scene_graph_msg

        return scene_graph_msg(self)

    def answer(self, query: MemoryQuery) -> MemoryAnswer:
        from robot_memory.memory.queries import answer

        return answer(self, query)

    @property
    def stats(self) -> dict:
        live = self._objects.values()
        return {
            "objects": len(self._objects),
            "absent": sum(1 for o in live if o.status == "absent"),
            "merged": len(self._merged),
            "relations": len(self._rel.edges),
            "points_total": int(sum(len(o.points) for o in live)),
            "next_id": self._next_id,
            "seq": self._seq,
            **self._counters,
        }

    def close(self) -> None:
        if self._store is not None:
            if self._has_pending():
                self._store.commit(*self._pending())
            self._store.close()
            self._store = None

    # -- the update, step by step ------------------------------------------------
    def _validate_frame(self, frame: ObservationFrame) -> None:
        last = self._camera_stamps.get(frame.camera) if isinstance(frame.camera, str) else None
        problem = frame_problem(frame, last, self.config.time_jump_tolerance)
        if problem is not None:
            self._counters["rejected_frames"] += 1
            raise MemoryInputError(*problem)

    def _apply(
        self, frame: ObservationFrame, valid: list[tuple[int, ObjectObservation]], result
    ) -> None:
        cfg, stamp = self.config, frame.stamp
        observations = [obs for _, obs in valid]
        radius = cfg.active_radius
        candidates = window_objects(self._objects, self._window_grid, frame, observations, radius)
        reseated = reseat_merged(observations, candidates, cfg, self._seen_apart, stamp)
        for k, obj in reseated.items():  # an object fused from two things, taken apart
            self._touch(obj).fuse(observations[k], cfg, relocate=True)
            result.matched[valid[k][0]] = obj.id
        valid = [v for k, v in enumerate(valid) if k not in reseated]
        owners = [part_owner(obs, candidates, cfg.fragment_margin) for _, obs in valid]
        pairs_owned = list(zip(valid, owners, strict=True))
        result.fragments += [(i, o.id) for (i, _), o in pairs_owned if o is not None]
        valid = [v for v, o in pairs_owned if o is None]  # a mug's handle is its mug's
        obs_list = [obs for _, obs in valid]
        pairs = assign(obs_list, candidates, cfg)
        matched_ids = {candidates[j].id for j in pairs.values()}
        matched_ids |= {o.id for o in reseated.values()}
        unmatched = [o for o in candidates if o.id not in matched_ids and o.status != "absent"]
        verdicts = permanence.classify(unmatched, frame.view, cfg)
        changed: set[int] = {o.id for o in reseated.values()}
        for k, (i, obs) in enumerate(valid):
            if k in pairs:
                obj = self._touch(candidates[pairs[k]])
                obj.fuse(obs, cfg, merged_view=merged_view(obs, obj, candidates))
                result.matched[i] = obj.id
                changed.add(obj.id)
        taken = set(matched_ids)
        centroids = np.array([o.centroid for o in candidates]).reshape(-1, 3)
        displaced = displaced_objects(candidates, matched_ids, verdicts, obs_list)
        unconfirmed_mask = np.array(
            [
                o.status == "absent"
                or o.id in displaced
                or verdicts.get(o.id) in (permanence.OUT_OF_VIEW, permanence.FREE)
                for o in candidates
            ],
            dtype=bool,
        )
        for k, (i, obs) in enumerate(valid):
            if k in pairs:
                continue
            parent = fragment_parent(obs, candidates, cfg.fragment_margin)
            if parent is not None:  # a partial view of a larger remembered object
                result.fragments.append((i, parent.id))
                continue
            if obs.confidence < cfg.min_create_confidence:
                result.weak.append(i)  # too unsure to create, or move, an object from
                continue
            # not confirmed where memory had it (out of view, or in view and gone),
            # or near its remembered place: a view the gates refused (in the
            # gripper, half hidden), not a second object
            near = np.linalg.norm(centroids - obs.centroid, axis=1) < cfg.gating_distance
            unconfirmed = [
                candidates[j]
                for j in np.flatnonzero(unconfirmed_mask | near)
                if candidates[j].id not in taken
            ]
            same = reidentify(obs, unconfirmed)
            far = same is not None and (
                np.linalg.norm(obs.centroid - same.centroid) > cfg.gating_distance
            )
            # A weak view (cut by the image edge: the 12 cm cover often is) is
            # enough to move an object that is known to have left its old place
            # (absent, or depth shows free space there in this frame); else it
            # would be dropped, neither relocated nor created, and memory would
            # never learn where the object went (what it covered).
            left = same is not None and (
                same.status == "absent"
                or same.id in displaced
                or verdicts.get(same.id) == permanence.FREE
            )
            if far and not left and same.is_partial_view(obs, cfg, cfg.min_relocate_confidence):
                result.weak.append(i)  # too little of it to move a remembered object
                continue
            if same is not None:
                obj = self._touch(same)
                # near: a view the gates refused (a merged view of it and a
                # neighbour confirms it, it does not reshape it)
                merged = not far and merged_view(obs, obj, candidates)
                obj.fuse(obs, cfg, relocate=bool(far), merged_view=merged)
                if far:
                    result.relocated.append(obj.id)
            else:
                obj = MemoryObject.from_observation(self._next_id, obs, cfg)
                self._next_id += 1
                self._undo_objects.setdefault(obj.id, None)
                self._objects[obj.id] = obj
                self._dirty.add(obj.id)
                result.created.append(obj.id)
            result.matched[i] = obj.id
            taken.add(obj.id)
            changed.add(obj.id)
        for obj in unmatched:
            if obj.id in taken:
                continue
            if verdicts.get(obj.id) == permanence.FREE:
                if permanence.apply_absence(self._touch(obj), stamp, cfg):
                    result.absent.append(obj.id)
                changed.add(obj.id)
            elif obj.status == "visible":
                self._touch(obj).status = "remembered"
        removed = merge_duplicates(self, changed) + self._prune(changed, stamp)
        self._refresh_relations(changed - set(removed), set(removed), stamp)
        ended = ended_relations(self._rel.undo, self._rel.edges, cfg.relation_history_kinds)
        self._history.record(ended, stamp, self._label_of)
        record_update_events(
            self._events, self._objects, changed, result.absent, self._rel.undo,
            self._rel.edges, stamp, self._label_of, cfg.ghost_min_observations,
        )  # fmt: skip
        self._stamp = max(self._stamp, stamp)
        self._camera_stamps[frame.camera] = stamp
        if self._has_pending():
            self._seq += 1
            self._version += 1

    def _prune(self, changed: set[int], stamp: float) -> list[int]:
        full = self._counters["updates"] % FULL_PRUNE_EVERY == 0
        if full:  # only objects seen too few times can be ghosts: the young ones
            self._young = {
                i for i in self._young if may_turn_ghost(self._objects.get(i), self.config)
            }
        pool = sorted(self._young) if full else [i for i in changed if i in self._objects]
        removed = [i for i in pool if is_ghost(self._objects[i], stamp, self.config)]
        excess = len(self._objects) - len(removed) - self.config.max_objects
        if excess > 0:
            order = sorted(
                (o for o in self._objects.values() if o.id not in removed),
                key=lambda o: (o.status != "absent", o.confidence, o.last_seen),
            )
            removed += [o.id for o in order[:excess]]
        for oid in removed:
            self._touch(self._objects[oid])
            self._remove(oid)
        index = self.__dict__.get("_spatial_index")
        if index is not None and removed:
            index.sync(self._objects, removed)
        return removed

    def _refresh_relations(self, changed: set[int], removed: set[int], stamp: float) -> None:
        """Recompute the outgoing relations of the changed objects, of objects with
        an edge to a changed or removed one, and of live objects close enough to a
        changed one to relate to it; neighbours come from the spatial index."""
        from robot_memory.memory.relations import relations_indexed, subjects_near_changes
        from robot_memory.memory.spatial_index import memory_index

        orphaned = {k[0] for oid in removed for k in self._rel.by_target.get(oid, ())}
        for oid in removed:
            for key in self._rel.incident(oid):
                self._rel.set(key, None)
        orphaned = {s for s in orphaned - removed if isinstance(s, int)}
        if not changed and not orphaned:
            return
        if self.config.on_min_overlap <= 0:  # "on" needs no overlap: nothing is too far
            arr = ObjectArrays([o for o in self._objects.values() if o.status != "absent"])
            linked = {k[0] for c in changed for k in self._rel.by_target.get(c, ())}
            linked = {s for s in linked | orphaned if isinstance(s, int)}
            subjects = subjects_to_refresh(arr, changed, linked, self.config)
            self._rel.refresh(arr, subjects, changed, self.cell, self.config, stamp)
            return
        index = memory_index(self, changed | removed)
        linked = {k[0] for c in changed for k in self._rel.by_target.get(c, ())}
        linked = {s for s in linked | orphaned if isinstance(s, int)}
        subjects = subjects_near_changes(index, changed, linked, self.config)
        fresh = relations_indexed(index, subjects, self.cell, self.config)
        gone = {c for c in changed if c not in index}
        self._rel.replace(fresh, set(subjects) | changed, gone, stamp)
