"""Policy node: a skill goal grounded in memory -> diffusion-policy action chunks.

Thin adapter over :class:`robot_memory.policy.skill_executor.SkillExecutor`,
the one skill loop (the in-process suite and the closed-loop evaluation run it
too, :mod:`robot_memory.learning.rollout`); its ROS sink is
:class:`robot_memory.nodes.policy_sink.PolicySink`, goals arrive through the
``/policy/run_skill`` action (:mod:`robot_memory.nodes.skill_server`) and are
admitted once (:mod:`robot_memory.policy.goal_admission`). In: ``/joint_states``,
``/memory/scene_graph``, ``/robot_memory/estop``. Out: ``/policy/action_chunk``
(NO points = "stop now"), ``/policy/status`` (latched), ``/diagnostics``.
Each callback has a callback group of its own on a multi-threaded executor; the
state they share is behind one lock. docs/policy.md has the contract.
"""

from __future__ import annotations

import threading

from rclpy.node import Node
from rclpy.parameter import Parameter
from robot_memory_interfaces.msg import SceneGraph
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool

from robot_memory.bringup.node_parameters import POLICY_PARAMETERS
from robot_memory.health.counters import HealthCounters
from robot_memory.nodes.conversions import from_time
from robot_memory.nodes.diagnostics import DiagnosticsPublisher
from robot_memory.nodes.executors import own_group
from robot_memory.nodes.input_boundary import InputBoundary
from robot_memory.nodes.memory_conversions import scene_graph_from_msg
from robot_memory.nodes.node_main import spin_node
from robot_memory.nodes.parameters import declare_parameters
from robot_memory.nodes.policy_helpers import arm_and_width, executor_config, load_runtime
from robot_memory.nodes.policy_inference import InferenceWorker
from robot_memory.nodes.policy_sink import PolicySink
from robot_memory.nodes.qos import COMMAND, LATCHED
from robot_memory.nodes.skill_conversions import CANCELED
from robot_memory.nodes.skill_server import GoalRun, SkillServer
from robot_memory.policy.goal_admission import GoalGate, describe
from robot_memory.policy.kinematics import ArmKinematics
from robot_memory.policy.look_skill import LookDriver
from robot_memory.policy.runtime import ActionChunk, RobotState
from robot_memory.policy.skill_executor import (
    CONTROL_PERIOD_S,
    PredictionRequest,
    SkillExecutor,
)
from robot_memory.policy.skill_monitor import FAILED
from robot_memory.schemas import PolicyGoalMsg, PolicyStatusMsg, SceneGraphMsg

#: Executor threads: the node's callbacks, plus execute callbacks that wait
#: (the running goal's and a pre-empting one's, while it takes over).
EXECUTOR_THREADS = 4


class PolicyNode(Node):
    def __init__(self, parameter_overrides: list[Parameter] | None = None) -> None:
        super().__init__("policy", parameter_overrides=parameter_overrides or [])
        p = declare_parameters(self, POLICY_PARAMETERS)
        self.health = HealthCounters("policy")
        # every subscription; rejections counted, logged at most once a second per reason
        self.inputs = InputBoundary(self, self.health)
        self.kinematics = ArmKinematics()  # executor thread; the runtime has its own
        self.runtime, unavailable = load_runtime(p, self.get_logger())
        self.sink = PolicySink(self, self.health, self.runtime)
        self.chunk_pub = self.sink.chunk_pub
        self._lock = threading.Condition()  # the state below; the worker waits on it
        self.width: float | None = None
        self.graph: SceneGraphMsg | None = None
        self.estop = False
        config = executor_config(p, self.runtime)
        looker = LookDriver(self.kinematics.ik)
        self.skill_run = SkillExecutor(config, self.kinematics, looker, self.sink, self.health,
                                       can_predict=self.runtime is not None)  # fmt: skip
        self.gate = GoalGate(config.max_observation_age_s, looker,
                             lambda q: self.kinematics.tcp_pose(q)[1],
                             None if self.runtime is not None else unavailable)  # fmt: skip
        sub = self.inputs.subscribe
        sub(JointState, "/joint_states", self.on_joints, COMMAND, callback_group=own_group())
        sub(SceneGraph, "/memory/scene_graph", self.on_scene_graph, LATCHED,
            prefix="scene graph ", callback_group=own_group())  # fmt: skip
        sub(Bool, "/robot_memory/estop", self.on_estop, LATCHED, callback_group=own_group())
        self.skills = SkillServer(
            self, self.start_goal, self.cancel_goal, self.reject_goal, callback_group=own_group()
        )
        self.diagnostics = DiagnosticsPublisher(self, self.health)
        if self.runtime is not None:
            self.sink.worker = InferenceWorker(
                self.runtime, self._lock, self.predicted, self.context.ok
            )
        self.create_timer(CONTROL_PERIOD_S, self.tick, callback_group=own_group())
        self.sink.publish_status(self.sink.status)

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # -- inputs (executor threads) ----------------------------------------------------
    def on_joints(self, msg: JointState) -> None:
        q, self.width = arm_and_width(msg.name, msg.position, self.width)  # PayloadError: counted
        stamp = (
            msg.header.stamp if from_time(msg.header.stamp) > 0 else self.get_clock().now().to_msg()
        )
        state = RobotState(q, self.width, from_time(stamp))
        with self._lock:
            refused = self.skill_run.observe(state, stamp, self.now())
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
        """Admit and start ``goal`` for ``run``, pre-empting the running one;
        raises GroundingError (the goal is rejected, the running one goes on)."""
        now = self.now()
        with self._lock:
            target = self.gate.admit(goal, self.graph, self.skill_run.newest, now, self.estop)
            if run.cancel_requested:  # a cancel came while it was grounded
                run.finish(CANCELED, "canceled before it started")
                return
            self.get_logger().info(describe(goal, target))
            self.skill_run.start(goal, target, now, handle=run)

    def cancel_goal(self, run: GoalRun) -> None:
        """Stop ``run``'s skill now: an empty trajectory (the safety node holds)."""
        with self._lock:
            if run is not self.skill_run.handle:
                return  # not started yet (start_goal sees the request) or over
            self.sink.send_stop()
            self.skill_run.finish(CANCELED, "cancel requested")

    def reject_goal(self, run: GoalRun, err: Exception) -> None:
        """Count and report a goal refused before anything ran."""
        reason = getattr(err, "reason", None) or "internal error"
        self.health.reject(f"goal {reason}")
        self.get_logger().warning(f"goal {run.goal_id} ({run.skill or '?'}) rejected: {err}")
        with self._lock:
            status = PolicyStatusMsg(goal_id=run.goal_id, state="failed", reason=str(err))
            self.sink.publish_status(status)
            self.skill_run.republish(self.now())  # the latched status is the running skill's again

    def shutdown(self) -> None:
        self.skills.stop()
        if self.sink.worker is not None:
            self.sink.worker.stop(timeout_s=1.0)  # spin_node exits 1.8 s after the signal anyway


def main(args: list[str] | None = None) -> None:
    spin_node(PolicyNode, args, threads=EXECUTOR_THREADS)


if __name__ == "__main__":
    main()
