"""The recorder's data path without ROS: messages in, a bag out.

:class:`Recording` takes serialized messages with their receive stamp, holds
those that come before sim time has a ``/clock`` (they get the first clock
time rather than 1970), queues the rest for a :class:`QueuedWriter` thread,
counts what it drops, and says what the recording lacks.
:class:`RecordSummary` is what ``robot-memory record`` prints at the end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from robot_memory.bag.queued_writer import MAX_QUEUE_BYTES, QueuedWriter
from robot_memory.bag.writer import BagWriter
from robot_memory.health.counters import HealthCounters

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


class Recording:
    """Writes ``take``n messages into ``writer`` through a bounded queue."""

    def __init__(
        self,
        writer: BagWriter,
        health: HealthCounters,
        requested: Sequence[str] | None,
        max_queue_bytes: int = MAX_QUEUE_BYTES,
        on_first_failure: Callable[[str, Exception], None] | None = None,
    ) -> None:
        self.writer, self.health, self.requested = writer, health, requested
        self.skipped: dict[str, str] = {}  # topic -> reason it cannot be recorded
        self._on_first_failure = on_first_failure
        self._queue = QueuedWriter(writer, max_queue_bytes, on_error=self._write_failed)
        self._early: list[tuple[str, bytes]] = []
        self._dropped_early = 0

    def take(self, topic: str, raw: bytes, stamp_ns: int) -> None:
        """One message received at ``stamp_ns`` (0: sim time without /clock yet)."""
        if stamp_ns == 0:  # hold, don't stamp 1970
            if len(self._early) < MAX_EARLY:
                self._early.append((topic, raw))
            else:
                self._dropped_early += 1
                self.health.reject("no /clock yet")
            return
        self.flush_early(stamp_ns)
        self._enqueue(topic, raw, stamp_ns)

    def _enqueue(self, topic: str, raw: bytes, stamp_ns: int) -> None:
        self.health.tick(topic, stamp_ns * 1e-9)
        if not self._queue.put(topic, raw, stamp_ns):
            self.health.reject("queue full")

    def flush_early(self, stamp_ns: int) -> None:
        """Write the held messages with ``stamp_ns`` (once the clock runs)."""
        if not stamp_ns:
            return
        early, self._early = self._early, []
        for topic, raw in early:
            self._enqueue(topic, raw, stamp_ns)

    def _write_failed(self, topic: str, err: Exception) -> None:  # on the writer thread
        self.health.reject("write failed")
        if self._queue.failed == 1 and self._on_first_failure is not None:
            self._on_first_failure(topic, err)

    @property
    def dropped(self) -> int:
        return self._queue.dropped + self._dropped_early

    @property
    def failed(self) -> int:
        return self._queue.failed

    def waiting_for(self) -> list[str]:
        """Requested topics not subscribed yet (and not skipped)."""
        if self.requested is None:
            return []
        seen = self.writer.topics  # every topic ever subscribed
        return [t for t in self.requested if t not in seen and t not in self.skipped]

    def missing(self, graph_topics: Iterable[str]) -> dict[str, str]:
        """Requested topics not recorded, and why."""
        graph = set(graph_topics)
        found = {
            t: "has no publisher" if t in graph else "never appeared" for t in self.waiting_for()
        }
        return {**found, **self.skipped}

    def stop(self, timeout_s: float) -> bool:
        """Write out everything queued; False if the writer did not finish in time."""
        return self._queue.stop(timeout_s)

    def update_health(self, subscribed: int) -> None:
        self.health.set_value("messages_written", self.writer.message_count)
        self.health.set_value("bytes_written", self.writer.bytes_written)
        self.health.set_value("queue_bytes", self._queue.queued_bytes)
        self.health.set_value("dropped", self.dropped)
        self.health.set_value("failed", self.failed)
        self.health.set_value("topics", subscribed)
        self.health.set_value("waiting_for", " ".join(self.waiting_for()))
        for topic, count in self.writer.counts.items():
            self.health.set_value(f"{topic}.written", count)

    def progress_line(self, elapsed_s: float) -> str:
        counts: Mapping[str, int] = self.writer.counts
        parts = [f"{t} {n}" for t, n in sorted(counts.items())]
        if waiting := self.waiting_for():
            parts.append(f"waiting for {' '.join(waiting)}")
        return (
            f"[record {elapsed_s:5.1f} s] {sum(counts.values())} msgs, "
            f"{self.writer.bytes_written / 1e6:.1f} MB | " + " | ".join(parts)
        )
