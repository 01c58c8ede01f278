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
    except RuntimeError:
        # rclpy can fail to take a message that arrives while Ctrl-C tears the
        # context down; that is the shutdown, not an error. Anything else is.
        if node.context.ok():
            raise
    finally:
        stop = getattr(node, "shutdown", None)
        if callable(stop):
            stop()
        node.destroy_node()
        rclpy.try_shutdown()
