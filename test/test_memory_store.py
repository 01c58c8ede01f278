"""SQLite persistence: a restarted (or crashed) process resumes with the same
ids and everything committed."""

from __future__ import annotations

import sqlite3

import numpy as np
from test_memory_core import cube_on_table, frame, obs

from robot_memory.memory import MemoryConfig, SceneMemory


def fill(memory: SceneMemory) -> dict[str, int]:
    """A cube seen three times, then moved; a sphere seen twice."""
    sphere = obs("green sphere", (0.2, 0.2, 0.025))
    for k in range(3):
        memory.update(frame(0.1 * k, [cube_on_table(-0.2, -0.2), sphere]))
    memory.update(frame(1.0, [cube_on_table(0.3, -0.2), sphere]))
    return {o.label: o.id for o in memory.objects()}


def test_reopen_gives_same_ids_labels_history_and_fresh_ids(tmp_path):
    path = tmp_path / "memory.db"
    first = SceneMemory(store_path=path)
    ids = fill(first)
    before = {o.id: (o.label, o.pose_history, o.visibility) for o in first.objects()}
    relations = first.relations()
    seq = first.seq
    first.close()

    second = SceneMemory(store_path=path)
    after = {o.id: (o.label, o.pose_history, o.visibility) for o in second.objects()}
    assert after == before and second.relations() == relations and second.seq == seq
    cube = second.get(ids["red cube"])
    assert len(cube.pose_history) == 2 and np.allclose(cube.centroid, [0.3, -0.2, 0.025])
    assert np.array_equal(cube.points, first.get(ids["red cube"]).points)
    result = second.update(frame(2.0, [obs("blue cylinder", (0.0, 0.3, 0.035))], scene=[]))
    assert result.created == [max(ids.values()) + 1]
    second.close()


def test_ids_of_pruned_objects_are_not_reused(tmp_path):
    path = tmp_path / "memory.db"
    memory = SceneMemory(store_path=path)
    ghost = memory.update(frame(0.0, [cube_on_table(0.1, 0.1)])).created[0]
    for k in range(1, 6):
        memory.update(frame(0.5 * k, [], scene=[]))
    assert memory.objects(include_absent=True) == []  # pruned
    memory.close()
    reopened = SceneMemory(store_path=path)
    new = reopened.update(frame(5.0, [obs("green sphere", (0.0, 0.0, 0.025))])).created[0]
    assert new > ghost
    reopened.close()


def test_crash_without_close_loses_nothing_committed(tmp_path):
    path = tmp_path / "memory.db"
    crashed = SceneMemory(store_path=path)
    ids = fill(crashed)
    # no close(): a second process opens the same file, as after a crash
    survivor = SceneMemory(store_path=path)
    assert {o.label: o.id for o in survivor.objects()} == ids
    assert survivor.get(ids["red cube"]).pose_history == crashed.get(ids["red cube"]).pose_history
    assert survivor.stats["next_id"] == crashed.stats["next_id"]
    survivor.close()


def test_interval_policy_commits_only_at_intervals(tmp_path):
    path = tmp_path / "memory.db"
    memory = SceneMemory(
        MemoryConfig(commit_policy="interval", commit_interval=10.0), store_path=path
    )
    memory.update(frame(0.0, [cube_on_table(0.0, 0.0)]))  # first update commits
    memory.update(frame(1.0, [cube_on_table(0.0, 0.0), obs("green sphere", (0.3, 0.0, 0.025))]))
    assert len(SceneMemory(store_path=path).objects()) == 1  # the sphere is not committed yet
    memory.close()  # close commits what is pending
    assert len(SceneMemory(store_path=path).objects()) == 2


def test_store_is_wal_and_history_rows_are_bounded(tmp_path):
    path = tmp_path / "memory.db"
    memory = SceneMemory(MemoryConfig(history_length=3), store_path=path)
    for k in range(6):
        memory.update(frame(float(k), [cube_on_table(-0.3 + 0.1 * k, 0.0)]))
    (cube,) = memory.objects()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        rows = conn.execute("SELECT stamp FROM pose_history WHERE object_id = ?", (cube.id,))
        stamps = sorted(r[0] for r in rows)
    assert stamps == [s for s, _ in cube.pose_history] == [3.0, 4.0, 5.0]
    memory.close()


def test_reset_forgets_everything_in_the_store_too(tmp_path):
    path = tmp_path / "memory.db"
    memory = SceneMemory(store_path=path)
    ids = fill(memory)
    memory.reset()
    assert memory.objects(include_absent=True) == [] and memory.relations() == {}
    memory.close()
    reopened = SceneMemory(store_path=path)
    assert reopened.objects(include_absent=True) == [] and reopened.relations() == {}
    created = reopened.update(frame(0.0, [cube_on_table(0.0, 0.0)])).created
    assert created[0] > max(ids.values())
    reopened.close()
