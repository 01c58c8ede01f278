"""The policy node's inference worker: one prediction at a time on a thread of
its own, so the executor threads (joint states, the control tick, the action
server) never wait on the network.

The node decides *when* to predict (:meth:`InferenceWorker.submit`, under its
lock) and what to do with the result: ``done(request, chunk, error)`` is
called with the node's lock held, ``chunk`` None and ``error`` a short
"IK: ...", "policy input: ..." or "inference error: ..." when the prediction
failed. No exception from the runtime ends the worker.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from robot_memory.policy.kinematics import IKError
from robot_memory.policy.runtime import ActionChunk, PolicyInputError, PolicyRuntime
from robot_memory.policy.skill_executor import PredictionRequest

WAIT_SLICE_S = 0.5  # the worker checks for shutdown this often while idle


class InferenceWorker:
    """Runs ``runtime.predict`` for one :class:`PredictionRequest` at a time."""

    def __init__(
        self,
        runtime: PolicyRuntime,
        lock: threading.Condition,
        done: Callable[[PredictionRequest, ActionChunk | None, str], None],
        alive: Callable[[], bool],
    ) -> None:
        self.runtime, self._lock, self._done, self._alive = runtime, lock, done, alive
        self._request: PredictionRequest | None = None
        self._stop = False
        self._thread = threading.Thread(target=self._work, name="policy", daemon=True)
        self._thread.start()

    def submit(self, request: PredictionRequest) -> None:
        """Predict for ``request`` next (call with the node's lock held)."""
        self._request = request
        self._lock.notify()

    def stop(self, timeout_s: float = 1.0) -> None:
        with self._lock:
            self._stop = True
            self._lock.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout_s)

    def _work(self) -> None:
        while True:
            with self._lock:
                while self._request is None and not self._stop:
                    self._lock.wait(WAIT_SLICE_S)
                if self._stop:
                    return
                req, self._request = self._request, None
            chunk, error = None, ""
            try:
                chunk = self.runtime.predict(req.window, req.target)
            except (IKError, PolicyInputError) as exc:
                error = f"{'IK' if isinstance(exc, IKError) else 'policy input'}: {exc}"
            except Exception as exc:  # noqa: BLE001 - the node must outlive one bad chunk
                error = f"inference error: {exc!r}"
            if not self._alive():
                return  # shutting down
            with self._lock:
                self._done(req, chunk, error)


__all__ = ["InferenceWorker"]
