"""Helpers for tests that talk to real nodes over DDS."""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy

#: A probe reader that keeps every message of a stream while the test thread
#: is busy (keep-last 10 lost joint states and /tf when the probe lagged under load).
DEEP = QoSProfile(depth=5000, reliability=ReliabilityPolicy.RELIABLE)

#: Every wait's timeout is a hang guard, not a speed requirement (a wait ends on
#: its event): scaled so that a machine loaded several times over still passes.
#: ``ROBOT_MEMORY_TEST_TIMEOUT_SCALE=1`` gives the bare values.
TIMEOUT_SCALE = float(os.environ.get("ROBOT_MEMORY_TEST_TIMEOUT_SCALE", "3"))


class Probe(Node):
    """A test node that keeps every message it receives, per topic."""

    def __init__(self, name: str = "test_probe") -> None:
        super().__init__(name)
        self.messages: dict[str, list[Any]] = defaultdict(list)

    def listen(self, msg_type: type, topic: str, qos: QoSProfile | int = 10) -> None:
        self.create_subscription(msg_type, topic, lambda m: self.messages[topic].append(m), qos)

    def last(self, topic: str) -> Any:
        return self.messages[topic][-1] if self.messages[topic] else None


def _poll(
    predicate: Callable[[], bool],
    timeout_s: float,
    check: Callable[[], None] | None,
    what: str | Callable[[], str],
    step: Callable[[], None],
) -> None:
    """``what`` may be a callable, evaluated when the wait times out (so the
    message tells the state at the deadline, not at the start)."""
    limit = timeout_s * TIMEOUT_SCALE
    deadline = time.monotonic() + limit
    while not predicate():
        if check is not None:
            check()
        if time.monotonic() > deadline:
            told = what() if callable(what) else what
            raise AssertionError(f"timed out after {limit:.0f} s waiting for {told}")
        step()


def spin_until(
    node: Node,
    predicate: Callable[[], bool],
    timeout_s: float,
    check: Callable[[], None] | None = None,
    what: str | Callable[[], str] = "condition",
) -> None:
    """Spin ``node`` until ``predicate()`` holds; fail the test after ``timeout_s``.

    ``check`` runs every iteration (e.g. ``launcher.check`` so a dead node
    fails the test at once with its output)."""
    _poll(predicate, timeout_s, check, what, lambda: rclpy.spin_once(node, timeout_sec=0.05))


def spin_for(node: Node, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)


class BackgroundSpin:
    """Spins ``node`` on a thread of its own (for tests whose probe holds
    service or action clients: waiting on their futures with ``spin_once``
    from the test thread can starve the probe's subscriptions)."""

    def __init__(self, node: Node) -> None:
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.executor.shutdown(timeout_sec=2.0)
        self.thread.join(timeout=2.0)


def wait_until(
    predicate: Callable[[], bool],
    timeout_s: float,
    check: Callable[[], None] | None = None,
    what: str | Callable[[], str] = "condition",
) -> None:
    """Poll ``predicate`` (the nodes spin on their own threads) until it holds;
    fail the test after ``timeout_s``. ``check`` runs every poll."""
    _poll(predicate, timeout_s, check, what, lambda: time.sleep(0.02))


def rejected(probe: Probe, node: str) -> dict[str, int]:
    """Latest rejected-input counts that ``node`` published on /diagnostics."""
    counts: dict[str, int] = {}
    for msg in probe.messages["/diagnostics"]:
        for status in msg.status:
            if status.name.startswith(f"{node}:"):
                counts = {
                    kv.key.removeprefix("rejected."): int(kv.value)
                    for kv in status.values
                    if kv.key.startswith("rejected.")
                }
    return counts


def health_value(probe: Probe, node: str, key: str) -> str | None:
    """The latest value of ``key`` that ``node`` published on /diagnostics (None: none yet)."""
    value = None
    for msg in probe.messages["/diagnostics"]:
        for status in msg.status:
            if status.name.startswith(f"{node}:"):
                value = next((kv.value for kv in status.values if kv.key == key), value)
    return value
