"""Write rosbag2 bags (MCAP or sqlite3) from serialized CDR messages (ROS-free).

:class:`BagWriter` wraps :class:`rosbags.rosbag2.Writer`. Every topic's message
definition and RIHS01 type hash are written into the bag (MCAP: the channel's
schema, encoding ``ros2msg``, the full text with its dependencies as rosbag2
writes it; sqlite3: the ``message_definitions`` table), taken from the rosbags
type store for ROS 2 Kilted plus this project's interface types
(:mod:`robot_memory.bag.typedefs`: ``robot_memory_interfaces``, ``tf2_msgs``),
so ``ros2 bag``, Foxglove and :class:`rosbags.highlevel.AnyReader` can decode
the bag without the message packages. Other types the store does not know
(other custom interface packages) are loaded from their installed
``share/<package>/msg/<Name>.msg`` files when those exist.

The writer is thread-safe: one thread may add topics while another writes.
(Python's sqlite3 objects only work in the thread that made them, so a sqlite3
bag does all its storage calls on one thread of its own.)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from rosbags.interfaces import (
    Connection,
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg
from rosbags.typesys.store import Typestore

from robot_memory.bag.typedefs import message_definition, referenced_types, share_dirs
from robot_memory.bag.typedefs import typestore as project_typestore

log = logging.getLogger(__name__)
T = TypeVar("T")

STORAGES: dict[str, StoragePlugin] = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
#: The ROS distribution whose message definitions go into the bag by default.
DEFAULT_STORE = Stores.ROS2_KILTED
#: rmw's "infinite" duration (RMW_DURATION_INFINITE), as rosbag2 writes it.
INFINITE = QosTime(sec=9223372036, nsec=854775807)


class BagWriterError(RuntimeError):
    """The bag could not be written (not open, unknown topic, ...)."""


class UnknownMessageTypeError(BagWriterError, ValueError):
    """A message type with no definition the bag could carry."""


class BagExistsError(FileExistsError):
    """The output path exists; bags are never overwritten."""


@dataclass(frozen=True)
class TopicHandle:
    """A topic registered with :meth:`BagWriter.add_topic`."""

    topic: str
    msgtype: str
    type_hash: str
    connection: Connection


def make_qos(*, reliable: bool = True, transient_local: bool = False, depth: int = 10) -> Qos:
    """A rosbags QoS record (what the bag's metadata lists as offered QoS)."""
    return Qos(
        history=QosHistory.KEEP_LAST,
        depth=depth,
        reliability=QosReliability.RELIABLE if reliable else QosReliability.BEST_EFFORT,
        durability=QosDurability.TRANSIENT_LOCAL if transient_local else QosDurability.VOLATILE,
        deadline=INFINITE,
        lifespan=INFINITE,
        liveliness=QosLiveliness.AUTOMATIC,
        liveliness_lease_duration=INFINITE,
        avoid_ros_namespace_conventions=False,
    )


def normalize_msgtype(msgtype: str) -> str:
    """``sensor_msgs/Image`` or ``sensor_msgs/msg/Image`` -> ``sensor_msgs/msg/Image``."""
    parts = msgtype.strip().split("/")
    if len(parts) == 2:
        parts = [parts[0], "msg", parts[1]]
    if len(parts) != 3 or not all(parts):
        raise UnknownMessageTypeError(
            f"malformed message type {msgtype!r}: expected 'package/msg/Name', "
            "e.g. 'sensor_msgs/msg/Image'"
        )
    return "/".join(parts)


def default_msg_search_paths() -> list[Path]:
    """``share`` folders that may hold interface packages' ``.msg`` files: each
    ``$AMENT_PREFIX_PATH`` entry (a sourced ROS 2) and this Python's prefix
    (where the PyPI ROS wheels install theirs)."""
    return share_dirs()


class BagWriter:
    """Write serialized (CDR) messages into a new rosbag2 bag.

    >>> with BagWriter("out/bag", storage="mcap") as bag:
    ...     bag.add_topic("/chatter", "std_msgs/msg/String")
    ...     bag.write("/chatter", raw_cdr_bytes, timestamp_ns)
    """

    def __init__(
        self,
        path: str | Path,
        storage: str = "mcap",
        *,
        typestore: Typestore | None = None,
        msg_search_paths: Sequence[str | Path] | None = None,
    ) -> None:
        self.path = Path(path)
        if storage not in STORAGES:
            raise ValueError(f"unknown storage {storage!r}; choose one of {sorted(STORAGES)}")
        if self.path.exists():
            raise BagExistsError(
                f"{self.path} already exists; a bag is a new folder and is never "
                "overwritten: pick another output name or remove the old bag"
            )
        self.storage = storage
        self.typestore = typestore if typestore is not None else project_typestore(DEFAULT_STORE)
        extra = [Path(p) for p in msg_search_paths or ()]
        self.msg_search_paths = [*extra, *default_msg_search_paths()]
        self._writer = Writer(
            self.path, version=Writer.VERSION_LATEST, storage_plugin=STORAGES[storage]
        )
        self._lock = threading.Lock()
        self._handles: dict[str, TopicHandle] = {}
        self._counts: dict[str, int] = {}
        self._bytes = 0
        self._open = False
        self._closed = False
        self._owner: ThreadPoolExecutor | None = None

    def _run(self, fn: Callable[..., T], *args: object) -> T:
        """Run a storage call, on the owner thread for sqlite3."""
        if self._owner is None:
            return fn(*args)
        return self._owner.submit(fn, *args).result()

    # -- lifecycle ---------------------------------------------------------
    def open(self) -> BagWriter:
        with self._lock:
            if self._open or self._closed:
                raise BagWriterError(f"bag {self.path} was already opened")
            if self.storage == "sqlite3":
                self._owner = ThreadPoolExecutor(1, thread_name_prefix="sqlite3-bag")
            try:
                self._run(self._writer.open)
            except Exception as err:
                self._shutdown_owner()
                if self.path.exists():
                    raise BagExistsError(f"{self.path} already exists: {err}") from err
                raise
            self._open = True
        return self

    def close(self) -> None:
        """Finish the bag: write the MCAP summary / sqlite metadata and
        ``metadata.yaml``. Safe to call twice."""
        with self._lock:
            if not self._open:
                return
            self._open = False
            self._closed = True
            try:
                self._run(self._writer.close)
            except Exception:
                self._run(self._writer.abort)
                raise
            finally:
                self._shutdown_owner()

    def _shutdown_owner(self) -> None:
        if self._owner is not None:
            self._owner.shutdown(wait=True)
            self._owner = None

    def __enter__(self) -> BagWriter:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Close (not abort) on errors too: what was recorded stays readable.
        self.close()

    @property
    def is_open(self) -> bool:
        return self._open

    # -- types -------------------------------------------------------------
    def has_type(self, msgtype: str) -> bool:
        """True if ``msgtype`` is known or can be loaded from a ``.msg`` file."""
        try:
            self.resolve_type(msgtype)
        except UnknownMessageTypeError:
            return False
        return True

    def resolve_type(self, msgtype: str) -> str:
        """Make sure the type store knows ``msgtype`` (and what it uses);
        returns the normalized name. Raises :class:`UnknownMessageTypeError`."""
        name = normalize_msgtype(msgtype)
        if name in self.typestore.fielddefs:
            return name
        found: dict = {}
        pending = [name]
        while pending:
            typ = pending.pop()
            if typ in found or typ in self.typestore.fielddefs:
                continue
            text = self._find_msg_file(typ)
            if text is None:
                raise self._unknown_type_error(name, typ)
            try:
                parsed = get_types_from_msg(text, typ)
            except Exception as err:
                raise UnknownMessageTypeError(
                    f"cannot parse the definition of {typ!r}: {err}"
                ) from err
            found.update(parsed)
            pending.extend(referenced_types(parsed[typ][1]))
        self.typestore.register(found)
        log.info("loaded %d message definition(s) from .msg files for %s", len(found), name)
        return name

    def _find_msg_file(self, msgtype: str) -> str | None:
        pkg, kind, leaf = msgtype.split("/")
        for share in self.msg_search_paths:
            candidate = share / pkg / kind / f"{leaf}.msg"
            if candidate.is_file():
                return candidate.read_text()
        return None

    def _unknown_type_error(self, msgtype: str, missing: str) -> UnknownMessageTypeError:
        where = ", ".join(str(p) for p in self.msg_search_paths) or "(no share folders)"
        detail = "" if missing == msgtype else f" (it uses {missing!r}, which is unknown)"
        return UnknownMessageTypeError(
            f"message type {msgtype!r}{detail} is not in the rosbags type store for "
            f"{DEFAULT_STORE.value} and no {missing.split('/')[-1]}.msg was found under "
            f"{where}. The bag must carry each type's definition so other tools can read "
            "it: install the interface package (its share/<package>/msg/*.msg), pass "
            "msg_search_paths, or pass a typestore that has the type registered."
        )

    # -- topics and messages -----------------------------------------------
    def add_topic(
        self,
        topic: str,
        msgtype: str,
        qos: Qos | Sequence[Qos] | None = None,
        *,
        type_hash: str | None = None,
    ) -> TopicHandle:
        """Register ``topic`` with its type and the QoS its publishers offer.

        ``type_hash`` (the publisher's RIHS01 hash, if known) is checked
        against the definition written into the bag; a mismatch is logged.
        Adding a topic twice with the same type returns the first handle.
        """
        name = self.resolve_type(msgtype)
        profiles = [qos] if isinstance(qos, Qos) else list(qos or [make_qos()])
        with self._lock:
            if not self._open:
                raise BagWriterError(f"bag {self.path} is not open")
            if (have := self._handles.get(topic)) is not None:
                if have.msgtype != name:
                    raise BagWriterError(
                        f"topic {topic} is already recorded as {have.msgtype}, not {name}"
                    )
                return have
            digest = self.typestore.hash_rihs01(name)
            if type_hash and type_hash != digest:
                log.warning(
                    "%s: publisher type hash %s differs from the definition written "
                    "to the bag (%s); the bag's definition of %s may not match the data",
                    topic,
                    type_hash,
                    digest,
                    name,
                )
            try:
                msgdef = message_definition(self.typestore, name)
            except Exception as err:
                raise UnknownMessageTypeError(
                    f"cannot write the definition of {name!r}: {err or type(err).__name__}"
                ) from err
            conn = self._run(
                lambda: self._writer.add_connection(
                    topic, name, msgdef=msgdef, rihs01=digest, offered_qos_profiles=profiles
                )
            )
            handle = TopicHandle(topic, name, digest, conn)
            self._handles[topic] = handle
            self._counts[topic] = 0
            return handle

    def write(
        self, topic: str | TopicHandle, rawdata: bytes | memoryview, timestamp_ns: int
    ) -> None:
        """Write one serialized (CDR) message received at ``timestamp_ns``."""
        name = topic.topic if isinstance(topic, TopicHandle) else topic
        with self._lock:
            if not self._open:
                raise BagWriterError(f"bag {self.path} is not open")
            handle = self._handles.get(name)
            if handle is None:
                raise BagWriterError(f"topic {name} was not added to {self.path}")
            self._run(self._writer.write, handle.connection, int(timestamp_ns), rawdata)
            self._counts[name] += 1
            self._bytes += len(rawdata)

    # -- statistics --------------------------------------------------------
    @property
    def counts(self) -> dict[str, int]:
        """Messages written, per topic."""
        with self._lock:
            return dict(self._counts)

    @property
    def topics(self) -> dict[str, str]:
        """Registered topics and their message types."""
        with self._lock:
            return {t: h.msgtype for t, h in self._handles.items()}

    @property
    def message_count(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    @property
    def bytes_written(self) -> int:
        """Payload bytes written (serialized messages, without container overhead)."""
        with self._lock:
            return self._bytes
