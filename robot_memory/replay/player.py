"""The replay loop without ROS: which topics of a bag replay, when each message
goes out, what was skipped and why, and the summary.

:class:`ReplayPlayer` reads the bag's connections once, keeps the topics whose
type ``resolve`` finds (the node passes a lookup of installed message
classes), and runs passes over the bag with :mod:`replay_core`'s timing,
calling ``publish(item)`` for each message and ``idle(seconds)`` while it
waits (the node spins its executor there). ``/clock`` is generated from bag
time unless ``clock_rate`` is 0.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from robot_memory.bag.reader import BagError, BagReader, iter_messages, normalize_type
from robot_memory.replay.replay_core import (
    CLOCK_TOPIC,
    PauseClock,
    RateCap,
    ReplayItem,
    ReplaySchedule,
    ReplayTiming,
)

PROGRESS_PERIOD_S = 2.0
IMAGE_TYPE = "sensor_msgs/msg/Image"

#: msgtype -> (message class or None, why not)
Resolver = Callable[[str], tuple[object | None, str | None]]


@dataclass(frozen=True)
class ReplayTopic:
    topic: str
    msgtype: str  # normalized (pkg/msg/Name)
    message_class: object
    offered: tuple[object, ...]  # the recorded publishers' QoS profiles


class ReplayPlayer:
    def __init__(
        self,
        bag: Path,
        timing: ReplayTiming,
        resolve: Resolver,
        topics: Sequence[str] | None = None,
        max_image_rate: float = 60.0,
        start_paused: bool = False,
        progress: bool = True,
    ) -> None:
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
        self.replayed: dict[str, ReplayTopic] = {}
        self.skipped: dict[str, dict] = {}  # topic -> type, messages, reason
        for conn in conns:
            if conn.topic not in wanted or conn.topic in self.replayed:
                continue
            if conn.topic in self.skipped:
                continue
            cls, why = resolve(conn.msgtype)
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
            offered = tuple(getattr(conn.ext, "offered_qos_profiles", ()) or ())
            msgtype = normalize_type(conn.msgtype)
            self.replayed[conn.topic] = ReplayTopic(conn.topic, msgtype, cls, offered)
        self.topics = sorted(self.replayed)
        self.image_cap = RateCap(max_image_rate if timing.fast else 0.0)
        self.pause_clock = PauseClock(time.monotonic(), paused=start_paused)
        self.stop = threading.Event()
        self.counts: Counter[str] = Counter()
        self.passes = 0
        self.backward_jumps = 0

    def set_paused(self, paused: bool) -> None:
        now = time.monotonic()
        (self.pause_clock.pause if paused else self.pause_clock.resume)(now)

    def nothing_to_replay(self) -> str | None:
        """Why nothing can be replayed, or None."""
        if self.replayed:
            return None
        why = "; ".join(f"{t}: {i['reason']}" for t, i in sorted(self.skipped.items()))
        return f"every topic is skipped ({why})" if why else "the bag has no topics"

    def _wait_until(self, due: float, idle: Callable[[float], None]) -> None:
        while not self.stop.is_set():
            now = time.monotonic()
            remaining = due - self.pause_clock.elapsed(now)
            if remaining <= 0 and not self.pause_clock.paused:
                return
            idle(min(max(remaining, 0.0), 0.05) or 0.05)

    def run(self, publish: Callable[[ReplayItem], None], idle: Callable[[float], None]) -> str:
        """Replay to the end (or forever with loop); returns how it stopped:
        "end" or "interrupt" (``stop`` set)."""
        # the schedule starts now (not when the player was made)
        self.pause_clock = PauseClock(time.monotonic(), paused=self.pause_clock.paused)
        last_print, last_bag_ns = time.monotonic(), None
        pass_index = 0
        while not self.stop.is_set():
            messages = iter_messages(self.bag, self.topics)
            for item in self.schedule.items(messages, pass_index):
                if self.stop.is_set():
                    return "interrupt"
                if item.due_s is not None:
                    self._wait_until(item.due_s, idle)
                elif item.msgtype == IMAGE_TYPE and self.image_cap.period:
                    now = time.monotonic()
                    self._wait_until(self.image_cap.next_due(self.pause_clock.elapsed(now)), idle)
                elif self.pause_clock.paused:
                    self._wait_until(0.0, idle)
                if self.stop.is_set():
                    return "interrupt"
                if last_bag_ns is not None and item.bag_ns < last_bag_ns:
                    self.backward_jumps += 1
                last_bag_ns = item.bag_ns
                publish(item)
                self.counts[item.topic] += 1
                idle(0.0)
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

    def read_nothing(self) -> bool:
        """The bag listed replayable messages and none could be read."""
        return bool(self.replayable()) and not sum(self.counts.values())

    def replayable(self) -> int:
        return sum(self.bag_counts.get(t, 0) for t in self.replayed)

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
            "replayed": sum(n for t, n in self.counts.items() if t in self.replayed),
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
