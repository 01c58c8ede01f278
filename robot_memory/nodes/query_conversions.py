"""``/memory/query`` (robot_memory_interfaces/srv/QueryMemory) <-> the core's
:class:`~robot_memory.schemas.MemoryQuery` and :class:`~robot_memory.schemas.MemoryAnswer`
(node layer only).

The memory core answers with ``results``: a list of dicts whose shape depends on
the kind (:mod:`robot_memory.memory.queries`, :mod:`robot_memory.memory.relation_history`).
On the wire each kind has its typed field:

* ``find``, ``last_seen``, ``on``, ``in`` -> ``objects`` (``ObjectMatch``: the
  object, its relations as subject (relation and target only; the summary has no
  confidence), ``score`` for find, ``target`` and ``relation_confidence`` for on/in);
* ``history`` -> ``histories`` (``ObjectHistory``);
* ``changed_since`` -> ``changes`` (``ObjectChange``);
* ``relation_history`` -> ``relations`` (``RelationRecord``);
* ``events`` -> ``events`` (``MemoryEvent``);
* ``graph`` -> ``graph`` (``SceneGraph``).

:func:`answer_from_response` rebuilds the dicts of exactly the core's shape
(same keys, ``None`` where the core has ``None``), so a client built on it (the
planner's memory port) sees what the core would have returned. Scores and
confidences travel as float32 (about 7 digits).
"""

from __future__ import annotations

import array
from collections.abc import Callable
from typing import Any

from builtin_interfaces.msg import Time
from geometry_msgs.msg import PointStamped
from robot_memory_interfaces.msg import (
    MemoryEvent,
    MemoryObject,
    ObjectChange,
    ObjectHistory,
    ObjectMatch,
    Relation,
    RelationRecord,
)
from robot_memory_interfaces.srv import QueryMemory

from robot_memory.nodes.conversions import from_time, header, to_time
from robot_memory.nodes.memory_conversions import (
    STATUS_CODES,
    STATUS_NAMES,
    node_id,
    node_ref,
    optional,
    point,
    scene_graph_from_msg,
    scene_graph_to_msg,
    xyz,
)
from robot_memory.payload_codec import validate_payload
from robot_memory.schemas import MemoryAnswer, MemoryQuery, SceneGraphMsg

OBJECT_KINDS = ("find", "last_seen", "on", "in")
CHANGE_CODES = {
    "added": ObjectChange.ADDED,
    "moved": ObjectChange.MOVED,
    "absent": ObjectChange.GONE_ABSENT,
}
CHANGE_NAMES = {code: name for name, code in CHANGE_CODES.items()}


def _opt_time(value: float | None) -> list[Time]:
    return [] if value is None else [to_time(value)]


def _opt_seconds(values: Any) -> float | None:
    stamp = optional(values)
    return None if stamp is None else from_time(stamp)


def _status_name(code: int) -> str:
    if code not in STATUS_NAMES:
        raise ValueError(f"unknown object status {code}")
    return STATUS_NAMES[code]


# -- request ---------------------------------------------------------------------------
def query_to_request(q: MemoryQuery) -> QueryMemory.Request:
    """The service request for ``q`` (its ``id`` stays with the caller)."""
    return QueryMemory.Request(
        kind=q.kind,
        text=q.text,
        object_id=[] if q.object_id is None else [int(q.object_id)],
        target=q.target,
        since=_opt_time(q.since),
        until=_opt_time(q.until),
        top_k=int(q.top_k),
    )


def query_from_request(req: QueryMemory.Request, id: str) -> MemoryQuery:
    """The validated query (raises ``PayloadError`` ``invalid payload``: unknown
    kind, top_k over 100, text too long); ``top_k`` 0 means the default, 5."""
    since, until = optional(req.since), optional(req.until)
    data: dict[str, Any] = {
        "id": id,
        "kind": req.kind,
        "text": req.text,
        "object_id": optional(req.object_id),
        "target": req.target,
        "since": None if since is None else from_time(since),
        "until": None if until is None else from_time(until),
    }
    if req.top_k:
        data["top_k"] = int(req.top_k)
    return validate_payload(MemoryQuery, data)


# -- find, last_seen, on, in -------------------------------------------------------------
def _match_to_msg(r: dict) -> ObjectMatch:
    obj = MemoryObject(
        id=int(r["id"]),
        label=r["label"],
        color=r["color"],
        shape=r["shape"],
        centroid=point(r["centroid"]),
        bbox_min=point(r["bbox_min"]),
        bbox_max=point(r["bbox_max"]),
        confidence=float(r["confidence"]),
        first_seen=to_time(r["first_seen"]),
        last_seen=to_time(r["last_seen"]),
        last_camera=r["last_camera"],
        status=STATUS_CODES[r["status"]],
        yaw=array.array("d", [] if r["yaw"] is None else [float(r["yaw"])]),
    )
    relations = [
        Relation(subject=str(r["id"]), relation=rel["relation"], target=node_ref(rel["target"]))
        for rel in r["relations"]
    ]
    return ObjectMatch(
        object=obj,
        relations=relations,
        score=float(r.get("score", 0.0)),
        target=node_ref(r.get("target", "")),
        relation_confidence=float(r.get("relation_confidence", 0.0)),
    )


def _match_from_msg(m: ObjectMatch, kind: str) -> dict:
    o = m.object
    out = {
        "id": o.id,
        "label": o.label,
        "color": o.color,
        "shape": o.shape,
        "status": _status_name(o.status),
        "confidence": float(o.confidence),
        "centroid": list(xyz(o.centroid)),
        "bbox_min": list(xyz(o.bbox_min)),
        "bbox_max": list(xyz(o.bbox_max)),
        "first_seen": from_time(o.first_seen),
        "last_seen": from_time(o.last_seen),
        "last_camera": o.last_camera,
        "yaw": optional(o.yaw),
        "relations": [{"relation": r.relation, "target": node_id(r.target)} for r in m.relations],
    }
    if kind == "find":
        out["score"] = float(m.score)
    elif kind in ("on", "in"):
        out["target"] = node_id(m.target)
        out["relation_confidence"] = float(m.relation_confidence)
    return out


# -- history -------------------------------------------------------------------------------
def _history_to_msg(r: dict) -> ObjectHistory:
    return ObjectHistory(
        id=int(r["id"]),
        label=r["label"],
        poses=[
            PointStamped(header=header(p["stamp"], "world"), point=point(p["position"]))
            for p in r["poses"]
        ],
        visible_from=[to_time(v[0]) for v in r["visibility"]],
        visible_until=[to_time(v[1]) for v in r["visibility"]],
        first_seen=to_time(r["first_seen"]),
        last_seen=to_time(r["last_seen"]),
        status=STATUS_CODES[r["status"]],
        absent_since=_opt_time(r["absent_since"]),
        merged_into=[] if r["merged_into"] is None else [int(r["merged_into"])],
    )


def _history_from_msg(h: ObjectHistory) -> dict:
    if len(h.visible_from) != len(h.visible_until):
        raise ValueError("visible_from and visible_until differ in length")
    return {
        "id": h.id,
        "label": h.label,
        "poses": [
            {"stamp": from_time(p.header.stamp), "position": list(xyz(p.point))} for p in h.poses
        ],
        "visibility": [
            [from_time(a), from_time(b)]
            for a, b in zip(h.visible_from, h.visible_until, strict=True)
        ],
        "first_seen": from_time(h.first_seen),
        "last_seen": from_time(h.last_seen),
        "status": _status_name(h.status),
        "absent_since": _opt_seconds(h.absent_since),
        "merged_into": optional(h.merged_into),
    }


# -- changed_since ------------------------------------------------------------------------
def _change_to_msg(r: dict) -> ObjectChange:
    return ObjectChange(
        change=CHANGE_CODES[r["change"]],
        id=int(r["id"]),
        label=r["label"],
        stamp=to_time(r["stamp"]),
        from_position=[point(r["from"])] if "from" in r else [],
        to_position=[point(r["to"])] if "to" in r else [],
    )


def _change_from_msg(c: ObjectChange) -> dict:
    if c.change not in CHANGE_NAMES:
        raise ValueError(f"unknown change {c.change}")
    out: dict[str, Any] = {"change": CHANGE_NAMES[c.change], "stamp": from_time(c.stamp)}
    if c.from_position:
        out["from"] = list(xyz(c.from_position[0]))
    if c.to_position:
        out["to"] = list(xyz(c.to_position[0]))
    out["id"] = c.id
    out["label"] = c.label
    return out


# -- relation_history ---------------------------------------------------------------------
def _record_to_msg(r: dict) -> RelationRecord:
    return RelationRecord(
        subject=node_ref(r["subject"]),
        relation=r["relation"],
        target=node_ref(r["target"]),
        confidence=float(r["confidence"]),
        first_confirmed=to_time(r["first_confirmed"]),
        last_confirmed=to_time(r["last_confirmed"]),
        ended=_opt_time(r["ended"]),
        subject_label=r["subject_label"],
        target_label=r["target_label"],
    )


def _record_from_msg(r: RelationRecord) -> dict:
    return {
        "subject": node_id(r.subject),
        "relation": r.relation,
        "target": node_id(r.target),
        "confidence": float(r.confidence),
        "first_confirmed": from_time(r.first_confirmed),
        "last_confirmed": from_time(r.last_confirmed),
        "ended": _opt_seconds(r.ended),
        "subject_label": r.subject_label,
        "target_label": r.target_label,
    }


# -- events --------------------------------------------------------------------------------
def _event_to_msg(r: dict) -> MemoryEvent:
    return MemoryEvent(
        seq=int(r["seq"]),
        stamp=to_time(r["stamp"]),
        kind=r["kind"],
        object_id=[] if r["object_id"] is None else [int(r["object_id"])],
        label=r["label"],
        target="" if r["target"] is None else node_ref(r["target"]),
        target_label=r["target_label"],
        from_position=[] if r["from_position"] is None else [point(r["from_position"])],
        to_position=[] if r["to_position"] is None else [point(r["to_position"])],
        cause=r["cause"],
        session=int(r["session"]),
    )


def _event_from_msg(e: MemoryEvent) -> dict:
    return {
        "seq": int(e.seq),
        "stamp": from_time(e.stamp),
        "kind": e.kind,
        "object_id": optional(e.object_id),
        "label": e.label,
        "target": node_id(e.target) if e.target else None,
        "target_label": e.target_label,
        "from_position": list(xyz(e.from_position[0])) if e.from_position else None,
        "to_position": list(xyz(e.to_position[0])) if e.to_position else None,
        "cause": e.cause,
        "session": int(e.session),
    }


# -- response ------------------------------------------------------------------------------
_TO_FIELD: dict[str, tuple[str, Callable[[dict], Any]]] = {
    **{kind: ("objects", _match_to_msg) for kind in OBJECT_KINDS},
    "history": ("histories", _history_to_msg),
    "changed_since": ("changes", _change_to_msg),
    "relation_history": ("relations", _record_to_msg),
    "events": ("events", _event_to_msg),
}


def answer_to_response(a: MemoryAnswer) -> QueryMemory.Response:
    """The typed response for the core's answer (``results`` in the kind's field)."""
    resp = QueryMemory.Response(ok=a.ok, error=a.error, stamp=to_time(a.stamp))
    if not a.ok:
        return resp
    if a.kind == "graph":
        if a.results:
            resp.graph = scene_graph_to_msg(SceneGraphMsg.model_validate(a.results[0]))
        return resp
    field, convert = _TO_FIELD[a.kind]
    setattr(resp, field, [convert(r) for r in a.results])
    return resp


def answer_from_response(resp: QueryMemory.Response, query: MemoryQuery) -> MemoryAnswer:
    """The core's answer to ``query`` from a response: ``results`` of exactly
    the shape :func:`robot_memory.memory.queries.answer` gives. A response that
    does not decode (unknown status or change code, NaN in a scene graph) gives
    ``ok`` false with the reason."""
    base = {"id": query.id, "kind": query.kind, "stamp": from_time(resp.stamp)}
    if not resp.ok:
        return MemoryAnswer(**base, ok=False, error=resp.error or "memory said not ok")
    kind = query.kind
    try:
        if kind in OBJECT_KINDS:
            results = [_match_from_msg(m, kind) for m in resp.objects]
        elif kind == "history":
            results = [_history_from_msg(h) for h in resp.histories]
        elif kind == "changed_since":
            results = [_change_from_msg(c) for c in resp.changes]
        elif kind == "relation_history":
            results = [_record_from_msg(r) for r in resp.relations]
        elif kind == "events":
            results = [_event_from_msg(e) for e in resp.events]
        else:  # graph
            results = [scene_graph_from_msg(resp.graph).model_dump()]
    except Exception as exc:  # noqa: BLE001 - a bad response is an answer that is not ok
        detail = getattr(exc, "detail", "") or str(exc)
        return MemoryAnswer(**base, ok=False, error=f"unreadable response: {detail}"[:500])
    return MemoryAnswer(**base, ok=True, results=results)


__all__ = [
    "answer_from_response",
    "answer_to_response",
    "query_from_request",
    "query_to_request",
]
