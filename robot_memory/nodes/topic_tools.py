"""Topic helpers for nodes that record or replay any topic: message classes
from type names, hidden topics, and QoS chosen from (or written for) publishers."""

from __future__ import annotations

import importlib
import re
from collections.abc import Sequence

from rclpy.duration import Duration, Infinite
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosbags.interfaces import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)

from robot_memory.bag.writer import INFINITE

#: History depth of every recording subscription (also bounds latched history).
RECORD_DEPTH = 100


def import_message_class(msgtype: str) -> type:
    """``sensor_msgs/msg/Image`` -> the ``sensor_msgs.msg.Image`` class.

    An action's or service's parts that its package does not export (an action
    feedback topic's ``pkg/action/RunSkill_FeedbackMessage``) come from the
    generated module they live in (``pkg.action._run_skill``)."""
    pkg, kind, name = msgtype.split("/")
    module = importlib.import_module(f"{pkg}.{kind}")
    if hasattr(module, name) or kind == "msg" or "_" not in name:
        return getattr(module, name)
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", name.split("_")[0]).lower()
    return getattr(importlib.import_module(f"{pkg}.{kind}._{snake}"), name)


def is_hidden(topic: str) -> bool:
    return any(part.startswith("_") for part in topic.split("/"))


def choose_qos(offered: Sequence[QoSProfile], depth: int = RECORD_DEPTH) -> QoSProfile:
    """A subscription QoS that matches every publisher in ``offered``.

    Reliable only if all publishers are reliable (a reliable reader does not
    match a best-effort writer); transient local only if all publishers are (a
    transient-local reader does not match a volatile writer), which is what
    delivers latched messages sent before the recorder started.
    """
    reliable = all(p.reliability == ReliabilityPolicy.RELIABLE for p in offered)
    latched = bool(offered) and all(
        p.durability == DurabilityPolicy.TRANSIENT_LOCAL for p in offered
    )
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
    )


def _qos_time(duration: Duration) -> QosTime:
    ns = int(duration.nanoseconds)
    if ns >= Infinite.nanoseconds:
        return INFINITE
    return QosTime(sec=ns // 1_000_000_000, nsec=ns % 1_000_000_000)


def qos_to_bag(p: QoSProfile) -> Qos:
    """An rclpy QoS profile as the rosbags record the bag's metadata lists."""
    return Qos(
        history=QosHistory(int(p.history)),
        depth=int(p.depth),
        reliability=QosReliability(int(p.reliability)),
        durability=QosDurability(int(p.durability)),
        deadline=_qos_time(p.deadline),
        lifespan=_qos_time(p.lifespan),
        liveliness=QosLiveliness(int(p.liveliness)),
        liveliness_lease_duration=_qos_time(p.liveliness_lease_duration),
        avoid_ros_namespace_conventions=bool(p.avoid_ros_namespace_conventions),
    )
