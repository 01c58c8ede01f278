"""Scoring memory against simulator ground truth, and the evaluation report."""

from robot_memory.evaluation.metrics import (
    FrameScore,
    MatchResult,
    aggregate,
    match_objects,
    score_last_seen,
    score_snapshot,
)
from robot_memory.evaluation.report import write_report
from robot_memory.evaluation.visibility import visible_objects

__all__ = [
    "FrameScore",
    "MatchResult",
    "aggregate",
    "match_objects",
    "score_last_seen",
    "score_snapshot",
    "visible_objects",
    "write_report",
]
