"""A ``MultiThreadedExecutor`` that does not spin hot while a callback waits
for a pool thread.

rclpy's (9.x) executor loop yields every ready task that is "not executing
yet" on each pass without waiting, and a callback handed to the thread pool is
"not executing" until a pool thread picks it up. Under load (or with the GIL
busy) that window is long, and the loop re-yields and re-submits the same
callback thousands of times a second, holding the GIL: measured 1,500 to 2,500
extra passes a second with the policy node's 50 Hz joint states and timer,
and a test thread in the same process starved for up to 0.8 s.
:class:`PatientMultiThreadedExecutor` waits (at most ``START_WAIT_S``) until
the callback it submitted has started before it looks for more work. A
callback that ends after ``shutdown()`` (its guard condition destroyed) is not
an error.
"""

from __future__ import annotations

import threading
from typing import Any

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.exceptions import InvalidHandle
from rclpy.executors import (
    ConditionReachedException,
    ExternalShutdownException,
    MultiThreadedExecutor,
    ShutdownException,
    TimeoutException,
)

#: Longest the loop waits for a pool thread to start a callback [s] (all pool
#: threads busy: the loop goes on, as rclpy's does).
START_WAIT_S = 0.05


class PatientMultiThreadedExecutor(MultiThreadedExecutor):
    """``MultiThreadedExecutor`` whose loop waits until each submitted callback
    has started (see the module doc)."""

    def _spin_once_impl(self, timeout_sec: Any = None, wait_condition: Any = lambda: False) -> None:
        try:
            handler, _entity, _node = self.wait_for_ready_callbacks(
                timeout_sec, None, wait_condition
            )
        except (
            ExternalShutdownException,
            ShutdownException,
            TimeoutException,
            ConditionReachedException,
        ):
            return
        started = threading.Event()

        def run() -> None:
            started.set()
            handler()

        self._executor.submit(run)
        self._futures.append(handler)
        started.wait(START_WAIT_S)
        for future in self._futures[:]:
            if future.done():
                self._futures.remove(future)
                try:
                    future.result()  # raise any exceptions
                except InvalidHandle:
                    # A callback that ends after shutdown() destroyed the guard
                    # condition it signals: nothing is left to wake.
                    if not self._is_shutdown:
                        raise


def own_group() -> MutuallyExclusiveCallbackGroup:
    """A callback group for one callback alone (one group for all would make the
    MultiThreadedExecutor spin hot on every collision)."""
    return MutuallyExclusiveCallbackGroup()


__all__ = ["START_WAIT_S", "PatientMultiThreadedExecutor", "own_group"]
