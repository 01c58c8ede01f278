"""A writer thread in front of :class:`BagWriter` (ROS-free).

Receivers (DDS callbacks) hand messages to :meth:`QueuedWriter.put`, which
only appends to a queue bounded by payload bytes; a thread writes them to
disk. A slow disk fills the queue and drops (counted) instead of stalling the
receiver; a failing write is counted and reported, never raised into it.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from robot_memory.bag.writer import BagWriter

MAX_QUEUE_BYTES = 512 * 1024 * 1024


class QueuedWriter:
    def __init__(
        self,
        writer: BagWriter,
        max_queue_bytes: int = MAX_QUEUE_BYTES,
        on_error: Callable[[str, Exception], None] | None = None,
    ) -> None:
        self.writer = writer
        self._max = max_queue_bytes
        self._on_error = on_error
        self._items: deque[tuple[str, bytes, int]] = deque()
        self._cond = threading.Condition()
        self._nbytes = 0
        self._closed = False
        self.dropped = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._run, name="bag-writer", daemon=True)
        self._thread.start()

    @property
    def queued_bytes(self) -> int:
        return self._nbytes

    def put(self, topic: str, rawdata: bytes, timestamp_ns: int) -> bool:
        """Queue one message; False (and counted in ``dropped``) if the queue
        is full or stopped. One message larger than the budget still fits an
        empty queue."""
        size = len(rawdata)
        with self._cond:
            if self._closed or (self._items and self._nbytes + size > self._max):
                self.dropped += 1
                return False
            self._items.append((topic, rawdata, timestamp_ns))
            self._nbytes += size
            self._cond.notify()
            return True

    def stop(self, timeout_s: float | None = 30.0) -> bool:
        """Refuse new messages, write what is queued, join the thread.
        Returns False if the thread did not finish within ``timeout_s``."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def _next(self) -> tuple[str, bytes, int] | None:
        with self._cond:
            self._cond.wait_for(lambda: self._items or self._closed)
            if not self._items:
                return None  # closed and drained
            item = self._items.popleft()
            self._nbytes -= len(item[1])
            return item

    def _run(self) -> None:
        while (item := self._next()) is not None:
            topic, rawdata, timestamp_ns = item
            try:
                self.writer.write(topic, rawdata, timestamp_ns)
            except Exception as err:  # noqa: BLE001 - counted and reported, never fatal
                self.failed += 1
                if self._on_error is not None:
                    self._on_error(topic, err)
