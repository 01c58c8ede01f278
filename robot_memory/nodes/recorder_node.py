"""Record topics to a rosbag2 bag (MCAP or sqlite3): the ``robot-memory record`` node.

Raw subscriptions (serialized CDR, never deserialized) feed a bounded queue; a
writer thread drains it into :class:`~robot_memory.bag.writer.BagWriter`, so a
slow disk never stalls the executor. Topics are found on the ROS graph and
subscribed with a QoS that matches their publishers (best effort if any
publisher is, transient local if all are, so latched topics are captured).
Messages are stamped with their receive time on the node clock (sim time when
``use_sim_time`` is set). The node publishes its rates, queue and drop/failure
counts on /diagnostics.

Every topic's type definition goes into the bag (see
:mod:`robot_memory.bag.writer`), the project's own types too
(``robot_memory_interfaces``: /perception/observations, /memory/scene_graph,
/planner/plan, /planner/status, /policy/status, /safety/status,
/sim/ground_truth; ``tf2_msgs``: /tf, /tf_static), so Foxglove and rosbags
decode the bag on a machine without the interface packages. Hidden topics
(an action's ``.../_action/feedback`` and ``.../_action/status``) are recorded
when named; "all topics" leaves them out, as ``ros2 bag record --all`` does.

    python -m robot_memory.nodes.recorder_node -o BAG [TOPIC ...] [--storage sqlite3]
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import rclpy
from rclpy.clock import Clock, ClockType
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, ReliabilityPolicy
from rclpy.subscription import Subscription

from robot_memory.bag.queued_writer import MAX_QUEUE_BYTES, QueuedWriter
from robot_memory.bag.writer import BagWriter, UnknownMessageTypeError
from robot_memory.health.counters import HealthCounters
from robot_memory.nodes.diagnostics import DiagnosticsPublisher
from robot_memory.nodes.input_boundary import InputBoundary
from robot_memory.nodes.topic_tools import choose_qos, import_message_class, is_hidden, qos_to_bag

DISCOVERY_PERIOD_S = 0.5
PROGRESS_PERIOD_S = 2.0
WAIT_WARNING_S = 5.0
#: Messages held while sim time has no /clock yet (they get the first clock time).
MAX_EARLY = 1000


@dataclass
class RecordSummary:
    output: Path
    storage: str
    duration_s: float
    stopped_by: str  # "duration", "stop_event" or "interrupt"
    counts: dict[str, int] = field(default_factory=dict)  # messages written, per topic
    types: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)  # requested topic -> why not recorded
    dropped: int = 0  # writer queue full
    failed: int = 0  # write errors
    bytes_written: int = 0

    @property
    def message_count(self) -> int:
        return sum(self.counts.values())

    def __str__(self) -> str:
        lines = [
            f"recorded {self.message_count} messages ({self.bytes_written / 1e6:.1f} MB) on "
            f"{len(self.counts)} topics in {self.duration_s:.1f} s to {self.output} "
            f"({self.storage}; stopped by {self.stopped_by})"
        ]
        width = max((len(t) for t in self.counts), default=0)
        for topic in sorted(self.counts):
            lines.append(f"  {topic:<{width}}  {self.counts[topic]:>7}  {self.types[topic]}")
        for topic, why in sorted(self.missing.items()):
            lines.append(f"  NOT RECORDED {topic}: {why}")
        if self.dropped or self.failed:
            lines.append(f"  dropped (queue full): {self.dropped}; failed writes: {self.failed}")
        return "\n".join(lines)


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
        self.writer = writer
        self.requested = [self.resolve_topic_name(t) for t in topics] if topics else None
        self.health = HealthCounters("recorder")
        self.inputs = InputBoundary(self, self.health)  # no message ends the recording
        self.skipped: dict[str, str] = {}  # topic -> reason it cannot be recorded
        self._subs: dict[str, tuple[Subscription, tuple[bool, bool]]] = {}
        self._queue = QueuedWriter(writer, max_queue_bytes, on_error=self._write_failed)
        self._started = time.monotonic()
        self._warned_waiting = False
        self._early: list[tuple[str, bytes]] = []
        self._dropped_early = 0
        DiagnosticsPublisher(self, self.health)
        # Steady timers: with use_sim_time, discovery must not wait for /clock.
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(DISCOVERY_PERIOD_S, self.discover, clock=steady)
        self.create_timer(1.0, self._update_health, clock=steady)
        self.discover()

    # -- discovery ---------------------------------------------------------
    def waiting_for(self) -> list[str]:
        """Requested topics not subscribed yet (and not skipped)."""
        if self.requested is None:
            return []
        seen = self.writer.topics  # every topic ever subscribed
        return [t for t in self.requested if t not in seen and t not in self.skipped]

    def discover(self) -> None:
        """Subscribe to new topics and re-subscribe where the publishers' QoS changed."""
        graph = dict(self.get_topic_names_and_types())
        wanted = self.requested if self.requested is not None else sorted(graph)
        for topic in wanted:
            if topic in self.skipped or topic not in graph:
                continue
            if self.requested is None and is_hidden(topic):
                continue
            offered = self.get_publishers_info_by_topic(topic)
            if not offered:
                continue  # wait for a publisher: its QoS decides ours
            self._subscribe(topic, graph[topic], offered)
        waiting = self.waiting_for()
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
            self.writer.add_topic(
                topic, msgtype, [qos_to_bag(i.qos_profile) for i in offered], type_hash=type_hash
            )
        except Exception as err:  # noqa: BLE001 - one topic's type never ends the recording
            if isinstance(err, UnknownMessageTypeError):
                reason = str(err)
            elif isinstance(err, ImportError | AttributeError):
                reason = f"cannot import the Python message class for {msgtype}: {err}"
            else:
                reason = f"cannot record {msgtype}: {type(err).__name__}: {err}"
            self.skipped[topic] = reason
            self.get_logger().error(f"not recording {topic}: {reason}")
            return
        sub = self.inputs.subscribe(
            msg_class, topic, lambda raw, t=topic: self._on_message(t, raw), qos, raw=True
        )
        self._subs[topic] = (sub, key)
        self.get_logger().info(
            f"recording {topic} [{msgtype}] "
            f"({'reliable' if key[0] else 'best effort'}, "
            f"{'transient local' if key[1] else 'volatile'})"
        )

    # -- data path ---------------------------------------------------------
    def _on_message(self, topic: str, raw: bytes) -> None:
        stamp_ns = self.get_clock().now().nanoseconds
        if stamp_ns == 0:  # use_sim_time and no /clock yet: hold, don't stamp 1970
            if len(self._early) < MAX_EARLY:
                self._early.append((topic, raw))
            else:
                self._dropped_early += 1
                self.health.reject("no /clock yet")
            return
        self._flush_early(stamp_ns)
        self._enqueue(topic, raw, stamp_ns)

    def _enqueue(self, topic: str, raw: bytes, stamp_ns: int) -> None:
        self.health.tick(topic, stamp_ns * 1e-9)
        if not self._queue.put(topic, raw, stamp_ns):
            self.health.reject("queue full")

    def _flush_early(self, stamp_ns: int) -> None:
        early, self._early = self._early, []
        for topic, raw in early:
            self._enqueue(topic, raw, stamp_ns)

    def _write_failed(self, topic: str, err: Exception) -> None:  # on the writer thread
        self.health.reject("write failed")
        if self._queue.failed == 1:
            self.get_logger().error(f"writing {topic} failed: {err}")

    @property
    def dropped(self) -> int:
        return self._queue.dropped + self._dropped_early

    @property
    def failed(self) -> int:
        return self._queue.failed

    def _update_health(self) -> None:
        if self._early and (now := self.get_clock().now().nanoseconds):
            self._flush_early(now)
        self.health.set_value("messages_written", self.writer.message_count)
        self.health.set_value("bytes_written", self.writer.bytes_written)
        self.health.set_value("queue_bytes", self._queue.queued_bytes)
        self.health.set_value("dropped", self.dropped)
        self.health.set_value("failed", self.failed)
        self.health.set_value("topics", len(self._subs))
        self.health.set_value("waiting_for", " ".join(self.waiting_for()))

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop taking messages and write out everything queued."""
        for sub, _ in self._subs.values():
            self.destroy_subscription(sub)
        self._subs.clear()
        self._flush_early(self.get_clock().now().nanoseconds)
        if not self._queue.stop(timeout_s):
            self.get_logger().error(f"the bag writer did not finish within {timeout_s:.0f} s")

    def missing(self) -> dict[str, str]:
        graph = dict(self.get_topic_names_and_types())
        found = {
            t: "has no publisher" if t in graph else "never appeared" for t in self.waiting_for()
        }
        return {**found, **self.skipped}

    def progress_line(self, elapsed_s: float) -> str:
        counts = self.writer.counts
        parts = [f"{t} {n}" for t, n in sorted(counts.items())]
        if waiting := self.waiting_for():
            parts.append(f"waiting for {' '.join(waiting)}")
        return (
            f"[record {elapsed_s:5.1f} s] {sum(counts.values())} msgs, "
            f"{self.writer.bytes_written / 1e6:.1f} MB | " + " | ".join(parts)
        )


def record(
    output: Path,
    topics: list[str] | None,
    storage: str = "mcap",
    duration_s: float | None = None,
    stop_event: threading.Event | None = None,
    progress: bool = True,
    *,
    use_sim_time: bool = False,
    ros_args: list[str] | None = None,
) -> RecordSummary:
    """Record ``topics`` (every topic when None) into a new bag at ``output``.

    Runs until ``duration_s`` passes, ``stop_event`` is set or Ctrl-C
    (KeyboardInterrupt, swallowed here); the bag is always closed so what was
    recorded is readable. Raises ``FileExistsError`` if ``output`` exists and
    ``ValueError`` for an unknown storage, before anything is started.
    """
    writer = BagWriter(output, storage)
    writer.open()
    context = Context()
    stopped_by = "interrupt"
    missing: dict[str, str] = {}
    dropped = failed = 0
    start = time.monotonic()
    try:
        rclpy.init(context=context, args=ros_args)
        node = Recorder(writer, topics, context=context, use_sim_time=use_sim_time)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        if progress:
            what = " ".join(node.requested) if node.requested else "all topics"
            print(f"[record] recording {what} to {output} ({storage}); Ctrl-C stops", flush=True)
        next_progress = start + PROGRESS_PERIOD_S
        try:
            while True:
                if stop_event is not None and stop_event.is_set():
                    stopped_by = "stop_event"
                    break
                if duration_s is not None and time.monotonic() - start >= duration_s:
                    stopped_by = "duration"
                    break
                executor.spin_once(timeout_sec=0.05)
                if progress and time.monotonic() >= next_progress:
                    next_progress += PROGRESS_PERIOD_S
                    print(node.progress_line(time.monotonic() - start), flush=True)
        except KeyboardInterrupt:
            stopped_by = "interrupt"
        finally:
            node.stop()
            missing = node.missing()
            dropped, failed = node.dropped, node.failed
            executor.shutdown(timeout_sec=1.0)
            node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)
        writer.close()
    return RecordSummary(
        output=Path(output),
        storage=storage,
        duration_s=time.monotonic() - start,
        stopped_by=stopped_by,
        counts=writer.counts,
        types=writer.topics,
        missing=missing,
        dropped=dropped,
        failed=failed,
        bytes_written=writer.bytes_written,
    )


def main(argv: list[str] | None = None) -> int:
    from robot_memory.bringup.ros_env import apply_to_current_process

    args_in = sys.argv[1:] if argv is None else argv
    ros_args: list[str] = []
    if "--ros-args" in args_in:
        cut = args_in.index("--ros-args")
        args_in, ros_args = args_in[:cut], args_in[cut:]
    parser = argparse.ArgumentParser(
        prog="robot-memory record", description="Record topics to a rosbag2 bag."
    )
    parser.add_argument("-o", "--output", required=True, help="bag folder to create")
    parser.add_argument("topics", nargs="*", help="topics to record (default: all)")
    parser.add_argument("--storage", choices=["mcap", "sqlite3"], default="mcap")
    parser.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    parser.add_argument("--use-sim-time", action="store_true", help="stamp with /clock time")
    parser.add_argument("--no-progress", action="store_true", help="no periodic progress line")
    args = parser.parse_args(args_in)

    apply_to_current_process()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        summary = record(
            Path(args.output),
            args.topics or None,
            storage=args.storage,
            duration_s=args.duration,
            stop_event=stop,
            progress=not args.no_progress,
            use_sim_time=args.use_sim_time,
            ros_args=ros_args or None,
        )
    except (FileExistsError, ValueError) as err:
        print(f"recorder: {err}", file=sys.stderr)
        return 2
    print(summary, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
