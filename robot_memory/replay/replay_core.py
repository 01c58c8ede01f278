"""Replay timing, ROS-free: when each bag message is due, and /clock ticks.

Bag time is each message's recorded (log) timestamp. A replay pass maps bag
time to wall time since the replay started:

* ``rate`` r (1.0 = as recorded, 4.0 = four times faster):
  ``due = pass_offset + (t_bag - t_start) / r``;
* ``fast``: no timing at all; each message is due at once, except that image
  messages are held to at most ``max_image_rate`` per second (a
  :class:`RateCap`). That is what "as fast as consumers keep up" means here:
  DDS gives a publisher no word on whether a best-effort subscriber has drained
  its queue, so the replay caps the image rate at one the transport and a
  typical consumer sustain (Fast DDS with the project's 16 MB shared-memory
  profile carried 240 images/s without loss); a slower consumer drops frames
  from its keep-last-5 queue instead of stalling the replay.

With ``loop``, pass k starts where pass k-1 ended (plus one clock period), and
bag time jumps back to the start: nodes on sim time see time go backwards.

``/clock`` is generated from bag time at ``clock_rate`` Hz (ticks at
``t_start + i / clock_rate`` up to ``t_end``), interleaved with the messages in
bag-time order; the bag's own ``/clock`` messages are dropped then.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

CLOCK_TOPIC = "/clock"


@dataclass(frozen=True)
class ReplayItem:
    """One thing to publish: a bag message, or a /clock tick (``raw`` None)."""

    topic: str
    msgtype: str
    bag_ns: int
    due_s: float | None  # wall seconds after the replay started; None = at once
    pass_index: int
    raw: bytes | None = None

    @property
    def is_clock(self) -> bool:
        return self.raw is None


@dataclass(frozen=True)
class ReplayTiming:
    rate: float = 1.0
    fast: bool = False
    clock_rate: float = 100.0  # Hz of bag time; 0 = replay the bag's own /clock
    loop: bool = False

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError(f"rate must be > 0, got {self.rate}")
        if self.clock_rate < 0:
            raise ValueError(f"clock_rate must be >= 0, got {self.clock_rate}")


class ReplaySchedule:
    """Due times for a bag spanning ``[start_ns, end_ns]`` under ``timing``."""

    def __init__(self, start_ns: int, end_ns: int, timing: ReplayTiming) -> None:
        if end_ns < start_ns:
            raise ValueError(f"bag ends ({end_ns}) before it starts ({start_ns})")
        self.start_ns, self.end_ns, self.timing = start_ns, end_ns, timing

    @property
    def duration_s(self) -> float:
        """Bag time one pass covers [s]."""
        return (self.end_ns - self.start_ns) * 1e-9

    @property
    def gap_s(self) -> float:
        """Bag-time gap between the end of one pass and the start of the next."""
        return 1.0 / self.timing.clock_rate if self.timing.clock_rate else 0.1

    @property
    def pass_wall_s(self) -> float | None:
        """Planned wall time of one pass (None in fast mode)."""
        if self.timing.fast:
            return None
        return (self.duration_s + self.gap_s) / self.timing.rate

    def due_s(self, bag_ns: int, pass_index: int = 0) -> float | None:
        if self.timing.fast:
            return None
        offset = pass_index * (self.duration_s + self.gap_s)
        return (offset + (bag_ns - self.start_ns) * 1e-9) / self.timing.rate

    def clock_ticks(self) -> list[int]:
        """Bag times [ns] of the generated /clock messages in one pass."""
        if not self.timing.clock_rate:
            return []
        period_ns = 1e9 / self.timing.clock_rate
        n = int((self.end_ns - self.start_ns) // period_ns) + 1
        return [self.start_ns + round(i * period_ns) for i in range(n)]

    def items(
        self, messages: Iterable[tuple[str, str, int, bytes]], pass_index: int = 0
    ) -> Iterator[ReplayItem]:
        """Messages (``(topic, msgtype, bag_ns, raw)`` in bag-time order) with
        generated /clock ticks merged in; a tick goes before messages of the
        same bag time, so a consumer's clock is never behind its data."""
        ticks = iter(self.clock_ticks())
        tick = next(ticks, None)
        generate = bool(self.timing.clock_rate)
        for topic, msgtype, bag_ns, raw in messages:
            if generate and topic == CLOCK_TOPIC:
                continue
            while tick is not None and tick <= bag_ns:
                yield self._tick(tick, pass_index)
                tick = next(ticks, None)
            yield ReplayItem(
                topic, msgtype, bag_ns, self.due_s(bag_ns, pass_index), pass_index, raw
            )
        while tick is not None:
            yield self._tick(tick, pass_index)
            tick = next(ticks, None)

    def _tick(self, bag_ns: int, pass_index: int) -> ReplayItem:
        return ReplayItem(
            CLOCK_TOPIC,
            "rosgraph_msgs/msg/Clock",
            bag_ns,
            self.due_s(bag_ns, pass_index),
            pass_index,
        )


class RateCap:
    """At most ``max_rate`` events per second: ``next_due(now)`` is when the
    next one may go (``now`` or later); 0 disables the cap."""

    def __init__(self, max_rate: float) -> None:
        if max_rate < 0:
            raise ValueError(f"max_rate must be >= 0, got {max_rate}")
        self.period = 1.0 / max_rate if max_rate else 0.0
        self._last: float | None = None

    def next_due(self, now: float) -> float:
        due = now if self._last is None else max(now, self._last + self.period)
        self._last = due
        return due


class PauseClock:
    """Wall time that stands still while paused, so a schedule resumes where
    it stopped instead of bursting to catch up."""

    def __init__(self, now: float, paused: bool = False) -> None:
        self._origin = now
        self._paused_at: float | None = now if paused else None

    @property
    def paused(self) -> bool:
        return self._paused_at is not None

    def elapsed(self, now: float) -> float:
        """Replay seconds since the start (pauses excluded)."""
        return (self._paused_at if self._paused_at is not None else now) - self._origin

    def pause(self, now: float) -> None:
        if self._paused_at is None:
            self._paused_at = now

    def resume(self, now: float) -> None:
        if self._paused_at is not None:
            self._origin += now - self._paused_at
            self._paused_at = None
