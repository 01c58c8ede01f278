"""SQLite persistence of the memory (ROS-free): WAL, one transaction per commit,
writing only what changed, so a restarted process resumes with the same ids.

Schema versions: "1" had no relation history; "2" adds the ``relation_history``
table; "3" the ``events`` table (memory/events.py). A store with an older
schema is migrated in place when opened (the tables are created, nothing else
changes); a newer or unknown schema is refused."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np

from robot_memory.memory.events import MemoryEvent
from robot_memory.memory.object_node import MemoryObject
from robot_memory.memory.relation_history import EndedRelation
from robot_memory.memory.relations import RelationKey, RelationState

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS objects (
    id INTEGER PRIMARY KEY, record TEXT NOT NULL, points BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS pose_history (
    object_id INTEGER NOT NULL, stamp REAL NOT NULL, x REAL, y REAL, z REAL,
    PRIMARY KEY (object_id, stamp));
CREATE TABLE IF NOT EXISTS relations (
    subject TEXT NOT NULL, relation TEXT NOT NULL, target TEXT NOT NULL,
    confidence REAL NOT NULL, first_confirmed REAL NOT NULL, last_confirmed REAL NOT NULL,
    PRIMARY KEY (subject, relation, target));
CREATE TABLE IF NOT EXISTS relation_history (
    seq INTEGER PRIMARY KEY, subject TEXT NOT NULL, relation TEXT NOT NULL,
    target TEXT NOT NULL, confidence REAL NOT NULL, first_confirmed REAL NOT NULL,
    last_confirmed REAL NOT NULL, ended REAL NOT NULL,
    subject_label TEXT NOT NULL, target_label TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY, stamp REAL NOT NULL, kind TEXT NOT NULL, object_id INTEGER,
    label TEXT NOT NULL, target TEXT, target_label TEXT NOT NULL, from_position TEXT,
    to_position TEXT, cause TEXT NOT NULL, session INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_stamp ON events (stamp);
"""
SCHEMA_VERSION = "3"
MIGRATES_FROM = ("1", "2")  # these open too: the executed SCHEMA adds what they lack


EVENT_COLUMNS = (
    "seq, stamp, kind, object_id, label, target, target_label, from_position, "
    "to_position, cause, session"
)


def _json_or_none(value) -> str | None:
    return (
        None
        if value is None
        else json.dumps(value if isinstance(value, int | str) else list(value))
    )


def _vec(text: str | None) -> tuple[float, float, float] | None:
    if text is None:
        return None
    x, y, z = json.loads(text)
    return (float(x), float(y), float(z))


def _event_row(e: MemoryEvent) -> tuple:
    target = _json_or_none(e.target)
    frm, to = _json_or_none(e.from_position), _json_or_none(e.to_position)
    return (e.seq, e.stamp, e.kind, e.object_id, e.label, target, e.target_label, frm, to,
            e.cause, e.session)  # fmt: skip


def _event_from_row(row: tuple) -> MemoryEvent:
    seq, stamp, kind, oid, label, target, target_label, frm, to, cause, session = row
    target = None if target is None else _node(target)
    return MemoryEvent(seq, stamp, kind, oid, label, target, target_label, _vec(frm), _vec(to),
                       cause, session)  # fmt: skip


class StoreError(RuntimeError):
    pass


def _node(text: str) -> int | str:
    value = json.loads(text)
    return value if isinstance(value, int | str) else str(value)


class MemoryStore:
    """One SQLite file. Use :meth:`commit` with what changed since the last one."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(self.path), isolation_level=None, timeout=10.0)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(SCHEMA)
        version = self._conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if version is None:
            self._conn.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
        elif version[0] in MIGRATES_FROM:
            self._conn.execute("UPDATE meta SET value = ? WHERE key='schema'", (SCHEMA_VERSION,))
        elif version[0] != SCHEMA_VERSION:
            raise StoreError(f"{self.path}: schema {version[0]}, expected {SCHEMA_VERSION}")
        self._history_written: dict[int, float] = {}  # newest pose row per object

    # -- reading -----------------------------------------------------------------
    def load(
        self,
    ) -> tuple[dict, dict[int, MemoryObject], dict[RelationKey, RelationState]]:
        """(meta, objects by id (merged ones included), relations)."""
        meta = {k: json.loads(v) for k, v in self._conn.execute("SELECT key, value FROM meta")}
        history: dict[int, list[tuple[float, tuple[float, float, float]]]] = {}
        for oid, stamp, x, y, z in self._conn.execute(
            "SELECT object_id, stamp, x, y, z FROM pose_history ORDER BY object_id, stamp"
        ):
            history.setdefault(oid, []).append((stamp, (x, y, z)))
            self._history_written[oid] = stamp
        objects = {}
        for oid, record, blob in self._conn.execute("SELECT id, record, points FROM objects"):
            points = np.frombuffer(blob, dtype=np.float32).reshape(-1, 3).copy()
            objects[oid] = MemoryObject.from_record(
                oid, json.loads(record), points, history.get(oid, [])
            )
        relations = {
            (_node(s), r, _node(t)): RelationState(c, f, la)
            for s, r, t, c, f, la in self._conn.execute(
                "SELECT subject, relation, target, confidence, first_confirmed, last_confirmed "
                "FROM relations"
            )
        }
        return meta, objects, relations

    def load_relation_history(self) -> list[EndedRelation]:
        """The ended relations kept, oldest first."""
        return [
            EndedRelation(_node(s), r, _node(t), c, f, la, e, sl, tl, seq)
            for seq, s, r, t, c, f, la, e, sl, tl in self._conn.execute(
                "SELECT seq, subject, relation, target, confidence, first_confirmed, "
                "last_confirmed, ended, subject_label, target_label FROM relation_history "
                "ORDER BY seq"
            )
        ]

    def load_events(self) -> list[MemoryEvent]:
        """The events kept, oldest first."""
        rows = self._conn.execute(f"SELECT {EVENT_COLUMNS} FROM events ORDER BY seq")
        return [_event_from_row(row) for row in rows]

    # -- writing -----------------------------------------------------------------
    def commit(
        self,
        meta: dict,
        objects: list[MemoryObject],
        deleted_objects: list[int],
        relations: dict[RelationKey, RelationState],
        deleted_relations: list[RelationKey],
        relation_history: tuple[list[EndedRelation], int] | None = None,
        events: tuple[list[MemoryEvent], int] | None = None,
    ) -> None:
        """Write one transaction; on any error it is rolled back and re-raised.
        ``relation_history`` and ``events``: (new or changed records, the oldest
        record number kept)."""
        c = self._conn
        before = dict(self._history_written)
        c.execute("BEGIN IMMEDIATE")
        try:
            c.executemany(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                [(k, json.dumps(v)) for k, v in meta.items()],
            )
            c.executemany(
                "INSERT OR REPLACE INTO objects VALUES (?, ?, ?)",
                [
                    (o.id, json.dumps(o.to_record()), np.ascontiguousarray(o.points).tobytes())
                    for o in objects
                ],
            )
            for o in objects:
                self._write_history(o)
            c.executemany("DELETE FROM objects WHERE id = ?", [(oid,) for oid in deleted_objects])
            c.executemany(
                "DELETE FROM pose_history WHERE object_id = ?", [(oid,) for oid in deleted_objects]
            )
            c.executemany(
                "DELETE FROM relations WHERE subject = ? AND relation = ? AND target = ?",
                [(json.dumps(s), r, json.dumps(t)) for s, r, t in deleted_relations],
            )
            c.executemany(
                "INSERT OR REPLACE INTO relations VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        json.dumps(s),
                        r,
                        json.dumps(t),
                        v.confidence,
                        v.first_confirmed,
                        v.last_confirmed,
                    )
                    for (s, r, t), v in relations.items()
                ],
            )
            if relation_history is not None:
                self._write_relation_history(*relation_history)
            if events is not None:
                self._write_events(*events)
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            self._history_written = dict(before)
            raise

    def _write_relation_history(self, entries: list[EndedRelation], oldest_kept: int) -> None:
        self._conn.executemany(
            "INSERT OR REPLACE INTO relation_history VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    e.seq,
                    json.dumps(e.subject),
                    e.relation,
                    json.dumps(e.target),
                    e.confidence,
                    e.first_confirmed,
                    e.last_confirmed,
                    e.ended,
                    e.subject_label,
                    e.target_label,
                )
                for e in entries
            ],
        )
        self._conn.execute("DELETE FROM relation_history WHERE seq < ?", (oldest_kept,))

    def _write_events(self, entries: list[MemoryEvent], oldest_kept: int) -> None:
        self._conn.executemany(
            f"INSERT OR REPLACE INTO events ({EVENT_COLUMNS}) VALUES ({', '.join('?' * 11)})",
            [_event_row(e) for e in entries],
        )
        self._conn.execute("DELETE FROM events WHERE seq < ?", (oldest_kept,))

    def _write_history(self, obj: MemoryObject) -> None:
        """Append new pose rows only, and drop rows older than the kept window."""
        if not obj.pose_history:
            return
        c = self._conn
        written = self._history_written.get(obj.id, float("-inf"))
        c.executemany(
            "INSERT OR IGNORE INTO pose_history VALUES (?, ?, ?, ?, ?)",
            [(obj.id, s, *xyz) for s, xyz in obj.pose_history if s > written],
        )
        self._history_written[obj.id] = obj.pose_history[-1][0]
        oldest = obj.pose_history[0][0]
        c.execute("DELETE FROM pose_history WHERE object_id = ? AND stamp < ?", (obj.id, oldest))

    def clear(self) -> None:
        c = self._conn
        c.execute("BEGIN IMMEDIATE")
        try:
            for table in ("objects", "pose_history", "relations", "relation_history", "events"):
                c.execute(f"DELETE FROM {table}")
            c.execute("DELETE FROM meta WHERE key != 'schema'")
            c.execute("COMMIT")
            self._history_written.clear()
        except BaseException:
            c.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self._conn.close()
