"""Closed-loop episodes: the policy drives the simulated arm, in-process.

The loop is the policy node's, without DDS: every ``n_action_steps`` control
steps the runtime predicts a chunk from the last observations; the chunk's
first point (the observation's own time, already past) is dropped, the rest
go to the simulator's trajectory controller and the gripper, and the sim runs
until the next chunk. The skill monitor decides when the policy is done; the
simulator's ground truth decides whether it succeeded. :func:`execute_skill`
is one skill from whatever state the simulator is in (the task evaluation
chains them); :func:`run_episode` sets up a seeded scene and runs one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from robot_memory.control.safety import ChunkRejected, SafetyFilter
from robot_memory.policy.runtime import PolicyRuntime, RobotState
from robot_memory.policy.skill_goal import SkillGoal
from robot_memory.policy.skill_monitor import RUNNING, MonitorConfig, SkillMonitor
from robot_memory.policy.skill_tasks import SkillScenes
from robot_memory.robot.ik import IKError
from robot_memory.robot.panda import ARM_JOINTS, GRIPPER_WIDTH_JOINT
from robot_memory.sim.runner import SimulationRunner

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


@dataclass
class SkillRun:
    """How one skill went, by the skill monitor (proprioception only)."""

    monitor_state: str
    reason: str
    sim_seconds: float
    chunks: int
    rejected_chunks: int = 0  # refused by the safety filter (the arm kept its last command)
    chunk_latency_s: list[float] = field(default_factory=list)
    sample_latency_s: list[float] = field(default_factory=list)


def execute_skill(
    runtime: PolicyRuntime,
    runner: SimulationRunner,
    goal: SkillGoal | None,
    monitor_config: MonitorConfig | None = None,
    goal_provider: GoalProvider | None = None,
    on_step: Callable[[], None] | None = None,
    safety: SafetyFilter | None = None,
    reference_goal: SkillGoal | None = None,
) -> SkillRun:
    """Run one skill closed loop from the runner's current state until the
    monitor ends it (succeeded, failed, timed out).

    ``goal`` is what the policy is conditioned on; with a ``goal_provider`` it
    is re-read before every chunk (``goal_provider(reference_goal, runner)``,
    ``goal`` the starting one: None = unknown until the provider says). The
    monitor judges against ``reference_goal`` (default ``goal``). ``on_step``
    runs after every control step (dt of sim time). With ``safety``, every
    chunk goes through :meth:`SafetyFilter.check_chunk` first; a refused chunk
    is not sent (the arm finishes its last command and holds) and counted."""
    reference = reference_goal if reference_goal is not None else goal
    if reference is None:
        raise ValueError("execute_skill needs a goal or a reference_goal")
    start = runner.time
    monitor = SkillMonitor(reference, start, monitor_config)
    dt = runtime.dt
    states = [RobotState(runner.physics.arm_qpos().copy(), runner.physics.gripper_width(), start)]
    run = SkillRun(RUNNING, "", 0.0, 0)
    active_goal = goal
    while monitor.state == RUNNING:
        if goal_provider is not None:
            active_goal = goal_provider(reference, runner) or active_goal
            if active_goal is None:
                monitor._finish("failed", "target not known")
                break
        assert active_goal is not None
        try:
            chunk = runtime.predict(states, active_goal)
        except IKError as exc:
            monitor._finish("failed", f"IK: {exc}")
            break
        run.chunks += 1
        run.chunk_latency_s.append(chunk.total_s)
        run.sample_latency_s.append(chunk.sample_s)
        times, positions = chunk.times[1:], chunk.joint_positions[1:]
        grip_t, grip_w = times, chunk.gripper_widths[1:]
        send = True
        if safety is not None:
            try:
                safe = safety.check_chunk(
                    chunk.stamp,
                    (*ARM_JOINTS, GRIPPER_WIDTH_JOINT),
                    chunk.times.tolist(),
                    np.column_stack([chunk.joint_positions, chunk.gripper_widths]).tolist(),
                    runner.time,
                    states[-1].q,
                )
                times, positions = safe.times, safe.positions
                grip_t, grip_w = safe.times, safe.gripper
            except ChunkRejected:
                run.rejected_chunks += 1
                send = False
        if send:
            runner.command_trajectory(ARM_JOINTS, times.tolist(), positions.tolist())
        for i in range(1, len(chunk.times)):
            if send:  # the width of the point the arm is heading to (retimed or not)
                k = min(int(np.searchsorted(grip_t, (i - 1) * dt, side="right")), len(grip_t) - 1)
                runner.command_gripper([float(grip_w[k])])
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
    run.monitor_state, run.reason = monitor.state, monitor.reason
    run.sim_seconds = runner.time - start
    return run


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
    # with a provider the goal comes only from it (never the simulator's truth)
    run = execute_skill(
        runtime,
        runner,
        None if goal_provider is not None else goal,
        monitor_config,
        goal_provider,
        on_step,
        reference_goal=goal,
    )
    runner.run_for(0.4)  # let a dropped object come to rest before judging
    return EpisodeResult(
        skill,
        seed,
        goal.object_id,
        goal.target_id,
        scenes.success(goal),
        run.monitor_state,
        run.reason,
        runner.time - start,
        run.chunks,
        run.chunk_latency_s,
        run.sample_latency_s,
    )


def success_rate(results: list[EpisodeResult]) -> float:
    return float(np.mean([r.success for r in results])) if results else float("nan")


__all__ = [
    "EpisodeResult",
    "GoalProvider",
    "SkillRun",
    "execute_skill",
    "run_episode",
    "success_rate",
]
