"""Questions about a simulated week, drawn from its ground truth and asked of
the offline planner in-process: every kind in five wordings, restarts between
days, the ablations (latest graph only, no persistence, memoryless), the
scorer, and ``robot-memory eval-qa`` end to end."""

from __future__ import annotations

import collections
import json

import pytest

from robot_memory.memory import SceneMemory
from robot_memory.tasks.eval_qa import main as eval_qa
from robot_memory.tasks.eval_qa import parse_seeds
from robot_memory.tasks.memory_port import SceneMemoryPort
from robot_memory.tasks.week_qa import (
    LatestGraphOnlyMemory,
    ask,
    questions_for,
    run_seed,
    run_week,
    week_planner,
)
from robot_memory.tasks.week_questions import HISTORY_KINDS, KINDS, WORDINGS, WeekQuestion, check
from robot_memory.tasks.week_truth import WeekTruth
from robot_memory.tasks.week_world import WeekConfig

CONFIG = WeekConfig(seed=7, days=3, actions_per_day=20, day_length_s=600.0)
PER_KIND = 5


@pytest.fixture(scope="module")
def week(tmp_path_factory):
    return run_seed(7, CONFIG, tmp_path_factory.mktemp("qa"), PER_KIND)


def by(rows, condition):
    out = collections.defaultdict(list)
    for r in rows:
        if r.condition == condition:
            out[r.kind].append(r)
    return out


def test_every_kind_is_asked_in_five_wordings(week):
    _, rows = week
    full = by(rows, "full")
    assert set(full) == set(KINDS)
    for kind, asked in full.items():
        assert len(WORDINGS[kind]) >= 5
        assert len({r.wording for r in asked}) == PER_KIND, kind  # each wording once


def test_full_memory_answers_every_kind_from_the_truth(week):
    stats, rows = week
    assert stats.truth_events >= 60 and stats.memory_events > 0
    for kind, asked in by(rows, "full").items():
        wrong = [(r.question, r.answer, r.expected) for r in asked if not r.correct]
        assert len(wrong) <= 1, (kind, wrong)


def test_the_ablations_are_lower_where_history_is_needed(week):
    _, rows = week

    def history_correct(condition):
        asked = by(rows, condition)
        return sum(r.correct for k in HISTORY_KINDS for r in asked[k])

    full = history_correct("full")
    for ablation in ("latest_graph", "no_persistence", "memoryless"):
        assert history_correct(ablation) < full - 5, ablation
    assert history_correct("memoryless") <= history_correct("latest_graph")


def test_restarts_between_days_are_in_memory_and_in_the_truth(tmp_path):
    world, log = run_week(WeekConfig(seed=2, days=3, actions_per_day=8), tmp_path / "m.sqlite")
    memory = world.memory
    try:
        starts = [e.stamp for e in memory.events().entries if e.kind == "session_started"]
        assert starts == pytest.approx(log.restarts) and len(starts) == 2
        truth = WeekTruth(log)
        now = truth.state_at(None)
        for tid in now.present:  # the truth's end state is the world's
            assert world.objects[tid].present
            assert now.position[tid] == pytest.approx(tuple(world.objects[tid].position), abs=1e-3)
        before = SceneMemoryPort(memory)
        _, questions = questions_for(log, 2)
        planner = week_planner(WeekConfig(day_length_s=1000.0))
        rows = ask(questions, memory, before, planner, 2, "full")
        assert sum(r.correct for r in rows) >= 0.8 * len(rows)
    finally:
        memory.close()


def test_the_latest_graph_port_has_no_history(tmp_path):
    memory = SceneMemory()
    port = LatestGraphOnlyMemory(memory)
    from robot_memory.schemas import MemoryQuery

    refused = port.query(MemoryQuery(id="1", kind="history", object_id=1))
    assert not refused.ok and "no history" in refused.error
    assert port.query(MemoryQuery(id="2", kind="events")).results == []
    memory.close()


def test_the_scorer_takes_right_answers_and_refuses_wrong_ones():
    q = WeekQuestion("contents", "contents.1", "what was in the bin yesterday",
                     {"labels": ["green cube", "red cube"]})  # fmt: skip
    right = "The red cube (#3), the green cube (#5) were in the bin at 999.0 s."
    assert check(q, right, None)[0]
    assert not check(q, "The red cube (#3) was in the bin at 999.0 s.", None)[0]
    where = WeekQuestion("where_was", "where_was.1", "where was x yesterday",
                         {"position": (0.1, 0.2, 0.025)})  # fmt: skip
    assert check(where, "at", (0.12, 0.21, 0.02))[0]
    assert not check(where, "at", (0.3, 0.2, 0.02))[0] and not check(where, "gone", None)[0]
    count = WeekQuestion("count_moves", "count_moves.1", "", {"count": 3})
    assert check(count, "the white box (#2) was moved 3 times.", None)[0]
    assert not check(count, "the white box (#2) was moved 2 times.", None)[0]
    order = WeekQuestion("order", "order.1", "", {"label": None})
    assert check(order, "Nothing went into the bin right after the red cube (#1).", None)[0]
    assert not check(order, "Right after the red cube (#1), the green cube (#2) went", None)[0]


def test_seeds_parse_and_eval_qa_writes_its_report(tmp_path, capsys):
    assert parse_seeds("100-102,107") == [100, 101, 102, 107]
    with pytest.raises(ValueError):
        parse_seeds("5-3")
    out = tmp_path / "qa"
    rc = eval_qa(["--seeds", "11", "--per-kind", "1", "--unseen-per-kind", "1", "--days", "2",
                  "--actions-per-day", "20", "--conditions", "full,memoryless",
                  "--output", str(out)])  # fmt: skip
    assert rc == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report["per_kind"]) == {"full", "memoryless"}
    assert set(report["per_kind"]["full"]) == set(KINDS)
    assert all(cell["n"] == 1 for cell in report["per_kind"]["full"].values())  # unseen apart
    assert set(report["unseen_per_kind"]) == set(KINDS)
    rows = [json.loads(line) for line in (out / "questions.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 2 * len(KINDS) and all("answer" in r for r in rows)
    assert sum(".u" in r["wording"] for r in rows) == 2 * len(KINDS)
    text = (out / "report.md").read_text()
    assert "| where_was * |" in text and "not written for" in text
    with pytest.raises(SystemExit):
        eval_qa(["--conditions", "telepathy"])
