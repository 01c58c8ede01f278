"""The planner's memory port over real DDS, in this process: a query that a
dying memory swallowed is resent and answered by the memory that replaced it.

A request sent while memory restarts (the old server gone, the new one not yet
matched) is lost without an error; the port resends the query (a read) while it
is unanswered, and the first answer wins."""

from __future__ import annotations

import threading

import pytest
import rclpy
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.task import Future
from robot_memory_interfaces.srv import QueryMemory

from robot_memory.nodes.planner_ports import CancelScope, ServiceMemoryPort
from robot_memory.schemas import MemoryQuery
from ros_helpers import TIMEOUT_SCALE

pytestmark = pytest.mark.ros


@pytest.fixture
def ros():
    context = rclpy.Context()
    rclpy.init(context=context)
    executor = MultiThreadedExecutor(num_threads=4, context=context)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    nodes: list[Node] = []

    def add(name: str) -> Node:
        node = Node(name, context=context)
        nodes.append(node)
        executor.add_node(node)
        return node

    spinner.start()
    yield add
    executor.shutdown()
    for node in nodes:
        node.destroy_node()
    rclpy.shutdown(context=context)


def planner_port(planner: Node, timeout_s: float) -> ServiceMemoryPort:
    client = planner.create_client(QueryMemory, "/memory/query")
    return ServiceMemoryPort(client, None, lambda: 0.0, CancelScope(), query_timeout_s=timeout_s)


def test_a_query_lost_by_a_dying_memory_is_resent_to_its_replacement(ros) -> None:
    never: Future = Future()  # the dead memory's answer
    swallowed = threading.Event()
    answered: list[str] = []

    async def dead_memory(request, response):
        swallowed.set()
        await never  # never answers: the request is lost with the process
        return response

    def new_memory(request, response):
        answered.append(request.text)
        response.ok = True
        return response

    old = ros("old_memory")
    old.create_service(QueryMemory, "/memory/query", dead_memory)

    def replace_memory() -> None:
        swallowed.wait(30 * TIMEOUT_SCALE)
        ros("new_memory").create_service(QueryMemory, "/memory/query", new_memory)

    threading.Thread(target=replace_memory, daemon=True).start()
    port = planner_port(ros("planner"), 30.0 * TIMEOUT_SCALE)
    answer = port.query(MemoryQuery(id="q1", kind="find", text="red cube"))

    assert swallowed.is_set()
    assert answer.ok, answer.error
    assert answered and answered[0] == "red cube"
    assert port.counters["query_resends"] >= 1
    assert port.counters["query_timeouts"] == 0


def test_a_query_nobody_answers_fails_after_its_timeout_with_a_reason(ros) -> None:
    never: Future = Future()

    async def dead_memory(request, response):
        await never
        return response

    ros("old_memory").create_service(QueryMemory, "/memory/query", dead_memory)
    port = planner_port(ros("planner"), 2.5)
    answer = port.query(MemoryQuery(id="q2", kind="find", text="red cube"))

    assert not answer.ok
    assert answer.error == "timeout: no answer from /memory/query"
    assert port.counters["query_timeouts"] == 1
    assert port.counters["query_resends"] >= 1
