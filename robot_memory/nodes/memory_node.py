"""Memory node: the 3D scene graph over ROS topics.

Thin adapter over :class:`robot_memory.memory.SceneMemory`. In:
``/perception/observations`` (ObservationFrame), ``/policy/status`` (the
robot's own pick and place, so the events say who moved what). Services: ``/memory/query``
and ``/memory/reset`` (:mod:`robot_memory.nodes.memory_services`). Out:
``/memory/scene_graph`` (SceneGraph, reliable + transient local, with a
sequence number), ``/memory/markers`` (MarkerArray), ``/diagnostics``.

Every update is committed to SQLite (``store_path``) before the new graph is
published, so a node killed with SIGKILL restarts with the same ids. Malformed
input is logged, counted and dropped, the memory untouched by it (an update
that fails halfway rolls back); no input ends the node (:class:`InputBoundary`).
"""

from __future__ import annotations

import time
from pathlib import Path

from rclpy.node import Node
from robot_memory_interfaces.msg import ObservationFrame, PolicyStatus, SceneGraph
from visualization_msgs.msg import MarkerArray

from robot_memory.bringup.node_parameters import MEMORY_PARAMETERS
from robot_memory.cell import load_cell
from robot_memory.health.counters import HealthCounters
from robot_memory.memory import MemoryConfig, MemoryInputError, SceneMemory, TextEmbedder
from robot_memory.memory.events import SkillTracker
from robot_memory.nodes.diagnostics import DiagnosticsPublisher
from robot_memory.nodes.input_boundary import InputBoundary
from robot_memory.nodes.memory_conversions import observation_frame_from_msg, scene_graph_to_msg
from robot_memory.nodes.memory_markers import scene_markers
from robot_memory.nodes.memory_services import MemoryServices
from robot_memory.nodes.node_main import spin_node
from robot_memory.nodes.parameters import declare_parameters
from robot_memory.nodes.qos import LATCHED
from robot_memory.nodes.skill_conversions import policy_status_from_msg
from robot_memory.perception.observations import FrameError, frame_from_payload
from robot_memory.schemas import PayloadError


class MemoryNode(Node):
    def __init__(self) -> None:
        super().__init__("memory")
        p = declare_parameters(self, MEMORY_PARAMETERS)
        store = str(p["store_path"])
        store_path = Path(store).expanduser() if store else None
        if store_path is not None:
            store_path.parent.mkdir(parents=True, exist_ok=True)
        self.embedder = TextEmbedder()
        self.memory = SceneMemory(
            MemoryConfig(active_radius=float(p["active_radius"])),
            cell=load_cell(str(p["cell_file"]) or None),
            store_path=store_path,
            embedder=self.embedder,
        )
        if bool(p["reset_on_start"]):
            self.memory.reset()
        self.frame_id = str(p["world_frame"])
        self.health = HealthCounters("memory")
        self.inputs = InputBoundary(self, self.health)
        self.graph_pub = self.create_publisher(SceneGraph, "/memory/scene_graph", LATCHED)
        self.marker_pub = self.create_publisher(MarkerArray, "/memory/markers", LATCHED)
        self.inputs.subscribe(
            ObservationFrame, "/perception/observations", self.on_observations, 50
        )
        self.skills = SkillTracker()  # the robot's own moves, for the events' causes
        self.inputs.subscribe(PolicyStatus, "/policy/status", self.on_policy_status, LATCHED)
        self.memory_services = MemoryServices(
            self.inputs, self.memory, bool(p["allow_remote_reset"]), self._changed
        )
        self.diagnostics = DiagnosticsPublisher(self, self.health)
        self._dirty = True  # publish the (possibly restored) graph at once
        period = float(p["publish_period_s"])
        self.create_timer(max(period, 0.01), self.publish_graph)
        self.health.set_value("embedder", "not loaded")  # loaded by the first text query
        if bool(p["preload_embedder"]):
            self.health.set_value("embedder", "loading")
            self.embedder.warm_up_in_background(self._embedder_failed, self._embedder_ready)
        restored = len(self.memory.objects(include_absent=True))
        self.get_logger().info(
            f"memory ready: {restored} objects restored from "
            f"{store_path if store_path else 'nowhere (in-memory only)'}"
        )

    # -- inputs -------------------------------------------------------------------
    def on_observations(self, msg: ObservationFrame) -> None:
        t0 = time.monotonic()
        try:
            frame = frame_from_payload(observation_frame_from_msg(msg))
            result = self.memory.update(frame)
        except (PayloadError, MemoryInputError) as err:
            self._reject(err.reason, f"observations rejected: {err}")
            return
        except FrameError as err:
            self._reject("malformed frame", f"observations rejected: {err}")
            return
        for index, reason in result.rejected_observations:
            self._reject(reason, f"{frame.camera} observation {index} dropped: {reason}")
        self._dirty = True
        self.health.latency("update", time.monotonic() - t0)
        self.health.tick("observations", self.get_clock().now().nanoseconds * 1e-9)

    def on_policy_status(self, msg: PolicyStatus) -> None:
        s = policy_status_from_msg(msg)  # PayloadError: counted by the input boundary
        span = self.skills.on_status(s.goal_id, s.state, s.skill, s.object_id, s.target, s.stamp)
        if span is not None:
            self.memory.note_skill(span)
            self.health.increment("robot_skills")

    def _changed(self) -> None:
        self._dirty = True

    def _reject(self, reason: str, text: str) -> None:
        self.inputs.reject(reason, text)  # counted; logged at most once a second per reason

    # -- outputs ------------------------------------------------------------------
    def _embedder_failed(self, exc: Exception) -> None:  # queries will report it too
        self.get_logger().error(f"text embedder failed to load: {exc}")
        self.health.set_value("embedder", "failed")

    def _embedder_ready(self, took_s: float) -> None:
        self.health.set_value("embedder", "ready")
        self.get_logger().info(f"text embedder ready in {took_s:.1f} s")

    def publish_graph(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        graph = self.memory.snapshot()
        self.graph_pub.publish(scene_graph_to_msg(graph, self.frame_id))
        self.marker_pub.publish(scene_markers(graph, self.frame_id))
        for key, value in self.memory.stats.items():  # O(objects): here, not per frame
            self.health.set_value(key, value)

    def shutdown(self) -> None:
        self.memory.close()


def main(args: list[str] | None = None) -> None:
    spin_node(MemoryNode, args)


if __name__ == "__main__":
    main()
