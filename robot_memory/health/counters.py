"""Health counters every node reports on /diagnostics (ROS-free).

A node feeds this with what it sees (message arrivals, latencies, rejected
inputs with their reason); the node adapter turns :meth:`HealthCounters.snapshot`
into a diagnostic_msgs/DiagnosticStatus once a second.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass, field

import numpy as np

OK, WARN, ERROR = 0, 1, 2


@dataclass
class HealthSnapshot:
    name: str
    level: int
    message: str
    values: dict[str, str] = field(default_factory=dict)


class HealthCounters:
    """Thread-safe rates, latency percentiles and rejected-input counts."""

    def __init__(self, name: str, window: int = 200) -> None:
        self.name = name
        self._window = window
        self._lock = threading.Lock()
        self._arrivals: dict[str, deque[float]] = {}
        self._latencies: dict[str, deque[float]] = {}
        self._rejected: Counter[str] = Counter()
        self._last_reject = ""
        self._values: dict[str, str] = {}

    def tick(self, stream: str, now_s: float) -> None:
        """Record one event on ``stream`` (a message in or out) at time ``now_s``."""
        with self._lock:
            self._arrivals.setdefault(stream, deque(maxlen=self._window)).append(now_s)

    def latency(self, stream: str, seconds: float) -> None:
        with self._lock:
            self._latencies.setdefault(stream, deque(maxlen=self._window)).append(seconds)

    def reject(self, reason: str) -> None:
        """Count a rejected input. ``reason`` should be short and stable
        (e.g. ``"unknown joint"``) so counts group; details go to the log."""
        with self._lock:
            self._rejected[reason] += 1
            self._last_reject = reason

    def set_value(self, key: str, value: object) -> None:
        with self._lock:
            self._values[key] = str(value)

    def increment(self, key: str, n: int = 1) -> int:
        """Add ``n`` to the integer value ``key`` (e.g. dropped frames); returns it."""
        with self._lock:
            value = int(self._values.get(key, "0")) + n
            self._values[key] = str(value)
            return value

    @property
    def rejected_total(self) -> int:
        with self._lock:
            return sum(self._rejected.values())

    def rejected(self, reason: str) -> int:
        with self._lock:
            return self._rejected[reason]

    def rate(self, stream: str, now_s: float, horizon_s: float = 5.0) -> float:
        with self._lock:
            times = [t for t in self._arrivals.get(stream, ()) if now_s - t <= horizon_s]
        if len(times) < 2:
            return 0.0
        span = times[-1] - times[0]
        return (len(times) - 1) / span if span > 0 else 0.0

    def snapshot(self, now_s: float) -> HealthSnapshot:
        values: dict[str, str] = {}
        streams = list(self._arrivals)
        for stream in streams:
            values[f"{stream}.rate_hz"] = f"{self.rate(stream, now_s):.2f}"
        with self._lock:
            for stream, lat in self._latencies.items():
                arr = np.asarray(lat) * 1e3
                values[f"{stream}.latency_ms_p50"] = f"{np.percentile(arr, 50):.2f}"
                values[f"{stream}.latency_ms_p99"] = f"{np.percentile(arr, 99):.2f}"
            total = sum(self._rejected.values())
            values["rejected_total"] = str(total)
            for reason, count in sorted(self._rejected.items()):
                values[f"rejected.{reason}"] = str(count)
            values.update(self._values)
            last = self._last_reject
        if total:
            return HealthSnapshot(
                self.name, WARN, f"{total} inputs rejected (last: {last})", values
            )
        return HealthSnapshot(self.name, OK, "ok", values)
