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
``/clock`` is generated from bag time (see :mod:`robot_memory.replay.replay_core`
for the timing, ``--fast`` and ``--loop``), so nodes with ``use_sim_time`` follow the bag.

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

    python -m robot_memory.nodes.replay_node BAG [--rate N | --fast] [--loop]
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import rclpy
from rclpy.duration import Duration
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.qos import QoSProfile
from rosbags.interfaces import QosDurability, QosReliability
from rosgraph_msgs.msg import Clock
from std_msgs.msg import Bool

from robot_memory.bag.reader import BagError, BagReader, iter_messages, normalize_type
from robot_memory.nodes import conversions as conv
from robot_memory.nodes.qos import COMMAND, LATCHED, SENSOR
from robot_memory.nodes.topic_tools import import_message_class
from robot_memory.replay.replay_core import (
    CLOCK_TOPIC,
    PauseClock,
    RateCap,
    ReplayItem,
    ReplaySchedule,
    ReplayTiming,
)

PROGRESS_PERIOD_S = 2.0
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
    def __init__(
        self,
        bag: Path,
        timing: ReplayTiming,
        topics: Sequence[str] | None = None,
        max_image_rate: float = 60.0,
        start_paused: bool = False,
        progress: bool = True,
    ) -> None:
        super().__init__("replay")
        self.bag, self.timing, self.progress = bag, timing, progress
        with BagReader(bag) as reader:
            conns = list(reader.connections)
            start, end = (reader.start_time, reader.end_time) if reader.message_count else (0, 0)
            self.bag_counts = {t: info.msgcount for t, info in reader.topics.items()}
        known = {c.topic for c in conns}
        if topics:
            missing = sorted(set(topics) - known)
            if missing:
                raise BagError(f"topics not in {bag}: {missing}; it has {sorted(known)}")
        wanted = set(topics) if topics else known
        self.schedule = ReplaySchedule(start, end, timing)
        if timing.clock_rate:
            wanted.discard(CLOCK_TOPIC)  # generated from bag time instead
        self.pubs: dict[str, Publisher] = {}
        self.skipped: dict[str, dict] = {}  # topic -> type, messages, reason
        for conn in conns:
            if conn.topic not in wanted or conn.topic in self.pubs or conn.topic in self.skipped:
                continue
            cls, why = message_class(conn.msgtype)
            fmt = getattr(conn.ext, "serialization_format", "cdr") or "cdr"
            if fmt != "cdr":
                cls, why = None, f"serialization {fmt!r} is not CDR"
            if cls is None:
                self.skipped[conn.topic] = {
                    "type": conn.msgtype,
                    "messages": self.bag_counts.get(conn.topic, 0),
                    "reason": why,
                }
                continue
            offered = getattr(conn.ext, "offered_qos_profiles", ()) or ()
            msgtype = normalize_type(conn.msgtype)
            self.pubs[conn.topic] = self.create_publisher(
                cls, conn.topic, qos_for(conn.topic, msgtype, offered)
            )
        self.topics = sorted(self.pubs)
        self.clock_pub = (
            self.create_publisher(Clock, CLOCK_TOPIC, 10) if timing.clock_rate else None
        )
        self.image_cap = RateCap(max_image_rate if timing.fast else 0.0)
        self.pause_clock = PauseClock(time.monotonic(), paused=start_paused)
        self.create_subscription(Bool, "/replay/pause", self._on_pause, COMMAND)
        self.stop = threading.Event()
        self.counts: Counter[str] = Counter()
        self.passes = 0
        self.backward_jumps = 0

    def _on_pause(self, msg: Bool) -> None:
        now = time.monotonic()
        (self.pause_clock.pause if msg.data else self.pause_clock.resume)(now)
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
        while time.monotonic() < deadline and not self.stop.is_set():
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

    def _wait_until(self, due: float) -> None:
        while not self.stop.is_set():
            now = time.monotonic()
            remaining = due - self.pause_clock.elapsed(now)
            if remaining <= 0 and not self.pause_clock.paused:
                return
            rclpy.spin_once(self, timeout_sec=min(max(remaining, 0.0), 0.05) or 0.05)

    def _publish(self, item: ReplayItem) -> None:
        if item.is_clock:
            assert self.clock_pub is not None
            self.clock_pub.publish(Clock(clock=conv.to_time(item.bag_ns * 1e-9)))
        else:
            self.pubs[item.topic].publish(item.raw)
        self.counts[item.topic] += 1

    def run(self) -> str:
        """Replay to the end (or forever with loop); returns how it stopped."""
        # the schedule starts now (not when the node was made)
        self.pause_clock = PauseClock(time.monotonic(), paused=self.pause_clock.paused)
        last_print, last_bag_ns = time.monotonic(), None
        pass_index = 0
        while not self.stop.is_set():
            messages = iter_messages(self.bag, self.topics)
            for item in self.schedule.items(messages, pass_index):
                if self.stop.is_set():
                    return "interrupt"
                if item.due_s is not None:
                    self._wait_until(item.due_s)
                elif item.msgtype == "sensor_msgs/msg/Image" and self.image_cap.period:
                    now = time.monotonic()
                    due = self.image_cap.next_due(self.pause_clock.elapsed(now))
                    self._wait_until(due)
                elif self.pause_clock.paused:
                    self._wait_until(0.0)
                if self.stop.is_set():
                    return "interrupt"
                if last_bag_ns is not None and item.bag_ns < last_bag_ns:
                    self.backward_jumps += 1
                last_bag_ns = item.bag_ns
                self._publish(item)
                rclpy.spin_once(self, timeout_sec=0)
                now = time.monotonic()
                if self.progress and now - last_print >= PROGRESS_PERIOD_S:
                    last_print = now
                    t = (item.bag_ns - self.schedule.start_ns) * 1e-9
                    print(
                        f"replay: pass {pass_index} t={t:.2f}/{self.schedule.duration_s:.2f} s, "
                        f"{sum(self.counts.values())} messages",
                        flush=True,
                    )
            self.passes += 1
            pass_index += 1
            if not self.timing.loop:
                return "end"
        return "interrupt"

    def summary(self, stopped_by: str) -> dict:
        return {
            "bag": str(self.bag),
            "stopped_by": stopped_by,
            "passes": self.passes,
            "rate": None if self.timing.fast else self.timing.rate,
            "fast": self.timing.fast,
            "bag_duration_s": round(self.schedule.duration_s, 6),
            "planned_pass_wall_s": self.schedule.pass_wall_s,
            "backward_jumps": self.backward_jumps,
            "counts": dict(sorted(self.counts.items())),
            "replayed": sum(n for t, n in self.counts.items() if t in self.pubs),
            "bag_messages": sum(self.bag_counts.values()),
            "skipped": dict(sorted(self.skipped.items())),
        }

    def report_lines(self) -> list[str]:
        """What was replayed per topic, and what skipped and why."""
        lines = [
            f"replay: {t}: replayed {self.counts.get(t, 0)} messages "
            f"({self.bag_counts.get(t, 0)} in the bag)"
            for t in self.topics
        ]
        lines += [
            f"replay: {t}: skipped {info['messages']} messages: {info['reason']}"
            for t, info in sorted(self.skipped.items())
        ]
        return lines


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="robot-memory replay", description=__doc__.split("\n")[0])
    p.add_argument("bag", type=Path)
    speed = p.add_mutually_exclusive_group()
    speed.add_argument(
        "--rate", type=float, default=1.0, help="1 = recorded timing, N = N x faster"
    )
    speed.add_argument(
        "--fast", action="store_true", help="no timing; images capped by --max-image-rate"
    )
    p.add_argument(
        "--max-image-rate", type=float, default=60.0, help="images/s in --fast (0 = no cap)"
    )
    p.add_argument("--topics", nargs="+", default=None, help="replay only these topics")
    p.add_argument("--loop", action="store_true", help="start over at the end (time jumps back)")
    p.add_argument(
        "--clock-rate", type=float, default=100.0, help="Hz of bag time; 0 = the bag's /clock"
    )
    p.add_argument("--start-paused", action="store_true", help="wait for /replay/pause false")
    p.add_argument(
        "--wait-for-subscribers",
        type=float,
        default=0.0,
        metavar="S",
        help="wait up to S seconds for subscribers (all the graph lists) before starting",
    )
    p.add_argument(
        "--drain",
        type=float,
        default=5.0,
        metavar="S",
        help="at the end, wait up to S seconds for reliable subscribers to acknowledge",
    )
    p.add_argument("--no-progress", action="store_true")
    return p


def _error(text: str, code: int = 2) -> int:
    print(f"robot-memory replay: error: {text}", file=sys.stderr, flush=True)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.bag.exists():
        return _error(f"no bag at {args.bag}")
    try:
        timing = ReplayTiming(
            rate=args.rate, fast=args.fast, clock_rate=args.clock_rate, loop=args.loop
        )
    except ValueError as err:
        return _error(str(err))
    rclpy.init(signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    node: ReplayNode | None = None
    stopped_by = "error"
    code = 0
    try:
        node = ReplayNode(
            args.bag,
            timing,
            args.topics,
            args.max_image_rate,
            args.start_paused,
            not args.no_progress,
        )
        if not node.pubs:
            why = "; ".join(f"{t}: {i['reason']}" for t, i in sorted(node.skipped.items()))
            what = f"every topic is skipped ({why})" if why else "the bag has no topics"
            code = _error(f"nothing to replay in {args.bag}: {what}")
            return code
        stop = node.stop

        def on_signal(signum: int, frame: object) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        if args.wait_for_subscribers > 0:
            node.wait_for_subscribers(args.wait_for_subscribers)
        stopped_by = node.run()
        if stopped_by == "end" and args.drain > 0 and not node.drain(args.drain):
            print(f"replay: some messages not acknowledged within {args.drain} s", flush=True)
        replayable = sum(node.bag_counts.get(t, 0) for t in node.pubs)
        if stopped_by == "end" and replayable and not sum(node.counts.values()):
            code = _error(f"read 0 of the {replayable} messages {args.bag} lists", 1)
    except (BagError, ValueError) as err:
        return _error(str(err))
    except (KeyboardInterrupt, ExternalShutdownException):
        stopped_by = "interrupt"
    finally:
        if node is not None:
            for line in node.report_lines():
                print(line, flush=True)
            print("replay summary: " + json.dumps(node.summary(stopped_by)), flush=True)
            node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
