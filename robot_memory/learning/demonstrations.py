"""Collect pick/place demonstrations with the scripted expert, in-process.

The expert (mink IK, the same core as the expert node) drives a
SimulationRunner through its controller interface; every ``1/fps`` seconds of
sim time the measured state and the commanded setpoint are recorded. Only
episodes whose effect is there at the end (ground truth) are kept as
successful; failed ones are written with ``success: false`` so they can be
inspected, and are skipped by training.

    robot-memory collect-demos --out data/demos --episodes 200
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from robot_memory.distributed.episode_pool import RayUnavailableError, run_jobs
from robot_memory.distributed.episode_pool import add_arguments as add_pool_arguments
from robot_memory.learning.dataset import EpisodeInfo, EpisodeWriter
from robot_memory.learning.skill_tasks import SkillScenes, execute_steps
from robot_memory.policy.kinematics import ArmKinematics
from robot_memory.policy.skill_goal import SkillGoal
from robot_memory.robot.ik import IKError
from robot_memory.sim.runner import RunnerConfig, SimulationRunner
from robot_memory.sim.scene import SCENES


class StepRecorder:
    """Samples state and command of a runner into the dataset's step arrays."""

    def __init__(self, runner: SimulationRunner, kinematics: ArmKinematics) -> None:
        self.runner = runner
        self.kin = kinematics
        self.rows: list[tuple] = []
        self.t0 = runner.time

    def tick(self) -> None:
        r = self.runner
        q = r.physics.arm_qpos().copy()
        q_cmd = r.commanded_arm().copy()
        self.rows.append(
            (r.time - self.t0, q, float(r.physics.gripper_width()), q_cmd, float(r.gripper_command))
        )

    def steps(self) -> dict[str, np.ndarray]:
        t, q, width, q_cmd, grip = (np.array(c) for c in zip(*self.rows, strict=True))
        tcp, yaw = self.kin.tcp_poses(q)
        a_tcp, a_yaw = self.kin.tcp_poses(q_cmd)
        return {
            "time": t,
            "joint_positions": q,
            "gripper_width": width,
            "tcp_position": tcp,
            "tcp_yaw": yaw,
            "action_joint_positions": q_cmd,
            "action_tcp_position": a_tcp,
            "action_tcp_yaw": a_yaw,
            "action_gripper_width": grip,
        }


class DemoEpisodes:
    """A worker for :func:`run_jobs`: a simulator, the expert's scenes and the
    arm's kinematics in the process that runs it; ``(skill, seed)`` jobs give
    ``{"info", "steps", "success"}``, or ``{"ik_error": True}``."""

    def __init__(self, scene: str, fps: float) -> None:
        self.scene, self.fps = scene, fps

    def __call__(self):
        config = RunnerConfig(scene=self.scene, camera_rate=0.0, ground_truth_rate=0.0)
        runner = SimulationRunner(config)
        scenes, kin = SkillScenes(runner), ArmKinematics()

        def episode(job: tuple[str, int]) -> dict:
            skill, seed = job
            try:
                goal, steps = scenes.setup(seed, skill)
                recorder = StepRecorder(runner, kin)
                execute_steps(runner, steps, dt=1.0 / self.fps, on_tick=recorder.tick)
            except IKError:
                return {"ik_error": True}
            recorder.tick()
            ok = scenes.success(goal)
            info = _info(goal, seed, ok, self.scene)
            return {"info": info, "steps": recorder.steps(), "success": ok}

        return episode


def collect(
    out: Path,
    episodes: int,
    skills: tuple[str, ...] = ("pick", "place"),
    seed_start: int = 0,
    fps: float = 10.0,
    overwrite: bool = False,
    scene: str = "tabletop",
    workers: int = 1,
    ray_address: str | None = None,
    progress: bool = True,
) -> dict[str, int]:
    """Record ``episodes`` episodes of each skill in ``scene``; returns counts.
    Episodes go to the dataset in seed order whichever worker ran them; an
    existing dataset (without ``overwrite``) keeps its episodes and gets only
    the (skill, seed) pairs it lacks, so an interrupted collection resumes."""
    source = f"expert:in-process:{scene}"
    writer = EpisodeWriter(out, fps, source=source, overwrite=overwrite)
    # (skill, seed) of this cell only: seed 3 of the tabletop is no household scene.
    # Episodes say their cell (``expert:<scene>``); older ones ("expert") are the
    # dataset's, when it held this cell's alone.
    have = {
        (e.skill, e.seed)
        for e in writer.episodes
        if e.source == f"expert:{scene}"
        or (e.source == "expert" and writer.previous_source == source)
    }
    counts = {"written": 0, "successful": 0, "failed": 0, "ik_errors": 0, "kept": len(have)}
    jobs = [(skill, seed_start + i) for i in range(episodes) for skill in skills]
    jobs = [j for j in jobs if j not in have]

    def keep(job: tuple[str, int], row: dict) -> None:
        if row.get("ik_error"):
            counts["ik_errors"] += 1
            return
        writer.append(row["info"], row["steps"])
        counts["written"] += 1
        counts["successful" if row["success"] else "failed"] += 1

    run_jobs(
        jobs,
        DemoEpisodes(scene, fps),
        keep,
        workers=workers,
        ray_address=ray_address,
        desc="demonstrations",
        postfix=lambda: {"ok": counts["successful"], "failed": counts["failed"]},
        ordered=True,
        progress=progress,
    )
    return counts


def _info(goal: SkillGoal, seed: int, ok: bool, scene: str) -> EpisodeInfo:
    return EpisodeInfo(
        index=-1,
        skill=goal.skill,
        target_position=[float(v) for v in goal.target_position],
        goal_yaw=float(goal.goal_yaw),
        length=0,
        object_id=goal.object_id,
        target_id=goal.target_id,
        seed=seed,
        success=ok,
        source=f"expert:{scene}",
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="robot-memory collect-demos", description=__doc__.split("\n")[0]
    )
    p.add_argument("--out", type=Path, default=Path("data/demos"), help="dataset folder")
    p.add_argument("--episodes", type=int, default=200, help="episodes per skill")
    p.add_argument("--skills", default="pick,place", help="comma-separated: pick,place")
    p.add_argument("--seed-start", type=int, default=0, help="first scene seed")
    p.add_argument("--fps", type=float, default=10.0, help="control rate recorded [Hz]")
    p.add_argument("--overwrite", action="store_true", help="start the dataset afresh")
    p.add_argument("--scene", choices=SCENES, default="tabletop", help="household: realistic")
    add_pool_arguments(p)
    args = p.parse_args(argv)
    skills = tuple(s.strip() for s in args.skills.split(",") if s.strip())
    if not skills or set(skills) - {"pick", "place"}:
        print(
            f"collect-demos: --skills must be pick and/or place, got {args.skills!r}",
            file=sys.stderr,
        )
        return 2
    if args.episodes < 1 or args.fps <= 0:
        print("collect-demos: --episodes must be >= 1 and --fps > 0", file=sys.stderr)
        return 2
    start = time.monotonic()
    try:
        counts = collect(
            args.out, args.episodes, skills, args.seed_start, args.fps, args.overwrite,
            args.scene, args.workers, args.ray_address,
        )  # fmt: skip
    except RayUnavailableError as err:
        print(f"collect-demos: {err}", file=sys.stderr)
        return 2
    print(
        f"collect-demos: {counts['successful']} successful, {counts['failed']} failed, "
        f"{counts['ik_errors']} skipped (IK), {counts['kept']} already there, "
        f"in {time.monotonic() - start:.0f} s -> {args.out}"
    )
    return 0 if counts["successful"] or counts["kept"] else 1


if __name__ == "__main__":
    sys.exit(main())
