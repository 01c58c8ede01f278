"""Questions about the past, over simulated weeks: accuracy per question kind.

    robot-memory eval-qa --seeds 100-104                  # 5 held-out weeks
    robot-memory eval-qa --seeds 100,101 --per-kind 4 --conditions full,memoryless

For each seed a week runs in-process (:mod:`robot_memory.tasks.week_world`:
5 days of 45 actions by people and the robot, memory restarted each night),
questions of every kind are drawn from its ground truth
(:mod:`robot_memory.tasks.week_questions`, the wordings in turn) and the
offline planner answers them from memory (:mod:`robot_memory.tasks.week_qa`),
beside the ablations: ``latest_graph`` (no event memory, the latest graph
only), ``no_persistence`` (memory wiped at each restart) and ``memoryless``
(the current view only). The weeks used to tune the question grammar and the
memory were seeds 0-9; evaluate on others.

Writes ``questions.jsonl`` (every question, answer and verdict), ``report.json``
and ``report.md`` (accuracy per kind and condition with Wilson 95% intervals,
accuracy per wording, the weeks' sizes, answer latency).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from robot_memory.distributed.episode_pool import RayUnavailableError, run_jobs
from robot_memory.distributed.episode_pool import add_arguments as add_pool_arguments
from robot_memory.learning.evaluation import wilson_interval
from robot_memory.tasks.week_qa import CONDITIONS, Asked, WeekStats, run_seed, week_planner
from robot_memory.tasks.week_questions import HISTORY_KINDS, KINDS, is_unseen
from robot_memory.tasks.week_world import WeekConfig


def parse_seeds(text: str) -> list[int]:
    """ "100-104" or "100,103,107" (or both mixed)."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if "-" in part:
            lo, hi = (int(v) for v in part.split("-", 1))
            if hi < lo:
                raise ValueError(f"empty seed range {part!r}")
            seeds += range(lo, hi + 1)
        elif part:
            seeds.append(int(part))
    if not seeds:
        raise ValueError("no seeds")
    return seeds


def _cell(rows: list[Asked]) -> dict:
    k, n = sum(r.correct for r in rows), len(rows)
    lo, hi = wilson_interval(k, n)
    return {"correct": k, "n": n, "accuracy": k / n if n else 0.0, "wilson95": [lo, hi]}


def summarize(stats: list[WeekStats], rows: list[Asked], conditions: list[str]) -> dict:
    by: dict[tuple[str, str], list[Asked]] = defaultdict(list)
    by_wording: dict[tuple[str, str], list[Asked]] = defaultdict(list)
    unseen: dict[str, list[Asked]] = defaultdict(list)  # full memory, paraphrases apart
    for r in rows:
        by_wording[r.condition, r.wording].append(r)
        if is_unseen(r.wording):
            if r.condition == "full":
                unseen[r.kind].append(r)
            continue
        by[r.condition, r.kind].append(r)
    full = [r for r in rows if r.condition == "full"]
    latencies = np.array([r.latency_ms for r in full]) if full else np.zeros(1)
    days = sum(s.days for s in stats)
    return {
        "conditions": conditions,
        "per_kind": {c: {k: _cell(by[c, k]) for k in KINDS if by[c, k]} for c in conditions},
        "overall": {
            c: _cell([r for r in rows if r.condition == c and not is_unseen(r.wording)])
            for c in conditions
        },
        "unseen_per_kind": {k: _cell(unseen[k]) for k in KINDS if unseen[k]},
        "unseen_overall": _cell([r for v in unseen.values() for r in v]),
        "per_wording": {
            c: {w: _cell(v) for (cc, w), v in sorted(by_wording.items()) if cc == c}
            for c in conditions
        },
        "weeks": [s.as_row() for s in stats],
        "store_bytes_per_day": sum(s.store_bytes for s in stats) / max(days, 1),
        "memory_events_per_day": sum(s.memory_events for s in stats) / max(days, 1),
        "answer_ms_p50": float(np.percentile(latencies, 50)),
        "answer_ms_p99": float(np.percentile(latencies, 99)),
    }


def _pct(cell: dict | None) -> str:
    if not cell:
        return "-"
    lo, hi = (round(100 * v) for v in cell["wilson95"])
    return f"{cell['correct']}/{cell['n']} ({100 * cell['accuracy']:.0f}%, {lo}-{hi})"


def report_md(summary: dict, seeds: list[int]) -> str:
    conds = summary["conditions"]
    lines = [
        f"# Questions about the past: seeds {seeds[0]}..{seeds[-1]} ({len(seeds)} weeks)", "",
        "Correct / asked (accuracy, Wilson 95% interval). Kinds marked * need history.", "",
        "| kind | " + " | ".join(conds) + " |", "|---|" + "---|" * len(conds),
    ]  # fmt: skip
    for kind in KINDS:
        mark = " *" if kind in HISTORY_KINDS else ""
        cells = [_pct(summary["per_kind"][c].get(kind)) for c in conds]
        lines.append(f"| {kind}{mark} | " + " | ".join(cells) + " |")
    lines.append("| all | " + " | ".join(_pct(summary["overall"][c]) for c in conds) + " |")
    if summary["unseen_per_kind"]:
        lines += ["", "## Paraphrases the grammar was not written for (full memory)", "",
                  "| kind | accuracy |", "|---|---|"]  # fmt: skip
        for kind, cell in summary["unseen_per_kind"].items():
            lines.append(f"| {kind} | {_pct(cell)} |")
        lines.append(f"| all | {_pct(summary['unseen_overall'])} |")
    lines += ["", "## Per wording (full memory)", "", "| wording | accuracy |", "|---|---|"]
    for wording, cell in summary["per_wording"].get("full", {}).items():
        lines.append(f"| {wording} | {_pct(cell)} |")
    lines += ["", "## The weeks", "", "| seed | true events | memory events | objects | store |",
              "|---|---|---|---|---|"]  # fmt: skip
    for w in summary["weeks"]:
        lines.append(f"| {w['seed']} | {w['truth_events']} | {w['memory_events']} | "
                     f"{w['objects']} | {w['store_bytes'] / 1e3:.0f} kB |")  # fmt: skip
    lines += ["", f"Store growth {summary['store_bytes_per_day'] / 1e3:.1f} kB and "
              f"{summary['memory_events_per_day']:.0f} memory events per simulated day; "
              f"answer latency (planner + memory, in-process) p50 "
              f"{summary['answer_ms_p50']:.1f} ms, p99 {summary['answer_ms_p99']:.1f} ms.",
              ""]  # fmt: skip
    return "\n".join(lines)


class QAWeeks:
    """A worker for :func:`run_jobs`: the planner (its text model loads once per
    process) and a scratch folder for the weeks' stores; a job is a seed."""

    def __init__(
        self, config: dict, per_kind: int, conditions: tuple[str, ...], unseen_per_kind: int
    ) -> None:
        self.config, self.per_kind = config, per_kind
        self.conditions, self.unseen_per_kind = conditions, unseen_per_kind

    def __call__(self):
        scratch = tempfile.TemporaryDirectory(prefix="eval_qa_")
        planner = week_planner(WeekConfig(seed=0, **self.config))

        def week(seed: int) -> dict:
            config = WeekConfig(seed=seed, **self.config)
            stats, asked = run_seed(seed, config, Path(scratch.name), self.per_kind,
                                    self.conditions, planner, self.unseen_per_kind)  # fmt: skip
            return {"week": stats.as_row(), "asked": [a.as_row() for a in asked]}

        return week


def _lines(path: Path) -> list[str]:
    return [x for x in path.read_text().splitlines() if x.strip()] if path.exists() else []


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="robot-memory eval-qa", description=__doc__.split("\n")[0])
    p.add_argument("--seeds", default="100-104", help="weeks to generate: 100-104 or 100,105")
    p.add_argument("--per-kind", type=int, default=8, help="questions of each kind per week")
    p.add_argument("--unseen-per-kind", type=int, default=2,
                   help="and this many in paraphrases the grammar was not written for")  # fmt: skip
    p.add_argument("--conditions", default=",".join(CONDITIONS),
                   help=f"comma-separated, of {', '.join(CONDITIONS)}")  # fmt: skip
    p.add_argument("--days", type=int, default=5)
    p.add_argument("--actions-per-day", type=int, default=45)
    p.add_argument("--day-length", type=float, default=1000.0, help="a simulated day [s]")
    p.add_argument("--output", type=Path, default=None, help="default out/eval_qa/<time>")
    p.add_argument("--resume", action="store_true", help="skip the weeks already in --output")
    add_pool_arguments(p)
    args = p.parse_args(argv)
    try:
        seeds = parse_seeds(args.seeds)
    except ValueError as err:
        p.error(f"--seeds: {err}")
    conditions = [c.strip() for c in args.conditions.split(",") if c.strip()]
    unknown = set(conditions) - set(CONDITIONS)
    if unknown or not conditions:
        p.error(f"--conditions: unknown {sorted(unknown)}; choose from {', '.join(CONDITIONS)}")
    if args.unseen_per_kind < 0:
        p.error("--unseen-per-kind >= 0")
    if args.per_kind < 1 or args.days < 2 or args.actions_per_day < 1 or args.day_length <= 0:
        p.error("--per-kind >= 1, --days >= 2, --actions-per-day >= 1, --day-length > 0")
    if args.resume and args.output is None:
        p.error("--resume needs --output")
    out = args.output or Path("out/eval_qa") / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    weeks_path, questions_path = out / "weeks.jsonl", out / "questions.jsonl"
    if not args.resume:
        weeks_path.write_text("")
        questions_path.write_text("")
    stats = [WeekStats(**json.loads(x)) for x in _lines(weeks_path)]
    rows = [Asked(**json.loads(x)) for x in _lines(questions_path)]
    stats = [s for s in stats if s.seed in seeds]
    rows = [r for r in rows if r.seed in {s.seed for s in stats}]  # a week's or none
    todo = [s for s in seeds if s not in {w.seed for w in stats}]
    if args.resume and len(todo) < len(seeds):
        print(f"eval-qa: {len(seeds) - len(todo)} weeks already in {out}")

    def keep(seed: int, result: dict) -> None:
        week, asked = WeekStats(**result["week"]), [Asked(**r) for r in result["asked"]]
        stats.append(week)
        rows.extend(asked)
        with questions_path.open("a") as f:
            f.writelines(json.dumps(r.as_row()) + "\n" for r in asked)
        with weeks_path.open("a") as f:  # after its questions: a week there is a week done
            f.write(json.dumps(week.as_row()) + "\n")
        full = [r.correct for r in asked if r.condition == "full" and not is_unseen(r.wording)]
        tqdm.write(f"seed {seed}: {week.truth_events} true events, {week.memory_events} "
                   f"memory events; full memory {sum(full)}/{len(full)}")  # fmt: skip

    config = {"days": args.days, "actions_per_day": args.actions_per_day,
              "day_length_s": args.day_length}  # fmt: skip
    try:
        run_jobs(todo, QAWeeks(config, args.per_kind, tuple(conditions), args.unseen_per_kind),
                 keep, workers=args.workers, ray_address=args.ray_address, desc="weeks",
                 ordered=True)  # fmt: skip
    except RayUnavailableError as err:
        print(f"eval-qa: {err}", file=sys.stderr)
        return 2
    stats.sort(key=lambda w: seeds.index(w.seed))
    rows.sort(key=lambda r: seeds.index(r.seed))
    summary = summarize(stats, rows, conditions)
    (out / "report.json").write_text(json.dumps(summary, indent=2))
    text = report_md(summary, seeds)
    (out / "report.md").write_text(text)
    print(text)
    print(f"wrote {out}/report.md, report.json, questions.jsonl, weeks.jsonl")
    return 0


if __name__ == "__main__":
    sys.exit(main())
