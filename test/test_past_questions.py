"""Questions about the past through the offline planner: every kind in at
least five wordings, answered from a real SceneMemory's events with evidence."""

from __future__ import annotations

import pytest
from test_past import build_day

from robot_memory.planner.offline_backend import OfflinePlanner
from robot_memory.planner.past_questions import parse_past_question
from robot_memory.planner.plan import PlanningError
from robot_memory.planner.time_words import CellClock
from robot_memory.planner.world import PlanningContext, World
from robot_memory.tasks.inprocess import InProcessMemory

CLOCK = CellClock(day_length_s=1000.0)
WORDINGS = {
    "where_was": [
        "where was the red cube 58 s ago", "where did the red cube use to be at t=5",
        "where had the red cube been at 5 s", "what was the position of the red cube at 5",
        "where could I have found the red cube at 5",
    ],
    "last_seen": [
        "when did you last see the green cube", "when was the green cube last seen",
        "when have you last seen the green cube", "when was the last time you saw the green cube",
        "how long ago did you see the green cube",
    ],
    "contents": [
        "what was under the white box at 35", "which object was under the white box at t=35",
        "what did the white box cover at 35 s", "what was hidden under the white box at 35",
        "what was there under the box at 35",
    ],
    "order": [
        "what did you put in the bin after the red cube",
        "what was put in the bin right after the red cube",
        "what went into the bin after the red cube",
        "which object was put into the bin just after the red cube",
        "what followed the red cube into the bin",
    ],
    "count_contents": [
        "how many things are in the bin", "how many objects does the bin contain",
        "count the objects in the bin", "what is the number of items in the bin",
        "how many things have been put in the bin",
    ],
    "count_moves": [
        "how many times was the white box lifted", "how often was the box moved",
        "how many times did someone lift the white box", "count how often the box was moved",
        "what is the number of times the white box was moved",
    ],
    "changes": [
        "what changed since 35", "what moved since t=35", "what is different since 35 s",
        "what happened since 35", "did anything change since 35",
    ],
    "ever_seen": [
        "have you ever seen a purple prism", "did you ever see a purple prism",
        "was there ever a purple prism", "has there ever been a purple prism",
        "do you remember seeing a purple prism",
    ],
    "attribute": [
        "what colour was the thing under the white box at 35",
        "what was the color of the object under the box at 35",
        "which colour did the thing under the white box at 35 have",
        "tell me the colour of what was under the white box at 35",
        "what colour was hidden under the box at 35",
    ],
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(WORDINGS))
def test_every_kind_in_five_wordings_parses_to_its_kind(kind):
    wordings = set()
    for text in WORDINGS[kind]:
        q = parse_past_question(text, 65.0, CLOCK)
        assert q is not None and q.kind == kind, (text, q)
        wordings.add(q.wording)
    assert len(WORDINGS[kind]) >= 5 and len(wordings) >= 3, wordings


@pytest.mark.parametrize(
    "text",
    ["put the red cube in the bin", "where is the red cube", "have you seen the red cube",
     "bring me the green cube", "where was the red cube"],
)  # fmt: skip
def test_commands_and_present_questions_are_not_past_questions(text):
    assert parse_past_question(text, 65.0, CLOCK) is None


@pytest.fixture(scope="module")
def asked():
    memory, ids = build_day()
    port = InProcessMemory(memory, lambda: None)
    planner = OfflinePlanner(clock=CLOCK)

    def ask(text: str):
        world = World(memory.snapshot())
        return planner.plan(PlanningContext(text, world, port, [], None, None))

    yield ask, ids
    memory.close()


def test_answers_are_right_and_cite_their_evidence(asked):
    ask, ids = asked
    expected = {
        "where_was": ids["red cube"],
        "last_seen": ids["green cube"],
        "contents": ids["blue cube"],
        "order": ids["green cube"],
        "count_moves": ids["white box"],
        "attribute": ids["blue cube"],
    }
    for kind, object_id in expected.items():
        for text in WORDINGS[kind]:
            plan = ask(text)
            assert plan.kind == "answer" and plan.answer_object_id == object_id, (text, plan)
            assert any(note.startswith("question " + kind) for note in plan.notes)
            if kind != "last_seen":
                assert any(f"#{object_id}" in note or "#" in note for note in plan.notes[1:]), plan
    assert ask("where was the red cube at 5").answer_position == pytest.approx(
        (-0.2, 0.2, 0.025), abs=2e-3
    )
    assert "(by me)" in ask(WORDINGS["order"][0]).answer  # the robot put the green cube in
    before = ask("what went into the bin before the green cube")
    assert before.answer_object_id == ids["red cube"] and "(by someone else)" in before.answer
    for text in WORDINGS["count_contents"]:
        assert ask(text).answer.startswith("2 things"), text
    for text in WORDINGS["count_moves"]:
        assert "moved 2 times" in ask(text).answer, text
    for text in WORDINGS["ever_seen"]:
        assert ask(text).answer.startswith("No"), text
    assert ask("have you ever seen a blue cube").answer_object_id == ids["blue cube"]
    for text in WORDINGS["attribute"]:
        assert ask(text).answer.startswith("blue"), text
    for text in WORDINGS["changes"]:
        answer = ask(text).answer
        assert "white box" in answer and "blue cube" in answer and "red cube" not in answer


def test_a_restart_that_never_happened_and_an_unknown_object_are_refused(asked):
    ask, _ = asked
    with pytest.raises(PlanningError, match="no restart"):
        ask("where was the red cube before the last restart")
    with pytest.raises(PlanningError, match="nothing called"):
        ask("where was the purple prism at 5")
