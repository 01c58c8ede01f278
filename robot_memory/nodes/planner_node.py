"""Planner node: an instruction -> a plan of skills grounded in memory -> RunSkill goals.

Thin adapter over :class:`robot_memory.planner.executor.PlanExecutor` (the task
evaluation runs the same one in-process), through
:func:`robot_memory.planner.instruction_run.run_instruction`. Action server
``/planner/execute`` (:mod:`robot_memory.nodes.instruction_server`); in:
``/memory/scene_graph`` and, with the VLM backend, ``image_topic``; clients of
``/memory/query``, ``/memory/reset`` and ``/policy/run_skill``
(:mod:`robot_memory.nodes.planner_ports`); out: ``/planner/plan``,
``/planner/status``, feedback (:mod:`robot_memory.nodes.planner_outputs`),
``/diagnostics``. The contract, with what was measured: docs/planner.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rclpy.node import Node
from rclpy.parameter import Parameter
from robot_memory_interfaces.msg import SceneGraph
from sensor_msgs.msg import CompressedImage, Image

from robot_memory.bringup.node_parameters import PLANNER_PARAMETERS
from robot_memory.health.counters import HealthCounters
from robot_memory.memory.text_grounding import TextEmbedder
from robot_memory.nodes.conversions import rgb_or_none
from robot_memory.nodes.diagnostics import DiagnosticsPublisher
from robot_memory.nodes.input_boundary import InputBoundary
from robot_memory.nodes.instruction_server import InstructionServer
from robot_memory.nodes.memory_conversions import scene_graph_from_msg
from robot_memory.nodes.node_main import spin_node
from robot_memory.nodes.parameters import declare_parameters
from robot_memory.nodes.planner_outputs import PlannerOutputs
from robot_memory.nodes.planner_ports import CancelScope, planner_ports
from robot_memory.nodes.qos import LATCHED, SENSOR
from robot_memory.planner.backend_factory import make_backend
from robot_memory.planner.executor import ExecutorConfig, PlanExecutor
from robot_memory.planner.experience import ExperienceMemory
from robot_memory.planner.instruction_run import health_counters, run_instruction
from robot_memory.planner.plan import Plan, PlannerStatusMsg, checked_instruction
from robot_memory.schemas import PayloadError

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
        self.out = PlannerOutputs(self, self.health, lambda: self.server.goal)
        self.scope = CancelScope()  # the running instruction's cancel
        self.memory, self.skills = planner_ports(self, self.scope, p, self.out.on_skill_feedback)
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
            on_status=self.out.publish_status,
            on_plan=self.out.publish_plan,
            image_source=self.latest_image,
            clock=self.now,
        )
        self._image: Image | CompressedImage | None = None

        sub = self.inputs.subscribe
        sub(SceneGraph, "/memory/scene_graph", self.on_scene_graph, LATCHED, prefix="scene graph ")
        if p["backend"] == "vlm" and p["image_topic"]:
            topic = str(p["image_topic"])
            sub(CompressedImage if topic.endswith("/compressed") else Image, topic,
                self.on_image, SENSOR)  # fmt: skip
        self.server = InstructionServer(self, self.scope, self._run, self._reject, self._crashed)
        self.diagnostics = DiagnosticsPublisher(self, self.health)
        self.embedder.warm_up_in_background(
            lambda exc: self.get_logger().error(f"text embedder failed to load: {exc}")
        )
        self.health.set_value("state", "idle")
        for key in ("instructions", "plans", "replans", "skills", "failures", "canceled"):
            self.health.set_value(key, 0)
        self.out.publish_status(PlannerStatusMsg(state="idle", stamp=self.now()))
        self.get_logger().info(
            f"planner ready: backend {self.backend.name}, experiences "
            f"{self.experiences.path or 'not persisted'} ({len(self.experiences.entries)})"
        )

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # -- inputs ------------------------------------------------------------------------
    def on_scene_graph(self, msg: SceneGraph) -> None:
        graph = scene_graph_from_msg(msg)  # a PayloadError is counted by the boundary
        self.memory.on_scene_graph(graph)
        self.health.set_value("scene_graph_seq", graph.seq)

    def on_image(self, msg: Image | CompressedImage) -> None:
        self._image = msg  # decoded only when a backend asks for it

    def latest_image(self) -> np.ndarray | None:
        return rgb_or_none(self._image)

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
        self.out.new_instruction()
        self.server.start(goal_handle)  # cancelled before it started: the scope says so
        self.health.increment("instructions")
        self.get_logger().info(f"instruction: {instruction.text!r}")
        outcome = run_instruction(
            self.executor_, instruction.text, instruction.memoryless, lambda: self.out.plan
        )
        if outcome.crash is not None:
            self.health.reject("internal error")
            self.get_logger().error(f"{instruction.text!r} crashed the executor: {outcome.crash}")
        elif outcome.state == "canceled":
            self.health.increment("canceled")
        if outcome.final is not None:
            self.out.final(instruction.text, *outcome.final)
        text = f"{instruction.text!r}: {outcome.state} {outcome.reason}".rstrip()
        if outcome.state in ("succeeded", "answered"):
            self.get_logger().info(text)
        else:
            self.get_logger().warning(text)
        self.health.set_value("skills", self.skills.counters["skills"])
        for key, value in health_counters(self.executor_.counters).items():
            self.health.set_value(key, value)
        return outcome.state, outcome.reason, outcome.plan

    def _crashed(self, text: str) -> None:
        self.inputs.reject("internal error", text)

    def _reject(self, reason: str, text: str, instruction: str) -> None:
        self.inputs.reject(reason, text)  # counted; logged at most once a second per reason
        self.out.rejected(instruction, reason, text)

    def shutdown(self) -> None:
        """Stop the running instruction (its skill is cancelled on the policy)."""
        self.scope.cancel()


def main(args: list[str] | None = None) -> None:
    spin_node(PlannerNode, args, threads=EXECUTOR_THREADS)


if __name__ == "__main__":
    main()
