"""sensor_msgs/Image-style buffers -> numpy images, without ROS types.

The perception node passes ``msg.encoding, msg.height, msg.width, msg.step,
bytes(msg.data)``; everything wrong with them becomes a
:class:`PerceptionInputError` with a short, loggable ``reason``.
Multi-byte pixels are read little-endian (``is_bigendian = 0``, as every
common driver publishes).
"""

from __future__ import annotations

import numpy as np

COLOR_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8")
DEPTH_ENCODINGS = ("16UC1", "mono16", "32FC1")
BYTES_PER_PIXEL = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "16UC1": 2, "mono16": 2}
BYTES_PER_PIXEL["32FC1"] = 4


class PerceptionInputError(ValueError):
    """Input perception cannot use; ``reason`` is short and loggable
    ("unsupported encoding", "size mismatch", "nan depth", ...)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


def check_image(kind: str, encoding: str, height: int, width: int, step: int, n_bytes: int) -> None:
    """What :func:`decode_color` / :func:`decode_depth` check without touching a
    pixel (``kind`` "colour" or "depth"): the perception node calls it as an
    image arrives, so a malformed one never enters the camera sync."""
    encodings = COLOR_ENCODINGS if kind == "colour" else DEPTH_ENCODINGS
    if encoding not in encodings:
        raise PerceptionInputError(
            "unsupported encoding", f"{encoding!r} for {kind}; use one of {encodings}"
        )
    if height <= 0 or width <= 0:
        raise PerceptionInputError("empty image", f"{width}x{height}")
    row_bytes = width * BYTES_PER_PIXEL[encoding]
    if step < row_bytes or n_bytes != step * height:
        raise PerceptionInputError(
            "malformed image",
            f"{width}x{height} {encoding}, step {step}: {n_bytes} bytes, expected "
            f"step * height = {step * height} with step >= {row_bytes}",
        )


def _rows(height: int, width: int, step: int, data: bytes, bytes_per_pixel: int) -> np.ndarray:
    """The buffer as (height, width * bytes_per_pixel) uint8, row padding cut off."""
    try:
        height, width, step = int(height), int(width), int(step)
        buf = np.frombuffer(memoryview(data), dtype=np.uint8)
    except (TypeError, ValueError) as exc:
        raise PerceptionInputError("malformed image", str(exc)) from exc
    if height <= 0 or width <= 0:
        raise PerceptionInputError("empty image", f"{width}x{height}")
    row_bytes = width * bytes_per_pixel
    if step < row_bytes:
        raise PerceptionInputError("malformed image", f"step {step} < width * {bytes_per_pixel}")
    if buf.size != step * height:
        raise PerceptionInputError(
            "malformed image", f"{buf.size} bytes, expected step * height = {step * height}"
        )
    return buf.reshape(height, step)[:, :row_bytes]


def decode_color(encoding: str, height: int, width: int, step: int, data: bytes) -> np.ndarray:
    """HxWx3 uint8 RGB from rgb8, bgr8, rgba8 or bgra8."""
    if encoding not in COLOR_ENCODINGS:
        raise PerceptionInputError(
            "unsupported encoding", f"{encoding!r} for colour; use one of {COLOR_ENCODINGS}"
        )
    channels = 4 if encoding.endswith("a8") else 3
    pixels = _rows(height, width, step, data, channels).reshape(int(height), int(width), channels)
    order = [0, 1, 2] if encoding.startswith("rgb") else [2, 1, 0]
    return np.ascontiguousarray(pixels[:, :, order])


def decode_depth(
    encoding: str, height: int, width: int, step: int, data: bytes, bigendian: bool = False
) -> np.ndarray:
    """HxW float32 metres, 0 = no return. 16UC1/mono16 are millimetres; 32FC1 is
    metres, with NaN, inf and negative values kept as NaN for the pipeline to judge.
    ``bigendian`` is sensor_msgs/Image's ``is_bigendian``."""
    order = ">" if bigendian else "<"
    if encoding not in DEPTH_ENCODINGS:
        raise PerceptionInputError(
            "unsupported encoding", f"{encoding!r} for depth; use one of {DEPTH_ENCODINGS}"
        )
    if encoding == "32FC1":
        raw = _rows(height, width, step, data, 4)
        depth = np.ascontiguousarray(raw).view(f"{order}f4").reshape(int(height), int(width))
        depth = depth.astype(np.float32)
        depth[~np.isfinite(depth) | (depth < 0)] = np.nan
        return depth
    raw = _rows(height, width, step, data, 2)
    depth_mm = np.ascontiguousarray(raw).view(f"{order}u2").reshape(int(height), int(width))
    return depth_mm.astype(np.float32) * np.float32(0.001)
