"""The one skill loop, ROS-free: the policy node's and the in-process suite's.

:class:`SkillExecutor` runs one skill at a time, a pick or place by the
diffusion policy or a scripted look, and decides everything that makes the
closed loop: which joint states form the observation window, when the next
prediction starts, which chunk is too stale to send, what the gripper is
commanded to now, when the skill monitor ends the skill, what the feedback
phase is. It has no clock and no threads: every call gets ``now`` (node time
on a robot, sim time in-process) and the caller serializes calls (the policy
node holds its lock). What it decides goes out through a :class:`SkillSink`:

* the policy node's sink publishes ``JointTrajectory`` chunks to the safety
  node, hands requests to its inference thread, reports on ``/policy/status``
  and the ``RunSkill`` action (:mod:`robot_memory.nodes.policy_node`);
* the in-process sink (:mod:`robot_memory.learning.rollout`) predicts at once
  (sim time stands still while it does), checks the chunk with the same
  :class:`~robot_memory.control.safety.SafetyFilter` the safety node runs
  and commands the simulator.

Scheduling: a prediction starts when the last sent chunk's observation is
``n_action_steps - 1`` steps old minus the inference latency (the largest of
the last few, plus one control period), so the new chunk lands as the
previous one runs out; each observation is used once. A chunk whose
observation is older than ``max_observation_age_s`` when it is ready, or
already before it would be started (then once per chunk period), is dropped
and counted, never sent. The monitor (measured width, the width the sent
chunk commands now, TCP by forward kinematics) ends the skill; no chunk
follows it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from robot_memory.health.counters import HealthCounters
from robot_memory.policy.kinematics import ArmKinematics
from robot_memory.policy.look_skill import LookDriver, LookMotion
from robot_memory.policy.runtime import ActionChunk, RobotState, observation_indices
from robot_memory.policy.skill_goal import SkillGoal
from robot_memory.policy.skill_monitor import FAILED, RUNNING, MonitorConfig, SkillMonitor
from robot_memory.schemas import PolicyGoalMsg

CONTROL_PERIOD_S = 0.02  # the monitor and the schedule tick at this period
HISTORY_S = 2.0  # joint states kept for the observation window
LATENCY_WINDOW = 5  # recent inference latencies the schedule plans with
FUTURE_STAMP_S = 0.5  # joint states stamped further ahead of now are refused
TIME_JUMP_BACK_S = 1.0  # a state and the clock both this far behind the newest: time went back
#: A commanded gripper width below this is "closed" (the skill monitor's rule).
GRIPPER_CLOSED_BELOW_M = 0.04


@dataclass
class Observation:
    state: RobotState
    token: Any  # the caller's own stamp (the node's header stamp): chunks carry it back


@dataclass
class PredictionRequest:
    generation: int
    target: SkillGoal
    window: list[RobotState]
    token: Any


@dataclass
class SkillReport:
    """A skill's state for status and results: its goal, skill, chunks so far."""

    goal_id: str
    skill: str
    state: str
    reason: str = ""
    chunks: int = 0
    object_id: int | None = None
    target: str = ""


@dataclass
class RunningSkill:
    goal: PolicyGoalMsg
    target: SkillGoal
    monitor: SkillMonitor
    generation: int
    handle: Any
    chunks: int = 0
    plan: tuple[np.ndarray, np.ndarray] | None = None  # absolute times, gripper widths


@dataclass
class RunningLook:
    motion: LookMotion
    handle: Any


class SkillSink(Protocol):
    """Where a :class:`SkillExecutor`'s decisions go (called synchronously)."""

    def submit(self, request: PredictionRequest) -> None:
        """Predict a chunk for ``request``; answer with ``on_prediction``."""

    def send_chunk(self, chunk: ActionChunk, token: Any) -> None:
        """Send ``chunk`` (point 0 is at the observation ``token``'s time)."""

    def send_look(self, motion: LookMotion, token: Any, t_stamp: float) -> None:
        """Send the look's points after ``t_stamp`` (the observation ``token``'s time)."""

    def report(self, handle: Any, report: SkillReport, done: bool) -> None:
        """The skill's status; ``done``: it ended (``report.state``) and ``handle`` with it."""

    def feedback(self, handle: Any, phase: str, chunks: int) -> None:
        """The running skill's phase (may repeat; the sink sends what changed)."""

    def warn(self, text: str) -> None:
        """Something worth a (throttled) warning, e.g. a stale chunk dropped."""


@dataclass
class ExecutorConfig:
    dt: float = 0.1  # the policy's step [s]
    n_obs_steps: int = 2
    n_action_steps: int = 8
    max_observation_age_s: float = 0.5
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    control_period_s: float = CONTROL_PERIOD_S
    history_s: float = HISTORY_S

    @property
    def period(self) -> float:
        """How long a chunk lasts past its observation (point 0 is past) [s]."""
        return max(self.n_action_steps - 1, 1) * self.dt


class SkillExecutor:
    def __init__(
        self,
        config: ExecutorConfig,
        kinematics: ArmKinematics,
        looker: LookDriver,
        sink: SkillSink,
        health: HealthCounters,
        can_predict: bool = True,
    ) -> None:
        self.config, self.kinematics, self.looker = config, kinematics, looker
        self.sink, self.health, self.can_predict = sink, health, can_predict
        self.history: deque[Observation] = deque(maxlen=1000)
        self._history_s = max(config.history_s, (config.n_obs_steps + 1) * config.dt)
        self.skill: RunningSkill | None = None
        self.look: RunningLook | None = None
        self.generation = 0
        self.pending = False  # a request submitted and not answered yet
        self.last_obs_used = -np.inf
        self.next_due = -np.inf  # the time the next prediction may start
        self.latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)

    # -- state in --------------------------------------------------------------------
    @property
    def newest(self) -> RobotState | None:
        return self.history[-1].state if self.history else None

    @property
    def running(self) -> bool:
        """A skill or look is running."""
        return self.skill is not None or self.look is not None

    @property
    def handle(self) -> Any:
        """The running skill's or look's handle; None when idle."""
        running = self.skill or self.look
        return None if running is None else running.handle

    def observe(self, state: RobotState, token: Any, now: float) -> tuple[str, str] | None:
        """Add a joint state; (reason, detail) when it is refused (from the
        future: one would block every real state after it; not newer)."""
        t = state.stamp
        if t > now + FUTURE_STAMP_S:
            return "joint_states from the future", f"stamp {t:.3f} > now"
        if self.history and t <= self.history[-1].state.stamp:
            last = self.history[-1].state.stamp
            if not (t < last - TIME_JUMP_BACK_S and now < last - TIME_JUMP_BACK_S):
                return "old joint_states", f"joint_states at {t:.3f} not newer"
            # the clock itself went back (a simulator restarted): the old timeline's
            # states would make every new one "old"; start over, and end the skill
            self.history.clear()
            self.health.increment("clock_jumps_back")
            self.sink.warn(f"the clock went back from {last:.3f} to {now:.3f} s: history cleared")
            if self.running:
                self.finish(FAILED, "the clock went back (a simulator restart?)")
        self.history.append(Observation(state, token))
        while self.history[0].state.stamp < t - self._history_s:
            self.history.popleft()
        return None

    # -- goals -----------------------------------------------------------------------
    def start(
        self, goal: PolicyGoalMsg, target: SkillGoal | LookMotion, now: float, handle: Any = None
    ) -> None:
        """Run ``target`` (grounded from ``goal``) now, pre-empting the running one."""
        if self.running:
            self.finish("canceled", "preempted")
        self.generation += 1
        if isinstance(target, LookMotion):
            self.look = RunningLook(target, handle)
            self.sink.report(handle, SkillReport(goal.id, "look", RUNNING), done=False)
            self.sink.feedback(handle, "move", 0)
            return
        monitor = SkillMonitor(target, now, self.config.monitor)
        self.skill = RunningSkill(goal, target, monitor, self.generation, handle)
        self.last_obs_used, self.next_due = -np.inf, -np.inf
        self._report_running(now)
        self._maybe_request(now)

    def retarget(self, target: SkillGoal) -> None:
        """Condition the running pick or place on ``target`` from the next
        prediction on (a goal re-read from memory); the monitor keeps judging
        against the goal the skill started with."""
        if self.skill is not None:
            self.skill.target = target

    def finish(self, state: str, reason: str) -> None:
        """End the running skill or look with ``state`` (cancel, e-stop, pre-emption)."""
        if self.look is not None:
            look, self.look = self.look, None
            self.health.increment(f"skills_{state}")
            report = SkillReport(look.motion.goal.id, "look", state, reason, look.motion.chunks)
            self.sink.report(look.handle, report, done=True)
            return
        skill, self.skill = self.skill, None
        if skill is None:
            return
        self.health.increment(f"skills_{state}")
        report = SkillReport(skill.goal.id, skill.goal.skill, state, reason, skill.chunks,
                             skill.goal.object_id, skill.goal.target)  # fmt: skip
        self.sink.report(skill.handle, report, done=True)

    def republish(self, now: float) -> None:
        """Report the running skill again (after another goal's status)."""
        if self.skill is not None:
            self._report_running(now)

    # -- the loop --------------------------------------------------------------------
    def tick(self, now: float) -> None:
        """Call every control period: the look's chunks, the monitor, the schedule."""
        if self.look is not None and self.history:
            return self._tick_look(now)
        if self.skill is None or not self.history:
            return
        skill = self.skill
        if skill.plan is None:  # nothing commanded yet: only the timeout applies
            if now - skill.monitor.start > skill.monitor.config.timeout_s:
                self.finish(FAILED, "timed out before any chunk was sent")
            else:
                self._maybe_request(now)
            return
        state = self.history[-1].state
        tcp = self.kinematics.tcp_pose(state.q)[0]
        width = self.commanded_width(now)
        if skill.monitor.update(now, state.gripper_width, width, tcp) != RUNNING:
            self.finish(skill.monitor.state, skill.monitor.reason)
            return
        self.sink.feedback(skill.handle, self.phase(now), skill.chunks)
        self._maybe_request(now)

    def on_prediction(
        self,
        request: PredictionRequest,
        chunk: ActionChunk | None,
        error: str,
        now: float,
        latency_s: float | None = None,
    ) -> None:
        """The answer to ``request``: a chunk, or ``error`` ("IK: ...", ...).
        ``latency_s`` plans the next request (default: the chunk's own time)."""
        self.pending = False
        current = self.skill is not None and self.skill.generation == request.generation
        if error:
            self.health.reject(error.split(":")[0])
            if current:
                self.finish(FAILED, error)
        elif not current:
            self.health.increment("chunks_superseded")
        else:
            assert chunk is not None
            self._deliver(
                chunk, request.token, now, chunk.total_s if latency_s is None else latency_s
            )

    def commanded_width(self, now: float) -> float | None:
        """The gripper width the sent chunks command at ``now`` (None: none sent)."""
        plan = None if self.skill is None else self.skill.plan
        if plan is None:
            return None
        times, widths = plan
        return float(widths[max(int(np.searchsorted(times, now, side="right")) - 1, 0)])

    def phase(self, now: float) -> str:
        """The running pick's or place's phase: ``start`` (no chunk yet); pick:
        ``approach`` (commanded open), ``grasp`` (closed), ``lift`` (closed for
        the monitor's settle time); place: ``carry``, ``release`` (lowered over
        the target), ``retreat`` (released)."""
        skill = self.skill
        width = self.commanded_width(now)
        if skill is None or width is None:
            return "start"
        monitor = skill.monitor
        if skill.goal.skill == "pick":
            if width >= GRIPPER_CLOSED_BELOW_M:
                return "approach"
            since = monitor.closed_since
            settled = since is not None and now - since >= monitor.config.closed_settle_s
            return "lift" if settled else "grasp"
        if monitor.released:
            return "retreat"
        return "release" if monitor.lowered else "carry"

    # -- internals -------------------------------------------------------------------
    def _tick_look(self, now: float) -> None:
        newest, look = self.history[-1], self.look
        assert look is not None
        motion = look.motion
        if self.looker.due(motion, now):
            self.sink.send_look(motion, newest.token, newest.state.stamp)
            self.looker.sent(motion, now)
            self.health.increment("look_chunks_published")
        state, reason = self.looker.update(motion, now, newest.state.q, newest.state.stamp)
        if state != RUNNING:
            self.finish(state, reason)
        else:
            self.sink.feedback(look.handle, "move" if now < motion.end else "settle", motion.chunks)

    def _maybe_request(self, now: float) -> None:
        if not self.can_predict or self.pending or self.skill is None:
            return
        if not self.history or now < self.next_due:
            return
        newest = self.history[-1]
        age = now - newest.state.stamp
        if age > self.config.max_observation_age_s:  # it would be dropped when done
            self._drop_stale(age)
            self.next_due = now + self.config.period
            return
        if newest.state.stamp <= self.last_obs_used:
            return  # every observation is used once
        self.last_obs_used = newest.state.stamp
        stamps = np.array([o.state.stamp for o in self.history])
        picks = observation_indices(stamps, self.config.dt, self.config.n_obs_steps)
        window = [self.history[i].state for i in picks]
        self.pending = True
        self.sink.submit(
            PredictionRequest(self.generation, self.skill.target, window, newest.token)
        )

    def _drop_stale(self, age: float) -> None:
        self.health.increment("stale_chunks_dropped")
        limit = self.config.max_observation_age_s
        self.sink.warn(f"observation {age:.3f} s old (> {limit} s): chunk dropped")

    def _deliver(self, chunk: ActionChunk, token: Any, now: float, latency_s: float) -> None:
        skill = self.skill
        assert skill is not None
        self.health.latency("inference_denoise", chunk.sample_s)
        self.health.latency("inference_total", chunk.total_s)
        self.latencies.append(latency_s)
        if now - chunk.stamp > self.config.max_observation_age_s:
            self._drop_stale(now - chunk.stamp)
            return
        self.sink.send_chunk(chunk, token)
        skill.chunks += 1
        lead = max(self.latencies) + self.config.control_period_s
        self.next_due = chunk.stamp + self.config.period - lead
        skill.plan = (chunk.stamp + chunk.times, chunk.gripper_widths)
        self.health.increment("chunks_published")
        self.health.tick("chunks", now)
        self.health.latency("observation_to_chunk", now - chunk.stamp)
        self._report_running(now)

    def _report_running(self, now: float) -> None:
        skill = self.skill
        assert skill is not None
        report = SkillReport(skill.goal.id, skill.goal.skill, RUNNING, chunks=skill.chunks,
                             object_id=skill.goal.object_id, target=skill.goal.target)  # fmt: skip
        self.sink.report(skill.handle, report, done=False)
        self.sink.feedback(skill.handle, self.phase(now), skill.chunks)


__all__ = [
    "CONTROL_PERIOD_S",
    "ExecutorConfig",
    "Observation",
    "PredictionRequest",
    "RunningLook",
    "RunningSkill",
    "SkillExecutor",
    "SkillReport",
    "SkillSink",
]
