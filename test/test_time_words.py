"""Time phrases in questions about the past: relative, by day, by restart."""

from __future__ import annotations

import pytest

from robot_memory.planner.time_words import CellClock, TimeWordsError, find_time

DAY = 1000.0  # a compressed day of a simulated week
CLOCK = CellClock(day_length_s=DAY)
NOW = 3 * DAY + 250.0  # day 3, 250 s in
RESTARTS = [1 * DAY + 5.0, 2 * DAY + 7.0]


def spec(text: str):
    rest, found = find_time(text, NOW, CLOCK, RESTARTS)
    assert found is not None, text
    return rest, found


@pytest.mark.parametrize(
    "text, rest, at",
    [
        ("where was the red cube 5 minutes ago?", "where was the red cube", NOW - 300),
        ("Where was the red cube two hours ago", "where was the red cube", NOW - 7200),
        ("what was in the bin a day ago", "what was in the bin", NOW - DAY),
        ("where was it 30 s ago", "where was it", NOW - 30),
        ("what was under the box at t=120", "what was under the box", 120.0),
        ("where was the cube at 1500 s", "where was the cube", 1500.0),
    ],
)
def test_points_in_time(text, rest, at):
    got_rest, found = spec(text)
    assert got_rest == rest and found.point == pytest.approx(at)


@pytest.mark.parametrize(
    "text, since, until",
    [
        ("what was under the box yesterday", 2 * DAY, 3 * DAY),
        ("what moved the day before yesterday", 1 * DAY, 2 * DAY),
        ("what did you put in the bin today", 3 * DAY, NOW),
        ("what moved on day 1", 1 * DAY, 2 * DAY),
        ("what changed in the last 10 minutes", NOW - 600, NOW),
        ("what changed in the past hour", NOW - 3600, NOW),
        ("what changed since the last restart", RESTARTS[-1], NOW),
        ("where was the cube before the last restart", None, RESTARTS[-1]),
        ("where was the cube before the first restart", None, RESTARTS[0]),
        ("what changed since 1200", 1200.0, NOW),
    ],
)
def test_windows(text, since, until):
    _, found = spec(text)
    assert (found.since, found.until) == (
        pytest.approx(since) if since is not None else None,
        pytest.approx(until),
    )


def test_no_time_phrase_leaves_the_text_alone():
    assert find_time("where is the red cube", NOW, CLOCK, RESTARTS) == (
        "where is the red cube",
        None,
    )
    # "at the bin" is a place, not a time
    assert find_time("what is at the bin", NOW, CLOCK)[1] is None


def test_a_restart_that_never_happened_is_an_error():
    with pytest.raises(TimeWordsError, match="no restart"):
        find_time("where was it before the last restart", NOW, CLOCK, [])


def test_days_on_a_robot_start_at_midnight():
    clock = CellClock(origin_s=1_764_892_800.0)  # 2025-12-05 00:00 UTC
    now = clock.origin_s + 2 * 86400 + 3600 * 9  # two days later, 9:00
    _, found = find_time("where was the mug yesterday", now, clock)
    assert found.since == clock.origin_s + 86400 and found.until == clock.origin_s + 2 * 86400
