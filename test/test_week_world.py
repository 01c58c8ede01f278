"""A week in the cell at memory's level: people and the robot act, the robot
looks, memory restarts between days; ground truth of every action is logged and
memory's own events follow it."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from robot_memory.memory import SceneMemory
from robot_memory.tasks.week_world import WeekConfig, WeekWorld


@pytest.fixture(scope="module")
def week(tmp_path_factory):
    store = tmp_path_factory.mktemp("week") / "memory.sqlite"
    world = WeekWorld(WeekConfig(seed=3, days=3, actions_per_day=12, day_length_s=500.0))
    log = world.run(lambda: SceneMemory(store_path=store))
    memory = SceneMemory(store_path=store)
    yield world, log, memory
    memory.close()


def test_the_truth_logs_every_action_and_the_restarts(week):
    _, log, _ = week
    kinds = collections.Counter(e.kind for e in log.truth)
    assert kinds["restart"] == 2 and len(log.restarts) == 2
    assert sum(kinds.values()) >= 36 and kinds["moved"] > 0
    assert {e.actor for e in log.truth} >= {"person", "robot", "system"}
    assert all(a.stamp <= b.stamp for a, b in zip(log.truth, log.truth[1:], strict=False))
    assert {e.day for e in log.truth} == {0, 1, 2}


def test_memory_events_follow_the_truth_across_restarts(week):
    _, log, memory = week
    events = memory.events().entries
    assert [e.stamp for e in events if e.kind == "session_started"] == pytest.approx(log.restarts)
    truth_moves = sum(e.kind in ("moved",) for e in log.truth)
    seen_moves = sum(e.kind == "moved" for e in events)
    assert seen_moves >= 0.6 * truth_moves, (seen_moves, truth_moves)
    robot_puts = [e for e in log.truth if e.actor == "robot" and e.kind == "put_in"]
    if robot_puts:
        assert any(e.cause == "robot" for e in events if e.kind in ("moved", "put_in"))


def test_memory_ends_the_week_knowing_where_the_visible_objects_are(week):
    world, _, memory = week
    for truth in world.objects.values():
        if not truth.present or isinstance(truth.inside, int):
            continue  # gone, or under the box
        known = [o for o in memory.objects() if o.label == truth.label]
        assert known, truth.label
        error = min(np.linalg.norm(o.centroid[:2] - truth.position[:2]) for o in known)
        assert error < 0.03, (truth.label, error)
