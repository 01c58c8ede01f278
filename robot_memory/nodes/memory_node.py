"""Memory node: the 3D scene graph over ROS topics.

Thin adapter over :class:`robot_memory.memory.SceneMemory`:

* in: ``/perception/observations`` (robot_memory_interfaces/msg/ObservationFrame);
* services: ``/memory/query`` (robot_memory_interfaces/srv/QueryMemory, answered
  by :func:`robot_memory.memory.queries.answer`), ``/memory/reset``
  (std_srvs/srv/Trigger: forget everything, the store too; the planner's
  memoryless ablation; only with the parameter ``allow_remote_reset``, else
  ``success`` false with the message ``remote reset refused`` and counted);
* out: ``/memory/scene_graph`` (robot_memory_interfaces/msg/SceneGraph,
  reliable + transient local, with a sequence number), ``/memory/markers``
  (MarkerArray for RViz/Foxglove), ``/diagnostics``.

Every update is committed to SQLite (``store_path``) before the new graph is
published, so a node killed with SIGKILL restarts with the same ids and loses
nothing it had published. Malformed input is logged with the reason, counted
and dropped; the memory is untouched by it (an update that fails halfway rolls
back). Every subscription goes through :class:`InputBoundary`; every service
callback turns any exception into a counted error answer: no input ends the node.
"""

from __future__ import annotations

import time
from pathlib import Path

from rclpy.node import Node
from robot_memory_interfaces.msg import ObservationFrame, SceneGraph
from robot_memory_interfaces.srv import QueryMemory
from std_srvs.srv import Trigger
from visualization_msgs.msg import MarkerArray

from robot_memory.bringup.node_parameters import MEMORY_PARAMETERS
from robot_memory.cell import load_cell
from robot_memory.health.counters import HealthCounters
from robot_memory.memory import MemoryInputError, SceneMemory, TextEmbedder
from robot_memory.nodes.conversions import to_time
from robot_memory.nodes.diagnostics import DiagnosticsPublisher
from robot_memory.nodes.input_boundary import InputBoundary
from robot_memory.nodes.memory_conversions import observation_frame_from_msg, scene_graph_to_msg
from robot_memory.nodes.memory_markers import scene_markers
from robot_memory.nodes.node_main import spin_node
from robot_memory.nodes.qos import LATCHED
from robot_memory.nodes.query_conversions import answer_to_response, query_from_request
from robot_memory.perception.observations import FrameError, frame_from_payload
from robot_memory.schemas import PayloadError

REFUSED = "remote reset refused"


class MemoryNode(Node):
    def __init__(self) -> None:
        super().__init__("memory")
        for name, default in MEMORY_PARAMETERS.items():
            self.declare_parameter(name, default)
        p = self.get_parameter
        store = str(p("store_path").value)
        store_path = Path(store).expanduser() if store else None
        if store_path is not None:
            store_path.parent.mkdir(parents=True, exist_ok=True)
        self.embedder = TextEmbedder()
        self.memory = SceneMemory(
            cell=load_cell(str(p("cell_file").value) or None),
            store_path=store_path,
            embedder=self.embedder,
        )
        if bool(p("reset_on_start").value):
            self.memory.reset()
        self.frame_id = str(p("world_frame").value)
        self.allow_remote_reset = bool(p("allow_remote_reset").value)
        self.health = HealthCounters("memory")
        self.inputs = InputBoundary(self, self.health)
        self.graph_pub = self.create_publisher(SceneGraph, "/memory/scene_graph", LATCHED)
        self.marker_pub = self.create_publisher(MarkerArray, "/memory/markers", LATCHED)
        self.inputs.subscribe(
            ObservationFrame, "/perception/observations", self.on_observations, 50
        )
        self._queries = 0
        self.create_service(QueryMemory, "/memory/query", self.on_query)
        self.create_service(Trigger, "/memory/reset", self.on_reset)
        self.diagnostics = DiagnosticsPublisher(self, self.health)
        self._dirty = True  # publish the (possibly restored) graph at once
        period = float(p("publish_period_s").value)
        self.create_timer(max(period, 0.01), self.publish_graph)
        self.health.set_value("embedder", "not loaded")  # loaded by the first text query
        if bool(p("preload_embedder").value):
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

    def on_query(
        self, request: QueryMemory.Request, response: QueryMemory.Response
    ) -> QueryMemory.Response:
        """Answer one query; anything that goes wrong is an answer with ``ok``
        false and the reason, counted, never an exception out of here."""
        t0 = time.monotonic()
        self._queries += 1
        kind = str(request.kind)[:40]
        try:
            query = query_from_request(request, f"service-{self._queries}")
            answer = self.memory.answer(query)
            if not answer.ok:
                self.health.increment("queries_not_ok")
            result = answer_to_response(answer)
        except PayloadError as err:
            self._reject(err.reason, f"/memory/query rejected: {err}")
            return self._error(response, f"{err.reason}: {err.detail}")
        except Exception as exc:  # noqa: BLE001 - counted; the caller still gets an answer
            return self._error(response, self.inputs.failed("/memory/query", exc))
        self.health.latency(f"query.{kind}", time.monotonic() - t0)
        return result

    def _error(self, response: QueryMemory.Response, error: str) -> QueryMemory.Response:
        response.ok, response.error = False, error
        response.stamp = to_time(self.memory.stamp)
        return response

    def on_reset(self, _request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        if not self.allow_remote_reset:
            self._reject(REFUSED, "/memory/reset refused: this node's allow_remote_reset is false")
            response.success, response.message = False, REFUSED
            return response
        try:
            self.memory.reset()
        except Exception as exc:  # noqa: BLE001 - counted; the caller is told
            response.success = False
            response.message = f"reset failed: {self.inputs.failed('/memory/reset', exc)}"
            return response
        self._dirty = True
        self.health.increment("resets")
        self.get_logger().info("memory reset: everything forgotten")
        response.success, response.message = True, "memory reset: everything forgotten"
        return response

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
