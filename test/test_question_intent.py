"""The keyword fallback for questions about the past that no pattern matched:
each kind from its cue words, the object and container it names, the time;
commands and chatter are not questions."""

from __future__ import annotations

import pytest

from robot_memory.planner.question_intent import guess_past_question
from robot_memory.planner.time_words import CellClock

CLOCK = CellClock(day_length_s=1000.0)
NOW = 4500.0


@pytest.mark.parametrize(
    ("text", "kind", "field", "value"),
    [
        ("any idea where the red cube ended up", "where_was", "subject", "the red cube"),
        ("can you locate the blue cylinder", "where_was", "subject", "the blue cylinder"),
        ("what time did you last spot the green cube", "last_seen", "subject", "the green cube"),
        ("list what was under the white box", "contents", "relation", "under"),
        ("what sat in the bin", "contents", "target", "the bin"),
        ("which item went into the bin immediately before the red cube", "order", "after", False),
        ("how many objects sit in the bin", "count_contents", "target", "the bin"),
        ("how many moves did the white box make", "count_moves", "subject", "the white box"),
        ("anything new", "changes", "kind", "changes"),
        ("do you know of a purple prism", "ever_seen", "subject", "purple prism"),
        ("the thing under the box, what colour was it", "attribute", "attribute", "colour"),
    ],
)
def test_each_kind_from_its_cue_words(text, kind, field, value):
    q = guess_past_question(text, NOW, CLOCK)
    assert q is not None and q.kind == kind and q.wording == f"{kind}.guess", (text, q)
    assert getattr(q, field) == value


def test_the_time_phrase_is_kept():
    q = guess_past_question("tell me where the red cube was yesterday", NOW, CLOCK)
    assert q.kind == "where_was" and q.time is not None and q.time.until == 4000.0


@pytest.mark.parametrize(
    "text", ["put the red cube in the bin", "hello there", "pick up the cube", "thanks"]
)
def test_commands_and_chatter_are_not_questions(text):
    assert guess_past_question(text, NOW, CLOCK) is None
