"""Synchronized RGB-D frames from any rosbag2 bag (MCAP or sqlite3), ROS-free.

:func:`iter_bag_events` reads a bag with :class:`rosbags.highlevel.AnyReader`
(messages are decoded with the bag's own type definitions, so no rclpy and no
message packages are needed) and yields, in header-stamp order:

* :class:`CameraFrameEvent` per colour image of each camera, paired with the
  aligned depth image of the nearest stamp (within ``depth_tolerance_s``), the
  intrinsics of the nearest ``camera_info``, the camera's optical pose from the
  nearest ``/camera/<cam>/pose`` (within ``pose_tolerance_s``) and the latest
  ``/joint_states`` at or before the frame. A frame that lacks any of these is
  still yielded, with ``missing`` saying what is missing (evaluators count them);
* :class:`GroundTruthEvent` per ``/sim/ground_truth`` message.

Cameras are discovered from topic names ``/camera/<cam>/color/image_raw``.
Depth comes back in metres as float32 with 0.0 where there is no return
(``16UC1`` millimetres and ``32FC1`` metres with NaN are both accepted).
"""

from __future__ import annotations

import heapq
import itertools
import json
import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.highlevel import AnyReader

from robot_memory.observations import quat_to_matrix
from robot_memory.perception.image_decoding import PerceptionInputError
from robot_memory.perception.image_decoding import decode_color as perception_decode_color
from robot_memory.perception.image_decoding import decode_depth as perception_decode_depth

COLOR_TOPIC = re.compile(r"^/camera/([^/]+)/color/image_raw$")
GROUND_TRUTH_TOPIC = "/sim/ground_truth"
JOINT_STATES_TOPIC = "/joint_states"


def color_topic(cam: str) -> str:
    return f"/camera/{cam}/color/image_raw"


def depth_topic(cam: str) -> str:
    return f"/camera/{cam}/aligned_depth_to_color/image_raw"


def info_topic(cam: str) -> str:
    return f"/camera/{cam}/color/camera_info"


def pose_topic(cam: str) -> str:
    return f"/camera/{cam}/pose"


@dataclass
class CameraFrameEvent:
    camera: str
    stamp: float  # header stamp of the colour image [s]
    log_time_ns: int  # when the bag recorded the colour image
    frame_id: str
    rgb: np.ndarray  # HxWx3 uint8
    color_encoding: str
    depth: np.ndarray | None = None  # HxW float32 [m], 0 = no return
    depth_encoding: str | None = None
    depth_stamp: float | None = None
    intrinsics: np.ndarray | None = None  # 3x3 K
    position: np.ndarray | None = None  # optical frame in the world [m]
    quaternion: np.ndarray | None = None  # (w, x, y, z)
    pose_stamp: float | None = None
    joint_positions: dict[str, float] = field(default_factory=dict)
    missing: str | None = None  # why the frame is incomplete; None when complete

    @property
    def complete(self) -> bool:
        return self.missing is None


@dataclass
class GroundTruthEvent:
    stamp: float  # header-less: the bag's log time [s]
    log_time_ns: int
    payload: str


BagEvent = CameraFrameEvent | GroundTruthEvent


def stamp_of(msg: Any) -> float:
    return float(msg.header.stamp.sec) + float(msg.header.stamp.nanosec) * 1e-9


def decode_color(msg: Any) -> np.ndarray:
    """A sensor_msgs/Image (any object with its fields) -> HxWx3 uint8 RGB, with
    the perception node's own decoder: rgb8, bgr8, rgba8, bgra8."""
    return perception_decode_color(msg.encoding, msg.height, msg.width, msg.step, msg.data)


def decode_depth(msg: Any) -> np.ndarray:
    """16UC1 (mm) / 32FC1 (m) -> HxW float32 metres, 0 where there is no return
    (the perception decoder, with 32FC1's NaN "no return" written as 0)."""
    depth = perception_decode_depth(
        msg.encoding, msg.height, msg.width, msg.step, msg.data, bool(msg.is_bigendian)
    )
    depth[np.isnan(depth)] = 0.0
    return depth


def project_point(
    point: np.ndarray, position: np.ndarray, quat_wxyz: np.ndarray, k: np.ndarray
) -> tuple[float, float, float]:
    """Pixel (u, v) and depth z of a world point in an optical frame (x right,
    y down, z forward) at ``position`` / ``quat_wxyz``; z <= 0 is behind."""
    rot = quat_to_matrix(np.asarray(quat_wxyz, dtype=float))
    p = rot.T @ (np.asarray(point, dtype=float) - np.asarray(position, dtype=float))
    if p[2] <= 1e-9:
        return float("nan"), float("nan"), float(p[2])
    uvw = np.asarray(k, dtype=float) @ p
    return float(uvw[0] / uvw[2]), float(uvw[1] / uvw[2]), float(p[2])


def in_image(uvz: tuple[float, float, float], width: int, height: int, margin: float = 0) -> bool:
    """True if the projected point lies in the image, grown by ``margin`` pixels."""
    u, v, z = uvz
    return z > 0 and -margin <= u < width + margin and -margin <= v < height + margin


def discover_cameras(topics: Iterable[str]) -> list[str]:
    return sorted({m.group(1) for t in topics if (m := COLOR_TOPIC.match(t))})


def _nearest(items: Iterable[tuple[float, Any]], stamp: float) -> tuple[float, Any] | None:
    return min(items, key=lambda it: abs(it[0] - stamp), default=None)


#: Depth images logged within this of a colour frame are candidates for it.
LOG_WINDOW_NS = 200_000_000


def _truth_stamp(text: str, log_ns: int) -> float:
    """The simulation time inside a ground-truth payload (the clock the camera
    headers use), or the bag's log time when the payload has none. A recorder
    logs receive (wall) time, so log time alone would put every ground truth
    after every frame."""
    try:
        stamp = json.loads(text).get("stamp")
    except (json.JSONDecodeError, AttributeError):
        stamp = None
    return float(stamp) if isinstance(stamp, int | float) else log_ns * 1e-9


class _Lazy:
    """A message deserialized on first use, once."""

    def __init__(self, reader: AnyReader, raw: bytes, msgtype: str) -> None:
        self._reader, self._raw, self._msgtype = reader, raw, msgtype
        self._msg: Any = None

    def get(self) -> Any:
        if self._msg is None:
            self._msg = self._reader.deserialize(self._raw, self._msgtype)
            self._raw = b""
        return self._msg


class _Camera:
    """Per-camera buffers: colour frames waiting for their depth, recent depth,
    camera_info and poses (bounded)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.pending: deque[tuple[float, int, Any]] = deque()
        self.depths: deque[tuple[int, _Lazy]] = deque(maxlen=16)  # (log time, message)
        self.infos: deque[tuple[float, Any]] = deque(maxlen=16)
        self.poses: deque[tuple[float, Any]] = deque(maxlen=64)


def iter_bag_events(
    bag_path: str | Path,
    cameras: Iterable[str] | None = None,
    *,
    depth_tolerance_s: float = 0.02,
    pose_tolerance_s: float = 0.1,
    wait_s: float = 0.25,
    ground_truth: bool = True,
    camera_rate: float = 0.0,
) -> Iterator[BagEvent]:
    """Time-ordered camera frames and ground-truth messages of a bag.

    ``cameras`` limits the cameras (default: every one found). A colour frame
    is completed once the bag has advanced ``wait_s`` past it (so a depth,
    info or pose written slightly later is still paired), then yielded. Raises
    ``FileNotFoundError`` for a missing bag and ``ValueError`` when a named
    camera has no colour topic.

    ``camera_rate`` > 0 yields at most that many frames per second and camera
    (by bag log time), and skips decoding the others: depth images are only
    decoded for the colour frames kept.
    """
    path = Path(bag_path)
    if not path.exists():
        raise FileNotFoundError(f"no bag at {path}")
    with AnyReader([path]) as reader:
        found = discover_cameras(c.topic for c in reader.connections)
        names = found if cameras is None else list(cameras)
        unknown = sorted(set(names) - set(found))
        if unknown:
            raise ValueError(f"cameras {unknown} have no colour topic in {path}; found {found}")
        cams = {name: _Camera(name) for name in names}
        role: dict[str, tuple[str, str]] = {}
        for name in names:
            role[color_topic(name)] = ("color", name)
            role[depth_topic(name)] = ("depth", name)
            role[info_topic(name)] = ("info", name)
            role[pose_topic(name)] = ("pose", name)
        role[JOINT_STATES_TOPIC] = ("joints", "")
        if ground_truth:
            role[GROUND_TRUTH_TOPIC] = ("gt", "")
        topics = {c.topic for c in reader.connections}
        has_depth = {name for name in names if depth_topic(name) in topics}
        conns = [c for c in reader.connections if c.topic in role]
        joints: deque[tuple[float, dict[str, float]]] = deque(maxlen=256)
        out: list[tuple[float, int, BagEvent]] = []
        seq = itertools.count()
        wait_ns = int(wait_s * 1e9)
        period_ns = int(1e9 / camera_rate) if camera_rate > 0 else 0
        last_kept: dict[str, int] = {}

        def finish(cam: _Camera, stamp: float, log_ns: int, msg: Any) -> None:
            event = _frame(cam, stamp, log_ns, msg, joints, depth_tolerance_s, pose_tolerance_s)
            if cam.name not in has_depth and event.missing is not None:
                event.missing = event.missing.replace("no depth", "no depth topic")
            heapq.heappush(out, (stamp, next(seq), event))

        def flush(now_ns: int | None) -> Iterator[BagEvent]:
            for cam in cams.values():
                while cam.pending and (now_ns is None or now_ns - cam.pending[0][1] >= wait_ns):
                    finish(cam, *cam.pending.popleft())
            if now_ns is None:
                watermark = float("inf")
            else:  # nothing older than the oldest waiting frame, or than the wait
                pending = [c.pending[0][0] for c in cams.values() if c.pending]
                watermark = min([*pending, now_ns * 1e-9 - wait_s])
            while out and out[0][0] <= watermark:
                yield heapq.heappop(out)[2]

        for conn, log_ns, raw in reader.messages(conns):
            kind, name = role[conn.topic]
            if kind == "color" and period_ns:
                if log_ns - last_kept.get(name, -(1 << 62)) < period_ns - 1_000_000:
                    continue  # not decoded at all
                last_kept[name] = log_ns
            if kind == "depth":  # decoded lazily, only if a kept colour frame needs it
                cams[name].depths.append((log_ns, _Lazy(reader, raw, conn.msgtype)))
                yield from flush(log_ns)
                continue
            msg = reader.deserialize(raw, conn.msgtype)
            if kind == "gt":
                text = str(msg.data)
                event = GroundTruthEvent(_truth_stamp(text, log_ns), log_ns, text)
                heapq.heappush(out, (event.stamp, next(seq), event))
            elif kind == "joints":
                positions = zip(msg.name, msg.position, strict=False)
                joints.append((stamp_of(msg), {n: float(p) for n, p in positions}))
            else:
                cam = cams[name]
                if kind == "color":
                    cam.pending.append((stamp_of(msg), log_ns, msg))
                elif kind == "info":
                    cam.infos.append((stamp_of(msg), msg))
                else:
                    cam.poses.append((stamp_of(msg), msg))
            yield from flush(log_ns)
        yield from flush(None)


def _frame(
    cam: _Camera,
    stamp: float,
    log_ns: int,
    msg: Any,
    joints: deque[tuple[float, dict[str, float]]],
    depth_tol: float,
    pose_tol: float,
) -> CameraFrameEvent:
    missing = []
    try:
        rgb = decode_color(msg)
    except PerceptionInputError as err:  # reported like a missing part, not raised
        rgb = np.zeros((0, 0, 3), dtype=np.uint8)
        missing.append(f"colour: {err}")
    event = CameraFrameEvent(
        camera=cam.name,
        stamp=stamp,
        log_time_ns=log_ns,
        frame_id=str(msg.header.frame_id),
        rgb=rgb,
        color_encoding=str(msg.encoding),
    )
    # candidates by log time (cheap), then the nearest by header stamp (decoded)
    near = [lazy.get() for t, lazy in cam.depths if abs(t - log_ns) <= LOG_WINDOW_NS]
    depth = _nearest(((stamp_of(m), m) for m in near), stamp)
    if depth is not None and abs(depth[0] - stamp) <= depth_tol:
        event.depth_encoding, event.depth_stamp = str(depth[1].encoding), depth[0]
        try:
            event.depth = decode_depth(depth[1])
        except PerceptionInputError as err:
            missing.append(f"depth: {err}")
        if event.depth is not None and event.depth.shape != event.rgb.shape[:2]:
            missing.append(f"depth is {event.depth.shape}, colour {event.rgb.shape[:2]}")
    else:
        missing.append("no depth")
    info = _nearest(cam.infos, stamp)
    if info is not None:
        event.intrinsics = np.asarray(info[1].k, dtype=float).reshape(3, 3)
    else:
        missing.append("no camera_info")
    pose = _nearest(cam.poses, stamp)
    if pose is not None and abs(pose[0] - stamp) <= pose_tol:
        p = pose[1].pose
        event.position = np.array([p.position.x, p.position.y, p.position.z])
        o = p.orientation
        event.quaternion = np.array([o.w, o.x, o.y, o.z])
        event.pose_stamp = pose[0]
    else:
        missing.append("no pose" if pose is None else f"no pose within {pose_tol} s")
    before = [js for js in joints if js[0] <= stamp + 1e-6]
    if before:
        event.joint_positions = dict(before[-1][1])
    elif joints:
        event.joint_positions = dict(joints[0][1])
    event.missing = "; ".join(missing) or None
    return event
