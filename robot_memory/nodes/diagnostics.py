"""Publish a node's :class:`HealthCounters` on /diagnostics once a second."""

from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node

from robot_memory.health.counters import HealthCounters

DIAGNOSTICS_TOPIC = "/diagnostics"


class DiagnosticsPublisher:
    def __init__(self, node: Node, counters: HealthCounters, period_s: float = 1.0) -> None:
        self._node = node
        self._counters = counters
        self._pub = node.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10)
        self._timer = node.create_timer(period_s, self.publish)

    def publish(self) -> None:
        now = self._node.get_clock().now()
        snap = self._counters.snapshot(now.nanoseconds * 1e-9)
        status = DiagnosticStatus(
            level=bytes([snap.level]),
            name=f"{self._node.get_name()}: {snap.name}",
            message=snap.message,
            hardware_id=self._node.get_fully_qualified_name(),
            values=[KeyValue(key=k, value=v) for k, v in snap.values.items()],
        )
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = now.to_msg()
        self._pub.publish(msg)
