"""The one ``main()`` of the nodes that just spin: init, spin, clean shutdown."""

from __future__ import annotations

from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node


def spin_node(make_node: Callable[[], Node], args: list[str] | None = None) -> None:
    """Run ``make_node()`` until Ctrl-C / SIGTERM, then call its ``shutdown()``
    (if it has one: worker threads, files), destroy it and shut rclpy down."""
    rclpy.init(args=args)
    node = make_node()
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        stop = getattr(node, "shutdown", None)
        if callable(stop):
            stop()
        node.destroy_node()
        rclpy.try_shutdown()
