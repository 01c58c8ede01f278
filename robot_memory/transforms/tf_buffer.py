"""A small transform buffer for ``/tf`` and ``/tf_static`` (ROS-free, numpy).

tf2_ros is not on PyPI, so perception and the bag readers keep transforms here: each child frame
has one parent (a tree, as in tf2), static transforms hold at every time, and
dynamic ones are interpolated in time (linear in translation, slerp in
rotation) between the two nearest samples. :meth:`TransformBuffer.lookup` chains
them from a target frame (the world) to a source frame (a camera's optical
frame). Quaternions are ``(w, x, y, z)``; frame names lose a leading ``/``.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class TransformError(LookupError):
    """No transform between the frames at that time; the message says why."""


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return np.array(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ]
    )


def quat_rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    w, xyz = q[0], q[1:]
    t = 2.0 * np.cross(xyz, v)
    return v + w * t + np.cross(xyz, t)


def quat_conjugate(q: np.ndarray) -> np.ndarray:
    return np.array([q[0], -q[1], -q[2], -q[3]])


def slerp(a: np.ndarray, b: np.ndarray, s: float) -> np.ndarray:
    dot = float(np.dot(a, b))
    if dot < 0:
        b, dot = -b, -dot
    if dot > 0.9995:
        out = a + s * (b - a)
    else:
        theta = np.arccos(dot)
        out = (np.sin((1 - s) * theta) * a + np.sin(s * theta) * b) / np.sin(theta)
    return out / np.linalg.norm(out)


@dataclass
class Transform:
    """``parent <- child``: a point p in the child frame is ``R p + t`` in the parent."""

    translation: np.ndarray
    rotation: np.ndarray  # (w, x, y, z), unit

    def compose(self, other: Transform) -> Transform:
        """``self`` then ``other`` (self: a <- b, other: b <- c; result a <- c)."""
        return Transform(
            self.translation + quat_rotate(self.rotation, other.translation),
            quat_multiply(self.rotation, other.rotation),
        )

    def inverse(self) -> Transform:
        conj = quat_conjugate(self.rotation)
        return Transform(-quat_rotate(conj, self.translation), conj)


IDENTITY = Transform(np.zeros(3), np.array([1.0, 0.0, 0.0, 0.0]))


@dataclass
class _Edge:
    parent: str
    static: bool = False
    stamps: list[float] = field(default_factory=list)
    values: list[Transform] = field(default_factory=list)


def _frame(name: str) -> str:
    return str(name).lstrip("/")


class TransformBuffer:
    """Transforms by child frame; dynamic ones kept for ``cache_s`` seconds."""

    def __init__(self, cache_s: float = 10.0, tolerance_s: float = 0.1) -> None:
        self.cache_s = cache_s
        self.tolerance_s = tolerance_s  # how far a lookup may lie outside the samples
        self._edges: dict[str, _Edge] = {}

    def __len__(self) -> int:
        return len(self._edges)

    def frames(self) -> set[str]:
        return set(self._edges) | {e.parent for e in self._edges.values()}

    def add(
        self,
        parent: str,
        child: str,
        stamp: float,
        translation: Any,
        rotation_wxyz: Any,
        static: bool = False,
    ) -> None:
        parent, child = _frame(parent), _frame(child)
        q = np.asarray(rotation_wxyz, dtype=float)
        norm = np.linalg.norm(q)
        if not parent or not child or parent == child or not np.isfinite(norm) or norm < 1e-9:
            return  # tf2 rejects these too
        value = Transform(np.asarray(translation, dtype=float), q / norm)
        edge = self._edges.get(child)
        if edge is None or edge.parent != parent or edge.static != static:
            edge = self._edges[child] = _Edge(parent, static)
        if static:
            edge.stamps, edge.values = [stamp], [value]
            return
        i = bisect.bisect_right(edge.stamps, stamp)
        edge.stamps.insert(i, stamp)
        edge.values.insert(i, value)
        cut = bisect.bisect_left(edge.stamps, edge.stamps[-1] - self.cache_s)
        if cut > 0:
            del edge.stamps[:cut], edge.values[:cut]

    def add_message(self, msg: Any, static: bool = False) -> None:
        """A tf2_msgs/TFMessage (any object with its fields)."""
        for ts in msg.transforms:
            t, r = ts.transform.translation, ts.transform.rotation
            stamp = float(ts.header.stamp.sec) + float(ts.header.stamp.nanosec) * 1e-9
            self.add(
                ts.header.frame_id,
                ts.child_frame_id,
                stamp,
                (t.x, t.y, t.z),
                (r.w, r.x, r.y, r.z),
                static,
            )

    def clear(self, static: bool = False) -> None:
        """Forget the dynamic transforms (time jumped back: a restarted sim, a
        looping bag); ``static``: the static ones too."""
        self._edges = {c: e for c, e in self._edges.items() if e.static and not static}

    def _at(self, child: str, edge: _Edge, stamp: float, tolerance_s: float) -> Transform:
        if edge.static:
            return edge.values[0]
        stamps = edge.stamps
        i = bisect.bisect_left(stamps, stamp)
        if i < len(stamps) and stamps[i] == stamp:
            return edge.values[i]
        if 0 < i < len(stamps):
            t0, t1 = stamps[i - 1], stamps[i]
            s = (stamp - t0) / (t1 - t0)
            a, b = edge.values[i - 1], edge.values[i]
            return Transform(
                a.translation + s * (b.translation - a.translation),
                slerp(a.rotation, b.rotation, s),
            )
        j = 0 if i == 0 else len(stamps) - 1
        if abs(stamps[j] - stamp) <= tolerance_s:
            return edge.values[j]
        side = "before the first" if i == 0 else "after the last"
        raise TransformError(
            f"{edge.parent} -> {child}: {stamp:.3f} s is {side} sample "
            f"({stamps[j]:.3f} s) by more than {tolerance_s} s"
        )

    def _chain(self, frame: str) -> Iterator[str]:
        seen = set()
        while frame not in seen:
            seen.add(frame)
            yield frame
            edge = self._edges.get(frame)
            if edge is None:
                return
            frame = edge.parent

    def _path(self, target: str, source: str) -> list[str]:
        """The child frames of every edge between ``target`` and ``source``."""
        up_source = list(self._chain(source))
        up_target = list(self._chain(target))
        common = next((f for f in up_source if f in set(up_target)), None)
        if common is None:
            known = sorted(self.frames())
            if source not in known:
                raise TransformError(f"frame {source!r} is not in /tf (frames: {known[:8]})")
            roots = sorted({list(self._chain(f))[-1] for f in known})
            raise TransformError(f"no /tf path from {target!r} to {source!r} (tree roots: {roots})")
        return up_source[: up_source.index(common)] + up_target[: up_target.index(common)]

    def lookup(
        self, target: str, source: str, stamp: float, tolerance_s: float | None = None
    ) -> Transform:
        """``target <- source`` at ``stamp``: the pose of ``source`` in ``target``.

        ``tolerance_s`` (default: the buffer's): how far ``stamp`` may lie outside
        a dynamic edge's samples (its nearest sample is used then); 0 allows no
        extrapolation at all, only interpolation between samples (tf2's rule)."""
        tol = self.tolerance_s if tolerance_s is None else tolerance_s
        target, source = _frame(target), _frame(source)
        up_source = list(self._chain(source))
        up_target = list(self._chain(target))
        common = next((f for f in up_source if f in set(up_target)), None)
        if common is None:
            self._path(target, source)  # raises with the reason
        result = IDENTITY
        for frame in up_source[: up_source.index(common)][::-1]:  # common down to source
            result = result.compose(self._at(frame, self._edges[frame], stamp, tol))
        down = IDENTITY
        for frame in up_target[: up_target.index(common)][::-1]:  # common down to target
            down = down.compose(self._at(frame, self._edges[frame], stamp, tol))
        return down.inverse().compose(result)
