"""The cell's past replayed from memory's events (the planner's side), on
events a real SceneMemory derived from observations."""

from __future__ import annotations

import pytest
from test_memory_core import cube_on_table, frame, obs
from test_memory_relation_history import COVER_AT, COVER_AWAY, cover

from robot_memory.memory import SceneMemory
from robot_memory.memory.events import SkillSpan
from robot_memory.planner.past import (
    changes,
    contents_at,
    count,
    ever_seen,
    next_to,
    position_at,
    put_into,
)
from robot_memory.schemas import MemoryQuery


def events_of(memory: SceneMemory) -> list[dict]:
    answer = memory.answer(MemoryQuery(id="q", kind="events"))
    assert answer.ok, answer.error
    return answer.results


def seen(memory: SceneMemory, t0: float, observations, n: int = 3) -> None:
    for k in range(n):
        memory.update(frame(t0 + 0.1 * k, observations()))


def build_day() -> tuple[SceneMemory, dict[str, int]]:
    """A red cube and a green cube on the table; at 10 s someone puts the red
    cube in the bin, at 20 s the robot puts the green one in; at 30 s the white
    box goes over a blue cube; at 40 s it is lifted off; the box is lifted
    again at 60 s."""
    m = SceneMemory()
    x, y, z = m.cell.place("bin").center
    red = lambda at: obs("red cube", at)  # noqa: E731
    green = lambda at: obs("green cube", at)  # noqa: E731
    seen(m, 0.0, lambda: [red((-0.2, 0.2, 0.025)), green((0.0, -0.3, 0.025))])
    ids = {o.label: o.id for o in m.objects()}
    seen(m, 10.0, lambda: [red((x, y, z)), green((0.0, -0.3, 0.025))])
    m.note_skill(SkillSpan("place", ids["green cube"], "bin", 18.0, 22.0))
    seen(m, 20.0, lambda: [red((x, y, z)), green((x + 0.06, y, z))])
    in_bin = lambda: [red((x, y, z)), green((x + 0.06, y, z))]  # noqa: E731
    blue = lambda: cube_on_table(*COVER_AT, label="blue cube")  # noqa: E731
    seen(m, 25.0, lambda: [*in_bin(), blue()])
    ids["blue cube"] = next(o.id for o in m.objects() if o.label == "blue cube")
    seen(m, 30.0, lambda: [*in_bin(), cover()], n=4)
    ids["white box"] = next(o.id for o in m.objects() if o.label == "white box")
    seen(m, 40.0, lambda: [*in_bin(), blue(), cover(COVER_AWAY)])
    seen(m, 60.0, lambda: [*in_bin(), blue(), cover((0.3, 0.3))])
    return m, ids


@pytest.fixture(scope="module")
def day():
    m, ids = build_day()
    yield m, ids, events_of(m)
    m.close()


def test_where_was_it_then(day):
    _, ids, events = day
    before = position_at(events, ids["red cube"], 5.0)
    assert before.value == pytest.approx([-0.2, 0.2, 0.025], abs=1e-3)
    assert [e["kind"] for e in before.evidence] == ["appeared"]
    after = position_at(events, ids["red cube"], 15.0)
    assert after.value != before.value and after.evidence[0]["kind"] == "moved"
    assert position_at(events, ids["blue cube"], 1.0).value is None  # not seen yet


def test_what_was_in_or_under_it_then(day):
    _, ids, events = day
    assert contents_at(events, "bin", 5.0).value == []
    assert contents_at(events, "bin", 15.0).value == [ids["red cube"]]
    assert contents_at(events, "bin", None).value == [ids["red cube"], ids["green cube"]]
    box = ids["white box"]
    assert contents_at(events, box, 35.0).value == [ids["blue cube"]]
    assert contents_at(events, box, 45.0).value == []


def test_order_of_interactions_and_who_did_them(day):
    _, ids, events = day
    into_bin = put_into(events, "bin")
    assert [e["object_id"] for e in into_bin] == [ids["red cube"], ids["green cube"]]
    assert [e["cause"] for e in into_bin] == ["other", "robot"]
    assert next_to(into_bin, ids["red cube"]).value == ids["green cube"]
    assert next_to(into_bin, ids["green cube"], after=False).value == ids["red cube"]
    assert next_to(into_bin, ids["green cube"]).value is None


def test_counting_changes_and_existence(day):
    _, ids, events = day
    lifted = count(events, ["moved"], object_id=ids["white box"])
    assert lifted.value == 2 and all(e["object_id"] == ids["white box"] for e in lifted.evidence)
    since_35 = changes(events, 35.0, None).value
    assert set(since_35) == {ids["white box"], ids["blue cube"]}
    assert [e["kind"] for e in since_35[ids["blue cube"]]] == ["uncovered"]
    assert ever_seen(events, "blue cube").value == [ids["blue cube"]]
    assert ever_seen(events, "purple prism").value == []
