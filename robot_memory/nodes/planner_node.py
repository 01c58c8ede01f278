"""Planner node: an instruction -> a plan of skills grounded in memory -> /policy/goal.

Thin adapter over :class:`robot_memory.planner.executor.PlanExecutor` (the same
executor runs in-process in the task evaluation):

* in: ``/planner/instruction`` (std_msgs/String: plain text, or JSON
  ``InstructionMsg`` ``{"text": ..., "id": ..., "memoryless": ...}``),
  ``/memory/scene_graph`` (latched), ``/memory/answer``, ``/policy/status``
  (latched) and, with the VLM backend, the latest camera image (``image_topic``);
* out: ``/planner/plan`` (JSON ``Plan``, latched: every plan, replans with
  ``attempt`` > 0), ``/planner/status`` (JSON ``PlannerStatusMsg``, latched,
  10 deep like ``/policy/status``), ``/policy/goal``, ``/memory/query``,
  ``/memory/reset`` (memoryless ablation only), ``/diagnostics``.

One instruction at a time: it runs on a worker thread (the executor blocks
on memory answers and skill outcomes, which the ROS executor thread delivers
through :mod:`robot_memory.nodes.planner_ports`). An instruction that arrives
while one runs is **rejected**, not queued (status ``rejected``, reason
``busy``): a queued command would run on a scene the sender has not seen.
Malformed JSON, an invalid payload or empty text is logged, counted in
``/diagnostics`` (``rejected.<reason>``) and answered with a ``rejected``
status; the node keeps running. So is ``"memoryless": true`` unless the
parameter ``allow_memoryless`` is set (it makes memory forget everything:
set it only where the memory node's ``allow_remote_reset`` is). Every
subscription goes through :class:`InputBoundary`: no message ends the node.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from pydantic import ValidationError
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Empty, String

from robot_memory.diagnostics_core import HealthCounters
from robot_memory.launch_spec import PLANNER_PARAMETERS
from robot_memory.memory.text_grounding import TextEmbedder
from robot_memory.nodes.conversions import image_to_numpy
from robot_memory.nodes.diagnostics import DiagnosticsPublisher
from robot_memory.nodes.input_boundary import InputBoundary
from robot_memory.nodes.node_main import spin_node
from robot_memory.nodes.parameters import declare_parameters
from robot_memory.nodes.planner_ports import RosMemoryPort, RosSkillPort
from robot_memory.nodes.qos import COMMAND, LATCHED, SENSOR
from robot_memory.planner.executor import ExecutorConfig, PlanExecutor
from robot_memory.planner.experience import ExperienceMemory
from robot_memory.planner.plan import InstructionMsg, Plan, PlannerStatusMsg
from robot_memory.planner.world import PlannerBackend
from robot_memory.schemas import (
    MemoryAnswer,
    PayloadError,
    PolicyStatusMsg,
    SceneGraphMsg,
    decode_json,
    dump_payload,
    parse_payload,
)

#: /planner/plan and /planner/status: latched, 10 deep (statuses come back to
#: back; a late subscriber gets the last ones), as /policy/status.
STATUS_QOS = QoSProfile(
    reliability=ReliabilityPolicy.RELIABLE,
    history=HistoryPolicy.KEEP_LAST,
    depth=10,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)


#: Longest text on /planner/instruction (the text itself is at most 1000).
MAX_INSTRUCTION_CHARS = 16_384


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


def parse_instruction(text: str, allow_memoryless: bool = True) -> InstructionMsg:
    """Plain text or JSON ``InstructionMsg``; raises PayloadError (reason for
    diagnostics), also for ``memoryless`` when not ``allow_memoryless``."""
    if len(text) > MAX_INSTRUCTION_CHARS:
        raise PayloadError("instruction too long", f"{len(text)} characters")
    if text.lstrip().startswith("{"):
        data = decode_json(text, MAX_INSTRUCTION_CHARS)
        try:
            msg = InstructionMsg.model_validate(data)
        except ValidationError as err:
            raise PayloadError("invalid instruction", str(err.errors()[0]["msg"])) from None
    else:
        try:
            msg = InstructionMsg(text=text.strip())
        except ValidationError:
            raise PayloadError(
                "empty instruction" if not text.strip() else "instruction too long"
            ) from None
    if not msg.text.strip():
        raise PayloadError("empty instruction")
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
                "allow_remote_reset, or every step waits for a reset that never comes"
            )
        self.plan_pub = self.create_publisher(String, "/planner/plan", STATUS_QOS)
        self.status_pub = self.create_publisher(String, "/planner/status", STATUS_QOS)
        goal_pub = self.create_publisher(String, "/policy/goal", COMMAND)
        query_pub = self.create_publisher(String, "/memory/query", COMMAND)
        reset_pub = self.create_publisher(Empty, "/memory/reset", COMMAND)

        def publish_goal(text: str) -> None:
            self.health.increment("skills")
            goal_pub.publish(String(data=text))

        self.memory = RosMemoryPort(
            lambda text: query_pub.publish(String(data=text)),
            lambda _text: reset_pub.publish(Empty()),
            self.now,
            query_timeout_s=float(p["query_timeout_s"]),
            refresh_timeout_s=float(p["refresh_timeout_s"]),
        )
        self.skills = RosSkillPort(publish_goal, timeout_s=float(p["skill_timeout_s"]))
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
        self._lock = threading.Condition()
        self._pending: InstructionMsg | None = None
        self._busy = False
        self._stop = False

        sub = self.inputs.subscribe
        sub(String, "/planner/instruction", self.on_instruction, COMMAND)
        sub(String, "/memory/scene_graph", self.on_scene_graph, LATCHED, prefix="scene graph ")
        sub(String, "/memory/answer", self.on_answer, COMMAND, prefix="answer ")
        sub(String, "/policy/status", self.on_policy_status, STATUS_QOS, prefix="policy status ")
        if p["backend"] == "vlm" and p["image_topic"]:
            sub(Image, str(p["image_topic"]), self.on_image, SENSOR)
        self.diagnostics = DiagnosticsPublisher(self, self.health)
        self._worker = threading.Thread(target=self._work, name="planner", daemon=True)
        self._worker.start()
        threading.Thread(target=self._preload, name="embedder", daemon=True).start()
        self.health.set_value("state", "idle")
        for key in ("instructions", "plans", "replans", "skills", "failures"):
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

    # -- inputs (executor thread) -------------------------------------------------
    def on_instruction(self, msg: String) -> None:
        try:
            instruction = parse_instruction(msg.data, self.allow_memoryless)
        except PayloadError as err:
            self._reject(err.reason, f"instruction refused: {err}", msg.data[:200])
            return
        with self._lock:
            if self._busy:
                self._reject(
                    "busy",
                    f"instruction refused while one runs: {instruction.text!r}",
                    instruction.text,
                )
                return
            self._busy, self._pending = True, instruction
            self._lock.notify()
        self.health.increment("instructions")
        self.get_logger().info(f"instruction: {instruction.text!r}")

    def on_scene_graph(self, msg: String) -> None:
        try:
            graph = parse_payload(SceneGraphMsg, msg.data)
        except PayloadError as err:
            self._reject(f"scene graph {err.reason}", f"scene graph refused: {err}")
            return
        self.memory.on_scene_graph(graph)
        self.health.set_value("scene_graph_seq", graph.seq)

    def on_answer(self, msg: String) -> None:
        try:
            self.memory.on_answer(parse_payload(MemoryAnswer, msg.data))
        except PayloadError as err:
            self._reject(f"answer {err.reason}", f"memory answer refused: {err}")

    def on_policy_status(self, msg: String) -> None:
        try:
            self.skills.on_status(parse_payload(PolicyStatusMsg, msg.data))
        except PayloadError as err:
            self._reject(f"policy status {err.reason}", f"policy status refused: {err}")

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

    def _reject(self, reason: str, text: str, instruction: str | None = None) -> None:
        self.inputs.reject(reason, text)  # counted; logged at most once a second per reason
        if instruction is not None:
            status = PlannerStatusMsg(
                instruction=instruction[:1000], state="rejected", reason=reason, message=text[:1000]
            )
            self._send_status(status.model_copy(update={"stamp": self.now()}))

    # -- outputs (worker thread too) ----------------------------------------------
    def publish_plan(self, plan: Plan) -> None:
        self.health.increment("plans")
        if plan.attempt > 0:
            self.health.increment("replans")
        self.get_logger().info(f"plan {plan.id} ({plan.backend}): {plan.describe()}")
        if self.context.ok():
            self.plan_pub.publish(String(data=dump_payload(plan)))

    def publish_status(self, status: PlannerStatusMsg) -> None:
        """The executor's statuses (and the node's own idle / crash ones)."""
        if status.state == "failed":
            self.health.increment("failures")
        self.health.set_value("state", status.state)
        self._send_status(status)

    def _send_status(self, status: PlannerStatusMsg) -> None:
        if self.context.ok():
            self.status_pub.publish(String(data=dump_payload(status)))

    # -- worker thread ----------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._lock:
                while self._pending is None and not self._stop:
                    self._lock.wait(0.5)
                if self._stop:
                    return
                instruction, self._pending = self._pending, None
            try:
                result = self.executor_.run(instruction.text, instruction.memoryless or None)
                text = f"{instruction.text!r}: {result.state} {result.reason}".rstrip()
                if result.ok:
                    self.get_logger().info(text)
                else:
                    self.get_logger().warning(text)
            except Exception as exc:  # noqa: BLE001 - one bad instruction must not end the node
                self.health.reject("internal error")
                self.get_logger().error(f"{instruction.text!r} crashed the executor: {exc!r}")
                self.publish_status(
                    PlannerStatusMsg(
                        instruction=instruction.text,
                        state="failed",
                        reason="internal error",
                        message=repr(exc)[:1000],
                        stamp=self.now(),
                    )
                )
            for key, value in self.executor_.counters.items():
                key = key.replace("rejected:", "plans_rejected.").replace(":", ".")
                self.health.set_value(key, value)
            with self._lock:
                self._busy = False

    def shutdown(self) -> None:
        with self._lock:
            self._stop = True
            self._lock.notify()
        self.memory.cancel()
        self.skills.cancel()
        if self._worker.is_alive():
            self._worker.join(timeout=1.0)  # spin_node exits 1.8 s after the signal anyway


def main(args: list[str] | None = None) -> None:
    spin_node(PlannerNode, args)


if __name__ == "__main__":
    main()
