"""Answer :class:`~robot_memory.schemas.MemoryQuery` from a SceneMemory (ROS-free).

Never raises: a bad query (unknown object id, empty text, unknown target)
gives ``ok=False`` with a clear ``error``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import networkx as nx
import numpy as np

from robot_memory.memory.event_queries import events_query
from robot_memory.memory.object_node import MemoryObject, object_msg
from robot_memory.memory.query_targets import QueryError, ranked, resolve_target
from robot_memory.memory.relation_history import relation_history
from robot_memory.schemas import MemoryAnswer, MemoryQuery, PlaceMsg, RelationMsg, SceneGraphMsg

if TYPE_CHECKING:
    from robot_memory.memory.scene_graph import SceneMemory


def _xyz(v) -> list[float]:
    return [float(x) for x in v]


def summary(memory: SceneMemory, obj: MemoryObject) -> dict:
    rels = [{"relation": r, "target": t} for (_, r, t) in memory.relations_of(obj.id)]
    return {
        "id": obj.id,
        "label": obj.label,
        "color": obj.color,
        "shape": obj.shape,
        "status": obj.status,
        "confidence": float(obj.confidence),
        "centroid": _xyz(obj.centroid),
        "bbox_min": _xyz(obj.bbox_min),
        "bbox_max": _xyz(obj.bbox_max),
        "first_seen": obj.first_seen,
        "last_seen": obj.last_seen,
        "last_camera": obj.last_camera,
        "yaw": obj.yaw,
        "relations": rels,
    }


def _object(memory: SceneMemory, object_id: int | None) -> MemoryObject:
    if object_id is None:
        raise QueryError("this query needs object_id")
    try:
        return memory.get(object_id)
    except KeyError:
        raise QueryError(f"unknown object id {object_id}") from None


def _find(memory: SceneMemory, q: MemoryQuery) -> list[dict]:
    return [
        {**summary(memory, obj), "score": score}
        for score, obj in ranked(memory, q.text, limit=q.top_k)
    ]


def _last_seen(memory: SceneMemory, q: MemoryQuery) -> list[dict]:
    if q.object_id is not None:
        obj = _object(memory, q.object_id)
    elif q.text.strip():
        hits = ranked(memory, q.text, limit=1)
        if not hits:
            raise QueryError(f"nothing in memory matches {q.text!r}")
        obj = hits[0][1]
    else:
        raise QueryError("last_seen needs object_id or text")
    return [summary(memory, obj)]


def _history(memory: SceneMemory, q: MemoryQuery) -> list[dict]:
    obj = _object(memory, q.object_id)
    return [
        {
            "id": obj.id,
            "label": obj.label,
            "poses": [{"stamp": s, "position": list(xyz)} for s, xyz in obj.pose_history],
            "visibility": [list(v) for v in obj.visibility],
            "first_seen": obj.first_seen,
            "last_seen": obj.last_seen,
            "status": obj.status,
            "absent_since": obj.absent_since,
            "merged_into": obj.merged_into,
        }
    ]


def _relation(kind: str) -> Callable[[SceneMemory, MemoryQuery], list[dict]]:
    def handler(memory: SceneMemory, q: MemoryQuery) -> list[dict]:
        out = []
        for target in resolve_target(memory, q.target):
            edges = memory.relations_of(target, as_target=True)
            for (s, r, t), state in edges.items():
                if r != kind or not isinstance(s, int):
                    continue
                out.append(
                    {
                        **summary(memory, memory.get(s)),
                        "target": t,
                        "relation_confidence": state.confidence,
                    }
                )
        return out

    return handler


def changes_since(memory: SceneMemory, since: float) -> list[dict]:
    """Objects added, moved (from -> to) or gone absent after ``since``."""
    out: list[dict] = []
    # Poses are appended in time order, give or take the frames memory accepts out of
    # order (time_jump_tolerance): an object whose newest pose is older than ``since``
    # by more than that, seen before it and not gone after it, has nothing to report.
    settled = since - memory.config.time_jump_tolerance
    # only objects whose last change is at or after ``since`` (memory's change index)
    for obj in map(memory.get, memory.change_index.changed_at_or_after(since)):
        newest = obj.pose_history[-1][0] if obj.pose_history else -np.inf
        gone = obj.status == "absent" and obj.absent_since is not None and obj.absent_since > since
        if obj.first_seen <= since and newest < settled and not gone:
            continue
        changes: list[dict] = []
        if obj.first_seen > since:
            changes.append({"change": "added", "stamp": obj.first_seen, "to": _xyz(obj.centroid)})
        else:
            before = [xyz for s, xyz in obj.pose_history if s <= since]
            after = [(s, xyz) for s, xyz in obj.pose_history if s > since]
            if before and after:
                start, (stamp, end) = np.array(before[-1]), after[-1]
                if np.linalg.norm(np.array(end) - start) > memory.config.move_threshold:
                    changes.append(
                        {"change": "moved", "stamp": stamp, "from": _xyz(start), "to": _xyz(end)}
                    )
        if obj.status == "absent" and obj.absent_since is not None and obj.absent_since > since:
            changes.append({"change": "absent", "stamp": obj.absent_since})
        out += [{**c, "id": obj.id, "label": obj.label} for c in changes]
    return sorted(out, key=lambda e: (e["stamp"], e["id"]))


def _changed_since(memory: SceneMemory, q: MemoryQuery) -> list[dict]:
    if q.since is None:
        raise QueryError("changed_since needs since")
    return changes_since(memory, q.since)


def scene_graph_msg(memory: SceneMemory) -> SceneGraphMsg:
    places = [
        PlaceMsg(
            id=p.id,
            kind=p.kind,
            label=p.label or p.id,
            bbox_min=tuple(_xyz(p.bbox_min)),  # type: ignore[arg-type]
            bbox_max=tuple(_xyz(p.bbox_max)),  # type: ignore[arg-type]
        )
        for p in memory.cell.places
    ]
    relations = [
        RelationMsg(
            subject=s,
            relation=r,  # type: ignore[arg-type]
            target=t,
            confidence=float(np.clip(v.confidence, 0.0, 1.0)),
            first_confirmed=v.first_confirmed,
            last_confirmed=v.last_confirmed,
        )
        for (s, r, t), v in sorted(memory.relations().items(), key=lambda kv: str(kv[0]))
    ]
    objects = [object_msg(o) for o in memory.objects(include_absent=True)]
    return SceneGraphMsg(
        seq=memory.seq, stamp=memory.stamp, objects=objects, places=places, relations=relations
    )


def networkx_graph(memory: SceneMemory) -> nx.MultiDiGraph:
    """Places (str ids) and objects (int ids) as nodes; relations as keyed edges."""
    g = nx.MultiDiGraph()
    for p in memory.cell.places:
        g.add_node(p.id, kind="place", place_kind=p.kind, label=p.label or p.id)
        g.nodes[p.id].update(bbox_min=p.bbox_min.copy(), bbox_max=p.bbox_max.copy())
    for o in memory.objects(include_absent=True):
        g.add_node(o.id, kind="object", **object_msg(o).model_dump())
    for (s, r, t), v in memory.relations().items():
        g.add_edge(s, t, key=r, relation=r, confidence=v.confidence)
        g.edges[s, t, r].update(first_confirmed=v.first_confirmed, last_confirmed=v.last_confirmed)
    return g


def _graph(memory: SceneMemory, q: MemoryQuery) -> list[dict]:
    return [memory.snapshot().model_dump()]


HANDLERS: dict[str, Callable[[SceneMemory, MemoryQuery], list[dict]]] = {
    "find": _find,
    "last_seen": _last_seen,
    "history": _history,
    "on": _relation("on"),
    "in": _relation("in"),
    "changed_since": _changed_since,
    "relation_history": relation_history,
    "events": events_query,
    "graph": _graph,
}


def answer(memory: SceneMemory, query: MemoryQuery) -> MemoryAnswer:
    def fail(error: str) -> MemoryAnswer:
        return MemoryAnswer(id=query.id, kind=query.kind, ok=False, error=error, stamp=memory.stamp)

    handler = HANDLERS.get(query.kind)
    if handler is None:
        return fail(f"unknown query kind {query.kind!r}")
    try:
        results = handler(memory, query)
    except QueryError as exc:
        return fail(str(exc))
    except Exception as exc:  # noqa: BLE001 (a query must never take the node down)
        return fail(f"internal error: {type(exc).__name__}: {exc}")
    return MemoryAnswer(id=query.id, kind=query.kind, ok=True, stamp=memory.stamp, results=results)
