"""`robot-memory eval` end to end on scenario bags generated here, with the sim
and the scripted expert: the README's evaluation path, scored against the
ground truth inside each bag."""

from __future__ import annotations

import json

import pytest

from robot_memory.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bags(tmp_path_factory):
    out = tmp_path_factory.mktemp("scenarios")
    code = main(
        ["scenarios", "--out", str(out), "--scenario", "moved_out_of_view", "--small",
         "--no-progress"]
    )  # fmt: skip
    assert code == 0
    return out


def run_eval(bag, out) -> dict:
    assert main(["eval", str(bag), "--out", str(out), "--no-progress"]) == 0
    return json.loads((out / "report.json").read_text())


def test_eval_meets_the_targets_on_a_fresh_moved_out_of_view_bag(bags, tmp_path):
    report = run_eval(bags / "moved_out_of_view", tmp_path / "report")
    s = report["summary"]
    assert s["f1_final"] >= 0.95, s
    assert s["loc_error_mean"] <= 0.015, s
    assert s["duplicates_final"] == 0
    assert s["permanence_total"] > 0 and s["permanence_accuracy"] == 1.0, s
    assert s["last_seen"]["accuracy"] == 1.0, s["last_seen"]
    # the report a person reads: Markdown with the targets, and the two plots
    md = (tmp_path / "report" / "report.md").read_text()
    assert "F1" in md and "PASS" in md
    assert (tmp_path / "report" / "map.png").stat().st_size > 10_000
    assert (tmp_path / "report" / "metrics.png").stat().st_size > 10_000


def test_eval_refuses_a_missing_bag(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "nope"), "--no-progress"]) == 2
    assert "no bag" in capsys.readouterr().err
