"""``robot-memory say`` resends an unanswered goal request with the same goal
id: a request sent before the planner's server has matched this client is lost
without an error; the resend reaches it, and the goal runs once however many
copies arrive (real rclpy action client and server over DDS)."""

from __future__ import annotations

import threading
import time

import pytest
import rclpy
from rclpy.action import ActionServer
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from robot_memory_interfaces.action import ExecuteInstruction
from tqdm import tqdm

from robot_memory.apps import say
from ros_helpers import TIMEOUT_SCALE

pytestmark = pytest.mark.ros


class PlannerServerTestDouble:
    """An ExecuteInstruction server that answers every goal at once and counts
    the goals it executes (the planner's behaviour at the action level)."""

    def __init__(self, node: Node) -> None:
        self.executed: list[str] = []
        self.server = ActionServer(
            node, ExecuteInstruction, say.ACTION, execute_callback=self.execute,
            callback_group=ReentrantCallbackGroup(),
        )  # fmt: skip

    def execute(self, goal_handle):
        self.executed.append(goal_handle.request.text)
        goal_handle.succeed()
        return ExecuteInstruction.Result(state="answered", reason="")


@pytest.fixture
def client(monkeypatch):
    monkeypatch.setattr(say, "RESEND_S", 0.2)
    rclpy.init()
    node = say.InstructionClient()
    yield node
    node.destroy_node()
    rclpy.shutdown()


def serve_after(delay_s: float, ready: threading.Event, stop: threading.Event) -> list:
    out: list = []

    def run() -> None:
        time.sleep(delay_s)  # the client has sent its first request by now: it is lost
        context = rclpy.Context()
        rclpy.init(context=context)
        node = Node("planner_double", context=context)
        out.append(PlannerServerTestDouble(node))
        executor = MultiThreadedExecutor(num_threads=2, context=context)
        executor.add_node(node)
        ready.set()
        while not stop.is_set():
            executor.spin_once(timeout_sec=0.05)
        node.destroy_node()
        rclpy.shutdown(context=context)

    threading.Thread(target=run, daemon=True).start()
    return out


def test_a_goal_sent_before_the_server_matched_is_resent_and_runs_once(client) -> None:
    ready, stop = threading.Event(), threading.Event()
    servers = serve_after(1.0, ready, stop)
    try:
        with tqdm(total=100, disable=True) as bar:
            goal = ExecuteInstruction.Goal(text="where is the red cube")
            deadline = time.monotonic() + 30 * TIMEOUT_SCALE
            handle = say.send_goal(client, goal, say.Progress(bar), deadline)
        assert ready.is_set()
        assert handle is not None and handle.accepted
        result = handle.get_result_async()
        assert client.spin_until(result.done, time.monotonic() + 30 * TIMEOUT_SCALE)
        assert result.result().result.state == "answered"
        # more copies may have reached it; the goal id makes them one goal
        client.spin_until(lambda: False, time.monotonic() + 0.5)
        assert servers[0].executed == ["where is the red cube"]
    finally:
        stop.set()
