"""Camera image messages <-> numpy (ROS-free): raw and image_transport's
compressed forms, for the perception node's subscriptions, bags and the sim.

``sensor_msgs/Image`` goes through the perception node's own decoder (colour
rgb8, bgr8, rgba8, bgra8; depth 16UC1 millimetres, 32FC1 metres).
``sensor_msgs/CompressedImage`` is decoded with OpenCV:

* colour (image_transport's ``compressed``: ``format`` like ``jpeg``, ``png`` or
  ``bgr8; jpeg compressed bgr8``) -> RGB; the channel order is the one the
  format names after "compressed" (bgr8 when it names none, as OpenCV writes);
* depth (image_transport's ``compressedDepth``: ``16UC1; compressedDepth png``
  or ``32FC1; compressedDepth png``): a 12-byte header (int32 format, two
  float32 quantization parameters) and a 16-bit PNG; 16UC1 is millimetres,
  32FC1 is stored as inverse depth ``d = a / (v - b)``. ``rvl`` is refused.

Errors are :class:`PerceptionInputError` with a short reason, like the node's.
"""

from __future__ import annotations

import struct
from typing import Any

import cv2
import numpy as np

from robot_memory.perception.image_decoding import PerceptionInputError
from robot_memory.perception.image_decoding import decode_color as decode_raw_color
from robot_memory.perception.image_decoding import decode_depth as decode_raw_depth

COMPRESSED_DEPTH_HEADER = 12
MAX_COMPRESSED_BYTES = 64 << 20  # a 4K 16-bit PNG fits; more is not a camera frame


def is_compressed(msg: Any) -> bool:
    return hasattr(msg, "format") and not hasattr(msg, "encoding")


def encoding_of(msg: Any) -> str:
    return str(msg.format if is_compressed(msg) else msg.encoding)


def _imdecode(data: Any, flags: int) -> np.ndarray:
    buf = np.frombuffer(bytes(data), dtype=np.uint8)
    image = cv2.imdecode(buf, flags) if buf.size else None
    if image is None:
        raise PerceptionInputError("undecodable compressed image", f"{buf.size} bytes")
    return image


def decode_compressed_color(fmt: str, data: Any) -> np.ndarray:
    """A CompressedImage's ``format`` and ``data`` -> HxWx3 uint8 RGB."""
    if "compresseddepth" in fmt.lower():
        raise PerceptionInputError("unsupported encoding", f"{fmt!r} is depth, not colour")
    image = _imdecode(data, cv2.IMREAD_COLOR)
    if image.dtype != np.uint8:
        image = (image >> 8).astype(np.uint8)
    stored = fmt.split("compressed", 1)[1].strip() if "compressed" in fmt else "bgr8"
    if stored.startswith("rgb"):
        return np.ascontiguousarray(image)
    return np.ascontiguousarray(image[:, :, ::-1])


def decode_compressed_depth(fmt: str, data: Any) -> np.ndarray:
    """A compressedDepth ``format`` and ``data`` -> HxW float32 metres, 0 = no return."""
    encoding, _, rest = fmt.partition(";")
    encoding, rest = encoding.strip(), rest.strip().lower()
    if "compresseddepth" not in rest.replace(" ", "") or "rvl" in rest:
        raise PerceptionInputError(
            "unsupported encoding", f"{fmt!r}; depth must be 'compressedDepth png'"
        )
    raw = bytes(data)
    if len(raw) <= COMPRESSED_DEPTH_HEADER:
        raise PerceptionInputError("malformed image", f"compressedDepth of {len(raw)} bytes")
    _, quant_a, quant_b = struct.unpack("<iff", raw[:COMPRESSED_DEPTH_HEADER])
    values = _imdecode(raw[COMPRESSED_DEPTH_HEADER:], cv2.IMREAD_UNCHANGED)
    if values.ndim != 2 or values.dtype != np.uint16:
        raise PerceptionInputError("malformed image", "compressedDepth PNG is not 16-bit mono")
    if encoding in ("16UC1", "mono16"):
        return values.astype(np.float32) * np.float32(0.001)
    if encoding == "32FC1":
        depth = np.zeros(values.shape, dtype=np.float32)
        valid = values != 0
        depth[valid] = quant_a / (values[valid].astype(np.float32) - quant_b)
        depth[~np.isfinite(depth) | (depth < 0)] = 0.0
        return depth
    raise PerceptionInputError("unsupported encoding", f"{encoding!r} in {fmt!r}")


def encode_compressed_color(rgb: np.ndarray, quality: int = 90) -> tuple[str, bytes]:
    """HxWx3 uint8 RGB -> (``format``, JPEG ``data``) as image_transport's
    ``compressed`` plugin writes them."""
    ok, jpeg = cv2.imencode(
        ".jpg", np.ascontiguousarray(rgb[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    )
    if not ok:
        raise ValueError("could not encode the image as JPEG")
    return "rgb8; jpeg compressed bgr8", jpeg.tobytes()


def compressed_depth_format(encoding: str) -> str:
    return f"{encoding}; compressedDepth png"


def encode_compressed_depth(depth_m: np.ndarray, encoding: str = "16UC1") -> bytes:
    """HxW metres -> compressedDepth ``data`` (header + PNG, fastest zlib level),
    as image_transport writes it; ``encoding`` 16UC1 (mm) or 32FC1 (inverse depth)."""
    depth = np.nan_to_num(np.asarray(depth_m, dtype=np.float32), nan=0.0)
    if encoding == "16UC1":
        values, quant_a, quant_b = np.round(depth * 1000).astype(np.uint16), 0.0, 0.0
    else:
        # compressed_depth_image_transport's defaults: depth_quantization 100, depth_max 10 m
        quant_a = 100.0 * (100.0 + 1.0)
        quant_b = 1.0 - quant_a / 10.0
        # nearer than a / (65535 - b) = 0.152 m does not fit: no return, not a wrong depth
        inverse = np.zeros(depth.shape, dtype=np.float64)
        valid = depth > 0
        inverse[valid] = quant_a / depth[valid] + quant_b + 0.5
        inverse[(inverse < 1) | (inverse > 65535)] = 0
        values = inverse.astype(np.uint16)
    ok, png = cv2.imencode(".png", values, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise ValueError("could not encode the depth image as PNG")
    return struct.pack("<iff", 0, quant_a, quant_b) + png.tobytes()


def check_compressed(kind: str, fmt: str, n_bytes: int) -> None:
    """What can be checked of a CompressedImage before decoding it (``kind``
    "colour" or "depth"): a format of that kind and a plausible size."""
    depth_format = "compresseddepth" in fmt.lower().replace(" ", "")
    if not fmt or depth_format != (kind == "depth"):
        raise PerceptionInputError("unsupported encoding", f"{fmt!r} for {kind}")
    if not 0 < n_bytes <= MAX_COMPRESSED_BYTES:
        raise PerceptionInputError("malformed image", f"compressed {kind} of {n_bytes} bytes")


def decode_color(msg: Any) -> np.ndarray:
    """A sensor_msgs/Image or CompressedImage (any object with its fields) ->
    HxWx3 uint8 RGB."""
    if is_compressed(msg):
        return decode_compressed_color(str(msg.format), msg.data)
    return decode_raw_color(msg.encoding, msg.height, msg.width, msg.step, msg.data)


def decode_depth(msg: Any) -> np.ndarray:
    """A depth Image (16UC1 mm / 32FC1 m) or compressedDepth CompressedImage ->
    HxW float32 metres, 0 where there is no return."""
    if is_compressed(msg):
        return decode_compressed_depth(str(msg.format), msg.data)
    depth = decode_raw_depth(
        msg.encoding, msg.height, msg.width, msg.step, msg.data, bool(msg.is_bigendian)
    )
    depth[np.isnan(depth)] = 0.0
    return depth
