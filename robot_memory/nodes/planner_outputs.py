"""What the planner node sends: plans on ``/planner/plan``, statuses on
``/planner/status`` (both latched 10 deep), and the running goal's feedback
on every non-final status and whenever the running skill's phase changes.
The ROS side of :class:`robot_memory.planner.executor.PlanExecutor`'s
``on_status`` / ``on_plan`` callbacks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rclpy.node import Node
from robot_memory_interfaces.msg import Plan as PlanMsg
from robot_memory_interfaces.msg import PlannerStatus

from robot_memory.health.counters import HealthCounters
from robot_memory.nodes.planner_conversions import (
    feedback_from_status,
    plan_to_msg,
    planner_status_to_msg,
)
from robot_memory.nodes.qos import STATUS
from robot_memory.planner.plan import TERMINAL_STATES, Plan, PlannerStatusMsg
from robot_memory.schemas import PolicyGoalMsg


class PlannerOutputs:
    def __init__(self, node: Node, health: HealthCounters, running_goal: Callable[[], Any]) -> None:
        self.node, self.health, self.running_goal = node, health, running_goal
        self.plan_pub = node.create_publisher(PlanMsg, "/planner/plan", STATUS)
        self.status_pub = node.create_publisher(PlannerStatus, "/planner/status", STATUS)
        self.plan: Plan | None = None  # the running instruction's last plan
        self.status: PlannerStatusMsg | None = None  # and its last status
        self._skill_phase = ""

    def _now(self) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9

    def new_instruction(self) -> None:
        self.plan, self.status = None, None

    def publish_plan(self, plan: Plan) -> None:
        self.plan = plan
        self.health.increment("plans")
        if plan.attempt > 0:
            self.health.increment("replans")
        self.node.get_logger().info(f"plan {plan.id} ({plan.backend}): {plan.describe()}")
        if self.node.context.ok():
            self.plan_pub.publish(plan_to_msg(plan))

    def publish_status(self, status: PlannerStatusMsg) -> None:
        """The executor's statuses (and the node's own idle / cancel / crash ones);
        each non-final one is also the running goal's feedback."""
        if status.state == "failed":
            self.health.increment("failures")
        self.health.set_value("state", status.state)
        self.status, self._skill_phase = status, ""
        self.send_status(status)
        if status.state not in TERMINAL_STATES and status.state != "idle":
            self._feedback(status)

    def final(self, instruction: str, state: str, reason: str, message: str) -> None:
        """A final status the executor did not send (cancel, crash), at the
        step and progress the last one reached."""
        last = self.status
        self.publish_status(
            PlannerStatusMsg(
                plan_id=self.plan.id if self.plan is not None else "",
                instruction=instruction,
                state=state,  # type: ignore[arg-type]
                step=last.step if last is not None else 0,
                n_steps=last.n_steps if last is not None else 0,
                progress=last.progress if last is not None else 0.0,
                attempt=last.attempt if last is not None else 0,
                reason=reason[:300],
                message=message[:1000],
                stamp=self._now(),
            )
        )

    def rejected(self, instruction: str, reason: str, text: str) -> None:
        status = PlannerStatusMsg(
            instruction=instruction[:1000], state="rejected", reason=reason, message=text[:1000]
        )
        self.send_status(status.model_copy(update={"stamp": self._now()}))

    def on_skill_feedback(self, goal: PolicyGoalMsg, phase: str, chunks: int) -> None:
        """The running skill's phase changed: feedback with it in the message."""
        status = self.status
        if status is None or phase == self._skill_phase or status.state in TERMINAL_STATES:
            return
        self._skill_phase = phase
        message = f"{status.message} ({goal.skill}: {phase}, {chunks} chunks)"
        self._feedback(status.model_copy(update={"message": message[:1000]}))

    def _feedback(self, status: PlannerStatusMsg) -> None:
        goal = self.running_goal()
        if goal is None or not self.node.context.ok():
            return
        try:
            goal.publish_feedback(feedback_from_status(status, self.plan))
        except Exception as exc:  # noqa: BLE001 - a goal ending meanwhile
            self.node.get_logger().debug(f"feedback not sent: {exc!r}")

    def send_status(self, status: PlannerStatusMsg) -> None:
        if self.node.context.ok():
            self.status_pub.publish(planner_status_to_msg(status))
