"""The planner's memory port over real DDS, in this process: a query that a
dying memory swallowed is resent and answered by the memory that replaced it;
memory's first scene graph is waited for, not taken as an empty memory.

A request sent while memory restarts (the old server gone, the new one not yet
matched) is lost without an error; the port resends the query (a read) while it
is unanswered, and the first answer wins."""

from __future__ import annotations

import threading

import pytest
import rclpy
from planner_test_doubles import cell_places
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.task import Future
from robot_memory_interfaces.msg import SceneGraph
from robot_memory_interfaces.srv import QueryMemory

from robot_memory.nodes.memory_conversions import scene_graph_from_msg, scene_graph_to_msg
from robot_memory.nodes.planner_ports import CancelScope, ServiceMemoryPort
from robot_memory.nodes.qos import LATCHED
from robot_memory.schemas import MemoryQuery, SceneGraphMsg
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


def _subscribed_port(planner: Node, timeout_s: float) -> ServiceMemoryPort:
    """The port as the planner node feeds it: every /memory/scene_graph, decoded."""
    port = planner_port(planner, timeout_s)
    planner.create_subscription(
        SceneGraph, "/memory/scene_graph", lambda m: port.on_scene_graph(scene_graph_from_msg(m)),
        LATCHED,
    )  # fmt: skip
    return port


def test_the_first_scene_graph_is_waited_for_not_taken_as_an_empty_memory(ros) -> None:
    """An instruction that arrives while memory (re)starts, or before discovery
    has matched it on a loaded host, waits for memory's first graph: planned
    against no graph it would be refused as "nothing called 'the bin'"."""
    port = _subscribed_port(ros("planner"), 30.0 * TIMEOUT_SCALE)
    asking = threading.Event()
    got: list[SceneGraphMsg | None] = []

    def ask() -> None:
        asking.set()
        got.append(port.scene_graph())

    asker = threading.Thread(target=ask)
    asker.start()
    asking.wait(10)
    memory = ros("memory")
    graph = SceneGraphMsg(seq=7, stamp=3.0, objects=[], places=cell_places(), relations=[])
    memory.create_publisher(SceneGraph, "/memory/scene_graph", LATCHED).publish(
        scene_graph_to_msg(graph)
    )
    asker.join(60 * TIMEOUT_SCALE)

    assert got and got[0] is not None, "no graph: the port gave up"
    assert got[0].seq == 7 and "bin" in {p.id for p in got[0].places}
    assert port.counters["graph_timeouts"] == 0


def test_no_scene_graph_after_the_timeout_is_none_and_counted(ros) -> None:
    port = _subscribed_port(ros("planner"), 1.0)
    assert port.scene_graph() is None
    assert port.counters["graph_timeouts"] == 1
