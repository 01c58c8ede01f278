"""The scene graph as RViz / Foxglove markers: boxes, labels, relation lines."""

from __future__ import annotations

from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from robot_memory.schemas import SceneGraphMsg

STATUS_ALPHA = {"visible": 0.9, "remembered": 0.5, "absent": 0.15}
RELATION_COLOURS = {
    "on": (0.2, 0.6, 1.0),
    "in": (1.0, 0.6, 0.1),
    "near": (0.6, 0.6, 0.6),
}


def _centre(lo, hi) -> Point:
    return Point(x=(lo[0] + hi[0]) / 2, y=(lo[1] + hi[1]) / 2, z=(lo[2] + hi[2]) / 2)


def scene_markers(graph: SceneGraphMsg, frame_id: str = "world") -> MarkerArray:
    """One marker array that replaces the previous one (DELETEALL first)."""
    markers = [Marker(action=Marker.DELETEALL)]
    centres: dict[int | str, Point] = {}

    def base(ns: str, marker_id: int, kind: int) -> Marker:
        m = Marker(ns=ns, id=marker_id, type=kind, action=Marker.ADD)
        m.header.frame_id = frame_id
        m.pose.orientation.w = 1.0
        return m

    for obj in graph.objects:
        centre = Point(x=obj.centroid[0], y=obj.centroid[1], z=obj.centroid[2])
        centres[obj.id] = centre
        box = base("objects", obj.id, Marker.CUBE)
        box.pose.position = _centre(obj.bbox_min, obj.bbox_max)
        box.scale.x, box.scale.y, box.scale.z = (
            max(hi - lo, 0.005) for lo, hi in zip(obj.bbox_min, obj.bbox_max, strict=True)
        )
        r, g, b = _label_colour(obj.color)
        box.color = ColorRGBA(r=r, g=g, b=b, a=STATUS_ALPHA[obj.status])
        text = base("labels", obj.id, Marker.TEXT_VIEW_FACING)
        text.pose.position = Point(x=centre.x, y=centre.y, z=obj.bbox_max[2] + 0.03)
        text.scale.z = 0.025
        text.color = ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0)
        text.text = f"{obj.id}: {obj.label} ({obj.status})"
        markers += [box, text]
    for i, place in enumerate(graph.places):
        centres[place.id] = _centre(place.bbox_min, place.bbox_max)
        box = base("places", i, Marker.CUBE)
        box.pose.position = centres[place.id]
        box.scale.x, box.scale.y, box.scale.z = (
            max(hi - lo, 0.002) for lo, hi in zip(place.bbox_min, place.bbox_max, strict=True)
        )
        box.color = ColorRGBA(r=0.5, g=0.5, b=0.5, a=0.1)
        markers.append(box)
    for relation, (r, g, b) in RELATION_COLOURS.items():
        lines = base("relations", len(markers), Marker.LINE_LIST)
        lines.scale.x = 0.003
        lines.color = ColorRGBA(r=r, g=g, b=b, a=0.8)
        for edge in graph.relations:
            if edge.relation == relation and edge.subject in centres and edge.target in centres:
                lines.points += [centres[edge.subject], centres[edge.target]]
        if lines.points:
            markers.append(lines)
    return MarkerArray(markers=markers)


NAMED_COLOURS = {
    "red": (0.9, 0.1, 0.1),
    "orange": (1.0, 0.55, 0.0),
    "yellow": (0.95, 0.9, 0.1),
    "green": (0.1, 0.8, 0.2),
    "blue": (0.1, 0.3, 0.95),
    "purple": (0.6, 0.2, 0.8),
    "white": (0.95, 0.95, 0.95),
    "grey": (0.5, 0.5, 0.5),
    "black": (0.1, 0.1, 0.1),
}


def _label_colour(colour: str) -> tuple[float, float, float]:
    return NAMED_COLOURS.get(colour, (0.7, 0.7, 0.7))
