"""Which camera frames perception processes, at a fixed rate per camera,
staggered between cameras (ROS-free).

Two 30 Hz cameras give 60 frames a second; the perception + memory path on
two cores does about 25-40 (docs/memory.md, "Perception at sensor rate").
Dropping whatever arrives while the worker is busy keeps the work on fresh
data, but when both cameras' frames come at the same instant (synchronised
cameras, the sim) the second one waits a whole frame's work: its latency is
twice the processing time. The gate instead admits each camera's frames at
``rate_hz`` (a frame stride: 30 Hz cameras at 10 Hz keep every third frame),
phase-locked and staggered by ``1 / (rate_hz * cameras)``, so the frames the
worker gets are spread evenly over the period and seldom wait for each other.

A frame is admitted when its stamp reaches the camera's next slot, within a
tolerance of a fifth of the period (camera clocks jitter). Stamps that jump
back (a bag looping, the sim reset) restart the schedule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

#: A frame this much of a period early still takes its slot (stamp jitter).
SLOT_TOLERANCE = 0.2


class FrameGate:
    """``admit(camera, stamp)``: whether to process this frame. ``rate_hz`` 0
    admits every frame (no stride)."""

    def __init__(self, cameras: Sequence[str], rate_hz: float) -> None:
        if not math.isfinite(rate_hz) or rate_hz < 0:
            raise ValueError(f"rate_hz must be >= 0 (0: every frame), got {rate_hz}")
        self.rate_hz = float(rate_hz)
        self.period = 1.0 / rate_hz if rate_hz > 0 else 0.0
        cams = list(dict.fromkeys(cameras))
        self._phase = {cam: i * self.period / max(len(cams), 1) for i, cam in enumerate(cams)}
        self._next_due: dict[str, float] = {}
        self._base: float | None = None
        self.admitted = 0
        self.skipped = 0

    def admit(self, camera: str, stamp: float) -> bool:
        if self.period == 0.0 or not math.isfinite(stamp):
            self.admitted += 1
            return True
        tolerance = SLOT_TOLERANCE * self.period
        due = self._next_due.get(camera)
        if due is None or stamp < due - 2.0 * self.period:  # first frame, or time went back
            if self._base is None or stamp < self._base or due is not None:
                self._base = stamp
            due = self._base + self._phase.get(camera, 0.0)
            due -= self.period * max(0, math.floor((due - stamp + tolerance) / self.period))
        if stamp < due - tolerance:
            self.skipped += 1
            self._next_due[camera] = due
            return False
        # the first slot after this frame, phase kept (several if frames were missing)
        due += self.period * (math.floor((stamp + tolerance - due) / self.period) + 1)
        self._next_due[camera] = due
        self.admitted += 1
        return True


__all__ = ["SLOT_TOLERANCE", "FrameGate"]
