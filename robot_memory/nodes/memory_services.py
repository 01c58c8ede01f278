"""The memory node's services: ``/memory/query``
(robot_memory_interfaces/srv/QueryMemory, answered by
:meth:`robot_memory.memory.SceneMemory.answer`) and ``/memory/reset``
(std_srvs/srv/Trigger: forget everything, the store too; the planner's
memoryless ablation; only with ``allow_remote_reset``, else ``success`` false,
``remote reset refused``, counted). Every callback turns any exception into a
counted error answer: a request never ends the node.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from robot_memory_interfaces.srv import QueryMemory
from std_srvs.srv import Trigger

from robot_memory.memory import SceneMemory
from robot_memory.nodes.conversions import to_time
from robot_memory.nodes.input_boundary import InputBoundary
from robot_memory.nodes.query_conversions import answer_to_response, query_from_request
from robot_memory.schemas import PayloadError

REFUSED = "remote reset refused"


class MemoryServices:
    def __init__(
        self,
        inputs: InputBoundary,
        memory: SceneMemory,
        allow_remote_reset: bool,
        on_reset: Callable[[], None],
    ) -> None:
        self.inputs, self.memory, self.health = inputs, memory, inputs.health
        self.allow_remote_reset = allow_remote_reset
        self.on_reset = on_reset
        self._queries = 0
        inputs.node.create_service(QueryMemory, "/memory/query", self.query)
        inputs.node.create_service(Trigger, "/memory/reset", self.reset)

    def query(
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
            self.inputs.reject(err.reason, f"/memory/query rejected: {err}")
            return self._error(response, f"{err.reason}: {err.detail}")
        except Exception as exc:  # noqa: BLE001 - counted; the caller still gets an answer
            return self._error(response, self.inputs.failed("/memory/query", exc))
        self.health.latency(f"query.{kind}", time.monotonic() - t0)
        return result

    def _error(self, response: QueryMemory.Response, error: str) -> QueryMemory.Response:
        response.ok, response.error = False, error
        response.stamp = to_time(self.memory.stamp)
        return response

    def reset(self, _request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        if not self.allow_remote_reset:
            text = "/memory/reset refused: this node's allow_remote_reset is false"
            self.inputs.reject(REFUSED, text)
            response.success, response.message = False, REFUSED
            return response
        try:
            self.memory.reset()
        except Exception as exc:  # noqa: BLE001 - counted; the caller is told
            response.success = False
            response.message = f"reset failed: {self.inputs.failed('/memory/reset', exc)}"
            return response
        self.on_reset()
        self.health.increment("resets")
        self.inputs.node.get_logger().info("memory reset: everything forgotten")
        response.success, response.message = True, "memory reset: everything forgotten"
        return response
