"""``/sim/ground_truth`` from a bag -> the core's :class:`~robot_memory.schemas.GroundTruth`
(ROS-free).

A bag from the typed stack carries ``robot_memory_interfaces/msg/GroundTruth``,
decoded by rosbags into its own dataclass (same field names as the message);
an older bag carries the JSON payload in a ``std_msgs/msg/String``. Both come
out as the validated core model, or :class:`~robot_memory.schemas.PayloadError`
(NaN, a value out of bounds, malformed JSON), which evaluators count.
This mirrors ``robot_memory.nodes.sim_conversions.ground_truth_from_msg``,
which does the same for rclpy's message class in the node layer.
"""

from __future__ import annotations

from typing import Any

from robot_memory.payload_codec import parse_payload, validate_payload
from robot_memory.schemas import GroundTruth, PayloadError

TYPED = "robot_memory_interfaces/msg/GroundTruth"
JSON_STRING = "std_msgs/msg/String"
TYPES = (TYPED, JSON_STRING)


def _stamp(t: Any) -> float:
    return float(t.sec) + float(t.nanosec) * 1e-9


def _xyz(p: Any) -> tuple[float, float, float]:
    return (float(p.x), float(p.y), float(p.z))


def ground_truth_from_bag_msg(msg: Any) -> GroundTruth:
    """A decoded ``GroundTruth`` message (any object with its fields) -> the core model."""
    data = {
        "stamp": _stamp(msg.header.stamp),
        "episode": int(msg.episode),
        "seed": int(msg.seed),
        "scene": str(msg.scene),
        "objects": [
            {
                "id": o.id,
                "kind": o.kind,
                "shape": o.shape,
                "color": o.color,
                "label": o.label,
                "position": _xyz(o.pose.position),
                "quaternion": tuple(
                    float(v)
                    for v in (
                        o.pose.orientation.w,
                        o.pose.orientation.x,
                        o.pose.orientation.y,
                        o.pose.orientation.z,
                    )
                ),
                "size": _xyz(o.size),
                "support": o.support or None,
                "grasped": bool(o.grasped),
            }
            for o in msg.objects
        ],
    }
    return validate_payload(GroundTruth, data)


def ground_truth_from_bag(msg: Any, msgtype: str) -> GroundTruth:
    """A decoded ground-truth message of either form (typed or JSON String)."""
    if msgtype == JSON_STRING:
        return parse_payload(GroundTruth, str(msg.data))
    if msgtype == TYPED:
        return ground_truth_from_bag_msg(msg)
    raise PayloadError("unsupported type", f"{msgtype} is not one of {TYPES}")
