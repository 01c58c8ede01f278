"""Record topics to a rosbag2 bag (MCAP or sqlite3): the ``robot-memory record`` node.

Raw subscriptions (serialized CDR, never deserialized) found on the ROS graph,
with a QoS that matches their publishers (latched topics captured), stamped
with their receive time on the node clock, feed the data path
:class:`robot_memory.bag.recording.Recording` (bounded queue, writer thread,
counts on /diagnostics). Every topic's type definition goes into the bag, the
project's own types too, so Foxglove and rosbags decode it without the
interface packages; "all topics" leaves the hidden action topics out, as
``ros2 bag record --all`` does. The command line is
:mod:`robot_memory.apps.record_cli`; docs/evaluation.md has the details.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from rclpy.clock import Clock, ClockType
from rclpy.context import Context
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, ReliabilityPolicy
from rclpy.subscription import Subscription

from robot_memory.bag.queued_writer import MAX_QUEUE_BYTES
from robot_memory.bag.recording import Recording
from robot_memory.bag.writer import BagWriter, UnknownMessageTypeError
from robot_memory.health.counters import HealthCounters
from robot_memory.nodes.diagnostics import DiagnosticsPublisher
from robot_memory.nodes.input_boundary import InputBoundary
from robot_memory.nodes.topic_tools import choose_qos, import_message_class, is_hidden, qos_to_bag

DISCOVERY_PERIOD_S = 0.5
WAIT_WARNING_S = 5.0


class Recorder(Node):
    """Subscribes raw to ``topics`` (all non-hidden topics when None) as they
    appear on the graph and writes every message into ``writer``."""

    def __init__(
        self,
        writer: BagWriter,
        topics: Sequence[str] | None = None,
        *,
        node_name: str = "recorder",
        context: Context | None = None,
        use_sim_time: bool = False,
        max_queue_bytes: int = MAX_QUEUE_BYTES,
    ) -> None:
        overrides = [Parameter("use_sim_time", Parameter.Type.BOOL, True)] if use_sim_time else []
        super().__init__(node_name, context=context, parameter_overrides=overrides)
        requested = [self.resolve_topic_name(t) for t in topics] if topics else None
        self.health = HealthCounters("recorder")
        self.inputs = InputBoundary(self, self.health)  # no message ends the recording
        self.recording = Recording(
            writer, self.health, requested, max_queue_bytes, self._first_write_failure
        )
        self._subs: dict[str, tuple[Subscription, tuple[bool, bool]]] = {}
        self._started = time.monotonic()
        self._warned_waiting = False
        DiagnosticsPublisher(self, self.health)
        # Steady timers: with use_sim_time, discovery must not wait for /clock.
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(DISCOVERY_PERIOD_S, self.discover, clock=steady)
        self.create_timer(1.0, self._update_health, clock=steady)
        self.discover()

    def discover(self) -> None:
        """Subscribe to new topics and re-subscribe where the publishers' QoS changed."""
        graph = dict(self.get_topic_names_and_types())
        requested = self.recording.requested
        for topic in requested if requested is not None else sorted(graph):
            if topic in self.recording.skipped or topic not in graph:
                continue
            if requested is None and is_hidden(topic):
                continue
            offered = self.get_publishers_info_by_topic(topic)
            if offered:  # else wait for a publisher: its QoS decides ours
                self._subscribe(topic, graph[topic], offered)
        waiting = self.recording.waiting_for()
        late = time.monotonic() - self._started > WAIT_WARNING_S
        if waiting and late and not self._warned_waiting:
            self._warned_waiting = True
            self.get_logger().warning(f"still waiting for publishers on {waiting}")

    def _subscribe(self, topic: str, types: list[str], offered: list) -> None:
        qos = choose_qos([info.qos_profile for info in offered])
        key = (
            qos.reliability == ReliabilityPolicy.RELIABLE,
            qos.durability == DurabilityPolicy.TRANSIENT_LOCAL,
        )
        if topic in self._subs:
            sub, have = self._subs[topic]
            if have == key:
                return
            self.get_logger().info(f"{topic}: publishers changed, re-subscribing")
            self.destroy_subscription(sub)
            del self._subs[topic]
        msgtype = types[0]
        if len(types) > 1:
            self.get_logger().warning(f"{topic} has several types {types}; recording {msgtype}")
        try:
            msg_class = import_message_class(msgtype)
            type_hash = next(
                (str(i.topic_type_hash) for i in offered if i.topic_type == msgtype), None
            )
            qos_list = [qos_to_bag(i.qos_profile) for i in offered]
            self.recording.writer.add_topic(topic, msgtype, qos_list, type_hash=type_hash)
        except Exception as err:  # noqa: BLE001 - one topic's type never ends the recording
            if isinstance(err, UnknownMessageTypeError):
                reason = str(err)
            elif isinstance(err, ImportError | AttributeError):
                reason = f"cannot import the Python message class for {msgtype}: {err}"
            else:
                reason = f"cannot record {msgtype}: {type(err).__name__}: {err}"
            self.recording.skipped[topic] = reason
            self.get_logger().error(f"not recording {topic}: {reason}")
            return
        sub = self.inputs.subscribe(msg_class, topic, self._taker(topic), qos, raw=True)
        self._subs[topic] = (sub, key)
        self.get_logger().info(
            f"recording {topic} [{msgtype}] "
            f"({'reliable' if key[0] else 'best effort'}, "
            f"{'transient local' if key[1] else 'volatile'})"
        )

    def _taker(self, topic: str):
        return lambda raw: self.recording.take(topic, raw, self.get_clock().now().nanoseconds)

    def _first_write_failure(self, topic: str, err: Exception) -> None:  # writer thread
        self.get_logger().error(f"writing {topic} failed: {err}")

    def _update_health(self) -> None:
        self.recording.flush_early(self.get_clock().now().nanoseconds)
        self.recording.update_health(len(self._subs))

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop taking messages and write out everything queued."""
        for sub, _ in self._subs.values():
            self.destroy_subscription(sub)
        self._subs.clear()
        self.recording.flush_early(self.get_clock().now().nanoseconds)
        if not self.recording.stop(timeout_s):
            self.get_logger().error(f"the bag writer did not finish within {timeout_s:.0f} s")

    def missing(self) -> dict[str, str]:
        return self.recording.missing(name for name, _ in self.get_topic_names_and_types())
