"""Read rosbag2 bags (MCAP or sqlite3) as serialized messages (ROS-free).

A thin layer over :class:`rosbags.highlevel.AnyReader` for replay and
evaluation: messages come back as CDR ``bytes``, ready for
``rclpy.serialization.deserialize_message`` or for publishing raw.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rosbags.highlevel import AnyReader


@dataclass(frozen=True)
class TopicSummary:
    msgtype: str
    count: int


@dataclass
class BagSummary:
    path: Path
    storage: str
    topics: dict[str, TopicSummary] = field(default_factory=dict)
    message_count: int = 0
    start_ns: int = 0
    end_ns: int = 0

    @property
    def duration_s(self) -> float:
        return max(0, self.end_ns - self.start_ns) * 1e-9

    def __str__(self) -> str:
        lines = [
            f"bag {self.path} ({self.storage}): {self.message_count} messages, "
            f"{len(self.topics)} topics, {self.duration_s:.2f} s"
        ]
        width = max((len(t) for t in self.topics), default=0)
        for topic, info in sorted(self.topics.items()):
            lines.append(f"  {topic:<{width}}  {info.count:>7}  {info.msgtype}")
        return "\n".join(lines)


def _storage_of(path: Path) -> str:
    suffixes = {p.suffix for p in path.iterdir()} if path.is_dir() else {path.suffix}
    kinds = [
        name for suffix, name in ((".mcap", "mcap"), (".db3", "sqlite3")) if suffix in suffixes
    ]
    return ",".join(kinds) or "unknown"


def _open(bag_path: str | Path) -> AnyReader:
    path = Path(bag_path)
    if not path.exists():
        raise FileNotFoundError(f"no bag at {path}")
    return AnyReader([path])


def iter_messages(
    bag_path: str | Path,
    topics: Iterable[str] | None = None,
    *,
    start_ns: int | None = None,
    stop_ns: int | None = None,
) -> Iterator[tuple[str, str, int, bytes]]:
    """Yield ``(topic, msgtype, timestamp_ns, rawdata)`` in timestamp order.

    ``topics`` limits the topics read; naming a topic the bag does not have
    raises ``ValueError`` (a typo should not look like an empty recording).
    ``start_ns``/``stop_ns`` bound the receive timestamps (stop exclusive).
    """
    with _open(bag_path) as reader:
        conns = reader.connections
        if topics is not None:
            wanted = set(topics)
            missing = wanted - {c.topic for c in conns}
            if missing:
                raise ValueError(
                    f"topics not in bag {bag_path}: {sorted(missing)}; "
                    f"it has {sorted({c.topic for c in conns})}"
                )
            conns = [c for c in conns if c.topic in wanted]
            if not conns:
                return
        for conn, timestamp, raw in reader.messages(conns, start=start_ns, stop=stop_ns):
            yield conn.topic, conn.msgtype, timestamp, bytes(raw)


def bag_summary(bag_path: str | Path) -> BagSummary:
    """Topics, types, message counts and time span of a bag."""
    with _open(bag_path) as reader:
        summary = BagSummary(path=Path(bag_path), storage=_storage_of(Path(bag_path)))
        for topic, info in reader.topics.items():
            summary.topics[topic] = TopicSummary(info.msgtype or "?", info.msgcount)
        summary.message_count = reader.message_count
        if summary.message_count:
            summary.start_ns = reader.start_time
            summary.end_ns = reader.end_time
    return summary
