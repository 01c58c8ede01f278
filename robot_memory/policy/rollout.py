"""Closed-loop episodes: the policy drives the simulated arm, in-process.

The loop is the policy node's, without DDS: every ``n_action_steps`` control
steps the runtime predicts a chunk from the last observations; the chunk's
first point (the observation's own time, already past) is dropped, the rest
go to the simulator's trajectory controller and the gripper, and the sim runs
until the next chunk. The skill monitor decides when the policy is done; the
simulator's ground truth decides whether it succeeded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from robot_memory.expert.ik import IKError
from robot_memory.policy.runtime import PolicyRuntime, RobotState
from robot_memory.policy.skill_monitor import RUNNING, MonitorConfig, SkillMonitor
from robot_memory.policy.skill_tasks import SkillGoal, SkillScenes
from robot_memory.robot.panda import ARM_JOINTS

#: ``goal_provider(goal, runner) -> goal or None``: re-reads the goal before each
#: chunk (e.g. from memory or from the current camera frame); None = target unknown.
GoalProvider = Callable[[SkillGoal, object], SkillGoal | None]


@dataclass
class EpisodeResult:
    skill: str
    seed: int
    object_id: str
    target_id: str
    success: bool
    monitor_state: str
    reason: str
    sim_seconds: float
    chunks: int
    chunk_latency_s: list[float] = field(default_factory=list)
    sample_latency_s: list[float] = field(default_factory=list)


def run_episode(
    runtime: PolicyRuntime,
    scenes: SkillScenes,
    seed: int,
    skill: str,
    monitor_config: MonitorConfig | None = None,
    goal_provider: GoalProvider | None = None,
    on_step: Callable[[], None] | None = None,
    object_id: str | None = None,
    place_target: str | None = None,
) -> EpisodeResult:
    runner = scenes.runner
    goal, _ = scenes.setup(seed, skill, object_id, place_target)
    start = runner.time
    monitor = SkillMonitor(goal, start, monitor_config)
    dt = runtime.dt
    states = [RobotState(runner.physics.arm_qpos().copy(), runner.physics.gripper_width(), start)]
    result = EpisodeResult(skill, seed, goal.object_id, goal.target_id, False, RUNNING, "", 0.0, 0)
    # with a provider the goal comes only from it (never the simulator's truth)
    active_goal: SkillGoal | None = None if goal_provider is not None else goal
    while monitor.state == RUNNING:
        if goal_provider is not None:
            active_goal = goal_provider(goal, runner) or active_goal
            if active_goal is None:
                monitor._finish("failed", "target not known")
                break
        try:
            chunk = runtime.predict(states, active_goal)
        except IKError as exc:
            monitor._finish("failed", f"IK: {exc}")
            break
        result.chunks += 1
        result.chunk_latency_s.append(chunk.total_s)
        result.sample_latency_s.append(chunk.sample_s)
        runner.command_trajectory(
            ARM_JOINTS, chunk.times[1:].tolist(), chunk.joint_positions[1:].tolist()
        )
        for i in range(1, len(chunk.times)):
            runner.command_gripper([float(chunk.gripper_widths[i])])
            runner.run_for(dt)
            states.append(
                RobotState(
                    runner.physics.arm_qpos().copy(), runner.physics.gripper_width(), runner.time
                )
            )
            if on_step is not None:
                on_step()
            tcp = runner.physics.tcp_pose()[0]
            if (
                monitor.update(runner.time, states[-1].gripper_width, runner.gripper_command, tcp)
                != RUNNING
            ):
                break
        states = states[-8:]
    runner.run_for(0.4)  # let a dropped object come to rest before judging
    result.success = scenes.success(goal)
    result.monitor_state, result.reason = monitor.state, monitor.reason
    result.sim_seconds = runner.time - start
    return result


def success_rate(results: list[EpisodeResult]) -> float:
    return float(np.mean([r.success for r in results])) if results else float("nan")


__all__ = ["EpisodeResult", "GoalProvider", "run_episode", "success_rate"]
