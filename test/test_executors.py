"""PatientMultiThreadedExecutor (it overrides rclpy's private ``_spin_once_impl``;
this guards it against rclpy changes): a 50 Hz timer keeps ticking while a
callback in another group blocks and another thread keeps the GIL busy, with
each callback yielded about once per run (counted, not timed). (The hot loop it removes showed only
with the policy node's real load: 1,500-2,500 passes/s, measured there.)"""

from __future__ import annotations

import threading
import time

import pytest
import rclpy
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup

from robot_memory.nodes.executors import PatientMultiThreadedExecutor
from ros_helpers import wait_until

pytestmark = pytest.mark.ros


def python_work(stop: threading.Event) -> None:
    while not stop.is_set():
        sum(i * i for i in range(2000))


def test_each_callback_is_yielded_about_once_and_a_blocked_one_does_not_stall_the_rest():
    rclpy.init()
    try:
        node = rclpy.create_node("patient_executor_test")
        ticks, passes, blocker_calls = [], [0], [0]
        blocked, release = threading.Event(), threading.Event()

        def block() -> None:  # a callback that blocks, as an action's execute does
            blocker_calls[0] += 1
            blocked.set()
            release.wait(60.0)

        node.create_timer(0.02, lambda: ticks.append(time.monotonic()))
        node.create_timer(0.01, block, callback_group=MutuallyExclusiveCallbackGroup())
        executor = PatientMultiThreadedExecutor(num_threads=3)
        executor.add_node(node)
        original = executor._wait_for_ready_callbacks

        def counted(*args, **kwargs):
            for item in original(*args, **kwargs):
                passes[0] += 1
                yield item

        executor._wait_for_ready_callbacks = counted
        spinner = threading.Thread(target=executor.spin, daemon=True)
        busy = threading.Thread(target=python_work, args=(release,), daemon=True)
        spinner.start()
        busy.start()  # the GIL taken, as by inference: pool threads start late
        try:
            wait_until(blocked.is_set, 30, what="the blocking callback to start")
            before = len(ticks)
            # the timer runs on while the other callback blocks
            wait_until(lambda: len(ticks) >= before + 20, 30, what="20 ticks while blocked")
            assert not release.is_set() and blocker_calls[0] == 1
        finally:
            release.set()
            executor.shutdown(timeout_sec=10.0)
            spinner.join(timeout=10.0)
            node.destroy_node()
    finally:
        rclpy.shutdown()
    # each callback yielded about once per run (the stock executor re-yields under the
    # policy node's real load; this light load does not show it)
    assert passes[0] <= 3 * (len(ticks) + blocker_calls[0]), (passes, len(ticks))
