"""numpy <-> ROS message conversions shared by the nodes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from builtin_interfaces.msg import Duration, Time
from geometry_msgs.msg import Pose, PoseStamped, TransformStamped
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, JointState
from std_msgs.msg import Header
from tf2_msgs.msg import TFMessage

from robot_memory.perception import image_messages
from robot_memory.perception.image_decoding import (
    PerceptionInputError,
    decode_color,
    decode_depth,
)
from robot_memory.schemas import PayloadError

if TYPE_CHECKING:  # any object with parent, child, translation, rotation (w, x, y, z)
    from robot_memory.sim.frames import FrameTransform


def to_time(seconds: float) -> Time:
    sec = int(np.floor(seconds))
    return Time(sec=sec, nanosec=min(round((seconds - sec) * 1e9), 999_999_999))


def to_duration(seconds: float) -> Duration:
    sec = int(np.floor(seconds))
    return Duration(sec=sec, nanosec=min(round((seconds - sec) * 1e9), 999_999_999))


def from_time(stamp: Time) -> float:
    """Seconds; nanosec outside [0, 1e9) (builtin_interfaces/Time's range; sec
    may be any int32, e.g. a query's ``since`` before time 0) raises
    PayloadError ``invalid stamp`` for the input boundary to count."""
    if stamp.nanosec >= 1_000_000_000:
        raise PayloadError("invalid stamp", f"sec={stamp.sec} nanosec={stamp.nanosec}")
    return stamp.sec + stamp.nanosec * 1e-9


def header(stamp_s: float, frame_id: str) -> Header:
    return Header(stamp=to_time(stamp_s), frame_id=frame_id)


def rgb_image(rgb: np.ndarray, stamp_s: float, frame_id: str) -> Image:
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb8 needs HxWx3 uint8, got {rgb.dtype} {rgb.shape}")
    h, w, _ = rgb.shape
    msg = Image(header=header(stamp_s, frame_id), height=h, width=w, encoding="rgb8")
    msg.is_bigendian = 0
    msg.step = w * 3
    msg.data = np.ascontiguousarray(rgb).tobytes()
    return msg


def depth_image(depth_m: np.ndarray, stamp_s: float, frame_id: str, encoding: str) -> Image:
    """Metric depth as realsense sends it: ``16UC1`` in millimetres (0 = no
    return) or ``32FC1`` in metres (NaN = no return)."""
    h, w = depth_m.shape
    valid = np.isfinite(depth_m) & (depth_m > 0)
    if encoding == "16UC1":
        mm = np.where(valid, np.clip(np.round(depth_m * 1000.0), 0, 65535), 0).astype(np.uint16)
        data, step = mm.tobytes(), w * 2
    elif encoding == "32FC1":
        m = np.where(valid, depth_m, np.nan).astype(np.float32)
        data, step = m.tobytes(), w * 4
    else:
        raise ValueError(f"depth encoding must be 16UC1 or 32FC1, got {encoding!r}")
    msg = Image(header=header(stamp_s, frame_id), height=h, width=w, encoding=encoding)
    msg.is_bigendian = 0
    msg.step = step
    msg.data = data
    return msg


def image_to_numpy(msg: Image) -> np.ndarray:
    """Decode rgb8 / 16UC1 / 32FC1 images (raise ValueError otherwise)."""
    dtypes = {"rgb8": (np.uint8, 3), "16UC1": (np.uint16, 1), "32FC1": (np.float32, 1)}
    if msg.encoding not in dtypes:
        raise ValueError(f"unsupported encoding {msg.encoding!r}")
    dtype, channels = dtypes[msg.encoding]
    arr = np.frombuffer(bytes(msg.data), dtype=dtype)
    expected = msg.height * msg.width * channels
    if arr.size != expected:
        raise ValueError(f"image data has {arr.size} values, expected {expected}")
    shape = (msg.height, msg.width, channels) if channels > 1 else (msg.height, msg.width)
    return arr.reshape(shape)


def rgb_or_none(msg: Image | CompressedImage | None) -> np.ndarray | None:
    """An rgb8 or compressed colour image as an array; None for no image,
    another encoding or bad data."""
    if isinstance(msg, CompressedImage):
        try:
            return image_messages.decode_color(msg)
        except PerceptionInputError:
            return None
    if msg is None or msg.encoding != "rgb8":
        return None
    try:
        return image_to_numpy(msg)
    except ValueError:
        return None


def decode_rgbd(
    color: Image | CompressedImage, depth: Image | CompressedImage, info: CameraInfo
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rgb HxWx3 uint8, depth HxW metres, K 3x3) of a camera's paired colour,
    aligned depth and camera_info, raw or image_transport-compressed; raises
    PerceptionInputError (unsupported encoding, a buffer of the wrong size,
    undecodable data, camera_info of another size)."""
    if isinstance(color, CompressedImage):
        rgb = image_messages.decode_color(color)
    else:
        rgb = decode_color(color.encoding, color.height, color.width, color.step, color.data)
    if isinstance(depth, CompressedImage):
        dep = image_messages.decode_depth(depth)
    else:
        dep = decode_depth(
            depth.encoding, depth.height, depth.width, depth.step, depth.data,
            bool(depth.is_bigendian),
        )  # fmt: skip
    height, width = rgb.shape[:2]
    if dep.shape != (height, width):
        raise PerceptionInputError(
            "size mismatch", f"depth is {dep.shape[1]}x{dep.shape[0]}, colour is {width}x{height}"
        )
    size = (info.width, info.height)
    if size != (0, 0) and size != (width, height):
        raise PerceptionInputError(
            "size mismatch",
            f"camera_info is {info.width}x{info.height}, colour is {width}x{height}",
        )
    return rgb, dep, np.array(info.k, dtype=float).reshape(3, 3)


@dataclass(frozen=True)
class CameraImageTopics:
    """A camera's image topics in one image_transport (``raw`` or ``compressed``):
    the message type and the colour and aligned-depth topic names."""

    kind: type  # Image or CompressedImage
    color: str
    depth: str


def camera_image_topics(cam: str, transport: str = "raw") -> CameraImageTopics:
    """realsense-style names, with image_transport's ``/compressed`` (colour) and
    ``/compressedDepth`` (depth) suffixes in the compressed transport."""
    if transport not in ("raw", "compressed"):
        raise ValueError(f"image_transport must be raw or compressed, not {transport!r}")
    base = f"/camera/{cam}"
    if transport == "compressed":
        return CameraImageTopics(
            CompressedImage,
            f"{base}/color/image_raw/compressed",
            f"{base}/aligned_depth_to_color/image_raw/compressedDepth",
        )
    return CameraImageTopics(
        Image, f"{base}/color/image_raw", f"{base}/aligned_depth_to_color/image_raw"
    )


def compressed_image(fmt: str, data: bytes, stamp_s: float, frame_id: str) -> CompressedImage:
    return CompressedImage(header=header(stamp_s, frame_id), format=fmt, data=data)


def camera_info(
    k: np.ndarray, width: int, height: int, stamp_s: float, frame_id: str
) -> CameraInfo:
    msg = CameraInfo(header=header(stamp_s, frame_id), width=width, height=height)
    msg.distortion_model = "plumb_bob"
    msg.d = [0.0] * 5
    msg.k = [float(v) for v in np.asarray(k, dtype=float).reshape(9)]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    p = np.zeros((3, 4))
    p[:, :3] = np.asarray(k, dtype=float).reshape(3, 3)
    msg.p = [float(v) for v in p.reshape(12)]
    return msg


def pose_stamped(pos: np.ndarray, quat_wxyz: np.ndarray, stamp_s: float, frame: str) -> PoseStamped:
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in pos)
    w, x, y, z = (float(v) for v in quat_wxyz)
    pose.orientation.w, pose.orientation.x = w, x
    pose.orientation.y, pose.orientation.z = y, z
    return PoseStamped(header=header(stamp_s, frame), pose=pose)


def joint_state(
    names: list[str] | tuple[str, ...],
    position: np.ndarray,
    velocity: np.ndarray,
    effort: np.ndarray,
    stamp_s: float,
) -> JointState:
    msg = JointState(header=header(stamp_s, ""))
    msg.name = list(names)
    msg.position = [float(v) for v in position]
    msg.velocity = [float(v) for v in velocity]
    msg.effort = [float(v) for v in effort]
    return msg


def transform_stamped(tr: FrameTransform, stamp_s: float) -> TransformStamped:
    """``tr.parent <- tr.child`` at ``stamp_s`` (header.frame_id = parent)."""
    msg = TransformStamped(header=header(stamp_s, tr.parent), child_frame_id=tr.child)
    t, r = msg.transform.translation, msg.transform.rotation
    t.x, t.y, t.z = (float(v) for v in tr.translation)
    r.w, r.x, r.y, r.z = (float(v) for v in tr.rotation)
    return msg


def tf_message(transforms: Iterable[FrameTransform], stamp_s: float) -> TFMessage:
    """One tf2_msgs/TFMessage holding ``transforms``, all stamped ``stamp_s``."""
    return TFMessage(transforms=[transform_stamped(tr, stamp_s) for tr in transforms])
