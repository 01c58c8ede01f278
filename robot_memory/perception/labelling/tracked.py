"""Slow labellers made frame-rate safe: ask once per tracked object, off the
perception thread, and answer from a cache.

A *track* is one object as perception sees it over frames: the same colour word
and a centroid within ``track_radius`` of where the track was last seen (the
track follows the object as it moves a little between frames). The first time
a track is seen its crop goes to a worker thread; until the answer arrives,
and whenever the slow model fails, the fallback labeller (the shipped feature
classifier) answers. A failed track is asked again after ``retry_after_s``.
``label`` never blocks on the slow model: the frame rate does not depend on it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from robot_memory.perception.labelling.base import UNKNOWN, Label, Labeller, ObjectCrop

LOG = logging.getLogger(__name__)


class SlowLabelError(RuntimeError):
    """A slow model's answer that cannot be used; ``reason`` is a short counter key."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class TrackingConfig:
    track_radius: float = 0.03  # a crop this close to a track of its colour is that track [m]
    retry_after_s: float = 5.0  # a track whose request failed is asked again after this
    workers: int = 1  # concurrent slow requests
    max_pending: int = 8  # crops waiting beyond this are not queued (asked on a later frame)
    max_tracks: int = 512  # least recently seen tracks are forgotten beyond this

    def __post_init__(self) -> None:
        if not self.track_radius > 0 or self.retry_after_s < 0:
            raise ValueError("track_radius must be > 0 and retry_after_s >= 0")
        for name in ("workers", "max_pending", "max_tracks"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {getattr(self, name)!r}")


@dataclass
class _Track:
    position: np.ndarray
    color: str
    answer: Label | None = None
    pending: bool = False
    failed_at: float = -np.inf


@dataclass
class TrackedLabeller:
    """``ask(crop) -> Label`` runs on a worker (and may raise :class:`SlowLabelError`)."""

    ask: Callable[[ObjectCrop], Label]
    fallback: Labeller
    categories: tuple[str, ...]
    config: TrackingConfig = field(default_factory=TrackingConfig)
    name: str = "slow"

    def __post_init__(self) -> None:
        self._tracks: OrderedDict[int, _Track] = OrderedDict()
        self._next_id = 0
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)
        self._pool = ThreadPoolExecutor(self.config.workers, thread_name_prefix=self.name)
        self._pending = 0
        self.counters = {"asked": 0, "answered": 0, "failed": 0, "busy": 0, "cached": 0}
        self.failures_by_reason: dict[str, int] = {}

    def _track_of(self, crop: ObjectCrop) -> _Track:
        centre = crop.centroid
        best, best_d = None, self.config.track_radius
        for key, track in self._tracks.items():
            d = float(np.linalg.norm(track.position - centre))
            if track.color == crop.color and d <= best_d:
                best, best_d = key, d
        if best is None:
            best, self._next_id = self._next_id, self._next_id + 1
            self._tracks[best] = _Track(centre.copy(), crop.color)
            while len(self._tracks) > self.config.max_tracks:
                self._tracks.popitem(last=False)
        self._tracks.move_to_end(best)
        track = self._tracks[best]
        track.position = centre.copy()
        return track

    def label(self, crop: ObjectCrop) -> Label:
        now = time.monotonic()
        with self._lock:
            track = self._track_of(crop)
            if track.answer is not None:
                self.counters["cached"] += 1
                return track.answer
            due = not track.pending and now - track.failed_at >= self.config.retry_after_s
            if due and self._pending >= self.config.max_pending:
                self.counters["busy"] += 1
            elif due:
                track.pending, self._pending = True, self._pending + 1
                self.counters["asked"] += 1
                self._pool.submit(self._work, track, crop)
        return self.fallback.label(crop)

    def _work(self, track: _Track, crop: ObjectCrop) -> None:
        answer, reason = None, ""
        try:
            answer = self.ask(crop)
        except SlowLabelError as exc:
            reason = exc.reason
            LOG.warning("%s labeller: %s", self.name, exc)
        except Exception as exc:  # a bug or an unexpected client error must not kill the worker
            reason = type(exc).__name__
            LOG.exception("%s labeller: unexpected error", self.name)
        with self._lock:
            self._pending -= 1
            track.pending = False
            if answer is not None and answer.category != UNKNOWN:
                track.answer = answer
                self.counters["answered"] += 1
            else:
                track.failed_at = time.monotonic()
                reason = reason or "unknown"
                self.counters["failed"] += 1
                self.failures_by_reason[reason] = self.failures_by_reason.get(reason, 0) + 1
            self._settled.notify_all()

    def idle(self) -> bool:
        """True when no request is queued or running."""
        with self._lock:
            return self._pending == 0

    def wait_idle(self, timeout_s: float) -> bool:
        """Block until no request is queued or running (False: ``timeout_s`` passed)."""
        with self._settled:
            return self._settled.wait_for(lambda: self._pending == 0, timeout_s)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.fallback.close()
