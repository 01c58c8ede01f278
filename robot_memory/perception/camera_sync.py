"""Pair a camera's colour, depth, camera_info and pose by stamp (ROS-free).

Drivers publish the streams separately (realsense, the sim node, a bag
replay). Perception needs them together: colour and depth with the same stamp,
the latest intrinsics, and the camera pose at that stamp: from a pose stream
(the nearest pose in time) or from a ``pose_source`` such as a transform
buffer fed by ``/tf`` (the pose at the image's stamp, or None while the
transforms for that time have not arrived: the frame waits, like tf2's
message filter). This is the message_filters ApproximateTime idea, reduced to
what one RGB-D camera needs, with the reasons a frame could not be assembled
kept for diagnostics.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")

#: ``pose_source(stamp, colour)``: the camera pose at ``stamp``, or None while
#: it is not known (yet).
PoseSource = Callable[[float, Any], Any]


@dataclass
class Stamped(Generic[T]):
    stamp: float
    value: T


@dataclass
class SyncedFrame(Generic[T]):
    """Colour, depth, info and pose whose stamps agree."""

    camera: str
    stamp: float
    color: T
    depth: T
    info: T
    pose: T


class SyncError(Exception):
    """A frame could not be assembled; ``reason`` is short and loggable."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class CameraSync(Generic[T]):
    """Buffers one camera's streams and releases complete frames.

    ``tolerance_s``: colour/depth (and pose) stamps closer than this are the
    same instant. A colour image waits up to ``pose_wait_s`` (of stream time)
    for its depth and pose, then is dropped with a reason (``missing depth``,
    ``missing pose``); so is one still waiting when a newer frame is released,
    or pushed out of a full buffer. A stamp older than the newest one seen by
    more than ``tolerance_s`` means time jumped backwards (a bag that loops, a
    restarted simulator): the buffers are cleared and :class:`SyncError`
    raised once, so stale halves never pair with new ones.

    With ``pose_source`` there is no pose stream: a frame's pose is
    ``pose_source(stamp, colour)``, asked again on every new message and on
    :meth:`poll` (call it when the source learns something, e.g. a ``/tf``
    message) until it answers or ``pose_wait_s`` is over: then the frame is
    dropped as ``missing transform``. It is never paired with another time's pose.

    Every dropped frame is reported, one call per frame: to ``on_drop(reason,
    detail)`` when given (the node counts them); without it, the first drop of
    a call that releases no frame raises :class:`SyncError`.
    """

    def __init__(
        self,
        camera: str,
        tolerance_s: float = 0.02,
        pose_wait_s: float = 0.3,
        buffer: int = 10,
        on_drop: Callable[[str, str], None] | None = None,
        pose_source: PoseSource | None = None,
    ) -> None:
        if tolerance_s < 0 or pose_wait_s < 0:
            raise ValueError(f"tolerances must be >= 0, got {tolerance_s}, {pose_wait_s}")
        self.camera = camera
        self.tolerance_s = tolerance_s
        self.pose_wait_s = pose_wait_s
        self.on_drop = on_drop
        self.pose_source = pose_source
        self.missing_pose = "missing pose" if pose_source is None else "missing transform"
        self._color: deque[Stamped[T]] = deque(maxlen=buffer)
        self._depth: deque[Stamped[T]] = deque(maxlen=buffer)
        self._pose: deque[Stamped[T]] = deque(maxlen=4 * buffer)
        self._info: T | None = None
        self._newest = float("-inf")
        self._last_released = float("-inf")

    def clear(self) -> None:
        self._color.clear()
        self._depth.clear()
        self._pose.clear()
        self._newest = float("-inf")
        self._last_released = float("-inf")

    def _check_time(self, stamp: float, what: str) -> None:
        if stamp < self._newest - max(self.tolerance_s, 0.5):
            jump = self._newest - stamp
            self.clear()
            raise SyncError(
                "time went backwards",
                f"{self.camera} {what} stamped {stamp:.3f} s, {jump:.3f} s before the newest; "
                "buffers cleared",
            )
        self._newest = max(self._newest, stamp)

    def set_info(self, info: T) -> None:
        self._info = info

    @property
    def has_info(self) -> bool:
        return self._info is not None

    def add_pose(self, stamp: float, pose: T) -> SyncedFrame[T] | None:
        """A pose can complete a frame whose images came first."""
        self._check_time(stamp, "pose")
        self._pose.append(Stamped(stamp, pose))
        return self._try_release()

    def poll(self) -> SyncedFrame[T] | None:
        """A frame that the pose source can now complete, if any."""
        return self._try_release()

    def add_color(self, stamp: float, color: T) -> SyncedFrame[T] | None:
        self._check_time(stamp, "colour image")
        if len(self._color) == self._color.maxlen:  # full: the oldest goes, counted
            oldest = self._color.popleft()
            self._report(oldest, "buffer full")
        self._color.append(Stamped(stamp, color))
        return self._try_release()

    def add_depth(self, stamp: float, depth: T) -> SyncedFrame[T] | None:
        self._check_time(stamp, "depth image")
        self._depth.append(Stamped(stamp, depth))
        return self._try_release()

    def _nearest(self, items: deque[Stamped[T]], stamp: float) -> Stamped[T] | None:
        best = min(items, key=lambda s: abs(s.stamp - stamp), default=None)
        if best is None or abs(best.stamp - stamp) > self.tolerance_s:
            return None
        return best

    def _pose_of(self, color: Stamped[T]) -> Stamped[T] | None:
        if self.pose_source is None:
            return self._nearest(self._pose, color.stamp)
        pose = self.pose_source(color.stamp, color.value)
        return None if pose is None else Stamped(color.stamp, pose)

    def _try_release(self) -> SyncedFrame[T] | None:
        expired: Stamped[T] | None = None  # the newest colour that waited too long
        for color in reversed(self._color):
            depth = self._nearest(self._depth, color.stamp)
            if depth is None or color.stamp <= self._last_released:
                if expired is None and self._newest - color.stamp > self.pose_wait_s:
                    expired = color
                continue
            if self._info is None:
                self._drop_through(color.stamp, "missing camera_info")
                return None
            pose = self._pose_of(color)
            if pose is None:
                if self._newest - color.stamp > self.pose_wait_s and expired is None:
                    expired = color
                continue  # the pose may still come; an older frame may be complete
            self._drop_through(color.stamp, "", keep_last=True)
            self._last_released = color.stamp
            return SyncedFrame(
                self.camera, color.stamp, color.value, depth.value, self._info, pose.value
            )
        if expired is not None:  # nothing complete: drop what waited too long
            self._drop_through(expired.stamp, "")
        return None

    def _why(self, color: Stamped[T]) -> str:
        if color.stamp <= self._last_released:
            return ""  # an older duplicate of a released frame: nothing lost
        if self._nearest(self._depth, color.stamp) is None:
            return "missing depth"
        if self._info is None:
            return "missing camera_info"
        return self.missing_pose if self._pose_of(color) is None else "superseded"

    def _report(self, color: Stamped[T], reason: str, releasing: bool = False) -> None:
        why = self._why(color) if reason in ("", "buffer full") else reason
        if not why:
            return
        detail = {
            "missing depth": f"no {self.camera} depth within {self.tolerance_s} s",
            "missing pose": f"no {self.camera} pose within {self.tolerance_s} s",
            "missing transform": f"no {self.camera} transform at the image stamp "
            f"within {self.pose_wait_s} s",
            "missing camera_info": f"no camera_info for {self.camera} yet",
            "superseded": f"a newer {self.camera} frame was complete first",
        }[why]
        detail = f"{detail} of {color.stamp:.3f}" + (" (buffer full)" if reason else "")
        if self.on_drop is not None:
            self.on_drop(why, detail)
        elif not releasing:
            raise SyncError(why, detail)

    def _drop_through(self, stamp: float, reason: str, keep_last: bool = False) -> None:
        """Drop colours up to ``stamp`` (reporting each; ``keep_last``: the one
        at ``stamp`` is being released, not dropped) and their depths."""
        dropped: list[Stamped[T]] = []
        while self._color and self._color[0].stamp <= stamp + 1e-9:
            dropped.append(self._color.popleft())
        if keep_last and dropped:
            dropped.pop()
        try:
            for color in dropped:
                self._report(color, reason, releasing=keep_last)
        finally:
            while self._depth and self._depth[0].stamp <= stamp + self.tolerance_s:
                self._depth.popleft()
