"""robot_memory_interfaces messages <-> the core's validated types: perception's
observation frames and memory's scene graph (node layer only).

``*_from_msg`` builds the core's pydantic model from a message and validates
it (NaN, bounds, unknown status): anything wrong raises
:class:`robot_memory.schemas.PayloadError` (``invalid payload``), which the
input boundary counts. ``*_to_msg`` is the reverse, for publishers.
"""

from __future__ import annotations

import array
from collections.abc import Sequence
from typing import Any

import numpy as np
from geometry_msgs.msg import Point, Pose
from robot_memory_interfaces.msg import (
    CameraView,
    MemoryObject,
    ObservationFrame,
    ObservedObject,
    Place,
    Relation,
    SceneGraph,
)

from robot_memory.nodes.conversions import from_time, header, to_time
from robot_memory.payload_codec import validate_payload
from robot_memory.schemas import (
    MemoryObjectMsg,
    NodeId,
    ObservationFrameMsg,
    PayloadError,
    PlaceMsg,
    RelationMsg,
    SceneGraphMsg,
)

STATUS_CODES = {"visible": MemoryObject.VISIBLE, "remembered": MemoryObject.REMEMBERED}
STATUS_CODES["absent"] = MemoryObject.ABSENT
STATUS_NAMES = {code: name for name, code in STATUS_CODES.items()}


# -- geometry ------------------------------------------------------------------
def point(xyz: Sequence[float]) -> Point:
    return Point(x=float(xyz[0]), y=float(xyz[1]), z=float(xyz[2]))


def xyz(p: Point) -> tuple[float, float, float]:
    return (p.x, p.y, p.z)


def pose(position: Sequence[float], quat_wxyz: Sequence[float]) -> Pose:
    msg = Pose()
    msg.position = point(position)
    w, x, y, z = (float(v) for v in quat_wxyz)
    msg.orientation.w, msg.orientation.x, msg.orientation.y, msg.orientation.z = w, x, y, z
    return msg


def quat_wxyz(p: Pose) -> tuple[float, float, float, float]:
    q = p.orientation
    return (q.w, q.x, q.y, q.z)


def optional(values: Sequence[Any]) -> Any:
    """A bounded ``T[<=1]`` field -> its value, or None when empty."""
    return values[0] if len(values) else None


def node_ref(node: NodeId) -> str:
    return str(node)


def node_id(ref: str) -> NodeId:
    """A node reference: a memory object id in decimal, or a place id."""
    return int(ref) if ref.lstrip("-").isdigit() else ref


# -- /perception/observations ----------------------------------------------------
def observation_frame_to_msg(frame: ObservationFrameMsg) -> ObservationFrame:
    view = frame.view
    msg = ObservationFrame(header=header(frame.stamp, frame.frame_id), camera=frame.camera)
    msg.view = CameraView(
        k=np.asarray(view.intrinsics, dtype=np.float64),
        pose=pose(view.position, view.quaternion),
        depth_rows=view.depth_shape[0],
        depth_cols=view.depth_shape[1],
        depth_mm=array.array("H", np.asarray(view.depth_mm, dtype=np.uint16).tobytes()),
        max_range=float(view.max_range),
    )
    msg.objects = [
        ObservedObject(
            label=o.label,
            color=o.color,
            shape=o.shape,
            rgb=np.asarray(o.rgb, dtype=np.float64),
            confidence=float(o.confidence),
            n_points=int(o.n_points),
            centroid=point(o.centroid),
            bbox_min=point(o.bbox_min),
            bbox_max=point(o.bbox_max),
            points=[point(p) for p in o.points],
        )
        for o in frame.objects
    ]
    return msg


def observation_frame_from_msg(msg: ObservationFrame) -> ObservationFrameMsg:
    view = msg.view
    data = {
        "camera": msg.camera,
        "stamp": from_time(msg.header.stamp),
        "frame_id": msg.header.frame_id,
        "objects": [
            {
                "centroid": xyz(o.centroid),
                "bbox_min": xyz(o.bbox_min),
                "bbox_max": xyz(o.bbox_max),
                "color": o.color,
                "rgb": tuple(float(c) for c in o.rgb),
                "shape": o.shape,
                "label": o.label,
                "confidence": o.confidence,
                "n_points": o.n_points,
                "points": [xyz(p) for p in o.points],
            }
            for o in msg.objects
        ],
    }
    depth = list(view.depth_mm)
    if len(depth) != view.depth_rows * view.depth_cols:
        data["view"] = {"depth_shape": "mismatch"}  # refused below as invalid payload
    else:
        data["view"] = {
            "intrinsics": tuple(float(v) for v in view.k),
            "position": xyz(view.pose.position),
            "quaternion": quat_wxyz(view.pose),
            "depth_shape": (view.depth_rows, view.depth_cols),
            "depth_mm": depth,
            "max_range": view.max_range,
        }
    return validate_payload(ObservationFrameMsg, data)


# -- /memory/scene_graph -----------------------------------------------------------
def memory_object_to_msg(o: MemoryObjectMsg) -> MemoryObject:
    return MemoryObject(
        id=o.id,
        label=o.label,
        color=o.color,
        shape=o.shape,
        vote_labels=list(o.label_votes),
        vote_weights=array.array("f", (float(v) for v in o.label_votes.values())),
        centroid=point(o.centroid),
        bbox_min=point(o.bbox_min),
        bbox_max=point(o.bbox_max),
        confidence=float(o.confidence),
        observations=o.observations,
        first_seen=to_time(o.first_seen),
        last_seen=to_time(o.last_seen),
        last_camera=o.last_camera,
        status=STATUS_CODES[o.status],
        container=o.container,
        yaw=array.array("d", [] if o.yaw is None else [float(o.yaw)]),
        grasp_point=[] if o.grasp_point is None else [point(o.grasp_point)],
    )


def memory_object_from_msg(o: MemoryObject) -> dict[str, Any]:
    """The fields of a :class:`MemoryObjectMsg` (validated by the caller)."""
    if len(o.vote_labels) != len(o.vote_weights):
        raise PayloadError("invalid payload", "vote_labels and vote_weights differ in length")
    return {
        "id": o.id,
        "label": o.label,
        "color": o.color,
        "shape": o.shape,
        "label_votes": dict(zip(o.vote_labels, (float(w) for w in o.vote_weights), strict=True)),
        "centroid": xyz(o.centroid),
        "bbox_min": xyz(o.bbox_min),
        "bbox_max": xyz(o.bbox_max),
        "confidence": o.confidence,
        "observations": o.observations,
        "first_seen": from_time(o.first_seen),
        "last_seen": from_time(o.last_seen),
        "last_camera": o.last_camera,
        "status": STATUS_NAMES.get(o.status, f"unknown status {o.status}"),
        "container": o.container,
        "yaw": optional(o.yaw),
        "grasp_point": xyz(o.grasp_point[0]) if len(o.grasp_point) else None,
    }


def relation_to_msg(r: RelationMsg) -> Relation:
    return Relation(
        subject=node_ref(r.subject),
        relation=r.relation,
        target=node_ref(r.target),
        confidence=float(r.confidence),
        first_confirmed=to_time(r.first_confirmed),
        last_confirmed=to_time(r.last_confirmed),
    )


def relation_from_msg(r: Relation) -> dict[str, Any]:
    return {
        "subject": node_id(r.subject),
        "relation": r.relation,
        "target": node_id(r.target),
        "confidence": r.confidence,
        "first_confirmed": from_time(r.first_confirmed),
        "last_confirmed": from_time(r.last_confirmed),
    }


def place_to_msg(p: PlaceMsg) -> Place:
    return Place(
        id=p.id, kind=p.kind, label=p.label, bbox_min=point(p.bbox_min), bbox_max=point(p.bbox_max)
    )


def scene_graph_to_msg(graph: SceneGraphMsg, frame_id: str = "world") -> SceneGraph:
    return SceneGraph(
        header=header(graph.stamp, frame_id),
        seq=graph.seq,
        objects=[memory_object_to_msg(o) for o in graph.objects],
        places=[place_to_msg(p) for p in graph.places],
        relations=[relation_to_msg(r) for r in graph.relations],
    )


def scene_graph_from_msg(msg: SceneGraph) -> SceneGraphMsg:
    data = {
        "seq": msg.seq,
        "stamp": from_time(msg.header.stamp),
        "objects": [memory_object_from_msg(o) for o in msg.objects],
        "places": [
            {
                "id": p.id,
                "kind": p.kind,
                "label": p.label,
                "bbox_min": xyz(p.bbox_min),
                "bbox_max": xyz(p.bbox_max),
            }
            for p in msg.places
        ],
        "relations": [relation_from_msg(r) for r in msg.relations],
    }
    return validate_payload(SceneGraphMsg, data)
