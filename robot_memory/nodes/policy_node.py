"""Policy node: a skill goal grounded in memory -> diffusion-policy action chunks.

Thin adapter over :class:`robot_memory.policy.skill_executor.SkillExecutor`,
the one skill loop (the in-process suite and the closed-loop evaluation run
the same one, :mod:`robot_memory.learning.rollout`): the node is its sink.

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
(:mod:`robot_memory.policy.goal_grounding`; a ``look`` by
:class:`robot_memory.policy.look_skill.LookDriver`): a goal that does not convert
or ground ends ``rejected`` with its reason, counted, and the running skill
goes on; a new valid goal pre-empts; a cancel publishes an empty trajectory
(the safety node holds); the e-stop fails the running skill and refuses goals.
Inference runs on a worker thread (:mod:`robot_memory.nodes.policy_inference`).
Without a usable checkpoint every pick/place goal is rejected and the node runs
on. Each callback has a mutually exclusive group of its own on a
multi-threaded executor; the state they share is behind one lock.
docs/policy.md has the contract (results, feedback, threads, measured cancel).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.parameter import Parameter
from robot_memory_interfaces.msg import PolicyStatus, SceneGraph
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from trajectory_msgs.msg import JointTrajectory

from robot_memory.bringup.launch_spec import POLICY_PARAMETERS
from robot_memory.health.counters import HealthCounters
from robot_memory.nodes.conversions import from_time
from robot_memory.nodes.diagnostics import DiagnosticsPublisher
from robot_memory.nodes.input_boundary import InputBoundary
from robot_memory.nodes.memory_conversions import scene_graph_from_msg
from robot_memory.nodes.node_main import spin_node
from robot_memory.nodes.parameters import declare_parameters
from robot_memory.nodes.policy_helpers import (
    arm_and_width,
    chunk_message,
    executor_config,
    load_runtime,
    look_message,
    stop_message,
)
from robot_memory.nodes.policy_inference import InferenceWorker
from robot_memory.nodes.qos import COMMAND, LATCHED, STATUS
from robot_memory.nodes.skill_conversions import CANCELED, policy_status_to_msg
from robot_memory.nodes.skill_server import GoalRun, SkillServer
from robot_memory.policy.goal_grounding import GroundingError, ground_goal
from robot_memory.policy.kinematics import ArmKinematics
from robot_memory.policy.look_skill import LookDriver, LookMotion
from robot_memory.policy.runtime import ActionChunk, RobotState
from robot_memory.policy.skill_executor import (
    CONTROL_PERIOD_S,
    PredictionRequest,
    SkillExecutor,
    SkillReport,
)
from robot_memory.policy.skill_goal import SkillGoal
from robot_memory.policy.skill_monitor import FAILED
from robot_memory.schemas import PolicyGoalMsg, PolicyStatusMsg, SceneGraphMsg

LOG_THROTTLE_S = 1.0
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
        self.health = HealthCounters("policy")
        # every subscription; rejections counted, logged at most once a second per reason
        self.inputs = InputBoundary(self, self.health)
        self.chunk_pub = self.create_publisher(JointTrajectory, "/policy/action_chunk", COMMAND)
        self.status_pub = self.create_publisher(PolicyStatus, "/policy/status", STATUS)
        self.kinematics = ArmKinematics()  # executor thread; the runtime has its own
        self.runtime, self.unavailable = load_runtime(p, self.get_logger())
        self._lock = (
            threading.Condition()
        )  # the executor and the state below; the worker waits on it
        self.width: float | None = None
        self.graph: SceneGraphMsg | None = None
        self.estop = False
        self.skill_run = SkillExecutor(
            executor_config(p, self.runtime),
            self.kinematics,
            LookDriver(self.kinematics.ik),
            self,
            self.health,
            can_predict=self.runtime is not None,
        )
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
        self.worker = None
        if self.runtime is not None:
            self.worker = InferenceWorker(self.runtime, self._lock, self.predicted, self.context.ok)
        self.create_timer(CONTROL_PERIOD_S, self.tick, callback_group=own_group())
        self.publish_status(self.status)

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # -- inputs (executor threads) ----------------------------------------------------
    def on_joints(self, msg: JointState) -> None:
        q, self.width = arm_and_width(msg.name, msg.position, self.width)  # PayloadError: counted
        stamp = msg.header.stamp
        if stamp.sec == 0 and stamp.nanosec == 0:
            stamp = self.get_clock().now().to_msg()
        with self._lock:
            refused = self.skill_run.observe(
                RobotState(q, self.width, from_time(stamp)), stamp, self.now()
            )
        if refused is not None:
            self.inputs.reject(*refused)

    def on_scene_graph(self, msg: SceneGraph) -> None:
        graph = scene_graph_from_msg(msg)  # PayloadError: counted by the input boundary
        with self._lock:
            self.graph = graph
        self.health.set_value("scene_graph_seq", graph.seq)

    def on_estop(self, msg: Bool) -> None:
        with self._lock:
            was, self.estop = self.estop, bool(msg.data)
            if self.estop and self.skill_run.handle is not None:
                self.get_logger().error("e-stop: the running skill failed")
                self.skill_run.finish(FAILED, "estop")
            elif was and not self.estop:
                self.get_logger().info("e-stop released")

    def tick(self) -> None:
        with self._lock:
            self.skill_run.tick(self.now())

    def predicted(self, req: PredictionRequest, chunk: ActionChunk | None, error: str) -> None:
        """The inference worker's answer (its thread, the lock held)."""
        self.skill_run.on_prediction(req, chunk, error, self.now())

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
            if isinstance(target, LookMotion):
                self.get_logger().info(
                    f"goal {goal.id}: look at {np.round(target.point, 3).tolist()}"
                )
            else:
                where = np.round(target.target_position, 3).tolist()
                self.get_logger().info(
                    f"goal {goal.id}: {goal.skill} at {where}, yaw {target.goal_yaw:.2f}"
                )
            self.skill_run.start(goal, target, now, handle=run)

    def cancel_goal(self, run: GoalRun) -> None:
        """Stop ``run``'s skill now: an empty trajectory (the safety node holds)."""
        with self._lock:
            if run is not self.skill_run.handle:
                return  # not started yet (start_goal sees the request) or over
            if self.context.ok():
                self.chunk_pub.publish(stop_message(self.get_clock().now().to_msg()))
            self.health.increment("stops_published")
            self.skill_run.finish(CANCELED, "cancel requested")

    def reject_goal(self, run: GoalRun, err: Exception) -> None:
        """Count and report a goal refused before anything ran."""
        reason = getattr(err, "reason", None) or "internal error"
        self.health.reject(f"goal {reason}")
        text = self.unavailable if reason == "no checkpoint" else str(err)
        self.get_logger().warning(f"goal {run.goal_id} ({run.skill or '?'}) rejected: {text}")
        with self._lock:
            self.publish_status(PolicyStatusMsg(goal_id=run.goal_id, state="failed", reason=text))
            self.skill_run.republish(self.now())  # the latched status is the running skill's again

    def _ground(self, goal: PolicyGoalMsg, now: float) -> SkillGoal | LookMotion:
        if self.estop:
            raise GroundingError("estop active", "goal refused while the e-stop is on", goal.id)
        newest = self.skill_run.newest
        if newest is None or now - newest.stamp > self.skill_run.config.max_observation_age_s:
            raise GroundingError("no robot state", "no recent /joint_states", goal.id)
        if goal.skill == "look":
            try:
                return self.skill_run.looker.start(
                    goal, self.graph, newest.q, newest.gripper_width, newest.stamp
                )
            except GroundingError as err:
                err.goal_id = goal.id
                raise
        if self.runtime is None:
            raise GroundingError("no checkpoint", self.unavailable, goal.id)
        return ground_goal(goal, self.graph, self.kinematics.tcp_pose(newest.q)[1])

    # -- the executor's sink (lock held) ---------------------------------------------------
    def submit(self, request: PredictionRequest) -> None:
        assert self.worker is not None
        self.worker.submit(request)

    def send_chunk(self, chunk: ActionChunk, token: Time) -> None:
        if self.context.ok():
            self.chunk_pub.publish(chunk_message(chunk, token))
        self.health.set_value("ik_resamples", self.runtime.ik_resamples if self.runtime else 0)

    def send_look(self, motion: LookMotion, token: Time, t_stamp: float) -> None:
        if self.context.ok():
            self.chunk_pub.publish(look_message(motion, token, t_stamp))

    def report(self, handle: Any, report: SkillReport, done: bool) -> None:
        status = PolicyStatusMsg(goal_id=report.goal_id, state=report.state, reason=report.reason,
                                 skill=report.skill, chunks=report.chunks)  # fmt: skip
        self.publish_status(status)
        if not done:
            return
        text = f"goal {report.goal_id} {report.state}: {report.reason} ({report.chunks} chunks)"
        # one severity per call site: rclpy raises when a line logs at two
        self.get_logger().warning(text) if report.state == FAILED else self.get_logger().info(text)
        if handle is not None:
            handle.finish(report.state, report.reason, report.chunks)

    def feedback(self, handle: Any, phase: str, chunks: int) -> None:
        if handle is not None:
            handle.feedback(phase, chunks)

    def warn(self, text: str) -> None:
        self.get_logger().warning(text, throttle_duration_sec=LOG_THROTTLE_S)

    def publish_status(self, status: PolicyStatusMsg) -> None:
        self.status = status.model_copy(update={"stamp": self.now()})
        self.health.set_value("state", status.state)
        if self.context.ok():
            self.status_pub.publish(policy_status_to_msg(self.status))

    def shutdown(self) -> None:
        self.skills.stop()
        if self.worker is not None:
            self.worker.stop(timeout_s=1.0)  # spin_node exits 1.8 s after the signal anyway


def main(args: list[str] | None = None) -> None:
    spin_node(PolicyNode, args, threads=EXECUTOR_THREADS)


if __name__ == "__main__":
    main()
