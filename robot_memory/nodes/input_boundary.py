"""One parsing boundary per node: nothing that arrives on a topic ends the node.

Every subscription of a node goes through :meth:`InputBoundary.subscribe` (or a
callback through :meth:`InputBoundary.guard`). The callback still handles the
rejections it knows (a ``PayloadError``'s reason, a refused goal) itself; the
boundary catches **whatever escapes it** (decoding, validation, handling) and

* counts it in the node's :class:`~robot_memory.health.counters.HealthCounters`
  (``rejected.<reason>`` on ``/diagnostics``): an exception with a short
  ``reason`` attribute (``PayloadError``, ``SyncError``, ``GroundingError``,
  ...) under ``<prefix><reason>``; anything else under
  ``"<topic>: internal error (<ExceptionType>)"``;
* logs it, at most once per ``log_period_s`` per reason (with how many were
  not logged since), the traceback of an internal error once per reason;
* returns: the executor goes on with the next message.

Callbacks must leave no half-applied state when they raise: validate first,
then change state (the memory update rolls itself back).

Usage in a node::

    self.health = HealthCounters("memory")
    self.inputs = InputBoundary(self, self.health)
    self.inputs.subscribe(
        ObservationFrame, "/perception/observations", self.on_observations, 50
    )
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from typing import Any

from rclpy.node import Node
from rclpy.qos import QoSProfile
from rclpy.subscription import Subscription

from robot_memory.health.counters import HealthCounters

LOG_PERIOD_S = 1.0


def internal_reason(topic: str, exc: BaseException) -> str:
    """The diagnostics reason of an unexpected exception on ``topic``."""
    return f"{topic}: internal error ({type(exc).__name__})"


class InputBoundary:
    """Guards a node's subscription callbacks (see the module doc).

    ``health``: the node's counters; None makes private ones (helpers such as
    the demo driver that publish no diagnostics)."""

    def __init__(
        self,
        node: Node,
        health: HealthCounters | None = None,
        log_period_s: float = LOG_PERIOD_S,
    ) -> None:
        self.node = node
        self.health = health if health is not None else HealthCounters(node.get_name())
        self.log_period_s = log_period_s
        self._last_log: dict[str, float] = {}
        self._unlogged: dict[str, int] = {}
        self._traced: set[str] = set()

    def subscribe(
        self,
        msg_type: type,
        topic: str,
        callback: Callable[[Any], None],
        qos: QoSProfile | int,
        *,
        prefix: str = "",
        **kwargs: Any,
    ) -> Subscription:
        """``node.create_subscription`` with ``callback`` guarded (``prefix``
        goes before the reason of a typed error, e.g. ``"scene graph "``)."""
        return self.node.create_subscription(
            msg_type, topic, self.guard(topic, callback, prefix=prefix), qos, **kwargs
        )

    def guard(
        self, topic: str, callback: Callable[..., None], *, prefix: str = ""
    ) -> Callable[..., None]:
        """``callback`` that counts and logs any exception instead of raising it."""

        def guarded(*args: Any) -> None:
            try:
                callback(*args)
            except Exception as exc:  # noqa: BLE001 - the point: no input ends the node
                self.failed(topic, exc, prefix=prefix)

        guarded.__name__ = getattr(callback, "__name__", "guarded")
        return guarded

    def failed(self, topic: str, exc: BaseException, *, prefix: str = "") -> str:
        """Count and log ``exc`` raised while handling a message on ``topic``;
        returns the reason it was counted under."""
        reason = getattr(exc, "reason", None)
        if isinstance(reason, str) and reason and len(reason) <= 80:
            reason = f"{prefix}{reason}"
            self.reject(reason, f"{topic}: rejected ({reason}): {str(exc)[:300]}")
            return reason
        reason = internal_reason(topic, exc)
        trace = None
        if reason not in self._traced:
            self._traced.add(reason)
            trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.reject(reason, f"{topic}: message dropped, {type(exc).__name__}: {str(exc)[:300]}")
        if trace is not None:  # once per reason, however throttled the line above is
            self.node.get_logger().error(f"{reason} (logged once):\n{trace[-4000:]}")
        return reason

    def reject(self, reason: str, text: str) -> None:
        """Count ``reason`` and log ``text`` at most once per period per reason."""
        self.health.reject(reason)
        now = time.monotonic()
        last = self._last_log.get(reason)
        if last is not None and now - last < self.log_period_s:
            self._unlogged[reason] = self._unlogged.get(reason, 0) + 1
            return
        self._last_log[reason] = now
        skipped = self._unlogged.pop(reason, 0)
        more = f" (+{skipped} more not logged)" if skipped else ""
        self.node.get_logger().warning(f"{text[:500]}{more}")


__all__ = ["InputBoundary", "internal_reason"]
