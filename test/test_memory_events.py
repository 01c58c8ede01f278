"""The memory's event log: what happened, derived from what was perceived
(appeared, moved, disappeared, put in, covered, ...), who did it (the robot's
skills vs someone else), bounded, persisted across restarts (sessions)."""

from __future__ import annotations

import sqlite3

import pytest
from test_memory_core import cube_on_table, frame, obs
from test_memory_relation_history import COVER_AT, COVER_AWAY, cover

from robot_memory.memory import MemoryConfig, SceneMemory
from robot_memory.memory.events import EventLog, SkillSpan, SkillTracker
from robot_memory.memory.store import SCHEMA, MemoryStore
from robot_memory.schemas import MemoryQuery


def kinds(memory: SceneMemory, **filters) -> list[tuple]:
    return [(e.kind, e.object_id) for e in memory.events().select(**filters)]


def seen(memory: SceneMemory, t0: float, xy, n: int = 3, label: str = "red cube") -> int:
    for k in range(n):
        memory.update(frame(t0 + 0.1 * k, [cube_on_table(*xy, label=label)]))
    return next(o.id for o in memory.objects() if o.label == label)


def test_an_object_appears_once_confirmed_and_a_ghost_never_does():
    memory = SceneMemory()
    memory.update(frame(0.0, [cube_on_table(0.1, 0.1)]))
    assert kinds(memory) == []  # seen once: not yet an object anyone should hear about
    memory.update(frame(0.1, [cube_on_table(0.1, 0.1)]))
    memory.update(frame(0.2, [cube_on_table(0.1, 0.1)]))
    (cube,) = memory.objects()
    (event,) = memory.events().entries
    assert (event.kind, event.object_id, event.label, event.stamp) == (
        "appeared",
        cube.id,
        "red cube",
        0.0,  # when it was first seen
    )
    assert event.to_position == pytest.approx((0.1, 0.1, 0.025), abs=1e-3)
    ghost = SceneMemory()
    ghost.update(frame(0.0, [cube_on_table(0.3, 0.3)]))
    for k in range(1, 6):
        ghost.update(frame(0.5 * k, [], scene=[]))
    assert kinds(ghost) == [] and ghost.objects(include_absent=True) == []


def test_moved_by_someone_else_then_by_the_robot():
    memory = SceneMemory()
    cube = seen(memory, 0.0, (-0.2, 0.2))
    memory.update(frame(5.0, [cube_on_table(0.3, -0.2)]))  # relocated while nobody watched
    memory.note_skill(SkillSpan("pick", cube, "", 20.0, 30.0))
    memory.update(frame(25.0, [cube_on_table(0.0, 0.0)]))  # the robot carries it
    memory.update(frame(26.0, [cube_on_table(0.05, 0.1)]))  # same move, merged
    moves = memory.events().select(kinds=["moved"])
    assert [(e.stamp, e.cause) for e in moves] == [(5.0, "other"), (25.0, "robot")]
    assert moves[0].from_position == pytest.approx((-0.2, 0.2, 0.025), abs=1e-3)
    assert moves[0].to_position == pytest.approx((0.3, -0.2, 0.025), abs=1e-3)
    assert moves[1].from_position == pytest.approx((0.3, -0.2, 0.025), abs=1e-3)
    assert moves[1].to_position[1] > 0.05  # the merged move ends where it came to rest
    assert kinds(memory, since=10.0) == [("moved", cube)]
    assert kinds(memory, until=10.0) == [("appeared", cube), ("moved", cube)]


def test_a_skill_told_after_the_move_re_attributes_it():
    memory = SceneMemory()
    cube = seen(memory, 0.0, (-0.2, 0.2))
    memory.update(frame(5.0, [cube_on_table(0.3, -0.2)]))
    assert memory.events().select(kinds=["moved"])[0].cause == "other"
    memory.note_skill(SkillSpan("place", cube, "table", 3.0, 6.0))  # the result came late
    assert memory.events().select(kinds=["moved"])[0].cause == "robot"


def test_disappeared_and_seen_again_elsewhere_is_a_move_from_where_it_was():
    memory = SceneMemory()
    cube = seen(memory, 0.0, (0.1, 0.1), n=4)
    for k in range(1, 10):
        memory.update(frame(1 + 0.5 * k, [], scene=[]))
    assert memory.get(cube).status == "absent"
    assert kinds(memory, kinds=["disappeared"]) == [("disappeared", cube)]
    memory.update(frame(10.0, [cube_on_table(-0.3, 0.2)]))
    (moved,) = memory.events().select(kinds=["moved"])
    assert moved.object_id == cube
    assert moved.from_position == pytest.approx((0.1, 0.1, 0.025), abs=1e-3)


def test_covered_and_uncovered():
    memory = SceneMemory()
    cube = seen(memory, 0.0, COVER_AT)  # a well-seen cube; someone puts the box over it
    for k in range(1, 5):
        memory.update(frame(1.0 + 0.5 * k, [cover()]))
    box = next(o.id for o in memory.objects() if o.label == "white box")
    memory.update(frame(5.0, [cube_on_table(*COVER_AT), cover(COVER_AWAY)]))  # lifted off
    covered = memory.events().select(kinds=["covered"])
    uncovered = memory.events().select(kinds=["uncovered"])
    assert [(e.object_id, e.target, e.target_label, e.cause) for e in covered] == [
        (cube, box, "white box", "other")
    ]
    assert [(e.object_id, e.target, e.stamp) for e in uncovered] == [(cube, box, 5.0)]
    assert covered[0].stamp < 5.0
    assert kinds(memory, object_id=box, kinds=["covered", "uncovered"]) == [
        ("covered", cube), ("uncovered", cube)
    ]  # fmt: skip
    assert kinds(memory, kinds=["put_in", "taken_out"]) == []  # a cover is not a bin


def put_in_bin(memory: SceneMemory) -> int:
    """A red cube seen on the table, then (at 5 s) in the bin."""
    cube = seen(memory, 0.0, (0.1, 0.1))
    x, y, z = memory.cell.place("bin").center
    for k in range(3):
        memory.update(frame(5.0 + 0.1 * k, [obs("red cube", (x, y, z))]))
    return cube


def test_put_in_the_bin_by_someone():
    memory = SceneMemory()
    cube = put_in_bin(memory)
    (put,) = memory.events().select(kinds=["put_in"])
    assert (put.object_id, put.target, put.target_label, put.cause) == (
        cube, "bin", memory.cell.place("bin").label or "bin", "other"
    )  # fmt: skip


def test_events_survive_a_restart_and_the_restart_is_an_event(tmp_path):
    path = tmp_path / "m.sqlite"
    memory = SceneMemory(store_path=path)
    cube = seen(memory, 0.0, (-0.2, 0.2))
    memory.update(frame(5.0, [cube_on_table(0.3, -0.2)]))
    before = memory.events().entries
    memory.close()
    again = SceneMemory(store_path=path)
    assert again.events().entries == before and again.events().session == 1
    again.update(frame(100.0, [cube_on_table(-0.1, -0.3)]))  # moved while the robot was off
    restart, moved = again.events().entries[-2:]
    assert (restart.kind, restart.stamp, restart.session) == ("session_started", 100.0, 1)
    assert (moved.kind, moved.object_id, moved.session) == ("moved", cube, 1)
    assert moved.from_position == pytest.approx((0.3, -0.2, 0.025), abs=1e-3)
    assert again.events().session_starts() == [100.0]
    again.close()
    assert [e.kind for e in MemoryStore(path).load_events()][-2:] == ["session_started", "moved"]


def test_a_failed_update_leaves_the_log_as_it_was():
    memory = SceneMemory()
    seen(memory, 0.0, (0.1, 0.1))
    before = list(memory.events().entries)
    with pytest.raises(ValueError):
        memory.update(frame(-5.0, [cube_on_table(0.4, 0.4)]))  # time went backwards
    assert memory.events().entries == before


def test_the_log_is_bounded_and_the_store_keeps_what_the_log_keeps(tmp_path):
    path = tmp_path / "m.sqlite"
    memory = SceneMemory(MemoryConfig(event_log_length=5, move_merge_s=0.0), store_path=path)
    cube = seen(memory, 0.0, (-0.3, -0.3))
    xs = [-0.3 + 0.1 * k for k in range(1, 9)]
    for k, x in enumerate(xs):
        memory.update(frame(10.0 + 10 * k, [cube_on_table(x, -0.3)]))
    entries = memory.events().entries
    assert len(entries) == 5 and all(e.kind == "moved" and e.object_id == cube for e in entries)
    assert entries[-1].stamp == 80.0
    memory.close()
    assert [e.seq for e in MemoryStore(path).load_events()] == [e.seq for e in entries]


def test_reset_forgets_the_events():
    memory = SceneMemory()
    seen(memory, 0.0, (0.1, 0.1))
    memory.reset()
    assert memory.events().entries == []


def test_unknown_event_kinds_are_refused():
    with pytest.raises(ValueError, match="unknown event kind"):
        EventLog().add(0.0, "teleported")


def test_a_schema_2_store_opens_and_gains_the_events_table(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:  # a store as the second schema wrote it
        conn.executescript(SCHEMA.split("CREATE TABLE IF NOT EXISTS events")[0])
        conn.execute("INSERT INTO meta VALUES ('schema', '2')")
        conn.execute("INSERT INTO meta VALUES ('next_id', '7')")
    memory = SceneMemory(store_path=path)
    assert memory.events().entries == [] and memory.stats["next_id"] == 7
    cube = seen(memory, 0.0, (0.1, 0.1))
    memory.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()[0] == "3"
    assert kinds(SceneMemory(store_path=path)) == [("appeared", cube)]


def test_the_events_query_filters_by_kind_object_target_and_time():
    memory = SceneMemory()
    cube = put_in_bin(memory)

    def ask(**fields) -> list[tuple]:
        answer = memory.answer(MemoryQuery(id="q", kind="events", **fields))
        assert answer.ok, answer.error
        return [(r["kind"], r["object_id"], r["target"]) for r in answer.results]

    assert ask() == [("appeared", cube, None), ("moved", cube, None), ("put_in", cube, "bin")]
    assert ask(text="put_in") == [("put_in", cube, "bin")]
    assert ask(target="bin") == [("put_in", cube, "bin")]
    assert ask(object_id=cube, until=1.0) == [("appeared", cube, None)]
    assert ask(since=4.0, text="moved put_in") == [("moved", cube, None), ("put_in", cube, "bin")]
    for fields, error in (
        ({"text": "teleported"}, "event kinds"),
        ({"since": 5.0, "until": 1.0}, "before since"),
    ):
        answer = memory.answer(MemoryQuery(id="q", kind="events", **fields))
        assert not answer.ok and error in answer.error


def test_the_policy_status_stream_becomes_skill_spans():
    tracker = SkillTracker()
    assert tracker.on_status("g1", "running", "pick", 7, "", 10.0) is None
    assert tracker.on_status("g1", "running", "pick", 7, "", 11.0) is None  # still the start
    span = tracker.on_status("g1", "succeeded", "pick", 7, "", 14.0)
    assert span == SkillSpan("pick", 7, "", 10.0, 14.0)
    assert tracker.on_status("g1", "succeeded", "pick", 7, "", 15.0) is None  # latched again
    assert tracker.on_status("g2", "running", "look", None, "bin", 16.0) is None
    assert tracker.on_status("g2", "succeeded", "look", None, "bin", 17.0) is None  # moves nothing
    assert tracker.on_status("g3", "failed", "place", None, "bin", 18.0) is None  # never ran


def test_a_place_without_an_object_moves_what_the_last_pick_took():
    memory = SceneMemory()
    cube = seen(memory, 0.0, (-0.2, 0.2))
    memory.note_skill(SkillSpan("pick", cube, "", 3.0, 4.0))
    memory.note_skill(SkillSpan("place", None, "table_left", 4.0, 8.0))
    memory.update(frame(6.0, [cube_on_table(0.3, -0.2)]))
    (moved,) = memory.events().select(kinds=["moved"])
    assert moved.cause == "robot"
