"""End-to-end task evaluation: instruction -> plan -> skills -> ground truth, in-process.

    robot-memory eval-tasks --episodes 30                 # every task, full stack
    robot-memory eval-tasks --tasks bin_single,where_is --episodes 5 --ablation
    robot-memory eval-tasks --resume --output out/eval_tasks/<time>   # finish a run
    robot-memory eval-tasks --setting realistic --ablation   # household cell, noisy depth
    robot-memory eval-tasks --workers 2                   # fanned out over a local Ray

One process runs the stack's cores (the same code the ROS nodes call):
simulator, two RGB-D cameras at 320x240, perception, scene-graph memory, the
offline planner and its executor, the shipped diffusion policy with the safety
filter on every chunk. Scenes come from :mod:`robot_memory.tasks.suite`; seeds
start at 20000 (the policy trained on 0-249 and was evaluated on 10000+).
``--setting realistic`` runs the household cell (14 objects, same-colour twins
as distractors, touching objects) with RealSense-class depth noise and camera
mounts 3 mm / 0.3 degrees off (:mod:`robot_memory.sim.settings`) and, unless
``--checkpoint`` says otherwise, the policy trained in both cells.
``--ablation`` also runs every seed memoryless (``PlanExecutor.run(...,
memoryless=True)``: memory cleared before planning and before each step).

Writes ``episodes.jsonl`` (one row per episode, as it goes: ``--resume``
skips what is there), ``report.json`` and ``report.md`` (success per task with
Wilson 95% intervals, full stack and memoryless side by side, QA accuracy,
skills and replans per episode, wall time, failure reasons).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering, before mujoco loads


from robot_memory.distributed.episode_pool import RayUnavailableError, run_jobs
from robot_memory.distributed.episode_pool import add_arguments as add_pool_arguments
from robot_memory.learning.evaluation import wilson_interval
from robot_memory.paths import DEFAULT_POLICY
from robot_memory.sim.settings import SETTINGS
from robot_memory.tasks.suite import TASKS

SEED_OFFSET = 20_000
#: The policy each setting runs unless --checkpoint says otherwise (model_path's name).
DEFAULT_CHECKPOINT = {"primitives": DEFAULT_POLICY, "realistic": "diffusion_pick_place_household"}
CONDITIONS = ("full", "memoryless")
#: The cameras' width per setting (height 3/4 of it).
CAMERA_WIDTH = {"primitives": 320, "realistic": 320}


class TaskStack:
    """Everything one process needs to run task episodes."""

    def __init__(
        self,
        checkpoint: str | Path,
        threads: int = 1,
        width: int = 320,
        setting: str = "primitives",
        max_attempts: int | None = None,
    ) -> None:
        from robot_memory.memory.scene_graph import SceneMemory
        from robot_memory.planner.executor import ExecutorConfig, PlanExecutor
        from robot_memory.planner.offline_backend import OfflinePlanner
        from robot_memory.policy.runtime import PolicyRuntime
        from robot_memory.sim.depth_noise import depth_noise_named
        from robot_memory.sim.runner import RunnerConfig, SimulationRunner
        from robot_memory.sim.settings import setting_named
        from robot_memory.tasks.inprocess import InProcessMemory, InProcessSkills, Observer
        from robot_memory.tasks.scenes import TaskScenes

        height = width * 3 // 4
        self.runtime = PolicyRuntime(checkpoint, device="cpu", threads=threads)
        cell = setting_named(setting)
        self.runner = SimulationRunner(
            RunnerConfig(scene=cell.scene, camera_rate=0.0, ground_truth_rate=0.0)
        )
        self.memory = SceneMemory()
        self.observer = Observer(
            self.runner,
            self.memory,
            width=width,
            height=height,
            depth_noise=depth_noise_named(cell.depth_noise),
            calibration_error=cell.extrinsic_error,
        )
        self.port = InProcessMemory(self.memory, self.observer)
        self.scenes = TaskScenes(self.runner, self.observer, width, height)
        self.skills = InProcessSkills(self.runtime, self.runner, self.memory, self.observer)
        self.backend = OfflinePlanner(embedder=self.memory.embedder)
        config = ExecutorConfig() if max_attempts is None else ExecutorConfig(max_attempts)
        self.executor = PlanExecutor(self.backend, self.port, self.skills, config=config)
        self.handover = tuple(self.backend.handover_position[:2])

    def episode(self, task: str, seed: int, memoryless: bool, video: Path | None = None) -> dict:
        from robot_memory.tasks.scenes import SceneError
        from robot_memory.tasks.suite import check_success, setup_task

        wall0, cpu0 = time.perf_counter(), time.process_time()
        row: dict = {"task": task, "seed": seed, "condition": CONDITIONS[int(memoryless)]}
        self.memory.reset(as_new=True)  # the same ids and stamps whatever ran before
        self.skills.log.runs.clear()
        self.runtime.generator.manual_seed(seed)
        self.observer.reseed(seed)  # an episode is a function of its seed, not of the run
        observes0, observe_wall0 = self.observer.observes, self.observer.wall_s
        try:
            inst = setup_task(self.scenes, task, seed, self.handover)  # type: ignore[arg-type]
        except (SceneError, RuntimeError, ValueError) as err:
            self.scenes.restore_colours()
            row.update(success=None, setup_error=str(err)[:300], wall_s=time.perf_counter() - wall0)
            return row
        row.update(instruction=inst.instruction, roles=inst.roles, variant=inst.variant)
        setup_wall = time.perf_counter() - wall0
        recorder = None
        if video is not None:
            from robot_memory.learning.evaluation import VideoRecorder

            recorder = VideoRecorder(self.runner, video, 1.0 / self.runtime.dt)
            self.skills.on_step = recorder
        sim0 = self.runner.time
        try:
            result = self.executor.run(inst.instruction, memoryless=memoryless)
        finally:
            self.skills.on_step = None
            if recorder is not None:
                recorder.close()
        self.runner.run_for(0.4)
        graph = self.memory.snapshot()
        ok, why = check_success(inst, self.runner.ground_truth(), result.plan, graph)
        self.scenes.restore_colours()
        row.update(
            success=bool(ok),
            why=why,
            state=result.state,
            reason=result.reason[:300],
            plan=result.plan.describe()[:500] if result.plan else "",
            answer=result.plan.answer[:300] if result.plan and inst.question else "",
            question=inst.question,
            skills=self.skills.log.as_rows(),
            n_skills=sum(r.skill in ("pick", "place") for r in self.skills.log.runs),
            replans=result.replans,
            rejected_chunks=sum(r.rejected_chunks for r in self.skills.log.runs),
            observes=self.observer.observes - observes0,
            observe_wall_s=round(self.observer.wall_s - observe_wall0, 2),
            sim_s=round(self.runner.time - sim0, 2),
            setup_wall_s=round(setup_wall, 2),
            wall_s=round(time.perf_counter() - wall0, 2),
            cpu_s=round(time.process_time() - cpu0, 2),
        )
        return row


class TaskEpisodes:
    """A worker for :func:`run_jobs`: builds a :class:`TaskStack` in the process
    that runs it, then runs ``(task, seed, condition, video path or None)`` jobs."""

    def __init__(
        self,
        checkpoint: str | Path,
        threads: int,
        setting: str,
        max_attempts: int | None,
        width: int = 320,
    ) -> None:
        self.args = (str(checkpoint), threads, width, setting, max_attempts)

    def __call__(self):
        stack = TaskStack(*self.args)

        def episode(job: tuple) -> dict:
            task, seed, condition, video = job
            return stack.episode(task, seed, condition == "memoryless", video and Path(video))

        return episode


def failure_key(row: dict) -> str:
    """A failure's reason with the episode's specifics (memory ids, candidate
    lists) cut, so the same failure counts together."""
    if row.get("setup_error"):
        return "scene set-up failed"
    if row.get("state") in ("rejected", "failed"):
        text = re.sub(r"#\d+", "#id", (row.get("reason") or "").split("; best:")[0])
        return f"{row['state']}: {text[:80]}"
    return f"ground truth: {(row.get('why') or '')[:80]}"


def summarize(rows: list[dict]) -> dict:
    """Per task and condition: success with Wilson 95%, means, failure reasons."""
    out: dict = {"tasks": {}}
    for task in TASKS:
        per: dict = {}
        for cond in CONDITIONS:
            rs = [r for r in rows if r["task"] == task and r["condition"] == cond]
            run = [r for r in rs if r.get("success") is not None]
            if not rs:
                continue
            k, n = sum(bool(r["success"]) for r in run), len(run)
            lo, hi = wilson_interval(k, n)
            per[cond] = {
                "successes": k,
                "n": n,
                "success_rate": k / n if n else None,
                "wilson95": [lo, hi],
                "setup_errors": len(rs) - n,
                "mean_skills": _mean([r["n_skills"] for r in run]),
                "mean_replans": _mean([r["replans"] for r in run]),
                "mean_wall_s": _mean([r["wall_s"] for r in run]),
                "mean_cpu_s": _mean([r.get("cpu_s", r["wall_s"]) for r in run]),
                "mean_sim_s": _mean([r["sim_s"] for r in run]),
                "failures": dict(Counter(failure_key(r) for r in rs if not r.get("success"))),
                # the planner's own verdict against the ground truth's
                "planner_done": sum(r.get("state") in DONE for r in run),
                "false_done": sum(r.get("state") in DONE and not r["success"] for r in run),
                "false_failed": sum(r.get("state") not in DONE and bool(r["success"]) for r in run),
            }
        if per:
            out["tasks"][task] = per
    qa = [r for r in rows if r.get("question") and r["condition"] == "full"]
    out["qa_accuracy"] = _mean([bool(r["success"]) for r in qa]) if qa else None
    return out


#: Planner states that say "the instruction is done".
DONE = ("succeeded", "answered")


def _mean(xs: list) -> float | None:
    return round(sum(xs) / len(xs), 3) if xs else None


def _cell(s: dict | None) -> str:
    if not s or not s["n"]:
        return "-"
    lo, hi = s["wilson95"]
    rate = 100 * s["success_rate"]
    return f"{s['successes']}/{s['n']} ({rate:.0f}%, {100 * lo:.0f}-{100 * hi:.0f}%)"


def write_report(out: Path, summary: dict, meta: dict) -> None:
    (out / "report.json").write_text(json.dumps({**meta, **summary}, indent=2) + "\n")
    lines = [
        "# Task evaluation (planner + memory + policy, in-process)",
        "",
        f"setting {meta.get('setting', 'primitives')}, "
        f"seeds from {meta['seed_offset']}, {meta['episodes']} per task, "
        f"checkpoint `{meta['checkpoint']}`, {meta['threads']} torch thread(s)",
        "",
        "| task | full stack (Wilson 95%) | memoryless | planner said done "
        "(wrongly / wrongly not) | skills/ep | replans/ep | wall s/ep |",
        "|---|---|---|---|---|---|---|",
    ]
    for task, per in summary["tasks"].items():
        f = per.get("full")
        said = f and f"{f['planner_done']}/{f['n']} ({f['false_done']} / {f['false_failed']})"
        lines.append(
            f"| {task} | {_cell(f)} | {_cell(per.get('memoryless'))} | {said} | "
            f"{f and f['mean_skills']} | {f and f['mean_replans']} | {f and f['mean_wall_s']} |"
        )
    qa = summary["qa_accuracy"]
    lines += ["", f"QA accuracy (where_is, full stack): {'-' if qa is None else f'{qa:.0%}'}"]
    lines += ["", "## Failure reasons", ""]
    for task, per in summary["tasks"].items():
        for cond, s in per.items():
            for reason, n in sorted(s["failures"].items(), key=lambda kv: -kv[1]):
                lines.append(f"- {task} / {cond}: {n} x {reason}")
    (out / "report.md").write_text("\n".join(lines) + "\n")


def read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    from robot_memory.paths import model_path
    from robot_memory.planner.executor import ExecutorConfig

    p = argparse.ArgumentParser(prog="robot-memory eval-tasks", description=__doc__.split("\n")[0])
    p.add_argument("--tasks", default="all", help=f"comma list of {','.join(TASKS)}, or all")
    p.add_argument("--episodes", type=int, default=30, help="episodes per task")
    p.add_argument("--seed-offset", type=int, default=SEED_OFFSET)
    p.add_argument("--ablation", action="store_true", help="also run memoryless, same seeds")
    p.add_argument("--output", type=Path, default=None, help="default out/eval_tasks/<time>")
    p.add_argument("--resume", action="store_true", help="skip episodes already in --output")
    p.add_argument(
        "--setting",
        choices=sorted(SETTINGS),
        default="primitives",
        help="primitives: the coloured primitives, perfect depth; realistic: household "
        "objects, RealSense depth noise, cameras 3 mm / 0.3 deg off",
    )
    p.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="default: the shipped model (realistic: the one trained in both cells)",
    )
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument(
        "--max-attempts",
        type=int,
        default=None,
        help="the planner's tries per object (default: the planner node's)",
    )
    p.add_argument("--video", action="store_true", help="MP4 of the first episode per task")
    p.add_argument(
        "--camera-width",
        type=int,
        default=None,
        help="both cameras' width in pixels, 4:3 (default: 320 for primitives, 640 for "
        "realistic, the resolution the default labeller was trained at)",
    )
    add_pool_arguments(p)
    args = p.parse_args(argv)
    os.environ.setdefault("MUJOCO_GL", "egl")
    tasks = list(TASKS) if args.tasks == "all" else [t.strip() for t in args.tasks.split(",")]
    if args.episodes < 1 or not tasks or set(tasks) - set(TASKS):
        print(f"eval-tasks: --episodes >= 1, --tasks from {','.join(TASKS)}", file=sys.stderr)
        return 2
    if args.workers < 1:
        print("eval-tasks: --workers >= 1", file=sys.stderr)
        return 2
    if args.resume and args.output is None:
        print("eval-tasks: --resume needs --output", file=sys.stderr)
        return 2
    width = args.camera_width or CAMERA_WIDTH[args.setting]
    if width < 64 or width % 4:
        print("eval-tasks: --camera-width >= 64 and a multiple of 4 (4:3)", file=sys.stderr)
        return 2
    out = args.output or Path("out/eval_tasks") / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    jsonl = out / "episodes.jsonl"
    rows = read_rows(jsonl) if args.resume else []
    if not args.resume:
        jsonl.write_text("")
    done = {(r["task"], r["seed"], r["condition"]) for r in rows}
    conditions = CONDITIONS if args.ablation else CONDITIONS[:1]
    jobs: list[tuple[str, int, str, str | None]] = []
    filmed: set[str] = set()  # --video: the first full-stack episode of each task
    for t in tasks:
        for seed in range(args.seed_offset, args.seed_offset + args.episodes):
            for c in conditions:
                if (t, seed, c) in done:
                    continue
                video = None
                if args.video and c == "full" and t not in filmed:
                    filmed.add(t)
                    video = str(out / f"{t}_{seed}.mp4")
                jobs.append((t, seed, c, video))
    checkpoint = args.checkpoint or model_path(DEFAULT_CHECKPOINT[args.setting])
    meta = {
        "setting": args.setting,
        "seed_offset": args.seed_offset,
        "episodes": args.episodes,
        "checkpoint": str(checkpoint),
        "threads": args.threads,
        "max_attempts": args.max_attempts or ExecutorConfig().max_attempts,
        "workers": args.workers,
        "camera_width": width,
    }
    wall0 = time.perf_counter()

    def keep(job: tuple, row: dict) -> None:
        rows.append(row)
        with jsonl.open("a") as f:
            f.write(json.dumps(row) + "\n")

    def tally() -> dict:
        ok = Counter(f"{r['task'][:8]}/{r['condition'][0]}" for r in rows if r.get("success"))
        return dict(sorted(ok.items()))

    try:
        run_jobs(
            jobs,
            TaskEpisodes(checkpoint, args.threads, args.setting, args.max_attempts, width),
            keep,
            workers=args.workers,
            ray_address=args.ray_address,
            desc="eval-tasks",
            postfix=tally,
        )
    except RayUnavailableError as err:
        print(f"eval-tasks: {err}", file=sys.stderr)
        return 2
    meta["wall_s"] = round(time.perf_counter() - wall0, 1)  # this run's episodes only
    rows.sort(key=lambda r: (TASKS.index(r["task"]), r["seed"], CONDITIONS.index(r["condition"])))
    summary = summarize(rows)
    write_report(out, summary, meta)
    for task, per in summary["tasks"].items():
        print(f"eval-tasks: {task}: " + ", ".join(f"{c} {_cell(s)}" for c, s in per.items()))
    print(f"eval-tasks: report in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
