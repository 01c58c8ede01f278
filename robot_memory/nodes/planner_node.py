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

**One instruction at a time**: a goal that arrives while one runs is
**rejected** by the goal callback (counted as ``busy``, a ``rejected``
status with reason ``busy``), not queued and not preempting: a queued command
would run on a scene its sender has not seen, and a preempting one would drop
an object mid-air. An empty or too long text, or ``memoryless`` when the
parameter ``allow_memoryless`` is not set (it makes memory forget
everything), is accepted and ends at once with state ``rejected`` and the
reason. **Cancel** is accepted while an instruction runs: the running skill
goal is cancelled on the policy (which stops; the safety node holds the arm),
the planner takes no further step and does not replan, status ``canceled``,
and the goal ends canceled.

The instruction runs in the action's execute callback, which blocks on memory
answers and skill results; the node therefore spins on a multi-threaded
executor (:data:`EXECUTOR_THREADS`; the action server in its own reentrant
callback group) so that other threads deliver those responses, a second goal
and a cancel meanwhile.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from pydantic import ValidationError
from rclpy.action import ActionClient, ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.parameter import Parameter
from robot_memory_interfaces.action import ExecuteInstruction, RunSkill
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
from robot_memory.nodes.memory_conversions import scene_graph_from_msg
from robot_memory.nodes.node_main import spin_node
from robot_memory.nodes.parameters import declare_parameters
from robot_memory.nodes.planner_conversions import (
    execute_result,
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
from robot_memory.planner.executor import ExecutorConfig, PlanExecutor
from robot_memory.planner.experience import ExperienceMemory
from robot_memory.planner.plan import TERMINAL_STATES, InstructionMsg, Plan, PlannerStatusMsg
from robot_memory.planner.world import PlannerBackend
from robot_memory.schemas import PayloadError, PolicyGoalMsg

#: Threads of the node's executor: the running instruction, the responses it
#: waits on, a second goal or a cancel, the timers.
EXECUTOR_THREADS = 4


def make_backend(p: dict, embedder: TextEmbedder | None = None) -> PlannerBackend:
    """The planning backend the parameters ask for (the VLM one falls back to offline)."""
    from robot_memory.planner.offline_backend import OfflinePlanner

    handover = tuple(float(v) for v in p["handover_position"])
    offline = OfflinePlanner(embedder=embedder, handover_position=handover)  # type: ignore[arg-type]
    if p["backend"] == "offline":
        return offline
    if p["backend"] != "vlm":
        raise ValueError(f"backend must be offline or vlm, got {p['backend']!r}")
    from robot_memory.planner.vlm_backend import VLMConfig, VLMPlanner

    config = VLMConfig(
        base_url=str(p["vlm.base_url"]),
        model=str(p["vlm.model"]),
        api_key_env=str(p["vlm.api_key_env"]),
        timeout_s=float(p["vlm.timeout_s"]),
        max_retries=int(p["vlm.max_retries"]),
    )
    return VLMPlanner(config, fallback=offline)


def parse_instruction(
    text: str, memoryless: bool = False, allow_memoryless: bool = True
) -> InstructionMsg:
    """An ``ExecuteInstruction`` goal's text and flag, checked; raises
    PayloadError (reason for diagnostics): empty, too long, or ``memoryless``
    when not ``allow_memoryless``."""
    if not text.strip():
        raise PayloadError("empty instruction")
    try:
        msg = InstructionMsg(text=text.strip(), memoryless=memoryless)
    except ValidationError:
        raise PayloadError("instruction too long", f"{len(text)} characters") from None
    if msg.memoryless and not allow_memoryless:
        raise PayloadError(
            "memoryless refused", "it resets memory; this planner's allow_memoryless is false"
        )
    return msg


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
        self.backend = make_backend(p, self.embedder)
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
        self._lock = threading.Lock()
        self._busy = False
        self._goal = None  # the running goal's ServerGoalHandle
        self._cancel_before_start: set[bytes] = set()
        self._plan: Plan | None = None
        self._status: PlannerStatusMsg | None = None
        self._skill_phase = ""

        sub = self.inputs.subscribe
        sub(SceneGraph, "/memory/scene_graph", self.on_scene_graph, LATCHED, prefix="scene graph ")
        if p["backend"] == "vlm" and p["image_topic"]:
            sub(Image, str(p["image_topic"]), self.on_image, SENSOR)
        self.server = ActionServer(
            self,
            ExecuteInstruction,
            "/planner/execute",
            execute_callback=self.execute,
            goal_callback=self.on_goal,
            cancel_callback=self.on_cancel,
            callback_group=ReentrantCallbackGroup(),
        )
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

    # -- the action ------------------------------------------------------------------------
    def on_goal(self, goal: ExecuteInstruction.Goal) -> GoalResponse:
        """One at a time: a goal while one runs is rejected ("busy")."""
        try:
            with self._lock:
                if not self._busy:
                    self._busy = True
                    return GoalResponse.ACCEPT
            refused = f"instruction refused while one runs: {goal.text[:200]!r}"
            self._reject("busy", refused, goal.text)
        except Exception as exc:  # noqa: BLE001 - nothing on the wire ends the node
            self.inputs.reject("goal: internal error", repr(exc))
        return GoalResponse.REJECT

    def on_cancel(self, goal_handle) -> CancelResponse:
        """Accepted while the instruction runs: the skill is cancelled, no further step."""
        with self._lock:
            if self._goal is not None and self._goal.goal_id == goal_handle.goal_id:
                running = True
            else:  # accepted, not started yet: it ends canceled at its start
                self._cancel_before_start.add(bytes(goal_handle.goal_id.uuid))
                running = False
        self.get_logger().info("cancel requested: stopping the instruction and its skill")
        if running:
            self.scope.cancel()
        return CancelResponse.ACCEPT

    def execute(self, goal_handle) -> ExecuteInstruction.Result:
        """Run one accepted instruction to its end (on an executor thread)."""
        state, reason, plan = "failed", "internal error", None
        try:
            state, reason, plan = self._run(goal_handle)
        except Exception as exc:  # noqa: BLE001 - one bad instruction must not end the node
            self.inputs.reject("internal error", f"instruction crashed: {exc!r}")
        finally:
            with self._lock:
                self._busy, self._goal = False, None
        try:
            if goal_handle.is_cancel_requested and state == "canceled":
                goal_handle.canceled()
            elif state in ("succeeded", "answered"):
                goal_handle.succeed()
            else:
                goal_handle.abort()
        except Exception as exc:  # noqa: BLE001 - e.g. shutting down
            self.get_logger().warning(f"goal could not end {state}: {exc!r}")
        return execute_result(state, reason, plan)

    def _run(self, goal_handle) -> tuple[str, str, Plan | None]:
        request = goal_handle.request
        try:
            instruction = parse_instruction(request.text, request.memoryless, self.allow_memoryless)
        except PayloadError as err:
            self._reject(err.reason, f"instruction refused: {err}", request.text)
            return "rejected", err.reason, None
        with self._lock:
            self._goal, self._plan, self._status = goal_handle, None, None
            self.scope.reset()
            early = bytes(goal_handle.goal_id.uuid) in self._cancel_before_start
            self._cancel_before_start.discard(bytes(goal_handle.goal_id.uuid))
        self.health.increment("instructions")
        self.get_logger().info(f"instruction: {instruction.text!r}")
        if early or goal_handle.is_cancel_requested:
            self.scope.cancel()
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
        goal = self._goal
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
