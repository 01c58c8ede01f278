"""Read rosbag2 bags (MCAP or sqlite3) as serialized messages (ROS-free).

A layer over :class:`rosbags.highlevel.AnyReader` for replay and evaluation
that reads any rosbag2 bag ``ros2 bag record`` writes, or refuses it with a
one-line :class:`BagError`:

* one file or several (a split bag), MCAP or sqlite3, any metadata version;
* with the type definitions inside, or without (older sqlite3 bags): types the
  bag does not define come from rosbags' ROS 2 Kilted type store and this
  project's interface types (:mod:`robot_memory.bag.typedefs`);
* with types whose definition does not parse (service event topics) or that no
  one knows (custom packages): the bag still opens, and
  :meth:`BagReader.why_undecodable` says why such a topic cannot be decoded.
  Its raw messages can still be read (and replayed).

Messages come back as CDR ``bytes``, ready for
``rclpy.serialization.deserialize_message`` or for publishing raw.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rosbags.highlevel import AnyReader
from rosbags.interfaces import Connection, MessageDefinitionFormat
from rosbags.typesys import Stores, get_types_from_idl, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from robot_memory.bag.typedefs import referenced_types
from robot_memory.bag.typedefs import typestore as project_typestore

#: Types a bag does not define are taken from this ROS 2 distribution.
DEFAULT_STORE = Stores.ROS2_KILTED
_IDL_SEP = "=" * 80 + "\n"


@functools.cache
def _default_store() -> Typestore:
    """Read only here (its definitions), so one instance serves every reader:
    the standard types plus this project's (for bags that lack definitions)."""
    return project_typestore(DEFAULT_STORE)


class BagError(ValueError):
    """A bag (or a part of it) that cannot be read; the message is one line."""


def one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def normalize_type(msgtype: str) -> str:
    """``std_msgs/String`` (older bags) -> ``std_msgs/msg/String``."""
    parts = msgtype.strip().split("/")
    return "/".join([parts[0], "msg", parts[1]]) if len(parts) == 2 else msgtype.strip()


def _parse_definition(conn: Connection) -> dict:
    """The types of one connection's definition (as AnyReader parses them)."""
    data = conn.msgdef.data
    if conn.msgdef.format == MessageDefinitionFormat.MSG:
        return get_types_from_msg(data, normalize_type(conn.msgtype))
    types: dict = {}
    if data.startswith(f"{_IDL_SEP}IDL: "):
        for part in data.split(_IDL_SEP)[1:]:
            types.update(get_types_from_idl(part.split("\n", 1)[1]))
    else:
        types.update(get_types_from_idl(data))
    return types


class BagReader(AnyReader):
    """:class:`AnyReader` over one rosbag2 bag that tolerates types it cannot
    decode instead of refusing the whole bag. Use as a context manager."""

    def __init__(self, bag_path: str | Path) -> None:
        path = Path(bag_path)
        if not path.exists():
            raise BagError(f"no bag at {path}")
        if path.suffix == ".bag":
            raise BagError(f"{path} is a ROS 1 bag; convert it with `rosbags-convert` first")
        if path.is_dir() and not (path / "metadata.yaml").exists():
            raise BagError(f"{path} is not a rosbag2 bag: it has no metadata.yaml")
        try:
            super().__init__([path], default_typestore=_default_store())
        except Exception as err:  # noqa: BLE001 - rosbags raises many kinds for a bad bag
            raise BagError(f"cannot open bag {path}: {one_line(err)}") from None
        self.path = path
        self.problems: dict[str, str] = {}  # msgtype -> why its definition is unusable

    def __enter__(self) -> BagReader:
        try:
            self.open()
        except Exception as err:  # noqa: BLE001 - any failure to open is a bad bag
            raise BagError(f"cannot open bag {self.path}: {one_line(err)}") from None
        return self

    def _open(self) -> None:
        """Like AnyReader's, but a definition that does not parse only makes
        its own type undecodable, types without one come from the default
        store, and definitions are not checked against their hashes."""
        assert self.stack is not None and self.default_typestore is not None
        for reader in self.readers:
            self.stack.enter_context(reader)
        connections = [c for reader in self.readers for c in reader.connections]
        bag_types: dict = {}
        done: set[tuple[str, str]] = set()
        for conn in connections:
            key = (conn.msgtype, conn.msgdef.data)
            if conn.msgdef.format == MessageDefinitionFormat.NONE or key in done:
                continue
            done.add(key)
            try:
                bag_types.update(_parse_definition(conn))
            except Exception as err:  # noqa: BLE001 - only this type becomes undecodable
                reason = one_line(err).split(" '", 1)[0]
                self.problems[normalize_type(conn.msgtype)] = (
                    f"its definition in the bag does not parse ({reason})"
                )
        types = dict(bag_types)
        default = self.default_typestore.fielddefs
        todo = [normalize_type(c.msgtype) for c in connections]
        todo += [ref for fields in bag_types.values() for ref in referenced_types(fields[1])]
        while todo:  # what the bag uses and does not define, from the default store
            name = todo.pop()
            if name not in types and name in default:
                types[name] = default[name]
                todo.extend(referenced_types(default[name][1]))
        store = get_typestore(Stores.EMPTY)
        try:
            store.register(types)
        except Exception:  # noqa: BLE001 - one bad type should not take the others with it
            for name, definition in types.items():
                try:
                    store.register({name: definition})
                except Exception as err:  # noqa: BLE001 - recorded as the type's problem
                    self.problems.setdefault(name, f"invalid definition ({one_line(err)})")
        self.connections = connections
        self.typestore = store

    def why_undecodable(self, msgtype: str) -> str | None:
        """None if messages of ``msgtype`` can be decoded, else why not."""
        name = normalize_type(msgtype)
        todo, seen = [name], set()
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            if current not in self.typestore.fielddefs:
                if current in self.problems:
                    return self.problems[current]
                if current == name:
                    return "the bag has no definition of it and it is not a standard ROS 2 type"
                return f"it uses {current}, which the bag does not define"
            todo.extend(referenced_types(self.typestore.fielddefs[current][1]))
        return None

    def decode(self, raw: bytes | memoryview, msgtype: str) -> Any:
        """A message as rosbags' dataclass; :class:`BagError` if it cannot be."""
        try:
            return self.deserialize(bytes(raw), normalize_type(msgtype))
        except Exception as err:  # noqa: BLE001 - a corrupt message is the bag's fault
            raise BagError(f"cannot decode a {msgtype} message: {one_line(err)}") from None

    def read(
        self,
        connections: Collection[Connection],
        start: int | None = None,
        stop: int | None = None,
    ) -> Iterator[tuple[Connection, int, bytes]]:
        """Messages of ``connections`` only (none for an empty collection,
        unlike AnyReader, where empty means all) in log-time order."""
        if not connections:
            return
        try:
            yield from self.messages(connections, start=start, stop=stop)
        except Exception as err:  # noqa: BLE001 - a corrupt file is the bag's fault
            raise BagError(f"reading {self.path} failed: {one_line(err)}") from None


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
    Message types come back normalized (``pkg/msg/Name``).
    """
    with BagReader(bag_path) as reader:
        conns = reader.connections
        if topics is not None:
            wanted = set(topics)
            missing = wanted - {c.topic for c in conns}
            if missing:
                raise BagError(
                    f"topics not in bag {bag_path}: {sorted(missing)}; "
                    f"it has {sorted({c.topic for c in conns})}"
                )
            conns = [c for c in conns if c.topic in wanted]
        for conn, timestamp, raw in reader.read(conns, start=start_ns, stop=stop_ns):
            yield conn.topic, normalize_type(conn.msgtype), timestamp, bytes(raw)


def bag_summary(bag_path: str | Path) -> BagSummary:
    """Topics, types, message counts and time span of a bag."""
    with BagReader(bag_path) as reader:
        summary = BagSummary(path=Path(bag_path), storage=_storage_of(Path(bag_path)))
        for topic, info in reader.topics.items():
            summary.topics[topic] = TopicSummary(info.msgtype or "?", info.msgcount)
        summary.message_count = reader.message_count
        if summary.message_count:
            summary.start_ns = reader.start_time
            summary.end_ns = reader.end_time
    return summary
