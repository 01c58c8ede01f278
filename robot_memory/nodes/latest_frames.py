"""The newest item per key (a camera's newest complete frame) processed on a
worker thread of its own, so the executor never blocks on the work. An item
that arrives while the previous one of the same key still waits replaces it
(``on_replaced`` counts it): the work runs on the freshest data, never on a
backlog. An exception from ``process`` goes to ``on_error`` and the worker
goes on."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
WAIT_SLICE_S = 0.5  # the worker checks for a stop this often while idle


class LatestFrameWorker(Generic[T]):
    def __init__(
        self,
        process: Callable[[T], None],
        on_error: Callable[[T, Exception], None],
        on_replaced: Callable[[], None],
        name: str = "worker",
    ) -> None:
        self._process, self._on_error, self._on_replaced = process, on_error, on_replaced
        self._pending: dict[str, T] = {}
        self._wake = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def put(self, key: str, item: T) -> None:
        with self._wake:
            if key in self._pending:
                self._on_replaced()
            self._pending[key] = item
            self._wake.notify()

    def stop(self, timeout_s: float = 1.0) -> None:
        with self._wake:
            self._stop = True
            self._wake.notify()
        self._thread.join(timeout=timeout_s)

    def _work(self) -> None:
        while True:
            with self._wake:
                while not self._pending and not self._stop:
                    self._wake.wait(WAIT_SLICE_S)
                if self._stop:
                    return
                item = self._pending.pop(next(iter(self._pending)))
            try:
                self._process(item)
            except Exception as exc:  # noqa: BLE001 - the worker outlives one bad item
                self._on_error(item, exc)


__all__ = ["LatestFrameWorker"]
