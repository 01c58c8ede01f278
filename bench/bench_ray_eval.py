"""Bench: task evaluation fanned out over Ray, 1 worker against 2, the same seeds
(issue 19: 2 workers >= 1.7x faster than 1, identical results).

The jobs are ``eval-tasks`` episodes (the heaviest evaluation: simulator, two
cameras, perception, memory, planner, policy); they run three ways, one after
the other in this process, each from a cold start (what a user waits for):

* ``in-process``: :func:`run_jobs` with ``workers=1`` (the plain command);
* ``ray x1``: a local Ray with 1 worker (Ray's own overhead);
* ``ray x2``: a local Ray with 2 workers.

Each time counts everything: Ray's start, the workers building their stacks,
the episodes. Rows are compared field by field (wall-clock fields aside).

    MUJOCO_GL=egl .venv/bin/python bench/bench_ray_eval.py --out out/bench/bench_ray_eval.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from robot_memory.distributed.episode_pool import run_jobs
from robot_memory.paths import model_path
from robot_memory.tasks.eval_tasks import DEFAULT_CHECKPOINT, SEED_OFFSET, TaskEpisodes

TIMING = {"wall_s", "cpu_s", "setup_wall_s", "observe_wall_s"}
SPEED_UP_TARGET = 1.7


def timed_run(jobs: list[tuple], factory: TaskEpisodes, workers: int, ray: bool) -> dict:
    rows: dict[tuple, dict] = {}

    def keep(job: tuple, row: dict) -> None:
        rows[job[:3]] = {k: v for k, v in row.items() if k not in TIMING}

    start = time.perf_counter()
    run_jobs(
        jobs,
        factory,
        keep,
        workers=workers,
        use_ray=ray,
        desc=f"{'ray' if ray else 'in-process'} x{workers}",
    )
    return {"wall_s": time.perf_counter() - start, "rows": rows}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tasks", default="bin_single,put_back,where_is")
    p.add_argument("--episodes", type=int, default=8, help="per task")
    p.add_argument("--setting", default="primitives")
    p.add_argument("--out", type=Path, default=Path("out/bench/bench_ray_eval.json"))
    args = p.parse_args()
    tasks = args.tasks.split(",")
    jobs = [(t, SEED_OFFSET + i, "full", None) for t in tasks for i in range(args.episodes)]
    factory = TaskEpisodes(model_path(DEFAULT_CHECKPOINT[args.setting]), 1, args.setting, None)
    runs = {
        "in-process": timed_run(jobs, factory, 1, ray=False),
        "ray x1": timed_run(jobs, factory, 1, ray=True),
        "ray x2": timed_run(jobs, factory, 2, ray=True),
    }
    base = runs["in-process"]["rows"]
    same = {name: r["rows"] == base for name, r in runs.items()}
    speed_up = runs["ray x1"]["wall_s"] / runs["ray x2"]["wall_s"]
    print(f"\n{len(jobs)} eval-tasks episodes ({args.tasks}, {args.setting}), cold starts:")
    print(f"{'run':12s} {'wall s':>8s} {'s/episode':>10s}  same rows as in-process")
    for name, r in runs.items():
        print(f"{name:12s} {r['wall_s']:8.1f} {r['wall_s'] / len(jobs):10.2f}  {same[name]}")
    verdict = "met" if speed_up >= SPEED_UP_TARGET and all(same.values()) else "NOT met"
    print(f"ray x2 / ray x1: {speed_up:.2f}x faster (target >= {SPEED_UP_TARGET}x): {verdict}")
    in_process = runs["in-process"]["wall_s"] / runs["ray x2"]["wall_s"]
    print(f"ray x2 / in-process: {in_process:.2f}x faster")
    successes = sum(bool(r.get("success")) for r in base.values())
    print(f"successes {successes}/{len(jobs)} in every run" if all(same.values()) else "")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "episodes": len(jobs),
        "tasks": tasks,
        "setting": args.setting,
        "wall_s": {name: round(r["wall_s"], 2) for name, r in runs.items()},
        "identical": same,
        "speed_up_2_vs_1": round(speed_up, 3),
        "speed_up_2_vs_in_process": round(in_process, 3),
        "successes": successes,
        "cpu_count": os.cpu_count(),
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
