"""Planner node: an instruction -> a plan of skills grounded in memory -> RunSkill goals.

Thin adapter over :class:`robot_memory.planner.executor.PlanExecutor` (the same
executor runs in-process in the task evaluation):

* action server ``/planner/execute`` (``ExecuteInstruction``): goal text and
  ``memoryless``; feedback on every state change (state, plan, step, progress,
  replans, message; and when the running skill's phase changes); result
  success, state (succeeded, answered, failed, rejected, canceled), reason,
  the answer to a question, the last plan;
* in: ``/memory/scene_graph`` (``SceneGraph``, latched) and, with the VLM
  backend, the latest camera image (``image_topic``);
* clients: ``/memory/query`` (``QueryMemory``), ``/memory/reset``
  (``std_srvs/Trigger``, memoryless ablation only), ``/policy/run_skill``
  (``RunSkill`` action), through :mod:`robot_memory.nodes.planner_ports`;
* out: ``/planner/plan`` (``Plan``: every plan, replans with ``attempt`` > 0)
  and ``/planner/status`` (``PlannerStatus``), both latched 10 deep, and
  ``/diagnostics``.

One instruction at a time (a second goal is refused ``busy``), cancel, and how
the goal ends: :mod:`robot_memory.nodes.instruction_server`. An empty or too
long text, or ``memoryless`` when ``allow_memoryless`` is not set, ends at once
``rejected`` with the reason. The contract, with what was measured:
docs/planner.md.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from rclpy.action import ActionClient
from rclpy.node import Node
from rclpy.parameter import Parameter
from robot_memory_interfaces.action import RunSkill
from robot_memory_interfaces.msg import Plan as PlanMsg
from robot_memory_interfaces.msg import PlannerStatus, SceneGraph
from robot_memory_interfaces.srv import QueryMemory
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger

from robot_memory.bringup.launch_spec import PLANNER_PARAMETERS
from robot_memory.health.counters import HealthCounters
from robot_memory.memory.text_grounding import TextEmbedder
from robot_memory.nodes.conversions import image_to_numpy
from robot_memory.nodes.diagnostics import DiagnosticsPublisher
from robot_memory.nodes.input_boundary import InputBoundary
from robot_memory.nodes.instruction_server import InstructionServer
from robot_memory.nodes.memory_conversions import scene_graph_from_msg
from robot_memory.nodes.node_main import spin_node
from robot_memory.nodes.parameters import declare_parameters
from robot_memory.nodes.planner_conversions import (
    feedback_from_status,
    plan_to_msg,
    planner_status_to_msg,
)
from robot_memory.nodes.planner_ports import (
    ActionSkillPort,
    CancelScope,
    InstructionCanceledError,
    MemoryResetError,
    ServiceMemoryPort,
)
from robot_memory.nodes.qos import LATCHED, SENSOR, STATUS
from robot_memory.planner.backend_factory import make_backend
from robot_memory.planner.executor import ExecutorConfig, PlanExecutor
from robot_memory.planner.experience import ExperienceMemory
from robot_memory.planner.plan import TERMINAL_STATES, Plan, PlannerStatusMsg, checked_instruction
from robot_memory.schemas import PayloadError, PolicyGoalMsg

#: Threads of the node's executor: the running instruction, the responses it
#: waits on, a second goal or a cancel, the timers.
EXECUTOR_THREADS = 4


class PlannerNode(Node):
    def __init__(self, parameter_overrides: list[Parameter] | None = None) -> None:
        super().__init__("planner", parameter_overrides=parameter_overrides or [])
        p = declare_parameters(self, PLANNER_PARAMETERS)
        self.health = HealthCounters("planner")
        self.inputs = InputBoundary(self, self.health)
        self.allow_memoryless = bool(p["allow_memoryless"])
        if bool(p["memoryless"]) and not self.allow_memoryless:
            self.get_logger().warning(
                "memoryless is set but allow_memoryless is not: the memory node must "
                "allow_remote_reset, or every step fails on a refused /memory/reset"
            )
        self.plan_pub = self.create_publisher(PlanMsg, "/planner/plan", STATUS)
        self.status_pub = self.create_publisher(PlannerStatus, "/planner/status", STATUS)
        self.scope = CancelScope()  # the running instruction's cancel
        self.memory = ServiceMemoryPort(
            self.create_client(QueryMemory, "/memory/query"),
            self.create_client(Trigger, "/memory/reset"),
            self.now,
            self.scope,
            query_timeout_s=float(p["query_timeout_s"]),
            refresh_timeout_s=float(p["refresh_timeout_s"]),
        )
        self.skills = ActionSkillPort(
            ActionClient(self, RunSkill, "/policy/run_skill"),
            self.scope,
            timeout_s=float(p["skill_timeout_s"]),
            on_feedback=self.on_skill_feedback,
        )
        self.embedder = TextEmbedder()  # shared: grounding words, similar instructions
        self.backend = make_backend(p, self.embedder)  # the VLM one falls back to offline
        path = str(p["experience_path"]).strip()
        self.experiences = ExperienceMemory(
            Path(path).expanduser() if path else None, self.embedder
        )
        self.executor_ = PlanExecutor(
            self.backend,
            self.memory,
            self.skills,
            self.experiences,
            ExecutorConfig(max_attempts=int(p["max_attempts"]), memoryless=bool(p["memoryless"])),
            on_status=self.publish_status,
            on_plan=self.publish_plan,
            image_source=self.latest_image,
            clock=self.now,
        )
        self._image: Image | None = None
        self._plan: Plan | None = None
        self._status: PlannerStatusMsg | None = None
        self._skill_phase = ""

        sub = self.inputs.subscribe
        sub(SceneGraph, "/memory/scene_graph", self.on_scene_graph, LATCHED, prefix="scene graph ")
        if p["backend"] == "vlm" and p["image_topic"]:
            sub(Image, str(p["image_topic"]), self.on_image, SENSOR)
        self.server = InstructionServer(self, self.scope, self._run, self._reject, self._crashed)
        self.diagnostics = DiagnosticsPublisher(self, self.health)
        threading.Thread(target=self._preload, name="embedder", daemon=True).start()
        self.health.set_value("state", "idle")
        for key in ("instructions", "plans", "replans", "skills", "failures", "canceled"):
            self.health.set_value(key, 0)
        self.publish_status(PlannerStatusMsg(state="idle", stamp=self.now()))
        self.get_logger().info(
            f"planner ready: backend {self.backend.name}, experiences "
            f"{self.experiences.path or 'not persisted'} ({len(self.experiences.entries)})"
        )

    def _preload(self) -> None:
        """Load the text model now, not on the first instruction (about 10 s)."""
        try:
            self.embedder.encode(["warm up"])
        except Exception as exc:  # noqa: BLE001 - planning will report it; keep running
            self.get_logger().error(f"text embedder failed to load: {exc}")

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # -- inputs ------------------------------------------------------------------------
    def on_scene_graph(self, msg: SceneGraph) -> None:
        graph = scene_graph_from_msg(msg)  # a PayloadError is counted by the boundary
        self.memory.on_scene_graph(graph)
        self.health.set_value("scene_graph_seq", graph.seq)

    def on_image(self, msg: Image) -> None:
        self._image = msg  # decoded only when a backend asks for it

    def latest_image(self) -> np.ndarray | None:
        msg = self._image
        if msg is None:
            return None
        try:
            return image_to_numpy(msg) if msg.encoding == "rgb8" else None
        except ValueError:
            return None

    # -- the action (InstructionServer's execute thread) ----------------------------------
    def _run(self, goal_handle) -> tuple[str, str, Plan | None]:
        request = goal_handle.request
        try:
            instruction = checked_instruction(
                request.text, request.memoryless, self.allow_memoryless
            )
        except PayloadError as err:
            self._reject(err.reason, f"instruction refused: {err}", request.text)
            return "rejected", err.reason, None
        self._plan, self._status = None, None
        self.server.start(goal_handle)  # cancelled before it started: the scope says so
        self.health.increment("instructions")
        self.get_logger().info(f"instruction: {instruction.text!r}")
        try:
            result = self.executor_.run(instruction.text, instruction.memoryless or None)
            state, reason, plan = result.state, result.reason, result.plan
        except InstructionCanceledError:
            state, reason, plan = "canceled", "canceled", self._plan
            self.health.increment("canceled")
            self._final(instruction.text, "canceled", "canceled", "canceled by the client")
        except MemoryResetError as err:
            state, reason, plan = "failed", str(err), self._plan
            self._final(instruction.text, "failed", "memory reset failed", str(err))
        except Exception as exc:  # noqa: BLE001 - reported, counted, the node goes on
            self.health.reject("internal error")
            self.get_logger().error(f"{instruction.text!r} crashed the executor: {exc!r}")
            state, reason, plan = "failed", "internal error", self._plan
            self._final(instruction.text, "failed", "internal error", repr(exc))
        text = f"{instruction.text!r}: {state} {reason}".rstrip()
        if state in ("succeeded", "answered"):
            self.get_logger().info(text)
        else:
            self.get_logger().warning(text)
        self.health.set_value("skills", self.skills.counters["skills"])
        for key, value in self.executor_.counters.items():
            key = key.replace("rejected:", "plans_rejected.").replace(":", ".")
            self.health.set_value(key, value)
        return state, reason, plan

    def _final(self, instruction: str, state: str, reason: str, message: str) -> None:
        last = self._status
        self.publish_status(
            PlannerStatusMsg(
                plan_id=self._plan.id if self._plan is not None else "",
                instruction=instruction,
                state=state,  # type: ignore[arg-type]
                step=last.step if last is not None else 0,
                n_steps=last.n_steps if last is not None else 0,
                progress=last.progress if last is not None else 0.0,
                attempt=last.attempt if last is not None else 0,
                reason=reason[:300],
                message=message[:1000],
                stamp=self.now(),
            )
        )

    def _crashed(self, text: str) -> None:
        self.inputs.reject("internal error", text)

    def _reject(self, reason: str, text: str, instruction: str) -> None:
        self.inputs.reject(reason, text)  # counted; logged at most once a second per reason
        status = PlannerStatusMsg(
            instruction=instruction[:1000], state="rejected", reason=reason, message=text[:1000]
        )
        self._send_status(status.model_copy(update={"stamp": self.now()}))

    # -- outputs -------------------------------------------------------------------------------
    def publish_plan(self, plan: Plan) -> None:
        self._plan = plan
        self.health.increment("plans")
        if plan.attempt > 0:
            self.health.increment("replans")
        self.get_logger().info(f"plan {plan.id} ({plan.backend}): {plan.describe()}")
        if self.context.ok():
            self.plan_pub.publish(plan_to_msg(plan))

    def publish_status(self, status: PlannerStatusMsg) -> None:
        """The executor's statuses (and the node's own idle / cancel / crash ones);
        each non-final one is also the running goal's feedback."""
        if status.state == "failed":
            self.health.increment("failures")
        self.health.set_value("state", status.state)
        self._status, self._skill_phase = status, ""
        self._send_status(status)
        if status.state not in TERMINAL_STATES and status.state != "idle":
            self._feedback(status)

    def on_skill_feedback(self, goal: PolicyGoalMsg, phase: str, chunks: int) -> None:
        """The running skill's phase changed: feedback with it in the message."""
        status = self._status
        if status is None or phase == self._skill_phase or status.state in TERMINAL_STATES:
            return
        self._skill_phase = phase
        message = f"{status.message} ({goal.skill}: {phase}, {chunks} chunks)"
        self._feedback(status.model_copy(update={"message": message[:1000]}))

    def _feedback(self, status: PlannerStatusMsg) -> None:
        goal = self.server.goal
        if goal is None or not self.context.ok():
            return
        try:
            goal.publish_feedback(feedback_from_status(status, self._plan))
        except Exception as exc:  # noqa: BLE001 - a goal ending meanwhile
            self.get_logger().debug(f"feedback not sent: {exc!r}")

    def _send_status(self, status: PlannerStatusMsg) -> None:
        if self.context.ok():
            self.status_pub.publish(planner_status_to_msg(status))

    def shutdown(self) -> None:
        """Stop the running instruction (its skill is cancelled on the policy)."""
        self.scope.cancel()


def main(args: list[str] | None = None) -> None:
    spin_node(PlannerNode, args, threads=EXECUTOR_THREADS)


if __name__ == "__main__":
    main()
