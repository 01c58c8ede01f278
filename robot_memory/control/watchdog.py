"""When to stop the arm because an input stalled (ROS-free).

While the arm executes chunks, two streams must keep coming: the policy's
chunks and the frames of the watched cameras. Each is expected within the
longest interval it has shown lately (its last 8 intervals), and never sooner
than a configured interval (the policy's chunk period, the cameras' frame
period): a stream whose timing jitters under load is not a stalled one, and a
producer that sends more often (the look skill's resends) is not held to its
own pace. A stream is *late* ``grace_s`` after that. The chunk stream is also
late ``grace_s`` after the last accepted chunk ran out (it ends at rest). The
first late stream is the reason to hold. A chunk stream that pauses between
skills is a stall like any other: the arm is held until the next accepted chunk.
"""

from __future__ import annotations

from collections import deque

import numpy as np

_HISTORY = 8
#: Measured intervals are believed up to this multiple of the configured one.
_MAX_FACTOR = 4.0


class _Stream:
    def __init__(self, guess_s: float) -> None:
        self.guess_s = guess_s
        self.last: float | None = None
        self.intervals: deque[float] = deque(maxlen=_HISTORY)

    def arrive(self, now: float, measure: bool = True) -> None:
        if measure and self.last is not None and now > self.last:
            self.intervals.append(now - self.last)
        self.last = now

    @property
    def expected_s(self) -> float:
        measured = float(np.max(self.intervals)) if self.intervals else 0.0
        return float(np.clip(measured, self.guess_s, _MAX_FACTOR * self.guess_s))


class Watchdog:
    def __init__(self, grace_s: float, chunk_interval_s: float, frame_interval_s: float) -> None:
        self.grace_s = grace_s
        self.frame_interval_s = frame_interval_s
        self.chunks = _Stream(chunk_interval_s)
        self.cameras: dict[str, _Stream] = {}
        self.active = False  # the arm is executing chunks
        self.plan_end = np.inf  # when the last accepted chunk runs out

    def chunk_accepted(self, now: float, end: float) -> None:
        self.chunks.arrive(now, measure=self.active)
        self.active = True
        self.plan_end = end

    def frame(self, camera: str, now: float) -> None:
        self.cameras.setdefault(camera, _Stream(self.frame_interval_s)).arrive(now)

    def stop(self) -> None:
        """The arm was held: nothing is due until the next accepted chunk."""
        self.active = False

    def due(self, now: float) -> str | None:
        """Why the arm must hold now, or None."""
        if not self.active:
            return None
        late = self._late("chunk", self.chunks, now)
        if late is None and now > self.plan_end + self.grace_s and self.chunks.last is not None:
            late = (
                f"no chunk for {now - self.chunks.last:.2f} s "
                f"(the last one ended {now - self.plan_end:.2f} s ago)"
            )
        for name, stream in sorted(self.cameras.items()):
            late = late or self._late(f"camera {name} frame", stream, now)
        return late

    def _late(self, what: str, stream: _Stream, now: float) -> str | None:
        if stream.last is None:
            return None
        silent = now - stream.last
        if silent <= stream.expected_s + self.grace_s:
            return None
        return f"no {what} for {silent:.2f} s (expected every {stream.expected_s:.2f} s)"
