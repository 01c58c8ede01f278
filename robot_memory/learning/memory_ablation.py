"""The memory ablation's runner: every goal-source variant of
:mod:`robot_memory.learning.perceived_goals` on the same pick episodes (seeds,
objects, sampling noise), with per-variant successes, failure reasons and how
often the current frames showed the target (``eval-policy --ablation``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

from robot_memory.learning.perceived_goals import (
    VARIANTS,
    OutOfViewPicks,
    PerceivedGoalProvider,
    TargetLostError,
)
from robot_memory.learning.rollout import run_episode
from robot_memory.learning.skill_tasks import SkillScenes
from robot_memory.policy.skill_monitor import MonitorConfig
from robot_memory.robot.ik import IKError
from robot_memory.sim.runner import RunnerConfig, SimulationRunner


def _episode(runtime, scenes, provider, seed, object_id, monitor_config) -> dict:
    """One rollout with ``provider``; a TargetLostError ends it, judged by the
    ground truth then. Counts are this episode's."""
    runtime.generator.manual_seed(seed)  # the same sampling noise for every variant
    before = provider.counters.as_dict()
    row: dict = {"seed": seed, "object_id": object_id, "chunks": None}
    try:
        res = run_episode(
            runtime, scenes, seed, "pick", monitor_config, provider, object_id=object_id
        )
        row.update(object_id=res.object_id, success=res.success, reason=res.reason)
        row["chunks"] = res.chunks
        if not res.success and res.monitor_state == "succeeded":
            row["reason"] = "monitor: lifted; ground truth: not held up"
    except TargetLostError as lost:
        scenes.runner.run_for(0.4)
        goal = provider.goal
        ok = goal is not None and scenes.success(goal)
        row.update(success=bool(ok), reason=str(lost))
        row["object_id"] = goal.object_id if goal is not None else object_id
    except IKError as err:
        row.update(success=False, reason=f"IK: {err}")
    after = provider.counters.as_dict()
    row.update({f"n_{k}": after[k] - before[k] for k in after})
    return row


def _summary(rows: list[dict]) -> dict:
    calls = sum(r["n_calls"] for r in rows)
    reasons: dict[str, int] = {}
    for r in rows:
        if not r["success"]:
            reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    return {
        "successes": sum(r["success"] for r in rows),
        "n": len(rows),
        "visible_fraction": (
            sum(r["n_target_visible_in_current_frame"] for r in rows) / calls if calls else None
        ),
        "failure_reasons": reasons,
        "episodes": rows,
    }


def run_ablation(
    runtime,
    episodes: int,
    seed_start: int = 0,
    out_dir: str | Path | None = None,
    cameras: Sequence[str] = ("front", "wrist"),
    variants: Sequence[str] = tuple(VARIANTS),
    task: str = "out_of_view",
    max_seeds: int | None = None,
    monitor_config: MonitorConfig | None = None,
) -> dict:
    """Run ``episodes`` pick episodes of ``task`` with every variant on the same
    seeds, objects and sampling noise. ``task``: ``"out_of_view"``
    (:class:`OutOfViewPicks`; seeds without a target are skipped, at most
    ``max_seeds`` tried) or ``"pick"`` (the plain pick of the seed's object).
    Returns per variant successes, n, the fraction of goal reads whose current
    frames showed the target, failure reasons and the episodes; also written to
    ``out_dir/ablation.json``."""
    if task not in ("out_of_view", "pick"):
        raise ValueError(f"task must be 'out_of_view' or 'pick', got {task!r}")
    wall0 = time.monotonic()
    runner = SimulationRunner(RunnerConfig(camera_rate=0.0, ground_truth_rate=0.0))
    providers = {
        v: PerceivedGoalProvider(runner, VARIANTS[v][0], cameras, on_unknown=VARIANTS[v][1])
        for v in variants
    }
    eyes = next(iter(providers.values()))
    scenes = OutOfViewPicks(runner, eyes) if task == "out_of_view" else SkillScenes(runner)
    jobs: list[tuple[int, str | None]] = []
    skipped: list[int] = []
    for seed in range(seed_start, seed_start + (max_seeds or 20 * episodes)):
        if len(jobs) == episodes:
            break
        if task == "pick":
            jobs.append((seed, None))
            continue
        try:
            chosen = scenes.choose_target(seed)
        except IKError:
            chosen = None
        if chosen is None:
            skipped.append(seed)
        else:
            jobs.append((seed, chosen))
    result: dict = {"task": task, "cameras": list(cameras), "skipped_seeds": skipped}
    result["jobs"] = [{"seed": s, "object_id": o} for s, o in jobs]
    result["variants"] = {}
    for name, provider in providers.items():
        if isinstance(scenes, OutOfViewPicks):
            scenes.provider = provider
        rows = [_episode(runtime, scenes, provider, s, o, monitor_config) for s, o in jobs]
        result["variants"][name] = _summary(rows)
        provider.close()
    result["wall_s"] = round(time.monotonic() - wall0, 1)
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / "ablation.json").write_text(json.dumps(result, indent=1))
    return result
