"""Closed-loop episodes: the policy drives the simulated arm, in-process.

The loop is the policy node's own :class:`~robot_memory.policy.skill_executor.SkillExecutor`
(observation window, schedule, stale drops, the skill monitor, looks), with
:class:`SimulatorSink` in place of DDS: a requested chunk is predicted at once
(sim time stands still while the network runs, so the schedule plans with no
latency), checked by the same :class:`~robot_memory.control.safety.SafetyFilter`
the safety node runs (point 0, the observation's own time, is past and
dropped; a refused chunk is not sent, the arm finishes its last command, and
is counted) and handed to the simulator's trajectory controller; the gripper
gets the width of the newest chunk point at or before now, as the safety node
sends it. The sim advances one control period (0.02 s) per tick.

:func:`execute_skill` is one skill (pick, place or look) from whatever state
the simulator is in (the task evaluation chains them); the simulator's ground
truth then decides whether it succeeded. :func:`run_episode` sets up a seeded
scene and runs one pick or place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robot_memory.control.safety import ChunkRejected, SafetyFilter
from robot_memory.health.counters import HealthCounters
from robot_memory.learning.skill_tasks import SkillScenes
from robot_memory.policy.look_skill import LookDriver, LookMotion
from robot_memory.policy.runtime import ActionChunk, PolicyInputError, PolicyRuntime, RobotState
from robot_memory.policy.skill_executor import (
    CONTROL_PERIOD_S,
    ExecutorConfig,
    PredictionRequest,
    SkillExecutor,
    SkillReport,
)
from robot_memory.policy.skill_goal import SkillGoal
from robot_memory.policy.skill_monitor import RUNNING, MonitorConfig
from robot_memory.robot.ik import IKError
from robot_memory.robot.panda import ARM_JOINTS, GRIPPER_WIDTH_JOINT
from robot_memory.schemas import PolicyGoalMsg
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


class SimulatorSink:
    """The executor's decisions applied to a :class:`SimulationRunner`."""

    def __init__(self, runner: SimulationRunner, safety: SafetyFilter | None) -> None:
        self.runner, self.safety = runner, safety
        self.request: PredictionRequest | None = None
        self.report_: SkillReport | None = None
        self.rejected_chunks = 0
        self._gripper: tuple[np.ndarray, np.ndarray] | None = None  # without a safety filter
        self._gripper_sent: float | None = None

    def submit(self, request: PredictionRequest) -> None:
        self.request = request

    def send_chunk(self, chunk: ActionChunk, token: Any) -> None:
        rows = np.column_stack([chunk.joint_positions, chunk.gripper_widths])
        self._send(chunk.stamp, (*ARM_JOINTS, GRIPPER_WIDTH_JOINT), chunk.times, rows)

    def send_look(self, motion: LookMotion, token: Any, t_stamp: float) -> None:
        times, positions = motion.ahead(t_stamp)
        if motion.gripper_width is None:
            self._send(t_stamp, ARM_JOINTS, times, positions)
        else:
            rows = np.column_stack([positions, np.full(len(times), motion.gripper_width)])
            self._send(t_stamp, (*ARM_JOINTS, GRIPPER_WIDTH_JOINT), times, rows)

    def _send(self, stamp: float, names: tuple, times: np.ndarray, rows: np.ndarray) -> None:
        now = self.runner.time
        q_now = self.runner.physics.arm_qpos().copy()
        has_width = GRIPPER_WIDTH_JOINT in names
        if self.safety is not None:
            try:
                safe = self.safety.check_chunk(
                    stamp, names, times.tolist(), rows.tolist(), now, q_now
                )
            except ChunkRejected:
                self.rejected_chunks += 1
                return
            self.runner.command_trajectory(ARM_JOINTS, safe.times.tolist(), safe.positions.tolist())
            return
        ahead = stamp + times > now
        if not np.any(ahead):
            return
        rel = stamp + times[ahead] - now
        self.runner.command_trajectory(ARM_JOINTS, rel.tolist(), rows[ahead, :7].tolist())
        if has_width:
            self._gripper = (stamp + times, rows[:, 7])

    def gripper_due(self, now: float) -> float | None:
        """The width to command now (the safety node's rule), None: unchanged."""
        if self.safety is not None:
            return self.safety.gripper_due(now)
        if self._gripper is None:
            return None
        times, widths = self._gripper
        width = float(widths[max(int(np.searchsorted(times, now, side="right")) - 1, 0)])
        if width == self._gripper_sent:
            return None
        self._gripper_sent = width
        return width

    def report(self, handle: Any, report: SkillReport, done: bool) -> None:
        self.report_ = report

    def feedback(self, handle: Any, phase: str, chunks: int) -> None:
        pass

    def warn(self, text: str) -> None:
        pass


def make_executor(
    runtime: PolicyRuntime,
    sink: SimulatorSink,
    monitor_config: MonitorConfig | None = None,
    looker: LookDriver | None = None,
) -> SkillExecutor:
    config = ExecutorConfig(
        dt=runtime.dt,
        n_obs_steps=runtime.config.n_obs_steps,
        n_action_steps=runtime.n_action_steps,
        max_observation_age_s=np.inf,  # sim time stands still while the network runs
        monitor=monitor_config or MonitorConfig(),
    )
    looker = looker or LookDriver(runtime.kinematics.ik)
    return SkillExecutor(config, runtime.kinematics, looker, sink, HealthCounters("in-process"))


def execute_skill(
    runtime: PolicyRuntime,
    runner: SimulationRunner,
    goal: SkillGoal | None,
    monitor_config: MonitorConfig | None = None,
    goal_provider: GoalProvider | None = None,
    on_step: Callable[[], None] | None = None,
    safety: SafetyFilter | None = None,
    reference_goal: SkillGoal | None = None,
    look: PolicyGoalMsg | None = None,
    graph: Any = None,
) -> SkillRun:
    """Run one skill closed loop from the runner's current state until it ends
    (succeeded, failed, timed out).

    A pick or place: ``goal`` is what the policy is conditioned on; with a
    ``goal_provider`` it is re-read before every chunk
    (``goal_provider(reference_goal, runner)``; ``goal`` None = unknown until
    the provider says). The monitor judges against ``reference_goal`` (default
    ``goal``). A look: ``look`` is the goal, over the scene graph ``graph``
    (raises GroundingError as the node rejects it). ``on_step`` runs after
    every ``runtime.dt`` of sim time. With ``safety``, every chunk goes
    through :meth:`SafetyFilter.check_chunk` first, as on the robot."""
    sink = SimulatorSink(runner, safety)
    executor = make_executor(runtime, sink, monitor_config)
    start = runner.time
    run = SkillRun(RUNNING, "", 0.0, 0)

    def observe() -> RobotState:
        state = RobotState(
            runner.physics.arm_qpos().copy(), runner.physics.gripper_width(), runner.time
        )
        executor.observe(state, None, runner.time)
        return state

    state = observe()
    if look is not None:
        motion = executor.looker.start(look, graph, state.q, state.gripper_width, state.stamp)
        executor.start(look, motion, start)
    else:
        reference = reference_goal if reference_goal is not None else goal
        if reference is None:
            raise ValueError("execute_skill needs a goal or a reference_goal")
        executor.start(PolicyGoalMsg(id="in-process", skill=reference.skill), reference, start)
    active = goal
    next_step = start + runtime.dt
    while executor.running:
        request, sink.request = sink.request, None
        if request is not None:
            if goal_provider is not None:
                assert executor.skill is not None
                active = goal_provider(executor.skill.monitor.goal, runner) or active
                if active is None:
                    executor.on_prediction(request, None, "target not known", runner.time, 0.0)
                    continue
                executor.retarget(active)
                request.target = active
            chunk, error = _predict(runtime, request)
            if chunk is not None:
                run.chunk_latency_s.append(chunk.total_s)
                run.sample_latency_s.append(chunk.sample_s)
            executor.on_prediction(request, chunk, error, runner.time, latency_s=0.0)
            continue
        width = sink.gripper_due(runner.time)
        if width is not None:
            runner.command_gripper([width])
        runner.run_for(CONTROL_PERIOD_S)
        observe()
        if on_step is not None and runner.time >= next_step - 1e-9:
            on_step()
            next_step += runtime.dt
        executor.tick(runner.time)
    report = sink.report_
    assert report is not None
    run.monitor_state, run.reason, run.chunks = report.state, report.reason, report.chunks
    run.rejected_chunks = sink.rejected_chunks
    run.sim_seconds = runner.time - start
    return run


def _predict(runtime: PolicyRuntime, request: PredictionRequest) -> tuple[ActionChunk | None, str]:
    """The inference worker's rule: an IK miss or a bad input is the skill's failure."""
    try:
        return runtime.predict(request.window, request.target), ""
    except IKError as exc:
        return None, f"IK: {exc}"
    except PolicyInputError as exc:
        return None, f"policy input: {exc}"


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
    use_safety: bool = True,
) -> EpisodeResult:
    """One seeded pick or place; with ``use_safety`` every chunk passes a fresh
    :class:`SafetyFilter`, as on the robot."""
    runner = scenes.runner
    runtime.generator.manual_seed(seed)  # the sampler's noise: a function of the seed alone
    goal, _ = scenes.setup(seed, skill, object_id, place_target, expert_optional=True)
    start = runner.time
    # with a provider the goal comes only from it (never the simulator's truth)
    run = execute_skill(
        runtime,
        runner,
        None if goal_provider is not None else goal,
        monitor_config,
        goal_provider,
        on_step,
        safety=SafetyFilter() if use_safety else None,
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
    "SimulatorSink",
    "SkillRun",
    "execute_skill",
    "make_executor",
    "run_episode",
    "success_rate",
]
