"""Policy node: a skill goal grounded in memory -> diffusion-policy action chunks.

Thin adapter over :class:`robot_memory.policy.runtime.PolicyRuntime` (the same
loop runs in-process, without DDS, in :mod:`robot_memory.policy.rollout`).

* in: ``/joint_states`` (a short history: the window is the newest state and,
  per older step, the state nearest ``newest - k / fps``), the
  ``/policy/run_skill`` action (``RunSkill``, :mod:`robot_memory.nodes.skill_server`),
  ``/memory/scene_graph`` (``SceneGraph``) and ``/robot_memory/estop`` (latched);
* out: ``/policy/action_chunk`` (the 7 arm joints + ``gripper_width``;
  ``header.stamp`` = the newest observation's own stamp, point i at i / fps, so
  point 0 is past and the safety node drops it; NO points = "stop now"),
  ``/policy/status`` (``PolicyStatus``, latched), ``/diagnostics``; the goal's
  feedback (phase, chunks) and result (success, state, reason, chunks).

Goals (:mod:`robot_memory.nodes.skill_server`) are grounded once, on arrival
(:mod:`robot_memory.policy.goal_grounding`). A new valid goal pre-empts the
running one; a goal that does not convert or ground ends ``rejected`` at once
with its reason, counted (``goal <reason>``), and the running skill goes on; a
cancel publishes an empty ``JointTrajectory`` (the safety node holds the arm);
the e-stop fails the running skill and rejects goals until released. Each
callback has a mutually exclusive group of its own on a multi-threaded
executor; the state they share is behind one lock. docs/policy.md has the
contract (results, feedback phases, threads, measured cancel -> hold).

Inference runs on a worker thread, one prediction at a time. The next starts
when the last published chunk's observation is ``n_action_steps - 1`` steps old
minus the inference latency (the largest of the last few, plus one control
period), so the new chunk lands as the previous one runs out. Each observation
is used once. A chunk whose observation is older than ``max_observation_age_s``
when it is ready, or already before it would be started (then once per chunk
period), is dropped and counted, never published. The skill monitor (measured
width, the width the published chunk commands now, TCP by FK) ends the skill;
no chunk follows, and the safety node's watchdog holds the arm.

A ``look`` goal is no diffusion: a scripted IK move of the wrist camera over a
point (:mod:`robot_memory.nodes.look_driver`), sent as chunks through the
safety node and done when the arm has settled at the look pose.

A missing or unusable checkpoint is logged and every pick/place goal is
rejected ("no policy checkpoint at ..."); the node (and the stack) keeps running.

Status QoS, runtime loading, the node's records, chunk and skill-status messages:
:mod:`robot_memory.nodes.policy_helpers`; the inference thread:
:mod:`robot_memory.nodes.policy_inference`.
"""

from __future__ import annotations

import threading
from collections import deque

import numpy as np
from builtin_interfaces.msg import Time
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.parameter import Parameter
from robot_memory_interfaces.msg import PolicyStatus, SceneGraph
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from trajectory_msgs.msg import JointTrajectory

from robot_memory.diagnostics_core import HealthCounters
from robot_memory.launch_spec import POLICY_PARAMETERS
from robot_memory.nodes.conversions import from_time
from robot_memory.nodes.diagnostics import DiagnosticsPublisher
from robot_memory.nodes.input_boundary import InputBoundary
from robot_memory.nodes.look_driver import LookDriver, LookMotion
from robot_memory.nodes.memory_conversions import scene_graph_from_msg
from robot_memory.nodes.node_main import spin_node
from robot_memory.nodes.parameters import declare_parameters
from robot_memory.nodes.policy_helpers import (
    Observation,
    Request,
    Skill,
    arm_and_width,
    chunk_message,
    load_runtime,
    skill_phase,
    skill_status,
    stop_message,
)
from robot_memory.nodes.policy_inference import InferenceWorker
from robot_memory.nodes.qos import COMMAND, LATCHED, STATUS
from robot_memory.nodes.skill_conversions import CANCELED, policy_status_to_msg
from robot_memory.nodes.skill_server import GoalRun, SkillServer
from robot_memory.policy.goal_grounding import GroundingError, ground_goal
from robot_memory.policy.kinematics import ArmKinematics
from robot_memory.policy.runtime import (
    ActionChunk,
    RobotState,
    observation_indices,
)
from robot_memory.policy.skill_goal import SkillGoal
from robot_memory.policy.skill_monitor import FAILED, RUNNING, MonitorConfig, SkillMonitor
from robot_memory.schemas import PolicyGoalMsg, PolicyStatusMsg, SceneGraphMsg

FUTURE_STAMP_S = 0.5  # joint states stamped further ahead of the node's clock are refused
CONTROL_PERIOD_S = 0.02  # skill monitor and scheduling tick
HISTORY_S = 2.0  # joint states kept for the observation window
LOG_THROTTLE_S = 1.0
LATENCY_WINDOW = 5  # recent inference latencies the schedule plans with
#: Executor threads: the node's callbacks, plus execute callbacks that wait
#: (the running goal's and a pre-empting one's, while it takes over).
EXECUTOR_THREADS = 4


def own_group() -> MutuallyExclusiveCallbackGroup:
    """A callback group for one callback alone."""
    return MutuallyExclusiveCallbackGroup()


class PolicyNode(Node):
    def __init__(self, parameter_overrides: list[Parameter] | None = None) -> None:
        super().__init__("policy", parameter_overrides=parameter_overrides or [])
        p = declare_parameters(self, POLICY_PARAMETERS)
        self.max_age = float(p["max_observation_age_s"])
        self.monitor_config = MonitorConfig(timeout_s=float(p["timeout_s"]))
        self.health = HealthCounters("policy")
        # every subscription; rejections counted, logged at most once a second per reason
        self.inputs = InputBoundary(self, self.health)
        self.chunk_pub = self.create_publisher(JointTrajectory, "/policy/action_chunk", COMMAND)
        self.status_pub = self.create_publisher(PolicyStatus, "/policy/status", STATUS)
        self.kinematics = ArmKinematics()  # executor thread; the runtime has its own
        self.looker = LookDriver(self.kinematics.ik)
        self.runtime, self.unavailable = load_runtime(p, self.get_logger())
        self.dt = self.runtime.dt if self.runtime else 0.1
        self.n_obs = self.runtime.config.n_obs_steps if self.runtime else 2
        # a chunk lasts (n_action_steps - 1) dt past its observation (point 0 is past)
        n_steps = self.runtime.n_action_steps if self.runtime else 2
        self.period = max(n_steps - 1, 1) * self.dt
        self.history_s = max(HISTORY_S, (self.n_obs + 1) * self.dt)

        self._lock = threading.Condition()  # everything below; the worker waits on it
        self.history: deque[Observation] = deque(maxlen=1000)
        self.width: float | None = None
        self.graph: SceneGraphMsg | None = None
        self.estop = False
        self.skill: Skill | None = None
        self.look: LookMotion | None = None  # a running look (then skill is None)
        self.run: GoalRun | None = None  # the action goal of the running skill or look
        self.generation = 0
        self.last_obs_used = -np.inf
        self.next_due = -np.inf  # node time the next prediction may start
        self.plan: tuple[np.ndarray, np.ndarray] | None = None  # absolute times, widths
        self.latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self.status = PolicyStatusMsg(state="idle")

        # one mutually exclusive group per callback: each is ordered with itself and
        # runs beside the others (state behind self._lock). One group for all would
        # make the MultiThreadedExecutor spin hot on every collision.
        sub = self.inputs.subscribe
        sub(JointState, "/joint_states", self.on_joints, COMMAND, callback_group=own_group())
        sub(SceneGraph, "/memory/scene_graph", self.on_scene_graph, LATCHED,
            prefix="scene graph ", callback_group=own_group())  # fmt: skip
        sub(Bool, "/robot_memory/estop", self.on_estop, LATCHED, callback_group=own_group())
        self.skills = SkillServer(
            self, self.start_goal, self.cancel_goal, self.reject_goal, callback_group=own_group()
        )
        self.diagnostics = DiagnosticsPublisher(self, self.health)
        self.worker = (
            None
            if self.runtime is None
            else InferenceWorker(self.runtime, self._lock, self._on_prediction, self.context.ok)
        )
        self.create_timer(CONTROL_PERIOD_S, self.tick, callback_group=own_group())
        self.publish_status(self.status)

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # -- inputs (executor thread) -------------------------------------------------
    def on_joints(self, msg: JointState) -> None:
        q, width = arm_and_width(msg.name, msg.position, self.width)  # PayloadError: counted
        self.width = width
        stamp = msg.header.stamp
        if stamp.sec == 0 and stamp.nanosec == 0:
            stamp = self.get_clock().now().to_msg()
        t = from_time(stamp)
        if t > self.now() + FUTURE_STAMP_S:  # one would block every real state after it
            return self.inputs.reject("joint_states from the future", f"stamp {t:.3f} > now")
        with self._lock:
            if self.history and t <= self.history[-1].state.stamp:
                return self.inputs.reject("old joint_states", f"joint_states at {t:.3f} not newer")
            self.history.append(Observation(RobotState(q, self.width, t), stamp))
            while self.history[0].state.stamp < t - self.history_s:
                self.history.popleft()

    def on_scene_graph(self, msg: SceneGraph) -> None:
        graph = scene_graph_from_msg(msg)  # PayloadError: counted by the input boundary
        with self._lock:
            self.graph = graph
        self.health.set_value("scene_graph_seq", graph.seq)

    def on_estop(self, msg: Bool) -> None:
        with self._lock:
            was, self.estop = self.estop, bool(msg.data)
            if self.estop and (self.skill is not None or self.look is not None):
                self.get_logger().error("e-stop: the running skill failed")
                self._finish(FAILED, "estop")
            elif was and not self.estop:
                self.get_logger().info("e-stop released")

    # -- action goals (action server / execute threads) ------------------------------
    def start_goal(self, run: GoalRun, goal: PolicyGoalMsg) -> None:
        """Ground and start ``goal`` for ``run``, pre-empting the running one;
        raises GroundingError (the goal is rejected, the running one goes on)."""
        now = self.now()
        with self._lock:
            target = self._ground(goal, now)
            if run.cancel_requested:  # a cancel came while it was grounded
                run.finish(CANCELED, "canceled before it started")
                return
            if self.skill is not None or self.look is not None:
                self._finish(CANCELED, "preempted")
            self.generation += 1
            self.run = run
            if isinstance(target, LookMotion):
                self.look = target
                point = np.round(target.point, 3).tolist()
                self.get_logger().info(f"goal {goal.id}: look at {point}")
                self.publish_status(PolicyStatusMsg(goal_id=goal.id, state=RUNNING, skill="look"))
                run.feedback("move", 0)
                return
            monitor = SkillMonitor(target, now, self.monitor_config)
            self.skill = Skill(goal, target, monitor, self.generation)
            self.last_obs_used, self.next_due, self.plan = -np.inf, -np.inf, None
            self.get_logger().info(
                f"goal {goal.id}: {goal.skill} at {np.round(target.target_position, 3).tolist()}"
                f", yaw {target.goal_yaw:.2f}"
            )
            self._publish_skill()
            self._maybe_request(now)

    def cancel_goal(self, run: GoalRun) -> None:
        """Stop ``run``'s skill now: an empty trajectory (the safety node holds)."""
        with self._lock:
            if run is not self.run:
                return  # not started yet (start_goal sees the request) or over
            if self.context.ok():
                self.chunk_pub.publish(stop_message(self.get_clock().now().to_msg()))
            self.health.increment("stops_published")
            self._finish(CANCELED, "cancel requested")

    def reject_goal(self, run: GoalRun, err: Exception) -> None:
        """Count and report a goal refused before anything ran."""
        reason = getattr(err, "reason", None) or "internal error"
        self.health.reject(f"goal {reason}")
        text = self.unavailable if reason == "no checkpoint" else str(err)
        self.get_logger().warning(f"goal {run.goal_id} ({run.skill or '?'}) rejected: {text}")
        with self._lock:
            self.publish_status(PolicyStatusMsg(goal_id=run.goal_id, state="failed", reason=text))
            if self.skill is not None:
                self._publish_skill()  # the latched status is the running skill's again

    def _ground(self, goal: PolicyGoalMsg, now: float) -> SkillGoal | LookMotion:
        if self.estop:
            raise GroundingError("estop active", "goal refused while the e-stop is on", goal.id)
        newest = self.history[-1].state if self.history else None
        if newest is None or now - newest.stamp > self.max_age:
            raise GroundingError("no robot state", "no recent /joint_states", goal.id)
        if goal.skill == "look":
            try:
                return self.looker.start(goal, self.graph, newest)
            except GroundingError as err:
                err.goal_id = goal.id
                raise
        if self.runtime is None:
            raise GroundingError("no checkpoint", self.unavailable, goal.id)
        yaw = self.kinematics.tcp_pose(newest.q)[1]
        return ground_goal(goal, self.graph, yaw)

    # -- skill (executor thread, lock held) -----------------------------------------
    def tick(self) -> None:
        now = self.now()
        with self._lock:
            if self.look is not None and self.history:
                return self._tick_look(now)
            if self.skill is None or not self.history:
                return
            monitor = self.skill.monitor
            if self.plan is None:  # nothing commanded yet: only the timeout applies
                if now - monitor.start > monitor.config.timeout_s:
                    self._finish(FAILED, "timed out before any chunk was published")
                else:
                    self._maybe_request(now)
                return
            state = self.history[-1].state
            tcp = self.kinematics.tcp_pose(state.q)[0]
            if monitor.update(now, state.gripper_width, self._commanded_width(now), tcp) != RUNNING:
                self._finish(monitor.state, monitor.reason)
                return
            self._feedback(now)
            self._maybe_request(now)

    def _tick_look(self, now: float) -> None:
        newest, look = self.history[-1], self.look
        if self.looker.due(look, now) and self.context.ok():
            self.chunk_pub.publish(self.looker.chunk(look, newest.stamp, newest.state.stamp, now))
            self.health.increment("look_chunks_published")
        state, reason = self.looker.update(look, now, newest.state.q, newest.state.stamp)
        if state != RUNNING:
            self._finish(state, reason)
        elif self.run is not None:
            self.run.feedback("move" if now < look.end else "settle", look.chunks)

    def _commanded_width(self, now: float) -> float:
        times, widths = self.plan
        return float(widths[max(int(np.searchsorted(times, now, side="right")) - 1, 0)])

    def _maybe_request(self, now: float) -> None:
        if self.worker is None or self.worker.busy or self.skill is None:
            return
        if not self.history or now < self.next_due:
            return
        newest = self.history[-1]
        if now - newest.state.stamp > self.max_age:  # it would be dropped when done
            self._drop_stale(now - newest.state.stamp)
            self.next_due = now + self.period
            return
        if newest.state.stamp <= self.last_obs_used:
            return  # every observation is used once
        self.last_obs_used = newest.state.stamp
        stamps = np.array([o.state.stamp for o in self.history])
        window = [self.history[i].state for i in observation_indices(stamps, self.dt, self.n_obs)]
        self.worker.submit(Request(self.generation, self.skill.target, window, newest.stamp))

    def _drop_stale(self, age: float) -> None:
        self.health.increment("stale_chunks_dropped")
        self.get_logger().warning(
            f"observation {age:.3f} s old (> {self.max_age} s): chunk dropped",
            throttle_duration_sec=LOG_THROTTLE_S,
        )

    def _finish(self, state: str, reason: str) -> None:
        """End the running skill or look, and its action goal, with ``state``."""
        run, self.run = self.run, None
        if self.look is not None:
            look, self.look = self.look, None
            self.health.increment(f"skills_{state}")
            self.get_logger().info(f"goal {look.goal.id} {state}: {reason}")
            status = PolicyStatusMsg(goal_id=look.goal.id, state=state, reason=reason)
            self.publish_status(status.model_copy(update={"skill": "look", "chunks": look.chunks}))
            if run is not None:
                run.finish(state, reason, look.chunks)
            return
        skill, self.skill = self.skill, None
        if skill is None:
            return
        self.health.increment(f"skills_{state}")
        text = f"goal {skill.goal.id} {state}: {reason} ({skill.chunks} chunks)"
        # one severity per call site: rclpy raises when a line logs at two
        self.get_logger().warning(text) if state == FAILED else self.get_logger().info(text)
        self.publish_status(skill_status(skill, state, reason))
        if run is not None:
            run.finish(state, reason, skill.chunks)

    def _publish_skill(self) -> None:
        if self.skill is not None:
            self.publish_status(skill_status(self.skill, RUNNING))
            self._feedback(self.now())

    def _feedback(self, now: float) -> None:
        """The running pick/place goal's feedback (published when it changed)."""
        if self.run is None or self.skill is None:
            return
        width = None if self.plan is None else self._commanded_width(now)
        self.run.feedback(skill_phase(self.skill, width, now), self.skill.chunks)

    def publish_status(self, status: PolicyStatusMsg) -> None:
        self.status = status.model_copy(update={"stamp": self.now()})
        self.health.set_value("state", status.state)
        if self.context.ok():
            self.status_pub.publish(policy_status_to_msg(self.status))

    # -- predictions (worker thread, lock held) ------------------------------------------
    def _on_prediction(self, req: Request, chunk: ActionChunk | None, error: str) -> None:
        current = self.skill is not None and self.skill.generation == req.generation
        if error:
            self.health.reject(error.split(":")[0])
            if current:
                self._finish(FAILED, error)
        elif current:
            self._deliver(chunk, req.stamp)
        else:
            self.health.increment("chunks_superseded")

    def _deliver(self, chunk: ActionChunk, stamp: Time) -> None:
        now = self.now()
        self.health.latency("inference_denoise", chunk.sample_s)
        self.health.set_value("ik_resamples", self.runtime.ik_resamples)
        self.health.latency("inference_total", chunk.total_s)
        self.latencies.append(chunk.total_s)
        if now - chunk.stamp > self.max_age:
            self._drop_stale(now - chunk.stamp)
            return
        if self.context.ok():
            self.chunk_pub.publish(chunk_message(chunk, stamp))
        self.skill.chunks += 1
        lead = max(self.latencies) + CONTROL_PERIOD_S
        self.next_due = chunk.stamp + self.period - lead
        self.plan = (chunk.stamp + chunk.times, chunk.gripper_widths)
        self.health.increment("chunks_published")
        self.health.tick("chunks", now)
        self.health.latency("observation_to_chunk", now - chunk.stamp)
        self._publish_skill()

    def shutdown(self) -> None:
        self.skills.stop()
        if self.worker is not None:
            self.worker.stop(timeout_s=1.0)  # spin_node exits 1.8 s after the signal anyway


def main(args: list[str] | None = None) -> None:
    spin_node(PolicyNode, args, threads=EXECUTOR_THREADS)


if __name__ == "__main__":
    main()
