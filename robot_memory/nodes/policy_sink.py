"""The skill executor's sink on ROS, for the policy node: chunks and looks on
``/policy/action_chunk``, the status latched on ``/policy/status``, the goal
handle's feedback and result, the log lines. Called with the node's lock held
(the executor's contract, :class:`robot_memory.policy.skill_executor.SkillExecutor`).
"""

from __future__ import annotations

from typing import Any

from builtin_interfaces.msg import Time
from rclpy.node import Node
from robot_memory_interfaces.msg import PolicyStatus
from trajectory_msgs.msg import JointTrajectory

from robot_memory.health.counters import HealthCounters
from robot_memory.nodes.policy_helpers import chunk_message, look_message, stop_message
from robot_memory.nodes.policy_inference import InferenceWorker
from robot_memory.nodes.qos import COMMAND, STATUS
from robot_memory.nodes.skill_conversions import policy_status_to_msg
from robot_memory.policy.look_skill import LookMotion
from robot_memory.policy.runtime import ActionChunk, PolicyRuntime
from robot_memory.policy.skill_executor import PredictionRequest, SkillReport
from robot_memory.policy.skill_monitor import FAILED
from robot_memory.schemas import PolicyStatusMsg

LOG_THROTTLE_S = 1.0


class PolicySink:
    def __init__(self, node: Node, health: HealthCounters, runtime: PolicyRuntime | None) -> None:
        self.node, self.health, self.runtime = node, health, runtime
        self.chunk_pub = node.create_publisher(JointTrajectory, "/policy/action_chunk", COMMAND)
        self.status_pub = node.create_publisher(PolicyStatus, "/policy/status", STATUS)
        self.status = PolicyStatusMsg(state="idle")
        self.worker: InferenceWorker | None = None

    def _now(self) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9

    def submit(self, request: PredictionRequest) -> None:
        assert self.worker is not None
        self.worker.submit(request)

    def send_chunk(self, chunk: ActionChunk, token: Time) -> None:
        if self.node.context.ok():
            self.chunk_pub.publish(chunk_message(chunk, token))
        self.health.set_value("ik_resamples", self.runtime.ik_resamples if self.runtime else 0)

    def send_look(self, motion: LookMotion, token: Time, t_stamp: float) -> None:
        if self.node.context.ok():
            self.chunk_pub.publish(look_message(motion, token, t_stamp))

    def send_stop(self) -> None:
        """An empty trajectory: the safety node holds the arm."""
        if self.node.context.ok():
            self.chunk_pub.publish(stop_message(self.node.get_clock().now().to_msg()))
        self.health.increment("stops_published")

    def report(self, handle: Any, report: SkillReport, done: bool) -> None:
        status = PolicyStatusMsg(goal_id=report.goal_id, state=report.state, reason=report.reason,
                                 skill=report.skill, chunks=report.chunks,
                                 object_id=report.object_id, target=report.target)  # fmt: skip
        self.publish_status(status)
        if not done:
            return
        text = f"goal {report.goal_id} {report.state}: {report.reason} ({report.chunks} chunks)"
        # one severity per call site: rclpy raises when a line logs at two
        log = self.node.get_logger()
        log.warning(text) if report.state == FAILED else log.info(text)
        if handle is not None:
            handle.finish(report.state, report.reason, report.chunks)

    def feedback(self, handle: Any, phase: str, chunks: int) -> None:
        if handle is not None:
            handle.feedback(phase, chunks)

    def warn(self, text: str) -> None:
        self.node.get_logger().warning(text, throttle_duration_sec=LOG_THROTTLE_S)

    def publish_status(self, status: PolicyStatusMsg) -> None:
        self.status = status.model_copy(update={"stamp": self._now()})
        self.health.set_value("state", status.state)
        if self.node.context.ok():
            self.status_pub.publish(policy_status_to_msg(self.status))
