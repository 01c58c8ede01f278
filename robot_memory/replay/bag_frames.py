"""Synchronized RGB-D frames from any rosbag2 bag (MCAP or sqlite3), ROS-free.

:func:`iter_bag_events` reads a bag with :class:`robot_memory.bag.reader.BagReader`
(messages are decoded with the bag's own type definitions, or rosbags' standard
ones for a bag without them, so no rclpy and no message packages are needed)
and yields, in header-stamp order:

* :class:`CameraFrameEvent` per colour image of each camera, paired with the
  aligned depth image of the nearest stamp (within ``depth_tolerance_s``), the
  intrinsics of the nearest ``camera_info``, the camera's optical pose and the
  latest ``/joint_states`` at or before the frame. A frame that lacks any of
  these is still yielded, with ``missing`` saying what is missing (evaluators
  count them);
* :class:`GroundTruthEvent` per ``/sim/ground_truth`` message
  (``robot_memory_interfaces/msg/GroundTruth``, or an older bag's JSON in a
  ``std_msgs/msg/String``), already converted to the core's model.

Topic names are those of :mod:`robot_memory.replay.bag_topics` (after its
:class:`TopicMap` renaming). Colour is ``sensor_msgs/Image`` or
``CompressedImage``; depth comes back in metres as float32 with 0.0 where
there is no return (``16UC1`` millimetres, ``32FC1`` metres, compressedDepth).
The pose is the transform from ``world_frame`` to the image's ``frame_id``
(``<cam>_color_optical_frame`` in the typed stack's bags) in ``/tf`` and
``/tf_static`` at the image's stamp (interpolated in time); older bags without
``/tf`` give it on ``/camera/<cam>/pose`` (the nearest within ``pose_tolerance_s``).
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robot_memory.bag import ground_truth as gt_msgs
from robot_memory.bag.reader import BagError, BagReader, normalize_type
from robot_memory.perception.image_decoding import PerceptionInputError
from robot_memory.perception.image_messages import decode_color, decode_depth, encoding_of
from robot_memory.replay.bag_topics import (
    GROUND_TRUTH_TOPIC,
    JOINT_STATES_TOPIC,
    TF_STATIC_TOPIC,
    TF_TOPIC,
    CameraTopics,
    TopicMap,
    find_cameras,
)
from robot_memory.schemas import GroundTruth, PayloadError
from robot_memory.transforms.tf_buffer import TransformBuffer, TransformError

WORLD_FRAME = "world"


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
    pose_source: str | None = None  # "pose topic" or "tf"
    joint_positions: dict[str, float] = field(default_factory=dict)
    missing: str | None = None  # why the frame is incomplete; None when complete

    @property
    def complete(self) -> bool:
        return self.missing is None


@dataclass
class GroundTruthEvent:
    stamp: float  # the truth's own (sim) time; the bag's log time if it has none [s]
    log_time_ns: int
    truth: GroundTruth | None  # None: the message did not validate (see ``error``)
    error: str | None = None  # short reason, e.g. "invalid payload"


BagEvent = CameraFrameEvent | GroundTruthEvent


@dataclass
class BagPlan:
    """What a bag offers for evaluation (see :func:`inspect_bag`)."""

    topics: dict[str, str]  # bag topic -> message type
    cameras: dict[str, CameraTopics]  # every camera with a colour topic or named in the map
    undecodable: dict[str, str]  # bag topic -> why its messages cannot be decoded
    ground_truth: bool


def inspect_bag(bag_path: str | Path, topic_map: TopicMap | None = None) -> BagPlan:
    """The cameras, topics and undecodable topics of a bag, without reading
    its messages; :class:`BagError` for a bag that cannot be opened."""
    with BagReader(bag_path) as reader:
        topics = {c.topic: c.msgtype for c in reader.connections}
        undecodable = {
            c.topic: why for c in reader.connections if (why := reader.why_undecodable(c.msgtype))
        }
    usable = {t: ty for t, ty in topics.items() if t not in undecodable}
    cameras, renamed = find_cameras(usable, topic_map)
    named = set(topic_map.cameras) if topic_map else set()
    cameras = {n: cam for n, cam in cameras.items() if cam.color is not None or n in named}
    truth_type = normalize_type(topics.get(renamed.get(GROUND_TRUTH_TOPIC, ""), ""))
    return BagPlan(topics, cameras, undecodable, truth_type in gt_msgs.TYPES)


def stamp_of(msg: Any) -> float:
    return float(msg.header.stamp.sec) + float(msg.header.stamp.nanosec) * 1e-9


def _nearest(items: Iterable[tuple[float, Any]], stamp: float) -> tuple[float, Any] | None:
    return min(items, key=lambda it: abs(it[0] - stamp), default=None)


#: Depth images logged within this of a colour frame are candidates for it.
LOG_WINDOW_NS = 200_000_000


def _truth_event(msg: Any, msgtype: str, log_ns: int) -> GroundTruthEvent:
    """A ground-truth message as an event at its own simulation time (the clock
    the camera headers use); at the bag's log time when it does not validate.
    A recorder logs receive (wall) time, so log time alone would put every
    ground truth after every frame."""
    try:
        truth = gt_msgs.ground_truth_from_bag(msg, normalize_type(msgtype))
    except PayloadError as err:
        return GroundTruthEvent(log_ns * 1e-9, log_ns, None, err.reason)
    return GroundTruthEvent(truth.stamp, log_ns, truth)


class _Lazy:
    """A message deserialized on first use, once (None if it cannot be)."""

    def __init__(self, reader: BagReader, raw: bytes, msgtype: str) -> None:
        self._reader, self._raw, self._msgtype = reader, raw, msgtype
        self._msg: Any = None

    def get(self) -> Any:
        if self._raw:
            try:
                self._msg = self._reader.decode(self._raw, self._msgtype)
            except BagError:
                self._msg = None
            self._raw = b""
        return self._msg


class _Camera:
    """Per-camera buffers: colour frames waiting for their depth, recent depth,
    camera_info and poses (bounded)."""

    def __init__(self, topics: CameraTopics) -> None:
        self.name = topics.name
        self.topics = topics
        self.pending: deque[tuple[float, int, Any]] = deque()
        self.depths: deque[tuple[int, _Lazy]] = deque(maxlen=16)  # (log time, message)
        self.infos: deque[tuple[float, Any]] = deque(maxlen=16)
        self.poses: deque[tuple[float, Any]] = deque(maxlen=64)


@dataclass
class _Context:
    joints: deque[tuple[float, dict[str, float]]]
    tf: TransformBuffer
    has_tf: bool
    world_frame: str
    depth_tol: float
    pose_tol: float


def iter_bag_events(
    bag_path: str | Path,
    cameras: Iterable[str] | None = None,
    *,
    topic_map: TopicMap | None = None,
    world_frame: str = WORLD_FRAME,
    depth_tolerance_s: float = 0.02,
    pose_tolerance_s: float = 0.1,
    wait_s: float = 0.25,
    tf_wait_s: float = 2.0,
    ground_truth: bool = True,
    camera_rate: float = 0.0,
) -> Iterator[BagEvent]:
    """Time-ordered camera frames and ground-truth messages of a bag.

    ``cameras`` limits the cameras (default: every one found). A colour frame
    is completed once the bag has advanced ``wait_s`` past it (so a depth,
    info or pose written slightly later is still paired), then yielded; one
    whose ``/tf`` is not in the bag yet waits up to ``tf_wait_s`` (a recorder
    on a loaded machine writes ``/tf`` late: its subscription lags the
    images'). Raises
    :class:`BagError` (a ``ValueError``) for a missing or unreadable bag and
    when a named camera has no colour topic.

    ``camera_rate`` > 0 yields at most that many frames per second and camera
    (by bag log time), and skips decoding the others: depth images are only
    decoded for the colour frames kept.
    """
    plan = inspect_bag(bag_path, topic_map)
    found = sorted(name for name, cam in plan.cameras.items() if cam.color is not None)
    names = found if cameras is None else list(cameras)
    unknown = sorted(set(names) - set(found))
    if unknown:
        raise BagError(f"cameras {unknown} have no colour topic in {bag_path}; found {found}")
    cams = {name: _Camera(plan.cameras[name]) for name in names}
    role: dict[str, tuple[str, str]] = {}
    for cam in cams.values():
        for kind in ("color", "depth", "info", "pose"):
            if (topic := getattr(cam.topics, kind)) is not None:
                role[topic] = (kind, cam.name)
    for topic, kind in ((JOINT_STATES_TOPIC, "joints"), (TF_TOPIC, "tf"), (TF_STATIC_TOPIC, "tf")):
        if topic in plan.topics and topic not in plan.undecodable:
            role.setdefault(topic, (kind, ""))
    if ground_truth and plan.ground_truth and GROUND_TRUTH_TOPIC not in plan.undecodable:
        role[GROUND_TRUTH_TOPIC] = ("gt", "")
    has_tf = any(kind == "tf" for kind, _ in role.values())
    ctx = _Context(
        deque(maxlen=256),
        TransformBuffer(tolerance_s=pose_tolerance_s),
        has_tf,
        world_frame,
        depth_tolerance_s,
        pose_tolerance_s,
    )
    with BagReader(bag_path) as reader:
        conns = [c for c in reader.connections if c.topic in role]
        waits = (wait_s, max(wait_s, tf_wait_s))
        yield from _events(reader, conns, role, cams, ctx, waits, camera_rate)


def _events(
    reader: BagReader,
    conns: list,
    role: dict[str, tuple[str, str]],
    cams: dict[str, _Camera],
    ctx: _Context,
    waits: tuple[float, float],
    camera_rate: float,
) -> Iterator[BagEvent]:
    out: list[tuple[float, int, BagEvent]] = []
    seq = itertools.count()
    wait_s, tf_wait_s = waits
    wait_ns, tf_wait_ns = int(wait_s * 1e9), int(tf_wait_s * 1e9)
    period_ns = int(1e9 / camera_rate) if camera_rate > 0 else 0
    last_kept: dict[str, int] = {}

    def finish(cam: _Camera, stamp: float, log_ns: int, msg: Any) -> None:
        heapq.heappush(out, (stamp, next(seq), _frame(cam, stamp, log_ns, msg, ctx)))

    def due(cam: _Camera, now_ns: int) -> bool:
        stamp, log_ns, msg = cam.pending[0]
        waited = now_ns - log_ns
        if waited < wait_ns:
            return False
        return waited >= tf_wait_ns or _pose_known(cam, stamp, msg, ctx)

    def flush(now_ns: int | None) -> Iterator[BagEvent]:
        for cam in cams.values():
            while cam.pending and (now_ns is None or due(cam, now_ns)):
                finish(cam, *cam.pending.popleft())
        if now_ns is None:
            watermark = float("inf")
        else:  # nothing older than the oldest waiting frame, or than the wait
            pending = [c.pending[0][0] for c in cams.values() if c.pending]
            watermark = min([*pending, now_ns * 1e-9 - wait_s])
        while out and out[0][0] <= watermark:
            yield heapq.heappop(out)[2]

    for conn, log_ns, raw in reader.read(conns):
        kind, name = role[conn.topic]
        if kind == "color" and period_ns:
            if log_ns - last_kept.get(name, -(1 << 62)) < period_ns - 1_000_000:
                continue  # not decoded at all
            last_kept[name] = log_ns
        if kind == "depth":  # decoded lazily, only if a kept colour frame needs it
            cams[name].depths.append((log_ns, _Lazy(reader, bytes(raw), conn.msgtype)))
            yield from flush(log_ns)
            continue
        try:
            msg = reader.decode(raw, conn.msgtype)
        except BagError:
            continue  # a corrupt message: like one never recorded
        if kind == "gt":
            event = _truth_event(msg, conn.msgtype, log_ns)
            heapq.heappush(out, (event.stamp, next(seq), event))
        elif kind == "joints":
            positions = zip(msg.name, msg.position, strict=False)
            ctx.joints.append((stamp_of(msg), {n: float(p) for n, p in positions}))
        elif kind == "tf":
            ctx.tf.add_message(msg, static=conn.topic == TF_STATIC_TOPIC)
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


def _pose_known(cam: _Camera, stamp: float, msg: Any, ctx: _Context) -> bool:
    """Whether a frame's pose can be had now, or never will be (only a pose
    that /tf has not reached yet is worth waiting for)."""
    found = _find_pose(cam, stamp, str(msg.header.frame_id), ctx)
    return not isinstance(found, TransformError)


def _find_pose(
    cam: _Camera, stamp: float, frame_id: str, ctx: _Context
) -> tuple[np.ndarray, np.ndarray, float, str] | str | TransformError:
    """(position, quaternion wxyz, pose stamp, source), or why there is none
    (a TransformError: not in /tf, perhaps not yet)."""
    pose = _nearest(cam.poses, stamp)
    if pose is not None and abs(pose[0] - stamp) <= ctx.pose_tol:
        p, o = pose[1].pose.position, pose[1].pose.orientation
        return np.array([p.x, p.y, p.z]), np.array([o.w, o.x, o.y, o.z]), pose[0], "pose topic"
    if ctx.has_tf:
        if not frame_id and cam.infos:
            frame_id = str(cam.infos[-1][1].header.frame_id)
        if not frame_id:
            return "no pose (the image has no frame_id to look up in /tf)"
        try:
            found = ctx.tf.lookup(ctx.world_frame, frame_id, stamp)
        except TransformError as err:
            return err
        return found.translation, found.rotation, stamp, "tf"
    if pose is not None:
        return f"no pose within {ctx.pose_tol} s"
    if cam.topics.pose is None:
        return f"no pose (no /tf in the bag, nor an older bag's /camera/{cam.name}/pose)"
    return "no pose"


def _pose(cam: _Camera, event: CameraFrameEvent, ctx: _Context) -> str | None:
    """Fills the event's pose; returns why there is none, or None."""
    found = _find_pose(cam, event.stamp, event.frame_id, ctx)
    if isinstance(found, TransformError):
        return f"no pose: {found}"
    if isinstance(found, str):
        return found
    event.position, event.quaternion, event.pose_stamp, event.pose_source = found
    return None


def _frame(cam: _Camera, stamp: float, log_ns: int, msg: Any, ctx: _Context) -> CameraFrameEvent:
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
        color_encoding=encoding_of(msg),
    )
    # candidates by log time (cheap), then the nearest by header stamp (decoded)
    near = [lazy.get() for t, lazy in cam.depths if abs(t - log_ns) <= LOG_WINDOW_NS]
    depth = _nearest(((stamp_of(m), m) for m in near if m is not None), stamp)
    if depth is not None and abs(depth[0] - stamp) <= ctx.depth_tol:
        event.depth_encoding, event.depth_stamp = encoding_of(depth[1]), depth[0]
        try:
            event.depth = decode_depth(depth[1])
        except PerceptionInputError as err:
            missing.append(f"depth: {err}")
        if event.depth is not None and event.depth.shape != event.rgb.shape[:2]:
            missing.append(f"depth is {event.depth.shape}, colour {event.rgb.shape[:2]}")
    else:
        missing.append("no depth" if cam.topics.depth is not None else "no depth topic")
    info = _nearest(cam.infos, stamp)
    if info is not None:
        event.intrinsics = np.asarray(info[1].k, dtype=float).reshape(3, 3)
    else:
        missing.append("no camera_info")
    if (why := _pose(cam, event, ctx)) is not None:
        missing.append(why)
    before = [js for js in ctx.joints if js[0] <= stamp + 1e-6]
    if before:
        event.joint_positions = dict(before[-1][1])
    elif ctx.joints:
        event.joint_positions = dict(ctx.joints[0][1])
    event.missing = "; ".join(missing) or None
    return event
