"""Closed-loop evaluation of a policy checkpoint in the simulator.

    robot-memory eval-policy --episodes 50                 # pick and place, DDIM 10
    robot-memory eval-policy --episodes 50 --sampler ddpm  # LeRobot's default: 100 DDPM steps
    robot-memory eval-policy --episodes 20 --ablation      # goal from memory vs current frame

Seeds start at 10000 (training demonstrations use 0..N), so every scene is
new to the policy. Writes ``report.json``, ``report.md``, ``success.png``
(success with Wilson 95% intervals) and ``rollout_<skill>.mp4`` (front and
wrist cameras side by side) to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from robot_memory.distributed.episode_pool import RayUnavailableError, run_jobs
from robot_memory.distributed.episode_pool import add_arguments as add_pool_arguments
from robot_memory.learning.rollout import EpisodeResult, run_episode
from robot_memory.learning.skill_tasks import SkillScenes
from robot_memory.policy.runtime import PolicyRuntime
from robot_memory.policy.skill_monitor import MonitorConfig
from robot_memory.sim.runner import RunnerConfig, SimulationRunner
from robot_memory.sim.scene import SCENES, scene_objects

EVAL_SEED_START = 10_000


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (95% for z = 1.96)."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def summarize(results: list[EpisodeResult]) -> dict:
    k, n = sum(r.success for r in results), len(results)
    lo, hi = wilson_interval(k, n)
    lat = np.array([x for r in results for x in r.chunk_latency_s]) * 1e3
    sam = np.array([x for r in results for x in r.sample_latency_s]) * 1e3
    reasons: dict[str, int] = {}
    for r in results:
        if not r.success:
            key = r.reason or r.monitor_state
            reasons[key] = reasons.get(key, 0) + 1
    return {
        "episodes": n,
        "successes": k,
        "success_rate": k / n if n else float("nan"),
        "wilson95": [lo, hi],
        "chunk_latency_ms": _percentiles(lat),
        "denoise_latency_ms": _percentiles(sam),
        "mean_sim_seconds": float(np.mean([r.sim_seconds for r in results])) if results else 0.0,
        "failures": reasons,
    }


def by_category_summary(results: list[EpisodeResult], scene: str) -> dict[str, dict]:
    """:func:`summarize` per object category (the scene's shape word of each object)."""
    category = {item.id: item.shape for item in scene_objects(scene)}
    groups: dict[str, list[EpisodeResult]] = {}
    for r in results:
        groups.setdefault(category.get(r.object_id, r.object_id), []).append(r)
    return {c: summarize(rs) for c, rs in sorted(groups.items())}


def _percentiles(x: np.ndarray) -> dict:
    if x.size == 0:
        return {}
    return {
        "p50": float(np.percentile(x, 50)),
        "p99": float(np.percentile(x, 99)),
        "max": float(x.max()),
    }


class VideoRecorder:
    """Front + wrist frames side by side into an MP4 (OpenCV's mp4v encoder)."""

    def __init__(
        self, runner: SimulationRunner, path: Path, fps: float, width: int = 320, height: int = 240
    ) -> None:
        import cv2

        from robot_memory.sim.cameras import CameraRig

        self.cv2 = cv2
        self.runner = runner
        self.rig = CameraRig(runner.physics.model, width, height, ("front", "wrist"))
        self.writer = cv2.VideoWriter(
            str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (2 * width, height)
        )
        if not self.writer.isOpened():
            raise RuntimeError(f"cannot open an MP4 writer at {path}")
        self.frames = 0

    def __call__(self) -> None:
        images = [self.rig.render(self.runner.physics, cam)[0] for cam in ("front", "wrist")]
        frame = np.concatenate(images, axis=1)
        self.writer.write(self.cv2.cvtColor(frame, self.cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self) -> None:
        self.writer.release()
        self.rig.close()


class PolicyEpisodes:
    """A worker for :func:`run_jobs`: builds the policy runtime and a simulator
    in the process that runs it, then runs ``(skill, seed, object id or None,
    video path or None)`` jobs into :class:`EpisodeResult` rows."""

    def __init__(
        self, runtime_args: dict, scene: str, monitor_config: MonitorConfig | None = None
    ) -> None:
        self.runtime_args, self.scene, self.monitor_config = runtime_args, scene, monitor_config

    def __call__(self):
        runtime = PolicyRuntime(**self.runtime_args)
        config = RunnerConfig(scene=self.scene, camera_rate=0.0, ground_truth_rate=0.0)
        scenes = SkillScenes(SimulationRunner(config))

        def episode(job: tuple) -> dict:
            skill, seed, object_id, video = job
            recorder = video and VideoRecorder(scenes.runner, Path(video), 1.0 / runtime.dt)
            try:
                result = run_episode(
                    runtime,
                    scenes,
                    seed,
                    skill,
                    self.monitor_config,
                    on_step=recorder or None,
                    object_id=object_id,
                )
            finally:
                if recorder:
                    recorder.close()
            return asdict(result)

        return episode


def policy_jobs(
    skills: tuple[str, ...], episodes: int, seed_start: int, scene: str, by_category: bool
) -> list[tuple[str, int, str | None]]:
    """``episodes`` per skill, each on a random object of the scene; with
    ``by_category``, ``episodes`` per skill and object category (a random
    object of that category; the same scene seeds for every category)."""
    jobs: list[tuple[str, int, str | None]] = []
    categories: dict[str, list[str]] = {}
    for item in scene_objects(scene):
        categories.setdefault(item.shape, []).append(item.id)
    for skill in skills:
        if not by_category:
            jobs += [(skill, seed_start + i, None) for i in range(episodes)]
            continue
        for ids in categories.values():
            rng = np.random.default_rng(seed_start + len(ids))
            jobs += [(skill, seed_start + i, str(rng.choice(ids))) for i in range(episodes)]
    return jobs


def _job_of(row: dict) -> tuple[str, int, str | None]:
    return row["skill"], row["seed"], row.get("requested_object")


def evaluate(
    runtime_args: dict,
    jobs: list[tuple[str, int, str | None]],
    out: Path,
    videos: int = 1,
    scene: str = "tabletop",
    workers: int = 1,
    ray_address: str | None = None,
    resume: bool = False,
) -> dict[str, list[EpisodeResult]]:
    """Run ``jobs`` (:func:`policy_jobs`), here or on Ray; every episode goes
    to ``out/episodes.jsonl`` as it ends, and ``resume`` skips those there."""
    jsonl = out / "episodes.jsonl"
    rows = [json.loads(x) for x in jsonl.read_text().splitlines() if x] if resume else []
    if not resume or not jsonl.exists():
        jsonl.write_text("")
    done = {_job_of(r) for r in rows}
    todo, filmed = [], {}
    results: dict[str, list[EpisodeResult]] = {s: [] for s in dict.fromkeys(j[0] for j in jobs)}
    for skill, seed, object_id in jobs:
        if (skill, seed, object_id) in done:
            continue
        filmed[skill] = filmed.get(skill, 0) + 1
        video = out / f"rollout_{skill}_{seed}.mp4" if filmed[skill] <= videos else None
        todo.append((skill, seed, object_id, video and str(video)))

    def keep(job: tuple, row: dict) -> None:
        row["requested_object"] = job[2]  # None: the seed chose it
        rows.append(row)
        with jsonl.open("a") as f:
            f.write(json.dumps(row) + "\n")

    def tally() -> dict:
        return {s: sum(r["success"] for r in rows if r["skill"] == s) for s in results}

    run_jobs(
        todo,
        PolicyEpisodes(runtime_args, scene),
        keep,
        workers=workers,
        ray_address=ray_address,
        desc="eval-policy",
        postfix=tally,
    )
    order = {job: i for i, job in enumerate(jobs)}
    rows = sorted((r for r in rows if _job_of(r) in order), key=lambda r: order[_job_of(r)])
    fields = set(EpisodeResult.__dataclass_fields__)
    for r in rows:
        results.setdefault(r["skill"], []).append(
            EpisodeResult(**{k: v for k, v in r.items() if k in fields})
        )
    return results


def write_report(out: Path, summary: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(summary, indent=2) + "\n")
    lines = [
        "# Policy evaluation",
        "",
        f"checkpoint `{summary['checkpoint']}`, sampler {summary['sampler']} "
        f"{summary['num_inference_steps']} steps, device {summary['device']}, "
        f"{summary['n_action_steps']} executed steps per chunk, seeds from {summary['seed_start']}",
        "",
        "| skill | success | Wilson 95% | chunk latency p50 / p99 [ms] | failures |",
        "|---|---|---|---|---|",
    ]
    for skill, s in summary["skills"].items():
        lo, hi = s["wilson95"]
        lat = s["chunk_latency_ms"]
        fails = ", ".join(f"{k}: {v}" for k, v in s["failures"].items()) or "-"
        lines.append(
            f"| {skill} | {s['successes']}/{s['episodes']} ({100 * s['success_rate']:.0f}%) | "
            f"{100 * lo:.0f}-{100 * hi:.0f}% | {lat.get('p50', 0):.1f} / {lat.get('p99', 0):.1f} | "
            f"{fails} |"
        )
    (out / "report.md").write_text("\n".join(lines) + "\n")
    plot_success(out / "success.png", summary["skills"], summary["sampler"])


def write_ablation_report(out: Path, summary: dict) -> None:
    """``ablation.md`` beside run_ablation's ``ablation.json``, and a summary line each."""
    lines = [
        f"# Memory ablation: {summary.get('task', '?')}",
        "",
        "| goal from | success | Wilson 95% | chunks with the target in view | failures |",
        "|---|---|---|---|---|",
    ]
    for name, v in summary["variants"].items():
        lo, hi = wilson_interval(v["successes"], v["n"])
        fails = ", ".join(f"{k}: {n}" for k, n in v["failure_reasons"].items()) or "-"
        lines.append(
            f"| {name} | {v['successes']}/{v['n']} | {100 * lo:.0f}-{100 * hi:.0f}% | "
            f"{100 * v['visible_fraction']:.0f}% | {fails} |"
        )
        print(
            f"eval-policy --ablation: {name} {v['successes']}/{v['n']} "
            f"(Wilson 95% {100 * lo:.0f}-{100 * hi:.0f}%)"
        )
    (out / "ablation.md").write_text("\n".join(lines) + "\n")
    print(f"eval-policy: ablation report in {out}")


def plot_success(path: Path, skills: dict, label: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(skills)
    rates = [100 * skills[n]["success_rate"] for n in names]
    lo = [rates[i] - 100 * skills[n]["wilson95"][0] for i, n in enumerate(names)]
    hi = [100 * skills[n]["wilson95"][1] - rates[i] for i, n in enumerate(names)]
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    ax.bar(names, rates, yerr=[lo, hi], capsize=6, color="#4C72B0")
    ax.axhline(90, ls="--", color="grey", lw=1)
    ax.set_ylim(0, 105)
    ax.set_ylabel("success [%] (Wilson 95%)")
    ax.set_title(f"closed-loop success ({label})")
    for i, n in enumerate(names):
        ax.text(i, 2, f"{skills[n]['successes']}/{skills[n]['episodes']}", ha="center", color="w")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    from robot_memory.paths import CONSISTENCY_POLICY, DEFAULT_POLICY, model_path

    p = argparse.ArgumentParser(prog="robot-memory eval-policy", description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", type=Path, default=None, help="default: the shipped model")
    p.add_argument("--episodes", type=int, default=50, help="episodes per skill")
    p.add_argument("--skills", default="pick,place")
    p.add_argument("--seed-start", type=int, default=EVAL_SEED_START)
    p.add_argument(
        "--sampler",
        choices=("ddim", "ddpm", "consistency"),
        default="ddim",
        help="consistency: the one-step distilled checkpoint (models/consistency_pick_place)",
    )
    p.add_argument(
        "--steps", type=int, default=None, help="denoising steps (ddim 10, ddpm 100, consistency 1)"
    )
    p.add_argument("--n-action-steps", type=int, default=None)
    p.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"))
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--videos", type=int, default=1, help="MP4 rollouts per skill")
    p.add_argument(
        "--ablation",
        action="store_true",
        help="memory ablation: goal from memory vs from the current frame only",
    )
    p.add_argument("--scene", choices=SCENES, default="tabletop", help="household: realistic")
    p.add_argument(
        "--by-category",
        action="store_true",
        help="--episodes per object category (mug, bowl, ...) and skill, success per category",
    )
    p.add_argument("--out", type=Path, default=Path("out/eval_policy"))
    p.add_argument("--resume", action="store_true", help="skip the episodes already in --out")
    add_pool_arguments(p)
    args = p.parse_args(argv)
    os.environ.setdefault("MUJOCO_GL", "egl")
    skills = tuple(s.strip() for s in args.skills.split(",") if s.strip())
    if args.episodes < 1 or not skills or set(skills) - {"pick", "place"}:
        print("eval-policy: --episodes >= 1 and --skills from pick,place", file=sys.stderr)
        return 2
    default = CONSISTENCY_POLICY if args.sampler == "consistency" else DEFAULT_POLICY
    checkpoint = args.checkpoint or model_path(default)
    runtime_args = {
        "checkpoint": str(checkpoint),
        "device": args.device,
        "sampler": args.sampler,
        "num_inference_steps": args.steps,
        "n_action_steps": args.n_action_steps,
        "threads": args.threads,
    }
    try:  # here too: a checkpoint or sampler that does not fit fails before any worker starts
        runtime = PolicyRuntime(**runtime_args)
    except (ValueError, RuntimeError) as exc:
        print(f"eval-policy: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    if args.ablation:
        from robot_memory.learning.memory_ablation import run_ablation

        summary = run_ablation(runtime, args.episodes, args.seed_start, args.out)
        write_ablation_report(args.out, summary)
        return 0
    jobs = policy_jobs(skills, args.episodes, args.seed_start, args.scene, args.by_category)
    try:
        results = evaluate(
            runtime_args,
            jobs,
            args.out,
            args.videos,
            args.scene,
            args.workers,
            args.ray_address,
            args.resume,
        )
    except RayUnavailableError as err:
        print(f"eval-policy: {err}", file=sys.stderr)
        return 2
    summary = {
        "scene": args.scene,
        "checkpoint": str(checkpoint),
        "sampler": runtime.sampler,
        "num_inference_steps": runtime.num_inference_steps,
        "n_action_steps": runtime.n_action_steps,
        "device": str(runtime.device),
        "seed_start": args.seed_start,
        "wall_seconds": round(time.monotonic() - start, 1),
        "skills": {s: summarize(r) for s, r in results.items()},
        "categories": {s: by_category_summary(r, args.scene) for s, r in results.items()},
        "episodes": {
            s: [asdict(x) | {"chunk_latency_s": None, "sample_latency_s": None} for x in r]
            for s, r in results.items()
        },
    }
    write_report(args.out, summary)
    for skill, s in summary["skills"].items():
        lo, hi = s["wilson95"]
        print(
            f"eval-policy: {skill} {s['successes']}/{s['episodes']} "
            f"({100 * s['success_rate']:.0f}%, Wilson 95% {100 * lo:.0f}-{100 * hi:.0f}%), "
            f"chunk p99 {s['chunk_latency_ms'].get('p99', 0):.1f} ms"
        )
        for category, c in summary["categories"][skill].items():
            lo, hi = c["wilson95"]
            print(
                f"eval-policy:   {skill} {category:12s} {c['successes']}/{c['episodes']} "
                f"({100 * c['success_rate']:.0f}%, Wilson 95% {100 * lo:.0f}-{100 * hi:.0f}%)"
            )
    print(f"eval-policy: report in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
