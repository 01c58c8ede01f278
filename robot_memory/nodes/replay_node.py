"""Replay a rosbag2 bag (MCAP or sqlite3) on its topics: ``robot-memory replay``.

Every topic in the bag is published with its recorded type (the class comes
from the type name via importlib; messages go out as the recorded CDR bytes,
never deserialized), the stack's own types too (``robot_memory_interfaces``,
``tf2_msgs``, action parts such as ``RunSkill_FeedbackMessage``). Topics whose
type this Python has not installed (custom packages, service events of an
uninstalled service) or that are not CDR are skipped, counted and named in the
summary. QoS: camera images and
camera_info best effort keep-last 5; latched topics (recorded transient
local) reliable + transient local; all others reliable keep-last 10.
``/clock`` is generated from bag time (the loop and its timing are
:class:`robot_memory.replay.player.ReplayPlayer`'s; ``--fast`` and ``--loop`` in
:mod:`robot_memory.replay.replay_core`), so nodes with ``use_sim_time`` follow the bag.

``/replay/pause`` (std_msgs/Bool, true = pause) pauses and resumes;
``--start-paused`` starts paused. Exits 0 at the end of the bag and after a
clean Ctrl-C / SIGTERM shutdown; the last line printed is a JSON summary,
after one line per topic saying what was replayed and what skipped and why.
A bag it cannot read, or with nothing it can replay, is refused with one
``robot-memory replay: error: ...`` line and exit status 2 (1 if the bag
claimed messages and none could be read).

``--wait-for-subscribers S`` holds the start until the graph's subscribers have
matched; at the end, reliable subscribers get up to ``--drain S`` seconds to
acknowledge the last messages.

    robot-memory replay BAG [--rate N | --fast] [--loop]   (robot_memory.apps.replay_cli)
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import rclpy
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.qos import QoSProfile
from rosbags.interfaces import QosDurability, QosReliability
from rosgraph_msgs.msg import Clock
from std_msgs.msg import Bool

from robot_memory.bag.reader import normalize_type
from robot_memory.nodes import conversions as conv
from robot_memory.nodes.qos import COMMAND, LATCHED, SENSOR
from robot_memory.nodes.topic_tools import import_message_class
from robot_memory.replay.player import ReplayPlayer
from robot_memory.replay.replay_core import CLOCK_TOPIC, ReplayItem

SETTLE_S = 0.3  # --wait-for-subscribers: discovery quiet this long before the start
SENSOR_TYPES = (
    "sensor_msgs/msg/Image",
    "sensor_msgs/msg/CompressedImage",
    "sensor_msgs/msg/CameraInfo",
)


def message_class(msgtype: str) -> tuple[type | None, str | None]:
    """The installed class of ``msgtype``, or None and why it is not there."""
    try:
        return import_message_class(normalize_type(msgtype)), None
    except ModuleNotFoundError as err:
        return None, f"type {msgtype} is not installed (no Python module {err.name!r})"
    except (ImportError, AttributeError, ValueError) as err:
        return None, f"type {msgtype} is not installed ({err})"


def qos_for(topic: str, msgtype: str, offered: Sequence[object] = ()) -> QoSProfile:
    """The contract's QoS for a replayed topic."""
    if msgtype in SENSOR_TYPES and topic.startswith("/camera/"):
        return SENSOR
    if offered and all(
        getattr(q, "durability", None) == QosDurability.TRANSIENT_LOCAL for q in offered
    ):
        return LATCHED
    if offered and all(
        getattr(q, "reliability", None) == QosReliability.BEST_EFFORT for q in offered
    ):
        return SENSOR
    return COMMAND


class ReplayNode(Node):
    """One publisher per replayed topic (and /clock); ``run`` plays ``player``."""

    def __init__(self, player: ReplayPlayer) -> None:
        super().__init__("replay")
        self.player = player
        self.pubs: dict[str, Publisher] = {
            t.topic: self.create_publisher(
                t.message_class, t.topic, qos_for(t.topic, t.msgtype, t.offered)
            )
            for t in player.replayed.values()
        }
        clock_rate = player.timing.clock_rate
        self.clock_pub = self.create_publisher(Clock, CLOCK_TOPIC, 10) if clock_rate else None
        self.create_subscription(Bool, "/replay/pause", self._on_pause, COMMAND)

    def _on_pause(self, msg: Bool) -> None:
        self.player.set_paused(msg.data)
        self.get_logger().info("paused" if msg.data else "resumed")

    def publishers(self) -> list[Publisher]:
        return [*self.pubs.values(), *([self.clock_pub] if self.clock_pub else [])]

    def wait_for_subscribers(self, timeout_s: float, settle_s: float = SETTLE_S) -> bool:
        """Wait up to ``timeout_s`` until some topic has a subscriber, every
        subscription the ROS graph lists on a replayed topic has matched, and
        that held for ``settle_s``: a node's subscriptions are discovered one
        by one, and starting at the first match would lose the first messages
        of the others (best effort images never come again)."""
        deadline = time.monotonic() + timeout_s
        ready_since: float | None = None
        last: tuple[int, ...] = ()
        while time.monotonic() < deadline and not self.player.stop.is_set():
            pubs = self.publishers()
            matched = tuple(p.get_subscription_count() for p in pubs)
            listed = tuple(self.count_subscribers(p.topic_name) for p in pubs)
            ready = any(matched) and all(m >= n for m, n in zip(matched, listed, strict=True))
            now = time.monotonic()
            if not ready:
                ready_since = None
            elif ready_since is None or matched != last:
                ready_since = now
            last = matched
            if ready_since is not None and now - ready_since >= settle_s:
                return True
            rclpy.spin_once(self, timeout_sec=0.05)
        return any(p.get_subscription_count() for p in self.publishers())

    def run(self) -> str:
        return self.player.run(self.publish, lambda s: rclpy.spin_once(self, timeout_sec=s))

    def publish(self, item: ReplayItem) -> None:
        if item.is_clock:
            assert self.clock_pub is not None
            self.clock_pub.publish(Clock(clock=conv.to_time(item.bag_ns * 1e-9)))
        else:
            self.pubs[item.topic].publish(item.raw)

    def drain(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` until reliable subscribers acknowledged
        every message (the process exiting right after the last publish would
        drop what is still in flight, such as the last latched scene graph)."""
        deadline = time.monotonic() + timeout_s
        acked = True
        for pub in self.publishers():
            left = max(deadline - time.monotonic(), 0.0)
            acked = pub.wait_for_all_acked(Duration(seconds=left)) and acked
        return acked
