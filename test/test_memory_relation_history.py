"""Relation history: relations memory confirmed that have ended, kept (bounded),
persisted and queried ("which object was in the white box")."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from test_memory_core import cube_on_table, frame, obs

from robot_memory.memory import MemoryConfig, MemoryConfigError, SceneMemory
from robot_memory.memory.store import SCHEMA, MemoryStore
from robot_memory.schemas import MemoryQuery

COVER_AT = (0.2, -0.2)
COVER_AWAY = (-0.1, 0.3)


def cover(xy=COVER_AT):
    return obs("white box", (*xy, 0.045), size=(0.11, 0.11, 0.09))


def cover_then_lift(memory: SceneMemory, t0: float = 0.0) -> tuple[int, int, float]:
    """A red cube seen on the table; the white box put over it (the cube is
    remembered, in the box); the box lifted away: the cube is seen again.
    Returns (cube id, box id, stamp of the lift)."""
    memory.update(frame(t0, [cube_on_table(*COVER_AT)]))
    (cube,) = memory.objects()
    for k in range(1, 5):
        memory.update(frame(t0 + 0.5 * k, [cover()]))
    box = next(o for o in memory.objects() if o.label == "white box")
    assert (cube.id, "in", box.id) in memory.relations()
    lift = t0 + 3.0
    memory.update(frame(lift, [cube_on_table(*COVER_AT), cover(COVER_AWAY)]))
    assert memory.get(box.id).centroid[1] == pytest.approx(COVER_AWAY[1], abs=0.01)
    assert (cube.id, "in", box.id) not in memory.relations()
    return cube.id, box.id, lift


def ask(memory: SceneMemory, **fields) -> list[dict]:
    answer = memory.answer(MemoryQuery(id="q", kind="relation_history", **fields))
    assert answer.ok, answer.error
    return answer.results


def test_what_was_in_the_box_after_it_was_lifted_away():
    memory = SceneMemory()
    cube, box, lift = cover_then_lift(memory)
    (ended,) = [e for e in memory.relation_history() if e.relation == "in"]
    assert (ended.subject, ended.target, ended.ended) == (cube, box, lift)
    assert (ended.subject_label, ended.target_label) == ("red cube", "white box")
    assert ended.first_confirmed == 0.5 and ended.last_confirmed == 2.0
    # "which object was in the white box": by text, by id, by relation name
    for fields in ({"target": "white box"}, {"target": str(box)}, {"object_id": box}):
        results = ask(memory, text="in", **fields)
        assert [(r["subject"], r["subject_label"], r["ended"]) for r in results] == [
            (cube, "red cube", lift)
        ]
    row = ask(memory, target="white box", text="in")[0]
    assert set(row) == {
        "subject",
        "relation",
        "target",
        "confidence",
        "first_confirmed",
        "last_confirmed",
        "ended",
        "subject_label",
        "target_label",
    }
    memory.close()


def test_current_relations_come_first_with_ended_none_and_filters_apply():
    memory = SceneMemory()
    cube, box, lift = cover_then_lift(memory)
    rows = ask(memory, object_id=cube)
    assert rows[0]["ended"] is None and rows[0]["relation"] == "on"  # on the table again
    assert rows[0]["target"] == "table_right"
    ended = [r for r in rows if r["ended"] is not None]
    assert (ended[0]["relation"], ended[0]["target"]) == ("in", box)
    stamps = [r["ended"] for r in ended]
    assert stamps == sorted(stamps, reverse=True)  # newest first
    assert all(r["relation"] in ("in", "on") for r in rows)  # near: not by default
    assert ask(memory, object_id=cube, since=lift + 1.0) == [rows[0]]  # only the active one
    assert [r["relation"] for r in ask(memory, object_id=cube, text="on")] == ["on"] * len(
        [r for r in rows if r["relation"] == "on"]
    )
    assert ask(memory, target="table", text="in") == []
    memory.close()


def test_bad_relation_history_queries_fail_with_a_reason():
    memory = SceneMemory()
    cover_then_lift(memory)
    bad = memory.answer(MemoryQuery(id="q", kind="relation_history", text="under"))
    assert not bad.ok and "relation" in bad.error
    unknown = memory.answer(MemoryQuery(id="q", kind="relation_history", target="pink llama"))
    assert not unknown.ok and "unknown target" in unknown.error
    memory.close()


def test_relations_of_a_removed_object_are_recorded_with_its_label():
    memory = SceneMemory(MemoryConfig(ghost_min_observations=5))
    memory.update(frame(0.0, [cube_on_table(0.1, 0.1)]))
    (cube,) = memory.objects()
    assert (cube.id, "on", "table_centre") in memory.relations()
    for k in range(1, 6):  # the place is seen empty: absent, then pruned as a ghost
        memory.update(frame(0.5 * k, [], scene=[]))
    assert memory.objects(include_absent=True) == []
    (ended,) = memory.relation_history()
    assert (ended.subject, ended.relation, ended.target) == (cube.id, "on", "table_centre")
    assert ended.subject_label == "red cube" and ended.target_label == "middle of the table"
    rows = ask(memory, object_id=cube.id)
    assert [r["subject_label"] for r in rows] == ["red cube"]
    memory.close()


def test_history_is_bounded_and_kinds_are_configurable():
    config = MemoryConfig(relation_history_length=3, relation_history_kinds=("on",))
    memory = SceneMemory(config)
    for k in range(6):  # the cube hops between the table's right and middle
        y = -0.2 if k % 2 == 0 else 0.0
        memory.update(frame(float(k), [cube_on_table(0.2, y)]))
    history = memory.relation_history()
    assert len(history) == 3 and [e.ended for e in history] == [3.0, 4.0, 5.0]
    assert {e.relation for e in history} == {"on"}
    with pytest.raises(MemoryConfigError):
        MemoryConfig(relation_history_kinds=("under",))
    with pytest.raises(MemoryConfigError):
        MemoryConfig(relation_history_length=0)
    memory.close()


def test_history_persists_across_a_reopened_store_and_stays_bounded(tmp_path):
    path = tmp_path / "memory.db"
    first = SceneMemory(MemoryConfig(relation_history_length=2), store_path=path)
    cube, _, lift = cover_then_lift(first)
    before = first.relation_history()
    assert before
    first.close()
    second = SceneMemory(MemoryConfig(relation_history_length=2), store_path=path)
    assert second.relation_history() == before
    assert [r["subject"] for r in ask(second, target="white box", text="in")] == [cube]
    for k in range(4):  # more endings: the oldest rows leave the file too
        y = 0.0 if k % 2 == 0 else COVER_AT[1]
        second.update(frame(lift + 1.0 + k, [cube_on_table(COVER_AT[0], y), cover(COVER_AWAY)]))
    kept = second.relation_history()
    assert len(kept) == 2 and kept[0].seq > before[-1].seq
    second.close()
    with sqlite3.connect(path) as conn:
        seqs = [r[0] for r in conn.execute("SELECT seq FROM relation_history ORDER BY seq")]
    assert seqs == [e.seq for e in kept]
    third = SceneMemory(store_path=path)
    assert third.relation_history() == kept
    third.reset()
    assert third.relation_history() == []
    third.close()
    assert SceneMemory(store_path=path).relation_history() == []


def test_a_rejected_update_leaves_no_history_behind(tmp_path, monkeypatch):
    path = tmp_path / "memory.db"
    memory = SceneMemory(store_path=path)
    memory.update(frame(0.0, [cube_on_table(*COVER_AT)]))
    for k in range(1, 5):
        memory.update(frame(0.5 * k, [cover()]))
    relations, before = memory.relations(), memory.relation_history()
    lifted = frame(3.0, [cube_on_table(*COVER_AT), cover(COVER_AWAY)])

    def broken(*args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(MemoryStore, "_write_relation_history", broken)
    with pytest.raises(sqlite3.OperationalError):
        memory.update(lifted)
    assert memory.relation_history() == before and memory.relations() == relations
    assert SceneMemory(store_path=path).relation_history() == before
    monkeypatch.undo()
    memory.update(frame(3.0, [cube_on_table(*COVER_AT), cover(COVER_AWAY)]))
    ended = [e for e in memory.relation_history() if e.relation == "in"]
    assert len(ended) == 1 and ended[0].ended == 3.0
    assert [e.seq for e in memory.relation_history()] == list(
        range(1, len(memory.relation_history()) + 1)
    )
    memory.close()
    assert SceneMemory(store_path=path).relation_history() == memory.relation_history()


def test_a_schema_1_store_opens_and_gains_the_history_table(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:  # a store as the first schema wrote it
        old_schema = SCHEMA.split("CREATE TABLE IF NOT EXISTS relation_history")[0]
        conn.executescript(old_schema)
        conn.execute("INSERT INTO meta VALUES ('schema', '1')")
        conn.execute("INSERT INTO meta VALUES ('next_id', '7')")
    memory = SceneMemory(store_path=path)
    assert memory.relation_history() == [] and memory.stats["next_id"] == 7
    cover_then_lift(memory)
    memory.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()[0] == "3"
    assert SceneMemory(store_path=path).relation_history()


def test_a_box_moved_over_a_cube_and_seen_only_cut_by_the_image_edge():
    """The task suite's case: the box stands elsewhere first; a person puts it
    over the cube; from there every view of it touches the image edge
    (confidence 0.5, below ``min_relocate_confidence``) while its old spot shows
    free space. It must still move over the cube (the cube ``in`` it, and the
    end recorded when it is lifted away), not be dropped as a weak sighting."""
    memory = SceneMemory()
    start = (-0.1, -0.3)
    for k in range(3):
        memory.update(frame(0.1 * k, [cube_on_table(*COVER_AT), cover(start)]))
    box = next(o.id for o in memory.objects() if o.label == "white box")
    cube = next(o.id for o in memory.objects() if o.label == "red cube")
    cut = obs("white box", (*COVER_AT, 0.045), size=(0.11, 0.11, 0.09), conf=0.5)
    result = memory.update(frame(1.0, [cut]))
    assert result.relocated == [box] and result.weak == [] and result.created == []
    assert (cube, "in", box) in memory.relations()
    assert memory.get(cube).status == "remembered"  # hidden under it, not gone
    memory.update(frame(1.5, [cut]))
    lift = 3.0
    memory.update(frame(lift, [cube_on_table(*COVER_AT), cover(COVER_AWAY)]))
    assert memory.get(box).centroid[1] == pytest.approx(COVER_AWAY[1], abs=0.01)
    rows = ask(memory, target=str(box), text="in")
    assert [(r["subject"], r["ended"]) for r in rows] == [(cube, lift)]


def test_a_weak_far_sighting_does_not_move_an_object_whose_place_is_out_of_view():
    """Without evidence that it left (its place out of this camera's view), a
    weak view far away still moves nothing."""
    memory = SceneMemory()
    for k in range(3):
        memory.update(frame(0.1 * k, [cube_on_table(-0.2, 0.2)]))
    (cube,) = memory.objects()
    weak = obs("red cube", (0.35, -0.3, 0.025), conf=0.5)
    result = memory.update(frame(1.0, [weak], position=(0.3, -0.3, 1.0), focal=200.0))
    assert result.relocated == [] and result.weak == [0]
    np.testing.assert_allclose(memory.get(cube.id).centroid, cube.centroid)
